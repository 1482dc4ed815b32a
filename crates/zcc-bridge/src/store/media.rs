//! The media archive's table (`media_objects`): the outbox of archive jobs and what each archived file is.
//! `MediaRepo` is a supertrait of `Store`, implemented for both backends by `impl_media_repo!` (same SQL).

use async_trait::async_trait;
use serde::Serialize;

use super::Result;
use crate::core::{MediaKind, MediaSource};

/// The SQL columns of a `MediaRow`, in `MediaRow::from_row` order.
pub(crate) const MEDIA_COLUMNS: &str = "media_id, engagement_id, kind, item_id, source_url, item_time, channel, \
    state, CAST(attempts AS BIGINT), not_ready_since, retry_at, last_error, object_key, content_type, sha256, bytes, \
    created_at, updated_at, archived_at, deleted_at, CAST(link_generation AS BIGINT)";

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaRow {
    pub media_id: String,
    pub engagement_id: String,
    pub kind: MediaKind,
    pub item_id: String,
    #[serde(skip)]
    pub source_url: String,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub item_time: i64,
    pub channel: Option<String>,
    /// `pending`, `archived`, `dead`, `expired`.
    pub state: String,
    pub attempts: i64,
    /// First time Zoom answered "not ready" in the current wait (cleared when it answers).
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub not_ready_since: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub retry_at: i64,
    pub last_error: Option<String>,
    /// Key of the object, relative to the archive's root/prefix.
    pub object_key: Option<String>,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub updated_at: i64,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub archived_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub deleted_at: Option<i64>,
    /// Bumped to revoke the file's durable link (see `media::links`).
    #[serde(skip)]
    pub link_generation: i64,
}

pub const MEDIA_PENDING: &str = "pending";
pub const MEDIA_ARCHIVED: &str = "archived";
pub const MEDIA_DEAD: &str = "dead";
pub const MEDIA_EXPIRED: &str = "expired";
pub const MEDIA_STATES: [&str; 4] = [MEDIA_PENDING, MEDIA_ARCHIVED, MEDIA_DEAD, MEDIA_EXPIRED];

/// Where and what an archived file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedObject {
    pub object_key: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: i64,
}

/// What happened to an attempt that did not archive the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSetback {
    pub retry_at: i64,
    pub error: String,
    /// Counts toward `media.max_attempts` (failures do; "not ready yet" waits do not).
    pub counts: bool,
    /// Set while Zoom answers "not ready"; `None` clears it.
    pub not_ready_since: Option<i64>,
    /// Give up: the row goes to `dead` (replayable).
    pub dead: bool,
}

/// Filters of the media list.
#[derive(Debug, Clone, Default)]
pub struct MediaQuery {
    pub state: Option<String>,
    pub kind: Option<MediaKind>,
    pub engagement_id: Option<String>,
    /// Rows with `media_id` greater than this (ascending order).
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MediaStats {
    pub pending: i64,
    pub archived: i64,
    pub dead: i64,
    pub expired: i64,
    pub archived_bytes: i64,
}

#[async_trait]
pub trait MediaRepo: Send + Sync {
    /// Leases up to `limit` pending files whose retry time has come, for `lease_ms`.
    async fn claim_media(&self, now: i64, lease_ms: i64, limit: u32) -> Result<Vec<MediaRow>>;
    /// Releases every lease (start-up of the only process of an embedded database: no one else holds one).
    async fn release_media_leases(&self) -> Result<u64>;
    /// Extends a lease held by a long download.
    async fn renew_media_lease(&self, media_id: &str, until: i64) -> Result<()>;
    async fn media_archived(&self, media_id: &str, object: &ArchivedObject, now: i64)
        -> Result<()>;
    async fn media_setback(&self, media_id: &str, setback: &MediaSetback, now: i64) -> Result<()>;
    async fn media_row(&self, media_id: &str) -> Result<Option<MediaRow>>;
    async fn media_rows_for(&self, engagement_ids: &[String]) -> Result<Vec<MediaRow>>;
    async fn media_list(&self, query: &MediaQuery) -> Result<Vec<MediaRow>>;
    async fn media_stats(&self) -> Result<MediaStats>;
    /// Makes files due now with a fresh attempt budget: the given ids (any state but archived), or every dead
    /// file when `ids` is `None`. Returns how many.
    async fn media_requeue(&self, ids: Option<&[String]>, now: i64) -> Result<u64>;
    /// Archived files of `kinds` archived before `archived_before`, oldest first.
    async fn media_expiring(
        &self,
        kinds: &[MediaKind],
        archived_before: i64,
        limit: u32,
    ) -> Result<Vec<MediaRow>>;
    async fn media_expired(&self, media_id: &str, now: i64) -> Result<()>;
    /// Revokes durable links: of one file, or of every file when `media_id` is `None`. Returns how many.
    async fn media_revoke_links(&self, media_id: Option<&str>) -> Result<u64>;
    /// Ids `media migrate` has already copied to `target`.
    async fn media_copies(&self, target: &str) -> Result<Vec<String>>;
    async fn record_media_copy(
        &self,
        target: &str,
        media_id: &str,
        sha256: &str,
        now: i64,
    ) -> Result<()>;
    /// The value of a setting, storing `default` first if there is none (the first writer wins).
    async fn setting_or_insert(&self, name: &str, default: &str) -> Result<String>;
}

/// Dedups sources by media id (one statement must not touch a row twice) in id order (lock order).
pub(crate) fn unique_sources(sources: &[MediaSource]) -> Vec<(String, &MediaSource)> {
    let mut by_id: std::collections::BTreeMap<String, &MediaSource> = Default::default();
    for s in sources {
        by_id.insert(s.media_id(), s);
    }
    by_id.into_iter().collect()
}

pub(crate) fn kind_of(value: &str) -> Result<MediaKind> {
    MediaKind::parse(value).ok_or_else(|| {
        super::StoreError::Invalid(format!("unknown media kind {value:?} in media_objects"))
    })
}

/// `INSERT ... ON CONFLICT` of archive jobs: new files become pending; a pending or dead file whose URL, time or
/// channel changed takes the new values (a dead one with a new URL gets a fresh start); archived files are final.
macro_rules! upsert_media_sql {
    ($db:ty, $conn:expr, $sources:expr, $now:expr) => {{
        let unique = $crate::store::media::unique_sources($sources);
        for chunk in unique.chunks($crate::store::sql::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO media_objects (media_id, engagement_id, kind, item_id, source_url, item_time, channel, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (id, s)| {
                b.push_bind(id.as_str())
                    .push_bind(s.engagement_id.as_str())
                    .push_bind(s.kind.as_str())
                    .push_bind(s.item_id.as_str())
                    .push_bind(s.url.as_str())
                    .push_bind(s.item_time)
                    .push_bind(s.channel.as_deref())
                    .push_bind($now)
                    .push_bind($now);
            });
            qb.push(
                " ON CONFLICT (media_id) DO UPDATE SET
                    state = CASE WHEN media_objects.state = 'dead' AND media_objects.source_url <> excluded.source_url
                                 THEN 'pending' ELSE media_objects.state END,
                    attempts = CASE WHEN media_objects.state = 'dead' AND media_objects.source_url <> excluded.source_url
                                    THEN 0 ELSE media_objects.attempts END,
                    retry_at = CASE WHEN media_objects.state = 'dead' AND media_objects.source_url <> excluded.source_url
                                    THEN 0 ELSE media_objects.retry_at END,
                    source_url = excluded.source_url, item_time = excluded.item_time, channel = excluded.channel,
                    updated_at = excluded.updated_at
                 WHERE media_objects.state IN ('pending', 'dead') AND (media_objects.source_url <> excluded.source_url
                    OR media_objects.item_time <> excluded.item_time
                    OR media_objects.channel IS DISTINCT FROM excluded.channel)",
            );
            qb.build().execute(&mut *$conn).await?;
        }
        Ok(())
    }};
}
pub(crate) use upsert_media_sql;

macro_rules! impl_media_repo {
    ($store:ty, $db:ty, $backend:literal) => {
        fn media_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::store::Result<$crate::store::media::MediaRow> {
            use sqlx::Row;
            let kind: String = row.try_get(2)?;
            Ok($crate::store::media::MediaRow {
                media_id: row.try_get(0)?,
                engagement_id: row.try_get(1)?,
                kind: $crate::store::media::kind_of(&kind)?,
                item_id: row.try_get(3)?,
                source_url: row.try_get(4)?,
                item_time: row.try_get(5)?,
                channel: row.try_get(6)?,
                state: row.try_get(7)?,
                attempts: row.try_get(8)?,
                not_ready_since: row.try_get(9)?,
                retry_at: row.try_get(10)?,
                last_error: row.try_get(11)?,
                object_key: row.try_get(12)?,
                content_type: row.try_get(13)?,
                sha256: row.try_get(14)?,
                bytes: row.try_get(15)?,
                created_at: row.try_get(16)?,
                updated_at: row.try_get(17)?,
                archived_at: row.try_get(18)?,
                deleted_at: row.try_get(19)?,
                link_generation: row.try_get(20)?,
            })
        }

        fn media_rows(rows: Vec<<$db as sqlx::Database>::Row>) -> $crate::store::Result<Vec<$crate::store::media::MediaRow>> {
            rows.iter().map(media_from_row).collect()
        }

        #[async_trait::async_trait]
        impl $crate::store::media::MediaRepo for $store {
            async fn claim_media(&self, now: i64, lease_ms: i64, limit: u32) -> $crate::store::Result<Vec<$crate::store::media::MediaRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE media_objects SET leased_until = ");
                qb.push_bind(now.saturating_add(lease_ms))
                    .push(" WHERE media_id IN (SELECT media_id FROM media_objects WHERE state = 'pending' AND retry_at <= ")
                    .push_bind(now)
                    .push(" AND leased_until <= ")
                    .push_bind(now)
                    .push(" ORDER BY retry_at, media_id LIMIT ")
                    .push_bind(i64::from(limit));
                if $backend == "postgres" {
                    qb.push(" FOR UPDATE SKIP LOCKED");
                }
                qb.push(") RETURNING ").push($crate::store::media::MEDIA_COLUMNS);
                media_rows(qb.build().fetch_all(self.writer()).await?)
            }

            async fn release_media_leases(&self) -> $crate::store::Result<u64> {
                let done = sqlx::query("UPDATE media_objects SET leased_until = 0 WHERE state = 'pending' AND leased_until > 0")
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn renew_media_lease(&self, media_id: &str, until: i64) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE media_objects SET leased_until = ");
                qb.push_bind(until).push(" WHERE media_id = ").push_bind(media_id).push(" AND state = 'pending'");
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn media_archived(
                &self,
                media_id: &str,
                object: &$crate::store::media::ArchivedObject,
                now: i64,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE media_objects SET state = 'archived', leased_until = 0, last_error = NULL, not_ready_since = NULL, object_key = ",
                );
                qb.push_bind(object.object_key.as_str())
                    .push(", content_type = ")
                    .push_bind(object.content_type.as_str())
                    .push(", sha256 = ")
                    .push_bind(object.sha256.as_str())
                    .push(", bytes = ")
                    .push_bind(object.bytes)
                    .push(", archived_at = ")
                    .push_bind(now)
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(" WHERE media_id = ")
                    .push_bind(media_id);
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn media_setback(
                &self,
                media_id: &str,
                setback: &$crate::store::media::MediaSetback,
                now: i64,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE media_objects SET leased_until = 0, attempts = attempts + ");
                qb.push_bind(i64::from(setback.counts))
                    .push(", retry_at = ")
                    .push_bind(setback.retry_at)
                    .push(", last_error = ")
                    .push_bind(setback.error.as_str())
                    .push(", not_ready_since = ")
                    .push_bind(setback.not_ready_since)
                    .push(", state = ")
                    .push_bind(if setback.dead { $crate::store::media::MEDIA_DEAD } else { $crate::store::media::MEDIA_PENDING })
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(" WHERE media_id = ")
                    .push_bind(media_id)
                    .push(" AND state = 'pending'");
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn media_row(&self, media_id: &str) -> $crate::store::Result<Option<$crate::store::media::MediaRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT ");
                qb.push($crate::store::media::MEDIA_COLUMNS)
                    .push(" FROM media_objects WHERE media_id = ")
                    .push_bind(media_id);
                qb.build().fetch_optional(self.reader()).await?.as_ref().map(media_from_row).transpose()
            }

            async fn media_rows_for(&self, engagement_ids: &[String]) -> $crate::store::Result<Vec<$crate::store::media::MediaRow>> {
                let mut out = Vec::new();
                for chunk in engagement_ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT ");
                    qb.push($crate::store::media::MEDIA_COLUMNS).push(" FROM media_objects WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(")");
                    out.extend(media_rows(qb.build().fetch_all(self.reader()).await?)?);
                }
                Ok(out)
            }

            async fn media_list(&self, q: &$crate::store::media::MediaQuery) -> $crate::store::Result<Vec<$crate::store::media::MediaRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT ");
                qb.push($crate::store::media::MEDIA_COLUMNS).push(" FROM media_objects WHERE 1 = 1");
                if let Some(state) = &q.state {
                    qb.push(" AND state = ").push_bind(state.clone());
                }
                if let Some(kind) = q.kind {
                    qb.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(id) = &q.engagement_id {
                    qb.push(" AND engagement_id = ").push_bind(id.clone());
                }
                if let Some(after) = &q.after {
                    qb.push(" AND media_id > ").push_bind(after.clone());
                }
                qb.push(" ORDER BY media_id LIMIT ").push_bind(i64::from(q.limit));
                media_rows(qb.build().fetch_all(self.reader()).await?)
            }

            async fn media_stats(&self) -> $crate::store::Result<$crate::store::media::MediaStats> {
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT state, COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM media_objects GROUP BY state",
                )
                .fetch_all(self.reader())
                .await?;
                let mut stats = $crate::store::media::MediaStats::default();
                for (state, count, bytes) in rows {
                    match state.as_str() {
                        "pending" => stats.pending = count,
                        "archived" => {
                            stats.archived = count;
                            stats.archived_bytes = bytes;
                        }
                        "dead" => stats.dead = count,
                        "expired" => stats.expired = count,
                        _ => {}
                    }
                }
                Ok(stats)
            }

            async fn media_requeue(&self, ids: Option<&[String]>, now: i64) -> $crate::store::Result<u64> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE media_objects SET state = 'pending', attempts = 0, retry_at = 0, leased_until = 0, not_ready_since = NULL, updated_at = ",
                );
                qb.push_bind(now);
                match ids {
                    None => {
                        qb.push(" WHERE state = 'dead'");
                    }
                    Some(ids) => {
                        if ids.is_empty() {
                            return Ok(0);
                        }
                        qb.push(" WHERE state IN ('pending', 'dead') AND media_id IN (");
                        let mut list = qb.separated(", ");
                        for id in ids {
                            list.push_bind(id.as_str());
                        }
                        qb.push(")");
                    }
                }
                Ok(qb.build().execute(self.writer()).await?.rows_affected())
            }

            async fn media_expiring(
                &self,
                kinds: &[$crate::core::MediaKind],
                archived_before: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::media::MediaRow>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT ");
                qb.push($crate::store::media::MEDIA_COLUMNS)
                    .push(" FROM media_objects WHERE state = 'archived' AND archived_at < ")
                    .push_bind(archived_before)
                    .push(" AND kind IN (");
                let mut list = qb.separated(", ");
                for kind in kinds {
                    list.push_bind(kind.as_str());
                }
                qb.push(") ORDER BY archived_at LIMIT ").push_bind(i64::from(limit));
                media_rows(qb.build().fetch_all(self.reader()).await?)
            }

            async fn media_expired(&self, media_id: &str, now: i64) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE media_objects SET state = 'expired', deleted_at = ");
                qb.push_bind(now)
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(" WHERE media_id = ")
                    .push_bind(media_id)
                    .push(" AND state = 'archived'");
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn media_revoke_links(&self, media_id: Option<&str>) -> $crate::store::Result<u64> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE media_objects SET link_generation = link_generation + 1",
                );
                if let Some(id) = media_id {
                    qb.push(" WHERE media_id = ").push_bind(id);
                }
                Ok(qb.build().execute(self.writer()).await?.rows_affected())
            }

            async fn media_copies(&self, target: &str) -> $crate::store::Result<Vec<String>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT media_id FROM media_copies WHERE target = ");
                qb.push_bind(target);
                Ok(qb.build_query_scalar().fetch_all(self.reader()).await?)
            }

            async fn record_media_copy(
                &self,
                target: &str,
                media_id: &str,
                sha256: &str,
                now: i64,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO media_copies (target, media_id, sha256, copied_at) ");
                qb.push_values([()], |mut b, _| {
                    b.push_bind(target).push_bind(media_id).push_bind(sha256).push_bind(now);
                });
                qb.push(" ON CONFLICT (target, media_id) DO UPDATE SET sha256 = excluded.sha256, copied_at = excluded.copied_at");
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn setting_or_insert(&self, name: &str, default: &str) -> $crate::store::Result<String> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO settings (name, value) ");
                qb.push_values([()], |mut b, _| {
                    b.push_bind(name).push_bind(default);
                });
                qb.push(" ON CONFLICT (name) DO NOTHING");
                qb.build().execute(self.writer()).await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT value FROM settings WHERE name = ");
                qb.push_bind(name);
                Ok(qb.build_query_scalar().fetch_one(self.writer()).await?)
            }
        }
    };
}
pub(crate) use impl_media_repo;
