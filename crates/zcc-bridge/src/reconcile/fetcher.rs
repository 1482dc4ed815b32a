//! Event-driven fetches: when an engagement ends, or one of its recordings, transcripts or voicemails completes,
//! its canonical REST view is fetched and merged (source `poll`) once its events have settled, instead of waiting
//! for the nightly run. The queue (`fetch_queue`) is filled by the same statement that logs the event, so no
//! fetch is lost to a crash; Postgres replicas share it with leases.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use zoom::api::{ApiError, InboxMessageQuery};

use super::{now_ms, ReconcileError, Reconciler, Resource};
use crate::sources::zoom_rest::Polled;
use crate::store::{FetchItem, FETCH_ENGAGEMENT, FETCH_RECORDINGS, FETCH_VOICEMAILS};

#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Quiet time after an engagement's last such event before fetching (wrap-up notes and dispositions land
    /// after the end).
    pub settle: Duration,
    /// Queue polling interval when idle.
    pub idle_poll: Duration,
    /// Items leased per round.
    pub batch: u32,
    /// Attempts before an item is parked as `gave_up` (the next scheduled run covers it).
    pub max_attempts: i64,
    /// How long a claimed item stays leased to this worker.
    pub lease: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(120),
            idle_poll: Duration::from_secs(1),
            batch: 20,
            max_attempts: 10,
            lease: Duration::from_secs(300),
        }
    }
}

/// Works the fetch queue until `shutdown` turns true.
pub async fn run(
    reconciler: Reconciler,
    settings: FetchSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_stats = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if *shutdown.borrow() {
            return;
        }
        if last_stats.elapsed() >= Duration::from_secs(5) {
            last_stats = std::time::Instant::now();
            if let Ok(stats) = reconciler.store.fetch_queue_stats().await {
                metrics::gauge!("zcc_fetch_queue_pending").set(stats.pending as f64);
                metrics::gauge!("zcc_fetch_queue_gave_up").set(stats.gave_up as f64);
            }
        }
        let now = now_ms();
        let settle = i64::try_from(settings.settle.as_millis()).unwrap_or(i64::MAX);
        let lease = i64::try_from(settings.lease.as_millis()).unwrap_or(i64::MAX);
        let claimed = reconciler
            .store
            .claim_fetches(now.saturating_sub(settle), now, lease, settings.batch)
            .await;
        let items = match claimed {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fetch queue; retrying");
                Vec::new()
            }
        };
        if items.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(settings.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for item in items {
            if *shutdown.borrow() {
                // Leased items return to the queue when the lease ends.
                return;
            }
            handle(&reconciler, &settings, item).await;
        }
    }
}

async fn handle(reconciler: &Reconciler, settings: &FetchSettings, item: FetchItem) {
    let outcome = fetch(reconciler, &item).await;
    let store = &reconciler.store;
    let result = match outcome {
        Ok(Fetched::Done) => {
            metrics::counter!("zcc_fetch_total", "outcome" => "fetched").increment(1);
            store.complete_fetch(&item).await
        }
        Ok(Fetched::NotYet) | Err(_) => {
            let attempts = item.attempts + 1;
            let (reason, wait) = match &outcome {
                Ok(_) => (
                    "not completed yet (404 2901)".to_string(),
                    backoff(attempts),
                ),
                Err(ReconcileError::Api(ApiError::RateLimited { retry_at, .. })) => (
                    "rate limited".to_string(),
                    retry_at
                        .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                        .unwrap_or_else(|| backoff(attempts)),
                ),
                Err(ReconcileError::Api(e)) if e.is_missing_scope() => {
                    tracing::error!(error = %e, "the Zoom app lacks a scope the reconciler needs; fix the app's scopes");
                    (e.to_string(), Duration::from_secs(3600))
                }
                Err(e) => (e.to_string(), backoff(attempts)),
            };
            let give_up = attempts >= settings.max_attempts;
            let outcome_label = if give_up { "gave_up" } else { "retry" };
            metrics::counter!("zcc_fetch_total", "outcome" => outcome_label).increment(1);
            if give_up {
                tracing::warn!(engagement_id = ?item.engagement_id, attempts, %reason,
                    "giving up fetching an engagement; the next scheduled reconciliation covers it");
            } else {
                tracing::debug!(engagement_id = ?item.engagement_id, attempts, %reason, ?wait, "fetch postponed");
            }
            let retry_at =
                now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
            store.retry_fetch(&item, retry_at, &reason, give_up).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(engagement_id = ?item.engagement_id, error = %e, "cannot update the fetch queue");
    }
}

enum Fetched {
    Done,
    /// Zoom does not serve the engagement yet (it serves completed engagements only).
    NotYet,
}

async fn fetch(reconciler: &Reconciler, item: &FetchItem) -> Result<Fetched, ReconcileError> {
    let client = reconciler.client();
    let id = item.engagement_id.as_str();
    if item.wants & FETCH_ENGAGEMENT != 0 {
        match client.engagement(id).await {
            Ok(engagement) => {
                let merged = reconciler
                    .merge(Resource::Engagements, vec![Polled::Engagement(engagement)])
                    .await?;
                reconciler.note_fetch_repairs(&merged.summary.missed);
            }
            Err(e) if e.is_not_found() => return Ok(Fetched::NotYet),
            Err(e) => return Err(e.into()),
        }
    }
    if item.wants & FETCH_RECORDINGS != 0 {
        let mut pages = std::pin::pin!(client.engagement_recording_pages(id));
        while let Some(page) = pages.next().await {
            match page {
                Ok(recordings) => {
                    let items = recordings.into_iter().map(Polled::Recording).collect();
                    let merged = reconciler.merge(Resource::Recordings, items).await?;
                    reconciler.note_fetch_repairs(&merged.summary.missed);
                }
                Err(e) if e.is_not_found() => return Ok(Fetched::NotYet),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if item.wants & FETCH_VOICEMAILS != 0 {
        let query = InboxMessageQuery {
            engagement_id: Some(id.to_string()),
            page_size: Some(300),
            ..Default::default()
        };
        let mut pages = std::pin::pin!(client.inbox_message_pages(&query));
        while let Some(page) = pages.next().await {
            let messages = page?;
            let items = messages.into_iter().map(Polled::InboxMessage).collect();
            let merged = reconciler.merge(Resource::Voicemails, items).await?;
            reconciler.note_fetch_repairs(&merged.summary.missed);
        }
    }
    Ok(Fetched::Done)
}

/// 30 s, 1 min, 2 min, ... capped at an hour.
fn backoff(attempts: i64) -> Duration {
    let step = u32::try_from(attempts.max(1) - 1).unwrap_or(u32::MAX);
    backoff::exponential(Duration::from_secs(30), Duration::from_secs(3600), step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(100), Duration::from_secs(3600));
    }
}
