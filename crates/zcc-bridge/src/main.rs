use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use zcc_bridge::{backup, config::Config, demo, media, rebuild, server, store, sync, telemetry};

mod cli;
use cli::{or_dash, progress, table, Output};

/// Self-hosted integration server for Zoom Contact Center.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (every key can also be set as ZCC_BRIDGE_<SECTION>__<KEY>).
    #[arg(long, global = true, env = "ZCC_BRIDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print results as JSON (for scripts) instead of text and tables.
    #[arg(long, global = true)]
    json: bool,
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
    /// Scoped API keys for /api/v1: read_only (reads), operator (also replays, retries, re-enabling sinks,
    /// reconciliation runs), admin (everything). The admin.token stays the bootstrap admin.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script: `zcc-bridge completions bash > /etc/bash_completion.d/zcc-bridge`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The Contact Center Zoom App (the agent panel at /zoomapp/).
    Zoomapp {
        #[command(subcommand)]
        command: ZoomappCommand,
    },
}

#[derive(Subcommand)]
enum ZoomappCommand {
    /// Print the app manifest (JSON, with or without --json) to paste into Marketplace's manifest editor or PUT to
    /// /marketplace/apps/{appId}/manifest: the Contact Center product, the SDK APIs and events the panel uses, the
    /// Home URL, the OAuth redirect URL and allow list, the domain allow list. Needs zoom_app.redirect_url.
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
        /// Only this sink's deliveries.
        #[arg(long)]
        sink: Option<String>,
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        state: Option<DeliveryState>,
        /// Only this engagement's deliveries.
        #[arg(long, value_name = "ENGAGEMENT_ID")]
        engagement: Option<String>,
        /// How many deliveries to list, newest first (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// One delivery and every attempt.
    Show {
        /// The delivery's id (the first column of `deliveries list`).
        id: i64,
    },
    /// Send again (same message id, fresh attempt count): one delivery (`--id`), every dead delivery of a sink
    /// (`--sink S --dead`), or everything of a sink since a time (`--sink S --since 2026-11-20T00:00:00Z`).
    /// A running server picks them up.
    Replay {
        /// One delivery, by id.
        #[arg(long, conflicts_with_all = ["sink", "dead", "since"])]
        id: Option<i64>,
        /// The sink whose deliveries to send again (with --dead or --since).
        #[arg(long)]
        sink: Option<String>,
        /// Every dead delivery of the sink.
        #[arg(long, conflicts_with = "since")]
        dead: bool,
        /// Every delivery of the sink created since this time: RFC 3339 or yyyy-mm-dd.
        #[arg(long)]
        since: Option<String>,
    },
    /// Resume a sink disabled by 410 Gone.
    Enable {
        /// The sink's name (`[[sinks]] name`).
        sink: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once: only its hash is stored).
    Create {
        /// What the key is for (shown in lists and logs).
        #[arg(long)]
        name: String,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: zcc_bridge::auth::Role,
    },
    /// Every key with its role, creation, last use and revocation (never the secret).
    List,
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// The key's id (`zcb_<ID>_...`, the first column of `keys list`).
        key_id: String,
    },
}

/// A delivery's state, for `deliveries list --state`.
#[derive(Clone, Copy, ValueEnum)]
enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
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
    /// Validate the configuration (every problem at once, each with its key) and print it with secrets masked;
    /// warnings name the parts that are off for want of a credential.
    Check,
    /// Write the annotated example configuration (every key at its default, optional ones commented out) with a
    /// freshly generated admin token. The file is created readable by its owner only.
    Init {
        /// Where to write it; `-` writes to standard output.
        #[arg(value_name = "FILE", default_value = "zcc-bridge.toml")]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
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
    let out = Output { json: cli.json };
    let file = cli.config.as_deref();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = server::load_config_to_serve(file)?;
            let warnings = config.readiness().warnings;
            if out.json {
                let warnings: Vec<serde_json::Value> = warnings
                    .iter()
                    .map(|w| serde_json::json!({"key": w.key, "problem": w.problem}))
                    .collect();
                let masked: toml::Value = config.to_masked_toml()?.parse()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"configuration": masked, "warnings": warnings})
                    )?
                );
                return Ok(());
            }
            print!("{}", config.to_masked_toml()?);
            for warning in warnings {
                eprintln!("warning: {}: {}", warning.key, warning.problem);
            }
            eprintln!("configuration OK (database: {:?})", config.database_kind()?);
            Ok(())
        }
        Command::Zoomapp {
            command: ZoomappCommand::Manifest,
        } => {
            let config = server::load_config(file)?;
            let manifest = zcc_bridge::zoomapp::manifest(&config)?;
            let text = serde_json::to_string_pretty(&manifest)?;
            let written = writeln!(std::io::stdout().lock(), "{text}");
            match written {
                // `zcc-bridge zoomapp manifest | head` closes the pipe early: not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                result => result.context("writing the manifest")?,
            }
            if !out.json {
                eprintln!(
                    "paste it into the app's manifest editor in Marketplace (Build flow > Manifest), or PUT it to \
                     /marketplace/apps/{{appId}}/manifest"
                );
            }
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Init { to, force },
        } => config_init(&to, force),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "zcc-bridge", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                // `zcc-bridge completions bash | head` closes the pipe early: not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                result => result.context("writing the completion script"),
            }
        }
        Command::Serve => {
            let config = server::load_config_to_serve(file)?;
            telemetry::init_logging(&config.log);
            let running = server::start(config).await?;
            println!("zcc-bridge listening on http://{}", running.addr());
            running.run_until(server::shutdown_signal()).await
        }
        Command::Rebuild => {
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let total = store.stats().await?.engagements;
            let bar = progress(out, u64::try_from(total).ok(), "rebuilding records");
            let report = rebuild::rebuild_with_progress(
                &*store,
                &zcc_bridge::sources::Decoder::from_config(&config),
                |r| bar.set_position(r.engagements),
            )
            .await;
            bar.finish_and_clear();
            store.close().await;
            let report = report?;
            out.show(&report, || {
                println!(
                    "rebuilt {} records from {} events: {} changed, {} without events deleted, {} events no \
                     longer parse (left in the log), {} activity events recorded again",
                    report.engagements,
                    report.events,
                    report.changed,
                    report.orphans_deleted,
                    report.unparseable,
                    report.activity_events
                )
            })
        }
        Command::Sync { from, to } => {
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            let bar = progress(
                out,
                None,
                &format!("reconciling {from} to {to} with Zoom's API"),
            );
            let report = sync::run(config, &from, &to).await;
            bar.finish_and_clear();
            let report = report?;
            out.show(&report, || println!("{}", sync::describe(&report)))?;
            if report.status != "succeeded" {
                anyhow::bail!("the reconciliation run failed");
            }
            Ok(())
        }
        Command::Demo(args) => demo::run(file, args).await,
        Command::Backup { to, force } => {
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            if to.as_os_str() == "-" {
                // The database goes to standard output; the report to standard error.
                let report = backup::backup_to_writer(&config, &mut std::io::stdout()).await?;
                if out.json {
                    eprintln!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    eprintln!("{}", report.describe());
                }
                return Ok(());
            }
            let report = backup::backup(&config, &to, force).await?;
            out.show(&report, || println!("{}", report.describe()))
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
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            genesys_setup(
                out,
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
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let result = deliveries_command(out, &config, store.clone(), command).await;
            store.close().await;
            result
        }
        Command::Keys { command } => {
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let result = keys_command(out, store.clone(), command).await;
            store.close().await;
            result
        }
        Command::Media { command } => {
            let config = server::load_config(file)?;
            telemetry::init_logging(&config.log);
            let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
            let result = media_command(out, &config, store.clone(), command).await;
            store.close().await;
            result
        }
    }
}

fn config_init(to: &std::path::Path, force: bool) -> anyhow::Result<()> {
    use rand::distr::{Alphanumeric, SampleString};
    let token = Alphanumeric.sample_string(&mut rand::rng(), 40);
    let text = zcc_bridge::config::example_with_admin_token(&token);
    if to.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(to).with_context(|| {
        if to.exists() && !force {
            format!("{} exists (use --force to replace it)", to.display())
        } else {
            format!("creating {}", to.display())
        }
    })?;
    #[cfg(unix)]
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("making {} private", to.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", to.display()))?;
    eprintln!(
        "wrote {} with a new admin token (in the file, [admin] token). Next: set zoom.webhook_secret_token \
         and the Zoom app's credentials, then `zcc-bridge --config {} config check`.",
        to.display(),
        to.display()
    );
    Ok(())
}

async fn genesys_setup(
    out: Output,
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
    let mut written = Vec::new();
    let mut notes = Vec::new();
    if let Some(dir) = export {
        let url = public_url
            .context("--export needs --public-url (where Genesys reaches this server)")?;
        written = setup::export(dir, name, url, &triggers)?;
        if source.token.is_none() {
            notes.push(format!(
                "presence.genesys.{name}.token is not set; the data action authenticates with it"
            ));
        }
    }
    let mut outcomes = Vec::new();
    if let Some(_workflow) = workflow_id {
        let api = source.api().map_err(anyhow::Error::msg)?.with_context(|| {
            format!("presence.genesys.{name} has no API access (client_id, client_secret, region)")
        })?;
        let client = genesys::GenesysClient::new(api)?;
        outcomes = setup::apply_triggers(&client, &triggers, dry_run).await?;
    }
    if !source.ringing && !matches!(source.api(), Ok(Some(_))) {
        notes.push(
            "user.start fires while the interaction rings. With ringing = false and no API access for this \
             source, a pushed start counts only if the workflow adds \"connected\": true; give the source API \
             access (the bridge then follows ringing starts until connected), use notifications = true, or set \
             ringing = true."
                .into(),
        );
    }
    let triggers_json: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|(trigger, outcome, id)| serde_json::json!({"trigger": trigger, "outcome": outcome, "id": id}))
        .collect();
    out.show(
        &serde_json::json!({"written": written, "triggers": triggers_json, "dry_run": dry_run, "notes": notes}),
        || {
            for file in &written {
                println!("wrote {file}");
            }
            if !outcomes.is_empty() {
                let rows = outcomes.iter().map(|(trigger, outcome, id)| {
                    let outcome = serde_json::to_value(outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    [trigger.to_string(), outcome, or_dash(id.as_ref())]
                });
                println!("{}", table(["TRIGGER", "OUTCOME", "ID"], rows));
            }
            for note in &notes {
                println!("note: {note}");
            }
        },
    )
}

async fn media_command(
    out: Output,
    config: &Config,
    store: std::sync::Arc<dyn store::Store>,
    command: MediaCommand,
) -> anyhow::Result<()> {
    match command {
        MediaCommand::Status => {
            let stats = store.media_stats().await?;
            let dead = store
                .media_list(&store::MediaQuery {
                    state: Some(store::media::MEDIA_DEAD.into()),
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            out.show(&serde_json::json!({"counts": stats, "dead": dead}), || {
                println!(
                    "{}",
                    table(
                        ["PENDING", "ARCHIVED", "DEAD", "EXPIRED", "ARCHIVED MIB"],
                        [[
                            stats.pending.to_string(),
                            stats.archived.to_string(),
                            stats.dead.to_string(),
                            stats.expired.to_string(),
                            format!("{:.1}", stats.archived_bytes as f64 / 1_048_576.0),
                        ]]
                    )
                );
                if dead.is_empty() {
                    println!("\nno dead-lettered files");
                } else {
                    println!("\ndead-lettered files (`zcc-bridge media retry` queues them again):");
                    let rows = dead.iter().map(|row| {
                        [
                            row.media_id.clone(),
                            row.engagement_id.clone(),
                            row.attempts.to_string(),
                            or_dash(row.last_error.as_ref()),
                        ]
                    });
                    println!(
                        "{}",
                        table(["MEDIA", "ENGAGEMENT", "ATTEMPTS", "LAST ERROR"], rows)
                    );
                }
            })
        }
        MediaCommand::Retry { ids } => {
            let given = ids.len();
            let ids = (!ids.is_empty()).then_some(ids);
            let n = store.media_requeue(ids.as_deref(), store::now_ms()).await?;
            if n == 0 {
                if given == 0 {
                    anyhow::bail!("nothing to retry: no dead-lettered files");
                }
                anyhow::bail!("nothing to retry: none of the {given} id(s) is a known file that is not archived");
            }
            out.show(&serde_json::json!({"queued": n}), || {
                println!("{n} archive job(s) queued again; a running server picks them up")
            })
        }
        MediaCommand::Migrate { to, concurrency } => {
            let from = media::Archive::open(&config.storage.media, &config.storage, &config.media)?;
            let target = media::Archive::open(&to, &config.storage, &config.media)?;
            let total = store.media_stats().await?.archived;
            let bar = progress(out, u64::try_from(total).ok(), "copying archived files");
            let report = media::migrate::migrate(store, from, target, concurrency, |r| {
                bar.set_position(r.copied + r.skipped + r.failed);
                bar.set_message(format!(
                    "copying archived files ({:.1} MiB, {} failed)",
                    r.copied_bytes as f64 / 1_048_576.0,
                    r.failed
                ));
            })
            .await;
            bar.finish_and_clear();
            let report = report?;
            out.show(&report, || {
                println!(
                    "copied {} file(s) ({:.1} MiB), {} already there, {} failed",
                    report.copied,
                    report.copied_bytes as f64 / 1_048_576.0,
                    report.skipped,
                    report.failed
                );
                for failure in &report.failures {
                    println!("  failed: {failure}");
                }
            })?;
            if report.failed > 0 {
                anyhow::bail!("{} file(s) could not be copied; run the migration again after fixing the cause", report.failed);
            }
            if !out.json {
                println!("done: set storage.media = {to:?}");
            }
            Ok(())
        }
    }
}

async fn keys_command(
    out: Output,
    store: std::sync::Arc<dyn store::Store>,
    command: KeysCommand,
) -> anyhow::Result<()> {
    let now = zcc_bridge::store::now_ms();
    match command {
        KeysCommand::Create { name, role } => {
            let name = name.trim();
            if name.is_empty() {
                anyhow::bail!("--name must not be empty");
            }
            let new = zcc_bridge::auth::generate(name, role, now);
            store.create_api_key(&new.row).await?;
            out.show(
                &serde_json::json!({"key": new.key, "key_id": new.row.key_id, "name": name, "role": role}),
                || {
                    println!("{}", new.key);
                    eprintln!(
                        "API key {} ({role}) created for {name:?}. It is shown only now: store it in a secret \
                         manager. Use it as Authorization: Bearer <key>.",
                        new.row.key_id
                    );
                },
            )
        }
        KeysCommand::List => {
            let keys = store.api_keys().await?;
            out.show(&serde_json::json!({"keys": keys}), || {
                if keys.is_empty() {
                    println!("no API keys (create one with zcc-bridge keys create)");
                    return;
                }
                let time = |ms: Option<i64>| {
                    ms.and_then(zcc_bridge::core::record::format_ms)
                        .unwrap_or_else(|| "-".into())
                };
                let rows = keys.iter().map(|k| {
                    [
                        k.key_id.clone(),
                        k.name.clone(),
                        k.role.clone(),
                        time(Some(k.created_at)),
                        time(k.last_used_at),
                        time(k.revoked_at),
                    ]
                });
                println!(
                    "{}",
                    table(
                        ["ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
                        rows
                    )
                );
            })
        }
        KeysCommand::Revoke { key_id } => {
            let key_id = key_id
                .strip_prefix("zcb_")
                .map(|rest| rest.split('_').next().unwrap_or(rest))
                .unwrap_or(&key_id)
                .to_string();
            if !store.revoke_api_key(&key_id, now).await? {
                anyhow::bail!("no active API key {key_id:?} (see zcc-bridge keys list)");
            }
            out.show(&serde_json::json!({"revoked": key_id}), || {
                println!("API key {key_id} revoked")
            })
        }
    }
}

async fn deliveries_command(
    out: Output,
    config: &Config,
    store: std::sync::Arc<dyn store::Store>,
    command: DeliveriesCommand,
) -> anyhow::Result<()> {
    use store::delivery::{DeliveryQuery, Replay};
    let time = |ms: i64| zcc_bridge::core::record::format_ms(ms).unwrap_or_default();
    // The configured sinks, and the outboxes of the chat channels (the file's and the admin API's).
    let mut sinks: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    let mut channels: Vec<String> = config.chat.channels.keys().cloned().collect();
    channels.extend(store.chat_channels().await?.into_iter().map(|c| c.name));
    for channel in channels {
        let names = zcc_bridge::chat::SinkNames::of(&channel);
        sinks.extend([names.bot, names.reply, names.push]);
    }
    let known_sink = |sink: &str| -> anyhow::Result<()> {
        if sinks.iter().any(|s| s == sink) {
            Ok(())
        } else {
            anyhow::bail!(
                "no sink {sink:?} is configured (configured: {})",
                if sinks.is_empty() {
                    "none".to_string()
                } else {
                    sinks.join(", ")
                }
            )
        }
    };
    match command {
        DeliveriesCommand::List {
            sink,
            state,
            engagement,
            limit,
        } => {
            if let Some(sink) = &sink {
                known_sink(sink)?;
            }
            let counts = store.delivery_counts().await?;
            let disabled = store.disabled_sinks().await?;
            let rows = store
                .deliveries(&DeliveryQuery {
                    sink,
                    state: state.map(|s| s.as_str().to_string()),
                    engagement_id: engagement,
                    event_type: None,
                    before_id: None,
                    limit,
                })
                .await?;
            out.show(
                &serde_json::json!({"sinks": counts, "disabled": disabled, "deliveries": rows}),
                || {
                    let sink_rows = counts.iter().map(|c| {
                        let off = disabled.iter().find(|d| d.sink == c.sink);
                        [
                            c.sink.clone(),
                            c.pending.to_string(),
                            c.delivered.to_string(),
                            c.dead.to_string(),
                            off.map(|d| format!("since {} ({})", time(d.disabled_at), d.reason))
                                .unwrap_or_else(|| "-".into()),
                        ]
                    });
                    println!(
                        "{}\n",
                        table(
                            ["SINK", "PENDING", "DELIVERED", "DEAD", "DISABLED"],
                            sink_rows
                        )
                    );
                    if rows.is_empty() {
                        println!("no deliveries match");
                        return;
                    }
                    let rows = rows.iter().map(|r| {
                        [
                            r.id.to_string(),
                            r.sink.clone(),
                            r.state.clone(),
                            r.event_type.clone(),
                            or_dash(r.engagement_id.as_ref()),
                            r.attempts.to_string(),
                            or_dash(r.last_status),
                            or_dash(r.last_error.as_ref()),
                        ]
                    });
                    println!(
                        "{}",
                        table(
                            [
                                "ID",
                                "SINK",
                                "STATE",
                                "TYPE",
                                "ENGAGEMENT",
                                "ATTEMPTS",
                                "STATUS",
                                "LAST ERROR"
                            ],
                            rows
                        )
                    );
                },
            )
        }
        DeliveriesCommand::Show { id } => {
            let Some(row) = store.delivery(id).await? else {
                anyhow::bail!("no delivery {id}");
            };
            let attempts = store.delivery_attempts(id).await?;
            out.show(
                &serde_json::json!({"delivery": row, "attempts": attempts}),
                || {
                    println!("delivery {} to {} ({})", row.id, row.sink, row.state);
                    println!("  message:    {} {}", row.event_type, row.msg_id);
                    println!("  engagement: {}", or_dash(row.engagement_id.as_ref()));
                    println!("  created:    {}", time(row.created_at));
                    if let Some(at) = row.delivered_at {
                        println!("  delivered:  {}", time(at));
                    } else if row.state == "pending" {
                        println!("  next try:   {}", time(row.next_attempt_at));
                    }
                    if attempts.is_empty() {
                        println!("\nno attempts yet");
                        return;
                    }
                    let rows = attempts.iter().map(|a| {
                        [
                            a.attempt.to_string(),
                            time(a.started_at),
                            a.outcome.clone(),
                            or_dash(a.status),
                            a.duration_ms.to_string(),
                            or_dash(a.error.as_ref()),
                            or_dash(a.response.as_ref()),
                        ]
                    });
                    println!(
                        "\n{}",
                        table(
                            ["#", "STARTED", "OUTCOME", "STATUS", "MS", "ERROR", "RESPONSE"],
                            rows
                        )
                    );
                },
            )
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
                    from: sync::parse_time(&since, false).context("--since")?,
                },
                _ => anyhow::bail!("give --id N, or --sink S with --dead or --since T"),
            };
            if let Replay::Dead { sink } | Replay::Since { sink, .. } = &replay {
                known_sink(sink)?;
            }
            let n = store.replay_deliveries(&replay, store::now_ms()).await?;
            if n == 0 {
                match &replay {
                    Replay::One(id) => anyhow::bail!("nothing to replay: no delivery {id}"),
                    Replay::Dead { sink } => {
                        anyhow::bail!("nothing to replay: sink {sink:?} has no dead deliveries")
                    }
                    Replay::Since { sink, .. } => {
                        anyhow::bail!(
                            "nothing to replay: sink {sink:?} has no deliveries since then"
                        )
                    }
                }
            }
            out.show(&serde_json::json!({"queued": n}), || {
                println!("{n} delivery(ies) queued again; a running server sends them")
            })
        }
        DeliveriesCommand::Enable { sink } => {
            known_sink(&sink)?;
            if !store.enable_sink(&sink).await? {
                anyhow::bail!("sink {sink:?} is not disabled: nothing to do");
            }
            out.show(&serde_json::json!({"enabled": sink}), || {
                println!("sink {sink} enabled; its pending deliveries resume")
            })
        }
    }
}
