//! Media archive benchmark: N large recordings (default 4 of 1 GiB) archived from the simulator over loopback
//! by a real bridge server, into local disk and into the S3-compatible test server, against a baseline measured
//! in the same run: the same files fetched with plain reqwest at the same concurrency and streamed (a) into files
//! in the same directory (fsynced, like the archive's), (b) into the same bucket with object_store's
//! `WriteMultipart`, same part size and parts in flight. No hashing, no database in the baseline.
//!
//! Peak memory is the process's high-water mark (`VmHWM`), reset before each phase (`/proc/self/clear_refs`).
//! The simulator serving the files runs in this process too: the baseline's peak shows its share, the archive's
//! peak what the bridge adds. A second pass with small files (64 MiB) shows whether memory grows with file size.
//!
//!   cargo bench -p zcc-bridge --bench media
//!   source scripts/object-stores.sh && objstores_start && cargo bench -p zcc-bridge --bench media   # with S3
//!
//! Settings (environment): ZCC_BENCH_MEDIA_FILES (4), ZCC_BENCH_MEDIA_SIZES_MIB ("1024,64"),
//! ZCC_BENCH_MEDIA_CONCURRENCY (4: `media.concurrency`, and the baseline's), ZCC_BENCH_MEDIA_PART_MIB and
//! ZCC_BENCH_MEDIA_UPLOAD_CONCURRENCY (default: `media.part_size_mib`, `media.upload_concurrency` defaults),
//! ZCC_BENCH_MEDIA_TARGETS ("disk,s3"). S3 needs ZCC_TEST_S3_ENDPOINT (and ZCC_TEST_S3_BUCKET, default zcc-test).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use serde_json::Value;
use sha2::Digest;
use tokio::io::AsyncWriteExt;
use zcc_bridge::config::{Config, MediaConfig, Secret};
use zoom_sim::generator::{generate, GeneratorConfig};
use zoom_sim::{SimServer, SimServerConfig};

const MIB: u64 = 1 << 20;
const SECRET: &str = "bench-webhook-secret";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------------
// Process figures

/// A `/proc/self/status` value in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Gives freed heap back to the OS (glibc keeps it otherwise, and the next phase's peak would start from the
/// last phase's), then resets the high-water mark to the current RSS. Returns the RSS after the trim, KiB.
fn reset_peak() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it has no preconditions.
    unsafe {
        malloc_trim(0);
    }
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("  (could not reset VmHWM: {e}; peaks are since the start of the process)");
    }
    status_kib("VmRSS:")
}

/// CPU seconds used by this process (user + system).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// (busy, total) jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// What one phase measured.
#[derive(Debug, Clone)]
struct Phase {
    name: String,
    target: &'static str,
    baseline: bool,
    files: usize,
    size: u64,
    seconds: f64,
    rss_before_kib: u64,
    peak_kib: u64,
    cpu_seconds: f64,
    machine_busy: f64,
    note: String,
}

impl Phase {
    fn mb_per_s(&self) -> f64 {
        (self.files as u64 * self.size) as f64 / 1e6 / self.seconds
    }
}

/// Runs `f` as a measured phase: peak reset before, figures after.
struct Meter {
    rss_before: u64,
    cpu: f64,
    jiffies: (u64, u64),
}

impl Meter {
    fn start() -> Self {
        let rss_before = reset_peak();
        Self {
            rss_before,
            cpu: cpu_seconds(),
            jiffies: machine_jiffies(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        self,
        name: impl Into<String>,
        target: &'static str,
        baseline: bool,
        files: usize,
        size: u64,
        seconds: f64,
        note: String,
    ) -> Phase {
        let peak = status_kib("VmHWM:");
        let (busy, total) = machine_jiffies();
        let machine_busy = (busy - self.jiffies.0) as f64 / (total - self.jiffies.1).max(1) as f64;
        let phase = Phase {
            name: name.into(),
            target,
            baseline,
            files,
            size,
            seconds,
            rss_before_kib: self.rss_before,
            peak_kib: peak,
            cpu_seconds: cpu_seconds() - self.cpu,
            machine_busy,
            note,
        };
        eprintln!(
            "  {:<28} {:>7.2} s  {:>7.1} MB/s  peak RSS {:>6.1} MiB (from {:.1}; {} threads now)  CPU {:.1} s (machine {:.0}% busy){}",
            phase.name,
            phase.seconds,
            phase.mb_per_s(),
            mib(phase.peak_kib),
            mib(phase.rss_before_kib),
            status_kib("Threads:"),
            phase.cpu_seconds,
            phase.machine_busy * 100.0,
            if phase.note.is_empty() { String::new() } else { format!("  [{}]", phase.note) }
        );
        phase
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone)]
struct Settings {
    files: usize,
    concurrency: usize,
    part_mib: usize,
    upload_concurrency: usize,
    s3: Option<S3Target>,
    disk: bool,
}

#[derive(Debug, Clone)]
struct S3Target {
    endpoint: String,
    bucket: String,
}

impl S3Target {
    fn store(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let store = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_endpoint(&self.endpoint)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_allow_http(true)
            .build()
            .context("S3 client")?;
        Ok(Arc::new(store))
    }

    /// Deletes everything under `prefix` (the server keeps objects in memory or temp files).
    async fn clear(&self, prefix: &str) -> anyhow::Result<()> {
        let store = self.store()?;
        let prefix = ObjectPath::from(prefix);
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        for object in objects {
            store.delete(&object.location).await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// The simulator and its files

struct Sim {
    server: SimServer,
    config: SimServerConfig,
    /// The first N `recording_completed` webhooks, transcript URL removed (exactly one archive job each).
    webhooks: Vec<Value>,
    urls: Vec<String>,
}

async fn start_sim(files: usize, size: u64) -> anyhow::Result<Sim> {
    let bound = SimServer::bind(([127, 0, 0, 1], 0).into()).await?;
    let scenario = generate(&GeneratorConfig {
        seed: 23,
        engagements: (files * 4).max(50),
        api_base: format!("{}/v2", bound.base_url()),
        ..Default::default()
    });
    let mut webhooks = Vec::new();
    let mut urls = Vec::new();
    for event in &scenario.events {
        if webhooks.len() == files {
            break;
        }
        if event.event() != "contact_center.recording_completed" {
            continue;
        }
        let mut body = event.body.clone();
        let object = body
            .pointer_mut("/payload/object")
            .and_then(Value::as_object_mut)
            .context("webhook object")?;
        // The transcript would be a second (tiny) job; only the recordings are measured.
        object.remove("transcript_url");
        let url = object
            .get("download_url")
            .and_then(Value::as_str)
            .context("download_url")?
            .to_string();
        if urls.contains(&url) {
            continue;
        }
        urls.push(url);
        webhooks.push(body);
    }
    anyhow::ensure!(
        webhooks.len() == files,
        "the scenario has only {} recordings",
        webhooks.len()
    );
    let config = SimServerConfig {
        media_bytes: size,
        ..Default::default()
    };
    let server = bound.serve(config.clone(), &scenario);
    Ok(Sim {
        server,
        config,
        webhooks,
        urls,
    })
}

/// An access token from the simulator's S2S OAuth endpoint.
async fn access_token(http: &reqwest::Client, sim: &Sim) -> anyhow::Result<String> {
    let response = http
        .post(format!(
            "{}/oauth/token?grant_type=account_credentials&account_id={}",
            sim.server.base_url(),
            sim.config.account_id
        ))
        .basic_auth(&sim.config.client_id, Some(&sim.config.client_secret))
        .send()
        .await?
        .error_for_status()?;
    let body: Value = response.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access_token")
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<reqwest::Response> {
    Ok(http
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?)
}

// ---------------------------------------------------------------------------------------------------------------------
// Baselines

/// GET → tokio file in `dir`, all files at once (at most `concurrency`); then every file is fsynced. Returns
/// (seconds until every byte was written, seconds including the fsyncs).
async fn baseline_disk(
    http: &reqwest::Client,
    sim: &Sim,
    token: &str,
    dir: &std::path::Path,
    size: u64,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let copied: Vec<(tokio::fs::File, Duration)> =
        futures_util::stream::iter(sim.urls.iter().enumerate())
            .map(|(i, url)| async move {
                let mut response = get(http, url, token).await?;
                let mut file =
                    tokio::fs::File::create(dir.join(format!("baseline-{i}.bin"))).await?;
                let mut bytes = 0u64;
                while let Some(chunk) = response.chunk().await? {
                    bytes += chunk.len() as u64;
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                anyhow::ensure!(bytes == size, "baseline got {bytes} of {size} bytes");
                anyhow::Ok((file, started.elapsed()))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    let copy = copied.iter().map(|(_, t)| *t).max().unwrap_or_default();
    futures_util::future::try_join_all(
        copied
            .into_iter()
            .map(|(file, _)| async move { file.sync_all().await }),
    )
    .await?;
    // The archive also makes the rename durable; one directory fsync is noise next to the files'.
    std::fs::File::open(dir)?.sync_all()?;
    Ok((copy.as_secs_f64(), started.elapsed().as_secs_f64()))
}

/// GET → `WriteMultipart` into the bucket, same part size and parts in flight as the archive.
#[allow(clippy::too_many_arguments)]
async fn baseline_s3(
    http: &reqwest::Client,
    sim: &Sim,
    token: &str,
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    size: u64,
    settings: &Settings,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let part = settings.part_mib * MIB as usize;
    let in_flight = settings.upload_concurrency;
    futures_util::stream::iter(sim.urls.iter().enumerate())
        .map(|(i, url)| {
            let store = store.clone();
            async move {
                let mut response = get(http, url, token).await?;
                let path = ObjectPath::from(format!("{prefix}/baseline-{i}.bin"));
                let upload = store.put_multipart(&path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
                let mut bytes = 0u64;
                while let Some(chunk) = response.chunk().await? {
                    bytes += chunk.len() as u64;
                    writer.wait_for_capacity(in_flight).await?;
                    writer.put(chunk);
                }
                writer.finish().await?;
                anyhow::ensure!(bytes == size, "baseline got {bytes} of {size} bytes");
                anyhow::Ok(())
            }
        })
        .buffer_unordered(settings.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------------------------------
// The bridge

/// What an archive run measured.
struct ArchiveRun {
    /// First job created → last file archived (both from the rows).
    seconds: f64,
    /// First download request seen by the simulator → last file archived.
    transfer_seconds: f64,
    /// Webhooks posted → first job created.
    known_after: f64,
}

async fn bridge_config(
    sim: &Sim,
    db_dir: &std::path::Path,
    media: String,
    s3: Option<&S3Target>,
    settings: &Settings,
) -> anyhow::Result<Config> {
    let mut config = Config::load(None)?;
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.storage.database =
        Secret::new(format!("sqlite://{}", db_dir.join("bench.db").display()));
    config.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    config.admin.token = Some(Secret::new(ADMIN_TOKEN));
    config.zoom.account_id = Some(sim.config.account_id.clone());
    config.zoom.client_id = Some(sim.config.client_id.clone());
    config.zoom.client_secret = Some(Secret::new(sim.config.client_secret.clone()));
    config.zoom.api_base = format!("{}/v2", sim.server.base_url());
    config.zoom.oauth_base = sim.server.base_url();
    config.reconcile.enabled = false;
    config.media.enabled = true;
    config.media.concurrency = settings.concurrency;
    config.media.part_size_mib = settings.part_mib;
    config.media.upload_concurrency = settings.upload_concurrency;
    config.media.link_secret = Some(Secret::new("bench-link-secret-0123456789"));
    config.storage.media = media;
    if let Some(s3) = s3 {
        let c = &mut config.storage.s3;
        c.endpoint = Some(s3.endpoint.clone());
        c.region = Some("us-east-1".into());
        c.access_key_id = Some("test".into());
        c.secret_access_key = Some(Secret::new("test"));
        c.allow_http = true;
    }
    config.validate()?;
    Ok(config)
}

/// Posts the N webhooks and waits until the N files are archived.
async fn archive(
    http: &reqwest::Client,
    sim: &Sim,
    config: Config,
    size: u64,
) -> anyhow::Result<ArchiveRun> {
    let files = sim.webhooks.len();
    let server = zcc_bridge::start(config).await?;
    let base = format!("http://{}", server.addr());
    let downloads_before = sim.server.stats().downloads;
    let posted = now_ms();
    futures_util::future::try_join_all(sim.webhooks.iter().map(|body| {
        let body = serde_json::to_vec(body).expect("json");
        let base = &base;
        async move {
            let ts = now_ms() / 1000;
            let response = http
                .post(format!("{base}/webhooks/zoom"))
                .header("content-type", "application/json; charset=utf-8")
                .header("x-zm-request-timestamp", ts.to_string())
                .header(
                    "x-zm-signature",
                    zoom::webhook::sign(SECRET.as_bytes(), ts, &body),
                )
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "webhook: {}",
                response.status()
            );
            anyhow::Ok(())
        }
    }))
    .await?;
    // Poll: the simulator's download counter often (in-process, cheap), the archive's stats every 50 ms.
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first_download: Option<i64> = None;
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    loop {
        if first_download.is_none() && sim.server.stats().downloads > downloads_before {
            first_download = Some(now_ms());
        }
        if last_poll.elapsed() >= Duration::from_millis(50) {
            last_poll = Instant::now();
            let stats: Value = http
                .get(format!("{base}/api/v1/media/stats"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await?
                .json()
                .await?;
            if stats["dead"].as_i64().unwrap_or(0) > 0 {
                anyhow::bail!("archive jobs dead-lettered: {stats}");
            }
            let total =
                stats["pending"].as_i64().unwrap_or(0) + stats["archived"].as_i64().unwrap_or(0);
            anyhow::ensure!(
                total as usize <= files,
                "more jobs than recordings: {stats}"
            );
            if stats["archived"].as_i64() == Some(files as i64) {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the files were not archived in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let list: Value = http
        .get(format!("{base}/api/v1/media?limit=1000"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let rows = list["media"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(rows.len() == files, "{} rows for {files} files", rows.len());
    let (mut created, mut archived) = (i64::MAX, 0i64);
    for row in &rows {
        anyhow::ensure!(
            row["bytes"].as_u64() == Some(size),
            "archived {} bytes of {size}: {row}",
            row["bytes"]
        );
        created = created.min(row["created_at"].as_i64().context("created_at")?);
        let at = row["archived_at"]
            .as_i64()
            .or_else(|| row["media"]["archived_at"].as_str().and_then(parse_iso))
            .context("archived_at")?;
        archived = archived.max(at);
    }
    let attempts: i64 = rows.iter().filter_map(|r| r["attempts"].as_i64()).sum();
    let downloads = sim.server.stats().downloads - downloads_before;
    if attempts > 0 || downloads != files as u64 {
        eprintln!(
            "  note: {attempts} failed attempts, {downloads} download requests for {files} files"
        );
    }
    server.shutdown().await?;
    let first_download = first_download.unwrap_or(created);
    Ok(ArchiveRun {
        seconds: (archived - created) as f64 / 1000.0,
        transfer_seconds: (archived - first_download) as f64 / 1000.0,
        known_after: (created - posted) as f64 / 1000.0,
    })
}

fn parse_iso(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_millis())
}

// ---------------------------------------------------------------------------------------------------------------------

/// Single-core SHA-256 speed of this machine (the archive hashes every byte).
fn sha256_mb_per_s() -> f64 {
    let buffer = vec![0x5au8; 64 * MIB as usize];
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_millis(500) || rounds < 2 {
        std::hint::black_box(sha2::Sha256::digest(&buffer));
        rounds += 1;
    }
    (rounds * buffer.len()) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

async fn run_size(settings: &Settings, size: u64, phases: &mut Vec<Phase>) -> anyhow::Result<()> {
    let files = settings.files;
    let sim = start_sim(files, size).await?;
    let http = reqwest::Client::new();
    let token = access_token(&http, &sim).await?;
    let label = |what: &str| format!("{what}, {files} x {} MiB", size / MIB);

    if settings.disk {
        let work = tempfile::tempdir()?;
        let meter = Meter::start();
        let (copy, total) =
            baseline_disk(&http, &sim, &token, work.path(), size, settings.concurrency).await?;
        let note = format!(
            "copy {:.0} MB/s before fsync",
            (files as u64 * size) as f64 / 1e6 / copy
        );
        phases.push(meter.finish(
            label("baseline: GET to file"),
            "disk",
            true,
            files,
            size,
            total,
            note,
        ));
        drop(work);

        let work = tempfile::tempdir()?;
        let media = work.path().join("media");
        let config = bridge_config(
            &sim,
            work.path(),
            format!("file://{}", media.display()),
            None,
            settings,
        )
        .await?;
        let meter = Meter::start();
        let run = archive(&http, &sim, config, size).await?;
        let note = format!(
            "{:.0} MB/s from first download; jobs known {:.0} ms after the webhooks",
            (files as u64 * size) as f64 / 1e6 / run.transfer_seconds,
            run.known_after * 1000.0
        );
        phases.push(meter.finish(
            label("archive to disk"),
            "disk",
            false,
            files,
            size,
            run.seconds,
            note,
        ));
        drop(work);
    }

    if let Some(s3) = &settings.s3 {
        let prefix = format!("bench-media-{}-{}", std::process::id(), now_ms());
        let store = s3.store()?;
        let meter = Meter::start();
        let seconds = baseline_s3(
            &http,
            &sim,
            &token,
            store,
            &format!("{prefix}/baseline"),
            size,
            settings,
        )
        .await?;
        phases.push(meter.finish(
            label("baseline: GET to S3 multipart"),
            "s3",
            true,
            files,
            size,
            seconds,
            String::new(),
        ));
        s3.clear(&format!("{prefix}/baseline")).await?;

        let work = tempfile::tempdir()?;
        let media = format!("s3://{}/{prefix}/archive", s3.bucket);
        let config = bridge_config(&sim, work.path(), media, Some(s3), settings).await?;
        let meter = Meter::start();
        let run = archive(&http, &sim, config, size).await?;
        let note = format!(
            "{:.0} MB/s from first download; jobs known {:.0} ms after the webhooks",
            (files as u64 * size) as f64 / 1e6 / run.transfer_seconds,
            run.known_after * 1000.0
        );
        phases.push(meter.finish(
            label("archive to S3"),
            "s3",
            false,
            files,
            size,
            run.seconds,
            note,
        ));
        s3.clear(&format!("{prefix}/archive")).await?;
    }
    sim.server.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let defaults = MediaConfig::default();
    let targets = var("ZCC_BENCH_MEDIA_TARGETS").unwrap_or_else(|| "disk,s3".into());
    let wants = |t: &str| targets.split(',').any(|v| v.trim() == t);
    let s3 = match (wants("s3"), var("ZCC_TEST_S3_ENDPOINT")) {
        (true, Some(endpoint)) => Some(S3Target {
            endpoint,
            bucket: var("ZCC_TEST_S3_BUCKET").unwrap_or_else(|| "zcc-test".into()),
        }),
        (true, None) => {
            println!(
                "S3 SKIPPED: ZCC_TEST_S3_ENDPOINT is not set (source scripts/object-stores.sh && objstores_start)"
            );
            None
        }
        (false, _) => None,
    };
    let settings = Settings {
        files: env_or("ZCC_BENCH_MEDIA_FILES", 4usize).max(1),
        concurrency: env_or("ZCC_BENCH_MEDIA_CONCURRENCY", 4usize).max(1),
        part_mib: env_or("ZCC_BENCH_MEDIA_PART_MIB", defaults.part_size_mib),
        upload_concurrency: env_or(
            "ZCC_BENCH_MEDIA_UPLOAD_CONCURRENCY",
            defaults.upload_concurrency,
        )
        .max(1),
        s3,
        disk: wants("disk"),
    };
    let sizes: Vec<u64> = var("ZCC_BENCH_MEDIA_SIZES_MIB")
        .unwrap_or_else(|| "1024,64".into())
        .split(',')
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .map(|m| m * MIB)
        .collect();
    println!(
        "media archive benchmark: {} files per pass, sizes {:?} MiB, media.concurrency {}, part {} MiB, {} part(s) in flight{}; {} cores",
        settings.files,
        sizes.iter().map(|s| s / MIB).collect::<Vec<_>>(),
        settings.concurrency,
        settings.part_mib,
        settings.upload_concurrency,
        settings
            .s3
            .as_ref()
            .map(|s| format!("; S3 at {} bucket {}", s.endpoint, s.bucket))
            .unwrap_or_default(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    );
    let sha = sha256_mb_per_s();
    println!("SHA-256 on one core: {sha:.0} MB/s");

    let started = Instant::now();
    let mut phases = Vec::new();
    for &size in &sizes {
        run_size(&settings, size, &mut phases).await?;
    }

    println!();
    println!("| phase | files | size MiB | seconds | MB/s | ratio to baseline | peak RSS MiB | RSS before MiB | peak - before MiB | CPU s | machine busy |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for phase in &phases {
        let baseline = phases.iter().find(|b| {
            b.baseline && b.target == phase.target && b.size == phase.size && b.files == phase.files
        });
        let ratio = match (phase.baseline, baseline) {
            (true, _) => "1.00x".to_string(),
            (false, Some(b)) => format!("{:.2}x", phase.mb_per_s() / b.mb_per_s()),
            (false, None) => "-".to_string(),
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0}% |",
            phase.name,
            phase.files,
            phase.size / MIB,
            phase.seconds,
            phase.mb_per_s(),
            ratio,
            mib(phase.peak_kib),
            mib(phase.rss_before_kib),
            mib(phase.peak_kib.saturating_sub(phase.rss_before_kib)),
            phase.cpu_seconds,
            phase.machine_busy * 100.0
        );
    }
    println!();
    for phase in phases.iter().filter(|p| !p.note.is_empty()) {
        println!("- {}: {}", phase.name, phase.note);
    }
    println!(
        "MB = 10^6 bytes. Peak RSS: VmHWM of the whole process (simulator, bridge, clients), reset before each phase. Total {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
