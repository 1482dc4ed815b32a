//! Delivery to systems of record: the outbox engine (`engine`), what it delivers when (`planner`), and the sinks
//! (`http_sink`, `crm::*`) behind one trait (`sink::Sink`).

pub mod crm;
pub mod engine;
pub mod http;
pub mod http_sink;
pub mod planner;
pub mod sink;
pub mod sinks;
pub mod standard_webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::media::MediaLinks;
use crate::store::Store;

/// What each sink finds wrong with its own settings (the part `Config::validate` leaves to the sink kinds).
pub fn sink_problems(config: &Config) -> Vec<crate::config::InvalidValue> {
    config
        .sinks
        .iter()
        .filter_map(|sink| sinks::check_config(sink).err())
        .map(|problem| crate::config::InvalidValue {
            key: "sinks",
            problem,
        })
        .collect()
}

/// Starts the planner, one worker per sink and the queue gauges (nothing when no sink is configured).
pub async fn spawn(
    config: &Config,
    store: Arc<dyn Store>,
    links: Option<Arc<MediaLinks>>,
    background: &mut JoinSet<()>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let routes: Vec<sinks::Route> = config.sinks.iter().map(sinks::Route::new).collect();
    let watching = routes.iter().any(sinks::Route::wants_engagements);
    let signals = store.signals();
    signals.set_watching(
        watching,
        i64::try_from(config.delivery.coalesce_ms).unwrap_or(i64::MAX / 2),
    );
    let realtime: Vec<(String, String)> = config
        .sinks
        .iter()
        .flat_map(|s| {
            s.deliver
                .iter()
                .filter(|t| !sink::is_planned_type(t))
                .map(|t| (t.clone(), s.name.clone()))
        })
        .collect();
    signals.set_realtime(!realtime.is_empty());
    store
        .set_realtime_routes(&realtime)
        .await
        .context("recording the real-time delivery routes")?;
    if store.backend() == "sqlite" {
        // The only process of an embedded database: any lease left is from a previous run (the chat channel's
        // outboxes included, whose workers start after this).
        store.release_delivery_leases().await?;
    }
    if config.sinks.is_empty() {
        return Ok(());
    }
    let settings = engine::EngineSettings::from_config(&config.delivery);
    for sink_config in &config.sinks {
        let sink = sinks::build(sink_config, config.delivery.response_body_bytes)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("sink {:?}", sink_config.name))?;
        let worker =
            engine::SinkWorker::new(sink_config, sink, config.delivery.response_body_bytes);
        background.spawn(engine::run_sink(
            worker,
            store.clone(),
            settings.clone(),
            shutdown.clone(),
        ));
        tracing::info!(sink = %sink_config.name, kind = sink_config.kind.as_str(), types = ?sink_config.deliver,
            "delivering to sink");
    }
    if watching {
        let planner = planner::Planner {
            store: store.clone(),
            routes,
            links,
            settings: planner::PlannerSettings {
                settle: Duration::from_secs(config.delivery.settle_seconds),
                poll: settings.poll,
                lease: settings.lease,
            },
            media_enabled: config.media.enabled,
        };
        background.spawn(planner.run(shutdown.clone()));
    }
    background.spawn(gauges(
        store,
        settings.poll.max(Duration::from_secs(5)),
        shutdown,
    ));
    Ok(())
}

/// Queue depth and dead letters per sink, for `/metrics`.
async fn gauges(store: Arc<dyn Store>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match store.delivery_counts().await {
            Ok(counts) => {
                for c in counts {
                    metrics::gauge!("zcc_delivery_queue_depth", "sink" => c.sink.clone())
                        .set(c.pending as f64);
                    metrics::gauge!("zcc_delivery_dead", "sink" => c.sink.clone())
                        .set(c.dead as f64);
                    let age = c
                        .oldest_pending_at
                        .map(|t| (crate::store::now_ms() - t).max(0) as f64 / 1000.0)
                        .unwrap_or(0.0);
                    metrics::gauge!("zcc_delivery_oldest_pending_seconds", "sink" => c.sink)
                        .set(age);
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading delivery counts failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
