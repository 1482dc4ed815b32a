//! Postgres: the scale-out store. Several stateless replicas share one database; the projector merges records
//! under `SELECT ... FOR UPDATE`, taken in engagement-id order so concurrent projectors cannot deadlock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::sql::impl_sql_store;
use super::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event log and engagements",
        include_str!("../../migrations/postgres/0001_event_log_and_engagements.sql"),
    ),
    (
        2,
        "projection queue",
        include_str!("../../migrations/postgres/0002_projection_queue.sql"),
    ),
    (
        3,
        "reconciliation runs and fetch queue",
        include_str!("../../migrations/postgres/0003_reconciliation.sql"),
    ),
    (
        4,
        "media archive",
        include_str!("../../migrations/postgres/0004_media.sql"),
    ),
    (
        5,
        "delivery",
        include_str!("../../migrations/postgres/0005_delivery.sql"),
    ),
    (
        6,
        "delivery queue order",
        include_str!("../../migrations/postgres/0006_delivery_order.sql"),
    ),
    (
        7,
        "agent activity and the live stream",
        include_str!("../../migrations/postgres/0007_activity.sql"),
    ),
    (
        8,
        "presence sync",
        include_str!("../../migrations/postgres/0008_presence.sql"),
    ),
    (
        9,
        "agent sessions and status ids",
        include_str!("../../migrations/postgres/0009_agent_sessions_and_status_ids.sql"),
    ),
    (
        10,
        "media permalinks",
        include_str!("../../migrations/postgres/0010_media_permalinks.sql"),
    ),
    (
        11,
        "chatbot channel",
        include_str!("../../migrations/postgres/0011_chat.sql"),
    ),
    (
        12,
        "zoom app",
        include_str!("../../migrations/postgres/0012_zoom_app.sql"),
    ),
    (
        13,
        "scoped API keys",
        include_str!("../../migrations/postgres/0013_api_keys.sql"),
    ),
];

pub struct PgStore {
    pool: PgPool,
    migrator: Migrator,
    committers: usize,
    signals: Arc<Signals>,
}

impl PgStore {
    pub async fn open(
        url: &str,
        max_connections: u32,
        committers: usize,
        signals: Arc<Signals>,
    ) -> Result<Self> {
        // Plans made for the parameters at hand, every time. The tables start empty and grow fast, and a generic
        // plan cached while they were tiny (scan the sink's rows, say) stays in use long after it stopped fitting:
        // measured, the delivery claim went from under a millisecond to seconds within a minute of start-up.
        let options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
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
            // Leave a connection for the projector and one for reads.
            committers: committers.clamp(1, max_connections.saturating_sub(2).max(1) as usize),
            signals,
        })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn migrator(&self) -> &Migrator {
        &self.migrator
    }

    fn committer_count(&self) -> usize {
        self.committers
    }

    /// A session advisory lock, held on a connection taken out of the pool for as long as the work runs.
    async fn exclusive(&self, name: &str) -> Result<Option<ExclusiveLock>> {
        let key = lock_key(name);
        let mut conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(locked.then(|| ExclusiveLock::postgres(conn, key)))
    }

    async fn shutdown(&self) {
        self.pool.close().await;
    }
}

impl_sql_store!(PgStore, PgConn, Postgres, "postgres", " FOR UPDATE");
super::delivery::impl_delivery_repo!(PgStore, Postgres, "postgres");
super::media::impl_media_repo!(PgStore, Postgres, "postgres");
super::activity::impl_activity_repo!(PgStore, Postgres, "postgres");
super::api_keys::impl_api_key_repo!(PgStore, Postgres);
super::presence::impl_presence_repo!(PgStore, Postgres, "postgres");
super::chat::impl_chat_repo!(PgStore, Postgres, "postgres");
super::zoomapp::impl_zoomapp_repo!(PgStore, Postgres, "postgres");
