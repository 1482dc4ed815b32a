//! What a source learned about an engagement from one event, in the core's own terms.
//!
//! Vendor adapters (Zoom webhooks today; polling, WebSockets and flows later) produce `Observation`s. Every
//! field is optional: an event contributes only what it knows. Times are epoch milliseconds.

use serde::{Deserialize, Serialize};

/// Where an event came from. Stored in the log and shown in the record's `sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Webhook,
    Websocket,
    Poll,
    Flow,
    Genesys,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Webhook => "webhook",
            EventSource::Websocket => "websocket",
            EventSource::Poll => "poll",
            EventSource::Flow => "flow",
            EventSource::Genesys => "genesys",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "webhook" => EventSource::Webhook,
            "websocket" => EventSource::Websocket,
            "poll" => EventSource::Poll,
            "flow" => EventSource::Flow,
            "genesys" => EventSource::Genesys,
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
            | EventSource::Genesys => 1,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    pub agents: Vec<AgentRef>,
    pub consumers: Vec<ConsumerRef>,
    pub notes: Vec<NoteFact>,
    pub dispositions: Vec<DispositionFact>,
    pub recordings: Vec<RecordingFact>,
    pub transcripts: Vec<TranscriptFact>,
    pub voicemails: Vec<VoicemailFact>,
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
            agents: Vec::new(),
            consumers: Vec::new(),
            notes: Vec::new(),
            dispositions: Vec::new(),
            recordings: Vec::new(),
            transcripts: Vec::new(),
            voicemails: Vec::new(),
        }
    }
}
