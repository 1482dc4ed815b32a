//! Zoom webhook bodies → core observations. The only place that reads Zoom's JSON field names.

use chrono::DateTime;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zoom::events::{ObjectFields, WebhookEnvelope};

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
    pub event_ts: i64,
    pub engagement_id: Option<String>,
    /// `<event_ts, 13 digits>:sha256:<hex of the canonical JSON (keys sorted, no whitespace)>`. The hash alone
    /// identifies the event; the time prefix makes keys arrive in index order, so logging a batch touches the
    /// last pages of the dedup index instead of one random page per event.
    pub dedup_key: String,
    pub observation: Option<Observation>,
    /// What it says about agents in real time (stream, agent state).
    pub activity: Option<Activity>,
}

/// Why an authenticated body could not be used. The body is quarantined, not dropped.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not a Zoom webhook envelope: {0}")]
    Envelope(String),
}

/// Parses a webhook body already authenticated by its signature.
///
/// Dedup key: Zoom documents no idempotency key and `x-zm-request-id` is not known to survive retries, so the
/// key is a hash of the whole event in canonical form. A retry (same event, same `event_ts`, same payload)
/// maps to the same key even if Zoom re-serialises it with another key order or spacing; a note re-fired
/// after a transfer has a new `event_ts`, so it is a new event whose note merges by `note_id`.
pub fn parse(body: &[u8], source: EventSource) -> Result<ParsedWebhook, ParseError> {
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
        WebhookEnvelope::deserialize(&value).map_err(|e| ParseError::Envelope(e.to_string()))?;
    if envelope.event.trim().is_empty() {
        return Err(ParseError::Envelope("`event` is empty".into()));
    }
    super::check_event_time(envelope.event_ts, 0).map_err(ParseError::Envelope)?;
    Ok(ParsedWebhook::Event(from_envelope(
        &envelope, &value, source,
    )))
}

/// `parse` for an event received at `received_at` (epoch ms): also refuses an event dated more than a day after
/// its receipt (`check_event_time`).
pub fn parse_received(
    body: &[u8],
    source: EventSource,
    received_at: i64,
) -> Result<ParsedWebhook, ParseError> {
    let parsed = parse(body, source)?;
    if let ParsedWebhook::Event(event) = &parsed {
        super::check_event_time(event.event_ts, received_at).map_err(ParseError::Envelope)?;
    }
    Ok(parsed)
}

/// Event-log fields and the observation for an envelope; `value` is the same envelope as JSON (for the key).
pub fn from_envelope(
    envelope: &WebhookEnvelope,
    value: &serde_json::Value,
    source: EventSource,
) -> ParsedEvent {
    let canonical = serde_json::to_vec(value).unwrap_or_default();
    let dedup_key = format!(
        "{:013}:sha256:{}",
        envelope.event_ts,
        hex::encode(Sha256::digest(&canonical))
    );
    let object = &envelope.payload.object;
    let engagement_id = object.engagement_id.clone().filter(|id| !id.is_empty());
    let observation = engagement_id
        .as_ref()
        .map(|id| observe(id, &envelope.event, envelope.event_ts, object, source));
    let activity = activity(
        &envelope.event,
        envelope.event_ts,
        engagement_id.as_deref(),
        object,
    );
    ParsedEvent {
        event_type: envelope.event.clone(),
        event_ts: envelope.event_ts,
        engagement_id,
        dedup_key,
        observation,
        activity,
    }
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
    let agent = AgentIdent {
        user_id: nonempty(&o.user_id),
        email: nonempty(&o.user_email),
        display_name: nonempty(&o.display_name),
    };
    if agent.key().is_some() {
        a.agent = Some(agent);
    } else if kind.is_agent_only() {
        // An agent event that names no agent tells nothing.
        return None;
    }
    a.queue = nonempty(&o.cc_queue_id).map(|id| QueueRef {
        cc_queue_id: id,
        queue_name: nonempty(&o.queue_name),
    });
    a.channel = nonempty(&o.channel);
    a.direction = nonempty(&o.direction);
    a.consumer_number = nonempty(&o.consumer_number);
    a.status = nonempty(&o.current_status_name);
    a.sub_status = nonempty(&o.current_sub_status_name);
    a.disposition = nonempty(&o.disposition_name).or_else(|| nonempty(&o.disposition_id));
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
    obs.channel = nonempty(&o.channel).or_else(|| first_channel.and_then(|c| nonempty(&c.channel)));
    obs.channel_source = nonempty(&o.channel_source)
        .or_else(|| first_channel.and_then(|c| nonempty(&c.channel_source)));
    obs.direction = nonempty(&o.direction);

    if let Some(id) = nonempty(&o.cc_queue_id) {
        obs.queues.push(QueueRef {
            cc_queue_id: id,
            queue_name: nonempty(&o.queue_name),
        });
    }
    obs.queues.extend(o.queues.iter().filter_map(|q| {
        Some(QueueRef {
            cc_queue_id: nonempty(&q.cc_queue_id)?,
            queue_name: nonempty(&q.queue_name),
        })
    }));

    // Only events that put a user on the engagement as its agent name one; supervisors and others do not.
    let user_is_agent = matches!(
        name,
        "engagement_user_answered" | "engagement_transfer_accepted" | "engagement_user_ended"
    );
    if user_is_agent {
        if let Some(id) = nonempty(&o.user_id) {
            obs.agents.push(AgentRef {
                user_id: id,
                display_name: nonempty(&o.display_name),
            });
        }
    }
    obs.agents.extend(o.agents.iter().filter_map(|a| {
        Some(AgentRef {
            user_id: nonempty(&a.user_id)?,
            display_name: nonempty(&a.display_name),
        })
    }));

    let flat_consumer = ConsumerRef {
        consumer_id: nonempty(&o.consumer_id),
        consumer_number: nonempty(&o.consumer_number),
        consumer_display_name: nonempty(&o.consumer_display_name),
    };
    if flat_consumer.key().is_some() {
        obs.consumers.push(flat_consumer);
    }
    obs.consumers
        .extend(o.consumers.iter().map(|c| ConsumerRef {
            consumer_id: nonempty(&c.consumer_id),
            consumer_number: nonempty(&c.consumer_number),
            consumer_display_name: nonempty(&c.consumer_display_name),
        }));

    obs.start_time = parse_time(o.start_time.as_deref());
    obs.end_time = parse_time(o.end_time.as_deref());
    match name {
        "engagement_started" => obs.start_time = obs.start_time.or(Some(event_ts)),
        "engagement_ended" => obs.end_time = obs.end_time.or(Some(event_ts)),
        _ => {}
    }

    if name == "engagement_note_added" && (o.note.is_some() || o.note_id.is_some()) {
        obs.notes.push(NoteFact {
            note_id: nonempty(&o.note_id).unwrap_or_else(|| {
                derived_id("derived-", &[o.user_id.as_deref(), o.note.as_deref()])
            }),
            note: o.note.clone(),
            user_id: nonempty(&o.user_id),
            last_modified_time: parse_time(o.last_modified_time.as_deref()),
        });
    }
    obs.notes.extend(o.notes.iter().map(|n| NoteFact {
        note_id:
            nonempty(&n.note_id).unwrap_or_else(|| {
                derived_id("derived-", &[n.user_id.as_deref(), n.note.as_deref()])
            }),
        note: n.note.clone(),
        user_id: nonempty(&n.user_id),
        last_modified_time: parse_time(n.last_modified_time.as_deref()),
    }));

    if name == "engagement_disposition_added" {
        let id = nonempty(&o.disposition_id)
            .or_else(|| nonempty(&o.disposition_name).map(|n| format!("name:{n}")));
        if let Some(disposition_id) = id {
            obs.dispositions.push(DispositionFact {
                disposition_id,
                disposition_name: nonempty(&o.disposition_name),
            });
        }
    }
    obs.dispositions
        .extend(o.dispositions.iter().filter_map(|d| {
            Some(DispositionFact {
                disposition_id: nonempty(&d.disposition_id)
                    .or_else(|| nonempty(&d.disposition_name).map(|n| format!("name:{n}")))?,
                disposition_name: nonempty(&d.disposition_name),
            })
        }));

    if name.starts_with("recording_") {
        if let Some(recording_id) = nonempty(&o.recording_id) {
            let transcript_done = name == "recording_transcript_completed";
            obs.recordings.push(RecordingFact {
                recording_id: recording_id.clone(),
                channel: nonempty(&o.channel),
                recording_start_time: parse_time(o.recording_start_time.as_deref())
                    .or(o.recording_start_time_ms),
                recording_end_time: parse_time(o.recording_end_time.as_deref())
                    .or(o.recording_end_time_ms),
                recording_duration: o.recording_duration,
                download_url: nonempty(&o.download_url),
                transcript_url: nonempty(&o.transcript_url),
                playback_url: nonempty(&o.playback_url),
                user_id: nonempty(&o.user_id),
                deleted: matches!(name, "recording_deleted" | "recording_permanently_deleted")
                    .then_some(true),
            });
            if transcript_done {
                obs.transcripts.push(TranscriptFact {
                    kind: TranscriptKind::Recording,
                    source_id: recording_id,
                    transcript_url: nonempty(&o.transcript_url),
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
            transcript_url: nonempty(&o.transcript_url),
            completed_time: Some(event_ts),
        });
    }

    let inbox_status = name.strip_prefix("inbox_message_");
    let voicemail_transcript = name == "voicemail_transcript_completed";
    if inbox_status.is_some() || voicemail_transcript {
        let is_voicemail = o.message_type.as_deref().is_none_or(|t| t == "voicemail");
        if let (true, Some(message_id)) = (is_voicemail, nonempty(&o.message_id)) {
            obs.voicemails.push(VoicemailFact {
                message_id: message_id.clone(),
                inbox_id: nonempty(&o.inbox_id),
                inbox_name: nonempty(&o.inbox_name),
                created_at: parse_time(o.created_at.as_deref()),
                message_duration: o.message_duration,
                download_url: nonempty(&o.download_url),
                playback_url: nonempty(&o.playback_url),
                transcript_url: nonempty(&o.transcript_url),
                status: inbox_status.map(str::to_string),
            });
            if voicemail_transcript {
                obs.transcripts.push(TranscriptFact {
                    kind: TranscriptKind::Voicemail,
                    source_id: message_id,
                    transcript_url: nonempty(&o.transcript_url),
                    completed_time: Some(event_ts),
                });
            }
        }
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_out_of_range_are_refused() {
        let body = |ts: i64| {
            format!(
                r#"{{"event":"contact_center.engagement_started","event_ts":{ts},"payload":{{"object":{{"engagement_id":"E"}}}}}}"#
            )
        };
        for ts in [i64::MAX, -1, super::super::MAX_EVENT_TS + 1] {
            assert!(
                parse(body(ts).as_bytes(), EventSource::Webhook).is_err(),
                "{ts}"
            );
        }
        let now = 1_795_251_600_000;
        assert!(
            parse_received(body(now + 3_600_000).as_bytes(), EventSource::Webhook, now).is_ok()
        );
        assert!(parse_received(
            body(now + 2 * 86_400_000).as_bytes(),
            EventSource::Webhook,
            now
        )
        .is_err());
    }

    fn event(body: &str) -> ParsedEvent {
        match parse(body.as_bytes(), EventSource::Webhook).unwrap() {
            ParsedWebhook::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dedup_key_ignores_formatting_but_not_content() {
        let a = event(
            r#"{"event":"contact_center.engagement_started","event_ts":1,"payload":{"object":{"engagement_id":"E","channel":"voice"}}}"#,
        );
        let b = event(
            r#"{ "payload": {"object": {"channel": "voice", "engagement_id": "E"}}, "event_ts": 1, "event": "contact_center.engagement_started" }"#,
        );
        let c = event(
            r#"{"event":"contact_center.engagement_started","event_ts":2,"payload":{"object":{"engagement_id":"E","channel":"voice"}}}"#,
        );
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn url_validation_and_garbage() {
        assert!(matches!(
            parse(br#"{"payload":{"plainToken":"abc"},"event_ts":1,"event":"endpoint.url_validation"}"#, EventSource::Webhook),
            Ok(ParsedWebhook::UrlValidation { plain_token }) if plain_token == "abc"
        ));
        assert!(matches!(
            parse(b"not json", EventSource::Webhook),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            parse(br#"{"event_ts":1}"#, EventSource::Webhook),
            Err(ParseError::Envelope(_))
        ));
        assert!(matches!(
            parse(br#"{"event":"x","event_ts":"soon"}"#, EventSource::Webhook),
            Err(ParseError::Envelope(_))
        ));
        assert!(matches!(
            parse(br#"[1,2]"#, EventSource::Webhook),
            Err(ParseError::Envelope(_))
        ));
    }

    #[test]
    fn events_map_to_facts() {
        let e = event(
            r#"{"event":"contact_center.engagement_started","event_ts":1763715600000,"payload":{"account_id":"A","object":{"engagement_id":"E","channel":"voice","direction":"inbound","cc_queue_id":"Q","queue_name":"Sales","consumer_number":"+15550100"}}}"#,
        );
        let o = e.observation.unwrap();
        assert_eq!(o.start_time, Some(1763715600000));
        assert_eq!(o.queues[0].cc_queue_id, "Q");
        assert_eq!(o.consumers[0].consumer_number.as_deref(), Some("+15550100"));

        let e = event(
            r#"{"event":"contact_center.recording_transcript_completed","event_ts":5,"payload":{"object":{"engagement_id":"E","recording_id":"R","transcript_url":"https://t","recording_start_time_ms":3}}}"#,
        );
        let o = e.observation.unwrap();
        assert_eq!(o.recordings[0].recording_start_time, Some(3));
        assert_eq!(o.transcripts[0].kind, TranscriptKind::Recording);

        let e = event(
            r#"{"event":"contact_center.user_status_changed","event_ts":5,"payload":{"object":{"user_email":"a@b"}}}"#,
        );
        assert!(e.observation.is_none() && e.engagement_id.is_none());

        // Supervisors are not agents of the engagement.
        let e = event(
            r#"{"event":"contact_center.engagement_monitor_started","event_ts":5,"payload":{"object":{"engagement_id":"E","user_id":"SUP"}}}"#,
        );
        assert!(e.observation.unwrap().agents.is_empty());
    }
}
