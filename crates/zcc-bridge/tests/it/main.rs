//! The integration tests: one binary (every test file would otherwise link the whole server on its own; on two
//! cores that dominated CI). Each module is one area; `common` is the harness: a real server on port 0 against a
//! real database, simulators, fakes and helpers.

mod common;

mod agents;
mod api;
mod backup;
mod chat;
mod cli;
mod connections;
mod crash;
mod delivery;
mod delivery_processes;
mod flow;
mod genesys;
mod ground_truth;
mod hardening;
mod media;
mod media_large;
mod presence;
mod reconcile;
mod shutdown;
mod sink_hubspot;
mod sink_salesforce;
mod sink_zendesk;
mod standard_webhooks;
mod stream;
mod vendor_examples;
mod webhooks;
mod zoomapp;
mod zoomapp_browser;
