//! Hostile-connections benchmark (issue 23's "done when"): the real server binary under `ulimit -n 1024` (soft and
//! hard), 2,000 idle connections (no byte sent) and 300 uploads that send 900 KiB of a declared 1 MiB body and
//! stall, all held open; meanwhile `/healthz` on fresh connections and signed webhooks are timed, and the server's
//! RSS (`/proc/PID/status`) and open descriptors are read. Three attackers, each against a fresh server process:
//!   - `one address`: every hostile connection from 127.0.0.2, the webhooks from 127.0.0.1;
//!   - `spread`: each hostile connection from its own address (127.0.x.y), so the per-address limit does not
//!     apply and the body-memory cap does the work;
//!   - `same address`: the hostile connections from 127.0.0.1, the webhook sender's own address.
//!
//! Then the idle timeout (set to 10 s here) is waited out and the idle connections the server still holds counted.
//!
//!   cargo bench -p zcc-bridge --bench connections
//!   (ZCC_TEST_POSTGRES_URL set: the same on Postgres too; ZCC_BENCH_IDLE=2000 ZCC_BENCH_STALLED=300 to change the load)

#[path = "../tests/it/common/hostile.rs"]
mod hostile;

use std::net::Ipv4Addr;
use std::time::Duration;

use hostile::*;
use sqlx::Connection;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(mut values: Vec<Duration>, p: f64) -> Duration {
    values.sort();
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn database(backend: &str, dir: &std::path::Path) -> anyhow::Result<String> {
    if backend == "sqlite" {
        return Ok(format!("sqlite://{}", dir.join("bench.db").display()));
    }
    let admin = std::env::var("ZCC_TEST_POSTGRES_URL")?;
    let name = format!("zcc_bench_connections_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("a database in the URL"))?;
    Ok(format!("{base}/{name}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let idle: usize = env_or("ZCC_BENCH_IDLE", 2000);
    let stalled: usize = env_or("ZCC_BENCH_STALLED", 300);
    let samples: usize = env_or("ZCC_BENCH_SAMPLES", 50);
    let idle_timeout: u64 = 10;
    raise_own_fd_limit((idle + stalled + 200) as u64);
    let mut backends = vec!["sqlite"];
    if std::env::var("ZCC_TEST_POSTGRES_URL").is_ok() {
        backends.push("postgres");
    }
    println!(
        "hostile connections: server under `ulimit -n 1024`, {idle} idle + {stalled} stalled uploads (900 KiB of \
         a declared 1 MiB), server.idle_timeout_seconds = {idle_timeout}, other settings default"
    );
    println!(
        "| backend | attacker | connections open (server's count) | idle connections open (client's view) | stalled uploads open (client's view) | healthz p50 / p99 / max ms (fresh connections) | healthz ok | webhook ack p50 / max ms | webhooks ok | RSS before / during MiB | server fds | idle still open after {idle_timeout} s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for backend in backends {
        for (case, sources) in [
            ("one address", Sources::One(Ipv4Addr::new(127, 0, 0, 2))),
            ("spread", Sources::Spread),
            ("same address", Sources::One(Ipv4Addr::LOCALHOST)),
        ] {
            let dir = tempfile::tempdir()?;
            let url = database(backend, dir.path()).await?;
            let (child, server) = spawn_limited(
                1024,
                &[
                    ("ZCC_BRIDGE_STORAGE__DATABASE", url),
                    (
                        "ZCC_BRIDGE_SERVER__IDLE_TIMEOUT_SECONDS",
                        idle_timeout.to_string(),
                    ),
                ],
                &dir.path().join("server.log"),
            )
            .await;
            let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
            // Warm up (first commit, connections) before the baseline.
            for n in 0..5 {
                healthz(server).await;
                signed_webhook(server, Ipv4Addr::LOCALHOST, 10_000 + n).await;
            }
            let (before, _) = rss_kib(pid);
            let m = attack(
                server,
                pid,
                idle,
                stalled,
                1 << 20,
                900 * 1024,
                sources,
                Ipv4Addr::LOCALHOST,
                samples,
            )
            .await;
            let healthz_ok = m
                .healthz
                .iter()
                .filter(|(s, _)| *s == Some(reqwest::StatusCode::OK))
                .count();
            let webhooks_ok = m
                .webhooks
                .iter()
                .filter(|(s, _)| *s == Some(reqwest::StatusCode::OK))
                .count();
            let healthz_times: Vec<Duration> = m.healthz.iter().map(|(_, d)| *d).collect();
            let webhook_times: Vec<Duration> = m.webhooks.iter().map(|(_, d)| *d).collect();
            // The idle timeout, waited out with fresh idle connections (the attack's own were mostly closed to make
            // room already).
            let late_idle = open_idle(
                server,
                idle.min(500),
                Sources::One(Ipv4Addr::new(127, 0, 0, 9)),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(idle_timeout + 1)).await;
            let still = still_open(&late_idle);
            println!(
                "| {backend} | {case} | {} | {} | {} | {} / {} / {} | {healthz_ok}/{} | {} / {} | {webhooks_ok}/{} | {:.1} / {:.1} | {} | {still} of {} |",
                m.server_connections
                    .map_or_else(|| "?".to_string(), |n| n.to_string()),
                m.idle_open - m.idle_closed_at_end,
                m.stalled_held_at_end,
                ms(percentile(healthz_times.clone(), 0.5)),
                ms(percentile(healthz_times.clone(), 0.99)),
                ms(percentile(healthz_times, 1.0)),
                m.healthz.len(),
                ms(percentile(webhook_times.clone(), 0.5)),
                ms(percentile(webhook_times, 1.0)),
                m.webhooks.len(),
                before as f64 / 1024.0,
                m.rss_kib as f64 / 1024.0,
                m.server_fds,
                late_idle.len(),
            );
            drop(child);
        }
    }
    Ok(())
}
