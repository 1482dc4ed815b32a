//! Retention: archived files of a kind with `media.retention_days.*` set are deleted from the archive that
//! many days after they were archived. Each deletion is logged and the record shows the file as `expired`
//! (with `deleted_at`). One replica applies the policy at a time (the scheduled-work lock).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Archive;
use crate::config::RetentionConfig;
use crate::core::media::RetentionClass;
use crate::core::MediaKind;
use crate::store::{now_ms, Store};

const BATCH: u32 = 500;

/// The kinds whose files are older than their retention at `now`, grouped by cut-off (epoch ms).
fn cutoffs(policy: &RetentionConfig, now: i64) -> Vec<(i64, Vec<MediaKind>)> {
    let mut out: Vec<(i64, Vec<MediaKind>)> = Vec::new();
    for kind in MediaKind::ALL {
        let days = match kind.retention_class() {
            RetentionClass::Recordings => policy.recordings,
            RetentionClass::Transcripts => policy.transcripts,
            RetentionClass::Voicemails => policy.voicemails,
        };
        if let Some(days) = days {
            let cutoff = now - i64::from(days) * 86_400_000;
            match out.iter_mut().find(|(c, _)| *c == cutoff) {
                Some((_, kinds)) => kinds.push(kind),
                None => out.push((cutoff, vec![kind])),
            }
        }
    }
    out
}

/// Applies the policy once; returns how many files were deleted.
pub async fn apply_once(
    store: &dyn Store,
    archive: &Archive,
    policy: &RetentionConfig,
) -> anyhow::Result<u64> {
    let mut deleted = 0;
    for (cutoff, kinds) in cutoffs(policy, now_ms()) {
        loop {
            let rows = store.media_expiring(&kinds, cutoff, BATCH).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                if let Some(key) = &row.object_key {
                    archive.delete(key).await?;
                }
                store.media_expired(&row.media_id, now_ms()).await?;
                deleted += 1;
                metrics::counter!("zcc_media_expired_total", "kind" => row.kind.as_str())
                    .increment(1);
                tracing::info!(media_id = ?row.media_id, engagement_id = ?row.engagement_id,
                    key = row.object_key.as_deref().unwrap_or(""), bytes = row.bytes.unwrap_or(0),
                    "retention: deleted archived file");
            }
        }
    }
    Ok(deleted)
}

/// Applies the policy every `every` until `stop`.
pub async fn run(
    store: Arc<dyn Store>,
    archive: Archive,
    policy: RetentionConfig,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match store.try_exclusive("media-retention").await {
            Ok(Some(lock)) => {
                if let Err(e) = apply_once(&*store, &archive, &policy).await {
                    tracing::error!(error = %format!("{e:#}"), "applying the media retention policy failed");
                }
                lock.release().await;
            }
            Ok(None) => tracing::debug!("another replica applies the retention policy"),
            Err(e) => tracing::error!(error = %e, "retention lock failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_grouped_by_their_class_cutoff() {
        let policy = RetentionConfig {
            recordings: Some(30),
            transcripts: Some(30),
            voicemails: None,
        };
        let c = cutoffs(&policy, 100 * 86_400_000);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, 70 * 86_400_000);
        assert!(c[0].1.contains(&MediaKind::Recording));
        assert!(c[0].1.contains(&MediaKind::EmailTranscript));
        assert!(!c[0].1.contains(&MediaKind::Voicemail));
        assert!(cutoffs(&RetentionConfig::default(), 0).is_empty());
    }
}
