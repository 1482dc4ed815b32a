//! Ingest benchmark: signed, distinct Zoom webhook events over loopback at 64 connections.
//!
//! In the same run it measures a baseline, a bare axum handler that only reads the body and returns 200, and
//! reports events/s, p50 and p99 latency for the baseline, for durable ingest into SQLite and (when
//! `ZCC_TEST_POSTGRES_URL` is set, as `scripts/bench.sh` does) into Postgres, with the ratio to the baseline.
//!
//!   scripts/bench.sh                     # or: cargo bench -p zcc-bridge --bench ingest
//!   ZCC_BENCH_SECONDS=10 ZCC_BENCH_CONNECTIONS=64 scripts/bench.sh

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use sqlx::Connection;
use zcc_bridge::config::{Config, Secret};

const SECRET: &str = "bench-webhook-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Event `i` of a realistic mix: engagements of 8 events each, in the shapes of Zoom's published examples
/// (`shared/vendor/zoom/webhooks/`: `engagement_direction`, `user_display_name`, flows, ISO `*_ms` times, recordings
/// with `users[]` and `consumers[]` and no download URL).
fn event_body(run: &str, i: usize) -> Vec<u8> {
    let engagement = format!("{run}-{}", i / 8);
    let ts = 1_795_251_600_000i64 + i as i64;
    let q = i % 5;
    let u = i % 17;
    let at = "2026-11-21T09:00:00.123Z";
    let common = format!(
        r#""engagement_id":"{engagement}","engagement_direction":"inbound","channel":"voice","flow_id":"F{q}","flow_name":"Main flow {q}","cc_queue_id":"Q{q}","queue_name":"Queue {q}","date_time_ms":"{at}""#
    );
    let people = format!(
        r#""user_id":"U{u}","user_display_name":"Agent {u}","consumer_id":"C{i}","consumer_number":"+1555{i:07}","consumer_display_name":"Customer {i}""#
    );
    let recording = |r: usize| {
        format!(
            r#""recording_id":"R{r}","recording_type":"automatic","owner_id":"Q{q}","owner_name":"Queue {q}","owner_type":"queue","users":[{{"user_id":"U{u}","user_display_name":"Agent {u}"}}],"consumers":[{{"consumer_id":"C{i}","consumer_number":"+1555{i:07}","consumer_display_name":"Customer {i}"}}]"#
        )
    };
    let (event, object) = match i % 8 {
        0 => ("engagement_started", format!("{{{common}}}")),
        1 => (
            "engagement_user_answered",
            format!(r#"{{{common},"channel_source":"voice",{people}}}"#),
        ),
        2 => (
            "recording_started",
            format!("{{{common},{}}}", recording(i)),
        ),
        3 => (
            "engagement_user_hold",
            format!(r#"{{{common},"channel_source":"voice",{people}}}"#),
        ),
        4 => (
            "engagement_note_added",
            format!(
                r#"{{{common},{people},"note_id":"N{i}","note":"Customer asked about invoice {i}; promised a call back tomorrow.","last_modified_time":"2026-11-21T09:01:40Z"}}"#
            ),
        ),
        5 => (
            "engagement_disposition_added",
            format!(
                r#"{{{common},{people},"disposition_id":"D{d}","disposition_name":"Outcome {d}"}}"#,
                d = i % 4
            ),
        ),
        6 => (
            "recording_completed",
            format!(
                r#"{{{common},{},"recording_start_time_ms":"2026-11-21T09:00:02.000Z","recording_end_time_ms":"2026-11-21T09:07:12.000Z","recording_duration":430}}"#,
                recording(i - 4)
            ),
        ),
        _ => (
            "engagement_ended",
            format!(r#"{{{common},"channel_source":"voice"}}"#),
        ),
    };
    format!(r#"{{"event":"contact_center.{event}","event_ts":{ts},"payload":{{"account_id":"bench","object":{object}}}}}"#).into_bytes()
}

struct Result {
    name: String,
    /// Machine-wide CPU time (all processes: client, server, database) per acknowledged event, in µs.
    cpu_us_per_event: f64,
    /// Machine-wide CPU utilisation during the run, 0..1.
    cpu_busy: f64,
    events_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// Drives `connections` concurrent senders at `addr` for `seconds` (after a 1 s warm-up).
async fn drive(name: &str, addr: SocketAddr, connections: usize, seconds: f64) -> Result {
    let run = format!(
        "{name}-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .http1_only()
        .build()
        .expect("client");
    let url = format!("http://{addr}/webhooks/zoom");
    let next = Arc::new(AtomicUsize::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, next, measuring, stop, run) = (
            client.clone(),
            url.clone(),
            next.clone(),
            measuring.clone(),
            stop.clone(),
            run.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let body = event_body(&run, i);
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let signature = zoom::webhook::sign(SECRET.as_bytes(), ts, &body);
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json; charset=utf-8")
                    .header("x-zm-request-timestamp", ts.to_string())
                    .header("x-zm-signature", signature)
                    .body(body)
                    .send()
                    .await;
                let ok = match response {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(started.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_before = cpu_ticks();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("sender");
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    let (busy, total) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let cpu_busy = if total > 0.0 { busy / total } else { f64::NAN };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    Result {
        name: name.to_string(),
        cpu_us_per_event: cpu_busy * cores * elapsed * 1e6 / all.len().max(1) as f64,
        cpu_busy,
        events_per_sec: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

/// (busy, total) jiffies of the whole machine from /proc/stat (NaN where there is no /proc).
fn cpu_ticks() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (f64::NAN, f64::NAN);
    };
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

async fn baseline() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/webhooks/zoom",
        post(|_body: Bytes| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

fn config(database: &str) -> Config {
    let mut config = Config::load(None).expect("defaults");
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.storage.database = Secret::new(database);
    config.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    config.media.enabled = false;
    config
}

async fn bridge(name: &str, database: &str, connections: usize, seconds: f64) -> Result {
    let server = zcc_bridge::start(config(database))
        .await
        .expect("server starts");
    let before = commit_figures();
    let result = drive(name, server.addr(), connections, seconds).await;
    let after = commit_figures();
    let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    if d[1] > 0.0 && d[4] > 0.0 {
        eprintln!(
            "  {name}: {:.0} commits, {:.1} items and {:.2} ms per commit; {:.0} merges, {:.1} events and {:.2} ms per merge",
            d[1],
            d[0] / d[1],
            d[2] * 1000.0 / d[1],
            d[4],
            d[3] / d[4],
            d[5] * 1000.0 / d[4],
        );
    }
    let stats = server.store().stats().await.expect("stats");
    server.shutdown().await.expect("shutdown");
    eprintln!("  {name}: {} events durable in the log", stats.events);
    result
}

/// (items committed, commits, seconds spent committing, events merged, merges, seconds spent merging) so far in
/// this process, from the Prometheus recorder.
fn commit_figures() -> [f64; 6] {
    let text = zcc_bridge::telemetry::metrics_handle().render();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    };
    [
        value("zcc_ingest_commit_batch_size_sum "),
        value("zcc_ingest_commit_batch_size_count "),
        value("zcc_ingest_commit_seconds_sum "),
        value("zcc_projection_batch_size_sum "),
        value("zcc_projection_batch_size_count "),
        value("zcc_projection_seconds_sum "),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported here.
    let seconds: f64 = env_or("ZCC_BENCH_SECONDS", 5.0);
    let connections: usize = env_or("ZCC_BENCH_CONNECTIONS", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut results = Vec::new();
        let (addr, task) = baseline().await;
        results.push(drive("baseline (bare axum)", addr, connections, seconds).await);
        task.abort();

        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        results.push(bridge("zcc-bridge sqlite", &sqlite, connections, seconds).await);

        match std::env::var("ZCC_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("zcc_bench_{}", std::process::id());
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create db");
                let url = format!("{}/{name}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
                results.push(bridge("zcc-bridge postgres", &url, connections, seconds).await);
            }
            _ => eprintln!("ZCC_TEST_POSTGRES_URL not set: skipping Postgres (scripts/bench.sh starts one)"),
        }

        let base = results[0].events_per_sec;
        println!();
        println!("ingest benchmark: {connections} connections, {seconds} s per run, signed distinct events, loopback");
        println!(
            "{:<24} {:>12} {:>9} {:>9} {:>7} {:>8} {:>9} {:>12}",
            "target", "events/s", "p50 ms", "p99 ms", "errors", "ratio", "cpu busy", "cpu µs/event"
        );
        for r in &results {
            println!(
                "{:<24} {:>12.0} {:>9.2} {:>9.2} {:>7} {:>7.2}x {:>8.0}% {:>12.1}",
                r.name,
                r.events_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                r.events_per_sec / base,
                r.cpu_busy * 100.0,
                r.cpu_us_per_event
            );
        }
    });
}
