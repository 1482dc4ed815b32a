//! `POST /webhooks/genesys/{source}` after authentication (and Notifications API events): the Genesys conversation
//! event parser must never panic, and what it accepts must be loggable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcc_bridge::sources::genesys::parse;
use zcc_bridge::sources::{MAX_EVENT_TS, MAX_EVENT_TS_AHEAD_MS};

const RECEIVED_AT: i64 = 1_795_251_600_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = parse("gc", data, RECEIVED_AT) {
        assert!(event.event_ts >= 0 && event.event_ts <= MAX_EVENT_TS);
        assert!(event.event_ts <= RECEIVED_AT + MAX_EVENT_TS_AHEAD_MS);
        assert!(event.event_type.starts_with("genesys."));
    }
});
