//! Live stream benchmark: fan-out latency from webhook receipt to Server-Sent Events delivery on many concurrent
//! `GET /api/v1/stream` clients at a sustained rate, and memory per idle client.
//!
//! Each backend runs in a fresh process (this binary again), so its memory figures start from a clean heap. The
//! clients and the posting tasks run on their own runtime (threads `bench-load`), so the bridge's CPU is counted
//! apart from theirs.
//! 1. Memory: RSS (after `malloc_trim`) before and after opening N idle SSE clients (raw sockets that keep an 8 KiB
//!    read buffer and parse the stream themselves). The clients run in the same process, so the figure includes
//!    them; their part is measured first by opening the same N clients against a listener that only answers the
//!    SSE head and holds the sockets, then against a bare axum SSE endpoint (what axum and hyper hold), and the
//!    server's part is the difference.
//! 2. Fan-out: with the N clients connected, signed stream-relevant webhooks (answered, hold, unhold, muted,
//!    unmuted; every one distinct) are posted at a steady rate; latency = the client parsing the SSE frame - the
//!    start of the webhook POST, for every (event, client) pair, each pair checked (missing, duplicates). Baseline
//!    in the same run: the webhook's own acknowledgement (POST round trip).
//!
//!   cargo bench -p zcc-bridge --bench stream
//!   ZCC_BENCH_CLIENTS=500 ZCC_BENCH_RATE=2000 ZCC_BENCH_SECONDS=10 cargo bench -p zcc-bridge --bench stream
//!   (ZCC_TEST_POSTGRES_URL set: the same on Postgres too; ZCC_BENCH_SKIP_SQLITE set: Postgres only)

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zcc_bridge::config::{Config, Secret};

/// `event_ts` of event 0; event `seq` has `BASE_TS + seq`, probes have `BASE_TS - 1 - i`.
const BASE_TS: i64 = 1_795_251_600_000;
/// One engagement's events, in order (each one becomes a live event: accepted, held, resumed, muted, unmuted).
const EVENTS: [&str; 5] = [
    "contact_center.engagement_user_answered",
    "contact_center.engagement_user_hold",
    "contact_center.engagement_user_unhold",
    "contact_center.engagement_user_muted",
    "contact_center.engagement_user_unmuted",
];
/// Read buffer of each client.
const READ_BUF: usize = 8 * 1024;
/// Set in the child process that runs one backend: its label; `DB_ENV` holds its database URL.
const CHILD_ENV: &str = "ZCC_BENCH_STREAM_CHILD";
const DB_ENV: &str = "ZCC_BENCH_STREAM_DB";
struct Settings {
    clients: usize,
    rate: u64,
    seconds: u64,
    settle: Duration,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            clients: env_or("ZCC_BENCH_CLIENTS", 500usize).max(1),
            rate: env_or("ZCC_BENCH_RATE", 2000u64).max(1),
            seconds: env_or("ZCC_BENCH_SECONDS", 10u64).max(1),
            settle: Duration::from_secs(env_or("ZCC_BENCH_SETTLE_SECONDS", 2u64)),
        }
    }

    fn total(&self) -> usize {
        (self.rate * self.seconds) as usize
    }
}

fn body(seq: i64) -> Vec<u8> {
    let index = seq.rem_euclid(EVENTS.len() as i64);
    serde_json::to_vec(&serde_json::json!({
        "event": EVENTS[index as usize],
        "event_ts": BASE_TS + seq,
        "payload": {"account_id": "acct", "object": {
            "engagement_id": format!("stream-{}", seq.div_euclid(EVENTS.len() as i64)),
            "user_id": format!("U{}", seq.rem_euclid(50)),
            "channel": "voice",
        }}
    }))
    .expect("json")
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

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Gives freed heap back to the OS (start-up garbage would otherwise be reused by the clients and hide their
/// cost, and short-lived buffers freed since would count as held), then returns the RSS, KiB.
fn trimmed_rss() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it has no preconditions.
    unsafe {
        malloc_trim(0);
    }
    status_kib("VmRSS:")
}

// ---------------------------------------------------------------------------------------------------------------------
// SSE clients (raw sockets)

/// What every client and the posting tasks share.
struct Shared {
    epoch: Instant,
    total: usize,
    /// When event `seq`'s POST started: nanoseconds since `epoch`, plus 1 (0: not sent yet).
    sent: Vec<AtomicU64>,
    /// Clients that have the response head.
    connected: AtomicUsize,
    /// Probe events received (all clients together).
    probes: AtomicUsize,
    /// Measured events received (all clients together, duplicates not counted).
    delivered: AtomicUsize,
}

impl Shared {
    fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            total,
            sent: (0..total).map(|_| AtomicU64::new(0)).collect(),
            connected: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            delivered: AtomicUsize::new(0),
        })
    }
}

/// What one client saw.
#[derive(Default)]
struct Received {
    /// Latency of event `seq` in µs; `u32::MAX`: not received. Allocated at the first measured event, so that an
    /// idle client holds nothing but its socket and read buffer.
    latency_us: Vec<u32>,
    duplicates: usize,
    /// Frames whose `event_ts` is not one this run sent, or that arrived before their send was recorded.
    unexpected: usize,
}

/// Decodes `Transfer-Encoding: chunked` and splits Server-Sent Events; reports each event's `event_ts`.
struct SseReader {
    chunked: bool,
    chunk: Chunk,
    raw: Vec<u8>,
    body: Vec<u8>,
    /// The current event has a `data:` line; its `event_ts` if it has one.
    data: Option<Option<i64>>,
}

enum Chunk {
    Size,
    Data(usize),
    Crlf,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `event_ts` of a live event's JSON (a digit scan: a full JSON parse per frame and client would dominate).
fn event_ts(data: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"event_ts\":";
    let at = find(data, KEY)? + KEY.len();
    let digits = &data[at..];
    let (negative, digits) = match digits.first() {
        Some(b'-') => (true, &digits[1..]),
        _ => (false, digits),
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let value: i64 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
    Some(if negative { -value } else { value })
}

impl SseReader {
    fn new(chunked: bool) -> Self {
        Self {
            chunked,
            chunk: Chunk::Size,
            raw: Vec::new(),
            body: Vec::new(),
            data: None,
        }
    }

    /// Feeds bytes read from the socket; `on_event` gets the `event_ts` of every complete event with data.
    fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(Option<i64>)) {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            self.dechunk();
        } else {
            self.body.extend_from_slice(bytes);
        }
        let mut start = 0;
        while let Some(nl) = self.body[start..].iter().position(|&b| b == b'\n') {
            let mut line = &self.body[start..start + nl];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if line.is_empty() {
                if let Some(ts) = self.data.take() {
                    on_event(ts);
                }
            } else if let Some(data) = line.strip_prefix(b"data:") {
                self.data = Some(event_ts(data));
            }
            // `id:`, `event:` and comments (keep-alives) carry nothing this benchmark needs.
            start += nl + 1;
        }
        self.body.drain(..start);
    }

    fn dechunk(&mut self) {
        let mut pos = 0;
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(eol) = find(&self.raw[pos..], b"\r\n") else {
                        break;
                    };
                    let line = &self.raw[pos..pos + eol];
                    let hex = line.split(|&b| b == b';').next().unwrap_or(line);
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                        .unwrap_or(0);
                    pos += eol + 2;
                    // A zero-sized chunk ends the body; the socket's end tells the client.
                    self.chunk = if size == 0 {
                        Chunk::Crlf
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let take = left.min(self.raw.len() - pos);
                    if take == 0 {
                        break;
                    }
                    self.body.extend_from_slice(&self.raw[pos..pos + take]);
                    pos += take;
                    self.chunk = if take == left {
                        Chunk::Crlf
                    } else {
                        Chunk::Data(left - take)
                    };
                }
                Chunk::Crlf => {
                    if self.raw.len() - pos < 2 {
                        break;
                    }
                    pos += 2;
                    self.chunk = Chunk::Size;
                }
            }
        }
        self.raw.drain(..pos);
    }
}

/// One SSE client: connects, reads the response head, then parses events until `stop` or the end of the stream.
async fn sse_client(
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Received> {
    let mut socket = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr} (open files limit?)"))?;
    socket.set_nodelay(true)?;
    socket
        .write_all(
            format!(
                "GET /api/v1/stream HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
                 accept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut buf = vec![0u8; READ_BUF];
    let mut head = Vec::new();
    let body_start = loop {
        let n = socket.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the server closed the connection before answering");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end + 4;
        }
        anyhow::ensure!(head.len() < 64 * 1024, "no end of the response head");
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    anyhow::ensure!(
        text.starts_with("http/1.1 200"),
        "stream refused: {}",
        text.lines().next().unwrap_or("")
    );
    let mut reader = SseReader::new(text.contains("transfer-encoding: chunked"));
    shared.connected.fetch_add(1, Ordering::Relaxed);

    let mut received = Received::default();
    let now = Instant::now();
    reader.feed(&head[body_start..], &mut |ts| {
        if record(&shared, &mut received, now, ts) {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
    });
    loop {
        let n = tokio::select! {
            read = socket.read(&mut buf) => read?,
            _ = stop.changed() => break,
        };
        if n == 0 {
            break;
        }
        // Every frame of one read arrived at the same moment.
        let now = Instant::now();
        let mut delivered = 0;
        reader.feed(&buf[..n], &mut |ts| {
            delivered += usize::from(record(&shared, &mut received, now, ts));
        });
        if delivered > 0 {
            shared.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
    }
    Ok(received)
}

/// Accounts for one event a client parsed at `now`; true if it is a measured event seen for the first time.
fn record(shared: &Shared, received: &mut Received, now: Instant, ts: Option<i64>) -> bool {
    match ts.map(|ts| ts - BASE_TS) {
        Some(seq) if seq < 0 => {
            shared.probes.fetch_add(1, Ordering::Relaxed);
            false
        }
        Some(seq) if (seq as usize) < shared.total => {
            let seq = seq as usize;
            let sent = shared.sent[seq].load(Ordering::Acquire);
            if sent == 0 {
                received.unexpected += 1;
                return false;
            }
            if received.latency_us.is_empty() {
                received.latency_us = vec![u32::MAX; shared.total];
            }
            let at = now.duration_since(shared.epoch).as_nanos() as u64;
            let us = (at.saturating_sub(sent - 1) / 1000).min(u32::MAX as u64 - 1) as u32;
            let slot = &mut received.latency_us[seq];
            if *slot == u32::MAX {
                *slot = us;
                true
            } else {
                received.duplicates += 1;
                false
            }
        }
        _ => {
            received.unexpected += 1;
            false
        }
    }
}

/// N clients of `addr` sharing `shared`; stopped by `stop`.
struct Clients {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<Received>>>,
}

impl Clients {
    async fn open(
        load: &tokio::runtime::Handle,
        addr: SocketAddr,
        n: usize,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..n)
            .map(|_| load.spawn(sse_client(addr, shared.clone(), stopped.clone())))
            .collect();
        let clients = Self {
            shared,
            stop,
            tasks,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while clients.shared.connected.load(Ordering::Relaxed) < n {
            if clients.tasks.iter().any(|t| t.is_finished()) {
                let finished = clients.close().await;
                let error = finished
                    .into_iter()
                    .find_map(Result::err)
                    .map(|e| format!("{e:#}"))
                    .unwrap_or_else(|| "a client ended".into());
                anyhow::bail!("opening {n} SSE clients of {addr}: {error}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {n} SSE clients of {addr} connected within 60 s",
                clients.shared.connected.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(clients)
    }

    /// Stops every client and returns what each saw.
    async fn close(self) -> Vec<anyhow::Result<Received>> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            out.push(
                task.await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("client task: {e}"))),
            );
        }
        out
    }
}

/// A listener that answers every request with an SSE response head and then holds the socket, doing nothing
/// more: what the raw clients cost on their own.
async fn bare_sse_listener(
    load: &tokio::runtime::Handle,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let task = load.spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let mut held = Vec::new();
        let mut request = vec![0u8; 4096];
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut len = 0;
            while find(&request[..len], b"\r\n\r\n").is_none() && len < request.len() {
                match socket.read(&mut request[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_ok() {
                held.push(socket);
            }
        }
    });
    Ok((addr, task))
}

/// A bare axum endpoint answering `GET /api/v1/stream` with an SSE response that never sends an event (keep-alive
/// every 15 s, as the bridge's): what axum and hyper hold per idle SSE connection, before the bridge's own state.
async fn bare_axum_sse(
    load: &tokio::runtime::Handle,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let app = axum::Router::new().route(
        "/api/v1/stream",
        axum::routing::get(|| async {
            Sse::new(futures_util::stream::pending::<
                Result<Event, std::convert::Infallible>,
            >())
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let task = load.spawn(async move {
        if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
            let _ = axum::serve(listener, app).await;
        }
    });
    Ok((addr, task))
}

// ---------------------------------------------------------------------------------------------------------------------
// Posting

struct Posted {
    /// Acknowledgement (webhook 200) latencies, ms.
    acks: Vec<f64>,
    failed: usize,
    /// From the first scheduled send to the last acknowledgement.
    seconds: f64,
}

/// Posts events `0..total` at `rate`/s on a fixed schedule (one task per event, so a slow answer does not delay
/// the next send); records each send start in `shared.sent`.
async fn post_paced(url: &str, rate: u64, shared: &Arc<Shared>) -> Posted {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let acks: Arc<Mutex<Vec<f64>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..shared.total {
        tokio::time::sleep_until(start + interval.mul_f64(seq as f64)).await;
        let request = signed(&client, url, body(seq as i64));
        let shared = shared.clone();
        let acks = acks.clone();
        let failed = failed.clone();
        tasks.spawn(async move {
            let at = Instant::now();
            let since = at.duration_since(shared.epoch).as_nanos() as u64;
            shared.sent[seq].store(since + 1, Ordering::Release);
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    acks.lock()
                        .expect("lock")
                        .push(at.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(r) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("event {seq}: HTTP {}", r.status());
                    }
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("event {seq}: {}", chain(&e));
                    }
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut acks = acks.lock().expect("lock").clone();
    acks.sort_by(f64::total_cmp);
    Posted {
        acks,
        failed: failed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Figures

/// Percentile of sorted µs values, in ms.
fn percentile_us(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// One backend (in its own process)

fn config(db_url: &str) -> Config {
    let mut c = Config::load(None).expect("defaults");
    c.server.listen = ([127, 0, 0, 1], 0).into();
    c.server.shutdown_timeout_seconds = 5;
    c.storage.database = Secret::new(db_url);
    c.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    c.admin.token = Some(Secret::new(TOKEN));
    c.media.enabled = false;
    c.sinks = Vec::new();
    c
}

async fn run_backend(label: &str, db_url: &str, s: &Settings) -> anyhow::Result<()> {
    // The clients and the posting tasks get their own threads, so that the bridge's CPU can be told apart.
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOAD_THREADS)
        .enable_all()
        .build()?;
    let result = measure(label, db_url, s, load.handle()).await;
    load.shutdown_background();
    result
}

async fn measure(
    label: &str,
    db_url: &str,
    s: &Settings,
    load: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let server = zcc_bridge::start(config(db_url)).await?;
    let base = format!("http://{}", server.addr());
    let webhook = format!("{base}/webhooks/zoom");
    let n = s.clients;
    let total = s.total();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Memory, N clients at a time, each set kept open while the next is measured (RSS after a malloc_trim, so
    // that only what is held counts): the raw clients alone (against a listener that only answers the head),
    // the same clients of a bare axum SSE endpoint (what axum and hyper hold), then of the bridge. The shared
    // send-time table is allocated (and touched) before the first reading.
    let shared = Shared::new(total);
    let (bare_addr, bare) = bare_sse_listener(load).await?;
    let (axum_addr, axum_task) = bare_axum_sse(load).await?;
    let rss_start = trimmed_rss();
    let bare_clients = Clients::open(load, bare_addr, n, Shared::new(0)).await?;
    tokio::time::sleep(s.settle).await;
    let rss_bare = trimmed_rss();
    let axum_clients = Clients::open(load, axum_addr, n, Shared::new(0)).await?;
    tokio::time::sleep(s.settle).await;
    let rss_axum = trimmed_rss();
    let clients = Clients::open(load, server.addr(), n, shared).await?;
    tokio::time::sleep(s.settle).await;
    let rss_bridge = trimmed_rss();
    let gauge = metric(&scrape(&base).await, "zcc_stream_clients");
    for result in bare_clients.close().await {
        result.context("a client of the bare listener")?;
    }
    for result in axum_clients.close().await {
        result.context("a client of the bare axum endpoint")?;
    }
    bare.abort();
    axum_task.abort();
    let per_client = |from: u64, to: u64| to.saturating_sub(from) as f64 / n as f64;
    let client_kib = per_client(rss_start, rss_bare);
    let axum_kib = per_client(rss_bare, rss_axum);
    let bridge_kib = per_client(rss_axum, rss_bridge);
    println!(
        "{label:<9} memory per idle SSE client: {bridge_kib:.1} KiB (RSS +{:.1} MiB for {n} clients; /metrics zcc_stream_clients {}) \
         = server ~{:.1} KiB + in-process client ~{client_kib:.1} KiB",
        (rss_bridge.saturating_sub(rss_axum)) as f64 / 1024.0,
        gauge.map_or("?".to_string(), |g| g.to_string()),
        bridge_kib - client_kib,
    );
    println!(
        "{label:<9} memory references, same clients: against a listener that only answers the head {client_kib:.1} KiB each; \
         against a bare axum SSE endpoint {axum_kib:.1} KiB (axum + hyper ~{:.1} KiB per connection)",
        axum_kib - client_kib,
    );

    // Every client follows the stream: one probe event reaches all of them.
    let http = reqwest::Client::new();
    let probe = signed(&http, &webhook, body(-1)).send().await?;
    anyhow::ensure!(
        probe.status().is_success(),
        "probe webhook: HTTP {}",
        probe.status()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while clients.shared.probes.load(Ordering::Relaxed) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the probe event reached {} of {n} clients within 30 s",
            clients.shared.probes.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What the rest of the machine is doing while this process idles (other builds and tests share it).
    let (idle_busy0, idle_total0) = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_busy1, idle_total1) = cpu_ticks();
    let before = scrape(&base).await;

    // Fan-out at the rate.
    let (busy0, total0) = cpu_ticks();
    let (bridge0, load0) = thread_cpu_seconds();
    let started = Instant::now();
    let posted = {
        let (webhook, shared, rate) = (webhook.clone(), clients.shared.clone(), s.rate);
        load.spawn(async move { post_paced(&webhook, rate, &shared).await })
            .await
            .context("posting task")?
    };
    let expected = (total - posted.failed) * n;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (0, Instant::now());
    loop {
        let delivered = clients.shared.delivered.load(Ordering::Relaxed);
        if delivered >= expected || Instant::now() > deadline {
            break;
        }
        // Nothing new for 5 s: what is missing is not coming.
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (busy1, total1) = cpu_ticks();
    let (bridge1, load1) = thread_cpu_seconds();
    let wall = started.elapsed().as_secs_f64();
    let after = scrape(&base).await;
    let mut all = Vec::with_capacity(total * n);
    let mut per_event_max = vec![0u32; total];
    let mut per_event_clients = vec![0usize; total];
    let (mut duplicates, mut unexpected, mut failed_clients) = (0, 0, 0);
    for result in clients.close().await {
        let received = match result {
            Ok(r) => r,
            Err(e) => {
                failed_clients += 1;
                eprintln!("{label}: a client failed: {e:#}");
                continue;
            }
        };
        duplicates += received.duplicates;
        unexpected += received.unexpected;
        for (seq, &us) in received.latency_us.iter().enumerate() {
            if us != u32::MAX {
                all.push(us);
                per_event_max[seq] = per_event_max[seq].max(us);
                per_event_clients[seq] += 1;
            }
        }
    }
    all.sort_unstable();
    let mut complete: Vec<u32> = per_event_max
        .iter()
        .zip(&per_event_clients)
        .filter(|(_, &c)| c == n)
        .map(|(&us, _)| us)
        .collect();
    complete.sort_unstable();
    let pairs = total * n;
    let missing = pairs - all.len();
    let p99 = percentile_us(&all, 0.99);
    let ack_p99 = percentile(&posted.acks, 0.99);
    println!(
        "{label:<9} webhook -> {n} SSE clients at {}/s ({total} events in {:.2} s, {} refused): \
         p50 {:.1} ms  p90 {:.1} ms  p99 {p99:.1} ms  max {:.1} ms over {} (event, client) pairs; missing {missing}, duplicates {duplicates}, unexpected {unexpected}, failed clients {failed_clients}",
        s.rate,
        posted.seconds,
        posted.failed,
        percentile_us(&all, 0.5),
        percentile_us(&all, 0.9),
        all.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        all.len(),
    );
    println!(
        "{label:<9} event on all {n} clients: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms ({} of {total} events reached every client)",
        percentile_us(&complete, 0.5),
        percentile_us(&complete, 0.99),
        complete.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        complete.len(),
    );
    let publish = |text: &str, suffix: &str| {
        metric(text, &format!("zcc_stream_publish_delay_seconds_{suffix}")).unwrap_or(0.0)
    };
    let published = publish(&after, "count") - publish(&before, "count");
    let publish_ms = (publish(&after, "sum") - publish(&before, "sum")) / published * 1000.0;
    let catch_ups = metric(&after, "zcc_stream_client_catch_ups_total").unwrap_or(0.0)
        - metric(&before, "zcc_stream_client_catch_ups_total").unwrap_or(0.0);
    println!(
        "{label:<9} baseline: webhook ack (POST round trip) p50 {:.1} ms  p99 {ack_p99:.1} ms; fan-out p99 / ack p99 = {:.1}x; \
         target p99 <= 50 ms: {}",
        percentile(&posted.acks, 0.5),
        p99 / ack_p99,
        if p99 <= 50.0 && missing == 0 { "met" } else { "NOT met" },
    );
    println!(
        "{label:<9} server: hub publish delay (received_at -> broadcast, ms clock) mean {publish_ms:.1} ms over {published:.0} events; \
         client catch-ups from the log {catch_ups:.0}",
    );
    // /proc/stat counts jiffies (1/100 s) over all cores.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let machine = (busy1 - busy0) / 100.0;
    let (bridge, clients_cpu) = (bridge1 - bridge0, load1 - load0);
    println!(
        "{label:<9} CPU over the {wall:.1} s of fan-out ({cores:.0} cores = {:.1} CPU-s): bridge {bridge:.1} s ({:.1} µs per delivery), \
         bench clients + posting {clients_cpu:.1} s, other processes{} {:.1} s; machine busy {:.0}% (before the run, idle bench: {:.0}%)",
        wall * cores,
        bridge / all.len().max(1) as f64 * 1e6,
        if label == "postgres" { " (Postgres among them)" } else { "" },
        (machine - bridge - clients_cpu).max(0.0),
        (busy1 - busy0) / (total1 - total0) * 100.0,
        (idle_busy1 - idle_busy0) / (idle_total1 - idle_total0) * 100.0,
    );
    server.shutdown().await?;
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
        "stream benchmark: {} SSE clients, {} events/s for {} s ({} events, {} deliveries); each backend in a fresh process",
        settings.clients,
        settings.rate,
        settings.seconds,
        settings.total(),
        settings.total() * settings.clients
    );
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    if std::env::var("ZCC_BENCH_SKIP_SQLITE").is_err() {
        run_child(CHILD_ENV, DB_ENV, "sqlite", &sqlite).await?;
    }
    if let Ok(admin) = std::env::var("ZCC_TEST_POSTGRES_URL") {
        if !admin.is_empty() {
            let url = fresh_postgres(&admin, "stream").await?;
            run_child(CHILD_ENV, DB_ENV, "postgres", &url).await?;
        }
    }
    Ok(())
}
