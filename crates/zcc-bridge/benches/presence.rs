//! Presence sync benchmark: decision latency from the receipt of a ZCC `engagement_user_answered` webhook to the
//! Zoom API call that sets the agent busy (`PUT /v2/users/{id}/presence_status`), at a sustained event rate with
//! many mapped users, against the simulator.
//!
//! Each backend runs in a fresh process (this binary again), so the bridge's metrics and CPU start from zero.
//! 1. The simulator (on its own runtime, threads `bench-load`, with the posting tasks) serves N presence users
//!    `u00000`.. (logged in, `Available`) with Zoom's one-update-per-user-per-minute rule. The bridge (in-process
//!    `zcc_bridge::start`, presence on, `min_interval_seconds = 60`, media off, no sinks) maps ZCC user `cc-00000`
//!    to Zoom user `u00000`, and so on for all N (`presence.users`).
//! 2. Signed `contact_center.engagement_user_answered` webhooks are posted at a steady rate, each for a distinct
//!    engagement and a distinct user, so that every user gets exactly one busy write in the run: Zoom's per-user
//!    limit never applies. The account's per-second limit of the presence endpoints (MEDIUM: 20/s at Zoom, and
//!    the bridge's own client budget with it) is lifted in both the simulator and the bridge, since the bridge
//!    reads each user's status before its write (two calls per event); `ZCC_BENCH_ZOOM_MEDIUM_PER_SECOND` puts
//!    one back (both sides).
//! 3. Decision latency per event = when the simulator handled the user's applied `On_A_Call` update (its epoch
//!    ms clock) - the wall clock (µs) just before the webhook POST. Baseline in the same run: the webhook's own
//!    acknowledgement (POST round trip). Also printed: the stages of each decision from the bridge's presence
//!    audit (same machine clock, ms), the bridge's own `zcc_presence_decision_seconds` histogram (claim -> PUT
//!    done), the projector's merges, the simulator's call counts and the CPU of the bridge, of the load
//!    (simulator + posting) and of other processes.
//!
//!   cargo bench -p zcc-bridge --bench presence
//!   ZCC_BENCH_USERS=5000 ZCC_BENCH_RATE=200 ZCC_BENCH_SECONDS=20 cargo bench -p zcc-bridge --bench presence
//!   (ZCC_TEST_POSTGRES_URL set: the same on Postgres too; ZCC_BENCH_SKIP_SQLITE set: Postgres only)

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use common::*;
use zcc_bridge::config::{Config, Secret};
use zoom_sim::{NewPresenceUser, PresenceOutcome, PresenceVia, SimServer, SimServerConfig};

const BUSY: &str = "On_A_Call";
/// Set in the child process that runs one backend: its label; `DB_ENV` holds its database URL.
const CHILD_ENV: &str = "ZCC_BENCH_PRESENCE_CHILD";
const DB_ENV: &str = "ZCC_BENCH_PRESENCE_DB";
/// Warm-up events (the OAuth token, connection pools, prepared statements), on users the run does not use.
const WARMUP: usize = 10;

#[derive(Clone, Copy)]
struct Settings {
    users: usize,
    rate: u64,
    seconds: u64,
    /// Requests per second of MEDIUM-labelled Zoom endpoints (presence GET and PUT), 0: no limit.
    medium_per_second: u32,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            users: env_or("ZCC_BENCH_USERS", 5000usize).max(WARMUP + 1),
            rate: env_or("ZCC_BENCH_RATE", 200u64).max(1),
            seconds: env_or("ZCC_BENCH_SECONDS", 20u64).max(1),
            medium_per_second: env_or("ZCC_BENCH_ZOOM_MEDIUM_PER_SECOND", 0u32),
        }
    }

    fn total(&self) -> usize {
        (self.rate * self.seconds) as usize
    }
}

fn zoom_user(i: usize) -> String {
    format!("u{i:05}")
}

fn cc_user(i: usize) -> String {
    format!("cc-{i:05}")
}

fn epoch_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn answered(engagement: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": "contact_center.engagement_user_answered",
        "event_ts": epoch_us() / 1000,
        "payload": {"account_id": "acct", "object": {
            "engagement_id": engagement,
            "user_id": user,
            "channel": "voice",
        }}
    }))
    .expect("json")
}

// ---------------------------------------------------------------------------------------------------------------------
// Process figures

// ---------------------------------------------------------------------------------------------------------------------
// Figures

/// `p50 .. p90 .. p99 .. max ..` of unsorted values.
fn summary(values: &[f64]) -> String {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1} ms",
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// A Prometheus histogram (no labels) as cumulative buckets, sum and count.
#[derive(Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    fn parse(text: &str, name: &str) -> Self {
        let mut h = Histogram::default();
        let bucket = format!("{name}_bucket{{le=\"");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                let Some((le, value)) = rest.split_once("\"}") else {
                    continue;
                };
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if let Ok(v) = value.trim().parse() {
                    h.buckets.push((le, v));
                }
            } else if let Some(v) = line.strip_prefix(&format!("{name}_sum ")) {
                h.sum = v.trim().parse().unwrap_or(0.0);
            } else if let Some(v) = line.strip_prefix(&format!("{name}_count ")) {
                h.count = v.trim().parse().unwrap_or(0.0);
            }
        }
        h
    }

    /// `self - earlier` (the same buckets).
    fn since(&self, earlier: &Histogram) -> Histogram {
        let before: HashMap<u64, f64> = earlier
            .buckets
            .iter()
            .map(|(le, v)| (le.to_bits(), *v))
            .collect();
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, v)| (*le, v - before.get(&le.to_bits()).copied().unwrap_or(0.0)))
                .collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    fn mean(&self) -> f64 {
        self.sum / self.count
    }

    /// The upper bound of the bucket holding the `p` quantile.
    fn quantile_bound(&self, p: f64) -> f64 {
        let target = p * self.count;
        self.buckets
            .iter()
            .find(|(_, cum)| *cum >= target)
            .map_or(f64::NAN, |(le, _)| *le)
    }

    fn describe_ms(&self) -> String {
        if self.count <= 0.0 {
            return "no samples".into();
        }
        format!(
            "n {:.0}, mean {:.1} ms, p50 <= {} ms, p99 <= {} ms (bucket bounds)",
            self.count,
            self.mean() * 1000.0,
            self.quantile_bound(0.5) * 1000.0,
            self.quantile_bound(0.99) * 1000.0,
        )
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Posting

/// One measured event's POST.
struct Sent {
    seq: usize,
    /// Wall clock just before the POST, epoch µs.
    at_us: i64,
    /// POST round trip (webhook acknowledged), ms; none when it failed.
    ack_ms: Option<f64>,
}

struct Posted {
    sent: Vec<Sent>,
    failed: usize,
    seconds: f64,
}

/// Posts event `seq` (user `seq`, engagement `pres-{seq}`) for `seq` in `0..total` at `rate`/s, one task per event
/// on a fixed schedule.
async fn post_paced(url: String, rate: u64, total: usize) -> Posted {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let failed = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = Vec::with_capacity(total);
    for seq in 0..total {
        tokio::time::sleep_until(start + interval.mul_f64(seq as f64)).await;
        let request = signed(
            &client,
            &url,
            answered(&format!("pres-{seq}"), &cc_user(seq)),
        );
        let failed = failed.clone();
        tasks.spawn(async move {
            let at = Instant::now();
            let at_us = epoch_us();
            let ack_ms = match request.send().await {
                Ok(r) if r.status().is_success() => Some(at.elapsed().as_secs_f64() * 1000.0),
                Ok(r) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("event {seq}: HTTP {}", r.status());
                    }
                    None
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("event {seq}: {}", chain(&e));
                    }
                    None
                }
            };
            Sent { seq, at_us, ack_ms }
        });
        while let Some(done) = tasks.try_join_next() {
            sent.extend(done.ok());
        }
    }
    while let Some(done) = tasks.join_next().await {
        sent.extend(done.ok());
    }
    sent.sort_by_key(|s| s.seq);
    Posted {
        sent,
        failed: failed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// One backend (in its own process)

async fn simulator(s: &Settings) -> anyhow::Result<(SimServer, SimServerConfig)> {
    let limit = if s.medium_per_second == 0 {
        u32::MAX
    } else {
        s.medium_per_second
    };
    let config = SimServerConfig {
        presence_min_interval: Duration::from_secs(60),
        medium_per_second: limit,
        ..Default::default()
    };
    let bound = SimServer::bind(([127, 0, 0, 1], 0).into()).await?;
    let scenario = zoom_sim::generator::generate(&zoom_sim::generator::GeneratorConfig {
        seed: 7,
        engagements: 0,
        api_base: format!("{}/v2", bound.base_url()),
        ..Default::default()
    });
    let sim = bound.serve(config.clone(), &scenario);
    for i in 0..s.users {
        let user = zoom_user(i);
        sim.add_presence_user(NewPresenceUser::new(&user, format!("{user}@example.com")))
            .map_err(|e| anyhow::anyhow!("adding {user}: {e}"))?;
    }
    Ok((sim, config))
}

fn config(db_url: &str, sim: &SimServer, sim_config: &SimServerConfig, s: &Settings) -> Config {
    let mut c = Config::load(None).expect("defaults");
    c.server.listen = ([127, 0, 0, 1], 0).into();
    c.server.shutdown_timeout_seconds = 5;
    c.storage.database = Secret::new(db_url);
    c.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    c.admin.token = Some(Secret::new(TOKEN));
    c.media.enabled = false;
    c.sinks = Vec::new();
    // As tests/it/common/sim.rs `use_simulator`: the S2S app is the simulator's; scheduled work off.
    c.zoom.account_id = Some(sim_config.account_id.clone());
    c.zoom.client_id = Some(sim_config.client_id.clone());
    c.zoom.client_secret = Some(Secret::new(sim_config.client_secret.clone()));
    c.zoom.api_base = format!("{}/v2", sim.base_url());
    c.zoom.oauth_base = sim.base_url();
    c.reconcile.enabled = false;
    // The client's own budget for MEDIUM endpoints (default: Zoom's 20/s) would otherwise be the bottleneck.
    c.zoom.medium_per_second = if s.medium_per_second == 0 {
        100_000.0
    } else {
        f64::from(s.medium_per_second)
    };
    c.presence.enabled = true;
    c.presence.min_interval_seconds = 60;
    c.presence.users = (0..s.users).map(|i| (cc_user(i), zoom_user(i))).collect();
    c
}

async fn run_backend(label: &str, db_url: &str, s: &Settings) -> anyhow::Result<()> {
    // The simulator and the posting tasks get their own threads, so that the bridge's CPU can be told apart and
    // the simulator (Zoom, elsewhere in reality) is not queued behind the bridge's tasks.
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOAD_THREADS)
        .enable_all()
        .build()?;
    let result = measure(label, db_url, s, load.handle()).await;
    load.shutdown_background();
    result
}

/// Per-user stage times from the bridge's presence audit (epoch ms): session applied, status read, busy written.
#[derive(Default, Clone, Copy)]
struct Audit {
    event: Option<i64>,
    read: Option<i64>,
    write: Option<i64>,
}

async fn measure(
    label: &str,
    db_url: &str,
    s: &Settings,
    load: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let total = s.total();
    anyhow::ensure!(
        total + WARMUP <= s.users,
        "{total} events + {WARMUP} warm-up need as many distinct users (each gets one busy write): raise ZCC_BENCH_USERS"
    );
    let (sim, sim_config) = {
        let users = *s;
        load.spawn(async move { simulator(&users).await })
            .await
            .context("simulator task")??
    };
    let server = zcc_bridge::start(config(db_url, &sim, &sim_config, s)).await?;
    let base = format!("http://{}", server.addr());
    let webhook = format!("{base}/webhooks/zoom");

    // Warm-up on the last users: the token, connections, statements.
    let http = reqwest::Client::new();
    for i in 0..WARMUP {
        let user = s.users - 1 - i;
        let r = signed(
            &http,
            &webhook,
            answered(&format!("warm-{i}"), &cc_user(user)),
        )
        .send()
        .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "warm-up webhook: HTTP {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.stats().presence_updates < WARMUP as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "warm-up: {} of {WARMUP} presence updates within 30 s (sim stats {:?})",
            sim.stats().presence_updates,
            sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats0 = sim.stats();
    let before = scrape(&base).await;

    let (busy0, total0) = cpu_ticks();
    let (bridge0, load0) = thread_cpu_seconds();
    let started = Instant::now();
    let posted = load
        .spawn(post_paced(webhook.clone(), s.rate, total))
        .await
        .context("posting task")?;
    // Until every measured user has its update (or nothing new for 15 s, or 120 s).
    let expected = stats0.presence_updates + total as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0, Instant::now());
    loop {
        let updates = sim.stats().presence_updates;
        if updates >= expected || Instant::now() > deadline {
            break;
        }
        if updates != last.0 {
            last = (updates, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let (busy1, total1) = cpu_ticks();
    let (bridge1, load1) = thread_cpu_seconds();
    // Anything late (e.g. a retry) shows up in the counts below.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = scrape(&base).await;
    let stats1 = sim.stats();

    // The simulator's view: each measured user's applied busy update.
    let users: HashMap<String, zoom_sim::PresenceUser> = sim
        .presence()
        .into_iter()
        .map(|u| (u.user_id.clone(), u))
        .collect();
    // The bridge's view: the audit of each user.
    let mut audits: HashMap<String, Audit> = HashMap::new();
    for view in zcc_bridge::presence::view(&*server.store(), 20).await? {
        let mut a = Audit::default();
        // Newest first: the last assignment is the oldest entry of each kind.
        for entry in &view.audit {
            match entry.kind.as_str() {
                "event" => a.event = Some(entry.at),
                "read" => a.read = Some(entry.at),
                "write_busy" => a.write = Some(entry.at),
                _ => {}
            }
        }
        audits.insert(view.user, a);
    }

    let mut latency = Vec::with_capacity(total);
    let mut acks = Vec::with_capacity(total);
    let (mut to_event, mut to_read, mut to_write, mut to_sim) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // (decision latency, ack, POST -> applied, applied -> read, read -> write, write -> simulator) per event.
    let mut breakdown: Vec<[f64; 6]> = Vec::new();
    let mut by_quarter: [Vec<f64>; 4] = Default::default();
    let (mut no_update, mut extra_writes, mut refused) = (0usize, 0usize, 0usize);
    for sent in &posted.sent {
        let Some(ack) = sent.ack_ms else {
            continue;
        };
        acks.push(ack);
        let user = zoom_user(sent.seq);
        let updates: Vec<&zoom_sim::PresenceUpdate> = users
            .get(&user)
            .map(|u| {
                u.updates
                    .iter()
                    .filter(|x| x.via == PresenceVia::Api)
                    .collect()
            })
            .unwrap_or_default();
        refused += updates
            .iter()
            .filter(|x| x.outcome != PresenceOutcome::Applied)
            .count();
        let applied: Vec<&&zoom_sim::PresenceUpdate> = updates
            .iter()
            .filter(|x| x.outcome == PresenceOutcome::Applied)
            .collect();
        extra_writes += applied.len().saturating_sub(1);
        let Some(busy) = applied.iter().find(|x| x.status == BUSY) else {
            no_update += 1;
            continue;
        };
        let sent_ms = sent.at_us as f64 / 1000.0;
        let ms = busy.at_ms as f64 - sent_ms;
        latency.push(ms);
        by_quarter[(sent.seq * 4 / total).min(3)].push(ms);
        if let Some(a) = audits.get(&user) {
            if let (Some(event), Some(read), Some(write)) = (a.event, a.read, a.write) {
                to_event.push(event as f64 - sent_ms);
                to_read.push((read - event) as f64);
                to_write.push((write - read) as f64);
                to_sim.push((busy.at_ms - write) as f64);
                breakdown.push([
                    ms,
                    ack,
                    event as f64 - sent_ms,
                    (read - event) as f64,
                    (write - read) as f64,
                    (busy.at_ms - write) as f64,
                ]);
            }
        }
    }
    let mut sorted = latency.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = percentile(&sorted, 0.99);
    let mut acks_sorted = acks.clone();
    acks_sorted.sort_by(f64::total_cmp);
    let ack_p99 = percentile(&acks_sorted, 0.99);
    println!(
        "{label:<9} decision latency, webhook POST -> Zoom (simulator) handles the PUT {BUSY}, at {}/s over {} users \
         ({total} events in {:.2} s, {} refused): {}; {} of {total} users updated, {no_update} without an update, \
         {extra_writes} extra writes, {refused} refused PUTs; target p99 <= 20 ms: {}",
        s.rate,
        s.users,
        posted.seconds,
        posted.failed,
        summary(&latency),
        latency.len(),
        if p99 <= 20.0 && no_update == 0 && posted.failed == 0 {
            "met"
        } else {
            "NOT met"
        },
    );
    println!(
        "{label:<9} baseline: webhook ack (POST round trip) p50 {:.1} ms  p99 {ack_p99:.1} ms; decision p99 / ack p99 = {:.1}x \
         (clock: the simulator stamps whole epoch ms, so decision figures read 0-1 ms low)",
        percentile(&acks_sorted, 0.5),
        p99 / ack_p99,
    );
    let quarters: Vec<String> = by_quarter
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut q = q.clone();
            q.sort_by(f64::total_cmp);
            format!(
                "Q{} p50 {:.1} / p99 {:.1}",
                i + 1,
                percentile(&q, 0.5),
                percentile(&q, 0.99)
            )
        })
        .collect();
    println!("{label:<9} by quarter of the run: {}", quarters.join(";  "));
    println!(
        "{label:<9} stages (bridge audit, ms clock; {} events): POST -> session applied by the worker {}",
        to_event.len(),
        summary(&to_event)
    );
    println!(
        "{label:<9}   applied -> status read starts (apply commit, claim) {}",
        summary(&to_read)
    );
    println!(
        "{label:<9}   read starts -> busy write starts (GET round trip)  {}",
        summary(&to_write)
    );
    println!(
        "{label:<9}   write starts -> the simulator handles the PUT    {}",
        summary(&to_sim)
    );
    // Where the slowest 1% spent their time.
    breakdown.sort_by(|a, b| b[0].total_cmp(&a[0]));
    let tail = &breakdown[..breakdown.len().div_ceil(100)];
    let mean = |i: usize| tail.iter().map(|b| b[i]).sum::<f64>() / tail.len().max(1) as f64;
    println!(
        "{label:<9} the slowest 1% ({} events, decision {:.1} ms on average): ack {:.1} ms, POST -> applied {:.1} ms, \
         applied -> read {:.1} ms, GET {:.1} ms, write -> simulator {:.1} ms (means)",
        tail.len(),
        mean(0),
        mean(1),
        mean(2),
        mean(3),
        mean(4),
        mean(5),
    );
    // Worker rounds that applied the measured sessions: the distinct `event` audit times (one `now` per round).
    let mut rounds: Vec<(i64, usize)> = Vec::new();
    {
        let mut times: Vec<(i64, usize)> = posted
            .sent
            .iter()
            .filter_map(|sent| {
                let a = audits.get(&zoom_user(sent.seq))?;
                Some((a.event?, sent.seq))
            })
            .collect();
        times.sort_unstable();
        for (at, seq) in times {
            match rounds.last_mut() {
                Some((last, _)) if *last == at => {}
                _ => rounds.push((at, seq)),
            }
        }
    }
    let gaps: Vec<String> = (0..4)
        .map(|q| {
            let mut g: Vec<f64> = rounds
                .windows(2)
                .filter(|w| (w[1].1 * 4 / total).min(3) == q)
                .map(|w| (w[1].0 - w[0].0) as f64)
                .collect();
            g.sort_by(f64::total_cmp);
            format!(
                "Q{} {:.0} ms ({} rounds)",
                q + 1,
                percentile(&g, 0.5),
                g.len() + 1
            )
        })
        .collect();
    println!(
        "{label:<9} worker: {} apply rounds for {} sessions ({:.1} each); time between rounds, p50: {}",
        rounds.len(),
        to_event.len(),
        to_event.len() as f64 / rounds.len().max(1) as f64,
        gaps.join(", ")
    );
    // The cost of the whole agent directory at the end of the run (every agent the run named, and the directory
    // built from them), which an apply round of `presence::PresenceSync` pays when it resolves agents through it.
    let store = server.store();
    let (mut read_ms, mut build_ms, mut agents) = (Vec::new(), Vec::new(), 0);
    for _ in 0..7 {
        let t = Instant::now();
        let rows = store.agent_rows().await?;
        read_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let idents: Vec<_> = rows.iter().map(|r| r.ident()).collect();
        let directory = zcc_bridge::core::activity::AgentDirectory::build(idents.iter());
        build_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        agents = rows.len();
        drop(directory);
    }
    read_ms.sort_by(f64::total_cmp);
    build_ms.sort_by(f64::total_cmp);
    println!(
        "{label:<9} reading every agent at the end ({agents} agents, idle bridge, median of 7): agent_rows() {:.2} ms, \
         AgentDirectory::build {:.2} ms (what an apply round costs on top when it needs the whole directory)",
        percentile(&read_ms, 0.5),
        percentile(&build_ms, 0.5),
    );
    let decision = Histogram::parse(&after, "zcc_presence_decision_seconds")
        .since(&Histogram::parse(&before, "zcc_presence_decision_seconds"));
    let merges = Histogram::parse(&after, "zcc_projection_seconds")
        .since(&Histogram::parse(&before, "zcc_projection_seconds"));
    let batches = Histogram::parse(&after, "zcc_projection_batch_size")
        .since(&Histogram::parse(&before, "zcc_projection_batch_size"));
    println!(
        "{label:<9} bridge: zcc_presence_decision_seconds (claim -> PUT done, the worker's part) {}",
        decision.describe_ms()
    );
    println!(
        "{label:<9} bridge: projector merges {:.0} ({:.1} events each), zcc_projection_seconds {}",
        merges.count,
        batches.mean(),
        merges.describe_ms()
    );
    println!(
        "{label:<9} simulator: {} GET and {} PUT presence_status, {} per-user 429, {} per-second 429 (during the run)",
        stats1.presence_reads - stats0.presence_reads,
        stats1.presence_updates - stats0.presence_updates,
        stats1.presence_rate_limited - stats0.presence_rate_limited,
        stats1.rate_limited - stats0.rate_limited,
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let machine = (busy1 - busy0) / 100.0;
    let (bridge, load_cpu) = (bridge1 - bridge0, load1 - load0);
    println!(
        "{label:<9} CPU over the {wall:.1} s ({cores:.0} cores = {:.1} CPU-s): bridge {bridge:.1} s ({:.0} µs per event), \
         simulator + posting {load_cpu:.1} s, other processes{} {:.1} s; machine busy {:.0}%",
        wall * cores,
        bridge / total as f64 * 1e6,
        if label == "postgres" {
            " (Postgres among them)"
        } else {
            ""
        },
        (machine - bridge - load_cpu).max(0.0),
        (busy1 - busy0) / (total1 - total0) * 100.0,
    );
    server.shutdown().await?;
    drop(sim);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// Parent: one child process per backend

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logging();
    let settings = Settings::from_env();
    if let Ok(label) = std::env::var(CHILD_ENV) {
        let db_url = std::env::var(DB_ENV).context("the child needs its database URL")?;
        return run_backend(&label, &db_url, &settings).await;
    }
    println!(
        "presence benchmark: {} mapped users, {} events/s for {} s ({} engagement_user_answered events, each a distinct \
         user and engagement); per-user update interval 60 s (bridge and simulator); MEDIUM per-second limit {}; \
         each backend in a fresh process",
        settings.users,
        settings.rate,
        settings.seconds,
        settings.total(),
        if settings.medium_per_second == 0 {
            "lifted".to_string()
        } else {
            format!("{}/s", settings.medium_per_second)
        },
    );
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    if std::env::var("ZCC_BENCH_SKIP_SQLITE").is_err() {
        run_child(CHILD_ENV, DB_ENV, "sqlite", &sqlite).await?;
    }
    if let Ok(admin) = std::env::var("ZCC_TEST_POSTGRES_URL") {
        if !admin.is_empty() {
            let url = fresh_postgres(&admin, "presence").await?;
            run_child(CHILD_ENV, DB_ENV, "postgres", &url).await?;
        }
    }
    Ok(())
}
