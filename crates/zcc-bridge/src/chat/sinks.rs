//! The chat channel's three outboxes as delivery-engine sinks (`chat:<channel>:bot`, `:reply`, `:push`): the
//! engine leases, orders per conversation, retries, dead-letters and replays them like any sink's deliveries.
//! Each delivery is a logged chat event (the `data.payload` of its message is the event's body).

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chatbot::http_outcome::PostOutcome;
use chatbot::push::{FailureKind, PushContext, PushEvent};
use chatbot::zoom_connector::VirtualAgentRequest;
use serde_json::Value;

use super::runner::{self, Work};
use super::turns::{self, TurnError, TurnInput};
use super::{LiveChannel, Shared};
use crate::delivery::sink::{AttemptResult, Message, Outcome, Sink};
use crate::sources::chat::{
    conversation_key, parse_bot_turn, CONSUMER_TYPES, DELIVERY_FAILURE, REPLY_TYPES,
};

/// The logged event a delivery carries: its id and body.
fn logged_event(message: &Message) -> Result<(i64, Vec<u8>), String> {
    let data: Value = serde_json::from_str(&message.data)
        .map_err(|e| format!("the stored message is not JSON: {e}"))?;
    let id = data
        .get("event_id")
        .and_then(Value::as_i64)
        .ok_or("the stored message names no event")?;
    let payload = data
        .get("payload")
        .ok_or("the stored message has no body")?;
    let raw = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    Ok((id, raw))
}

fn channel_missing(name: &str) -> AttemptResult {
    AttemptResult::network(format!("chat channel {name:?} is not loaded"))
}

fn post_result(outcome: PostOutcome) -> AttemptResult {
    match outcome {
        PostOutcome::Delivered { status } => AttemptResult::delivered(status, String::new()),
        PostOutcome::Retryable {
            status,
            retry_after,
            reason,
        } => AttemptResult {
            outcome: Outcome::Retry,
            status,
            body: String::new(),
            retry_after,
            error: Some(reason),
        },
        PostOutcome::Permanent { status, reason } => AttemptResult {
            outcome: Outcome::Reject,
            status: (status > 0).then_some(status),
            body: String::new(),
            retry_after: None,
            error: Some(reason),
        },
    }
}

fn nothing_to_send(why: &str) -> AttemptResult {
    AttemptResult {
        outcome: Outcome::Delivered,
        status: None,
        body: why.to_string(),
        retry_after: None,
        error: None,
    }
}

/// Bot turns: answer the consumer message, log the answer, hand its reply to the conversation's runner.
pub struct BotTurns {
    pub shared: Weak<Shared>,
    pub channel: String,
    /// Retries the engine allows (`chat.retry_schedule_seconds`): the attempt after them is the last.
    pub retries: usize,
}

#[async_trait]
impl Sink for BotTurns {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        let Some(shared) = self.shared.upgrade() else {
            return AttemptResult::network("the server is stopping");
        };
        let Some(channel) = shared.channel(&self.channel) else {
            return channel_missing(&self.channel);
        };
        let (event_id, raw) = match logged_event(message) {
            Ok(found) => found,
            Err(e) => return AttemptResult::reject(e),
        };
        let request = match VirtualAgentRequest::parse(&raw) {
            Ok(r) => r,
            Err(e) => {
                return AttemptResult::reject(format!("the logged message does not parse: {e}"))
            }
        };
        let _permit = channel.runtime.turns.acquire().await;
        let input = TurnInput {
            channel: &channel,
            event_id,
            request: &request,
            last_attempt: message.attempt as usize > self.retries,
        };
        match turns::run(&shared, input).await {
            Ok(done) => {
                if let (Some(turn_event), Some(turn)) = (done.event_id, &done.turn) {
                    if channel.runtime.reply.is_some() && REPLY_TYPES.contains(&turn.event_type()) {
                        runner::submit(
                            &shared,
                            conversation_key(&channel.name, &request.session_id),
                            Work::Reply {
                                event_id: turn_event,
                            },
                        );
                    }
                }
                let body = match done.event_id {
                    Some(id) => format!("answered by event {id}"),
                    None => {
                        "not sent to the bot (the conversation was handed over or ended)".into()
                    }
                };
                AttemptResult::delivered(200, body)
            }
            Err(TurnError::Retry {
                reason,
                retry_after,
            }) => AttemptResult {
                outcome: Outcome::Retry,
                status: None,
                body: String::new(),
                retry_after,
                error: Some(reason),
            },
            Err(TurnError::Reject(reason)) => AttemptResult::reject(reason),
        }
    }
}

/// Replies: the logged turn's exact reply, posted to the connector's Post URL with its Access Token.
pub struct Replies {
    pub shared: Weak<Shared>,
    pub channel: String,
}

#[async_trait]
impl Sink for Replies {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        let Some(shared) = self.shared.upgrade() else {
            return AttemptResult::network("the server is stopping");
        };
        let Some(channel) = shared.channel(&self.channel) else {
            return channel_missing(&self.channel);
        };
        let Some(post_url) = &channel.channel.post_url else {
            return AttemptResult::network(format!(
                "chat channel {:?} has no Post URL now",
                self.channel
            ));
        };
        let turn = match logged_event(message)
            .and_then(|(_, raw)| parse_bot_turn(&raw).map_err(|e| e.to_string()))
        {
            Ok(turn) => turn,
            Err(e) => return AttemptResult::reject(e),
        };
        if turn.reply.is_empty() {
            return nothing_to_send("an empty reply is not posted");
        }
        let body = match serde_json::to_vec(&turn.reply) {
            Ok(b) => b,
            Err(e) => return AttemptResult::reject(e.to_string()),
        };
        let outcome = post_url.post_raw(body).await;
        let label = match &outcome {
            PostOutcome::Delivered { .. } => "delivered",
            PostOutcome::Retryable { .. } => "retry",
            PostOutcome::Permanent { .. } => "rejected",
        };
        metrics::counter!("zcc_chat_post_total", "channel" => self.channel.clone(), "outcome" => label)
            .increment(1);
        if outcome.is_delivered() {
            metrics::counter!("zcc_chat_messages_out_total", "channel" => self.channel.clone())
                .increment(1);
        }
        post_result(outcome)
    }
}

/// Push notifications (Kore's: every message, or delivery failures only; the original message or a standard
/// response).
pub struct Pushes {
    pub shared: Weak<Shared>,
    pub channel: String,
}

impl Pushes {
    async fn notify(
        &self,
        shared: &Arc<Shared>,
        channel: &LiveChannel,
        message: &Message,
    ) -> Result<AttemptResult, String> {
        let Some((push_config, client)) = &channel.channel.push else {
            return Ok(nothing_to_send(
                "push notifications are off for this channel",
            ));
        };
        let (_, raw) = logged_event(message)?;
        // What the event says: a consumer request, or a bot turn.
        let (session_id, original, language, from) = match parse_bot_turn(&raw) {
            Ok(turn) => (
                turn.session_id.clone(),
                turn.text(),
                turn.reply.language_code.clone(),
                "bot",
            ),
            Err(_) => {
                let request = VirtualAgentRequest::parse(&raw).map_err(|e| e.to_string())?;
                (
                    request.session_id.clone(),
                    request.text(),
                    request.language_code.clone(),
                    "consumer",
                )
            }
        };
        let event = if message.event_type == DELIVERY_FAILURE {
            PushEvent::Failure(FailureKind::DeliveryFailure)
        } else if CONSUMER_TYPES.contains(&message.event_type.as_str())
            || REPLY_TYPES.contains(&message.event_type.as_str())
        {
            if original.is_empty() {
                return Ok(nothing_to_send("a message without text is not notified"));
            }
            PushEvent::Message
        } else {
            return Ok(nothing_to_send("not a notified event type"));
        };
        let key = conversation_key(&channel.name, &session_id);
        let user_id = match shared.store.chat_session(&key).await {
            Ok(Some(session)) => session.user_id,
            Ok(None) => "unknown".to_string(),
            Err(e) => {
                return Ok(AttemptResult::network(format!(
                    "reading the conversation: {e}"
                )))
            }
        };
        let at = chrono::DateTime::from_timestamp_millis(message.created_at).unwrap_or_default();
        let ctx = PushContext {
            channel: &channel.name,
            session_id: &session_id,
            user_id: &user_id,
            from: (event == PushEvent::Message).then_some(from),
            original: &original,
            language: language.as_deref(),
            at,
        };
        let Some(notification) = push_config.notification(event, &ctx) else {
            return Ok(nothing_to_send("this push mode does not notify it"));
        };
        let outcome = client.send(&notification).await;
        let label = match &outcome {
            PostOutcome::Delivered { .. } => "delivered",
            PostOutcome::Retryable { .. } => "retry",
            PostOutcome::Permanent { .. } => "rejected",
        };
        metrics::counter!("zcc_chat_push_total", "channel" => channel.name.clone(),
            "event" => notification.event.clone(), "outcome" => label)
        .increment(1);
        Ok(post_result(outcome))
    }
}

#[async_trait]
impl Sink for Pushes {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        let Some(shared) = self.shared.upgrade() else {
            return AttemptResult::network("the server is stopping");
        };
        let Some(channel) = shared.channel(&self.channel) else {
            return channel_missing(&self.channel);
        };
        match self.notify(&shared, &channel, message).await {
            Ok(result) => result,
            Err(e) => AttemptResult::reject(e),
        }
    }
}

/// A turn's timeout for the engine: the bot's longest turn and room to read and log.
pub fn turn_timeout(longest_turn_ms: u64) -> Duration {
    Duration::from_millis(longest_turn_ms) + Duration::from_secs(5)
}
