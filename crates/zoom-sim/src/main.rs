//! `zoom-sim`: generate a deterministic Zoom Contact Center day, deliver it to a webhook endpoint, or serve it as
//! Zoom's OAuth and engagements REST API.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use zoom_sim::generator::{DEFAULT_ACCOUNT_ID, DEFAULT_API_BASE};
use zoom_sim::{
    generate, now_ms, Emitter, EmitterConfig, Faults, GeneratorConfig, PresenceWebhook, RateLabel,
    SimServer, SimServerConfig,
};

#[derive(Debug, Parser)]
#[command(name = "zoom-sim", version, about = "Zoom Contact Center simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a scenario and POST it as signed webhooks (after the URL validation handshake); prints the report.
    Emit(EmitArgs),
    /// Print the ground truth of a scenario as JSON.
    Truth(ScenarioArgs),
    /// Print a scenario's webhook bodies as NDJSON, in event_ts order.
    Events(ScenarioArgs),
    /// Serve a scenario as Zoom's S2S OAuth (`/oauth/token`) and ZCC REST API (`/v2`: engagements, recordings,
    /// inbox messages, notes, file downloads, user presence; `/sim/truth`: the ground truth; `/sim/presence`: the
    /// presence users and their histories) until Ctrl-C; prints the base URL.
    Serve(ServeArgs),
    /// Play ZCC's bot connector against a bot platform's Webhook URL (e.g. the bridge's
    /// `/chat/zoom/<channel>`): a Post URL on 127.0.0.1, consumer conversations posting signed messages at a fixed
    /// rate; prints the ground truth checked against the replies received.
    Chat(ChatArgs),
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// The Webhook URL, e.g. http://127.0.0.1:8080/chat/zoom/web.
    #[arg(long)]
    webhook_url: String,
    /// The client app's id (the JWTs' appId).
    #[arg(long)]
    client_id: String,
    /// HS256, HS512, RS256 or RS512.
    #[arg(long, default_value = "HS256")]
    jwt_algorithm: String,
    /// HS: the client secret.
    #[arg(long, env = "ZOOM_SIM_CHAT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// RS: the PEM private key's file.
    #[arg(long)]
    private_key: Option<PathBuf>,
    /// Name the app with `iss` instead of `appId`.
    #[arg(long)]
    iss: bool,
    /// The Access Token the Post URL accepts (the channel's access_token).
    #[arg(long, env = "ZOOM_SIM_CHAT_ACCESS_TOKEN", hide_env_values = true)]
    access_token: String,
    /// Port of the Post URL on 127.0.0.1 (the channel's post_url is http://127.0.0.1:<port>/zcc/bot-connector/post).
    #[arg(long, default_value_t = 0)]
    post_port: u16,
    #[arg(long, default_value_t = 10)]
    conversations: usize,
    /// Messages per conversation, the START_CONVERSATION included.
    #[arg(long, default_value_t = 5)]
    messages: usize,
    /// Messages per second over all conversations.
    #[arg(long, default_value_t = 10.0, value_parser = parse_positive)]
    rate: f64,
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    duplicate_rate: f64,
    /// Consumers without a JWT subject.
    #[arg(long)]
    anonymous: bool,
    /// The Post URL answers this status (500, 503, 429) to the first N replies.
    #[arg(long, default_value_t = 0)]
    fail_first: usize,
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
    /// How long to wait for the replies after the last message.
    #[arg(long, default_value_t = 10)]
    wait_seconds: u64,
    /// Also write the ground truth JSON to this file.
    #[arg(long)]
    truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Client id of the simulated Server-to-Server OAuth app.
    #[arg(long, env = "ZOOM_SIM_CLIENT_ID", default_value_t = SimServerConfig::default().client_id)]
    client_id: String,
    /// Client secret of the simulated Server-to-Server OAuth app.
    #[arg(long, env = "ZOOM_SIM_CLIENT_SECRET", hide_env_values = true,
          default_value_t = SimServerConfig::default().client_secret)]
    client_secret: String,
    /// Access-token lifetime in seconds (Zoom: 3600).
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
    /// MEDIUM-label requests per second (list engagements).
    #[arg(long, default_value_t = SimServerConfig::default().medium_per_second)]
    medium_per_second: u32,
    /// LIGHT-label requests per second (get engagement).
    #[arg(long, default_value_t = SimServerConfig::default().light_per_second)]
    light_per_second: u32,
    /// HEAVY-label requests per second (no served endpoint is HEAVY unless relabelled).
    #[arg(long, default_value_t = SimServerConfig::default().heavy_per_second)]
    heavy_per_second: u32,
    /// Daily cap of LIGHT-label requests (none by default).
    #[arg(long)]
    light_per_day: Option<u32>,
    /// Daily cap of MEDIUM-label requests (none by default).
    #[arg(long)]
    medium_per_day: Option<u32>,
    /// Daily cap of HEAVY-label requests (none by default; Zoom Business+: 30000).
    #[arg(long)]
    heavy_per_day: Option<u32>,
    /// Serve an endpoint under another rate-limit label: `ROUTE=light|medium|heavy`, e.g.
    /// `/v2/contact_center/recordings=heavy` (repeatable).
    #[arg(long = "label", value_parser = parse_label_override)]
    label_overrides: Vec<(String, RateLabel)>,
    /// Hide what does not exist yet by the wall clock (unfinished engagements, recordings, voicemails and
    /// transcripts not completed yet), as Zoom does.
    #[arg(long)]
    completed_only: bool,
    /// Size in bytes of every recording and voicemail file.
    #[arg(long, default_value_t = SimServerConfig::default().media_bytes)]
    media_bytes: u64,
    /// Files answer 404 until this many milliseconds after the server started (Zoom still processing them).
    #[arg(long, default_value_t = 0)]
    media_processing_delay_ms: u64,
    /// Answer downloads with a 302 to a one-minute unauthenticated link, like a CDN-signed URL.
    #[arg(long)]
    download_redirect: bool,
    /// Throttle of every file transfer, in bytes per second.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    download_bytes_per_second: Option<u64>,
    /// Break the first transfer of each file after this many bytes (later transfers succeed).
    #[arg(long)]
    cut_first_download_after: Option<u64>,
    /// Share of `/v2` JSON requests answered 500/503.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    fault_5xx_rate: f64,
    /// Share of `/v2` JSON requests answered with a spurious per-second 429.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    fault_429_rate: f64,
    /// Seed of the injected REST faults (defaults to --seed).
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Share of download requests answered 500/503.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    download_fault_5xx_rate: f64,
    /// Share of download requests answered 429 with `Retry-After: 1`.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    download_fault_429_rate: f64,
    /// Shortest time in milliseconds between two successful presence updates of one user (Zoom: one minute).
    #[arg(long, default_value_t = 60_000)]
    presence_min_interval_ms: u64,
    /// Put `Retry-After: <seconds>` on the presence 429 (Zoom's header is unconfirmed).
    #[arg(long)]
    presence_retry_after: bool,
    /// Send `user.presence_status_updated` webhooks to this URL (they always go to the WebSocket subscription).
    #[arg(long, requires = "presence_webhook_secret")]
    presence_webhook_target: Option<String>,
    /// Secret token the presence webhooks are signed with.
    #[arg(long, env = "ZOOM_SIM_PRESENCE_SECRET", hide_env_values = true)]
    presence_webhook_secret: Option<String>,
    /// Fire `user.presence_status_updated` for API updates too, not only for the user's own changes.
    #[arg(long)]
    presence_echo_api_updates: bool,
}

#[derive(Debug, Args)]
struct ScenarioArgs {
    /// Seed of the scenario; the same seed always gives the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of engagements.
    #[arg(long, default_value_t = 50)]
    engagements: usize,
    /// Start of the day: RFC 3339 (`2026-11-21T09:00:00Z`) or `now`. Default 2026-11-21T09:00:00Z.
    #[arg(long, value_parser = parse_start)]
    start: Option<i64>,
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
    account_id: String,
    /// REST base of every file URL (webhooks' transcript_url; REST's download_url, playback_url, transcript_url).
    /// Default https://api.zoom.us/v2; `serve`: the server's own `/v2`, so the URLs can be downloaded from it.
    #[arg(long)]
    api_base: Option<String>,
}

#[derive(Debug, Args)]
struct EmitArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Webhook endpoint, e.g. http://127.0.0.1:8080/webhooks/zoom.
    #[arg(long)]
    target: String,
    /// Webhook secret token.
    #[arg(long, env = "ZOOM_SIM_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    duplicate_rate: f64,
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    drop_rate: f64,
    /// Shuffle events within windows of this many events.
    #[arg(long, default_value_t = 0)]
    reorder_window: usize,
    /// Random extra delay per delivery in milliseconds: `N` or `LO..HI`.
    #[arg(long, value_parser = parse_delay, default_value = "0")]
    delay_ms: (u64, u64),
    /// Seed of the fault injection (defaults to --seed).
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Scale of Zoom's 5/20/60-minute retry schedule (0.001 makes it 0.3/1.2/3.6 s).
    #[arg(long, default_value_t = 1.0, value_parser = parse_non_negative)]
    retry_scale: f64,
    /// Per-request timeout in milliseconds (Zoom: 3000).
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// Pace deliveries by the events' timestamps (live demo traffic).
    #[arg(long)]
    paced: bool,
    /// With --paced: how many times faster than real time (each pause is capped at 2 s).
    #[arg(long, default_value_t = 60.0, requires = "paced", value_parser = parse_positive)]
    speedup: f64,
    /// Also write the ground truth JSON to this file.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Do not perform the endpoint.url_validation handshake first.
    #[arg(long)]
    skip_validation: bool,
}

fn parse_start(value: &str) -> Result<i64, String> {
    if value.eq_ignore_ascii_case("now") {
        return Ok(now_ms());
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("expected RFC 3339 (e.g. 2026-11-21T09:00:00Z) or `now`: {e}"))
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a probability between 0 and 1".to_owned()),
    }
}

fn parse_non_negative(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a non-negative number".to_owned()),
    }
}

fn parse_positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("expected a positive number".to_owned()),
    }
}

fn parse_label_override(value: &str) -> Result<(String, RateLabel), String> {
    let (route, label) = value
        .rsplit_once('=')
        .ok_or_else(|| format!("expected ROUTE=light|medium|heavy, got {value:?}"))?;
    let label = match label.to_ascii_lowercase().as_str() {
        "light" => RateLabel::Light,
        "medium" => RateLabel::Medium,
        "heavy" => RateLabel::Heavy,
        _ => return Err(format!("unknown rate-limit label {label:?}")),
    };
    Ok((route.to_owned(), label))
}

fn parse_delay(value: &str) -> Result<(u64, u64), String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("expected milliseconds as N or LO..HI, got {value:?}"))
    };
    match value.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi {
                return Err(format!("delay range {lo}..{hi} is empty"));
            }
            Ok((lo, hi))
        }
        None => {
            let n = number(value)?;
            Ok((n, n))
        }
    }
}

impl ScenarioArgs {
    fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: self.seed,
            start_ms: self.start.unwrap_or(GeneratorConfig::default().start_ms),
            engagements: self.engagements,
            api_base: self
                .api_base
                .clone()
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned()),
            account_id: self.account_id.clone(),
            ..GeneratorConfig::default()
        }
    }
}

fn write_json_file(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, value)
        .with_context(|| format!("writing {}", path.display()))?;
    writer
        .flush()
        .with_context(|| format!("writing {}", path.display()))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("writing to stdout")?;
    writeln!(out).context("writing to stdout")
}

async fn emit(args: EmitArgs) -> anyhow::Result<()> {
    let config = args.scenario.config();
    // Build the emitter first so a bad target fails before anything is written.
    let emitter = Emitter::new(EmitterConfig {
        target: args.target.clone(),
        secret: args.secret,
        faults: Faults {
            duplicate_rate: args.duplicate_rate,
            drop_rate: args.drop_rate,
            reorder_window: args.reorder_window,
            delay_ms: args.delay_ms,
            seed: args.fault_seed.unwrap_or(config.seed),
        },
        retry_scale: args.retry_scale,
        timeout: Duration::from_millis(args.timeout_ms),
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
    })?;
    let scenario = generate(&config);
    tracing::info!(
        seed = config.seed,
        engagements = config.engagements,
        events = scenario.events.len(),
        "generated scenario"
    );
    if let Some(path) = &args.truth {
        write_json_file(path, &scenario.truth)?;
        tracing::info!(path = %path.display(), "wrote ground truth");
    }
    if !args.skip_validation {
        emitter
            .url_validation()
            .await
            .with_context(|| format!("URL validation of {} failed", args.target))?;
        tracing::info!(target = %args.target, "URL validation passed");
    }
    let report = if args.paced {
        emitter.emit_paced(&scenario.events, args.speedup).await
    } else {
        emitter.emit_all(&scenario.events).await
    };
    print_json(&report)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    // Bound before generating, so the payload URLs can point at this server's port.
    let bound = SimServer::bind(addr).await?;
    let mut generator = args.scenario.config();
    if args.scenario.api_base.is_none() {
        generator.api_base = format!("{}/v2", bound.base_url());
    }
    let scenario = generate(&generator);
    let config = SimServerConfig {
        account_id: args.scenario.account_id.clone(),
        client_id: args.client_id,
        client_secret: args.client_secret,
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        light_per_second: args.light_per_second,
        medium_per_second: args.medium_per_second,
        heavy_per_second: args.heavy_per_second,
        light_per_day: args.light_per_day,
        medium_per_day: args.medium_per_day,
        heavy_per_day: args.heavy_per_day,
        label_overrides: args.label_overrides.into_iter().collect(),
        completed_only: args.completed_only,
        media_bytes: args.media_bytes,
        media_processing_delay: Duration::from_millis(args.media_processing_delay_ms),
        download_redirect: args.download_redirect,
        download_bytes_per_second: args.download_bytes_per_second,
        cut_first_download_after: args.cut_first_download_after,
        fault_5xx_rate: args.fault_5xx_rate,
        fault_429_rate: args.fault_429_rate,
        fault_seed: args.fault_seed.unwrap_or(generator.seed),
        download_fault_5xx_rate: args.download_fault_5xx_rate,
        download_fault_429_rate: args.download_fault_429_rate,
        presence_min_interval: Duration::from_millis(args.presence_min_interval_ms),
        presence_retry_after: args.presence_retry_after,
        presence_webhook: args
            .presence_webhook_target
            .zip(args.presence_webhook_secret)
            .map(|(target, secret)| PresenceWebhook::new(target, secret)),
        presence_echo_api_updates: args.presence_echo_api_updates,
        ..SimServerConfig::default()
    };
    let server = bound.serve(config, &scenario);
    tracing::info!(
        engagements = scenario.truth.engagements.len(),
        oauth = %format!("{}/oauth/token", server.base_url()),
        api = %format!("{}/v2", server.base_url()),
        "serving; Ctrl-C stops"
    );
    // The base URL alone on stdout, so scripts can capture it.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.base_url()).context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let stats = server.stats();
    server.shutdown().await;
    tracing::info!(?stats, "stopped");
    Ok(())
}

fn events(args: &ScenarioArgs) -> anyhow::Result<()> {
    let scenario = generate(&args.config());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for event in &scenario.events {
        serde_json::to_writer(&mut out, &event.body).context("writing to stdout")?;
        writeln!(out).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")
}

async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    use zoom_sim::chat::*;
    let algorithm = match args.jwt_algorithm.to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::HS256,
        "HS512" => JwtAlgorithm::HS512,
        "RS256" => JwtAlgorithm::RS256,
        "RS512" => JwtAlgorithm::RS512,
        other => anyhow::bail!("--jwt-algorithm: HS256, HS512, RS256 or RS512, not {other:?}"),
    };
    let signer = if algorithm.is_hmac() {
        let secret = args
            .client_secret
            .context("--client-secret (or ZOOM_SIM_CHAT_SECRET) is needed for HS256/HS512")?;
        TokenSigner::hs(&args.client_id, algorithm, &Secret::new(secret))?
    } else {
        let path = args
            .private_key
            .context("--private-key is needed for RS256/RS512")?;
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        TokenSigner::rs(&args.client_id, algorithm, &pem)?
    };
    let signer = if args.iss {
        signer.with_app_claim(AppClaim::Iss)
    } else {
        signer
    };
    let post = PostUrlServer::start_at(
        ([127, 0, 0, 1], args.post_port).into(),
        Secret::new(args.access_token),
        AccessTokenAuth::Bearer,
    )
    .await
    .context("starting the Post URL")?;
    if args.fail_first > 0 {
        let fault = if args.fail_status == 429 {
            Fault::RateLimited {
                retry_after_secs: 1,
            }
        } else {
            Fault::Status(args.fail_status)
        };
        post.fail_next(args.fail_first, fault);
    }
    eprintln!("Post URL: {}", post.url());
    let config = LoadConfig {
        webhook_url: args.webhook_url,
        conversations: args.conversations,
        messages_per_conversation: args.messages,
        rate_per_second: args.rate,
        duplicate_rate: args.duplicate_rate,
        subject_prefix: (!args.anonymous).then(|| "consumer".to_string()),
        ..LoadConfig::default()
    };
    let truth = run_load(reqwest::Client::new(), std::sync::Arc::new(signer), &config).await;
    let expected = truth
        .messages()
        .filter(|m| (200..300).contains(&m.status))
        .count();
    post.wait_for(expected, std::time::Duration::from_secs(args.wait_seconds))
        .await;
    if let Some(path) = &args.truth {
        std::fs::write(path, serde_json::to_vec_pretty(&truth)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let check = truth.check(&post.received(), |_| true);
    print_json(&serde_json::json!({
        "post_url": post.url(),
        "post_attempts": post.attempts(),
        "post_unauthorized": post.unauthorized(),
        "check": check,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let result = match Cli::parse().command {
        Command::Emit(args) => emit(args).await,
        Command::Truth(args) => print_json(&generate(&args.config()).truth),
        Command::Events(args) => events(&args),
        Command::Serve(args) => serve(args).await,
        Command::Chat(args) => chat(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`zoom-sim events | head`) is not an error worth a report.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // The cause chain on one line, without anyhow's backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn argument_parsers() {
        assert_eq!(parse_start("2026-11-21T09:00:00Z"), Ok(1_795_251_600_000));
        assert!(parse_start("yesterday").is_err());
        assert_eq!(parse_delay("5..50"), Ok((5, 50)));
        assert_eq!(parse_delay("7"), Ok((7, 7)));
        assert!(parse_delay("50..5").is_err());
        assert!(parse_rate("1.5").is_err());
        assert!(parse_positive("0").is_err());
        assert_eq!(
            parse_label_override("/v2/contact_center/recordings=Heavy"),
            Ok(("/v2/contact_center/recordings".to_owned(), RateLabel::Heavy))
        );
        assert!(parse_label_override("/v2/contact_center/recordings").is_err());
        assert!(parse_label_override("/v2/x=huge").is_err());
    }
}
