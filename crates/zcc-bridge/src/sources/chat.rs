//! The chatbot channel's adapter. Two kinds of chat events share the log (source `chat:<channel>`):
//! - what Zoom's bot connector posted (`chat.consumer.start`, `.message`, `.end`): the raw body, read with
//!   `chatbot::zoom_connector` (the one module that knows the connector's wire format);
//! - what the bot answered (`chat.bot.reply`, `.handover`, `.end`, `.noreply`): a [`BotTurn`], the bridge's own JSON,
//!   which also holds the exact reply posted to (or answered to) Zoom, so a replay sends the same bytes.
//!
//! Both are read back into observations (the engagement record's `chat`, when the conversation names an
//! engagement) and live-stream items ([`ChatItem`]).

use bytes::Bytes;
use chatbot::model::{EndOfConversation, Handover, Reply, TurnKind};
use chatbot::zoom_connector::{ConnectorReply, RequestError, VirtualAgentRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::observation::ChatMessageFact;
use crate::core::{EventSource, Observation};
use crate::store::{NewEvent, NewQuarantine};

/// Event types of the consumer's side (the connector's requests).
pub const CONSUMER_START: &str = "chat.consumer.start";
pub const CONSUMER_MESSAGE: &str = "chat.consumer.message";
pub const CONSUMER_END: &str = "chat.consumer.end";
/// Event types of the bot's answers.
pub const BOT_REPLY: &str = "chat.bot.reply";
pub const BOT_HANDOVER: &str = "chat.bot.handover";
pub const BOT_END: &str = "chat.bot.end";
/// A turn the bot answered with nothing to show (an empty answer, an answer deferred to a callback, a message
/// after the hand-over): kept for the conversation's state, sent nowhere.
pub const BOT_NOREPLY: &str = "chat.bot.noreply";
/// The outbox type of the push notification raised when a reply is dead-lettered.
pub const DELIVERY_FAILURE: &str = "chat.delivery_failure";

pub const CONSUMER_TYPES: [&str; 3] = [CONSUMER_START, CONSUMER_MESSAGE, CONSUMER_END];
/// The bot's answers that go to Zoom.
pub const REPLY_TYPES: [&str; 3] = [BOT_REPLY, BOT_HANDOVER, BOT_END];

/// The log's `source` column of a channel's events.
pub fn source_column(channel: &str) -> String {
    format!("chat:{channel}")
}

/// The conversation key (the events' `conversation` column, the outbox's ordering key).
pub fn conversation_key(channel: &str, session_id: &str) -> String {
    format!("chat:{channel}:{session_id}")
}

/// The channel of a `chat:<channel>` source column.
pub fn channel_of(source: &str) -> Option<&str> {
    source.strip_prefix("chat:")
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("not a virtual agent request: {0}")]
    Request(#[from] RequestError),
    #[error("not a bot turn of this bridge: {0}")]
    Turn(String),
    #[error("unknown chat event type {0:?}")]
    Type(String),
}

/// The event type of a consumer request.
pub fn consumer_event_type(request: &VirtualAgentRequest) -> &'static str {
    match request.turn_kind() {
        Some(TurnKind::Start) => CONSUMER_START,
        Some(TurnKind::End) => CONSUMER_END,
        _ => CONSUMER_MESSAGE,
    }
}

/// The consumer's message in the record: its id within the engagement.
fn consumer_message_id(channel: &str, request: &VirtualAgentRequest) -> String {
    format!("{channel}:{}:{}", request.session_id, request.id)
}

fn consumer_fact(
    channel: &str,
    request: &VirtualAgentRequest,
    received_at: i64,
) -> ChatMessageFact {
    ChatMessageFact {
        message_id: consumer_message_id(channel, request),
        channel: channel.to_string(),
        session_id: request.session_id.clone(),
        sender: "consumer".into(),
        text: request.text(),
        time: received_at,
        handover: false,
        handover_reason: None,
        end: request.turn_kind() == Some(TurnKind::End),
    }
}

fn observation(
    engagement_id: &str,
    event_type: &str,
    ts: i64,
    fact: ChatMessageFact,
) -> Observation {
    let mut obs = Observation::new(engagement_id, event_type, ts, EventSource::Chat);
    obs.chat_messages.push(fact);
    obs
}

/// The connector's request as an event: de-duplicated by channel, session and message id (a redelivery of the
/// same message is a duplicate, whatever its token), ordered in its conversation, joined to the engagement its
/// variables name (❓ `chatbot::zoom_connector::VARS_ENGAGEMENT_ID`).
pub fn consumer_event(
    channel: &str,
    request: &VirtualAgentRequest,
    body: Bytes,
    received_at: i64,
    request_id: Option<String>,
) -> NewEvent {
    let event_type = consumer_event_type(request);
    let engagement_id = request.engagement_id();
    NewEvent {
        source: EventSource::Chat,
        dedup_key: format!("chat:{channel}:{}", request.dedup_key()),
        // Keyed by ids, not by hashed JSON: nothing changed with RFC 8785.
        legacy_dedup_key: None,
        event_type: event_type.to_string(),
        engagement_id: engagement_id.clone(),
        event_ts: Some(received_at),
        received_at,
        request_id,
        raw: body,
        observation: engagement_id.map(|e| {
            observation(
                &e,
                event_type,
                received_at,
                consumer_fact(channel, request, received_at),
            )
        }),
        activity: None,
        source_label: Some(source_column(channel)),
        conversation: Some(conversation_key(channel, &request.session_id)),
    }
}

/// A body that authenticated but is not a request: kept (replayable), answered 400.
pub fn quarantine(
    channel: &str,
    body: Bytes,
    received_at: i64,
    request_id: Option<String>,
    reason: String,
) -> NewQuarantine {
    NewQuarantine {
        source: EventSource::Chat,
        source_label: Some(source_column(channel)),
        received_at,
        request_id,
        reason,
        raw: body,
    }
}

/// Where a bot turn's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOrigin {
    /// The bot answered the turn.
    Bot,
    /// The bot answered later, on the `http` backend's callback.
    Callback,
    /// The bot gave no answer after its retries: the channel's `fallback_message`.
    Fallback,
    /// The conversation was handed over or ended: the bot was not asked.
    Skipped,
}

/// A bot turn as logged (the raw bytes of `chat.bot.*` events): the bridge's own format, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotTurn {
    pub version: u32,
    pub channel: String,
    pub session_id: String,
    /// The consumer message this answers (its `id`) and its event in the log, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_event: Option<i64>,
    /// What goes to Zoom (the action response body, or the Post URL body), exactly.
    pub reply: ConnectorReply,
    /// The bot's answer in neutral form (transcripts, history, push notifications).
    #[serde(default)]
    pub replies: Vec<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndOfConversation>,
    /// What the backend wants back next turn (never a credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_state: Option<Value>,
    /// The backend kind (`builtin`, `http`, ...).
    pub backend: String,
    pub origin: TurnOrigin,
    /// The bot's time for this turn, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why the bot gave no answer (origin `fallback`), or why it was not asked (origin `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Reply parts that could not be sent (a non-http link, options beyond 20) and vendor messages with no
    /// neutral form.
    #[serde(default)]
    pub dropped: usize,
    /// The answer was deferred (the `http` backend's 202): it comes on the callback.
    #[serde(default)]
    pub deferred: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<String>,
    /// Epoch ms.
    pub answered_at: i64,
}

pub const BOT_TURN_VERSION: u32 = 1;

impl BotTurn {
    /// `chat.bot.handover`, `.end`, `.reply`, or `.noreply` when there is nothing to send to Zoom.
    pub fn event_type(&self) -> &'static str {
        if self.reply.is_empty() {
            BOT_NOREPLY
        } else if self.handover.is_some() {
            BOT_HANDOVER
        } else if self.end.is_some() {
            BOT_END
        } else {
            BOT_REPLY
        }
    }

    /// The text of the answer (transcripts, push notifications).
    pub fn text(&self) -> String {
        self.replies
            .iter()
            .map(Reply::plain_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The bot's message in the record: its id within the engagement.
    fn message_id(&self) -> String {
        match &self.reply_to {
            Some(id) => format!("{}:{}:reply:{id}", self.channel, self.session_id),
            None => format!(
                "{}:{}:reply:{}",
                self.channel, self.session_id, self.reply.id
            ),
        }
    }

    /// The turn as an event. `dedup_key` makes a turn logged twice (a retried attempt) one event.
    pub fn into_event(self, dedup_key: String) -> Result<NewEvent, ChatError> {
        let raw = serde_json::to_vec(&self).map_err(|e| ChatError::Turn(e.to_string()))?;
        let event_type = self.event_type();
        let observation = self
            .engagement_id
            .as_ref()
            .filter(|_| event_type != BOT_NOREPLY)
            .map(|e| observation(e, event_type, self.answered_at, self.fact()));
        Ok(NewEvent {
            source: EventSource::Chat,
            dedup_key,
            legacy_dedup_key: None,
            event_type: event_type.to_string(),
            engagement_id: self.engagement_id.clone(),
            event_ts: Some(self.answered_at),
            received_at: self.answered_at,
            request_id: None,
            raw: Bytes::from(raw),
            observation,
            activity: None,
            source_label: Some(source_column(&self.channel)),
            conversation: Some(conversation_key(&self.channel, &self.session_id)),
        })
    }

    fn fact(&self) -> ChatMessageFact {
        ChatMessageFact {
            message_id: self.message_id(),
            channel: self.channel.clone(),
            session_id: self.session_id.clone(),
            sender: "bot".into(),
            text: self.text(),
            time: self.answered_at,
            handover: self.handover.is_some(),
            handover_reason: self.handover.as_ref().and_then(|h| h.reason.clone()),
            end: self.end.is_some(),
        }
    }
}

/// Reads a logged bot turn.
pub fn parse_bot_turn(raw: &[u8]) -> Result<BotTurn, ChatError> {
    let turn: BotTurn = serde_json::from_slice(raw).map_err(|e| ChatError::Turn(e.to_string()))?;
    if turn.version != BOT_TURN_VERSION {
        return Err(ChatError::Turn(format!("version {}", turn.version)));
    }
    Ok(turn)
}

/// A chat event as the live stream shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatItem {
    /// `chat_message` (the consumer), `chat_reply`, `chat_handover`, `chat_end` (the bot).
    #[serde(skip)]
    pub kind: &'static str,
    pub channel: String,
    pub session_id: String,
    /// `consumer` or `bot`.
    pub sender: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handover_reason: Option<String>,
}

/// What a logged chat event says: its observation (when it names an engagement) and its live item (none for a
/// turn with nothing to show).
pub fn decode(
    channel: &str,
    raw: &[u8],
    received_at: i64,
) -> Result<(Option<Observation>, Option<ChatItem>), ChatError> {
    // A bot turn is this bridge's JSON and says so; anything else is what the connector posted.
    if let Ok(turn) = parse_bot_turn(raw) {
        let event_type = turn.event_type();
        if event_type == BOT_NOREPLY {
            return Ok((None, None));
        }
        let kind = match event_type {
            BOT_HANDOVER => "chat_handover",
            BOT_END => "chat_end",
            _ => "chat_reply",
        };
        let item = ChatItem {
            kind,
            channel: turn.channel.clone(),
            session_id: turn.session_id.clone(),
            sender: "bot",
            text: turn.text(),
            engagement_id: turn.engagement_id.clone(),
            handover_reason: turn.handover.as_ref().and_then(|h| h.reason.clone()),
        };
        let obs = turn
            .engagement_id
            .as_ref()
            .map(|e| observation(e, event_type, turn.answered_at, turn.fact()));
        return Ok((obs, Some(item)));
    }
    let request = VirtualAgentRequest::parse(raw)?;
    let event_type = consumer_event_type(&request);
    let engagement_id = request.engagement_id();
    let item = ChatItem {
        kind: "chat_message",
        channel: channel.to_string(),
        session_id: request.session_id.clone(),
        sender: "consumer",
        text: request.text(),
        engagement_id: engagement_id.clone(),
        handover_reason: None,
    };
    let obs = engagement_id.map(|e| {
        observation(
            &e,
            event_type,
            received_at,
            consumer_fact(channel, &request, received_at),
        )
    });
    Ok((obs, Some(item)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = r#"{"id":"m1","sessionId":"s1","conversationMode":"START_CONVERSATION",
        "message":{"type":"text","value":"hi"},
        "conversationVariables":{"global_system.Engagement.engagementId":"eng-1"},"languageCode":"en-US"}"#;

    #[test]
    fn a_consumer_message_is_an_ordered_deduplicated_event_of_its_engagement() {
        let request = VirtualAgentRequest::parse(REQUEST.as_bytes()).unwrap();
        let event = consumer_event(
            "web",
            &request,
            Bytes::from_static(REQUEST.as_bytes()),
            1_800_000_000_000,
            None,
        );
        assert_eq!(event.event_type, CONSUMER_START);
        assert_eq!(event.dedup_key, "chat:web:zoom-va:s1:m1");
        assert_eq!(event.conversation.as_deref(), Some("chat:web:s1"));
        assert_eq!(event.source_column(), "chat:web");
        assert_eq!(event.engagement_id.as_deref(), Some("eng-1"));
        let obs = event.observation.unwrap();
        assert_eq!(obs.chat_messages[0].text, "hi");
        assert_eq!(obs.chat_messages[0].sender, "consumer");
        let (decoded, item) = decode("web", REQUEST.as_bytes(), 1_800_000_000_000).unwrap();
        assert_eq!(decoded.unwrap(), obs);
        assert_eq!(item.unwrap().kind, "chat_message");
    }

    #[test]
    fn a_bot_turn_round_trips_and_marks_the_handover() {
        let request = VirtualAgentRequest::parse(REQUEST.as_bytes()).unwrap();
        let response = chatbot::model::BotResponse {
            replies: vec![Reply::text("Connecting you")],
            handover: Some(Handover {
                reason: Some("asked".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (reply, _) = ConnectorReply::from_response("r1", &request, &response, &[]);
        let turn = BotTurn {
            version: BOT_TURN_VERSION,
            channel: "web".into(),
            session_id: "s1".into(),
            reply_to: Some("m1".into()),
            reply_to_event: Some(7),
            reply,
            replies: response.replies.clone(),
            handover: response.handover.clone(),
            end: None,
            backend_state: None,
            backend: "builtin".into(),
            origin: TurnOrigin::Bot,
            latency_ms: Some(3),
            note: None,
            dropped: 0,
            deferred: false,
            engagement_id: Some("eng-1".into()),
            answered_at: 1_800_000_000_500,
        };
        let event = turn.clone().into_event("k".into()).unwrap();
        assert_eq!(event.event_type, BOT_HANDOVER);
        assert_eq!(parse_bot_turn(&event.raw).unwrap(), turn);
        let (obs, item) = decode("web", &event.raw, 0).unwrap();
        let obs = obs.unwrap();
        assert!(obs.chat_messages[0].handover);
        assert_eq!(obs.chat_messages[0].message_id, "web:s1:reply:m1");
        assert_eq!(item.unwrap().kind, "chat_handover");
        assert!(decode("web", b"{}", 0).is_err());
    }
}
