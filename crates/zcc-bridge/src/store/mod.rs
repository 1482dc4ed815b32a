//! Storage: one interface (`Store`), two implementations (SQLite, the embedded default; Postgres, for several
//! replicas sharing one database). The commit algorithm is written once (`commit_batch`) over the small set of
//! per-backend statements in `BatchTx`.

pub mod activity;
pub mod api_keys;
pub mod chat;
pub mod delivery;
pub mod media;
mod postgres;
pub mod presence;
pub(crate) mod relaxed;
pub(crate) mod sql;
mod sqlite;
pub mod zoomapp;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::core::activity::Activity;
use crate::core::record::Merge;
use crate::core::{EngagementState, EventSource, MediaSource, Observation};
use crate::signals::Signals;

pub use activity::ActivityRepo;
pub use api_keys::{ApiKeyRepo, ApiKeyRow};
pub use delivery::DeliveryRepo;
pub use media::{ArchivedObject, MediaQuery, MediaRepo, MediaRow, MediaSetback, MediaStats};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use zoomapp::ZoomAppRepo;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored engagement {engagement_id} is unreadable: {source}")]
    CorruptState {
        engagement_id: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Deadlocks and serialisation failures: the whole batch can simply be retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An authenticated, parsed event to append to the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: EventSource,
    pub dedup_key: String,
    /// The key the same event had before dedup keys hashed RFC 8785 bytes, where it differs
    /// (`core::canonical`): if an event is logged under it, this one is that event's redelivery.
    pub legacy_dedup_key: Option<String>,
    pub event_type: String,
    pub engagement_id: Option<String>,
    pub event_ts: Option<i64>,
    pub received_at: i64,
    pub request_id: Option<String>,
    pub raw: Bytes,
    pub observation: Option<Observation>,
    pub activity: Option<Activity>,
    /// The log's `source` column when it says more than `source` (`flow:<source name>`).
    pub source_label: Option<String>,
    /// The conversation a chat message belongs to (`chat:<channel>:<session>`): the ordering key of its outbox
    /// rows (migration 0011). `None` for everything else.
    pub conversation: Option<String>,
}

impl NewEvent {
    pub fn source_column(&self) -> String {
        source_column(self.source, &self.source_label)
    }
}

impl NewQuarantine {
    pub fn source_column(&self) -> String {
        source_column(self.source, &self.source_label)
    }
}

/// The log's `source` column: the label when there is one, else the source's name.
fn source_column(source: EventSource, label: &Option<String>) -> String {
    label.clone().unwrap_or_else(|| source.as_str().to_string())
}

/// Authenticated input that could not be parsed.
#[derive(Debug, Clone)]
pub struct NewQuarantine {
    pub source: EventSource,
    /// As `NewEvent::source_label`.
    pub source_label: Option<String>,
    pub received_at: i64,
    pub request_id: Option<String>,
    pub reason: String,
    pub raw: Bytes,
}

/// One item of a group commit.
#[derive(Debug, Clone)]
pub enum Inbound {
    Event(NewEvent),
    Quarantine(NewQuarantine),
    /// A quarantined item that now parses: log it and mark the quarantine entry resolved, atomically.
    Replay {
        quarantine_id: i64,
        event: NewEvent,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Stored { event_id: i64 },
    Duplicate { event_id: i64 },
    Quarantined { quarantine_id: i64 },
}

/// Filters of `GET /api/v1/engagements`.
#[derive(Debug, Clone, Default)]
pub struct EngagementQuery {
    /// Inclusive lower bound on the start (or first event) time, epoch ms.
    pub from: Option<i64>,
    /// Exclusive upper bound, epoch ms.
    pub to: Option<i64>,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    pub consumer_number: Option<String>,
    /// Keyset cursor: rows strictly after `(sort_ts, engagement_id)` in descending order.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// An event-log row as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedEvent {
    pub id: i64,
    pub dedup_key: String,
    pub source: String,
    pub event_type: String,
    pub engagement_id: Option<String>,
    pub event_ts: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub received_at: i64,
    pub request_id: Option<String>,
    pub duplicate_count: i64,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub engagement_id: Option<String>,
    pub after_id: Option<i64>,
    pub limit: u32,
    pub with_raw: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineItem {
    pub id: i64,
    pub source: String,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub received_at: i64,
    pub request_id: Option<String>,
    pub reason: String,
    pub resolved_event_id: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub resolved_at: Option<i64>,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// Counters for tests, health and the admin API.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LogStats {
    pub events: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    pub engagements: i64,
    /// Logged events not yet merged into their records.
    pub projection_pending: i64,
}

/// A reconciliation run as stored. `progress` and `summary` are JSON owned by the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub window_from: i64,
    pub window_to: i64,
    /// `running`, `succeeded`, `failed`.
    pub status: String,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub progress: String,
    pub summary: String,
    pub error: Option<String>,
}

/// An engagement queued for a REST fetch (see the `fetch_queue` migration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchItem {
    pub engagement_id: String,
    /// Bit set: `FETCH_ENGAGEMENT`, `FETCH_RECORDINGS`, `FETCH_VOICEMAILS`.
    pub wants: i64,
    pub last_event_at: i64,
    pub attempts: i64,
}

pub const FETCH_ENGAGEMENT: i64 = 1;
pub const FETCH_RECORDINGS: i64 = 2;
pub const FETCH_VOICEMAILS: i64 = 4;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FetchQueueStats {
    /// Waiting (for their settle delay, a retry, or a worker).
    pub pending: i64,
    /// Given up after every retry (the next scheduled reconciliation covers them).
    pub gave_up: i64,
}

/// Held while a piece of scheduled work runs, so that only one replica runs it. Postgres: a session advisory
/// lock on a connection of its own; SQLite (one process): nothing to hold. Dropping it releases the lock
/// (the connection is closed rather than returned to the pool with the lock still held).
pub struct ExclusiveLock {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    key: i64,
}

impl ExclusiveLock {
    pub(crate) fn local() -> Self {
        Self { conn: None, key: 0 }
    }

    pub(crate) fn postgres(conn: sqlx::pool::PoolConnection<sqlx::Postgres>, key: i64) -> Self {
        Self {
            conn: Some(conn),
            key,
        }
    }

    /// Releases the lock and returns the connection to the pool.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                drop(conn.detach());
            }
        }
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the session is what releases a session lock when we cannot run the unlock.
            drop(conn.detach());
        }
    }
}

/// A stable advisory-lock key for a name.
pub(crate) fn lock_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// An event merged by the projector: its log id and what it says about its engagement and about agents.
#[derive(Debug, Clone)]
pub struct ProjectionItem {
    pub event_id: i64,
    pub observation: Option<Observation>,
    pub activity: Option<Activity>,
}

#[async_trait]
pub trait Store:
    MediaRepo
    + DeliveryRepo
    + ActivityRepo
    + ApiKeyRepo
    + presence::PresenceRepo
    + chat::ChatRepo
    + zoomapp::ZoomAppRepo
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// How many batches may commit concurrently (SQLite has one writer).
    fn committers(&self) -> usize;
    /// Appends a batch to the log, atomically: new events are logged (and queued for projection), redeliveries
    /// are counted as duplicates, unparseable input is quarantined. Records are not touched: see `project`.
    async fn commit(&self, batch: &[Inbound]) -> Result<Vec<Outcome>>;
    /// Merges observations into their engagement records and removes `event_ids` from the projection queue, in
    /// one transaction. Merging is idempotent, so projecting an event twice is harmless. Returns what it did, for
    /// the caller to wake the workers concerned.
    async fn project(&self, items: &[ProjectionItem], event_ids: &[i64]) -> Result<Projected>;
    /// The switches and wake-ups this store was opened with (shared with the workers).
    fn signals(&self) -> &Signals;
    /// Queued (not yet projected) events with their raw bytes, ascending by id, received before
    /// `received_before` if given.
    async fn projection_backlog(
        &self,
        after_event_id: i64,
        received_before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>>;
    async fn engagement(&self, engagement_id: &str) -> Result<Option<EngagementState>>;
    async fn engagements(&self, query: &EngagementQuery) -> Result<Vec<EngagementState>>;
    async fn events(&self, query: &EventQuery) -> Result<Vec<LoggedEvent>>;
    async fn quarantined(&self, after_id: Option<i64>, limit: u32) -> Result<Vec<QuarantineItem>>;
    async fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>>;
    /// Which of `keys` are dedup keys of logged events.
    async fn existing_dedup_keys(&self, keys: &[&str]) -> Result<HashSet<String>>;
    async fn stats(&self) -> Result<LogStats>;
    /// Engagement ids that have events in the log, ascending, after `after`.
    async fn logged_engagement_ids(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>>;
    /// Replaces one record outright (used by `rebuild`), unless events newer than `last_event_id` arrived for
    /// it meanwhile (then `false`: recompute and try again).
    async fn replace_engagement(&self, state: &EngagementState, last_event_id: i64)
        -> Result<bool>;
    /// Deletes records with no event in the log; returns how many.
    async fn delete_orphan_engagements(&self) -> Result<u64>;
    /// The records among `ids` that exist (in no particular order).
    async fn engagement_states(&self, ids: &[String]) -> Result<Vec<EngagementState>>;

    // Reconciliation runs.
    async fn create_run(
        &self,
        kind: &str,
        window_from: i64,
        window_to: i64,
        started_at: i64,
    ) -> Result<RunRow>;
    /// Saves status, progress, summary, `updated_at`, `finished_at` and error.
    async fn save_run(&self, run: &RunRow) -> Result<()>;
    async fn run(&self, id: i64) -> Result<Option<RunRow>>;
    /// Newest first, optionally one kind and/or one status.
    async fn runs(
        &self,
        kind: Option<&str>,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRow>>;
    /// Takes the named lock if no one holds it (`None`: another replica does).
    async fn try_exclusive(&self, name: &str) -> Result<Option<ExclusiveLock>>;

    // The fetch queue.
    /// Leases up to `limit` items whose last event is at or before `settled_before` and whose retry time has
    /// come, for `lease_ms`.
    async fn claim_fetches(
        &self,
        settled_before: i64,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<FetchItem>>;
    /// Removes a fetched item, unless a newer event re-queued it meanwhile (then only releases the lease).
    async fn complete_fetch(&self, item: &FetchItem) -> Result<()>;
    /// Schedules another attempt at `retry_at`, or parks the item as `gave_up`.
    async fn retry_fetch(
        &self,
        item: &FetchItem,
        retry_at: i64,
        error: &str,
        give_up: bool,
    ) -> Result<()>;
    async fn fetch_queue_stats(&self) -> Result<FetchQueueStats>;
    /// Database reachable and every migration applied.
    async fn ready(&self) -> Result<()>;
    async fn close(&self);
}

/// How to open the database, besides its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Postgres pool size per replica.
    pub max_connections: u32,
    /// Concurrent committing transactions on Postgres (SQLite has one writer).
    pub postgres_committers: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            postgres_committers: 4,
        }
    }
}

/// Opens the database at `url` (`sqlite://PATH` or `postgres://...`), creating it and applying migrations as
/// needed. `signals` is shared with the workers the store wakes.
pub async fn open(
    url: &str,
    options: StoreOptions,
    signals: Arc<Signals>,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::open(url, signals).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(
            PgStore::open(
                url,
                options.max_connections,
                options.postgres_committers,
                signals,
            )
            .await?,
        )
    } else {
        anyhow::bail!("storage.database: expected sqlite://PATH or postgres://USER:PASS@HOST/DB");
    };
    Ok(store)
}

fn migrator(sqls: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = sqls
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// The statements `commit_batch` needs inside one transaction, each covering a whole batch so that a commit
/// costs a handful of statements rather than several per event.
pub(crate) trait BatchTx: Send {
    /// Inserts the events whose dedup key is new; returns the ids of those inserted, by dedup key.
    async fn insert_events(&mut self, events: &[&NewEvent]) -> Result<HashMap<String, i64>>;
    /// Notes redeliveries of logged events; returns the logged ids by dedup key.
    async fn record_duplicates(&mut self, events: &[&NewEvent]) -> Result<HashMap<String, i64>>;
    async fn insert_quarantine(&mut self, item: &NewQuarantine) -> Result<i64>;
    async fn resolve_quarantine(
        &mut self,
        quarantine_id: i64,
        event_id: i64,
        at: i64,
    ) -> Result<()>;
    /// Reads (and on Postgres locks, in id order) the existing records among `ids`.
    async fn lock_engagements(&mut self, ids: &[&str])
        -> Result<BTreeMap<String, EngagementState>>;
    /// Inserts new records; returns those inserted (the others were created concurrently).
    async fn insert_engagements(&mut self, rows: &[EngagementRow]) -> Result<BTreeSet<String>>;
    /// Overwrites records this transaction holds locked.
    async fn update_engagements(&mut self, rows: &[EngagementRow]) -> Result<()>;
    async fn last_event_id(&mut self, engagement_id: &str) -> Result<Option<i64>>;
    /// Creates (or updates) the archive jobs of these files (see `media::upsert_media_sql`).
    async fn upsert_media(&mut self, sources: &[MediaSource], now: i64) -> Result<()>;
    /// Marks changed records for the delivery planner (see `delivery::touch_watch_sql`).
    async fn touch_watch(&mut self, engagement_ids: &[String], now: i64, due: i64) -> Result<()>;
    /// Records activity (see `activity::record_activity_sql`): the event ids newly recorded and the status spans
    /// the new events closed.
    async fn record_activity(
        &mut self,
        rows: &[activity::ActivityRow],
    ) -> Result<(Vec<i64>, Vec<(String, i64)>)>;
    /// Marks engagements for the presence worker (`presence_watch`).
    async fn touch_presence(&mut self, engagement_ids: &[String], now: i64) -> Result<()>;
    /// Removes projected events from the projection queue.
    async fn dequeue_projection(&mut self, event_ids: &[i64]) -> Result<()>;
    async fn replace_index(
        &mut self,
        entries: &[(String, BTreeSet<(&'static str, String)>)],
    ) -> Result<()>;
}

/// A record serialised for storage with its query columns.
pub(crate) struct EngagementRow {
    pub engagement_id: String,
    pub state_json: String,
    pub sort_ts: i64,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub updated_at: i64,
}

impl EngagementRow {
    pub fn new(state: &EngagementState, updated_at: i64) -> Result<Self> {
        Ok(Self {
            engagement_id: state.engagement_id.clone(),
            state_json: serde_json::to_string(state)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            sort_ts: state.sort_ts(),
            channel: state.channel().map(str::to_string),
            direction: state.direction().map(str::to_string),
            updated_at,
        })
    }
}

/// `INSERT INTO engagements (...) VALUES (...), ...` for `rows`; the caller adds the conflict clause.
pub(crate) fn insert_engagement_rows<'a, DB>(
    rows: &'a [EngagementRow],
) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::<DB>::new(
        "INSERT INTO engagements (engagement_id, state, sort_ts, channel, direction, updated_at) ",
    );
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.engagement_id.as_str())
            .push_bind(r.state_json.as_str())
            .push_bind(r.sort_ts)
            .push_bind(r.channel.as_deref())
            .push_bind(r.direction.as_deref())
            .push_bind(r.updated_at);
    });
    qb
}

pub(crate) fn decode_state(engagement_id: &str, json: &str) -> Result<EngagementState> {
    serde_json::from_str(json).map_err(|source| StoreError::CorruptState {
        engagement_id: engagement_id.to_string(),
        source,
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The events of a batch in dedup-key order (the order rows are inserted in, so that concurrent batches take
/// index locks in the same order), and whether the batch holds nothing but events.
pub(crate) fn sorted_events(batch: &[Inbound]) -> (Vec<&NewEvent>, bool) {
    let mut events: Vec<&NewEvent> = batch.iter().filter_map(event_of).collect();
    events.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
    let only_events = batch.iter().all(|i| matches!(i, Inbound::Event(_)));
    (events, only_events)
}

/// True when every event of the batch was newly logged by `inserted` (no redelivery, no repeat within the
/// batch): then the batch needs no further statement.
pub(crate) fn all_fresh(events: &[&NewEvent], inserted: &HashMap<String, i64>) -> bool {
    inserted.len() == events.len()
}

/// Completes a batch whose events were inserted (`inserted`: new dedup keys and their ids): records duplicates,
/// quarantines, resolves replayed quarantine entries, and returns one outcome per item, in batch order.
pub(crate) async fn finish_batch<T: BatchTx>(
    tx: &mut T,
    batch: &[Inbound],
    inserted: &HashMap<String, i64>,
) -> Result<Vec<Outcome>> {
    let now = now_ms();
    // The first item with a newly inserted key is the stored one; any repeat is a duplicate.
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut fresh = vec![false; batch.len()];
    let mut redelivered: Vec<&NewEvent> = Vec::new();
    for (index, item) in batch.iter().enumerate() {
        if let Some(event) = event_of(item) {
            if inserted.contains_key(&event.dedup_key) && claimed.insert(event.dedup_key.as_str()) {
                fresh[index] = true;
            } else {
                redelivered.push(event);
            }
        }
    }
    redelivered.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
    let existing = if redelivered.is_empty() {
        HashMap::new()
    } else {
        tx.record_duplicates(&redelivered).await?
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for (index, item) in batch.iter().enumerate() {
        let (event, replayed) = match item {
            Inbound::Quarantine(q) => {
                outcomes.push(Outcome::Quarantined {
                    quarantine_id: tx.insert_quarantine(q).await?,
                });
                continue;
            }
            Inbound::Event(event) => (event, None),
            Inbound::Replay {
                quarantine_id,
                event,
            } => (event, Some(*quarantine_id)),
        };
        let key = event.dedup_key.as_str();
        let (outcome, event_id) = match (fresh[index], inserted.get(key), existing.get(key)) {
            (true, Some(&id), _) => (Outcome::Stored { event_id: id }, id),
            (false, _, Some(&id)) | (false, Some(&id), None) => {
                (Outcome::Duplicate { event_id: id }, id)
            }
            _ => {
                return Err(StoreError::Invalid(format!(
                    "event {key} is neither new nor in the log"
                )))
            }
        };
        if let Some(quarantine_id) = replayed {
            tx.resolve_quarantine(quarantine_id, event_id, now).await?;
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Outcomes of a batch of plain events that were all newly logged.
pub(crate) fn fresh_outcomes(batch: &[Inbound], inserted: &HashMap<String, i64>) -> Vec<Outcome> {
    batch
        .iter()
        .filter_map(event_of)
        .map(|e| Outcome::Stored {
            event_id: inserted.get(&e.dedup_key).copied().unwrap_or_default(),
        })
        .collect()
}

/// What a projection transaction did, for the work to do once it is committed (wake-ups, metrics: the
/// projector's business, not the store's).
#[derive(Debug, Default)]
pub struct Projected {
    /// Archive jobs were written (wake the archiver).
    pub media_queued: bool,
    /// Records were marked for the delivery planner.
    pub watched: bool,
    /// Activity recorded for the first time, with the engagement's first queue (for metrics).
    pub new_activity: Vec<(Activity, Option<String>)>,
    /// Status spans closed by new status events (label, ms).
    pub closed_spans: Vec<(String, i64)>,
    /// Engagements were marked for the presence worker.
    pub presence_touched: bool,
}

/// The projector's transaction: merges observations into records, records activity and dequeues the projected
/// events.
pub(crate) async fn project_in<T: BatchTx>(
    tx: &mut T,
    items: &[ProjectionItem],
    event_ids: &[i64],
    signals: &Signals,
) -> Result<Projected> {
    let mut deltas: BTreeMap<String, EngagementState> = BTreeMap::new();
    for obs in items.iter().filter_map(|i| i.observation.as_ref()) {
        deltas
            .entry(obs.engagement_id.clone())
            .or_insert_with(|| EngagementState::empty(obs.engagement_id.clone()))
            .apply(obs);
    }
    let now = now_ms();
    let watch_due = signals.watch_due(now).filter(|_| !deltas.is_empty());
    let changed: Vec<String> = if watch_due.is_some() {
        deltas.keys().cloned().collect()
    } else {
        Vec::new()
    };
    let (media_queued, queues) = merge_into_records(tx, deltas, now).await?;
    if let Some(due) = watch_due {
        tx.touch_watch(&changed, now, due).await?;
    }
    let watched = watch_due.is_some();
    let mut rows: Vec<activity::ActivityRow> = items
        .iter()
        .filter_map(|i| {
            i.activity.clone().map(|activity| activity::ActivityRow {
                event_id: i.event_id,
                activity,
            })
        })
        .collect();
    rows.sort_by_key(|r| r.event_id);
    rows.dedup_by_key(|r| r.event_id);
    let mut new_activity = Vec::new();
    let mut closed_spans = Vec::new();
    if !rows.is_empty() {
        let (inserted, closed) = tx.record_activity(&rows).await?;
        closed_spans = closed;
        let inserted: HashSet<i64> = inserted.into_iter().collect();
        for row in rows.into_iter().filter(|r| inserted.contains(&r.event_id)) {
            let queue = row
                .activity
                .queue
                .as_ref()
                .map(|q| q.cc_queue_id.clone())
                .or_else(|| {
                    let id = row.activity.engagement_id.as_ref()?;
                    queues.get(id).cloned()
                });
            new_activity.push((row.activity, queue));
        }
    }
    // Engagements whose agents' interactions changed, for presence sync.
    let mut presence_ids: Vec<String> = if signals.presence() {
        new_activity
            .iter()
            .filter(|(a, _)| a.kind.drives_presence())
            .filter_map(|(a, _)| a.engagement_id.clone())
            .collect()
    } else {
        Vec::new()
    };
    presence_ids.sort();
    presence_ids.dedup();
    if !presence_ids.is_empty() {
        tx.touch_presence(&presence_ids, now).await?;
    }
    let mut ids = event_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    tx.dequeue_projection(&ids).await?;
    Ok(Projected {
        media_queued,
        watched,
        new_activity,
        closed_spans,
        presence_touched: !presence_ids.is_empty(),
    })
}

/// Merges per-engagement deltas into the stored records, a batch at a time. Returns whether archive jobs were
/// written, and each merged record's first queue.
async fn merge_into_records<T: BatchTx>(
    tx: &mut T,
    mut pending: BTreeMap<String, EngagementState>,
    now: i64,
) -> Result<(bool, HashMap<String, String>)> {
    let mut media_queued = false;
    let mut queues = HashMap::new();
    while !pending.is_empty() {
        let ids: Vec<&str> = pending.keys().map(String::as_str).collect();
        let existing = tx.lock_engagements(&ids).await?;
        let (mut updates, mut inserts, mut index) = (Vec::new(), Vec::new(), Vec::new());
        let mut media = Vec::new();
        for (id, delta) in &pending {
            match existing.get(id) {
                Some(stored) => {
                    let mut state = stored.clone();
                    state.join(delta);
                    let entries = state.index_entries();
                    if let Some((_, q)) = entries.iter().find(|(kind, _)| *kind == "queue") {
                        queues.insert(id.clone(), q.clone());
                    }
                    if entries != stored.index_entries() {
                        index.push((id.clone(), entries));
                    }
                    // Archive jobs for files the record did not point at before (or now points at elsewhere).
                    let before = stored.media_sources();
                    media.extend(
                        state
                            .media_sources()
                            .into_iter()
                            .filter(|s| !before.contains(s)),
                    );
                    updates.push(EngagementRow::new(&state, now)?);
                }
                None => {
                    if let Some(q) = delta.queue_ids().into_iter().next() {
                        queues.insert(id.clone(), q);
                    }
                    inserts.push(EngagementRow::new(delta, now)?)
                }
            }
        }
        tx.update_engagements(&updates).await?;
        let created = tx.insert_engagements(&inserts).await?;
        for id in &created {
            if let Some(delta) = pending.get(id) {
                index.push((id.clone(), delta.index_entries()));
                media.extend(delta.media_sources());
            }
        }
        tx.replace_index(&index).await?;
        if !media.is_empty() {
            tx.upsert_media(&media, now).await?;
            media_queued = true;
        }
        // Records another transaction created meanwhile: lock them and merge again.
        pending.retain(|id, _| !existing.contains_key(id) && !created.contains(id));
    }
    Ok((media_queued, queues))
}

fn event_of(item: &Inbound) -> Option<&NewEvent> {
    match item {
        Inbound::Event(e) | Inbound::Replay { event: e, .. } => Some(e),
        Inbound::Quarantine(_) => None,
    }
}

pub(crate) const STATS_SQL: &str = "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM duplicates),
    (SELECT COUNT(*) FROM quarantine WHERE resolved_event_id IS NULL), (SELECT COUNT(*) FROM engagements),
    (SELECT COUNT(*) FROM projection_queue)";

pub(crate) const DELETE_ORPHAN_INDEX_SQL: &str = "DELETE FROM engagement_index WHERE NOT EXISTS
    (SELECT 1 FROM events v WHERE v.engagement_id = engagement_index.engagement_id)";

pub(crate) const DELETE_ORPHANS_SQL: &str = "DELETE FROM engagements WHERE NOT EXISTS
    (SELECT 1 FROM events v WHERE v.engagement_id = engagements.engagement_id)";

/// Writes `state` as the whole record (no merge with what is stored) if it was computed from every logged event.
pub(crate) async fn replace_engagement_in<T: BatchTx>(
    tx: &mut T,
    state: &EngagementState,
    last_event_id: i64,
) -> Result<bool> {
    let row = EngagementRow::new(state, now_ms())?;
    // Lock first: a commit still in flight merges into the replaced record after we finish.
    let existing = tx.lock_engagements(&[state.engagement_id.as_str()]).await?;
    if tx.last_event_id(&state.engagement_id).await?.unwrap_or(0) != last_event_id {
        return Ok(false);
    }
    let rows = [row];
    if existing.is_empty() && tx.insert_engagements(&rows).await?.is_empty() {
        return Ok(false); // created concurrently: recompute
    }
    tx.update_engagements(&rows).await?;
    tx.replace_index(&[(state.engagement_id.clone(), state.index_entries())])
        .await?;
    // A rebuild also (re)creates the archive jobs, e.g. for records made before the archive existed.
    tx.upsert_media(&state.media_sources(), now_ms()).await?;
    Ok(true)
}

/// Readiness: the newest embedded migration is recorded as applied.
pub(crate) fn check_applied(migrator: &Migrator, applied: Option<i64>) -> Result<()> {
    let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(v) if v >= expected => Ok(()),
        other => Err(StoreError::Invalid(format!(
            "database schema at version {}, expected {expected}",
            other.unwrap_or(0)
        ))),
    }
}

pub(crate) const APPLIED_MIGRATION_SQL: &str =
    "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// WHERE clauses, order and limit of the engagement list (the same SQL on both backends).
pub(crate) fn push_engagement_filters<'a, DB>(
    qb: &mut sqlx::QueryBuilder<'a, DB>,
    q: &EngagementQuery,
) where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(from) = q.from {
        qb.push(" AND e.sort_ts >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        qb.push(" AND e.sort_ts < ").push_bind(to);
    }
    if let Some(channel) = &q.channel {
        qb.push(" AND e.channel = ").push_bind(channel.clone());
    }
    if let Some(direction) = &q.direction {
        qb.push(" AND e.direction = ").push_bind(direction.clone());
    }
    for (kind, value) in [
        ("queue", &q.queue_id),
        ("agent", &q.user_id),
        ("consumer_number", &q.consumer_number),
    ] {
        if let Some(value) = value {
            qb.push(" AND e.engagement_id IN (SELECT i.engagement_id FROM engagement_index i WHERE i.kind = ")
                .push_bind(kind.to_string())
                .push(" AND i.value = ")
                .push_bind(value.clone())
                .push(")");
        }
    }
    if let Some((sort_ts, id)) = &q.after {
        qb.push(" AND (e.sort_ts < ")
            .push_bind(*sort_ts)
            .push(" OR (e.sort_ts = ")
            .push_bind(*sort_ts)
            .push(" AND e.engagement_id < ")
            .push_bind(id.clone())
            .push("))");
    }
    qb.push(" ORDER BY e.sort_ts DESC, e.engagement_id DESC LIMIT ")
        .push_bind(i64::from(q.limit));
}

pub(crate) fn push_event_filters<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, q: &EventQuery)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(id) = &q.engagement_id {
        qb.push(" AND engagement_id = ").push_bind(id.clone());
    }
    if let Some(after) = q.after_id {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(q.limit));
}
