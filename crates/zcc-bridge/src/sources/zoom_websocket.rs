//! The Zoom WebSocket event subscription as a source, for deployments without a public webhook URL (or beside
//! webhooks: the same event through both is logged once, the dedup key being the event's content).
//!
//! Events are logged exactly like webhooks (source `websocket`); unparseable frames are quarantined. Zoom never
//! replays what happened while the socket was down, so after every reconnect the gap (from the disconnect, less
//! a margin, to the reconnect) is reconciled through the REST API.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Mutex};
use zoom::api::ZoomClient;
use zoom::websocket::{BoxError, TokenSource, WsConfig, WsItem};

use super::zoom_webhook::{self, ParsedWebhook};
use crate::core::EventSource;
use crate::ingest::EventLog;
use crate::reconcile::{now_ms, Reconciler, RunKind};
use crate::store::{Inbound, NewEvent, NewQuarantine};

/// Tokens for the socket from the REST client's cache (one token for both).
struct ClientTokens(Arc<ZoomClient>);

impl TokenSource for ClientTokens {
    async fn token(&self) -> Result<String, BoxError> {
        Ok(self.0.access_token().await?)
    }

    async fn invalidate(&self, token: &str) {
        self.0.invalidate(token).await;
    }
}

/// Runs the subscription until `shutdown`. `reconciler`: where gaps are reconciled (none: gaps are only logged).
pub async fn run(
    config: WsConfig,
    gap_margin: Duration,
    client: Arc<ZoomClient>,
    log: EventLog,
    reconciler: Option<Reconciler>,
    shutdown: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel::<WsItem>(256);
    let subscriber = tokio::spawn(zoom::websocket::run(
        config,
        ClientTokens(client),
        tx,
        shutdown.clone(),
    ));
    let gap_runs = Arc::new(Mutex::new(()));
    let margin_ms = i64::try_from(gap_margin.as_millis()).unwrap_or(i64::MAX);
    let mut disconnected_at: Option<i64> = None;
    let mut next: Option<WsItem> = None;
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => break,
            },
        };
        match item {
            WsItem::Connected { at_ms } => {
                metrics::gauge!("zcc_websocket_connected").set(1.0);
                tracing::info!("Zoom WebSocket subscription connected");
                if let (Some(since), Some(reconciler)) = (disconnected_at.take(), &reconciler) {
                    let (from, to) = (
                        since.saturating_sub(margin_ms),
                        at_ms.saturating_add(margin_ms),
                    );
                    let reconciler = reconciler.clone();
                    let gap_runs = gap_runs.clone();
                    tokio::spawn(async move {
                        // Gaps are reconciled one after another; the windows overlap, and that is harmless.
                        let _one_at_a_time = gap_runs.lock().await;
                        // Let the margin after the reconnect pass, so events of the gap's end are all complete.
                        tokio::time::sleep(Duration::from_millis(
                            u64::try_from(to - now_ms()).unwrap_or(0),
                        ))
                        .await;
                        tracing::info!(
                            gap_ms = at_ms - since,
                            "reconciling the WebSocket disconnection gap"
                        );
                        if let Err(e) = reconciler
                            .run_window(RunKind::Gap, from, to.min(now_ms()), &|_| {})
                            .await
                        {
                            tracing::error!(error = %e, "reconciling a WebSocket gap failed; the nightly run will cover it");
                        }
                    });
                }
            }
            WsItem::Disconnected { at_ms, reason } => {
                metrics::gauge!("zcc_websocket_connected").set(0.0);
                metrics::counter!("zcc_websocket_disconnects_total").increment(1);
                tracing::warn!(%reason, "Zoom WebSocket subscription disconnected; events are lost until it reconnects");
                disconnected_at.get_or_insert(at_ms);
            }
            frame @ (WsItem::Event { .. } | WsItem::Malformed { .. }) => {
                // Whatever else is already queued goes into the same append: one commit for a burst, not one each.
                let mut batch = vec![frame];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(item @ (WsItem::Event { .. } | WsItem::Malformed { .. })) => {
                            batch.push(item)
                        }
                        Ok(control) => {
                            next = Some(control);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let items: Vec<Inbound> = batch.into_iter().filter_map(inbound).collect();
                log_frames(&log, items).await;
            }
        }
    }
    metrics::gauge!("zcc_websocket_connected").set(0.0);
    match subscriber.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the Zoom WebSocket subscription cannot run"),
        Err(e) => tracing::error!(error = %e, "the Zoom WebSocket subscriber panicked"),
    }
}

/// The most frames logged in one append.
const MAX_BATCH: usize = 256;

/// What the log keeps for one frame: the event, or a quarantine entry; nothing for a URL validation request.
fn inbound(frame: WsItem) -> Option<Inbound> {
    let (raw, received_at, malformed) = match frame {
        WsItem::Event {
            raw,
            received_at_ms,
        } => (Bytes::from(raw), received_at_ms, None),
        WsItem::Malformed {
            raw,
            error,
            received_at_ms,
        } => (Bytes::from(raw), received_at_ms, Some(error)),
        WsItem::Connected { .. } | WsItem::Disconnected { .. } => return None,
    };
    if let Some(reason) = malformed {
        return Some(quarantine(
            raw,
            received_at,
            format!("malformed WebSocket frame: {reason}"),
        ));
    }
    match zoom_webhook::parse_received(&raw, EventSource::Websocket, received_at) {
        Ok(ParsedWebhook::Event(parsed)) => Some(Inbound::Event(NewEvent {
            source: EventSource::Websocket,
            dedup_key: parsed.dedup_key,
            event_type: parsed.event_type,
            engagement_id: parsed.engagement_id,
            event_ts: Some(parsed.event_ts),
            received_at,
            request_id: None,
            raw,
            observation: parsed.observation,
            activity: parsed.activity,
            source_label: None,
        })),
        Ok(ParsedWebhook::UrlValidation { .. }) => {
            tracing::warn!("URL validation request over the WebSocket ignored");
            None
        }
        Err(e) => {
            tracing::warn!(error = ?e.to_string(), "WebSocket event could not be parsed; quarantining");
            Some(quarantine(raw, received_at, e.to_string()))
        }
    }
}

/// Logs frames, retrying until the log takes them: a frame has no sender to retry it, so this is the only place
/// it can be kept. The bounded channel holds the socket back meanwhile.
async fn log_frames(log: &EventLog, items: Vec<Inbound>) {
    if items.is_empty() {
        return;
    }
    let count = items.len() as u64;
    let mut wait = Duration::from_millis(100);
    loop {
        match log.append(items.clone()).await {
            Ok(_) => {
                metrics::counter!("zcc_websocket_events_total").increment(count);
                return;
            }
            Err(crate::ingest::IngestError::ShuttingDown) => {
                tracing::warn!(
                    frames = count,
                    "shutting down with WebSocket events not logged; the next reconciliation covers them"
                );
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, ?wait, frames = count, "cannot log WebSocket events; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

fn quarantine(raw: Bytes, received_at: i64, reason: String) -> Inbound {
    Inbound::Quarantine(NewQuarantine {
        source: EventSource::Websocket,
        source_label: None,
        received_at,
        request_id: None,
        reason,
        raw,
    })
}
