//! Webhook signature verification and the `endpoint.url_validation` handshake
//! (developers.zoom.us/docs/api/webhooks, "Verify webhook events").
//!
//! `x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:{x-zm-request-timestamp}:{raw body}")>`.
//! We HMAC the raw request bytes, never a re-serialisation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-zm-signature";
/// Header carrying the signing time, epoch seconds.
pub const TIMESTAMP_HEADER: &str = "x-zm-request-timestamp";
/// Header carrying Zoom's per-request id (not documented as stable across retries).
pub const REQUEST_ID_HEADER: &str = "x-zm-request-id";
/// Event name of the URL validation challenge.
pub const URL_VALIDATION_EVENT: &str = "endpoint.url_validation";

/// Why a request was not accepted as coming from Zoom.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("{0} header is not valid")]
    MalformedHeader(&'static str),
    #[error("request timestamp is {skew_seconds}s away from now, outside the {tolerance_seconds}s tolerance")]
    StaleTimestamp {
        skew_seconds: i64,
        tolerance_seconds: i64,
    },
    #[error("signature does not match any configured secret token")]
    Mismatch,
    #[error("no webhook secret token is configured")]
    NoSecret,
}

impl SignatureError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader(_) => "missing_header",
            SignatureError::MalformedHeader(_) => "malformed_header",
            SignatureError::StaleTimestamp { .. } => "stale_timestamp",
            SignatureError::Mismatch => "mismatch",
            SignatureError::NoSecret => "no_secret",
        }
    }
}

/// Verifies Zoom webhook signatures against one or more secret tokens (several during rotation).
#[derive(Clone)]
pub struct WebhookVerifier {
    secrets: Vec<Vec<u8>>,
    tolerance_seconds: i64,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &format_args!("[{} masked]", self.secrets.len()))
            .field("tolerance_seconds", &self.tolerance_seconds)
            .finish()
    }
}

/// The secret that verified a request; used to answer the URL validation challenge with the same secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedWith(pub usize);

impl WebhookVerifier {
    pub fn new<I, S>(secrets: I, tolerance_seconds: i64) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        Self {
            secrets: secrets
                .into_iter()
                .map(|s| s.as_ref().to_vec())
                .filter(|s| !s.is_empty())
                .collect(),
            tolerance_seconds,
        }
    }

    pub fn tolerance_seconds(&self) -> i64 {
        self.tolerance_seconds
    }

    /// Checks headers and body. `now` is epoch seconds. The comparison is constant-time per secret.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedWith, SignatureError> {
        if self.secrets.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let ts: i64 = parse_timestamp(timestamp)?;
        let expected = decode_signature(signature)?;
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.tolerance_seconds.unsigned_abs() {
            return Err(SignatureError::StaleTimestamp {
                skew_seconds: skew,
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        for (index, secret) in self.secrets.iter().enumerate() {
            // `verify_slice` compares in constant time.
            if signing_mac(secret, timestamp, body)
                .verify_slice(&expected)
                .is_ok()
            {
                return Ok(VerifiedWith(index));
            }
        }
        Err(SignatureError::Mismatch)
    }

    /// `encryptedToken` for the URL validation challenge, using the secret that verified the request.
    pub fn encrypt_plain_token(&self, with: VerifiedWith, plain_token: &str) -> Option<String> {
        let secret = self.secrets.get(with.0)?;
        Some(encrypt_plain_token(secret, plain_token))
    }
}

fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    let value = value.trim();
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedHeader(TIMESTAMP_HEADER));
    }
    value
        .parse()
        .map_err(|_| SignatureError::MalformedHeader(TIMESTAMP_HEADER))
}

fn decode_signature(value: &str) -> Result<Vec<u8>, SignatureError> {
    let hex_part = value
        .trim()
        .strip_prefix("v0=")
        .ok_or(SignatureError::MalformedHeader(SIGNATURE_HEADER))?;
    if hex_part.len() != 64 {
        return Err(SignatureError::MalformedHeader(SIGNATURE_HEADER));
    }
    hex::decode(hex_part).map_err(|_| SignatureError::MalformedHeader(SIGNATURE_HEADER))
}

fn signing_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// `v0=<hex>` signature of a body, exactly as Zoom computes it. Used by the simulator and tests.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = signing_mac(secret, &timestamp.to_string(), body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// `hex(HMAC-SHA256(secret, plainToken))`.
pub fn encrypt_plain_token(secret: &[u8], plain_token: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(plain_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The URL validation request body: `{"event":"endpoint.url_validation","payload":{"plainToken":"..."}}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct UrlValidationRequest {
    pub payload: UrlValidationPayload,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct UrlValidationPayload {
    #[serde(rename = "plainToken")]
    pub plain_token: String,
}

/// The URL validation answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct UrlValidationResponse {
    #[serde(rename = "plainToken")]
    pub plain_token: String,
    #[serde(rename = "encryptedToken")]
    pub encrypted_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = r#"{"event":"session.started","payload":{"account_id":"{ACCOUNT_ID}","object":{"start_time":"2022-07-27T16:56:34Z","id":"{SESSION_ID}"}},"event_ts":1658940994914}"#;

    #[test]
    fn reference_test_vector() {
        let sig = sign(b"test_secret_token", 1658940994, BODY.as_bytes());
        assert_eq!(
            sig,
            "v0=60583099767bb14264a2d8d80ab7107d8e60d4e37bf77f6b25ba897bdb9bcbde"
        );
        let v = WebhookVerifier::new(["test_secret_token"], 300);
        assert_eq!(
            v.verify(
                Some(&sig),
                Some("1658940994"),
                BODY.as_bytes(),
                1658940994 + 10
            ),
            Ok(VerifiedWith(0))
        );
    }

    #[test]
    fn url_validation_vector() {
        assert_eq!(
            encrypt_plain_token(b"test_secret_token", "qgg8vlvZRS6UYooatFL8Aw"),
            "4efea922935c335d972476de138d2208a0d46ab28c79ee592d497a1b216419b8"
        );
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let v = WebhookVerifier::new(["old", "new"], 300);
        let sig = sign(b"new", 100, b"{}");
        assert_eq!(
            v.verify(Some(&sig), Some("100"), b"{}", 100),
            Ok(VerifiedWith(1))
        );
        let other = sign(b"other", 100, b"{}");
        assert_eq!(
            v.verify(Some(&other), Some("100"), b"{}", 100),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn headers_and_clock() {
        let v = WebhookVerifier::new(["s"], 300);
        let sig = sign(b"s", 1000, b"x");
        assert_eq!(
            v.verify(None, Some("1000"), b"x", 1000),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            v.verify(Some(&sig), None, b"x", 1000),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v.verify(Some(&sig), Some("-5"), b"x", 1000),
            Err(SignatureError::MalformedHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v.verify(Some("v1=abc"), Some("1000"), b"x", 1000),
            Err(SignatureError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert!(v.verify(Some(&sig), Some("1000"), b"x", 1300).is_ok());
        assert!(matches!(
            v.verify(Some(&sig), Some("1000"), b"x", 1301),
            Err(SignatureError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            v.verify(Some(&sig), Some("1000"), b"x", 699),
            Err(SignatureError::StaleTimestamp { .. })
        ));
        assert_eq!(
            WebhookVerifier::new(Vec::<String>::new(), 300).verify(
                Some(&sig),
                Some("1000"),
                b"x",
                1000
            ),
            Err(SignatureError::NoSecret)
        );
    }

    proptest! {
        #[test]
        fn any_changed_byte_is_rejected(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            ts in 1_000_000_000i64..2_000_000_000,
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let v = WebhookVerifier::new(["secret-token"], 300);
            let sig = sign(b"secret-token", ts, &body);
            let ts_str = ts.to_string();
            prop_assert!(v.verify(Some(&sig), Some(&ts_str), &body, ts).is_ok());

            // A changed body byte.
            let mut tampered = body.clone();
            let i = index.index(tampered.len());
            tampered[i] ^= flip;
            prop_assert_eq!(v.verify(Some(&sig), Some(&ts_str), &tampered, ts), Err(SignatureError::Mismatch));

            // A changed signature character (still valid hex of the right length).
            let mut sig_bytes = sig.clone().into_bytes();
            let j = 3 + index.index(64);
            sig_bytes[j] = if sig_bytes[j] == b'0' { b'1' } else { b'0' };
            let bad_sig = String::from_utf8(sig_bytes).unwrap();
            prop_assert_eq!(v.verify(Some(&bad_sig), Some(&ts_str), &body, ts), Err(SignatureError::Mismatch));

            // A different timestamp within tolerance.
            let ts2 = (ts + 1).to_string();
            prop_assert_eq!(v.verify(Some(&sig), Some(&ts2), &body, ts), Err(SignatureError::Mismatch));
        }
    }
}
