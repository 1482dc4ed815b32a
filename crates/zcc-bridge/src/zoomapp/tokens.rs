//! Users' OAuth tokens (and PKCE verifiers in flight) are encrypted at rest: AES-256-GCM with a random 96-bit nonce
//! per value and the row they belong to as associated data (a sealed value copied into another user's row does not
//! open). The key is SHA-256 of `zoom_app.token_key`, or of a random key generated once and kept in the database's
//! `settings` table (shared by replicas) when that is unset. The first protects the tokens from anyone holding a copy
//! of the database; the second only from readers of the token rows (logs, exports of single tables), since the key
//! then lies beside them. Sealed values read `v1.<key id>.<base64url(nonce ‖ cipher text ‖ tag)>`; the key id (the
//! first 8 hex digits of the SHA-256 of the key) tells a value sealed with another key from a tampered one.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The `settings` row of the generated key.
pub const KEY_SETTING: &str = "zoomapp_token_key";

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is not v1.<key id>.<base64url>")]
    Format,
    #[error("the value was sealed with another key (key id {0}); was zoom_app.token_key changed?")]
    OtherKey(String),
    #[error("the sealed value does not open (tampered, or sealed for another row)")]
    Open,
}

/// Seals and opens values with one key. `Debug` shows the key id only.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Sealer {
    /// `secret`: the configured `token_key` or the generated one (any length; the AES key is its SHA-256).
    pub fn new(secret: &[u8]) -> Self {
        let key: [u8; 32] = Sha256::digest(secret).into();
        let key_id = hex::encode(&Sha256::digest(key)[..4]);
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            key_id,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext` bound to `aad` (the row it belongs to).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: aad.as_bytes(),
        };
        // Only messages over 64 GiB fail to encrypt.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{VERSION}.{}.{}", self.key_id, URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Format);
        };
        if key_id != self.key_id {
            return Err(SealError::OtherKey(key_id.chars().take(16).collect()));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Format)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::Format);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

/// The associated data of a user's tokens.
pub fn tokens_aad(user_id: &str, environment: &str) -> String {
    format!("zoomapp-tokens\n{user_id}\n{environment}")
}

/// The associated data of a web install flow's verifier.
pub fn install_aad(state_hash: &str) -> String {
    format!("zoomapp-install\n{state_hash}")
}

/// The associated data of an in-client OAuth verifier.
pub fn session_aad(token_hash: &str) -> String {
    format!("zoomapp-session\n{token_hash}")
}

/// SHA-256 (hex) of a bearer value (session token, OAuth state): what is kept instead of the value.
pub fn hash_token(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A fresh random token: 32 bytes, base64url (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_its_row() {
        let s = Sealer::new(b"a key of at least thirty-two characters");
        let sealed = s.seal(b"access-token-value", &tokens_aad("u1", "production"));
        assert!(sealed.starts_with(&format!("v1.{}.", s.key_id())));
        assert!(!sealed.contains("access-token-value"));
        assert_eq!(
            s.open(&sealed, &tokens_aad("u1", "production")).unwrap(),
            b"access-token-value"
        );
        // Another row, another key, a tampered value: refused, never a panic.
        assert_eq!(
            s.open(&sealed, &tokens_aad("u2", "production")),
            Err(SealError::Open)
        );
        let other = Sealer::new(b"another key of at least thirty-two chars");
        assert!(matches!(
            other.open(&sealed, &tokens_aad("u1", "production")),
            Err(SealError::OtherKey(_))
        ));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(s
            .open(
                std::str::from_utf8(&tampered).unwrap(),
                &tokens_aad("u1", "production")
            )
            .is_err());
        for junk in ["", "v1", "v1.x", "v2.a.b", &format!("v1.{}.!!", s.key_id())] {
            assert!(s.open(junk, "x").is_err(), "{junk}");
        }
        // Two seals of the same value differ (fresh nonces).
        assert_ne!(
            sealed,
            s.seal(b"access-token-value", &tokens_aad("u1", "production"))
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let s = Sealer::new(b"secret-key-material-0123456789abcdef");
        assert!(!format!("{s:?}").contains("secret-key"));
    }
}
