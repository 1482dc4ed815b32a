//! SQLite: the embedded default. WAL, `synchronous=FULL` (an acknowledged event survives power loss), one
//! writer connection (group commit feeds it batches), a separate pool of read-only connections, and a
//! background checkpointer so that no commit pays for copying the WAL back into the database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::sql::impl_sql_store;
use super::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event log and engagements",
        include_str!("../../migrations/sqlite/0001_event_log_and_engagements.sql"),
    ),
    (
        2,
        "projection queue",
        include_str!("../../migrations/sqlite/0002_projection_queue.sql"),
    ),
    (
        3,
        "reconciliation runs and fetch queue",
        include_str!("../../migrations/sqlite/0003_reconciliation.sql"),
    ),
    (
        4,
        "media archive",
        include_str!("../../migrations/sqlite/0004_media.sql"),
    ),
    (
        5,
        "delivery",
        include_str!("../../migrations/sqlite/0005_delivery.sql"),
    ),
    (
        6,
        "delivery queue order",
        include_str!("../../migrations/sqlite/0006_delivery_order.sql"),
    ),
    (
        7,
        "agent activity and the live stream",
        include_str!("../../migrations/sqlite/0007_activity.sql"),
    ),
    (
        8,
        "presence sync",
        include_str!("../../migrations/sqlite/0008_presence.sql"),
    ),
    (
        9,
        "agent sessions and status ids",
        include_str!("../../migrations/sqlite/0009_agent_sessions_and_status_ids.sql"),
    ),
    (
        10,
        "media permalinks",
        include_str!("../../migrations/sqlite/0010_media_permalinks.sql"),
    ),
    (
        11,
        "chatbot channel",
        include_str!("../../migrations/sqlite/0011_chat.sql"),
    ),
    (
        12,
        "zoom app",
        include_str!("../../migrations/sqlite/0012_zoom_app.sql"),
    ),
    (
        13,
        "scoped API keys",
        include_str!("../../migrations/sqlite/0013_api_keys.sql"),
    ),
];

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    migrator: Migrator,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    signals: Arc<Signals>,
}

impl SqliteStore {
    pub async fn open(url: &str, signals: Arc<Signals>) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run in the background (below), not inside whichever commit crosses the threshold.
            .pragma("wal_autocheckpoint", "0")
            // After a checkpoint resets the WAL, truncate it to this size.
            .pragma("journal_size_limit", "67108864");
        let path = options.get_filename().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Invalid(format!(
                    "cannot create database directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        let migrator = migrator(MIGRATIONS);
        migrator.run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await?;
        // A connection of its own: a PASSIVE checkpoint never waits for the writer nor blocks it.
        let checkpoint_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let checkpointer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpoint_pool)
                    .await
                {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
                }
            }
        });
        Ok(Self {
            writer,
            readers,
            migrator,
            checkpointer: Mutex::new(Some(checkpointer)),
            signals,
        })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.readers
    }

    fn migrator(&self) -> &Migrator {
        &self.migrator
    }

    fn committer_count(&self) -> usize {
        1
    }

    /// One process owns a SQLite database: scheduled work needs no cross-process lock.
    async fn exclusive(&self, _name: &str) -> Result<Option<ExclusiveLock>> {
        Ok(Some(ExclusiveLock::local()))
    }

    async fn shutdown(&self) {
        if let Some(task) = self.checkpointer.lock().await.take() {
            task.abort();
        }
        // Leave a small WAL behind: copy everything back and truncate it.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "final SQLite checkpoint failed");
        }
        self.writer.close().await;
        self.readers.close().await;
    }
}

impl_sql_store!(SqliteStore, SqliteConn, Sqlite, "sqlite", "");
super::delivery::impl_delivery_repo!(SqliteStore, Sqlite, "sqlite");
super::media::impl_media_repo!(SqliteStore, Sqlite, "sqlite");
super::activity::impl_activity_repo!(SqliteStore, Sqlite, "sqlite");
super::api_keys::impl_api_key_repo!(SqliteStore, Sqlite);
super::presence::impl_presence_repo!(SqliteStore, Sqlite, "sqlite");
super::chat::impl_chat_repo!(SqliteStore, Sqlite, "sqlite");
super::zoomapp::impl_zoomapp_repo!(SqliteStore, Sqlite, "sqlite");
