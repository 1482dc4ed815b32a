//! The one error type of the HTTP layer. Handlers return `Result<_, ApiError>` and use `?`: storage errors and
//! extractor rejections convert into it. The body is an RFC 9457 problem document (`application/problem+json`:
//! `type`, `title`, `status`, `detail`) that also carries the message as `error`, the field clients of earlier
//! versions read.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    /// Ask for bearer credentials (`WWW-Authenticate: Bearer`), on 401s.
    challenge: bool,
    /// A stable machine-readable reason (`code` in the body), for clients that branch on it (the agent panel).
    code: Option<&'static str>,
    /// Where an unreadable body was kept (`quarantined`).
    quarantine_id: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: false,
            code: None,
            quarantine_id: None,
        }
    }

    /// 400 for an authenticated body that could not be read: it was kept in the quarantine as `quarantine_id`.
    pub fn quarantined(reason: impl Into<String>, quarantine_id: i64) -> Self {
        Self {
            quarantine_id: Some(quarantine_id),
            ..Self::bad_request(reason)
        }
    }

    /// Adds a stable `code` to the problem document.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// The finished response of `new(status, detail)`, for handlers whose success is not a plain `Result`.
    pub fn response(status: StatusCode, detail: impl Into<String>) -> Response {
        Self::new(status, detail).into_response()
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// An RFC 9457 problem document (`application/problem+json`), the body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The status's reason phrase.
    title: &'static str,
    status: u16,
    /// What was wrong, for a person.
    detail: String,
    /// The same as `detail`, the field clients of earlier versions read.
    error: String,
    /// Where an unreadable body was kept for replay (400s of the webhook endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine_id: Option<i64>,
    /// A stable machine-readable reason, for clients that branch on it (the agent panel's API).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            error: self.detail,
            quarantine_id: self.quarantine_id,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A storage failure is the server's problem, not the client's: 503 (retry later), logged.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error in the HTTP API");
        Self::unavailable(e.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_document_with_the_legacy_error_field() {
        let response = ApiError::unauthorized("missing or wrong bearer token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], 401);
        assert_eq!(v["title"], "Unauthorized");
        assert_eq!(v["detail"], "missing or wrong bearer token");
        assert_eq!(v["error"], v["detail"]);
    }
}
