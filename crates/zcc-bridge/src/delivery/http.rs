//! What every HTTP sink shares (Vector's `sinks/util/http.rs` is the model): the client of a sink, how a response
//! becomes an [`AttemptResult`] (status classes, `Retry-After`, a bounded body), and a transport error in words.

use std::time::Duration;

use super::sink::{AttemptResult, Outcome};
use crate::config::SinkConfig;

/// The HTTP client of one sink: its timeout, no redirects, rustls.
pub fn http_client(config: &SinkConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_seconds))
        .connect_timeout(Duration::from_secs(config.timeout_seconds.min(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zcc-bridge/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(config.concurrency.max(1))
        .build()
        .map_err(|e| format!("sink {:?}: HTTP client: {e}", config.name))
}

/// The Standard Webhooks reading of a status: 2xx delivered; 408, 409, 425, 429 and 5xx retried; 410 disables
/// the endpoint; any other status (other 4xx, 3xx: redirects are not followed) is final.
pub fn classify_status(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 409 | 425 | 429 | 500..=599 => Outcome::Retry,
        410 => Outcome::Gone,
        _ => Outcome::Reject,
    }
}

/// Reads a response into an [`AttemptResult`]: status, `Retry-After` (seconds or HTTP date) and the body's first
/// `limit` bytes.
pub async fn read_response(response: reqwest::Response, limit: usize) -> AttemptResult {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = read_body(response, limit).await;
    AttemptResult::from_status(status, body, retry_after)
}

/// The first `limit` bytes of a body (lossy UTF-8); the rest is not read.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).into_owned()
}

/// `Retry-After`: delta seconds or an HTTP date (`backoff::retry_after`), from now.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    backoff::retry_after(value, std::time::SystemTime::now())
}

/// A reqwest error in words, without the URL's query (which may carry a token).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body failed"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_like_standard_webhooks() {
        assert_eq!(classify_status(200), Outcome::Delivered);
        assert_eq!(classify_status(204), Outcome::Delivered);
        for s in [408, 409, 425, 429, 500, 502, 503, 504] {
            assert_eq!(classify_status(s), Outcome::Retry, "{s}");
        }
        assert_eq!(classify_status(410), Outcome::Gone);
        for s in [301, 302, 400, 401, 403, 404, 413, 422] {
            assert_eq!(classify_status(s), Outcome::Reject, "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        // HTTP dates are in GMT (IMF-fixdate); a numeric zone (`+0000`, chrono's RFC 2822) is not an HTTP date.
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = parse_retry_after(&later).expect("a date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }
}
