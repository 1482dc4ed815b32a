//! Zoom webhook bodies → core observations. The only place that reads Zoom's JSON field names.
//!
//! The field names and their meaning follow Zoom's published Contact Center webhook examples (see
//! `zoom::events`). What is still inferred rather than published is marked ❓ below.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::DateTime;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zoom::events::{ObjectFields, WebhookEnvelope};
use zoom::lenient::FieldError;

use crate::core::activity::{Activity, ActivityKind, AgentIdent};
use crate::core::observation::*;

/// What a verified webhook body turned out to be.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per request and consumed at once
pub enum ParsedWebhook {
    /// `endpoint.url_validation`: answer the challenge, store nothing.
    UrlValidation {
        plain_token: String,
    },
    Event(ParsedEvent),
}

#[derive(Debug, Clone)]
pub struct ParsedEvent {
    pub event_type: String,
    /// When it happened: `event_ts`, else the object's `date_time_ms`, else the fallback the caller gave (the
    /// receive time at ingest, the logged time on re-reads).
    pub event_ts: i64,
    pub engagement_id: Option<String>,
    /// `<event time, 13 digits>:sha256:<hex of the canonical JSON (keys sorted, no whitespace)>`. The hash alone
    /// identifies the event; the time prefix makes keys arrive in index order, so logging a batch touches the
    /// last pages of the dedup index instead of one random page per event. The prefix is the time the body
    /// itself carries (0 when it carries none), so a redelivery maps to the same key.
    pub dedup_key: String,
    /// The key before RFC 8785, where it differs (`core::canonical::digests`).
    pub legacy_dedup_key: Option<String>,
    pub observation: Option<Observation>,
    /// What it says about agents in real time (stream, agent state).
    pub activity: Option<Activity>,
    /// Fields that were present but unreadable; the raw body keeps them (see [`report_field_errors`]).
    pub field_errors: Vec<FieldError>,
}

impl ParsedEvent {
    /// The event-log entry for this event as received from `source`.
    pub fn into_event(
        self,
        source: EventSource,
        raw: bytes::Bytes,
        received_at: i64,
        request_id: Option<String>,
    ) -> crate::store::NewEvent {
        crate::store::NewEvent {
            source,
            dedup_key: self.dedup_key,
            legacy_dedup_key: self.legacy_dedup_key,
            event_type: self.event_type,
            engagement_id: self.engagement_id,
            event_ts: Some(self.event_ts),
            received_at,
            request_id,
            raw,
            observation: self.observation,
            activity: self.activity,
            source_label: None,
            conversation: None,
        }
    }
}

/// Why an authenticated body could not be used. The body is quarantined, not dropped.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not a Zoom webhook envelope: {0}")]
    Envelope(String),
}

/// Parses a webhook body already authenticated by its signature. Only a body that is not JSON, or has no event
/// name, is an error: a field of an unexpected type costs that field (see `ParsedEvent::field_errors`).
///
/// Dedup key: Zoom documents no idempotency key and `x-zm-request-id` is not known to survive retries, so the
/// key is a hash of the whole event in canonical form. A retry (same event, same `event_ts`, same payload)
/// maps to the same key even if Zoom re-serialises it with another key order or spacing; a note re-fired
/// after a transfer has a new `event_ts`, so it is a new event whose note merges by `note_id`.
pub fn parse(
    body: &[u8],
    source: EventSource,
    fallback_ts: i64,
) -> Result<ParsedWebhook, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if value.get("event").and_then(|e| e.as_str()) == Some(zoom::webhook::URL_VALIDATION_EVENT) {
        let req = zoom::webhook::UrlValidationRequest::deserialize(&value)
            .map_err(|e| ParseError::Envelope(format!("url validation: {e}")))?;
        return Ok(ParsedWebhook::UrlValidation {
            plain_token: req.payload.plain_token,
        });
    }
    let envelope =
        WebhookEnvelope::decode(&value).map_err(|e| ParseError::Envelope(e.to_string()))?;
    Ok(ParsedWebhook::Event(from_envelope(
        envelope,
        &value,
        source,
        fallback_ts,
    )))
}

/// Event-log fields and the observation for an envelope; `value` is the same envelope as JSON (for the key).
pub fn from_envelope(
    envelope: WebhookEnvelope,
    value: &serde_json::Value,
    source: EventSource,
    fallback_ts: i64,
) -> ParsedEvent {
    let (digest, legacy_digest) = crate::core::canonical::digests(b"", value);
    let mut field_errors = envelope.field_errors;
    // A time more than a day after the fallback (the receive time at ingest) is a wrong clock or a unit mix-up:
    // it would sort the event first for ever. It is treated like an unreadable time.
    let plausible = |ts: &i64| *ts <= fallback_ts.saturating_add(MAX_FUTURE_MS);
    let mut event_ts_read = envelope.event_ts;
    if let Some(ts) = event_ts_read.filter(|ts| !plausible(ts)) {
        field_errors.push(FieldError {
            field: "event_ts".into(),
            problem: format!("{ts} is more than a day after the event was received"),
        });
        event_ts_read = None;
    }
    let own_ts = event_ts_read.or(envelope.object.date_time.filter(plausible));
    let key = |digest: &str| format!("{:013}:sha256:{digest}", own_ts.unwrap_or(0));
    let dedup_key = key(&digest);
    let legacy_dedup_key = legacy_digest.as_deref().map(key);
    let event_ts = own_ts.unwrap_or(fallback_ts);
    let object = &envelope.object;
    let engagement_id = object.engagement_id.clone();
    let observation = engagement_id
        .as_ref()
        .map(|id| observe(id, &envelope.event, event_ts, object, source));
    let activity = activity(&envelope.event, event_ts, engagement_id.as_deref(), object);
    if event_ts_read.is_none() {
        let used = match own_ts {
            Some(_) => "the object's date_time_ms was used",
            None => "the receive time was used",
        };
        match field_errors.iter_mut().find(|e| e.field == "event_ts") {
            Some(unreadable) => unreadable.problem = format!("{}; {used}", unreadable.problem),
            None => field_errors.push(FieldError {
                field: "event_ts".into(),
                problem: format!("absent; {used}"),
            }),
        }
    }
    ParsedEvent {
        event_type: envelope.event,
        event_ts,
        engagement_id,
        dedup_key,
        legacy_dedup_key,
        observation,
        activity,
        field_errors,
    }
}

/// How far after its receipt an event's own time may be (clocks drift; a day more is a wrong time).
const MAX_FUTURE_MS: i64 = 86_400_000;

/// How many distinct (event, field) pairs are remembered for "log once"; beyond it each is logged again.
const LOGGED_FIELD_ERRORS_CAP: usize = 4096;

/// Counts unreadable fields of an accepted event (`zcc_field_decode_errors_total{event,field}`) and logs each
/// (event, field) pair once per process: the event itself was kept, so one line per kind of defect is enough.
/// Call it where an event is received, not where a logged one is read back.
pub fn report_field_errors(event: &str, errors: &[FieldError]) {
    static LOGGED: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);
    if errors.is_empty() {
        return;
    }
    let label = if zoom::events::is_known_event(event) {
        event.to_string()
    } else {
        "unknown".to_string()
    };
    for e in errors {
        // Array positions are one field for counting (`users[3].user_id` → `users[].user_id`).
        let field = strip_indexes(&e.field);
        metrics::counter!("zcc_field_decode_errors_total", "event" => label.clone(), "field" => field.clone())
            .increment(1);
        let first = {
            let mut logged = LOGGED.lock().unwrap_or_else(|p| p.into_inner());
            let set = logged.get_or_insert_with(HashSet::new);
            if set.len() >= LOGGED_FIELD_ERRORS_CAP {
                set.clear();
            }
            set.insert((label.clone(), field.clone()))
        };
        if first {
            tracing::warn!(
                event = ?event,
                field = ?e.field,
                problem = ?e.problem,
                "a webhook field could not be read; the event was kept without it (logged once per event and field)"
            );
        }
    }
}

fn strip_indexes(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The activity kind of a `contact_center.*` event, if it is one the real-time views follow.
pub fn activity_kind(event: &str) -> Option<ActivityKind> {
    let name = event.strip_prefix(zoom::events::CONTACT_CENTER_PREFIX)?;
    Some(match name {
        "engagement_started" => ActivityKind::Started,
        "task_reservation_created" => ActivityKind::Offered,
        "task_reservation_rejected" | "task_reservation_canceled" | "task_reservation_timeout" => {
            ActivityKind::Declined
        }
        "engagement_user_answered" => ActivityKind::Accepted,
        "engagement_user_hold" => ActivityKind::Held,
        "engagement_user_unhold" => ActivityKind::Resumed,
        "engagement_user_muted" => ActivityKind::Muted,
        "engagement_user_unmuted" => ActivityKind::Unmuted,
        "engagement_transfer_initiated" => ActivityKind::TransferInitiated,
        "engagement_transfer_accepted" => ActivityKind::Transferred,
        "engagement_user_ended" => ActivityKind::Left,
        "engagement_ended" => ActivityKind::Ended,
        "engagement_wrap_up_started" => ActivityKind::WrapUpStarted,
        "engagement_wrap_up_ended" => ActivityKind::WrapUpEnded,
        "engagement_disposition_added" => ActivityKind::DispositionSaved,
        "engagement_note_added" => ActivityKind::NoteAdded,
        "user_login" => ActivityKind::AgentLogin,
        "user_logout" => ActivityKind::AgentLogout,
        "user_status_changed" => ActivityKind::AgentStatusChanged,
        "user_opt_in" => ActivityKind::QueueOptIn,
        "user_opt_out" => ActivityKind::QueueOptOut,
        _ => return None,
    })
}

fn activity(
    event: &str,
    event_ts: i64,
    engagement_id: Option<&str>,
    o: &ObjectFields,
) -> Option<Activity> {
    let kind = activity_kind(event)?;
    if !kind.is_agent_only() && engagement_id.is_none() {
        return None;
    }
    let mut a = Activity::new(kind, event_ts);
    a.engagement_id = engagement_id.map(str::to_string);
    // Whom the event is about: the offered agent of a task reservation (`assigned_user_id`), the receiving
    // agent of an accepted transfer (`transfer_to_user_id`; `user_id` there is the transferring agent), else
    // the event's user.
    let agent = match kind {
        ActivityKind::Offered | ActivityKind::Declined => AgentIdent {
            user_id: o.assigned_user_id.clone().or_else(|| o.user_id.clone()),
            email: None,
            display_name: None,
        },
        ActivityKind::Transferred => AgentIdent {
            user_id: o.transfer_to_user_id.clone(),
            email: None,
            display_name: o.transfer_to_user_display_name.clone(),
        },
        _ => AgentIdent {
            user_id: o.user_id.clone(),
            email: o.user_email.clone(),
            display_name: o.display_name.clone(),
        },
    };
    if agent.key().is_some() {
        a.agent = Some(agent);
    } else if kind.is_agent_only() {
        // An agent event that names no agent tells nothing.
        return None;
    }
    let (queue_id, queue_name) = match kind {
        ActivityKind::Transferred if o.transfer_to_cc_queue_id.is_some() => {
            (&o.transfer_to_cc_queue_id, &o.transfer_to_queue_name)
        }
        _ => (&o.cc_queue_id, &o.queue_name),
    };
    a.queue = queue_id.clone().map(|id| QueueRef {
        cc_queue_id: id,
        queue_name: queue_name.clone(),
    });
    a.channel.clone_from(&o.channel);
    a.direction.clone_from(&o.direction);
    a.consumer_number.clone_from(&o.consumer_number);
    a.status.clone_from(&o.current_status_name);
    a.sub_status.clone_from(&o.current_sub_status_name);
    a.status_id.clone_from(&o.current_status_id);
    a.sub_status_id.clone_from(&o.current_sub_status_id);
    a.previous_status.clone_from(&o.previous_status_name);
    a.previous_sub_status
        .clone_from(&o.previous_sub_status_name);
    a.disposition = o
        .disposition_name
        .clone()
        .or_else(|| o.disposition_id.clone());
    Some(a)
}

pub(crate) fn parse_time(value: Option<&str>) -> Option<i64> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    match DateTime::parse_from_rfc3339(value) {
        Ok(t) => Some(t.timestamp_millis()),
        Err(_) => {
            tracing::debug!(value, "unparseable Zoom timestamp ignored");
            None
        }
    }
}

pub(crate) fn nonempty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).cloned()
}

/// A stable id for an entity that arrived without one (so repeats still merge).
fn derived_id(prefix: &str, parts: &[Option<&str>]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.unwrap_or("").as_bytes());
        h.update([0u8]);
    }
    format!("{prefix}{}", &hex::encode(h.finalize())[..16])
}

fn agent_ref(user_id: &Option<String>, display_name: &Option<String>) -> Option<AgentRef> {
    Some(AgentRef {
        user_id: user_id.clone()?,
        display_name: display_name.clone(),
    })
}

fn consumer_ref(c: &zoom::events::Consumer) -> ConsumerRef {
    ConsumerRef {
        consumer_id: c.consumer_id.clone(),
        consumer_number: c.consumer_number.clone(),
        consumer_display_name: c.consumer_display_name.clone(),
    }
}

/// Events whose `user_id` is an agent working the engagement (supervisors' events name theirs as
/// `monitoring_user_id` / `takeover_user_id`, and the user of `engagement_monitor_*` is the monitored agent).
fn names_an_agent(name: &str) -> bool {
    name.starts_with("engagement_user_")
        || name.starts_with("engagement_transfer_")
        || name.starts_with("engagement_wrap_up_")
        || matches!(
            name,
            "engagement_note_added"
                | "engagement_disposition_added"
                | "engagement_consumer_answered"
                | "engagement_consumer_ended"
                | "engagement_consumer_notified"
                | "engagement_consumer_sent_message"
                | "engagement_consumer_sent_file"
        )
}

fn observe(
    engagement_id: &str,
    event: &str,
    event_ts: i64,
    o: &ObjectFields,
    source: EventSource,
) -> Observation {
    let name = event
        .strip_prefix(zoom::events::CONTACT_CENTER_PREFIX)
        .unwrap_or(event);
    let mut obs = Observation::new(engagement_id, event, event_ts, source);

    let first_channel = o.channels.first();
    obs.channel = o
        .channel
        .clone()
        .or_else(|| first_channel.and_then(|c| c.channel.clone()));
    obs.channel_source = o
        .channel_source
        .clone()
        .or_else(|| first_channel.and_then(|c| c.channel_source.clone()));
    obs.direction.clone_from(&o.direction);

    if let Some(id) = &o.cc_queue_id {
        obs.queues.push(QueueRef {
            cc_queue_id: id.clone(),
            queue_name: o.queue_name.clone(),
        });
    }
    obs.queues.extend(o.queues.iter().filter_map(|q| {
        Some(QueueRef {
            cc_queue_id: q.cc_queue_id.clone()?,
            queue_name: q.queue_name.clone(),
        })
    }));
    let flow = FlowRef {
        flow_id: o.flow_id.clone(),
        flow_name: o.flow_name.clone(),
    };
    if flow.key().is_some() {
        obs.flows.push(flow);
    }

    if names_an_agent(name) {
        obs.agents.extend(agent_ref(&o.user_id, &o.display_name));
    }
    // `users[]` (recording and upgrade events) are the users on the engagement: its agents.
    obs.agents.extend(
        o.agents
            .iter()
            .chain(&o.users)
            .filter_map(|a| agent_ref(&a.user_id, &a.display_name)),
    );

    let flat_consumer = ConsumerRef {
        consumer_id: o.consumer_id.clone(),
        consumer_number: o.consumer_number.clone(),
        consumer_display_name: o.consumer_display_name.clone(),
    };
    if flat_consumer.key().is_some() {
        obs.consumers.push(flat_consumer);
    }
    obs.consumers.extend(o.consumers.iter().map(consumer_ref));

    obs.start_time = o.start_time;
    obs.end_time = o.end_time;
    match name {
        "engagement_started" => obs.start_time = obs.start_time.or(o.date_time).or(Some(event_ts)),
        "engagement_ended" => obs.end_time = obs.end_time.or(o.date_time).or(Some(event_ts)),
        _ => {}
    }

    if let Some(step) = name.strip_prefix("engagement_transfer_") {
        observe_transfer(&mut obs, step, o);
    }

    if name == "engagement_note_added" && (o.note.is_some() || o.note_id.is_some()) {
        obs.notes.push(NoteFact {
            note_id: o.note_id.clone().unwrap_or_else(|| {
                derived_id("derived-", &[o.user_id.as_deref(), o.note.as_deref()])
            }),
            note: o.note.clone(),
            user_id: o.user_id.clone(),
            last_modified_time: o.last_modified_time,
        });
    }
    obs.notes.extend(o.notes.iter().map(|n| NoteFact {
        note_id:
            n.note_id.clone().unwrap_or_else(|| {
                derived_id("derived-", &[n.user_id.as_deref(), n.note.as_deref()])
            }),
        note: n.note.clone(),
        user_id: n.user_id.clone(),
        last_modified_time: n.last_modified_time,
    }));

    if name == "engagement_disposition_added" {
        obs.dispositions.extend(DispositionFact::new(
            o.disposition_id.clone(),
            o.disposition_name.clone(),
        ));
    }
    obs.dispositions
        .extend(o.dispositions.iter().filter_map(|d| {
            DispositionFact::new(d.disposition_id.clone(), d.disposition_name.clone())
        }));

    if name.starts_with("recording_") {
        if let Some(recording_id) = &o.recording_id {
            let transcript_done = name == "recording_transcript_completed";
            let users: Vec<AgentRef> = o
                .users
                .iter()
                .filter_map(|u| agent_ref(&u.user_id, &u.display_name))
                .collect();
            let consumers: Vec<ConsumerRef> = o.consumers.iter().map(consumer_ref).collect();
            obs.recordings.push(RecordingFact {
                recording_id: recording_id.clone(),
                channel: o.channel.clone(),
                recording_start_time: o.recording_start_time,
                recording_end_time: o.recording_end_time,
                recording_duration: o.recording_duration,
                download_url: o.download_url.clone(),
                transcript_url: o.transcript_url.clone(),
                playback_url: o.playback_url.clone(),
                user_id: o.user_id.clone().or_else(|| {
                    (o.owner_type.as_deref() == Some("user"))
                        .then(|| o.owner_id.clone())
                        .flatten()
                }),
                deleted: matches!(name, "recording_deleted" | "recording_permanently_deleted")
                    .then_some(true),
                recording_type: o.recording_type.clone(),
                owner_id: o.owner_id.clone(),
                owner_name: o.owner_name.clone(),
                owner_type: o.owner_type.clone(),
                users,
                consumers,
            });
            if transcript_done {
                obs.transcripts.push(TranscriptFact {
                    kind: TranscriptKind::Recording,
                    source_id: recording_id.clone(),
                    transcript_url: o.transcript_url.clone(),
                    completed_time: Some(event_ts),
                });
            }
        }
    }

    let engagement_transcript = match name {
        "engagement_messaging_transcript_completed" => Some(TranscriptKind::Messaging),
        "engagement_email_transcript_completed" => Some(TranscriptKind::Email),
        _ => None,
    };
    if let Some(kind) = engagement_transcript {
        obs.transcripts.push(TranscriptFact {
            kind,
            source_id: engagement_id.to_string(),
            transcript_url: o.transcript_url.clone(),
            completed_time: Some(event_ts),
        });
    }

    let inbox_status = name.strip_prefix("inbox_message_");
    let voicemail_transcript = name == "voicemail_transcript_completed";
    if inbox_status.is_some() || voicemail_transcript {
        // Zoom's inbox events carry no `message_type`; its inbox API knows only `voicemail` messages.
        let is_voicemail = o.message_type.as_deref().is_none_or(|t| t == "voicemail");
        if let (true, Some(message_id)) = (is_voicemail, &o.message_id) {
            obs.voicemails.push(VoicemailFact {
                message_id: message_id.clone(),
                inbox_id: o.inbox_id.clone(),
                inbox_name: o.inbox_name.clone(),
                created_at: o.created_at,
                message_duration: o.message_duration,
                download_url: o.download_url.clone(),
                playback_url: o.playback_url.clone(),
                transcript_url: o.transcript_url.clone(),
                status: inbox_status.map(str::to_string),
            });
            if voicemail_transcript {
                obs.transcripts.push(TranscriptFact {
                    kind: TranscriptKind::Voicemail,
                    source_id: message_id.clone(),
                    transcript_url: o.transcript_url.clone(),
                    completed_time: Some(event_ts),
                });
            }
        }
    }
    obs
}

/// One step of a transfer. The transferring agent (`user_id`) was on the engagement; the target agent and queue
/// join it once the transfer is accepted or completed.
fn observe_transfer(obs: &mut Observation, step: &str, o: &ObjectFields) {
    let taken = matches!(step, "accepted" | "completed");
    if taken {
        obs.agents.extend(agent_ref(
            &o.transfer_to_user_id,
            &o.transfer_to_user_display_name,
        ));
        if let Some(id) = &o.transfer_to_cc_queue_id {
            obs.queues.push(QueueRef {
                cc_queue_id: id.clone(),
                queue_name: o.transfer_to_queue_name.clone(),
            });
        }
    }
    // The task the transfer creates identifies it across its steps (❓ inferred from Zoom's examples, where all
    // eight steps carry the same `transfer_to_task_id`); without one, the parties do.
    let transfer_key = o
        .transfer_to_task_id
        .clone()
        .unwrap_or_else(|| derived_id("derived-", &[o.task_id.as_deref(), o.user_id.as_deref()]));
    obs.transfers.push(TransferFact {
        transfer_key,
        status: step.to_string(),
        from_user_id: o.user_id.clone(),
        from_display_name: o.display_name.clone(),
        from_cc_queue_id: o.cc_queue_id.clone(),
        from_queue_name: o.queue_name.clone(),
        to_user_id: o.transfer_to_user_id.clone(),
        to_display_name: o.transfer_to_user_display_name.clone(),
        to_cc_queue_id: o.transfer_to_cc_queue_id.clone(),
        to_queue_name: o.transfer_to_queue_name.clone(),
        to_flow_id: o.transfer_to_flow_id.clone(),
        to_flow_name: o.transfer_to_flow_name.clone(),
        to_inbox_id: o.transfer_to_inbox_id.clone(),
        to_inbox_name: o.transfer_to_inbox_name.clone(),
        to_number: o.transfer_to_number.clone(),
        transfer_type: o.transfer_type.clone(),
        transfer_level: o.transfer_level.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EngagementState;
    use serde_json::{json, Value};

    const T0: i64 = 1_763_715_600_000; // 2025-11-21T09:00:00Z
    /// The receive time the tests parse with (2030-03-17): after every time in them and in Zoom's examples.
    const NOW: i64 = 1_900_000_000_000;

    fn event(body: &str) -> ParsedEvent {
        match parse(body.as_bytes(), EventSource::Webhook, NOW).unwrap() {
            ParsedWebhook::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    fn event_json(value: &Value) -> ParsedEvent {
        event(&value.to_string())
    }

    #[test]
    fn dedup_key_ignores_formatting_but_not_content() {
        let a = event(
            r#"{"event":"contact_center.engagement_started","event_ts":1763715600000,"payload":{"object":{"engagement_id":"E","channel":"voice"}}}"#,
        );
        let b = event(
            r#"{ "payload": {"object": {"channel": "voice", "engagement_id": "E"}}, "event_ts": 1763715600000, "event": "contact_center.engagement_started" }"#,
        );
        let c = event(
            r#"{"event":"contact_center.engagement_started","event_ts":1763715600001,"payload":{"object":{"engagement_id":"E","channel":"voice"}}}"#,
        );
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
        assert!(a.dedup_key.starts_with("1763715600000:sha256:"));
    }

    #[test]
    fn only_non_json_and_eventless_bodies_are_refused() {
        assert!(matches!(
            parse(br#"{"payload":{"plainToken":"abc"},"event_ts":1,"event":"endpoint.url_validation"}"#, EventSource::Webhook, 0),
            Ok(ParsedWebhook::UrlValidation { plain_token }) if plain_token == "abc"
        ));
        assert!(matches!(
            parse(b"not json", EventSource::Webhook, 0),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            parse(br#"{"event_ts":1}"#, EventSource::Webhook, 0),
            Err(ParseError::Envelope(_))
        ));
        assert!(matches!(
            parse(br#"[1,2]"#, EventSource::Webhook, 0),
            Err(ParseError::Envelope(_))
        ));
        // An unreadable event time costs the time, not the event: the receive time stands in, the key keeps 0.
        let e = event(r#"{"event":"x","event_ts":"soon"}"#);
        assert_eq!(e.event_ts, NOW);
        assert!(e.dedup_key.starts_with("0000000000000:sha256:"));
        assert_eq!(e.field_errors.len(), 1);
        assert_eq!(e.field_errors[0].field, "event_ts");
        // A time far in the future is no better than none.
        let e = event(r#"{"event":"x","event_ts":4102444700000}"#);
        assert_eq!(e.event_ts, NOW);
        assert!(
            e.field_errors[0].problem.contains("more than a day"),
            "{:?}",
            e.field_errors
        );
        assert!(
            e.field_errors[0].problem.contains("more than a day"),
            "{:?}",
            e.field_errors
        );
        // ... or the object's own time, when it has one.
        let e = event(
            r#"{"event":"contact_center.user_login","event_ts":99999999999999999,"payload":{"object":{"user_id":"U","date_time_ms":"2022-02-15T09:27:15.987Z"}}}"#,
        );
        assert_eq!(e.event_ts, 1_644_917_235_987);
        assert_eq!(e.activity.unwrap().kind, ActivityKind::AgentLogin);
    }

    #[test]
    fn events_map_to_facts() {
        let e = event_json(&json!({
            "event": "contact_center.engagement_started", "event_ts": T0,
            "payload": {"account_id": "A", "object": {
                "engagement_id": "E", "engagement_direction": "inbound", "channel": "voice",
                "flow_id": "F", "flow_name": "Main", "date_time_ms": "2025-11-21T08:59:59.500Z"}}
        }));
        let o = e.observation.unwrap();
        assert_eq!(o.start_time, Some(T0 - 500));
        assert_eq!(o.direction.as_deref(), Some("inbound"));
        assert_eq!(o.flows[0].flow_name.as_deref(), Some("Main"));

        let e = event_json(&json!({
            "event": "contact_center.recording_completed", "event_ts": T0,
            "payload": {"object": {
                "engagement_id": "E", "recording_id": "R", "channel": "voice",
                "recording_start_time_ms": "2025-11-21T08:00:00.000Z", "recording_end_time_ms": "2025-11-21T08:02:30Z",
                "recording_type": "automatic", "recording_duration": 150, "owner_id": "U1", "owner_type": "user",
                "users": [{"user_id": "U1", "user_display_name": "Ann"}],
                "consumers": [{"consumer_id": "C", "consumer_number": "+15550100", "consumer_display_name": "Jo"}]}}
        }));
        let o = e.observation.unwrap();
        let r = &o.recordings[0];
        assert_eq!(r.recording_start_time, Some(T0 - 3_600_000));
        assert_eq!(r.recording_end_time, Some(T0 - 3_450_000));
        assert_eq!(r.recording_type.as_deref(), Some("automatic"));
        assert_eq!(r.user_id.as_deref(), Some("U1"));
        assert_eq!(r.users[0].display_name.as_deref(), Some("Ann"));
        assert_eq!(r.consumers[0].consumer_number.as_deref(), Some("+15550100"));
        assert_eq!(o.agents[0].user_id, "U1");

        let e = event(
            r#"{"event":"contact_center.user_status_changed","event_ts":1763715600000,"payload":{"object":{"user_email":"a@b","current_status_id":"2","current_status_name":"Not Ready","current_sub_status_id":"21","current_sub_status_name":"Meal"}}}"#,
        );
        assert!(e.observation.is_none() && e.engagement_id.is_none());
        let a = e.activity.unwrap();
        assert_eq!(
            (
                a.status.as_deref(),
                a.status_id.as_deref(),
                a.sub_status_id.as_deref()
            ),
            (Some("Not Ready"), Some("2"), Some("21"))
        );

        // Supervisors are not agents of the engagement; the monitored agent is not named as a new one either.
        let e = event(
            r#"{"event":"contact_center.engagement_monitor_started","event_ts":1763715600000,"payload":{"object":{"engagement_id":"E","user_id":"AGENT","monitoring_user_id":"SUP"}}}"#,
        );
        assert!(e.observation.unwrap().agents.is_empty());
    }

    #[test]
    fn a_transfer_names_both_agents_and_its_steps_merge() {
        let step = |name: &str, ts: i64| {
            json!({"event": format!("contact_center.engagement_transfer_{name}"), "event_ts": ts,
                "payload": {"object": {
                    "engagement_id": "E", "task_id": "T1", "transfer_to_task_id": "T2", "transfer_type": "warm",
                    "transfer_level": "queue", "user_id": "FROM", "user_display_name": "Ann",
                    "cc_queue_id": "Q1", "queue_name": "Sales",
                    "transfer_to_user_id": "TO", "transfer_to_user_display_name": "Bob",
                    "transfer_to_cc_queue_id": "Q2", "transfer_to_queue_name": "Billing"}}})
        };
        let initiated = event_json(&step("initiated", T0));
        let accepted = event_json(&step("accepted", T0 + 20_000));
        let obs_initiated = initiated.observation.unwrap();
        // Initiated: only the transferring agent is on the engagement so far.
        assert_eq!(obs_initiated.agents.len(), 1);
        let mut state = EngagementState::empty("E");
        state.apply(&accepted.observation.unwrap());
        state.apply(&obs_initiated);
        let record = state.to_record();
        let agents: Vec<_> = record.agents.iter().map(|a| a.user_id.as_str()).collect();
        assert_eq!(agents, ["FROM", "TO"]);
        let queues: Vec<_> = record
            .queues
            .iter()
            .map(|q| q.cc_queue_id.as_str())
            .collect();
        assert_eq!(queues, ["Q1", "Q2"]);
        assert_eq!(record.transfers.len(), 1);
        let t = &record.transfers[0];
        assert_eq!(t.status.as_deref(), Some("accepted"));
        assert_eq!(t.transfer_type.as_deref(), Some("warm"));
        assert_eq!(t.from.user_id.as_deref(), Some("FROM"));
        assert_eq!(t.to.display_name.as_deref(), Some("Bob"));
        assert_eq!(t.to.cc_queue_id.as_deref(), Some("Q2"));
        assert_eq!(t.time.as_deref(), Some("2025-11-21T09:00:00Z"));
        assert_eq!(t.status_time.as_deref(), Some("2025-11-21T09:00:20Z"));
        // The activity of an accepted transfer is about the agent who took it over, in the target queue.
        let a = accepted.activity.unwrap();
        assert_eq!(a.agent.unwrap().user_id.as_deref(), Some("TO"));
        assert_eq!(a.queue.unwrap().cc_queue_id, "Q2");
    }

    #[test]
    fn a_task_reservation_is_about_the_offered_agent() {
        let e = event(
            r#"{"event":"contact_center.task_reservation_created","event_ts":1763715600000,"payload":{"object":{"engagement_id":"E","assigned_user_id":"U7","task_id":"T"}}}"#,
        );
        let a = e.activity.unwrap();
        assert_eq!(a.kind, ActivityKind::Offered);
        assert_eq!(a.agent.unwrap().user_id.as_deref(), Some("U7"));
    }

    /// Zoom's published webhook examples (`shared/vendor/zoom/webhooks`), or None (with a note) where the vendor
    /// folder is absent.
    fn vendor_examples() -> Option<Vec<(String, Vec<u8>)>> {
        let dir = std::env::var("ZCC_VENDOR_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor")
            })
            .join("zoom/webhooks");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!(
                "skipping: vendor reference data not found at {} (see shared/vendor/README.md)",
                dir.display()
            );
            return None;
        };
        let mut out: Vec<(String, Vec<u8>)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| {
                let name = e
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".json")
                    .to_string();
                (name, std::fs::read(e.path()).expect("read example"))
            })
            .collect();
        out.sort();
        assert!(
            out.len() >= 134,
            "expected Zoom's 134 examples, found {}",
            out.len()
        );
        Some(out)
    }

    /// The published sample that is not JSON (`message_status`: bad escaping) is quarantined; every other one
    /// is an event (or the URL validation challenge) with no unreadable field.
    #[test]
    fn every_published_example_parses_without_a_field_error() {
        let Some(examples) = vendor_examples() else {
            return;
        };
        for (name, body) in examples {
            match parse(&body, EventSource::Webhook, NOW) {
                Err(ParseError::Json(_)) => {
                    assert_eq!(name, "contact_center.message_status", "{name}")
                }
                Err(e) => panic!("{name}: {e}"),
                Ok(ParsedWebhook::UrlValidation { .. }) => {
                    assert_eq!(name, "endpoint.url_validation")
                }
                Ok(ParsedWebhook::Event(e)) => {
                    // The one sample whose name has a trailing dot reports it; nothing else may be unreadable.
                    let unexpected: Vec<_> = e
                        .field_errors
                        .iter()
                        .filter(|f| f.field != "event")
                        .collect();
                    assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
                    if e.engagement_id.is_some() {
                        assert!(e.observation.is_some(), "{name}");
                    }
                }
            }
        }
    }

    /// Every path in a JSON value (object keys and array positions), except the root.
    fn paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    prefix.push(PathStep::Key(k.clone()));
                    out.push(prefix.clone());
                    paths(v, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    prefix.push(PathStep::Index(i));
                    out.push(prefix.clone());
                    paths(v, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    enum PathStep {
        Key(String),
        Index(usize),
    }

    fn at<'a>(value: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
        path.iter().fold(value, |v, step| match step {
            PathStep::Key(k) => &mut v[k.as_str()],
            PathStep::Index(i) => &mut v[*i],
        })
    }

    /// A value of every JSON type, odd ones included.
    fn replacements() -> Vec<Value> {
        vec![
            Value::Null,
            json!(true),
            json!(-17),
            json!(1.5e300),
            json!("2022-02-15T09:27:15.987Z"),
            json!("\u{0}\u{1b}[31m not what you expected"),
            json!([]),
            json!([1, "two", {"three": 3}]),
            json!({}),
            json!({"nested": {"deep": [null]}}),
        ]
    }

    /// Changing any one field of any published example to a value of another type never loses the event:
    /// it is still accepted (not quarantined) and, when it names an engagement, still merges into a record.
    /// Exhaustive over every field of every example and every JSON type (about 40,000 bodies).
    #[test]
    fn one_odd_field_never_loses_an_event() {
        let Some(examples) = vendor_examples() else {
            return;
        };
        let mut bodies = 0;
        for (name, body) in examples {
            let Ok(original) = serde_json::from_slice::<Value>(&body) else {
                continue; // the sample that is not JSON
            };
            if name == "endpoint.url_validation" {
                continue;
            }
            let mut all = Vec::new();
            paths(&original, &mut Vec::new(), &mut all);
            for path in all {
                // Without a usable name an envelope is refused on purpose.
                if path == [PathStep::Key("event".into())] {
                    continue;
                }
                for replacement in replacements() {
                    let mut mutated = original.clone();
                    *at(&mut mutated, &path) = replacement.clone();
                    bodies += 1;
                    let parsed =
                        match parse(mutated.to_string().as_bytes(), EventSource::Webhook, NOW) {
                            Ok(ParsedWebhook::Event(e)) => e,
                            other => panic!("{name}: {path:?} = {replacement}: {other:?}"),
                        };
                    assert_eq!(
                        parsed.event_type,
                        original["event"].as_str().unwrap().trim_end_matches('.')
                    );
                    if let Some(obs) = &parsed.observation {
                        let mut state = EngagementState::empty(obs.engagement_id.clone());
                        state.apply(obs);
                        assert_eq!(state.event_count(), 1, "{name}: {path:?}");
                        let _ = state.to_record();
                    }
                }
            }
        }
        assert!(bodies > 10_000, "only {bodies} mutated bodies");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary JSON in place of a whole payload object never panics and never refuses the event.
        #[test]
        fn any_object_is_accepted(object in proptest_json(), event_ts in proptest::prelude::any::<i64>()) {
            let body = json!({"event": "contact_center.engagement_started", "event_ts": event_ts, "payload": {"object": object}});
            let parsed = parse(body.to_string().as_bytes(), EventSource::Webhook, NOW);
            proptest::prop_assert!(matches!(parsed, Ok(ParsedWebhook::Event(_))));
        }
    }

    fn proptest_json() -> impl proptest::prelude::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            proptest::sample::select(vec![
                "engagement_id",
                "recording_start_time_ms",
                "users",
                "consumers",
                "date_time_ms"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    proptest::sample::select(vec![
                        "engagement_id",
                        "channel",
                        "engagement_direction",
                        "users",
                        "consumers",
                        "recording_id",
                        "recording_start_time_ms",
                        "date_time_ms",
                        "transfer_to_user_id",
                        "notes",
                        "x",
                    ])
                    .prop_map(str::to_string),
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn field_paths_are_counted_without_positions() {
        assert_eq!(
            strip_indexes("payload.object.users[12].user_id"),
            "payload.object.users[].user_id"
        );
        assert_eq!(strip_indexes("event_ts"), "event_ts");
    }
}
