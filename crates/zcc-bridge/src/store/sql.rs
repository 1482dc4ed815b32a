//! The SQL both backends share, written once. `impl_sql_store!` implements `BatchTx` for a backend's connection
//! wrapper and `Store` for its store type; placeholders come from `QueryBuilder`, so the only differences between
//! the backends are the row-locking suffix and the pools (SQLite: one writer and read-only readers; Postgres: one
//! pool).
//!
//! The store type provides `writer()`, `reader()`, `migrator()`, `committer_count()` and `shutdown()`.

/// Rows per multi-row statement: far below SQLite's and Postgres's bind-parameter limits.
pub(crate) const CHUNK: usize = 1000;

macro_rules! impl_sql_store {
    ($store:ty, $conn:ident, $db:ty, $backend:literal, $lock_suffix:literal) => {
        /// A connection (or an open transaction on one) that the shared algorithms write through.
        pub(crate) struct $conn<'c>(&'c mut <$db as sqlx::Database>::Connection);

        impl $crate::store::BatchTx for $conn<'_> {
            async fn insert_events(
                &mut self,
                events: &[&$crate::store::NewEvent],
            ) -> $crate::store::Result<std::collections::HashMap<String, i64>> {
                let mut inserted = std::collections::HashMap::new();
                for chunk in events.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (dedup_key, source, event_type, engagement_id, event_ts, received_at, request_id, raw, conversation) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.dedup_key.as_str())
                            .push_bind(e.source_column())
                            .push_bind(e.event_type.as_str())
                            .push_bind(e.engagement_id.as_deref())
                            .push_bind(e.event_ts)
                            .push_bind(e.received_at)
                            .push_bind(e.request_id.as_deref())
                            .push_bind(e.raw.as_ref())
                            .push_bind(e.conversation.as_deref());
                    });
                    qb.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key");
                    let rows: Vec<(i64, String)> = qb.build_query_as().fetch_all(&mut *self.0).await?;
                    inserted.extend(rows.into_iter().map(|(id, key)| (key, id)));
                }
                Ok(inserted)
            }

            async fn record_duplicates(
                &mut self,
                events: &[&$crate::store::NewEvent],
            ) -> $crate::store::Result<std::collections::HashMap<String, i64>> {
                let mut ids = std::collections::HashMap::new();
                // One counter update per redelivery keeps `duplicate_count` exact when a batch holds repeats.
                for e in events {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE events SET duplicate_count = duplicate_count + 1, last_duplicate_at = ",
                    );
                    qb.push_bind(e.received_at)
                        .push(" WHERE dedup_key = ")
                        .push_bind(e.dedup_key.as_str())
                        .push(" RETURNING id");
                    let id: i64 = qb.build_query_scalar().fetch_one(&mut *self.0).await?;
                    ids.insert(e.dedup_key.clone(), id);
                }
                for chunk in events.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO duplicates (event_id, source, received_at, request_id) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(ids.get(&e.dedup_key).copied().unwrap_or_default())
                            .push_bind(e.source_column())
                            .push_bind(e.received_at)
                            .push_bind(e.request_id.as_deref());
                    });
                    qb.build().execute(&mut *self.0).await?;
                }
                Ok(ids)
            }

            async fn insert_quarantine(&mut self, q: &$crate::store::NewQuarantine) -> $crate::store::Result<i64> {
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("INSERT INTO quarantine (source, received_at, request_id, reason, raw) ");
                qb.push_values([q], |mut b, q| {
                    b.push_bind(q.source_column())
                        .push_bind(q.received_at)
                        .push_bind(q.request_id.as_deref())
                        .push_bind(q.reason.as_str())
                        .push_bind(q.raw.as_ref());
                });
                qb.push(" RETURNING id");
                Ok(qb.build_query_scalar().fetch_one(&mut *self.0).await?)
            }

            async fn resolve_quarantine(
                &mut self,
                quarantine_id: i64,
                event_id: i64,
                at: i64,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE quarantine SET resolved_event_id = ");
                qb.push_bind(event_id)
                    .push(", resolved_at = ")
                    .push_bind(at)
                    .push(" WHERE id = ")
                    .push_bind(quarantine_id);
                qb.build().execute(&mut *self.0).await?;
                Ok(())
            }

            async fn lock_engagements(
                &mut self,
                ids: &[&str],
            ) -> $crate::store::Result<std::collections::BTreeMap<String, $crate::core::EngagementState>> {
                let mut out = std::collections::BTreeMap::new();
                for chunk in ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("SELECT engagement_id, state FROM engagements WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(") ORDER BY engagement_id");
                    qb.push($lock_suffix);
                    let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&mut *self.0).await?;
                    for (id, json) in rows {
                        let state = $crate::store::decode_state(&id, &json)?;
                        out.insert(id, state);
                    }
                }
                Ok(out)
            }

            async fn insert_engagements(
                &mut self,
                rows: &[$crate::store::EngagementRow],
            ) -> $crate::store::Result<std::collections::BTreeSet<String>> {
                let mut inserted = std::collections::BTreeSet::new();
                for chunk in rows.chunks($crate::store::sql::CHUNK) {
                    let mut qb = $crate::store::insert_engagement_rows::<$db>(chunk);
                    qb.push(" ON CONFLICT (engagement_id) DO NOTHING RETURNING engagement_id");
                    let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *self.0).await?;
                    inserted.extend(ids);
                }
                Ok(inserted)
            }

            async fn update_engagements(&mut self, rows: &[$crate::store::EngagementRow]) -> $crate::store::Result<()> {
                // An upsert of rows this transaction holds locked: one statement, same SQL on both backends.
                for chunk in rows.chunks($crate::store::sql::CHUNK) {
                    let mut qb = $crate::store::insert_engagement_rows::<$db>(chunk);
                    qb.push(
                        " ON CONFLICT (engagement_id) DO UPDATE SET state = excluded.state, sort_ts = excluded.sort_ts,
                          channel = excluded.channel, direction = excluded.direction, updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *self.0).await?;
                }
                Ok(())
            }

            async fn upsert_media(
                &mut self,
                sources: &[$crate::core::MediaSource],
                now: i64,
            ) -> $crate::store::Result<()> {
                $crate::store::media::upsert_media_sql!($db, self.0, sources, now)
            }

            async fn last_event_id(&mut self, engagement_id: &str) -> $crate::store::Result<Option<i64>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT MAX(id) FROM events WHERE engagement_id = ");
                qb.push_bind(engagement_id);
                Ok(qb.build_query_scalar().fetch_one(&mut *self.0).await?)
            }

            async fn touch_watch(&mut self, engagement_ids: &[String], now: i64, due: i64) -> $crate::store::Result<()> {
                $crate::store::delivery::touch_watch_sql!($db, self.0, engagement_ids, now, due)
            }

            async fn record_activity(
                &mut self,
                rows: &[$crate::store::activity::ActivityRow],
            ) -> $crate::store::Result<(Vec<i64>, Vec<(String, i64)>)> {
                $crate::store::activity::record_activity_sql!($db, self.0, rows)
            }

            async fn touch_presence(&mut self, engagement_ids: &[String], now: i64) -> $crate::store::Result<()> {
                for chunk in engagement_ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO presence_watch (engagement_id, changed_at) ");
                    qb.push_values(chunk, |mut b, id| {
                        b.push_bind(id.as_str()).push_bind(now);
                    });
                    // Strictly increasing per engagement, so the worker's "unchanged since I read it" test is exact.
                    qb.push(
                        " ON CONFLICT (engagement_id) DO UPDATE SET changed_at = CASE
                          WHEN excluded.changed_at > presence_watch.changed_at THEN excluded.changed_at
                          ELSE presence_watch.changed_at + 1 END",
                    );
                    qb.build().execute(&mut *self.0).await?;
                }
                Ok(())
            }

            async fn dequeue_projection(&mut self, event_ids: &[i64]) -> $crate::store::Result<()> {
                for chunk in event_ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM projection_queue WHERE event_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *self.0).await?;
                }
                Ok(())
            }

            async fn replace_index(
                &mut self,
                entries: &[(String, std::collections::BTreeSet<(&'static str, String)>)],
            ) -> $crate::store::Result<()> {
                for chunk in entries.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM engagement_index WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for (id, _) in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(")");
                    qb.build().execute(&mut *self.0).await?;
                    let rows: Vec<(&str, &str, &str)> = chunk
                        .iter()
                        .flat_map(|(id, set)| set.iter().map(move |(kind, value)| (*kind, value.as_str(), id.as_str())))
                        .collect();
                    for rows in rows.chunks($crate::store::sql::CHUNK) {
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("INSERT INTO engagement_index (kind, value, engagement_id) ");
                        qb.push_values(rows, |mut b, (kind, value, id)| {
                            b.push_bind(*kind).push_bind(*value).push_bind(*id);
                        });
                        qb.build().execute(&mut *self.0).await?;
                    }
                }
                Ok(())
            }
        }

        fn event_from_row(
            row: &<$db as sqlx::Database>::Row,
            with_raw: bool,
        ) -> $crate::store::Result<$crate::store::LoggedEvent> {
            use sqlx::Row;
            Ok($crate::store::LoggedEvent {
                id: row.try_get("id")?,
                dedup_key: row.try_get("dedup_key")?,
                source: row.try_get("source")?,
                event_type: row.try_get("event_type")?,
                engagement_id: row.try_get("engagement_id")?,
                event_ts: row.try_get("event_ts")?,
                received_at: row.try_get("received_at")?,
                request_id: row.try_get("request_id")?,
                duplicate_count: row.try_get("duplicate_count")?,
                raw: if with_raw { row.try_get("raw")? } else { Vec::new() },
            })
        }

        fn run_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::store::Result<$crate::store::RunRow> {
            use sqlx::Row;
            Ok($crate::store::RunRow {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                window_from: row.try_get("window_from")?,
                window_to: row.try_get("window_to")?,
                status: row.try_get("status")?,
                started_at: row.try_get("started_at")?,
                updated_at: row.try_get("updated_at")?,
                finished_at: row.try_get("finished_at")?,
                progress: row.try_get("progress")?,
                summary: row.try_get("summary")?,
                error: row.try_get("error")?,
            })
        }

        fn quarantine_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::store::Result<$crate::store::QuarantineItem> {
            use sqlx::Row;
            Ok($crate::store::QuarantineItem {
                id: row.try_get("id")?,
                source: row.try_get("source")?,
                received_at: row.try_get("received_at")?,
                request_id: row.try_get("request_id")?,
                reason: row.try_get("reason")?,
                resolved_event_id: row.try_get("resolved_event_id")?,
                resolved_at: row.try_get("resolved_at")?,
                raw: row.try_get("raw")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn committers(&self) -> usize {
                self.committer_count()
            }

            async fn commit(&self, batch: &[$crate::store::Inbound]) -> $crate::store::Result<Vec<$crate::store::Outcome>> {
                use $crate::store::BatchTx;
                let mut conn = self.writer().acquire().await?;
                let (events, only_events) = $crate::store::sorted_events(batch);
                if only_events && events.len() <= $crate::store::sql::CHUNK {
                    // The common case: one INSERT, atomic on its own (the trigger queues the projection in the
                    // same statement), so no BEGIN/COMMIT round trips. Redeliveries need a second step.
                    let inserted = $conn(&mut *conn).insert_events(&events).await?;
                    if $crate::store::all_fresh(&events, &inserted) {
                        return Ok($crate::store::fresh_outcomes(batch, &inserted));
                    }
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let outcomes = $crate::store::finish_batch(&mut $conn(&mut *tx), batch, &inserted).await?;
                    tx.commit().await?;
                    return Ok(outcomes);
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let inserted = $conn(&mut *tx).insert_events(&events).await?;
                let outcomes = $crate::store::finish_batch(&mut $conn(&mut *tx), batch, &inserted).await?;
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn project(
                &self,
                items: &[$crate::store::ProjectionItem],
                event_ids: &[i64],
            ) -> $crate::store::Result<$crate::store::Projected> {
                // Derived state that dequeues its own work: its commit need not wait for the disk (see `relaxed`).
                let mut writer = $crate::store::relaxed::Relaxed::<$db>::acquire(self.writer()).await?;
                let mut tx = writer.begin().await?;
                let projected =
                    $crate::store::project_in(&mut $conn(&mut *tx), items, event_ids, &self.signals).await?;
                tx.commit().await?;
                writer.release().await;
                Ok(projected)
            }

            fn signals(&self) -> &$crate::signals::Signals {
                &self.signals
            }

            async fn projection_backlog(
                &self,
                after_event_id: i64,
                received_before: Option<i64>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::LoggedEvent>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT e.* FROM projection_queue q JOIN events e ON e.id = q.event_id WHERE q.event_id > ",
                );
                qb.push_bind(after_event_id);
                if let Some(before) = received_before {
                    qb.push(" AND e.received_at < ").push_bind(before);
                }
                qb.push(" ORDER BY q.event_id LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.writer()).await?;
                rows.iter().map(|r| event_from_row(r, true)).collect()
            }

            async fn engagement(&self, engagement_id: &str) -> $crate::store::Result<Option<$crate::core::EngagementState>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT state FROM engagements WHERE engagement_id = ");
                qb.push_bind(engagement_id);
                let json: Option<String> = qb.build_query_scalar().fetch_optional(self.reader()).await?;
                json.map(|j| $crate::store::decode_state(engagement_id, &j)).transpose()
            }

            async fn engagements(
                &self,
                query: &$crate::store::EngagementQuery,
            ) -> $crate::store::Result<Vec<$crate::core::EngagementState>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT e.engagement_id, e.state FROM engagements e WHERE 1 = 1",
                );
                $crate::store::push_engagement_filters(&mut qb, query);
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(self.reader()).await?;
                rows.iter()
                    .map(|(id, json)| $crate::store::decode_state(id, json))
                    .collect()
            }

            async fn events(&self, query: &$crate::store::EventQuery) -> $crate::store::Result<Vec<$crate::store::LoggedEvent>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT * FROM events WHERE 1 = 1");
                $crate::store::push_event_filters(&mut qb, query);
                let rows = qb.build().fetch_all(self.reader()).await?;
                rows.iter().map(|r| event_from_row(r, query.with_raw)).collect()
            }

            async fn quarantined(
                &self,
                after_id: Option<i64>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::QuarantineItem>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT * FROM quarantine WHERE id > ");
                qb.push_bind(after_id.unwrap_or(0))
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.reader()).await?;
                rows.iter().map(quarantine_from_row).collect()
            }

            async fn existing_dedup_keys(&self, keys: &[&str]) -> $crate::store::Result<std::collections::HashSet<String>> {
                let mut found = std::collections::HashSet::new();
                for chunk in keys.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT dedup_key FROM events WHERE dedup_key IN (");
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    qb.push(")");
                    let rows: Vec<(String,)> = qb.build_query_as().fetch_all(self.reader()).await?;
                    found.extend(rows.into_iter().map(|(key,)| key));
                }
                Ok(found)
            }

            async fn quarantine_item(&self, id: i64) -> $crate::store::Result<Option<$crate::store::QuarantineItem>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT * FROM quarantine WHERE id = ");
                qb.push_bind(id);
                let row = qb.build().fetch_optional(self.reader()).await?;
                row.as_ref().map(quarantine_from_row).transpose()
            }

            async fn stats(&self) -> $crate::store::Result<$crate::store::LogStats> {
                let (events, duplicates, quarantined, engagements, projection_pending): (i64, i64, i64, i64, i64) =
                    sqlx::query_as($crate::store::STATS_SQL).fetch_one(self.reader()).await?;
                Ok($crate::store::LogStats {
                    events,
                    duplicates,
                    quarantined,
                    engagements,
                    projection_pending,
                })
            }

            async fn logged_engagement_ids(&self, after: Option<&str>, limit: u32) -> $crate::store::Result<Vec<String>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT DISTINCT engagement_id FROM events WHERE engagement_id IS NOT NULL AND engagement_id > ",
                );
                qb.push_bind(after.unwrap_or(""))
                    .push(" ORDER BY engagement_id LIMIT ")
                    .push_bind(i64::from(limit));
                Ok(qb.build_query_scalar().fetch_all(self.reader()).await?)
            }

            async fn replace_engagement(
                &self,
                state: &$crate::core::EngagementState,
                last_event_id: i64,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.writer().begin().await?;
                if !$crate::store::replace_engagement_in(&mut $conn(&mut *tx), state, last_event_id).await? {
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_orphan_engagements(&self) -> $crate::store::Result<u64> {
                let mut tx = self.writer().begin().await?;
                sqlx::query($crate::store::DELETE_ORPHAN_INDEX_SQL).execute(&mut *tx).await?;
                let done = sqlx::query($crate::store::DELETE_ORPHANS_SQL).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn engagement_states(&self, ids: &[String]) -> $crate::store::Result<Vec<$crate::core::EngagementState>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT engagement_id, state FROM engagements WHERE engagement_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(")");
                    let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(self.reader()).await?;
                    for (id, json) in rows {
                        out.push($crate::store::decode_state(&id, &json)?);
                    }
                }
                Ok(out)
            }

            async fn create_run(
                &self,
                kind: &str,
                window_from: i64,
                window_to: i64,
                started_at: i64,
            ) -> $crate::store::Result<$crate::store::RunRow> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO reconciliation_runs (kind, window_from, window_to, status, started_at, updated_at) ",
                );
                qb.push_values([()], |mut b, ()| {
                    b.push_bind(kind)
                        .push_bind(window_from)
                        .push_bind(window_to)
                        .push_bind("running")
                        .push_bind(started_at)
                        .push_bind(started_at);
                });
                qb.push(" RETURNING *");
                let row = qb.build().fetch_one(self.writer()).await?;
                run_from_row(&row)
            }

            async fn save_run(&self, run: &$crate::store::RunRow) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE reconciliation_runs SET status = ");
                qb.push_bind(run.status.as_str())
                    .push(", updated_at = ")
                    .push_bind(run.updated_at)
                    .push(", finished_at = ")
                    .push_bind(run.finished_at)
                    .push(", progress = ")
                    .push_bind(run.progress.as_str())
                    .push(", summary = ")
                    .push_bind(run.summary.as_str())
                    .push(", error = ")
                    .push_bind(run.error.as_deref())
                    .push(" WHERE id = ")
                    .push_bind(run.id);
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn run(&self, id: i64) -> $crate::store::Result<Option<$crate::store::RunRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT * FROM reconciliation_runs WHERE id = ");
                qb.push_bind(id);
                let row = qb.build().fetch_optional(self.writer()).await?;
                row.as_ref().map(run_from_row).transpose()
            }

            async fn runs(
                &self,
                kind: Option<&str>,
                status: Option<&str>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::RunRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT * FROM reconciliation_runs WHERE 1 = 1");
                if let Some(kind) = kind {
                    qb.push(" AND kind = ").push_bind(kind);
                }
                if let Some(status) = status {
                    qb.push(" AND status = ").push_bind(status);
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
                // The writer: a run just saved must be visible to the scheduler deciding what to do next.
                let rows = qb.build().fetch_all(self.writer()).await?;
                rows.iter().map(run_from_row).collect()
            }

            async fn try_exclusive(&self, name: &str) -> $crate::store::Result<Option<$crate::store::ExclusiveLock>> {
                self.exclusive(name).await
            }

            async fn claim_fetches(
                &self,
                settled_before: i64,
                now: i64,
                lease_ms: i64,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::FetchItem>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE fetch_queue SET leased_until = ");
                qb.push_bind(now.saturating_add(lease_ms))
                    .push(" WHERE engagement_id IN (SELECT engagement_id FROM fetch_queue WHERE status = 'pending' AND last_event_at <= ")
                    .push_bind(settled_before)
                    .push(" AND retry_at <= ")
                    .push_bind(now)
                    .push(" AND leased_until <= ")
                    .push_bind(now)
                    .push(" ORDER BY last_event_at LIMIT ")
                    .push_bind(i64::from(limit));
                if $backend == "postgres" {
                    qb.push(" FOR UPDATE SKIP LOCKED");
                }
                qb.push(") RETURNING engagement_id, CAST(wants AS BIGINT), last_event_at, CAST(attempts AS BIGINT)");
                let rows: Vec<(String, i64, i64, i64)> = qb.build_query_as().fetch_all(self.writer()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(engagement_id, wants, last_event_at, attempts)| $crate::store::FetchItem {
                        engagement_id,
                        wants,
                        last_event_at,
                        attempts,
                    })
                    .collect())
            }

            async fn complete_fetch(&self, item: &$crate::store::FetchItem) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM fetch_queue WHERE engagement_id = ");
                qb.push_bind(item.engagement_id.as_str())
                    .push(" AND wants = ")
                    .push_bind(item.wants)
                    .push(" AND last_event_at = ")
                    .push_bind(item.last_event_at)
                    .push(" AND status = 'pending'");
                let deleted = qb.build().execute(&mut *tx).await?.rows_affected();
                if deleted == 0 {
                    // Re-queued by a newer event while we fetched: fetch again once it settles.
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE fetch_queue SET leased_until = 0, attempts = 0, retry_at = 0 WHERE engagement_id = ",
                    );
                    qb.push_bind(item.engagement_id.as_str());
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn retry_fetch(
                &self,
                item: &$crate::store::FetchItem,
                retry_at: i64,
                error: &str,
                give_up: bool,
            ) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE fetch_queue SET attempts = attempts + 1, leased_until = 0, retry_at = ");
                qb.push_bind(retry_at)
                    .push(", last_error = ")
                    .push_bind(error)
                    .push(", status = ")
                    .push_bind(if give_up { "gave_up" } else { "pending" })
                    .push(" WHERE engagement_id = ")
                    .push_bind(item.engagement_id.as_str());
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn fetch_queue_stats(&self) -> $crate::store::Result<$crate::store::FetchQueueStats> {
                let (pending, gave_up): (i64, i64) = sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
                            COALESCE(SUM(CASE WHEN status = 'gave_up' THEN 1 ELSE 0 END), 0)
                     FROM fetch_queue",
                )
                .fetch_one(self.reader())
                .await?;
                Ok($crate::store::FetchQueueStats { pending, gave_up })
            }

            async fn ready(&self) -> $crate::store::Result<()> {
                let applied: Option<i64> = sqlx::query_scalar($crate::store::APPLIED_MIGRATION_SQL)
                    .fetch_one(self.reader())
                    .await?;
                $crate::store::check_applied(self.migrator(), applied)
            }

            async fn close(&self) {
                self.shutdown().await;
            }
        }
    };
}
pub(crate) use impl_sql_store;
