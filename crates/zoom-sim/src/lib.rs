//! A deterministic Zoom Contact Center simulator.
//!
//! - [`generator`] builds a realistic, seeded contact-center "day" of `contact_center.*` webhook events, in the shapes
//!   of Zoom's published examples, together with the ground truth the bridge's engagement records must end up with.
//! - [`urls`] forms Zoom's file URLs (recordings, voicemails, transcripts) from the REST base.
//! - [`emitter`] delivers those events to a webhook endpoint exactly as Zoom does (signing, URL validation, retry
//!   schedule) and injects delivery faults (drops, duplicates, reordering, delays) on request.
//! - [`server`] serves a scenario over HTTP as Zoom's Server-to-Server OAuth and ZCC REST API (engagements,
//!   recordings, voicemails, notes and their file downloads), with Zoom's pagination, token expiry and rate limits
//!   plus injectable faults, for the bridge's OAuth client, reconciler and archiver; and Zoom Workplace's user
//!   presence API (`/v2/users/{userId}/presence_status`, one update per user per minute) for presence sync
//!   ([`server::presence`]).
//! - [`server::zoomapp`]: Zoom's side of a user-managed Zoom App (the Contact Center Zoom App): the
//!   authorization-code grant with PKCE, refresh with rotation, `users/me`, the deeplink, app contexts, and the
//!   signed deauthorization notice.
//! - [`chat`] is ZCC's bot connector toward a bot platform: consumer sessions posting signed virtual agent
//!   requests, a Post URL that checks the Access Token and records the replies, many conversations at a fixed
//!   rate with duplicates, and the ground truth to check the replies against.
//! - [`websocket`] is Zoom's WebSocket event subscription endpoint (`GET /ws`): it pushes events to connected
//!   subscribers as Zoom does (no backfill), answers heartbeats and can disconnect or go silent on request.

pub mod chat;
pub mod emitter;
pub mod generator;
pub mod server;
pub mod urls;
pub mod websocket;

pub use emitter::{EmitReport, Emitter, EmitterConfig, Faults};
pub use generator::{
    generate, Directory, GeneratorConfig, GroundTruth, Scenario, SimEvent, TruthEngagement,
};
pub use server::presence::{
    NewPresenceUser, PresenceChange, PresenceError, PresenceOutcome, PresenceUpdate, PresenceUser,
    PresenceVia, PresenceWebhook,
};
pub use server::{
    BoundSim, DeauthorizeRequest, RateLabel, SimServer, SimServerConfig, SimStats, SimZoomApp,
    ZoomAppStats,
};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;

/// A 22-character url-safe id, the shape Zoom uses for engagement, user, queue and recording ids
/// (16 random bytes, unpadded base64url, e.g. `ukAAkZKfROKMSw1bj_RDFQ`).
pub fn opaque_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rng.random();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A 1-byte tail encodes to 2 characters, a full chunk to 4.
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            out.push(char::from(ALPHABET[index]));
        }
    }
    out
}

/// `2026-11-21T09:00:00Z`: the second-precision UTC form Zoom uses for `start_time`, `last_modified_time` etc.
/// Timestamps outside chrono's range (hundreds of millennia away) render as the epoch.
pub fn iso_time(epoch_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(epoch_ms)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-11-21T09:00:00.123Z`: the millisecond-precision UTC form of Zoom's webhook `*_ms` fields (`date_time_ms`,
/// `recording_start_time_ms`, `created_time_ms`, ...), which are ISO-8601 strings despite their names.
pub fn iso_time_ms(epoch_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(epoch_ms)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn opaque_ids_look_like_zoom_ids() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let id = opaque_id(&mut rng);
            assert_eq!(id.len(), 22);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            // 16 bytes leave 4 unused bits in the last character, as in real Zoom ids.
            assert!(matches!(id.as_bytes()[21], b'A' | b'Q' | b'g' | b'w'));
        }
    }

    #[test]
    fn iso_time_is_second_precision_utc() {
        assert_eq!(iso_time(1_795_251_600_000), "2026-11-21T09:00:00Z");
        assert_eq!(iso_time(1_795_251_600_999), "2026-11-21T09:00:00Z");
    }

    #[test]
    fn iso_time_ms_keeps_milliseconds() {
        assert_eq!(iso_time_ms(1_795_251_600_000), "2026-11-21T09:00:00.000Z");
        assert_eq!(iso_time_ms(1_795_251_600_987), "2026-11-21T09:00:00.987Z");
        let parsed =
            DateTime::parse_from_rfc3339(&iso_time_ms(1_795_251_600_987)).expect("RFC 3339");
        assert_eq!(parsed.timestamp_millis(), 1_795_251_600_987);
    }
}
