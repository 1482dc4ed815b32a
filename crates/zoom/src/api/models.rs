//! Typed ZCC REST resources (field names as Zoom's). Every field is optional or defaulted: Zoom adds fields over
//! time and omits empty ones, and a missing field must never fail a whole page.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields Zoom sent that these models do not name, kept so that a resource can be logged as received.
pub type Extra = Map<String, Value>;

/// `GET /contact_center/engagements` response page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementPage {
    /// Empty (or absent) on the last page. Expires 15 minutes after it was issued.
    pub next_page_token: Option<String>,
    pub page_size: Option<u32>,
    pub total_records: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub timezone: Option<String>,
    pub engagements: Vec<Engagement>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Engagement {
    pub engagement_id: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Seconds.
    pub duration: Option<i64>,
    pub direction: Option<String>,
    pub channels: Vec<EngagementChannel>,
    pub consumers: Vec<EngagementConsumer>,
    pub flows: Vec<EngagementFlow>,
    pub queues: Vec<EngagementQueue>,
    pub agents: Vec<EngagementAgent>,
    pub dispositions: Vec<EngagementDisposition>,
    pub notes: Vec<EngagementNote>,
    pub talk_duration: Option<i64>,
    pub flow_duration: Option<i64>,
    pub waiting_duration: Option<i64>,
    pub handling_duration: Option<i64>,
    pub wrap_up_duration: Option<i64>,
    pub transfer_count: Option<i64>,
    /// Messaging engagements only; needs a Bearer token to download.
    pub transcript_url: Option<String>,
    pub survey_id: Option<String>,
    pub queue_wait_type: Option<String>,
    /// Get-engagement only: the engagement's timeline as Zoom reports it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementChannel {
    pub channel: Option<String>,
    pub channel_source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementConsumer {
    pub consumer_id: Option<String>,
    pub consumer_display_name: Option<String>,
    pub consumer_number: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementFlow {
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
    pub flow_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementQueue {
    pub cc_queue_id: Option<String>,
    pub queue_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementAgent {
    pub user_id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementDisposition {
    pub disposition_id: Option<String>,
    pub disposition_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngagementNote {
    pub user_id: Option<String>,
    pub note_id: Option<String>,
    pub note: Option<String>,
    pub last_modified_time: Option<String>,
}

/// Filters of `GET /contact_center/engagements`. `from`/`to` are `yyyy-mm-dd` or `yyyy-MM-ddTHH:mm:ssZ`; the
/// window may span at most one month (Zoom's rule); without `from`, Zoom returns the past 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngagementQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    pub consumer_number: Option<String>,
    pub channel: Option<String>,
    pub direction: Option<String>,
    /// 1..=100 (Zoom's maximum); default 100.
    pub page_size: Option<u32>,
}

impl EngagementQuery {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        push_some(
            &mut out,
            [
                ("from", &self.from),
                ("to", &self.to),
                ("queue_id", &self.queue_id),
                ("user_id", &self.user_id),
                ("consumer_number", &self.consumer_number),
                ("channel", &self.channel),
                ("direction", &self.direction),
            ],
        );
        out.push(("page_size", clamp_page(self.page_size, 100)));
        out
    }
}

/// `GET /contact_center/recordings` (and the per-engagement, per-queue and per-user lists) response page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingPage {
    pub next_page_token: Option<String>,
    pub page_size: Option<u32>,
    pub total_records: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub recordings: Vec<Recording>,
}

/// A recording (reference §1.5). The three URLs need `Authorization: Bearer` to download.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recording {
    pub recording_id: String,
    pub engagement_id: Option<String>,
    pub cc_queue_id: Option<String>,
    pub queue_name: Option<String>,
    /// Seconds.
    pub recording_duration: Option<i64>,
    pub download_url: Option<String>,
    pub transcript_url: Option<String>,
    pub playback_url: Option<String>,
    pub recording_start_time: Option<String>,
    pub recording_end_time: Option<String>,
    pub user_id: Option<String>,
    pub display_name: Option<String>,
    pub user_email: Option<String>,
    /// `on_demand` | `automatic`.
    pub recording_type: Option<String>,
    /// `voice` | `video`.
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub owner_type: Option<String>,
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
    pub consumers: Vec<RecordingConsumer>,
    /// Deprecated by Zoom in favour of `consumers[]`, still sent.
    pub consumer_number: Option<String>,
    /// Deprecated by Zoom in favour of `consumers[]`, still sent.
    pub consumer_name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A consumer on a recording: Zoom's REST reference lists `consumer_name` and `consumer_number`; the webhook
/// form (`consumer_id`, `consumer_display_name`) is read too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingConsumer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_id: Option<String>,
    #[serde(alias = "consumer_display_name")]
    pub consumer_name: Option<String>,
    pub consumer_number: Option<String>,
}

/// Which recording time a `from`/`to` window applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordingDateType {
    #[default]
    StartTime,
    /// Catches recordings processed late: their end time falls in a later window than their engagement.
    EndTime,
}

/// Filters of `GET /contact_center/recordings`. Without `from`, Zoom returns the past 30 days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingQuery {
    pub date_type: RecordingDateType,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `voice` | `video`.
    pub channel: Option<String>,
    /// 1..=300 (Zoom's maximum); default 300.
    pub page_size: Option<u32>,
}

impl RecordingQuery {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let date_type = match self.date_type {
            RecordingDateType::StartTime => "recording_start_time",
            RecordingDateType::EndTime => "recording_end_time",
        };
        let mut out = vec![("query_date_type", date_type.to_string())];
        push_some(
            &mut out,
            [
                ("from", &self.from),
                ("to", &self.to),
                ("channel", &self.channel),
            ],
        );
        out.push(("page_size", clamp_page(self.page_size, 300)));
        out
    }
}

/// `GET /contact_center/inboxes/messages` response page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboxMessagePage {
    pub next_page_token: Option<String>,
    pub page_size: Option<u32>,
    pub total_records: Option<u64>,
    pub messages: Vec<InboxMessage>,
}

/// An inbox message (voicemail), reference §1.6.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboxMessage {
    pub message_id: String,
    pub inbox_id: Option<String>,
    pub inbox_name: Option<String>,
    pub engagement_id: Option<String>,
    pub created_at: Option<String>,
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
    /// The account-wide list spells the queue id `cci_queue_id`; the per-inbox list uses `queue_id`.
    pub cci_queue_id: Option<String>,
    pub queue_id: Option<String>,
    pub queue_name: Option<String>,
    pub message_type: Option<String>,
    pub download_url: Option<String>,
    pub playback_url: Option<String>,
    pub transcript_url: Option<String>,
    /// Seconds.
    pub message_duration: Option<i64>,
    pub consumer_number: Option<String>,
    pub consumer_id: Option<String>,
    pub consumer_display_name: Option<String>,
    /// `normal` | `deleted`.
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl InboxMessage {
    /// The queue id whichever list it came from.
    pub fn queue(&self) -> Option<&str> {
        self.cci_queue_id
            .as_deref()
            .or(self.queue_id.as_deref())
            .filter(|q| !q.is_empty())
    }
}

/// Filters of `GET /contact_center/inboxes/messages`. Without `from`, Zoom returns the past 30 days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxMessageQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub inbox_id: Option<String>,
    pub engagement_id: Option<String>,
    pub consumer_number: Option<String>,
    /// `normal` (Zoom's default) | `deleted`.
    pub status: Option<String>,
    /// 1..=300; default 300.
    pub page_size: Option<u32>,
}

impl InboxMessageQuery {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("message_type", "voicemail".to_string())];
        push_some(
            &mut out,
            [
                ("from", &self.from),
                ("to", &self.to),
                ("inbox_id", &self.inbox_id),
                ("engagement_id", &self.engagement_id),
                ("consumer_number", &self.consumer_number),
                ("status", &self.status),
            ],
        );
        out.push(("page_size", clamp_page(self.page_size, 300)));
        out
    }
}

/// `GET /contact_center/engagements/notes` and `.../engagements/{id}/notes` response page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotePage {
    pub next_page_token: Option<String>,
    pub page_size: Option<u32>,
    pub total_records: Option<u64>,
    pub notes: Vec<Note>,
}

/// An engagement note as the notes endpoints return it (reference §1.7).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    pub note_id: String,
    pub engagement_id: Option<String>,
    pub channel: Option<String>,
    pub channel_source: Option<String>,
    pub note: Option<String>,
    pub last_modified_time: Option<String>,
    /// The last user to modify it.
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A paginated response: its items and the token of the next page (empty or absent on the last).
pub trait Page: serde::de::DeserializeOwned + Send {
    type Item: Send;
    fn next_page_token(&self) -> Option<&str>;
    fn into_items(self) -> Vec<Self::Item>;
    /// The item's identity, so a walk restarted after an expired page token yields each item once.
    fn key(item: &Self::Item) -> &str;
}

macro_rules! page {
    ($page:ty, $field:ident, $item:ty, $key:ident) => {
        impl Page for $page {
            type Item = $item;
            fn next_page_token(&self) -> Option<&str> {
                self.next_page_token.as_deref().filter(|t| !t.is_empty())
            }
            fn into_items(self) -> Vec<$item> {
                self.$field
            }
            fn key(item: &$item) -> &str {
                &item.$key
            }
        }
    };
}

page!(EngagementPage, engagements, Engagement, engagement_id);
page!(RecordingPage, recordings, Recording, recording_id);
page!(InboxMessagePage, messages, InboxMessage, message_id);
page!(NotePage, notes, Note, note_id);

fn push_some<const N: usize>(
    out: &mut Vec<(&'static str, String)>,
    fields: [(&'static str, &Option<String>); N],
) {
    for (name, value) in fields {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            out.push((name, value.clone()));
        }
    }
}

fn clamp_page(size: Option<u32>, max: u32) -> String {
    size.unwrap_or(max).clamp(1, max).to_string()
}

/// Server-to-Server OAuth token response.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// `GET /users/{userId}/presence_status`. Some integrations read `presence_status` instead of `status` (which key
/// the live API uses is unconfirmed): both are accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceStatus {
    #[serde(alias = "presence_status")]
    pub status: Option<String>,
    /// Do_Not_Disturb only.
    pub end_time: Option<String>,
    pub remaining_time: Option<i64>,
}

/// `PUT /users/{userId}/presence_status` body. `duration` (minutes) applies to Do_Not_Disturb only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
}
