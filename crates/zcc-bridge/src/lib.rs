//! zcc-bridge: a self-hosted integration server for Zoom Contact Center.
//!
//! Layers, outside in: `http` (routes) → `ingest` (group commit into the event log) → `store` (SQLite or
//! Postgres) ; `sources` turn vendor payloads into `core` observations and activity ; `core` merges them into
//! records and folds activity into agents' days ; `stream` pushes live activity to SSE clients.

pub mod activity;
pub mod auth;
pub mod backup;
pub mod chat;
pub mod config;
pub mod connectors;
pub mod contacts;
pub mod core;
pub mod delivery;
pub mod demo;
pub mod http;
pub mod ingest;
pub mod media;
pub mod presence;
pub mod projection;
pub mod rebuild;
pub mod reconcile;
pub mod server;
pub mod signals;
pub mod sources;
pub mod store;
pub mod stream;
pub mod sync;
pub mod telemetry;
pub mod zoomapp;

pub use config::Config;
pub use server::{start, RunningServer};
