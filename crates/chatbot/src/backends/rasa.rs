//! The `rasa` backend: Rasa's REST input channel ("your own website",
//! <https://rasa.com/docs/rasa/next/connectors/your-own-website/>):
//! `POST {url}/webhooks/rest/webhook` with `{"sender": "<id>", "message": "<text>", "metadata": {…}}` answers a JSON
//! array of bot messages, each with `recipient_id` and one or more of `text`, `buttons` (`[{title, payload}]`),
//! `image`, `attachment`, `custom`.
//!
//! Mapping: `text` → text; `text` with `buttons` → quick replies titled by the text; `image` → image; `custom` with
//! a `handover` object (`{reason, queue, context}`) → hand-over; `custom` with `"end_conversation": true` → end (this
//! project's convention, documented in `docs/chat/backends.md`); any other `custom` or `attachment` is counted as
//! unmapped. A start without text sends `/session_start` (Rasa's session-start intent); the end of a conversation
//! is not sent (the REST channel has no such event).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{base_url, default_timeout_ms, send_ok, BackendError, BotBackend};
use crate::model::{BotRequest, BotResponse, Choice, EndOfConversation, Handover, Reply, TurnKind};

pub const REST_WEBHOOK_PATH: &str = "/webhooks/rest/webhook";

#[derive(Debug, Clone, Deserialize)]
pub struct RasaConfig {
    /// Rasa's base URL, e.g. `http://localhost:5005`.
    pub url: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The message sent when a conversation starts without text.
    #[serde(default = "default_start_message")]
    pub start_message: String,
    /// Send the consumer's language and conversation variables as `metadata`.
    #[serde(default = "yes")]
    pub send_metadata: bool,
}

fn default_start_message() -> String {
    "/session_start".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
struct RestRequest<'a> {
    sender: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RestMessage {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    buttons: Option<Vec<RestButton>>,
    #[serde(default)]
    custom: Option<Value>,
    #[serde(default)]
    attachment: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RestButton {
    title: String,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Debug)]
pub struct RasaBackend {
    config: RasaConfig,
    endpoint: String,
    http: reqwest::Client,
}

impl RasaBackend {
    pub fn new(config: RasaConfig, http: reqwest::Client) -> Result<Self, BackendError> {
        let endpoint = format!("{}{REST_WEBHOOK_PATH}", base_url(&config.url, "bot.url")?);
        Ok(RasaBackend {
            config,
            endpoint,
            http,
        })
    }
}

#[async_trait]
impl BotBackend for RasaBackend {
    fn kind(&self) -> &'static str {
        "rasa"
    }

    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError> {
        if request.kind == TurnKind::End {
            return Ok(BotResponse::default());
        }
        let text = if request.text.trim().is_empty() {
            if request.kind == TurnKind::Start {
                self.config.start_message.as_str()
            } else {
                return Ok(BotResponse::default());
            }
        } else {
            request.text.as_str()
        };
        let metadata = self.config.send_metadata.then(|| {
            serde_json::json!({
                "language": request.language,
                "variables": request.variables,
                "message_id": request.message_id,
                "conversation_id": request.conversation_id,
            })
        });
        // The sender is the conversation: Rasa keys its tracker by sender, and one consumer may hold several
        // conversations.
        let body = serde_json::to_vec(&RestRequest {
            sender: &request.conversation_id,
            message: text,
            metadata,
        })
        .map_err(|e| BackendError::Malformed(e.to_string()))?;
        let req = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let (_, body) = send_ok(req, Duration::from_millis(self.config.timeout_ms)).await?;
        if body.is_empty() {
            return Ok(BotResponse::default());
        }
        let messages: Vec<RestMessage> = body.json()?;
        Ok(map_messages(messages))
    }
}

fn map_messages(messages: Vec<RestMessage>) -> BotResponse {
    let mut response = BotResponse::default();
    for m in messages {
        let mut mapped = false;
        match (m.text, m.buttons) {
            (text, Some(buttons)) if !buttons.is_empty() => {
                let options = buttons
                    .into_iter()
                    .map(|b| Choice {
                        value: b.payload.unwrap_or_else(|| b.title.clone()),
                        label: b.title,
                    })
                    .collect();
                response.replies.push(Reply::QuickReplies {
                    title: text.filter(|t| !t.is_empty()),
                    options,
                });
                mapped = true;
            }
            (Some(text), _) if !text.is_empty() => {
                response.replies.push(Reply::Text { text });
                mapped = true;
            }
            _ => {}
        }
        if let Some(url) = m.image.filter(|u| !u.is_empty()) {
            response.replies.push(Reply::Image { url, alt: None });
            mapped = true;
        }
        if let Some(custom) = m.custom {
            if map_custom(&custom, &mut response) {
                mapped = true;
            } else {
                response.unmapped += 1;
            }
        }
        if m.attachment.is_some() {
            response.unmapped += 1;
        } else if !mapped {
            tracing::debug!("Rasa message without text, buttons, image or custom: nothing to show");
        }
    }
    response
}

fn map_custom(custom: &Value, response: &mut BotResponse) -> bool {
    let Some(obj) = custom.as_object() else {
        return false;
    };
    let mut mapped = false;
    if let Some(h) = obj.get("handover").or_else(|| obj.get("handoff")) {
        let h: &Map<String, Value> = match h.as_object() {
            Some(o) => o,
            None => &Map::new(),
        };
        response.handover = Some(Handover {
            reason: h.get("reason").and_then(Value::as_str).map(str::to_owned),
            queue: h.get("queue").and_then(Value::as_str).map(str::to_owned),
            context: h
                .get("context")
                .and_then(Value::as_object)
                .map(|c| c.clone().into_iter().collect())
                .unwrap_or_default(),
        });
        mapped = true;
    }
    if obj.get("end_conversation").and_then(Value::as_bool) == Some(true) {
        response.end = Some(EndOfConversation {
            reason: obj.get("reason").and_then(Value::as_str).map(str::to_owned),
        });
        mapped = true;
    }
    mapped
}
