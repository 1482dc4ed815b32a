//! Delivery benchmark: end-to-end latency from webhook receipt to HTTP sink delivery at a sustained rate, and the
//! sink's sustained throughput draining a backlog, against a fast local Standard Webhooks receiver.
//!
//! Baseline, measured in the same run: the same events POSTed straight to the same receiver by the same client
//! (what loopback HTTP alone costs). Reported: p50/p99/max latency of both and the ratio, and deliveries/s.
//!
//!   cargo bench -p zcc-bridge --bench delivery
//!   ZCC_BENCH_RATE=1000 ZCC_BENCH_SECONDS=10 ZCC_BENCH_BACKLOG=20000 cargo bench -p zcc-bridge --bench delivery
//!   (ZCC_TEST_POSTGRES_URL set: the same on Postgres too)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use zcc_bridge::config::{Config, Secret, SinkConfig, SinkKind};

const SECRET: &str = "bench-webhook-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENT: &str = "contact_center.engagement_user_hold";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Arrival instants by sequence number, at the receiver.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<u64, Instant>>,
    count: AtomicUsize,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let seq = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            // Delivered: {"data": {"payload": {"object": {"seq"}}}}; direct: {"payload": {"object": {"seq"}}}.
            let object = v
                .pointer("/data/payload/object")
                .or(v.pointer("/payload/object"))?
                .clone();
            object.get("seq")?.as_u64()
        });
    if let Some(seq) = seq {
        arrivals.at.lock().expect("lock").entry(seq).or_insert(now);
        arrivals.count.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (String, Arc<Arrivals>) {
    let arrivals = Arc::new(Arrivals::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), arrivals)
}

/// Events per engagement (delivered in order, one after another).
fn per_engagement() -> u64 {
    env_or("ZCC_BENCH_EVENTS_PER_ENGAGEMENT", 8u64).max(1)
}

fn body(run: &str, seq: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": EVENT,
        "event_ts": 1_795_251_600_000i64 + seq as i64,
        "payload": {"account_id": "acct", "object": {"engagement_id": format!("{run}-{}", seq / per_engagement()), "user_id": "U1", "seq": seq}}
    }))
    .expect("json")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Latencies {
    /// Acknowledgement (webhook 200, or the receiver's answer for the baseline) p99.
    ack_p99: f64,
    p50: f64,
    p99: f64,
    max: f64,
    missing: usize,
}

/// Sends `total` events at `rate`/s to `url` (signed webhooks, or plain POSTs for the baseline), then waits for
/// the receiver to have them all; latency = arrival - send start.
async fn paced(
    url: &str,
    signed: bool,
    run: &str,
    rate: u64,
    total: u64,
    arrivals: &Arc<Arrivals>,
) -> Latencies {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let acks: Arc<Mutex<Vec<f64>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..total {
        tokio::time::sleep_until(start + interval.mul_f64(seq as f64)).await;
        let client = client.clone();
        let url = url.to_string();
        let sent = sent.clone();
        let acks = acks.clone();
        let bytes = body(run, seq);
        tasks.spawn(async move {
            let mut request = client.post(&url).header("content-type", "application/json");
            if signed {
                let ts = chrono::Utc::now().timestamp();
                request = request
                    .header("x-zm-request-timestamp", ts.to_string())
                    .header(
                        "x-zm-signature",
                        zoom::webhook::sign(SECRET.as_bytes(), ts, &bytes),
                    );
            }
            let at = Instant::now();
            sent.lock().expect("lock").insert(seq, at);
            match request.body(bytes).send().await {
                Ok(r) if r.status().is_success() => {
                    acks.lock()
                        .expect("lock")
                        .push(at.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(r) => eprintln!("event {seq}: HTTP {}", r.status()),
                Err(e) => eprintln!("event {seq}: {e}"),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.at.lock().expect("lock").len() < total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = sent.lock().expect("lock");
    let at = arrivals.at.lock().expect("lock");
    let mut latencies: Vec<f64> = (0..total)
        .filter_map(|seq| {
            Some(at.get(&seq)?.duration_since(*sent.get(&seq)?).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut acks = acks.lock().expect("lock").clone();
    acks.sort_by(f64::total_cmp);
    Latencies {
        ack_p99: percentile(&acks, 0.99),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(f64::NAN),
        missing: total as usize - latencies.len(),
    }
}

fn config(db_url: &str, sink_url: &str) -> Config {
    let mut c = Config::load(None).expect("defaults");
    c.server.listen = ([127, 0, 0, 1], 0).into();
    c.storage.database = Secret::new(db_url);
    c.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    c.media.enabled = false;
    c.delivery.poll_ms = 100;
    c.sinks = vec![SinkConfig {
        secrets: vec![Secret::new(WHSEC)],
        deliver: vec![EVENT.into()],
        concurrency: env_or("ZCC_BENCH_SINK_CONCURRENCY", 16),
        timeout_seconds: 10,
        ..SinkConfig::new("warehouse", SinkKind::Http, sink_url)
    }];
    c
}

async fn fresh_postgres(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("zcc_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("postgres url without a database"))?;
    Ok(format!("{base}/{name}"))
}

async fn run_backend(
    label: &str,
    db_url: &str,
    rate: u64,
    seconds: u64,
    backlog: u64,
    base: &Latencies,
) -> anyhow::Result<()> {
    let (sink_url, arrivals) = start_receiver().await;
    let server = zcc_bridge::start(config(db_url, &sink_url)).await?;
    let url = format!("http://{}/webhooks/zoom", server.addr());
    let total = rate * seconds;
    let e2e = paced(&url, true, &format!("{label}-lat"), rate, total, &arrivals).await;
    println!(
        "{label:<9} webhook -> sink at {rate}/s: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  missing {}  (p99 {:.1}x the baseline's; webhook ack p99 {:.1} ms)",
        e2e.p50, e2e.p99, e2e.max, e2e.missing, e2e.p99 / base.p99, e2e.ack_p99
    );

    // Throughput: a backlog queued while the sink is disabled, then drained.
    let store = server.store();
    store
        .disable_sink(
            "warehouse",
            "benchmark backlog",
            zcc_bridge::store::now_ms(),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let before = arrivals.count.load(Ordering::Relaxed);
    let mut posts = tokio::task::JoinSet::new();
    let next = Arc::new(AtomicUsize::new(0));
    for _ in 0..32 {
        let client = client.clone();
        let url = url.clone();
        let next = next.clone();
        let run = format!("{label}-bl");
        posts.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed) as u64;
                if seq >= backlog {
                    return;
                }
                let bytes = body(&run, 10_000_000 + seq);
                let ts = chrono::Utc::now().timestamp();
                let _ = client
                    .post(&url)
                    .header("x-zm-request-timestamp", ts.to_string())
                    .header(
                        "x-zm-signature",
                        zoom::webhook::sign(SECRET.as_bytes(), ts, &bytes),
                    )
                    .body(bytes)
                    .send()
                    .await;
            }
        });
    }
    while posts.join_next().await.is_some() {}
    let started = Instant::now();
    store.enable_sink("warehouse").await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.count.load(Ordering::Relaxed) < before + backlog as usize
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = arrivals.count.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{label:<9} backlog of {backlog}: {drained} delivered in {elapsed:.2} s = {:.0} deliveries/s (sink concurrency {})",
        drained as f64 / elapsed,
        env_or("ZCC_BENCH_SINK_CONCURRENCY", 16usize)
    );
    server.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(filter) = std::env::var("ZCC_BENCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .try_init();
    }
    let rate: u64 = env_or("ZCC_BENCH_RATE", 1000);
    let seconds: u64 = env_or("ZCC_BENCH_SECONDS", 10);
    let backlog: u64 = env_or("ZCC_BENCH_BACKLOG", 20_000);
    println!("delivery benchmark: {rate} events/s for {seconds} s, backlog {backlog}");

    let (direct_url, direct) = start_receiver().await;
    let base = paced(&direct_url, false, "direct", rate, rate * seconds, &direct).await;
    println!(
        "baseline  direct POST at {rate}/s:     p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  missing {}",
        base.p50, base.p99, base.max, base.missing
    );

    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    if std::env::var("ZCC_BENCH_SKIP_SQLITE").is_err() {
        run_backend("sqlite", &sqlite, rate, seconds, backlog, &base).await?;
    }
    if let Ok(admin) = std::env::var("ZCC_TEST_POSTGRES_URL") {
        if !admin.is_empty() {
            let url = fresh_postgres(&admin).await?;
            run_backend("postgres", &url, rate, seconds, backlog, &base).await?;
        }
    }
    Ok(())
}
