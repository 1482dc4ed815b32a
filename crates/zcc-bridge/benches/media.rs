//! Media archive benchmark: N large recordings (default 4 of 1 GiB) archived from the simulator over loopback
//! by a real bridge server (SQLite, `media.concurrency` 4), into local disk and into the S3-compatible test
//! server, against a baseline measured in the same run: the same files fetched with plain reqwest at the same
//! concurrency and streamed (a) into files in a temp dir, fsynced (the archive fsyncs too), (b) into the same
//! bucket with object_store's `WriteMultipart`, same part size and parts in flight. No hashing, no database in the
//! baseline. A reference phase (GET and discard) shows what the simulator and loopback HTTP alone cost.
//!
//! The archive is timed from the first job's creation to the last file's `archived_at` (the jobs' rows), so it
//! includes the archiver picking the jobs up; the figure from the first download request is printed too.
//!
//! Every phase runs in a fresh process (this binary again), with the simulator in that process: peak memory is
//! the process's high-water mark (`VmHWM`, reset once the servers are up), so the baseline's peak shows the
//! simulator's and the transfer's share and the archive's what the bridge adds. A second pass with small files
//! (64 MiB) shows whether memory grows with file size. Rounds alternate the order of baseline and archive.
//!
//!   cargo bench -p zcc-bridge --bench media                       # disk only without an S3 endpoint
//!   source scripts/object-stores.sh && objstores_start && cargo bench -p zcc-bridge --bench media; objstores_stop
//!
//! Settings (environment): ZCC_BENCH_MEDIA_FILES (4), ZCC_BENCH_MEDIA_SIZES_MIB ("1024,64"),
//! ZCC_BENCH_MEDIA_ROUNDS (2), ZCC_BENCH_MEDIA_CONCURRENCY (4: `media.concurrency`, and the baseline's),
//! ZCC_BENCH_MEDIA_PART_MIB and ZCC_BENCH_MEDIA_UPLOAD_CONCURRENCY (default: the `media.part_size_mib` and
//! `media.upload_concurrency` defaults; both the archive and the S3 baseline use them), ZCC_BENCH_MEDIA_TARGETS
//! ("disk,s3"), ZCC_BENCH_MEDIA_S3_BASELINE_COPY=1 (the S3 baseline copies chunks into its parts instead of
//! keeping the response's buffers). S3 needs ZCC_TEST_S3_ENDPOINT (ZCC_TEST_S3_BUCKET, default zcc-test), as
//! objstores_start exports.

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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Phase {
    name: String,
    /// `disk`, `s3`, or `reference` (no store).
    target: String,
    baseline: bool,
    files: usize,
    size: u64,
    seconds: f64,
    rss_before_kib: u64,
    peak_kib: u64,
    cpu_seconds: f64,
    machine_busy: f64,
    /// A second MB/s figure: archive phases from the first download request (without the queue pickup),
    /// the disk baseline until the last byte was written (before the fsyncs).
    alt_mb_s: Option<f64>,
    /// Archive phases: webhooks posted → first job created, ms.
    known_after_ms: Option<f64>,
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
        target: &str,
        baseline: bool,
        files: usize,
        size: u64,
        seconds: f64,
        alt_mb_s: Option<f64>,
        known_after_ms: Option<f64>,
    ) -> Phase {
        let peak = status_kib("VmHWM:");
        let (busy, total) = machine_jiffies();
        let machine_busy = (busy - self.jiffies.0) as f64 / (total - self.jiffies.1).max(1) as f64;
        let phase = Phase {
            name: name.into(),
            target: target.to_string(),
            baseline,
            files,
            size,
            seconds,
            rss_before_kib: self.rss_before,
            peak_kib: peak,
            cpu_seconds: cpu_seconds() - self.cpu,
            machine_busy,
            alt_mb_s,
            known_after_ms,
        };
        eprintln!(
            "  {:<44} {:>6.2} s {:>7.1} MB/s  peak RSS {:>6.1} MiB (from {:.1})  CPU {:.1} s (machine {:.0}% busy){}",
            phase.name,
            phase.seconds,
            phase.mb_per_s(),
            mib(phase.peak_kib),
            mib(phase.rss_before_kib),
            phase.cpu_seconds,
            phase.machine_busy * 100.0,
            phase.alt_mb_s.map(|v| format!("  [{v:.0} MB/s]")).unwrap_or_default()
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
    /// The S3 baseline copies each chunk into the part buffer (`WriteMultipart::write`) instead of keeping the
    /// response's buffers (`put`, as the archive does).
    s3_baseline_copy: bool,
    rounds: usize,
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
        // Zoom's `recording_completed` carries no download URL (the bridge fetches the engagement's recordings over
        // REST when it arrives). The bench measures the archiver alone, so it adds the URL Zoom's REST listing gives
        // for the recording, and no REST round trip is in the figures.
        let channel = object
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("voice")
            .to_string();
        let id = object
            .get("recording_id")
            .and_then(Value::as_str)
            .context("recording_id")?
            .to_string();
        let url = zoom_sim::urls::recording_download(&scenario.api_base, &id, &channel);
        object.insert("download_url".into(), Value::String(url.clone()));
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
/// (seconds until every byte was written, seconds including the fsyncs). With `hash`, every chunk also goes
/// through SHA-256 on its way (as in the archive), to separate the hashing's cost from the rest.
#[allow(clippy::too_many_arguments)]
async fn baseline_disk(
    http: &reqwest::Client,
    sim: &Sim,
    token: &str,
    dir: &std::path::Path,
    size: u64,
    concurrency: usize,
    hash: bool,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let copied: Vec<(tokio::fs::File, Duration)> =
        futures_util::stream::iter(sim.urls.iter().enumerate())
            .map(|(i, url)| async move {
                let mut response = get(http, url, token).await?;
                let mut file =
                    tokio::fs::File::create(dir.join(format!("baseline-{i}.bin"))).await?;
                let mut bytes = 0u64;
                let mut hasher = hash.then(sha2::Sha256::new);
                while let Some(chunk) = response.chunk().await? {
                    bytes += chunk.len() as u64;
                    if let Some(hasher) = hasher.as_mut() {
                        hasher.update(&chunk);
                    }
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                std::hint::black_box(hasher.map(|h| h.finalize()));
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

/// GET → `WriteMultipart` into the bucket, same part size and parts in flight as the archive; each chunk is
/// handed over as it came (`put`, as the archive does), or copied into the part (`write`) with
/// ZCC_BENCH_MEDIA_S3_BASELINE_COPY=1.
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
    let copy_chunks = settings.s3_baseline_copy;
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
                    if copy_chunks {
                        writer.write(&chunk);
                    } else {
                        writer.put(chunk);
                    }
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
        created = created.min(
            row["created_at"]
                .as_str()
                .and_then(parse_iso)
                .context("created_at")?,
        );
        let at = row["archived_at"]
            .as_str()
            .and_then(parse_iso)
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

/// GET and drop: what the simulator and loopback HTTP alone cost (no store).
async fn reference_discard(
    http: &reqwest::Client,
    sim: &Sim,
    token: &str,
    size: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    futures_util::stream::iter(sim.urls.iter())
        .map(|url| async move {
            let mut response = get(http, url, token).await?;
            let mut bytes = 0u64;
            while let Some(chunk) = response.chunk().await? {
                bytes += chunk.len() as u64;
            }
            anyhow::ensure!(bytes == size, "got {bytes} of {size} bytes");
            anyhow::Ok(())
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

fn transfer_mb_s(files: usize, size: u64, run: &ArchiveRun) -> Option<f64> {
    Some((files as u64 * size) as f64 / 1e6 / run.transfer_seconds)
}

async fn disk_baseline_phase(
    settings: &Settings,
    sim: &Sim,
    http: &reqwest::Client,
    token: &str,
    size: u64,
    hash: bool,
) -> anyhow::Result<Phase> {
    let files = settings.files;
    let work = tempfile::tempdir()?;
    let meter = Meter::start();
    let (copy, total) = baseline_disk(
        http,
        sim,
        token,
        work.path(),
        size,
        settings.concurrency,
        hash,
    )
    .await?;
    let copy_mb_s = (files as u64 * size) as f64 / 1e6 / copy;
    let name = if hash {
        "baseline + SHA-256: GET to file + fsync"
    } else {
        "baseline: GET to file + fsync"
    };
    Ok(meter.finish(
        label(name, files, size),
        "disk",
        !hash,
        files,
        size,
        total,
        Some(copy_mb_s),
        None,
    ))
}

async fn disk_archive_phase(
    settings: &Settings,
    sim: &Sim,
    http: &reqwest::Client,
    size: u64,
) -> anyhow::Result<Phase> {
    let files = settings.files;
    let work = tempfile::tempdir()?;
    let media = work.path().join("media");
    let config = bridge_config(
        sim,
        work.path(),
        format!("file://{}", media.display()),
        None,
        settings,
    )
    .await?;
    let meter = Meter::start();
    let run = archive(http, sim, config, size).await?;
    let alt = transfer_mb_s(files, size, &run);
    Ok(meter.finish(
        label("archive to disk", files, size),
        "disk",
        false,
        files,
        size,
        run.seconds,
        alt,
        Some(run.known_after * 1000.0),
    ))
}

async fn s3_baseline_phase(
    settings: &Settings,
    s3: &S3Target,
    sim: &Sim,
    http: &reqwest::Client,
    token: &str,
    size: u64,
) -> anyhow::Result<Phase> {
    let files = settings.files;
    let prefix = format!("bench-media-{}-{}/baseline", std::process::id(), now_ms());
    let store = s3.store()?;
    let meter = Meter::start();
    let seconds = baseline_s3(http, sim, token, store, &prefix, size, settings).await?;
    let phase = meter.finish(
        label("baseline: GET to S3 multipart", files, size),
        "s3",
        true,
        files,
        size,
        seconds,
        None,
        None,
    );
    s3.clear(&prefix).await?;
    Ok(phase)
}

async fn s3_archive_phase(
    settings: &Settings,
    s3: &S3Target,
    sim: &Sim,
    http: &reqwest::Client,
    size: u64,
) -> anyhow::Result<Phase> {
    let files = settings.files;
    let prefix = format!("bench-media-{}-{}/archive", std::process::id(), now_ms());
    let work = tempfile::tempdir()?;
    let config = bridge_config(
        sim,
        work.path(),
        format!("s3://{}/{prefix}", s3.bucket),
        Some(s3),
        settings,
    )
    .await?;
    let meter = Meter::start();
    let run = archive(http, sim, config, size).await?;
    let alt = transfer_mb_s(files, size, &run);
    let phase = meter.finish(
        label("archive to S3", files, size),
        "s3",
        false,
        files,
        size,
        run.seconds,
        alt,
        Some(run.known_after * 1000.0),
    );
    s3.clear(&prefix).await?;
    Ok(phase)
}

fn label(what: &str, files: usize, size: u64) -> String {
    format!("{what}, {files} x {} MiB", size / MIB)
}

/// The phases a pass is made of; each runs in a process of its own.
const KINDS: [&str; 6] = [
    "reference",
    "disk-baseline",
    "disk-baseline-sha256",
    "disk-archive",
    "s3-baseline",
    "s3-archive",
];

/// Runs one phase (in a child process): its own simulator, then the measurement.
async fn run_phase(settings: &Settings, kind: &str, size: u64) -> anyhow::Result<Phase> {
    let files = settings.files;
    let sim = start_sim(files, size).await?;
    let http = reqwest::Client::new();
    let token = access_token(&http, &sim).await?;
    let s3 = || settings.s3.as_ref().context("no S3 endpoint");
    let phase = match kind {
        "reference" => {
            let meter = Meter::start();
            let seconds =
                reference_discard(&http, &sim, &token, size, settings.concurrency).await?;
            meter.finish(
                label("reference: GET and discard", files, size),
                "reference",
                false,
                files,
                size,
                seconds,
                None,
                None,
            )
        }
        "disk-baseline" => disk_baseline_phase(settings, &sim, &http, &token, size, false).await?,
        "disk-baseline-sha256" => {
            disk_baseline_phase(settings, &sim, &http, &token, size, true).await?
        }
        "disk-archive" => disk_archive_phase(settings, &sim, &http, size).await?,
        "s3-baseline" => s3_baseline_phase(settings, s3()?, &sim, &http, &token, size).await?,
        "s3-archive" => s3_archive_phase(settings, s3()?, &sim, &http, size).await?,
        other => anyhow::bail!("unknown phase {other:?}"),
    };
    sim.server.shutdown().await;
    Ok(phase)
}

/// Runs one phase in a fresh process (this binary again), so that every phase's peak memory starts from the
/// same clean process.
fn run_phase_in_child(kind: &str, size: u64) -> anyhow::Result<Phase> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env(CHILD_ENV, kind)
        .env("ZCC_BENCH_MEDIA_SIZES_MIB", (size / MIB).to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running a benchmark phase")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "phase {kind} ({} MiB) failed: {}\n{stdout}",
        size / MIB,
        output.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(PHASE_LINE))
        .context("the phase printed no result")?;
    Ok(serde_json::from_str(line)?)
}

const CHILD_ENV: &str = "ZCC_BENCH_MEDIA_CHILD";
const PHASE_LINE: &str = "@@phase ";

/// Phases of the same name across rounds, summarised: mean time (MB/s from it), highest peak.
struct Summary<'a> {
    phases: Vec<&'a Phase>,
}

impl Summary<'_> {
    fn first(&self) -> &Phase {
        self.phases[0]
    }
    fn seconds(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum::<f64>() / self.phases.len() as f64
    }
    fn mb_per_s(&self) -> f64 {
        let p = self.first();
        (p.files as u64 * p.size) as f64 / 1e6 / self.seconds()
    }
    fn rounds(&self) -> String {
        self.phases
            .iter()
            .map(|p| format!("{:.0}", p.mb_per_s()))
            .collect::<Vec<_>>()
            .join(" / ")
    }
    fn peak(&self) -> &Phase {
        self.phases
            .iter()
            .max_by_key(|p| p.peak_kib)
            .copied()
            .unwrap_or(self.phases[0])
    }
    fn growth_kib(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| p.peak_kib.saturating_sub(p.rss_before_kib))
            .max()
            .unwrap_or(0)
    }
    fn cpu(&self) -> f64 {
        self.phases.iter().map(|p| p.cpu_seconds).sum::<f64>() / self.phases.len() as f64
    }
    fn busy(&self) -> f64 {
        self.phases.iter().map(|p| p.machine_busy).sum::<f64>() / self.phases.len() as f64
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let child = var(CHILD_ENV);
    let defaults = MediaConfig::default();
    let targets = var("ZCC_BENCH_MEDIA_TARGETS").unwrap_or_else(|| "disk,s3".into());
    let wants = |t: &str| targets.split(',').any(|v| v.trim() == t);
    let s3 = match (wants("s3"), var("ZCC_TEST_S3_ENDPOINT")) {
        (true, Some(endpoint)) => Some(S3Target {
            endpoint,
            bucket: var("ZCC_TEST_S3_BUCKET").unwrap_or_else(|| "zcc-test".into()),
        }),
        (true, None) => {
            if child.is_none() {
                println!(
                    "S3 SKIPPED: ZCC_TEST_S3_ENDPOINT is not set (source scripts/object-stores.sh && objstores_start)"
                );
            }
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
        rounds: env_or("ZCC_BENCH_MEDIA_ROUNDS", 2usize).max(1),
        s3_baseline_copy: var("ZCC_BENCH_MEDIA_S3_BASELINE_COPY").is_some_and(|v| v == "1"),
        s3,
        disk: wants("disk"),
    };
    let sizes: Vec<u64> = var("ZCC_BENCH_MEDIA_SIZES_MIB")
        .unwrap_or_else(|| "1024,64".into())
        .split(',')
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .filter(|&m| m > 0)
        .map(|m| m * MIB)
        .collect();
    anyhow::ensure!(!sizes.is_empty(), "ZCC_BENCH_MEDIA_SIZES_MIB names no size");

    if let Some(kind) = &child {
        let phase = run_phase(&settings, kind, sizes[0]).await?;
        println!("{PHASE_LINE}{}", serde_json::to_string(&phase)?);
        return Ok(());
    }

    println!(
        "media archive benchmark: {} files per pass, sizes {:?} MiB, {} round(s) (each phase in a fresh process), media.concurrency {}, part {} MiB, {} part(s) in flight{}; {} cores",
        settings.files,
        sizes.iter().map(|s| s / MIB).collect::<Vec<_>>(),
        settings.rounds,
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
        for round in 0..settings.rounds {
            eprintln!(
                "{} MiB files, round {} of {}:",
                size / MIB,
                round + 1,
                settings.rounds
            );
            // Baseline and archive alternate in order between rounds.
            let mut order: Vec<&str> = vec!["reference"];
            for target in ["disk", "s3"] {
                let wanted = match target {
                    "disk" => settings.disk,
                    _ => settings.s3.is_some(),
                };
                if !wanted {
                    continue;
                }
                let (baseline, archive) = match target {
                    "disk" => ("disk-baseline", "disk-archive"),
                    _ => ("s3-baseline", "s3-archive"),
                };
                // On disk, a baseline that also hashes (between the two) shows what SHA-256 costs here.
                let middle = (target == "disk").then_some("disk-baseline-sha256");
                if round % 2 == 0 {
                    order.push(baseline);
                    order.extend(middle);
                    order.push(archive);
                } else {
                    order.push(archive);
                    order.extend(middle);
                    order.push(baseline);
                }
            }
            debug_assert!(order.iter().all(|k| KINDS.contains(k)));
            for kind in order {
                phases.push(run_phase_in_child(kind, size)?);
            }
        }
    }

    // Phases of the same name, in first-seen order.
    let mut names: Vec<&str> = Vec::new();
    for phase in &phases {
        if !names.contains(&phase.name.as_str()) {
            names.push(&phase.name);
        }
    }
    let summaries: Vec<Summary> = names
        .iter()
        .map(|name| Summary {
            phases: phases.iter().filter(|p| p.name == *name).collect(),
        })
        .collect();
    // Baselines first within each size and target, then the archive, then the reference.
    println!();
    println!("| phase | seconds | MB/s | per round | ratio to baseline | peak RSS MiB | peak - RSS before, MiB | CPU s | machine busy |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &summaries {
        let p = s.first();
        let baseline = summaries.iter().find(|b| {
            b.first().baseline && b.first().target == p.target && b.first().size == p.size
        });
        let ratio = match (p.baseline, baseline, p.target.as_str()) {
            (true, _, _) => "1.00x".to_string(),
            (false, _, "reference") => "-".to_string(),
            (false, Some(b), _) => format!("{:.2}x", s.mb_per_s() / b.mb_per_s()),
            (false, None, _) => "-".to_string(),
        };
        println!(
            "| {} | {:.2} | {:.0} | {} | {} | {:.0} | {:.0} | {:.1} | {:.0}% |",
            p.name,
            s.seconds(),
            s.mb_per_s(),
            s.rounds(),
            ratio,
            mib(s.peak().peak_kib),
            mib(s.growth_kib()),
            s.cpu(),
            s.busy() * 100.0
        );
    }
    println!();
    for s in &summaries {
        let p = s.first();
        let alts: Vec<f64> = s.phases.iter().filter_map(|p| p.alt_mb_s).collect();
        if alts.is_empty() {
            continue;
        }
        let per_round = alts
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" / ");
        let mean = alts.iter().sum::<f64>() / alts.len() as f64;
        if p.name.starts_with("baseline") {
            println!(
                "- {}: {per_round} MB/s until the last byte was written (before the fsyncs)",
                p.name
            );
            continue;
        }
        let baseline = summaries.iter().find(|b| {
            b.first().baseline && b.first().target == p.target && b.first().size == p.size
        });
        let known: Vec<String> = s
            .phases
            .iter()
            .filter_map(|p| p.known_after_ms)
            .map(|v| format!("{v:.0}"))
            .collect();
        println!(
            "- {}: from the first download request (without the archiver picking the jobs up) {per_round} MB/s{}; jobs created {} ms after the webhooks were posted",
            p.name,
            baseline
                .map(|b| format!(", {:.2}x the baseline", mean / b.mb_per_s()))
                .unwrap_or_default(),
            known.join(" / ")
        );
    }
    println!(
        "MB = 10^6 bytes; seconds and MB/s: mean over rounds. Peak RSS: VmHWM of the whole process (simulator, bridge, clients), each phase in a fresh process; highest over rounds. Total {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
