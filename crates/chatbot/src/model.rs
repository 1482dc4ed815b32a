//! The neutral conversation types: what a consumer said (a [`BotRequest`] to a backend) and what the bot answers (a
//! [`BotResponse`]: replies, a hand-over to a live agent, the end of the conversation). Vendor modules map their
//! wire formats to and from these; nothing here is Zoom's or a bot vendor's JSON.
//!
//! The serde form of [`Reply`], [`Handover`] and [`EndOfConversation`] is also the reply format of the `http`
//! backend's documented contract (`docs/chat/http-backend.md`), so it is pinned by tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which turn of the conversation a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// The conversation starts (ZCC's `START_CONVERSATION`); `text` is the consumer's first message, maybe empty.
    Start,
    /// A consumer message in a running conversation.
    Message,
    /// ZCC ended the conversation (the consumer left or the flow moved on); the bot's answer is not shown.
    End,
}

/// The consumer as the bridge identified them (client-app JWT subject, conversation variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotUser {
    /// Stable id the bot knows the consumer by: the JWT subject, else the e-mail or phone from the conversation
    /// variables, else (anonymous) the session id.
    pub id: String,
    pub anonymous: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Who said something earlier in the conversation (for backends that need the history, such as `openai`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Consumer,
    Bot,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub speaker: Speaker,
    pub text: String,
}

/// One consumer turn, as handed to a [`crate::backends::BotBackend`].
#[derive(Debug, Clone, PartialEq)]
pub struct BotRequest {
    /// The conversation (ZCC `sessionId`); a backend keys its own session by it.
    pub conversation_id: String,
    /// The inbound message id (ZCC `id`), unique per message; backends pass it on for idempotency where they can.
    pub message_id: String,
    pub kind: TurnKind,
    /// The consumer's text; may be empty for `Start` and `End`.
    pub text: String,
    pub user: BotUser,
    /// BCP-47 language of the conversation (ZCC `languageCode`), when known.
    pub language: Option<String>,
    /// Conversation variables that are strings (ZCC `conversationVariables`), for bots that use context.
    pub variables: BTreeMap<String, String>,
    /// Earlier turns, oldest first, without this one. Only backends that are stateless need it (`openai`).
    pub history: Vec<HistoryEntry>,
    /// What the backend returned as [`BotResponse::backend_state`] on the previous turn of this conversation (the
    /// bridge stores it with the session so that a restart resumes the bot's session), `None` on the first turn.
    pub backend_state: Option<Value>,
}

/// A button or quick reply: what the consumer sees and what is sent back when they pick it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
    pub value: String,
}

/// A card button: a postback (acts like a quick reply) or a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CardButton {
    Postback { label: String, value: String },
    Link { label: String, url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<CardButton>,
}

/// One bot message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Text {
        text: String,
    },
    QuickReplies {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        options: Vec<Choice>,
    },
    Image {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt: Option<String>,
    },
    Card(Card),
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text { text: text.into() }
    }

    /// Plain text of the reply for transcripts, push notifications and history.
    pub fn plain_text(&self) -> String {
        match self {
            Reply::Text { text } => text.clone(),
            Reply::QuickReplies { title, options } => {
                let labels: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
                match title {
                    Some(t) => format!("{t} [{}]", labels.join(" | ")),
                    None => format!("[{}]", labels.join(" | ")),
                }
            }
            Reply::Image { url, alt } => alt.clone().unwrap_or_else(|| url.clone()),
            Reply::Card(card) => match &card.subtitle {
                Some(s) => format!("{}: {s}", card.title),
                None => card.title.clone(),
            },
        }
    }
}

/// The bot asks for a live agent. `context` travels to the agent (ZCC conversation variables).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Handover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A queue or skill the bot suggests, when it knows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Value>,
}

/// The bot ends the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndOfConversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a backend answered for one turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BotResponse {
    /// Replies in the order they are to be shown.
    pub replies: Vec<Reply>,
    /// Set when the bot hands the conversation over to a live agent (after the replies).
    pub handover: Option<Handover>,
    /// Set when the bot ends the conversation (after the replies).
    pub end: Option<EndOfConversation>,
    /// The backend accepted the turn and answers later by callback (the `http` backend's 202); replies are empty.
    pub deferred: bool,
    /// Opaque per-conversation state for the next turn (see [`BotRequest::backend_state`]). It never holds a
    /// credential.
    pub backend_state: Option<Value>,
    /// Vendor messages that have no neutral form (a Rasa `custom` payload without a known key, an Adaptive Card):
    /// counted so that the bridge can report them, never shown.
    pub unmapped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_json_form_is_the_documented_one() {
        let replies = vec![
            Reply::text("Hi"),
            Reply::QuickReplies {
                title: Some("Pick".into()),
                options: vec![Choice {
                    label: "Yes".into(),
                    value: "yes".into(),
                }],
            },
            Reply::Image {
                url: "https://x/y.png".into(),
                alt: None,
            },
            Reply::Card(Card {
                title: "T".into(),
                subtitle: Some("S".into()),
                image_url: None,
                buttons: vec![
                    CardButton::Postback {
                        label: "A".into(),
                        value: "a".into(),
                    },
                    CardButton::Link {
                        label: "Docs".into(),
                        url: "https://d".into(),
                    },
                ],
            }),
        ];
        let v = serde_json::to_value(&replies).unwrap();
        assert_eq!(
            v,
            json!([
                {"type": "text", "text": "Hi"},
                {"type": "quick_replies", "title": "Pick", "options": [{"label": "Yes", "value": "yes"}]},
                {"type": "image", "url": "https://x/y.png"},
                {"type": "card", "title": "T", "subtitle": "S", "buttons": [
                    {"type": "postback", "label": "A", "value": "a"},
                    {"type": "link", "label": "Docs", "url": "https://d"}
                ]}
            ])
        );
        let back: Vec<Reply> = serde_json::from_value(v).unwrap();
        assert_eq!(back, replies);
    }

    #[test]
    fn plain_text_of_each_reply() {
        assert_eq!(Reply::text("a").plain_text(), "a");
        let q = Reply::QuickReplies {
            title: None,
            options: vec![
                Choice {
                    label: "A".into(),
                    value: "a".into(),
                },
                Choice {
                    label: "B".into(),
                    value: "b".into(),
                },
            ],
        };
        assert_eq!(q.plain_text(), "[A | B]");
    }
}
