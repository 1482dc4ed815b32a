//! The media archive: every recording, transcript and voicemail a record points at is fetched from Zoom (its
//! URLs need the access token) and streamed into the customer's object store; records then carry a signed,
//! expiring link to the archived copy.
//!
//! - `archive`: the object store (local disk, S3, Azure) and bounded-memory streaming writes.
//! - `archiver`: the worker that leases archive jobs (`media_objects`), downloads and stores.
//! - `links`: signed `/media/...` links.
//! - `retention`: optional deletion after N days. `migrate`: copy the archive to another store.

pub mod archive;
pub mod archiver;
pub mod links;
pub mod migrate;
pub mod retention;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};

pub use archive::{Archive, ArchiveUrl};
pub use links::LinkSigner;

use crate::config::{Config, LinkMode};
use crate::core::record::format_ms;
use crate::core::{EngagementRecord, MediaKind, MediaView};
use crate::store::{MediaRow, Store};

/// Name of the setting that holds the generated link-signing key.
const LINK_KEY_SETTING: &str = "media_link_key";

/// `2026/11/21/{engagement_id}/{item_id}.mp3`: dated by the file's own time (UTC), readable, and the same
/// every time the same file is archived.
pub fn object_key(
    kind: MediaKind,
    engagement_id: &str,
    item_id: &str,
    item_time: i64,
    ext: &str,
) -> String {
    let date = DateTime::<Utc>::from_timestamp_millis(item_time).unwrap_or_default();
    let name = match kind {
        MediaKind::Recording => format!("{}.{ext}", segment(item_id)),
        other => format!(
            "{}.{}.{ext}",
            segment(item_id),
            other.as_str().replace('_', "-")
        ),
    };
    format!(
        "{:04}/{:02}/{:02}/{}/{name}",
        date.year(),
        date.month(),
        date.day(),
        segment(engagement_id)
    )
}

/// A path segment made of safe characters only (ids are Zoom's URL-safe ids; anything else is replaced).
fn segment(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

/// The content type to store and the file extension, from what Zoom sent and what the file is.
/// ❓ Zoom documents neither the recordings' nor the transcripts' content types; unknown or generic types
/// (`application/octet-stream`) fall back to the kind's usual format.
pub fn content_type_and_extension(
    sent: Option<&str>,
    kind: MediaKind,
    channel: Option<&str>,
) -> (String, &'static str) {
    let sent = sent
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let known = match sent.as_str() {
        "audio/mpeg" | "audio/mp3" => Some("mp3"),
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => Some("m4a"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
        "audio/ogg" => Some("ogg"),
        "video/mp4" => Some("mp4"),
        "video/webm" => Some("webm"),
        "text/vtt" => Some("vtt"),
        "text/plain" => Some("txt"),
        "text/html" => Some("html"),
        "text/csv" => Some("csv"),
        "application/json" => Some("json"),
        "application/pdf" => Some("pdf"),
        _ => None,
    };
    if let Some(ext) = known {
        return (sent, ext);
    }
    let (content_type, ext) = match kind {
        MediaKind::Recording if channel == Some("video") => ("video/mp4", "mp4"),
        MediaKind::Recording | MediaKind::Voicemail => ("audio/mpeg", "mp3"),
        _ => ("text/plain", "txt"),
    };
    (content_type.to_string(), ext)
}

/// Renders the archive's state into records: the `media` views, with links.
#[derive(Clone)]
pub struct MediaLinks {
    archive: Archive,
    signer: LinkSigner,
    mode: LinkMode,
}

impl MediaLinks {
    /// Opens the archive and the link signer (the key from `media.link_secret`, or generated once and kept in
    /// the database).
    /// `listening` is the bound address (links default to it when `media.public_url` is unset).
    pub async fn open(
        config: &Config,
        store: &dyn Store,
        listening: SocketAddr,
    ) -> anyhow::Result<Self> {
        let archive = Archive::open(&config.storage.media, &config.storage, &config.media)?;
        let key = match &config.media.link_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                let generated = hex::encode(rand::random::<[u8; 32]>());
                let key = store
                    .setting_or_insert(LINK_KEY_SETTING, &generated)
                    .await?;
                key.into_bytes()
            }
        };
        let base = config.media.public_url.clone().unwrap_or_else(|| {
            let mut addr = listening;
            if addr.ip().is_unspecified() {
                // Listening on every interface: name the machine itself (set media.public_url for others).
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        });
        let mut mode = config.media.links;
        if mode == LinkMode::Presigned && archive.is_local() {
            tracing::warn!(
                "media.links = presigned needs an S3 or Azure archive; handing out bridge links"
            );
            mode = LinkMode::Bridge;
        }
        Ok(Self {
            archive,
            signer: LinkSigner::new(
                &key,
                &base,
                Duration::from_secs(config.media.link_ttl_seconds),
            ),
            mode,
        })
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn signer(&self) -> &LinkSigner {
        &self.signer
    }

    /// The public view of one file (with a fresh link when it is archived).
    pub async fn view(&self, row: &MediaRow) -> MediaView {
        let now = crate::store::now_ms();
        let (link, expires) = if row.state == crate::store::media::MEDIA_ARCHIVED {
            match (self.mode, &row.object_key) {
                (LinkMode::Presigned, Some(key)) => {
                    match self.archive.presigned_url(key, self.signer.ttl()).await {
                        Ok(url) => (url, Some(now + self.signer.ttl().as_millis() as i64)),
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), media_id = ?row.media_id, "presigning failed");
                            (None, None)
                        }
                    }
                }
                _ => {
                    let (url, expires) = self.signer.link(row.kind, &row.item_id, now / 1000);
                    (Some(url), Some(expires * 1000))
                }
            }
        } else {
            (None, None)
        };
        MediaView {
            state: row.state.clone(),
            sha256: row.sha256.clone(),
            bytes: row.bytes,
            content_type: row.content_type.clone(),
            link,
            link_expires_at: expires.and_then(format_ms),
            archived_at: row.archived_at.and_then(format_ms),
            deleted_at: row.deleted_at.and_then(format_ms),
            attempts: row.attempts,
            error: (row.state != crate::store::media::MEDIA_ARCHIVED)
                .then(|| row.last_error.clone())
                .flatten(),
        }
    }

    /// Fills in the `media` views of records from the archive's rows.
    pub async fn attach(
        &self,
        store: &dyn Store,
        records: &mut [EngagementRecord],
    ) -> crate::store::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = records.iter().map(|r| r.engagement_id.clone()).collect();
        let rows = store.media_rows_for(&ids).await?;
        let mut views: HashMap<(MediaKind, String), MediaView> = HashMap::with_capacity(rows.len());
        for row in &rows {
            views.insert((row.kind, row.item_id.clone()), self.view(row).await);
        }
        for record in records.iter_mut() {
            record.attach_media(|kind, id| views.get(&(kind, id.to_string())).cloned());
        }
        Ok(())
    }
}

/// Shared handle used by the HTTP layer.
pub type SharedLinks = Arc<MediaLinks>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_readable_and_safe() {
        let t = 1_795_251_600_000; // 2026-11-21T09:00:00Z
        assert_eq!(
            object_key(MediaKind::Recording, "W_VATT", "rec-1", t, "mp3"),
            "2026/11/21/W_VATT/rec-1.mp3"
        );
        assert_eq!(
            object_key(MediaKind::RecordingTranscript, "E", "rec-1", t, "vtt"),
            "2026/11/21/E/rec-1.recording-transcript.vtt"
        );
        assert_eq!(
            object_key(MediaKind::Voicemail, "../E", "a/b", t, "mp3"),
            "2026/11/21/___E/a_b.voicemail.mp3"
        );
    }

    #[test]
    fn content_types_fall_back_to_the_kind() {
        assert_eq!(
            content_type_and_extension(Some("audio/mpeg"), MediaKind::Recording, None),
            ("audio/mpeg".to_string(), "mp3")
        );
        assert_eq!(
            content_type_and_extension(
                Some("application/octet-stream"),
                MediaKind::Recording,
                Some("video")
            ),
            ("video/mp4".to_string(), "mp4")
        );
        assert_eq!(
            content_type_and_extension(
                Some("text/vtt; charset=utf-8"),
                MediaKind::RecordingTranscript,
                None
            ),
            ("text/vtt".to_string(), "vtt")
        );
        assert_eq!(
            content_type_and_extension(None, MediaKind::MessagingTranscript, None),
            ("text/plain".to_string(), "txt")
        );
    }
}
