//! `POST /webhooks/zoom`: verify, answer the URL validation challenge, make the event durable, then ack.

use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use zoom::webhook::{UrlValidationResponse, REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use super::error::{ApiError, Problem};
use super::AppState;
use crate::core::EventSource;
use crate::ingest::IngestError;
use crate::sources::zoom_webhook::{self, ParsedWebhook};
use crate::store::{now_ms, Inbound, NewQuarantine, Outcome};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn rejected(reason: &'static str) {
    metrics::counter!("zcc_webhook_rejected_total", "reason" => reason).increment(1);
}

/// Zoom's webhooks (`x-zm-signature`), including the `endpoint.url_validation` handshake. The event is durable
/// before the 200.
#[utoipa::path(post, path = "/webhooks/zoom", tag = "ingest", security(()),
    params(
        ("x-zm-signature" = String, Header, description = "`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the secret token"),
        ("x-zm-request-timestamp" = String, Header, description = "Epoch seconds"),
    ),
    request_body(content = Object, description = "A Zoom webhook event"),
    responses(
        (status = 200, description = "Logged (`stored`) or a redelivery (`duplicate`); or the URL validation answer", body = Object),
        (status = 400, description = "Signed but unreadable: kept in the quarantine", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, wrong or stale signature", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than server.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not durable yet: Zoom retries", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn zoom(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let received_at = now_ms();
    let request_id = header(&headers, REQUEST_ID_HEADER).map(str::to_string);
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let (status, message) = super::connections::body_refusal(&rejection);
            let reason = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::REQUEST_TIMEOUT => "body_timeout",
                _ => "unreadable_body",
            };
            rejected(reason);
            tracing::warn!(%status, reason, request_id, error = ?message, "webhook body refused");
            return ApiError::response(status, message);
        }
    };

    let now_secs = received_at / 1000;
    let verified = app.verifier.verify(
        header(&headers, SIGNATURE_HEADER),
        header(&headers, TIMESTAMP_HEADER),
        &body,
        now_secs,
    );
    let verified_with = match verified {
        Ok(with) => with,
        Err(e) => {
            rejected(e.reason());
            tracing::warn!(
                reason = e.reason(),
                request_id,
                bytes = body.len(),
                error = %e,
                "webhook refused"
            );
            return ApiError::response(StatusCode::UNAUTHORIZED, e.to_string());
        }
    };

    match zoom_webhook::parse(&body, EventSource::Webhook, received_at) {
        Ok(ParsedWebhook::UrlValidation { plain_token }) => {
            let Some(encrypted_token) = app
                .verifier
                .encrypt_plain_token(verified_with, &plain_token)
            else {
                return ApiError::response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "verifying secret disappeared",
                );
            };
            tracing::info!(request_id, "answered Zoom endpoint URL validation");
            Json(UrlValidationResponse {
                plain_token,
                encrypted_token,
            })
            .into_response()
        }
        Ok(ParsedWebhook::Event(parsed)) => {
            let label = if zoom::events::is_known_event(&parsed.event_type) {
                parsed.event_type.clone()
            } else {
                "unknown".to_string()
            };
            zoom_webhook::report_field_errors(&parsed.event_type, &parsed.field_errors);
            let event =
                parsed.into_event(EventSource::Webhook, body, received_at, request_id.clone());
            let result = app.log.append_one(Inbound::Event(event)).await;
            metrics::histogram!("zcc_webhook_ingest_seconds")
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => {
                    let outcome_label = match outcome {
                        Outcome::Stored { .. } => "stored",
                        Outcome::Duplicate { event_id } => {
                            metrics::counter!("zcc_webhook_duplicates_total").increment(1);
                            tracing::debug!(event_id, request_id, "duplicate delivery recorded");
                            "duplicate"
                        }
                        Outcome::Quarantined { .. } => "quarantined",
                    };
                    metrics::counter!("zcc_webhook_events_total", "event_type" => label, "outcome" => outcome_label)
                        .increment(1);
                    Json(outcome).into_response()
                }
                Err(e) => {
                    metrics::counter!("zcc_webhook_events_total", "event_type" => label, "outcome" => "failed")
                        .increment(1);
                    unavailable(e)
                }
            }
        }
        Err(parse_error) => {
            let reason = parse_error.to_string();
            tracing::warn!(
                request_id,
                ?reason,
                bytes = body.len(),
                "authenticated webhook could not be parsed; quarantining"
            );
            let item = NewQuarantine {
                source: EventSource::Webhook,
                source_label: None,
                received_at,
                request_id,
                reason: reason.clone(),
                raw: body,
            };
            match app.log.append_one(Inbound::Quarantine(item)).await {
                Ok(Outcome::Quarantined { quarantine_id }) => {
                    metrics::counter!("zcc_webhook_events_total", "event_type" => "unparseable", "outcome" => "quarantined")
                        .increment(1);
                    ApiError::quarantined(reason, quarantine_id).into_response()
                }
                Ok(other) => ApiError::response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("unexpected outcome {other:?}"),
                ),
                Err(e) => unavailable(e),
            }
        }
    }
}

/// Not durable: 503 so that Zoom retries (it retries 5xx, never 4xx).
fn unavailable(e: IngestError) -> Response {
    tracing::error!(error = %e, "webhook not acknowledged");
    ApiError::response(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}
