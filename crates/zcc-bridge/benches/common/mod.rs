//! What the stream and presence benchmarks share: signing webhooks, CPU figures from /proc, percentiles,
//! scraping /metrics, and running each backend in a fresh child process with its own Postgres database.
#![allow(dead_code)] // each bench uses its own subset

use anyhow::Context;

pub const SECRET: &str = "bench-webhook-secret";
pub const TOKEN: &str = "bench-admin-token-0123456789";
/// The load's runtime threads (simulator, clients, posting): their CPU is counted apart from the bridge's.
pub const LOAD_THREADS: &str = "bench-load";

/// `ZCC_BENCH_LOG=<filter>` makes the bench (and the bridge in it) log.
pub fn init_logging() {
    if let Ok(filter) = std::env::var("ZCC_BENCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .try_init();
    }
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds used so far by this process's threads: (the bridge's, the load generator's). The clients and the
/// posting tasks run on their own runtime, whose threads are named `LOAD_THREADS`; everything else is the bridge.
/// (Threads that ended are not counted; the load runtime keeps its threads for the whole run.)
pub fn thread_cpu_seconds() -> (f64, f64) {
    let (mut bridge, mut load) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (f64::NAN, f64::NAN);
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: utime and stime are fields 14 and 15, the 12th and 13th after the comm.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        // Clock ticks are 1/100 s on Linux.
        if comm.starts_with(LOAD_THREADS) {
            load += ticks / 100.0;
        } else {
            bridge += ticks / 100.0;
        }
    }
    (bridge, load)
}

/// (busy, total) jiffies of the whole machine from /proc/stat (NaN where there is no /proc).
pub fn cpu_ticks() -> (f64, f64) {
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

pub fn signed(client: &reqwest::Client, url: &str, bytes: Vec<u8>) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", ts.to_string())
        .header(
            "x-zm-signature",
            zoom::webhook::sign(SECRET.as_bytes(), ts, &bytes),
        )
        .body(bytes)
}

/// An error with its sources (reqwest's own message does not say why).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn scrape(base: &str) -> String {
    match reqwest::get(format!("{base}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => {
            eprintln!("/metrics: {e}");
            String::new()
        }
    }
}

pub async fn fresh_postgres(admin: &str, prefix: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("zcc_bench_{prefix}_{}", std::process::id());
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

/// Runs one backend in a fresh process (this binary again), so that its memory figures start from a clean heap.
pub async fn run_child(
    child_env: &str,
    db_env: &str,
    label: &str,
    db_url: &str,
) -> anyhow::Result<()> {
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env(child_env, label)
        .env(db_env, db_url)
        .status()
        .await
        .context("running a benchmark child")?;
    anyhow::ensure!(status.success(), "the {label} run failed: {status}");
    Ok(())
}
