//! Vendor adapters: turn what a source received into the core's event-log entries, observations and activity.

pub mod chat;
pub mod flow;
pub mod genesys;
pub mod zoom_rest;
pub mod zoom_webhook;
pub mod zoom_websocket;
pub mod zoomapp;

use std::sync::Arc;

use bytes::Bytes;

use crate::core::activity::Activity;
use crate::core::{EventSource, Observation};

/// What a logged event says, read back from its raw bytes.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// About an engagement's record.
    pub observation: Option<Observation>,
    /// About agents and engagements in real time.
    pub activity: Option<Activity>,
    /// A chat message, for the live stream.
    pub chat: Option<chat::ChatItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Zoom(#[from] zoom_webhook::ParseError),
    #[error(transparent)]
    Flow(#[from] flow::FlowError),
    #[error(transparent)]
    Genesys(#[from] genesys::GenesysError),
    #[error(transparent)]
    ZoomApp(#[from] zoomapp::ZoomAppEventError),
    #[error(transparent)]
    Chat(#[from] chat::ChatError),
}

/// The log's `source` column of a Flow event script post: `flow:<source name>`.
pub fn flow_source_column(name: &str) -> String {
    format!("flow:{name}")
}

/// Reads logged events back (projector recovery, `rebuild`, the live stream). Flow posts are read with their
/// source's current field mapping, so a corrected mapping applies to a rebuild.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    flows: Arc<flow::FlowSources>,
}

impl Decoder {
    pub fn new(flows: Arc<flow::FlowSources>) -> Self {
        Self { flows }
    }

    /// Reads logged events back with the configuration's Flow sources.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(Arc::new(flow::FlowSources::new(
            config.flow.sources.clone(),
        )))
    }

    pub fn flows(&self) -> &flow::FlowSources {
        &self.flows
    }

    /// `event_ts`: the time logged with the event (a Flow post without a time of its own was logged with its
    /// receive time).
    pub fn decode(
        &self,
        source: &str,
        raw: &[u8],
        event_ts: Option<i64>,
    ) -> Result<Decoded, DecodeError> {
        if let Some(name) = source.strip_prefix("flow:") {
            let config = self
                .flows
                .get(name)
                .ok_or_else(|| flow::FlowError::UnknownSource(name.to_string()))?;
            let event = flow::parse(name, config, raw, event_ts.unwrap_or(0))?;
            return Ok(Decoded {
                observation: Some(event.observation),
                activity: event.activity,
                chat: None,
            });
        }
        if let Some(name) = source.strip_prefix("genesys:") {
            let event = genesys::parse(name, raw, event_ts.unwrap_or(0))?;
            return Ok(Decoded {
                observation: None,
                activity: Some(event.activity),
                chat: None,
            });
        }
        if let Some(channel) = chat::channel_of(source) {
            let (observation, item) = chat::decode(channel, raw, event_ts.unwrap_or(0))?;
            return Ok(Decoded {
                observation,
                activity: None,
                chat: item,
            });
        }
        // Polled REST resources are logged as such; every other source logs Zoom event envelopes.
        let source = EventSource::parse(source).unwrap_or(EventSource::Webhook);
        if source == EventSource::ZoomApp {
            return Ok(Decoded {
                observation: Some(zoomapp::parse(raw, event_ts.unwrap_or(0))?),
                activity: None,
                chat: None,
            });
        }
        if source == EventSource::Poll {
            return Ok(Decoded {
                observation: zoom_rest::parse(raw)?,
                activity: None,
                chat: None,
            });
        }
        match zoom_webhook::parse(raw, source, event_ts.unwrap_or(0))? {
            zoom_webhook::ParsedWebhook::Event(parsed) => Ok(Decoded {
                observation: parsed.observation,
                activity: parsed.activity,
                chat: None,
            }),
            zoom_webhook::ParsedWebhook::UrlValidation { .. } => Ok(Decoded::default()),
        }
    }
}

/// Why a quarantined item still cannot be logged.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("still unusable: {0}")]
    Unusable(#[from] DecodeError),
    #[error("a URL validation challenge is not an event")]
    NotAnEvent,
}

impl Decoder {
    /// A quarantined item parsed again by its own source's adapter (a Zoom webhook or WebSocket event, a Flow
    /// post with its source's current mapping, a Genesys event), as the event to log. `received_at` is when the
    /// item was first received: it stands in for a time the body does not carry.
    pub fn replay(
        &self,
        source: &str,
        raw: Bytes,
        received_at: i64,
        request_id: Option<String>,
    ) -> Result<crate::store::NewEvent, ReplayError> {
        if let Some(name) = source.strip_prefix("flow:") {
            let config = self.flows.get(name).ok_or_else(|| {
                DecodeError::from(flow::FlowError::UnknownSource(name.to_string()))
            })?;
            let parsed = flow::parse(name, config, &raw, received_at).map_err(DecodeError::from)?;
            return Ok(parsed.into_event(name, raw, received_at, request_id));
        }
        if let Some(name) = source.strip_prefix("genesys:") {
            let parsed = genesys::parse(name, &raw, received_at).map_err(DecodeError::from)?;
            return Ok(parsed.into_event(name, raw, received_at));
        }
        if let Some(channel) = chat::channel_of(source) {
            // The connector's request, read again (its token was checked when it was received).
            let request = chatbot::zoom_connector::VirtualAgentRequest::parse(&raw)
                .map_err(|e| DecodeError::from(chat::ChatError::from(e)))?;
            return Ok(chat::consumer_event(
                channel,
                &request,
                raw,
                received_at,
                request_id,
            ));
        }
        let source = EventSource::parse(source).unwrap_or(EventSource::Webhook);
        match zoom_webhook::parse(&raw, source, received_at).map_err(DecodeError::from)? {
            zoom_webhook::ParsedWebhook::Event(parsed) => {
                Ok(parsed.into_event(source, raw, received_at, request_id))
            }
            zoom_webhook::ParsedWebhook::UrlValidation { .. } => Err(ReplayError::NotAnEvent),
        }
    }
}

/// The latest event time accepted: 13 digits of milliseconds (2286-11-20). Dedup keys start with the event time
/// as 13 digits so that new keys land at the end of the index; a longer number would break that order.
pub const MAX_EVENT_TS: i64 = 9_999_999_999_999;

/// How far ahead of its receipt an event may be dated (clock skew); later than that it would sort before every
/// real event for as long as it is kept.
pub const MAX_EVENT_TS_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// Checks an event's time (epoch ms): not negative, at most `MAX_EVENT_TS`, and, when `received_at` is known
/// (> 0), at most `MAX_EVENT_TS_AHEAD_MS` after it. The error says why (an unusable event is quarantined).
pub fn check_event_time(event_ts: i64, received_at: i64) -> Result<i64, String> {
    if !(0..=MAX_EVENT_TS).contains(&event_ts) {
        return Err(format!(
            "event time {event_ts} is out of range (0 to {MAX_EVENT_TS} ms since 1970)"
        ));
    }
    if received_at > 0 && event_ts > received_at.saturating_add(MAX_EVENT_TS_AHEAD_MS) {
        return Err(format!(
            "event time {event_ts} is more than a day after the event was received ({received_at})"
        ));
    }
    Ok(event_ts)
}

pub use crate::config::check_source_name;

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_type_the_adapters_log_can_be_delivered() {
        let types = super::zoom_rest::Polled::EVENT_TYPES.into_iter().chain([
            super::genesys::USER_START,
            super::genesys::USER_END,
            super::zoomapp::WORKSPACE_FINALIZED,
        ]);
        for t in types {
            assert_eq!(crate::config::check_deliver_type(t), Ok(()), "{t}");
        }
    }
}
