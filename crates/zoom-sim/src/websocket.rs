//! Zoom's WebSocket event subscription endpoint (reference §4): `GET /ws?subscriptionId=…&access_token=…`.
//!
//! [`EventHub`] is self-contained: [`router`] gives a stateless [`axum::Router`] to `.merge` into a server, and
//! [`EventHub::serve`] starts a standalone listener for tests. Events are pushed with [`EventHub::publish`] to every
//! connected client; with nobody connected they are dropped and counted, as Zoom has **no backfill**.
//!
//! Frames (server → client), all text frames of compact JSON:
//! - on connect: `{"module":"build_connection","success":true}`
//! - heartbeat reply: `{"module":"heartbeat","success":true}`
//! - event: `{"module":"message","content":"<stringified envelope JSON>"}`
//!
//! Confirmed by Zoom's docs: the URL and its two query parameters, the client's `{"module":"heartbeat"}` every 30 s,
//! no backfill. **Unconfirmed** (community clients only, reference §4 🟡/❓): the `build_connection`, heartbeat-reply
//! and `message` frame shapes and their extra keys (`success`, anything else Zoom adds), whether Zoom replies to every
//! heartbeat at all, how long Zoom waits for a missing heartbeat before closing (we default to 60 s), the close code it
//! uses then, and the HTTP status and body of a refused upgrade (we answer 401 `{"code":124,"message":"Invalid access
//! token."}` like the REST API, and 403 `{"code":403,"message":"Invalid subscriptionId."}`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{
    rejection::WebSocketUpgradeRejection, CloseFrame, Message, WebSocket, WebSocketUpgrade,
};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Decides whether an `access_token` query parameter is currently valid (known and not expired).
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The path Zoom serves the socket on (`wss://ws.zoom.us/ws`).
pub const WS_PATH: &str = "/ws";

/// Hub behaviour.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// A client that sends no `{"module":"heartbeat"}` for this long is disconnected. ❓ Zoom's real value is
    /// unpublished; clients are told to send one every 30 s, so 60 s is a guess.
    pub heartbeat_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(60),
        }
    }
}

/// A snapshot of the hub's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Upgrades accepted.
    pub connections: u64,
    /// Upgrades refused (bad token or subscription id).
    pub refused: u64,
    /// Calls to [`EventHub::publish`] (and [`EventHub::publish_content`]).
    pub published: u64,
    /// Event frames queued to a connected client (one per client per event).
    pub delivered: u64,
    /// Events published while no client was connected: lost, as with Zoom.
    pub dropped_while_disconnected: u64,
    /// Event frames not sent because the hub was [silent](EventHub::set_silent).
    pub dropped_while_silent: u64,
    /// Heartbeats received from clients.
    pub heartbeats: u64,
    /// Clients disconnected for not sending heartbeats.
    pub heartbeat_timeouts: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped_while_disconnected: AtomicU64,
    dropped_while_silent: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

enum Outbound {
    Text(String),
    Close { code: u16, reason: &'static str },
}

struct Inner {
    subscription_id: String,
    token_check: TokenCheck,
    config: HubConfig,
    clients: Mutex<HashMap<u64, mpsc::UnboundedSender<Outbound>>>,
    next_client: AtomicU64,
    silent: AtomicBool,
    counters: Counters,
}

/// The simulated WebSocket event subscription: accepts clients and fans events out to them. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub")
            .field("subscription_id", &self.inner.subscription_id)
            .field("connected", &self.connected())
            .field("stats", &self.stats())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventHub {
    /// A hub for `subscription_id` that admits tokens `token_check` accepts, with the default [`HubConfig`].
    pub fn new(subscription_id: impl Into<String>, token_check: TokenCheck) -> Self {
        Self::with_config(subscription_id, token_check, HubConfig::default())
    }

    pub fn with_config(
        subscription_id: impl Into<String>,
        token_check: TokenCheck,
        config: HubConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                subscription_id: subscription_id.into(),
                token_check,
                config,
                clients: Mutex::new(HashMap::new()),
                next_client: AtomicU64::new(1),
                silent: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        }
    }

    pub fn subscription_id(&self) -> &str {
        &self.inner.subscription_id
    }

    /// Sends `envelope` (a webhook-shaped `{event, event_ts, payload}`) to every connected client as
    /// `{"module":"message","content":"<compact JSON of envelope>"}`. Returns how many clients it was queued to;
    /// 0 means it was dropped (nobody connected), as Zoom does.
    pub fn publish(&self, envelope: &Value) -> usize {
        self.publish_content(&envelope.to_string())
    }

    /// Like [`publish`](Self::publish) with the `content` string given verbatim (e.g. pre-serialized bytes, or
    /// deliberately malformed content).
    pub fn publish_content(&self, content: &str) -> usize {
        let counters = &self.inner.counters;
        bump(&counters.published);
        if self.inner.silent.load(Ordering::Relaxed) {
            bump(&counters.dropped_while_silent);
            return 0;
        }
        let frame = json!({"module": "message", "content": content}).to_string();
        let sent = self.broadcast(|| Outbound::Text(frame.clone()));
        if sent == 0 {
            bump(&counters.dropped_while_disconnected);
        } else {
            counters.delivered.fetch_add(sent as u64, Ordering::Relaxed);
        }
        sent
    }

    /// Publishes `envelopes` in order, sleeping `pace` between two of them. Returns how many were queued to at
    /// least one client (the rest were dropped).
    pub async fn publish_all<I>(&self, envelopes: I, pace: Option<Duration>) -> usize
    where
        I: IntoIterator,
        I::Item: Borrow<Value>,
    {
        let mut delivered = 0;
        for (i, envelope) in envelopes.into_iter().enumerate() {
            if i > 0 {
                if let Some(pace) = pace.filter(|p| !p.is_zero()) {
                    tokio::time::sleep(pace).await;
                }
            }
            if self.publish(envelope.borrow()) > 0 {
                delivered += 1;
            }
        }
        delivered
    }

    /// Sends an arbitrary text frame to every connected client (fault injection: malformed frames, unknown
    /// modules). Not counted as a published event. Returns how many clients it was queued to.
    pub fn send_frame(&self, text: &str) -> usize {
        self.broadcast(|| Outbound::Text(text.to_owned()))
    }

    /// Clients currently connected (including ones whose upgrade is being completed).
    pub fn connected(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// Closes every socket now (close frame 1001 "going away"). Events published after this call and before a
    /// client reconnects are dropped.
    pub fn disconnect_all(&self) -> usize {
        let clients: Vec<_> = lock(&self.inner.clients).drain().collect();
        for (_, tx) in &clients {
            let _ = tx.send(Outbound::Close {
                code: 1001,
                reason: "going away",
            });
        }
        clients.len()
    }

    /// While silent the hub sends nothing on open sockets: no `build_connection`, no heartbeat replies, no events
    /// (counted in `dropped_while_silent`). Models a half-dead connection for clients' silence detection.
    /// Heartbeats from clients are still received and keep them connected.
    pub fn set_silent(&self, silent: bool) {
        self.inner.silent.store(silent, Ordering::Relaxed);
    }

    pub fn stats(&self) -> HubStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HubStats {
            connections: get(&c.connections),
            refused: get(&c.refused),
            published: get(&c.published),
            delivered: get(&c.delivered),
            dropped_while_disconnected: get(&c.dropped_while_disconnected),
            dropped_while_silent: get(&c.dropped_while_silent),
            heartbeats: get(&c.heartbeats),
            heartbeat_timeouts: get(&c.heartbeat_timeouts),
        }
    }

    /// Serves [`router`] alone on `addr` (e.g. `127.0.0.1:0`), for tests. The server stops when the returned
    /// [`HubServer`] is dropped.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<HubServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(self.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "WebSocket hub server stopped");
            }
        });
        Ok(HubServer { addr, task })
    }

    /// Queues `make()` to every live client; forgets clients whose connection task has ended.
    fn broadcast(&self, make: impl Fn() -> Outbound) -> usize {
        let mut clients = lock(&self.inner.clients);
        clients.retain(|_, tx| tx.send(make()).is_ok());
        clients.len()
    }

    fn remove(&self, id: u64) {
        lock(&self.inner.clients).remove(&id);
    }
}

/// A standalone hub listener (see [`EventHub::serve`]); aborts the server on drop.
#[derive(Debug)]
pub struct HubServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HubServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<addr>/ws`, without query parameters.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{WS_PATH}", self.addr)
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /ws` for `hub`, with no state left (merge it into another router).
pub fn router(hub: EventHub) -> Router {
    Router::new().route(WS_PATH, get(upgrade)).with_state(hub)
}

fn refusal(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

async fn upgrade(
    State(hub): State<EventHub>,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = query.get("access_token").map(String::as_str).unwrap_or("");
    if token.is_empty() || !(hub.inner.token_check)(token) {
        bump(&hub.inner.counters.refused);
        return refusal(StatusCode::UNAUTHORIZED, 124, "Invalid access token.");
    }
    if query.get("subscriptionId").map(String::as_str) != Some(hub.inner.subscription_id.as_str()) {
        bump(&hub.inner.counters.refused);
        return refusal(StatusCode::FORBIDDEN, 403, "Invalid subscriptionId.");
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };

    // Register before answering 101 so that an event published as soon as the client sees the handshake
    // complete reaches it; frames queue until the socket is ready.
    let id = hub.inner.next_client.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    if !hub.inner.silent.load(Ordering::Relaxed) {
        let _ = tx.send(Outbound::Text(
            json!({"module": "build_connection", "success": true}).to_string(),
        ));
    }
    lock(&hub.inner.clients).insert(id, tx);
    bump(&hub.inner.counters.connections);

    let failed = hub.clone();
    ws.on_failed_upgrade(move |e| {
        tracing::debug!(error = %e, "WebSocket upgrade failed");
        failed.remove(id);
    })
    .on_upgrade(move |socket| async move {
        connection(&hub, socket, rx).await;
        hub.remove(id);
    })
}

async fn connection(
    hub: &EventHub,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
) {
    let inner = &hub.inner;
    let timeout = inner.config.heartbeat_timeout;
    let mut deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            outbound = rx.recv() => match outbound {
                Some(Outbound::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    close(socket, code, reason).await;
                    return;
                }
                None => {
                    close(socket, 1001, "going away").await;
                    return;
                }
            },
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    if is_heartbeat(text.as_str()) {
                        bump(&inner.counters.heartbeats);
                        deadline = Instant::now() + timeout;
                        if !inner.silent.load(Ordering::Relaxed) {
                            let reply = json!({"module": "heartbeat", "success": true}).to_string();
                            if socket.send(Message::Text(reply.into())).await.is_err() {
                                return;
                            }
                        }
                    } else {
                        tracing::debug!(frame = %text.as_str(), "ignoring client frame");
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep_until(deadline) => {
                bump(&inner.counters.heartbeat_timeouts);
                close(socket, 1000, "heartbeat timeout").await;
                return;
            }
        }
    }
}

fn is_heartbeat(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("module")
                .and_then(Value::as_str)
                .map(|m| m == "heartbeat")
        })
        .unwrap_or(false)
}

/// The closing handshake, as a real server does it: send Close, then read (and drop) until the client's reply or
/// the end of the stream. Dropping the socket with the client's frames (heartbeats) unread would make the kernel
/// answer with a TCP reset, and a reset discards what the client has received but not yet read.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let closing = async {
        socket.send(Message::Close(Some(frame))).await.ok()?;
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
}
