//! `/api/v1/*`: bearer-authenticated read API over records, the event log and the quarantine.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::params::{decode_cursor, next_cursor, page_limit, parse_bound, DateAs};
use super::AppState;
use crate::auth;
use crate::core::EngagementRecord;
use crate::reconcile::{RunKind, RunReport};
use crate::store::{now_ms, EngagementQuery, EventQuery, Inbound, LogStats, LoggedEvent, Outcome};

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
        .route("/events/{id}", get(get_event))
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

/// Every `/api/v1` route needs the admin token or an API key whose role allows the route (`auth`): 401 without
/// valid credentials, 403 with a key whose role is too low.
async fn require_admin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::sources::flow::bearer_token)
        .unwrap_or("");
    let principal = match auth::authenticate(
        &*app.store,
        app.admin_token.as_ref(),
        presented,
        now_ms(),
    )
    .await
    {
        Ok(principal) => principal,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(principal) = principal else {
        tracing::warn!(path = ?request.uri().path(), "admin API request with a missing or wrong bearer token");
        return ApiError::unauthorized(if app.admin_token.is_none() && presented.is_empty() {
            "the admin API needs admin.token (ZCC_BRIDGE_ADMIN__TOKEN) or an API key (zcc-bridge keys create)"
        } else {
            "missing or wrong bearer token"
        })
        .into_response();
    };
    let needed = auth::required_role(request.method(), request.uri().path());
    if principal.role < needed {
        tracing::warn!(
            path = ?request.uri().path(),
            key_id = ?principal.key_id,
            role = %principal.role,
            needed = %needed,
            "admin API request refused for the key's role"
        );
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this key's role ({}) may not do this; it needs {needed}",
                principal.role
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Filters of `GET /api/v1/engagements`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Engagements that started at or after this time (RFC 3339, or `yyyy-mm-dd` for that day's start, UTC).
    from: Option<String>,
    /// Engagements that started before this time (a date includes that whole day).
    to: Option<String>,
    /// `voice`, `video`, `messaging`, `email`, ...
    channel: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    /// A `cc_queue_id` the engagement passed through.
    queue_id: Option<String>,
    /// An agent's user id.
    user_id: Option<String>,
    /// The consumer's number (E.164; a `+` sent unencoded is restored).
    consumer_number: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `+` in a query string decodes to a space; phone numbers are E.164, so restore it.
fn phone_number(value: String) -> String {
    match value.strip_prefix(' ') {
        Some(rest) => format!("+{}", rest.trim_start()),
        None => value,
    }
}

/// A page of engagement records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EngagementPage {
    engagements: Vec<EngagementRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Engagement records, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/engagements", tag = "records", params(ListParams),
    responses(
        (status = 200, description = "A page of records", body = EngagementPage),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_engagements(
    State(app): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<EngagementPage>> {
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
    query.after = decode_cursor(p.cursor.as_deref())?;
    app.wait_for_projection().await;
    let states = app.store.engagements(&query).await?;
    let next_cursor = next_cursor(&states, limit, |s| (s.sort_ts(), s.engagement_id.clone()));
    let mut engagements: Vec<_> = states.iter().map(|s| s.to_record()).collect();
    super::media::attach(&app, &mut engagements).await?;
    Ok(Json(EngagementPage {
        engagements,
        next_cursor,
    }))
}

/// One engagement's record (DESIGN.md "The engagement record"; docs/record.md).
#[utoipa::path(get, path = "/api/v1/engagements/{engagement_id}", tag = "records",
    params(("engagement_id" = String, Path, description = "Zoom's engagement id")),
    responses(
        (status = 200, description = "The record", body = EngagementRecord),
        (status = 404, description = "No event names this engagement", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_engagement(
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

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventParams {
    /// Only events of this engagement.
    engagement_id: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The body of a logged or quarantined item: as text when it is UTF-8, else base64.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RawBody {
    /// The body as received (UTF-8), cut at the list's limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// The body in base64 when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// Whether `body` was cut (lists show 4 KiB; the item itself shows all of it).
    body_truncated: bool,
    /// The body's full length in bytes.
    bytes: usize,
}

impl RawBody {
    fn of(raw: &[u8], max: usize) -> Self {
        let shown = &raw[..raw.len().min(max)];
        let (body, body_base64) = match std::str::from_utf8(shown) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(STANDARD.encode(shown))),
        };
        Self {
            body,
            body_base64,
            body_truncated: raw.len() > max,
            bytes: raw.len(),
        }
    }
}

/// An event of the log with the body it arrived with.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventView {
    /// The log's id (ascending in arrival order).
    id: i64,
    /// What made it a duplicate of another delivery (SHA-256 of the canonical event).
    dedup_key: String,
    /// `webhook`, `websocket`, `poll`, `flow`, `genesys`, ...
    source: String,
    event_type: String,
    engagement_id: Option<String>,
    /// Zoom's `event_ts`: epoch milliseconds (Zoom's name, kept).
    event_ts: Option<i64>,
    /// When the bridge received it.
    received_at: Option<String>,
    /// Zoom's `x-zm-request-id`, when sent.
    request_id: Option<String>,
    /// Redeliveries of the same event since.
    duplicate_count: i64,
    #[serde(flatten)]
    raw: RawBody,
}

impl EventView {
    fn of(event: &LoggedEvent, max_body: usize) -> Self {
        Self {
            id: event.id,
            dedup_key: event.dedup_key.clone(),
            source: event.source.clone(),
            event_type: event.event_type.clone(),
            engagement_id: event.engagement_id.clone(),
            event_ts: event.event_ts,
            received_at: crate::core::record::format_ms(event.received_at),
            request_id: event.request_id.clone(),
            duplicate_count: event.duplicate_count,
            raw: RawBody::of(&event.raw, max_body),
        }
    }
}

/// A page of the event log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventPage {
    events: Vec<EventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The event log in arrival order, each event with its body (cut at 4 KiB; `/events/{id}` shows all of it).
#[utoipa::path(get, path = "/api/v1/events", tag = "records", params(EventParams),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_events(
    State(app): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> ApiResult<Json<EventPage>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let query = EventQuery {
        engagement_id: p.engagement_id,
        after_id: decode_cursor(p.cursor.as_deref())?,
        limit,
        with_raw: true,
    };
    let events = app.store.events(&query).await?;
    Ok(Json(EventPage {
        next_cursor: next_cursor(&events, limit, |e| e.id),
        events: events.iter().map(|e| EventView::of(e, 4096)).collect(),
    }))
}

/// One event of the log with its whole body.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "records",
    params(("id" = i64, Path, description = "The event's id in the log")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_event(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<EventView>> {
    let Path(id) = id?;
    let query = EventQuery {
        engagement_id: None,
        after_id: Some(id.saturating_sub(1)),
        limit: 1,
        with_raw: true,
    };
    let event = app
        .store
        .events(&query)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    Ok(Json(EventView::of(&event, usize::MAX)))
}

/// `?cursor=&limit=` of the quarantine list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageParams {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// An item received but not understood, kept with its body for replay.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct QuarantineView {
    id: i64,
    /// The source whose adapter refused it (`webhook`, `flow:NAME`, ...).
    source: String,
    received_at: Option<String>,
    request_id: Option<String>,
    /// Why it could not be read.
    reason: String,
    /// The event it became when replayed.
    resolved_event_id: Option<i64>,
    resolved_at: Option<String>,
    #[serde(flatten)]
    raw: RawBody,
}

impl QuarantineView {
    fn of(item: &crate::store::QuarantineItem, max_body: usize) -> Self {
        Self {
            id: item.id,
            source: item.source.clone(),
            received_at: crate::core::record::format_ms(item.received_at),
            request_id: item.request_id.clone(),
            reason: item.reason.clone(),
            resolved_event_id: item.resolved_event_id,
            resolved_at: item.resolved_at.and_then(crate::core::record::format_ms),
            raw: RawBody::of(&item.raw, max_body),
        }
    }
}

/// A page of the quarantine, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct QuarantinePage {
    items: Vec<QuarantineView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// What was received but could not be read, oldest first (bodies cut at 4 KiB).
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "records", params(PageParams),
    responses(
        (status = 200, description = "A page of quarantined items", body = QuarantinePage),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_quarantine(
    State(app): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<QuarantinePage>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 20, 200)?;
    let items = app
        .store
        .quarantined(decode_cursor(p.cursor.as_deref())?, limit)
        .await?;
    Ok(Json(QuarantinePage {
        next_cursor: next_cursor(&items, limit, |i| i.id),
        items: items.iter().map(|i| QuarantineView::of(i, 4096)).collect(),
    }))
}

async fn quarantine_item(app: &AppState, id: i64) -> ApiResult<crate::store::QuarantineItem> {
    app.store
        .quarantine_item(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no quarantined item {id}")))
}

/// One quarantined item with its whole body.
#[utoipa::path(get, path = "/api/v1/quarantine/{id}", tag = "records",
    params(("id" = i64, Path, description = "The quarantined item's id")),
    responses(
        (status = 200, description = "The item", body = QuarantineView),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_quarantine(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<QuarantineView>> {
    let Path(id) = id?;
    let item = quarantine_item(&app, id).await?;
    Ok(Json(QuarantineView::of(&item, usize::MAX)))
}

/// Parses a quarantined body again with its own source's adapter (after a parser or mapping fix, say) and logs
/// it if it now parses.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/replay", tag = "operations",
    params(("id" = i64, Path, description = "The quarantined item's id")),
    responses(
        (status = 200, description = "Logged (or found to be a duplicate)", body = Outcome),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already replayed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Still cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log could not be written", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn replay_quarantine(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Outcome>> {
    let Path(id) = id?;
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
#[utoipa::path(get, path = "/api/v1/presence", tag = "real time",
    responses((status = 200, description = "`users` (desired and actual status, held status, next call, last error, audit) and `unmapped` Genesys users", body = Object)))]
pub(super) async fn presence(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    app.wait_for_projection().await;
    let users = crate::presence::view(&*app.store, 20).await?;
    let unmapped: Vec<_> = app.genesys.iter().flat_map(|org| org.unmapped()).collect();
    Ok(Json(json!({ "users": users, "unmapped": unmapped })))
}

/// Counts of the event log and the records.
#[utoipa::path(get, path = "/api/v1/stats", tag = "records",
    responses((status = 200, description = "Counts", body = LogStats)))]
pub(super) async fn stats(State(app): State<AppState>) -> ApiResult<Json<LogStats>> {
    Ok(Json(app.store.stats().await?))
}

/// `GET /api/v1/reconciliation`: the last run's result, recent runs and the fetch queue.
#[utoipa::path(get, path = "/api/v1/reconciliation", tag = "operations",
    responses((status = 200, description = "`enabled`, `last_run`, `running`, `runs` (the 20 latest), `fetch_queue` and `repaired_by_fetches`", body = ReconciliationOverview)))]
pub(super) async fn reconciliation(
    State(app): State<AppState>,
) -> ApiResult<Json<ReconciliationOverview>> {
    let runs = app.store.runs(None, None, 20).await?;
    let fetch_queue = app.store.fetch_queue_stats().await?;
    let reports: Vec<RunReport> = runs
        .iter()
        // The schedule's start marker (an empty nightly window) is bookkeeping, not a run.
        .filter(|r| !(r.kind == "nightly" && r.window_from == r.window_to))
        .map(RunReport::from_row)
        .collect();
    let last_run = reports.iter().find(|r| r.status != "running").cloned();
    let repaired_by_fetches = app.reconciler.as_ref().map(|r| r.repaired_by_fetches());
    Ok(Json(ReconciliationOverview {
        enabled: app.reconciler.is_some(),
        repaired_by_fetches,
        last_run,
        running: reports
            .iter()
            .filter(|r| r.status == "running")
            .cloned()
            .collect(),
        runs: reports,
        fetch_queue,
    }))
}

/// Reconciliation at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReconciliationOverview {
    /// Whether a Zoom app is configured (runs and fetches need one).
    enabled: bool,
    /// What event-driven fetches added that the events had missed, since the process started.
    repaired_by_fetches: Option<crate::reconcile::MissedItems>,
    /// The latest finished run.
    last_run: Option<RunReport>,
    running: Vec<RunReport>,
    /// The 20 latest runs, newest first.
    runs: Vec<RunReport>,
    fetch_queue: crate::store::FetchQueueStats,
}

/// A window to reconcile.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct RunRequest {
    /// RFC 3339, or `yyyy-mm-dd` for that day's start (UTC).
    from: String,
    /// RFC 3339, or `yyyy-mm-dd` for that day's last second.
    to: String,
}

/// A run started.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RunStarted {
    id: i64,
    /// `running`.
    status: String,
    /// Where to follow it.
    url: String,
}

/// `POST /api/v1/reconciliation/runs {"from", "to"}`: reconciles a window now, in the background; answers 202
/// with the run's id (poll `GET /api/v1/reconciliation/runs/{id}`).
#[utoipa::path(post, path = "/api/v1/reconciliation/runs", tag = "operations", request_body = RunRequest,
    responses(
        (status = 202, description = "The run started in the background", body = RunStarted),
        (status = 400, description = "The window could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No Zoom app is configured", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a window", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The run could not be recorded", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn start_reconciliation(
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
        Json(RunStarted {
            id,
            status: "running".into(),
            url: format!("/api/v1/reconciliation/runs/{id}"),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/reconciliation/runs/{id}", tag = "operations",
    params(("id" = i64, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = RunReport),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn reconciliation_run(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<RunReport>> {
    let Path(id) = id?;
    let row = app
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no reconciliation run {id}")))?;
    Ok(Json(RunReport::from_row(&row)))
}
