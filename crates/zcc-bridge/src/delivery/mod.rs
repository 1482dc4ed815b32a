//! Delivery to systems of record. So far: the Standard Webhooks signature the HTTP sink signs its requests with.
//! (The outbox, the sinks and replay are being built; see the closing notes.)

pub mod standard_webhooks;
