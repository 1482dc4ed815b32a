//! The webhook envelope and the `payload.object` fields the bridge reads.
//!
//! Zoom publishes no complete payload schemas for `contact_center.*` events (reference §2.4), so every field is
//! optional and unknown fields are ignored here (the raw bytes are kept by the bridge). Field names follow
//! Zoom's REST resources where the webhook name is unconfirmed; correcting one is a one-line change here.

use serde::{Deserialize, Deserializer, Serialize};

/// `{"event": "...", "event_ts": <ms>, "payload": {"account_id": "...", "object": {...}}}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WebhookEnvelope {
    pub event: String,
    /// Epoch milliseconds when the event happened.
    pub event_ts: i64,
    #[serde(default)]
    pub payload: Payload,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Payload {
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub object: ObjectFields,
}

/// A queue as Zoom names it on engagements (`cc_queue_id`; `queue_id` is the deprecated alias).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Queue {
    #[serde(default, alias = "queue_id")]
    pub cc_queue_id: Option<String>,
    #[serde(default)]
    pub queue_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Agent {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default, alias = "user_display_name")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Consumer {
    #[serde(default)]
    pub consumer_id: Option<String>,
    #[serde(default)]
    pub consumer_number: Option<String>,
    #[serde(default, alias = "consumer_name")]
    pub consumer_display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Note {
    #[serde(default)]
    pub note_id: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub last_modified_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Disposition {
    #[serde(default)]
    pub disposition_id: Option<String>,
    #[serde(default)]
    pub disposition_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ChannelRef {
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub channel_source: Option<String>,
}

/// The union of `payload.object` fields the bridge understands, across event types.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ObjectFields {
    #[serde(default)]
    pub engagement_id: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub channel_source: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,

    // Queue, agent and consumer as flat fields (lifecycle events) ...
    #[serde(default, alias = "queue_id", alias = "cci_queue_id")]
    pub cc_queue_id: Option<String>,
    #[serde(default)]
    pub queue_name: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default, alias = "user_display_name")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub consumer_id: Option<String>,
    #[serde(default)]
    pub consumer_number: Option<String>,
    #[serde(default, alias = "consumer_name")]
    pub consumer_display_name: Option<String>,

    // ... and as arrays (engagement-shaped objects).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub channels: Vec<ChannelRef>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub queues: Vec<Queue>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub agents: Vec<Agent>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub consumers: Vec<Consumer>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub notes: Vec<Note>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub dispositions: Vec<Disposition>,

    // Notes and dispositions as flat fields (`engagement_note_added`, `engagement_disposition_added`).
    #[serde(default)]
    pub note_id: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub last_modified_time: Option<String>,
    #[serde(default)]
    pub disposition_id: Option<String>,
    #[serde(default)]
    pub disposition_name: Option<String>,

    // Recordings and transcripts.
    #[serde(default)]
    pub recording_id: Option<String>,
    #[serde(default)]
    pub recording_start_time: Option<String>,
    #[serde(default)]
    pub recording_end_time: Option<String>,
    #[serde(default)]
    pub recording_start_time_ms: Option<i64>,
    #[serde(default)]
    pub recording_end_time_ms: Option<i64>,
    #[serde(default)]
    pub recording_duration: Option<i64>,
    #[serde(default)]
    pub download_url: Option<String>,
    #[serde(default)]
    pub transcript_url: Option<String>,
    #[serde(default)]
    pub playback_url: Option<String>,

    // Agent status (`user_status_changed`, `user_login`, `user_logout`); names from a community integration
    // (reference §2.4), unconfirmed.
    #[serde(default)]
    pub current_status_name: Option<String>,
    #[serde(default)]
    pub current_sub_status_name: Option<String>,
    #[serde(default)]
    pub previous_status_name: Option<String>,
    #[serde(default)]
    pub previous_sub_status_name: Option<String>,

    // Inbox (voicemail) messages.
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub inbox_id: Option<String>,
    #[serde(default)]
    pub inbox_name: Option<String>,
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub message_duration: Option<i64>,
    #[serde(default)]
    pub created_at: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
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
        let e: WebhookEnvelope = serde_json::from_str(
            r#"{"event":"contact_center.engagement_disposition_added","event_ts":1729500000000,
               "payload":{"account_id":"A","object":{"engagement_id":"E","disposition_id":"D",
               "disposition_name":"Inquiry","something_new":{"x":1},"queues":null}}}"#,
        )
        .unwrap();
        assert_eq!(e.payload.object.engagement_id.as_deref(), Some("E"));
        assert_eq!(
            e.payload.object.disposition_name.as_deref(),
            Some("Inquiry")
        );
        assert!(e.payload.object.queues.is_empty());
        // Missing payload is allowed; a missing event name is not.
        assert!(serde_json::from_str::<WebhookEnvelope>(r#"{"event":"x","event_ts":1}"#).is_ok());
        assert!(serde_json::from_str::<WebhookEnvelope>(r#"{"event_ts":1}"#).is_err());
    }
}
