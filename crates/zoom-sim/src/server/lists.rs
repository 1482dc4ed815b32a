//! The JSON endpoints: list and get engagements (reference §1.1, §1.2), recordings (§1.5), inbox messages (§1.6)
//! and notes (§1.7). Every list pages with the shared keyset cursors of [`super::paging`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};

use super::paging::{one_of, param, Params, ENGAGEMENT_PAGES, PLAIN_PAGES, THIRTY_DAY_PAGES};
use super::view::{RestEngagement, RestMessage, RestNote, RestRecording, Transcript};
use super::{bad_request, zoom_error, Endpoint, Shared, ZoomError};
use crate::iso_time;

/// 404 of get-engagement (reference §1.2), also used by the engagement-scoped notes list (❓ the spec lists no 404
/// code for that one).
pub const ENGAGEMENT_NOT_FOUND_CODE: u32 = 2901;
/// 404 of `GET /engagements/{id}/recordings` per the spec (reference §1.5); the message is ❓ (the spec gives only
/// the code).
pub const ENGAGEMENT_RECORDINGS_NOT_FOUND_CODE: u32 = 2805;
const ENGAGEMENT_NOT_FOUND: &str = "Engagement does not exist";

pub(super) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    // `/engagements/notes` is a static segment, which axum's router prefers to `/engagements/{engagement_id}`.
    router
        .route(Endpoint::ListEngagements.route(), get(list_engagements))
        .route(Endpoint::GetEngagement.route(), get(get_engagement))
        .route(Endpoint::ListRecordings.route(), get(list_recordings))
        .route(
            Endpoint::EngagementRecordings.route(),
            get(engagement_recordings),
        )
        .route(Endpoint::InboxMessages.route(), get(list_inbox_messages))
        .route(Endpoint::EngagementNotes.route(), get(engagement_notes))
        .route(Endpoint::Notes.route(), get(list_notes))
}

type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;
type EngagementId = Result<Path<String>, PathRejection>;

fn params(query: QueryParams) -> Result<Params, ZoomError> {
    query
        .map(|Query(p)| p)
        .map_err(|_| bad_request("Invalid query string."))
}

fn respond(answer: Result<Value, ZoomError>) -> Response {
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn list_engagements(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::ListEngagements, &headers)
            .and_then(|()| params(query))
            .and_then(|p| shared.engagements_page(&p)),
    )
}

async fn get_engagement(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: EngagementId,
) -> Response {
    respond(
        shared
            .gate(Endpoint::GetEngagement, &headers)
            .and_then(|()| {
                let now_ms = Utc::now().timestamp_millis();
                let engagement =
                    shared.visible_engagement(id, now_ms, ENGAGEMENT_NOT_FOUND_CODE)?;
                let mut body = shared.engagement_item(engagement, now_ms);
                if let Value::Object(fields) = &mut body {
                    fields.insert("events".to_owned(), Value::Array(engagement.events.clone()));
                }
                Ok(body)
            }),
    )
}

async fn list_recordings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::ListRecordings, &headers)
            .and_then(|()| params(query))
            .and_then(|p| shared.recordings_page(&p)),
    )
}

async fn engagement_recordings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: EngagementId,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::EngagementRecordings, &headers)
            .and_then(|()| {
                let now_ms = Utc::now().timestamp_millis();
                let engagement =
                    shared.visible_engagement(id, now_ms, ENGAGEMENT_RECORDINGS_NOT_FOUND_CODE)?;
                shared.engagement_recordings_page(engagement, &params(query)?, now_ms)
            }),
    )
}

async fn list_inbox_messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::InboxMessages, &headers)
            .and_then(|()| params(query))
            .and_then(|p| shared.messages_page(&p)),
    )
}

async fn engagement_notes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: EngagementId,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::EngagementNotes, &headers)
            .and_then(|()| {
                let now_ms = Utc::now().timestamp_millis();
                let engagement =
                    shared.visible_engagement(id, now_ms, ENGAGEMENT_NOT_FOUND_CODE)?;
                shared.notes_page(Some(&engagement.id), &params(query)?, now_ms)
            }),
    )
}

async fn list_notes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    respond(
        shared
            .gate(Endpoint::Notes, &headers)
            .and_then(|()| params(query))
            .and_then(|p| shared.notes_page(None, &p, Utc::now().timestamp_millis())),
    )
}

/// `item` plus its `transcript_url` when the transcript exists by now.
fn with_transcript(
    item: &Value,
    transcript: Option<&Transcript>,
    exists: impl Fn(i64) -> bool,
) -> Value {
    let mut item = item.clone();
    if let (Value::Object(fields), Some(t)) = (&mut item, transcript) {
        if exists(t.ready_ms) {
            fields.insert("transcript_url".to_owned(), json!(t.url));
        }
    }
    item
}

impl Shared {
    /// Whether something that came to exist at `ready_ms` is visible at `now_ms` (always, unless `completed_only`).
    pub(super) fn exists(&self, ready_ms: i64, now_ms: i64) -> bool {
        !self.config.completed_only || ready_ms <= now_ms
    }

    fn visible_engagement(
        &self,
        id: EngagementId,
        now_ms: i64,
        code: u32,
    ) -> Result<&RestEngagement, ZoomError> {
        id.ok()
            .and_then(|Path(id)| self.view.engagement(&id))
            .filter(|e| self.exists(e.end_ms, now_ms))
            .ok_or_else(|| zoom_error(StatusCode::NOT_FOUND, code, ENGAGEMENT_NOT_FOUND))
    }

    fn engagement_item(&self, engagement: &RestEngagement, now_ms: i64) -> Value {
        with_transcript(&engagement.item, engagement.transcript.as_ref(), |ready| {
            self.exists(ready, now_ms)
        })
    }

    fn recording_item(&self, recording: &RestRecording, now_ms: i64) -> Value {
        with_transcript(&recording.item, recording.transcript.as_ref(), |ready| {
            self.exists(ready, now_ms)
        })
    }

    fn engagements_page(&self, params: &Params) -> Result<Value, ZoomError> {
        let filters = Filters::parse(params)?;
        let start = self.begin_page(params, Endpoint::ListEngagements.route(), ENGAGEMENT_PAGES)?;
        let now_ms = Utc::now().timestamp_millis();
        let matching: Vec<&RestEngagement> = self
            .view
            .engagements
            .iter()
            .filter(|e| start.in_window(e.start_ms))
            .filter(|e| self.exists(e.end_ms, now_ms) && filters.matches(e))
            .collect();
        let (from, to) = start.window.unwrap_or_default();
        let page_size = start.page_size;
        let page = self.finish_page(start, &matching, |e| (e.start_ms, e.id.as_str()));
        Ok(json!({
            "next_page_token": page.next_page_token,
            "page_size": page_size,
            "total_records": page.total_records,
            "from": iso_time(from),
            "to": iso_time(to),
            "timezone": "UTC",
            "engagements": page.items.iter().map(|e| self.engagement_item(e, now_ms)).collect::<Vec<_>>(),
        }))
    }

    /// Reference §1.5: the window applies to `query_date_type` (start time by default), items in that time's order.
    fn recordings_page(&self, params: &Params) -> Result<Value, ZoomError> {
        let by_end = one_of(
            params,
            "query_date_type",
            &["recording_start_time", "recording_end_time"],
        )? == Some("recording_end_time");
        // `channel_type` is the deprecated spelling; `channel` wins when both are given.
        let channel = match one_of(params, "channel", &["voice", "video"])? {
            Some(channel) => Some(channel),
            None => one_of(params, "channel_type", &["voice", "video"])?,
        };
        // Automatic recordings are queue-owned, on-demand ones agent-owned.
        let recording_type = one_of(params, "recording_type", &["on_demand", "automatic"])?;
        let owner_type = one_of(params, "owner_type", &["user", "queue"])?;
        let start = self.begin_page(params, Endpoint::ListRecordings.route(), THIRTY_DAY_PAGES)?;
        let now_ms = Utc::now().timestamp_millis();
        let time = |r: &RestRecording| if by_end { r.end_ms } else { r.start_ms };
        let mut matching: Vec<&RestRecording> = self
            .view
            .recordings
            .iter()
            .filter(|r| start.in_window(time(r)) && self.exists(r.ready_ms, now_ms))
            .filter(|r| channel.is_none_or(|c| c == r.channel))
            .filter(|r| recording_type.is_none_or(|t| t == r.recording_type))
            .filter(|r| owner_type.is_none_or(|t| t == r.owner_type))
            .collect();
        matching.sort_by(|a, b| (time(a), &a.id).cmp(&(time(b), &b.id)));
        let (from, to) = start.window.unwrap_or_default();
        let page_size = start.page_size;
        let page = self.finish_page(start, &matching, |r| (time(r), r.id.as_str()));
        Ok(json!({
            "next_page_token": page.next_page_token,
            "page_size": page_size,
            "total_records": page.total_records,
            "from": iso_time(from),
            "to": iso_time(to),
            "recordings": page.items.iter().map(|r| self.recording_item(r, now_ms)).collect::<Vec<_>>(),
        }))
    }

    fn engagement_recordings_page(
        &self,
        engagement: &RestEngagement,
        params: &Params,
        now_ms: i64,
    ) -> Result<Value, ZoomError> {
        let scope = format!(
            "/v2/contact_center/engagements/{}/recordings",
            engagement.id
        );
        let start = self.begin_page(params, &scope, PLAIN_PAGES)?;
        let matching: Vec<&RestRecording> = self
            .view
            .recordings
            .iter()
            .filter(|r| r.engagement_id == engagement.id && self.exists(r.ready_ms, now_ms))
            .collect();
        let page_size = start.page_size;
        let page = self.finish_page(start, &matching, |r| (r.start_ms, r.id.as_str()));
        Ok(json!({
            "next_page_token": page.next_page_token,
            "page_size": page_size,
            "total_records": page.total_records,
            "recordings": page.items.iter().map(|r| self.recording_item(r, now_ms)).collect::<Vec<_>>(),
        }))
    }

    /// Reference §1.6 (`listInboxesMessages`): the window applies to `created_at`.
    fn messages_page(&self, params: &Params) -> Result<Value, ZoomError> {
        one_of(params, "message_type", &["voicemail"])?;
        // Nothing is ever deleted in a scenario, so `status=deleted` lists nothing.
        let deleted = one_of(params, "status", &["normal", "deleted"])? == Some("deleted");
        let duration = |name: &str| {
            param(params, name)
                .map(|raw| {
                    raw.parse::<i64>()
                        .map_err(|_| bad_request(&format!("Invalid field: {name}.")))
                })
                .transpose()
        };
        let (min_duration, max_duration) =
            (duration("minimum_duration")?, duration("maximum_duration")?);
        let eq = |name: &str, value: &str| param(params, name).is_none_or(|f| f == value);
        let start = self.begin_page(params, Endpoint::InboxMessages.route(), THIRTY_DAY_PAGES)?;
        let now_ms = Utc::now().timestamp_millis();
        let matching: Vec<&RestMessage> = self
            .view
            .messages
            .iter()
            .filter(|m| {
                !deleted && start.in_window(m.created_ms) && self.exists(m.ready_ms, now_ms)
            })
            .filter(|m| {
                eq("inbox_id", &m.inbox_id)
                    && eq("engagement_id", &m.engagement_id)
                    && eq("flow_id", &m.flow_id)
                    && eq(
                        "consumer_number",
                        m.consumer_number.as_deref().unwrap_or(""),
                    )
                    && min_duration.is_none_or(|d| m.duration_s >= d)
                    && max_duration.is_none_or(|d| m.duration_s <= d)
            })
            .collect();
        let page_size = start.page_size;
        let page = self.finish_page(start, &matching, |m| (m.created_ms, m.id.as_str()));
        Ok(json!({
            "next_page_token": page.next_page_token,
            "page_size": page_size,
            "total_records": page.total_records,
            "messages": page.items.iter().map(|m| {
                with_transcript(&m.item, m.transcript.as_ref(), |ready| self.exists(ready, now_ms))
            }).collect::<Vec<_>>(),
        }))
    }

    /// Reference §1.7: every note (or one engagement's), latest version of each, by last modification.
    fn notes_page(
        &self,
        engagement_id: Option<&str>,
        params: &Params,
        now_ms: i64,
    ) -> Result<Value, ZoomError> {
        let scope = match engagement_id {
            Some(id) => format!("/v2/contact_center/engagements/{id}/notes"),
            None => Endpoint::Notes.route().to_owned(),
        };
        let start = self.begin_page(params, &scope, PLAIN_PAGES)?;
        let matching: Vec<&RestNote> = self
            .view
            .notes
            .iter()
            .filter(|n| engagement_id.is_none_or(|id| n.engagement_id == id))
            .filter(|n| self.exists(n.ready_ms, now_ms))
            .collect();
        let page_size = start.page_size;
        let page = self.finish_page(start, &matching, |n| (n.modified_ms, n.id.as_str()));
        Ok(json!({
            "next_page_token": page.next_page_token,
            "page_size": page_size,
            "total_records": page.total_records,
            "notes": page.items.iter().map(|n| n.item.clone()).collect::<Vec<_>>(),
        }))
    }
}

/// The list filters of reference §1.1 that the simulator applies (`channel_types`/`channel_sources` are ignored).
#[derive(Debug, Default)]
struct Filters {
    queue_id: Option<String>,
    user_id: Option<String>,
    consumer_number: Option<String>,
    channel: Option<String>,
    direction: Option<String>,
}

impl Filters {
    fn parse(params: &Params) -> Result<Filters, ZoomError> {
        let owned = |name: &str| param(params, name).map(str::to_owned);
        Ok(Filters {
            queue_id: owned("queue_id"),
            user_id: owned("user_id"),
            consumer_number: owned("consumer_number"),
            channel: one_of(params, "channel", &["voice", "video", "messaging", "email"])?
                .map(str::to_owned),
            direction: one_of(params, "direction", &["inbound", "outbound"])?.map(str::to_owned),
        })
    }

    fn matches(&self, e: &RestEngagement) -> bool {
        let eq =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        let any = |filter: &Option<String>, values: &[String]| {
            filter
                .as_deref()
                .is_none_or(|f| values.iter().any(|v| v == f))
        };
        eq(&self.channel, &e.channel)
            && eq(&self.direction, &e.direction)
            && any(&self.queue_id, &e.queue_ids)
            && any(&self.user_id, &e.agent_ids)
            && any(&self.consumer_number, &e.consumer_numbers)
    }
}
