//! `/api/v1/*`: bearer-authenticated read API over records, the event log and the quarantine.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{error, AppState};
use crate::reconcile::{RunKind, RunReport};
use crate::store::{now_ms, EngagementQuery, EventQuery, Inbound, NewEvent, StoreError};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/engagements", get(list_engagements))
        .route("/engagements/{engagement_id}", get(get_engagement))
        .route(
            "/engagements/{engagement_id}/activity",
            get(super::live::engagement_activity),
        )
        .route("/agents", get(super::live::agents))
        .route("/agents/{id}", get(super::live::agent))
        .route("/stream", get(super::live::stream))
        .route("/presence", get(presence))
        .route("/events", get(list_events))
        .route("/quarantine", get(list_quarantine))
        .route("/quarantine/{id}", get(get_quarantine))
        .route("/quarantine/{id}/replay", post(replay_quarantine))
        .route("/stats", get(stats))
        .route("/reconciliation", get(reconciliation))
        .route("/reconciliation/runs", post(start_reconciliation))
        .route("/reconciliation/runs/{id}", get(reconciliation_run))
        .route("/media", get(super::media::list))
        .route("/media/stats", get(super::media::stats))
        .route("/media/retry", post(super::media::retry))
        .route(
            "/media/permalinks/revoke",
            post(super::media::revoke_permalinks),
        )
        .route("/deliveries", get(super::deliveries::list))
        .route("/deliveries/replay", post(super::deliveries::replay_many))
        .route("/deliveries/{id}", get(super::deliveries::show))
        .route(
            "/deliveries/{id}/replay",
            post(super::deliveries::replay_one),
        )
        .route("/sinks", get(super::deliveries::sinks))
        .route("/sinks/{name}/enable", post(super::deliveries::enable))
        .layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.admin_token else {
        return error(
            StatusCode::UNAUTHORIZED,
            "the admin API is disabled: set admin.token (ZCC_BRIDGE_ADMIN__TOKEN)",
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::sources::flow::bearer_token)
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
        next.run(request).await
    } else {
        tracing::warn!(path = ?request.uri().path(), "admin API request with a missing or wrong bearer token");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "missing or wrong bearer token"})),
        )
            .into_response()
    }
}

/// Records are merged moments after the acknowledgement; a read waits until everything acknowledged before it
/// is merged, so a client always reads its own writes. Under extreme lag it serves what is there.
pub(super) async fn wait_for_projection(app: &AppState) {
    if !app.projection.caught_up(PROJECTION_WAIT).await {
        tracing::warn!(wait = ?PROJECTION_WAIT, "records lag behind the event log; serving them as they are");
    }
}

const PROJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "storage error in the admin API");
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// The page size of a list endpoint (default 100, at most 1,000) and its `state` filter, checked against `states`;
/// the error is the 400's message.
pub(super) fn list_limit_and_state(
    limit: Option<u32>,
    state: Option<&str>,
    states: &[&str],
) -> Result<u32, String> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err("limit: must be between 1 and 1000".into());
    }
    match state {
        Some(state) if !states.contains(&state) => {
            Err(format!("state: one of {}", states.join(", ")))
        }
        _ => Ok(limit),
    }
}

pub(super) fn bad_query(rejection: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, rejection.body_text())
}

#[derive(Debug, Deserialize)]
struct ListParams {
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
    direction: Option<String>,
    queue_id: Option<String>,
    user_id: Option<String>,
    consumer_number: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// RFC 3339 or `yyyy-mm-dd` (midnight UTC) to epoch ms.
#[allow(clippy::result_large_err)] // the error is the finished 400 response
pub(super) fn parse_bound(name: &str, value: &str) -> Result<i64, Response> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{name}: expected an RFC 3339 time or yyyy-mm-dd, got {value:?}"),
            )
        })
}

fn encode_cursor(sort_ts: i64, engagement_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!([sort_ts, engagement_id]).to_string())
}

#[allow(clippy::result_large_err)]
fn decode_cursor(cursor: &str) -> Result<(i64, String), Response> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<(i64, String)>(&bytes).ok())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "cursor: not a cursor returned by this API",
            )
        })
}

/// `+` in a query string decodes to a space; phone numbers are E.164, so restore it.
fn phone_number(value: String) -> String {
    match value.strip_prefix(' ') {
        Some(rest) => format!("+{}", rest.trim_start()),
        None => value,
    }
}

async fn list_engagements(
    State(app): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(r) => return bad_query(r),
    };
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit: must be between 1 and 500");
    }
    let mut query = EngagementQuery {
        channel: p.channel,
        direction: p.direction,
        queue_id: p.queue_id,
        user_id: p.user_id,
        consumer_number: p.consumer_number.map(phone_number),
        limit,
        ..Default::default()
    };
    for (name, value, slot) in [
        ("from", &p.from, &mut query.from),
        ("to", &p.to, &mut query.to),
    ] {
        if let Some(value) = value {
            match parse_bound(name, value) {
                Ok(ms) => *slot = Some(ms),
                Err(r) => return r,
            }
        }
    }
    if let Some(cursor) = &p.cursor {
        match decode_cursor(cursor) {
            Ok(after) => query.after = Some(after),
            Err(r) => return r,
        }
    }
    wait_for_projection(&app).await;
    match app.store.engagements(&query).await {
        Ok(states) => {
            let next_cursor = (states.len() == limit as usize)
                .then(|| {
                    states
                        .last()
                        .map(|s| encode_cursor(s.sort_ts(), &s.engagement_id))
                })
                .flatten();
            let mut records: Vec<_> = states.iter().map(|s| s.to_record()).collect();
            if let Err(e) = super::media::attach(&app, &mut records).await {
                return store_error(e);
            }
            Json(json!({"engagements": records, "next_cursor": next_cursor})).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn get_engagement(
    State(app): State<AppState>,
    Path(engagement_id): Path<String>,
) -> Response {
    wait_for_projection(&app).await;
    match app.store.engagement(&engagement_id).await {
        Ok(Some(state)) => {
            let mut records = [state.to_record()];
            if let Err(e) = super::media::attach(&app, &mut records).await {
                return store_error(e);
            }
            let [record] = records;
            Json(record).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no engagement {engagement_id}"),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct EventParams {
    engagement_id: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

async fn list_events(
    State(app): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(r) => return bad_query(r),
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit: must be between 1 and 1000");
    }
    let query = EventQuery {
        engagement_id: p.engagement_id,
        after_id: p.after,
        limit,
        with_raw: false,
    };
    match app.store.events(&query).await {
        Ok(events) => {
            let next_after = (events.len() == limit as usize)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            Json(json!({"events": events, "next_after": next_after})).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct PageParams {
    after: Option<i64>,
    limit: Option<u32>,
}

/// The body as text when it is UTF-8, else base64; `max` bytes at most.
fn body_json(raw: &[u8], max: usize) -> serde_json::Value {
    let shown = &raw[..raw.len().min(max)];
    let truncated = raw.len() > max;
    match std::str::from_utf8(shown) {
        Ok(text) => json!({"body": text, "body_truncated": truncated, "bytes": raw.len()}),
        Err(_) => {
            json!({"body_base64": STANDARD.encode(shown), "body_truncated": truncated, "bytes": raw.len()})
        }
    }
}

fn quarantine_json(item: &crate::store::QuarantineItem, max_body: usize) -> serde_json::Value {
    let mut value = json!(item);
    if let (Some(obj), serde_json::Value::Object(body)) =
        (value.as_object_mut(), body_json(&item.raw, max_body))
    {
        obj.extend(body);
    }
    value
}

async fn list_quarantine(
    State(app): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(r) => return bad_query(r),
    };
    let limit = p.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit: must be between 1 and 200");
    }
    match app.store.quarantined(p.after, limit).await {
        Ok(items) => {
            let next_after = (items.len() == limit as usize)
                .then(|| items.last().map(|i| i.id))
                .flatten();
            let items: Vec<_> = items.iter().map(|i| quarantine_json(i, 4096)).collect();
            Json(json!({"items": items, "next_after": next_after})).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn get_quarantine(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
    match app.store.quarantine_item(id).await {
        Ok(Some(item)) => Json(quarantine_json(&item, usize::MAX)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no quarantined item {id}")),
        Err(e) => store_error(e),
    }
}

/// Parses a quarantined body again with its own source's adapter (after a parser or mapping fix, say) and logs
/// it if it now parses.
async fn replay_quarantine(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
    let item = match app.store.quarantine_item(id).await {
        Ok(Some(item)) => item,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no quarantined item {id}")),
        Err(e) => return store_error(e),
    };
    if let Some(event_id) = item.resolved_event_id {
        return error(
            StatusCode::CONFLICT,
            format!("already replayed as event {event_id}"),
        );
    }
    match app.decoder.replay(
        &item.source,
        item.raw.into(),
        item.received_at,
        item.request_id.clone(),
    ) {
        Ok(event) => append_replay(&app, id, event).await,
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

async fn append_replay(app: &AppState, id: i64, event: NewEvent) -> Response {
    match app
        .log
        .append_one(Inbound::Replay {
            quarantine_id: id,
            event,
        })
        .await
    {
        Ok(outcome) => {
            tracing::info!(quarantine_id = id, ?outcome, "quarantined item replayed");
            Json(outcome).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Presence sync per user: desired vs. actual status, what we hold and will restore, the next call, the last
/// error, and the latest audit lines; and the Genesys users whose sessions were ignored for want of a Zoom user.
async fn presence(State(app): State<AppState>) -> Response {
    wait_for_projection(&app).await;
    match crate::presence::view(&*app.store, 20).await {
        Ok(users) => {
            let unmapped: Vec<_> = app.genesys.iter().flat_map(|org| org.unmapped()).collect();
            Json(json!({ "users": users, "unmapped": unmapped })).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn stats(State(app): State<AppState>) -> Response {
    match app.store.stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/reconciliation`: the last run's result, recent runs and the fetch queue.
async fn reconciliation(State(app): State<AppState>) -> Response {
    let runs = match app.store.runs(None, None, 20).await {
        Ok(runs) => runs,
        Err(e) => return store_error(e),
    };
    let fetch_queue = match app.store.fetch_queue_stats().await {
        Ok(stats) => stats,
        Err(e) => return store_error(e),
    };
    let reports: Vec<RunReport> = runs
        .iter()
        // The schedule's start marker (an empty window) is bookkeeping, not a run.
        .filter(|r| r.window_from != r.window_to)
        .map(RunReport::from_row)
        .collect();
    let last_run = reports.iter().find(|r| r.status != "running").cloned();
    Json(json!({
        "enabled": app.reconciler.is_some(),
        "last_run": last_run,
        "running": reports.iter().filter(|r| r.status == "running").collect::<Vec<_>>(),
        "runs": reports,
        "fetch_queue": fetch_queue,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct RunRequest {
    from: String,
    to: String,
}

/// `POST /api/v1/reconciliation/runs {"from", "to"}`: reconciles a window now, in the background; answers 202
/// with the run's id (poll `GET /api/v1/reconciliation/runs/{id}`).
async fn start_reconciliation(
    State(app): State<AppState>,
    body: Result<Json<RunRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(reconciler) = app.reconciler.clone() else {
        return error(
            StatusCode::CONFLICT,
            "reconciliation needs the Zoom app: set zoom.account_id, zoom.client_id and zoom.client_secret",
        );
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let from = match parse_bound("from", &request.from) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let to = match parse_bound("to", &request.to) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if from > to {
        return error(StatusCode::BAD_REQUEST, "from must not be later than to");
    }
    let row = match app
        .store
        .create_run(RunKind::Manual.as_str(), from, to, now_ms())
        .await
    {
        Ok(row) => row,
        Err(e) => return store_error(e),
    };
    let id = row.id;
    tokio::spawn(async move {
        if let Err(e) = reconciler.execute(row, &|_| {}).await {
            tracing::error!(run = id, error = %e, "reconciliation run failed");
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "running", "url": format!("/api/v1/reconciliation/runs/{id}")})),
    )
        .into_response()
}

async fn reconciliation_run(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
    match app.store.run(id).await {
        Ok(Some(row)) => Json(RunReport::from_row(&row)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no reconciliation run {id}")),
        Err(e) => store_error(e),
    }
}
