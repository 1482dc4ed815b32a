//! Hostile connections: idle and slow clients are closed after their timeouts, the connection cap makes room by
//! closing idle connections, one address cannot hold every request slot, and under `ulimit -n 1024` thousands of
//! idle connections and hundreds of stalled uploads leave `/healthz` and webhooks served with bounded memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::common::hostile::*;
use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(s: &TestServer) -> SocketAddr {
    s.base
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// Waits (up to `within`) until the server closes `stream`; returns how long that took and what it sent first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((
                    started.elapsed(),
                    String::from_utf8_lossy(&received).into_owned(),
                ))
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .expect("bind a loopback source address");
    socket.connect(server).await.expect("connect")
}

/// A stalled upload: a signed-looking webhook head declaring 1,000 bytes, 10 of them sent.
async fn stalled_upload(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let mut stream = connect_from(source, server).await;
    stream
        .write_all(
            b"POST /webhooks/zoom HTTP/1.1\r\nhost: b\r\ncontent-length: 1000\r\n\r\n0123456789",
        )
        .await
        .expect("write");
    stream
}

/// When the server closes `stream`, measured from `t0` (within `within` of it), and what it sent first.
async fn closed_at(
    mut stream: TcpStream,
    t0: Instant,
    within: Duration,
) -> Option<(Duration, String)> {
    let (_, answer) = closed_within(&mut stream, within.checked_sub(t0.elapsed())?).await?;
    Some((t0.elapsed(), answer))
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_their_timeouts() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.server.idle_timeout_seconds = 6;
            c.server.header_read_timeout_seconds = 1;
            c.server.body_read_timeout_seconds = 1;
        })
        .await;
        let server = addr(&s);
        let local = Ipv4Addr::LOCALHOST;
        let t0 = Instant::now();
        let silent = connect_from(local, server).await;
        let mut keep_alive = connect_from(local, server).await;
        keep_alive
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: b\r\n\r\n")
            .await
            .unwrap();
        let mut partial_head = connect_from(local, server).await;
        partial_head
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: b\r\n")
            .await
            .unwrap();
        let stalled = stalled_upload(local, server).await;
        let within = Duration::from_secs(30);
        let (silent, keep_alive, partial_head, stalled) = tokio::join!(
            closed_at(silent, t0, within),
            closed_at(keep_alive, t0, within),
            closed_at(partial_head, t0, within),
            closed_at(stalled, t0, within),
        );
        // A head that never ends: closed after the header timeout (1 s), long before the idle timeout.
        let (after, answer) = partial_head.expect("a partial head is closed");
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "{backend:?}: partial head closed after {after:?}"
        );
        assert!(answer.is_empty(), "{answer:?}");
        // A body that never ends: 408 after the body timeout (1 s).
        let (after, answer) = stalled.expect("a stalled upload is closed");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{backend:?}: {answer:?}"
        );
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "{backend:?}: {after:?}"
        );
        // No bytes at all, or nothing after a response: closed after the idle timeout (6 s).
        let (after, answer) = silent.expect("a silent connection is closed");
        assert!(answer.is_empty(), "{answer:?}");
        assert!(
            after >= Duration::from_millis(5900),
            "{backend:?}: silent connection closed after {after:?}, before the idle timeout"
        );
        let (after, answer) = keep_alive.expect("an idle keep-alive connection is closed");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(
            after >= Duration::from_millis(5900),
            "{backend:?}: {after:?}"
        );
        // The server itself is fine.
        assert_eq!(
            s.client
                .get(s.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn the_connection_cap_closes_idle_connections_to_make_room() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.server.max_connections = 20;
            c.server.body_read_timeout_seconds = 3;
            c.server.max_requests_per_ip = 0;
        })
        .await;
        let server = addr(&s);
        let idle = open_idle(server, 60, Sources::One(Ipv4Addr::new(127, 0, 0, 2))).await;
        assert_eq!(idle.len(), 60);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = healthz(server).await;
        assert_eq!(status, Some(reqwest::StatusCode::OK), "{backend:?}");
        let open = still_open(&idle);
        assert!(
            open < 20,
            "{backend:?}: {open} of 60 idle connections are still open"
        );
        // When every connection is busy (stalled uploads: requests in flight), a new one is refused...
        drop(idle);
        let mut busy = Vec::new();
        for _ in 0..20 {
            busy.push(stalled_upload(Ipv4Addr::new(127, 0, 0, 3), server).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = healthz(server).await;
        assert_eq!(status, None, "{backend:?}: served beyond the cap");
        // ...until the stalled ones time out (408).
        let mut served = false;
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && !served {
            tokio::time::sleep(Duration::from_millis(200)).await;
            served = healthz(server).await.0 == Some(reqwest::StatusCode::OK);
        }
        assert!(served, "{backend:?}: never served again");
    }
}

#[tokio::test]
async fn one_address_cannot_hold_every_request_slot() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.server.max_requests_per_ip = 3;
            c.server.body_read_timeout_seconds = 60;
        })
        .await;
        let server = addr(&s);
        let attacker = Ipv4Addr::new(127, 0, 0, 2);
        let mut stalled = Vec::new();
        for _ in 0..3 {
            stalled.push(stalled_upload(attacker, server).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // At the limit and nothing stalled long enough yet: refused with 503 and Retry-After.
        let mut fourth = stalled_upload(attacker, server).await;
        let (_, answer) = closed_within(&mut fourth, Duration::from_secs(10))
            .await
            .expect("answered");
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "{backend:?}: {answer:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer:?}"
        );
        // Another address is not affected.
        let (status, _) = signed_webhook(server, Ipv4Addr::new(127, 0, 0, 4), 1).await;
        assert_ne!(
            status,
            Some(reqwest::StatusCode::SERVICE_UNAVAILABLE),
            "{backend:?}"
        );
        // Once the uploads have stalled for a second, a request from the same address takes the slot of the one
        // stalled longest, which is answered 408.
        tokio::time::sleep(STALL_GRACE_PLUS).await;
        let r = s
            .client
            .get(s.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(r.status(), 200);
        let ts = now_secs();
        let body = envelope(
            "contact_center.engagement_started",
            ts * 1000,
            serde_json::json!({"engagement_id": "E-slot"}),
        );
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::V4(attacker))
            .build()
            .unwrap();
        let r = client
            .post(s.url("/webhooks/zoom"))
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(SECRET.as_bytes(), ts, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let (_, answer) = closed_within(&mut stalled[0], Duration::from_secs(10))
            .await
            .expect("the oldest stalled upload is ended");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{backend:?}: {answer:?}"
        );
    }
}

const STALL_GRACE_PLUS: Duration = Duration::from_millis(1300);

/// The "done when", as a functional check (the figures are recorded by `benches/connections.rs`): the real
/// server under `ulimit -n 1024`, 2,000 idle connections and 300 uploads stalled after 900 KiB of a declared 1 MiB,
/// (1) from 300 different addresses, (2) from the webhook sender's own address. `/healthz` answers, a signed
/// webhook is acknowledged, and the server's RSS stays under 100 MiB.
#[tokio::test]
async fn under_ulimit_1024_thousands_of_hostile_connections_leave_the_server_serving() {
    raise_own_fd_limit(3000);
    for backend in backends() {
        let db = fresh_db(&backend).await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let (child, server) = spawn_limited(
            1024,
            &[("ZCC_BRIDGE_STORAGE__DATABASE", db.url.clone())],
            &log,
        )
        .await;
        let pid = child.id().expect("server pid");
        for (case, sources, webhook_source) in [
            ("spread", Sources::Spread, Ipv4Addr::LOCALHOST),
            (
                "same address",
                Sources::One(Ipv4Addr::LOCALHOST),
                Ipv4Addr::LOCALHOST,
            ),
        ] {
            let m = attack(
                server,
                pid,
                2000,
                300,
                1 << 20,
                900 * 1024,
                sources,
                webhook_source,
                3,
            )
            .await;
            let context = format!("{backend:?} {case}: {m:?}");
            eprintln!("{context}");
            assert!(m.idle_open >= 1900 && m.stalled_open >= 290, "{context}");
            for (status, _) in &m.healthz {
                assert_eq!(*status, Some(reqwest::StatusCode::OK), "healthz: {context}");
            }
            for (status, _) in &m.webhooks {
                assert_eq!(*status, Some(reqwest::StatusCode::OK), "webhook: {context}");
            }
            assert!(m.rss_kib < 100 * 1024, "RSS: {context}");
            assert!(m.server_fds <= 1024, "{context}");
        }
        drop(child);
    }
}

/// A request head larger than the read buffer (32 KiB) is refused with 431, not buffered.
#[tokio::test]
async fn oversized_heads_are_refused() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let mut stream = connect_from(Ipv4Addr::LOCALHOST, addr(&s)).await;
        let head = format!(
            "GET /healthz HTTP/1.1\r\nhost: b\r\nx-padding: {}\r\n\r\n",
            "a".repeat(40 * 1024)
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let (_, answer) = closed_within(&mut stream, Duration::from_secs(10))
            .await
            .expect("answered and closed");
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{backend:?}: {answer:?}"
        );
    }
}
