//! Zoom WebSocket frames → event-log entries (the connection itself is `connectors::zoom_websocket`).
//!
//! Events are logged exactly like webhooks (source `websocket`; the same event through both paths is logged once,
//! the dedup key being the event's content); unparseable frames are quarantined.

use bytes::Bytes;
use zoom::websocket::WsItem;

use super::zoom_webhook::{self, ParsedWebhook};
use crate::core::EventSource;
use crate::store::{Inbound, NewQuarantine};

/// What the log keeps for one frame: the event, or a quarantine entry; nothing for a URL validation request.
pub fn inbound(frame: WsItem) -> Option<Inbound> {
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
    match zoom_webhook::parse(&raw, EventSource::Websocket, received_at) {
        Ok(ParsedWebhook::Event(parsed)) => {
            zoom_webhook::report_field_errors(&parsed.event_type, &parsed.field_errors);
            Some(Inbound::Event(parsed.into_event(
                EventSource::Websocket,
                raw,
                received_at,
                None,
            )))
        }
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
