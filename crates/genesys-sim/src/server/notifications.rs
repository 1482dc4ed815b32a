//! The Notifications API (reference §3.1, §3.2): channels, their subscriptions and their WebSocket.
//!
//! - `POST /api/v2/notifications/channels` → `{"id","connectUri":"ws://127.0.0.1:PORT/channels/<id>","expires"}`.
//!   At most [`MAX_CHANNELS`] channels (every token belongs to the one client): creating one more removes the channel
//!   with the oldest last use (creation, subscription change or connection), unconnected channels first; its socket,
//!   if any, is closed.
//! - `HEAD /api/v2/notifications/channels/{id}` → 200 while the channel exists and has not expired, else 404.
//! - `GET .../subscriptions` → `{"entities":[{"id":topic}]}`; `PUT` (replace) and `POST` (add) take
//!   `[{"id":topic}]` and answer `{"entities":[{"id","state":"Permitted"}..., {"id","state":"Rejected",
//!   "rejectionReason"}...]}`: every topic on the channel afterwards, then the refused ones of the request. Topics
//!   starting `v2.` are permitted; others are rejected (and not added). More than [`MAX_TOPICS`] on the channel →
//!   400 `notification.too.many.topics`, nothing changed. PUT and POST extend the channel to now + `channel_ttl`.
//!   `DELETE` removes every topic → 204 (it does not extend the channel). Unknown or expired channel → 404.
//! - WebSocket `GET /channels/{id}`: unknown or expired channel → 404 without upgrading. A new connection closes the
//!   channel's previous one (close 1000). Server frames: `{"topicName":"channel.metadata","eventBody":{"message":
//!   "WebSocket Heartbeat"}}` every `heartbeat_interval` (first one an interval after connecting); the answer to the
//!   client's `{"message":"ping"}`, `{"topicName":"channel.metadata","eventBody":{"message":"pong"}}`; events
//!   `{"topicName","version":"2","eventBody","metadata":{"CorrelationId"}}`, only to sockets connected when they are
//!   published, in publish order; `v2.system.socket_closing` (no subscription needed) before a maintenance close.
//!   Other client frames are ignored. A channel that expires is deleted and its socket closed (close 1000).
//!
//! ❓ Unconfirmed and chosen here: the close codes (1000 for expiry, removal and replacement, 1001 for the
//! maintenance close and shutdown), the `socket_closing` body (`{"message":"WebSocket closing"}`), the shape of the
//! subscription responses beyond `entities[].id/state/rejectionReason`, DELETE's 204, and the rejection text.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use super::{bump, deadline, ApiError, ApiResult, Shared};
use crate::rfc3339;

/// Channels per client (reference §3.1: "a limit of 20 channels per user/app combination").
pub const MAX_CHANNELS: usize = 20;
/// Topics per channel (reference §3.2).
pub const MAX_TOPICS: usize = 1000;
/// The 400 code for a subscription that would exceed [`MAX_TOPICS`].
pub const TOO_MANY_TOPICS_CODE: &str = "notification.too.many.topics";
/// The topic of the maintenance warning, delivered without a subscription.
pub const SOCKET_CLOSING_TOPIC: &str = "v2.system.socket_closing";

/// Timers of a connection are capped at a year, so that no configured duration can overflow an `Instant`.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// What a connection task is told to do.
#[derive(Debug)]
pub(super) enum Outbound {
    Text(String),
    /// Close now with a close frame.
    Close {
        code: u16,
        reason: &'static str,
    },
    /// Close with a close frame (1001) this long from now; keep delivering until then.
    CloseAfter(Duration),
    /// Drop the connection: no close frame.
    Abort,
}

#[derive(Debug)]
struct Connection {
    id: u64,
    tx: mpsc::UnboundedSender<Outbound>,
}

impl Connection {
    fn close(self, code: u16, reason: &'static str) {
        let _ = self.tx.send(Outbound::Close { code, reason });
    }
}

#[derive(Debug)]
struct Channel {
    /// Subscribed topics, in the order they were added, without duplicates.
    topics: Vec<String>,
    expires_at: std::time::Instant,
    expires_wall: DateTime<Utc>,
    /// Logical clock of the last use (creation, subscription change, connection).
    last_used: u64,
    connection: Option<Connection>,
}

impl Channel {
    fn extend(&mut self, ttl: Duration) {
        self.expires_at = deadline(std::time::Instant::now(), ttl);
        self.expires_wall = wall_deadline(ttl);
    }
}

fn wall_deadline(ttl: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(ttl)
        .ok()
        .and_then(|delta| Utc::now().checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every live channel.
#[derive(Debug, Default)]
pub(super) struct Channels {
    map: HashMap<String, Channel>,
    clock: u64,
}

impl Channels {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Deletes the channels that have expired by `now`, closing their sockets.
    pub(super) fn expire_due(&mut self, now: std::time::Instant) {
        let due: Vec<String> = self
            .map
            .iter()
            .filter(|(_, c)| c.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.remove(&id, "channel expired");
        }
    }

    pub(super) fn expire_all(&mut self) {
        for (_, channel) in self.map.drain() {
            if let Some(connection) = channel.connection {
                connection.close(1000, "channel expired");
            }
        }
    }

    fn remove(&mut self, id: &str, reason: &'static str) {
        if let Some(connection) = self.map.remove(id).and_then(|c| c.connection) {
            connection.close(1000, reason);
        }
    }

    /// The channel, unless it does not exist or has expired (then it is deleted).
    fn live(&mut self, id: &str) -> Option<&mut Channel> {
        let now = std::time::Instant::now();
        if self.map.get(id).is_some_and(|c| c.expires_at <= now) {
            self.remove(id, "channel expired");
        }
        self.map.get_mut(id)
    }

    pub(super) fn drop_sockets(&mut self) {
        for channel in self.map.values_mut() {
            if let Some(connection) = channel.connection.take() {
                let _ = connection.tx.send(Outbound::Abort);
            }
        }
    }

    pub(super) fn close_sockets(&mut self, code: u16, reason: &'static str) {
        for channel in self.map.values_mut() {
            if let Some(connection) = channel.connection.take() {
                connection.close(code, reason);
            }
        }
    }

    /// Queues the `socket_closing` warning (unless `silent`) and a close `close_after` later on every socket.
    pub(super) fn socket_closing(&mut self, close_after: Duration, silent: bool) {
        for connection in self.map.values().filter_map(|c| c.connection.as_ref()) {
            if !silent {
                let frame = json!({
                    "topicName": SOCKET_CLOSING_TOPIC,
                    "version": "2",
                    "eventBody": {"message": "WebSocket closing"},
                    "metadata": {"CorrelationId": crate::uuid()},
                })
                .to_string();
                let _ = connection.tx.send(Outbound::Text(frame));
            }
            let _ = connection.tx.send(Outbound::CloseAfter(close_after));
        }
    }

    /// Queues `frame` to every connected socket whose channel subscribes to `topic`; returns how many.
    pub(super) fn deliver(&mut self, topic: &str, frame: &str) -> u64 {
        let mut delivered = 0;
        for channel in self.map.values() {
            let Some(connection) = &channel.connection else {
                continue;
            };
            if channel.topics.iter().any(|t| t == topic)
                && connection.tx.send(Outbound::Text(frame.to_owned())).is_ok()
            {
                delivered += 1;
            }
        }
        delivered
    }

    pub(super) fn subscribed_topics(&self) -> Vec<String> {
        self.map
            .values()
            .flat_map(|c| c.topics.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub(super) fn connected(&self) -> usize {
        self.map
            .values()
            .filter(|c| c.connection.as_ref().is_some_and(|c| !c.tx.is_closed()))
            .count()
    }

    /// Forgets connection `connection_id` of `channel_id` if it is still the channel's connection.
    fn release(&mut self, channel_id: &str, connection_id: u64) {
        if let Some(channel) = self.map.get_mut(channel_id) {
            if channel
                .connection
                .as_ref()
                .is_some_and(|c| c.id == connection_id)
            {
                channel.connection = None;
            }
        }
    }
}

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v2/notifications/channels", post(create_channel))
        .route("/api/v2/notifications/channels/{id}", head(channel_exists))
        .route(
            "/api/v2/notifications/channels/{id}/subscriptions",
            get(list_subscriptions)
                .put(replace_subscriptions)
                .post(add_subscriptions)
                .delete(remove_subscriptions),
        )
        .route("/channels/{id}", get(upgrade))
}

fn channel_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Channel {id} not found or expired."))
}

/// `POST /api/v2/notifications/channels`.
async fn create_channel(State(shared): State<Arc<Shared>>) -> Response {
    let ttl = shared.config.channel_ttl;
    let id = format!("streaming-0-{}", crate::uuid().replace('-', ""));
    let channel_json = {
        let mut state = shared.lock();
        let channels = &mut state.channels;
        channels.expire_due(std::time::Instant::now());
        while channels.map.len() >= MAX_CHANNELS {
            let victim = channels
                .map
                .iter()
                .min_by_key(|(_, c)| (c.connection.is_some(), c.last_used))
                .map(|(id, _)| id.clone());
            match victim {
                Some(victim) => channels.remove(&victim, "channel removed"),
                None => break,
            }
        }
        let last_used = channels.tick();
        let channel = Channel {
            topics: Vec::new(),
            expires_at: deadline(std::time::Instant::now(), ttl),
            expires_wall: wall_deadline(ttl),
            last_used,
            connection: None,
        };
        let body = json!({
            "id": id,
            "connectUri": format!("{}/channels/{id}", shared.ws_base),
            "expires": rfc3339(channel.expires_wall),
        });
        channels.map.insert(id.clone(), channel);
        body
    };
    bump(&shared.counters.channels_created);
    Json(channel_json).into_response()
}

/// `HEAD /api/v2/notifications/channels/{id}`.
async fn channel_exists(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    match shared.lock().channels.live(&id) {
        Some(_) => Ok(StatusCode::OK),
        None => Err(channel_not_found(&id)),
    }
}

/// `GET .../subscriptions`.
async fn list_subscriptions(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let mut state = shared.lock();
    let channel = state
        .channels
        .live(&id)
        .ok_or_else(|| channel_not_found(&id))?;
    let entities: Vec<Value> = channel.topics.iter().map(|t| json!({"id": t})).collect();
    Ok(Json(json!({"entities": entities})).into_response())
}

async fn replace_subscriptions(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult {
    subscribe(&shared, id, &body, true)
}

async fn add_subscriptions(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult {
    subscribe(&shared, id, &body, false)
}

/// `DELETE .../subscriptions`.
async fn remove_subscriptions(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    let mut state = shared.lock();
    let channel = state
        .channels
        .live(&id)
        .ok_or_else(|| channel_not_found(&id))?;
    channel.topics.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// Parses `[{"id":"<topic>"}, ...]` into its topics, in order, without duplicates.
fn requested_topics(body: &[u8]) -> ApiResult<Vec<String>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let items = value.as_array().ok_or_else(|| {
        ApiError::bad_request("The request body must be an array of {\"id\": topic} objects.")
    })?;
    let mut topics: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let topic = item.get("id").and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad_request("Every topic must be an object with a string id.")
        })?;
        if !topics.iter().any(|t| t == topic) {
            topics.push(topic.to_owned());
        }
    }
    Ok(topics)
}

fn topic_permitted(topic: &str) -> bool {
    topic.len() > 3 && topic.starts_with("v2.")
}

/// `PUT` (`replace`) and `POST` `.../subscriptions`.
fn subscribe(
    shared: &Shared,
    id: Result<Path<String>, PathRejection>,
    body: &[u8],
    replace: bool,
) -> ApiResult {
    bump(&shared.counters.subscription_puts);
    let Path(id) = id?;
    let mut state = shared.lock();
    let channels = &mut state.channels;
    if channels.live(&id).is_none() {
        return Err(channel_not_found(&id));
    }
    let requested = requested_topics(body)?;
    let (permitted, rejected): (Vec<String>, Vec<String>) =
        requested.into_iter().partition(|t| topic_permitted(t));
    let last_used = channels.tick();
    let channel = channels.live(&id).ok_or_else(|| channel_not_found(&id))?;
    let mut topics = if replace {
        Vec::new()
    } else {
        channel.topics.clone()
    };
    for topic in permitted {
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    if topics.len() > MAX_TOPICS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            TOO_MANY_TOPICS_CODE,
            format!(
                "A channel may subscribe to at most {MAX_TOPICS} topics; this request would make {}.",
                topics.len()
            ),
        ));
    }
    channel.topics = topics;
    channel.last_used = last_used;
    channel.extend(shared.config.channel_ttl);
    let mut entities: Vec<Value> = channel
        .topics
        .iter()
        .map(|t| json!({"id": t, "state": "Permitted"}))
        .collect();
    entities.extend(rejected.iter().map(|t| {
        json!({
            "id": t,
            "state": "Rejected",
            "rejectionReason": format!("Topic {t:?} is not a valid topic: topics start with \"v2.\"."),
        })
    }));
    Ok(Json(json!({"entities": entities})).into_response())
}

/// WebSocket `GET /channels/{id}`.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let connection_id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let rx = {
        let mut state = shared.lock();
        let channels = &mut state.channels;
        if channels.live(&id).is_none() {
            return Err(channel_not_found(&id));
        }
        if let Err(rejection) = &ws {
            return Err(ApiError::bad_request(rejection.body_text()));
        }
        let last_used = channels.tick();
        let Some(channel) = channels.live(&id) else {
            return Err(channel_not_found(&id));
        };
        // Registered before answering 101, so that an event published as soon as the client sees the handshake
        // complete reaches it; frames queue until the socket is ready.
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(previous) = channel.connection.replace(Connection {
            id: connection_id,
            tx,
        }) {
            previous.close(1000, "replaced by a new connection");
        }
        channel.last_used = last_used;
        rx
    };
    let ws = ws.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    bump(&shared.counters.ws_connections);
    let failed = (shared.clone(), id.clone());
    Ok(ws
        .on_failed_upgrade(move |error| {
            tracing::debug!(%error, "genesys-sim: WebSocket upgrade failed");
            failed.0.lock().channels.release(&failed.1, connection_id);
        })
        .on_upgrade(move |socket| async move {
            connection(&shared, socket, rx).await;
            shared.lock().channels.release(&id, connection_id);
        }))
}

fn metadata_frame(message: &str) -> Message {
    Message::Text(
        json!({"topicName": "channel.metadata", "eventBody": {"message": message}})
            .to_string()
            .into(),
    )
}

fn is_ping(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .is_some_and(|v| v.get("message").and_then(Value::as_str) == Some("ping"))
}

async fn connection(
    shared: &Shared,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
) {
    let period = shared
        .config
        .heartbeat_interval
        .clamp(Duration::from_millis(1), LONGEST_WAIT);
    let mut heartbeat = tokio::time::interval_at(TokioInstant::now() + period, period);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut close_at: Option<TokioInstant> = None;
    loop {
        let closing = async {
            match close_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
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
                Some(Outbound::CloseAfter(after)) => {
                    let at = TokioInstant::now() + after.min(LONGEST_WAIT);
                    close_at = Some(close_at.map_or(at, |current| current.min(at)));
                }
                // Dropping the socket closes the TCP connection without a close frame.
                Some(Outbound::Abort) => return,
                None => {
                    close(socket, 1001, "going away").await;
                    return;
                }
            },
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    if is_ping(text.as_str())
                        && shared.heartbeats_on()
                        && socket.send(metadata_frame("pong")).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // Flush the close reply tungstenite queued.
                    let _ = tokio::time::timeout(Duration::from_secs(1), socket.flush()).await;
                    return;
                }
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => {
                if shared.heartbeats_on()
                    && socket.send(metadata_frame("WebSocket Heartbeat")).await.is_err()
                {
                    return;
                }
            }
            () = closing => {
                close(socket, 1001, "socket closing").await;
                return;
            }
        }
    }
}

/// The closing handshake, as a real server does it: send Close, then read (and drop) until the client's reply or
/// the end of the stream. Dropping the socket with the client's frames unread would make the kernel answer with a
/// TCP reset, and a reset discards what the client has received but not yet read.
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
