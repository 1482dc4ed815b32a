//! Presence sync's tables (see the `0008_presence` migration). `PresenceRepo` is a supertrait of `Store`,
//! implemented for both backends by `impl_presence_repo!`.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;

use super::Result;
use crate::core::presence::{InteractionEvent, UserPresence};

/// When the worker should act for a state (it may also update the state, e.g. clear a failure).
pub type DueFn = dyn Fn(&mut UserPresence, i64) -> i64 + Sync;

/// `due_at` of a user with nothing to do.
pub const NEVER: i64 = i64::MAX / 2;

/// A line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub at: i64,
    /// `event`, `read`, `write`, `failed`, `released`, `left_alone`, ...
    pub kind: String,
    pub detail: String,
}

/// Which users [`PresenceRepo::apply_presence`] may lease for the caller.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub lease_until: i64,
    pub limit: usize,
}

/// What [`PresenceRepo::apply_presence`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Users leased for the caller, due now.
    pub claimed: Vec<UserPresence>,
    /// Changed users due now that were not leased because `claim.limit` was reached.
    pub left_due: usize,
}

/// A stored user state with when the worker should act.
#[derive(Debug, Clone)]
pub struct PresenceRow {
    pub state: UserPresence,
    pub due_at: i64,
}

#[async_trait]
pub trait PresenceRepo: Send + Sync {
    /// Engagements marked by the projector: (engagement id, mark).
    async fn presence_watch(&self, limit: u32) -> Result<Vec<(String, i64)>>;
    /// Applies session changes to users (creating them as needed) and clears the marks that have not changed
    /// since `marks` were read, in one transaction. `due`: when the worker should act for a changed state.
    /// In the same transaction, up to `claim.limit` changed users whose action is due now and whom no one holds
    /// are leased until `claim.lease_until` and returned, for the caller to act on (a claim without a commit of
    /// its own); the others are left for [`claim_presence`](Self::claim_presence).
    async fn apply_presence(
        &self,
        changes: &[(String, Vec<InteractionEvent>)],
        marks: &[(String, i64)],
        now: i64,
        claim: Claim,
        due: &DueFn,
    ) -> Result<Applied>;
    /// Leases up to `limit` users whose action is due.
    async fn claim_presence(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<UserPresence>>;
    /// Stores the worker's result for a user: what it learnt from and did at Zoom (`outcome`), merged into the
    /// current state (events may have changed the sessions meanwhile), then releases the lease.
    async fn finish_presence(
        &self,
        outcome: &UserPresence,
        audit: &[AuditEntry],
        now: i64,
        due: &DueFn,
    ) -> Result<()>;
    async fn presence_rows(&self) -> Result<Vec<PresenceRow>>;
    /// The newest `per_user` audit lines of every user, newest first, in one query.
    async fn presence_audit(&self, per_user: u32) -> Result<HashMap<String, Vec<AuditEntry>>>;
    /// Deletes audit lines older than `before`.
    async fn prune_presence_audit(&self, before: i64) -> Result<u64>;
}

macro_rules! impl_presence_repo {
    ($store:ty, $db:ty, $backend:literal) => {
        /// `FOR UPDATE` on Postgres (rows are read-modify-written; replicas serialise on them).
        fn lock_suffix() -> &'static str {
            if $backend == "postgres" {
                " FOR UPDATE"
            } else {
                ""
            }
        }

        fn decode_presence(user: &str, json: &str) -> $crate::store::Result<$crate::core::presence::UserPresence> {
            serde_json::from_str(json).map_err(|e| {
                $crate::store::StoreError::Invalid(format!("presence state of {user} is unreadable: {e}"))
            })
        }

        fn encode_presence(state: &$crate::core::presence::UserPresence) -> $crate::store::Result<String> {
            serde_json::to_string(state).map_err(|e| $crate::store::StoreError::Invalid(e.to_string()))
        }

        /// A user's state and until when it is leased (0: not leased).
        async fn load_presence(
            conn: &mut <$db as sqlx::Database>::Connection,
            user: &str,
        ) -> $crate::store::Result<Option<($crate::core::presence::UserPresence, i64)>> {
            let mut qb =
                sqlx::QueryBuilder::<$db>::new("SELECT state, leased_until FROM presence_users WHERE user_key = ");
            qb.push_bind(user).push(lock_suffix());
            let row: Option<(String, i64)> = qb.build_query_as().fetch_optional(&mut *conn).await?;
            row.map(|(json, leased_until)| Ok((decode_presence(user, &json)?, leased_until)))
                .transpose()
        }

        /// Upserts a state. `lease`: `None` keeps the lease as it is; `Some(t)` sets it to `t` (0 releases it).
        async fn store_presence(
            conn: &mut <$db as sqlx::Database>::Connection,
            state: &$crate::core::presence::UserPresence,
            due_at: i64,
            now: i64,
            lease: Option<i64>,
        ) -> $crate::store::Result<()> {
            let json = encode_presence(state)?;
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO presence_users (user_key, state, due_at, leased_until, updated_at) ",
            );
            qb.push_values([()], |mut b, _| {
                b.push_bind(state.user.as_str())
                    .push_bind(json.as_str())
                    .push_bind(due_at)
                    .push_bind(lease.unwrap_or(0))
                    .push_bind(now);
            });
            qb.push(" ON CONFLICT (user_key) DO UPDATE SET state = excluded.state, due_at = excluded.due_at, updated_at = excluded.updated_at");
            if lease.is_some() {
                qb.push(", leased_until = excluded.leased_until");
            }
            qb.build().execute(&mut *conn).await?;
            Ok(())
        }

        async fn insert_audit(
            conn: &mut <$db as sqlx::Database>::Connection,
            user: &str,
            entries: &[$crate::store::presence::AuditEntry],
        ) -> $crate::store::Result<()> {
            for chunk in entries.chunks($crate::store::sql::CHUNK) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO presence_audit (user_key, at, kind, detail) ");
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(user)
                        .push_bind(e.at)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.detail.as_str());
                });
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::presence::PresenceRepo for $store {
            async fn presence_watch(&self, limit: u32) -> $crate::store::Result<Vec<(String, i64)>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT engagement_id, changed_at FROM presence_watch ORDER BY changed_at LIMIT ",
                );
                qb.push_bind(i64::from(limit));
                Ok(qb.build_query_as().fetch_all(self.reader()).await?)
            }

            async fn apply_presence(
                &self,
                changes: &[(String, Vec<$crate::core::presence::InteractionEvent>)],
                marks: &[(String, i64)],
                now: i64,
                claim: $crate::store::presence::Claim,
                due: &$crate::store::presence::DueFn,
            ) -> $crate::store::Result<$crate::store::presence::Applied> {
                let mut applied = $crate::store::presence::Applied::default();
                // Derived state that clears its own marks: its commit need not wait for the disk (see `relaxed`).
                // A lease lost with it only means the user is claimed again.
                let mut writer = $crate::store::relaxed::Relaxed::<$db>::acquire(self.writer()).await?;
                let mut tx = writer.begin().await?;
                // Users in key order: replicas lock rows in the same order.
                let mut changes: Vec<&(String, Vec<$crate::core::presence::InteractionEvent>)> = changes.iter().collect();
                changes.sort_by(|a, b| a.0.cmp(&b.0));
                for (user, events) in changes {
                    let (mut state, leased_until) = load_presence(&mut *tx, user)
                        .await?
                        .unwrap_or_else(|| ($crate::core::presence::UserPresence::new(user.clone()), 0));
                    let mut audit = Vec::new();
                    for e in events {
                        if state.apply(e) {
                            audit.push($crate::store::presence::AuditEntry {
                                at: now,
                                kind: "event".into(),
                                detail: format!(
                                    "{} {} {:?} at {}",
                                    e.source, e.interaction_id, e.phase, e.event_ts
                                ),
                            });
                        }
                    }
                    if audit.is_empty() {
                        continue;
                    }
                    let due_at = due(&mut state, now);
                    let take = due_at <= now && leased_until < now;
                    let lease = if take && applied.claimed.len() < claim.limit {
                        Some(claim.lease_until)
                    } else {
                        applied.left_due += usize::from(take);
                        None
                    };
                    store_presence(&mut *tx, &state, due_at, now, lease).await?;
                    insert_audit(&mut *tx, user, &audit).await?;
                    if lease.is_some() {
                        applied.claimed.push(state);
                    }
                }
                for (id, mark) in marks {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM presence_watch WHERE engagement_id = ");
                    qb.push_bind(id.as_str()).push(" AND changed_at = ").push_bind(*mark);
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                writer.release().await;
                Ok(applied)
            }

            async fn claim_presence(
                &self,
                now: i64,
                lease_until: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::core::presence::UserPresence>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE presence_users SET leased_until = ");
                qb.push_bind(lease_until)
                    .push(" WHERE user_key IN (SELECT user_key FROM presence_users WHERE due_at <= ")
                    .push_bind(now)
                    .push(" AND leased_until < ")
                    .push_bind(now)
                    .push(" ORDER BY due_at LIMIT ")
                    .push_bind(i64::from(limit));
                if $backend == "postgres" {
                    qb.push(" FOR UPDATE SKIP LOCKED");
                }
                qb.push(") RETURNING user_key, state");
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(self.writer()).await?;
                rows.iter().map(|(user, json)| decode_presence(user, json)).collect()
            }

            async fn finish_presence(
                &self,
                outcome: &$crate::core::presence::UserPresence,
                audit: &[$crate::store::presence::AuditEntry],
                now: i64,
                due: &$crate::store::presence::DueFn,
            ) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                let mut state = load_presence(&mut *tx, &outcome.user)
                    .await?
                    .map_or_else(|| outcome.clone(), |(state, _)| state);
                state.take_zoom_side(outcome);
                let due_at = due(&mut state, now);
                store_presence(&mut *tx, &state, due_at, now, Some(0)).await?;
                insert_audit(&mut *tx, &outcome.user, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn presence_rows(&self) -> $crate::store::Result<Vec<$crate::store::presence::PresenceRow>> {
                let rows: Vec<(String, String, i64)> = sqlx::QueryBuilder::<$db>::new(
                    "SELECT user_key, state, due_at FROM presence_users ORDER BY user_key",
                )
                .build_query_as()
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|(user, json, due_at)| {
                        Ok($crate::store::presence::PresenceRow {
                            state: decode_presence(user, json)?,
                            due_at: *due_at,
                        })
                    })
                    .collect()
            }

            async fn presence_audit(
                &self,
                per_user: u32,
            ) -> $crate::store::Result<std::collections::HashMap<String, Vec<$crate::store::presence::AuditEntry>>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT user_key, at, kind, detail FROM (SELECT user_key, at, kind, detail, id,
                       ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY id DESC) AS n FROM presence_audit) a
                     WHERE n <= ",
                );
                qb.push_bind(i64::from(per_user)).push(" ORDER BY user_key, id DESC");
                let rows: Vec<(String, i64, String, String)> = qb.build_query_as().fetch_all(self.reader()).await?;
                let mut out: std::collections::HashMap<String, Vec<$crate::store::presence::AuditEntry>> =
                    std::collections::HashMap::new();
                for (user, at, kind, detail) in rows {
                    out.entry(user)
                        .or_default()
                        .push($crate::store::presence::AuditEntry { at, kind, detail });
                }
                Ok(out)
            }

            async fn prune_presence_audit(&self, before: i64) -> $crate::store::Result<u64> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM presence_audit WHERE at < ");
                qb.push_bind(before);
                Ok(qb.build().execute(self.writer()).await?.rows_affected())
            }
        }
    };
}
pub(crate) use impl_presence_repo;
