//! `POST /webhooks/zoom` (and WebSocket frames) after the signature: the envelope parser must never panic, and
//! what it accepts must be loggable: an event time in range and not more than a day after receipt, and a dedup
//! key led by the time the body itself carries (13 digits; 0 when it carries none, the event then dated at
//! receipt).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcc_bridge::core::EventSource;
use zcc_bridge::sources::zoom_webhook::{parse, ParsedWebhook};
use zcc_bridge::sources::{MAX_EVENT_TS, MAX_EVENT_TS_AHEAD_MS};

/// 2026-11-21T09:00:00Z: the receipt time of every input.
const RECEIVED_AT: i64 = 1_795_251_600_000;

fuzz_target!(|data: &[u8]| {
    for source in [EventSource::Webhook, EventSource::Websocket] {
        let Ok(ParsedWebhook::Event(event)) = parse(data, source, RECEIVED_AT) else {
            continue;
        };
        assert!(
            (0..=MAX_EVENT_TS).contains(&event.event_ts)
                && event.event_ts <= RECEIVED_AT + MAX_EVENT_TS_AHEAD_MS,
            "{}",
            event.event_ts
        );
        let key_ts: i64 = event
            .dedup_key
            .get(..13)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("dedup key {:?}", event.dedup_key));
        assert_eq!(event.dedup_key.get(13..21), Some(":sha256:"));
        assert!(
            key_ts == event.event_ts || (key_ts == 0 && event.event_ts == RECEIVED_AT),
            "key {key_ts}, event {}",
            event.event_ts
        );
        assert!(!event.event_type.trim().is_empty());
        if let Some(observation) = &event.observation {
            assert_eq!(
                Some(&observation.engagement_id),
                event.engagement_id.as_ref()
            );
        }
    }
});
