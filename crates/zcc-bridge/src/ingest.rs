//! Group commit: request handlers hand items to committer tasks and wait; each committer takes whatever has
//! queued up (up to `max_batch`) and writes it in one transaction, so one fsync acknowledges many requests.
//! Newly logged events then go to the projector, which merges them into records off the acknowledgement path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinSet;

use crate::projection::ProjectionFeed;
use crate::store::{Inbound, Outcome, ProjectionItem, Store, StoreError};

type Reply = oneshot::Sender<Result<Vec<Outcome>, Arc<StoreError>>>;

struct Pending {
    items: Vec<Inbound>,
    reply: Reply,
}

/// Why an item was not made durable. The caller answers 503 so that the sender retries.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event log is shutting down")]
    ShuttingDown,
    #[error("could not commit to the event log: {0}")]
    Store(Arc<StoreError>),
}

/// Handle to the committers. Cloning is cheap; committers stop once every handle is dropped and the queue is
/// drained.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Pending>,
    store: Arc<dyn Store>,
}

/// Joins the committers on shutdown.
pub struct Committers {
    tasks: JoinSet<()>,
}

impl Committers {
    /// Waits until every queued item is committed and the committers have exited.
    pub async fn drain(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

impl EventLog {
    pub fn start(
        store: Arc<dyn Store>,
        max_batch: usize,
        projection: ProjectionFeed,
    ) -> (Self, Committers) {
        // Bounded so that overload turns into back-pressure on requests, not unbounded memory.
        let (tx, rx) = mpsc::channel::<Pending>(max_batch * 8);
        let rx = Arc::new(Mutex::new(rx));
        let mut tasks = JoinSet::new();
        for _ in 0..store.committers().max(1) {
            tasks.spawn(run_committer(
                store.clone(),
                rx.clone(),
                max_batch,
                projection.clone(),
            ));
        }
        (Self { tx, store }, Committers { tasks })
    }

    /// Makes the items durable (one transaction with whatever else is queued) and returns their outcomes.
    pub async fn append(&self, mut items: Vec<Inbound>) -> Result<Vec<Outcome>, IngestError> {
        self.adopt_legacy_keys(&mut items)
            .await
            .map_err(|e| IngestError::Store(Arc::new(e)))?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { items, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        match rx.await {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(e)) => Err(IngestError::Store(e)),
            Err(_) => Err(IngestError::ShuttingDown),
        }
    }

    /// An event whose key changed with RFC 8785 (`core::canonical`) and whose old key is logged is that event's
    /// redelivery: it takes the old key, so the commit counts it as a duplicate. Only events that carry a legacy
    /// key (rare for webhooks: a fractional number in the body) cost the lookup.
    async fn adopt_legacy_keys(&self, items: &mut [Inbound]) -> Result<(), StoreError> {
        fn event(item: &mut Inbound) -> Option<&mut crate::store::NewEvent> {
            match item {
                Inbound::Event(event) | Inbound::Replay { event, .. } => Some(event),
                Inbound::Quarantine(_) => None,
            }
        }
        let legacy: Vec<String> = items
            .iter_mut()
            .filter_map(|item| event(item)?.legacy_dedup_key.clone())
            .collect();
        if legacy.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = legacy.iter().map(String::as_str).collect();
        let logged = self.store.existing_dedup_keys(&keys).await?;
        for item in items.iter_mut() {
            if let Some(event) = event(item) {
                if let Some(old) = event
                    .legacy_dedup_key
                    .take_if(|old| logged.contains(old.as_str()))
                {
                    event.dedup_key = old;
                }
            }
        }
        Ok(())
    }

    pub async fn append_one(&self, item: Inbound) -> Result<Outcome, IngestError> {
        let mut outcomes = self.append(vec![item]).await?;
        outcomes.pop().ok_or(IngestError::ShuttingDown)
    }
}

async fn run_committer(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Pending>>>,
    max_batch: usize,
    projection: ProjectionFeed,
) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            let mut size = batch[0].items.len();
            while size < max_batch {
                match rx.try_recv() {
                    Ok(p) => {
                        size += p.items.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        commit(&*store, batch, &projection).await;
    }
}

async fn commit(store: &dyn Store, mut batch: Vec<Pending>, projection: &ProjectionFeed) {
    let counts: Vec<usize> = batch.iter().map(|p| p.items.len()).collect();
    let items: Vec<Inbound> = batch
        .iter_mut()
        .flat_map(|p| std::mem::take(&mut p.items))
        .collect();
    metrics::histogram!("zcc_ingest_commit_batch_size").record(items.len() as f64);
    let started = Instant::now();
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        match store.commit(&items).await {
            Err(e) if e.is_retryable() && attempt < 5 => {
                tracing::debug!(error = %e, attempt, "retrying batch after a transient conflict");
                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
            }
            other => break other,
        }
    };
    metrics::histogram!("zcc_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(outcomes) => {
            // Real-time deliveries were queued by the statement that logged the events.
            let signals = store.signals();
            if signals.realtime() {
                signals.deliveries_queued();
            }
            // Hand the new events to the projector before acknowledging, so that a client that reads after
            // its acknowledgement waits for them (see `Projection::caught_up`).
            let fresh: Vec<ProjectionItem> = items
                .into_iter()
                .zip(&outcomes)
                .filter_map(|(item, outcome)| match (item, outcome) {
                    (
                        Inbound::Event(event) | Inbound::Replay { event, .. },
                        Outcome::Stored { event_id },
                    ) if event.observation.is_some() || event.activity.is_some() => {
                        Some(ProjectionItem {
                            event_id: *event_id,
                            observation: event.observation,
                            activity: event.activity,
                        })
                    }
                    _ => None,
                })
                .collect();
            if outcomes.iter().any(|o| matches!(o, Outcome::Stored { .. })) {
                store.signals().events_logged();
            }
            projection.submit(fresh).await;
            let mut outcomes = outcomes.into_iter();
            for (pending, count) in batch.into_iter().zip(counts) {
                let mine: Vec<Outcome> = outcomes.by_ref().take(count).collect();
                // A dropped receiver means the client went away; the items are durable all the same.
                let _ = pending.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, items = items.len(), "event log commit failed; senders will retry");
            metrics::counter!("zcc_ingest_commit_failures_total").increment(1);
            let e = Arc::new(e);
            for pending in batch {
                let _ = pending.reply.send(Err(e.clone()));
            }
        }
    }
}
