//! Zoom Contact Center protocol library.
//!
//! Everything here is Zoom's vocabulary: webhook signing and verification, the webhook envelope and the
//! `payload.object` shapes seen on `contact_center.*` events, and the REST client (`api`). The bridge's core converts these into its own
//! types and never parses Zoom JSON itself.

pub mod api;
pub mod events;
pub mod webhook;

pub use events::{ObjectFields, WebhookEnvelope};
pub use webhook::{SignatureError, WebhookVerifier};
