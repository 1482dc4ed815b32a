//! `POST /webhooks/genesys/{source}`: Genesys Cloud conversation events posted by an Event Orchestration
//! workflow's data action (see `sources::genesys`). Same rules as the other webhooks: authenticate, make durable,
//! acknowledge; an authenticated post that cannot be used is quarantined.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::{ApiError, Problem};
use super::flow::append_and_answer;
use super::AppState;
use crate::core::activity::ActivityKind;
use crate::sources::flow::{authenticate_with, SIGNATURE_HEADER};
use crate::sources::genesys;
use crate::store::{now_ms, Inbound, Outcome};

/// Genesys Cloud conversation events (a Process Automation trigger or an EventBridge relay) for presence sync.
#[utoipa::path(post, path = "/webhooks/genesys/{source}", tag = "ingest", security(()),
    params(("source" = String, Path, description = "The name of a `[presence.genesys.NAME]`")),
    request_body(content = Object, description = "A Genesys Cloud event"),
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
    let Some(org) = app.genesys.get(&name).cloned() else {
        tracing::warn!(source = ?name, "Genesys post for a source that is not configured");
        return ApiError::response(
            StatusCode::NOT_FOUND,
            format!("no Genesys source {name:?} is configured (presence.genesys.{name})"),
        );
    };
    let config = &org.config;
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let (status, message) = super::connections::body_refusal(&rejection);
            tracing::warn!(source = ?name, %status, error = ?message, "Genesys post body refused");
            return ApiError::response(status, message);
        }
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
        tracing::warn!(source = ?name, bytes = body.len(), error = ?e.to_string(), "Genesys post refused");
        return ApiError::unauthorized(e.to_string()).into_response();
    }
    let (item, quarantine_reason) = genesys::inbound(&name, body, received_at);
    // A start that only rings is followed through the API (when the source has access) until it connects or ends.
    let follow = match (&item, app.genesys_feeds.get(&name)) {
        (Inbound::Event(event), Some(feed)) if !config.ringing => event
            .activity
            .as_ref()
            .filter(|a| a.kind == ActivityKind::Offered)
            .and_then(|a| {
                let id = a.engagement_id.as_deref()?;
                let (conversation, session) = genesys::conversation_of(id)?;
                let user = genesys::user_of(a.agent.as_ref()?.user_id.as_deref()?)?;
                Some((
                    feed.clone(),
                    conversation.to_string(),
                    user.to_string(),
                    session.to_string(),
                ))
            }),
        _ => None,
    };
    let response = append_and_answer(
        &app,
        "zcc_genesys_events_total",
        &name,
        item,
        quarantine_reason,
    )
    .await;
    if let (Some((feed, conversation, user, session)), true) =
        (follow, response.status().is_success())
    {
        tokio::spawn(feed.confirm(conversation, user, session));
    }
    response
}
