//! Vendor adapters: turn what a source received into the core's event-log entries and observations.

pub mod zoom_webhook;
