//! Conversations as the `v2.users.{id}.conversations` topic and `GET /api/v2/conversations/{id}` carry them
//! (`ConversationEventTopicConversation`, reference §3.3), reduced to what presence sync reads:
//!
//! ```json
//! {"id": "<conversation>", "participants": [
//!   {"id": "<pid>", "purpose": "customer", "calls": [{"id": "<mid>", "state": "connected", "direction": "inbound"}]},
//!   {"id": "<pid>", "userId": "<user>", "queueId": "<queue>", "purpose": "agent",
//!    "connectedTime": "...", "endTime": "...",
//!    "calls": [{"id": "<mid>", "state": "alerting|connected|disconnected", "direction": "inbound|outbound",
//!               "held": false, "connectedTime": "...", "disconnectedTime": "...", "disconnectType": "client"}]}]}
//! ```
//!
//! The media array is named after the participant's [`Media`] (`calls`, `chats`, `emails`, `messages`,
//! `callbacks`); the other arrays are absent, as are `queueId` without a queue and times not reached yet. A chat has no
//! `direction` (`ConversationEventTopicChat` has no such property; calls, e-mails, messages and callbacks do). The
//! customer participant is created with the conversation and mirrors the first agent's media type and direction; it
//! stays `connected`. Every key is a property of Genesys's models (`tests/contract.rs` checks them against the SDK
//! model docs in `shared/vendor/genesys/`).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::{rfc3339, uuid, Media};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaState {
    Alerting,
    Connected,
    Disconnected,
}

impl MediaState {
    fn as_str(self) -> &'static str {
        match self {
            MediaState::Alerting => "alerting",
            MediaState::Connected => "connected",
            MediaState::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug, Clone)]
struct MediaEntry {
    kind: Media,
    id: String,
    state: MediaState,
    direction: String,
    /// `None` on the customer's media (no `held` key).
    held: Option<bool>,
    connected_time: Option<DateTime<Utc>>,
    disconnected_time: Option<DateTime<Utc>>,
    disconnect_type: Option<&'static str>,
}

impl MediaEntry {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("state".into(), json!(self.state.as_str()));
        if self.kind != Media::Chat {
            out.insert("direction".into(), json!(self.direction));
        }
        if let Some(held) = self.held {
            out.insert("held".into(), json!(held));
        }
        if let Some(at) = self.connected_time {
            out.insert("connectedTime".into(), json!(rfc3339(at)));
        }
        if let Some(at) = self.disconnected_time {
            out.insert("disconnectedTime".into(), json!(rfc3339(at)));
        }
        if let Some(kind) = self.disconnect_type {
            out.insert("disconnectType".into(), json!(kind));
        }
        Value::Object(out)
    }
}

#[derive(Debug, Clone)]
struct Participant {
    id: String,
    /// `None`: the customer.
    user_id: Option<String>,
    queue_id: Option<String>,
    connected_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    media: MediaEntry,
}

impl Participant {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        if let Some(user) = &self.user_id {
            out.insert("userId".into(), json!(user));
        }
        if let Some(queue) = &self.queue_id {
            out.insert("queueId".into(), json!(queue));
        }
        let purpose = if self.user_id.is_some() {
            "agent"
        } else {
            "customer"
        };
        out.insert("purpose".into(), json!(purpose));
        if let Some(at) = self.connected_time {
            out.insert("connectedTime".into(), json!(rfc3339(at)));
        }
        if let Some(at) = self.end_time {
            out.insert("endTime".into(), json!(rfc3339(at)));
        }
        out.insert(
            self.media.kind.array_name().into(),
            json!([self.media.to_json()]),
        );
        Value::Object(out)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Conversation {
    id: String,
    /// The customer first (once there is one), then agents in the order they were offered the conversation.
    participants: Vec<Participant>,
}

impl Conversation {
    /// A conversation without participants yet (the first [`offer`](Self::offer) adds the customer).
    pub(super) fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            participants: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// See [`crate::GenesysSim::offer`].
    pub(super) fn offer(
        &mut self,
        user: &str,
        media: Media,
        direction: &str,
        queue_id: Option<&str>,
    ) {
        if self.participants.is_empty() {
            self.participants.push(Participant {
                id: uuid(),
                user_id: None,
                queue_id: None,
                connected_time: None,
                end_time: None,
                media: MediaEntry {
                    kind: media,
                    id: uuid(),
                    state: MediaState::Connected,
                    direction: direction.to_owned(),
                    held: None,
                    connected_time: None,
                    disconnected_time: None,
                    disconnect_type: None,
                },
            });
        }
        let fresh_media = |id: String| MediaEntry {
            kind: media,
            id,
            state: MediaState::Alerting,
            direction: direction.to_owned(),
            held: Some(false),
            connected_time: None,
            disconnected_time: None,
            disconnect_type: None,
        };
        match self.latest_mut(user) {
            Some(participant) if participant.media.state != MediaState::Disconnected => {
                participant.queue_id = queue_id.map(str::to_owned);
                participant.connected_time = None;
                participant.end_time = None;
                participant.media = fresh_media(participant.media.id.clone());
            }
            _ => self.participants.push(Participant {
                id: uuid(),
                user_id: Some(user.to_owned()),
                queue_id: queue_id.map(str::to_owned),
                connected_time: None,
                end_time: None,
                media: fresh_media(uuid()),
            }),
        }
    }

    /// Answers the user's latest participant. `false` when the user has none.
    pub(super) fn connect(&mut self, user: &str) -> bool {
        let Some(participant) = self.latest_mut(user) else {
            return false;
        };
        let now = Utc::now();
        participant.media.state = MediaState::Connected;
        participant.connected_time.get_or_insert(now);
        participant.media.connected_time.get_or_insert(now);
        true
    }

    /// Sets `held` on the user's latest participant's media. `false` when the user has none.
    pub(super) fn hold(&mut self, user: &str, held: bool) -> bool {
        let Some(participant) = self.latest_mut(user) else {
            return false;
        };
        participant.media.held = Some(held);
        true
    }

    /// Disconnects the user's latest participant (times of an earlier end are kept). `false` when the user has
    /// none.
    pub(super) fn end(&mut self, user: &str) -> bool {
        let Some(participant) = self.latest_mut(user) else {
            return false;
        };
        let now = Utc::now();
        participant.media.state = MediaState::Disconnected;
        participant.media.disconnected_time.get_or_insert(now);
        participant.media.disconnect_type = Some("client");
        participant.end_time.get_or_insert(now);
        true
    }

    /// The distinct agent user ids, in participant order.
    pub(super) fn agent_users(&self) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        for user in self.participants.iter().filter_map(|p| p.user_id.as_ref()) {
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        users
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "participants": self.participants.iter().map(Participant::to_json).collect::<Vec<_>>(),
        })
    }

    fn latest_mut(&mut self, user: &str) -> Option<&mut Participant> {
        self.participants
            .iter_mut()
            .rev()
            .find(|p| p.user_id.as_deref() == Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(conversation: &Value) -> Vec<Value> {
        conversation["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["purpose"] == "agent")
            .cloned()
            .collect()
    }

    #[test]
    fn lifecycle_of_one_agent() {
        let mut c = Conversation::new("c1");
        c.offer("u1", Media::Chat, "outbound", None);
        let json = c.to_json();
        let customer = &json["participants"][0];
        assert_eq!(customer["purpose"], "customer");
        assert_eq!(customer["chats"][0]["state"], "connected");
        // Genesys's chat model has no direction.
        assert!(customer["chats"][0].get("direction").is_none());
        assert!(customer.get("userId").is_none());
        let agent = &agents(&json)[0];
        assert_eq!(agent["userId"], "u1");
        assert!(agent.get("queueId").is_none());
        assert!(agent.get("calls").is_none());
        assert_eq!(agent["chats"][0]["state"], "alerting");
        assert_eq!(agent["chats"][0]["held"], false);
        assert!(agent.get("connectedTime").is_none());

        assert!(c.connect("u1"));
        assert!(c.hold("u1", true));
        let agent = &agents(&c.to_json())[0];
        assert_eq!(agent["chats"][0]["state"], "connected");
        assert_eq!(agent["chats"][0]["held"], true);
        assert!(agent["connectedTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(agent["connectedTime"], agent["chats"][0]["connectedTime"]);

        assert!(c.end("u1"));
        let agent = &agents(&c.to_json())[0];
        assert_eq!(agent["chats"][0]["state"], "disconnected");
        assert_eq!(agent["chats"][0]["disconnectType"], "client");
        assert_eq!(agent["endTime"], agent["chats"][0]["disconnectedTime"]);
        assert!(!c.connect("nobody"));
    }

    #[test]
    fn offer_after_end_adds_a_participant_and_users_are_distinct() {
        let mut c = Conversation::new("c1");
        c.offer("u1", Media::Call, "inbound", Some("q1"));
        c.offer("u2", Media::Call, "inbound", Some("q1"));
        c.end("u1");
        c.offer("u1", Media::Call, "inbound", None);
        let json = c.to_json();
        let agents = agents(&json);
        assert_eq!(agents.len(), 3);
        assert_ne!(agents[0]["id"], agents[2]["id"]);
        assert_eq!(agents[0]["queueId"], "q1");
        assert_eq!(agents[2]["calls"][0]["state"], "alerting");
        assert_eq!(c.agent_users(), ["u1", "u2"]);
        // Acting on u1 acts on the latest participant.
        c.connect("u1");
        let agents = self::agents(&c.to_json());
        assert_eq!(agents[0]["calls"][0]["state"], "disconnected");
        assert_eq!(agents[2]["calls"][0]["state"], "connected");
        // Re-offering an active participant keeps its id.
        c.offer("u2", Media::Call, "inbound", None);
        assert_eq!(self::agents(&c.to_json()).len(), 3);
    }
}
