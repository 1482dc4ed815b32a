//! Scoped API keys (`api_keys`): `ApiKeyRepo` is a supertrait of `Store`, implemented for both backends by
//! `impl_api_key_repo!` (same SQL). The store keeps rows; what a key may do is `auth`'s business.

use async_trait::async_trait;
use serde::Serialize;

use super::Result;

/// A key as stored: never its secret, only the secret's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRow {
    /// The public part of the key, shown in lists and logs.
    pub key_id: String,
    pub name: String,
    /// `read_only`, `operator` or `admin`.
    pub role: String,
    #[serde(skip)]
    pub secret_sha256: String,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub last_used_at: Option<i64>,
}

#[async_trait]
pub trait ApiKeyRepo {
    async fn create_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRow>>;
    /// Every key, revoked ones too, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>>;
    /// Returns whether the key existed and was active.
    async fn revoke_api_key(&self, key_id: &str, now: i64) -> Result<bool>;
    async fn touch_api_key(&self, key_id: &str, now: i64) -> Result<()>;
}

macro_rules! impl_api_key_repo {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::api_keys::ApiKeyRepo for $store {
            async fn create_api_key(&self, key: &$crate::store::api_keys::ApiKeyRow) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO api_keys (key_id, name, role, secret_sha256, created_at) ",
                );
                qb.push_values([()], |mut b, _| {
                    b.push_bind(key.key_id.as_str())
                        .push_bind(key.name.as_str())
                        .push_bind(key.role.as_str())
                        .push_bind(key.secret_sha256.as_str())
                        .push_bind(key.created_at);
                });
                qb.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn api_key(&self, key_id: &str) -> $crate::store::Result<Option<$crate::store::api_keys::ApiKeyRow>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT key_id, name, role, secret_sha256, created_at, revoked_at, last_used_at FROM api_keys WHERE key_id = ",
                );
                qb.push_bind(key_id);
                let row: Option<(String, String, String, String, i64, Option<i64>, Option<i64>)> =
                    qb.build_query_as().fetch_optional(self.writer()).await?;
                Ok(row.map(api_key_row))
            }

            async fn api_keys(&self) -> $crate::store::Result<Vec<$crate::store::api_keys::ApiKeyRow>> {
                let rows: Vec<(String, String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT key_id, name, role, secret_sha256, created_at, revoked_at, last_used_at FROM api_keys \
                     ORDER BY created_at, key_id",
                )
                .fetch_all(self.writer())
                .await?;
                Ok(rows.into_iter().map(api_key_row).collect())
            }

            async fn revoke_api_key(&self, key_id: &str, now: i64) -> $crate::store::Result<bool> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE api_keys SET revoked_at = ");
                qb.push_bind(now)
                    .push(" WHERE revoked_at IS NULL AND key_id = ")
                    .push_bind(key_id);
                Ok(qb.build().execute(self.writer()).await?.rows_affected() > 0)
            }

            async fn touch_api_key(&self, key_id: &str, now: i64) -> $crate::store::Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE api_keys SET last_used_at = ");
                qb.push_bind(now).push(" WHERE key_id = ").push_bind(key_id);
                qb.build().execute(self.writer()).await?;
                Ok(())
            }
        }

        fn api_key_row(
            (key_id, name, role, secret_sha256, created_at, revoked_at, last_used_at): (
                String,
                String,
                String,
                String,
                i64,
                Option<i64>,
                Option<i64>,
            ),
        ) -> $crate::store::api_keys::ApiKeyRow {
            $crate::store::api_keys::ApiKeyRow {
                key_id,
                name,
                role,
                secret_sha256,
                created_at,
                revoked_at,
                last_used_at,
            }
        }
    };
}
pub(crate) use impl_api_key_repo;
