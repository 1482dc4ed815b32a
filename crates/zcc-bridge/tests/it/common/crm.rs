//! The engagement record the CRM sink tests deliver: one finished inbound call with an agent, a customer, a note,
//! dispositions and archived recordings. Each sink's tests set the values they assert on (`Call { .. }`) and
//! take the rest from `Call::default()`.

use zcc_bridge::core::record::{
    AgentView, ConsumerView, DispositionView, NoteView, QueueView, RecordingView,
};
use zcc_bridge::core::{EngagementRecord, MediaView};
use zcc_bridge::delivery::sink::Message;

/// An archived file with a link.
pub fn media(link: &str) -> MediaView {
    MediaView {
        state: "archived".into(),
        sha256: Some("ab".repeat(32)),
        bytes: Some(48_000),
        content_type: Some("audio/mpeg".into()),
        link: Some(link.into()),
        link_expires_at: Some("2026-03-09T10:00:00Z".into()),
        archived_at: Some("2026-03-02T10:03:00Z".into()),
        attempts: 1,
        ..Default::default()
    }
}

/// A voice recording by `agent`, archived behind `link`.
pub fn recording(id: &str, agent: &str, link: &str, times: (&str, &str, i64)) -> RecordingView {
    RecordingView {
        recording_id: id.into(),
        channel: Some("voice".into()),
        recording_start_time: Some(times.0.into()),
        recording_end_time: Some(times.1.into()),
        recording_duration: Some(times.2),
        download_url: Some(format!("https://zoom.example/rec/{id}")),
        user_id: Some(agent.into()),
        media: Some(media(link)),
        ..Default::default()
    }
}

/// One finished inbound call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub engagement_id: &'a str,
    /// The customer's number (or e-mail address).
    pub consumer: &'a str,
    pub consumer_name: &'a str,
    pub agent_id: &'a str,
    pub agent_name: &'a str,
    /// Start, end, seconds.
    pub times: (&'a str, &'a str, i64),
    /// The note's text and when it was last modified.
    pub note: (&'a str, &'a str),
    /// `(disposition_id, disposition_name)`.
    pub dispositions: Vec<(&'a str, &'a str)>,
    pub recordings: Vec<RecordingView>,
}

impl Default for Call<'_> {
    fn default() -> Self {
        Self {
            engagement_id: "eng-1",
            consumer: "+14155550100",
            consumer_name: "Grace",
            agent_id: "agent-1",
            agent_name: "Ada Lovelace",
            times: ("2026-03-02T10:00:00Z", "2026-03-02T10:02:05Z", 125),
            note: (
                "Customer asked about the March invoice",
                "2026-03-02T10:02:30Z",
            ),
            dispositions: vec![("disp-1", "Resolved")],
            recordings: Vec::new(),
        }
    }
}

impl Call<'_> {
    pub fn record(&self) -> EngagementRecord {
        EngagementRecord {
            engagement_id: self.engagement_id.into(),
            channel: Some("voice".into()),
            channel_source: Some("phone".into()),
            direction: Some("inbound".into()),
            start_time: Some(self.times.0.into()),
            end_time: Some(self.times.1.into()),
            duration: Some(self.times.2),
            queues: vec![QueueView {
                cc_queue_id: "q-billing".into(),
                queue_name: Some("Billing".into()),
            }],
            agents: vec![AgentView {
                user_id: self.agent_id.into(),
                display_name: Some(self.agent_name.into()),
            }],
            consumers: vec![ConsumerView {
                consumer_id: Some("c-1".into()),
                consumer_number: Some(self.consumer.into()),
                consumer_display_name: Some(self.consumer_name.into()),
            }],
            notes: vec![NoteView {
                note_id: "n-1".into(),
                note: Some(self.note.0.into()),
                user_id: Some(self.agent_id.into()),
                last_modified_time: Some(self.note.1.into()),
            }],
            dispositions: self
                .dispositions
                .iter()
                .map(|(id, name)| DispositionView {
                    disposition_id: (*id).into(),
                    disposition_name: Some((*name).into()),
                })
                .collect(),
            recordings: self.recordings.clone(),
            ..Default::default()
        }
    }
}

/// The message a sink receives for `record`.
pub fn message(
    id: String,
    event_type: &str,
    record: &EngagementRecord,
    created_at: i64,
    attempt: u32,
) -> Message {
    Message {
        id,
        event_type: event_type.into(),
        created_at,
        engagement_id: Some(record.engagement_id.clone()),
        data: serde_json::to_string(record).expect("the record serialises"),
        attempt,
    }
}
