//! Vendor adapters: turn what a source received into the core's event-log entries and observations.

pub mod zoom_rest;
pub mod zoom_webhook;
pub mod zoom_websocket;

use crate::core::{EventSource, Observation};

/// Reads a logged event's raw bytes back into its observation (projector recovery and `rebuild`). `Ok(None)`:
/// the event says nothing about an engagement.
pub fn observation_of(
    source: &str,
    raw: &[u8],
) -> Result<Option<Observation>, zoom_webhook::ParseError> {
    // Polled REST resources are logged as such; every other source logs Zoom event envelopes.
    let source = EventSource::parse(source).unwrap_or(EventSource::Webhook);
    if source == EventSource::Poll {
        return zoom_rest::parse(raw);
    }
    match zoom_webhook::parse(raw, source)? {
        zoom_webhook::ParsedWebhook::Event(parsed) => Ok(parsed.observation),
        zoom_webhook::ParsedWebhook::UrlValidation { .. } => Ok(None),
    }
}
