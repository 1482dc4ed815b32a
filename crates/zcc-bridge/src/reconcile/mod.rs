//! Reconciliation: fetch Zoom's REST view of engagements, recordings and voicemails and merge it into the
//! records as source `poll`, so that records come out complete even when webhooks or socket events were lost.
//!
//! - [`Reconciler::run_window`] walks a time window (split into parts of at most a day, and never more than
//!   Zoom's one-month limit per query), several parts at once under the client's rate budgets, and persists which
//!   parts are done so that a run interrupted by a restart resumes where it stopped.
//! - [`schedule`] runs the nightly window and an optional incremental one, once across replicas.
//! - [`fetcher`] fetches single engagements soon after the events that say they changed.
//!
//! Everything fetched goes through the event log like any other input (deduplicated by content), so running
//! the same window twice changes nothing, and the records remain a pure projection of the log.

pub mod fetcher;
pub mod schedule;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use zoom::api::{
    ApiError, EngagementQuery, InboxMessageQuery, RecordingDateType, RecordingQuery, ZoomClient,
};

use crate::core::record::ContentDiff;
use crate::core::EngagementState;
use crate::ingest::{EventLog, IngestError};
use crate::projection::Projection;
use crate::sources::zoom_rest::Polled;
use crate::store::{Inbound, Outcome, RunRow, Store, StoreError};

/// Zoom refuses windows longer than a month; parts are much shorter anyway.
const MAX_PART: Duration = Duration::from_secs(24 * 3600);
/// Pages fetched ahead of the merge, per walk.
const PREFETCH_PAGES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Zoom API: {0}")]
    Api(#[from] ApiError),
    #[error("event log: {0}")]
    Ingest(#[from] IngestError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// The process is shutting down; the run stays `running` and resumes at the next start.
    #[error("stopped by shutdown")]
    Stopping,
}

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Nightly,
    Incremental,
    /// `zcc-bridge sync` or `POST /api/v1/reconciliation/runs`.
    Manual,
    /// The WebSocket source was disconnected: the gap is reconciled.
    Gap,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Nightly => "nightly",
            RunKind::Incremental => "incremental",
            RunKind::Manual => "manual",
            RunKind::Gap => "gap",
        }
    }
}

/// Items present after a run that the record did not have before it: what the webhooks had missed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissedItems {
    pub engagements: u64,
    pub notes: u64,
    pub dispositions: u64,
    pub recordings: u64,
    pub transcripts: u64,
    pub voicemails: u64,
    pub agents: u64,
    pub queues: u64,
}

impl MissedItems {
    pub fn add(&mut self, n: &MissedItems) {
        self.engagements += n.engagements;
        self.notes += n.notes;
        self.dispositions += n.dispositions;
        self.recordings += n.recordings;
        self.transcripts += n.transcripts;
        self.voicemails += n.voicemails;
        self.agents += n.agents;
        self.queues += n.queues;
    }

    /// `zcc_reconcile_missed_items_total{item, via}`: `via` is `run` (a reconciliation run) or `fetch` (an
    /// engagement fetched after its events settled). Both repair what the webhooks missed.
    fn count(&self, via: &'static str) {
        for (item, n) in [
            ("engagement", self.engagements),
            ("note", self.notes),
            ("disposition", self.dispositions),
            ("recording", self.recordings),
            ("transcript", self.transcripts),
            ("voicemail", self.voicemails),
            ("agent", self.agents),
            ("queue", self.queues),
        ] {
            metrics::counter!("zcc_reconcile_missed_items_total", "item" => item, "via" => via)
                .increment(n);
        }
    }

    pub fn total(&self) -> u64 {
        self.engagements
            + self.notes
            + self.dispositions
            + self.recordings
            + self.transcripts
            + self.voicemails
            + self.agents
            + self.queues
    }
}

/// What a run did. Saved with the run (JSON) and returned by the API and `zcc-bridge sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub parts_total: u64,
    pub parts_done: u64,
    pub engagements_seen: u64,
    pub recordings_seen: u64,
    pub voicemails_seen: u64,
    /// Resources whose content was new to the log (logged and merged).
    pub resources_logged: u64,
    /// Resources identical to what the log already had.
    pub resources_unchanged: u64,
    /// Resources that name no engagement (nothing to merge them into).
    pub resources_without_engagement: u64,
    /// Records that did not exist before the run.
    pub created: u64,
    /// Records that existed and whose content changed.
    pub changed: u64,
    pub missed: MissedItems,
}

impl RunSummary {
    pub fn add(&mut self, o: &RunSummary) {
        self.engagements_seen += o.engagements_seen;
        self.recordings_seen += o.recordings_seen;
        self.voicemails_seen += o.voicemails_seen;
        self.resources_logged += o.resources_logged;
        self.resources_unchanged += o.resources_unchanged;
        self.resources_without_engagement += o.resources_without_engagement;
        self.created += o.created;
        self.changed += o.changed;
        self.missed.add(&o.missed);
    }
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunReport {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub window_from: String,
    pub window_to: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub summary: RunSummary,
    pub error: Option<String>,
}

impl RunReport {
    pub fn from_row(row: &RunRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind.clone(),
            status: row.status.clone(),
            window_from: iso(row.window_from),
            window_to: iso(row.window_to),
            started_at: iso(row.started_at),
            finished_at: row.finished_at.map(iso),
            duration_seconds: row
                .finished_at
                .map(|f| (f - row.started_at).max(0) as f64 / 1000.0),
            summary: serde_json::from_str(&row.summary).unwrap_or_default(),
            error: row.error.clone(),
        }
    }
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Tuning of window runs.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Parts walked at once. Two or three keep the Medium budget busy while one walk waits for a response.
    pub concurrency: usize,
    /// Longest part (checkpoint granularity); at most a day.
    pub part: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            concurrency: 3,
            part: MAX_PART,
        }
    }
}

/// One resource list over one part of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Resource {
    Engagements,
    /// By `recording_end_time`, so a recording processed after its engagement's window is still found.
    Recordings,
    Voicemails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    resource: Resource,
    from: i64,
    to: i64,
}

impl Part {
    fn key(&self) -> String {
        format!("{:?}:{}:{}", self.resource, self.from, self.to)
    }
}

/// Splits `[from, to]` (inclusive, ms) into parts of at most `part`, on whole seconds (Zoom's precision), each
/// part ending one second before the next begins so that no item falls in two.
fn parts(from: i64, to: i64, part: Duration) -> Vec<Part> {
    let step = i64::try_from(part.min(MAX_PART).as_millis())
        .unwrap_or(86_400_000)
        .max(1000);
    let mut out = Vec::new();
    if from > to {
        return out;
    }
    let from = from.div_euclid(1000) * 1000;
    let mut start = from;
    while start <= to {
        let end = (start + step - 1000).min(to);
        for resource in [
            Resource::Engagements,
            Resource::Recordings,
            Resource::Voicemails,
        ] {
            out.push(Part {
                resource,
                from: start,
                to: end,
            });
        }
        start += step;
    }
    out
}

fn zoom_time(ms: i64) -> String {
    iso(ms)
}

/// Runs reconciliations. Cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    client: Arc<ZoomClient>,
    store: Arc<dyn Store>,
    log: EventLog,
    projection: Projection,
    settings: RunSettings,
    /// Turns true when the process shuts down: runs stop between pages (and resume at the next start).
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The sender of the default, never-firing `stopping` (a receiver whose sender is gone reads as "no signal").
    _no_shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// What event-driven fetches repaired since this process started (runs keep theirs in their summaries).
    repaired_by_fetches: Arc<std::sync::Mutex<MissedItems>>,
}

/// Resolves once `stopping` is true; never if its sender is gone without saying so.
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        if stopping.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Shared between the parts of a run.
struct Progress {
    summary: RunSummary,
    /// The engagements this run has counted as created. Parts merge concurrently, so an engagement listed by
    /// two parts (an engagement page and a recording page) can look new to both; it is counted once.
    created: HashSet<String>,
    done: BTreeSet<String>,
    last_saved: Instant,
}

impl Progress {
    fn new(summary: RunSummary, done: BTreeSet<String>) -> Self {
        Self {
            summary,
            created: HashSet::new(),
            done,
            last_saved: Instant::now(),
        }
    }

    /// Adds a merge's counts; an engagement another part already created is not counted again.
    fn add(&mut self, merged: Merged) {
        let Merged {
            mut summary,
            created,
        } = merged;
        for id in created {
            if !self.created.insert(id) {
                summary.created -= 1;
                summary.missed.engagements -= 1;
            }
        }
        self.summary.add(&summary);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Reconciler {
    pub fn new(
        client: Arc<ZoomClient>,
        store: Arc<dyn Store>,
        log: EventLog,
        projection: Projection,
        settings: RunSettings,
    ) -> Self {
        // Without a shutdown signal (the CLI, benchmarks), runs go to the end.
        let (never, stopping) = tokio::sync::watch::channel(false);
        Self {
            client,
            store,
            log,
            projection,
            settings,
            stopping,
            _no_shutdown: Arc::new(never),
            repaired_by_fetches: Arc::default(),
        }
    }

    /// What event-driven fetches repaired since this process started.
    pub fn repaired_by_fetches(&self) -> MissedItems {
        lock(&self.repaired_by_fetches).clone()
    }

    /// Accounts for what one fetch's merges repaired.
    pub(crate) fn note_fetch_repairs(&self, missed: &MissedItems) {
        missed.count("fetch");
        lock(&self.repaired_by_fetches).add(missed);
    }

    /// Runs stop between pages once `stopping` turns true.
    pub fn with_shutdown(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stopping = stopping;
        self
    }

    pub fn client(&self) -> &Arc<ZoomClient> {
        &self.client
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a run for `[from, to]` (epoch ms, inclusive) and executes it. `progress` is called after each
    /// part with the summary so far.
    pub async fn run_window(
        &self,
        kind: RunKind,
        from: i64,
        to: i64,
        progress: &(dyn Fn(&RunSummary) + Send + Sync),
    ) -> Result<RunRow, ReconcileError> {
        if from > to {
            return Err(ReconcileError::Invalid(format!(
                "the window starts ({}) after it ends ({})",
                iso(from),
                iso(to)
            )));
        }
        let row = self
            .store
            .create_run(kind.as_str(), from, to, now_ms())
            .await?;
        self.execute(row, progress).await
    }

    /// Continues a run that was interrupted (status `running` in the store), skipping the parts it finished.
    pub async fn resume(&self, row: RunRow) -> Result<RunRow, ReconcileError> {
        tracing::info!(run = row.id, kind = %row.kind, "resuming an interrupted reconciliation run");
        self.execute(row, &|_| {}).await
    }

    /// Executes a run already created in the store (`POST /api/v1/reconciliation/runs`).
    pub async fn execute(
        &self,
        mut row: RunRow,
        progress: &(dyn Fn(&RunSummary) + Send + Sync),
    ) -> Result<RunRow, ReconcileError> {
        let started = Instant::now();
        let all = parts(row.window_from, row.window_to, self.settings.part);
        let done: BTreeSet<String> = serde_json::from_str(&row.progress).unwrap_or_default();
        let mut summary: RunSummary = serde_json::from_str(&row.summary).unwrap_or_default();
        summary.parts_total = all.len() as u64;
        let todo: Vec<Part> = all
            .into_iter()
            .filter(|p| !done.contains(&p.key()))
            .collect();
        tracing::info!(
            run = row.id,
            kind = %row.kind,
            from = %iso(row.window_from),
            to = %iso(row.window_to),
            parts = todo.len(),
            "reconciliation started"
        );
        let shared = Mutex::new(Progress::new(summary, done));
        let results: Vec<Result<(), ReconcileError>> = futures_util::stream::iter(todo)
            .map(|part| {
                let shared = &shared;
                let row = &row;
                async move {
                    self.walk(&part, shared).await?;
                    let snapshot = {
                        let mut p = lock(shared);
                        p.done.insert(part.key());
                        p.summary.parts_done = p.done.len() as u64;
                        p.last_saved = Instant::now();
                        (
                            p.summary.clone(),
                            serde_json::to_string(&p.done).unwrap_or_default(),
                        )
                    };
                    progress(&snapshot.0);
                    // The checkpoint: a restart skips this part.
                    let mut saved = row.clone();
                    saved.summary = serde_json::to_string(&snapshot.0).unwrap_or_default();
                    saved.progress = snapshot.1;
                    saved.updated_at = now_ms();
                    self.store.save_run(&saved).await?;
                    Ok(())
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let failure = results.into_iter().find_map(Result::err);
        if matches!(failure, Some(ReconcileError::Stopping)) {
            // Keep `running`: the finished parts are checkpointed and the rest resumes at the next start.
            tracing::info!(
                run = row.id,
                "reconciliation interrupted by shutdown; it resumes at the next start"
            );
            return Ok(row);
        }
        let (summary, done) = {
            let p = lock(&shared);
            (p.summary.clone(), p.done.clone())
        };
        row.summary = serde_json::to_string(&summary).unwrap_or_default();
        row.progress = serde_json::to_string(&done).unwrap_or_default();
        row.updated_at = now_ms();
        row.finished_at = Some(row.updated_at);
        row.status = if failure.is_some() {
            "failed".into()
        } else {
            "succeeded".into()
        };
        row.error = failure.as_ref().map(|e| e.to_string());
        self.store.save_run(&row).await?;
        record_metrics(&row, &summary, started.elapsed());
        match &failure {
            None => tracing::info!(
                run = row.id,
                kind = %row.kind,
                seconds = started.elapsed().as_secs_f64(),
                engagements = summary.engagements_seen,
                logged = summary.resources_logged,
                created = summary.created,
                changed = summary.changed,
                missed = summary.missed.total(),
                "reconciliation finished"
            ),
            Some(e) => {
                tracing::error!(run = row.id, kind = %row.kind, error = %e, "reconciliation failed")
            }
        }
        match failure {
            // A missing scope fails every call the same way: say so loudly, whatever ran.
            Some(ReconcileError::Api(e)) if e.is_missing_scope() => Err(ReconcileError::Api(e)),
            _ => Ok(row),
        }
    }

    /// Walks one part's pages and merges each.
    async fn walk(&self, part: &Part, shared: &Mutex<Progress>) -> Result<(), ReconcileError> {
        let from = Some(zoom_time(part.from));
        let to = Some(zoom_time(part.to));
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Polled>, ApiError>>(PREFETCH_PAGES);
        let client = self.client.clone();
        let resource = part.resource;
        // Fetch ahead while the previous page merges, so the walk waits for the rate budget, not for us.
        let fetcher = tokio::spawn(async move {
            match resource {
                Resource::Engagements => {
                    let query = EngagementQuery {
                        from,
                        to,
                        page_size: Some(100),
                        ..Default::default()
                    };
                    forward(client.engagement_pages(&query), Polled::Engagement, &tx).await
                }
                Resource::Recordings => {
                    let query = RecordingQuery {
                        date_type: RecordingDateType::EndTime,
                        from,
                        to,
                        page_size: Some(300),
                        ..Default::default()
                    };
                    forward(client.recording_pages(&query), Polled::Recording, &tx).await
                }
                Resource::Voicemails => {
                    let query = InboxMessageQuery {
                        from,
                        to,
                        page_size: Some(300),
                        ..Default::default()
                    };
                    forward(
                        client.inbox_message_pages(&query),
                        Polled::InboxMessage,
                        &tx,
                    )
                    .await
                }
            }
        });
        let mut outcome = Ok(());
        let mut stop = std::pin::pin!(stopped(self.stopping.clone()));
        loop {
            let page = tokio::select! {
                page = rx.recv() => page,
                () = &mut stop => {
                    outcome = Err(ReconcileError::Stopping);
                    break;
                }
            };
            let Some(page) = page else { break };
            match page {
                Ok(items) => match self.merge(resource, items).await {
                    Ok(merged) => lock(shared).add(merged),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                },
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            }
        }
        drop(rx);
        fetcher.abort();
        outcome
    }

    /// Logs one page of resources and accounts for what they changed.
    pub(crate) async fn merge(
        &self,
        resource: Resource,
        items: Vec<Polled>,
    ) -> Result<Merged, ReconcileError> {
        let seen = items.len() as u64;
        let received_at = now_ms();
        let events: Vec<_> = items
            .iter()
            .filter_map(|p| p.to_event(received_at))
            .collect();
        let without_engagement = seen - events.len() as u64;
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.engagement_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Compare with everything acknowledged so far, not with a record the projector is still merging.
        if !self.projection.caught_up(Duration::from_secs(30)).await {
            tracing::warn!(
                "the projector is more than 30 s behind; this reconciliation's created/changed counts may be overstated"
            );
        }
        let mut before: HashMap<String, EngagementState> = self
            .store
            .engagement_states(&ids)
            .await?
            .into_iter()
            .map(|s| (s.engagement_id.clone(), s))
            .collect();
        let observations: Vec<_> = events.iter().map(|e| e.observation.clone()).collect();
        let outcomes = if events.is_empty() {
            Vec::new()
        } else {
            self.log
                .append(events.into_iter().map(Inbound::Event).collect())
                .await?
        };
        let mut after: HashMap<String, EngagementState> = HashMap::new();
        let (mut logged, mut unchanged) = (0u64, 0u64);
        for (observation, outcome) in observations.into_iter().zip(&outcomes) {
            match outcome {
                Outcome::Stored { .. } => {
                    logged += 1;
                    if let Some(obs) = observation {
                        let state = after.entry(obs.engagement_id.clone()).or_insert_with(|| {
                            before
                                .get(&obs.engagement_id)
                                .cloned()
                                .unwrap_or_else(|| EngagementState::empty(&obs.engagement_id))
                        });
                        state.apply(&obs);
                    }
                }
                Outcome::Duplicate { .. } | Outcome::Quarantined { .. } => unchanged += 1,
            }
        }
        let mut delta = RunSummary::default();
        let mut created = Vec::new();
        let s = &mut delta;
        match resource {
            Resource::Engagements => s.engagements_seen += seen,
            Resource::Recordings => s.recordings_seen += seen,
            Resource::Voicemails => s.voicemails_seen += seen,
        }
        s.resources_logged += logged;
        s.resources_unchanged += unchanged;
        s.resources_without_engagement += without_engagement;
        for (id, state) in &after {
            let previous = before.remove(id);
            let existed = previous.is_some();
            let previous = previous.unwrap_or_else(|| EngagementState::empty(id));
            let diff: ContentDiff = state.diff_from(&previous);
            if !existed {
                created.push(id.clone());
                s.created += 1;
                s.missed.engagements += 1;
            } else if diff.changed {
                s.changed += 1;
            }
            s.missed.notes += diff.notes;
            s.missed.dispositions += diff.dispositions;
            s.missed.recordings += diff.recordings;
            s.missed.transcripts += diff.transcripts;
            s.missed.voicemails += diff.voicemails;
            s.missed.agents += diff.agents;
            s.missed.queues += diff.queues;
        }
        let resource_name = match resource {
            Resource::Engagements => "engagement",
            Resource::Recordings => "recording",
            Resource::Voicemails => "inbox_message",
        };
        metrics::counter!("zcc_reconcile_resources_total", "resource" => resource_name, "outcome" => "logged")
            .increment(logged);
        metrics::counter!("zcc_reconcile_resources_total", "resource" => resource_name, "outcome" => "unchanged")
            .increment(unchanged);
        Ok(Merged {
            summary: delta,
            created,
        })
    }
}

/// What one merge did, and the engagements it created.
pub(crate) struct Merged {
    pub summary: RunSummary,
    pub created: Vec<String>,
}

/// Drives a page stream into `tx`, mapping items; stops at the first error or when the receiver is gone.
async fn forward<T, S>(
    pages: S,
    wrap: fn(T) -> Polled,
    tx: &mpsc::Sender<Result<Vec<Polled>, ApiError>>,
) where
    S: Stream<Item = Result<Vec<T>, ApiError>>,
{
    let mut pages = std::pin::pin!(pages);
    while let Some(page) = pages.next().await {
        let failed = page.is_err();
        let page = page.map(|items| items.into_iter().map(wrap).collect());
        if tx.send(page).await.is_err() || failed {
            return;
        }
    }
}

fn record_metrics(row: &RunRow, summary: &RunSummary, elapsed: Duration) {
    let kind = row.kind.clone();
    metrics::counter!("zcc_reconcile_runs_total", "kind" => kind.clone(), "status" => row.status.clone())
        .increment(1);
    metrics::histogram!("zcc_reconcile_run_seconds", "kind" => kind.clone())
        .record(elapsed.as_secs_f64());
    summary.missed.count("run");
    if row.status == "succeeded" {
        metrics::gauge!("zcc_reconcile_last_success_timestamp_seconds", "kind" => kind)
            .set(row.finished_at.unwrap_or_default() as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engagement_created_by_two_concurrent_parts_counts_once() {
        let merge = |ids: &[&str], notes: u64| {
            let mut summary = RunSummary {
                created: ids.len() as u64,
                resources_logged: ids.len() as u64,
                ..Default::default()
            };
            summary.missed.engagements = ids.len() as u64;
            summary.missed.notes = notes;
            Merged {
                summary,
                created: ids.iter().map(|s| s.to_string()).collect(),
            }
        };
        let mut progress = Progress::new(RunSummary::default(), BTreeSet::new());
        // The engagement page and the recording page both found e1 missing.
        progress.add(merge(&["e1", "e2"], 3));
        progress.add(merge(&["e1"], 0));
        progress.add(merge(&["e3"], 1));
        assert_eq!(progress.summary.created, 3);
        assert_eq!(progress.summary.missed.engagements, 3);
        assert_eq!(progress.summary.missed.notes, 4);
        assert_eq!(
            progress.summary.resources_logged, 4,
            "what was logged is still counted"
        );
    }

    #[test]
    fn parts_cover_the_window_once_on_whole_seconds() {
        let day = 86_400_000;
        let from = 1_795_251_600_123; // 09:00:00.123
        let to = from + 2 * day + 5_000;
        let ps = parts(from, to, MAX_PART);
        let engagements: Vec<&Part> = ps
            .iter()
            .filter(|p| p.resource == Resource::Engagements)
            .collect();
        assert_eq!(engagements.len(), 3);
        assert_eq!(engagements[0].from, 1_795_251_600_000);
        for w in engagements.windows(2) {
            assert_eq!(w[0].to + 1000, w[1].from, "adjacent, no overlap");
        }
        assert_eq!(engagements[2].to, to);
        assert_eq!(ps.len(), 9);
        // A short window is one part per resource.
        assert_eq!(parts(from, from + 60_000, MAX_PART).len(), 3);
        assert!(parts(from, from - 1, MAX_PART).is_empty());
    }
}
