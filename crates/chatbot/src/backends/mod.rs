//! Bot backends: one async trait, [`BotBackend`], and one implementation per kind of bot engine
//! (`[chat.channels.NAME.bot] kind = …`):
//!
//! | kind | talks to | module |
//! |---|---|---|
//! | `builtin` | nothing: FAQ answers and a hand-over keyword, in process | [`builtin`] |
//! | `http` | any service implementing our JSON contract (`docs/chat/http-backend.md`), reply inline or by callback | [`http`] |
//! | `rasa` | Rasa's REST channel, `POST /webhooks/rest/webhook` | [`rasa`] |
//! | `directline` | Bot Framework Direct Line 3.0 (tokens, conversations, activities, polling with a watermark) | [`directline`] |
//! | `openai` | any OpenAI-compatible `POST /v1/chat/completions`, with a hand-over tool | [`openai`] |
//!
//! A backend answers one turn at a time. The caller measures latency, keeps the conversation's order (one turn at a
//! time per conversation), stores [`crate::model::BotResponse::backend_state`] with the session, and decides what a
//! [`BackendError`] means for the consumer (retry, apologise, hand over).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use crate::http_outcome::parse_retry_after;
use crate::model::{BotRequest, BotResponse};

pub mod builtin;
pub mod directline;
pub mod http;
pub mod openai;
pub mod rasa;

#[async_trait]
pub trait BotBackend: Send + Sync + fmt::Debug {
    /// The config `kind` (`builtin`, `http`, `rasa`, `directline`, `openai`), for metrics.
    fn kind(&self) -> &'static str;

    /// Answers one consumer turn.
    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError>;
}

/// Why a backend has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("the bot did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the bot: {0}")]
    Unreachable(String),
    #[error("the bot answered HTTP {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("the bot's answer is unreadable: {0}")]
    Malformed(String),
    #[error("bot configuration: {0}")]
    Config(String),
}

impl BackendError {
    /// Whether asking again later could succeed (timeouts, network errors, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Timeout(_) | BackendError::Unreachable(_) => true,
            BackendError::Status { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            BackendError::Malformed(_) | BackendError::Config(_) => false,
        }
    }

    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Timeout(_) => "timeout",
            BackendError::Unreachable(_) => "unreachable",
            BackendError::Status { .. } => "status",
            BackendError::Malformed(_) => "malformed",
            BackendError::Config(_) => "config",
        }
    }
}

/// `[chat.channels.NAME.bot]`, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    Builtin(builtin::BuiltinConfig),
    Http(http::HttpConfig),
    Rasa(rasa::RasaConfig),
    Directline(directline::DirectLineConfig),
    Openai(openai::OpenAiConfig),
}

/// Makes the backend a config describes. `http` is shared by all backends (its own timeout is not used: each
/// backend sets its timeout per request).
pub fn build(
    config: &BackendConfig,
    http: reqwest::Client,
) -> Result<Arc<dyn BotBackend>, BackendError> {
    Ok(match config {
        BackendConfig::Builtin(c) => Arc::new(builtin::BuiltinBot::new(c.clone())?),
        BackendConfig::Http(c) => Arc::new(http::HttpBackend::new(c.clone(), http)?),
        BackendConfig::Rasa(c) => Arc::new(rasa::RasaBackend::new(c.clone(), http)?),
        BackendConfig::Directline(c) => {
            Arc::new(directline::DirectLineBackend::new(c.clone(), http)?)
        }
        BackendConfig::Openai(c) => Arc::new(openai::OpenAiBackend::new(c.clone(), http)?),
    })
}

pub(crate) fn default_timeout_ms() -> u64 {
    10_000
}

/// Checks a configured base URL and strips its trailing slash.
pub(crate) fn base_url(url: &str, what: &str) -> Result<String, BackendError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| BackendError::Config(format!("{what}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BackendError::Config(format!("{what}: not an http(s) URL")));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Sends a request and returns the status and body; transport failures and timeouts become errors, any status is
/// returned (callers decide which ones they accept).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(reqwest::StatusCode, Option<Duration>, bytes_body::Body), BackendError> {
    let resp = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(&e, timeout))?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_error(&e, timeout))?;
    Ok((status, retry_after, bytes_body::Body(body.to_vec())))
}

/// Like [`send`], but any non-2xx status is an error.
pub(crate) async fn send_ok(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(reqwest::StatusCode, bytes_body::Body), BackendError> {
    let (status, retry_after, body) = send(request, timeout).await?;
    if !status.is_success() {
        return Err(BackendError::Status {
            status: status.as_u16(),
            retry_after,
            body: body.snippet(),
        });
    }
    Ok((status, body))
}

fn transport_error(e: &reqwest::Error, timeout: Duration) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout(timeout);
    }
    // Keep the innermost cause only: reqwest's own text names the URL, which may carry credentials in a query.
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    BackendError::Unreachable(cause.to_string())
}

pub(crate) mod bytes_body {
    /// A response body.
    pub struct Body(pub Vec<u8>);

    impl Body {
        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, super::BackendError> {
            serde_json::from_slice(&self.0)
                .map_err(|e| super::BackendError::Malformed(e.to_string()))
        }

        pub fn is_empty(&self) -> bool {
            self.0.iter().all(u8::is_ascii_whitespace)
        }

        pub fn snippet(&self) -> String {
            String::from_utf8_lossy(&self.0).chars().take(300).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_by_kind() {
        let c: BackendConfig = serde_json::from_value(serde_json::json!({
            "kind": "rasa", "url": "http://localhost:5005"
        }))
        .unwrap();
        assert!(matches!(c, BackendConfig::Rasa(_)));
        let c: BackendConfig =
            serde_json::from_value(serde_json::json!({"kind": "builtin"})).unwrap();
        let b = build(&c, reqwest::Client::new()).unwrap();
        assert_eq!(b.kind(), "builtin");
        assert!(
            serde_json::from_value::<BackendConfig>(serde_json::json!({"kind": "dialogflow"}))
                .is_err()
        );
        let c: BackendConfig =
            serde_json::from_value(serde_json::json!({"kind": "http", "url": "ftp://x"})).unwrap();
        assert!(matches!(
            build(&c, reqwest::Client::new()),
            Err(BackendError::Config(_))
        ));
    }

    #[test]
    fn retryable_errors() {
        assert!(BackendError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(BackendError::Status {
            status: 503,
            retry_after: None,
            body: String::new()
        }
        .is_retryable());
        assert!(BackendError::Status {
            status: 429,
            retry_after: None,
            body: String::new()
        }
        .is_retryable());
        assert!(!BackendError::Status {
            status: 400,
            retry_after: None,
            body: String::new()
        }
        .is_retryable());
        assert!(!BackendError::Malformed(String::new()).is_retryable());
    }
}
