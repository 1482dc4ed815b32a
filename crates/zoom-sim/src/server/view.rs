//! The REST view of a scenario: what Zoom's list, get and download endpoints return, built once at start-up from
//! the ground truth (membership: which queues, agents, notes, ...) and the webhook events (what the truth does not
//! keep: names, channel sources, note authors and times, URLs, when each artefact came to exist).
//!
//! Transcripts follow one rule everywhere: a `transcript_url` (and a downloadable transcript) exists only if the
//! scenario fired the matching `*_transcript_completed` event. That is how a REST client learns a transcript exists,
//! and the ground truth's `transcripts` set is built the same way.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};

use super::stable_hash;
use crate::generator::{Directory, Scenario, SimEvent};
use crate::{iso_time, opaque_id};

/// Content types of the files. ❓ Zoom does not document them; the recording ones are the obvious guesses.
const VOICE_CONTENT_TYPE: &str = "audio/mpeg";
const VIDEO_CONTENT_TYPE: &str = "video/mp4";
const TRANSCRIPT_CONTENT_TYPE: &str = "text/vtt";
/// How long an agent's phone rings before an "Agent Accept" in the event timeline (the webhooks carry no ring time).
const RING_MS: i64 = 5_000;

/// A transcript that was completed: since when it exists, and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transcript {
    pub(super) ready_ms: i64,
    pub(super) url: String,
}

/// The REST view of one engagement plus the fields the list filters on.
#[derive(Debug, Clone)]
pub(super) struct RestEngagement {
    pub(super) id: String,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    pub(super) channel: String,
    pub(super) direction: String,
    pub(super) queue_ids: Vec<String>,
    pub(super) agent_ids: Vec<String>,
    pub(super) consumer_numbers: Vec<String>,
    /// Messaging and email engagements whose transcript completed.
    pub(super) transcript: Option<Transcript>,
    /// `events[]` of get-engagement (reference §1.2).
    pub(super) events: Vec<Value>,
    /// The list item without `transcript_url`, field names as reference §1.1.
    pub(super) item: Value,
}

#[derive(Debug, Clone)]
pub(super) struct RestRecording {
    pub(super) id: String,
    pub(super) engagement_id: String,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    pub(super) channel: String,
    /// When `recording_completed` fired.
    pub(super) ready_ms: i64,
    pub(super) transcript: Option<Transcript>,
    /// The item without `transcript_url`, field names as reference §1.5.
    pub(super) item: Value,
}

#[derive(Debug, Clone)]
pub(super) struct RestMessage {
    pub(super) id: String,
    pub(super) engagement_id: String,
    pub(super) inbox_id: String,
    pub(super) flow_id: String,
    pub(super) consumer_number: Option<String>,
    pub(super) duration_s: i64,
    pub(super) created_ms: i64,
    /// When `inbox_message_received` fired.
    pub(super) ready_ms: i64,
    pub(super) transcript: Option<Transcript>,
    /// The item without `transcript_url`, field names as reference §1.6 (`cci_queue_id` sic).
    pub(super) item: Value,
}

#[derive(Debug, Clone)]
pub(super) struct RestNote {
    pub(super) id: String,
    pub(super) engagement_id: String,
    pub(super) modified_ms: i64,
    /// The end of the note's engagement (notes of a hidden engagement are hidden too).
    pub(super) ready_ms: i64,
    /// Field names as reference §1.7.
    pub(super) item: Value,
}

/// What a download URL serves. Download and playback URLs of one recording or voicemail serve the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum FileKind {
    Recording,
    RecordingTranscript,
    Voicemail,
    VoicemailTranscript,
    EngagementTranscript,
}

impl FileKind {
    /// Part of the seed of the file's synthetic bytes.
    pub(super) fn tag(self) -> &'static str {
        match self {
            FileKind::Recording => "recording",
            FileKind::RecordingTranscript => "recording_transcript",
            FileKind::Voicemail => "voicemail",
            FileKind::VoicemailTranscript => "voicemail_transcript",
            FileKind::EngagementTranscript => "engagement_transcript",
        }
    }

    pub(super) fn is_transcript(self) -> bool {
        matches!(
            self,
            FileKind::RecordingTranscript
                | FileKind::VoicemailTranscript
                | FileKind::EngagementTranscript
        )
    }
}

/// `(kind, recording_id | message_id | engagement_id)`.
pub(super) type FileKey = (FileKind, String);

#[derive(Debug, Clone)]
pub(super) struct FileInfo {
    pub(super) content_type: &'static str,
    /// When the event that announced the file fired.
    pub(super) ready_ms: i64,
    /// Seconds of media or conversation the file covers (shapes a transcript's cue times).
    pub(super) duration_s: i64,
}

#[derive(Debug, Default)]
pub(super) struct View {
    /// Sorted by `(start_ms, engagement_id)`, the order Zoom pages in.
    pub(super) engagements: Vec<RestEngagement>,
    index: HashMap<String, usize>,
    /// Sorted by `(start_ms, recording_id)`.
    pub(super) recordings: Vec<RestRecording>,
    /// Sorted by `(created_ms, message_id)`.
    pub(super) messages: Vec<RestMessage>,
    /// Sorted by `(modified_ms, note_id)`.
    pub(super) notes: Vec<RestNote>,
    pub(super) files: HashMap<FileKey, FileInfo>,
}

/// What recordings and voicemails copy from their engagement.
#[derive(Debug, Clone, Default)]
struct Context {
    channel: String,
    direction: String,
    /// `{consumer_id, consumer_display_name, consumer_number?}` in order of appearance.
    consumers: Vec<Map<String, Value>>,
    flow_id: String,
    flow_name: String,
}

fn short_name(event: &SimEvent) -> &str {
    event.event().strip_prefix("contact_center.").unwrap_or("")
}

fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn iso_ms(value: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The scenario has no flows; an engagement enters the flow of its first queue, whose id is derived from the
/// queue's (stable across runs) and whose name follows the queue's.
fn derived_flow(queue_id: &str, queue_name: &str) -> (String, String) {
    let seed = stable_hash(&[b"flow", queue_id.as_bytes()]);
    let id = opaque_id(&mut StdRng::seed_from_u64(seed));
    let name = if queue_name.is_empty() {
        "Main Flow".to_owned()
    } else {
        format!("{queue_name} Flow")
    };
    (id, name)
}

struct Names<'a>(&'a Directory);

impl Names<'_> {
    fn agent(&self, id: &str) -> Option<(String, String)> {
        self.0
            .agents
            .iter()
            .find(|a| a.user_id == id)
            .map(|a| (a.display_name.clone(), a.email.clone()))
    }

    fn queue(&self, id: &str) -> Option<String> {
        self.0
            .queues
            .iter()
            .find(|q| q.cc_queue_id == id)
            .map(|q| q.queue_name.clone())
    }

    fn consumer(&self, id: &str) -> Option<&crate::generator::Consumer> {
        self.0.consumers.iter().find(|c| c.consumer_id == id)
    }
}

impl View {
    pub(super) fn build(scenario: &Scenario) -> View {
        let names = Names(&scenario.directory);
        let mut by_engagement: HashMap<&str, Vec<&SimEvent>> = HashMap::new();
        // (kind, subject id) → the first completion of that transcript.
        let mut transcripts: HashMap<(&'static str, String), Transcript> = HashMap::new();
        for event in &scenario.events {
            if let Some(id) = event.engagement_id() {
                by_engagement.entry(id).or_default().push(event);
            }
            let Some(object) = event.object() else {
                continue;
            };
            let subject = match short_name(event) {
                "recording_transcript_completed" => {
                    text(object, "recording_id").map(|id| ("recording", id))
                }
                "voicemail_transcript_completed" => {
                    text(object, "message_id").map(|id| ("voicemail", id))
                }
                "engagement_messaging_transcript_completed" => {
                    event.engagement_id().map(|id| ("messaging", id.to_owned()))
                }
                "engagement_email_transcript_completed" => {
                    event.engagement_id().map(|id| ("email", id.to_owned()))
                }
                _ => None,
            };
            if let Some(subject) = subject {
                transcripts.entry(subject).or_insert_with(|| Transcript {
                    ready_ms: event.event_ts,
                    url: text(object, "transcript_url").unwrap_or_default(),
                });
            }
        }

        let mut view = View::default();
        let mut contexts: HashMap<String, Context> = HashMap::new();
        for truth in &scenario.truth.engagements {
            let events = by_engagement
                .get(truth.engagement_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let built = engagement(truth, events, &names, &transcripts);
            contexts.insert(truth.engagement_id.clone(), built.context);
            view.notes.extend(built.notes);
            if let Some(t) = &built.engagement.transcript {
                view.files.insert(
                    (FileKind::EngagementTranscript, truth.engagement_id.clone()),
                    FileInfo {
                        content_type: TRANSCRIPT_CONTENT_TYPE,
                        ready_ms: t.ready_ms,
                        duration_s: (truth.end_time_ms - truth.start_time_ms).max(0) / 1000,
                    },
                );
            }
            view.engagements.push(built.engagement);
        }
        view.engagements
            .sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        view.index = view
            .engagements
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        view.notes
            .sort_by(|a, b| (a.modified_ms, &a.id).cmp(&(b.modified_ms, &b.id)));

        let mut seen: HashSet<(&str, String)> = HashSet::new();
        for event in &scenario.events {
            let Some(object) = event.object() else {
                continue;
            };
            let context = event
                .engagement_id()
                .and_then(|id| contexts.get(id))
                .cloned()
                .unwrap_or_default();
            match short_name(event) {
                "recording_completed" => {
                    let Some(id) = text(object, "recording_id") else {
                        continue;
                    };
                    if seen.insert(("recording", id.clone())) {
                        view.add_recording(event, object, id, &context, &names, &transcripts);
                    }
                }
                "inbox_message_received" => {
                    let Some(id) = text(object, "message_id") else {
                        continue;
                    };
                    if seen.insert(("voicemail", id.clone())) {
                        view.add_message(event, object, id, &context, &names, &transcripts);
                    }
                }
                _ => {}
            }
        }
        view.recordings
            .sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        view.messages
            .sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        view
    }

    pub(super) fn engagement(&self, id: &str) -> Option<&RestEngagement> {
        self.index.get(id).and_then(|&i| self.engagements.get(i))
    }

    fn add_recording(
        &mut self,
        event: &SimEvent,
        object: &Value,
        id: String,
        context: &Context,
        names: &Names<'_>,
        transcripts: &HashMap<(&'static str, String), Transcript>,
    ) {
        let ms = |iso_key: &str, ms_key: &str| {
            text(object, iso_key)
                .and_then(|t| iso_ms(&t))
                .or_else(|| object.get(ms_key).and_then(Value::as_i64))
        };
        let start_ms =
            ms("recording_start_time", "recording_start_time_ms").unwrap_or(event.event_ts);
        let end_ms = ms("recording_end_time", "recording_end_time_ms").unwrap_or(start_ms);
        let duration = object
            .get("recording_duration")
            .and_then(Value::as_i64)
            .unwrap_or((end_ms - start_ms).max(0) / 1000);
        let channel = text(object, "channel").unwrap_or_else(|| context.channel.clone());
        let user_id = text(object, "user_id").unwrap_or_default();
        let (display_name, user_email) = names.agent(&user_id).unwrap_or_default();
        let queue_id = text(object, "cc_queue_id").unwrap_or_default();
        let queue_name = text(object, "queue_name")
            .or_else(|| names.queue(&queue_id))
            .unwrap_or_default();
        let consumers: Vec<Value> = context
            .consumers
            .iter()
            .map(|c| {
                let mut out = Map::new();
                if let Some(name) = c.get("consumer_display_name") {
                    out.insert("consumer_name".to_owned(), name.clone());
                }
                if let Some(number) = c.get("consumer_number") {
                    out.insert("consumer_number".to_owned(), number.clone());
                }
                Value::Object(out)
            })
            .collect();
        let engagement_id = event.engagement_id().unwrap_or_default().to_owned();
        let item = json!({
            "recording_id": id,
            "cc_queue_id": queue_id,
            "queue_name": queue_name,
            "recording_duration": duration,
            "download_url": text(object, "download_url").unwrap_or_default(),
            "playback_url": text(object, "playback_url").unwrap_or_default(),
            "recording_start_time": iso_time(start_ms),
            "recording_end_time": iso_time(end_ms),
            "user_id": user_id,
            "display_name": display_name,
            "user_email": user_email,
            // The simulated account records automatically, per queue (reference §1.5 enums).
            "recording_type": "automatic",
            "channel": channel,
            "direction": context.direction,
            "owner_id": queue_id,
            "owner_name": queue_name,
            "owner_type": "queue",
            "engagement_id": engagement_id,
            "flow_name": context.flow_name,
            "flow_id": context.flow_id,
            "consumers": consumers,
        });
        let transcript = transcripts
            .get(&("recording", id.clone()))
            .map(|t| with_fallback_url(t, object));
        let content_type = if channel == "video" {
            VIDEO_CONTENT_TYPE
        } else {
            VOICE_CONTENT_TYPE
        };
        self.files.insert(
            (FileKind::Recording, id.clone()),
            FileInfo {
                content_type,
                ready_ms: event.event_ts,
                duration_s: duration,
            },
        );
        if let Some(t) = &transcript {
            self.files.insert(
                (FileKind::RecordingTranscript, id.clone()),
                FileInfo {
                    content_type: TRANSCRIPT_CONTENT_TYPE,
                    ready_ms: t.ready_ms,
                    duration_s: duration,
                },
            );
        }
        self.recordings.push(RestRecording {
            id,
            engagement_id,
            start_ms,
            end_ms,
            channel,
            ready_ms: event.event_ts,
            transcript,
            item,
        });
    }

    fn add_message(
        &mut self,
        event: &SimEvent,
        object: &Value,
        id: String,
        context: &Context,
        names: &Names<'_>,
        transcripts: &HashMap<(&'static str, String), Transcript>,
    ) {
        let created_ms = text(object, "created_at")
            .and_then(|t| iso_ms(&t))
            .unwrap_or(event.event_ts);
        let duration_s = object
            .get("message_duration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let queue_id = text(object, "cc_queue_id").unwrap_or_default();
        let queue_name = text(object, "queue_name")
            .or_else(|| names.queue(&queue_id))
            .unwrap_or_default();
        let consumer_id = text(object, "consumer_id").unwrap_or_default();
        let known = names.consumer(&consumer_id);
        let consumer_number =
            text(object, "consumer_number").or_else(|| known.map(|c| c.consumer_number.clone()));
        let consumer_display_name = text(object, "consumer_display_name")
            .or_else(|| known.map(|c| c.consumer_display_name.clone()))
            .unwrap_or_default();
        let engagement_id = event.engagement_id().unwrap_or_default().to_owned();
        let inbox_id = text(object, "inbox_id").unwrap_or_default();
        let item = json!({
            "message_id": id,
            "inbox_id": inbox_id,
            "inbox_name": text(object, "inbox_name").unwrap_or_default(),
            "engagement_id": engagement_id,
            "created_at": iso_time(created_ms),
            "flow_id": context.flow_id,
            "flow_name": context.flow_name,
            // Sic: this endpoint's spec spells the queue id `cci_queue_id` (reference §1.6).
            "cci_queue_id": queue_id,
            "queue_name": queue_name,
            "message_type": text(object, "message_type").unwrap_or_else(|| "voicemail".to_owned()),
            "download_url": text(object, "download_url").unwrap_or_default(),
            "playback_url": text(object, "playback_url").unwrap_or_default(),
            "message_duration": duration_s,
            "consumer_number": consumer_number.clone().unwrap_or_default(),
            "consumer_id": consumer_id,
            "consumer_display_name": consumer_display_name,
            "status": "normal",
        });
        let transcript = transcripts
            .get(&("voicemail", id.clone()))
            .map(|t| with_fallback_url(t, object));
        self.files.insert(
            (FileKind::Voicemail, id.clone()),
            FileInfo {
                content_type: super::downloads::VOICEMAIL_CONTENT_TYPE,
                ready_ms: event.event_ts,
                duration_s,
            },
        );
        if let Some(t) = &transcript {
            self.files.insert(
                (FileKind::VoicemailTranscript, id.clone()),
                FileInfo {
                    content_type: TRANSCRIPT_CONTENT_TYPE,
                    ready_ms: t.ready_ms,
                    duration_s,
                },
            );
        }
        self.messages.push(RestMessage {
            id,
            engagement_id,
            inbox_id,
            flow_id: context.flow_id.clone(),
            consumer_number,
            duration_s,
            created_ms,
            ready_ms: event.event_ts,
            transcript,
            item,
        });
    }
}

/// A transcript event without a URL falls back to the one announced with the recording or voicemail.
fn with_fallback_url(transcript: &Transcript, object: &Value) -> Transcript {
    let mut t = transcript.clone();
    if t.url.is_empty() {
        t.url = text(object, "transcript_url").unwrap_or_default();
    }
    t
}

struct BuiltEngagement {
    engagement: RestEngagement,
    context: Context,
    notes: Vec<RestNote>,
}

/// One engagement's REST view from its truth and its events (in `event_ts` order).
fn engagement(
    truth: &crate::generator::TruthEngagement,
    events: &[&SimEvent],
    names: &Names<'_>,
    transcripts: &HashMap<(&'static str, String), Transcript>,
) -> BuiltEngagement {
    let mut channel_source = None;
    let mut flow: Option<(String, String)> = None;
    // Insertion-ordered (first appearance) collections, keyed by id.
    let mut queues: Vec<(String, String)> = Vec::new();
    let mut agents: Vec<(String, String)> = Vec::new();
    let mut consumers: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut dispositions: Vec<(String, String)> = Vec::new();
    let mut notes: Vec<(String, Value)> = Vec::new();
    let mut transfer_count = 0u32;
    for event in events {
        let Some(object) = event.object() else {
            continue;
        };
        let name = short_name(event);
        if channel_source.is_none() {
            channel_source = text(object, "channel_source");
        }
        if flow.is_none() {
            if let (Some(id), Some(name)) = (text(object, "flow_id"), text(object, "flow_name")) {
                flow = Some((id, name));
            }
        }
        if let Some(id) = text(object, "cc_queue_id") {
            if !queues.iter().any(|(q, _)| *q == id) {
                let name = text(object, "queue_name")
                    .or_else(|| names.queue(&id))
                    .unwrap_or_default();
                queues.push((id, name));
            }
        }
        if let Some(id) = text(object, "consumer_id") {
            let at = match consumers.iter().position(|(c, _)| *c == id) {
                Some(at) => at,
                None => {
                    consumers.push((id.clone(), Map::new()));
                    consumers.len() - 1
                }
            };
            if let Some((_, fields)) = consumers.get_mut(at) {
                fields.insert("consumer_id".to_owned(), json!(id));
                for key in ["consumer_display_name", "consumer_number"] {
                    if let Some(value) = text(object, key) {
                        fields.insert(key.to_owned(), json!(value));
                    }
                }
            }
        }
        match name {
            "engagement_user_answered" | "engagement_transfer_accepted" => {
                if let Some(id) = text(object, "user_id") {
                    if !agents.iter().any(|(a, _)| *a == id) {
                        let name = text(object, "display_name")
                            .or_else(|| names.agent(&id).map(|(n, _)| n))
                            .unwrap_or_default();
                        agents.push((id, name));
                    }
                }
                if name == "engagement_transfer_accepted" {
                    transfer_count += 1;
                }
            }
            "engagement_disposition_added" => {
                if let Some(id) = text(object, "disposition_id") {
                    if !dispositions.iter().any(|(d, _)| *d == id) {
                        let name = text(object, "disposition_name").unwrap_or_default();
                        dispositions.push((id, name));
                    }
                }
            }
            "engagement_note_added" => {
                let (Some(id), Some(modified)) =
                    (text(object, "note_id"), text(object, "last_modified_time"))
                else {
                    continue;
                };
                let note = json!({
                    "note_id": id,
                    "note": text(object, "note").unwrap_or_default(),
                    "user_id": text(object, "user_id").unwrap_or_default(),
                    "last_modified_time": modified,
                });
                // The latest `last_modified_time` wins (ties: the later event), as in the ground truth.
                match notes.iter_mut().find(|(n, _)| *n == id) {
                    Some((_, current)) => {
                        let newer = current["last_modified_time"]
                            .as_str()
                            .is_none_or(|seen| modified.as_str() >= seen);
                        if newer {
                            *current = note;
                        }
                    }
                    None => notes.push((id, note)),
                }
            }
            _ => {}
        }
    }
    // Fill in what a consumer's events did not carry from the directory; the number only when the engagement knew
    // it (web chat and email have none).
    for (id, fields) in &mut consumers {
        if let Some(known) = names.consumer(id) {
            fields
                .entry("consumer_display_name")
                .or_insert_with(|| json!(known.consumer_display_name));
            if truth.consumer_numbers.contains(&known.consumer_number) {
                fields
                    .entry("consumer_number")
                    .or_insert_with(|| json!(known.consumer_number));
            }
        }
    }
    let channel_source = channel_source.unwrap_or_else(|| truth.channel.clone());
    let (flow_id, flow_name) = flow.unwrap_or_else(|| {
        let (id, name) = queues.first().cloned().unwrap_or_default();
        derived_flow(&id, &name)
    });
    let consumer_numbers = consumers
        .iter()
        .filter_map(|(_, f)| f.get("consumer_number")?.as_str().map(str::to_owned))
        .chain(truth.consumer_numbers.iter().cloned())
        .collect();
    let transcript = match truth.channel.as_str() {
        "messaging" => transcripts.get(&("messaging", truth.engagement_id.clone())),
        "email" => transcripts.get(&("email", truth.engagement_id.clone())),
        _ => None,
    }
    .cloned();
    let rest_notes = notes
        .iter()
        .filter_map(|(id, n)| {
            let modified_ms = iso_ms(n["last_modified_time"].as_str()?)?;
            let mut item = n.clone();
            if let Value::Object(fields) = &mut item {
                fields.insert("engagement_id".to_owned(), json!(truth.engagement_id));
                fields.insert("channel".to_owned(), json!(truth.channel));
                fields.insert("channel_source".to_owned(), json!(channel_source));
            }
            Some(RestNote {
                id: id.clone(),
                engagement_id: truth.engagement_id.clone(),
                modified_ms,
                ready_ms: truth.end_time_ms,
                item,
            })
        })
        .collect();
    let context = Context {
        channel: truth.channel.clone(),
        direction: truth.direction.clone(),
        consumers: consumers.iter().map(|(_, f)| f.clone()).collect(),
        flow_id: flow_id.clone(),
        flow_name: flow_name.clone(),
    };
    let timeline = timeline(
        events,
        &Timeline {
            channel: &truth.channel,
            channel_source: &channel_source,
            direction: &truth.direction,
            flow_id: &flow_id,
            flow_name: &flow_name,
        },
        names,
    );
    let item = json!({
        "engagement_id": truth.engagement_id,
        "start_time": iso_time(truth.start_time_ms),
        "end_time": iso_time(truth.end_time_ms),
        "duration": (truth.end_time_ms - truth.start_time_ms).max(0) / 1000,
        "direction": truth.direction,
        "channels": [{"channel": truth.channel, "channel_source": channel_source}],
        "consumers": consumers.into_iter().map(|(_, f)| Value::Object(f)).collect::<Vec<_>>(),
        // ❓ flow_version: the scenario models no flow versions.
        "flows": [{"flow_id": flow_id, "flow_name": flow_name, "flow_version": "1"}],
        "queues": queues.iter().map(|(id, name)| json!({"cc_queue_id": id, "queue_name": name}))
            .collect::<Vec<_>>(),
        "agents": agents.iter().map(|(id, name)| json!({"user_id": id, "display_name": name}))
            .collect::<Vec<_>>(),
        "dispositions": dispositions.iter()
            .map(|(id, name)| json!({"disposition_id": id, "disposition_name": name}))
            .collect::<Vec<_>>(),
        "notes": notes.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        "transfer_count": transfer_count,
    });
    BuiltEngagement {
        engagement: RestEngagement {
            id: truth.engagement_id.clone(),
            start_ms: truth.start_time_ms,
            end_ms: truth.end_time_ms,
            channel: truth.channel.clone(),
            direction: truth.direction.clone(),
            queue_ids: queues.into_iter().map(|(id, _)| id).collect(),
            agent_ids: agents.into_iter().map(|(id, _)| id).collect(),
            consumer_numbers,
            transcript,
            events: timeline,
            item,
        },
        context,
        notes: rest_notes,
    }
}

/// The fields every timeline row repeats.
struct Timeline<'a> {
    channel: &'a str,
    channel_source: &'a str,
    direction: &'a str,
    flow_id: &'a str,
    flow_name: &'a str,
}

/// get-engagement's `events[]` (reference §1.2) from the engagement's webhooks. Only "Agent Ringing" and
/// "Agent Accept" are documented `event_type` values; the others ("Start", "Consumer Accept", "Hold", "Unhold",
/// "Mute", "Unmute", "Transfer", "Wrap Up", "End") are ❓ guesses in the same style. A row's `duration` lasts until
/// the next row.
fn timeline(events: &[&SimEvent], common: &Timeline<'_>, names: &Names<'_>) -> Vec<Value> {
    let mut rows: Vec<(i64, Map<String, Value>)> = Vec::new();
    let mut queue: Option<(String, String)> = None;
    let mut agent: Option<String> = None;
    for (i, event) in events.iter().enumerate() {
        let Some(object) = event.object() else {
            continue;
        };
        let name = short_name(event);
        let ts = event.event_ts;
        let row = |event_type: &str, queue: &Option<(String, String)>, user: Option<&str>| {
            let mut row = Map::new();
            row.insert("start_time".to_owned(), json!(iso_time(ts)));
            row.insert("event_type".to_owned(), json!(event_type));
            row.insert("channel".to_owned(), json!(common.channel));
            row.insert("channel_source".to_owned(), json!(common.channel_source));
            row.insert("direction".to_owned(), json!(common.direction));
            row.insert("flow_id".to_owned(), json!(common.flow_id));
            row.insert("flow_name".to_owned(), json!(common.flow_name));
            if let Some((id, name)) = queue {
                row.insert("cc_queue_id".to_owned(), json!(id));
                row.insert("queue_name".to_owned(), json!(name));
            }
            if let Some(user) = user {
                row.insert("user_id".to_owned(), json!(user));
                let display = names.agent(user).map(|(n, _)| n).unwrap_or_default();
                row.insert("user_display_name".to_owned(), json!(display));
            }
            row
        };
        let event_user = text(object, "user_id");
        match name {
            "engagement_started" => {
                queue = current_queue(object, names).or(queue);
                let mut start = row("Start", &queue, None);
                for key in ["consumer_id", "consumer_display_name"] {
                    if let Some(value) = text(object, key) {
                        start.insert(key.to_owned(), json!(value));
                    }
                }
                rows.push((ts, start));
            }
            "engagement_user_answered" => {
                queue = current_queue(object, names).or(queue);
                agent = event_user.clone().or(agent);
                let ring_from = rows.last().map_or(ts, |(t, _)| (*t).max(ts - RING_MS));
                let mut ringing = row("Agent Ringing", &queue, agent.as_deref());
                ringing.insert("start_time".to_owned(), json!(iso_time(ring_from)));
                rows.push((ring_from, ringing));
                let mut accept = row("Agent Accept", &queue, agent.as_deref());
                accept.insert("accept_type".to_owned(), json!("manual"));
                rows.push((ts, accept));
            }
            "engagement_transfer_initiated" => {
                let mut transfer = row(
                    "Transfer",
                    &queue,
                    event_user.as_deref().or(agent.as_deref()),
                );
                let target = events
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .find(|e| short_name(e) == "engagement_transfer_accepted")
                    .and_then(|e| e.object());
                if let Some(target) = target {
                    for (from, to) in [
                        ("user_id", "transfer_to_user_id"),
                        ("display_name", "transfer_to_user_display_name"),
                        ("cc_queue_id", "transfer_to_cc_queue_id"),
                        ("queue_name", "transfer_to_queue_name"),
                    ] {
                        if let Some(value) = text(target, from) {
                            transfer.insert(to.to_owned(), json!(value));
                        }
                    }
                }
                rows.push((ts, transfer));
            }
            "engagement_transfer_accepted" => {
                // Shown as the new agent's ringing and accept (its `engagement_user_answered`); only the queue moves.
                queue = current_queue(object, names).or(queue);
            }
            "engagement_consumer_answered"
            | "engagement_user_hold"
            | "engagement_user_unhold"
            | "engagement_user_muted"
            | "engagement_user_unmuted"
            | "engagement_wrap_up_started"
            | "engagement_ended" => {
                let event_type = match name {
                    "engagement_consumer_answered" => "Consumer Accept",
                    "engagement_user_hold" => "Hold",
                    "engagement_user_unhold" => "Unhold",
                    "engagement_user_muted" => "Mute",
                    "engagement_user_unmuted" => "Unmute",
                    "engagement_wrap_up_started" => "Wrap Up",
                    _ => "End",
                };
                let user = event_user.as_deref().or(agent.as_deref());
                rows.push((ts, row(event_type, &queue, user)));
            }
            _ => {}
        }
    }
    rows.sort_by_key(|(ts, _)| *ts);
    let starts: Vec<i64> = rows.iter().map(|(ts, _)| *ts).collect();
    rows.into_iter()
        .enumerate()
        .map(|(i, (ts, mut row))| {
            let next = starts.get(i + 1).copied().unwrap_or(ts);
            row.insert("duration".to_owned(), json!((next - ts).max(0) / 1000));
            Value::Object(row)
        })
        .collect()
}

fn current_queue(object: &Value, names: &Names<'_>) -> Option<(String, String)> {
    let id = text(object, "cc_queue_id")?;
    let name = text(object, "queue_name")
        .or_else(|| names.queue(&id))
        .unwrap_or_default();
    Some((id, name))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::{generate, GeneratorConfig};

    fn scenario(engagements: usize) -> Scenario {
        generate(&GeneratorConfig {
            engagements,
            ..GeneratorConfig::default()
        })
    }

    #[test]
    fn rest_view_matches_the_ground_truth() {
        let scenario = scenario(60);
        let view = View::build(&scenario);
        assert_eq!(view.engagements.len(), scenario.truth.engagements.len());
        assert!(view
            .engagements
            .windows(2)
            .all(|w| (w[0].start_ms, &w[0].id) <= (w[1].start_ms, &w[1].id)));
        for e in &view.engagements {
            let truth = scenario.truth.engagement(&e.id).expect("in the truth");
            assert_eq!(view.engagement(&e.id).map(|v| &v.id), Some(&e.id));
            let ids = |key: &str, field: &str| {
                let mut ids: Vec<String> = e.item[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v[field].as_str().map(str::to_owned))
                    .collect();
                ids.sort();
                ids
            };
            assert_eq!(
                ids("queues", "cc_queue_id"),
                Vec::from_iter(truth.queue_ids.clone())
            );
            assert_eq!(
                ids("agents", "user_id"),
                Vec::from_iter(truth.agent_ids.clone())
            );
            assert_eq!(
                ids("dispositions", "disposition_id"),
                Vec::from_iter(truth.disposition_ids.clone())
            );
            let notes: BTreeMap<String, String> = e.item["notes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    (
                        n["note_id"].as_str().unwrap_or_default().to_owned(),
                        n["note"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(notes, truth.notes);
            assert_eq!(e.item["start_time"], iso_time(truth.start_time_ms));
            assert_eq!(e.item["channels"][0]["channel"], truth.channel.as_str());
            assert!(e.item["flows"][0]["flow_id"].is_string());
            // The timeline starts and ends with the engagement and is in time order.
            let types: Vec<&str> = e
                .events
                .iter()
                .filter_map(|r| r["event_type"].as_str())
                .collect();
            assert_eq!(types.first(), Some(&"Start"));
            assert!(types.contains(&"End"));
            assert_eq!(types.contains(&"Agent Accept"), !truth.agent_ids.is_empty());
            let times: Vec<&str> = e
                .events
                .iter()
                .filter_map(|r| r["start_time"].as_str())
                .collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
        }
        assert!(view
            .engagements
            .iter()
            .any(|e| e.item["transfer_count"] != 0));
        assert!(view.engagements.iter().any(|e| e
            .events
            .iter()
            .any(|r| r["event_type"] == "Transfer" && r["transfer_to_user_id"].is_string())));

        // Recordings, voicemails and transcripts are exactly the truth's.
        let recordings: BTreeSet<&str> = view.recordings.iter().map(|r| r.id.as_str()).collect();
        let truth_recordings: BTreeSet<&str> = scenario
            .truth
            .engagements
            .iter()
            .flat_map(|e| e.recording_ids.iter().map(String::as_str))
            .collect();
        assert_eq!(recordings, truth_recordings);
        let voicemails: BTreeSet<&str> = view.messages.iter().map(|m| m.id.as_str()).collect();
        let truth_voicemails: BTreeSet<&str> = scenario
            .truth
            .engagements
            .iter()
            .flat_map(|e| e.voicemail_ids.iter().map(String::as_str))
            .collect();
        assert_eq!(voicemails, truth_voicemails);
        let mut transcripts = BTreeSet::new();
        for r in &view.recordings {
            if r.transcript.is_some() {
                transcripts.insert(("recording".to_owned(), r.id.clone()));
            }
        }
        for m in &view.messages {
            if m.transcript.is_some() {
                transcripts.insert(("voicemail".to_owned(), m.id.clone()));
            }
        }
        for e in &view.engagements {
            if e.transcript.is_some() {
                transcripts.insert((e.channel.clone(), e.id.clone()));
            }
        }
        let truth_transcripts: BTreeSet<(String, String)> = scenario
            .truth
            .engagements
            .iter()
            .flat_map(|e| e.transcripts.iter().cloned())
            .collect();
        assert_eq!(transcripts, truth_transcripts);
        // One media file per recording and voicemail, one text file per transcript.
        let media = view
            .files
            .keys()
            .filter(|(k, _)| !k.is_transcript())
            .count();
        assert_eq!(media, view.recordings.len() + view.messages.len());
        let texts = view.files.keys().filter(|(k, _)| k.is_transcript()).count();
        assert_eq!(texts, truth_transcripts.len());
        let note_count: usize = scenario
            .truth
            .engagements
            .iter()
            .map(|e| e.notes.len())
            .sum();
        assert_eq!(view.notes.len(), note_count);
    }

    #[test]
    fn derived_flows_are_stable() {
        assert_eq!(derived_flow("q1", "Sales"), derived_flow("q1", "Sales"));
        assert_ne!(derived_flow("q1", "Sales").0, derived_flow("q2", "Sales").0);
        assert_eq!(derived_flow("q1", "Sales").1, "Sales Flow");
    }
}
