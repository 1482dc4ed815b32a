//! `/api/v1/deliveries*` and `/api/v1/sinks*`: the delivery outbox, its attempts, replay and disabled sinks.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::params::{decode_cursor, list_limit_and_state, next_cursor, parse_bound, DateAs};
use super::AppState;
use crate::core::record::format_ms;
use crate::store::delivery::{DeliveryQuery, DeliveryRow, Replay, DELIVERY_STATES};
use crate::store::now_ms;

/// Filters of `GET /api/v1/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    /// A sink's name.
    sink: Option<String>,
    /// `pending`, `delivered` or `dead`.
    #[param(pattern = "^(pending|delivered|dead)$")]
    state: Option<String>,
    engagement_id: Option<String>,
    /// The message type (`engagement.completed`, ...).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

fn view(row: &DeliveryRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "sink": row.sink,
        "msg_id": row.msg_id,
        "type": row.event_type,
        "engagement_id": row.engagement_id,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": (row.state == "pending").then(|| format_ms(row.next_attempt_at)).flatten(),
        "created_at": format_ms(row.created_at),
        "delivered_at": row.delivered_at.and_then(format_ms),
        "last_status": row.last_status,
        "last_error": row.last_error,
    })
}

/// Deliveries to sinks, newest first, filtered by sink, state, engagement and type.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "delivery", params(ListParams),
    responses(
        (status = 200, description = "`deliveries` and `next_cursor`", body = Object),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(app): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params?;
    let limit = list_limit_and_state(p.limit, p.state.as_deref(), &DELIVERY_STATES)?;
    let query = DeliveryQuery {
        sink: p.sink,
        state: p.state,
        engagement_id: p.engagement_id,
        event_type: p.event_type,
        before_id: decode_cursor(p.cursor.as_deref())?,
        limit,
    };
    let rows = app.store.deliveries(&query).await?;
    Ok(Json(json!({
        "deliveries": rows.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor(&rows, limit, |r| r.id),
    })))
}

/// The delivery and every attempt (status, duration, the start of the response).
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "delivery",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery with its `attempt_log`", body = Object),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn show(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Path(id) = id?;
    let row = app
        .store
        .delivery(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
    let attempts = app.store.delivery_attempts(id).await?;
    let mut body = view(&row);
    body["attempt_log"] = attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "started_at": format_ms(a.started_at),
                "duration_ms": a.duration_ms,
                "outcome": a.outcome,
                "status": a.status,
                "response": a.response,
                "error": a.error,
            })
        })
        .collect();
    Ok(Json(body))
}

/// Sends a delivery again (same message id) with a fresh attempt count.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/replay", tag = "delivery",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "`replayed`: 1", body = Object),
        (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery, or it is still pending", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn replay_one(
    State(app): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Path(id) = id?;
    replayed(&app, &Replay::One(id)).await
}

/// Which deliveries of a sink to send again: `dead: true`, or `since` a time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    sink: String,
    /// Every dead delivery of the sink.
    #[serde(default)]
    dead: bool,
    /// Every delivery of the sink since this time (RFC 3339 or yyyy-mm-dd).
    since: Option<String>,
}

/// `{"sink": "...", "dead": true}` or `{"sink": "...", "since": "..."}`: sends those deliveries again.
#[utoipa::path(post, path = "/api/v1/deliveries/replay", tag = "delivery", request_body = ReplayBody,
    responses(
        (status = 200, description = "`replayed`: how many", body = Object),
        (status = 400, description = "Neither or both of dead and since; a time that could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a replay request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn replay_many(
    State(app): State<AppState>,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Json(body) = body?;
    let replay = match (body.dead, body.since) {
        (true, None) => Replay::Dead { sink: body.sink },
        (false, Some(since)) => Replay::Since {
            sink: body.sink,
            from: parse_bound("since", &since, DateAs::Start)?,
        },
        _ => {
            return Err(ApiError::bad_request(
                "give either \"dead\": true or \"since\": a time",
            ))
        }
    };
    replayed(&app, &replay).await
}

async fn replayed(app: &AppState, replay: &Replay) -> ApiResult<Json<serde_json::Value>> {
    let n = app.store.replay_deliveries(replay, now_ms()).await?;
    tracing::info!(?replay, replayed = n, "deliveries replayed");
    app.store.signals().deliveries_queued();
    if let (0, Replay::One(id)) = (n, replay) {
        return Err(ApiError::not_found(format!(
            "no delivery {id} to replay (unknown, or still pending)"
        )));
    }
    Ok(Json(json!({"replayed": n})))
}

/// The configured sinks, their queues and whether a 410 disabled them.
#[utoipa::path(get, path = "/api/v1/sinks", tag = "delivery",
    responses((status = 200, description = "`sinks`", body = Object)))]
pub(super) async fn sinks(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let counts = app.store.delivery_counts().await?;
    let disabled = app.store.disabled_sinks().await?;
    let list: Vec<_> = app
        .sinks
        .iter()
        .map(|s| {
            let c = counts
                .iter()
                .find(|c| c.sink == s.name)
                .cloned()
                .unwrap_or_default();
            let d = disabled.iter().find(|d| d.sink == s.name);
            json!({
                "name": s.name,
                "kind": s.kind.as_str(),
                "deliver": s.deliver,
                "pending": c.pending,
                "delivered": c.delivered,
                "dead": c.dead,
                "oldest_pending_at": c.oldest_pending_at.and_then(format_ms),
                "disabled": d.map(|d| json!({"at": format_ms(d.disabled_at), "reason": d.reason})),
            })
        })
        .collect();
    Ok(Json(json!({"sinks": list})))
}

/// Resumes a sink disabled by `410 Gone`.
#[utoipa::path(post, path = "/api/v1/sinks/{name}/enable", tag = "delivery",
    params(("name" = String, Path, description = "The sink's name")),
    responses(
        (status = 200, description = "`sink` and `was_disabled`", body = Object),
        (status = 404, description = "No such sink is configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn enable(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !app.sinks.iter().any(|s| s.name == name) {
        return Err(ApiError::not_found(format!(
            "no sink {name:?} is configured"
        )));
    }
    let was = app.store.enable_sink(&name).await?;
    tracing::info!(sink = ?name, was_disabled = was, "sink enabled");
    app.store.signals().deliveries_queued();
    Ok(Json(json!({"sink": name, "was_disabled": was})))
}
