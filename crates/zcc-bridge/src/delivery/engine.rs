//! The delivery workers: per sink, lease due deliveries (heads of their engagement's queue only, so an update
//! never overtakes the create), attempt them with bounded concurrency and rate, record every attempt, and decide
//! what comes next (delivered, retry at the schedule's next step or the receiver's `Retry-After`, dead letter,
//! or the sink disabled by `410 Gone`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::JoinSet;

use super::sink::{AttemptResult, Message, Outcome, Sink};
use crate::config::{DeliveryConfig, SinkConfig};
use crate::store::delivery::{
    DeliveryJob, FinishedAttempt, FinishedDelivery, DELIVERY_DEAD, DELIVERY_DELIVERED,
    DELIVERY_PENDING,
};
use crate::store::{now_ms, Store};

/// Retry policy, from `[delivery]`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Waits before the 2nd, 3rd, ... attempt.
    pub schedule: Vec<Duration>,
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &DeliveryConfig) -> Self {
        Self {
            schedule: c
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(s.max(0.0)))
                .collect(),
            max_retry_after: Duration::from_secs(c.max_retry_after_seconds),
        }
    }

    /// The wait before the next attempt after `failed` failed attempts, or `None` when the schedule is spent.
    /// The schedule's wait less up to 20% at random; a `Retry-After` is honoured as is, capped at `max_retry_after`.
    pub fn next_wait(&self, failed: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let scheduled = *self.schedule.get(failed.checked_sub(1)?)?;
        Some(match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => jitter(scheduled),
        })
    }
}

/// The schedule's wait less up to a fifth at random (the schedule is the longest a retry waits).
fn jitter(wait: Duration) -> Duration {
    backoff::jittered(wait, 0.2)
}

/// What a sink worker needs.
pub struct SinkWorker {
    pub name: String,
    pub sink: Arc<dyn Sink>,
    pub concurrency: usize,
    pub rate_per_second: Option<f64>,
    pub timeout: Duration,
    pub body_limit: usize,
}

impl SinkWorker {
    pub fn new(config: &SinkConfig, sink: Arc<dyn Sink>, body_limit: usize) -> Self {
        Self {
            name: config.name.clone(),
            sink,
            concurrency: config.concurrency,
            rate_per_second: config.rate_per_second,
            timeout: Duration::from_secs(config.timeout_seconds),
            body_limit,
        }
    }
}

#[derive(Clone)]
pub struct EngineSettings {
    pub retry: RetryPolicy,
    pub lease: Duration,
    pub poll: Duration,
}

impl EngineSettings {
    pub fn from_config(c: &DeliveryConfig) -> Self {
        Self {
            retry: RetryPolicy::from_config(c),
            lease: Duration::from_secs(c.lease_seconds),
            poll: Duration::from_millis(c.poll_ms),
        }
    }
}

/// Deliveries claimed ahead per concurrency slot: a claim is a write, so each one should bring several.
const CLAIM_AHEAD: usize = 8;
/// Attempts recorded per transaction, at most.
const RECORD_BATCH: usize = 256;

/// Runs one sink's deliveries until `shutdown`; attempts in flight finish (or time out) first.
pub async fn run_sink(
    worker: SinkWorker,
    store: Arc<dyn Store>,
    settings: EngineSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let worker = Arc::new(worker);
    let slots = Arc::new(Semaphore::new(worker.concurrency));
    let (done_tx, done_rx) = mpsc::channel::<Recorded>(1024);
    let recorded = Arc::new(Notify::new());
    let recorder = tokio::spawn(record(
        store.clone(),
        worker.name.clone(),
        settings.lease,
        done_rx,
        recorded.clone(),
    ));
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let pacer = Pacer::shared(worker.rate_per_second);
    let mut disabled_checked = Instant::now() - settings.poll;
    let mut disabled = false;
    let window = worker.concurrency * CLAIM_AHEAD;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Armed before looking, so work queued (or unblocked by a recorded attempt) while we look wakes us.
        let queued = store.signals().deliveries_queued_signal();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let unblocked = recorded.notified();
        tokio::pin!(unblocked);
        unblocked.as_mut().enable();
        while in_flight.try_join_next().is_some() {}

        if disabled_checked.elapsed() >= settings.poll {
            disabled_checked = Instant::now();
            disabled = match store.disabled_sinks().await {
                Ok(list) => list.iter().any(|d| d.sink == worker.name),
                Err(e) => {
                    tracing::warn!(sink = %worker.name, error = %e, "reading disabled sinks failed");
                    disabled
                }
            };
        }
        let room = window.saturating_sub(in_flight.len());
        let mut claimed = 0;
        if room > 0 && !disabled {
            let now = now_ms();
            let lease_until =
                now + i64::try_from(settings.lease.as_millis()).unwrap_or(i64::MAX / 2);
            // Never 0, the column's default.
            let token: i64 = rand::rng().random::<i64>() | 1;
            match store
                .claim_deliveries(&worker.name, now, lease_until, token, room as u32)
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        let lane = Lane {
                            worker: worker.clone(),
                            store: store.clone(),
                            settings: settings.clone(),
                            slots: slots.clone(),
                            pacer: pacer.clone(),
                            recorder: done_tx.clone(),
                            shutdown: shutdown.clone(),
                            token,
                        };
                        in_flight.spawn(lane.run(job));
                    }
                }
                Err(e) => {
                    tracing::warn!(sink = %worker.name, error = %e, "claiming deliveries failed; retrying");
                }
            }
        }
        if claimed > 0 && claimed == room {
            // Maybe more is due: look again once some of the window is free.
            tokio::select! {
                _ = in_flight.join_next() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        tokio::select! {
            _ = &mut queued => {}
            // A recorded attempt may unblock the next delivery of its engagement.
            _ = &mut unblocked => {}
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
    drop(done_tx);
    let _ = recorder.await;
}

/// Longest run of one engagement's deliveries a lane sends before it hands the rest back to the claim loop (so a
/// long backlog of one engagement does not hold a window place for ever).
const LANE_MAX: usize = 256;
/// Deliveries a lane leases at a time when it goes on in its engagement's queue.
const FOLLOW_RUN: u32 = 32;

/// A finished attempt for the recorder, and where to send the deliveries leased to follow it (if asked).
type Recorded = (FinishedDelivery, Option<oneshot::Sender<Vec<DeliveryJob>>>);

/// One engagement's queue (ordering key) on one sink, from a claimed head. Each delivery is attempted in turn;
/// when the lane has sent all it holds, the record of its last success also leases the run of deliveries that
/// came next in the key (one transaction, shared with other lanes' records), so a burst of an engagement's events
/// goes out back to back instead of one per record-then-claim round trip. A failure ends the lane: the recorded
/// retry (or dead letter) holds the rest of the key back, and leases it held ahead are given up.
struct Lane {
    worker: Arc<SinkWorker>,
    store: Arc<dyn Store>,
    settings: EngineSettings,
    slots: Arc<Semaphore>,
    pacer: Option<Arc<tokio::sync::Mutex<Pacer>>>,
    recorder: mpsc::Sender<Recorded>,
    shutdown: watch::Receiver<bool>,
    token: i64,
}

impl Lane {
    async fn run(self, first: DeliveryJob) {
        let mut queue = VecDeque::from([first]);
        let mut sent = 0;
        while let Some(job) = queue.pop_front() {
            if let Some(pacer) = &self.pacer {
                pacer.lock().await.wait().await;
            }
            let mut finished = {
                let Ok(_permit) = self.slots.acquire().await else {
                    return;
                };
                attempt(&self.worker, &*self.store, &self.settings, &job, self.token).await
            };
            sent += 1;
            let delivered = finished.attempt.state == DELIVERY_DELIVERED;
            let go_on = delivered && sent < LANE_MAX && !*self.shutdown.borrow();
            if !go_on && !queue.is_empty() {
                let ahead: Vec<i64> = queue.drain(..).map(|j| j.id).collect();
                if let Err(e) = self.store.release_deliveries(&ahead, self.token).await {
                    tracing::warn!(sink = %self.worker.name, error = %e,
                        "giving back leased deliveries failed; they wait for their leases to end");
                }
            }
            // The recorder outlives every lane (it stops when the last sender is gone).
            if go_on && queue.is_empty() {
                finished.follow = FOLLOW_RUN;
                let (tx, rx) = oneshot::channel();
                if self.recorder.send((finished, Some(tx))).await.is_err() {
                    return;
                }
                match rx.await {
                    Ok(next) => queue.extend(next),
                    // Not recorded: the rest of the key waits for this delivery's lease to end.
                    Err(_) => return,
                }
            } else if self.recorder.send((finished, None)).await.is_err() {
                return;
            }
        }
    }
}

/// Writes finished attempts in batches (group commit), retrying transient database errors, hands lanes the
/// deliveries leased to follow theirs, and says when.
async fn record(
    store: Arc<dyn Store>,
    sink: String,
    lease: Duration,
    mut rx: mpsc::Receiver<Recorded>,
    recorded: Arc<Notify>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (done, replies): (Vec<FinishedDelivery>, Vec<_>) = batch.into_iter().unzip();
        let mut written = None;
        for round in 1..=5u64 {
            let now = now_ms();
            let lease_until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
            match store.finish_deliveries(&done, now, lease_until).await {
                Ok(finished) => {
                    if finished.updated < done.len() {
                        tracing::warn!(%sink, lost = done.len() - finished.updated,
                            "some deliveries' leases passed to another worker during their attempt; only their attempts are logged");
                    }
                    written = Some(finished);
                    break;
                }
                Err(e) => {
                    tracing::warn!(%sink, error = %e, round, "recording attempts failed");
                    tokio::time::sleep(Duration::from_millis(100 * round * round)).await;
                }
            }
        }
        match written {
            Some(finished) => {
                for ((reply, next), recorded) in replies.into_iter().zip(finished.next).zip(&done) {
                    let Some(reply) = reply else { continue };
                    if let Err(next) = reply.send(next) {
                        // The lane is gone: give its leases back rather than leave them to run out.
                        let ids: Vec<i64> = next.iter().map(|j| j.id).collect();
                        if let Err(e) = store.release_deliveries(&ids, recorded.token).await {
                            tracing::warn!(%sink, error = %e, "giving back leased deliveries failed");
                        }
                    }
                }
            }
            None => {
                // The receiver has (maybe) seen them: they are attempted again when their leases end.
                tracing::error!(%sink, attempts = done.len(), "attempts could not be recorded; they are retried after their leases");
            }
        }
        recorded.notify_waiters();
    }
}

/// Records finished attempts of one sink in group commits, as `run_sink` does for its own lanes, for attempts made
/// outside a worker's claim loop: deliveries their creator holds leased (the chat channel's turns and replies, see
/// `DeliveryRepo::leased_delivery`), attempted with [`attempt`].
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Recorded>,
}

impl Recorder {
    /// Starts the recorder; it stops once every handle is dropped and what it holds is written.
    pub fn spawn(
        store: Arc<dyn Store>,
        sink: String,
        lease: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Recorded>(1024);
        let task = tokio::spawn(record(store, sink, lease, rx, Arc::new(Notify::new())));
        (Self { tx }, task)
    }

    /// Queues a finished attempt. The receiver resolves once it is written; an error means it could not be (the
    /// delivery is attempted again when its lease runs out).
    pub async fn record(&self, finished: FinishedDelivery) -> oneshot::Receiver<Vec<DeliveryJob>> {
        let (tx, rx) = oneshot::channel();
        // A closed recorder drops `tx`: the receiver reports it.
        let _ = self.tx.send((finished, Some(tx))).await;
        rx
    }
}

/// One attempt of one delivery, and what it leads to (recorded by the recorder).
pub async fn attempt(
    worker: &SinkWorker,
    store: &dyn Store,
    settings: &EngineSettings,
    job: &DeliveryJob,
    token: i64,
) -> FinishedDelivery {
    let started_at = now_ms();
    let clock = Instant::now();
    let message = match message_of(job) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(sink = %worker.name, delivery = job.id, error = %e, "delivery cannot be built");
            None
        }
    };
    let result = match &message {
        Some(message) => {
            // The sink's client has this timeout too; this bounds a sink that makes several calls.
            match tokio::time::timeout(
                worker.timeout + Duration::from_secs(5),
                worker.sink.deliver(message),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => AttemptResult::network(format!("no answer within {:?}", worker.timeout)),
            }
        }
        None => AttemptResult::reject("the stored message cannot be read"),
    };
    let duration = clock.elapsed();
    let finished_at = now_ms();
    let failed = usize::try_from(job.attempts).unwrap_or(0) + 1;
    let (state, next_attempt_at, counts) = match result.outcome {
        Outcome::Delivered => (DELIVERY_DELIVERED, finished_at, true),
        Outcome::Retry => match settings.retry.next_wait(failed, result.retry_after) {
            Some(wait) => (
                DELIVERY_PENDING,
                finished_at + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
                true,
            ),
            None => (DELIVERY_DEAD, finished_at, true),
        },
        Outcome::Reject => (DELIVERY_DEAD, finished_at, true),
        Outcome::Gone => {
            let reason = format!(
                "410 Gone from delivery {} ({}) at {}",
                job.id,
                job.msg_id,
                crate::core::record::format_ms(finished_at).unwrap_or_default()
            );
            tracing::error!(sink = %worker.name, %reason, "the sink answered 410 Gone: disabled until re-enabled");
            if let Err(e) = store.disable_sink(&worker.name, &reason, finished_at).await {
                tracing::error!(sink = %worker.name, error = %e, "recording the disabled sink failed");
            }
            (DELIVERY_PENDING, finished_at, false)
        }
    };
    let outcome = result.outcome.as_str();
    metrics::counter!("zcc_delivery_attempts_total", "sink" => worker.name.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("zcc_delivery_attempt_seconds", "sink" => worker.name.clone())
        .record(duration.as_secs_f64());
    if state == DELIVERY_DELIVERED {
        let latency = (finished_at - job.caused_at).max(0) as f64 / 1000.0;
        metrics::histogram!("zcc_delivery_latency_seconds", "sink" => worker.name.clone())
            .record(latency);
    } else if state == DELIVERY_DEAD {
        metrics::counter!("zcc_delivery_dead_letters_total", "sink" => worker.name.clone())
            .increment(1);
        tracing::warn!(sink = %worker.name, delivery = job.id, msg_id = %job.msg_id, status = ?result.status,
            error = ?result.error, attempts = failed, "delivery dead-lettered (replayable)");
    } else if outcome == "retry" {
        tracing::info!(sink = %worker.name, delivery = job.id, status = ?result.status, error = ?result.error,
            attempt = failed, "delivery attempt failed; retrying later");
    }
    let mut response = result.body;
    truncate_at_char(&mut response, worker.body_limit);
    let done = FinishedAttempt {
        number: job.attempts + 1,
        state,
        next_attempt_at,
        counts,
        started_at,
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        outcome,
        status: result.status,
        response,
        error: result.error,
        finished_at,
    };
    FinishedDelivery {
        id: job.id,
        token,
        sink: job.sink.clone(),
        ordering_key: job.ordering_key.clone(),
        attempt: done,
        follow: 0,
    }
}

/// The message of a leased delivery: the stored payload, or the logged event rendered.
pub fn message_of(job: &DeliveryJob) -> Result<Message, String> {
    let data = match (&job.payload, &job.event) {
        (Some(payload), _) => payload.clone(),
        (None, Some(event)) => render_event(job, event)?,
        (None, None) => {
            return Err(format!(
                "message {} has no stored payload and no event",
                job.msg_id
            ))
        }
    };
    Ok(Message {
        id: job.msg_id.clone(),
        event_type: job.event_type.clone(),
        created_at: job.created_at,
        engagement_id: job.engagement_id.clone(),
        data,
        attempt: u32::try_from(job.attempts + 1).unwrap_or(u32::MAX),
    })
}

/// The `data` of a real-time message: where and when the event was received, and Zoom's `payload` as is.
fn render_event(
    job: &DeliveryJob,
    event: &crate::store::delivery::JobEvent,
) -> Result<String, String> {
    let raw: serde_json::Value = serde_json::from_slice(&event.raw)
        .map_err(|e| format!("logged event {} is not JSON: {e}", event.id))?;
    // Zoom's envelope carries the event in `payload`; a chat event is its body as a whole.
    let payload = match raw.get("payload") {
        Some(p) if !event.source.starts_with("chat:") => p.clone(),
        _ => raw,
    };
    let data = serde_json::json!({
        "event_id": event.id,
        "event": job.event_type,
        "event_ts": event.event_ts,
        "engagement_id": job.engagement_id,
        "source": event.source,
        "received_at": crate::core::record::format_ms(event.received_at),
        "payload": payload,
    });
    Ok(data.to_string())
}

fn truncate_at_char(s: &mut String, limit: usize) {
    if s.len() > limit {
        let mut cut = limit;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Spaces attempt starts to at most `rate` per second.
struct Pacer {
    interval: Duration,
    next: tokio::time::Instant,
}

impl Pacer {
    /// A pacer shared by a sink's lanes, or `None` without a rate limit.
    fn shared(rate: Option<f64>) -> Option<Arc<tokio::sync::Mutex<Self>>> {
        let interval = rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r))?;
        Some(Arc::new(tokio::sync::Mutex::new(Self {
            interval,
            next: tokio::time::Instant::now(),
        })))
    }

    async fn wait(&mut self) {
        let now = tokio::time::Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        }
        self.next = self.next.max(now) + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&DeliveryConfig::default())
    }

    #[test]
    fn the_default_schedule_is_standard_webhooks_with_jitter() {
        let p = policy();
        let expected = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0];
        for (i, base) in expected.iter().enumerate() {
            for _ in 0..50 {
                let wait = p.next_wait(i + 1, None).expect("a retry").as_secs_f64();
                assert!(
                    wait >= base * 0.8 - 1e-9 && wait <= base + 1e-9,
                    "{i}: {wait}"
                );
            }
        }
        // Eight attempts in all (one now, seven retries), then dead.
        assert_eq!(p.next_wait(8, None), None);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = policy();
        assert_eq!(
            p.next_wait(1, Some(Duration::from_secs(42))),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            p.next_wait(1, Some(Duration::from_secs(86_400))),
            Some(Duration::from_secs(3600))
        );
        // A spent schedule ends even if the receiver asks for more.
        assert_eq!(p.next_wait(8, Some(Duration::from_secs(1))), None);
    }

    #[test]
    fn truncation_keeps_utf8_whole() {
        let mut s = "héllo".to_string();
        truncate_at_char(&mut s, 2);
        assert_eq!(s, "h");
    }

    #[tokio::test]
    async fn the_pacer_spaces_attempts() {
        let pacer = Pacer::shared(Some(50.0)).expect("a rate");
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.lock().await.wait().await;
        }
        // The first goes at once, then one every 20 ms.
        assert!(start.elapsed() >= Duration::from_millis(80));
        assert!(Pacer::shared(None).is_none());
        assert!(Pacer::shared(Some(0.0)).is_none());
    }
}
