//! Agent activity and the live stream's view of the log (see the `0007_activity` migration). `ActivityRepo` is a
//! supertrait of `Store`, implemented for both backends by `impl_activity_repo!`.

use async_trait::async_trait;
use serde::Serialize;

use super::Result;
use crate::core::activity::{Activity, ActivityKind, AgentIdent, LoggedActivity};

/// A row of `agents`: who an event named, and their latest status by event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub agent_key: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub sub_status: Option<String>,
    pub status_ts: i64,
    /// Zoom's ids of `status` and `sub_status`, when the event that set them carried ids.
    pub status_id: Option<String>,
    pub sub_status_id: Option<String>,
    pub last_event_ts: i64,
    /// The latest login (true) or logout (false) and its time; 0 when neither was seen.
    pub session_open: bool,
    pub session_ts: i64,
}

impl AgentRow {
    /// Logged in by the newest of the session register (login, logout) and the status register (a status
    /// other than Offline means a session, even when its login event never came).
    pub fn logged_in(&self) -> bool {
        if self.session_ts > self.status_ts || (self.status.is_none() && self.session_ts > 0) {
            self.session_open
        } else {
            self.status.as_deref().is_some_and(|s| s != "Offline")
        }
    }

    pub fn ident(&self) -> AgentIdent {
        AgentIdent {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

/// A position in the live stream: the inserting transaction (Postgres; 0 on SQLite) and the event id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamPosition {
    pub xid: i64,
    pub id: i64,
}

impl StreamPosition {
    /// `<id>` on SQLite, `<xid>-<id>` on Postgres: what clients send back as `Last-Event-ID`.
    pub fn encode(self) -> String {
        if self.xid == 0 {
            self.id.to_string()
        } else {
            format!("{}-{}", self.xid, self.id)
        }
    }

    pub fn decode(value: &str) -> Option<Self> {
        let value = value.trim();
        let (xid, id) = match value.split_once('-') {
            Some((xid, id)) => (xid.parse().ok()?, id.parse().ok()?),
            None => (0, value.parse().ok()?),
        };
        (xid >= 0 && id >= 0).then_some(Self { xid, id })
    }
}

/// A logged event as the live stream reads it.
#[derive(Debug, Clone)]
pub struct StreamRow {
    pub position: StreamPosition,
    pub source: String,
    pub event_type: String,
    pub event_ts: Option<i64>,
    pub received_at: i64,
    pub raw: Vec<u8>,
}

/// What the projector writes for one event.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub event_id: i64,
    pub activity: Activity,
}

#[async_trait]
pub trait ActivityRepo: Send + Sync {
    /// Forgets all recorded activity and agents (`rebuild` records them again from the log).
    async fn clear_activity(&self) -> Result<()>;
    /// Everyone events named.
    async fn agent_rows(&self) -> Result<Vec<AgentRow>>;
    /// Activity of agents filed under `keys` with `from <= event_ts < to`.
    async fn agent_activity(
        &self,
        keys: &[String],
        from: i64,
        to: i64,
    ) -> Result<Vec<LoggedActivity>>;
    /// The last events before `before` that may set the status of agents filed under `keys` (newest first).
    async fn status_events_before(
        &self,
        keys: &[String],
        before: i64,
        limit: u32,
    ) -> Result<Vec<LoggedActivity>>;
    /// Every activity event of these engagements.
    async fn engagement_activity(&self, engagement_ids: &[String]) -> Result<Vec<LoggedActivity>>;
    /// Activity events with `from <= event_ts < to`, of these kinds only if given.
    async fn activity_between(
        &self,
        from: i64,
        to: i64,
        kinds: Option<&[ActivityKind]>,
    ) -> Result<Vec<LoggedActivity>>;
    /// The newest position every reader can see for good (nothing can appear before it any more).
    async fn stream_head(&self) -> Result<StreamPosition>;
    /// Logged events after `after`, in stream order, up to the settled horizon.
    async fn stream_after(&self, after: StreamPosition, limit: u32) -> Result<Vec<StreamRow>>;
}

pub(crate) fn decode_activity(event_id: i64, detail: &str) -> Result<LoggedActivity> {
    let activity: Activity = serde_json::from_str(detail).map_err(|e| {
        super::StoreError::Invalid(format!("activity of event {event_id} is unreadable: {e}"))
    })?;
    Ok(LoggedActivity { event_id, activity })
}

/// `INSERT INTO activity ... ON CONFLICT DO NOTHING RETURNING event_id` and the `agents` upsert (the projector's
/// transaction). Returns the event ids newly recorded and the status spans that the new events closed (status
/// label, ms; for the status-duration metric: a change that arrives late closes nothing).
macro_rules! record_activity_sql {
    ($db:ty, $conn:expr, $rows:expr) => {{
        let rows: &[$crate::store::activity::ActivityRow] = $rows;
        let mut inserted: Vec<i64> = Vec::new();
        let mut prepared = Vec::with_capacity(rows.len());
        for r in rows {
            let detail = serde_json::to_string(&r.activity)
                .map_err(|e| $crate::store::StoreError::Invalid(e.to_string()))?;
            prepared.push((r, detail));
        }
        for chunk in prepared.chunks($crate::store::sql::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO activity (event_id, agent_key, engagement_id, event_ts, kind, detail) ",
            );
            qb.push_values(chunk, |mut b, (r, detail)| {
                b.push_bind(r.event_id)
                    .push_bind(r.activity.agent_key())
                    .push_bind(r.activity.engagement_id.clone())
                    .push_bind(r.activity.event_ts)
                    .push_bind(r.activity.kind.as_str())
                    .push_bind(detail.as_str());
            });
            qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
            let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *$conn).await?;
            inserted.extend(ids);
        }
        // One row per agent (a statement may not update a row twice), in key order (no deadlocks between
        // replicas): what the events said about them and their latest status.
        let mut agents: std::collections::BTreeMap<String, $crate::store::activity::AgentRow> =
            std::collections::BTreeMap::new();
        for r in rows {
            let Some(key) = r.activity.agent_key() else { continue };
            let ident = r.activity.agent.clone().unwrap_or_default();
            let row = agents.entry(key.clone()).or_insert_with(|| $crate::store::activity::AgentRow {
                agent_key: key,
                user_id: None,
                email: None,
                display_name: None,
                status: None,
                sub_status: None,
                status_ts: 0,
                status_id: None,
                sub_status_id: None,
                last_event_ts: 0,
                session_open: false,
                session_ts: 0,
            });
            row.user_id = row.user_id.take().or(ident.user_id);
            row.email = row.email.take().or(ident.email);
            row.display_name = row.display_name.take().or(ident.display_name);
            row.last_event_ts = row.last_event_ts.max(r.activity.event_ts);
            let session = match r.activity.kind {
                $crate::core::activity::ActivityKind::AgentLogin => Some(true),
                $crate::core::activity::ActivityKind::AgentLogout => Some(false),
                _ => None,
            };
            if let Some(open) = session {
                // At the same time a logout wins (as the upsert below decides).
                if (r.activity.event_ts, !open) > (row.session_ts, !row.session_open) {
                    row.session_ts = r.activity.event_ts;
                    row.session_open = open;
                }
            }
            if let Some((status, sub)) = r.activity.resulting_status() {
                let newer = (r.activity.event_ts, Some(status.as_str()))
                    > (row.status_ts, row.status.as_deref());
                if newer {
                    row.status = Some(status);
                    row.sub_status = sub;
                    row.status_ts = r.activity.event_ts;
                    row.status_id.clone_from(&r.activity.status_id);
                    row.sub_status_id.clone_from(&r.activity.sub_status_id);
                }
            }
        }
        // Spans closed: per agent, the stored latest status, then the batch's newer status events in time order.
        let mut closed: Vec<(String, i64)> = Vec::new();
        let with_status: Vec<&str> = agents
            .values()
            .filter(|a| a.status.is_some())
            .map(|a| a.agent_key.as_str())
            .collect();
        let mut stored: std::collections::HashMap<String, (Option<String>, Option<String>, i64)> =
            std::collections::HashMap::new();
        for chunk in with_status.chunks($crate::store::sql::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "SELECT agent_key, status, sub_status, status_ts FROM agents WHERE agent_key IN (",
            );
            let mut list = qb.separated(", ");
            for k in chunk {
                list.push_bind(*k);
            }
            qb.push(")");
            let found: Vec<(String, Option<String>, Option<String>, i64)> =
                qb.build_query_as().fetch_all(&mut *$conn).await?;
            stored.extend(found.into_iter().map(|(k, s, sub, ts)| (k, (s, sub, ts))));
        }
        let mut changes: Vec<(String, i64, String, Option<String>)> = rows
            .iter()
            .filter(|r| inserted.contains(&r.event_id))
            .filter_map(|r| {
                let (status, sub) = r.activity.resulting_status()?;
                Some((r.activity.agent_key()?, r.activity.event_ts, status, sub))
            })
            .collect();
        changes.sort();
        for (key, ts, status, sub) in changes {
            let previous = stored.entry(key).or_insert((None, None, 0));
            if ts <= previous.2 {
                continue;
            }
            if let Some(prev_status) = &previous.0 {
                if (prev_status, &previous.1) != (&status, &sub) {
                    let label = match &previous.1 {
                        Some(sub) => format!("{prev_status}: {sub}"),
                        None => prev_status.clone(),
                    };
                    closed.push((label, ts - previous.2));
                } else {
                    continue;
                }
            }
            *previous = (Some(status), sub, ts);
        }
        let agents: Vec<$crate::store::activity::AgentRow> = agents.into_values().collect();
        for chunk in agents.chunks($crate::store::sql::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO agents (agent_key, user_id, email, display_name, status, sub_status, status_ts, last_event_ts, session_ts, session_open, status_id, sub_status_id) ",
            );
            qb.push_values(chunk, |mut b, a| {
                b.push_bind(a.agent_key.as_str())
                    .push_bind(a.user_id.as_deref())
                    .push_bind(a.email.as_deref())
                    .push_bind(a.display_name.as_deref())
                    .push_bind(a.status.as_deref())
                    .push_bind(a.sub_status.as_deref())
                    .push_bind(a.status_ts)
                    .push_bind(a.last_event_ts)
                    .push_bind(a.session_ts)
                    .push_bind(i64::from(a.session_open))
                    .push_bind(a.status_id.as_deref())
                    .push_bind(a.sub_status_id.as_deref());
            });
            qb.push(
                " ON CONFLICT (agent_key) DO UPDATE SET
                  user_id = COALESCE(agents.user_id, excluded.user_id),
                  email = COALESCE(agents.email, excluded.email),
                  display_name = COALESCE(agents.display_name, excluded.display_name),
                  status = CASE WHEN excluded.status_ts > agents.status_ts
                      OR (excluded.status_ts = agents.status_ts AND COALESCE(excluded.status, '') > COALESCE(agents.status, ''))
                      THEN excluded.status ELSE agents.status END,
                  sub_status = CASE WHEN excluded.status_ts > agents.status_ts
                      OR (excluded.status_ts = agents.status_ts AND COALESCE(excluded.status, '') > COALESCE(agents.status, ''))
                      THEN excluded.sub_status ELSE agents.sub_status END,
                  status_id = CASE WHEN excluded.status_ts > agents.status_ts
                      OR (excluded.status_ts = agents.status_ts AND COALESCE(excluded.status, '') > COALESCE(agents.status, ''))
                      THEN excluded.status_id ELSE agents.status_id END,
                  sub_status_id = CASE WHEN excluded.status_ts > agents.status_ts
                      OR (excluded.status_ts = agents.status_ts AND COALESCE(excluded.status, '') > COALESCE(agents.status, ''))
                      THEN excluded.sub_status_id ELSE agents.sub_status_id END,
                  status_ts = CASE WHEN excluded.status_ts > agents.status_ts THEN excluded.status_ts ELSE agents.status_ts END,
                  last_event_ts = CASE WHEN excluded.last_event_ts > agents.last_event_ts
                      THEN excluded.last_event_ts ELSE agents.last_event_ts END,
                  session_open = CASE WHEN excluded.session_ts > agents.session_ts
                      OR (excluded.session_ts = agents.session_ts AND excluded.session_open < agents.session_open)
                      THEN excluded.session_open ELSE agents.session_open END,
                  session_ts = CASE WHEN excluded.session_ts > agents.session_ts
                      THEN excluded.session_ts ELSE agents.session_ts END",
            );
            qb.build().execute(&mut *$conn).await?;
        }
        Ok((inserted, closed))
    }};
}
pub(crate) use record_activity_sql;

macro_rules! impl_activity_repo {
    ($store:ty, $db:ty, $backend:literal) => {
        fn activity_rows(
            rows: Vec<(i64, String)>,
        ) -> $crate::store::Result<Vec<$crate::core::activity::LoggedActivity>> {
            rows.iter()
                .map(|(id, detail)| $crate::store::activity::decode_activity(*id, detail))
                .collect()
        }

        /// `SELECT event_id, detail FROM activity WHERE agent_key IN (keys)`; the caller adds the rest.
        fn of_agents(keys: &[String]) -> sqlx::QueryBuilder<'_, $db> {
            let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT event_id, detail FROM activity WHERE agent_key IN (");
            let mut list = qb.separated(", ");
            for k in keys {
                list.push_bind(k.as_str());
            }
            qb.push(")");
            qb
        }

        #[async_trait::async_trait]
        impl $crate::store::activity::ActivityRepo for $store {
            async fn clear_activity(&self) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM activity").execute(&mut *tx).await?;
                sqlx::query("DELETE FROM agents").execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn agent_rows(&self) -> $crate::store::Result<Vec<$crate::store::activity::AgentRow>> {
                #[allow(clippy::type_complexity)]
                let rows: Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, i64, i64, i64, i64, Option<String>, Option<String>)> =
                    sqlx::query_as(
                        "SELECT agent_key, user_id, email, display_name, status, sub_status, status_ts, last_event_ts,
                                session_ts, session_open, status_id, sub_status_id
                         FROM agents ORDER BY agent_key",
                    )
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::store::activity::AgentRow {
                        agent_key: r.0,
                        user_id: r.1,
                        email: r.2,
                        display_name: r.3,
                        status: r.4,
                        sub_status: r.5,
                        status_ts: r.6,
                        last_event_ts: r.7,
                        session_ts: r.8,
                        session_open: r.9 != 0,
                        status_id: r.10,
                        sub_status_id: r.11,
                    })
                    .collect())
            }

            async fn agent_activity(
                &self,
                keys: &[String],
                from: i64,
                to: i64,
            ) -> $crate::store::Result<Vec<$crate::core::activity::LoggedActivity>> {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = of_agents(keys);
                qb.push(" AND event_ts >= ").push_bind(from).push(" AND event_ts < ").push_bind(to);
                activity_rows(qb.build_query_as().fetch_all(self.reader()).await?)
            }

            async fn status_events_before(
                &self,
                keys: &[String],
                before: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::core::activity::LoggedActivity>> {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = of_agents(keys);
                qb.push(" AND event_ts < ")
                    .push_bind(before)
                    .push(" AND kind IN ('agent_status_changed', 'agent_logout', 'agent_login') ORDER BY event_ts DESC, event_id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                activity_rows(qb.build_query_as().fetch_all(self.reader()).await?)
            }

            async fn engagement_activity(
                &self,
                engagement_ids: &[String],
            ) -> $crate::store::Result<Vec<$crate::core::activity::LoggedActivity>> {
                let mut out = Vec::new();
                for chunk in engagement_ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT event_id, detail FROM activity WHERE engagement_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    qb.push(")");
                    out.extend(activity_rows(qb.build_query_as().fetch_all(self.reader()).await?)?);
                }
                Ok(out)
            }

            async fn activity_between(
                &self,
                from: i64,
                to: i64,
                kinds: Option<&[$crate::core::activity::ActivityKind]>,
            ) -> $crate::store::Result<Vec<$crate::core::activity::LoggedActivity>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT event_id, detail FROM activity WHERE event_ts >= ");
                qb.push_bind(from).push(" AND event_ts < ").push_bind(to);
                if let Some(kinds) = kinds {
                    if kinds.is_empty() {
                        return Ok(Vec::new());
                    }
                    qb.push(" AND kind IN (");
                    let mut list = qb.separated(", ");
                    for k in kinds {
                        list.push_bind(k.as_str());
                    }
                    qb.push(")");
                }
                activity_rows(qb.build_query_as().fetch_all(self.reader()).await?)
            }

            async fn stream_head(&self) -> $crate::store::Result<$crate::store::activity::StreamPosition> {
                let sql = if $backend == "postgres" {
                    "SELECT (xid::text)::bigint, id FROM events WHERE xid IS NOT NULL
                       AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid DESC, id DESC LIMIT 1"
                } else {
                    "SELECT 0, id FROM events ORDER BY id DESC LIMIT 1"
                };
                let row: Option<(i64, i64)> = sqlx::query_as(sql).fetch_optional(self.reader()).await?;
                Ok(row
                    .map(|(xid, id)| $crate::store::activity::StreamPosition { xid, id })
                    .unwrap_or_default())
            }

            async fn stream_after(
                &self,
                after: $crate::store::activity::StreamPosition,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::activity::StreamRow>> {
                let mut qb = if $backend == "postgres" {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT (xid::text)::bigint, id, source, event_type, event_ts, received_at, raw FROM events
                         WHERE xid IS NOT NULL AND xid < pg_snapshot_xmin(pg_current_snapshot()) AND (xid, id) > ((CAST(",
                    );
                    qb.push_bind(after.xid).push(" AS bigint)::text)::xid8, ").push_bind(after.id).push(") ORDER BY xid, id");
                    qb
                } else {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT 0, id, source, event_type, event_ts, received_at, raw FROM events WHERE id > ",
                    );
                    qb.push_bind(after.id).push(" ORDER BY id");
                    qb
                };
                qb.push(" LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<(i64, i64, String, String, Option<i64>, i64, Vec<u8>)> =
                    qb.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::store::activity::StreamRow {
                        position: $crate::store::activity::StreamPosition { xid: r.0, id: r.1 },
                        source: r.2,
                        event_type: r.3,
                        event_ts: r.4,
                        received_at: r.5,
                        raw: r.6,
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use impl_activity_repo;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        for p in [
            StreamPosition { xid: 0, id: 42 },
            StreamPosition { xid: 981, id: 7 },
        ] {
            assert_eq!(StreamPosition::decode(&p.encode()), Some(p));
        }
        assert_eq!(StreamPosition::decode("x"), None);
        assert_eq!(StreamPosition::decode("1-"), None);
    }
}
