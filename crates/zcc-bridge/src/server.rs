//! Starting and stopping the server: storage, committers, projector, HTTP, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zoom::WebhookVerifier;

use crate::config::{Config, InvalidConfig, InvalidValue};
use crate::http::{self, AppState};
use crate::ingest::EventLog;
use crate::projection::Projector;
use crate::reconcile::{fetcher, schedule, Reconciler, RunSettings};
use crate::signals::Signals;
use crate::store::{self, Store};
use crate::telemetry;

/// A running server. Dropping it without `shutdown` leaves it running until the runtime ends.
pub struct RunningServer {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Stops accepting, lets in-flight requests finish, commits everything queued, closes the database.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("server task panicked")?
    }

    /// Serves until `signal` resolves (then shuts down gracefully) or the server fails.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            result = &mut self.task => return result.context("server task panicked")?,
            _ = signal => tracing::info!("shutdown requested"),
        }
        self.shutdown().await
    }
}

/// Loads the configuration for a command and reports every problem at once: the values (`Config::problems`) and
/// what each feature checks of its own options (the configuration module depends on no feature).
pub fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    load(file, false)
}

/// `load_config` for running the server (`serve`, `config check`): what a deployment needs but lacks
/// (`Config::readiness`'s errors) is refused too, in the same report.
pub fn load_config_to_serve(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    load(file, true)
}

fn load(file: Option<&std::path::Path>, to_serve: bool) -> anyhow::Result<Config> {
    let config = Config::read(file)?;
    let mut problems = config.problems();
    problems.extend(feature_problems(&config));
    if to_serve {
        problems.extend(config.readiness().errors);
    }
    InvalidConfig::from_problems(problems)?;
    Ok(config)
}

/// What each feature finds wrong with its own part of the configuration.
pub fn feature_problems(config: &Config) -> Vec<InvalidValue> {
    let mut problems = crate::delivery::sink_problems(config);
    problems.extend(crate::chat::config_problems(config));
    problems
}

/// Opens the configured database with this process's `signals` (the CLI's one-off commands pass fresh ones).
pub async fn open_store(config: &Config, signals: Arc<Signals>) -> anyhow::Result<Arc<dyn Store>> {
    config.database_kind()?;
    let options = store::StoreOptions {
        max_connections: config.storage.max_connections,
        postgres_committers: config.ingest.postgres_committers,
    };
    store::open(config.storage.database.expose(), options, signals)
        .await
        .context("opening storage")
}

/// Opens storage, binds `server.listen` (port 0 picks a free port) and serves.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    // Configurations built in code (tests, the demo) have not been through `load_config`.
    InvalidConfig::from_problems(feature_problems(&config))?;
    let signals = Arc::new(Signals::default());
    let store = open_store(&config, signals.clone()).await?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let fd_limit = http::connections::raise_fd_limit();
    let limits = http::connections::Limits::new(&config.server, fd_limit);
    if limits.max_connections < config.server.max_connections {
        tracing::warn!(
            configured = config.server.max_connections,
            serving = limits.max_connections,
            open_file_limit = fd_limit,
            "server.max_connections lowered to fit the open-file limit (raise the hard limit: ulimit -Hn)"
        );
    }
    let connections = http::connections::Shared::new(limits);
    let secrets = config.zoom.webhook_secrets();
    if secrets.is_empty() {
        tracing::warn!(
            "no zoom.webhook_secret_token configured: every webhook will be refused with 401"
        );
    }
    let decoder = crate::sources::Decoder::from_config(&config);
    let contacts = match &config.contacts.file {
        Some(path) => Some(Arc::new(
            crate::contacts::Contacts::load(path).context("loading contacts")?,
        )),
        None => None,
    };
    // Before the projector starts: engagements it merges at start-up are marked for presence sync too.
    signals.set_presence(config.presence.enabled && config.zoom.client_config().is_some());
    let (feed, projection, projector) = Projector::start(store.clone(), decoder.clone());
    let (log, committers) = EventLog::start(store.clone(), config.ingest.max_batch, feed);
    let (stop_background, background_stopping) = tokio::sync::watch::channel(false);
    let client = match config.zoom.client_config() {
        Some(client_config) => Some(Arc::new(
            zoom::api::ZoomClient::new(client_config).context("Zoom API client")?,
        )),
        None => {
            tracing::warn!(
                "no Zoom Server-to-Server OAuth app configured (zoom.account_id, zoom.client_id, \
                 zoom.client_secret): no reconciliation, lost webhooks stay lost"
            );
            None
        }
    };
    let reconciler = client.as_ref().map(|client| {
        Reconciler::new(
            client.clone(),
            store.clone(),
            log.clone(),
            projection.clone(),
            RunSettings {
                concurrency: config.reconcile.concurrency,
                ..Default::default()
            },
        )
        .with_shutdown(background_stopping.clone())
    });
    let mut background = tokio::task::JoinSet::new();
    if let (Some(reconciler), true) = (&reconciler, config.reconcile.enabled) {
        let schedule_settings = schedule::ScheduleSettings::from_config(&config.reconcile)?;
        background.spawn(schedule::run(
            reconciler.clone(),
            schedule_settings,
            background_stopping.clone(),
        ));
        if config.reconcile.fetch_on_events {
            background.spawn(fetcher::run(
                reconciler.clone(),
                fetcher::FetchSettings {
                    settle: Duration::from_secs(config.reconcile.fetch_settle_seconds),
                    ..Default::default()
                },
                background_stopping.clone(),
            ));
        }
    }
    let websocket = (
        &config.zoom.websocket_url,
        &config.zoom.websocket_subscription_id,
        &client,
    );
    if let (Some(url), Some(subscription_id), Some(client)) = websocket {
        let mut ws = zoom::websocket::WsConfig::new(url.clone(), subscription_id.clone());
        ws.heartbeat_interval = Duration::from_secs(config.zoom.websocket_heartbeat_seconds);
        ws.silence_timeout = Some(ws.heartbeat_interval * 5 / 2);
        background.spawn(crate::connectors::zoom_websocket::run(
            ws,
            Duration::from_secs(config.zoom.websocket_gap_margin_seconds),
            client.clone(),
            log.clone(),
            reconciler.clone(),
            background_stopping.clone(),
        ));
    } else if config.zoom.websocket_url.is_some() {
        tracing::warn!("zoom.websocket_url is set but the subscription id or the S2S app is missing: no WebSocket source");
    }
    let genesys_orgs = crate::presence::GenesysOrgs::new(&config.presence)
        .map_err(anyhow::Error::msg)
        .context("setting up the Genesys sources")?;
    let genesys_feeds: std::collections::BTreeMap<String, Arc<crate::connectors::genesys::Feed>> =
        genesys_orgs
            .iter()
            .filter_map(|org| {
                crate::connectors::genesys::Feed::new(org.clone(), store.clone(), log.clone())
                    .map(|feed| (org.name.clone(), feed))
            })
            .collect();
    for (org, feed) in genesys_orgs
        .iter()
        .filter(|o| o.config.notifications)
        .filter_map(|o| Some((o, genesys_feeds.get(&o.name)?)))
    {
        background.spawn(crate::connectors::genesys::run(
            feed.clone(),
            crate::connectors::genesys::PullSettings {
                notifications: org.config.notifications_config(),
                ..Default::default()
            },
            background_stopping.clone(),
        ));
    }
    if config.presence.enabled {
        match &client {
            Some(client) => {
                background.spawn(
                    crate::presence::PresenceSync::new(
                        store.clone(),
                        client.clone(),
                        config.presence.clone(),
                        genesys_orgs.clone(),
                    )
                    .run(background_stopping.clone()),
                );
            }
            None => tracing::warn!(
                "presence.enabled is set but no Zoom S2S app is configured: presence sync is off"
            ),
        }
    }
    let media = if config.media.enabled {
        let links = crate::media::MediaLinks::open(&config, &*store, addr)
            .await
            .context("opening the media archive")?;
        if let Some(client) = &client {
            let archiver = crate::media::archiver::Archiver::new(
                client.clone(),
                store.clone(),
                links.archive().clone(),
                crate::media::archiver::ArchiverSettings::from_config(&config.media),
            );
            background.spawn(archiver.run(background_stopping.clone()));
        } else {
            tracing::warn!(
                "no Zoom S2S app configured: recordings and transcripts are not archived"
            );
        }
        let retention = config.media.retention_days;
        if retention.recordings.is_some()
            || retention.transcripts.is_some()
            || retention.voicemails.is_some()
        {
            background.spawn(crate::media::retention::run(
                store.clone(),
                links.archive().clone(),
                retention,
                Duration::from_secs(config.media.retention_check_seconds),
                background_stopping.clone(),
            ));
        }
        Some(Arc::new(links))
    } else {
        None
    };
    crate::delivery::spawn(
        &config,
        store.clone(),
        media.clone(),
        &mut background,
        background_stopping.clone(),
    )
    .await
    .context("starting delivery")?;
    let zoom_app = if config.zoom_app.credentials().is_empty() {
        None
    } else {
        let app = Arc::new(
            crate::zoomapp::ZoomApp::open(&config, store.clone(), log.clone(), contacts.clone())
                .await
                .context("setting up the Zoom App")?,
        );
        background.spawn(app.clone().run_refresher(
            crate::zoomapp::RefreshSettings::default(),
            background_stopping.clone(),
        ));
        Some(app)
    };
    let chat = crate::chat::start(
        &config,
        store.clone(),
        log.clone(),
        &mut background,
        background_stopping.clone(),
    )
    .await
    .context("starting the chatbot channel")?;
    let (live, stream_task) = crate::stream::Stream::start(
        store.clone(),
        crate::stream::Builder::new(decoder.clone(), contacts),
        Duration::from_millis(config.stream.poll_ms),
        background_stopping.clone(),
    )
    .await
    .context("starting the live stream")?;
    background.spawn(async move {
        let _ = stream_task.await;
    });
    background.spawn(
        crate::activity::Agents::new(store.clone())
            .run_gauges(Duration::from_secs(15), background_stopping.clone()),
    );
    let (http_stopping_tx, http_stopping) = tokio::sync::watch::channel(false);
    let state = AppState {
        stopping: http_stopping,
        genesys: genesys_orgs,
        genesys_feeds: Arc::new(genesys_feeds),
        store: store.clone(),
        decoder,
        stream: Some(live),
        log,
        projection,
        verifier: Arc::new(WebhookVerifier::new(
            secrets,
            config.zoom.webhook_timestamp_tolerance_seconds,
        )),
        admin_token: config.admin.token.clone(),
        metrics: telemetry::metrics_handle(),
        reconciler,
        media,
        sinks: Arc::new(config.sinks.clone()),
        zoom_app,
        chat,
    };
    let app = http::router(state, config.server.max_body_bytes, connections.clone());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let grace = Duration::from_secs(config.server.shutdown_timeout_seconds);
    let task_store = store.clone();
    let task = tokio::spawn(async move {
        let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
        // One router for every connection (a router per connection would rebuild its route table: ~32 KiB each,
        // measured by the stream benchmark).
        let serve = http::connections::serve(listener, app, connections, async move {
            let _ = stop_rx.await;
            let _ = http_stopping_tx.send(true);
            let _ = stopping_tx.send(());
        });
        let mut serve = Box::pin(serve);
        let served = tokio::select! {
            () = &mut serve => Ok(()),
            _ = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "in-flight requests did not finish in time; stopping anyway");
                Ok(())
            }
        };
        // Background work stops next (a run in progress is checkpointed and resumes at the next start); then the
        // router and every EventLog handle are gone: committers drain the queue and exit, and the projector
        // merges what they handed over.
        let _ = stop_background.send(true);
        // Runs started through the API or by the WebSocket source stop between pages too.
        let stopped = tokio::time::timeout(grace, async {
            while background.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            tracing::warn!("background reconciliation did not stop in time; aborting it");
            background.abort_all();
            while background.join_next().await.is_some() {}
        }
        drop(serve);
        committers.drain().await;
        projector.drain().await;
        task_store.close().await;
        tracing::info!("server stopped");
        served
    });
    tracing::info!(%addr, backend = store.backend(), "listening");
    Ok(RunningServer {
        addr,
        store,
        stop: Some(stop_tx),
        task,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
