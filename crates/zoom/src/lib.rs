//! Zoom Contact Center protocol library.
//!
//! Everything here is Zoom's vocabulary: webhook signing and verification, the webhook envelope and the
//! `payload.object` shapes seen on `contact_center.*` events, the REST client (`api`) and the WebSocket event
//! subscriber (`websocket`). The bridge's core converts these into its own
//! types and never parses Zoom JSON itself.

pub mod api;
pub mod events;
pub mod lenient;
pub mod webhook;
pub mod websocket;

pub use events::{ObjectFields, WebhookEnvelope};
pub use webhook::{SignatureError, WebhookVerifier};
