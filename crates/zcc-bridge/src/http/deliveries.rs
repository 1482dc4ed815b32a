//! `/api/v1/deliveries*` and `/api/v1/sinks*`: the delivery outbox, its attempts, replay and disabled sinks.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::params::{list_limit_and_state, parse_bound, DateAs};
use super::AppState;
use crate::core::record::format_ms;
use crate::store::delivery::{DeliveryQuery, DeliveryRow, Replay, DELIVERY_STATES};
use crate::store::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    sink: Option<String>,
    state: Option<String>,
    engagement_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Cursor: deliveries older (smaller id) than this.
    before: Option<i64>,
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

/// `GET /api/v1/deliveries`: newest first, filtered by sink, state, engagement and type.
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
        before_id: p.before,
        limit,
    };
    let rows = app.store.deliveries(&query).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({
        "deliveries": rows.iter().map(view).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

/// `GET /api/v1/deliveries/{id}`: the delivery and every attempt (status, latency, start of the response).
pub(super) async fn show(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
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

/// `POST /api/v1/deliveries/{id}/replay`: sends it again (same message id) with a fresh attempt count.
pub(super) async fn replay_one(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    replayed(&app, &Replay::One(id)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    sink: String,
    /// Every dead delivery of the sink.
    #[serde(default)]
    dead: bool,
    /// Every delivery of the sink since this time (RFC 3339 or yyyy-mm-dd).
    since: Option<String>,
}

/// `POST /api/v1/deliveries/replay`: `{"sink": "...", "dead": true}` or `{"sink": "...", "since": "..."}`.
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

/// `GET /api/v1/sinks`: the configured sinks, their queues and whether a 410 disabled them.
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

/// `POST /api/v1/sinks/{name}/enable`: resumes a sink disabled by `410 Gone`.
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
