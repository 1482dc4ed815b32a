//! `POST /webhooks/flow/{source}` after authentication: the Flow post parser, with the default field mapping and
//! one of JSON Pointers, must never panic, and what it accepts must be loggable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcc_bridge::config::FlowSourceConfig;
use zcc_bridge::sources::flow::parse;
use zcc_bridge::sources::{MAX_EVENT_TS, MAX_EVENT_TS_AHEAD_MS};

const RECEIVED_AT: i64 = 1_795_251_600_000;

fn configs() -> [FlowSourceConfig; 2] {
    let plain = FlowSourceConfig::default();
    let mut pointers = FlowSourceConfig::default();
    pointers.fields.engagement_id = "/vars/global_system.Engagement.EngagementID".into();
    pointers.fields.event = "/event/name".into();
    pointers.fields.event_ts = "/event/time".into();
    pointers.fields.consumer_number = "/vars/global_system.Engagement.ANI".into();
    pointers.fields.agent_email = "/agent/0/email".into();
    pointers.kinds.insert("Custom".into(), "accepted".into());
    [plain, pointers]
}

fuzz_target!(|data: &[u8]| {
    for config in configs() {
        if let Ok(event) = parse("ivr", &config, data, RECEIVED_AT) {
            assert!(event.event_ts >= 0 && event.event_ts <= MAX_EVENT_TS);
            assert!(event.event_ts <= RECEIVED_AT + MAX_EVENT_TS_AHEAD_MS);
            assert!(!event.dedup_key.is_empty());
        }
    }
});
