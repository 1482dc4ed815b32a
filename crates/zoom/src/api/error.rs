//! Errors of the REST client, with Zoom's own error codes.

use std::time::SystemTime;

/// Why a Zoom API call failed (after the retries the client does on its own).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The OAuth token endpoint refused the credentials (wrong client id/secret or account id, app disabled).
    #[error("Zoom OAuth refused the credentials ({status}): {body}")]
    Auth { status: u16, body: String },
    /// Zoom answered with an error body `{code, message}`.
    #[error("Zoom API error {status} (code {code:?}): {message}")]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// A rate limit that will not lift soon enough to wait for (typically the daily limit).
    #[error("Zoom rate limit ({category} {kind}) reached; retry after {retry_at:?}")]
    RateLimited {
        category: String,
        kind: String,
        retry_at: Option<SystemTime>,
    },
    /// Network failure or timeout after every retry.
    #[error("request to Zoom failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A 2xx body that does not have the documented shape.
    #[error("unexpected Zoom response for {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error("invalid client configuration: {0}")]
    Config(String),
}

/// Zoom's "Invalid access token, does not contain scopes": the app lacks a scope. Never retried.
pub const CODE_MISSING_SCOPE: i64 = 4700;
/// Expired or invalid access token.
pub const CODE_INVALID_TOKEN: i64 = 124;
/// Engagement does not exist (or is not completed yet).
pub const CODE_ENGAGEMENT_NOT_FOUND: i64 = 2901;
/// Recording (or other resource) does not exist.
pub const CODE_RESOURCE_NOT_FOUND: i64 = 3001;
/// User does not exist.
pub const CODE_USER_NOT_FOUND: i64 = 1001;
/// "Request to update the presence status of this user failed": the user is not logged in to the Zoom client.
pub const CODE_PRESENCE_UPDATE_FAILED: i64 = 5301;
/// No permission to update the presence status.
pub const CODE_PRESENCE_NOT_PERMITTED: i64 = 5411;

impl ApiError {
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// The resource does not exist (yet): per-resource, not a failure of the whole run.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Api { status: 404, .. })
            || matches!(
                self.code(),
                Some(CODE_ENGAGEMENT_NOT_FOUND) | Some(CODE_RESOURCE_NOT_FOUND)
            )
    }

    /// The app is missing a scope: configuration is wrong and every call will fail the same way.
    pub fn is_missing_scope(&self) -> bool {
        self.code() == Some(CODE_MISSING_SCOPE)
    }

    /// The page token was refused (Zoom: expired after 15 minutes): restart the window.
    pub fn is_page_token_expired(&self) -> bool {
        match self {
            ApiError::Api {
                status: 400,
                message,
                ..
            } => {
                let m = message.to_ascii_lowercase();
                m.contains("page token") || m.contains("next_page_token")
            }
            _ => false,
        }
    }
}
