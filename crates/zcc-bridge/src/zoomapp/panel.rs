//! What the agent panel shows beside the workspace (`GET /zoomapp/api/engagements/{id}/context`): the matched
//! customer, the consumer's previous engagements, the engagement's activity so far, its recordings and transcripts
//! (signed links), and the state of its delivery to each sink. Built from what the bridge already has: the record,
//! the contacts file, the activity table, the media archive and the delivery outbox.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::AppError;
use crate::contacts::Contacts;
use crate::core::activity::LoggedActivity;
use crate::core::record::format_ms;
use crate::core::{EngagementRecord, MediaView};
use crate::media::MediaLinks;
use crate::store::delivery::DeliveryQuery;
use crate::store::{EngagementQuery, Store};

/// Previous engagements shown at most.
const PREVIOUS: u32 = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub crm_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub engagement_id: String,
    pub start_time: Option<String>,
    pub channel: Option<String>,
    pub queue_name: Option<String>,
    pub disposition: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivityItem {
    pub kind: &'static str,
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MediaItem {
    pub recording_id: Option<String>,
    pub transcript_id: Option<String>,
    pub recording_start_time: Option<String>,
    /// `pending`, `archived`, `dead`, `expired`; absent when the archive does not know of the file.
    pub state: Option<String>,
    /// A signed link, once archived.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryItem {
    pub sink: String,
    pub state: String,
    pub attempts: i64,
    pub event_type: String,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngagementContext {
    pub engagement_id: String,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub queue_name: Option<String>,
    pub customer: Option<Customer>,
    pub previous_engagements: Vec<Previous>,
    pub activity: Vec<ActivityItem>,
    pub recordings: Vec<MediaItem>,
    pub transcripts: Vec<MediaItem>,
    pub deliveries: Vec<DeliveryItem>,
}

/// Whether `user_id` may see the engagement: the record names no agent yet (events may lag the agent desktop), or
/// the user is one of its agents or a party of one of its transfers.
pub fn may_view(record: &EngagementRecord, user_id: &str) -> bool {
    let named: BTreeSet<&str> = record
        .agents
        .iter()
        .map(|a| a.user_id.as_str())
        .chain(
            record
                .transfers
                .iter()
                .flat_map(|t| [&t.from.user_id, &t.to.user_id])
                .filter_map(|u| u.as_deref()),
        )
        .collect();
    named.is_empty() || named.contains(user_id)
}

fn text(record: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| record.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A contacts-file entry as the panel shows it (common column names; `first_name` + `last_name` when no `name`).
pub fn customer_of(contact: &Value) -> Option<Customer> {
    let c = contact.as_object()?;
    let name = text(c, &["name", "full_name", "display_name", "contact_name"]).or_else(|| {
        let parts: Vec<String> = [text(c, &["first_name"]), text(c, &["last_name"])]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    Some(Customer {
        name,
        phone: text(
            c,
            &[
                "phone",
                "phone_number",
                "number",
                "mobile",
                "consumer_number",
            ],
        ),
        email: text(c, &["email", "email_address"]),
        company: text(c, &["company", "account", "organization", "organisation"]),
        crm_url: text(c, &["crm_url", "url", "link"]),
    })
}

fn media_item(
    recording_id: Option<&str>,
    transcript_id: Option<&str>,
    start: Option<&String>,
    media: Option<&MediaView>,
) -> MediaItem {
    MediaItem {
        recording_id: recording_id.map(str::to_string),
        transcript_id: transcript_id.map(str::to_string),
        recording_start_time: start.cloned(),
        state: media.map(|m| m.state.clone()),
        link: media.and_then(|m| m.link.clone()),
    }
}

fn activity_item(a: &LoggedActivity) -> ActivityItem {
    let act = &a.activity;
    let agent = act
        .agent
        .as_ref()
        .and_then(|g| g.display_name.clone().or_else(|| g.email.clone()));
    let detail = [
        agent,
        act.queue.as_ref().map(|q| {
            q.queue_name
                .clone()
                .unwrap_or_else(|| q.cc_queue_id.clone())
        }),
        act.disposition.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    ActivityItem {
        kind: act.kind.as_str(),
        at: format_ms(act.event_ts),
        detail: (!detail.is_empty()).then(|| detail.join(" · ")),
    }
}

/// The panel's view of an engagement for `user_id`; `None` when the bridge has no record of it yet.
pub async fn engagement_context(
    store: &dyn Store,
    links: Option<&MediaLinks>,
    contacts: Option<&Contacts>,
    user_id: &str,
    engagement_id: &str,
) -> Result<Option<EngagementContext>, AppError> {
    let Some(state) = store.engagement(engagement_id).await? else {
        return Ok(None);
    };
    let mut records = [state.to_record()];
    if let Some(links) = links {
        links.attach(store, &mut records).await?;
    }
    let [record] = records;
    if !may_view(&record, user_id) {
        return Err(AppError::NotYourEngagement);
    }
    let number = record
        .consumers
        .iter()
        .find_map(|c| c.consumer_number.clone());
    let customer = match (contacts, &number) {
        (Some(contacts), Some(n)) => contacts.lookup(n).and_then(customer_of),
        _ => None,
    };
    let previous_engagements = match &number {
        Some(n) => store
            .engagements(&EngagementQuery {
                consumer_number: Some(n.clone()),
                limit: PREVIOUS + 1,
                ..Default::default()
            })
            .await?
            .into_iter()
            .filter(|s| s.engagement_id != engagement_id)
            .take(PREVIOUS as usize)
            .map(|s| {
                let r = s.to_record();
                Previous {
                    start_time: r.start_time.clone(),
                    channel: r.channel.clone(),
                    queue_name: r.queues.first().and_then(|q| q.queue_name.clone()),
                    disposition: r.dispositions.last().and_then(|d| {
                        d.disposition_name
                            .clone()
                            .or_else(|| Some(d.disposition_id.clone()))
                    }),
                    engagement_id: r.engagement_id,
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let mut activity = store
        .engagement_activity(&[engagement_id.to_string()])
        .await?;
    activity.sort_by_key(|a| (a.activity.event_ts, a.event_id));
    let activity = activity.iter().map(activity_item).collect();
    let mut recordings = Vec::new();
    let mut transcripts = Vec::new();
    for r in &record.recordings {
        recordings.push(media_item(
            Some(&r.recording_id),
            None,
            r.recording_start_time.as_ref(),
            r.media.as_ref(),
        ));
        if r.transcript_media.is_some() {
            transcripts.push(media_item(
                Some(&r.recording_id),
                Some(&r.recording_id),
                r.recording_start_time.as_ref(),
                r.transcript_media.as_ref(),
            ));
        }
    }
    for t in &record.transcripts {
        if transcripts
            .iter()
            .any(|m| m.transcript_id.as_deref() == Some(t.source_id.as_str()))
        {
            continue;
        }
        transcripts.push(media_item(
            None,
            Some(&t.source_id),
            t.completed_time.as_ref(),
            t.media.as_ref(),
        ));
    }
    let rows = store
        .deliveries(&DeliveryQuery {
            engagement_id: Some(engagement_id.to_string()),
            limit: 200,
            ..Default::default()
        })
        .await?;
    // Newest first: the first row of each sink is its latest delivery.
    let mut seen = BTreeSet::new();
    let deliveries = rows
        .into_iter()
        .filter(|d| seen.insert(d.sink.clone()))
        .map(|d| DeliveryItem {
            sink: d.sink,
            state: d.state,
            attempts: d.attempts,
            event_type: d.event_type,
            last_error: d.last_error,
        })
        .collect();
    Ok(Some(EngagementContext {
        engagement_id: record.engagement_id.clone(),
        channel: record.channel.clone(),
        direction: record.direction.clone(),
        start_time: record.start_time.clone(),
        end_time: record.end_time.clone(),
        queue_name: record.queues.first().and_then(|q| q.queue_name.clone()),
        customer,
        previous_engagements,
        activity,
        recordings,
        transcripts,
        deliveries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn customers_from_common_columns() {
        let c = customer_of(
            &json!({"first_name": "Alice", "last_name": "Example", "phone": "+1 415",
                                    "company": "ACME", "crm_url": "https://crm.example/1"}),
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("Alice Example"));
        assert_eq!(c.company.as_deref(), Some("ACME"));
        assert!(customer_of(&json!("not an object")).is_none());
    }

    #[test]
    fn who_may_view() {
        let mut r = EngagementRecord::default();
        assert!(may_view(&r, "anyone"), "no agent named yet");
        r.agents.push(crate::core::record::AgentView {
            user_id: "U1".into(),
            display_name: None,
        });
        assert!(may_view(&r, "U1"));
        assert!(!may_view(&r, "U2"));
    }
}
