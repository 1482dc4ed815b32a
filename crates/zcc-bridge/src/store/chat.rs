//! The chatbot channel's tables (migration 0011): channels created through the admin API (secrets sealed by the
//! caller), user records, conversations, and the routes the event-log trigger queues chat outbox rows by.
//! `ChatRepo` is a supertrait of `Store`, implemented for both backends by `impl_chat_repo!` (same SQL).

use async_trait::async_trait;
use serde::Serialize;

use super::{LoggedEvent, Result};

/// A channel created through the admin API, as stored: its settings without secrets (JSON) and its secrets sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    pub name: String,
    pub settings: String,
    /// `chat::secrets` seals them; the store never sees them in clear.
    pub secrets: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user record of a channel's client app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatUser {
    pub channel: String,
    pub user_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `api` (the admin API) or `auto` (`auto_register`).
    pub registered_by: String,
    pub created_at: i64,
}

/// Who a new conversation is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOpen {
    pub conversation: String,
    pub channel: String,
    pub session_id: String,
    pub user_id: String,
    pub anonymous: bool,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub started_at: i64,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatSession {
    #[serde(skip)]
    pub conversation: String,
    pub channel: String,
    pub session_id: String,
    pub user_id: String,
    pub anonymous: bool,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub engagement_id: Option<String>,
    /// `active`, `handed_over`, `ended`.
    pub state: String,
    pub messages_in: i64,
    pub messages_out: i64,
    #[serde(skip)]
    pub last_event_id: Option<i64>,
    pub started_at: i64,
    pub last_activity_at: i64,
}

/// Chat events of `source` and `event_type` queue a delivery for `sink`; `lease_ms` > 0 creates it leased to the
/// process that logged the event (token = -event id) for that long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRoute {
    pub source: String,
    pub event_type: String,
    pub sink: String,
    pub lease_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub channel: Option<String>,
    pub state: Option<String>,
    pub engagement_id: Option<String>,
    /// Keyset cursor: conversations strictly before `(last_activity_at, conversation)`, newest first.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

#[async_trait]
pub trait ChatRepo: Send + Sync {
    async fn chat_channels(&self) -> Result<Vec<ChannelRow>>;
    /// How many channels are stored and when the latest change was: what replicas poll to pick up changes.
    async fn chat_channels_version(&self) -> Result<(i64, i64)>;
    /// Creates a channel; `false` if the name is taken.
    async fn insert_chat_channel(&self, row: &ChannelRow) -> Result<bool>;
    /// Replaces a channel's settings and secrets; `false` if there is none of that name.
    async fn update_chat_channel(&self, row: &ChannelRow) -> Result<bool>;
    async fn delete_chat_channel(&self, name: &str, now: i64) -> Result<bool>;
    /// Replaces every route (and the dead-letter routes: reply or turn sink → push sink).
    async fn set_chat_routes(
        &self,
        routes: &[ChatRoute],
        failure_routes: &[(String, String)],
    ) -> Result<()>;

    async fn chat_user(&self, channel: &str, user_id: &str) -> Result<Option<ChatUser>>;
    /// A channel's users by id, after `after`.
    async fn chat_users(
        &self,
        channel: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChatUser>>;
    /// Creates a user record; `false` if it exists.
    async fn add_chat_user(&self, user: &ChatUser) -> Result<bool>;
    async fn delete_chat_user(&self, channel: &str, user_id: &str) -> Result<bool>;

    /// Records who a conversation is with, registering `register` first (auto-registration), in one transaction.
    /// A conversation already recorded is left as it is. Returns the stored conversation.
    async fn open_chat_session(
        &self,
        session: &SessionOpen,
        register: Option<&ChatUser>,
    ) -> Result<ChatSession>;
    async fn chat_session(&self, conversation: &str) -> Result<Option<ChatSession>>;
    /// Conversations, most recently active first.
    async fn chat_sessions(&self, query: &SessionQuery) -> Result<Vec<ChatSession>>;
    /// A conversation's events with their raw bytes, in log order, after `after_id`.
    async fn conversation_events(
        &self,
        conversation: &str,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>>;
}

macro_rules! impl_chat_repo {
    ($store:ty, $db:ty, $backend:literal) => {
        const CHAT_SESSION_COLUMNS: &str = "conversation, channel, session_id, user_id, CAST(anonymous AS BIGINT), \
            email, phone, language, engagement_id, state, CAST(messages_in AS BIGINT), CAST(messages_out AS BIGINT), \
            last_event_id, started_at, last_activity_at";

        fn chat_session_from_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> $crate::store::Result<$crate::store::chat::ChatSession> {
            use sqlx::Row;
            let anonymous: i64 = row.try_get(4)?;
            Ok($crate::store::chat::ChatSession {
                conversation: row.try_get(0)?,
                channel: row.try_get(1)?,
                session_id: row.try_get(2)?,
                user_id: row.try_get(3)?,
                anonymous: anonymous != 0,
                email: row.try_get(5)?,
                phone: row.try_get(6)?,
                language: row.try_get(7)?,
                engagement_id: row.try_get(8)?,
                state: row.try_get(9)?,
                messages_in: row.try_get(10)?,
                messages_out: row.try_get(11)?,
                last_event_id: row.try_get(12)?,
                started_at: row.try_get(13)?,
                last_activity_at: row.try_get(14)?,
            })
        }

        fn chat_user_from_row(
            row: (String, String, Option<String>, Option<String>, String, i64),
        ) -> $crate::store::chat::ChatUser {
            $crate::store::chat::ChatUser {
                channel: row.0,
                user_id: row.1,
                email: row.2,
                phone: row.3,
                registered_by: row.4,
                created_at: row.5,
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::chat::ChatRepo for $store {
            async fn chat_channels(&self) -> $crate::store::Result<Vec<$crate::store::chat::ChannelRow>> {
                let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
                    "SELECT name, settings, secrets, created_at, updated_at FROM chat_channels ORDER BY name",
                )
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, settings, secrets, created_at, updated_at)| $crate::store::chat::ChannelRow {
                        name,
                        settings,
                        secrets,
                        created_at,
                        updated_at,
                    })
                    .collect())
            }

            async fn chat_channels_version(&self) -> $crate::store::Result<(i64, i64)> {
                // Deletions are recorded as a change too (a tombstone time in chat_routes would be more state):
                // the count catches them.
                let row: (i64, Option<i64>) =
                    sqlx::query_as("SELECT COUNT(*), MAX(updated_at) FROM chat_channels")
                        .fetch_one(self.reader())
                        .await?;
                Ok((row.0, row.1.unwrap_or(0)))
            }

            async fn insert_chat_channel(&self, row: &$crate::store::chat::ChannelRow) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO chat_channels (name, settings, secrets, created_at, updated_at) ",
                );
                qb.push_values([row], |mut b, r| {
                    b.push_bind(r.name.as_str())
                        .push_bind(r.settings.as_str())
                        .push_bind(r.secrets.as_deref())
                        .push_bind(r.created_at)
                        .push_bind(r.updated_at);
                });
                qb.push(" ON CONFLICT (name) DO NOTHING");
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn update_chat_channel(&self, row: &$crate::store::chat::ChannelRow) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE chat_channels SET settings = ");
                qb.push_bind(row.settings.as_str())
                    .push(", secrets = ")
                    .push_bind(row.secrets.as_deref())
                    .push(", updated_at = ")
                    .push_bind(row.updated_at)
                    .push(" WHERE name = ")
                    .push_bind(row.name.as_str());
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn delete_chat_channel(&self, name: &str, _now: i64) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM chat_channels WHERE name = ");
                qb.push_bind(name);
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn set_chat_routes(
                &self,
                routes: &[$crate::store::chat::ChatRoute],
                failure_routes: &[(String, String)],
            ) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM chat_routes").execute(&mut *tx).await?;
                sqlx::query("DELETE FROM chat_failure_routes").execute(&mut *tx).await?;
                for chunk in routes.chunks($crate::store::sql::CHUNK) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("INSERT INTO chat_routes (source, event_type, sink, lease_ms) ");
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.source.as_str())
                            .push_bind(r.event_type.as_str())
                            .push_bind(r.sink.as_str())
                            .push_bind(r.lease_ms);
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                for chunk in failure_routes.chunks($crate::store::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO chat_failure_routes (sink, push_sink) ");
                    qb.push_values(chunk, |mut b, (sink, push)| {
                        b.push_bind(sink.as_str()).push_bind(push.as_str());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn chat_user(
                &self,
                channel: &str,
                user_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::chat::ChatUser>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT channel, user_id, email, phone, registered_by, created_at FROM chat_users WHERE channel = ",
                );
                qb.push_bind(channel).push(" AND user_id = ").push_bind(user_id);
                let row: Option<(String, String, Option<String>, Option<String>, String, i64)> =
                    qb.build_query_as().fetch_optional(self.reader()).await?;
                Ok(row.map(chat_user_from_row))
            }

            async fn chat_users(
                &self,
                channel: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::chat::ChatUser>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT channel, user_id, email, phone, registered_by, created_at FROM chat_users WHERE channel = ",
                );
                qb.push_bind(channel);
                if let Some(after) = after {
                    qb.push(" AND user_id > ").push_bind(after);
                }
                qb.push(" ORDER BY user_id LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<(String, String, Option<String>, Option<String>, String, i64)> =
                    qb.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(chat_user_from_row).collect())
            }

            async fn add_chat_user(&self, user: &$crate::store::chat::ChatUser) -> $crate::store::Result<bool> {
                let mut conn = self.writer().acquire().await?;
                insert_chat_user(&mut *conn, user).await
            }

            async fn delete_chat_user(&self, channel: &str, user_id: &str) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM chat_users WHERE channel = ");
                qb.push_bind(channel).push(" AND user_id = ").push_bind(user_id);
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn open_chat_session(
                &self,
                s: &$crate::store::chat::SessionOpen,
                register: Option<&$crate::store::chat::ChatUser>,
            ) -> $crate::store::Result<$crate::store::chat::ChatSession> {
                let mut tx = self.writer().begin().await?;
                if let Some(user) = register {
                    insert_chat_user(&mut *tx, user).await?;
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO chat_sessions (conversation, channel, session_id, user_id, anonymous, email, phone, \
                     language, started_at, last_activity_at) ",
                );
                qb.push_values([s], |mut b, s| {
                    b.push_bind(s.conversation.as_str())
                        .push_bind(s.channel.as_str())
                        .push_bind(s.session_id.as_str())
                        .push_bind(s.user_id.as_str())
                        .push_bind(i64::from(s.anonymous))
                        .push_bind(s.email.as_deref())
                        .push_bind(s.phone.as_deref())
                        .push_bind(s.language.as_deref())
                        .push_bind(s.started_at)
                        .push_bind(s.started_at);
                });
                qb.push(" ON CONFLICT (conversation) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {CHAT_SESSION_COLUMNS} FROM chat_sessions WHERE conversation = "
                ));
                qb.push_bind(s.conversation.as_str());
                let row = qb.build().fetch_one(&mut *tx).await?;
                let session = chat_session_from_row(&row)?;
                tx.commit().await?;
                Ok(session)
            }

            async fn chat_session(
                &self,
                conversation: &str,
            ) -> $crate::store::Result<Option<$crate::store::chat::ChatSession>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {CHAT_SESSION_COLUMNS} FROM chat_sessions WHERE conversation = "
                ));
                qb.push_bind(conversation);
                match qb.build().fetch_optional(self.reader()).await? {
                    Some(row) => Ok(Some(chat_session_from_row(&row)?)),
                    None => Ok(None),
                }
            }

            async fn chat_sessions(
                &self,
                q: &$crate::store::chat::SessionQuery,
            ) -> $crate::store::Result<Vec<$crate::store::chat::ChatSession>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {CHAT_SESSION_COLUMNS} FROM chat_sessions WHERE 1 = 1"
                ));
                if let Some(channel) = &q.channel {
                    qb.push(" AND channel = ").push_bind(channel.clone());
                }
                if let Some(state) = &q.state {
                    qb.push(" AND state = ").push_bind(state.clone());
                }
                if let Some(engagement) = &q.engagement_id {
                    qb.push(" AND engagement_id = ").push_bind(engagement.clone());
                }
                if let Some((at, conversation)) = &q.before {
                    qb.push(" AND (last_activity_at < ")
                        .push_bind(*at)
                        .push(" OR (last_activity_at = ")
                        .push_bind(*at)
                        .push(" AND conversation < ")
                        .push_bind(conversation.clone())
                        .push("))");
                }
                qb.push(" ORDER BY last_activity_at DESC, conversation DESC LIMIT ")
                    .push_bind(i64::from(q.limit));
                let rows = qb.build().fetch_all(self.reader()).await?;
                rows.iter().map(chat_session_from_row).collect()
            }

            async fn conversation_events(
                &self,
                conversation: &str,
                after_id: Option<i64>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::LoggedEvent>> {
                use sqlx::Row;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, dedup_key, source, event_type, engagement_id, event_ts, received_at, request_id, \
                     CAST(duplicate_count AS BIGINT), raw FROM events WHERE conversation = ",
                );
                qb.push_bind(conversation);
                if let Some(after) = after_id {
                    qb.push(" AND id > ").push_bind(after);
                }
                qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.reader()).await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::LoggedEvent {
                            id: row.try_get(0)?,
                            dedup_key: row.try_get(1)?,
                            source: row.try_get(2)?,
                            event_type: row.try_get(3)?,
                            engagement_id: row.try_get(4)?,
                            event_ts: row.try_get(5)?,
                            received_at: row.try_get(6)?,
                            request_id: row.try_get(7)?,
                            duplicate_count: row.try_get(8)?,
                            raw: row.try_get(9)?,
                        })
                    })
                    .collect()
            }
        }

        async fn insert_chat_user(
            conn: &mut <$db as sqlx::Database>::Connection,
            user: &$crate::store::chat::ChatUser,
        ) -> $crate::store::Result<bool> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO chat_users (channel, user_id, email, phone, registered_by, created_at) ",
            );
            qb.push_values([user], |mut b, u| {
                b.push_bind(u.channel.as_str())
                    .push_bind(u.user_id.as_str())
                    .push_bind(u.email.as_deref())
                    .push_bind(u.phone.as_deref())
                    .push_bind(u.registered_by.as_str())
                    .push_bind(u.created_at);
            });
            qb.push(" ON CONFLICT (channel, user_id) DO NOTHING");
            Ok(qb.build().execute(&mut *conn).await?.rows_affected() > 0)
        }
    };
}
pub(crate) use impl_chat_repo;
