//! What a source learned about an engagement from one event, in the core's own terms.
//!
//! Vendor adapters (Zoom webhooks today; polling, WebSockets and flows later) produce `Observation`s. Every
//! field is optional: an event contributes only what it knows. Times are epoch milliseconds.

use serde::{Deserialize, Serialize};

/// Where an event came from. Stored in the log and shown in the record's `sources`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Webhook,
    Websocket,
    Poll,
    Flow,
    Genesys,
    /// The agent panel (the Contact Center Zoom App): an agent's finalized workspace.
    #[serde(rename = "zoomapp")]
    ZoomApp,
    /// The chatbot channel (`POST /chat/zoom/{channel}` and the bot's answers).
    Chat,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Webhook => "webhook",
            EventSource::Websocket => "websocket",
            EventSource::Poll => "poll",
            EventSource::Flow => "flow",
            EventSource::Genesys => "genesys",
            EventSource::ZoomApp => "zoomapp",
            EventSource::Chat => "chat",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "webhook" => EventSource::Webhook,
            "websocket" => EventSource::Websocket,
            "poll" => EventSource::Poll,
            "flow" => EventSource::Flow,
            "genesys" => EventSource::Genesys,
            "zoomapp" => EventSource::ZoomApp,
            "chat" => EventSource::Chat,
            _ => return None,
        })
    }

    /// How much a source's view of a field is trusted when two disagree: canonical REST data beats events.
    pub fn rank(self) -> u8 {
        match self {
            EventSource::Poll => 2,
            EventSource::Webhook
            | EventSource::Websocket
            | EventSource::Flow
            | EventSource::Genesys
            | EventSource::Chat
            | EventSource::ZoomApp => 1,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueRef {
    pub cc_queue_id: String,
    pub queue_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRef {
    pub user_id: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerRef {
    pub consumer_id: Option<String>,
    pub consumer_number: Option<String>,
    pub consumer_display_name: Option<String>,
}

impl ConsumerRef {
    /// Consumers are identified by id when known, otherwise by number.
    pub fn key(&self) -> Option<String> {
        self.consumer_id
            .as_ref()
            .map(|id| format!("id:{id}"))
            .or_else(|| self.consumer_number.as_ref().map(|n| format!("number:{n}")))
    }
}

/// A flow the engagement went through (Zoom's `flow_id`, `flow_name`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRef {
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
}

impl FlowRef {
    /// Flows are identified by id when known, otherwise by name.
    pub fn key(&self) -> Option<String> {
        self.flow_id
            .as_ref()
            .map(|id| format!("id:{id}"))
            .or_else(|| self.flow_name.as_ref().map(|n| format!("name:{n}")))
    }
}

/// What one `engagement_transfer_*` event says about one transfer. The events of one transfer share its key
/// (Zoom's `transfer_to_task_id`, the task the transfer creates), so they merge into one history entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferFact {
    pub transfer_key: String,
    /// The step this event reports: `initiated`, `queued`, `reserved`, `accepted`, `rejected`, `canceled`,
    /// `timeout`, `completed`.
    pub status: String,
    pub from_user_id: Option<String>,
    pub from_display_name: Option<String>,
    pub from_cc_queue_id: Option<String>,
    pub from_queue_name: Option<String>,
    pub to_user_id: Option<String>,
    pub to_display_name: Option<String>,
    pub to_cc_queue_id: Option<String>,
    pub to_queue_name: Option<String>,
    pub to_flow_id: Option<String>,
    pub to_flow_name: Option<String>,
    pub to_inbox_id: Option<String>,
    pub to_inbox_name: Option<String>,
    pub to_number: Option<String>,
    /// `warm` | `cold` (Zoom's `transfer_type`).
    pub transfer_type: Option<String>,
    /// `queue` | `agent` | `flow` | ... (Zoom's `transfer_level`).
    pub transfer_level: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoteFact {
    pub note_id: String,
    pub note: Option<String>,
    pub user_id: Option<String>,
    /// Epoch ms of the note's last edit; the newest edit wins.
    pub last_modified_time: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispositionFact {
    pub disposition_id: String,
    pub disposition_name: Option<String>,
}

impl DispositionFact {
    /// A disposition by id, or by name (`name:<name>`) when no id is known; None without either.
    pub fn new(disposition_id: Option<String>, disposition_name: Option<String>) -> Option<Self> {
        let disposition_id = disposition_id.or_else(|| {
            disposition_name
                .as_ref()
                .map(|n| format!("{}{n}", super::record::DISPOSITION_BY_NAME))
        })?;
        Some(Self {
            disposition_id,
            disposition_name,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingFact {
    pub recording_id: String,
    pub channel: Option<String>,
    pub recording_start_time: Option<i64>,
    pub recording_end_time: Option<i64>,
    pub recording_duration: Option<i64>,
    pub download_url: Option<String>,
    pub transcript_url: Option<String>,
    pub playback_url: Option<String>,
    pub user_id: Option<String>,
    /// `recording_deleted` / `recording_permanently_deleted`.
    pub deleted: Option<bool>,
    /// `on_demand` | `automatic`.
    pub recording_type: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    /// `user` | `queue`.
    pub owner_type: Option<String>,
    /// The users (agents) on the recording.
    #[serde(default)]
    pub users: Vec<AgentRef>,
    /// The consumers on the recording.
    #[serde(default)]
    pub consumers: Vec<ConsumerRef>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptKind {
    Recording,
    Messaging,
    Email,
    Voicemail,
}

impl TranscriptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptKind::Recording => "recording",
            TranscriptKind::Messaging => "messaging",
            TranscriptKind::Email => "email",
            TranscriptKind::Voicemail => "voicemail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptFact {
    pub kind: TranscriptKind,
    /// The id of what was transcribed: recording id, engagement id (messaging, email) or voicemail message id.
    pub source_id: String,
    pub transcript_url: Option<String>,
    pub completed_time: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VoicemailFact {
    pub message_id: String,
    pub inbox_id: Option<String>,
    pub inbox_name: Option<String>,
    pub created_at: Option<i64>,
    pub message_duration: Option<i64>,
    pub download_url: Option<String>,
    pub playback_url: Option<String>,
    pub transcript_url: Option<String>,
    /// Last inbox action seen: received, assigned, opened, resolved, deleted, ...
    pub status: Option<String>,
}

/// An agent's workspace for the engagement (notes, tags, wrap-up checklist) as finalized in the agent panel when
/// the engagement ended. One per agent: among several finalized versions (two devices), the greatest
/// `(version, content)` wins, the same rule the panel's backend applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkspaceFact {
    /// The Zoom user id of the agent.
    pub user_id: String,
    /// `(client_ts, device_id, rev)` of the write that was finalized.
    pub version: (i64, String, u64),
    pub notes: String,
    pub tags: Vec<String>,
    /// Checklist item id → ticked.
    pub checklist: std::collections::BTreeMap<String, bool>,
    /// When the engagement ended, as the Zoom client reported it (epoch ms).
    pub end_time: Option<i64>,
}

/// One message of a chatbot conversation that belongs to the engagement: the consumer's (through Zoom's bot
/// connector) or the bot's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageFact {
    /// Unique within the engagement: `<channel>:<session>:<message id>` (the bot's: `…:reply:<message id>`).
    pub message_id: String,
    /// The chat channel (`[chat.channels.<name>]`).
    pub channel: String,
    /// The connector's `sessionId`.
    pub session_id: String,
    /// `consumer` or `bot`.
    pub sender: String,
    pub text: String,
    /// When the message was received (consumer) or answered (bot), epoch ms.
    pub time: i64,
    /// The bot handed the conversation over to a live agent with this message.
    #[serde(default)]
    pub handover: bool,
    #[serde(default)]
    pub handover_reason: Option<String>,
    /// The conversation ended with this message.
    #[serde(default)]
    pub end: bool,
}

/// One event's contribution to one engagement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub engagement_id: String,
    /// Event name as the source calls it (e.g. `contact_center.engagement_note_added`).
    pub event: String,
    /// When the event happened, epoch ms.
    pub event_ts: i64,
    pub source: EventSource,
    pub channel: Option<String>,
    pub channel_source: Option<String>,
    pub direction: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub queues: Vec<QueueRef>,
    #[serde(default)]
    pub flows: Vec<FlowRef>,
    pub agents: Vec<AgentRef>,
    pub consumers: Vec<ConsumerRef>,
    #[serde(default)]
    pub transfers: Vec<TransferFact>,
    pub notes: Vec<NoteFact>,
    pub dispositions: Vec<DispositionFact>,
    pub recordings: Vec<RecordingFact>,
    pub transcripts: Vec<TranscriptFact>,
    pub voicemails: Vec<VoicemailFact>,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceFact>,
    #[serde(default)]
    pub chat_messages: Vec<ChatMessageFact>,
}

impl Observation {
    pub fn new(
        engagement_id: impl Into<String>,
        event: impl Into<String>,
        event_ts: i64,
        source: EventSource,
    ) -> Self {
        Self {
            engagement_id: engagement_id.into(),
            event: event.into(),
            event_ts,
            source,
            channel: None,
            channel_source: None,
            direction: None,
            start_time: None,
            end_time: None,
            queues: Vec::new(),
            flows: Vec::new(),
            agents: Vec::new(),
            consumers: Vec::new(),
            transfers: Vec::new(),
            notes: Vec::new(),
            dispositions: Vec::new(),
            recordings: Vec::new(),
            transcripts: Vec::new(),
            voicemails: Vec::new(),
            workspaces: Vec::new(),
            chat_messages: Vec::new(),
        }
    }
}
