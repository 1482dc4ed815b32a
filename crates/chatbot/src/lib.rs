//! Chatbot channel protocols for zcc-bridge: the bridge plays the bot platform's side toward Zoom Contact Center
//! (ZCC) — the role Kore.ai XO plays in its "Zoom Contact Center channel" — and connects each conversation to the
//! user's own bot engine.
//!
//! - [`zoom_connector`]: Zoom's bot connector / virtual agent protocol. **Every wire detail that public sources do not
//!   confirm lives in that one module**, marked ❓ with where it comes from (see `docs/chat/protocol.md`).
//! - [`client_app`]: the client app that authenticates the connector's requests (JWT, algorithm pinned per app:
//!   HS256/HS512 with a secret, RS256/RS512 with a public key), and HS credential generation.
//! - [`backends`]: one [`backends::BotBackend`] trait and the `builtin`, `http`, `rasa`, `directline` and `openai`
//!   backends.
//! - [`channel`]: one `[chat.channels.NAME]` as configured, and the pieces it makes.
//! - [`push`]: push notifications (all messages or only delivery failures; original or standard message).
//! - [`model`]: the neutral conversation types every module speaks (replies, hand-over, end of conversation).
//! - [`secret`]: a string that never shows in `Debug`/`Display` output.
//! - `sim` (feature `sim`): ZCC's connector side for tests: consumer sessions that sign their messages and a Post URL
//!   that checks the access token and records what it receives.
//!
//! This crate does no retrying and keeps nothing durable: the bridge's event log makes inbound messages durable and
//! its outbox retries Post URL replies and push notifications; the clients here only classify outcomes.

pub mod backends;
pub mod channel;
pub mod client_app;
pub mod http_outcome;
pub mod model;
pub mod push;
pub mod secret;
#[cfg(feature = "sim")]
pub mod sim;
pub mod zoom_connector;

pub use secret::Secret;
