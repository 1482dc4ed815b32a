//! Hostile clients for the connection-hardening test and benchmark (`tests/connections.rs`,
//! `benches/connections.rs`): idle connections that never send a byte, uploads that stall most of the way through
//! a declared body, from one loopback address or spread over many, against the real server binary started under a
//! given open-file limit.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};

/// The webhook secret the server is started with.
pub const HOSTILE_SECRET: &str = "hostile-test-webhook-secret";

/// Where the attacker's connections come from.
#[derive(Debug, Clone, Copy)]
pub enum Sources {
    /// Every connection from this address.
    One(Ipv4Addr),
    /// Connection `i` from `127.0.<1 + i / 250>.<1 + i % 250>`: as many addresses as connections.
    Spread,
}

impl Sources {
    pub fn address(self, i: usize) -> Ipv4Addr {
        match self {
            Sources::One(ip) => ip,
            Sources::Spread => Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8),
        }
    }
}

/// Raises this process's open-file soft limit to its hard limit; the attack needs about 2,500 sockets.
pub fn raise_own_fd_limit(needed: u64) -> u64 {
    let soft = rlimit::increase_nofile_limit(1 << 20).expect("raise the open-file limit");
    assert!(
        soft >= needed,
        "this test opens {needed} sockets but the open-file hard limit is {soft} (raise it: ulimit -Hn)"
    );
    soft
}

/// The server binary started as `bash -c 'ulimit -n LIMIT; exec zcc-bridge serve'` (soft and hard limit), with
/// `env` (ZCC_BRIDGE_* keys); returns the child (its pid is the server's), its address.
pub async fn spawn_limited(
    fd_limit: u64,
    env: &[(&str, String)],
    log_file: &std::path::Path,
) -> (Child, SocketAddr) {
    let log = std::fs::File::create(log_file).expect("create the server log");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -n {fd_limit} && exec \"$0\" serve"))
        .arg(env!("CARGO_BIN_EXE_zcc-bridge"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("ZCC_BRIDGE_SERVER__LISTEN", "127.0.0.1:0")
        .env("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", HOSTILE_SECRET)
        .env("ZCC_BRIDGE_MEDIA__ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("zcc-bridge listening on http://") {
                return url.trim().to_string();
            }
        }
        panic!(
            "the server exited before listening; see {}",
            log_file.display()
        );
    })
    .await
    .expect("the server listens within 60 s");
    (child, url.parse().expect("a socket address"))
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Open file descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(server))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Opens `n` connections that never send a byte. Returns those that connected.
pub async fn open_idle(server: SocketAddr, n: usize, sources: Sources) -> Vec<TcpStream> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let source = sources.address(i);
        tasks.spawn(async move { connect_from(source, server).await.ok() });
        // Connect in waves so that the listen backlog is not what refuses them.
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut out = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some(stream)) = joined {
            out.push(stream);
        }
    }
    out
}

/// Opens `n` uploads to `/webhooks/zoom` that declare `declared` bytes, send `sent` of them and stall. Returns the
/// connections and the body bytes the server took (written into its socket before the write would block).
pub async fn open_stalled(
    server: SocketAddr,
    n: usize,
    sources: Sources,
    declared: usize,
    sent: usize,
) -> (Vec<TcpStream>, u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let source = sources.address(i);
        tasks.spawn(async move {
            let mut stream = connect_from(source, server).await.ok()?;
            let head = format!(
                "POST /webhooks/zoom HTTP/1.1\r\nhost: bridge\r\ncontent-type: application/json\r\n\
                 content-length: {declared}\r\nx-zm-request-timestamp: 1\r\nx-zm-signature: v0=00\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.ok()?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut written = 0u64;
            let mut left = sent;
            while left > 0 {
                let part = &chunk[..left.min(chunk.len())];
                match tokio::time::timeout(Duration::from_secs(2), stream.write_all(part)).await {
                    Ok(Ok(())) => {
                        written += part.len() as u64;
                        left -= part.len();
                    }
                    // The server (and the kernel's buffers) take no more: that is the point.
                    _ => break,
                }
            }
            Some((stream, written))
        });
    }
    let mut out = Vec::with_capacity(n);
    let mut total = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some((stream, written))) = joined {
            out.push(stream);
            total += written;
        }
    }
    (out, total)
}

/// How many of `streams` the server has not closed (nor answered): a read would still block.
pub fn still_open(streams: &[TcpStream]) -> usize {
    let mut buf = [0u8; 512];
    streams
        .iter()
        .filter(|s| {
            matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count()
}

/// `GET /healthz` on a fresh connection: the status and the time to the whole answer.
pub async fn healthz(server: SocketAddr) -> (Option<reqwest::StatusCode>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let started = Instant::now();
    let status = match client.get(format!("http://{server}/healthz")).send().await {
        Ok(r) => {
            let status = r.status();
            r.bytes().await.ok().map(|_| status)
        }
        Err(_) => None,
    };
    (status, started.elapsed())
}

/// A signed webhook (a distinct event each call) on a fresh connection from `source`: the status and the time to
/// the acknowledgement.
pub async fn signed_webhook(
    server: SocketAddr,
    source: Ipv4Addr,
    n: usize,
) -> (Option<reqwest::StatusCode>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let body = serde_json::to_vec(&serde_json::json!({
        "event": "contact_center.engagement_started",
        "event_ts": now * 1000 + n as i64,
        "payload": {"account_id": "acct", "object": {"engagement_id": format!("hostile-{n}")}}
    }))
    .expect("serialise");
    let started = Instant::now();
    let status = client
        .post(format!("http://{server}/webhooks/zoom"))
        .header("x-zm-request-timestamp", now.to_string())
        .header(
            "x-zm-signature",
            zoom::webhook::sign(HOSTILE_SECRET.as_bytes(), now, &body),
        )
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status());
    (status, started.elapsed())
}

/// The server's own count of open client connections (`zcc_http_connections` on `/metrics`), this request's
/// connection included.
pub async fn server_connections(server: SocketAddr) -> Option<f64> {
    let text = reqwest::get(format!("http://{server}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("zcc_http_connections "))
        .and_then(|v| v.trim().parse().ok())
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub idle_open: usize,
    pub stalled_open: usize,
    /// Of the stalled uploads, how many the server still held at the end (not refused, cancelled or timed out).
    pub stalled_held_at_end: usize,
    pub stalled_bytes_sent: u64,
    pub healthz: Vec<(Option<reqwest::StatusCode>, Duration)>,
    pub webhooks: Vec<(Option<reqwest::StatusCode>, Duration)>,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub server_fds: usize,
    /// Open client connections as the server counts them.
    pub server_connections: Option<f64>,
    /// Of the idle connections, how many the server had closed by the end (idle timeout or eviction).
    pub idle_closed_at_end: usize,
}

/// Holds `idle` idle connections and `stalled` stalled uploads (`sent` of `declared` bytes) from `sources` open
/// against the server (pid `pid`), then measures `/healthz` (`samples` fresh connections) and signed webhooks from
/// `webhook_source`, and the server's memory. The attacking connections stay open until it returns.
#[allow(clippy::too_many_arguments)]
pub async fn attack(
    server: SocketAddr,
    pid: u32,
    idle: usize,
    stalled: usize,
    declared: usize,
    sent: usize,
    sources: Sources,
    webhook_source: Ipv4Addr,
    samples: usize,
) -> Measured {
    let (stalled_streams, stalled_bytes_sent) =
        open_stalled(server, stalled, sources, declared, sent).await;
    let idle_streams = open_idle(server, idle, sources).await;
    // Let the server take in what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut healthz_results = Vec::new();
    let mut webhooks = Vec::new();
    for n in 0..samples {
        healthz_results.push(healthz(server).await);
        webhooks.push(signed_webhook(server, webhook_source, n).await);
    }
    let (rss_kib, peak_rss_kib) = rss_kib(pid);
    let server_fds = open_fds(pid);
    let server_connections = server_connections(server).await;
    let idle_open = idle_streams.len();
    let idle_closed_at_end = idle_open - still_open(&idle_streams);
    Measured {
        idle_open,
        stalled_open: stalled_streams.len(),
        stalled_held_at_end: still_open(&stalled_streams),
        stalled_bytes_sent,
        healthz: healthz_results,
        webhooks,
        rss_kib,
        peak_rss_kib,
        server_fds,
        server_connections,
        idle_closed_at_end,
    }
}
