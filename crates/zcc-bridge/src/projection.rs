//! The projector: merges logged events into engagement records, off the acknowledgement path.
//!
//! A webhook is acknowledged once its event is in the log (and, by the same statement, in the projection queue).
//! Committers then hand the new events to the projector in memory; it merges whatever has queued up in one
//! transaction, so an engagement touched by many events of a burst is written once. Whatever the in-memory path
//! misses (a crash, a failed merge, another replica that died) is still in the projection queue: the projector
//! merges the queue at start-up and sweeps it periodically. Merging is idempotent, so overlap is harmless.
//!
//! Reads stay consistent: `Projection::caught_up` waits until everything committed before the call is merged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

use crate::signals::Signals;
use crate::sources::Decoder;
use crate::store::{now_ms, Projected, ProjectionItem, Store, StoreError};

/// Events merged per transaction, at most.
const MAX_BATCH: usize = 4096;
/// How long the projector waits after the first handoff for more to arrive, when the last batch was big enough
/// to say a burst is on (`LINGER_FROM` events): then waiting a little merges many events per transaction. At a
/// lower rate it does not wait (what queued during the previous merge is merged together anyway), so real-time
/// consumers such as presence sync are not held back by it.
const LINGER: Duration = Duration::from_millis(10);
const LINGER_FROM: usize = 32;
/// Queued events merged per sweep transaction.
const SWEEP_CHUNK: u32 = 1000;
/// How often the queue is swept for events the in-memory path missed, and how old they must be.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_MIN_AGE_MS: i64 = 30_000;

struct Handoff {
    seq: u64,
    items: Vec<ProjectionItem>,
}

/// Progress shared with readers: the sequence number of the last handoff merged (or given up on), and whether
/// the start-up recovery of the queue has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    projected: u64,
    recovered: bool,
}

/// Committer side: hands committed events to the projector, in commit order.
#[derive(Clone)]
pub struct ProjectionFeed {
    next: Arc<Mutex<(u64, mpsc::Sender<Handoff>)>>,
    committed: Arc<AtomicU64>,
}

impl ProjectionFeed {
    /// Queues newly logged events for merging. Waits (back-pressure) when the projector is behind.
    pub async fn submit(&self, items: Vec<ProjectionItem>) {
        if items.is_empty() {
            return;
        }
        // Sequence numbers are taken and sent under one lock so the projector sees them in order.
        let mut next = self.next.lock().await;
        let seq = next.0 + 1;
        if next.1.send(Handoff { seq, items }).await.is_ok() {
            next.0 = seq;
            self.committed.store(seq, Ordering::Release);
        } else {
            // Only after shutdown; the events are in the projection queue for the next start.
            tracing::warn!("projector stopped; events stay queued for the next start");
        }
    }
}

/// Reader side.
#[derive(Clone)]
pub struct Projection {
    committed: Arc<AtomicU64>,
    progress: watch::Receiver<Progress>,
}

impl Projection {
    /// Waits (at most `timeout`) until every event committed before this call is merged into its record and the
    /// start-up recovery is done. Returns false on timeout: the caller serves what is there.
    pub async fn caught_up(&self, timeout: Duration) -> bool {
        let target = self.committed.load(Ordering::Acquire);
        let mut progress = self.progress.clone();
        let reached = tokio::time::timeout(timeout, async {
            progress
                .wait_for(|p| p.recovered && p.projected >= target)
                .await
                .is_ok()
        })
        .await;
        reached.unwrap_or(false)
    }

    /// The start-up merge of queued events has finished.
    pub fn recovered(&self) -> bool {
        self.progress.borrow().recovered
    }
}

/// The running projector; `drain` merges everything handed off and stops (after every feed is dropped).
pub struct Projector {
    task: JoinHandle<()>,
}

impl Projector {
    pub fn start(
        store: Arc<dyn Store>,
        decoder: Decoder,
    ) -> (ProjectionFeed, Projection, Projector) {
        let (tx, rx) = mpsc::channel::<Handoff>(64);
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let committed = Arc::new(AtomicU64::new(0));
        let feed = ProjectionFeed {
            next: Arc::new(Mutex::new((0, tx))),
            committed: committed.clone(),
        };
        let projection = Projection {
            committed,
            progress: progress_rx,
        };
        let task = tokio::spawn(run(store, decoder, rx, progress_tx));
        (feed, projection, Projector { task })
    }

    pub async fn drain(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "projector task failed");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    decoder: Decoder,
    mut rx: mpsc::Receiver<Handoff>,
    progress: watch::Sender<Progress>,
) {
    // Start-up recovery: everything queued before we started (a crash, or events logged while stopped).
    let started_at = now_ms();
    let mut recovery = Some(0i64);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.tick().await;
    // Whether the last batch was a burst (see `LINGER`).
    let mut busy = false;
    loop {
        if let Some(after) = recovery {
            // One chunk at a time, interleaved with fresh handoffs so ingest is never held up behind a backlog.
            match sweep_chunk(&*store, &decoder, after, Some(started_at)).await {
                Ok(Some(last)) => recovery = Some(last),
                Ok(None) => {
                    recovery = None;
                    progress.send_modify(|p| p.recovered = true);
                    tracing::debug!("projection queue recovered");
                }
                Err(e) => {
                    tracing::error!(error = %e, "recovering the projection queue failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let handoff = if recovery.is_some() {
            match rx.try_recv() {
                Ok(h) => Some(h),
                Err(mpsc::error::TryRecvError::Empty) => continue,
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        } else {
            tokio::select! {
                h = rx.recv() => h,
                _ = sweep.tick() => {
                    sweep_all(&*store, &decoder, now_ms() - SWEEP_MIN_AGE_MS).await;
                    continue;
                }
            }
        };
        let Some(first) = handoff else {
            break;
        };
        // Linger briefly so that a burst is merged in one transaction: the events of an engagement usually
        // arrive close together, and each record is then read and written once instead of once per commit.
        if busy && !LINGER.is_zero() {
            tokio::time::sleep(LINGER).await;
        }
        let mut seq = first.seq;
        let mut items = first.items;
        while items.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(h) => {
                    seq = h.seq;
                    items.extend(h.items);
                }
                Err(_) => break,
            }
        }
        busy = items.len() >= LINGER_FROM;
        merge(&*store, &items).await;
        progress.send_modify(|p| p.projected = seq);
    }
    // Shutting down: every handoff is merged. Finish the recovery only if it is cheap to stop midway: what is
    // left stays queued for the next start.
    if recovery.is_none() {
        progress.send_modify(|p| p.recovered = true);
    }
}

/// Once a projection is committed: wakes the workers it gave work to and counts the activity it recorded.
pub fn after_projection(signals: &Signals, projected: &Projected) {
    if projected.media_queued {
        signals.media_queued();
    }
    if projected.watched {
        signals.watch_touched();
    }
    if projected.presence_touched {
        signals.presence_touched();
    }
    crate::activity::count_new_activity(&projected.new_activity, &projected.closed_spans);
}

/// Merges one batch, retrying transient failures. On persistent failure the events stay queued in the database
/// and the periodic sweep merges them later.
async fn merge(store: &dyn Store, items: &[ProjectionItem]) {
    let ids: Vec<i64> = items.iter().map(|i| i.event_id).collect();
    let started = Instant::now();
    metrics::histogram!("zcc_projection_batch_size").record(items.len() as f64);
    for attempt in 1..=5u64 {
        match store.project(items, &ids).await {
            Ok(projected) => {
                metrics::histogram!("zcc_projection_seconds")
                    .record(started.elapsed().as_secs_f64());
                after_projection(store.signals(), &projected);
                return;
            }
            Err(e) if attempt < 5 => {
                // Deadlocks and serialisation failures between replicas are expected now and then.
                if !e.is_retryable() {
                    tracing::warn!(error = %e, attempt, "merging events into records failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(20 * attempt * attempt)).await;
            }
            Err(e) => {
                metrics::counter!("zcc_projection_failures_total").increment(1);
                tracing::error!(error = %e, events = items.len(),
                    "merging events into records failed; they stay queued and the next sweep retries them");
            }
        }
    }
}

/// Merges queued events older than `received_before` (periodic safety net).
async fn sweep_all(store: &dyn Store, decoder: &Decoder, received_before: i64) {
    let mut after = 0;
    loop {
        match sweep_chunk(store, decoder, after, Some(received_before)).await {
            Ok(Some(last)) => after = last,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "sweeping the projection queue failed");
                return;
            }
        }
    }
}

/// Merges one chunk of queued events with id > `after`; returns the last id merged, or `None` when the queue
/// holds nothing more.
async fn sweep_chunk(
    store: &dyn Store,
    decoder: &Decoder,
    after: i64,
    received_before: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    let events = store
        .projection_backlog(after, received_before, SWEEP_CHUNK)
        .await?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(events.len());
    for event in &events {
        match decoder.decode(&event.source, &event.raw, event.event_ts) {
            Ok(decoded) if decoded.observation.is_some() || decoded.activity.is_some() => items
                .push(ProjectionItem {
                    event_id: event.id,
                    observation: decoded.observation,
                    activity: decoded.activity,
                }),
            Ok(_) => {}
            Err(e) => {
                // Logged but no longer parseable (a parser change): it stays in the log, `rebuild` reports it.
                tracing::warn!(event_id = event.id, error = %e, "queued event no longer parses; dequeued");
            }
        }
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let projected = store.project(&items, &ids).await?;
    after_projection(store.signals(), &projected);
    tracing::info!(events = ids.len(), "merged queued events into records");
    Ok(Some(last))
}
