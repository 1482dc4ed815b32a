//! Typed ZCC REST resources (field names as Zoom's). Every field is optional or defaulted: Zoom adds fields over
//! time and omits empty ones, and a missing field must never fail a whole page.

use serde::{Deserialize, Serialize};

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
        let fields = [
            ("from", &self.from),
            ("to", &self.to),
            ("queue_id", &self.queue_id),
            ("user_id", &self.user_id),
            ("consumer_number", &self.consumer_number),
            ("channel", &self.channel),
            ("direction", &self.direction),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                out.push((name, value.clone()));
            }
        }
        out.push((
            "page_size",
            self.page_size.unwrap_or(100).clamp(1, 100).to_string(),
        ));
        out
    }
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
