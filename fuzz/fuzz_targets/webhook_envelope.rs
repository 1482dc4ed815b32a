//! `POST /webhooks/zoom` (and WebSocket frames) after the signature: the envelope parser must never panic, and
//! what it accepts must be loggable (an event time in range, a dedup key led by that time in 13 digits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcc_bridge::core::EventSource;
use zcc_bridge::sources::zoom_webhook::{parse, parse_received, ParsedWebhook};
use zcc_bridge::sources::MAX_EVENT_TS;

/// 2026-11-21T09:00:00Z: the receipt time of every input.
const RECEIVED_AT: i64 = 1_795_251_600_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(ParsedWebhook::Event(event)) = parse(data, EventSource::Webhook) {
        assert!(
            (0..=MAX_EVENT_TS).contains(&event.event_ts),
            "{}",
            event.event_ts
        );
        assert_eq!(
            event.dedup_key.get(..14),
            Some(format!("{:013}:", event.event_ts).as_str())
        );
        assert!(!event.event_type.trim().is_empty());
        if let Some(observation) = &event.observation {
            assert_eq!(
                Some(&observation.engagement_id),
                event.engagement_id.as_ref()
            );
        }
    }
    let _ = parse_received(data, EventSource::Websocket, RECEIVED_AT);
});
