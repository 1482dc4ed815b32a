//! `/api/v1/*`: bearer-authenticated read API over records, the event log and the quarantine.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::{ApiError, ApiResult};
use super::params::{page_limit, parse_bound, DateAs};
use super::AppState;
use crate::core::EngagementRecord;
use crate::reconcile::{RunKind, RunReport};
use crate::store::{now_ms, EngagementQuery, EventQuery, Inbound, Outcome};

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
        .merge(super::chat::admin_routes())
        .layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.admin_token else {
        return ApiError::unauthorized(
            "the admin API is disabled: set admin.token (ZCC_BRIDGE_ADMIN__TOKEN)",
        )
        .into_response();
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
        ApiError::unauthorized("missing or wrong bearer token").into_response()
    }
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

fn encode_cursor(sort_ts: i64, engagement_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!([sort_ts, engagement_id]).to_string())
}

fn decode_cursor(cursor: &str) -> ApiResult<(i64, String)> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<(i64, String)>(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("cursor: not a cursor returned by this API"))
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
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 50, 500)?;
    let mut query = EngagementQuery {
        channel: p.channel,
        direction: p.direction,
        queue_id: p.queue_id,
        user_id: p.user_id,
        consumer_number: p.consumer_number.map(phone_number),
        limit,
        ..Default::default()
    };
    if let Some(from) = &p.from {
        query.from = Some(parse_bound("from", from, DateAs::Start)?);
    }
    if let Some(to) = &p.to {
        query.to = Some(parse_bound("to", to, DateAs::EndExclusive)?);
    }
    if let Some(cursor) = &p.cursor {
        query.after = Some(decode_cursor(cursor)?);
    }
    app.wait_for_projection().await;
    let states = app.store.engagements(&query).await?;
    let next_cursor = (states.len() == limit as usize)
        .then(|| {
            states
                .last()
                .map(|s| encode_cursor(s.sort_ts(), &s.engagement_id))
        })
        .flatten();
    let mut records: Vec<_> = states.iter().map(|s| s.to_record()).collect();
    super::media::attach(&app, &mut records).await?;
    Ok(Json(
        json!({"engagements": records, "next_cursor": next_cursor}),
    ))
}

async fn get_engagement(
    State(app): State<AppState>,
    Path(engagement_id): Path<String>,
) -> ApiResult<Json<EngagementRecord>> {
    app.wait_for_projection().await;
    let state = app
        .store
        .engagement(&engagement_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no engagement {engagement_id}")))?;
    let mut records = [state.to_record()];
    super::media::attach(&app, &mut records).await?;
    let [record] = records;
    Ok(Json(record))
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
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let query = EventQuery {
        engagement_id: p.engagement_id,
        after_id: p.after,
        limit,
        with_raw: false,
    };
    let events = app.store.events(&query).await?;
    let next_after = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(json!({"events": events, "next_after": next_after})))
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
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 20, 200)?;
    let items = app.store.quarantined(p.after, limit).await?;
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    let items: Vec<_> = items.iter().map(|i| quarantine_json(i, 4096)).collect();
    Ok(Json(json!({"items": items, "next_after": next_after})))
}

async fn quarantine_item(app: &AppState, id: i64) -> ApiResult<crate::store::QuarantineItem> {
    app.store
        .quarantine_item(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no quarantined item {id}")))
}

async fn get_quarantine(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    let item = quarantine_item(&app, id).await?;
    Ok(Json(quarantine_json(&item, usize::MAX)))
}

/// Parses a quarantined body again with its own source's adapter (after a parser or mapping fix, say) and logs
/// it if it now parses.
async fn replay_quarantine(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Outcome>> {
    let item = quarantine_item(&app, id).await?;
    if let Some(event_id) = item.resolved_event_id {
        return Err(ApiError::conflict(format!(
            "already replayed as event {event_id}"
        )));
    }
    let event = app
        .decoder
        .replay(
            &item.source,
            item.raw.into(),
            item.received_at,
            item.request_id.clone(),
        )
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let outcome = app
        .log
        .append_one(Inbound::Replay {
            quarantine_id: id,
            event,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    tracing::info!(quarantine_id = id, ?outcome, "quarantined item replayed");
    Ok(Json(outcome))
}

/// Presence sync per user: desired vs. actual status, what we hold and will restore, the next call, the last
/// error, and the latest audit lines; and the Genesys users whose sessions were ignored for want of a Zoom user.
async fn presence(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    app.wait_for_projection().await;
    let users = crate::presence::view(&*app.store, 20).await?;
    let unmapped: Vec<_> = app.genesys.iter().flat_map(|org| org.unmapped()).collect();
    Ok(Json(json!({ "users": users, "unmapped": unmapped })))
}

async fn stats(State(app): State<AppState>) -> ApiResult<Json<crate::store::LogStats>> {
    Ok(Json(app.store.stats().await?))
}

/// `GET /api/v1/reconciliation`: the last run's result, recent runs and the fetch queue.
async fn reconciliation(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let runs = app.store.runs(None, None, 20).await?;
    let fetch_queue = app.store.fetch_queue_stats().await?;
    let reports: Vec<RunReport> = runs
        .iter()
        // The schedule's start marker (an empty nightly window) is bookkeeping, not a run.
        .filter(|r| !(r.kind == "nightly" && r.window_from == r.window_to))
        .map(RunReport::from_row)
        .collect();
    let last_run = reports.iter().find(|r| r.status != "running").cloned();
    Ok(Json(json!({
        "enabled": app.reconciler.is_some(),
        "last_run": last_run,
        "running": reports.iter().filter(|r| r.status == "running").collect::<Vec<_>>(),
        "runs": reports,
        "fetch_queue": fetch_queue,
    })))
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
    body: Result<Json<RunRequest>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Some(reconciler) = app.reconciler.clone() else {
        return Err(ApiError::conflict(
            "reconciliation needs the Zoom app: set zoom.account_id, zoom.client_id and zoom.client_secret",
        ));
    };
    let Json(request) = body?;
    let from = parse_bound("from", &request.from, DateAs::Start)?;
    let to = parse_bound("to", &request.to, DateAs::EndInclusive)?;
    if from > to {
        return Err(ApiError::bad_request("from must not be later than to"));
    }
    let row = app
        .store
        .create_run(RunKind::Manual.as_str(), from, to, now_ms())
        .await?;
    let id = row.id;
    tokio::spawn(async move {
        if let Err(e) = reconciler.execute(row, &|_| {}).await {
            tracing::error!(run = id, error = %e, "reconciliation run failed");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"id": id, "status": "running", "url": format!("/api/v1/reconciliation/runs/{id}")}),
        ),
    ))
}

async fn reconciliation_run(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<RunReport>> {
    let row = app
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no reconciliation run {id}")))?;
    Ok(Json(RunReport::from_row(&row)))
}
