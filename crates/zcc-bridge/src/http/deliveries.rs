//! `/api/v1/deliveries*` and `/api/v1/sinks*`: the delivery outbox, its attempts, replay and disabled sinks.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api::{bad_query, parse_bound, store_error};
use super::{error, AppState};
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
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(r) => return bad_query(r),
    };
    let limit =
        match super::api::list_limit_and_state(p.limit, p.state.as_deref(), &DELIVERY_STATES) {
            Ok(limit) => limit,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        };
    let query = DeliveryQuery {
        sink: p.sink,
        state: p.state,
        engagement_id: p.engagement_id,
        event_type: p.event_type,
        before_id: p.before,
        limit,
    };
    match app.store.deliveries(&query).await {
        Ok(rows) => {
            let next = (rows.len() == limit as usize)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            Json(json!({
                "deliveries": rows.iter().map(view).collect::<Vec<_>>(),
                "next_before": next,
            }))
            .into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/deliveries/{id}`: the delivery and every attempt (status, latency, start of the response).
pub(super) async fn show(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
    let row = match app.store.delivery(id).await {
        Ok(Some(row)) => row,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no delivery {id}")),
        Err(e) => return store_error(e),
    };
    let attempts = match app.store.delivery_attempts(id).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
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
    Json(body).into_response()
}

/// `POST /api/v1/deliveries/{id}/replay`: sends it again (same message id) with a fresh attempt count.
pub(super) async fn replay_one(State(app): State<AppState>, Path(id): Path<i64>) -> Response {
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
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(r) => return error(StatusCode::BAD_REQUEST, r.body_text()),
    };
    let replay = match (body.dead, body.since) {
        (true, None) => Replay::Dead { sink: body.sink },
        (false, Some(since)) => match parse_bound("since", &since) {
            Ok(from) => Replay::Since {
                sink: body.sink,
                from,
            },
            Err(response) => return response,
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give either \"dead\": true or \"since\": a time",
            )
        }
    };
    replayed(&app, &replay).await
}

async fn replayed(app: &AppState, replay: &Replay) -> Response {
    match app.store.replay_deliveries(replay, now_ms()).await {
        Ok(n) => {
            tracing::info!(?replay, replayed = n, "deliveries replayed");
            app.store.signals().deliveries_queued();
            if n == 0 {
                if let Replay::One(id) = replay {
                    return error(
                        StatusCode::NOT_FOUND,
                        format!("no delivery {id} to replay (unknown, or still pending)"),
                    );
                }
            }
            Json(json!({"replayed": n})).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/sinks`: the configured sinks, their queues and whether a 410 disabled them.
pub(super) async fn sinks(State(app): State<AppState>) -> Response {
    let (counts, disabled) = match (
        app.store.delivery_counts().await,
        app.store.disabled_sinks().await,
    ) {
        (Ok(c), Ok(d)) => (c, d),
        (Err(e), _) | (_, Err(e)) => return store_error(e),
    };
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
    Json(json!({"sinks": list})).into_response()
}

/// `POST /api/v1/sinks/{name}/enable`: resumes a sink disabled by `410 Gone`.
pub(super) async fn enable(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    if !app.sinks.iter().any(|s| s.name == name) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no sink {name:?} is configured"),
        );
    }
    match app.store.enable_sink(&name).await {
        Ok(was) => {
            tracing::info!(sink = ?name, was_disabled = was, "sink enabled");
            app.store.signals().deliveries_queued();
            Json(json!({"sink": name, "was_disabled": was})).into_response()
        }
        Err(e) => store_error(e),
    }
}
