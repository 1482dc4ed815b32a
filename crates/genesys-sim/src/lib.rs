//! An in-process Genesys Cloud stand-in for tests, as `zoom-sim` is for Zoom: client-credentials OAuth, users,
//! conversations, Notifications API channels with their WebSocket, and process-automation (Event Orchestration)
//! triggers (presence-sync reference §2, §3).
//!
//! Start one with [`GenesysSim::start`], point a client at [`GenesysSim::base_url`] (both the API base and the login
//! base), drive conversations with [`GenesysSim::offer`], [`connect`](GenesysSim::connect),
//! [`hold`](GenesysSim::hold) and [`end`](GenesysSim::end), and inject faults with
//! [`drop_sockets`](GenesysSim::drop_sockets), [`socket_closing`](GenesysSim::socket_closing),
//! [`set_heartbeats`](GenesysSim::set_heartbeats) and [`expire_channels`](GenesysSim::expire_channels). The routes and
//! the wire format are listed in the [`server`] module.

pub mod server;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

pub use server::GenesysSim;

/// Behaviour of a [`GenesysSim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesysSimConfig {
    /// The one OAuth client the simulator knows (`POST /oauth/token` with Basic auth).
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of an access token (Genesys: `expires_in` 86399).
    pub token_ttl: Duration,
    /// Period of the `channel.metadata` "WebSocket Heartbeat" frames (Genesys: about 30 s). Also the longest time
    /// between two checks for expired channels.
    pub heartbeat_interval: Duration,
    /// A channel expires this long after it was created or its subscriptions were last PUT or POSTed (Genesys:
    /// 24 h, "to maintain a channel for longer than 24 hours, resubscribe to topics").
    pub channel_ttl: Duration,
}

impl Default for GenesysSimConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            token_ttl: Duration::from_secs(86_399),
            heartbeat_interval: Duration::from_secs(30),
            channel_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Counters, for tests that assert how a client behaved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// `POST /oauth/token` requests, whatever their outcome.
    pub token_requests: u64,
    /// Channels created by `POST /api/v2/notifications/channels`.
    pub channels_created: u64,
    /// WebSocket upgrades accepted on `/channels/{id}`.
    pub ws_connections: u64,
    /// Authenticated `PUT` and `POST /api/v2/notifications/channels/{id}/subscriptions` requests, whatever their
    /// outcome.
    pub subscription_puts: u64,
    /// Conversation events published (one per agent user of the conversation per change), delivered or not.
    pub events_published: u64,
    /// Event frames queued to a connected socket (one per subscribed socket per event).
    pub events_delivered: u64,
}

/// A conversation's media type: names the media array of its participants in conversation JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    Call,
    Chat,
    Email,
    Message,
    Callback,
}

impl Media {
    /// The participant array the media lives in: `calls`, `chats`, `emails`, `messages` or `callbacks`.
    pub fn array_name(self) -> &'static str {
        match self {
            Media::Call => "calls",
            Media::Chat => "chats",
            Media::Email => "emails",
            Media::Message => "messages",
            Media::Callback => "callbacks",
        }
    }
}

/// `2026-11-21T09:00:00.123Z`: RFC 3339, UTC, millisecond precision (Genesys' date format).
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A random version-4 UUID, lower-case and hyphenated (the shape of Genesys ids).
pub(crate) fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `len` random characters from `[A-Za-z0-9_-]` (access tokens).
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>() & 0x3f)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        for _ in 0..100 {
            let id = uuid();
            assert_eq!(id.len(), 36);
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'));
            assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        }
    }

    #[test]
    fn timestamps_have_millis_and_z() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_795_251_600_123).unwrap();
        assert_eq!(rfc3339(at), "2026-11-21T09:00:00.123Z");
    }

    #[test]
    fn tokens_use_the_url_safe_alphabet() {
        let token = random_token(64);
        assert_eq!(token.len(), 64);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
