//! How an outbound POST ended (to ZCC's Post URL, to a push-notification URL), classified for the bridge's durable
//! outbox: delivered, worth retrying (5xx, 429, 408, network errors; with the server's `Retry-After`), or permanent
//! (any other 4xx, an unexpected redirect). Nothing here retries: the outbox does, with backoff and dead letters.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// How much of an error response's body is kept for the outbox's last-error column.
const BODY_SNIPPET_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered {
        status: u16,
    },
    /// Try again later; `retry_after` is the server's wish when it stated one.
    Retryable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Retrying the same request cannot succeed (wrong token, rejected body): dead-letter it.
    Permanent {
        status: u16,
        reason: String,
    },
}

impl PostOutcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, PostOutcome::Delivered { .. })
    }
}

/// A `reqwest::Client` for outbound chat traffic: rustls, no redirects (a POST must not silently become a GET
/// somewhere else; a 3xx is reported as a permanent failure), and the given overall timeout per request.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
}

/// Classifies a response by its status (and `Retry-After`); `body` is only used for the reason text.
pub fn classify_response(status: StatusCode, headers: &HeaderMap, body: &str) -> PostOutcome {
    let code = status.as_u16();
    if status.is_success() {
        return PostOutcome::Delivered { status: code };
    }
    let snippet: String = body.chars().take(BODY_SNIPPET_CHARS).collect();
    let reason = if snippet.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {snippet}")
    };
    if code == 408 || code == 425 || code == 429 || status.is_server_error() {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        return PostOutcome::Retryable {
            status: Some(code),
            retry_after,
            reason,
        };
    }
    PostOutcome::Permanent {
        status: code,
        reason,
    }
}

/// A request that got no response (connect refused, timeout, reset) is always worth retrying.
pub fn classify_error(err: &reqwest::Error) -> PostOutcome {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "transport"
    };
    // reqwest's error text names the URL, which for a Post URL may carry a path token; keep only the kind and the
    // innermost cause.
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    PostOutcome::Retryable {
        status: None,
        retry_after: None,
        reason: format!("{kind} error: {cause}"),
    }
}

/// `Retry-After` as delta seconds or an HTTP date (any of RFC 9110's three forms); a date in the past is zero.
pub use backoff::retry_after as parse_retry_after;

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses() {
        let h = HeaderMap::new();
        assert_eq!(
            classify_response(StatusCode::OK, &h, ""),
            PostOutcome::Delivered { status: 200 }
        );
        assert_eq!(
            classify_response(StatusCode::NO_CONTENT, &h, ""),
            PostOutcome::Delivered { status: 204 }
        );
        assert!(matches!(
            classify_response(StatusCode::SERVICE_UNAVAILABLE, &h, "down"),
            PostOutcome::Retryable {
                status: Some(503),
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            classify_response(StatusCode::REQUEST_TIMEOUT, &h, ""),
            PostOutcome::Retryable {
                status: Some(408),
                ..
            }
        ));
        assert!(matches!(
            classify_response(StatusCode::UNAUTHORIZED, &h, "bad token"),
            PostOutcome::Permanent { status: 401, .. }
        ));
        assert!(matches!(
            classify_response(StatusCode::FOUND, &h, ""),
            PostOutcome::Permanent { status: 302, .. }
        ));
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert!(matches!(
            classify_response(StatusCode::TOO_MANY_REQUESTS, &h, ""),
            PostOutcome::Retryable { status: Some(429), retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn reason_is_bounded() {
        let body = "x".repeat(10_000);
        match classify_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body) {
            PostOutcome::Permanent { reason, .. } => assert!(reason.len() < 400),
            other => panic!("{other:?}"),
        }
    }
}
