use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zcc_bridge::{backup, config::Config, demo, media, rebuild, server, store, sync, telemetry};

/// Self-hosted integration server for Zoom Contact Center.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (every key can also be set as ZCC_BRIDGE_<SECTION>__<KEY>).
    #[arg(long, global = true, env = "ZCC_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Run the server fed by the built-in ZCC simulator and print the URLs to open.
    Demo(demo::DemoArgs),
    /// Recompute every engagement record from the event log.
    Rebuild,
    /// Reconcile a window with Zoom's REST API now (engagements, notes, dispositions, recordings, voicemails).
    Sync {
        /// Start: RFC 3339 (2026-11-20T00:00:00Z) or yyyy-mm-dd (from its first second).
        #[arg(long)]
        from: String,
        /// End: RFC 3339 or yyyy-mm-dd (to its last second).
        #[arg(long)]
        to: String,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The media archive: list, retry dead-lettered files, migrate to another store.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// The delivery outbox: list deliveries and attempts, replay, re-enable a sink disabled by 410 Gone.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Genesys Cloud: create the push path's triggers and export its workflow and data action.
    Genesys {
        #[command(subcommand)]
        command: GenesysCommand,
    },
    /// Copy the SQLite database to FILE while the server runs (consistent snapshot, verified with
    /// `PRAGMA integrity_check`). With PostgreSQL, prints the `pg_dump` command to use instead and fails.
    Backup {
        /// The backup file to write (refused if it exists, unless --force); `-` writes the database to
        /// standard output and the report to standard error.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The Contact Center Zoom App (the agent panel at /zoomapp/).
    Zoomapp {
        #[command(subcommand)]
        command: ZoomappCommand,
    },
}

#[derive(Subcommand)]
enum ZoomappCommand {
    /// Print the app manifest to paste into Marketplace (or PUT to /marketplace/apps/{appId}/manifest): the
    /// Contact Center product, the SDK APIs and events the panel uses, the Home URL, the OAuth redirect URL and
    /// allow list, the domain allow list. Needs zoom_app.redirect_url.
    Manifest,
}

#[derive(Subcommand)]
enum MediaCommand {
    /// Counts by state, and the dead-lettered files with their last error.
    Status,
    /// Put archive jobs back in the queue with a fresh attempt budget: the given media ids
    /// (`recording:ID`, ...), or every dead-lettered one. A running server picks them up.
    Retry {
        /// Media ids; none means every dead-lettered file.
        ids: Vec<String>,
    },
    /// Copy every archived file to another store (file://, s3://, az://), verifying checksums; resumable.
    /// Then point storage.media at the new URL.
    Migrate {
        /// The target archive URL (credentials from storage.s3.* / storage.azure.* and the environment).
        #[arg(long)]
        to: String,
        /// Files copied at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// Counts per sink, and the newest deliveries (filtered).
    List {
        #[arg(long)]
        sink: Option<String>,
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        engagement: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One delivery and every attempt.
    Show { id: i64 },
    /// Send again (same message id, fresh attempt count): one delivery (`--id`), every dead delivery of a sink
    /// (`--sink S --dead`), or everything of a sink since a time (`--sink S --since 2026-11-20T00:00:00Z`).
    /// A running server picks them up.
    Replay {
        #[arg(long, conflicts_with_all = ["sink", "dead", "since"])]
        id: Option<i64>,
        #[arg(long)]
        sink: Option<String>,
        #[arg(long, conflicts_with = "since")]
        dead: bool,
        /// RFC 3339 or yyyy-mm-dd.
        #[arg(long)]
        since: Option<String>,
    },
    /// Resume a sink disabled by 410 Gone.
    Enable { sink: String },
}

#[derive(Subcommand)]
enum GenesysCommand {
    /// Create or update (idempotently) the user.start / user.end triggers of a source, with matchCriteria from
    /// its rule, and write the data action and workflow to import.
    Setup {
        /// The source (`presence.genesys.<name>`); it needs API access (client_id, client_secret, region).
        #[arg(long)]
        source: String,
        /// The Architect workflow the triggers start (publish the exported one first, then pass its id).
        #[arg(long)]
        workflow_id: Option<String>,
        /// Where Genesys reaches this server (the data action posts to <url>/webhooks/genesys/<source>).
        #[arg(long)]
        public_url: Option<String>,
        /// Write data-action.json, workflow.yaml and triggers.json here.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it with secrets masked.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = server::load_config(cli.config.as_deref())?;
            print!("{}", config.to_masked_toml()?);
            eprintln!("configuration OK (database: {:?})", config.database_kind()?);
            Ok(())
        }
        Command::Zoomapp {
            command: ZoomappCommand::Manifest,
        } => {
            let config = server::load_config(cli.config.as_deref())?;
            let manifest = zcc_bridge::zoomapp::manifest(&config)?;
            let text = serde_json::to_string_pretty(&manifest)?;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a panic.
            match writeln!(out, "{text}") {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Serve => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            let running = server::start(config).await?;
            println!("zcc-bridge listening on http://{}", running.addr());
            running.run_until(server::shutdown_signal()).await
        }
        Command::Rebuild => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let report =
                rebuild::rebuild(&*store, &zcc_bridge::sources::Decoder::from_config(&config))
                    .await?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Sync { from, to, json } => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            let report = sync::run(config, &from, &to).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", sync::describe(&report));
            }
            if report.status != "succeeded" {
                anyhow::bail!("the reconciliation run failed");
            }
            Ok(())
        }
        Command::Demo(args) => demo::run(cli.config.as_deref(), args).await,
        Command::Backup { to, force, json } => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            if to.as_os_str() == "-" {
                // The database goes to standard output; the report to standard error.
                let report = backup::backup_to_writer(&config, &mut std::io::stdout()).await?;
                if json {
                    eprintln!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    eprintln!("{}", report.describe());
                }
                return Ok(());
            }
            let report = backup::backup(&config, &to, force).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", report.describe());
            }
            Ok(())
        }
        Command::Genesys {
            command:
                GenesysCommand::Setup {
                    source,
                    workflow_id,
                    public_url,
                    export,
                    dry_run,
                },
        } => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            genesys_setup(
                &config,
                &source,
                workflow_id.as_deref(),
                public_url.as_deref(),
                export.as_deref(),
                dry_run,
            )
            .await
        }
        Command::Deliveries { command } => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let result = deliveries_command(&config, store.clone(), command).await;
            store.close().await;
            result
        }
        Command::Media { command } => {
            let config = server::load_config(cli.config.as_deref())?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let result = media_command(&config, store.clone(), command).await;
            store.close().await;
            result
        }
    }
}

async fn genesys_setup(
    config: &Config,
    name: &str,
    workflow_id: Option<&str>,
    public_url: Option<&str>,
    export: Option<&std::path::Path>,
    dry_run: bool,
) -> anyhow::Result<()> {
    use zcc_bridge::presence::setup;
    let source = config
        .presence
        .genesys
        .get(name)
        .with_context(|| format!("no source presence.genesys.{name} in the configuration"))?;
    if workflow_id.is_none() && export.is_none() {
        anyhow::bail!("nothing to do: pass --export DIR (workflow and data action), --workflow-id ID (triggers), or both");
    }
    let triggers = setup::desired_triggers(name, source, workflow_id.unwrap_or("<workflow id>"));
    if let Some(dir) = export {
        let url = public_url
            .context("--export needs --public-url (where Genesys reaches this server)")?;
        for file in setup::export(dir, name, url, &triggers)? {
            println!("wrote {file}");
        }
        if source.token.is_none() {
            println!("note: presence.genesys.{name}.token is not set; the data action authenticates with it");
        }
    }
    if let Some(_workflow) = workflow_id {
        let api = source.api().map_err(anyhow::Error::msg)?.with_context(|| {
            format!("presence.genesys.{name} has no API access (client_id, client_secret, region)")
        })?;
        let client = genesys::GenesysClient::new(api)?;
        let outcomes = setup::apply_triggers(&client, &triggers, dry_run).await?;
        for (trigger, outcome, id) in outcomes {
            println!(
                "trigger {trigger:?}: {} {}",
                serde_json::to_value(&outcome)?.as_str().unwrap_or_default(),
                id.unwrap_or_default()
            );
        }
    }
    if !source.ringing && !matches!(source.api(), Ok(Some(_))) {
        println!(
            "note: user.start fires while the interaction rings. With ringing = false and no API access for this \
             source, a pushed start counts only if the workflow adds \"connected\": true; give the source API \
             access (the bridge then follows ringing starts until connected), use notifications = true, or set \
             ringing = true."
        );
    }
    Ok(())
}

async fn media_command(
    config: &Config,
    store: std::sync::Arc<dyn store::Store>,
    command: MediaCommand,
) -> anyhow::Result<()> {
    match command {
        MediaCommand::Status => {
            let stats = store.media_stats().await?;
            println!("{}", serde_json::to_string_pretty(&stats)?);
            let dead = store
                .media_list(&store::MediaQuery {
                    state: Some(store::media::MEDIA_DEAD.into()),
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            for row in dead {
                println!(
                    "dead  {}  engagement {}  attempts {}  {}",
                    row.media_id,
                    row.engagement_id,
                    row.attempts,
                    row.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
        MediaCommand::Retry { ids } => {
            let ids = (!ids.is_empty()).then_some(ids);
            let n = store.media_requeue(ids.as_deref(), store::now_ms()).await?;
            println!("{n} archive job(s) queued again");
            Ok(())
        }
        MediaCommand::Migrate { to, concurrency } => {
            let from = media::Archive::open(&config.storage.media, &config.storage, &config.media)?;
            let target = media::Archive::open(&to, &config.storage, &config.media)?;
            let report = media::migrate::migrate(store, from, target, concurrency, |r| {
                eprint!(
                    "\rcopied {} ({:.1} MiB), skipped {}, failed {}   ",
                    r.copied,
                    r.copied_bytes as f64 / 1048576.0,
                    r.skipped,
                    r.failed
                );
            })
            .await?;
            eprintln!();
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.failed > 0 {
                anyhow::bail!("{} file(s) could not be copied; run the migration again after fixing the cause", report.failed);
            }
            println!("done: set storage.media = {to:?}");
            Ok(())
        }
    }
}

async fn deliveries_command(
    config: &Config,
    store: std::sync::Arc<dyn store::Store>,
    command: DeliveriesCommand,
) -> anyhow::Result<()> {
    use store::delivery::{DeliveryQuery, Replay};
    let time = |ms: i64| zcc_bridge::core::record::format_ms(ms).unwrap_or_default();
    match command {
        DeliveriesCommand::List {
            sink,
            state,
            engagement,
            limit,
        } => {
            for c in store.delivery_counts().await? {
                println!(
                    "{}: {} pending, {} delivered, {} dead",
                    c.sink, c.pending, c.delivered, c.dead
                );
            }
            for d in store.disabled_sinks().await? {
                println!(
                    "{}: DISABLED since {} ({})",
                    d.sink,
                    time(d.disabled_at),
                    d.reason
                );
            }
            let rows = store
                .deliveries(&DeliveryQuery {
                    sink,
                    state,
                    engagement_id: engagement,
                    event_type: None,
                    before_id: None,
                    limit,
                })
                .await?;
            for r in rows {
                println!(
                    "{:>8}  {:<12} {:<10} {:<22} {:<24} attempts={} status={} {}",
                    r.id,
                    r.sink,
                    r.state,
                    r.event_type,
                    r.engagement_id.unwrap_or_default(),
                    r.attempts,
                    r.last_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
        DeliveriesCommand::Show { id } => {
            let Some(row) = store.delivery(id).await? else {
                anyhow::bail!("no delivery {id}");
            };
            println!("{}", serde_json::to_string_pretty(&row)?);
            for a in store.delivery_attempts(id).await? {
                println!(
                    "attempt {} at {}: {} status={} {} ms {}\n  {}",
                    a.attempt,
                    time(a.started_at),
                    a.outcome,
                    a.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    a.duration_ms,
                    a.error.unwrap_or_default(),
                    a.response.unwrap_or_default()
                );
            }
            Ok(())
        }
        DeliveriesCommand::Replay {
            id,
            sink,
            dead,
            since,
        } => {
            let replay = match (id, sink, dead, since) {
                (Some(id), None, false, None) => Replay::One(id),
                (None, Some(sink), true, None) => Replay::Dead { sink },
                (None, Some(sink), false, Some(since)) => Replay::Since {
                    sink,
                    from: sync::parse_time(&since, false)?,
                },
                _ => anyhow::bail!("give --id N, or --sink S with --dead or --since T"),
            };
            let n = store.replay_deliveries(&replay, store::now_ms()).await?;
            println!("{n} delivery(ies) queued again");
            Ok(())
        }
        DeliveriesCommand::Enable { sink } => {
            if !config.sinks.iter().any(|s| s.name == sink) {
                anyhow::bail!("no sink {sink:?} is configured");
            }
            if store.enable_sink(&sink).await? {
                println!("sink {sink} enabled");
            } else {
                println!("sink {sink} was not disabled");
            }
            Ok(())
        }
    }
}
