//! Who may call the admin API: the bootstrap `admin.token`, or a scoped API key.
//!
//! A key reads `zcb_<key_id>_<secret>`: `key_id` (12 hex digits) finds the row, the secret (32 random bytes,
//! base64url) is checked against its stored SHA-256 in constant time. A key's secret is high-entropy, so a plain
//! SHA-256 suffices (no password hash needed: there is nothing to guess from). The full key is shown once, when it
//! is created.
//!
//! Roles are ordered: `read_only` reads (GET); `operator` also runs the operations that repair or resend
//! (replays, retries, re-enabling a sink, reconciliation runs); `admin` may do everything, including what changes
//! who can reach what (revoking media links, and any write a later part adds).

use std::fmt;

use axum::http::Method;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::store::{ApiKeyRow, Store, StoreError};

const PREFIX: &str = "zcb_";
/// `last_used_at` is written at most this often per key (reads would otherwise each cost a write).
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[value(name = "read_only")]
    ReadOnly,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "read_only" => Some(Self::ReadOnly),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routes an operator may call besides reads (paths relative to `/api/v1`; `*` is one segment).
const OPERATOR_ROUTES: &[&str] = &[
    "/quarantine/*/replay",
    "/reconciliation/runs",
    "/media/retry",
    "/deliveries/replay",
    "/deliveries/*/replay",
    "/sinks/*/enable",
];

/// The least role that may call `method path` (`path` with or without the `/api/v1` prefix).
pub fn required_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD {
        return Role::ReadOnly;
    }
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let matches = |pattern: &str| {
        let (mut want, mut have) = (pattern.split('/'), path.split('/'));
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some("*"), Some(segment)) if !segment.is_empty() => {}
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    };
    if method == Method::POST && OPERATOR_ROUTES.iter().any(|p| matches(p)) {
        Role::Operator
    } else {
        Role::Admin
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The key's id; `None` for the bootstrap admin token.
    pub key_id: Option<String>,
}

/// A key just created: `key` is shown once and not stored.
#[derive(Debug)]
pub struct NewKey {
    pub key: String,
    pub row: ApiKeyRow,
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh key for `name` with `role`.
pub fn generate(name: &str, role: Role, now: i64) -> NewKey {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewKey {
        key: format!("{PREFIX}{key_id}_{secret}"),
        row: ApiKeyRow {
            key_id,
            name: name.to_string(),
            role: role.as_str().to_string(),
            secret_sha256: sha256_hex(&secret),
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        },
    }
}

/// `zcb_<key_id>_<secret>` into its parts; `None` for anything else.
pub fn parse_key(presented: &str) -> Option<(&str, &str)> {
    let (key_id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let id_ok = key_id.len() == 12 && key_id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then_some((key_id, secret))
}

/// Checks a presented bearer credential: the admin token, or an active key. `Ok(None)`: not valid.
pub async fn authenticate(
    store: &dyn Store,
    admin_token: Option<&Secret>,
    presented: &str,
    now: i64,
) -> Result<Option<Principal>, StoreError> {
    if let Some(token) = admin_token {
        if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
            return Ok(Some(Principal {
                role: Role::Admin,
                key_id: None,
            }));
        }
    }
    let Some((key_id, secret)) = parse_key(presented) else {
        return Ok(None);
    };
    let Some(row) = store.api_key(key_id).await? else {
        return Ok(None);
    };
    let matches = bool::from(
        sha256_hex(secret)
            .as_bytes()
            .ct_eq(row.secret_sha256.as_bytes()),
    );
    let Some(role) = Role::parse(&row.role).filter(|_| matches && row.revoked_at.is_none()) else {
        return Ok(None);
    };
    if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
        store.touch_api_key(key_id, now).await?;
    }
    Ok(Some(Principal {
        role,
        key_id: Some(row.key_id),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roles_by_route() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(required_role(&get, "/api/v1/engagements"), Role::ReadOnly);
        assert_eq!(required_role(&get, "/deliveries/7"), Role::ReadOnly);
        assert_eq!(
            required_role(&post, "/api/v1/deliveries/7/replay"),
            Role::Operator
        );
        assert_eq!(required_role(&post, "/deliveries/replay"), Role::Operator);
        assert_eq!(required_role(&post, "/sinks/crm/enable"), Role::Operator);
        assert_eq!(required_role(&post, "/quarantine/3/replay"), Role::Operator);
        assert_eq!(required_role(&post, "/reconciliation/runs"), Role::Operator);
        assert_eq!(required_role(&post, "/media/retry"), Role::Operator);
        // Revoking links changes who can reach what; unknown writes are the admin's.
        assert_eq!(
            required_role(&post, "/media/permalinks/revoke"),
            Role::Admin
        );
        assert_eq!(required_role(&post, "/sinks//enable"), Role::Admin);
        assert_eq!(required_role(&post, "/sinks/a/b/enable"), Role::Admin);
        assert_eq!(
            required_role(&Method::DELETE, "/deliveries/7/replay"),
            Role::Admin
        );
        assert_eq!(required_role(&post, "/chat/channels"), Role::Admin);
        assert!(Role::ReadOnly < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn keys_round_trip_and_only_their_hash_is_kept() {
        let new = generate("ci", Role::Operator, 5);
        let (id, secret) = parse_key(&new.key).expect("parses");
        assert_eq!(id, new.row.key_id);
        assert_eq!(sha256_hex(secret), new.row.secret_sha256);
        assert!(!new.row.secret_sha256.contains(secret));
        assert_eq!(new.row.role, "operator");
        assert_ne!(generate("ci", Role::Operator, 5).key, new.key);
    }

    proptest! {
        /// Whatever is presented, parsing never panics and only accepts the key's shape.
        #[test]
        fn parsing_accepts_only_the_shape(presented in ".{0,80}") {
            if let Some((id, secret)) = parse_key(&presented) {
                prop_assert!(presented.starts_with(PREFIX));
                prop_assert_eq!(id.len(), 12);
                prop_assert!(!secret.is_empty());
            }
        }
    }
}
