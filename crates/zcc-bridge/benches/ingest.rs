//! Ingest benchmark: signed, distinct Zoom webhook events over loopback, the load generator and the server in
//! separate processes pinned to separate cores (issue 18's method): the load on core 0, the server (and
//! PostgreSQL's processes, when `scripts/postgres.sh` started it with `PG_CPUS=1`) on core 1. The server's CPU time
//! per acknowledged event is read from `/proc` (the server process, plus every PostgreSQL process when one is
//! used), so the client's own cost is out of the figures and they compare from machine to machine.
//!
//! In the same run it measures a baseline: a bare axum handler that only reads the body and answers 200, in a
//! process of its own pinned the same way. Two modes per target:
//! - saturation: `ZCC_BENCH_CONNECTIONS` (64) closed-loop senders for `ZCC_BENCH_SECONDS` (8);
//! - fixed rate: `ZCC_BENCH_RATE` (2,000) events/s offered open-loop for the same time; latency is measured
//!   from when each request was due (no coordinated omission).
//!
//!   scripts/bench.sh                     # SQLite and PostgreSQL, pinned
//!   cargo bench -p zcc-bridge --bench ingest   # SQLite only unless ZCC_TEST_POSTGRES_URL is set
//!
//! Environment: `ZCC_BENCH_SECONDS`, `ZCC_BENCH_CONNECTIONS`, `ZCC_BENCH_RATE`, `ZCC_BENCH_PIN=0` (no pinning),
//! `ZCC_BENCH_PG_DATA` (PostgreSQL's data directory, for its CPU; `scripts/bench.sh` sets it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use sqlx::Connection;

const SECRET: &str = "bench-webhook-secret";
const TOKEN: &str = "bench-admin-token-0123456789";
/// Set in the environment of the bench's own child that serves the bare axum baseline.
const BASELINE_ROLE: &str = "ZCC_BENCH_BASELINE_ADDR";
/// Set once the bench has re-executed itself pinned to core 0.
const PINNED: &str = "ZCC_BENCH_PINNED";

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

/// One measured run.
struct Measured {
    target: String,
    mode: String,
    events_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    /// Server CPU (server process, plus PostgreSQL's processes when used) per acknowledged event.
    server_us_per_event: f64,
    /// Of which PostgreSQL.
    postgres_us_per_event: f64,
    /// The server's resident set at the end of the run, and its peak, MiB.
    rss_mib: f64,
    peak_rss_mib: f64,
}

/// CPU seconds (user + system) a process has used, with the children it has reaped.
fn process_cpu_seconds(pid: u32, with_reaped_children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let ticks = fields.get(11).copied().unwrap_or(0.0)
        + fields.get(12).copied().unwrap_or(0.0)
        + if with_reaped_children {
            fields.get(13).copied().unwrap_or(0.0) + fields.get(14).copied().unwrap_or(0.0)
        } else {
            0.0
        };
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on; `getconf` confirms it without libc bindings.
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds of PostgreSQL: the postmaster (with the backends it has reaped) and its live children.
fn postgres_cpu_seconds(data_dir: &Path) -> f64 {
    let Some(postmaster) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return 0.0;
    };
    let mut total = process_cpu_seconds(postmaster, true);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            {
                if parent_of(pid) == Some(postmaster) {
                    total += process_cpu_seconds(pid, false);
                }
            }
        }
    }
    total
}

/// (current, peak) resident set of a process, MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn send(client: &reqwest::Client, url: &str, run: &str, i: usize) -> bool {
    let body = event_body(run, i);
    let ts = now_secs();
    let signature = zoom::webhook::sign(SECRET.as_bytes(), ts, &body);
    match client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-zm-request-timestamp", ts.to_string())
        .header("x-zm-signature", signature)
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let ok = r.status().is_success();
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// What is measured around a run: the server's pid (for its CPU and memory) and PostgreSQL's data directory.
struct Target<'a> {
    name: &'a str,
    addr: SocketAddr,
    pid: u32,
    postgres: Option<&'a Path>,
}

impl Target<'_> {
    fn cpu(&self) -> (f64, f64) {
        let server = process_cpu_seconds(self.pid, true);
        let pg = self.postgres.map_or(0.0, postgres_cpu_seconds);
        (server + pg, pg)
    }
}

/// `connections` closed-loop senders for `seconds` after a 1 s warm-up.
async fn saturate(target: &Target<'_>, connections: usize, seconds: f64) -> Measured {
    let run = format!("{}-sat-{}", target.name, now_secs());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .http1_only()
        .build()
        .expect("client");
    let url = format!("http://{}/webhooks/zoom", target.addr);
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
                let started = Instant::now();
                let ok = send(&client, &url, &run, i).await;
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
    let cpu_before = target.cpu();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = target.cpu();
    let memory = rss_mib(target.pid);
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("sender");
        all.extend(l);
        errors += e;
    }
    finish(
        target,
        "saturation",
        all,
        errors,
        elapsed,
        cpu_before,
        cpu_after,
        memory,
    )
}

/// `rate` events/s offered open-loop for `seconds` after a 1 s warm-up; latency from when each was due.
async fn fixed_rate(target: &Target<'_>, rate: f64, seconds: f64) -> Measured {
    let run = format!("{}-rate-{}", target.name, now_secs());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .http1_only()
        .build()
        .expect("client");
    let url = Arc::new(format!("http://{}/webhooks/zoom", target.addr));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let warmup = (rate as usize).max(1);
    let total = warmup + (rate * seconds) as usize;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Duration, bool)>();
    let start = tokio::time::Instant::now();
    let mut cpu_before = None;
    let mut measure_start = None;
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        if i == warmup {
            cpu_before = Some(target.cpu());
            measure_start = Some(Instant::now());
        }
        let (client, url, run, tx) = (client.clone(), url.clone(), run.clone(), tx.clone());
        tokio::spawn(async move {
            let ok = send(&client, &url, &run, i).await;
            let _ = tx.send((i, due.elapsed(), ok));
        });
    }
    drop(tx);
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some((i, latency, ok)) = rx.recv().await {
        if i >= warmup {
            if ok {
                all.push(latency);
            } else {
                errors += 1;
            }
        }
    }
    let elapsed = measure_start.map_or(seconds, |s| s.elapsed().as_secs_f64());
    let cpu_after = target.cpu();
    let memory = rss_mib(target.pid);
    let before = cpu_before.unwrap_or(cpu_after);
    finish(
        target,
        &format!("{rate:.0}/s"),
        all,
        errors,
        elapsed,
        before,
        cpu_after,
        memory,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    target: &Target<'_>,
    mode: &str,
    mut latencies: Vec<Duration>,
    errors: usize,
    elapsed: f64,
    cpu_before: (f64, f64),
    cpu_after: (f64, f64),
    memory: (f64, f64),
) -> Measured {
    latencies.sort_unstable();
    let events = latencies.len().max(1) as f64;
    Measured {
        target: target.name.to_string(),
        mode: mode.to_string(),
        events_per_sec: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        errors,
        server_us_per_event: (cpu_after.0 - cpu_before.0) * 1e6 / events,
        postgres_us_per_event: (cpu_after.1 - cpu_before.1) * 1e6 / events,
        rss_mib: memory.0,
        peak_rss_mib: memory.1,
    }
}

/// The bare axum baseline, served by this very program in a child process (see `main`).
async fn serve_baseline(addr: SocketAddr) {
    let app = Router::new().route(
        "/webhooks/zoom",
        post(|_body: Bytes| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let _ = axum::serve(listener, app.into_make_service()).await;
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// `command` pinned to `cpus` (a `taskset` list) when pinning is on.
fn pinned(program: &Path, cpus: &str) -> Command {
    if pinning() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpus).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Whether to pin: on unless `ZCC_BENCH_PIN=0`, with two cores or more and `taskset` at hand. Decided once by the
/// first process (the pinned re-run sees a single core and inherits the decision).
fn pinning() -> bool {
    if std::env::var(PINNED).is_ok() {
        return true;
    }
    env_or("ZCC_BENCH_PIN", 1u8) == 1
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && Command::new("taskset").arg("-V").output().is_ok()
}

/// Waits until `addr` accepts connections.
fn wait_listening(addr: SocketAddr, child: &mut Child) {
    for _ in 0..600 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 30 s");
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_baseline() -> Server {
    let addr = free_addr();
    let program = std::env::current_exe().expect("this program");
    let mut child = pinned(&program, "1")
        .env(BASELINE_ROLE, addr.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the baseline");
    wait_listening(addr, &mut child);
    Server { child, addr }
}

fn start_bridge(database: &str) -> Server {
    let addr = free_addr();
    let program = PathBuf::from(env!("CARGO_BIN_EXE_zcc-bridge"));
    let mut child = pinned(&program, "1")
        .arg("serve")
        .env("ZCC_BRIDGE_SERVER__LISTEN", addr.to_string())
        .env("ZCC_BRIDGE_STORAGE__DATABASE", database)
        .env("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", SECRET)
        .env("ZCC_BRIDGE_ADMIN__TOKEN", TOKEN)
        .env("ZCC_BRIDGE_MEDIA__ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn zcc-bridge");
    wait_listening(addr, &mut child);
    Server { child, addr }
}

/// Events the server says are durable in its log (read at the end of a target's runs).
async fn logged(addr: SocketAddr) -> i64 {
    let stats: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    stats["events"].as_i64().unwrap_or(-1)
}

async fn measure(
    name: &str,
    server: &Server,
    postgres: Option<&Path>,
    connections: usize,
    seconds: f64,
    rate: f64,
) -> Vec<Measured> {
    let target = Target {
        name,
        addr: server.addr,
        pid: server.child.id(),
        postgres,
    };
    let saturated = saturate(&target, connections, seconds).await;
    // Let the server drain the backlog the saturation left (its projector) before the fixed-rate run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady = fixed_rate(&target, rate, seconds).await;
    vec![saturated, steady]
}

fn main() {
    // The baseline's own process.
    if let Ok(addr) = std::env::var(BASELINE_ROLE) {
        let addr: SocketAddr = addr.parse().expect("baseline address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(serve_baseline(addr));
        return;
    }
    // The load generator: pinned to core 0 (re-executed under taskset once).
    if pinning() && std::env::var(PINNED).is_err() {
        let program = std::env::current_exe().expect("this program");
        let status = Command::new("taskset")
            .arg("-c")
            .arg("0")
            .arg(program)
            .args(std::env::args().skip(1))
            .env(PINNED, "1")
            .status()
            .expect("re-run pinned");
        std::process::exit(status.code().unwrap_or(1));
    }
    let seconds: f64 = env_or("ZCC_BENCH_SECONDS", 8.0);
    let connections: usize = env_or("ZCC_BENCH_CONNECTIONS", 64);
    let rate: f64 = env_or("ZCC_BENCH_RATE", 2000.0);
    let pg_data = std::env::var("ZCC_BENCH_PG_DATA").ok().map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut results = Vec::new();
        {
            let baseline = start_baseline();
            results.extend(measure("baseline (bare axum)", &baseline, None, connections, seconds, rate).await);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        {
            let bridge = start_bridge(&sqlite);
            results.extend(measure("zcc-bridge sqlite", &bridge, None, connections, seconds, rate).await);
            eprintln!("  sqlite: {} events durable in the log", logged(bridge.addr).await);
        }
        match std::env::var("ZCC_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("zcc_bench_{}", std::process::id());
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create db");
                let url = format!("{}/{name}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
                let bridge = start_bridge(&url);
                results.extend(
                    measure("zcc-bridge postgres", &bridge, pg_data.as_deref(), connections, seconds, rate)
                        .await,
                );
                eprintln!("  postgres: {} events durable in the log", logged(bridge.addr).await);
                if pg_data.is_none() {
                    eprintln!("  (ZCC_BENCH_PG_DATA not set: PostgreSQL's own CPU is not counted)");
                }
            }
            _ => eprintln!("ZCC_TEST_POSTGRES_URL not set: skipping Postgres (scripts/bench.sh starts one)"),
        }

        let base = results
            .iter()
            .find(|r| r.mode == "saturation")
            .map_or(f64::NAN, |r| r.events_per_sec);
        let base_cpu = results
            .iter()
            .find(|r| r.mode == "saturation")
            .map_or(f64::NAN, |r| r.server_us_per_event);
        println!();
        println!(
            "ingest benchmark: signed distinct events over loopback, {}; saturation = {connections} connections, fixed rate offered open-loop; {seconds} s per run",
            if pinning() { "load on core 0, server (and PostgreSQL) on core 1" } else { "not pinned" }
        );
        println!(
            "{:<22} {:>10} {:>10} {:>8} {:>8} {:>6} {:>7} {:>11} {:>8} {:>9} {:>9}",
            "target", "mode", "events/s", "p50 ms", "p99 ms", "errors", "ratio", "server µs/ev", "of it pg", "RSS MiB", "peak MiB"
        );
        for r in &results {
            let ratio = if r.mode == "saturation" {
                format!("{:.2}x", r.events_per_sec / base)
            } else {
                String::from("-")
            };
            println!(
                "{:<22} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>6} {:>7} {:>11.1} {:>8.1} {:>9.1} {:>9.1}",
                r.target,
                r.mode,
                r.events_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                ratio,
                r.server_us_per_event,
                r.postgres_us_per_event,
                r.rss_mib,
                r.peak_rss_mib
            );
        }
        println!("server CPU per event against the baseline's: {}", results
            .iter()
            .filter(|r| r.mode == "saturation")
            .map(|r| format!("{} {:.1}x", r.target, r.server_us_per_event / base_cpu))
            .collect::<Vec<_>>()
            .join(", "));
    });
}
