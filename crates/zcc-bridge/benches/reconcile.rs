//! Reconciliation benchmark: one window of N engagements (default 100,000) reconciled against the simulator at
//! its default Medium limit (20 requests/s).
//!
//! The floor is what the rate limit allows: requests made / 20 per second. In the same run a baseline walks the
//! same lists with a bare client under the same budget (fetch and decode only, no merge), so the report separates
//! the rate limit's cost from ours. Memory is sampled during the run (resident set size of this process).
//!
//!   cargo bench -p zcc-bridge --bench reconcile
//!   ZCC_BENCH_ENGAGEMENTS=20000 cargo bench -p zcc-bridge --bench reconcile

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use zcc_bridge::config::{Config, Secret};
use zcc_bridge::reconcile::{Reconciler, RunKind, RunSettings, RunSummary};
use zoom::api::{
    ClientConfig, EngagementQuery, InboxMessageQuery, RecordingDateType, RecordingQuery, ZoomClient,
};
use zoom_sim::generator::{generate, GeneratorConfig};
use zoom_sim::{SimServer, SimServerConfig, SimStats};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process, MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Samples RSS every 200 ms until stopped; returns (peak, samples).
fn sample_memory(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(f64, Vec<f64>)> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            samples.push(rss_mib());
            std::thread::sleep(Duration::from_millis(200));
        }
        let peak = samples.iter().copied().fold(0.0, f64::max);
        (peak, samples)
    })
}

fn list_requests(s: &SimStats) -> u64 {
    s.list_engagements + s.list_recordings + s.list_inbox_messages
}

fn iso(ms: i64) -> String {
    zoom_sim::iso_time(ms)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let engagements: usize = env_or("ZCC_BENCH_ENGAGEMENTS", 100_000);
    let medium: u32 = env_or("ZCC_BENCH_MEDIUM_PER_SECOND", 20);
    println!("reconciliation benchmark: {engagements} engagements, Medium limit {medium}/s");

    let started = Instant::now();
    let bound = SimServer::bind(([127, 0, 0, 1], 0).into()).await?;
    let scenario = generate(&GeneratorConfig {
        seed: 17,
        engagements,
        api_base: format!("{}/v2", bound.base_url()),
        // About 80,000 engagements a day: a large center's day in one window.
        arrival_gap_secs: (0, 1),
        ..Default::default()
    });
    let first = scenario
        .events
        .iter()
        .map(|e| e.event_ts)
        .min()
        .unwrap_or_default();
    let last = scenario
        .events
        .iter()
        .map(|e| e.event_ts)
        .max()
        .unwrap_or_default();
    let recordings: usize = scenario
        .truth
        .engagements
        .iter()
        .map(|e| e.recording_ids.len())
        .sum();
    let voicemails: usize = scenario
        .truth
        .engagements
        .iter()
        .map(|e| e.voicemail_ids.len())
        .sum();
    let sim_config = SimServerConfig {
        medium_per_second: medium,
        ..Default::default()
    };
    let sim = bound.serve(sim_config.clone(), &scenario);
    let (from, to) = (first - 3_600_000, last + 3_600_000);
    println!(
        "  scenario: {} engagements, {recordings} recordings, {voicemails} voicemails, {:.1} h of traffic (generated in {:.1} s)",
        scenario.truth.engagements.len(),
        (last - first) as f64 / 3_600_000.0,
        started.elapsed().as_secs_f64()
    );
    drop(scenario);

    let client_config = ClientConfig {
        account_id: sim_config.account_id.clone(),
        client_id: sim_config.client_id.clone(),
        client_secret: sim_config.client_secret.clone(),
        oauth_base: sim.base_url(),
        api_base: format!("{}/v2", sim.base_url()),
        medium_per_second: f64::from(medium),
        ..Default::default()
    };

    // Baseline: the same lists in the same parts, walked under the same budget, decoded and dropped.
    let baseline_client = ZoomClient::new(client_config.clone())?;
    let before = sim.stats();
    let t = Instant::now();
    let items = baseline(&baseline_client, from, to).await;
    let baseline_secs = t.elapsed().as_secs_f64();
    let after = sim.stats();
    let baseline_requests = list_requests(&after) - list_requests(&before);
    let baseline_429 = after.rate_limited - before.rate_limited;
    drop(baseline_client);

    // The reconciler, merging into a real store (SQLite in a temp dir) through the event log.
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None)?;
    // Reconciliation alone is measured here; the archive has its own benchmark.
    config.media.enabled = false;
    config.storage.database = Secret::new(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    let store = zcc_bridge::server::open_store(&config, Default::default()).await?;
    let (feed, projection, projector) =
        zcc_bridge::projection::Projector::start(store.clone(), Default::default());
    let (log, committers) = zcc_bridge::ingest::EventLog::start(store.clone(), 256, feed);
    let reconciler = Reconciler::new(
        Arc::new(ZoomClient::new(client_config)?),
        store.clone(),
        log,
        projection,
        RunSettings::default(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let rss_start = rss_mib();
    let sampler = sample_memory(stop.clone());
    let before = sim.stats();
    let t = Instant::now();
    let row = reconciler
        .run_window(RunKind::Manual, from, to, &|_| {})
        .await?;
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (rss_peak, samples) = sampler.join().unwrap_or_default();
    let after = sim.stats();
    let requests = list_requests(&after) - list_requests(&before);
    let rate_limited = after.rate_limited - before.rate_limited;
    let summary: RunSummary = serde_json::from_str(&row.summary)?;
    drop(reconciler);
    committers.drain().await;
    projector.drain().await;
    store.close().await;

    let floor = requests as f64 / f64::from(medium);
    let baseline_floor = baseline_requests as f64 / f64::from(medium);
    // Memory over the run: the first and last fifths of the samples, to show whether it grows.
    let fifth = (samples.len() / 5).max(1);
    let avg = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let early = avg(&samples[..fifth.min(samples.len())]);
    let late = avg(&samples[samples.len().saturating_sub(fifth)..]);
    println!();
    println!("| | wall s | requests | floor s (requests / {medium}) | wall / floor | 429s |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| baseline: walk only ({items} items) | {baseline_secs:.1} | {baseline_requests} | {baseline_floor:.1} | {:.3}x | {baseline_429} |",
        baseline_secs / baseline_floor
    );
    println!(
        "| reconcile into SQLite | {secs:.1} | {requests} | {floor:.1} | {:.3}x | {rate_limited} |",
        secs / floor
    );
    println!();
    println!(
        "reconcile vs baseline: {:.3}x; status {}; {} engagements, {} recordings, {} voicemails seen; {} logged, {} records created",
        secs / baseline_secs,
        row.status,
        summary.engagements_seen,
        summary.recordings_seen,
        summary.voicemails_seen,
        summary.resources_logged,
        summary.created
    );
    println!(
        "memory (RSS, whole process incl. the simulator): {rss_start:.0} MiB at start, {early:.0} MiB in the first fifth, {late:.0} MiB in the last fifth, peak {rss_peak:.0} MiB"
    );
    Ok(())
}

/// Walks every list of `[from, to]` in day parts, three at a time, counting items.
async fn baseline(client: &ZoomClient, from: i64, to: i64) -> u64 {
    let day = 86_400_000i64;
    let mut parts = Vec::new();
    let mut start = from - from.rem_euclid(1000);
    while start <= to {
        let end = (start + day - 1000).min(to);
        for kind in 0..3 {
            parts.push((kind, iso(start), iso(end)));
        }
        start += day;
    }
    let counts: Vec<u64> = futures_util::stream::iter(parts)
        .map(|(kind, a, b)| async move {
            let pages: std::pin::Pin<Box<dyn futures_util::Stream<Item = usize> + Send + '_>> =
                match kind {
                    0 => {
                        let q = EngagementQuery {
                            from: Some(a),
                            to: Some(b),
                            page_size: Some(100),
                            ..Default::default()
                        };
                        Box::pin(
                            client
                                .engagement_pages(&q)
                                .map(|p| p.map(|v| v.len()).unwrap_or(0)),
                        )
                    }
                    1 => {
                        let q = RecordingQuery {
                            date_type: RecordingDateType::EndTime,
                            from: Some(a),
                            to: Some(b),
                            page_size: Some(300),
                            ..Default::default()
                        };
                        Box::pin(
                            client
                                .recording_pages(&q)
                                .map(|p| p.map(|v| v.len()).unwrap_or(0)),
                        )
                    }
                    _ => {
                        let q = InboxMessageQuery {
                            from: Some(a),
                            to: Some(b),
                            page_size: Some(300),
                            ..Default::default()
                        };
                        Box::pin(
                            client
                                .inbox_message_pages(&q)
                                .map(|p| p.map(|v| v.len()).unwrap_or(0)),
                        )
                    }
                };
            pages
                .fold(0u64, |n, len| async move { n + len as u64 })
                .await
        })
        .buffer_unordered(3)
        .collect()
        .await;
    counts.iter().sum()
}
