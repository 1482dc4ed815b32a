//! Foundation of the Contact Center Zoom App that zcc-bridge serves under `/zoomapp/` (issue 20).
//!
//! - [`context`]: the `X-Zoom-App-Context` header (decode, verify, mint).
//! - [`owasp`]: the headers every HTML page of the app must carry.
//! - [`oauth`]: PKCE, the web install and in-client authorization flows, token exchange and refresh, the
//!   deeplink back into the client, and the deauthorization notice.
//! - [`sdk`]: the Zoom Apps SDK APIs and events the agent panel uses, their shapes, and the app manifest.
//! - [`workspace`]: the agent's per-engagement workspace and the rule that makes its writes idempotent and
//!   order-insensitive.
//! - [`assets`]: the agent panel (HTML, JS, CSS, the vendored SDK), embedded.
//!
//! Nothing here depends on the server crate; the bridge wires it to routes, sessions and storage.

pub mod assets;
pub mod context;
pub mod oauth;
pub mod owasp;
pub mod sdk;
mod secret;
pub mod workspace;

pub use context::{AppContext, AppCredentials, ContextError, ContextVerifier, VerifiedContext};
pub use secret::Secret;

/// Which of the app's two credential sets (Marketplace shows development and production side by side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
