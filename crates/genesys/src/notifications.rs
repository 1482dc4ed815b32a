//! A Notifications API subscriber (reference §3.1–3.2): one channel, up to 1,000 topics, one streaming
//! WebSocket.
//!
//! [`run`] creates a channel (`POST /api/v2/notifications/channels`), subscribes it (`PUT .../subscriptions`),
//! connects to its `connectUri` and reports what arrives as [`NotificationItem`]s. It keeps the channel alive:
//! - **Heartbeats.** Genesys sends `channel.metadata` "WebSocket Heartbeat" frames (about every 30 s, unconfirmed).
//!   After [`NotificationsConfig::ping_after`] of silence it sends `{"message":"ping"}`; a socket silent for
//!   [`NotificationsConfig::silence_timeout`] is dead and replaced.
//! - **24 h expiry.** A channel lives 24 h from its last subscription; the subscriptions are PUT again every
//!   [`NotificationsConfig::resubscribe_every`] (default 20 h), which extends it.
//! - **`v2.system.socket_closing`.** Sent about a minute before maintenance closes the socket: the subscriber
//!   reconnects to the same channel at once (a new connection replaces the old one), without backoff.
//! - **Drops.** After any loss it checks the channel (`HEAD`); a channel that still exists is reconnected, one
//!   that expired or was removed is created and subscribed again. Reconnects back off with jitter.
//! - **Topic changes** (the `topics` watch) are PUT to the live channel.
//!
//! Genesys does not replay what was published while no socket was connected: every `Disconnected` … `Connected`
//! gap is the caller's to reconcile. The `connectUri` is a bearer capability, so it is never logged.

use std::sync::Arc;
use std::time::Duration;

use backoff::Backoff;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{GenesysClient, GenesysError};
use crate::models::{Channel, Notification};

/// The most topics one channel takes.
pub const MAX_TOPICS_PER_CHANNEL: usize = 1000;
pub const HEARTBEAT_TOPIC: &str = "channel.metadata";
pub const SOCKET_CLOSING_TOPIC: &str = "v2.system.socket_closing";
const PING_FRAME: &str = r#"{"message":"ping"}"#;

#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// Silence after which a ping is sent.
    pub ping_after: Duration,
    /// Silence after which the socket is considered dead.
    pub silence_timeout: Duration,
    /// How often the subscriptions are PUT again to keep the channel (24 h lifetime) alive.
    pub resubscribe_every: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            ping_after: Duration::from_secs(40),
            silence_timeout: Duration::from_secs(75),
            resubscribe_every: Duration::from_secs(20 * 3600),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// What the subscriber reports. `Connected` and `Disconnected` alternate, starting with `Connected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationItem {
    /// The socket is up and subscribed: events flow from now on. `new_channel`: the channel was (re)created, so
    /// nothing from before was kept for us.
    Connected { at_ms: i64, new_channel: bool },
    /// A notification on a subscribed topic, the frame as received.
    Event {
        topic: String,
        raw: Vec<u8>,
        received_at_ms: i64,
    },
    /// A frame that is not a notification.
    Malformed {
        raw: Vec<u8>,
        error: String,
        received_at_ms: i64,
    },
    /// The socket is gone; `at_ms`: the last moment everything sent was read.
    Disconnected { at_ms: i64, reason: String },
}

/// Runs until `shutdown` becomes true or `tx`'s receiver is dropped. Failures are logged and retried.
pub async fn run(
    client: Arc<GenesysClient>,
    config: NotificationsConfig,
    mut topics: watch::Receiver<Vec<String>>,
    tx: mpsc::Sender<NotificationItem>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let mut channel: Option<Channel> = None;
    // When the channel's subscriptions were last PUT: its 24 h run from there, across reconnects.
    let mut subscribed_at = Instant::now();
    loop {
        if *shutdown.borrow() || tx.is_closed() {
            return;
        }
        let wanted: Vec<String> = topics.borrow_and_update().clone();
        let (current, new_channel) = match ensure_channel(&client, channel.take(), &wanted).await {
            Ok(c) => {
                if c.1 {
                    subscribed_at = Instant::now();
                }
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, "Genesys notifications: no channel; will retry");
                if !pause(&mut backoff, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let connected = tokio::time::timeout(
            config.connect_timeout,
            tokio_tungstenite::connect_async(current.connect_uri.as_str()),
        )
        .await;
        let ws = match connected {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                tracing::warn!(channel = %short(&current.id), error = %e, "Genesys notifications: connect failed");
                if !pause(&mut backoff, &mut shutdown).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                tracing::warn!(channel = %short(&current.id), "Genesys notifications: connect timed out");
                if !pause(&mut backoff, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        tracing::info!(channel = %short(&current.id), topics = wanted.len(), new_channel, "Genesys notifications: connected");
        if tx
            .send(NotificationItem::Connected {
                at_ms: now_ms(),
                new_channel,
            })
            .await
            .is_err()
        {
            return;
        }
        let up_since = Instant::now();
        let end = Session {
            client: &client,
            config: &config,
            channel: &current,
            tx: &tx,
        }
        .run(ws, &mut topics, &mut subscribed_at, &mut shutdown)
        .await;
        match end {
            End::Stop => return,
            End::Lost {
                reason,
                at_ms,
                channel_gone,
                at_once,
            } => {
                tracing::warn!(channel = %short(&current.id), %reason, up_for = ?up_since.elapsed(), "Genesys notifications: disconnected");
                if tx
                    .send(NotificationItem::Disconnected { at_ms, reason })
                    .await
                    .is_err()
                {
                    return;
                }
                if !channel_gone {
                    channel = Some(current);
                }
                if up_since.elapsed() >= config.ping_after {
                    backoff.reset();
                }
                if !at_once && !pause(&mut backoff, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// The channel to connect to: the previous one if it still exists, else a new one, subscribed to `topics`.
async fn ensure_channel(
    client: &GenesysClient,
    previous: Option<Channel>,
    topics: &[String],
) -> Result<(Channel, bool), GenesysError> {
    if let Some(channel) = previous {
        if client.channel_exists(&channel.id).await? {
            // Topics changed while disconnected are applied by the session's first check.
            return Ok((channel, false));
        }
        tracing::info!(channel = %short(&channel.id), "Genesys notifications: channel expired; creating a new one");
    }
    let channel = client.create_channel().await?;
    subscribe(client, &channel, topics).await?;
    Ok((channel, true))
}

async fn subscribe(
    client: &GenesysClient,
    channel: &Channel,
    topics: &[String],
) -> Result<(), GenesysError> {
    let answer = client.put_subscriptions(&channel.id, topics).await?;
    for topic in answer
        .iter()
        .filter(|t| t.state.as_deref().is_some_and(|s| s != "Permitted"))
    {
        tracing::warn!(topic = %topic.id, state = ?topic.state, reason = ?topic.rejection_reason, "Genesys notifications: topic not permitted");
    }
    Ok(())
}

enum End {
    Stop,
    Lost {
        reason: String,
        at_ms: i64,
        /// The channel no longer exists (do not try to reuse it).
        channel_gone: bool,
        /// Reconnect without backoff (maintenance close announced).
        at_once: bool,
    },
}

struct Session<'a> {
    client: &'a GenesysClient,
    config: &'a NotificationsConfig,
    channel: &'a Channel,
    tx: &'a mpsc::Sender<NotificationItem>,
}

impl Session<'_> {
    async fn run<S>(
        &self,
        mut ws: tokio_tungstenite::WebSocketStream<S>,
        topics: &mut watch::Receiver<Vec<String>>,
        subscribed_at: &mut Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut last_frame = Instant::now();
        let mut last_frame_ms = now_ms();
        let mut pinged = false;
        let mut check = tokio::time::interval(
            (self.config.ping_after / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        );
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let lost = |reason: String, at_ms: i64| End::Lost {
            reason,
            at_ms,
            channel_gone: false,
            at_once: false,
        };
        // Topics changed while we were away.
        let mut topics_changed = topics.has_changed().unwrap_or(false);
        loop {
            if topics_changed {
                topics_changed = false;
                let wanted = topics.borrow_and_update().clone();
                let result = subscribe(self.client, self.channel, &wanted).await;
                if result.is_ok() {
                    *subscribed_at = Instant::now();
                }
                if let Err(e) = result {
                    let gone = e.is_not_found();
                    let _ = ws.close(None).await;
                    return End::Lost {
                        reason: format!("resubscribing failed: {e}"),
                        at_ms: last_frame_ms,
                        channel_gone: gone,
                        at_once: false,
                    };
                }
            }
            tokio::select! {
                biased;
                () = stop_requested(shutdown) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return End::Stop;
                }
                () = self.tx.closed() => return End::Stop,
                changed = topics.changed() => {
                    if changed.is_err() {
                        return End::Stop;
                    }
                    topics_changed = true;
                }
                () = tokio::time::sleep_until(*subscribed_at + self.config.resubscribe_every) => {
                    tracing::debug!(channel = %short(&self.channel.id), "Genesys notifications: renewing the channel");
                    topics_changed = true;
                }
                _ = check.tick() => {
                    let silent = last_frame.elapsed();
                    if silent >= self.config.silence_timeout {
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        return lost(format!("no heartbeat for {silent:?}"), last_frame_ms);
                    }
                    if silent >= self.config.ping_after && !pinged {
                        pinged = true;
                        if let Err(e) = ws.send(Message::text(PING_FRAME)).await {
                            return lost(format!("ping failed: {e}"), last_frame_ms);
                        }
                    }
                }
                frame = ws.next() => {
                    let received_at_ms = now_ms();
                    let frame = match frame {
                        None => return lost("connection closed".into(), last_frame_ms),
                        Some(Err(e)) => return lost(format!("read failed: {e}"), last_frame_ms),
                        Some(Ok(frame)) => frame,
                    };
                    last_frame = Instant::now();
                    last_frame_ms = received_at_ms;
                    pinged = false;
                    let raw = match frame {
                        Message::Text(text) => text.as_bytes().to_vec(),
                        Message::Close(frame) => {
                            let reason = frame.map(|f| format!("closed by Genesys: {} {}", u16::from(f.code), f.reason.as_str()))
                                .unwrap_or_else(|| "closed by Genesys".into());
                            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                            return lost(reason, last_frame_ms);
                        }
                        Message::Binary(bytes) => {
                            let item = NotificationItem::Malformed { raw: bytes.to_vec(), error: "binary frame".into(), received_at_ms };
                            if self.tx.send(item).await.is_err() { return End::Stop; }
                            continue;
                        }
                        _ => continue,
                    };
                    let notification: Notification = match serde_json::from_slice(&raw) {
                        Ok(n) => n,
                        Err(e) => {
                            let item = NotificationItem::Malformed { raw, error: format!("not a notification: {e}"), received_at_ms };
                            if self.tx.send(item).await.is_err() { return End::Stop; }
                            continue;
                        }
                    };
                    match notification.topic_name.as_str() {
                        HEARTBEAT_TOPIC => {}
                        SOCKET_CLOSING_TOPIC => {
                            tracing::info!(channel = %short(&self.channel.id), "Genesys notifications: socket closing for maintenance; reconnecting now");
                            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                            return End::Lost {
                                reason: "socket closing announced".into(),
                                at_ms: received_at_ms,
                                channel_gone: false,
                                at_once: true,
                            };
                        }
                        topic => {
                            let item = NotificationItem::Event { topic: topic.to_string(), raw, received_at_ms };
                            if self.tx.send(item).await.is_err() { return End::Stop; }
                        }
                    }
                }
            }
        }
    }
}

/// The first characters of a channel id (the id is part of the capability URL).
fn short(id: &str) -> String {
    id.chars().take(6).collect::<String>() + "…"
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Resolves when shutdown is requested or its sender is gone.
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn pause(backoff: &mut Backoff, shutdown: &mut watch::Receiver<bool>) -> bool {
    let delay = backoff.next_delay();
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop_requested(shutdown) => false,
    }
}
