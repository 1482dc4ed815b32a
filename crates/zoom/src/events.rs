//! The webhook envelope and the `payload.object` fields the bridge reads.
//!
//! Shapes follow Zoom's published Contact Center webhook examples (`shared/vendor/zoom/webhooks/`, reproduced by
//! ZoomNet from Zoom's reference): `engagement_direction`, `user_display_name`, `*_time_ms` fields as ISO-8601
//! strings, transfer targets as `transfer_to_*`, the offered agent of `task_reservation_*` as `assigned_user_id`,
//! recordings with `users[]` and `consumers[]`. Older or alternative spellings are read too (`direction`,
//! `display_name`, epoch-millisecond numbers). Fields are read one by one (see [`crate::lenient`]): a field of an
//! unexpected type or format is reported in [`WebhookEnvelope::field_errors`] and the rest of the event is kept.
//! Only a body that is not a JSON object or has no usable `event` is refused.

use serde_json::Value;

use crate::lenient::{kind, FieldError, Reader};

/// A decoded webhook body: `{"event": "...", "event_ts": <ms>, "payload": {"account_id": "...", "object": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookEnvelope {
    /// The event name, trimmed (surrounding blanks and trailing dots are removed; see `field_errors`).
    pub event: String,
    /// Epoch milliseconds when the event happened; None when absent or unreadable.
    pub event_ts: Option<i64>,
    pub account_id: Option<String>,
    pub object: ObjectFields,
    /// Fields that were present but could not be read. The raw body keeps them.
    pub field_errors: Vec<FieldError>,
}

/// Why a body is not a webhook envelope at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is {0}, not a JSON object")]
    NotAnObject(&'static str),
    #[error("the envelope has no `event`")]
    NoEvent,
    #[error("`event` is {0}, not a string")]
    EventNotAString(&'static str),
    #[error("`event` is empty")]
    EmptyEvent,
}

impl WebhookEnvelope {
    /// Decodes an envelope leniently. Errors only when there is no event name to file the body under.
    pub fn decode(value: &Value) -> Result<Self, EnvelopeError> {
        let Value::Object(top) = value else {
            return Err(EnvelopeError::NotAnObject(kind(value)));
        };
        let event = match top.get("event") {
            None | Some(Value::Null) => return Err(EnvelopeError::NoEvent),
            Some(Value::String(s)) => s,
            Some(other) => return Err(EnvelopeError::EventNotAString(kind(other))),
        };
        let mut field_errors = Vec::new();
        // A published sample ends its name with a dot (`contact_center.user_skills_assigned.`).
        let trimmed = event.trim().trim_end_matches('.').trim();
        if trimmed.is_empty() {
            return Err(EnvelopeError::EmptyEvent);
        }
        if trimmed != event {
            field_errors.push(FieldError {
                field: "event".into(),
                problem: format!("{event:?} trimmed to {trimmed:?}"),
            });
        }
        let mut reader = Reader::new(top, "", &mut field_errors);
        let event_ts = reader.time("event_ts");
        let (account_id, object) = reader
            .object("payload", |payload| {
                let account_id = payload.string("account_id");
                // Most events nest their fields in `payload.object`; `voice_rtms_*` and a few others put them in
                // `payload` itself.
                let object = if payload.value("object").is_some() {
                    payload
                        .object("object", ObjectFields::read)
                        .unwrap_or_default()
                } else {
                    ObjectFields::read(payload)
                };
                (account_id, object)
            })
            .unwrap_or_default();
        Ok(Self {
            event: trimmed.to_string(),
            event_ts,
            account_id,
            object,
            field_errors,
        })
    }
}

/// A queue as Zoom names it on engagements (`cc_queue_id`; `queue_id` is the deprecated alias).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    pub cc_queue_id: Option<String>,
    pub queue_name: Option<String>,
}

/// A user (agent) as named on engagements and recordings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agent {
    pub user_id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumer {
    pub consumer_id: Option<String>,
    pub consumer_number: Option<String>,
    pub consumer_display_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Note {
    pub note_id: Option<String>,
    pub note: Option<String>,
    pub user_id: Option<String>,
    /// Epoch ms.
    pub last_modified_time: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disposition {
    pub disposition_id: Option<String>,
    pub disposition_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelRef {
    pub channel: Option<String>,
    pub channel_source: Option<String>,
}

/// The union of `payload.object` fields the bridge understands, across event types. Times are epoch ms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectFields {
    pub engagement_id: Option<String>,
    pub channel: Option<String>,
    pub channel_source: Option<String>,
    /// `engagement_direction` (Zoom's webhooks) or `direction` (REST).
    pub direction: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// When the fact happened by Zoom's clock: `date_time_ms` (an ISO string in Zoom's examples), `date_time`
    /// or `date-time`.
    pub date_time: Option<i64>,
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
    pub flow_number: Option<String>,

    // Queue, agent and consumer as flat fields (lifecycle events) ...
    pub cc_queue_id: Option<String>,
    pub queue_name: Option<String>,
    pub user_id: Option<String>,
    /// `user_display_name` (engagement events) or `display_name` (agent events).
    pub display_name: Option<String>,
    pub user_email: Option<String>,
    pub consumer_id: Option<String>,
    pub consumer_number: Option<String>,
    pub consumer_display_name: Option<String>,

    // ... and as arrays (engagement-shaped objects, recordings).
    pub channels: Vec<ChannelRef>,
    pub queues: Vec<Queue>,
    pub agents: Vec<Agent>,
    /// `users[]` of recording and upgrade events.
    pub users: Vec<Agent>,
    pub consumers: Vec<Consumer>,
    pub notes: Vec<Note>,
    pub dispositions: Vec<Disposition>,

    // Notes and dispositions as flat fields (`engagement_note_added`, `engagement_disposition_added`).
    pub note_id: Option<String>,
    pub note: Option<String>,
    pub last_modified_time: Option<i64>,
    pub disposition_id: Option<String>,
    pub disposition_name: Option<String>,

    // Transfers (`engagement_transfer_*`): `user_id` is the transferring agent, `transfer_to_*` the target.
    pub task_id: Option<String>,
    pub transfer_to_task_id: Option<String>,
    pub transfer_type: Option<String>,
    pub transfer_level: Option<String>,
    pub transfer_to_user_id: Option<String>,
    pub transfer_to_user_display_name: Option<String>,
    pub transfer_to_cc_queue_id: Option<String>,
    pub transfer_to_queue_name: Option<String>,
    pub transfer_to_flow_id: Option<String>,
    pub transfer_to_flow_name: Option<String>,
    pub transfer_to_inbox_id: Option<String>,
    pub transfer_to_inbox_name: Option<String>,
    pub transfer_to_number: Option<String>,

    /// `task_reservation_*`: the agent the task is offered to.
    pub assigned_user_id: Option<String>,

    // Recordings and transcripts.
    pub recording_id: Option<String>,
    /// `recording_start_time_ms` (an ISO string in Zoom's examples) or `recording_start_time`.
    pub recording_start_time: Option<i64>,
    pub recording_end_time: Option<i64>,
    /// Seconds.
    pub recording_duration: Option<i64>,
    /// `on_demand` | `automatic`.
    pub recording_type: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    /// `user` | `queue`.
    pub owner_type: Option<String>,
    pub download_url: Option<String>,
    pub transcript_url: Option<String>,
    pub playback_url: Option<String>,

    // Agent status (`user_status_changed`).
    pub current_status_id: Option<String>,
    pub current_status_name: Option<String>,
    pub current_sub_status_id: Option<String>,
    pub current_sub_status_name: Option<String>,
    pub previous_status_id: Option<String>,
    pub previous_status_name: Option<String>,
    pub previous_sub_status_id: Option<String>,
    pub previous_sub_status_name: Option<String>,

    // Inbox (voicemail) messages.
    pub message_id: Option<String>,
    pub inbox_id: Option<String>,
    pub inbox_name: Option<String>,
    pub message_type: Option<String>,
    /// Seconds.
    pub message_duration: Option<i64>,
    pub created_at: Option<i64>,
    /// Inbox message status (`normal`, `deleted`).
    pub status: Option<String>,
}

fn agent(r: &mut Reader<'_>) -> Option<Agent> {
    let a = Agent {
        user_id: r.string("user_id"),
        display_name: r.string_of(&["user_display_name", "display_name", "user_name"]),
    };
    (a.user_id.is_some() || a.display_name.is_some()).then_some(a)
}

fn consumer(r: &mut Reader<'_>) -> Option<Consumer> {
    let c = Consumer {
        consumer_id: r.string("consumer_id"),
        consumer_number: r.string("consumer_number"),
        consumer_display_name: r.string_of(&["consumer_display_name", "consumer_name"]),
    };
    (c.consumer_id.is_some() || c.consumer_number.is_some()).then_some(c)
}

impl ObjectFields {
    /// Reads every field the bridge understands; unreadable ones are reported by the reader.
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            engagement_id: r.string("engagement_id"),
            channel: r.string("channel"),
            channel_source: r.string("channel_source"),
            direction: r.string_of(&["engagement_direction", "direction"]),
            start_time: r.time("start_time"),
            end_time: r.time("end_time"),
            date_time: r.time_of(&["date_time_ms", "date_time", "date-time"]),
            flow_id: r.string("flow_id"),
            flow_name: r.string("flow_name"),
            flow_number: r.string("flow_number"),
            cc_queue_id: r.string_of(&["cc_queue_id", "queue_id", "cci_queue_id"]),
            queue_name: r.string("queue_name"),
            user_id: r.string("user_id"),
            display_name: r.string_of(&["user_display_name", "display_name"]),
            user_email: r.string("user_email"),
            consumer_id: r.string("consumer_id"),
            consumer_number: r.string("consumer_number"),
            consumer_display_name: r.string_of(&["consumer_display_name", "consumer_name"]),
            channels: r.list("channels", |c| {
                Some(ChannelRef {
                    channel: c.string("channel"),
                    channel_source: c.string("channel_source"),
                })
            }),
            queues: r.list("queues", |q| {
                Some(Queue {
                    cc_queue_id: q.string_of(&["cc_queue_id", "queue_id"]),
                    queue_name: q.string("queue_name"),
                })
            }),
            agents: r.list("agents", agent),
            users: r.list("users", agent),
            consumers: r.list("consumers", consumer),
            notes: r.list("notes", |n| {
                Some(Note {
                    note_id: n.string("note_id"),
                    note: n.string("note"),
                    user_id: n.string("user_id"),
                    last_modified_time: n.time("last_modified_time"),
                })
            }),
            dispositions: r.list("dispositions", |d| {
                Some(Disposition {
                    disposition_id: d.string("disposition_id"),
                    disposition_name: d.string("disposition_name"),
                })
            }),
            note_id: r.string("note_id"),
            note: r.string("note"),
            last_modified_time: r.time("last_modified_time"),
            disposition_id: r.string("disposition_id"),
            disposition_name: r.string("disposition_name"),
            task_id: r.string("task_id"),
            transfer_to_task_id: r.string("transfer_to_task_id"),
            transfer_type: r.string("transfer_type"),
            transfer_level: r.string("transfer_level"),
            transfer_to_user_id: r.string("transfer_to_user_id"),
            transfer_to_user_display_name: r.string("transfer_to_user_display_name"),
            transfer_to_cc_queue_id: r
                .string_of(&["transfer_to_cc_queue_id", "transfer_to_queue_id"]),
            transfer_to_queue_name: r.string("transfer_to_queue_name"),
            transfer_to_flow_id: r.string("transfer_to_flow_id"),
            transfer_to_flow_name: r.string("transfer_to_flow_name"),
            transfer_to_inbox_id: r.string("transfer_to_inbox_id"),
            transfer_to_inbox_name: r.string("transfer_to_inbox_name"),
            transfer_to_number: r.string("transfer_to_number"),
            assigned_user_id: r.string("assigned_user_id"),
            recording_id: r.string("recording_id"),
            recording_start_time: r.time_of(&["recording_start_time_ms", "recording_start_time"]),
            recording_end_time: r.time_of(&["recording_end_time_ms", "recording_end_time"]),
            recording_duration: r.int("recording_duration"),
            recording_type: r.string("recording_type"),
            owner_id: r.string("owner_id"),
            owner_name: r.string("owner_name"),
            owner_type: r.string("owner_type"),
            download_url: r.string("download_url"),
            transcript_url: r.string("transcript_url"),
            playback_url: r.string("playback_url"),
            current_status_id: r.string("current_status_id"),
            current_status_name: r.string("current_status_name"),
            current_sub_status_id: r.string("current_sub_status_id"),
            current_sub_status_name: r.string("current_sub_status_name"),
            previous_status_id: r.string("previous_status_id"),
            previous_status_name: r.string("previous_status_name"),
            previous_sub_status_id: r.string("previous_sub_status_id"),
            previous_sub_status_name: r.string("previous_sub_status_name"),
            message_id: r.string("message_id"),
            inbox_id: r.string("inbox_id"),
            inbox_name: r.string("inbox_name"),
            message_type: r.string("message_type"),
            message_duration: r.int("message_duration"),
            created_at: r.time("created_at"),
            status: r.string("status"),
        }
    }
}

/// Prefix shared by every Zoom Contact Center event.
pub const CONTACT_CENTER_PREFIX: &str = "contact_center.";

/// Every `contact_center.*` event name in Zoom's webhooks.json (124, reference §2.2), without the prefix.
pub const CONTACT_CENTER_EVENTS: &[&str] = &[
    "asset_created",
    "asset_deleted",
    "asset_updated",
    "business_hours_created",
    "business_hours_deleted",
    "business_hours_updated",
    "closure_created",
    "closure_deleted",
    "closure_updated",
    "call_control_answer_call_executed",
    "call_control_conference_warm_invite_executed",
    "call_control_end_call_executed",
    "call_control_hold_call_executed",
    "call_control_make_call_executed",
    "call_control_unhold_call_executed",
    "consumer_messaging_opt_in",
    "consumer_messaging_opt_out",
    "cx_engagement_end_data_ready",
    "legacy_engagement_end_data_ready",
    "engagement_started",
    "engagement_ended",
    "engagement_consumer_notified",
    "engagement_consumer_answered",
    "engagement_consumer_ended",
    "engagement_user_answered",
    "engagement_user_ended",
    "engagement_user_hold",
    "engagement_user_unhold",
    "engagement_user_muted",
    "engagement_user_unmuted",
    "engagement_user_dtmf_sent",
    "engagement_user_sent_message",
    "engagement_user_sent_file",
    "engagement_consumer_sent_message",
    "engagement_consumer_sent_file",
    "engagement_transfer_initiated",
    "engagement_transfer_queued",
    "engagement_transfer_reserved",
    "engagement_transfer_accepted",
    "engagement_transfer_rejected",
    "engagement_transfer_canceled",
    "engagement_transfer_timeout",
    "engagement_transfer_completed",
    "engagement_conference_canceled",
    "engagement_conference_participant_invited",
    "engagement_conference_participant_joined",
    "engagement_conference_participant_left",
    "engagement_conference_participant_rejected",
    "engagement_conference_participant_canceled",
    "engagement_conference_participant_timeout",
    "engagement_upgrade_initiated",
    "engagement_upgrade_completed",
    "engagement_upgrade_expired",
    "engagement_monitor_started",
    "engagement_monitor_ended",
    "engagement_takeover_started",
    "engagement_wrap_up_started",
    "engagement_wrap_up_ended",
    "engagement_note_added",
    "engagement_disposition_added",
    "engagement_survey_status",
    "engagement_follow_up_task_created",
    "engagement_follow_up_task_updated",
    "engagement_messaging_transcript_completed",
    "engagement_email_transcript_completed",
    "recording_transcript_completed",
    "voicemail_transcript_completed",
    "recording_started",
    "recording_paused",
    "recording_resumed",
    "recording_stopped",
    "recording_completed",
    "recording_deleted",
    "recording_permanently_deleted",
    "inbox_message_received",
    "inbox_message_assigned",
    "inbox_message_opened",
    "inbox_message_downloaded",
    "inbox_message_resolved",
    "inbox_message_reopened",
    "inbox_message_deleted",
    "message_status",
    "sms_status",
    "outbound_campaign_dialer_status",
    "queue_created",
    "queue_deleted",
    "queue_agent_assigned",
    "queue_agent_unassigned",
    "queue_supervisor_assigned",
    "queue_supervisor_unassigned",
    "queue_inbound_sla_updated",
    "queue_operating_hours_updated",
    "queue_scheduled_callback_created",
    "task_created",
    "task_updated",
    "task_deleted",
    "task_canceled",
    "task_completed",
    "task_entered_queue",
    "task_exited_queue",
    "task_reservation_created",
    "task_reservation_accepted",
    "task_reservation_rejected",
    "task_reservation_canceled",
    "task_reservation_timeout",
    "task_reservation_completed",
    "team_created",
    "team_deleted",
    "team_updated",
    "team_moved",
    "team_members_assigned",
    "team_members_unassigned",
    "user_created",
    "user_deleted",
    "user_updated",
    "user_login",
    "user_logout",
    "user_status_changed",
    "user_opt_in",
    "user_opt_out",
    "user_phone_numbers_assigned",
    "user_phone_numbers_unassigned",
    "user_skills_assigned",
    "user_skills_unassigned",
];

/// Whether `event` is a documented `contact_center.*` event name.
pub fn is_known_event(event: &str) -> bool {
    event
        .strip_prefix(CONTACT_CENTER_PREFIX)
        .is_some_and(|name| CONTACT_CENTER_EVENTS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_list_is_complete_and_unique() {
        let mut names = CONTACT_CENTER_EVENTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 124);
        assert!(is_known_event("contact_center.engagement_note_added"));
        assert!(!is_known_event("contact_center.engagement_answered"));
        assert!(!is_known_event("engagement_note_added"));
    }

    #[test]
    fn lenient_envelope() {
        let value: Value = serde_json::from_str(
            r#"{"event":"contact_center.recording_completed","event_ts":1729500000000,
               "payload":{"account_id":"A","object":{"engagement_id":"E","engagement_direction":"inbound",
               "recording_start_time_ms":"2022-02-15T08:12:15.986Z","recording_duration":{"s":1},
               "users":[{"user_id":"U","user_display_name":"Ann"}],"something_new":{"x":1},"queues":null}}}"#,
        )
        .unwrap();
        let e = WebhookEnvelope::decode(&value).unwrap();
        assert_eq!(e.event_ts, Some(1_729_500_000_000));
        assert_eq!(e.object.engagement_id.as_deref(), Some("E"));
        assert_eq!(e.object.direction.as_deref(), Some("inbound"));
        assert_eq!(e.object.recording_start_time, Some(1_644_912_735_986));
        assert_eq!(e.object.recording_duration, None);
        assert_eq!(e.object.users[0].display_name.as_deref(), Some("Ann"));
        assert!(e.object.queues.is_empty());
        assert_eq!(e.field_errors.len(), 1);
        assert_eq!(e.field_errors[0].field, "payload.object.recording_duration");

        // Missing payload or a bad event time is allowed; a missing event name is not.
        let ok = |s: &str| WebhookEnvelope::decode(&serde_json::from_str(s).unwrap());
        assert!(ok(r#"{"event":"x","event_ts":1}"#).is_ok());
        let soon = ok(r#"{"event":"x","event_ts":"soon","payload":[1]}"#).unwrap();
        assert_eq!(soon.event_ts, None);
        assert_eq!(soon.field_errors.len(), 2);
        assert_eq!(ok(r#"{"event_ts":1}"#), Err(EnvelopeError::NoEvent));
        assert_eq!(
            ok(r#"{"event":5}"#),
            Err(EnvelopeError::EventNotAString("a number"))
        );
        assert_eq!(ok(r#"{"event":" . "}"#), Err(EnvelopeError::EmptyEvent));
        assert_eq!(ok("[1]"), Err(EnvelopeError::NotAnObject("an array")));
        // The trailing dot of a published sample's name.
        let dotted =
            ok(r#"{"event":"contact_center.user_skills_assigned.","event_ts":1}"#).unwrap();
        assert_eq!(dotted.event, "contact_center.user_skills_assigned");
        assert_eq!(dotted.field_errors[0].field, "event");
        // Flat payloads (`voice_rtms_*`).
        let flat = ok(r#"{"event":"contact_center.voice_rtms_started","event_ts":1,"payload":{"engagement_id":"E"}}"#).unwrap();
        assert_eq!(flat.object.engagement_id.as_deref(), Some("E"));
    }
}
