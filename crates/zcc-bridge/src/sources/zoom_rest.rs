//! Zoom REST resources fetched by the reconciler → event-log entries and observations (source `poll`).
//!
//! A polled resource is logged as `{"resource": "<kind>", "data": <the resource as Zoom sent it>}`. Its dedup key
//! hashes that body, so fetching an unchanged resource again is a duplicate (the log and the record do not
//! move) while a changed one (a new note, a late recording transcript) is a new event that merges in. The
//! event time is the resource's own newest time, never the fetch time, for the same reason.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zoom::api::{Engagement, InboxMessage, Note, Recording};

use super::zoom_webhook::{nonempty, parse_time, ParseError};
use crate::core::observation::*;
use crate::store::NewEvent;

/// One fetched resource, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resource", content = "data", rename_all = "snake_case")]
pub enum Polled {
    Engagement(Engagement),
    Recording(Recording),
    InboxMessage(InboxMessage),
    Note(Note),
}

impl Polled {
    /// Every `event_type` (a sink may `deliver` them: `config::sinks::OTHER_EVENT_TYPES`).
    pub const EVENT_TYPES: [&'static str; 4] = [
        "poll.engagement",
        "poll.recording",
        "poll.inbox_message",
        "poll.note",
    ];

    /// The event name in the log and the record's timeline.
    pub fn event_type(&self) -> &'static str {
        match self {
            Polled::Engagement(_) => Self::EVENT_TYPES[0],
            Polled::Recording(_) => Self::EVENT_TYPES[1],
            Polled::InboxMessage(_) => Self::EVENT_TYPES[2],
            Polled::Note(_) => Self::EVENT_TYPES[3],
        }
    }

    pub fn engagement_id(&self) -> Option<&str> {
        let id = match self {
            Polled::Engagement(e) => Some(e.engagement_id.as_str()),
            Polled::Recording(r) => r.engagement_id.as_deref(),
            Polled::InboxMessage(m) => m.engagement_id.as_deref(),
            Polled::Note(n) => n.engagement_id.as_deref(),
        };
        id.filter(|id| !id.is_empty())
    }

    /// The resource's newest own time (epoch ms): what the snapshot is "as of".
    pub fn event_ts(&self) -> i64 {
        let time = |t: &Option<String>| parse_time(t.as_deref());
        let newest = match self {
            Polled::Engagement(e) => [time(&e.start_time), time(&e.end_time)]
                .into_iter()
                .chain(e.notes.iter().map(|n| time(&n.last_modified_time)))
                .flatten()
                .max(),
            Polled::Recording(r) => time(&r.recording_end_time).or(time(&r.recording_start_time)),
            Polled::InboxMessage(m) => time(&m.created_at),
            Polled::Note(n) => time(&n.last_modified_time),
        };
        newest.unwrap_or(0)
    }

    /// The event-log entry for this resource; `None` when it names no engagement (nothing to merge it into).
    pub fn to_event(&self, received_at: i64) -> Option<NewEvent> {
        let engagement_id = self.engagement_id()?.to_string();
        // The typed model as logged: fields in declaration order.
        let raw = serde_json::to_vec(self).ok()?;
        let event_ts = self.event_ts();
        // The key hashes the model's RFC 8785 bytes; before, it hashed `raw` itself.
        let canonical: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let (digest, _) = crate::core::canonical::digests(b"", &canonical);
        let legacy_digest = hex::encode(Sha256::digest(&raw));
        let key = |digest: &str| format!("{event_ts:013}:sha256:{digest}");
        Some(NewEvent {
            source: EventSource::Poll,
            dedup_key: key(&digest),
            legacy_dedup_key: (legacy_digest != digest).then(|| key(&legacy_digest)),
            event_type: self.event_type().to_string(),
            engagement_id: Some(engagement_id),
            event_ts: Some(event_ts),
            received_at,
            request_id: None,
            observation: Some(self.observation()),
            activity: None,
            source_label: None,
            conversation: None,
            raw: Bytes::from(raw),
        })
    }

    /// What the resource says about its engagement.
    pub fn observation(&self) -> Observation {
        let engagement_id = self.engagement_id().unwrap_or_default();
        let mut obs = Observation::new(
            engagement_id,
            self.event_type(),
            self.event_ts(),
            EventSource::Poll,
        );
        match self {
            Polled::Engagement(e) => observe_engagement(&mut obs, e),
            Polled::Recording(r) => observe_recording(&mut obs, r),
            Polled::InboxMessage(m) => observe_inbox_message(&mut obs, m),
            Polled::Note(n) => obs.notes.push(note_fact(
                &n.note_id,
                &n.note,
                &n.user_id,
                &n.last_modified_time,
            )),
        }
        obs
    }
}

/// Reads a logged poll entry back (projector recovery, `rebuild`).
pub fn parse(raw: &[u8]) -> Result<Option<Observation>, ParseError> {
    let polled: Polled =
        serde_json::from_slice(raw).map_err(|e| ParseError::Json(e.to_string()))?;
    Ok(polled
        .engagement_id()
        .is_some()
        .then(|| polled.observation()))
}

fn note_fact(
    note_id: &str,
    note: &Option<String>,
    user_id: &Option<String>,
    last_modified_time: &Option<String>,
) -> NoteFact {
    NoteFact {
        note_id: note_id.to_string(),
        note: note.clone(),
        user_id: nonempty(user_id),
        last_modified_time: parse_time(last_modified_time.as_deref()),
    }
}

fn observe_engagement(obs: &mut Observation, e: &Engagement) {
    let first_channel = e.channels.first();
    obs.channel = first_channel.and_then(|c| nonempty(&c.channel));
    obs.channel_source = first_channel.and_then(|c| nonempty(&c.channel_source));
    obs.direction = nonempty(&e.direction);
    obs.start_time = parse_time(e.start_time.as_deref());
    obs.end_time = parse_time(e.end_time.as_deref());
    obs.queues = e
        .queues
        .iter()
        .filter_map(|q| {
            Some(QueueRef {
                cc_queue_id: nonempty(&q.cc_queue_id)?,
                queue_name: nonempty(&q.queue_name),
            })
        })
        .collect();
    obs.agents = e
        .agents
        .iter()
        .filter_map(|a| {
            Some(AgentRef {
                user_id: nonempty(&a.user_id)?,
                display_name: nonempty(&a.display_name),
            })
        })
        .collect();
    obs.consumers = e
        .consumers
        .iter()
        .map(|c| ConsumerRef {
            consumer_id: nonempty(&c.consumer_id),
            consumer_number: nonempty(&c.consumer_number),
            consumer_display_name: nonempty(&c.consumer_display_name),
        })
        .filter(|c| c.key().is_some())
        .collect();
    obs.notes = e
        .notes
        .iter()
        .filter_map(|n| {
            let id = nonempty(&n.note_id)?;
            Some(note_fact(&id, &n.note, &n.user_id, &n.last_modified_time))
        })
        .collect();
    obs.dispositions = e
        .dispositions
        .iter()
        .filter_map(|d| {
            DispositionFact::new(nonempty(&d.disposition_id), nonempty(&d.disposition_name))
        })
        .collect();
    for f in &e.flows {
        push_flow(obs, &f.flow_id, &f.flow_name);
    }
    // Zoom sets `transcript_url` on messaging (and email) engagements once their transcript exists.
    if let Some(url) = nonempty(&e.transcript_url) {
        let kind = match obs.channel.as_deref() {
            Some("email") => Some(TranscriptKind::Email),
            Some("messaging") => Some(TranscriptKind::Messaging),
            _ => None,
        };
        if let Some(kind) = kind {
            obs.transcripts.push(TranscriptFact {
                kind,
                source_id: e.engagement_id.clone(),
                transcript_url: Some(url),
                completed_time: None,
            });
        }
    }
}

fn observe_recording(obs: &mut Observation, r: &Recording) {
    if let Some(id) = nonempty(&r.cc_queue_id) {
        obs.queues.push(QueueRef {
            cc_queue_id: id,
            queue_name: nonempty(&r.queue_name),
        });
    }
    obs.direction = nonempty(&r.direction);
    push_flow(obs, &r.flow_id, &r.flow_name);
    let users: Vec<AgentRef> = nonempty(&r.user_id)
        .map(|user_id| AgentRef {
            user_id,
            display_name: nonempty(&r.display_name),
        })
        .into_iter()
        .collect();
    let mut consumers: Vec<ConsumerRef> = r
        .consumers
        .iter()
        .map(|c| ConsumerRef {
            consumer_id: nonempty(&c.consumer_id),
            consumer_number: nonempty(&c.consumer_number),
            consumer_display_name: nonempty(&c.consumer_name),
        })
        .filter(|c| c.key().is_some())
        .collect();
    let deprecated = ConsumerRef {
        consumer_id: None,
        consumer_number: nonempty(&r.consumer_number),
        consumer_display_name: nonempty(&r.consumer_name),
    };
    if deprecated.key().is_some()
        && !consumers
            .iter()
            .any(|c| c.consumer_number == deprecated.consumer_number)
    {
        consumers.push(deprecated);
    }
    // The people on a recording are the engagement's agents and consumers too.
    obs.agents.extend(users.iter().cloned());
    obs.consumers.extend(consumers.iter().cloned());
    obs.recordings.push(RecordingFact {
        recording_id: r.recording_id.clone(),
        channel: nonempty(&r.channel),
        recording_start_time: parse_time(r.recording_start_time.as_deref()),
        recording_end_time: parse_time(r.recording_end_time.as_deref()),
        recording_duration: r.recording_duration,
        download_url: nonempty(&r.download_url),
        transcript_url: nonempty(&r.transcript_url),
        playback_url: nonempty(&r.playback_url),
        user_id: nonempty(&r.user_id),
        deleted: None,
        recording_type: nonempty(&r.recording_type),
        owner_id: nonempty(&r.owner_id),
        owner_name: nonempty(&r.owner_name),
        owner_type: nonempty(&r.owner_type),
        users,
        consumers,
    });
    // A recording lists a `transcript_url` once its transcript exists.
    if let Some(url) = nonempty(&r.transcript_url) {
        obs.transcripts.push(TranscriptFact {
            kind: TranscriptKind::Recording,
            source_id: r.recording_id.clone(),
            transcript_url: Some(url),
            completed_time: None,
        });
    }
}

fn push_flow(obs: &mut Observation, flow_id: &Option<String>, flow_name: &Option<String>) {
    let flow = FlowRef {
        flow_id: nonempty(flow_id),
        flow_name: nonempty(flow_name),
    };
    if flow.key().is_some() {
        obs.flows.push(flow);
    }
}

fn observe_inbox_message(obs: &mut Observation, m: &InboxMessage) {
    push_flow(obs, &m.flow_id, &m.flow_name);
    if let Some(id) = m.queue() {
        obs.queues.push(QueueRef {
            cc_queue_id: id.to_string(),
            queue_name: nonempty(&m.queue_name),
        });
    }
    let consumer = ConsumerRef {
        consumer_id: nonempty(&m.consumer_id),
        consumer_number: nonempty(&m.consumer_number),
        consumer_display_name: nonempty(&m.consumer_display_name),
    };
    if consumer.key().is_some() {
        obs.consumers.push(consumer);
    }
    if m.message_type.as_deref().is_some_and(|t| t != "voicemail") {
        return;
    }
    obs.voicemails.push(VoicemailFact {
        message_id: m.message_id.clone(),
        inbox_id: nonempty(&m.inbox_id),
        inbox_name: nonempty(&m.inbox_name),
        created_at: parse_time(m.created_at.as_deref()),
        message_duration: m.message_duration,
        download_url: nonempty(&m.download_url),
        playback_url: nonempty(&m.playback_url),
        transcript_url: nonempty(&m.transcript_url),
        // The list's `normal` says nothing about the inbox workflow (received, opened, resolved) that webhooks
        // report; only a deletion is news.
        status: (m.status.as_deref() == Some("deleted")).then(|| "deleted".to_string()),
    });
    if let Some(url) = nonempty(&m.transcript_url) {
        obs.transcripts.push(TranscriptFact {
            kind: TranscriptKind::Voicemail,
            source_id: m.message_id.clone(),
            transcript_url: Some(url),
            completed_time: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engagement() -> Engagement {
        serde_json::from_str(
            r#"{"engagement_id":"E1","start_time":"2026-11-21T09:00:00Z","end_time":"2026-11-21T09:07:12Z",
                "direction":"inbound","channels":[{"channel":"messaging","channel_source":"web_chat"}],
                "queues":[{"cc_queue_id":"Q","queue_name":"Sales"}],"agents":[{"user_id":"U","display_name":"Ann"}],
                "consumers":[{"consumer_id":"C","consumer_number":"+15550100"}],
                "notes":[{"note_id":"N","note":"hi","user_id":"U","last_modified_time":"2026-11-21T09:09:00Z"}],
                "dispositions":[{"disposition_id":"D","disposition_name":"Sale"}],
                "transcript_url":"https://t","new_zoom_field":{"x":1}}"#,
        )
        .expect("engagement")
    }

    #[test]
    fn engagement_maps_to_facts_and_keeps_unknown_fields() {
        let polled = Polled::Engagement(engagement());
        let event = polled.to_event(5).expect("event");
        assert_eq!(event.event_type, "poll.engagement");
        // The newest own time: the note edit after the end.
        assert_eq!(event.event_ts, Some(1_795_252_140_000));
        let raw: serde_json::Value = serde_json::from_slice(&event.raw).expect("json");
        assert_eq!(raw["data"]["new_zoom_field"]["x"], 1);
        let obs = parse(&event.raw).expect("parses").expect("observation");
        assert_eq!(Some(&obs), event.observation.as_ref());
        assert_eq!(obs.channel.as_deref(), Some("messaging"));
        assert_eq!(obs.notes[0].last_modified_time, Some(1_795_252_140_000));
        assert_eq!(obs.transcripts[0].kind, TranscriptKind::Messaging);
        assert_eq!(obs.source, EventSource::Poll);
    }

    #[test]
    fn same_resource_same_key_changed_resource_new_key() {
        let a = Polled::Engagement(engagement()).to_event(1).expect("a");
        let b = Polled::Engagement(engagement()).to_event(999).expect("b");
        assert_eq!(
            a.dedup_key, b.dedup_key,
            "fetch time is not part of the key"
        );
        let mut changed = engagement();
        changed.dispositions.clear();
        let c = Polled::Engagement(changed).to_event(1).expect("c");
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn resources_without_an_engagement_are_not_logged() {
        let recording = Recording {
            recording_id: "R".into(),
            ..Default::default()
        };
        assert!(Polled::Recording(recording).to_event(1).is_none());
        assert!(parse(b"{\"resource\":\"nope\"}").is_err());
    }

    #[test]
    fn inbox_message_status_and_transcript() {
        let m: InboxMessage = serde_json::from_str(
            r#"{"message_id":"M","engagement_id":"E","cci_queue_id":"Q","status":"normal","message_type":"voicemail",
                "created_at":"2026-11-21T09:00:00Z","transcript_url":"https://t","consumer_id":"C"}"#,
        )
        .expect("message");
        let obs = Polled::InboxMessage(m).observation();
        assert_eq!(obs.voicemails[0].status, None);
        assert_eq!(obs.queues[0].cc_queue_id, "Q");
        assert_eq!(obs.transcripts[0].kind, TranscriptKind::Voicemail);
    }
}
