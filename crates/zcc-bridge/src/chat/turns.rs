//! One bot turn: the conversation so far is read back from the log (history, the backend's state, whether it was
//! handed over or ended, and whether this message was answered already), the bot is asked, and its answer is
//! logged as a `chat.bot.*` event in the conversation — which queues the reply to the Post URL in the same
//! statement. A turn logged twice (a retried attempt) is one event: the bot's second answer is discarded.

use std::time::{Duration, Instant};

use chatbot::model::{BotResponse, BotUser, Handover, HistoryEntry, Reply, Speaker, TurnKind};
use chatbot::zoom_connector::{ConnectorReply, ConversationMode, VirtualAgentRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{LiveChannel, Shared};
use crate::sources::chat::{
    conversation_key, parse_bot_turn, BotTurn, TurnOrigin, BOT_TURN_VERSION,
};
use crate::store::{now_ms, Inbound, Outcome};

/// Earlier turns handed to a bot, at most.
const MAX_HISTORY: usize = 50;
/// Events of one conversation read back, at most.
const MAX_EVENTS: u32 = 10_000;

/// Why a turn has no answer yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnError {
    /// Try again later (the bot failed and may answer later, or the bridge could not read or log).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Cannot succeed (the conversation was never admitted).
    Reject(String),
}

/// A finished turn: the bot turn's event (none when nothing was logged: the bot was not asked) and the turn.
#[derive(Debug, Clone)]
pub struct TurnDone {
    pub event_id: Option<i64>,
    pub turn: Option<BotTurn>,
    /// Whether this attempt logged it (not a turn found answered already).
    pub fresh: bool,
}

impl TurnDone {
    fn nothing() -> Self {
        Self {
            event_id: None,
            turn: None,
            fresh: false,
        }
    }

    /// What action mode answers ZCC with: the reply, or an empty one for the request's session.
    pub fn reply_or_empty(&self, request: &VirtualAgentRequest) -> ConnectorReply {
        match &self.turn {
            Some(turn) => turn.reply.clone(),
            None => {
                ConnectorReply::from_response(
                    format!("r-{}", request.id),
                    request,
                    &BotResponse::default(),
                    &[],
                )
                .0
            }
        }
    }
}

/// What the log says about a conversation up to a message.
#[derive(Debug, Default)]
struct Conversation {
    history: Vec<HistoryEntry>,
    backend_state: Option<Value>,
    handed_over: bool,
    ended: bool,
    /// The turn that answered the message already, with its event id.
    answered: Option<(i64, BotTurn)>,
}

impl Conversation {
    /// The conversation before `message_event`, in conversational order: each bot turn right after the message
    /// it answers (a turn retried after a later message was logged is logged after it, but answered before it).
    fn read(events: &[crate::store::LoggedEvent], message_event: i64) -> Self {
        enum Entry {
            Consumer(Box<VirtualAgentRequest>),
            Bot(Box<BotTurn>),
        }
        let mut c = Conversation::default();
        let mut entries: Vec<(i64, u8, i64, Entry)> = Vec::new();
        for e in events {
            if let Ok(turn) = parse_bot_turn(&e.raw) {
                if turn.reply_to_event == Some(message_event) && turn.origin != TurnOrigin::Callback
                {
                    c.answered = Some((e.id, turn));
                    continue;
                }
                let anchor = turn.reply_to_event.unwrap_or(e.id);
                if anchor < message_event {
                    entries.push((anchor, 1, e.id, Entry::Bot(Box::new(turn))));
                }
            } else if e.id < message_event {
                // The connector's request (it parsed when it was logged).
                if let Ok(request) = VirtualAgentRequest::parse(&e.raw) {
                    entries.push((e.id, 0, e.id, Entry::Consumer(Box::new(request))));
                }
            }
        }
        entries.sort_by_key(|(anchor, order, id, _)| (*anchor, *order, *id));
        for (_, _, _, entry) in entries {
            match entry {
                Entry::Bot(turn) => {
                    let text = turn.text();
                    if !text.is_empty() {
                        c.history.push(HistoryEntry {
                            speaker: Speaker::Bot,
                            text,
                        });
                    }
                    if turn.origin != TurnOrigin::Skipped {
                        c.backend_state = turn.backend_state.clone();
                    }
                    c.handed_over |= turn.handover.is_some();
                    c.ended |= turn.end.is_some();
                }
                Entry::Consumer(request) => {
                    match request.conversation_mode {
                        ConversationMode::Start => {
                            c.handed_over = false;
                            c.ended = false;
                        }
                        ConversationMode::End => c.ended = true,
                        _ => {}
                    }
                    let text = request.text();
                    if !text.is_empty() {
                        c.history.push(HistoryEntry {
                            speaker: Speaker::Consumer,
                            text,
                        });
                    }
                }
            }
        }
        c
    }
}

/// The consumer's message to answer.
pub struct TurnInput<'a> {
    pub channel: &'a LiveChannel,
    /// Its event in the log.
    pub event_id: i64,
    pub request: &'a VirtualAgentRequest,
    /// Whether a failure of the bot is final (no retry left): then the channel's fallback answers.
    pub last_attempt: bool,
}

/// Answers one consumer message.
pub async fn run(shared: &Shared, input: TurnInput<'_>) -> Result<TurnDone, TurnError> {
    let channel = input.channel;
    let request = input.request;
    let key = conversation_key(&channel.name, &request.session_id);
    let retry = |what: &str, e: &dyn std::fmt::Display| TurnError::Retry {
        reason: format!("{what}: {e}"),
        retry_after: None,
    };
    let Some(session) = shared
        .store
        .chat_session(&key)
        .await
        .map_err(|e| retry("reading the conversation", &e))?
    else {
        return Err(TurnError::Reject(format!(
            "no conversation record for session {:?}: the message was not admitted by POST /chat/zoom/{}",
            request.session_id, channel.name
        )));
    };
    let events = shared
        .store
        .conversation_events(&key, None, MAX_EVENTS)
        .await
        .map_err(|e| retry("reading the conversation", &e))?;
    let conversation = Conversation::read(&events, input.event_id);
    if let Some((event_id, turn)) = conversation.answered {
        return Ok(TurnDone {
            event_id: Some(event_id),
            turn: Some(turn),
            fresh: false,
        });
    }
    let Some(kind) = request.turn_kind() else {
        tracing::info!(channel = %channel.name, mode = ?request.conversation_mode.as_str(),
            "a request in an unknown conversationMode without text: logged, not sent to the bot");
        return Ok(TurnDone::nothing());
    };
    if (conversation.handed_over || conversation.ended) && kind != TurnKind::Start {
        tracing::debug!(channel = %channel.name, session = ?request.session_id,
            "a message after the hand-over or the end: logged, not sent to the bot");
        return Ok(TurnDone::nothing());
    }
    let user = BotUser {
        id: session.user_id.clone(),
        anonymous: session.anonymous,
        email: session.email.clone(),
        phone: session.phone.clone(),
    };
    let mut history = conversation.history;
    if history.len() > MAX_HISTORY {
        history.drain(..history.len() - MAX_HISTORY);
    }
    let Some(bot_request) =
        request.to_bot_request(user, history.clone(), conversation.backend_state.clone())
    else {
        return Ok(TurnDone::nothing());
    };
    let bot = &channel.channel.bot;
    let started = Instant::now();
    let answer = bot.converse(&bot_request).await;
    let latency = started.elapsed();
    metrics::histogram!("zcc_chat_bot_seconds", "channel" => channel.name.clone())
        .record(latency.as_secs_f64());
    let (mut response, origin, note) = match answer {
        Ok(response) => (response, TurnOrigin::Bot, None),
        Err(e) => {
            metrics::counter!("zcc_chat_bot_failures_total", "channel" => channel.name.clone(),
                "kind" => e.kind())
            .increment(1);
            if e.is_retryable() && !input.last_attempt {
                tracing::info!(channel = %channel.name, error = %e, "the bot did not answer; retrying later");
                let retry_after = match &e {
                    chatbot::backends::BackendError::Status { retry_after, .. } => *retry_after,
                    _ => None,
                };
                return Err(TurnError::Retry {
                    reason: e.to_string(),
                    retry_after,
                });
            }
            tracing::warn!(channel = %channel.name, error = %e, "the bot gave no answer; sending the fallback message");
            let mut fallback = BotResponse {
                replies: vec![Reply::text(&channel.config.fallback_message)],
                backend_state: conversation.backend_state.clone(),
                ..Default::default()
            };
            if channel.config.handover_on_bot_failure {
                fallback.handover = Some(Handover {
                    reason: Some("the bot did not answer".into()),
                    ..Default::default()
                });
            }
            (fallback, TurnOrigin::Fallback, Some(e.to_string()))
        }
    };
    if kind == TurnKind::End {
        // ZCC ended the conversation: the bot is told, its answer is not shown.
        response.replies.clear();
        response.handover = None;
        response.end = None;
    }
    let mut transcript = history;
    let text = request.text();
    if !text.is_empty() {
        transcript.push(HistoryEntry {
            speaker: Speaker::Consumer,
            text,
        });
    }
    let (reply, dropped) = if response.deferred {
        (empty_reply(request), 0)
    } else {
        ConnectorReply::from_response(
            format!("r-{}", input.event_id),
            request,
            &response,
            &transcript,
        )
    };
    let dropped = dropped + response.unmapped;
    if dropped > 0 {
        metrics::counter!("zcc_chat_dropped_parts_total", "channel" => channel.name.clone())
            .increment(dropped as u64);
    }
    let turn = BotTurn {
        version: BOT_TURN_VERSION,
        channel: channel.name.clone(),
        session_id: request.session_id.clone(),
        reply_to: Some(request.id.clone()),
        reply_to_event: Some(input.event_id),
        reply,
        replies: response.replies,
        handover: response.handover,
        end: response.end,
        backend_state: response.backend_state,
        backend: bot.kind().to_string(),
        origin,
        latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
        note,
        dropped,
        deferred: response.deferred,
        engagement_id: request.engagement_id().or(session.engagement_id),
        answered_at: now_ms(),
    };
    let dedup_key = format!(
        "chat:{}:turn:{}:{}",
        channel.name, request.session_id, request.id
    );
    log_turn(shared, turn, dedup_key).await
}

fn empty_reply(request: &VirtualAgentRequest) -> ConnectorReply {
    ConnectorReply::from_response(
        format!("r-{}", request.id),
        request,
        &BotResponse::default(),
        &[],
    )
    .0
}

/// Logs a bot turn (its reply to the Post URL is queued by the same statement).
async fn log_turn(
    shared: &Shared,
    turn: BotTurn,
    dedup_key: String,
) -> Result<TurnDone, TurnError> {
    let channel = turn.channel.clone();
    let handover = turn.handover.is_some();
    let event = turn
        .clone()
        .into_event(dedup_key)
        .map_err(|e| TurnError::Reject(e.to_string()))?;
    match shared.log.append_one(Inbound::Event(event)).await {
        Ok(Outcome::Stored { event_id }) => {
            if handover {
                metrics::counter!("zcc_chat_handovers_total", "channel" => channel).increment(1);
            }
            Ok(TurnDone {
                event_id: Some(event_id),
                turn: Some(turn),
                fresh: true,
            })
        }
        // Logged by an earlier attempt: that one's reply is the one queued.
        Ok(Outcome::Duplicate { event_id }) => {
            let stored = shared
                .store
                .events(&crate::store::EventQuery {
                    after_id: Some(event_id - 1),
                    limit: 1,
                    with_raw: true,
                    ..Default::default()
                })
                .await
                .ok()
                .and_then(|rows| rows.into_iter().find(|r| r.id == event_id))
                .and_then(|row| parse_bot_turn(&row.raw).ok());
            Ok(TurnDone {
                event_id: Some(event_id),
                turn: Some(stored.unwrap_or(turn)),
                fresh: false,
            })
        }
        Ok(Outcome::Quarantined { .. }) => {
            Err(TurnError::Reject("the bot turn was quarantined".into()))
        }
        Err(e) => Err(TurnError::Retry {
            reason: format!("logging the bot's answer: {e}"),
            retry_after: None,
        }),
    }
}

/// A reply the `http` backend posted to its callback URL: logged as a turn of the conversation it names
/// (`conversation_id` = the connector's `sessionId`), answering `in_reply_to` (or the latest consumer message).
pub async fn callback(
    shared: &Shared,
    channel: &LiveChannel,
    body: &[u8],
    callback: chatbot::backends::http::Callback,
) -> Result<TurnDone, TurnError> {
    let session_id = callback.conversation_id;
    let key = conversation_key(&channel.name, &session_id);
    let retry = |e: &dyn std::fmt::Display| TurnError::Retry {
        reason: format!("reading the conversation: {e}"),
        retry_after: None,
    };
    let Some(session) = shared
        .store
        .chat_session(&key)
        .await
        .map_err(|e| retry(&e))?
    else {
        return Err(TurnError::Reject(format!(
            "no conversation with session id {session_id:?} on this channel"
        )));
    };
    let events = shared
        .store
        .conversation_events(&key, None, MAX_EVENTS)
        .await
        .map_err(|e| retry(&e))?;
    // The request answered: the one named, else the latest; its id, language and session shape the reply.
    let mut answered: Option<(i64, VirtualAgentRequest)> = None;
    for e in &events {
        if parse_bot_turn(&e.raw).is_ok() {
            continue;
        }
        if let Ok(request) = VirtualAgentRequest::parse(&e.raw) {
            let named = callback
                .in_reply_to
                .as_ref()
                .is_none_or(|id| *id == request.id);
            if named {
                answered = Some((e.id, request));
            }
        }
    }
    let Some((message_event, request)) = answered else {
        return Err(TurnError::Reject(match callback.in_reply_to {
            Some(id) => format!("no message {id:?} in session {session_id:?}"),
            None => format!("session {session_id:?} has no message yet"),
        }));
    };
    let history = Conversation::read(&events, i64::MAX).history;
    let response = callback.response;
    let digest = hex::encode(&Sha256::digest(body)[..12]);
    let (reply, dropped) =
        ConnectorReply::from_response(format!("r-cb-{digest}"), &request, &response, &history);
    let turn = BotTurn {
        version: BOT_TURN_VERSION,
        channel: channel.name.clone(),
        session_id: session_id.clone(),
        reply_to: Some(request.id.clone()),
        reply_to_event: Some(message_event),
        reply,
        replies: response.replies,
        handover: response.handover,
        end: response.end,
        backend_state: response.backend_state,
        backend: channel.channel.bot.kind().to_string(),
        origin: TurnOrigin::Callback,
        latency_ms: None,
        note: None,
        dropped: dropped + response.unmapped,
        deferred: false,
        engagement_id: request.engagement_id().or(session.engagement_id),
        answered_at: now_ms(),
    };
    let dedup_key = format!("chat:{}:callback:{session_id}:{digest}", channel.name);
    log_turn(shared, turn, dedup_key).await
}
