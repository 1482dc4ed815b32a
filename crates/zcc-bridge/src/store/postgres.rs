//! Postgres: the scale-out store. Several stateless replicas share one database; records are read-modified-
//! written under `SELECT ... FOR UPDATE`, taken in a fixed order by `commit_batch`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder, Row, Transaction};

use super::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "event log and engagements",
    include_str!("../../migrations/postgres/0001_event_log_and_engagements.sql"),
)];

pub struct PgStore {
    pool: PgPool,
    migrator: Migrator,
    committers: usize,
}

impl PgStore {
    pub async fn open(url: &str, max_connections: u32, committers: usize) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let migrator = migrator(MIGRATIONS);
        // sqlx takes an advisory lock while migrating, so replicas starting together are safe.
        migrator.run(&pool).await?;
        Ok(Self {
            pool,
            migrator,
            committers: committers.clamp(1, max_connections.saturating_sub(1).max(1) as usize),
        })
    }
}

struct PgTx<'a>(Transaction<'a, Postgres>);

impl_batch_tx!(PgTx, Postgres, " FOR UPDATE");

fn event_from_row(row: &sqlx::postgres::PgRow, with_raw: bool) -> Result<LoggedEvent> {
    Ok(LoggedEvent {
        id: row.try_get("id")?,
        dedup_key: row.try_get("dedup_key")?,
        source: row.try_get("source")?,
        event_type: row.try_get("event_type")?,
        engagement_id: row.try_get("engagement_id")?,
        event_ts: row.try_get("event_ts")?,
        received_at: row.try_get("received_at")?,
        request_id: row.try_get("request_id")?,
        duplicate_count: row.try_get("duplicate_count")?,
        raw: if with_raw {
            row.try_get("raw")?
        } else {
            Vec::new()
        },
    })
}

fn quarantine_from_row(row: &sqlx::postgres::PgRow) -> Result<QuarantineItem> {
    Ok(QuarantineItem {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        received_at: row.try_get("received_at")?,
        request_id: row.try_get("request_id")?,
        reason: row.try_get("reason")?,
        resolved_event_id: row.try_get("resolved_event_id")?,
        resolved_at: row.try_get("resolved_at")?,
        raw: row.try_get("raw")?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn committers(&self) -> usize {
        self.committers
    }

    async fn commit(&self, batch: &[Inbound]) -> Result<Vec<Outcome>> {
        let mut tx = PgTx(self.pool.begin().await?);
        let outcomes = commit_batch(&mut tx, batch).await?;
        tx.0.commit().await?;
        Ok(outcomes)
    }

    async fn engagement(&self, engagement_id: &str) -> Result<Option<EngagementState>> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT state FROM engagements WHERE engagement_id = $1")
                .bind(engagement_id)
                .fetch_optional(&self.pool)
                .await?;
        json.map(|j| decode_state(engagement_id, &j)).transpose()
    }

    async fn engagements(&self, query: &EngagementQuery) -> Result<Vec<EngagementState>> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT e.engagement_id, e.state FROM engagements e WHERE 1 = 1",
        );
        push_engagement_filters(&mut qb, query);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let json: String = row.try_get(1)?;
                decode_state(&id, &json)
            })
            .collect()
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<LoggedEvent>> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM events WHERE 1 = 1");
        push_event_filters(&mut qb, query);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| event_from_row(r, query.with_raw))
            .collect()
    }

    async fn quarantined(&self, after_id: Option<i64>, limit: u32) -> Result<Vec<QuarantineItem>> {
        let rows = sqlx::query("SELECT * FROM quarantine WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id.unwrap_or(0))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(quarantine_from_row).collect()
    }

    async fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>> {
        let row = sqlx::query("SELECT * FROM quarantine WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(quarantine_from_row).transpose()
    }

    async fn stats(&self) -> Result<LogStats> {
        let row = sqlx::query(STATS_SQL).fetch_one(&self.pool).await?;
        Ok(LogStats {
            events: row.try_get(0)?,
            duplicates: row.try_get(1)?,
            quarantined: row.try_get(2)?,
            engagements: row.try_get(3)?,
        })
    }

    async fn logged_engagement_ids(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT engagement_id FROM events WHERE engagement_id IS NOT NULL AND engagement_id > $1
             ORDER BY engagement_id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn replace_engagement(
        &self,
        state: &EngagementState,
        last_event_id: i64,
    ) -> Result<bool> {
        let mut tx = PgTx(self.pool.begin().await?);
        if !replace_engagement_in(&mut tx, state, last_event_id).await? {
            return Ok(false);
        }
        tx.0.commit().await?;
        Ok(true)
    }

    async fn delete_orphan_engagements(&self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(DELETE_ORPHAN_INDEX_SQL)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(DELETE_ORPHANS_SQL).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn ready(&self) -> Result<()> {
        let applied: Option<i64> = sqlx::query_scalar(APPLIED_MIGRATION_SQL)
            .fetch_one(&self.pool)
            .await?;
        check_applied(&self.migrator, applied)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
