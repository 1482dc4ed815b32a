//! Connectors: the sources that hold a connection to a vendor instead of being called (webhooks are called; see
//! `http`). Each one has the same shape: `run(<what it needs>, shutdown)` keeps its connection up (reconnecting with
//! backoff), turns what arrives into event-log entries through its source adapter in `sources` (bytes → inbound
//! event, the only place that reads the vendor's JSON), appends them to the event log (`ingest::EventLog`), and
//! returns once `shutdown` turns true. A new long-lived source goes here; its parsing goes in `sources`.
//!
//! - `zoom_websocket`: Zoom's WebSocket event subscription (gaps reconciled over REST after a reconnect).
//! - `genesys`: the Genesys Cloud Notifications API (pull) for presence sync.

pub mod genesys;
pub mod zoom_websocket;
