//! The `openai` backend: any server with OpenAI's chat-completions API (`POST {url}/chat/completions`, where `url`
//! ends in `/v1`): OpenAI itself, Azure-compatible gateways, vLLM, llama.cpp's server, Ollama, LiteLLM…
//!
//! Each turn sends the system prompt, the conversation so far (at most `max_history` entries; the bridge passes it
//! in, the backend keeps nothing) and the consumer's message, with one tool the model may call: `handover_to_agent`
//! (`{"reason": string, "summary": string}`, function calling as in the chat-completions reference: `tools: [{type:
//! "function", function: {name, description, parameters}}]`; the answer's `choices[0].message.tool_calls[].function`
//! carries `name` and `arguments`, a JSON string). A call to it hands the conversation over with the reason and the
//! summary as context. The answer's `content` is the reply text.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{base_url, send_ok, BackendError, BotBackend};
use crate::model::{BotRequest, BotResponse, Handover, Reply, Speaker, TurnKind};
use crate::secret::Secret;

pub const HANDOVER_TOOL: &str = "handover_to_agent";

#[derive(Debug, Clone, Deserialize)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`, e.g. `https://api.openai.com/v1` or `http://localhost:8000/v1`.
    pub url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    pub model: String,
    #[serde(default = "default_system_prompt")]
    pub system_prompt: String,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default = "default_max_history")]
    pub max_history: usize,
    /// Offer the hand-over tool.
    #[serde(default = "yes")]
    pub handover_tool: bool,
    /// Shown when the model hands over without saying anything.
    #[serde(default = "default_handover_message")]
    pub handover_message: String,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_system_prompt() -> String {
    "You are a helpful customer-service assistant for a contact center. Answer briefly. If the customer asks for a \
     human, or you cannot help, call handover_to_agent."
        .into()
}
fn default_max_history() -> usize {
    20
}
fn yes() -> bool {
    true
}
fn default_handover_message() -> String {
    "Let me connect you with an agent.".into()
}
fn default_timeout() -> u64 {
    30_000
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<CompletionChoice>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: AssistantMessage,
}

#[derive(Debug, Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug)]
pub struct OpenAiBackend {
    config: OpenAiConfig,
    endpoint: String,
    http: reqwest::Client,
}

impl OpenAiBackend {
    pub fn new(config: OpenAiConfig, http: reqwest::Client) -> Result<Self, BackendError> {
        if config.model.trim().is_empty() {
            return Err(BackendError::Config("bot.model is empty".into()));
        }
        let endpoint = format!("{}/chat/completions", base_url(&config.url, "bot.url")?);
        Ok(OpenAiBackend {
            config,
            endpoint,
            http,
        })
    }

    /// The request body for a turn.
    pub fn request_body(&self, request: &BotRequest) -> Value {
        let mut messages = vec![json!({"role": "system", "content": self.config.system_prompt})];
        let skip = request
            .history
            .len()
            .saturating_sub(self.config.max_history);
        for entry in request.history.iter().skip(skip) {
            let (role, content) = match entry.speaker {
                Speaker::Consumer => ("user", entry.text.clone()),
                Speaker::Bot => ("assistant", entry.text.clone()),
                // A live agent's words are context, not the model's own.
                Speaker::Agent => ("user", format!("(agent) {}", entry.text)),
            };
            messages.push(json!({"role": role, "content": content}));
        }
        if !request.text.trim().is_empty() {
            messages.push(json!({"role": "user", "content": request.text}));
        }
        let mut body = json!({"model": self.config.model, "messages": messages});
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = self.config.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if self.config.handover_tool {
            body["tools"] = json!([{
                "type": "function",
                "function": {
                    "name": HANDOVER_TOOL,
                    "description": "Hand the conversation over to a live human agent.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "reason": {"type": "string", "description": "Why a human is needed."},
                            "summary": {"type": "string", "description": "A short summary of the conversation for the agent."}
                        },
                        "required": ["reason"]
                    }
                }
            }]);
            body["tool_choice"] = json!("auto");
        }
        body
    }
}

#[async_trait]
impl BotBackend for OpenAiBackend {
    fn kind(&self) -> &'static str {
        "openai"
    }

    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError> {
        if request.kind == TurnKind::End {
            return Ok(BotResponse::default());
        }
        let body = serde_json::to_vec(&self.request_body(request))
            .map_err(|e| BackendError::Malformed(e.to_string()))?;
        let mut req = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(k) = &self.config.api_key {
            req = req.header(AUTHORIZATION, format!("Bearer {}", k.expose()));
        }
        let (_, body) = send_ok(req, Duration::from_millis(self.config.timeout_ms)).await?;
        let completion: Completion = body.json()?;
        let message = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| BackendError::Malformed("no choices in the completion".into()))?
            .message;
        let mut response = BotResponse::default();
        if let Some(text) = message.content.filter(|t| !t.trim().is_empty()) {
            response.replies.push(Reply::Text {
                text: text.trim().to_owned(),
            });
        }
        for call in message.tool_calls {
            if call.function.name != HANDOVER_TOOL || !self.config.handover_tool {
                response.unmapped += 1;
                continue;
            }
            // Arguments are model output: unreadable arguments still hand over, with the raw text as the reason.
            let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or(Value::Null);
            let reason = match args.get("reason").and_then(Value::as_str) {
                Some(r) => Some(r.to_owned()),
                None if !call.function.arguments.trim().is_empty() => {
                    Some(call.function.arguments.clone())
                }
                None => None,
            };
            let mut handover = Handover {
                reason,
                ..Default::default()
            };
            if let Some(s) = args.get("summary").and_then(Value::as_str) {
                handover
                    .context
                    .insert("summary".into(), Value::String(s.to_owned()));
            }
            response.handover = Some(handover);
        }
        if response.handover.is_some() && response.replies.is_empty() {
            response
                .replies
                .push(Reply::text(&self.config.handover_message));
        }
        if response.replies.is_empty() && response.handover.is_none() && response.unmapped == 0 {
            return Err(BackendError::Malformed(
                "the completion has neither content nor a tool call".into(),
            ));
        }
        Ok(response)
    }
}
