//! `zcc-bridge demo`: the server wired to the built-in ZCC simulator, which sends live, signed, realistic
//! webhook traffic (with Zoom's duplicates and some lost deliveries) and serves the matching REST API, so that
//! records can be watched filling up and reconciliation can be seen repairing what the webhooks lost. A chatbot
//! channel (`demo`, the built-in rules bot) is played by zoom-sim's bot connector: a conversation every few seconds,
//! its replies posted to a simulated Post URL.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use zoom_sim::emitter::{Emitter, EmitterConfig, Faults};
use zoom_sim::generator::{generate, GeneratorConfig};

use crate::config::Secret;
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
    /// Share of events the simulator never delivers; reconciliation fills the gaps from its REST API.
    #[arg(long, default_value_t = 0.05)]
    pub drop_rate: f64,
}

pub async fn run(config_file: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    let mut config = crate::server::load_config(config_file)?;
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
    // The simulated Zoom REST API (and OAuth) on a fixed local port; each round serves that round's day.
    let sim_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for the simulator")?
        .port();
    let sim_addr = std::net::SocketAddr::from(([127, 0, 0, 1], sim_port));
    let sim_config = zoom_sim::SimServerConfig::default();
    let sim_base = format!("http://{sim_addr}");
    if config.zoom.client_config().is_none() {
        config.zoom.account_id = Some(sim_config.account_id.clone());
        config.zoom.client_id = Some(sim_config.client_id.clone());
        config.zoom.client_secret = Some(Secret::new(sim_config.client_secret.clone()));
        config.zoom.api_base = format!("{sim_base}/v2");
        config.zoom.oauth_base = sim_base.clone();
        // Repair lost webhooks quickly in the demo: fetch 5 s after an engagement's last event.
        config.reconcile.fetch_settle_seconds = 5;
        // Recordings "process" for a moment in the simulator: look again soon.
        config.media.not_ready_retry_ms = 5_000;
        config.media.retry_base_ms = 2_000;
    }
    let chat = demo_chat(&mut config).await?;
    let media_url = config.storage.media.clone();
    let running = server::start(config).await.context("starting the server")?;
    let base = format!("http://{}", running.addr());
    println!("zcc-bridge demo running at {base} (Ctrl-C to stop)");
    println!("  webhook endpoint:  POST {base}/webhooks/zoom  (fed by the built-in ZCC simulator)");
    println!(
        "  engagements:       curl -H 'Authorization: Bearer {token}' {base}/api/v1/engagements"
    );
    println!("  one engagement:    curl -H 'Authorization: Bearer {token}' {base}/api/v1/engagements/<engagement_id>");
    println!("  event log:         curl -H 'Authorization: Bearer {token}' {base}/api/v1/events");
    println!(
        "  reconciliation:    curl -H 'Authorization: Bearer {token}' {base}/api/v1/reconciliation"
    );
    println!(
        "  media archive:     curl -H 'Authorization: Bearer {token}' {base}/api/v1/media?state=archived  (files in {}; each record's recordings[].media.link plays in a browser)",
        media_url
    );
    println!(
        "  simulated Zoom:    {sim_base}/v2 (REST), {sim_base}/sim/truth (what really happened)"
    );
    println!("  agents:            curl -H 'Authorization: Bearer {token}' {base}/api/v1/agents");
    println!("  live stream:       curl -N -H 'Authorization: Bearer {token}' {base}/api/v1/stream  (screen-pop events as they happen)");
    if let Some((post, _)) = &chat {
        println!("  chatbot channel:   POST {base}/chat/zoom/demo  (fed by the simulated bot connector; replies to {})", post.url());
        println!("  conversations:     curl -H 'Authorization: Bearer {token}' {base}/api/v1/chat/sessions");
    }
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
                api_base: format!("{sim_base}/v2"),
                ..GeneratorConfig::default()
            });
            let sim = zoom_sim::SimServer::start_on(sim_config.clone(), &scenario, sim_addr)
                .await
                .context("starting the simulated Zoom API")?;
            let mut emitter_config = EmitterConfig::new(target.clone(), secret.clone());
            emitter_config.faults = Faults {
                duplicate_rate: args.duplicate_rate,
                drop_rate: args.drop_rate,
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
            // Leave the round's REST API up long enough for the last fetches.
            tokio::time::sleep(Duration::from_secs(30)).await;
            sim.shutdown().await;
            seed += 1;
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    let webhook = format!("{base}/chat/zoom/demo");
    let converse = async move {
        let Some((post, signer)) = chat else {
            return std::future::pending::<()>().await;
        };
        let mut round = 0u64;
        loop {
            round += 1;
            let load = zoom_sim::chat::LoadConfig {
                webhook_url: webhook.clone(),
                conversations: 2,
                messages_per_conversation: 4,
                rate_per_second: 0.5,
                session_prefix: format!("demo-{round}-"),
                texts: vec![
                    "What are your opening hours?".into(),
                    "How do I reset my password?".into(),
                    "Do you ship abroad?".into(),
                    if round.is_multiple_of(2) {
                        "I want an agent"
                    } else {
                        "bye"
                    }
                    .into(),
                ],
                ..Default::default()
            };
            let truth =
                zoom_sim::chat::run_load(reqwest::Client::new(), signer.clone(), &load).await;
            tracing::debug!(
                round,
                messages = truth.messages().count(),
                replies = post.received().len(),
                "simulated chat conversations sent"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    tokio::select! {
        _ = converse => Ok(()),
        result = simulate => {
            let _ = running.shutdown().await;
            result
        }
        _ = server::shutdown_signal() => running.shutdown().await,
    }
}

/// The demo's chatbot channel (unless the configuration has one named `demo`): the built-in bot with a small FAQ,
/// a fresh client app and Access Token, and zoom-sim's Post URL. Returns the Post URL and the connector's signer.
async fn demo_chat(
    config: &mut crate::config::Config,
) -> anyhow::Result<
    Option<(
        zoom_sim::chat::PostUrlServer,
        std::sync::Arc<zoom_sim::chat::TokenSigner>,
    )>,
> {
    use zoom_sim::chat::{JwtAlgorithm, PostUrlServer, Secret as SimSecret, TokenSigner};
    if config.chat.channels.contains_key("demo") {
        return Ok(None);
    }
    let creds = chatbot::client_app::generate_hs_credentials(JwtAlgorithm::HS256)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let access_token = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let post = PostUrlServer::start(SimSecret::new(access_token.clone()))
        .await
        .context("starting the simulated Post URL")?;
    let channel: crate::config::ChatChannelConfig = serde_json::from_value(serde_json::json!({
        "client_id": creds.client_id,
        "jwt_algorithm": "HS256",
        "jwt_secret": creds.client_secret.expose(),
        "auto_register": true,
        "post_url": post.url(),
        "access_token": access_token,
        "bot": {"kind": "builtin", "faq": [
            {"question": "What are your opening hours?", "answer": "We are open 9 to 5, Monday to Friday."},
            {"question": "How do I reset my password?", "answer": "Use the 'Forgot password' link on the sign-in page."},
            {"question": "Do you ship abroad?", "answer": "Yes, to most countries in 3 to 7 days."}
        ]}
    }))?;
    config.chat.channels.insert("demo".into(), channel);
    let signer = TokenSigner::hs(&creds.client_id, JwtAlgorithm::HS256, &creds.client_secret)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some((post, std::sync::Arc::new(signer))))
}
