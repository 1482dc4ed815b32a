//! A Standard Webhooks receiver for delivery tests: verifies every request's signature, records it, and answers
//! as told (fail the next N with a status, delay each answer).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use zcc_bridge::delivery::standard_webhooks::{verify, Secret};

/// The signing secret the tests configure.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub body: Value,
    /// What we answered.
    pub status: u16,
    pub signature_ok: bool,
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    /// Answer the next N requests with `fail_status`.
    fail_next: AtomicUsize,
    fail_status: AtomicU64,
    delay_ms: AtomicU64,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(listener)
    }

    /// Serves on a port chosen before (a sink can be configured with it while nothing listens yet).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the reserved port");
        Self::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        self.inner
            .fail_status
            .store(u64::from(status), Ordering::SeqCst);
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("lock").clone()
    }

    /// Accepted (2xx) requests, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status < 300)
            .collect()
    }
}

/// A free loopback port with nothing listening on it (connections are refused until someone binds it).
pub fn reserve_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

async fn hook(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or_default();
    let secret = Secret::parse(WHSEC).expect("test secret");
    let now = chrono::Utc::now().timestamp();
    let signature_ok = verify(
        &secret,
        &id,
        timestamp,
        &header("webhook-signature"),
        &body,
        now,
    )
    .is_ok();
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = inner
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if !signature_ok {
        400
    } else if failing {
        inner.fail_status.load(Ordering::SeqCst) as u16
    } else {
        200
    };
    inner.received.lock().expect("lock").push(Received {
        id,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        signature_ok,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
