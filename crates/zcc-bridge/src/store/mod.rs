//! Storage: one interface (`Store`), two implementations (SQLite, the embedded default; Postgres, for several
//! replicas sharing one database). The commit algorithm is written once (`commit_batch`) over the small set of
//! per-backend statements in `BatchTx`.

mod postgres;
mod sqlite;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::config::{Config, DatabaseKind};
use crate::core::record::Merge;
use crate::core::{EngagementState, EventSource, Observation};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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
    pub event_type: String,
    pub engagement_id: Option<String>,
    pub event_ts: Option<i64>,
    pub received_at: i64,
    pub request_id: Option<String>,
    pub raw: Bytes,
    pub observation: Option<Observation>,
}

/// Authenticated input that could not be parsed.
#[derive(Debug, Clone)]
pub struct NewQuarantine {
    pub source: EventSource,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub received_at: i64,
    pub request_id: Option<String>,
    pub reason: String,
    pub resolved_event_id: Option<i64>,
    pub resolved_at: Option<i64>,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// Counters for tests, health and the admin API.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LogStats {
    pub events: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    pub engagements: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// How many batches may commit concurrently (SQLite has one writer).
    fn committers(&self) -> usize;
    /// Appends a batch in one transaction and merges its observations into the engagement records.
    async fn commit(&self, batch: &[Inbound]) -> Result<Vec<Outcome>>;
    async fn engagement(&self, engagement_id: &str) -> Result<Option<EngagementState>>;
    async fn engagements(&self, query: &EngagementQuery) -> Result<Vec<EngagementState>>;
    async fn events(&self, query: &EventQuery) -> Result<Vec<LoggedEvent>>;
    async fn quarantined(&self, after_id: Option<i64>, limit: u32) -> Result<Vec<QuarantineItem>>;
    async fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>>;
    async fn stats(&self) -> Result<LogStats>;
    /// Engagement ids that have events in the log, ascending, after `after`.
    async fn logged_engagement_ids(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>>;
    /// Replaces one record outright (used by `rebuild`), unless events newer than `last_event_id` arrived for
    /// it meanwhile (then `false`: recompute and try again).
    async fn replace_engagement(&self, state: &EngagementState, last_event_id: i64)
        -> Result<bool>;
    /// Deletes records with no event in the log; returns how many.
    async fn delete_orphan_engagements(&self) -> Result<u64>;
    /// Database reachable and every migration applied.
    async fn ready(&self) -> Result<()>;
    async fn close(&self);
}

/// Opens the configured database, creating it and applying migrations as needed.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.storage.database.expose();
    let kind = config.database_kind()?;
    let store: Arc<dyn Store> = match kind {
        DatabaseKind::Sqlite => Arc::new(SqliteStore::open(url).await?),
        DatabaseKind::Postgres => Arc::new(
            PgStore::open(
                url,
                config.storage.max_connections,
                config.ingest.postgres_committers,
            )
            .await?,
        ),
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
    /// Notes a redelivery of an existing event; returns that event's id.
    async fn record_duplicate(&mut self, event: &NewEvent) -> Result<i64>;
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
    async fn replace_index(
        &mut self,
        entries: &[(String, BTreeSet<(&'static str, String)>)],
    ) -> Result<()>;
}

/// Implements `BatchTx` for a backend's transaction wrapper. The SQL is the same on both backends (placeholders
/// come from `QueryBuilder`); only the row-locking suffix differs.
macro_rules! impl_batch_tx {
    ($tx:ident, $db:ty, $lock_suffix:literal) => {
        impl $crate::store::BatchTx for $tx<'_> {
            async fn insert_events(
                &mut self,
                events: &[&$crate::store::NewEvent],
            ) -> $crate::store::Result<std::collections::HashMap<String, i64>> {
                let mut inserted = std::collections::HashMap::new();
                for chunk in events.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (dedup_key, source, event_type, engagement_id, event_ts, received_at, request_id, raw) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.dedup_key.as_str())
                            .push_bind(e.source.as_str())
                            .push_bind(e.event_type.as_str())
                            .push_bind(e.engagement_id.as_deref())
                            .push_bind(e.event_ts)
                            .push_bind(e.received_at)
                            .push_bind(e.request_id.as_deref())
                            .push_bind(e.raw.as_ref());
                    });
                    qb.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key");
                    let rows: Vec<(i64, String)> = qb.build_query_as().fetch_all(&mut *self.0).await?;
                    inserted.extend(rows.into_iter().map(|(id, key)| (key, id)));
                }
                Ok(inserted)
            }

            async fn record_duplicate(&mut self, e: &$crate::store::NewEvent) -> $crate::store::Result<i64> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE events SET duplicate_count = duplicate_count + 1, last_duplicate_at = ",
                );
                qb.push_bind(e.received_at)
                    .push(" WHERE dedup_key = ")
                    .push_bind(e.dedup_key.as_str())
                    .push(" RETURNING id");
                let id: i64 = qb.build_query_scalar().fetch_one(&mut *self.0).await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO duplicates (event_id, source, received_at, request_id) ",
                );
                qb.push_values([e], |mut b, e| {
                    b.push_bind(id)
                        .push_bind(e.source.as_str())
                        .push_bind(e.received_at)
                        .push_bind(e.request_id.as_deref());
                });
                qb.build().execute(&mut *self.0).await?;
                Ok(id)
            }

            async fn insert_quarantine(&mut self, q: &$crate::store::NewQuarantine) -> $crate::store::Result<i64> {
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("INSERT INTO quarantine (source, received_at, request_id, reason, raw) ");
                qb.push_values([q], |mut b, q| {
                    b.push_bind(q.source.as_str())
                        .push_bind(q.received_at)
                        .push_bind(q.request_id.as_deref())
                        .push_bind(q.reason.as_str())
                        .push_bind(q.raw.as_ref());
                });
                qb.push(" RETURNING id");
                Ok(qb.build_query_scalar().fetch_one(&mut *self.0).await?)
            }

            async fn resolve_quarantine(
                &mut self,
                quarantine_id: i64,
                event_id: i64,
                at: i64,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE quarantine SET resolved_event_id = ");
                qb.push_bind(event_id)
                    .push(", resolved_at = ")
                    .push_bind(at)
                    .push(" WHERE id = ")
                    .push_bind(quarantine_id);
                qb.build().execute(&mut *self.0).await?;
                Ok(())
            }

            async fn lock_engagements(
                &mut self,
                ids: &[&str],
            ) -> $crate::store::Result<std::collections::BTreeMap<String, $crate::core::EngagementState>> {
                let mut out = std::collections::BTreeMap::new();
                for chunk in ids.chunks(1000) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("SELECT engagement_id, state FROM engagements WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(") ORDER BY engagement_id");
                    qb.push($lock_suffix);
                    let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&mut *self.0).await?;
                    for (id, json) in rows {
                        let state = $crate::store::decode_state(&id, &json)?;
                        out.insert(id, state);
                    }
                }
                Ok(out)
            }

            async fn insert_engagements(
                &mut self,
                rows: &[$crate::store::EngagementRow],
            ) -> $crate::store::Result<std::collections::BTreeSet<String>> {
                let mut inserted = std::collections::BTreeSet::new();
                for chunk in rows.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO engagements (engagement_id, state, sort_ts, channel, direction, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.engagement_id.as_str())
                            .push_bind(r.state_json.as_str())
                            .push_bind(r.sort_ts)
                            .push_bind(r.channel.as_deref())
                            .push_bind(r.direction.as_deref())
                            .push_bind(r.updated_at);
                    });
                    qb.push(" ON CONFLICT (engagement_id) DO NOTHING RETURNING engagement_id");
                    let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *self.0).await?;
                    inserted.extend(ids);
                }
                Ok(inserted)
            }

            async fn update_engagements(&mut self, rows: &[$crate::store::EngagementRow]) -> $crate::store::Result<()> {
                // An upsert of rows this transaction holds locked: one statement, same SQL on both backends.
                for chunk in rows.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO engagements (engagement_id, state, sort_ts, channel, direction, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.engagement_id.as_str())
                            .push_bind(r.state_json.as_str())
                            .push_bind(r.sort_ts)
                            .push_bind(r.channel.as_deref())
                            .push_bind(r.direction.as_deref())
                            .push_bind(r.updated_at);
                    });
                    qb.push(
                        " ON CONFLICT (engagement_id) DO UPDATE SET state = excluded.state, sort_ts = excluded.sort_ts,
                          channel = excluded.channel, direction = excluded.direction, updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *self.0).await?;
                }
                Ok(())
            }

            async fn last_event_id(&mut self, engagement_id: &str) -> $crate::store::Result<Option<i64>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT MAX(id) FROM events WHERE engagement_id = ");
                qb.push_bind(engagement_id);
                Ok(qb.build_query_scalar().fetch_one(&mut *self.0).await?)
            }

            async fn replace_index(
                &mut self,
                entries: &[(String, std::collections::BTreeSet<(&'static str, String)>)],
            ) -> $crate::store::Result<()> {
                for chunk in entries.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM engagement_index WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for (id, _) in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(")");
                    qb.build().execute(&mut *self.0).await?;
                    let rows: Vec<(&str, &str, &str)> = chunk
                        .iter()
                        .flat_map(|(id, set)| set.iter().map(move |(kind, value)| (*kind, value.as_str(), id.as_str())))
                        .collect();
                    for rows in rows.chunks(1000) {
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("INSERT INTO engagement_index (kind, value, engagement_id) ");
                        qb.push_values(rows, |mut b, (kind, value, id)| {
                            b.push_bind(*kind).push_bind(*value).push_bind(*id);
                        });
                        qb.build().execute(&mut *self.0).await?;
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use impl_batch_tx;

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

/// The group-commit algorithm, shared by both backends.
///
/// Events are inserted in dedup-key order and records are locked in engagement-id order, so concurrent batches
/// (several Postgres committers or replicas) always take locks in the same order and cannot deadlock on them.
pub(crate) async fn commit_batch<T: BatchTx>(
    tx: &mut T,
    batch: &[Inbound],
) -> Result<Vec<Outcome>> {
    let now = now_ms();
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| sort_key(&batch[a]).cmp(&sort_key(&batch[b])));

    let events: Vec<&NewEvent> = order.iter().filter_map(|&i| event_of(&batch[i])).collect();
    let inserted = tx.insert_events(&events).await?;
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let mut deltas: BTreeMap<String, EngagementState> = BTreeMap::new();
    for index in order {
        let item = &batch[index];
        let outcome = match (item, event_of(item)) {
            (Inbound::Quarantine(q), _) => Outcome::Quarantined {
                quarantine_id: tx.insert_quarantine(q).await?,
            },
            (_, Some(event)) => {
                // The first item with a newly inserted key is the stored one; any repeat is a duplicate.
                let outcome = match inserted.get(&event.dedup_key) {
                    Some(&event_id) if claimed.insert(event.dedup_key.as_str()) => {
                        if let Some(obs) = &event.observation {
                            deltas
                                .entry(obs.engagement_id.clone())
                                .or_insert_with(|| {
                                    EngagementState::empty(obs.engagement_id.clone())
                                })
                                .apply(obs);
                        }
                        Outcome::Stored { event_id }
                    }
                    _ => Outcome::Duplicate {
                        event_id: tx.record_duplicate(event).await?,
                    },
                };
                if let Inbound::Replay { quarantine_id, .. } = item {
                    let (Outcome::Stored { event_id }
                    | Outcome::Duplicate { event_id }
                    | Outcome::Quarantined {
                        quarantine_id: event_id,
                    }) = outcome;
                    tx.resolve_quarantine(*quarantine_id, event_id, now).await?;
                }
                outcome
            }
            (_, None) => continue,
        };
        outcomes[index] = Some(outcome);
    }
    merge_into_records(tx, deltas, now).await?;
    // `order` is a permutation of the indices, so every slot is filled.
    Ok(outcomes.into_iter().flatten().collect())
}

/// Merges per-engagement deltas into the stored records, a batch at a time.
async fn merge_into_records<T: BatchTx>(
    tx: &mut T,
    mut pending: BTreeMap<String, EngagementState>,
    now: i64,
) -> Result<()> {
    while !pending.is_empty() {
        let ids: Vec<&str> = pending.keys().map(String::as_str).collect();
        let existing = tx.lock_engagements(&ids).await?;
        let (mut updates, mut inserts, mut index) = (Vec::new(), Vec::new(), Vec::new());
        for (id, delta) in &pending {
            match existing.get(id) {
                Some(stored) => {
                    let mut state = stored.clone();
                    state.join(delta);
                    let entries = state.index_entries();
                    if entries != stored.index_entries() {
                        index.push((id.clone(), entries));
                    }
                    updates.push(EngagementRow::new(&state, now)?);
                }
                None => inserts.push(EngagementRow::new(delta, now)?),
            }
        }
        tx.update_engagements(&updates).await?;
        let created = tx.insert_engagements(&inserts).await?;
        for id in &created {
            if let Some(delta) = pending.get(id) {
                index.push((id.clone(), delta.index_entries()));
            }
        }
        tx.replace_index(&index).await?;
        // Records another transaction created meanwhile: lock them and merge again.
        pending.retain(|id, _| !existing.contains_key(id) && !created.contains(id));
    }
    Ok(())
}

fn event_of(item: &Inbound) -> Option<&NewEvent> {
    match item {
        Inbound::Event(e) | Inbound::Replay { event: e, .. } => Some(e),
        Inbound::Quarantine(_) => None,
    }
}

fn sort_key(item: &Inbound) -> (u8, &str) {
    match event_of(item) {
        Some(e) => (0, e.dedup_key.as_str()),
        None => (1, ""),
    }
}

pub(crate) const STATS_SQL: &str = "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM duplicates),
    (SELECT COUNT(*) FROM quarantine WHERE resolved_event_id IS NULL), (SELECT COUNT(*) FROM engagements)";

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
