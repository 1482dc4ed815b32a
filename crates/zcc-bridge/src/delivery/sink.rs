//! What a sink is: something that takes one message and reports how the attempt went. The engine (outbox,
//! leases, retries, ordering) knows nothing of vendors; each sink knows nothing of the outbox.

use std::time::Duration;

use async_trait::async_trait;

use crate::core::EngagementRecord;

/// `engagement.completed`: the record once settled. `engagement.updated`: a later change.
pub const ENGAGEMENT_COMPLETED: &str = "engagement.completed";
pub const ENGAGEMENT_UPDATED: &str = "engagement.updated";
/// `call.logged`: a completed engagement with a disposition, as a call log (once per engagement).
pub const CALL_LOGGED: &str = "call.logged";

/// Message types the planner makes from records (every other configured type is a real-time event name).
pub fn is_planned_type(event_type: &str) -> bool {
    [ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED, CALL_LOGGED].contains(&event_type)
}

/// One message to deliver, the same on every attempt.
#[derive(Debug, Clone)]
pub struct Message {
    /// Stable across retries and replays: the receiver's idempotency key (`webhook-id` of the HTTP sink).
    pub id: String,
    /// `engagement.completed`, `engagement.updated` or a real-time event name.
    pub event_type: String,
    /// When the message was created, epoch ms (the `timestamp` of the HTTP body).
    pub created_at: i64,
    pub engagement_id: Option<String>,
    /// The `data` of the message as JSON: the engagement record (DESIGN.md) or the real-time event.
    pub data: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl Message {
    /// Whether `data` is an engagement record.
    pub fn is_engagement(&self) -> bool {
        self.event_type == ENGAGEMENT_COMPLETED || self.event_type == ENGAGEMENT_UPDATED
    }

    /// The engagement record carried by an engagement message.
    pub fn engagement(&self) -> Result<EngagementRecord, String> {
        if !self.is_engagement() {
            return Err(format!("{} carries no engagement record", self.event_type));
        }
        serde_json::from_str(&self.data)
            .map_err(|e| format!("the stored record does not parse: {e}"))
    }
}

/// How an attempt ended, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx).
    Delivered,
    /// Try again later (network error, timeout, 5xx, 408, 409, 425, 429).
    Retry,
    /// Permanently refused (other 4xx, a redirect, a message the sink cannot express): dead-lettered at once.
    Reject,
    /// `410 Gone`: the endpoint no longer exists; the sink is disabled until re-enabled.
    Gone,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Reject => "rejected",
            Outcome::Gone => "gone",
        }
    }
}

/// What one attempt produced: kept in the attempt log (body truncated by the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub outcome: Outcome,
    /// HTTP status of the deciding response, if there was one.
    pub status: Option<u16>,
    pub body: String,
    /// The receiver's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// Why it failed, in words (network error, vendor error code, ...).
    pub error: Option<String>,
}

impl AttemptResult {
    pub fn delivered(status: u16, body: String) -> Self {
        Self {
            outcome: Outcome::Delivered,
            status: Some(status),
            body,
            retry_after: None,
            error: None,
        }
    }

    /// A failure before any response (connection refused, timeout, TLS): retried.
    pub fn network(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Retry,
            status: None,
            body: String::new(),
            retry_after: None,
            error: Some(error.into()),
        }
    }

    /// A message this sink cannot deliver whatever happens (e.g. no record in it): dead-lettered.
    pub fn reject(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Reject,
            status: None,
            body: String::new(),
            retry_after: None,
            error: Some(error.into()),
        }
    }

    /// Classifies a finished HTTP response (see [`classify_status`]).
    pub fn from_status(status: u16, body: String, retry_after: Option<Duration>) -> Self {
        let outcome = classify_status(status);
        Self {
            outcome,
            status: Some(status),
            error: (outcome != Outcome::Delivered).then(|| format!("HTTP {status}")),
            body,
            retry_after,
        }
    }
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

/// `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

/// A delivery target. Implementations are cheap to share (`Arc`) and safe to call concurrently.
#[async_trait]
pub trait Sink: Send + Sync {
    /// One attempt to deliver `message`. Never panics on bad input; everything is an [`AttemptResult`].
    async fn deliver(&self, message: &Message) -> AttemptResult;
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
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let wait = parse_retry_after(&later).expect("a date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }
}
