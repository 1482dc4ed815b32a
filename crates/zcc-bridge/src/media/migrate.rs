//! `zcc-bridge media migrate --to URL`: copies every archived file from the configured archive to another one
//! (disk to S3, S3 to Azure, ...), streaming, and checks each copy's SHA-256 against the one recorded when it
//! was archived. Verified copies are recorded per target, so an interrupted migration resumes where it stopped.
//! Switch `storage.media` to the new URL once it reports no failures.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;

use super::Archive;
use crate::store::{now_ms, MediaQuery, MediaRow, Store};

#[derive(Debug, Default, Clone, Serialize)]
pub struct MigrateReport {
    pub copied: u64,
    pub copied_bytes: u64,
    /// Already copied by an earlier run.
    pub skipped: u64,
    pub failed: u64,
    pub failures: Vec<String>,
}

/// Copies one archived file and verifies it; returns the bytes copied.
async fn copy_one(from: &Archive, to: &Archive, row: &MediaRow) -> anyhow::Result<u64> {
    let (Some(key), Some(expected)) = (&row.object_key, &row.sha256) else {
        anyhow::bail!("{} is archived without a key or checksum", row.media_id);
    };
    let content_type = row
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let source = from.get(key, None).await?;
    let mut body = source.into_stream();
    let mut writer = to.writer(key, content_type).await?;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                writer.abort().await;
                return Err(e).with_context(|| format!("reading {key}"));
            }
        };
        if let Err(e) = writer.write(chunk).await {
            writer.abort().await;
            return Err(e);
        }
    }
    let written = writer.finish().await?;
    if &written.sha256 != expected || Some(written.bytes as i64) != row.bytes {
        // The copy is not the file that was archived (corruption at the source): remove it, report it.
        to.delete(key).await?;
        anyhow::bail!(
            "{}: checksum mismatch (archived {expected}, {} bytes; read {}, {} bytes)",
            row.media_id,
            row.bytes.unwrap_or(-1),
            written.sha256,
            written.bytes
        );
    }
    Ok(written.bytes)
}

/// Runs the migration with `concurrency` copies at a time; `progress` is called after each file.
pub async fn migrate(
    store: Arc<dyn Store>,
    from: Archive,
    to: Archive,
    concurrency: usize,
    progress: impl Fn(&MigrateReport),
) -> anyhow::Result<MigrateReport> {
    anyhow::ensure!(
        from.url() != to.url(),
        "the target is the configured archive itself"
    );
    let target = to.url().to_string();
    let done: HashSet<String> = store.media_copies(&target).await?.into_iter().collect();
    let mut report = MigrateReport::default();
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .media_list(&MediaQuery {
                state: Some(crate::store::media::MEDIA_ARCHIVED.into()),
                after: after.clone(),
                limit: 500,
                ..Default::default()
            })
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.media_id.clone());
        let listed = rows.len();
        let todo: Vec<MediaRow> = rows
            .into_iter()
            .filter(|r| !done.contains(&r.media_id))
            .collect();
        report.skipped += (listed - todo.len()) as u64;
        let mut copies = futures_util::stream::iter(todo)
            .map(|row| {
                let (from, to, store, target) = (&from, &to, &store, &target);
                async move {
                    let result = match copy_one(from, to, &row).await {
                        Ok(n) => store
                            .record_media_copy(
                                target,
                                &row.media_id,
                                row.sha256.as_deref().unwrap_or(""),
                                now_ms(),
                            )
                            .await
                            .map(|()| n)
                            .map_err(anyhow::Error::from),
                        Err(e) => Err(e),
                    };
                    (row, result)
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((row, result)) = copies.next().await {
            match result {
                Ok(n) => {
                    report.copied += 1;
                    report.copied_bytes += n;
                }
                Err(e) => {
                    tracing::error!(media_id = ?row.media_id, error = %format!("{e:#}"), "copy failed");
                    report.failed += 1;
                    report.failures.push(format!("{e:#}"));
                }
            }
            progress(&report);
        }
    }
    Ok(report)
}
