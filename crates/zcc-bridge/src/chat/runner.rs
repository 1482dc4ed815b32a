//! The fast path: work on a conversation's turns and replies as soon as they are logged, one at a time per
//! conversation, in the process that logged them.
//!
//! Its outbox rows are created leased to this process (the chat routes of migration 0011, token = -event id), so
//! no claim stands between the commit and the bot or the Post URL: the critical path is the consumer message's
//! commit, the bot, the bot turn's commit (which queues the reply), the POST. Each attempt goes through the
//! delivery engine's `attempt` and its recorder, as a sink worker's would. A row that is not its turn (an earlier
//! one of its conversation is not delivered: a reply waiting for the Post URL to recover, a turn waiting for the
//! bot) is given back, and the channel's sink worker takes it in order; so does a row whose process died (its
//! lease runs out). Only conversations with work in hand use memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chatbot::zoom_connector::VirtualAgentRequest;
use tokio::sync::oneshot;

use super::turns::{self, TurnDone, TurnError, TurnInput};
use super::{Attempter, Shared};
use crate::delivery::engine;
use crate::store::delivery::{DeliveryJob, DELIVERY_DELIVERED};

/// Work on a conversation.
pub enum Work {
    /// A consumer message of a trigger-mode channel: its bot-turn row (`msg_chat_<event id>`).
    Turn { event_id: i64 },
    /// A bot turn of a trigger-mode channel: its Post URL row.
    Reply { event_id: i64 },
    /// A consumer message of an action-mode channel: answered here, the answer handed back.
    Action {
        event_id: i64,
        request: Box<VirtualAgentRequest>,
        done: oneshot::Sender<Result<TurnDone, TurnError>>,
    },
}

/// What a conversation has in hand: replies first (they answer turns already taken), then turns.
#[derive(Default)]
pub struct Queue {
    replies: VecDeque<i64>,
    work: VecDeque<Work>,
}

/// The conversations with work in hand, by conversation key.
#[derive(Default)]
pub struct Conversations {
    queues: std::sync::Mutex<HashMap<String, Queue>>,
}

impl Conversations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many conversations have work in hand.
    pub fn active(&self) -> usize {
        self.lock().len()
    }
}

/// Hands work to a conversation; starts its task if it has none.
pub fn submit(shared: &Arc<Shared>, conversation: String, work: Work) {
    let start = {
        let mut queues = shared.conversations.lock();
        let fresh = !queues.contains_key(&conversation);
        let queue = queues.entry(conversation.clone()).or_default();
        match work {
            Work::Reply { event_id } => queue.replies.push_back(event_id),
            other => queue.work.push_back(other),
        }
        fresh
    };
    if start {
        tokio::spawn(run(shared.clone(), conversation));
    }
}

/// The channel name of a conversation key (`chat:<channel>:<session>`; channel names have no `:`).
fn channel_of(conversation: &str) -> Option<&str> {
    conversation.strip_prefix("chat:")?.split(':').next()
}

/// Works through a conversation's queue until it is empty.
async fn run(shared: Arc<Shared>, conversation: String) {
    let mut pending_turns: Vec<oneshot::Receiver<Vec<DeliveryJob>>> = Vec::new();
    let mut pending_replies: Vec<oneshot::Receiver<Vec<DeliveryJob>>> = Vec::new();
    loop {
        let next = {
            let mut queues = shared.conversations.lock();
            let Some(queue) = queues.get_mut(&conversation) else {
                break;
            };
            match queue.replies.pop_front() {
                Some(event_id) => Some(Work::Reply { event_id }),
                None => queue.work.pop_front(),
            }
        };
        let Some(work) = next else {
            // Nothing left: wait until what was attempted is recorded (the next task's order checks read it),
            // then leave, unless work arrived meanwhile.
            settle(&mut pending_turns).await;
            settle(&mut pending_replies).await;
            let mut queues = shared.conversations.lock();
            match queues.get(&conversation) {
                Some(q) if q.replies.is_empty() && q.work.is_empty() => {
                    queues.remove(&conversation);
                    break;
                }
                Some(_) => continue,
                None => break,
            }
        };
        let Some(channel) = channel_of(&conversation).and_then(|name| shared.channel(name)) else {
            tracing::warn!(conversation = %conversation, "chat work for a channel that is not loaded; left to its lease");
            continue;
        };
        match work {
            Work::Turn { event_id } => {
                let Some(bot) = &channel.runtime.bot else {
                    continue;
                };
                // The previous turns' records first: the order check below reads them.
                settle(&mut pending_turns).await;
                if let Some(rx) = attempt_held(&shared, bot, event_id).await {
                    pending_turns.push(rx);
                }
            }
            Work::Reply { event_id } => {
                let Some(reply) = &channel.runtime.reply else {
                    continue;
                };
                settle(&mut pending_replies).await;
                if let Some(rx) = attempt_held(&shared, reply, event_id).await {
                    pending_replies.push(rx);
                }
            }
            Work::Action {
                event_id,
                request,
                done,
            } => {
                let _permit = channel.runtime.turns.acquire().await;
                let result = turns::run(
                    &shared,
                    TurnInput {
                        channel: &channel,
                        event_id,
                        request: &request,
                        last_attempt: true,
                    },
                )
                .await;
                // The caller may have gone (ZCC gave up): the turn is logged all the same.
                let _ = done.send(result);
            }
        }
    }
}

async fn settle(pending: &mut Vec<oneshot::Receiver<Vec<DeliveryJob>>>) {
    for rx in pending.drain(..) {
        let _ = rx.await;
    }
}

/// Attempts the row of `event_id` this process holds on `lane`'s sink, if it is its turn (else gives it back to the
/// sink's worker). Returns the receiver of its record.
async fn attempt_held(
    shared: &Arc<Shared>,
    lane: &Attempter,
    event_id: i64,
) -> Option<oneshot::Receiver<Vec<DeliveryJob>>> {
    let token = -event_id;
    let msg_id = format!("msg_chat_{event_id}");
    let (job, earlier) = match shared
        .store
        .leased_delivery(&lane.worker.name, &msg_id, token)
        .await
    {
        Ok(Some(found)) => found,
        // Attempted already, or the lease passed on: nothing to do here.
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(sink = %lane.worker.name, error = %e,
                "reading a held chat delivery failed; it waits for its lease to end");
            return None;
        }
    };
    if !earlier.is_empty() {
        tracing::debug!(sink = %lane.worker.name, delivery = job.id, waiting_for = ?earlier,
            "not this conversation's turn yet: handing it to the sink's worker");
        if let Err(e) = shared.store.release_deliveries(&[job.id], token).await {
            tracing::warn!(sink = %lane.worker.name, error = %e, "giving a held chat delivery back failed; it waits for its lease to end");
        }
        shared.store.signals().deliveries_queued();
        return None;
    }
    let finished = engine::attempt(&lane.worker, &*shared.store, &lane.settings, &job, token).await;
    if finished.attempt.state != DELIVERY_DELIVERED {
        // A retry (or dead letter) holds the rest of the conversation: the worker takes it from here.
        shared.store.signals().deliveries_queued();
    }
    Some(lane.recorder.record(finished).await)
}
