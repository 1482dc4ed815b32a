//! The Contact Center Zoom App's tables (the `0012_zoom_app` migration): panel sessions, web install flows in
//! progress, users' OAuth tokens (sealed by the caller; the store never sees them in clear) and the agents'
//! per-engagement workspaces. `ZoomAppRepo` is a supertrait of `Store`, implemented for both backends by
//! `impl_zoomapp_repo!` (the same SQL). The store knows none of the rules: workspace writes are merged by a function
//! the caller passes in, inside the transaction that reads and writes the row.

use async_trait::async_trait;
use serde::Serialize;

use super::Result;

/// A panel session (the cookie's token is the key, hashed by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The Zoom user id the verified app context named (`uid`).
    pub user_id: String,
    /// `development` or `production`: whose credentials verified the context.
    pub environment: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// An in-client OAuth in progress: its `state`, the PKCE verifier (sealed by the caller) and when it began.
    pub oauth_state: Option<String>,
    pub oauth_verifier: Option<String>,
    pub oauth_started_at: Option<i64>,
}

/// A user's tokens for one credential set. `sealed` is opaque to the store (see `zoomapp::tokens`).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: String,
    pub environment: String,
    pub sealed: String,
    pub scope: Option<String>,
    /// When the access token expires (epoch ms).
    pub expires_at: i64,
    /// When the refresher should renew it (before `expires_at`).
    pub refresh_at: i64,
    pub obtained_at: i64,
    pub refreshed_at: Option<i64>,
    pub refresh_failures: i64,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRow")
            .field("user_id", &"***")
            .field("environment", &self.environment)
            .field("expires_at", &self.expires_at)
            .field("refresh_failures", &self.refresh_failures)
            .finish()
    }
}

/// A stored workspace: the merge rule's state as JSON, owned by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRow {
    pub engagement_id: String,
    pub state: String,
    pub finalized: bool,
    pub updated_at: i64,
}

/// What a merge function decided: the state to store (JSON, finalized), or nothing to write.
pub type WorkspaceMerge<'a> = dyn Fn(Option<&str>) -> Option<(String, bool)> + Send + Sync + 'a;

/// What a deauthorization removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeletedUserData {
    pub tokens: u64,
    pub sessions: u64,
    pub workspaces: u64,
}

#[async_trait]
pub trait ZoomAppRepo: Send + Sync {
    async fn zoomapp_insert_session(&self, token_hash: &str, session: &SessionRow) -> Result<()>;
    /// The session, unless it expired by `now`.
    async fn zoomapp_session(&self, token_hash: &str, now: i64) -> Result<Option<SessionRow>>;
    /// Sets (or with `None`s clears) the session's in-client OAuth in progress; false when the session is gone.
    async fn zoomapp_set_session_oauth(
        &self,
        token_hash: &str,
        state: Option<&str>,
        verifier: Option<&str>,
        started_at: Option<i64>,
    ) -> Result<bool>;
    /// Records a web install flow in progress.
    async fn zoomapp_insert_oauth_state(
        &self,
        state_hash: &str,
        environment: &str,
        verifier: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// Takes (deletes and returns) a web install flow in progress: `(environment, sealed verifier)`; a state is
    /// good for one callback, and none after `now` passed its expiry.
    async fn zoomapp_take_oauth_state(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<(String, String)>>;
    /// Stores a user's tokens (replacing any), with a fresh failure count and no lease.
    async fn zoomapp_put_tokens(&self, row: &TokenRow) -> Result<()>;
    async fn zoomapp_tokens(&self, user_id: &str, environment: &str) -> Result<Option<TokenRow>>;
    /// Leases, until `lease_until`, up to `limit` token rows whose `refresh_at` has come by `now` and that no one
    /// holds (a row that failed is held until its retry time the same way).
    async fn zoomapp_claim_refresh(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<TokenRow>>;
    /// When the refresher next has work: the earliest `refresh_at` or retry time of any row.
    async fn zoomapp_next_refresh(&self) -> Result<Option<i64>>;
    /// Stores refreshed tokens and releases the lease, in one statement: Zoom rotated the refresh token, and the
    /// old one no longer works. False when the row is gone (deauthorized meanwhile).
    async fn zoomapp_refreshed(&self, row: &TokenRow) -> Result<bool>;
    /// Notes a failed refresh and holds the row until `retry_at`.
    async fn zoomapp_refresh_failed(
        &self,
        user_id: &str,
        environment: &str,
        error: &str,
        retry_at: i64,
    ) -> Result<()>;
    /// Reads, merges (with `merge`, in the transaction) and writes one workspace. Returns the stored JSON after the
    /// write (or as it was, when `merge` wrote nothing).
    async fn zoomapp_merge_workspace(
        &self,
        user_id: &str,
        engagement_id: &str,
        merge: &WorkspaceMerge<'_>,
        now: i64,
    ) -> Result<Option<String>>;
    async fn zoomapp_workspace(
        &self,
        user_id: &str,
        engagement_id: &str,
    ) -> Result<Option<WorkspaceRow>>;
    /// A user's data is deleted (the app was removed): their tokens for `environment` (every environment when
    /// `None`), and unless `tokens_only`, their sessions and workspaces.
    async fn zoomapp_delete_user(
        &self,
        user_id: &str,
        environment: Option<&str>,
        tokens_only: bool,
    ) -> Result<DeletedUserData>;
    /// Deletes expired sessions and install flows; returns how many rows went.
    async fn zoomapp_purge_expired(&self, now: i64) -> Result<u64>;
}

macro_rules! impl_zoomapp_repo {
    ($store:ident, $db:ty, $backend:literal) => {
        mod zoomapp_repo {
            use super::*;

            /// `FOR UPDATE` on Postgres: a workspace is read, merged and written back.
            fn lock_suffix() -> &'static str {
                if $backend == "postgres" {
                    " FOR UPDATE"
                } else {
                    ""
                }
            }

            type SessionTuple = (String, String, i64, i64, Option<String>, Option<String>, Option<i64>);
            type TokenTuple = (
                String,
                String,
                String,
                Option<String>,
                i64,
                i64,
                i64,
                Option<i64>,
                i64,
                Option<String>,
            );

            const TOKEN_COLUMNS: &str = "user_id, environment, sealed, scope, expires_at, refresh_at, obtained_at, \
                refreshed_at, refresh_failures, last_error";

            fn token_row(t: TokenTuple) -> $crate::store::zoomapp::TokenRow {
                $crate::store::zoomapp::TokenRow {
                    user_id: t.0,
                    environment: t.1,
                    sealed: t.2,
                    scope: t.3,
                    expires_at: t.4,
                    refresh_at: t.5,
                    obtained_at: t.6,
                    refreshed_at: t.7,
                    refresh_failures: t.8,
                    last_error: t.9,
                }
            }

            #[async_trait::async_trait]
            impl $crate::store::zoomapp::ZoomAppRepo for $store {
                async fn zoomapp_insert_session(
                    &self,
                    token_hash: &str,
                    s: &$crate::store::zoomapp::SessionRow,
                ) -> $crate::store::Result<()> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO zoomapp_sessions (token_hash, user_id, environment, created_at, expires_at, \
                         oauth_state, oauth_verifier, oauth_started_at) ",
                    );
                    qb.push_values([()], |mut b, _| {
                        b.push_bind(token_hash)
                            .push_bind(s.user_id.as_str())
                            .push_bind(s.environment.as_str())
                            .push_bind(s.created_at)
                            .push_bind(s.expires_at)
                            .push_bind(s.oauth_state.as_deref())
                            .push_bind(s.oauth_verifier.as_deref())
                            .push_bind(s.oauth_started_at);
                    });
                    qb.build().execute(self.writer()).await?;
                    Ok(())
                }

                async fn zoomapp_session(
                    &self,
                    token_hash: &str,
                    now: i64,
                ) -> $crate::store::Result<Option<$crate::store::zoomapp::SessionRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT user_id, environment, created_at, expires_at, oauth_state, oauth_verifier, \
                         oauth_started_at FROM zoomapp_sessions WHERE token_hash = ",
                    );
                    qb.push_bind(token_hash).push(" AND expires_at > ").push_bind(now);
                    // Readers see every commit (SQLite WAL, Postgres): a session opened a moment ago is found.
                    let row: Option<SessionTuple> =
                        qb.build_query_as().fetch_optional(self.reader()).await?;
                    Ok(row.map(|r| $crate::store::zoomapp::SessionRow {
                        user_id: r.0,
                        environment: r.1,
                        created_at: r.2,
                        expires_at: r.3,
                        oauth_state: r.4,
                        oauth_verifier: r.5,
                        oauth_started_at: r.6,
                    }))
                }

                async fn zoomapp_set_session_oauth(
                    &self,
                    token_hash: &str,
                    state: Option<&str>,
                    verifier: Option<&str>,
                    started_at: Option<i64>,
                ) -> $crate::store::Result<bool> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE zoomapp_sessions SET oauth_state = ");
                    qb.push_bind(state)
                        .push(", oauth_verifier = ")
                        .push_bind(verifier)
                        .push(", oauth_started_at = ")
                        .push_bind(started_at)
                        .push(" WHERE token_hash = ")
                        .push_bind(token_hash);
                    Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
                }

                async fn zoomapp_insert_oauth_state(
                    &self,
                    state_hash: &str,
                    environment: &str,
                    verifier: &str,
                    now: i64,
                    expires_at: i64,
                ) -> $crate::store::Result<()> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO zoomapp_oauth_states (state_hash, environment, verifier, created_at, expires_at) ",
                    );
                    qb.push_values([()], |mut b, _| {
                        b.push_bind(state_hash)
                            .push_bind(environment)
                            .push_bind(verifier)
                            .push_bind(now)
                            .push_bind(expires_at);
                    });
                    qb.build().execute(self.writer()).await?;
                    Ok(())
                }

                async fn zoomapp_take_oauth_state(
                    &self,
                    state_hash: &str,
                    now: i64,
                ) -> $crate::store::Result<Option<(String, String)>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM zoomapp_oauth_states WHERE state_hash = ",
                    );
                    qb.push_bind(state_hash)
                        .push(" RETURNING environment, verifier, expires_at");
                    let row: Option<(String, String, i64)> =
                        qb.build_query_as().fetch_optional(self.writer()).await?;
                    Ok(row
                        .filter(|(_, _, expires_at)| *expires_at > now)
                        .map(|(environment, verifier, _)| (environment, verifier)))
                }

                async fn zoomapp_put_tokens(
                    &self,
                    r: &$crate::store::zoomapp::TokenRow,
                ) -> $crate::store::Result<()> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO zoomapp_tokens ({TOKEN_COLUMNS}, leased_until) "
                    ));
                    qb.push_values([()], |mut b, _| {
                        b.push_bind(r.user_id.as_str())
                            .push_bind(r.environment.as_str())
                            .push_bind(r.sealed.as_str())
                            .push_bind(r.scope.as_deref())
                            .push_bind(r.expires_at)
                            .push_bind(r.refresh_at)
                            .push_bind(r.obtained_at)
                            .push_bind(r.refreshed_at)
                            .push_bind(0i64)
                            .push_bind(None::<&str>)
                            .push_bind(0i64);
                    });
                    qb.push(
                        " ON CONFLICT (user_id, environment) DO UPDATE SET sealed = excluded.sealed, \
                         scope = excluded.scope, expires_at = excluded.expires_at, refresh_at = excluded.refresh_at, obtained_at = excluded.obtained_at, \
                         refreshed_at = excluded.refreshed_at, refresh_failures = 0, last_error = NULL, leased_until = 0",
                    );
                    qb.build().execute(self.writer()).await?;
                    Ok(())
                }

                async fn zoomapp_tokens(
                    &self,
                    user_id: &str,
                    environment: &str,
                ) -> $crate::store::Result<Option<$crate::store::zoomapp::TokenRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {TOKEN_COLUMNS} FROM zoomapp_tokens WHERE user_id = "
                    ));
                    qb.push_bind(user_id)
                        .push(" AND environment = ")
                        .push_bind(environment);
                    let row: Option<TokenTuple> =
                        qb.build_query_as().fetch_optional(self.reader()).await?;
                    Ok(row.map(token_row))
                }

                async fn zoomapp_claim_refresh(
                    &self,
                    now: i64,
                    lease_until: i64,
                    limit: u32,
                ) -> $crate::store::Result<Vec<$crate::store::zoomapp::TokenRow>> {
                    let mut tx = self.writer().begin().await?;
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {TOKEN_COLUMNS} FROM zoomapp_tokens WHERE refresh_at <= "
                    ));
                    qb.push_bind(now)
                        .push(" AND leased_until <= ")
                        .push_bind(now)
                        .push(" ORDER BY refresh_at LIMIT ")
                        .push_bind(i64::from(limit));
                    if $backend == "postgres" {
                        qb.push(" FOR UPDATE SKIP LOCKED");
                    }
                    let rows: Vec<TokenTuple> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    for r in &rows {
                        let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE zoomapp_tokens SET leased_until = ");
                        qb.push_bind(lease_until)
                            .push(" WHERE user_id = ")
                            .push_bind(r.0.as_str())
                            .push(" AND environment = ")
                            .push_bind(r.1.as_str());
                        qb.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(rows.into_iter().map(token_row).collect())
                }

                async fn zoomapp_next_refresh(&self) -> $crate::store::Result<Option<i64>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT MIN(CASE WHEN leased_until > refresh_at THEN leased_until ELSE refresh_at END) \
                         FROM zoomapp_tokens",
                    );
                    Ok(qb.build_query_scalar::<Option<i64>>().fetch_one(self.reader()).await?)
                }

                async fn zoomapp_refreshed(
                    &self,
                    r: &$crate::store::zoomapp::TokenRow,
                ) -> $crate::store::Result<bool> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE zoomapp_tokens SET sealed = ");
                    qb.push_bind(r.sealed.as_str())
                        .push(", scope = ")
                        .push_bind(r.scope.as_deref())
                        .push(", expires_at = ")
                        .push_bind(r.expires_at)
                        .push(", refresh_at = ")
                        .push_bind(r.refresh_at)
                        .push(", refreshed_at = ")
                        .push_bind(r.refreshed_at)
                        .push(", refresh_failures = 0, last_error = NULL, leased_until = 0 WHERE user_id = ")
                        .push_bind(r.user_id.as_str())
                        .push(" AND environment = ")
                        .push_bind(r.environment.as_str());
                    Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
                }

                async fn zoomapp_refresh_failed(
                    &self,
                    user_id: &str,
                    environment: &str,
                    error: &str,
                    retry_at: i64,
                ) -> $crate::store::Result<()> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE zoomapp_tokens SET refresh_failures = refresh_failures + 1, last_error = ",
                    );
                    qb.push_bind(error)
                        .push(", leased_until = ")
                        .push_bind(retry_at)
                        .push(" WHERE user_id = ")
                        .push_bind(user_id)
                        .push(" AND environment = ")
                        .push_bind(environment);
                    qb.build().execute(self.writer()).await?;
                    Ok(())
                }

                async fn zoomapp_merge_workspace(
                    &self,
                    user_id: &str,
                    engagement_id: &str,
                    merge: &$crate::store::zoomapp::WorkspaceMerge<'_>,
                    now: i64,
                ) -> $crate::store::Result<Option<String>> {
                    // A first write that races another first write of the same row finds it on the next round.
                    for _ in 0..3 {
                        let mut tx = self.writer().begin().await?;
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "SELECT state FROM zoomapp_workspaces WHERE user_id = ",
                        );
                        qb.push_bind(user_id)
                            .push(" AND engagement_id = ")
                            .push_bind(engagement_id)
                            .push(lock_suffix());
                        let stored: Option<String> =
                            qb.build_query_scalar().fetch_optional(&mut *tx).await?;
                        let Some((state, finalized)) = merge(stored.as_deref()) else {
                            tx.rollback().await?;
                            return Ok(stored);
                        };
                        let written = if stored.is_some() {
                            let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE zoomapp_workspaces SET state = ");
                            qb.push_bind(state.as_str())
                                .push(", finalized = ")
                                .push_bind(i64::from(finalized))
                                .push(", updated_at = ")
                                .push_bind(now)
                                .push(" WHERE user_id = ")
                                .push_bind(user_id)
                                .push(" AND engagement_id = ")
                                .push_bind(engagement_id);
                            qb.build().execute(&mut *tx).await?.rows_affected()
                        } else {
                            let mut qb = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO zoomapp_workspaces (user_id, engagement_id, state, finalized, created_at, updated_at) ",
                            );
                            qb.push_values([()], |mut b, _| {
                                b.push_bind(user_id)
                                    .push_bind(engagement_id)
                                    .push_bind(state.as_str())
                                    .push_bind(i64::from(finalized))
                                    .push_bind(now)
                                    .push_bind(now);
                            });
                            qb.push(" ON CONFLICT (user_id, engagement_id) DO NOTHING");
                            qb.build().execute(&mut *tx).await?.rows_affected()
                        };
                        if written == 0 {
                            tx.rollback().await?;
                            continue;
                        }
                        tx.commit().await?;
                        return Ok(Some(state));
                    }
                    Err($crate::store::StoreError::Invalid(
                        "a workspace kept changing under concurrent writes; try again".into(),
                    ))
                }

                async fn zoomapp_workspace(
                    &self,
                    user_id: &str,
                    engagement_id: &str,
                ) -> $crate::store::Result<Option<$crate::store::zoomapp::WorkspaceRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT engagement_id, state, finalized, updated_at FROM zoomapp_workspaces WHERE user_id = ",
                    );
                    qb.push_bind(user_id)
                        .push(" AND engagement_id = ")
                        .push_bind(engagement_id);
                    let row: Option<(String, String, i64, i64)> =
                        qb.build_query_as().fetch_optional(self.reader()).await?;
                    Ok(row.map(|r| $crate::store::zoomapp::WorkspaceRow {
                        engagement_id: r.0,
                        state: r.1,
                        finalized: r.2 != 0,
                        updated_at: r.3,
                    }))
                }

                async fn zoomapp_delete_user(
                    &self,
                    user_id: &str,
                    environment: Option<&str>,
                    tokens_only: bool,
                ) -> $crate::store::Result<$crate::store::zoomapp::DeletedUserData> {
                    let mut tx = self.writer().begin().await?;
                    let mut deleted = $crate::store::zoomapp::DeletedUserData::default();
                    let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM zoomapp_tokens WHERE user_id = ");
                    qb.push_bind(user_id);
                    if let Some(env) = environment {
                        qb.push(" AND environment = ").push_bind(env);
                    }
                    deleted.tokens = qb.build().execute(&mut *tx).await?.rows_affected();
                    if !tokens_only {
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("DELETE FROM zoomapp_sessions WHERE user_id = ");
                        qb.push_bind(user_id);
                        deleted.sessions = qb.build().execute(&mut *tx).await?.rows_affected();
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("DELETE FROM zoomapp_workspaces WHERE user_id = ");
                        qb.push_bind(user_id);
                        deleted.workspaces = qb.build().execute(&mut *tx).await?.rows_affected();
                    }
                    tx.commit().await?;
                    Ok(deleted)
                }

                async fn zoomapp_purge_expired(&self, now: i64) -> $crate::store::Result<u64> {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("DELETE FROM zoomapp_sessions WHERE expires_at <= ");
                    qb.push_bind(now);
                    let sessions = qb.build().execute(self.writer()).await?.rows_affected();
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("DELETE FROM zoomapp_oauth_states WHERE expires_at <= ");
                    qb.push_bind(now);
                    let states = qb.build().execute(self.writer()).await?.rows_affected();
                    Ok(sessions + states)
                }
            }
        }
    };
}

pub(crate) use impl_zoomapp_repo;
