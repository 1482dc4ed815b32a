//! The REST view of a scenario: what Zoom's list, get and download endpoints return, built once at start-up from
//! the ground truth (membership: which queues, agents, notes, ...), the webhook events (what the truth does not
//! keep: names, channel sources, flows, note authors and times, recording owners, when each artefact came to exist),
//! the directory (agents' e-mail addresses, consumers) and what Zoom knows but no webhook carries (voicemail
//! durations, [`Scenario::voicemail_durations`]).
//!
//! Field names and types are those of reference §1 (list engagements §1.1, get engagement §1.2, recordings §1.5,
//! inbox messages §1.6 with its `cci_queue_id` sic, notes §1.7). The webhooks carry no download, playback or
//! transcript URLs for recordings and voicemails, no voicemail type, duration or creation time: every URL is formed
//! from the scenario's REST base exactly as Zoom forms it ([`crate::urls`]), `message_type` is `voicemail` (the
//! only value), `created_at` is the `date_time_ms` of `inbox_message_received`.
//!
//! Transcripts follow one rule everywhere: a `transcript_url` (and a downloadable transcript) exists only if the
//! scenario fired the matching `*_transcript_completed` event. That is how a REST client learns a transcript exists,
//! and the ground truth's `transcripts` set is built the same way. ❓ Reference §1.1 documents an engagement's
//! `transcript_url` for messaging engagements only; the view also gives e-mail engagements theirs (the e-mail
//! messages URL their `engagement_email_transcript_completed` announced), so that a REST-only client learns of
//! them too.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use serde_json::{json, Map, Value};

use crate::generator::{Directory, Scenario, SimEvent, TruthEngagement};
use crate::{iso_time, urls};

/// Content types of the files. ❓ Zoom does not document them; the recording ones are the obvious guesses.
const VOICE_CONTENT_TYPE: &str = "audio/mpeg";
const VIDEO_CONTENT_TYPE: &str = "video/mp4";
const TRANSCRIPT_CONTENT_TYPE: &str = "text/vtt";
/// The e-mail "transcript" is the engagement's e-mail messages, as the messages API returns them.
pub(super) const JSON_CONTENT_TYPE: &str = "application/json";

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
    /// `automatic` | `on_demand`.
    pub(super) recording_type: String,
    /// `queue` | `user`.
    pub(super) owner_type: String,
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
    /// A messaging engagement's transcript.
    EngagementTranscript,
    /// An e-mail engagement's messages (JSON), its "transcript".
    EmailMessages,
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
            FileKind::EmailMessages => "email_messages",
        }
    }

    pub(super) fn is_transcript(self) -> bool {
        matches!(
            self,
            FileKind::RecordingTranscript
                | FileKind::VoicemailTranscript
                | FileKind::EngagementTranscript
                | FileKind::EmailMessages
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
    /// When that media or conversation began (epoch ms).
    pub(super) from_ms: i64,
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

/// An ISO time field of `object` as epoch ms.
fn time(object: &Value, key: &str) -> Option<i64> {
    text(object, key).and_then(|t| iso_ms(&t))
}

/// Whole seconds from `from` to `to` (0 when reversed).
fn seconds(from: i64, to: i64) -> i64 {
    (to - from).max(0) / 1000
}

struct Names<'a>(&'a Directory);

/// What every REST item is built with: the directory, the REST base of the URLs, the completed transcripts.
struct Sources<'a> {
    names: Names<'a>,
    base: &'a str,
    /// `(kind, subject id)` → the first completion of that transcript.
    transcripts: HashMap<(&'static str, String), Transcript>,
}

impl Names<'_> {
    fn agent(&self, id: &str) -> Option<(String, String)> {
        self.0
            .agent(id)
            .map(|a| (a.display_name.clone(), a.email.clone()))
    }

    fn queue(&self, id: &str) -> Option<String> {
        self.0
            .queues
            .iter()
            .find(|q| q.cc_queue_id == id)
            .map(|q| q.queue_name.clone())
    }
}

impl View {
    pub(super) fn build(scenario: &Scenario) -> View {
        let names = Names(&scenario.directory);
        let base = scenario.api_base.as_str();
        let mut by_engagement: HashMap<&str, Vec<&SimEvent>> = HashMap::new();
        // (kind, subject id) → the first completion of that transcript, its URL formed as Zoom forms it.
        let mut transcripts: HashMap<(&'static str, String), Transcript> = HashMap::new();
        let mut voicemail_durations: HashMap<String, i64> = HashMap::new();
        for event in &scenario.events {
            if let Some(id) = event.engagement_id() {
                by_engagement.entry(id).or_default().push(event);
            }
            let Some(object) = event.object() else {
                continue;
            };
            let engagement = event.engagement_id().map(str::to_owned);
            if short_name(event) == "voicemail_transcript_completed" {
                if let (Some(id), Some(seconds)) = (
                    text(object, "message_id"),
                    object.get("message_duration").and_then(Value::as_i64),
                ) {
                    voicemail_durations.entry(id).or_insert(seconds);
                }
            }
            let subject = match short_name(event) {
                "recording_transcript_completed" => text(object, "recording_id").map(|id| {
                    let channel = text(object, "channel").unwrap_or_default();
                    let url = urls::recording_transcript(base, &id, &channel);
                    (("recording", id), url)
                }),
                "voicemail_transcript_completed" => text(object, "message_id").map(|id| {
                    let url = urls::voicemail_transcript(base, &id);
                    (("voicemail", id), url)
                }),
                "engagement_messaging_transcript_completed" => engagement.map(|id| {
                    let url = urls::engagement_transcript(base, &id);
                    (("messaging", id), url)
                }),
                "engagement_email_transcript_completed" => engagement.map(|id| {
                    let url = urls::email_transcript(base, &id);
                    (("email", id), url)
                }),
                _ => None,
            };
            if let Some((subject, url)) = subject {
                transcripts.entry(subject).or_insert_with(|| Transcript {
                    ready_ms: event.event_ts,
                    url,
                });
            }
        }

        let sources = Sources {
            names,
            base,
            transcripts,
        };
        let mut view = View::default();
        let mut contexts: HashMap<String, Context> = HashMap::new();
        for truth in &scenario.truth.engagements {
            let events = by_engagement
                .get(truth.engagement_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let built = engagement(truth, events, &sources.names, &sources.transcripts);
            contexts.insert(truth.engagement_id.clone(), built.context);
            view.notes.extend(built.notes);
            if let Some(t) = &built.engagement.transcript {
                let kind = if truth.channel == "email" {
                    (FileKind::EmailMessages, JSON_CONTENT_TYPE)
                } else {
                    (FileKind::EngagementTranscript, TRANSCRIPT_CONTENT_TYPE)
                };
                view.files.insert(
                    (kind.0, truth.engagement_id.clone()),
                    FileInfo {
                        content_type: kind.1,
                        ready_ms: t.ready_ms,
                        duration_s: seconds(truth.start_time_ms, truth.end_time_ms),
                        from_ms: truth.start_time_ms,
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
                        view.add_recording(event, object, id, &context, &sources);
                    }
                }
                "inbox_message_received" => {
                    let Some(id) = text(object, "message_id") else {
                        continue;
                    };
                    if seen.insert(("voicemail", id.clone())) {
                        // What Zoom knows of the audio; else what a transcript event said.
                        let duration_s = scenario
                            .voicemail_durations
                            .get(&id)
                            .or_else(|| voicemail_durations.get(&id))
                            .copied();
                        let message = Message {
                            event,
                            object,
                            id,
                            duration_s,
                        };
                        view.add_message(message, &context, &sources);
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
        sources: &Sources<'_>,
    ) {
        let Sources {
            names,
            base,
            transcripts,
        } = sources;
        // To the second, as REST reports (and filters on) them.
        let second = |ms: i64| ms.div_euclid(1000) * 1000;
        let start_ms = second(time(object, "recording_start_time_ms").unwrap_or(event.event_ts));
        let end_ms = second(time(object, "recording_end_time_ms").unwrap_or(start_ms));
        let duration = object
            .get("recording_duration")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| seconds(start_ms, end_ms));
        let channel = text(object, "channel").unwrap_or_else(|| "voice".to_owned());
        // The recorded agent: the first of `users[]`.
        let user_id = object
            .get("users")
            .and_then(Value::as_array)
            .and_then(|users| users.first())
            .and_then(|u| text(u, "user_id"))
            .unwrap_or_default();
        let (display_name, user_email) = names.agent(&user_id).unwrap_or_default();
        let queue_id = text(object, "cc_queue_id").unwrap_or_default();
        let queue_name = text(object, "queue_name")
            .or_else(|| names.queue(&queue_id))
            .unwrap_or_default();
        let recording_type = text(object, "recording_type").unwrap_or_else(|| "automatic".into());
        let owner_type = text(object, "owner_type").unwrap_or_else(|| "queue".into());
        // `consumers[]` of the webhook in REST's spelling (`consumer_name`); the engagement's when it has none.
        let webhook_consumers: Vec<Map<String, Value>> = object
            .get("consumers")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(|c| c.as_object().cloned()).collect())
            .unwrap_or_default();
        let source = if webhook_consumers.is_empty() {
            &context.consumers
        } else {
            &webhook_consumers
        };
        let consumers: Vec<Map<String, Value>> = source
            .iter()
            .map(|c| {
                let mut out = Map::new();
                if let Some(name) = c.get("consumer_display_name") {
                    out.insert("consumer_name".to_owned(), name.clone());
                }
                if let Some(number) = c.get("consumer_number") {
                    out.insert("consumer_number".to_owned(), number.clone());
                }
                out
            })
            .collect();
        let engagement_id = event.engagement_id().unwrap_or_default().to_owned();
        let mut item = json!({
            "recording_id": id,
            "cc_queue_id": queue_id,
            "queue_name": queue_name,
            "recording_duration": duration,
            "download_url": urls::recording_download(base, &id, &channel),
            "playback_url": urls::recording_playback(base, &id, &channel),
            "recording_start_time": iso_time(start_ms),
            "recording_end_time": iso_time(end_ms),
            "user_id": user_id,
            "display_name": display_name,
            "user_email": user_email,
            "recording_type": recording_type,
            "channel": channel,
            "direction": context.direction,
            "owner_id": text(object, "owner_id").unwrap_or_default(),
            "owner_name": text(object, "owner_name").unwrap_or_default(),
            "owner_type": owner_type,
            "engagement_id": engagement_id,
            "flow_name": text(object, "flow_name").unwrap_or_else(|| context.flow_name.clone()),
            "flow_id": text(object, "flow_id").unwrap_or_else(|| context.flow_id.clone()),
            "consumers": consumers,
        });
        // The deprecated top-level spellings of the first consumer, still sent (reference §1.5).
        if let (Value::Object(fields), Some(first)) = (&mut item, consumers.first()) {
            for (key, value) in first {
                fields.insert(key.clone(), value.clone());
            }
        }
        let transcript = transcripts.get(&("recording", id.clone())).cloned();
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
                from_ms: start_ms,
            },
        );
        if let Some(t) = &transcript {
            self.files.insert(
                (FileKind::RecordingTranscript, id.clone()),
                FileInfo {
                    content_type: TRANSCRIPT_CONTENT_TYPE,
                    ready_ms: t.ready_ms,
                    duration_s: duration,
                    from_ms: start_ms,
                },
            );
        }
        self.recordings.push(RestRecording {
            id,
            engagement_id,
            start_ms,
            end_ms,
            channel,
            recording_type,
            owner_type,
            ready_ms: event.event_ts,
            transcript,
            item,
        });
    }

    fn add_message(&mut self, message: Message<'_>, context: &Context, sources: &Sources<'_>) {
        let Sources {
            names: Names(directory),
            base,
            transcripts,
        } = sources;
        let Message {
            event,
            object,
            id,
            duration_s,
        } = message;
        // Created when it was received, to the second as REST gives times.
        let created_ms = time(object, "date_time_ms")
            .unwrap_or(event.event_ts)
            .div_euclid(1000)
            * 1000;
        let transcript = transcripts.get(&("voicemail", id.clone())).cloned();
        let duration_s = duration_s.unwrap_or(0);
        let queue_id = text(object, "cc_queue_id").unwrap_or_default();
        let queue_name = text(object, "queue_name")
            .or_else(|| {
                directory
                    .queues
                    .iter()
                    .find(|q| q.cc_queue_id == queue_id)
                    .map(|q| q.queue_name.clone())
            })
            .unwrap_or_default();
        let consumer_number = text(object, "consumer_number");
        // The consumer: the engagement's (its events carry the id and name), else the directory's by number.
        let known = consumer_number
            .as_deref()
            .and_then(|n| directory.consumer_by_number(n));
        let engagement_consumer = context.consumers.first();
        let consumer_field = |key: &str, fallback: Option<&String>| {
            engagement_consumer
                .and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| fallback.cloned())
                .unwrap_or_default()
        };
        let consumer_id = consumer_field("consumer_id", known.map(|c| &c.consumer_id));
        let consumer_display_name = consumer_field(
            "consumer_display_name",
            known.map(|c| &c.consumer_display_name),
        );
        let engagement_id = event.engagement_id().unwrap_or_default().to_owned();
        let inbox_id = text(object, "inbox_id").unwrap_or_default();
        let flow_id = text(object, "flow_id").unwrap_or_else(|| context.flow_id.clone());
        let item = json!({
            "message_id": id,
            "inbox_id": inbox_id,
            "inbox_name": text(object, "inbox_name").unwrap_or_default(),
            "engagement_id": engagement_id,
            "created_at": iso_time(created_ms),
            "flow_id": flow_id,
            "flow_name": text(object, "flow_name").unwrap_or_else(|| context.flow_name.clone()),
            // Sic: this endpoint's spec spells the queue id `cci_queue_id` (reference §1.6).
            "cci_queue_id": queue_id,
            "queue_name": queue_name,
            // The only value the spec knows.
            "message_type": "voicemail",
            "download_url": urls::voicemail_download(base, &id),
            "playback_url": urls::voicemail_playback(base, &id),
            "message_duration": duration_s,
            "consumer_number": consumer_number.clone().unwrap_or_default(),
            "consumer_id": consumer_id,
            "consumer_display_name": consumer_display_name,
            "status": "normal",
        });
        self.files.insert(
            (FileKind::Voicemail, id.clone()),
            FileInfo {
                content_type: super::downloads::VOICEMAIL_CONTENT_TYPE,
                ready_ms: event.event_ts,
                duration_s,
                from_ms: created_ms,
            },
        );
        if let Some(t) = &transcript {
            self.files.insert(
                (FileKind::VoicemailTranscript, id.clone()),
                FileInfo {
                    content_type: TRANSCRIPT_CONTENT_TYPE,
                    ready_ms: t.ready_ms,
                    duration_s,
                    from_ms: created_ms,
                },
            );
        }
        self.messages.push(RestMessage {
            id,
            engagement_id,
            inbox_id,
            flow_id,
            consumer_number,
            duration_s,
            created_ms,
            ready_ms: event.event_ts,
            transcript,
            item,
        });
    }
}

/// An `inbox_message_received` and what Zoom knows of its audio.
struct Message<'a> {
    event: &'a SimEvent,
    object: &'a Value,
    id: String,
    /// Seconds, from [`Scenario::voicemail_durations`] or `voicemail_transcript_completed`.
    duration_s: Option<i64>,
}

struct BuiltEngagement {
    engagement: RestEngagement,
    context: Context,
    notes: Vec<RestNote>,
}

/// Pushes `(id, name)` unless `id` is there already (first appearance order).
fn push_named(list: &mut Vec<(String, String)>, id: Option<String>, name: impl FnOnce() -> String) {
    if let Some(id) = id {
        if !list.iter().any(|(known, _)| *known == id) {
            let name = name();
            list.push((id, name));
        }
    }
}

/// One engagement's REST view from its truth and its events (in `event_ts` order).
fn engagement(
    truth: &TruthEngagement,
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
    // For the durations: first offer, first answer, wrap-up time.
    let mut first_offer: Option<i64> = None;
    let mut first_answer: Option<i64> = None;
    let mut wrap_up_started: Option<i64> = None;
    let mut wrap_up_ms = 0i64;
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
        let queue_id = text(object, "cc_queue_id");
        push_named(&mut queues, queue_id.clone(), || {
            text(object, "queue_name")
                .or_else(|| queue_id.as_deref().and_then(|id| names.queue(id)))
                .unwrap_or_default()
        });
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
        let agent_name = |id: &str, key: &str| {
            text(object, key)
                .or_else(|| names.agent(id).map(|(n, _)| n))
                .unwrap_or_default()
        };
        match name {
            "task_reservation_created" => {
                first_offer.get_or_insert(event.event_ts);
            }
            "engagement_user_answered" => {
                first_answer.get_or_insert(event.event_ts);
                let id = text(object, "user_id");
                let key = id.clone().unwrap_or_default();
                push_named(&mut agents, id, || agent_name(&key, "user_display_name"));
            }
            "engagement_transfer_accepted" => {
                transfer_count += 1;
                let id = text(object, "transfer_to_user_id");
                let key = id.clone().unwrap_or_default();
                push_named(&mut agents, id, || {
                    agent_name(&key, "transfer_to_user_display_name")
                });
            }
            "engagement_wrap_up_started" => wrap_up_started = Some(event.event_ts),
            "engagement_wrap_up_ended" => {
                if let Some(from) = wrap_up_started.take() {
                    wrap_up_ms += (event.event_ts - from).max(0);
                }
            }
            "engagement_disposition_added" => {
                let id = text(object, "disposition_id");
                push_named(&mut dispositions, id, || {
                    text(object, "disposition_name").unwrap_or_default()
                });
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
    // it (web chat and e-mail have none).
    for (id, fields) in &mut consumers {
        if let Some(known) = names.0.consumer(id) {
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
    // Every event names the engagement's flow; the directory's flow of its first queue otherwise.
    let (flow_id, flow_name) = flow
        .or_else(|| {
            let (queue, _) = queues.first()?;
            let flow = names.0.flow_of_queue(queue)?;
            Some((flow.flow_id.clone(), flow.flow_name.clone()))
        })
        .unwrap_or_default();
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
            consumer: context.consumers.first(),
        },
        names,
    );
    // ❓ Zoom does not define its durations; here: the flow runs until the engagement is first offered (or
    // answered, or ends), waiting lasts from that offer to the first answer (or the end), talking from the first
    // answer to the end, handling is talking plus wrap-up.
    let (start, end) = (truth.start_time_ms, truth.end_time_ms);
    let flow_end = first_offer.or(first_answer).unwrap_or(end).min(end);
    let waiting = first_offer.map_or(0, |offer| seconds(offer, first_answer.unwrap_or(end)));
    let talk = first_answer.map_or(0, |answer| seconds(answer, end));
    let wrap_up = wrap_up_ms / 1000;
    let item = json!({
        "engagement_id": truth.engagement_id,
        "start_time": iso_time(start),
        "end_time": iso_time(end),
        "duration": seconds(start, end),
        "direction": truth.direction,
        "channels": [{"channel": truth.channel, "channel_source": channel_source}],
        "consumers": consumers.into_iter().map(|(_, f)| Value::Object(f)).collect::<Vec<_>>(),
        // ❓ flow_version: the scenario models no flow versions.
        "flows": [{"flow_id": flow_id, "flow_name": flow_name, "flow_version": "1"}],
        "queues": queues.iter().map(|(id, name)| json!({"cc_queue_id": id, "queue_name": name}))
            .collect::<Vec<_>>(),
        "agents": agents.iter().map(|(id, name)| json!({"user_id": id, "display_name": name}))
            .collect::<Vec<_>>(),
        "talk_duration": talk,
        "flow_duration": seconds(start, flow_end),
        "waiting_duration": waiting,
        "handling_duration": talk + wrap_up,
        "wrap_up_duration": wrap_up,
        "dispositions": dispositions.iter()
            .map(|(id, name)| json!({"disposition_id": id, "disposition_name": name}))
            .collect::<Vec<_>>(),
        "notes": notes.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        "transfer_count": transfer_count,
    });
    BuiltEngagement {
        engagement: RestEngagement {
            id: truth.engagement_id.clone(),
            start_ms: start,
            end_ms: end,
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
    /// `{consumer_id, consumer_display_name, ...}` of the engagement's consumer, for the "Start" row.
    consumer: Option<&'a Map<String, Value>>,
}

/// get-engagement's `events[]` (reference §1.2) from the engagement's webhooks. Only "Agent Ringing" (an offer:
/// `task_reservation_created`) and "Agent Accept" (`engagement_user_answered`) are documented `event_type` values;
/// the others ("Start", "Consumer Accept", "Hold", "Unhold", "Mute", "Unmute", "Transfer", "Wrap Up", "End") are ❓
/// guesses in the same style. A row's `duration` lasts until the next row.
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
                let mut start = row("Start", &queue, None);
                for key in ["consumer_id", "consumer_display_name"] {
                    if let Some(value) = common.consumer.and_then(|c| c.get(key)) {
                        start.insert(key.to_owned(), value.clone());
                    }
                }
                rows.push((ts, start));
            }
            "task_reservation_created" => {
                let offered = current_queue(object, names).or_else(|| queue.clone());
                let user = text(object, "assigned_user_id");
                rows.push((ts, row("Agent Ringing", &offered, user.as_deref())));
            }
            "engagement_user_answered" => {
                queue = current_queue(object, names).or(queue);
                agent = event_user.clone().or(agent);
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
                for key in [
                    "transfer_to_cc_queue_id",
                    "transfer_to_queue_name",
                    "transfer_type",
                ] {
                    if let Some(value) = text(object, key) {
                        transfer.insert(key.to_owned(), json!(value));
                    }
                }
                // The receiving agent is known once the transfer is accepted (the same transfer_to_task_id).
                let task = text(object, "transfer_to_task_id");
                let accepted = events
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| short_name(e) == "engagement_transfer_accepted")
                    .filter_map(|e| e.object())
                    .find(|o| task.is_some() && text(o, "transfer_to_task_id") == task);
                if let Some(target) = accepted {
                    for key in ["transfer_to_user_id", "transfer_to_user_display_name"] {
                        if let Some(value) = text(target, key) {
                            transfer.insert(key.to_owned(), json!(value));
                        }
                    }
                }
                rows.push((ts, transfer));
            }
            "engagement_transfer_accepted" => {
                // Shown as the new agent's ringing and accept; only the queue moves.
                if let Some(id) = text(object, "transfer_to_cc_queue_id") {
                    let name = text(object, "transfer_to_queue_name")
                        .or_else(|| names.queue(&id))
                        .unwrap_or_default();
                    queue = Some((id, name));
                }
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
                if name != "engagement_ended" {
                    queue = current_queue(object, names).or(queue);
                }
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
            row.insert("duration".to_owned(), json!(seconds(ts, next)));
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
            let numbers: BTreeSet<String> =
                ids("consumers", "consumer_number").into_iter().collect();
            assert_eq!(numbers, truth.consumer_numbers);
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
            // The engagement's one flow, as its webhooks name it.
            let flow_id = e.item["flows"][0]["flow_id"].as_str().expect("flow");
            assert!(scenario
                .directory
                .flows
                .iter()
                .any(|f| f.flow_id == flow_id));
            let duration = e.item["duration"].as_i64().expect("duration");
            for key in ["talk_duration", "flow_duration", "waiting_duration"] {
                let part = e.item[key].as_i64().expect(key);
                assert!((0..=duration).contains(&part), "{key}: {}", e.item);
            }
            let wrap_up = e.item["wrap_up_duration"]
                .as_i64()
                .expect("wrap_up_duration");
            assert_eq!(wrap_up > 0, !truth.agent_ids.is_empty(), "{}", e.item);
            assert_eq!(
                e.item["handling_duration"],
                e.item["talk_duration"].as_i64().unwrap_or(0)
                    + e.item["wrap_up_duration"].as_i64().unwrap_or(0)
            );
            assert_eq!(e.item["talk_duration"] != 0, !truth.agent_ids.is_empty());
            // The timeline starts and ends with the engagement and is in time order.
            let types: Vec<&str> = e
                .events
                .iter()
                .filter_map(|r| r["event_type"].as_str())
                .collect();
            assert_eq!(types.first(), Some(&"Start"));
            assert!(types.contains(&"End"));
            assert_eq!(types.contains(&"Agent Accept"), !truth.agent_ids.is_empty());
            if truth.direction == "inbound" && !truth.agent_ids.is_empty() {
                assert!(types.contains(&"Agent Ringing"), "{types:?}");
            }
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

    /// URLs are formed from the REST base as Zoom forms them, and agree with those the webhooks announced.
    #[test]
    fn urls_are_derived_from_the_api_base() {
        let scenario = generate(&GeneratorConfig {
            engagements: 60,
            api_base: "http://sim.test/v2".to_owned(),
            ..GeneratorConfig::default()
        });
        let view = View::build(&scenario);
        for r in &view.recordings {
            let kind = if r.channel == "video" {
                "video"
            } else {
                "voice"
            };
            assert_eq!(
                r.item["download_url"],
                format!(
                    "http://sim.test/v2/contact_center/recording/download/{}?type={kind}",
                    r.id
                )
            );
            assert_eq!(
                r.item["playback_url"],
                format!(
                    "http://sim.test/v2/contact_center/recording/playback/{}?type={kind}",
                    r.id
                )
            );
            assert!(matches!(
                r.item["recording_type"].as_str(),
                Some("automatic" | "on_demand")
            ));
            let owner = if r.recording_type == "automatic" {
                "queue"
            } else {
                "user"
            };
            assert_eq!(r.owner_type, owner);
        }
        assert!(view
            .recordings
            .iter()
            .any(|r| r.recording_type == "on_demand"));
        for m in &view.messages {
            assert_eq!(
                m.item["download_url"],
                format!(
                    "http://sim.test/v2/contact_center/inbox/message/download/{}?type=voicemail",
                    m.id
                )
            );
            assert!(m.duration_s > 0);
            assert_eq!(
                m.item["message_duration"],
                scenario.voicemail_durations[&m.id]
            );
            assert!(m.item["consumer_id"]
                .as_str()
                .is_some_and(|c| !c.is_empty()));
        }
        // The transcript URLs the view serves are the ones the webhooks announced.
        let announced: BTreeSet<String> = scenario
            .events
            .iter()
            .filter(|e| e.event().ends_with("transcript_completed"))
            .filter_map(|e| {
                e.object()?
                    .get("transcript_url")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        let served: BTreeSet<String> = view
            .recordings
            .iter()
            .filter_map(|r| r.transcript.as_ref())
            .chain(view.messages.iter().filter_map(|m| m.transcript.as_ref()))
            .chain(
                view.engagements
                    .iter()
                    .filter_map(|e| e.transcript.as_ref()),
            )
            .map(|t| t.url.clone())
            .collect();
        assert_eq!(served, announced);
    }
}
