//! The live stream (`GET /api/v1/stream`): normalised activity events pushed to Server-Sent Events clients.
//!
//! One reader per process (the hub) follows the event log in stream order (`ActivityRepo::stream_after`): woken
//! by every local commit (at most every `PUBLISH_EVERY`, so a burst goes out as one batch), and polling for what
//! other replicas logged. It renders each row's SSE frame once (shared by every client), keeps the most recent ones
//! in memory, and broadcasts them a batch at a time: a client without filters writes a whole batch with one
//! shared buffer, so the cost per client is one write per batch, not one per event.
//! A client that sends `Last-Event-ID` first subscribes, then replays what it missed (from memory, or from the
//! log when it is older), then follows the broadcast, skipping what it already sent: every event exactly once,
//! in order. A client too slow for the broadcast catches up from the log the same way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::contacts::Contacts;
use crate::core::activity::{Activity, AgentIdent};
use crate::core::observation::QueueRef;
use crate::sources::Decoder;
use crate::store::activity::{StreamPosition, StreamRow};
use crate::store::{now_ms, Store};

/// Rows read per query.
const PAGE: u32 = 1000;
/// Events kept in memory for clients resuming.
const RECENT: usize = 20_000;
/// Broadcast buffer (batches); a client further behind catches up from the log.
const CHANNEL: usize = 1024;
/// Shortest time between two reads of the log after a wake-up: events committed meanwhile go out together.
const PUBLISH_EVERY: Duration = Duration::from_millis(4);
/// After a wake-up that found nothing, Postgres rows may still be waiting for an older transaction to end: look
/// again after these pauses.
const SETTLE_RETRIES_MS: [u64; 5] = [1, 2, 4, 8, 16];

/// An event as clients receive it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    pub id: String,
    pub kind: &'static str,
    pub event_ts: i64,
    /// When the bridge received it (epoch ms).
    pub received_at: i64,
    pub source: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentIdent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_number: Option<String>,
    /// The contact matched by the consumer number (when a contacts source is configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, serde_json::Value>,
    /// A chatbot conversation's message (kinds `chat_message`, `chat_reply`, `chat_handover`, `chat_end`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<crate::sources::chat::ChatItem>,
}

/// A live event ready to send: its position, the fields filters look at, and its SSE frame.
#[derive(Debug)]
pub struct Published {
    pub position: StreamPosition,
    pub kind: &'static str,
    pub agent: Option<AgentIdent>,
    pub queue_id: Option<String>,
    pub engagement_id: Option<String>,
    /// `id: …\nevent: …\ndata: {json}\n\n`.
    pub frame: Bytes,
    /// When the event was received (for the publish-delay metric).
    pub received_at: i64,
}

/// What one read of the log published: its events in order, and all their frames in one buffer.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Arc<Published>>,
    pub frames: Bytes,
}

impl Batch {
    fn new(events: Vec<Arc<Published>>) -> Self {
        let mut frames = BytesMut::with_capacity(events.iter().map(|e| e.frame.len()).sum());
        for e in &events {
            frames.extend_from_slice(&e.frame);
        }
        Self {
            events,
            frames: frames.freeze(),
        }
    }
}

/// What a client asked for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// User ids and e-mail addresses (lower case); an event matches if its agent is any of them.
    pub agents: Vec<String>,
    pub queues: Vec<String>,
    pub kinds: Vec<String>,
    pub engagements: Vec<String>,
}

impl Filter {
    pub fn matches(&self, e: &Published) -> bool {
        let agent_ok = self.agents.is_empty()
            || e.agent.as_ref().is_some_and(|a| {
                a.user_id.as_ref().is_some_and(|u| self.agents.contains(u))
                    || a.email
                        .as_ref()
                        .is_some_and(|m| self.agents.contains(&m.to_ascii_lowercase()))
            });
        let queue_ok =
            self.queues.is_empty() || e.queue_id.as_ref().is_some_and(|q| self.queues.contains(q));
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == e.kind);
        let engagement_ok = self.engagements.is_empty()
            || e.engagement_id
                .as_ref()
                .is_some_and(|id| self.engagements.contains(id));
        agent_ok && queue_ok && kind_ok && engagement_ok
    }
}

struct Shared {
    /// The newest events, in stream order.
    recent: VecDeque<Arc<Published>>,
    /// Where the hub has read up to.
    cursor: StreamPosition,
}

/// Handle to the hub: subscribe, replay.
#[derive(Clone)]
pub struct Stream {
    store: Arc<dyn Store>,
    builder: Arc<Builder>,
    shared: Arc<Mutex<Shared>>,
    tx: broadcast::Sender<Arc<Batch>>,
    clients: Arc<std::sync::atomic::AtomicI64>,
}

/// Turns log rows into live events.
pub struct Builder {
    decoder: Decoder,
    contacts: Option<Arc<Contacts>>,
}

impl Builder {
    pub fn new(decoder: Decoder, contacts: Option<Arc<Contacts>>) -> Self {
        Self { decoder, contacts }
    }

    fn build(&self, row: &StreamRow) -> Option<Published> {
        let decoded = match self.decoder.decode(&row.source, &row.raw, row.event_ts) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::debug!(event_id = row.position.id, error = %e, "logged event not streamed: it does not decode");
                return None;
            }
        };
        if let Some(chat) = decoded.chat {
            return Some(self.publish_chat(row, chat));
        }
        Some(self.publish(row, decoded.activity?))
    }

    /// A chat message: its kind, the engagement it belongs to (when known), the message.
    fn publish_chat(&self, row: &StreamRow, chat: crate::sources::chat::ChatItem) -> Published {
        let event = LiveEvent {
            id: row.position.encode(),
            kind: chat.kind,
            event_ts: row.event_ts.unwrap_or(row.received_at),
            received_at: row.received_at,
            source: row.source.clone(),
            event_type: row.event_type.clone(),
            engagement_id: chat.engagement_id.clone(),
            agent: None,
            queue: None,
            channel: None,
            direction: None,
            consumer_number: None,
            customer: None,
            status: None,
            sub_status: None,
            disposition: None,
            variables: Default::default(),
            chat: Some(chat),
        };
        let json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".to_string());
        let frame = format!("id: {}\nevent: {}\ndata: {json}\n\n", event.id, event.kind);
        Published {
            position: row.position,
            kind: event.kind,
            agent: None,
            queue_id: None,
            engagement_id: event.engagement_id,
            frame: Bytes::from(frame),
            received_at: row.received_at,
        }
    }

    fn publish(&self, row: &StreamRow, a: Activity) -> Published {
        let customer = match (&self.contacts, &a.consumer_number) {
            (Some(contacts), Some(number)) => contacts.lookup(number).cloned(),
            _ => None,
        };
        let event = LiveEvent {
            id: row.position.encode(),
            kind: a.kind.as_str(),
            event_ts: a.event_ts,
            received_at: row.received_at,
            source: row.source.clone(),
            event_type: row.event_type.clone(),
            engagement_id: a.engagement_id.clone(),
            agent: a.agent.clone(),
            queue: a.queue.clone(),
            channel: a.channel,
            direction: a.direction,
            consumer_number: a.consumer_number,
            customer,
            status: a.status,
            sub_status: a.sub_status,
            disposition: a.disposition,
            variables: a.variables,
            chat: None,
        };
        let json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".to_string());
        // Compact JSON has no line breaks, so it is one `data:` line.
        let frame = format!("id: {}\nevent: {}\ndata: {json}\n\n", event.id, event.kind);
        Published {
            position: row.position,
            kind: event.kind,
            agent: a.agent,
            queue_id: a.queue.map(|q| q.cc_queue_id),
            engagement_id: a.engagement_id,
            frame: Bytes::from(frame),
            received_at: row.received_at,
        }
    }
}

impl Stream {
    /// Starts the hub at the current end of the log.
    pub async fn start(
        store: Arc<dyn Store>,
        builder: Builder,
        poll: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let cursor = store.stream_head().await?;
        let (tx, _) = broadcast::channel(CHANNEL);
        let stream = Self {
            store,
            builder: Arc::new(builder),
            shared: Arc::new(Mutex::new(Shared {
                recent: VecDeque::with_capacity(RECENT),
                cursor,
            })),
            tx,
            clients: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        };
        let task = tokio::spawn(stream.clone().follow(poll, shutdown));
        Ok((stream, task))
    }

    async fn follow(self, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        let postgres = self.store.backend() == "postgres";
        let mut last_read = tokio::time::Instant::now();
        loop {
            let woken = tokio::select! {
                _ = self.store.signals().wait_logged() => true,
                _ = tokio::time::sleep(poll) => false,
                _ = shutdown.changed() => return,
            };
            tokio::time::sleep_until(last_read + PUBLISH_EVERY).await;
            last_read = tokio::time::Instant::now();
            let mut found = self.read_all().await;
            if woken && postgres && found == 0 {
                for pause in SETTLE_RETRIES_MS {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    found = self.read_all().await;
                    if found > 0 {
                        break;
                    }
                }
            }
        }
    }

    /// Reads and publishes everything after the cursor; returns how many rows were read.
    async fn read_all(&self) -> usize {
        let mut total = 0;
        loop {
            let cursor = self.lock().cursor;
            let rows = match self.store.stream_after(cursor, PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream could not read the event log; retrying");
                    return total;
                }
            };
            let Some(last) = rows.last().map(|r| r.position) else {
                return total;
            };
            total += rows.len();
            let published: Vec<Arc<Published>> = rows
                .iter()
                .filter_map(|r| self.builder.build(r))
                .map(Arc::new)
                .collect();
            {
                let mut shared = self.lock();
                for p in &published {
                    if shared.recent.len() == RECENT {
                        shared.recent.pop_front();
                    }
                    shared.recent.push_back(p.clone());
                }
                shared.cursor = last;
            }
            let now = now_ms();
            for p in &published {
                metrics::histogram!("zcc_stream_publish_delay_seconds")
                    .record((now - p.received_at).max(0) as f64 / 1000.0);
            }
            if !published.is_empty() {
                // No receivers is fine: nobody is listening.
                let _ = self.tx.send(Arc::new(Batch::new(published)));
            }
            if rows.len() < PAGE as usize {
                return total;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the hub has read up to.
    pub fn position(&self) -> StreamPosition {
        self.lock().cursor
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.tx.subscribe()
    }

    /// Events after `after` up to what the hub has read, in order: from memory when it still holds them, from
    /// the log otherwise (a page at a time; call again with the last position until it returns nothing).
    pub async fn replay(&self, after: StreamPosition) -> crate::store::Result<Vec<Arc<Published>>> {
        {
            let shared = self.lock();
            let oldest = shared.recent.front().map(|p| p.position);
            if after >= shared.cursor {
                return Ok(Vec::new());
            }
            if oldest.is_some_and(|o| o <= after) {
                return Ok(shared
                    .recent
                    .iter()
                    .filter(|p| p.position > after)
                    .cloned()
                    .collect());
            }
        }
        let mut from = after;
        loop {
            let rows = self.store.stream_after(from, PAGE).await?;
            let Some(last) = rows.last().map(|r| r.position) else {
                return Ok(Vec::new());
            };
            let events: Vec<Arc<Published>> = rows
                .iter()
                .filter_map(|r| self.builder.build(r))
                .map(Arc::new)
                .collect();
            if !events.is_empty() || rows.len() < PAGE as usize {
                return Ok(events);
            }
            from = last;
        }
    }

    /// Counts a connected client while the guard lives.
    pub fn client(&self) -> ClientGuard {
        let n = self
            .clients
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        metrics::gauge!("zcc_stream_clients").set(n as f64);
        ClientGuard {
            clients: self.clients.clone(),
        }
    }
}

pub struct ClientGuard {
    clients: Arc<std::sync::atomic::AtomicI64>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let n = self
            .clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
            - 1;
        metrics::gauge!("zcc_stream_clients").set(n as f64);
    }
}
