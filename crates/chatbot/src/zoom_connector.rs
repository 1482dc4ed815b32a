//! Zoom Contact Center's bot connector: the virtual agent ("non-Zoom") messaging protocol, seen from the bot
//! platform's side. **This is the one module that holds every wire detail of that protocol**; each detail that
//! public sources do not confirm is marked ❓ with what it rests on, and listed in `docs/chat/protocol.md`. To correct
//! one, change it here (most are the constants just below) and its test.
//!
//! Sources (researched 2026-12; quotes in `docs/chat/protocol.md`):
//! - [ZVA-PROTO] Zoom, "Virtual agents (non-Zoom) messaging protocol reference",
//!   <https://developers.zoom.us/docs/contact-center/library/reference/chatbot-protocol/>. Only the opening of the page
//!   is publicly retrievable: the request payload ZCC sends to the virtual agent (`id`, `sessionId`,
//!   `conversationMode: "START_CONVERSATION"`, `message {type: "text", value}`, `conversationVariables`,
//!   `languageCode`, `additionalPayload`), and that the protocol covers "conversation messages, rich media content, and
//!   handover to live agents" in "action and trigger mode".
//! - [ZVA-GUIDE] Zoom, "Integrate third-party chatbots with actions and triggers",
//!   <https://developers.zoom.us/docs/contact-center/library/guides/chatbot/>: "Action (synchronous) - Contact Center
//!   sends a consumer message to your bot and waits for a response"; "Trigger (asynchronous) - Your bot pushes replies
//!   ba[ck]" (the sentence is cut off in every public copy).
//! - [ZCC-MSG] Zoom, "JSON schema - Messages | Contact Center Apps",
//!   <https://developers.zoom.us/docs/contact-center/apps/reference/json-schema-messages/>: message objects
//!   `{type, value}` — `text` (≤ 2048 chars), `html` and `markdown` (≤ 4096), `picker` = `quickReplies`
//!   (`value.title` ≤ 1024, `value.options[{label, value}]` ≤ 20); ≤ 32 KB per message. Written for the DialogFlow
//!   custom payload; that the virtual agent protocol accepts the same objects is ❓ (same `type`/`value` keys).
//! - [KORE-ZCC] Kore.ai, "Adding the Zoom Contact Center Channel" (Koredotcom/docs
//!   `docs/xo/channels/add-zoom-contact-center-channel.md` @0302eeb): "chat automation through Asynchronous Webhook
//!   Integration"; Zoom's connector takes the bot platform's Bot ID, Client ID and Client Secret and shows a **Post
//!   URL** and an **Access Token**; the bot platform's **Webhook URL** goes into the connector.
//! - [KORE-WH] Kore.ai, "Adding WebHook as a channel" (`docs/xo/channels/add-webhook-channel.md` @136be5f):
//!   `Authorization: bearer {{JWT}}` on inbound requests; synchronous requests time out after 15 s; asynchronously,
//!   "each of the bot response is sent to the Post_URL"; error bodies `{"errors":[{"msg","code"}]}`.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http_outcome::{classify_error, classify_response, PostOutcome};
use crate::model::{BotRequest, BotResponse, BotUser, CardButton, HistoryEntry, Reply, TurnKind};
use crate::secret::Secret;

// ---------------------------------------------------------------------------------------------------------------
// Every wire constant, confirmed (✅) or not (❓).
// ---------------------------------------------------------------------------------------------------------------

/// ✅ [ZVA-PROTO] the only `conversationMode` value shown.
pub const MODE_START: &str = "START_CONVERSATION";
/// ❓ The mode of later messages. Not shown; named by analogy with `START_CONVERSATION`. Unknown modes are kept
/// verbatim ([`ConversationMode::Other`]) and a message with text in an unknown mode is treated as a message.
pub const MODE_CONTINUE: &str = "CONTINUE_CONVERSATION";
/// ❓ The mode that tells the bot the conversation ended on ZCC's side. Not shown; by analogy.
pub const MODE_END: &str = "END_CONVERSATION";
/// ❓ The mode of a reply that hands the conversation over to a live agent ("handover to live agents" is in the
/// protocol's scope [ZVA-PROTO]; its signal is not public). Mirrors the request's `conversationMode`.
pub const REPLY_MODE_HANDOVER: &str = "HANDOVER";
/// ❓ The mode of a reply that ends the conversation. By analogy.
pub const REPLY_MODE_END: &str = MODE_END;

/// ✅ [ZVA-PROTO] the consumer's e-mail in `conversationVariables`.
pub const VAR_CONSUMER_EMAIL: &str = "global_system.Consumer.email";
/// ❓ The consumer's phone number: not in the example; these names follow the `global_system.Consumer.*` pattern.
pub const VARS_CONSUMER_PHONE: &[&str] = &[
    "global_system.Consumer.phone",
    "global_system.Consumer.phoneNumber",
    "global_system.Consumer.number",
];
/// ❓ The ZCC engagement id, when a variable carries it (not in the example). Whether `sessionId` itself is the
/// engagement id is also ❓; [`VirtualAgentRequest::engagement_id`] tries these names and nothing else.
pub const VARS_ENGAGEMENT_ID: &[&str] = &[
    "global_system.Engagement.engagementId",
    "global_system.Engagement.id",
    "global_system.Engagement.engagement_id",
];

/// ❓ How the connector presents its client-app JWT on the Webhook URL. Kore's webhook channel documents
/// `Authorization: bearer {{JWT}}` [KORE-WH]; Zoom's connector for Kore is assumed to do the same. The scheme is
/// matched case-insensitively.
pub const INBOUND_AUTH_SCHEME: &str = "bearer";

/// ❓ How the bot platform presents the connector's Access Token on the Post URL: not documented anywhere public.
/// Default `Authorization: Bearer <token>`; [`AccessTokenAuth::Header`] sends it raw in another header instead.
pub const DEFAULT_ACCESS_TOKEN_AUTH: AccessTokenAuth = AccessTokenAuth::Bearer;

/// [ZCC-MSG] limits (❓ for this protocol, see the module doc).
pub const TEXT_MAX_CHARS: usize = 2048;
pub const MARKDOWN_MAX_CHARS: usize = 4096;
pub const PICKER_TITLE_MAX_CHARS: usize = 1024;
pub const PICKER_MAX_OPTIONS: usize = 20;
/// ❓ The message type used for quick replies; [ZCC-MSG] says `picker` and `quickReplies` are aliases.
pub const QUICK_REPLIES_TYPE: &str = "quickReplies";
/// ❓ Images and cards: [ZCC-MSG]'s public part documents no image or card type, so they are sent as `markdown`
/// (documented) — an image as `![alt](url)`, a card as a markdown block plus a `quickReplies` for its postbacks.
pub const MARKDOWN_TYPE: &str = "markdown";
pub const TEXT_TYPE: &str = "text";

/// ❓ Body ZCC gets back when it posts in trigger mode (the replies follow on the Post URL). Kore acknowledges its
/// async webhook with `{"status":"ok", …}` [KORE-WH]; ZCC's expectation is not public, any 2xx is assumed to do.
pub fn trigger_ack(message_id: &str) -> Value {
    serde_json::json!({"status": "ok", "id": message_id})
}

/// Error body for a refused request, in the shape Kore's webhook channel documents [KORE-WH]
/// (`{"errors":[{"msg":"Invalid Access token","code":401}]}`). ❓ that ZCC reads it; the status code is what counts.
pub fn error_body(code: u16, msg: &str) -> Value {
    serde_json::json!({"errors": [{"msg": msg, "code": code}]})
}

// ---------------------------------------------------------------------------------------------------------------
// Inbound: the request ZCC posts to the Webhook URL.
// ---------------------------------------------------------------------------------------------------------------

/// How the bot answers ZCC. Which one a connector uses is set when the app is registered in Zoom
/// ("action and trigger mode" [ZVA-GUIDE]); the bridge takes it from the channel's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyMode {
    /// Action (synchronous): the replies are the HTTP response to ZCC's request.
    Action,
    /// Trigger (asynchronous): ZCC's request is acknowledged at once; the replies are posted to the Post URL with
    /// the Access Token. Kore's ZCC channel works this way [KORE-ZCC].
    #[default]
    Trigger,
}

/// `conversationMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationMode {
    Start,
    Continue,
    End,
    /// A value this module does not know, kept verbatim.
    Other(String),
}

impl ConversationMode {
    pub fn parse(value: &str) -> Self {
        match value {
            MODE_START => ConversationMode::Start,
            MODE_CONTINUE => ConversationMode::Continue,
            MODE_END => ConversationMode::End,
            other => ConversationMode::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ConversationMode::Start => MODE_START,
            ConversationMode::Continue => MODE_CONTINUE,
            ConversationMode::End => MODE_END,
            ConversationMode::Other(s) => s,
        }
    }
}

/// A message object `{type, value}` ([ZVA-PROTO] for the request's `message`, [ZCC-MSG] for replies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoomMessage {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Value,
}

impl ZoomMessage {
    pub fn text(text: impl Into<String>) -> Self {
        ZoomMessage {
            kind: TEXT_TYPE.into(),
            value: Value::String(text.into()),
        }
    }

    /// The consumer's text: a `text` message's value. ❓ Other inbound types (a picked quick reply, an attachment)
    /// are not documented: a string `value` of any type is taken as text, and an object's `value`, `text` or `label`
    /// string (in that order) as well.
    pub fn consumer_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => ["value", "text", "label"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .map(str::to_owned),
            _ => None,
        }
    }
}

/// Why a body is not a virtual agent request. The bridge quarantines such a body (it authenticated) and answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("missing or empty field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` should be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// ZCC's request to the virtual agent [ZVA-PROTO]. Field names and types are the documented example's; fields not
/// in it are kept in `extra`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualAgentRequest {
    /// ❓ The message id. Assumed unique per consumer message and unchanged when ZCC retries a delivery (the
    /// example shows `"xxx"`); it is the de-duplication key ([`Self::dedup_key`]). A number is accepted as text.
    pub id: String,
    /// The conversation. ❓ whether it equals the ZCC engagement id.
    pub session_id: String,
    pub conversation_mode: ConversationMode,
    pub message: Option<ZoomMessage>,
    /// Values are strings in the example; others are kept as JSON.
    pub conversation_variables: BTreeMap<String, Value>,
    pub language_code: Option<String>,
    /// `null` in the example; its content is not documented.
    pub additional_payload: Option<Value>,
    pub extra: Map<String, Value>,
}

impl VirtualAgentRequest {
    /// Reads a request field by field; a field of the wrong type is an error naming it.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
        let Value::Object(mut obj) = value else {
            return Err(RequestError::NotAnObject);
        };
        let id = match obj.remove("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                return Err(RequestError::Missing("id"))
            }
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "id",
                    expected: "a string",
                })
            }
        };
        let session_id = match obj.remove("sessionId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::String(_)) | Some(Value::Null) | None => {
                return Err(RequestError::Missing("sessionId"))
            }
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "sessionId",
                    expected: "a string",
                })
            }
        };
        let conversation_mode = match obj.remove("conversationMode") {
            Some(Value::String(s)) => ConversationMode::parse(&s),
            // ❓ absent mode: treated as a message in a running conversation.
            Some(Value::Null) | None => ConversationMode::Continue,
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "conversationMode",
                    expected: "a string",
                })
            }
        };
        let message = match obj.remove("message") {
            Some(Value::Null) | None => None,
            Some(Value::Object(mut m)) => {
                let kind = match m.remove("type") {
                    Some(Value::String(s)) => s,
                    _ => {
                        return Err(RequestError::WrongType {
                            field: "message.type",
                            expected: "a string",
                        })
                    }
                };
                Some(ZoomMessage {
                    kind,
                    value: m.remove("value").unwrap_or(Value::Null),
                })
            }
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "message",
                    expected: "an object",
                })
            }
        };
        let conversation_variables = match obj.remove("conversationVariables") {
            Some(Value::Null) | None => BTreeMap::new(),
            Some(Value::Object(m)) => m.into_iter().collect(),
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "conversationVariables",
                    expected: "an object",
                })
            }
        };
        let language_code = match obj.remove("languageCode") {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::String(_)) | Some(Value::Null) | None => None,
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: "languageCode",
                    expected: "a string",
                })
            }
        };
        let additional_payload = match obj.remove("additionalPayload") {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        };
        Ok(VirtualAgentRequest {
            id,
            session_id,
            conversation_mode,
            message,
            conversation_variables,
            language_code,
            additional_payload,
            extra: obj,
        })
    }

    /// The event-log de-duplication key: session and message id (❓ see [`Self::id`]). A retried delivery maps to
    /// the same key; the same id in another session does not collide.
    pub fn dedup_key(&self) -> String {
        format!("zoom-va:{}:{}", self.session_id, self.id)
    }

    /// The consumer's text, empty when the request carries none.
    pub fn text(&self) -> String {
        self.message
            .as_ref()
            .and_then(ZoomMessage::consumer_text)
            .unwrap_or_default()
    }

    /// Which turn this is for the bot; `None` for an unknown mode without text (record it, do not ask the bot).
    pub fn turn_kind(&self) -> Option<TurnKind> {
        match &self.conversation_mode {
            ConversationMode::Start => Some(TurnKind::Start),
            ConversationMode::Continue => Some(TurnKind::Message),
            ConversationMode::End => Some(TurnKind::End),
            ConversationMode::Other(_) if !self.text().is_empty() => Some(TurnKind::Message),
            ConversationMode::Other(_) => None,
        }
    }

    fn variable(&self, name: &str) -> Option<String> {
        match self.conversation_variables.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn consumer_email(&self) -> Option<String> {
        self.variable(VAR_CONSUMER_EMAIL)
    }

    pub fn consumer_phone(&self) -> Option<String> {
        VARS_CONSUMER_PHONE.iter().find_map(|n| self.variable(n))
    }

    /// The ZCC engagement id when a conversation variable carries one (❓ [`VARS_ENGAGEMENT_ID`]); the bridge joins
    /// the conversation to that engagement's record. `None` does not mean there is no engagement.
    pub fn engagement_id(&self) -> Option<String> {
        VARS_ENGAGEMENT_ID.iter().find_map(|n| self.variable(n))
    }

    /// The conversation variables whose values are strings (numbers as text), for the bot's context.
    pub fn string_variables(&self) -> BTreeMap<String, String> {
        self.conversation_variables
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .collect()
    }

    /// The neutral request for a bot backend; `None` when [`Self::turn_kind`] is `None`.
    pub fn to_bot_request(
        &self,
        user: BotUser,
        history: Vec<HistoryEntry>,
        backend_state: Option<Value>,
    ) -> Option<BotRequest> {
        Some(BotRequest {
            conversation_id: self.session_id.clone(),
            message_id: self.id.clone(),
            kind: self.turn_kind()?,
            text: self.text(),
            user,
            language: self.language_code.clone(),
            variables: self.string_variables(),
            history,
            backend_state,
        })
    }
}

/// The client-app JWT from the inbound request's `Authorization` header (❓ [`INBOUND_AUTH_SCHEME`]).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case(INBOUND_AUTH_SCHEME) && !token.is_empty()).then_some(token)
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound: the bot's answer (the action response body, or the body posted to the Post URL in trigger mode).
// ---------------------------------------------------------------------------------------------------------------

/// Hand-over details sent with a `HANDOVER` reply (❓ the whole object; see [`REPLY_MODE_HANDOVER`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The conversation so far, oldest first, for the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<TranscriptLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// `consumer`, `bot` or `agent`.
    pub from: String,
    pub text: String,
}

/// ❓ The bot's answer to ZCC: the same body serves as the action (synchronous) response and as the trigger-mode POST
/// to the Post URL. Only the message objects follow a public schema ([ZCC-MSG]); the envelope mirrors the request's
/// names (`id`, `sessionId`, `conversationMode`, `conversationVariables`, `languageCode`) because the reply schema is
/// not public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReply {
    /// A fresh id for this reply (the bridge's outbox job id), so that ZCC could de-duplicate a redelivery.
    pub id: String,
    pub session_id: String,
    /// The inbound message this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<String>,
    pub messages: Vec<ZoomMessage>,
    /// `HANDOVER` or `END_CONVERSATION` when the bot hands over or ends; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_mode: Option<String>,
    /// Context for the agent (hand-over): the bot's context as conversation variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conversation_variables: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<HandoverBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

impl ConnectorReply {
    /// Nothing to tell ZCC: no message, no hand-over, no end (e.g. a deferred `http` turn). The bridge posts no such
    /// reply in trigger mode; in action mode it is the (empty) answer.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.conversation_mode.is_none()
    }

    /// The reply for a bot's response. `transcript` is included only when the bot hands over. Returns the reply and
    /// how many parts had to be dropped (a link or image whose URL is not http(s), options beyond the 20 allowed).
    pub fn from_response(
        id: impl Into<String>,
        request: &VirtualAgentRequest,
        response: &BotResponse,
        transcript: &[HistoryEntry],
    ) -> (Self, usize) {
        let (messages, dropped) = encode_messages(&response.replies);
        let mut reply = ConnectorReply {
            id: id.into(),
            session_id: request.session_id.clone(),
            reply_to_id: Some(request.id.clone()),
            messages,
            conversation_mode: None,
            conversation_variables: BTreeMap::new(),
            handover: None,
            language_code: request.language_code.clone(),
        };
        if let Some(h) = &response.handover {
            reply.conversation_mode = Some(REPLY_MODE_HANDOVER.to_owned());
            reply.conversation_variables = h.context.clone().into_iter().collect();
            reply.handover = Some(HandoverBody {
                reason: h.reason.clone(),
                queue: h.queue.clone(),
                transcript: transcript
                    .iter()
                    .map(|e| TranscriptLine {
                        from: match e.speaker {
                            crate::model::Speaker::Consumer => "consumer",
                            crate::model::Speaker::Bot => "bot",
                            crate::model::Speaker::Agent => "agent",
                        }
                        .to_owned(),
                        text: e.text.clone(),
                    })
                    .collect(),
            });
        } else if response.end.is_some() {
            reply.conversation_mode = Some(REPLY_MODE_END.to_owned());
        }
        (reply, dropped)
    }
}

/// Maps neutral replies to message objects within [ZCC-MSG]'s limits: long text is split (at a space when there is
/// one), quick replies keep their first 20 options, images and cards become markdown (❓ [`MARKDOWN_TYPE`]). Returns
/// the messages and how many parts were dropped.
pub fn encode_messages(replies: &[Reply]) -> (Vec<ZoomMessage>, usize) {
    let mut out = Vec::new();
    let mut dropped = 0;
    for reply in replies {
        match reply {
            Reply::Text { text } => {
                for chunk in split_text(text, TEXT_MAX_CHARS) {
                    out.push(ZoomMessage::text(chunk));
                }
            }
            Reply::QuickReplies { title, options } => {
                dropped += options.len().saturating_sub(PICKER_MAX_OPTIONS);
                out.push(quick_replies(
                    title.as_deref(),
                    options.iter().map(|o| (&o.label, &o.value)),
                ));
            }
            Reply::Image { url, alt } => {
                if is_web_url(url) {
                    let alt = alt.as_deref().map(markdown_label).unwrap_or_default();
                    out.push(markdown(format!("![{alt}]({url})")));
                } else {
                    dropped += 1;
                }
            }
            Reply::Card(card) => {
                let mut md = format!("**{}**", markdown_label(&card.title));
                if let Some(s) = &card.subtitle {
                    md.push_str("\n\n");
                    md.push_str(s);
                }
                match &card.image_url {
                    Some(u) if is_web_url(u) => md.push_str(&format!("\n\n![]({u})")),
                    Some(_) => dropped += 1,
                    None => {}
                }
                let mut postbacks = Vec::new();
                for b in &card.buttons {
                    match b {
                        CardButton::Link { label, url } if is_web_url(url) => {
                            md.push_str(&format!("\n\n[{}]({url})", markdown_label(label)))
                        }
                        CardButton::Link { .. } => dropped += 1,
                        CardButton::Postback { label, value } => postbacks.push((label, value)),
                    }
                }
                out.push(markdown(truncate_chars(&md, MARKDOWN_MAX_CHARS)));
                if !postbacks.is_empty() {
                    dropped += postbacks.len().saturating_sub(PICKER_MAX_OPTIONS);
                    out.push(quick_replies(None, postbacks.into_iter()));
                }
            }
        }
    }
    (out, dropped)
}

fn quick_replies<'a>(
    title: Option<&str>,
    options: impl Iterator<Item = (&'a String, &'a String)>,
) -> ZoomMessage {
    let options: Vec<Value> = options
        .take(PICKER_MAX_OPTIONS)
        .map(|(label, value)| serde_json::json!({"label": label, "value": value}))
        .collect();
    let mut value = Map::new();
    if let Some(t) = title {
        value.insert(
            "title".into(),
            Value::String(truncate_chars(t, PICKER_TITLE_MAX_CHARS)),
        );
    }
    value.insert("options".into(), Value::Array(options));
    ZoomMessage {
        kind: QUICK_REPLIES_TYPE.into(),
        value: Value::Object(value),
    }
}

fn markdown(text: String) -> ZoomMessage {
    ZoomMessage {
        kind: MARKDOWN_TYPE.into(),
        value: Value::String(text),
    }
}

/// Brackets would end a markdown link text early.
fn markdown_label(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '[' | ']')).collect()
}

fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c == ')' || c == '(')
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Splits text into chunks of at most `max` chars, preferring the last whitespace in each window.
fn split_text(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return vec![text.to_owned()];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let end = (start + max).min(chars.len());
        let mut cut = end;
        if end < chars.len() {
            if let Some(ws) = (start + 1..end).rev().find(|&i| chars[i].is_whitespace()) {
                cut = ws;
            }
        }
        let chunk: String = chars[start..cut].iter().collect();
        let chunk = chunk.trim().to_owned();
        if !chunk.is_empty() {
            out.push(chunk);
        }
        start = cut;
        while start < chars.len() && chars[start].is_whitespace() {
            start += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The Post URL client.
// ---------------------------------------------------------------------------------------------------------------

/// How the Access Token is presented on the Post URL (❓ [`DEFAULT_ACCESS_TOKEN_AUTH`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessTokenAuth {
    /// `Authorization: Bearer <token>`.
    #[default]
    Bearer,
    /// `<name>: <token>`.
    Header(String),
}

/// Posts replies to the connector's Post URL with its Access Token and classifies the outcome. It never retries
/// (the bridge's outbox does) and never logs or prints the token; `Debug` shows only the URL's host.
#[derive(Clone)]
pub struct PostUrlClient {
    http: reqwest::Client,
    url: String,
    token: Secret,
    auth: AccessTokenAuth,
}

impl fmt::Debug for PostUrlClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("PostUrlClient")
            .field("host", &host)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl PostUrlClient {
    /// `http` should come from [`crate::http_outcome::http_client`] (no redirects, a timeout).
    pub fn new(http: reqwest::Client, post_url: impl Into<String>, access_token: Secret) -> Self {
        PostUrlClient {
            http,
            url: post_url.into(),
            token: access_token,
            auth: DEFAULT_ACCESS_TOKEN_AUTH,
        }
    }

    pub fn with_auth(mut self, auth: AccessTokenAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Posts one reply.
    pub async fn post(&self, reply: &ConnectorReply) -> PostOutcome {
        match serde_json::to_vec(reply) {
            Ok(body) => self.post_raw(body).await,
            // Serialising plain data cannot fail; if it ever did, retrying would not help.
            Err(e) => PostOutcome::Permanent {
                status: 0,
                reason: format!("cannot serialise reply: {e}"),
            },
        }
    }

    /// Posts a body as stored in the outbox (the serialised [`ConnectorReply`]).
    pub async fn post_raw(&self, body: Vec<u8>) -> PostOutcome {
        let req = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let req = match &self.auth {
            AccessTokenAuth::Bearer => {
                req.header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            }
            AccessTokenAuth::Header(name) => req.header(name.as_str(), self.token.expose()),
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = if status.is_success() {
                    String::new()
                } else {
                    resp.text().await.unwrap_or_default()
                };
                classify_response(status, &headers, &body)
            }
            Err(e) => classify_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Card, Choice, EndOfConversation, Handover, Speaker};
    use serde_json::json;

    /// The request payload of [ZVA-PROTO], verbatim except for the `additionalPayload` value that the public
    /// excerpt cuts off (`nul…`; `null` assumed).
    pub(crate) const DOC_EXAMPLE: &str = r#"{
    "id": "xxx",
    "sessionId": "xxx",
    "conversationMode": "START_CONVERSATION",
    "message": {
        "type": "text",
        "value": "hi"
    },
    "conversationVariables": {
        "global_system.Engagement.timezone": "America/New_York",
        "global_system.Engagement.regionCode": "GA",
        "global_system.Consumer.email": "a@q.com",
        "global_system.Engagement.latLong": "34.0409, -84.0237",
        "global_custom.CustomerVariableGroup.QueueOpenHours": "1698872160000",
        "global_custom.CustomerVariableGroup.CVariable001": "this is default value",
        "global_system.Engagement.locale": "en-us",
        "global_custom.Website_Data_Value.GJavescriptVariable_hostname": "localhost",
        "global_system.Engagement.regionName": "Georgia",
        "global_system.Engagement.cityName": "Suwanee"
    },
    "languageCode": "en-US",
    "additionalPayload": null
}"#;

    #[test]
    fn parses_the_documented_example() {
        let r = VirtualAgentRequest::parse(DOC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(r.id, "xxx");
        assert_eq!(r.session_id, "xxx");
        assert_eq!(r.conversation_mode, ConversationMode::Start);
        assert_eq!(r.turn_kind(), Some(TurnKind::Start));
        assert_eq!(r.text(), "hi");
        assert_eq!(r.consumer_email().as_deref(), Some("a@q.com"));
        assert_eq!(r.consumer_phone(), None);
        assert_eq!(r.engagement_id(), None);
        assert_eq!(r.language_code.as_deref(), Some("en-US"));
        assert_eq!(r.conversation_variables.len(), 10);
        assert_eq!(r.additional_payload, None);
        assert!(r.extra.is_empty());
        assert_eq!(r.dedup_key(), "zoom-va:xxx:xxx");
    }

    #[test]
    fn names_the_broken_field() {
        let parse = |s: &str| VirtualAgentRequest::parse(s.as_bytes());
        assert!(matches!(parse("not json"), Err(RequestError::NotJson(_))));
        assert_eq!(parse("[]"), Err(RequestError::NotAnObject));
        assert_eq!(
            parse(r#"{"sessionId":"s"}"#),
            Err(RequestError::Missing("id"))
        );
        assert_eq!(
            parse(r#"{"id":"","sessionId":"s"}"#),
            Err(RequestError::Missing("id"))
        );
        assert_eq!(
            parse(r#"{"id":"m"}"#),
            Err(RequestError::Missing("sessionId"))
        );
        assert_eq!(
            parse(r#"{"id":"m","sessionId":5}"#),
            Err(RequestError::WrongType {
                field: "sessionId",
                expected: "a string"
            })
        );
        assert_eq!(
            parse(r#"{"id":"m","sessionId":"s","message":"hi"}"#),
            Err(RequestError::WrongType {
                field: "message",
                expected: "an object"
            })
        );
        assert_eq!(
            parse(r#"{"id":"m","sessionId":"s","conversationVariables":[]}"#),
            Err(RequestError::WrongType {
                field: "conversationVariables",
                expected: "an object"
            })
        );
        // A numeric id is accepted as text; unknown fields are kept.
        let r =
            parse(r#"{"id":42,"sessionId":"s","conversationMode":"X_MODE","future":1}"#).unwrap();
        assert_eq!(r.id, "42");
        assert_eq!(
            r.conversation_mode,
            ConversationMode::Other("X_MODE".into())
        );
        assert_eq!(
            r.turn_kind(),
            None,
            "unknown mode without text is not a bot turn"
        );
        assert_eq!(r.extra.get("future"), Some(&json!(1)));
    }

    #[test]
    fn modes_and_variables() {
        let r = VirtualAgentRequest::parse(
            br#"{"id":"m2","sessionId":"s","conversationMode":"CONTINUE_CONVERSATION",
                 "message":{"type":"quickReplies","value":{"label":"Yes","value":"yes"}},
                 "conversationVariables":{"global_system.Consumer.phoneNumber":"+15550100",
                   "global_system.Engagement.engagementId":"eng-1","n":3,"o":{"a":1}}}"#,
        )
        .unwrap();
        assert_eq!(r.turn_kind(), Some(TurnKind::Message));
        assert_eq!(r.text(), "yes");
        assert_eq!(r.consumer_phone().as_deref(), Some("+15550100"));
        assert_eq!(r.engagement_id().as_deref(), Some("eng-1"));
        let vars = r.string_variables();
        assert_eq!(vars.get("n").map(String::as_str), Some("3"));
        assert!(!vars.contains_key("o"));
        let end = VirtualAgentRequest::parse(
            br#"{"id":"m3","sessionId":"s","conversationMode":"END_CONVERSATION"}"#,
        )
        .unwrap();
        assert_eq!(end.turn_kind(), Some(TurnKind::End));
        let user = BotUser {
            id: "u".into(),
            anonymous: false,
            email: None,
            phone: None,
        };
        let br = end.to_bot_request(user, vec![], None).unwrap();
        assert_eq!(br.kind, TurnKind::End);
        assert_eq!(br.text, "");
    }

    #[test]
    fn bearer_token_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "bearer abc.def.ghi".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc.def.ghi"));
        h.insert(AUTHORIZATION, "Bearer  xyz ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("xyz"));
        h.insert(AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn encodes_each_reply_kind() {
        let replies = vec![
            Reply::text("Hello"),
            Reply::QuickReplies {
                title: Some("Choose".into()),
                options: vec![Choice {
                    label: "Yes".into(),
                    value: "yes".into(),
                }],
            },
            Reply::Image {
                url: "https://img.example/a.png".into(),
                alt: Some("a [pic]".into()),
            },
            Reply::Image {
                url: "javascript:alert(1)".into(),
                alt: None,
            },
            Reply::Card(Card {
                title: "Plan".into(),
                subtitle: Some("Best".into()),
                image_url: Some("https://img.example/p.png".into()),
                buttons: vec![
                    CardButton::Link {
                        label: "More".into(),
                        url: "https://example.com/p".into(),
                    },
                    CardButton::Postback {
                        label: "Buy".into(),
                        value: "buy".into(),
                    },
                ],
            }),
        ];
        let (msgs, dropped) = encode_messages(&replies);
        assert_eq!(dropped, 1, "the javascript: image is dropped");
        let v = serde_json::to_value(&msgs).unwrap();
        assert_eq!(
            v,
            json!([
                {"type": "text", "value": "Hello"},
                {"type": "quickReplies", "value": {"title": "Choose", "options": [{"label": "Yes", "value": "yes"}]}},
                {"type": "markdown", "value": "![a pic](https://img.example/a.png)"},
                {"type": "markdown", "value": "**Plan**\n\nBest\n\n![](https://img.example/p.png)\n\n[More](https://example.com/p)"},
                {"type": "quickReplies", "value": {"options": [{"label": "Buy", "value": "buy"}]}}
            ])
        );
    }

    #[test]
    fn long_text_is_split_and_options_capped() {
        let words = vec!["word"; 1000].join(" "); // 4999 chars
        let (msgs, _) = encode_messages(&[Reply::text(words.clone())]);
        assert!(msgs.len() >= 3);
        let mut joined = Vec::new();
        for m in &msgs {
            let s = m.value.as_str().unwrap();
            assert!(s.chars().count() <= TEXT_MAX_CHARS);
            joined.push(s.to_owned());
        }
        assert_eq!(joined.join(" "), words);
        let unbroken = "x".repeat(5000);
        let (msgs, _) = encode_messages(&[Reply::text(unbroken.clone())]);
        assert_eq!(
            msgs.iter()
                .map(|m| m.value.as_str().unwrap())
                .collect::<String>(),
            unbroken
        );

        let options: Vec<Choice> = (0..25)
            .map(|i| Choice {
                label: format!("L{i}"),
                value: format!("v{i}"),
            })
            .collect();
        let (msgs, dropped) = encode_messages(&[Reply::QuickReplies {
            title: None,
            options,
        }]);
        assert_eq!(dropped, 5);
        assert_eq!(
            msgs[0].value["options"].as_array().unwrap().len(),
            PICKER_MAX_OPTIONS
        );
    }

    #[test]
    fn reply_envelope_for_handover_and_end() {
        let req = VirtualAgentRequest::parse(DOC_EXAMPLE.as_bytes()).unwrap();
        let mut ctx = BTreeMap::new();
        ctx.insert("intent".to_owned(), json!("billing"));
        let resp = BotResponse {
            replies: vec![Reply::text("Connecting you to an agent")],
            handover: Some(Handover {
                reason: Some("asked".into()),
                queue: None,
                context: ctx,
            }),
            ..Default::default()
        };
        let history = vec![HistoryEntry {
            speaker: Speaker::Consumer,
            text: "agent please".into(),
        }];
        let (reply, dropped) = ConnectorReply::from_response("r1", &req, &resp, &history);
        assert_eq!(dropped, 0);
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({
                "id": "r1", "sessionId": "xxx", "replyToId": "xxx",
                "messages": [{"type": "text", "value": "Connecting you to an agent"}],
                "conversationMode": "HANDOVER",
                "conversationVariables": {"intent": "billing"},
                "handover": {"reason": "asked", "transcript": [{"from": "consumer", "text": "agent please"}]},
                "languageCode": "en-US"
            })
        );
        let resp = BotResponse {
            end: Some(EndOfConversation::default()),
            ..Default::default()
        };
        let (reply, _) = ConnectorReply::from_response("r2", &req, &resp, &history);
        assert!(!reply.is_empty());
        assert_eq!(reply.conversation_mode.as_deref(), Some("END_CONVERSATION"));
        let (empty, _) =
            ConnectorReply::from_response("r0", &req, &BotResponse::default(), &history);
        assert!(empty.is_empty());
        assert!(reply.handover.is_none());
        let resp = BotResponse {
            replies: vec![Reply::text("ok")],
            ..Default::default()
        };
        let (reply, _) = ConnectorReply::from_response("r3", &req, &resp, &history);
        let v = serde_json::to_value(&reply).unwrap();
        assert!(
            v.get("conversationMode").is_none() && v.get("handover").is_none(),
            "{v}"
        );
    }

    #[test]
    fn client_debug_hides_token_and_path() {
        let http = reqwest::Client::new();
        let c = PostUrlClient::new(
            http,
            "https://zoom.example/hook/s3cr3tpath",
            Secret::new("tok-123"),
        );
        let d = format!("{c:?}");
        assert!(d.contains("zoom.example"), "{d}");
        assert!(!d.contains("tok-123") && !d.contains("s3cr3tpath"), "{d}");
    }
}
