//! `POST /webhooks/flow/{source}`: Flow event script posts. Authenticate (bearer token or body signature), make
//! the event durable, then acknowledge; an authenticated post that cannot be used is quarantined.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::core::EventSource;
use crate::sources::flow::{self, SIGNATURE_HEADER};
use crate::sources::flow_source_column;
use crate::store::{now_ms, Inbound, NewQuarantine, Outcome};

fn rejected(source: &str, reason: &'static str) {
    metrics::counter!("zcc_flow_rejected_total", "source" => source.to_string(), "reason" => reason)
        .increment(1);
}

/// Flow event scripts' posts (bearer token or signature per source).
#[utoipa::path(post, path = "/webhooks/flow/{source}", tag = "ingest", security(()),
    params(("source" = String, Path, description = "The name of a `[flow.sources.NAME]`")),
    request_body(content = Object, description = "The script's JSON"),
    responses(
        (status = 200, description = "Logged (`stored`) or a redelivery (`duplicate`)", body = Outcome),
        (status = 400, description = "Authenticated but unreadable: kept in the quarantine", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source is configured", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than server.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not durable yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received_at = now_ms();
    let Some(config) = app.decoder.flows().get(&name).cloned() else {
        rejected("unknown", "unknown_source");
        tracing::warn!(source = ?name, "flow post for a source that is not configured");
        return ApiError::response(
            StatusCode::NOT_FOUND,
            format!("no flow source {name:?} is configured"),
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            rejected(&name, "unreadable_body");
            let (status, message) = super::connections::body_refusal(&rejection);
            tracing::warn!(source = ?name, %status, error = ?message, "flow post body refused");
            return ApiError::response(status, message);
        }
    };
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Err(e) = flow::authenticate(
        &config,
        text(header::AUTHORIZATION.as_str()),
        text(SIGNATURE_HEADER),
        &body,
    ) {
        rejected(&name, "auth");
        tracing::warn!(source = ?name, bytes = body.len(), error = ?e.to_string(), "flow post refused");
        return ApiError::unauthorized(e.to_string()).into_response();
    }
    let label = Some(flow_source_column(&name));
    let mut quarantine_reason = None;
    let item = match flow::parse(&name, &config, &body, received_at) {
        Ok(parsed) => Inbound::Event(parsed.into_event(&name, body, received_at, None)),
        Err(e) => {
            tracing::warn!(source = ?name, reason = ?e.to_string(), bytes = body.len(), "authenticated flow post could not be used; quarantining");
            quarantine_reason = Some(e.to_string());
            Inbound::Quarantine(NewQuarantine {
                source: EventSource::Flow,
                source_label: label,
                received_at,
                request_id: None,
                reason: e.to_string(),
                raw: body,
            })
        }
    };
    append_and_answer(
        &app,
        "zcc_flow_events_total",
        &name,
        item,
        quarantine_reason,
    )
    .await
}

/// Logs an authenticated post (an event, or a quarantine entry with `quarantine_reason`) and answers: the
/// outcome once durable, 400 with the quarantine id, or 503 (the sender retries). Counts it in `metric`.
pub(super) async fn append_and_answer(
    app: &AppState,
    metric: &'static str,
    source: &str,
    item: Inbound,
    quarantine_reason: Option<String>,
) -> Response {
    match app.log.append_one(item).await {
        Ok(Outcome::Quarantined { quarantine_id }) => {
            metrics::counter!(metric, "source" => source.to_string(), "outcome" => "quarantined")
                .increment(1);
            let reason = quarantine_reason.unwrap_or_default();
            ApiError::quarantined(reason, quarantine_id).into_response()
        }
        Ok(outcome) => {
            let label = match outcome {
                Outcome::Duplicate { .. } => "duplicate",
                _ => "stored",
            };
            metrics::counter!(metric, "source" => source.to_string(), "outcome" => label)
                .increment(1);
            Json(outcome).into_response()
        }
        Err(e) => {
            tracing::error!(?source, error = %e, "post not acknowledged");
            ApiError::response(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
