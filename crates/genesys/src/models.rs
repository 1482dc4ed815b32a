//! Typed Genesys Cloud resources (reference §2.2, §2.4, §3.1, §3.3). Every field Genesys may leave out is
//! optional or defaulted; unknown fields are ignored (forward compatibility).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /api/v2/users/{id}` (the fields used here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

impl User {
    /// The address a Zoom account most likely knows this person by: the e-mail, else the username (which the
    /// Genesys blueprint requires to equal the Zoom e-mail, reference §1.4).
    pub fn address(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.username.as_deref())
            .filter(|a| a.contains('@'))
    }
}

/// A page of `GET /api/v2/users`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    #[serde(default)]
    pub entities: Vec<User>,
    #[serde(default)]
    pub page_count: Option<u32>,
    #[serde(default)]
    pub page_number: Option<u32>,
}

/// `POST /api/v2/notifications/channels`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub connect_uri: String,
    #[serde(default)]
    pub expires: Option<String>,
}

/// One topic of a subscription answer (`ChannelTopic`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTopic {
    pub id: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub rejection_reason: Option<String>,
}

/// A frame of the notification WebSocket.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub topic_name: String,
    #[serde(default)]
    pub event_body: Value,
}

/// The topic of a user's conversations (reference §3.3).
pub fn user_conversations_topic(user_id: &str) -> String {
    format!("v2.users.{user_id}.conversations")
}

/// The user id of a `v2.users.{id}.conversations` topic.
pub fn user_of_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("v2.users.")?
        .strip_suffix(".conversations")
}

/// A conversation as `v2.users.{id}.conversations` events and `GET /api/v2/conversations/{id}` carry it
/// (`ConversationEventTopicConversation`; the REST `Conversation` has the same participant and media fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub queue_id: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub connected_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub calls: Vec<MediaSession>,
    #[serde(default)]
    pub callbacks: Vec<MediaSession>,
    #[serde(default)]
    pub chats: Vec<MediaSession>,
    #[serde(default)]
    pub emails: Vec<MediaSession>,
    #[serde(default)]
    pub messages: Vec<MediaSession>,
    #[serde(default)]
    pub videos: Vec<MediaSession>,
    #[serde(default)]
    pub screenshares: Vec<MediaSession>,
    #[serde(default)]
    pub cobrowsesessions: Vec<MediaSession>,
}

/// One medium of a participant (`ConversationEventTopicCall`, `...Chat`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSession {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub held: Option<bool>,
    #[serde(default)]
    pub connected_time: Option<String>,
    #[serde(default)]
    pub disconnected_time: Option<String>,
    #[serde(default)]
    pub disconnect_type: Option<String>,
}

/// Where a user's session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Offered, alerting, dialing: not yet interacting.
    Ringing,
    Connected,
    Ended,
}

/// A user's part of a conversation in one medium: what presence sync needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    pub conversation_id: String,
    /// `<participant id>:<media id>`: a transfer back onto the same conversation is a new participant.
    pub session_id: String,
    /// The detail-event vocabulary, lower case: `voice`, `chat`, `email`, `message`, `callback`, ...
    pub media_type: &'static str,
    pub direction: Option<String>,
    pub queue_id: Option<String>,
    pub state: SessionState,
    /// When it reached `state` as far as Genesys says (epoch ms): connected or disconnected time.
    pub at_ms: Option<i64>,
}

impl Conversation {
    /// The sessions `user_id` has in this conversation, one per participant and medium.
    pub fn user_sessions(&self, user_id: &str) -> Vec<UserSession> {
        let mut out = Vec::new();
        for p in &self.participants {
            if p.user_id.as_deref() != Some(user_id) {
                continue;
            }
            let media: [(&'static str, &Vec<MediaSession>); 8] = [
                ("voice", &p.calls),
                ("callback", &p.callbacks),
                ("chat", &p.chats),
                ("email", &p.emails),
                ("message", &p.messages),
                ("video", &p.videos),
                ("screenshare", &p.screenshares),
                ("cobrowse", &p.cobrowsesessions),
            ];
            for (media_type, sessions) in media {
                for m in sessions {
                    let state = session_state(m.state.as_deref(), p.end_time.is_some());
                    let at = match state {
                        SessionState::Ended => {
                            m.disconnected_time.as_deref().or(p.end_time.as_deref())
                        }
                        SessionState::Connected => {
                            m.connected_time.as_deref().or(p.connected_time.as_deref())
                        }
                        SessionState::Ringing => None,
                    };
                    out.push(UserSession {
                        conversation_id: self.id.clone(),
                        session_id: format!("{}:{}", p.id, m.id),
                        media_type,
                        direction: m.direction.as_ref().map(|d| d.to_ascii_lowercase()),
                        queue_id: p.queue_id.clone(),
                        state,
                        at_ms: at.and_then(parse_time_ms),
                    });
                }
            }
        }
        out
    }
}

/// A media state (`alerting, dialing, contacting, offering, connected, disconnected, terminated, ...`) as a
/// session state. A participant with an end time is over whatever its media says.
fn session_state(state: Option<&str>, participant_ended: bool) -> SessionState {
    if participant_ended {
        return SessionState::Ended;
    }
    match state.map(str::to_ascii_lowercase).as_deref() {
        Some("connected") => SessionState::Connected,
        Some("disconnected" | "terminated") => SessionState::Ended,
        _ => SessionState::Ringing,
    }
}

/// RFC 3339 → epoch ms.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A process-automation trigger (`CreateTriggerRequest`, `UpdateTriggerRequest`, `Trigger`; reference §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub topic_name: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub target: TriggerTarget,
    #[serde(default)]
    pub match_criteria: Vec<MatchCriterion>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ttl_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerTarget {
    /// Only `Workflow` exists.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_target_settings: Option<WorkflowTargetSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTargetSettings {
    /// `Json` (the whole event as `jsonData`) or `TopLevelPrimitives`.
    pub data_format: String,
}

/// `{jsonPath, operator, value | values}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchCriterion {
    pub json_path: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

impl Trigger {
    /// Whether `other` asks for the same thing (ids and versions aside).
    pub fn same_definition(&self, other: &Trigger) -> bool {
        let strip = |t: &Trigger| Trigger {
            id: None,
            version: None,
            ..t.clone()
        };
        strip(self) == strip(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_sessions_follow_their_media_states() {
        let c: Conversation = serde_json::from_value(serde_json::json!({
            "id": "c1",
            "participants": [
                {"id": "p0", "purpose": "customer", "calls": [{"id": "m0", "state": "connected"}]},
                {"id": "p1", "userId": "u1", "queueId": "q1", "purpose": "agent", "endTime": "2026-11-21T09:00:05Z",
                 "calls": [{"id": "m1", "state": "connected", "direction": "INBOUND"}]},
                {"id": "p2", "userId": "u1", "purpose": "agent",
                 "calls": [{"id": "m2", "state": "connected", "direction": "inbound",
                            "connectedTime": "2026-11-21T09:01:00.250Z"}],
                 "chats": [{"id": "m3", "state": "alerting"}]},
                {"id": "p3", "userId": "u2", "calls": [{"id": "m4", "state": "disconnected",
                                                         "disconnectedTime": "2026-11-21T09:02:00Z"}]}
            ],
            "recordingState": "none"
        }))
        .unwrap();
        let u1 = c.user_sessions("u1");
        assert_eq!(u1.len(), 3);
        assert_eq!(u1[0].state, SessionState::Ended);
        assert_eq!(u1[0].direction.as_deref(), Some("inbound"));
        assert_eq!(u1[0].queue_id.as_deref(), Some("q1"));
        assert_eq!(u1[1].session_id, "p2:m2");
        assert_eq!(u1[1].state, SessionState::Connected);
        assert_eq!(u1[1].at_ms, parse_time_ms("2026-11-21T09:01:00.250Z"));
        assert_eq!(
            (u1[2].media_type, u1[2].state),
            ("chat", SessionState::Ringing)
        );
        assert_eq!(c.user_sessions("u2")[0].state, SessionState::Ended);
        assert!(c.user_sessions("u3").is_empty());
    }

    #[test]
    fn topics_and_addresses() {
        assert_eq!(user_of_topic(&user_conversations_topic("u-1")), Some("u-1"));
        assert_eq!(user_of_topic("v2.users.u-1.presence"), None);
        let u = User {
            id: "1".into(),
            name: None,
            email: None,
            username: Some("a@b.c".into()),
            state: None,
        };
        assert_eq!(u.address(), Some("a@b.c"));
    }
}
