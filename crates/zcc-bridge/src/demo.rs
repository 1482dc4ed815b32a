//! `zcc-bridge demo`: the server wired to the built-in ZCC simulator, which sends live, signed, realistic
//! webhook traffic (with Zoom's duplicates) so that records can be watched filling up.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use zoom_sim::emitter::{Emitter, EmitterConfig, Faults};
use zoom_sim::generator::{generate, GeneratorConfig};

use crate::config::{Config, Secret};
use crate::{server, telemetry};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Engagements the simulator plays, repeated in new rounds until stopped.
    #[arg(long, default_value_t = 40)]
    pub engagements: usize,
    /// How much faster than real time the simulated day runs.
    #[arg(long, default_value_t = 120.0)]
    pub speedup: f64,
    /// Seed of the first round (each round uses the next seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of events the simulator delivers twice, as Zoom sometimes does.
    #[arg(long, default_value_t = 0.05)]
    pub duplicate_rate: f64,
}

pub async fn run(config_file: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    let mut config = Config::load(config_file)?;
    telemetry::init_logging(&config.log);
    // The demo signs its own traffic and opens the API with a fresh token unless the config sets them.
    let secret = config
        .zoom
        .webhook_secrets()
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rng(), 32));
    if config.zoom.webhook_secrets().is_empty() {
        config.zoom.webhook_secret_token = Some(Secret::new(secret.clone()));
    }
    let token = match &config.admin.token {
        Some(t) => t.expose().to_string(),
        None => {
            let t = Alphanumeric.sample_string(&mut rand::rng(), 32);
            config.admin.token = Some(Secret::new(t.clone()));
            t
        }
    };
    let running = server::start(config).await.context("starting the server")?;
    let base = format!("http://{}", running.addr());
    println!("zcc-bridge demo running at {base} (Ctrl-C to stop)");
    println!("  webhook endpoint:  POST {base}/webhooks/zoom  (fed by the built-in ZCC simulator)");
    println!(
        "  engagements:       curl -H 'Authorization: Bearer {token}' {base}/api/v1/engagements"
    );
    println!("  one engagement:    curl -H 'Authorization: Bearer {token}' {base}/api/v1/engagements/<engagement_id>");
    println!("  event log:         curl -H 'Authorization: Bearer {token}' {base}/api/v1/events");
    println!("  metrics:           {base}/metrics");
    println!("  health:            {base}/healthz  {base}/readyz");

    let target = format!("{base}/webhooks/zoom");
    let simulate = async move {
        let mut seed = args.seed;
        loop {
            let scenario = generate(&GeneratorConfig {
                seed,
                start_ms: zoom_sim::now_ms(),
                engagements: args.engagements,
                ..GeneratorConfig::default()
            });
            let mut emitter_config = EmitterConfig::new(target.clone(), secret.clone());
            emitter_config.faults = Faults {
                duplicate_rate: args.duplicate_rate,
                seed,
                ..Faults::default()
            };
            let emitter = Emitter::new(emitter_config)?;
            emitter
                .url_validation()
                .await
                .context("URL validation handshake")?;
            let report = emitter.emit_paced(&scenario.events, args.speedup).await;
            tracing::info!(seed, ?report, "simulated round finished");
            seed += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        result = simulate => {
            let _ = running.shutdown().await;
            result
        }
        _ = server::shutdown_signal() => running.shutdown().await,
    }
}
