//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, spec v1): what the HTTP sink sends and what a
//! receiver checks. Headers `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated
//! list of `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one per secret, so that a receiver holding
//! either the old or the new secret verifies during a rotation. Secrets are `whsec_` + base64 of the key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// How far a receiver accepts `webhook-timestamp` from its clock, either way (the spec's recommendation).
pub const TOLERANCE_SECONDS: i64 = 300;

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a webhook secret is `whsec_` followed by base64; this one is not valid base64")]
    BadSecret,
    #[error("a webhook secret may not be empty")]
    EmptySecret,
    #[error("the webhook timestamp is not within {TOLERANCE_SECONDS} s of now")]
    Timestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// One signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix is optional; padding may be missing, as the reference libraries allow).
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        let encoded = value
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .unwrap_or(value.trim());
        let unpadded = encoded.trim_end_matches('=');
        let key = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(unpadded)
            .map_err(|_| SignatureError::BadSecret)?;
        if key.is_empty() {
            return Err(SignatureError::EmptySecret);
        }
        Ok(Self(key))
    }

    /// A new random secret (24 bytes, as the reference libraries generate).
    pub fn generate() -> (Self, String) {
        let key: [u8; 24] = rand::random();
        (
            Self(key.to_vec()),
            format!("{SECRET_PREFIX}{}", STANDARD.encode(key)),
        )
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }
}

/// The `webhook-signature` header value: one signature per secret, in order.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a message as a receiver does: the timestamp within `TOLERANCE_SECONDS` of `now`, and one of the
/// `v1` signatures made with `secret` (compared in constant time).
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Timestamp);
    }
    for candidate in signatures.split(' ') {
        let Some(("v1", encoded)) = candidate.split_once(',') else {
            continue;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            continue;
        };
        if secret.mac(id, timestamp, body).verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of the Standard Webhooks specification's reference test suite.
    #[test]
    fn matches_the_reference_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_parse_like_the_reference_libraries() {
        assert!(Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert_eq!(
            Secret::parse("whsec_").unwrap_err(),
            SignatureError::EmptySecret
        );
        assert_eq!(
            Secret::parse("whsec_***").unwrap_err(),
            SignatureError::BadSecret
        );
        assert!(!format!(
            "{:?}",
            Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        )
        .contains("MfKQ"));
    }

    proptest! {
        /// What we sign verifies with any one of the secrets; any change to id, time or body does not.
        #[test]
        fn signatures_verify_and_detect_tampering(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            id in "msg_[A-Za-z0-9]{1,20}",
            ts in 1_600_000_000i64..1_900_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let (old, _) = Secret::generate();
            let (new, _) = Secret::generate();
            let header = signature_header(&[new.clone(), old.clone()], &id, ts, &body);
            prop_assert_eq!(verify(&old, &id, ts, &header, &body, ts + 10), Ok(()));
            prop_assert_eq!(verify(&new, &id, ts, &header, &body, ts - 10), Ok(()));
            let (other, _) = Secret::generate();
            prop_assert_eq!(verify(&other, &id, ts, &header, &body, ts), Err(SignatureError::NoMatch));
            prop_assert_eq!(verify(&old, &id, ts + 1, &header, &body, ts), Err(SignatureError::NoMatch));
            prop_assert_eq!(verify(&old, &format!("{id}x"), ts, &header, &body, ts), Err(SignatureError::NoMatch));
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip.index(tampered.len());
                tampered[i] ^= 1;
                prop_assert_eq!(verify(&old, &id, ts, &header, &tampered, ts), Err(SignatureError::NoMatch));
            }
            prop_assert_eq!(verify(&old, &id, ts, &header, &body, ts + TOLERANCE_SECONDS + 1), Err(SignatureError::Timestamp));
        }
    }
}
