//! Transactions whose commit does not wait for the disk, for derived state only.
//!
//! The projector's merges and presence sync's applied sessions are rebuilt from what is durable if a power loss
//! takes their last commits: each clears its own work queue (`projection_queue`, `presence_watch`) in the same
//! transaction, so a lost commit leaves the work queued and it is done again. Their commits therefore need not
//! each wait for an fsync; the event log's appends, and everything else, still do (and an fsync of the log makes
//! every earlier commit durable with it: the WAL is written in order).
//!
//! - SQLite: `PRAGMA synchronous = NORMAL` on the writer for the transaction (WAL mode: no fsync at commit; a
//!   power loss may roll it back, the database stays consistent), `FULL` again after. SQLite refuses the pragma
//!   inside a transaction, so it is set around it; a connection that could not be set back (an error, a dropped
//!   future) is closed rather than returned to the pool, and the pool opens a fresh `FULL` one.
//! - Postgres: `SET LOCAL synchronous_commit = off` (asynchronous commit; scoped to the transaction).

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool, Postgres, Sqlite, Transaction};

use super::Result;

/// A writer connection lent for one relaxed transaction: [`begin`](Self::begin), commit, then
/// [`release`](Self::release).
pub(crate) struct Relaxed<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    /// The connection's durability setting is changed and not yet restored.
    changed: bool,
}

impl<DB: Database> Drop for Relaxed<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.changed {
                // Never hand a relaxed connection back: the next user (an append) counts on its fsync.
                tracing::debug!(
                    "closing a writer connection whose durability setting was not restored"
                );
                drop(conn.detach());
            }
        }
    }
}

impl Relaxed<Sqlite> {
    pub(crate) async fn acquire(pool: &Pool<Sqlite>) -> Result<Self> {
        // Counted as changed from the start: if the pragma fails halfway, the connection is closed, not reused.
        let mut relaxed = Self {
            conn: Some(pool.acquire().await?),
            changed: true,
        };
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut **relaxed.conn_mut()?)
            .await?;
        Ok(relaxed)
    }

    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Sqlite>> {
        Ok(self.conn_mut()?.begin().await?)
    }

    /// Restores `synchronous = FULL` and returns the connection to the pool. The transaction is committed by now,
    /// so a failure here is not the caller's: the connection is closed instead (on drop) and the pool opens a new one.
    pub(crate) async fn release(mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut **conn)
            .await
        {
            Ok(_) => self.changed = false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot restore synchronous=FULL on the SQLite writer; closing that connection")
            }
        }
    }
}

impl Relaxed<Postgres> {
    pub(crate) async fn acquire(pool: &Pool<Postgres>) -> Result<Self> {
        Ok(Self {
            conn: Some(pool.acquire().await?),
            changed: false,
        })
    }

    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Postgres>> {
        let mut tx = self.conn_mut()?.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub(crate) async fn release(self) {}
}

impl<DB: Database> Relaxed<DB> {
    fn conn_mut(&mut self) -> Result<&mut PoolConnection<DB>> {
        self.conn
            .as_mut()
            .ok_or_else(|| super::StoreError::Invalid("relaxed connection already released".into()))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    use super::*;

    async fn level(pool: &Pool<Sqlite>) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .expect("read synchronous")
    }

    #[tokio::test]
    async fn the_sqlite_writer_is_durable_again_after_a_relaxed_transaction_whatever_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("relaxed.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&pool)
            .await
            .expect("create");
        assert_eq!(level(&pool).await, 2, "FULL to begin with");

        // Committed and released: NORMAL inside, FULL after, the row kept.
        let mut writer = Relaxed::<Sqlite>::acquire(&pool).await.expect("acquire");
        let mut tx = writer.begin().await.expect("begin");
        let inside: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *tx)
            .await
            .expect("read inside");
        assert_eq!(inside, 1, "NORMAL inside the transaction");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        writer.release().await;
        assert_eq!(level(&pool).await, 2, "FULL again after release");

        // Abandoned mid-transaction (an error or a dropped future): the connection is closed, not reused relaxed,
        // and the pool's next connection is FULL.
        let mut writer = Relaxed::<Sqlite>::acquire(&pool).await.expect("acquire");
        let mut tx = writer.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        drop(tx);
        drop(writer);
        assert_eq!(level(&pool).await, 2, "a fresh FULL connection");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(rows, 1, "the abandoned transaction rolled back");
    }
}
