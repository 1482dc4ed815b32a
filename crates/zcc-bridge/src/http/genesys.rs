//! `POST /webhooks/genesys/{source}`: Genesys Cloud conversation events posted by an Event Orchestration
//! workflow's data action (see `sources::genesys`). Same rules as the other webhooks: authenticate, make durable,
//! acknowledge; an authenticated post that cannot be used is quarantined.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

use super::flow::append_and_answer;
use super::{error, AppState};
use crate::core::EventSource;
use crate::sources::flow::{authenticate_with, SIGNATURE_HEADER};
use crate::sources::genesys;
use crate::store::{now_ms, Inbound, NewEvent, NewQuarantine};

pub async fn post(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received_at = now_ms();
    let Some(config) = app.genesys.get(&name).cloned() else {
        tracing::warn!(source = %name, "Genesys post for a source that is not configured");
        return error(
            StatusCode::NOT_FOUND,
            format!("no Genesys source {name:?} is configured (presence.genesys.{name})"),
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Err(e) = authenticate_with(
        config.token.as_ref(),
        config.hmac_secret.as_ref(),
        text(header::AUTHORIZATION.as_str()),
        text(SIGNATURE_HEADER),
        &body,
    ) {
        metrics::counter!("zcc_genesys_rejected_total", "source" => name.clone()).increment(1);
        tracing::warn!(source = %name, bytes = body.len(), "Genesys post refused: {e}");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": e.to_string()})),
        )
            .into_response();
    }
    let label = Some(format!("genesys:{name}"));
    let mut quarantine_reason = None;
    let item = match genesys::parse(&name, &body, received_at) {
        Ok(parsed) => Inbound::Event(NewEvent {
            source: EventSource::Genesys,
            dedup_key: parsed.dedup_key,
            event_type: parsed.event_type,
            engagement_id: None,
            event_ts: Some(parsed.event_ts),
            received_at,
            request_id: None,
            raw: body,
            observation: None,
            activity: Some(parsed.activity),
            source_label: label,
        }),
        Err(e) => {
            tracing::warn!(source = %name, reason = %e, "authenticated Genesys post could not be used; quarantining");
            quarantine_reason = Some(e.to_string());
            Inbound::Quarantine(NewQuarantine {
                source: EventSource::Genesys,
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
        "zcc_genesys_events_total",
        &name,
        item,
        quarantine_reason,
    )
    .await
}
