//! The delivery outbox's tables (see the `0005_delivery` migration). `DeliveryRepo` is a supertrait of `Store`,
//! implemented for both backends by `impl_delivery_repo!` (same SQL; Postgres adds `FOR UPDATE SKIP LOCKED`).

use async_trait::async_trait;
use serde::Serialize;

use super::Result;

pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_DELIVERED: &str = "delivered";
pub const DELIVERY_DEAD: &str = "dead";
pub const DELIVERY_STATES: [&str; 3] = [DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_DEAD];

/// A leased delivery with what the sink needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    pub id: i64,
    pub sink: String,
    pub msg_id: String,
    pub event_type: String,
    pub ordering_key: String,
    pub attempts: i64,
    pub created_at: i64,
    pub caused_at: i64,
    pub engagement_id: Option<String>,
    /// Engagement messages: the stored payload.
    pub payload: Option<String>,
    /// Real-time messages: the logged event.
    pub event: Option<JobEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub id: i64,
    pub source: String,
    pub event_ts: Option<i64>,
    pub received_at: i64,
    pub raw: Vec<u8>,
}

/// How an attempt ended, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAttempt {
    /// 1 for the first attempt (numbering restarts with a replay, which resets the count).
    pub number: i64,
    /// New state: pending (retry at `next_attempt_at`), delivered or dead.
    pub state: &'static str,
    pub next_attempt_at: i64,
    /// Whether the attempt counts (a sink disabled by 410 leaves the count as it was, to start afresh later).
    pub counts: bool,
    pub started_at: i64,
    pub duration_ms: i64,
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub response: String,
    pub error: Option<String>,
    pub finished_at: i64,
}

/// One finished attempt of a leased delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDelivery {
    pub id: i64,
    pub token: i64,
    pub sink: String,
    pub ordering_key: String,
    pub attempt: FinishedAttempt,
    /// If delivered: lease up to this many of the deliveries that follow in its ordering key (0: none).
    pub follow: u32,
}

/// What recording a batch of attempts did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// Deliveries whose state was updated (the others' leases had passed to another worker).
    pub updated: usize,
    /// Per recorded delivery, in order: the following deliveries leased for it (empty unless `follow`).
    pub next: Vec<Vec<DeliveryJob>>,
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub sink: String,
    pub msg_id: String,
    pub event_type: String,
    pub engagement_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.sink, d.msg_id, d.event_type, \
    CASE WHEN d.ordering_key LIKE 'event:%' THEN NULL ELSE d.ordering_key END, d.state, CAST(d.attempts AS BIGINT), \
    d.next_attempt_at, d.created_at, d.delivered_at, d.last_status, d.last_error";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRow {
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub status: Option<i64>,
    pub response: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub sink: Option<String>,
    pub state: Option<String>,
    pub engagement_id: Option<String>,
    pub event_type: Option<String>,
    /// Rows with a smaller id (newest first).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    One(i64),
    /// Every dead delivery of a sink.
    Dead {
        sink: String,
    },
    /// Every delivery of a sink created at or after `from` (epoch ms), whatever its state.
    Since {
        sink: String,
        from: i64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkCounts {
    pub sink: String,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisabledSink {
    pub sink: String,
    pub disabled_at: i64,
    pub reason: String,
}

/// An engagement the planner must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub engagement_id: String,
    pub changed_at: i64,
    pub caused_at: i64,
}

/// What the planner recorded for an engagement so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedState {
    pub completed_at: Option<i64>,
    pub revision: i64,
    pub content_hash: Option<String>,
}

/// A message to queue for some sinks, and what to remember about the engagement.
#[derive(Debug, Clone)]
pub struct PlannedMessage {
    pub msg_id: String,
    pub event_type: String,
    pub engagement_id: String,
    pub payload: String,
    pub created_at: i64,
    pub caused_at: i64,
    pub sinks: Vec<String>,
    pub state: PlannedState,
    /// Further messages of the same engagement queued with it, after it (a call log); a message already queued
    /// (same id) is left as it is.
    pub extra: Vec<ExtraMessage>,
}

#[derive(Debug, Clone)]
pub struct ExtraMessage {
    pub msg_id: String,
    pub event_type: String,
    pub payload: String,
    pub sinks: Vec<String>,
}

#[async_trait]
pub trait DeliveryRepo: Send + Sync {
    /// Replaces the real-time routes (event type → sink) the event-log trigger queues deliveries by.
    async fn set_realtime_routes(&self, routes: &[(String, String)]) -> Result<()>;
    /// Leases up to `limit` due deliveries of `sink` whose earlier deliveries (same ordering key) are all
    /// delivered, oldest first.
    async fn claim_deliveries(
        &self,
        sink: &str,
        now: i64,
        lease_until: i64,
        token: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryJob>>;
    /// Records attempts and the deliveries' new states, in one transaction (a group commit: one fsync for many
    /// attempts). A delivery whose lease (`token`) passed to another worker keeps its state; its attempt is still
    /// logged. A delivered one that asks to be `followed` also leases, in the same transaction and with its
    /// token, the run of due deliveries that come next in its ordering key (so its worker goes on at once, with
    /// no claim in between and no window in which another worker could take them).
    async fn finish_deliveries(
        &self,
        done: &[FinishedDelivery],
        now: i64,
        lease_until: i64,
    ) -> Result<Finished>;
    /// Gives up leases taken but not attempted (a worker that stops before reaching them).
    async fn release_deliveries(&self, ids: &[i64], token: i64) -> Result<u64>;
    /// A delivery its creator holds: queued already leased to `token` by the transaction that queued it (the chat
    /// routes of migration 0011), with what its sink needs, and the ids of earlier deliveries of its ordering key
    /// that are not delivered yet (while there are any, it is not its turn: give it back). `None` when it is not
    /// pending under that lease any more (attempted already, or the lease ran out and a worker took it).
    async fn leased_delivery(
        &self,
        sink: &str,
        msg_id: &str,
        token: i64,
    ) -> Result<Option<(DeliveryJob, Vec<i64>)>>;
    /// Releases every lease (start-up of the only process of an embedded database).
    async fn release_delivery_leases(&self) -> Result<u64>;
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRow>>;
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRow>>;
    async fn delivery_attempts(&self, id: i64) -> Result<Vec<AttemptRow>>;
    /// Makes the selected deliveries due now with a fresh attempt count; returns how many.
    async fn replay_deliveries(&self, replay: &Replay, now: i64) -> Result<u64>;
    async fn delivery_counts(&self) -> Result<Vec<SinkCounts>>;
    async fn disable_sink(&self, sink: &str, reason: &str, now: i64) -> Result<()>;
    /// Returns whether the sink was disabled.
    async fn enable_sink(&self, sink: &str) -> Result<bool>;
    async fn disabled_sinks(&self) -> Result<Vec<DisabledSink>>;

    // The planner.
    /// Leases up to `limit` watched engagements that are due.
    async fn claim_watch(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<WatchRow>>;
    async fn planned_state(&self, engagement_id: &str) -> Result<Option<PlannedState>>;
    /// Queues `message` for its sinks, remembers its state and clears the watch (unless the record changed again
    /// since `watch.changed_at`), atomically.
    async fn plan_message(&self, watch: &WatchRow, message: &PlannedMessage) -> Result<()>;
    /// Looks at the engagement again at `due_at` (no change since `changed_at`), or forgets it (`None`).
    async fn settle_watch(&self, watch: &WatchRow, due_at: Option<i64>) -> Result<()>;
    /// Watches `engagement_ids` now (an archived file changes what the record shows).
    async fn touch_watch(&self, engagement_ids: &[String], now: i64) -> Result<()>;
}

/// `INSERT ... ON CONFLICT` into `delivery_watch` for changed records (the projector's transaction).
macro_rules! touch_watch_sql {
    ($db:ty, $conn:expr, $ids:expr, $now:expr, $due:expr) => {{
        let mut ids: Vec<&str> = $ids.iter().map(|s| s.as_ref()).collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks($crate::store::sql::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO delivery_watch (engagement_id, changed_at, caused_at, due_at) ",
            );
            qb.push_values(chunk, |mut b, id| {
                b.push_bind(*id).push_bind($now).push_bind($now).push_bind($due);
            });
            qb.push(
                " ON CONFLICT (engagement_id) DO UPDATE SET changed_at = excluded.changed_at,
                  due_at = CASE WHEN delivery_watch.due_at < excluded.due_at THEN delivery_watch.due_at ELSE excluded.due_at END",
            );
            qb.build().execute(&mut *$conn).await?;
        }
        Ok(())
    }};
}
pub(crate) use touch_watch_sql;

macro_rules! impl_delivery_repo {
    ($store:ty, $db:ty, $backend:literal) => {
        fn delivery_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::store::Result<$crate::store::delivery::DeliveryRow> {
            use sqlx::Row;
            Ok($crate::store::delivery::DeliveryRow {
                id: row.try_get(0)?,
                sink: row.try_get(1)?,
                msg_id: row.try_get(2)?,
                event_type: row.try_get(3)?,
                engagement_id: row.try_get(4)?,
                state: row.try_get(5)?,
                attempts: row.try_get(6)?,
                next_attempt_at: row.try_get(7)?,
                created_at: row.try_get(8)?,
                delivered_at: row.try_get(9)?,
                last_status: row.try_get(10)?,
                last_error: row.try_get(11)?,
            })
        }

        /// Condition on `d`: its inserting transaction, and every older one, has ended, so nothing can still appear
        /// in front of it in its key's queue (migration 0006). One writer (SQLite) commits in order.
        fn settled_tx() -> &'static str {
            if $backend == "postgres" {
                " AND d.xid < pg_snapshot_xmin(pg_current_snapshot())"
            } else {
                ""
            }
        }

        /// The leased deliveries `ids` with what their sinks need (message payload or logged event), by id.
        async fn load_delivery_jobs<'e, E: sqlx::Executor<'e, Database = $db>>(
            executor: E,
            ids: &[i64],
        ) -> $crate::store::Result<Vec<$crate::store::delivery::DeliveryJob>> {
            use sqlx::Row;
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "SELECT d.id, d.sink, d.msg_id, d.event_type, d.ordering_key, CAST(d.attempts AS BIGINT), d.created_at,
                    d.caused_at, m.engagement_id, m.payload, e.id, e.source, e.event_ts, e.received_at, e.raw, e.engagement_id
                 FROM deliveries d LEFT JOIN outbound_messages m ON m.msg_id = d.msg_id
                 LEFT JOIN events e ON e.id = d.event_id WHERE d.id IN (",
            );
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(") ORDER BY d.id");
            let rows = qb.build().fetch_all(executor).await?;
            let mut jobs = Vec::with_capacity(rows.len());
            for row in rows {
                let event_id: Option<i64> = row.try_get(10)?;
                let event = match event_id {
                    Some(id) => Some($crate::store::delivery::JobEvent {
                        id,
                        source: row.try_get(11)?,
                        event_ts: row.try_get(12)?,
                        received_at: row.try_get(13)?,
                        raw: row.try_get(14)?,
                    }),
                    None => None,
                };
                let message_engagement: Option<String> = row.try_get(8)?;
                let event_engagement: Option<String> = row.try_get(15)?;
                jobs.push($crate::store::delivery::DeliveryJob {
                    id: row.try_get(0)?,
                    sink: row.try_get(1)?,
                    msg_id: row.try_get(2)?,
                    event_type: row.try_get(3)?,
                    ordering_key: row.try_get(4)?,
                    attempts: row.try_get(5)?,
                    created_at: row.try_get(6)?,
                    caused_at: row.try_get(7)?,
                    engagement_id: message_engagement.or(event_engagement),
                    payload: row.try_get(9)?,
                    event,
                });
            }
            Ok(jobs)
        }

        #[async_trait::async_trait]
        impl $crate::store::delivery::DeliveryRepo for $store {
            async fn set_realtime_routes(&self, routes: &[(String, String)]) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM realtime_routes").execute(&mut *tx).await?;
                if !routes.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO realtime_routes (event_type, sink) ");
                    qb.push_values(routes, |mut b, (t, s)| {
                        b.push_bind(t.as_str()).push_bind(s.as_str());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_deliveries(
                &self,
                sink: &str,
                now: i64,
                lease_until: i64,
                token: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::delivery::DeliveryJob>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE deliveries SET leased_until = ");
                qb.push_bind(lease_until)
                    .push(", lease_token = ")
                    .push_bind(token)
                    .push(" WHERE id IN (SELECT d.id FROM deliveries d WHERE d.sink = ")
                    .push_bind(sink)
                    .push(" AND d.state = 'pending' AND d.next_attempt_at <= ")
                    .push_bind(now)
                    .push(" AND d.leased_until <= ")
                    .push_bind(now)
                    .push(settled_tx())
                    .push(
                        " AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.sink = d.sink AND p.ordering_key = d.ordering_key
                            AND (p.xid, p.id) < (d.xid, d.id) AND p.state <> 'delivered') ORDER BY d.id LIMIT ",
                    )
                    .push_bind(i64::from(limit));
                if $backend == "postgres" {
                    qb.push(" FOR UPDATE SKIP LOCKED");
                }
                qb.push(") RETURNING id");
                let ids: Vec<i64> = qb.build_query_scalar().fetch_all(self.writer()).await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                load_delivery_jobs(self.writer(), &ids).await
            }

            async fn finish_deliveries(
                &self,
                batch: &[$crate::store::delivery::FinishedDelivery],
                now: i64,
                lease_until: i64,
            ) -> $crate::store::Result<$crate::store::delivery::Finished> {
                use sqlx::Row;
                use $crate::store::delivery::DELIVERY_DELIVERED;
                let mut tx = self.writer().begin().await?;
                // New states, a statement per chunk; a delivery whose lease passed to another worker is left alone.
                let mut updated: std::collections::HashSet<i64> = std::collections::HashSet::new();
                for chunk in batch.chunks($crate::store::sql::CHUNK / 8) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "WITH v (vid, vtoken, vstate, vcounts, vnext, vstatus, verror, vdelivered) AS (",
                    );
                    qb.push_values(chunk, |mut b, f| {
                        let done = &f.attempt;
                        b.push_bind(f.id)
                            .push_bind(f.token)
                            .push_bind(done.state)
                            .push_bind(i64::from(done.counts))
                            .push_bind(done.next_attempt_at)
                            .push_bind(done.status.map(i64::from))
                            .push_bind(done.error.as_deref())
                            .push_bind((done.state == DELIVERY_DELIVERED).then_some(done.finished_at));
                    });
                    qb.push(
                        ") UPDATE deliveries SET state = v.vstate, attempts = attempts + v.vcounts,
                            next_attempt_at = v.vnext, leased_until = 0, last_status = v.vstatus,
                            last_error = v.verror, delivered_at = v.vdelivered
                         FROM v WHERE id = v.vid AND lease_token = v.vtoken AND state = 'pending' RETURNING id",
                    );
                    let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                    updated.extend(ids);
                }
                // Every attempt is logged.
                for chunk in batch.chunks($crate::store::sql::CHUNK / 8) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status, response, error) ",
                    );
                    qb.push_values(chunk, |mut b, f| {
                        b.push_bind(f.id)
                            .push_bind(f.attempt.number)
                            .push_bind(f.attempt.started_at)
                            .push_bind(f.attempt.duration_ms)
                            .push_bind(f.attempt.outcome)
                            .push_bind(f.attempt.status.map(i64::from))
                            .push_bind(f.attempt.response.as_str())
                            .push_bind(f.attempt.error.as_deref());
                    });
                    qb.build().execute(&mut *tx).await?;
                }

                // Lanes going on: per (sink, key) asked, the undelivered deliveries of the key, oldest first. The
                // run is the due, unleased ones from the start, all after the one just delivered (anything older
                // still undelivered, a dead letter say, holds the key).
                let follows: Vec<&$crate::store::delivery::FinishedDelivery> = batch
                    .iter()
                    .filter(|f| f.follow > 0 && f.attempt.state == DELIVERY_DELIVERED && updated.contains(&f.id))
                    .collect();
                let mut runs: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
                let mut by_sink: std::collections::BTreeMap<&str, Vec<&$crate::store::delivery::FinishedDelivery>> =
                    std::collections::BTreeMap::new();
                for f in &follows {
                    by_sink.entry(f.sink.as_str()).or_default().push(f);
                }
                for (sink, asks) in by_sink {
                    let limit = asks.iter().map(|f| f.follow).max().unwrap_or(0);
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT ordering_key, id, state, next_attempt_at, leased_until, settled FROM (
                            SELECT d.ordering_key, d.id, d.state, d.next_attempt_at, d.leased_until,
                                   CASE WHEN 1 = 1",
                    );
                    qb.push(settled_tx())
                        .push(
                            " THEN 1 ELSE 0 END AS settled,
                                   ROW_NUMBER() OVER (PARTITION BY d.ordering_key ORDER BY d.xid, d.id) AS n
                            FROM deliveries d WHERE d.sink = ",
                        )
                        .push_bind(sink)
                        .push(" AND d.state <> 'delivered' AND d.ordering_key IN (");
                    let mut list = qb.separated(", ");
                    for f in &asks {
                        list.push_bind(f.ordering_key.as_str());
                    }
                    qb.push(")) u WHERE n <= ")
                        .push_bind(i64::from(limit))
                        .push(" ORDER BY ordering_key, n");
                    let mut undelivered: std::collections::HashMap<String, Vec<(i64, String, i64, i64, i32)>> =
                        std::collections::HashMap::new();
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        undelivered.entry(row.try_get(0)?).or_default().push((
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                            row.try_get(4)?,
                            row.try_get(5)?,
                        ));
                    }
                    for f in asks {
                        // One lane per key: a key asked for twice (which the claim should rule out) goes to the first.
                        let Some(rows) = undelivered.remove(&f.ordering_key) else {
                            continue;
                        };
                        // What is left of the key's queue, in order: the run is its due, unleased, settled start
                        // (whatever comes first otherwise, a dead letter or a retry not yet due, holds the key).
                        let run: Vec<i64> = rows
                            .iter()
                            .take(f.follow as usize)
                            .take_while(|(_, state, due, leased, settled)| {
                                state == $crate::store::delivery::DELIVERY_PENDING && *due <= now && *leased <= now && *settled == 1
                            })
                            .map(|r| r.0)
                            .collect();
                        if !run.is_empty() {
                            runs.insert(f.id, run);
                        }
                    }
                }
                let wanted: Vec<(i64, i64)> = follows
                    .iter()
                    .flat_map(|f| runs.get(&f.id).into_iter().flatten().map(|id| (*id, f.token)))
                    .collect();
                let mut leased: std::collections::HashSet<i64> = std::collections::HashSet::new();
                for chunk in wanted.chunks($crate::store::sql::CHUNK / 2) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("WITH v (vid, vtoken) AS (");
                    qb.push_values(chunk, |mut b, (id, token)| {
                        b.push_bind(*id).push_bind(*token);
                    });
                    qb.push(") UPDATE deliveries SET leased_until = ")
                        .push_bind(lease_until)
                        .push(", lease_token = v.vtoken FROM v WHERE id = v.vid AND state = 'pending' AND leased_until <= ")
                        .push_bind(now)
                        .push(" RETURNING id");
                    let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                    leased.extend(ids);
                }
                // Only an unbroken run may go: a lease lost to a race in the middle gives back the rest.
                let mut give_back: Vec<(i64, i64)> = Vec::new();
                for f in &follows {
                    if let Some(run) = runs.get_mut(&f.id) {
                        let whole = run.iter().take_while(|id| leased.contains(id)).count();
                        give_back.extend(run[whole..].iter().filter(|id| leased.contains(id)).map(|id| (*id, f.token)));
                        run.truncate(whole);
                    }
                }
                for (id, token) in give_back {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE deliveries SET leased_until = 0 WHERE id = ");
                    qb.push_bind(id).push(" AND lease_token = ").push_bind(token);
                    qb.build().execute(&mut *tx).await?;
                }
                let all: Vec<i64> = runs.values().flatten().copied().collect();
                let jobs = if all.is_empty() {
                    Vec::new()
                } else {
                    load_delivery_jobs(&mut *tx, &all).await?
                };
                tx.commit().await?;
                let mut by_id: std::collections::HashMap<i64, $crate::store::delivery::DeliveryJob> =
                    jobs.into_iter().map(|j| (j.id, j)).collect();
                Ok($crate::store::delivery::Finished {
                    updated: batch.iter().filter(|f| updated.contains(&f.id)).count(),
                    next: batch
                        .iter()
                        .map(|f| {
                            runs.get(&f.id)
                                .into_iter()
                                .flatten()
                                .filter_map(|id| by_id.remove(id))
                                .collect()
                        })
                        .collect(),
                })
            }

            async fn release_deliveries(&self, ids: &[i64], token: i64) -> $crate::store::Result<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE deliveries SET leased_until = 0 WHERE state = 'pending' AND lease_token = ",
                );
                qb.push_bind(token).push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                qb.push(")");
                Ok(qb.build().execute(self.writer()).await?.rows_affected())
            }

            async fn leased_delivery(
                &self,
                sink: &str,
                msg_id: &str,
                token: i64,
            ) -> $crate::store::Result<Option<($crate::store::delivery::DeliveryJob, Vec<i64>)>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id FROM deliveries WHERE sink = ");
                qb.push_bind(sink)
                    .push(" AND msg_id = ")
                    .push_bind(msg_id)
                    .push(" AND state = 'pending' AND lease_token = ")
                    .push_bind(token);
                let Some(id): Option<i64> = qb.build_query_scalar().fetch_optional(self.reader()).await? else {
                    return Ok(None);
                };
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT p.id FROM deliveries p JOIN deliveries d ON p.sink = d.sink AND p.ordering_key = d.ordering_key
                     WHERE d.id = ",
                );
                qb.push_bind(id)
                    .push(" AND (p.xid, p.id) < (d.xid, d.id) AND p.state <> 'delivered' ORDER BY p.id");
                let earlier: Vec<i64> = qb.build_query_scalar().fetch_all(self.reader()).await?;
                let mut jobs = load_delivery_jobs(self.reader(), &[id]).await?;
                Ok(jobs.pop().map(|job| (job, earlier)))
            }

            async fn release_delivery_leases(&self) -> $crate::store::Result<u64> {
                let done = sqlx::query("UPDATE deliveries SET leased_until = 0 WHERE state = 'pending' AND leased_until > 0")
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn deliveries(
                &self,
                q: &$crate::store::delivery::DeliveryQuery,
            ) -> $crate::store::Result<Vec<$crate::store::delivery::DeliveryRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM deliveries d WHERE 1 = 1",
                    $crate::store::delivery::DELIVERY_COLUMNS
                ));
                if let Some(sink) = &q.sink {
                    qb.push(" AND d.sink = ").push_bind(sink.clone());
                }
                if let Some(state) = &q.state {
                    qb.push(" AND d.state = ").push_bind(state.clone());
                }
                if let Some(id) = &q.engagement_id {
                    qb.push(" AND d.ordering_key = ").push_bind(id.clone());
                }
                if let Some(t) = &q.event_type {
                    qb.push(" AND d.event_type = ").push_bind(t.clone());
                }
                if let Some(before) = q.before_id {
                    qb.push(" AND d.id < ").push_bind(before);
                }
                qb.push(" ORDER BY d.id DESC LIMIT ").push_bind(i64::from(q.limit));
                let rows = qb.build().fetch_all(self.reader()).await?;
                rows.iter().map(delivery_from_row).collect()
            }

            async fn delivery(&self, id: i64) -> $crate::store::Result<Option<$crate::store::delivery::DeliveryRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM deliveries d WHERE d.id = ",
                    $crate::store::delivery::DELIVERY_COLUMNS
                ));
                qb.push_bind(id);
                let row = qb.build().fetch_optional(self.reader()).await?;
                row.as_ref().map(delivery_from_row).transpose()
            }

            async fn delivery_attempts(&self, id: i64) -> $crate::store::Result<Vec<$crate::store::delivery::AttemptRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT attempt, started_at, duration_ms, outcome, status, response, error FROM delivery_attempts WHERE delivery_id = ",
                );
                qb.push_bind(id).push(" ORDER BY id");
                let rows: Vec<(i64, i64, i64, String, Option<i64>, Option<String>, Option<String>)> =
                    qb.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(attempt, started_at, duration_ms, outcome, status, response, error)| {
                        $crate::store::delivery::AttemptRow { attempt, started_at, duration_ms, outcome, status, response, error }
                    })
                    .collect())
            }

            async fn replay_deliveries(
                &self,
                replay: &$crate::store::delivery::Replay,
                now: i64,
            ) -> $crate::store::Result<u64> {
                use $crate::store::delivery::Replay;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, leased_until = 0, next_attempt_at = ",
                );
                qb.push_bind(now).push(" WHERE ");
                match replay {
                    Replay::One(id) => {
                        qb.push("id = ").push_bind(*id).push(" AND state <> 'pending'");
                    }
                    Replay::Dead { sink } => {
                        qb.push("sink = ").push_bind(sink.clone()).push(" AND state = 'dead'");
                    }
                    Replay::Since { sink, from } => {
                        qb.push("sink = ")
                            .push_bind(sink.clone())
                            .push(" AND created_at >= ")
                            .push_bind(*from)
                            .push(" AND state <> 'pending'");
                    }
                }
                Ok(qb.build().execute(self.writer()).await?.rows_affected())
            }

            async fn delivery_counts(&self) -> $crate::store::Result<Vec<$crate::store::delivery::SinkCounts>> {
                let rows: Vec<(String, i64, i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT sink,
                        CAST(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS BIGINT),
                        CAST(SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END) AS BIGINT),
                        CAST(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS BIGINT),
                        MIN(CASE WHEN state = 'pending' THEN created_at END)
                     FROM deliveries GROUP BY sink ORDER BY sink",
                )
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(sink, pending, delivered, dead, oldest_pending_at)| $crate::store::delivery::SinkCounts {
                        sink,
                        pending,
                        delivered,
                        dead,
                        oldest_pending_at,
                    })
                    .collect())
            }

            async fn disable_sink(&self, sink: &str, reason: &str, now: i64) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO sinks_disabled (sink, disabled_at, reason) ");
                qb.push_values([()], |mut b, _| {
                    b.push_bind(sink).push_bind(now).push_bind(reason);
                });
                qb.push(" ON CONFLICT (sink) DO NOTHING");
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn enable_sink(&self, sink: &str) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM sinks_disabled WHERE sink = ");
                qb.push_bind(sink);
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn disabled_sinks(&self) -> $crate::store::Result<Vec<$crate::store::delivery::DisabledSink>> {
                let rows: Vec<(String, i64, String)> =
                    sqlx::query_as("SELECT sink, disabled_at, reason FROM sinks_disabled ORDER BY sink")
                        .fetch_all(self.writer())
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(sink, disabled_at, reason)| $crate::store::delivery::DisabledSink { sink, disabled_at, reason })
                    .collect())
            }

            async fn claim_watch(
                &self,
                now: i64,
                lease_until: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::delivery::WatchRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE delivery_watch SET leased_until = ");
                qb.push_bind(lease_until)
                    .push(" WHERE engagement_id IN (SELECT engagement_id FROM delivery_watch WHERE due_at <= ")
                    .push_bind(now)
                    .push(" AND leased_until <= ")
                    .push_bind(now)
                    .push(" ORDER BY due_at LIMIT ")
                    .push_bind(i64::from(limit));
                if $backend == "postgres" {
                    qb.push(" FOR UPDATE SKIP LOCKED");
                }
                qb.push(") RETURNING engagement_id, changed_at, caused_at");
                let rows: Vec<(String, i64, i64)> = qb.build_query_as().fetch_all(self.writer()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(engagement_id, changed_at, caused_at)| $crate::store::delivery::WatchRow {
                        engagement_id,
                        changed_at,
                        caused_at,
                    })
                    .collect())
            }

            async fn planned_state(&self, engagement_id: &str) -> $crate::store::Result<Option<$crate::store::delivery::PlannedState>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT completed_at, CAST(revision AS BIGINT), content_hash FROM delivery_state WHERE engagement_id = ",
                );
                qb.push_bind(engagement_id);
                let row: Option<(Option<i64>, i64, Option<String>)> =
                    qb.build_query_as().fetch_optional(self.writer()).await?;
                Ok(row.map(|(completed_at, revision, content_hash)| $crate::store::delivery::PlannedState {
                    completed_at,
                    revision,
                    content_hash,
                }))
            }

            async fn plan_message(
                &self,
                watch: &$crate::store::delivery::WatchRow,
                m: &$crate::store::delivery::PlannedMessage,
            ) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                let messages = std::iter::once((&m.msg_id, &m.event_type, &m.payload, &m.sinks))
                    .chain(m.extra.iter().map(|x| (&x.msg_id, &x.event_type, &x.payload, &x.sinks)));
                for (msg_id, event_type, payload, sinks) in messages {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO outbound_messages (msg_id, event_type, engagement_id, payload, created_at, caused_at) ",
                    );
                    qb.push_values([m], |mut b, m| {
                        b.push_bind(msg_id.as_str())
                            .push_bind(event_type.as_str())
                            .push_bind(m.engagement_id.as_str())
                            .push_bind(payload.as_str())
                            .push_bind(m.created_at)
                            .push_bind(m.caused_at);
                    });
                    qb.push(" ON CONFLICT (msg_id) DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                    if !sinks.is_empty() {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, next_attempt_at, created_at, caused_at) ",
                        );
                        qb.push_values(sinks, |mut b, sink| {
                            b.push_bind(sink.as_str())
                                .push_bind(msg_id.as_str())
                                .push_bind(event_type.as_str())
                                .push_bind(m.engagement_id.as_str())
                                .push_bind(0i64)
                                .push_bind(m.created_at)
                                .push_bind(m.caused_at);
                        });
                        qb.push(" ON CONFLICT (sink, msg_id) DO NOTHING");
                        qb.build().execute(&mut *tx).await?;
                    }
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO delivery_state (engagement_id, completed_at, revision, content_hash) ",
                );
                qb.push_values([m], |mut b, m| {
                    b.push_bind(m.engagement_id.as_str())
                        .push_bind(m.state.completed_at)
                        .push_bind(m.state.revision)
                        .push_bind(m.state.content_hash.as_deref());
                });
                qb.push(
                    " ON CONFLICT (engagement_id) DO UPDATE SET completed_at = excluded.completed_at,
                      revision = excluded.revision, content_hash = excluded.content_hash",
                );
                qb.build().execute(&mut *tx).await?;
                settle_watch_in(&mut *tx, watch, None).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn settle_watch(
                &self,
                watch: &$crate::store::delivery::WatchRow,
                due_at: Option<i64>,
            ) -> $crate::store::Result<()> {
                let mut conn = self.writer().acquire().await?;
                settle_watch_in(&mut *conn, watch, due_at).await
            }

            async fn touch_watch(&self, engagement_ids: &[String], now: i64) -> $crate::store::Result<()> {
                let Some(due) = self.signals.watch_due(now) else {
                    return Ok(());
                };
                if engagement_ids.is_empty() {
                    return Ok(());
                }
                let mut conn = self.writer().acquire().await?;
                let result: $crate::store::Result<()> =
                    $crate::store::delivery::touch_watch_sql!($db, conn, engagement_ids, now, due);
                result?;
                self.signals.watch_touched();
                Ok(())
            }
        }

        /// Forgets a watched engagement (`due_at` None) or looks again later, unless it changed since it was
        /// claimed (then it is simply released for the next look).
        async fn settle_watch_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            watch: &$crate::store::delivery::WatchRow,
            due_at: Option<i64>,
        ) -> $crate::store::Result<()> {
            let mut qb = match due_at {
                None => sqlx::QueryBuilder::<$db>::new("DELETE FROM delivery_watch"),
                Some(due) => {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE delivery_watch SET leased_until = 0, due_at = ");
                    qb.push_bind(due);
                    qb
                }
            };
            qb.push(" WHERE engagement_id = ")
                .push_bind(watch.engagement_id.as_str())
                .push(" AND changed_at = ")
                .push_bind(watch.changed_at);
            qb.build().execute(&mut *conn).await?;
            let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE delivery_watch SET leased_until = 0 WHERE engagement_id = ");
            qb.push_bind(watch.engagement_id.as_str());
            qb.build().execute(&mut *conn).await?;
            Ok(())
        }
    };
}
pub(crate) use impl_delivery_repo;
