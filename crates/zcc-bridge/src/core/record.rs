//! The engagement record as a merge of observations.
//!
//! `EngagementState` is a join-semilattice: `merge` is commutative, associative and idempotent, so the state
//! built from a set of observations is the same whatever their order or repetition. Scalars are
//! last-writer-wins registers ordered by (source rank, time, value); collections are maps keyed by the
//! entity's id whose entries merge field by field; lists keep the order in which entities were first seen.
//! The state is what is stored; `EngagementRecord` is the API view rendered from it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::media::{MediaKind, MediaSource, MediaView};
use super::observation::{
    AgentRef, ChatMessageFact, ConsumerRef, EventSource, Observation, TranscriptKind, WorkspaceFact,
};

/// Prefix of the key of a disposition known only by its name (`name:<disposition_name>`).
pub const DISPOSITION_BY_NAME: &str = "name:";

/// Combine two states into their least upper bound (commutative, associative, idempotent).
pub trait Merge {
    fn join(&mut self, other: &Self);
}

/// Ordering of competing writes: trusted sources first, then the later time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub rank: u8,
    pub ts: i64,
}

/// Last-writer-wins register. Ties on the stamp are broken by the value so that merging stays commutative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reg<T>(Option<(Stamp, T)>);

impl<T> Default for Reg<T> {
    fn default() -> Self {
        Reg(None)
    }
}

impl<T: Ord + Clone> Reg<T> {
    fn with(stamp: Stamp, value: Option<T>) -> Self {
        Reg(value.map(|v| (stamp, v)))
    }

    pub fn get(&self) -> Option<&T> {
        self.0.as_ref().map(|(_, v)| v)
    }

    /// When the value was written (the event time of the winning write).
    pub fn written_at(&self) -> Option<i64> {
        self.0.as_ref().map(|(stamp, _)| stamp.ts)
    }

    /// The value, if the write that set it came from `source`'s rank.
    fn get_from(&self, source: EventSource) -> Option<&T> {
        self.0
            .as_ref()
            .filter(|(stamp, _)| stamp.rank == source.rank())
            .map(|(_, v)| v)
    }
}

impl<T: Ord + Clone> Merge for Reg<T> {
    fn join(&mut self, other: &Self) {
        if let Some((stamp, value)) = &other.0 {
            let replace = match &self.0 {
                None => true,
                Some((mine, current)) => (stamp, value) > (mine, current),
            };
            if replace {
                self.0 = Some((*stamp, value.clone()));
            }
        }
    }
}

/// Earliest time an entity was seen; orders lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FirstSeen(i64);

impl Merge for FirstSeen {
    fn join(&mut self, other: &Self) {
        self.0 = self.0.min(other.0);
    }
}

impl<K: Ord + Clone, V: Merge + Clone> Merge for BTreeMap<K, V> {
    fn join(&mut self, other: &Self) {
        for (key, value) in other {
            match self.get_mut(key) {
                Some(mine) => mine.join(value),
                None => {
                    self.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

impl<T: Ord + Clone> Merge for BTreeSet<T> {
    fn join(&mut self, other: &Self) {
        self.extend(other.iter().cloned());
    }
}

macro_rules! merge_fields {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl Merge for $ty {
            fn join(&mut self, other: &Self) {
                $(self.$field.join(&other.$field);)*
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueState {
    first_seen: FirstSeen,
    queue_name: Reg<String>,
}
merge_fields!(QueueState {
    first_seen,
    queue_name
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    first_seen: FirstSeen,
    display_name: Reg<String>,
}
merge_fields!(AgentState {
    first_seen,
    display_name
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerState {
    first_seen: FirstSeen,
    consumer_id: Reg<String>,
    consumer_number: Reg<String>,
    consumer_display_name: Reg<String>,
}
merge_fields!(ConsumerState {
    first_seen,
    consumer_id,
    consumer_number,
    consumer_display_name
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    first_seen: FirstSeen,
    flow_id: Reg<String>,
    flow_name: Reg<String>,
}
merge_fields!(FlowState {
    first_seen,
    flow_id,
    flow_name
});

/// One transfer's history, merged from its `engagement_transfer_*` events. `status` is the latest step by event
/// time; `first_seen` is when it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferState {
    first_seen: FirstSeen,
    status: Reg<String>,
    from_user_id: Reg<String>,
    from_display_name: Reg<String>,
    from_cc_queue_id: Reg<String>,
    from_queue_name: Reg<String>,
    to_user_id: Reg<String>,
    to_display_name: Reg<String>,
    to_cc_queue_id: Reg<String>,
    to_queue_name: Reg<String>,
    to_flow_id: Reg<String>,
    to_flow_name: Reg<String>,
    to_inbox_id: Reg<String>,
    to_inbox_name: Reg<String>,
    to_number: Reg<String>,
    transfer_type: Reg<String>,
    transfer_level: Reg<String>,
}
merge_fields!(TransferState {
    first_seen,
    status,
    from_user_id,
    from_display_name,
    from_cc_queue_id,
    from_queue_name,
    to_user_id,
    to_display_name,
    to_cc_queue_id,
    to_queue_name,
    to_flow_id,
    to_flow_name,
    to_inbox_id,
    to_inbox_name,
    to_number,
    transfer_type,
    transfer_level,
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteState {
    first_seen: FirstSeen,
    note: Reg<String>,
    user_id: Reg<String>,
    last_modified_time: Reg<i64>,
}
merge_fields!(NoteState {
    first_seen,
    note,
    user_id,
    last_modified_time
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispositionState {
    first_seen: FirstSeen,
    disposition_name: Reg<String>,
}
merge_fields!(DispositionState {
    first_seen,
    disposition_name
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingState {
    first_seen: FirstSeen,
    channel: Reg<String>,
    recording_start_time: Reg<i64>,
    recording_end_time: Reg<i64>,
    recording_duration: Reg<i64>,
    download_url: Reg<String>,
    transcript_url: Reg<String>,
    playback_url: Reg<String>,
    user_id: Reg<String>,
    deleted: Reg<bool>,
    #[serde(default)]
    recording_type: Reg<String>,
    #[serde(default)]
    owner_id: Reg<String>,
    #[serde(default)]
    owner_name: Reg<String>,
    #[serde(default)]
    owner_type: Reg<String>,
    #[serde(default)]
    users: BTreeMap<String, AgentState>,
    #[serde(default)]
    consumers: BTreeMap<String, ConsumerState>,
}
merge_fields!(RecordingState {
    first_seen,
    channel,
    recording_start_time,
    recording_end_time,
    recording_duration,
    download_url,
    transcript_url,
    playback_url,
    user_id,
    deleted,
    recording_type,
    owner_id,
    owner_name,
    owner_type,
    users,
    consumers,
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptState {
    kind: TranscriptKind,
    source_id: String,
    first_seen: FirstSeen,
    transcript_url: Reg<String>,
    completed_time: Reg<i64>,
}
merge_fields!(TranscriptState {
    first_seen,
    transcript_url,
    completed_time
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoicemailState {
    first_seen: FirstSeen,
    inbox_id: Reg<String>,
    inbox_name: Reg<String>,
    created_at: Reg<i64>,
    message_duration: Reg<i64>,
    download_url: Reg<String>,
    playback_url: Reg<String>,
    transcript_url: Reg<String>,
    status: Reg<String>,
}
merge_fields!(VoicemailState {
    first_seen,
    inbox_id,
    inbox_name,
    created_at,
    message_duration,
    download_url,
    playback_url,
    transcript_url,
    status,
});

/// An agent's finalized workspace: the greatest `(version, content)` wins (a max-register, so the merge stays a
/// semilattice).
impl Merge for WorkspaceFact {
    fn join(&mut self, other: &Self) {
        if *other > *self {
            *self = other.clone();
        }
    }
}

/// One chat message (the facts of a message never change; the registers make repeats harmless).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageState {
    first_seen: FirstSeen,
    channel: Reg<String>,
    session_id: Reg<String>,
    sender: Reg<String>,
    text: Reg<String>,
    time: Reg<i64>,
    handover: Reg<bool>,
    handover_reason: Reg<String>,
    end: Reg<bool>,
}
merge_fields!(ChatMessageState {
    first_seen,
    channel,
    session_id,
    sender,
    text,
    time,
    handover,
    handover_reason,
    end,
});

impl ChatMessageState {
    fn from_fact(m: &ChatMessageFact, stamp: Stamp) -> Self {
        Self {
            first_seen: FirstSeen(m.time),
            channel: Reg::with(stamp, Some(m.channel.clone())),
            session_id: Reg::with(stamp, Some(m.session_id.clone())),
            sender: Reg::with(stamp, Some(m.sender.clone())),
            text: Reg::with(stamp, Some(m.text.clone())),
            time: Reg::with(stamp, Some(m.time)),
            handover: Reg::with(stamp, Some(m.handover)),
            handover_reason: Reg::with(stamp, m.handover_reason.clone()),
            end: Reg::with(stamp, Some(m.end)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub event_ts: i64,
    pub event: String,
    pub source: EventSource,
}

/// The stored, mergeable state of one engagement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementState {
    pub engagement_id: String,
    channel: Reg<String>,
    channel_source: Reg<String>,
    direction: Reg<String>,
    start_time: Reg<i64>,
    end_time: Reg<i64>,
    queues: BTreeMap<String, QueueState>,
    /// Keyed by `id:<flow_id>` or `name:<flow_name>`.
    #[serde(default)]
    flows: BTreeMap<String, FlowState>,
    agents: BTreeMap<String, AgentState>,
    consumers: BTreeMap<String, ConsumerState>,
    #[serde(default)]
    transfers: BTreeMap<String, TransferState>,
    notes: BTreeMap<String, NoteState>,
    dispositions: BTreeMap<String, DispositionState>,
    recordings: BTreeMap<String, RecordingState>,
    /// Keyed by `"{kind}:{source_id}"` (JSON object keys must be strings).
    transcripts: BTreeMap<String, TranscriptState>,
    voicemails: BTreeMap<String, VoicemailState>,
    /// Agents' finalized workspaces from the agent panel, keyed by the agent's Zoom user id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    agent_workspaces: BTreeMap<String, WorkspaceFact>,
    /// Chatbot conversation messages, keyed by message id.
    #[serde(default)]
    chat: BTreeMap<String, ChatMessageState>,
    timeline: BTreeSet<TimelineEntry>,
    sources: BTreeSet<EventSource>,
}

impl Merge for EngagementState {
    fn join(&mut self, other: &Self) {
        debug_assert_eq!(self.engagement_id, other.engagement_id);
        self.channel.join(&other.channel);
        self.channel_source.join(&other.channel_source);
        self.direction.join(&other.direction);
        self.start_time.join(&other.start_time);
        self.end_time.join(&other.end_time);
        self.queues.join(&other.queues);
        self.flows.join(&other.flows);
        self.agents.join(&other.agents);
        self.consumers.join(&other.consumers);
        self.transfers.join(&other.transfers);
        self.notes.join(&other.notes);
        self.dispositions.join(&other.dispositions);
        self.recordings.join(&other.recordings);
        self.transcripts.join(&other.transcripts);
        self.voicemails.join(&other.voicemails);
        self.agent_workspaces.join(&other.agent_workspaces);
        self.chat.join(&other.chat);
        self.timeline.join(&other.timeline);
        self.sources.join(&other.sources);
    }
}

impl EngagementState {
    pub fn empty(engagement_id: impl Into<String>) -> Self {
        Self {
            engagement_id: engagement_id.into(),
            channel: Reg::default(),
            channel_source: Reg::default(),
            direction: Reg::default(),
            start_time: Reg::default(),
            end_time: Reg::default(),
            queues: BTreeMap::new(),
            flows: BTreeMap::new(),
            agents: BTreeMap::new(),
            consumers: BTreeMap::new(),
            transfers: BTreeMap::new(),
            notes: BTreeMap::new(),
            dispositions: BTreeMap::new(),
            recordings: BTreeMap::new(),
            transcripts: BTreeMap::new(),
            voicemails: BTreeMap::new(),
            agent_workspaces: BTreeMap::new(),
            chat: BTreeMap::new(),
            timeline: BTreeSet::new(),
            sources: BTreeSet::new(),
        }
    }

    /// Merge one observation in. Equivalent to `merge(&EngagementState::from(obs))`.
    pub fn apply(&mut self, obs: &Observation) {
        self.join(&Self::from_observation(obs));
    }

    /// The state that knows exactly what one observation says.
    pub fn from_observation(obs: &Observation) -> Self {
        let stamp = Stamp {
            rank: obs.source.rank(),
            ts: obs.event_ts,
        };
        let seen = FirstSeen(obs.event_ts);
        let mut s = Self::empty(obs.engagement_id.clone());
        s.channel = Reg::with(stamp, obs.channel.clone());
        s.channel_source = Reg::with(stamp, obs.channel_source.clone());
        s.direction = Reg::with(stamp, obs.direction.clone());
        s.start_time = Reg::with(stamp, obs.start_time);
        s.end_time = Reg::with(stamp, obs.end_time);
        for q in &obs.queues {
            s.queues.join(&BTreeMap::from([(
                q.cc_queue_id.clone(),
                QueueState {
                    first_seen: seen,
                    queue_name: Reg::with(stamp, q.queue_name.clone()),
                },
            )]));
        }
        for f in &obs.flows {
            if let Some(key) = f.key() {
                s.flows.join(&BTreeMap::from([(
                    key,
                    FlowState {
                        first_seen: seen,
                        flow_id: Reg::with(stamp, f.flow_id.clone()),
                        flow_name: Reg::with(stamp, f.flow_name.clone()),
                    },
                )]));
            }
        }
        s.agents = agent_states(&obs.agents, stamp, seen);
        s.consumers = consumer_states(&obs.consumers, stamp, seen);
        for t in &obs.transfers {
            // Steps are ordered by when they happened, whatever the source.
            let step = Stamp {
                rank: 0,
                ts: obs.event_ts,
            };
            let reg = |v: &Option<String>| Reg::with(stamp, v.clone());
            s.transfers.join(&BTreeMap::from([(
                t.transfer_key.clone(),
                TransferState {
                    first_seen: seen,
                    status: Reg::with(step, Some(t.status.clone())),
                    from_user_id: reg(&t.from_user_id),
                    from_display_name: reg(&t.from_display_name),
                    from_cc_queue_id: reg(&t.from_cc_queue_id),
                    from_queue_name: reg(&t.from_queue_name),
                    to_user_id: reg(&t.to_user_id),
                    to_display_name: reg(&t.to_display_name),
                    to_cc_queue_id: reg(&t.to_cc_queue_id),
                    to_queue_name: reg(&t.to_queue_name),
                    to_flow_id: reg(&t.to_flow_id),
                    to_flow_name: reg(&t.to_flow_name),
                    to_inbox_id: reg(&t.to_inbox_id),
                    to_inbox_name: reg(&t.to_inbox_name),
                    to_number: reg(&t.to_number),
                    transfer_type: reg(&t.transfer_type),
                    transfer_level: reg(&t.transfer_level),
                },
            )]));
        }
        for n in &obs.notes {
            // A re-fired old version of a note must not overwrite a newer edit: order by the edit time alone,
            // whatever the source (a REST snapshot taken before an edit is older than the edit's webhook).
            let note_stamp = Stamp {
                rank: 0,
                ts: n.last_modified_time.unwrap_or(obs.event_ts),
            };
            s.notes.join(&BTreeMap::from([(
                n.note_id.clone(),
                NoteState {
                    first_seen: seen,
                    note: Reg::with(note_stamp, n.note.clone()),
                    user_id: Reg::with(note_stamp, n.user_id.clone()),
                    last_modified_time: Reg::with(note_stamp, n.last_modified_time),
                },
            )]));
        }
        for d in &obs.dispositions {
            s.dispositions.join(&BTreeMap::from([(
                d.disposition_id.clone(),
                DispositionState {
                    first_seen: seen,
                    disposition_name: Reg::with(stamp, d.disposition_name.clone()),
                },
            )]));
        }
        for r in &obs.recordings {
            s.recordings.join(&BTreeMap::from([(
                r.recording_id.clone(),
                RecordingState {
                    first_seen: seen,
                    channel: Reg::with(stamp, r.channel.clone()),
                    recording_start_time: Reg::with(stamp, r.recording_start_time),
                    recording_end_time: Reg::with(stamp, r.recording_end_time),
                    recording_duration: Reg::with(stamp, r.recording_duration),
                    download_url: Reg::with(stamp, r.download_url.clone()),
                    transcript_url: Reg::with(stamp, r.transcript_url.clone()),
                    playback_url: Reg::with(stamp, r.playback_url.clone()),
                    user_id: Reg::with(stamp, r.user_id.clone()),
                    deleted: Reg::with(stamp, r.deleted),
                    recording_type: Reg::with(stamp, r.recording_type.clone()),
                    owner_id: Reg::with(stamp, r.owner_id.clone()),
                    owner_name: Reg::with(stamp, r.owner_name.clone()),
                    owner_type: Reg::with(stamp, r.owner_type.clone()),
                    users: agent_states(&r.users, stamp, seen),
                    consumers: consumer_states(&r.consumers, stamp, seen),
                },
            )]));
        }
        for t in &obs.transcripts {
            s.transcripts.join(&BTreeMap::from([(
                format!("{}:{}", t.kind.as_str(), t.source_id),
                TranscriptState {
                    kind: t.kind,
                    source_id: t.source_id.clone(),
                    first_seen: seen,
                    transcript_url: Reg::with(stamp, t.transcript_url.clone()),
                    completed_time: Reg::with(stamp, t.completed_time),
                },
            )]));
        }
        for v in &obs.voicemails {
            s.voicemails.join(&BTreeMap::from([(
                v.message_id.clone(),
                VoicemailState {
                    first_seen: seen,
                    inbox_id: Reg::with(stamp, v.inbox_id.clone()),
                    inbox_name: Reg::with(stamp, v.inbox_name.clone()),
                    created_at: Reg::with(stamp, v.created_at),
                    message_duration: Reg::with(stamp, v.message_duration),
                    download_url: Reg::with(stamp, v.download_url.clone()),
                    playback_url: Reg::with(stamp, v.playback_url.clone()),
                    transcript_url: Reg::with(stamp, v.transcript_url.clone()),
                    status: Reg::with(stamp, v.status.clone()),
                },
            )]));
        }
        for w in &obs.workspaces {
            s.agent_workspaces
                .join(&BTreeMap::from([(w.user_id.clone(), w.clone())]));
        }
        for m in &obs.chat_messages {
            s.chat.join(&BTreeMap::from([(
                m.message_id.clone(),
                ChatMessageState::from_fact(m, stamp),
            )]));
        }
        s.timeline.insert(TimelineEntry {
            event_ts: obs.event_ts,
            event: obs.event.clone(),
            source: obs.source,
        });
        s.sources.insert(obs.source);
        s
    }

    pub fn channel(&self) -> Option<&str> {
        self.channel.get().map(String::as_str)
    }

    pub fn direction(&self) -> Option<&str> {
        self.direction.get().map(String::as_str)
    }

    pub fn start_time(&self) -> Option<i64> {
        self.start_time.get().copied()
    }

    pub fn end_time(&self) -> Option<i64> {
        self.end_time.get().copied()
    }

    /// The time lists are ordered by: the start, or the earliest event when the start was never seen.
    pub fn sort_ts(&self) -> i64 {
        self.start_time()
            .or_else(|| self.timeline.first().map(|e| e.event_ts))
            .unwrap_or(0)
    }

    /// `(kind, value)` pairs the list API filters on.
    pub fn index_entries(&self) -> BTreeSet<(&'static str, String)> {
        let mut out = BTreeSet::new();
        for id in self.queues.keys() {
            out.insert(("queue", id.clone()));
        }
        for id in self.agents.keys() {
            out.insert(("agent", id.clone()));
        }
        for c in self.consumers.values() {
            if let Some(n) = c.consumer_number.get() {
                out.insert(("consumer_number", n.clone()));
            }
        }
        out
    }

    /// The ids of the queues the engagement was in, in id order.
    pub fn queue_ids(&self) -> Vec<String> {
        self.queues.keys().cloned().collect()
    }

    /// How many distinct events were merged in.
    pub fn event_count(&self) -> usize {
        self.timeline.len()
    }

    pub fn to_record(&self) -> EngagementRecord {
        EngagementRecord::from(self)
    }

    /// Every file this record has a download URL for: what the media archive keeps. A deleted recording is
    /// skipped (Zoom no longer serves it). A recording's or voicemail's transcript counts once it is known to
    /// exist: its `*_transcript_completed` event was seen, or Zoom's REST listing carries its URL (❓ the
    /// simulator lists it only then). A `transcript_url` in a `recording_completed` or `inbox_message_received`
    /// payload alone does not: Zoom sends it whether or not a transcript will ever be made.
    pub fn media_sources(&self) -> Vec<MediaSource> {
        let mut out = Vec::new();
        let fallback_time = self.sort_ts();
        let mut push = |kind,
                        item_id: &str,
                        url: Option<&String>,
                        time: Option<i64>,
                        channel: Option<&String>| {
            if let Some(url) = url.filter(|u| !u.is_empty()) {
                out.push(MediaSource {
                    kind,
                    item_id: item_id.to_string(),
                    engagement_id: self.engagement_id.clone(),
                    url: url.clone(),
                    item_time: time.unwrap_or(fallback_time),
                    channel: channel.cloned(),
                });
            }
        };
        let transcript_url = |kind: TranscriptKind, id: &str| {
            self.transcripts
                .get(&format!("{}:{id}", kind.as_str()))
                .and_then(|t| t.transcript_url.get())
        };
        for (id, r) in &self.recordings {
            if r.deleted.get().copied().unwrap_or(false) {
                continue;
            }
            let time = r
                .recording_start_time
                .get()
                .copied()
                .or(Some(r.first_seen.0));
            push(
                MediaKind::Recording,
                id,
                r.download_url.get(),
                time,
                r.channel.get(),
            );
            let transcript = transcript_url(TranscriptKind::Recording, id)
                .or(r.transcript_url.get_from(EventSource::Poll));
            push(MediaKind::RecordingTranscript, id, transcript, time, None);
        }
        for (id, v) in &self.voicemails {
            let time = v.created_at.get().copied().or(Some(v.first_seen.0));
            push(MediaKind::Voicemail, id, v.download_url.get(), time, None);
            let transcript = transcript_url(TranscriptKind::Voicemail, id)
                .or(v.transcript_url.get_from(EventSource::Poll));
            push(MediaKind::VoicemailTranscript, id, transcript, time, None);
        }
        for t in self.transcripts.values() {
            let kind = match t.kind {
                TranscriptKind::Messaging => MediaKind::MessagingTranscript,
                TranscriptKind::Email => MediaKind::EmailTranscript,
                // Listed with their recording or voicemail above; one without either is still archived.
                TranscriptKind::Recording if !self.recordings.contains_key(&t.source_id) => {
                    MediaKind::RecordingTranscript
                }
                TranscriptKind::Voicemail if !self.voicemails.contains_key(&t.source_id) => {
                    MediaKind::VoicemailTranscript
                }
                _ => continue,
            };
            let time = t.completed_time.get().copied().or(Some(t.first_seen.0));
            push(kind, &t.source_id, t.transcript_url.get(), time, None);
        }
        out.sort();
        out
    }

    /// What this state has that `before` did not: whether any content changed (the timeline and the list of
    /// sources aside, which grow with every new event) and how many entities are new.
    pub fn diff_from(&self, before: &Self) -> ContentDiff {
        fn new_keys<K: Ord, V>(now: &BTreeMap<K, V>, then: &BTreeMap<K, V>) -> u64 {
            now.keys().filter(|k| !then.contains_key(k)).count() as u64
        }
        let changed = self.channel != before.channel
            || self.channel_source != before.channel_source
            || self.direction != before.direction
            || self.start_time != before.start_time
            || self.end_time != before.end_time
            || self.queues != before.queues
            || self.flows != before.flows
            || self.agents != before.agents
            || self.consumers != before.consumers
            || self.transfers != before.transfers
            || self.notes != before.notes
            || self.dispositions != before.dispositions
            || self.recordings != before.recordings
            || self.transcripts != before.transcripts
            || self.voicemails != before.voicemails
            || self.agent_workspaces != before.agent_workspaces
            || self.chat != before.chat;
        ContentDiff {
            changed,
            notes: new_keys(&self.notes, &before.notes),
            dispositions: new_keys(&self.dispositions, &before.dispositions),
            recordings: new_keys(&self.recordings, &before.recordings),
            transcripts: new_keys(&self.transcripts, &before.transcripts),
            voicemails: new_keys(&self.voicemails, &before.voicemails),
            agents: new_keys(&self.agents, &before.agents),
            queues: new_keys(&self.queues, &before.queues),
        }
    }
}

fn agent_states(
    agents: &[AgentRef],
    stamp: Stamp,
    seen: FirstSeen,
) -> BTreeMap<String, AgentState> {
    let mut out = BTreeMap::new();
    for a in agents {
        out.join(&BTreeMap::from([(
            a.user_id.clone(),
            AgentState {
                first_seen: seen,
                display_name: Reg::with(stamp, a.display_name.clone()),
            },
        )]));
    }
    out
}

fn consumer_states(
    consumers: &[ConsumerRef],
    stamp: Stamp,
    seen: FirstSeen,
) -> BTreeMap<String, ConsumerState> {
    let mut out = BTreeMap::new();
    for c in consumers {
        if let Some(key) = c.key() {
            out.join(&BTreeMap::from([(
                key,
                ConsumerState {
                    first_seen: seen,
                    consumer_id: Reg::with(stamp, c.consumer_id.clone()),
                    consumer_number: Reg::with(stamp, c.consumer_number.clone()),
                    consumer_display_name: Reg::with(stamp, c.consumer_display_name.clone()),
                },
            )]));
        }
    }
    out
}

/// Consumers for display: an entry known only by its number joins the entry with an id that has the same number
/// (one event names the consumer by id and number, a REST recording by number alone), field by field.
fn consumer_views(consumers: &BTreeMap<String, ConsumerState>) -> Vec<ConsumerView> {
    let mut merged: BTreeMap<&String, ConsumerState> = BTreeMap::new();
    let mut by_number: BTreeMap<&String, &String> = BTreeMap::new();
    for (key, c) in consumers {
        if c.consumer_id.get().is_some() {
            if let Some(n) = c.consumer_number.get() {
                by_number.entry(n).or_insert(key);
            }
        }
    }
    for (key, c) in consumers {
        let target = match (c.consumer_id.get(), c.consumer_number.get()) {
            (None, Some(n)) => by_number.get(n).copied().unwrap_or(key),
            _ => key,
        };
        match merged.get_mut(target) {
            Some(existing) => existing.join(c),
            None => {
                merged.insert(target, c.clone());
            }
        }
    }
    let mut entries: Vec<_> = merged.into_iter().collect();
    entries
        .sort_by(|(ka, a), (kb, b)| a.first_seen.0.cmp(&b.first_seen.0).then_with(|| ka.cmp(kb)));
    entries
        .into_iter()
        .map(|(_, c)| ConsumerView {
            consumer_id: c.consumer_id.get().cloned(),
            consumer_number: c.consumer_number.get().cloned(),
            consumer_display_name: c.consumer_display_name.get().cloned(),
        })
        .collect()
}

fn agent_views(agents: &BTreeMap<String, AgentState>) -> Vec<AgentView> {
    in_seen_order(agents, |a| a.first_seen)
        .into_iter()
        .map(|(id, a)| AgentView {
            user_id: id.clone(),
            display_name: a.display_name.get().cloned(),
        })
        .collect()
}

/// See [`EngagementState::diff_from`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentDiff {
    pub changed: bool,
    pub notes: u64,
    pub dispositions: u64,
    pub recordings: u64,
    pub transcripts: u64,
    pub voicemails: u64,
    pub agents: u64,
    pub queues: u64,
}

/// Entries of a map in first-seen order (ties by key).
fn in_seen_order<K: Ord, V>(map: &BTreeMap<K, V>, seen: impl Fn(&V) -> FirstSeen) -> Vec<(&K, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|(ka, va), (kb, vb)| seen(va).0.cmp(&seen(vb).0).then_with(|| ka.cmp(kb)));
    entries
}

/// RFC 3339 in UTC with a `Z`, like Zoom's own timestamps.
pub fn format_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

// ---------------------------------------------------------------------------------------------------------
// The API view (DESIGN.md "The engagement record"). Field names follow Zoom's where Zoom has one.

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EngagementRecord {
    pub engagement_id: String,
    pub channel: Option<String>,
    pub channel_source: Option<String>,
    pub direction: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Seconds between start and end, when both are known.
    pub duration: Option<i64>,
    pub queues: Vec<QueueView>,
    /// Flows the engagement went through (`flow_id`, `flow_name`).
    #[serde(default)]
    pub flows: Vec<FlowView>,
    pub agents: Vec<AgentView>,
    pub consumers: Vec<ConsumerView>,
    /// Transfers in the order they started.
    #[serde(default)]
    pub transfers: Vec<TransferView>,
    pub notes: Vec<NoteView>,
    pub dispositions: Vec<DispositionView>,
    pub recordings: Vec<RecordingView>,
    pub transcripts: Vec<TranscriptView>,
    pub voicemails: Vec<VoicemailView>,
    /// What agents wrote in the agent panel (the Contact Center Zoom App) for this engagement, finalized when it
    /// ended: one entry per agent. Absent when no agent finalized a workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_workspaces: Vec<AgentWorkspaceView>,
    /// The chatbot conversation(s) of the engagement, oldest first (docs/record.md).
    #[serde(default)]
    pub chat: Vec<ChatMessageView>,
    pub timeline: Vec<TimelineView>,
    pub sources: Vec<EventSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentWorkspaceView {
    /// The agent's Zoom user id.
    pub user_id: String,
    pub notes: String,
    pub tags: Vec<String>,
    /// Wrap-up checklist: item id → ticked.
    pub checklist: BTreeMap<String, bool>,
    /// When the engagement ended, as the agent's Zoom client reported it.
    pub end_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueView {
    pub cc_queue_id: String,
    pub queue_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlowView {
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
}

/// Who or what a transfer went from or to. Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc_queue_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferView {
    /// Zoom's `transfer_to_task_id` (the task the transfer created), or a key derived from the parties.
    pub transfer_id: String,
    /// The latest step: `initiated`, `queued`, `reserved`, `accepted`, `rejected`, `canceled`, `timeout`,
    /// `completed`.
    pub status: Option<String>,
    /// When the transfer was first seen (RFC 3339).
    pub time: Option<String>,
    /// When its latest step happened.
    pub status_time: Option<String>,
    /// `warm` | `cold`.
    pub transfer_type: Option<String>,
    /// `queue`, `agent`, `flow`, ...
    pub transfer_level: Option<String>,
    pub from: TransferParty,
    pub to: TransferParty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentView {
    pub user_id: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumerView {
    pub consumer_id: Option<String>,
    pub consumer_number: Option<String>,
    pub consumer_display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoteView {
    pub note_id: String,
    pub note: Option<String>,
    pub user_id: Option<String>,
    pub last_modified_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DispositionView {
    pub disposition_id: String,
    pub disposition_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingView {
    pub recording_id: String,
    pub channel: Option<String>,
    pub recording_start_time: Option<String>,
    pub recording_end_time: Option<String>,
    pub recording_duration: Option<i64>,
    pub download_url: Option<String>,
    pub transcript_url: Option<String>,
    pub playback_url: Option<String>,
    pub user_id: Option<String>,
    pub deleted: bool,
    /// `on_demand` | `automatic`.
    #[serde(default)]
    pub recording_type: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub owner_name: Option<String>,
    /// `user` | `queue`.
    #[serde(default)]
    pub owner_type: Option<String>,
    /// The users (agents) on the recording.
    #[serde(default)]
    pub users: Vec<AgentView>,
    #[serde(default)]
    pub consumers: Vec<ConsumerView>,
    /// The archived copy of the recording (`null` until the archive knows of it).
    #[serde(default)]
    pub media: Option<MediaView>,
    /// The archived copy of its transcript.
    #[serde(default)]
    pub transcript_media: Option<MediaView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptView {
    #[serde(rename = "type")]
    pub kind: TranscriptKind,
    /// Recording id, engagement id (messaging/email) or voicemail message id.
    pub source_id: String,
    pub transcript_url: Option<String>,
    pub completed_time: Option<String>,
    #[serde(default)]
    pub media: Option<MediaView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoicemailView {
    pub message_id: String,
    pub inbox_id: Option<String>,
    pub inbox_name: Option<String>,
    pub created_at: Option<String>,
    pub message_duration: Option<i64>,
    pub download_url: Option<String>,
    pub playback_url: Option<String>,
    pub transcript_url: Option<String>,
    pub status: Option<String>,
    #[serde(default)]
    pub media: Option<MediaView>,
    #[serde(default)]
    pub transcript_media: Option<MediaView>,
}

/// A chat message in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessageView {
    pub message_id: String,
    /// The chat channel.
    pub channel: Option<String>,
    pub session_id: Option<String>,
    /// `consumer` or `bot`.
    pub sender: Option<String>,
    /// RFC 3339.
    pub time: Option<String>,
    pub text: Option<String>,
    /// The bot handed the conversation over to a live agent here (the hand-over marker).
    pub handover: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_reason: Option<String>,
    /// The conversation ended here.
    pub end: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineView {
    pub event: String,
    pub event_ts: i64,
    pub source: EventSource,
}

impl EngagementRecord {
    /// Fills in the `media` views from the archive's state of each file (`view` by kind and item id).
    pub fn attach_media(&mut self, view: impl Fn(MediaKind, &str) -> Option<MediaView>) {
        for r in &mut self.recordings {
            r.media = view(MediaKind::Recording, &r.recording_id);
            r.transcript_media = view(MediaKind::RecordingTranscript, &r.recording_id);
        }
        for v in &mut self.voicemails {
            v.media = view(MediaKind::Voicemail, &v.message_id);
            v.transcript_media = view(MediaKind::VoicemailTranscript, &v.message_id);
        }
        for t in &mut self.transcripts {
            let kind = match t.kind {
                TranscriptKind::Recording => MediaKind::RecordingTranscript,
                TranscriptKind::Messaging => MediaKind::MessagingTranscript,
                TranscriptKind::Email => MediaKind::EmailTranscript,
                TranscriptKind::Voicemail => MediaKind::VoicemailTranscript,
            };
            t.media = view(kind, &t.source_id);
        }
    }
}

fn time(reg: &Reg<i64>) -> Option<String> {
    reg.get().and_then(|ms| format_ms(*ms))
}

impl From<&EngagementState> for EngagementRecord {
    fn from(s: &EngagementState) -> Self {
        let duration = match (s.start_time(), s.end_time()) {
            (Some(start), Some(end)) if end >= start => Some((end - start) / 1000),
            _ => None,
        };
        EngagementRecord {
            engagement_id: s.engagement_id.clone(),
            channel: s.channel.get().cloned(),
            channel_source: s.channel_source.get().cloned(),
            direction: s.direction.get().cloned(),
            start_time: time(&s.start_time),
            end_time: time(&s.end_time),
            duration,
            queues: in_seen_order(&s.queues, |q| q.first_seen)
                .into_iter()
                .map(|(id, q)| QueueView {
                    cc_queue_id: id.clone(),
                    queue_name: q.queue_name.get().cloned(),
                })
                .collect(),
            flows: in_seen_order(&s.flows, |f| f.first_seen)
                .into_iter()
                .map(|(_, f)| FlowView {
                    flow_id: f.flow_id.get().cloned(),
                    flow_name: f.flow_name.get().cloned(),
                })
                .collect(),
            agents: agent_views(&s.agents),
            consumers: consumer_views(&s.consumers),
            transfers: in_seen_order(&s.transfers, |t| t.first_seen)
                .into_iter()
                .map(|(id, t)| {
                    let get = |r: &Reg<String>| r.get().cloned();
                    TransferView {
                        transfer_id: id.clone(),
                        status: get(&t.status),
                        time: format_ms(t.first_seen.0),
                        status_time: t.status.written_at().and_then(format_ms),
                        transfer_type: get(&t.transfer_type),
                        transfer_level: get(&t.transfer_level),
                        from: TransferParty {
                            user_id: get(&t.from_user_id),
                            display_name: get(&t.from_display_name),
                            cc_queue_id: get(&t.from_cc_queue_id),
                            queue_name: get(&t.from_queue_name),
                            ..TransferParty::default()
                        },
                        to: TransferParty {
                            user_id: get(&t.to_user_id),
                            display_name: get(&t.to_display_name),
                            cc_queue_id: get(&t.to_cc_queue_id),
                            queue_name: get(&t.to_queue_name),
                            flow_id: get(&t.to_flow_id),
                            flow_name: get(&t.to_flow_name),
                            inbox_id: get(&t.to_inbox_id),
                            inbox_name: get(&t.to_inbox_name),
                            number: get(&t.to_number),
                        },
                    }
                })
                .collect(),
            notes: in_seen_order(&s.notes, |n| n.first_seen)
                .into_iter()
                .map(|(id, n)| NoteView {
                    note_id: id.clone(),
                    note: n.note.get().cloned(),
                    user_id: n.user_id.get().cloned(),
                    last_modified_time: time(&n.last_modified_time),
                })
                .collect(),
            dispositions: in_seen_order(&s.dispositions, |d| d.first_seen)
                .into_iter()
                // A disposition known only by name (a Flow script's, a webhook without an id) is the same as
                // one with an id and that name.
                .filter(|(id, d)| {
                    !id.starts_with(DISPOSITION_BY_NAME)
                        || !s.dispositions.iter().any(|(other, o)| {
                            !other.starts_with(DISPOSITION_BY_NAME)
                                && o.disposition_name.get() == d.disposition_name.get()
                        })
                })
                .map(|(id, d)| DispositionView {
                    disposition_id: id.clone(),
                    disposition_name: d.disposition_name.get().cloned(),
                })
                .collect(),
            recordings: in_seen_order(&s.recordings, |r| r.first_seen)
                .into_iter()
                .map(|(id, r)| RecordingView {
                    recording_id: id.clone(),
                    channel: r.channel.get().cloned(),
                    recording_start_time: time(&r.recording_start_time),
                    recording_end_time: time(&r.recording_end_time),
                    recording_duration: r.recording_duration.get().copied(),
                    download_url: r.download_url.get().cloned(),
                    transcript_url: r.transcript_url.get().cloned(),
                    playback_url: r.playback_url.get().cloned(),
                    user_id: r.user_id.get().cloned(),
                    deleted: r.deleted.get().copied().unwrap_or(false),
                    recording_type: r.recording_type.get().cloned(),
                    owner_id: r.owner_id.get().cloned(),
                    owner_name: r.owner_name.get().cloned(),
                    owner_type: r.owner_type.get().cloned(),
                    users: agent_views(&r.users),
                    consumers: consumer_views(&r.consumers),
                    media: None,
                    transcript_media: None,
                })
                .collect(),
            transcripts: in_seen_order(&s.transcripts, |t| t.first_seen)
                .into_iter()
                .map(|(_, t)| TranscriptView {
                    kind: t.kind,
                    source_id: t.source_id.clone(),
                    transcript_url: t.transcript_url.get().cloned(),
                    completed_time: time(&t.completed_time),
                    media: None,
                })
                .collect(),
            voicemails: in_seen_order(&s.voicemails, |v| v.first_seen)
                .into_iter()
                .map(|(id, v)| VoicemailView {
                    message_id: id.clone(),
                    inbox_id: v.inbox_id.get().cloned(),
                    inbox_name: v.inbox_name.get().cloned(),
                    created_at: time(&v.created_at),
                    message_duration: v.message_duration.get().copied(),
                    download_url: v.download_url.get().cloned(),
                    playback_url: v.playback_url.get().cloned(),
                    transcript_url: v.transcript_url.get().cloned(),
                    status: v.status.get().cloned(),
                    media: None,
                    transcript_media: None,
                })
                .collect(),
            agent_workspaces: s
                .agent_workspaces
                .values()
                .map(|w| AgentWorkspaceView {
                    user_id: w.user_id.clone(),
                    notes: w.notes.clone(),
                    tags: w.tags.clone(),
                    checklist: w.checklist.clone(),
                    end_time: w.end_time.and_then(format_ms),
                })
                .collect(),
            chat: {
                let mut messages: Vec<(&String, &ChatMessageState)> = s.chat.iter().collect();
                messages.sort_by(|(ka, a), (kb, b)| (a.time.get(), ka).cmp(&(b.time.get(), kb)));
                messages
                    .into_iter()
                    .map(|(id, m)| ChatMessageView {
                        message_id: id.clone(),
                        channel: m.channel.get().cloned(),
                        session_id: m.session_id.get().cloned(),
                        sender: m.sender.get().cloned(),
                        time: time(&m.time),
                        text: m.text.get().cloned(),
                        handover: m.handover.get().copied().unwrap_or(false),
                        handover_reason: m.handover_reason.get().cloned(),
                        end: m.end.get().copied().unwrap_or(false),
                    })
                    .collect()
            },
            timeline: s
                .timeline
                .iter()
                .map(|e| TimelineView {
                    event: e.event.clone(),
                    event_ts: e.event_ts,
                    source: e.source,
                })
                .collect(),
            sources: s.sources.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observation::*;
    use proptest::prelude::*;

    fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::sample::select(options).prop_map(str::to_string)
    }

    prop_compose! {
        fn observation()(
            event in pick(&["contact_center.engagement_started", "contact_center.engagement_note_added",
                            "contact_center.recording_completed", "contact_center.engagement_ended", "x.unknown"]),
            event_ts in 0i64..20,
            source in proptest::sample::select(vec![EventSource::Webhook, EventSource::Poll]),
            channel in proptest::option::of(pick(&["voice", "video", "messaging"])),
            start_time in proptest::option::of(0i64..5),
            end_time in proptest::option::of(5i64..10),
            queue in proptest::option::of((pick(&["Q1", "Q2"]), proptest::option::of(pick(&["Sales", "Support"])))),
            agent in proptest::option::of((pick(&["U1", "U2", "U3"]), proptest::option::of(pick(&["Ann", "Bob"])))),
            consumer in proptest::option::of((proptest::option::of(pick(&["C1"])), proptest::option::of(pick(&["+1", "+2"])))),
            note in proptest::option::of((pick(&["N1", "N2"]), proptest::option::of(pick(&["a", "b", "c"])), proptest::option::of(0i64..4))),
            disposition in proptest::option::of((pick(&["D1", "D2"]), proptest::option::of(pick(&["Sale", "Lost"])))),
            recording in proptest::option::of((pick(&["R1", "R2"]), proptest::option::of(0i64..9), proptest::option::of(pick(&["u1", "u2"])), proptest::option::of(any::<bool>()))),
            transcript in proptest::option::of((proptest::sample::select(vec![TranscriptKind::Recording, TranscriptKind::Messaging]), pick(&["R1", "E"]), proptest::option::of(pick(&["t1", "t2"])))),
            voicemail in proptest::option::of((pick(&["M1"]), proptest::option::of(pick(&["received", "resolved"])))),
            flow in proptest::option::of((proptest::option::of(pick(&["F1", "F2"])), proptest::option::of(pick(&["Main", "After hours"])))),
            transfer in proptest::option::of((pick(&["T1", "T2"]), pick(&["initiated", "accepted", "completed"]), proptest::option::of(pick(&["U1", "U2"])), proptest::option::of(pick(&["Q1", "Q2"])))),
            recording_people in proptest::option::of((pick(&["R1", "R2"]), proptest::option::of(pick(&["U1", "U3"])), proptest::option::of(pick(&["+1", "+3"])), proptest::option::of(pick(&["automatic", "on_demand"])))),
            workspace in proptest::option::of((pick(&["U1", "U2"]), 0i64..3, pick(&["a", "b"]), 0u64..2, pick(&["", "x", "y"]), proptest::option::of(0i64..3))),
        ) -> Observation {
            let mut o = Observation::new("E", event, event_ts, source);
            o.channel = channel;
            o.start_time = start_time;
            o.end_time = end_time;
            o.queues.extend(queue.map(|(cc_queue_id, queue_name)| QueueRef { cc_queue_id, queue_name }));
            o.agents.extend(agent.map(|(user_id, display_name)| AgentRef { user_id, display_name }));
            o.consumers.extend(consumer.map(|(consumer_id, consumer_number)| ConsumerRef { consumer_id, consumer_number, consumer_display_name: None }));
            o.notes.extend(note.map(|(note_id, note, last_modified_time)| NoteFact { note_id, note, user_id: None, last_modified_time }));
            o.dispositions.extend(disposition.map(|(disposition_id, disposition_name)| DispositionFact { disposition_id, disposition_name }));
            o.recordings.extend(recording.map(|(recording_id, recording_end_time, download_url, deleted)| RecordingFact {
                recording_id, recording_end_time, download_url, deleted, ..Default::default()
            }));
            o.transcripts.extend(transcript.map(|(kind, source_id, transcript_url)| TranscriptFact { kind, source_id, transcript_url, completed_time: None }));
            o.voicemails.extend(voicemail.map(|(message_id, status)| VoicemailFact { message_id, status, ..Default::default() }));
            o.flows.extend(flow.map(|(flow_id, flow_name)| FlowRef { flow_id, flow_name }));
            o.transfers.extend(transfer.map(|(transfer_key, status, to_user_id, to_cc_queue_id)| TransferFact {
                transfer_key, status, to_user_id, to_cc_queue_id, ..Default::default()
            }));
            o.workspaces.extend(workspace.map(|(user_id, ts, device, rev, notes, end_time)| WorkspaceFact {
                user_id,
                version: (ts, device, rev),
                notes,
                end_time,
                ..Default::default()
            }));
            o.recordings.extend(recording_people.map(|(recording_id, user, number, recording_type)| RecordingFact {
                recording_id,
                recording_type,
                users: user.into_iter().map(|user_id| AgentRef { user_id, display_name: None }).collect(),
                consumers: number.into_iter().map(|n| ConsumerRef { consumer_id: None, consumer_number: Some(n), consumer_display_name: None }).collect(),
                ..Default::default()
            }));
            o
        }
    }

    fn fold(observations: &[Observation]) -> EngagementState {
        let mut state = EngagementState::empty("E");
        for o in observations {
            state.apply(o);
        }
        state
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any permutation and repetition of an event set gives the same record.
        #[test]
        fn merge_is_order_and_repetition_insensitive(
            observations in proptest::collection::vec(observation(), 1..12),
            shuffled_seed in any::<u64>(),
            repeats in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let expected = fold(&observations);
            let mut replayed = observations.clone();
            for r in &repeats {
                replayed.push(observations[r.index(observations.len())].clone());
            }
            // Deterministic shuffle from the seed.
            let mut rng = shuffled_seed;
            for i in (1..replayed.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                replayed.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let actual = fold(&replayed);
            prop_assert_eq!(&actual, &expected);
            prop_assert_eq!(actual.to_record(), expected.to_record());

            // Merging partial states in any grouping is the same too (what batches and rebuilds do).
            let (left, right) = replayed.split_at(replayed.len() / 2);
            let mut grouped = fold(right);
            grouped.join(&fold(left));
            prop_assert_eq!(&grouped, &expected);

            // And the stored form round-trips.
            let json = serde_json::to_string(&expected).unwrap();
            prop_assert_eq!(&serde_json::from_str::<EngagementState>(&json).unwrap(), &expected);
        }
    }

    #[test]
    fn newest_note_edit_wins_even_when_an_old_version_is_refired_later() {
        let mut edit = Observation::new(
            "E",
            "contact_center.engagement_note_added",
            100,
            EventSource::Webhook,
        );
        edit.notes.push(NoteFact {
            note_id: "N".into(),
            note: Some("new".into()),
            user_id: None,
            last_modified_time: Some(90),
        });
        let mut stale = Observation::new(
            "E",
            "contact_center.engagement_note_added",
            200,
            EventSource::Webhook,
        );
        stale.notes.push(NoteFact {
            note_id: "N".into(),
            note: Some("old".into()),
            user_id: None,
            last_modified_time: Some(50),
        });
        let record = fold(&[edit, stale]).to_record();
        assert_eq!(record.notes.len(), 1);
        assert_eq!(record.notes[0].note.as_deref(), Some("new"));
        assert_eq!(record.timeline.len(), 2);
    }

    #[test]
    fn a_consumer_known_by_number_joins_the_one_with_an_id() {
        let mut webhook = Observation::new(
            "E",
            "contact_center.engagement_started",
            10,
            EventSource::Webhook,
        );
        webhook.consumers.push(ConsumerRef {
            consumer_id: Some("C1".into()),
            consumer_number: Some("+15550100".into()),
            consumer_display_name: Some("Jo".into()),
        });
        let mut polled = Observation::new("E", "poll.recording", 20, EventSource::Poll);
        polled.consumers.push(ConsumerRef {
            consumer_id: None,
            consumer_number: Some("+15550100".into()),
            consumer_display_name: Some("Jo Smith".into()),
        });
        polled.consumers.push(ConsumerRef {
            consumer_id: None,
            consumer_number: Some("+15550199".into()),
            consumer_display_name: None,
        });
        for order in [[&webhook, &polled], [&polled, &webhook]] {
            let record = fold(&order.map(Clone::clone)).to_record();
            let consumers: Vec<_> = record
                .consumers
                .iter()
                .map(|c| {
                    (
                        c.consumer_id.as_deref(),
                        c.consumer_number.as_deref(),
                        c.consumer_display_name.as_deref(),
                    )
                })
                .collect();
            assert_eq!(
                consumers,
                [
                    (Some("C1"), Some("+15550100"), Some("Jo Smith")),
                    (None, Some("+15550199"), None)
                ]
            );
        }
    }

    #[test]
    fn a_disposition_known_by_name_gives_way_to_one_with_an_id() {
        let mut flow = Observation::new("E", "flow.disposition_saved", 10, EventSource::Flow);
        flow.dispositions
            .extend(DispositionFact::new(None, Some("Resolved".into())));
        let only_flow = fold(&[flow.clone()]).to_record();
        assert_eq!(only_flow.dispositions.len(), 1);
        assert_eq!(only_flow.dispositions[0].disposition_id, "name:Resolved");
        let mut zoom = Observation::new("E", "poll.engagement", 20, EventSource::Poll);
        zoom.dispositions.extend(DispositionFact::new(
            Some("D1".into()),
            Some("Resolved".into()),
        ));
        let both = fold(&[flow, zoom]).to_record();
        let ids: Vec<_> = both
            .dispositions
            .iter()
            .map(|d| d.disposition_id.as_str())
            .collect();
        assert_eq!(ids, ["D1"]);
    }

    #[test]
    fn transcripts_are_archived_once_known_to_exist() {
        let mut completed = Observation::new(
            "E",
            "contact_center.recording_completed",
            10,
            EventSource::Webhook,
        );
        completed.recordings.push(RecordingFact {
            recording_id: "R".into(),
            download_url: Some("https://z/rec/R".into()),
            transcript_url: Some("https://z/tr/R".into()),
            ..Default::default()
        });
        let kinds = |s: &EngagementState| {
            s.media_sources()
                .into_iter()
                .map(|m| m.kind)
                .collect::<Vec<_>>()
        };
        let mut state = fold(&[completed.clone()]);
        // The payload names a transcript URL whether or not a transcript will ever exist.
        assert_eq!(kinds(&state), vec![MediaKind::Recording]);
        let mut transcribed = Observation::new(
            "E",
            "contact_center.recording_transcript_completed",
            20,
            EventSource::Webhook,
        );
        transcribed.transcripts.push(TranscriptFact {
            kind: TranscriptKind::Recording,
            source_id: "R".into(),
            transcript_url: Some("https://z/tr/R".into()),
            completed_time: Some(20),
        });
        state.apply(&transcribed);
        assert_eq!(
            kinds(&state),
            vec![MediaKind::Recording, MediaKind::RecordingTranscript]
        );
        // Zoom's REST listing carrying the URL also says it exists.
        let mut polled = completed;
        polled.source = EventSource::Poll;
        assert_eq!(
            kinds(&fold(&[polled])),
            vec![MediaKind::Recording, MediaKind::RecordingTranscript]
        );
    }

    #[test]
    fn agent_workspaces_keep_each_agents_greatest_finalized_version() {
        let ws = |user: &str, ts: i64, notes: &str| {
            let mut o =
                Observation::new("E", "zoomapp.workspace_finalized", 5, EventSource::ZoomApp);
            o.workspaces.push(WorkspaceFact {
                user_id: user.into(),
                version: (ts, "d".into(), 1),
                notes: notes.into(),
                end_time: Some(1_795_251_700_000),
                ..Default::default()
            });
            o
        };
        let none = fold(&[Observation::new("E", "x", 1, EventSource::Webhook)]);
        let v = serde_json::to_value(none.to_record()).unwrap();
        assert!(
            v.get("agent_workspaces").is_none(),
            "absent when no agent wrote one"
        );
        for order in [
            [
                ws("U1", 2, "later"),
                ws("U1", 1, "earlier"),
                ws("U2", 1, "other"),
            ],
            [
                ws("U2", 1, "other"),
                ws("U1", 1, "earlier"),
                ws("U1", 2, "later"),
            ],
        ] {
            let record = fold(&order).to_record();
            let notes: Vec<(&str, &str)> = record
                .agent_workspaces
                .iter()
                .map(|w| (w.user_id.as_str(), w.notes.as_str()))
                .collect();
            assert_eq!(notes, [("U1", "later"), ("U2", "other")]);
            assert_eq!(
                record.agent_workspaces[0].end_time.as_deref(),
                Some("2026-11-21T09:01:40Z")
            );
        }
    }

    #[test]
    fn record_shape_matches_the_design() {
        let mut started = Observation::new(
            "W_1",
            "contact_center.engagement_started",
            1_795_251_600_000,
            EventSource::Webhook,
        );
        started.channel = Some("voice".into());
        started.direction = Some("inbound".into());
        started.start_time = Some(1_795_251_600_000);
        let mut ended = Observation::new(
            "W_1",
            "contact_center.engagement_ended",
            1_795_252_032_000,
            EventSource::Webhook,
        );
        ended.end_time = Some(1_795_252_032_000);
        let mut state = EngagementState::empty("W_1");
        state.apply(&started);
        state.apply(&ended);
        let v = serde_json::to_value(state.to_record()).unwrap();
        assert_eq!(v["start_time"], "2026-11-21T09:00:00Z");
        assert_eq!(v["end_time"], "2026-11-21T09:07:12Z");
        assert_eq!(v["duration"], 432);
        for field in [
            "queues",
            "agents",
            "consumers",
            "notes",
            "dispositions",
            "recordings",
            "transcripts",
            "voicemails",
        ] {
            assert!(v[field].as_array().is_some_and(|a| a.is_empty()), "{field}");
        }
        assert_eq!(
            v["timeline"][0],
            serde_json::json!({"event": "contact_center.engagement_started", "event_ts": 1_795_251_600_000i64, "source": "webhook"})
        );
        assert_eq!(v["sources"], serde_json::json!(["webhook"]));
    }
}
