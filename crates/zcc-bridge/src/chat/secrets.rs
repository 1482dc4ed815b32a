//! Secrets of chat channels created through the admin API are stored sealed: AES-256-GCM under
//! `chat.encryption_key`, a fresh 96-bit random nonce per sealing, and the channel's name as associated data (a
//! sealed value copied onto another channel does not open). The stored form is
//! `v1.<key id>.<nonce, base64url>.<ciphertext and tag, base64url>`; the key id (the first 8 hex digits of the key's
//! SHA-256) says which key sealed it, so `chat.previous_encryption_keys` can still open values sealed before a
//! rotation. The key itself lives only in the configuration (an environment variable), never in the database.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{check_encryption_key, ChatConfig};

const VERSION: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("chat.encryption_key is not set: channels with secrets cannot be stored (generate one with `openssl rand -base64 32`)")]
    NoKey,
    #[error("the stored secrets were sealed with key {0}, which is neither chat.encryption_key nor in chat.previous_encryption_keys")]
    UnknownKey(String),
    #[error("the stored secrets do not open (not sealed for this channel, or altered)")]
    Corrupt,
    #[error("invalid encryption key: {0}")]
    BadKey(String),
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Self {
            id,
            cipher: Aes256Gcm::new(&bytes.into()),
        }
    }
}

/// Seals and opens channel secrets. `Debug` shows key ids only.
pub struct Sealer {
    current: Option<Key>,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Sealer {
    pub fn from_config(config: &ChatConfig) -> Result<Self, SealError> {
        let key = |s| {
            check_encryption_key(s)
                .map(Key::new)
                .map_err(SealError::BadKey)
        };
        Ok(Self {
            current: config.encryption_key.as_ref().map(key).transpose()?,
            previous: config
                .previous_encryption_keys
                .iter()
                .map(key)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn can_seal(&self) -> bool {
        self.current.is_some()
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    pub fn seal(&self, channel: &str, plaintext: &str) -> Result<String, SealError> {
        let key = self.current.as_ref().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: channel.as_bytes(),
                },
            )
            // Encryption fails only for inputs beyond AES-GCM's limits (gigabytes).
            .map_err(|_| SealError::Corrupt)?;
        Ok(format!(
            "{VERSION}.{}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens a sealed value; also says whether it was sealed with an earlier key (then it should be sealed again).
    pub fn open(&self, channel: &str, sealed: &str) -> Result<(String, bool), SealError> {
        let mut parts = sealed.split('.');
        let (Some(VERSION), Some(id), Some(nonce), Some(body), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SealError::Corrupt);
        };
        let (key, old) = match &self.current {
            Some(k) if k.id == id => (k, false),
            _ => (
                self.previous
                    .iter()
                    .find(|k| k.id == id)
                    .ok_or_else(|| SealError::UnknownKey(id.to_string()))?,
                true,
            ),
        };
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or(SealError::Corrupt)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Corrupt)?;
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &body,
                    aad: channel.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        let text = String::from_utf8(plain).map_err(|_| SealError::Corrupt)?;
        Ok((text, old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn sealer(current: Option<&str>, previous: &[&str]) -> Sealer {
        let config = ChatConfig {
            encryption_key: current.map(Secret::new),
            previous_encryption_keys: previous.iter().map(|k| Secret::new(*k)).collect(),
            ..ChatConfig::default()
        };
        Sealer::from_config(&config).unwrap()
    }

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="; // 32 bytes

    #[test]
    fn seals_opens_and_binds_to_the_channel() {
        let s = sealer(Some(K1), &[]);
        let sealed = s.seal("web", r#"{"access_token":"tok-123"}"#).unwrap();
        assert!(!sealed.contains("tok-123"));
        assert_ne!(
            sealed,
            s.seal("web", r#"{"access_token":"tok-123"}"#).unwrap(),
            "fresh nonces"
        );
        assert_eq!(
            s.open("web", &sealed).unwrap(),
            (r#"{"access_token":"tok-123"}"#.to_string(), false)
        );
        assert_eq!(s.open("other", &sealed), Err(SealError::Corrupt));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(s.open("web", &tampered), Err(SealError::Corrupt));
        assert!(!format!("{s:?}").contains(K1));
    }

    #[test]
    fn rotation_opens_old_values_and_no_key_refuses() {
        let old = sealer(Some(K1), &[]);
        let sealed = old.seal("web", "x").unwrap();
        let rotated = sealer(Some(K2), &[K1]);
        assert_eq!(rotated.open("web", &sealed).unwrap(), ("x".into(), true));
        let forgotten = sealer(Some(K2), &[]);
        assert!(matches!(
            forgotten.open("web", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        assert_eq!(sealer(None, &[]).seal("web", "x"), Err(SealError::NoKey));
    }
}
