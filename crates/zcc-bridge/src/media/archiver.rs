//! The archiver: leases pending archive jobs, streams each file from Zoom into the archive, and records the
//! result. A download cut short resumes with a byte range on the same upload (or restarts when the server
//! ignores ranges); a file Zoom has not finished processing is waited for without using up attempts; failures
//! back off exponentially with jitter (or as `Retry-After` says) until `media.max_attempts`, then the job is
//! dead-lettered (`zcc-bridge media retry` or the API puts it back).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use zoom::api::{DownloadError, ZoomClient};

use super::{content_type_and_extension, object_key, Archive};
use crate::config::MediaConfig;
use crate::store::{now_ms, ArchivedObject, MediaRow, MediaSetback, Store};

/// Partial local files older than this belong to no running download (those write at least every read timeout).
const PARTIAL_MAX_AGE: Duration = Duration::from_secs(600);
const PARTIAL_CLEANUP_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct ArchiverSettings {
    pub concurrency: usize,
    pub max_attempts: u32,
    /// How long "not ready" answers are waited through before the job is dead-lettered.
    pub not_ready_give_up: Duration,
    /// First retry delay after a failure (doubles per attempt, jittered, capped by `retry_cap`).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// First wait after a "not ready" answer (doubles, capped by `not_ready_cap`).
    pub not_ready_base: Duration,
    pub not_ready_cap: Duration,
    /// How long a job is leased; renewed while it runs.
    pub lease: Duration,
    /// How often the queue is polled when idle.
    pub poll: Duration,
    /// Range resumes of one download before the attempt fails.
    pub max_resumes: u32,
}

impl ArchiverSettings {
    pub fn from_config(config: &MediaConfig) -> Self {
        Self {
            concurrency: config.concurrency,
            max_attempts: config.max_attempts,
            not_ready_give_up: Duration::from_secs(config.not_ready_give_up_seconds),
            retry_base: Duration::from_millis(config.retry_base_ms),
            not_ready_base: Duration::from_millis(config.not_ready_retry_ms),
            lease: Duration::from_secs(config.lease_seconds),
            ..Self::default()
        }
    }
}

impl Default for ArchiverSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            max_attempts: 12,
            not_ready_give_up: Duration::from_secs(72 * 3600),
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
            not_ready_base: Duration::from_secs(60),
            not_ready_cap: Duration::from_secs(1800),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            max_resumes: 5,
        }
    }
}

#[derive(Clone)]
pub struct Archiver {
    client: Arc<ZoomClient>,
    store: Arc<dyn Store>,
    archive: Archive,
    settings: ArchiverSettings,
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    Archived(ArchivedObject),
    /// Zoom has no file (yet): 404/409 or an empty body.
    NotReady(String),
    Failed {
        error: String,
        retry_after: Option<Duration>,
        /// Failures outside the file's control (our token) do not use up its attempts.
        counts: bool,
    },
    /// Shutdown: released, due again at once.
    Interrupted,
}

impl Archiver {
    pub fn new(
        client: Arc<ZoomClient>,
        store: Arc<dyn Store>,
        archive: Archive,
        settings: ArchiverSettings,
    ) -> Self {
        Self {
            client,
            store,
            archive,
            settings,
        }
    }

    /// Runs until `stop` turns true; downloads in flight are abandoned cleanly (partial files removed,
    /// multipart uploads aborted) and their jobs released for the next start.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(archive = %self.archive.url(), concurrency = self.settings.concurrency, "media archiver started");
        if self.store.backend() == "sqlite" {
            // This process owns the database: leases left by a crash belong to no one.
            match self.store.release_media_leases().await {
                Ok(n) if n > 0 => tracing::info!(
                    released = n,
                    "archive jobs interrupted by a crash are due again"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "releasing stale archive leases failed"),
            }
        }
        let mut running: JoinSet<()> = JoinSet::new();
        let mut last_cleanup: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if last_cleanup.is_none_or(|t| t.elapsed() > PARTIAL_CLEANUP_EVERY) {
                last_cleanup = Some(Instant::now());
                if let Err(e) = self.archive.clean_partial(PARTIAL_MAX_AGE).await {
                    tracing::warn!(error = %format!("{e:#}"), "cleaning partial files failed");
                }
            }
            // Listen before claiming, so jobs committed while we claim still wake us.
            let store = self.store.clone();
            let queued = store.signals().media_queued_signal();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                let lease = self.settings.lease.as_millis() as i64;
                match self.store.claim_media(now_ms(), lease, free as u32).await {
                    Ok(rows) => {
                        claimed = rows.len();
                        for row in rows {
                            let me = self.clone();
                            let stop = stop.clone();
                            running.spawn(async move { me.process(row, stop).await });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming archive jobs failed"),
                }
            }
            metrics::gauge!("zcc_media_in_flight").set(running.len() as f64);
            if claimed > 0 && claimed == free {
                // Possibly more due: claim again as soon as a slot frees up.
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = &mut queued, if free > claimed => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
        while running.join_next().await.is_some() {}
        metrics::gauge!("zcc_media_in_flight").set(0.0);
        tracing::info!("media archiver stopped");
    }

    /// One attempt at one job, and its bookkeeping.
    async fn process(&self, row: MediaRow, stop: watch::Receiver<bool>) {
        let started = Instant::now();
        let attempt = self.attempt(&row, stop).await;
        let now = now_ms();
        let kind = row.kind.as_str();
        let (result, settled) = match attempt {
            Attempt::Archived(object) => {
                metrics::counter!("zcc_media_archived_total", "kind" => kind).increment(1);
                metrics::counter!("zcc_media_archived_bytes_total").increment(object.bytes as u64);
                metrics::histogram!("zcc_media_archive_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(media_id = ?row.media_id, engagement_id = ?row.engagement_id, key = ?object.object_key,
                    bytes = object.bytes, seconds = started.elapsed().as_secs_f64(), "archived");
                (
                    self.store.media_archived(&row.media_id, &object, now).await,
                    true,
                )
            }
            Attempt::Interrupted => {
                let setback = MediaSetback {
                    retry_at: 0,
                    error: "interrupted by shutdown".into(),
                    counts: false,
                    not_ready_since: row.not_ready_since,
                    dead: false,
                };
                (
                    self.store.media_setback(&row.media_id, &setback, now).await,
                    false,
                )
            }
            Attempt::NotReady(reason) => {
                let since = row.not_ready_since.unwrap_or(now);
                let waited = Duration::from_millis((now - since).max(0) as u64);
                let dead = waited >= self.settings.not_ready_give_up;
                let delay = backoff(
                    self.settings.not_ready_base,
                    self.settings.not_ready_cap,
                    (waited.as_secs_f64() / self.settings.not_ready_base.as_secs_f64().max(0.001))
                        .log2()
                        .max(0.0) as u32,
                );
                metrics::counter!("zcc_media_not_ready_total", "kind" => kind).increment(1);
                let error = if dead {
                    format!(
                        "Zoom never made the file available ({reason}) in {} h",
                        waited.as_secs() / 3600
                    )
                } else {
                    format!("not ready yet: {reason}")
                };
                if dead {
                    metrics::counter!("zcc_media_dead_total", "kind" => kind).increment(1);
                    tracing::warn!(media_id = ?row.media_id, %error, "archive job dead-lettered");
                } else {
                    tracing::debug!(media_id = ?row.media_id, %reason, ?delay, "file not ready yet");
                }
                let setback = MediaSetback {
                    retry_at: now + delay.as_millis() as i64,
                    error,
                    counts: false,
                    not_ready_since: Some(since),
                    dead,
                };
                (
                    self.store.media_setback(&row.media_id, &setback, now).await,
                    dead,
                )
            }
            Attempt::Failed {
                error,
                retry_after,
                counts,
            } => {
                let attempts = row.attempts + i64::from(counts);
                let dead = counts && attempts >= i64::from(self.settings.max_attempts);
                let delay = retry_after.unwrap_or_else(|| {
                    backoff(
                        self.settings.retry_base,
                        self.settings.retry_cap,
                        attempts.max(1) as u32 - 1,
                    )
                });
                metrics::counter!("zcc_media_failures_total", "kind" => kind).increment(1);
                if dead {
                    metrics::counter!("zcc_media_dead_total", "kind" => kind).increment(1);
                    tracing::warn!(media_id = ?row.media_id, attempts, %error, "archive job dead-lettered");
                } else {
                    tracing::warn!(media_id = ?row.media_id, attempts, ?delay, %error, "archiving failed; will retry");
                }
                let setback = MediaSetback {
                    retry_at: now + delay.as_millis() as i64,
                    error,
                    counts,
                    not_ready_since: None,
                    dead,
                };
                (
                    self.store.media_setback(&row.media_id, &setback, now).await,
                    dead,
                )
            }
        };
        if let Err(e) = result {
            // The lease runs out and the job is attempted again: at worst a file is archived twice, same key.
            tracing::error!(media_id = ?row.media_id, error = %e, "recording the archive result failed");
        } else if settled {
            // The record now shows the file (or that it is gone for good): the delivery planner looks again.
            if let Err(e) = self
                .store
                .touch_watch(std::slice::from_ref(&row.engagement_id), now)
                .await
            {
                tracing::warn!(engagement_id = ?row.engagement_id, error = %e,
                    "marking the record for delivery failed; its next change delivers the file's link");
            }
        }
    }

    async fn attempt(&self, row: &MediaRow, mut stop: watch::Receiver<bool>) -> Attempt {
        let mut writer: Option<(super::archive::ObjectWriter, String, String)> = None;
        let mut total: Option<u64> = None;
        let mut resumes = 0u32;
        let mut last_renewal = Instant::now();
        // Each pass is one HTTP response; a cut or short body resumes from what was received.
        let outcome = 'download: loop {
            let from = writer.as_ref().map_or(0, |(w, _, _)| w.bytes());
            let download = tokio::select! {
                d = self.client.download(&row.source_url, from) => d,
                _ = stop.changed() => break 'download Attempt::Interrupted,
            };
            let download = match download {
                Ok(d) => d,
                Err(e) => break 'download classify(e),
            };
            if from > 0 && download.start != from {
                // The server ignored the range: start over.
                if let Some((w, _, _)) = writer.take() {
                    w.abort().await;
                }
            }
            if writer.is_none() {
                if download.total == Some(0) {
                    break 'download Attempt::NotReady("Zoom sent an empty file".into());
                }
                let (content_type, ext) = content_type_and_extension(
                    download.content_type.as_deref(),
                    row.kind,
                    row.channel.as_deref(),
                );
                let key = object_key(
                    row.kind,
                    &row.engagement_id,
                    &row.item_id,
                    row.item_time,
                    ext,
                );
                match self.archive.writer(&key, &content_type).await {
                    Ok(w) => writer = Some((w, key, content_type)),
                    Err(e) => {
                        break 'download Attempt::Failed {
                            error: format!("archive: {e:#}"),
                            retry_after: None,
                            counts: true,
                        }
                    }
                }
                total = download.total;
            }
            let Some((w, _, _)) = writer.as_mut() else {
                break 'download Attempt::Failed {
                    error: "internal: no writer".into(),
                    retry_after: None,
                    counts: true,
                };
            };
            let mut body = download.body;
            let cut = loop {
                let chunk = tokio::select! {
                    c = body.next() => c,
                    _ = stop.changed() => break 'download Attempt::Interrupted,
                };
                match chunk {
                    None => break None,
                    Some(Err(e)) => break Some(e.to_string()),
                    Some(Ok(bytes)) => {
                        if let Err(e) = w.write(bytes).await {
                            break 'download Attempt::Failed {
                                error: format!("archive: {e:#}"),
                                retry_after: None,
                                counts: true,
                            };
                        }
                        if total.is_some_and(|t| w.bytes() > t) {
                            break 'download Attempt::Failed {
                                error: format!(
                                    "Zoom sent more bytes than announced ({} > {})",
                                    w.bytes(),
                                    total.unwrap_or_default()
                                ),
                                retry_after: None,
                                counts: true,
                            };
                        }
                        if last_renewal.elapsed() > self.settings.lease / 3 {
                            last_renewal = Instant::now();
                            let until = now_ms() + self.settings.lease.as_millis() as i64;
                            if let Err(e) = self.store.renew_media_lease(&row.media_id, until).await
                            {
                                tracing::warn!(media_id = ?row.media_id, error = %e, "renewing the lease failed");
                            }
                        }
                    }
                }
            };
            let received = w.bytes();
            let short = total.is_some_and(|t| received < t);
            let problem = match (cut, short) {
                (Some(e), _) => format!("download cut at {received} bytes: {e}"),
                (None, true) => format!(
                    "download ended at {received} of {} bytes",
                    total.unwrap_or_default()
                ),
                (None, false) if received == 0 => {
                    break 'download Attempt::NotReady("Zoom sent an empty file".into())
                }
                (None, false) => {
                    let Some((w, key, content_type)) = writer.take() else {
                        break 'download Attempt::Failed {
                            error: "internal: no writer".into(),
                            retry_after: None,
                            counts: true,
                        };
                    };
                    break 'download match w.finish().await {
                        Ok(written) => Attempt::Archived(ArchivedObject {
                            object_key: key,
                            content_type,
                            sha256: written.sha256,
                            bytes: written.bytes as i64,
                        }),
                        Err(e) => Attempt::Failed {
                            error: format!("archive: {e:#}"),
                            retry_after: None,
                            counts: true,
                        },
                    };
                }
            };
            if resumes >= self.settings.max_resumes {
                break 'download Attempt::Failed {
                    error: problem,
                    retry_after: None,
                    counts: true,
                };
            }
            resumes += 1;
            metrics::counter!("zcc_media_resumes_total").increment(1);
            tracing::info!(media_id = ?row.media_id, %problem, resume = resumes, "resuming the download");
        };
        if let Some((w, _, _)) = writer.take() {
            w.abort().await;
        }
        outcome
    }
}

fn classify(error: DownloadError) -> Attempt {
    let text = error.to_string();
    match error {
        DownloadError::NotReady { .. } => Attempt::NotReady(text),
        DownloadError::RateLimited { retry_after } => Attempt::Failed {
            error: text,
            retry_after,
            counts: true,
        },
        DownloadError::Auth(_) => Attempt::Failed {
            error: text,
            retry_after: None,
            counts: false,
        },
        _ => Attempt::Failed {
            error: text,
            retry_after: None,
            counts: true,
        },
    }
}

/// `base * 2^step`, capped, with equal jitter so that jobs failing together do not retry together.
fn backoff(base: Duration, cap: Duration, step: u32) -> Duration {
    backoff::jittered(backoff::exponential(base, cap, step), 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_jitters_and_caps() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(3600);
        for step in 0..40 {
            let d = backoff(base, cap, step);
            let nominal = base.saturating_mul(1 << step.min(30)).min(cap);
            assert!(d >= nominal.mul_f64(0.5) && d <= nominal, "{step}: {d:?}");
        }
    }
}
