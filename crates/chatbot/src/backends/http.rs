//! The `http` backend: any service that implements our JSON contract (`docs/chat/http-backend.md`, version 1).
//!
//! - The bridge POSTs a [`TurnBody`] to `url` (with `Authorization: Bearer <token>` when a token is configured).
//! - **Inline:** the service answers 200 with a [`ReplyBody`] (`replies`, optional `handover`, `end`, `state`),
//!   or 204 for no reply.
//! - **Callback:** the service answers 202 and later POSTs a [`CallbackBody`] (the same reply plus
//!   `conversation_id`) to the `callback_url` given in the turn, with `Authorization: Bearer <callback_token>`; the
//!   bridge checks it with [`HttpBackend::verify_callback`] and reads it with [`parse_callback`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{base_url, default_timeout_ms, send, BackendError, BotBackend};
use crate::model::{
    BotRequest, BotResponse, BotUser, EndOfConversation, Handover, HistoryEntry, Reply, TurnKind,
};
use crate::secret::Secret;

pub const CONTRACT_VERSION: &str = "1";

#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    pub url: String,
    /// Bearer token sent to the service.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Where the service may post replies later (the bridge fills it in); sent in every turn when set.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// The bearer token the service presents on callbacks.
    #[serde(default)]
    pub callback_token: Option<Secret>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Send the conversation history with each turn.
    #[serde(default)]
    pub send_history: bool,
}

/// The request body (contract version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnBody {
    pub version: String,
    pub conversation_id: String,
    pub message_id: String,
    pub kind: TurnKind,
    pub text: String,
    pub user: BotUser,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// What the service returned as `state` last turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// The reply body (inline 200, or inside a callback).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplyBody {
    #[serde(default)]
    pub replies: Vec<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndOfConversation>,
    /// Opaque state handed back next turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

impl ReplyBody {
    fn into_response(self) -> BotResponse {
        BotResponse {
            replies: self.replies,
            handover: self.handover,
            end: self.end,
            deferred: false,
            backend_state: self.state,
            unmapped: 0,
        }
    }
}

/// A reply posted to the callback URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub conversation_id: String,
    /// The `message_id` of the turn this answers, when the service knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    #[serde(flatten)]
    pub reply: ReplyBody,
}

/// A callback, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub conversation_id: String,
    pub in_reply_to: Option<String>,
    pub response: BotResponse,
}

/// Reads a callback body.
pub fn parse_callback(body: &[u8]) -> Result<Callback, BackendError> {
    let cb: CallbackBody =
        serde_json::from_slice(body).map_err(|e| BackendError::Malformed(e.to_string()))?;
    if cb.conversation_id.trim().is_empty() {
        return Err(BackendError::Malformed("conversation_id is empty".into()));
    }
    Ok(Callback {
        conversation_id: cb.conversation_id,
        in_reply_to: cb.in_reply_to,
        response: cb.reply.into_response(),
    })
}

#[derive(Debug)]
pub struct HttpBackend {
    config: HttpConfig,
    url: String,
    http: reqwest::Client,
}

impl HttpBackend {
    pub fn new(config: HttpConfig, http: reqwest::Client) -> Result<Self, BackendError> {
        let url = base_url(&config.url, "bot.url")?;
        if let Some(cb) = &config.callback_url {
            base_url(cb, "bot.callback_url")?;
        }
        Ok(HttpBackend { config, url, http })
    }

    /// Checks a callback's `Authorization` header value against `callback_token` (constant time). Without a
    /// configured token every callback is refused.
    pub fn verify_callback(&self, authorization: Option<&str>) -> bool {
        let (Some(expected), Some(value)) = (&self.config.callback_token, authorization) else {
            return false;
        };
        match value.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                expected.matches(token.trim())
            }
            _ => false,
        }
    }

    pub fn turn_body(&self, request: &BotRequest) -> TurnBody {
        TurnBody {
            version: CONTRACT_VERSION.into(),
            conversation_id: request.conversation_id.clone(),
            message_id: request.message_id.clone(),
            kind: request.kind,
            text: request.text.clone(),
            user: request.user.clone(),
            language: request.language.clone(),
            variables: request.variables.clone(),
            history: if self.config.send_history {
                request.history.clone()
            } else {
                Vec::new()
            },
            state: request.backend_state.clone(),
            callback_url: self.config.callback_url.clone(),
        }
    }
}

#[async_trait]
impl BotBackend for HttpBackend {
    fn kind(&self) -> &'static str {
        "http"
    }

    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError> {
        let body = serde_json::to_vec(&self.turn_body(request))
            .map_err(|e| BackendError::Malformed(e.to_string()))?;
        let mut req = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = &self.config.token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        let (status, retry_after, body) =
            send(req, Duration::from_millis(self.config.timeout_ms)).await?;
        match status {
            StatusCode::OK => {
                let reply: ReplyBody = body.json()?;
                Ok(reply.into_response())
            }
            StatusCode::ACCEPTED => {
                if self.config.callback_url.is_none() {
                    return Err(BackendError::Malformed(
                        "202 (callback) but no callback_url is configured".into(),
                    ));
                }
                Ok(BotResponse {
                    deferred: true,
                    backend_state: request.backend_state.clone(),
                    ..Default::default()
                })
            }
            StatusCode::NO_CONTENT => Ok(BotResponse {
                backend_state: request.backend_state.clone(),
                ..Default::default()
            }),
            s => Err(BackendError::Status {
                status: s.as_u16(),
                retry_after,
                body: body.snippet(),
            }),
        }
    }
}
