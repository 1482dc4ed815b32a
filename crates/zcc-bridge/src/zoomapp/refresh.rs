//! Refreshing users' tokens before they expire. Each row says when it is due (`refresh_at`: the configured margin
//! before the access token's expiry, never before half its lifetime); the refresher leases due rows (replicas share
//! the work: `FOR UPDATE SKIP LOCKED` and leases), refreshes each, and stores the rotated pair in one statement
//! (Zoom rotates refresh tokens: the old one stops working). A refusal (the user revoked the app, the grant expired)
//! deletes the useless tokens; a failure (network, 5xx) is retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zoom_app::oauth::OAuthError;

use super::{environment_of, now_ms, tokens, SealedTokens, ZoomApp};
use crate::store::zoomapp::TokenRow;

#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// How long a claimed row is ours while it is refreshed.
    pub lease: Duration,
    /// The longest sleep between two looks (other replicas may have stored tokens meanwhile).
    pub max_wait: Duration,
    /// Rows refreshed per round.
    pub batch: u32,
    /// How often expired sessions and install flows are deleted.
    pub purge_every: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            max_wait: Duration::from_secs(60),
            batch: 16,
            purge_every: Duration::from_secs(600),
        }
    }
}

/// First wait after a failed refresh; doubles up to an hour.
const RETRY_BASE_MS: i64 = 30_000;
const RETRY_MAX_MS: i64 = 3_600_000;

impl ZoomApp {
    /// Runs until `shutdown` turns true.
    pub async fn run_refresher(
        self: Arc<Self>,
        settings: RefreshSettings,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last_purge = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut full = false;
            match self.refresh_round(&settings).await {
                Ok(n) => full = n >= settings.batch as usize,
                Err(e) => {
                    tracing::warn!(error = %e, "Zoom App token refresh round failed; retrying")
                }
            }
            if last_purge.elapsed() >= settings.purge_every {
                last_purge = tokio::time::Instant::now();
                match self.store.zoomapp_purge_expired(now_ms()).await {
                    Ok(n) if n > 0 => tracing::debug!(
                        rows = n,
                        "expired Zoom App sessions and install flows deleted"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "deleting expired Zoom App sessions failed")
                    }
                }
            }
            if full {
                continue;
            }
            let max_wait = i64::try_from(settings.max_wait.as_millis()).unwrap_or(60_000);
            let wait_ms = match self.store.zoomapp_next_refresh().await {
                Ok(Some(next)) => (next - now_ms()).clamp(50, max_wait),
                Ok(None) => max_wait,
                Err(e) => {
                    tracing::warn!(error = %e, "Zoom App token refresh: reading the next due time failed");
                    max_wait
                }
            };
            tokio::select! {
                _ = self.wake_refresher.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms.max(0) as u64)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Refreshes every due row (a batch); returns how many were claimed.
    pub async fn refresh_round(&self, settings: &RefreshSettings) -> crate::store::Result<usize> {
        let now = now_ms();
        let lease = i64::try_from(settings.lease.as_millis()).unwrap_or(60_000);
        let rows = self
            .store
            .zoomapp_claim_refresh(now, now + lease, settings.batch)
            .await?;
        for row in &rows {
            self.refresh_one(row).await?;
        }
        Ok(rows.len())
    }

    async fn refresh_one(&self, row: &TokenRow) -> crate::store::Result<()> {
        let now = now_ms();
        let failed = |error: String| {
            let exponent = u32::try_from(row.refresh_failures.clamp(0, 20)).unwrap_or(20);
            let delay = RETRY_BASE_MS
                .saturating_mul(1i64 << exponent)
                .min(RETRY_MAX_MS);
            (error, now + delay)
        };
        let Some(app) = environment_of(&row.environment).and_then(|e| self.app(e)) else {
            let (error, retry_at) = failed(format!(
                "the {} credentials are no longer configured",
                row.environment
            ));
            metrics::counter!("zcc_zoomapp_token_refreshes_total", "outcome" => "failed")
                .increment(1);
            return self
                .store
                .zoomapp_refresh_failed(&row.user_id, &row.environment, &error, retry_at)
                .await;
        };
        let aad = tokens::tokens_aad(&row.user_id, &row.environment);
        let stored: SealedTokens = match self
            .sealer
            .open(&row.sealed, &aad)
            .map_err(|e| e.to_string())
            .and_then(|plain| serde_json::from_slice(&plain).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(environment = %app.environment, error = %e,
                    "stored Zoom App tokens do not open; the user must authorize again");
                let (error, retry_at) = failed(e);
                metrics::counter!("zcc_zoomapp_token_refreshes_total", "outcome" => "failed")
                    .increment(1);
                return self
                    .store
                    .zoomapp_refresh_failed(&row.user_id, &row.environment, &error, retry_at)
                    .await;
            }
        };
        let refresh_token = zoom_app::Secret::new(stored.refresh_token);
        match app.client.refresh(&refresh_token).await {
            Ok(tokens) => {
                let mut fresh = self.token_row(
                    &row.user_id,
                    app.environment,
                    &tokens,
                    stored.account_id,
                    now,
                );
                fresh.obtained_at = row.obtained_at;
                // The schedule counts from this token's own issue.
                fresh.refresh_at = self.refresh_at(now, fresh.expires_at);
                fresh.refreshed_at = Some(now);
                if self.store.zoomapp_refreshed(&fresh).await? {
                    metrics::counter!("zcc_zoomapp_token_refreshes_total", "outcome" => "refreshed")
                        .increment(1);
                    tracing::debug!(environment = %app.environment, "Zoom App user token refreshed");
                }
                Ok(())
            }
            Err(OAuthError::Refused { status, error, .. }) if status == 400 || status == 401 => {
                // The grant is gone (revoked, expired, or a refresh token already used): the tokens are useless.
                tracing::warn!(environment = %app.environment, status, error = ?error,
                    "Zoom refused to refresh a user's token; deleting it (the user must authorize again)");
                metrics::counter!("zcc_zoomapp_token_refreshes_total", "outcome" => "revoked")
                    .increment(1);
                self.store
                    .zoomapp_delete_user(&row.user_id, Some(&row.environment), true)
                    .await
                    .map(drop)
            }
            Err(e) => {
                let (error, retry_at) = failed(e.to_string());
                tracing::warn!(environment = %app.environment, error = %error, retry_at,
                    "refreshing a Zoom App user token failed; retrying later");
                metrics::counter!("zcc_zoomapp_token_refreshes_total", "outcome" => "failed")
                    .increment(1);
                self.store
                    .zoomapp_refresh_failed(&row.user_id, &row.environment, &error, retry_at)
                    .await
            }
        }
    }
}
