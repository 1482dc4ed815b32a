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

    /// Classifies a finished HTTP response (see [`super::http::classify_status`]).
    pub fn from_status(status: u16, body: String, retry_after: Option<Duration>) -> Self {
        let outcome = super::http::classify_status(status);
        Self {
            outcome,
            status: Some(status),
            error: (outcome != Outcome::Delivered).then(|| format!("HTTP {status}")),
            body,
            retry_after,
        }
    }
}

/// A delivery target. Implementations are cheap to share (`Arc`) and safe to call concurrently.
#[async_trait]
pub trait Sink: Send + Sync {
    /// One attempt to deliver `message`. Never panics on bad input; everything is an [`AttemptResult`].
    async fn deliver(&self, message: &Message) -> AttemptResult;
}
