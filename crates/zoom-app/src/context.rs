//! The `X-Zoom-App-Context` header: decoding, verification and (for tests and the simulator) minting.
//!
//! Sources (see `shared/reference/zoom-apps-and-chatbots.md` §1.4):
//! - Layout `[ivLength: 1][iv][aadLength: 2][aad][cipherTextLength: 4][cipherText][tag: 16]`
//!   (developers.zoom.us/docs/zoom-apps/zoom-app-context/, marketplace.zoom.us/docs/zoom-apps/zoomappcontext/).
//! - Little-endian lengths, `readUInt16LE` for the AAD length and `readInt32LE` (signed) for the cipher length;
//!   key = SHA-256 of the client secret; AES-256-GCM with the AAD and the trailing 16-byte tag; UTF-8 JSON inside:
//!   zoom/zoomapps-sample-js `server/helpers/cipher.js` @ f357443 and zoom/zoomapps-advancedsample-react
//!   `backend/util/zoom-helpers.js` (`decryptZoomAppContext`).
//! - Claims (`typ`, `uid`, `aud` = the app's client id, `iss` = `marketplace.zoom.us`, `ts`/`exp` in epoch
//!   milliseconds, ...): `DecryptedAppContextResponse` in `@zoom/appssdk` `dist/sdk.d.ts` (v0.16.41, the version
//!   vendored in `assets/`).
//! - Zoom's samples decode with Node's `Buffer.from(ctx, 'base64')`, which also accepts the URL-safe alphabet; real
//!   contexts are base64url without padding (the reference's verified vector), so both alphabets are accepted here,
//!   padded or not.
//!
//! Unlike the samples, every encoded length is checked against what is left of the buffer before it is used, the
//! tag must be exactly 16 bytes, and the header's size is capped before anything is decoded.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

use crate::secret::Secret;
use crate::Environment;

/// Name of the header the Zoom client sends with every Home URL request.
pub const HEADER: &str = "x-zoom-app-context";
/// The issuer every context carries (`iss`).
pub const ISSUER: &str = "marketplace.zoom.us";
/// Default cap on the encoded header, in bytes. Zoom documents no maximum: its older sample validated 128–512
/// characters and a real context was 370, but chat contexts carry more claims (❓ their size), so the cap leaves
/// room while still bounding the work an unauthenticated request can cause.
pub const DEFAULT_MAX_LEN: usize = 4096;
/// Default tolerance for clock differences when checking `exp`.
pub const DEFAULT_SKEW_MS: i64 = 10_000;
/// GCM tag length; Zoom does not encode it, it is the bytes after the cipher text.
pub const TAG_LEN: usize = 16;

/// Why a context was refused. No variant carries key material or a claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("no Zoom App credentials are configured")]
    NoCredentials,
    #[error("the app context is empty")]
    Empty,
    #[error("the app context is {len} bytes, over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("the app context is not base64 or base64url")]
    Base64,
    #[error("the app context ends inside {field} ({needed} bytes needed, {remaining} left)")]
    Truncated {
        field: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("unsupported IV length {0} (12 or 16 bytes are accepted)")]
    UnsupportedIvLength(usize),
    #[error("the cipher text length is negative")]
    NegativeLength,
    #[error("{0} bytes of AAD do not fit the 2-byte length")]
    AadTooLong(usize),
    #[error("the authentication tag is {0} bytes, not 16")]
    TagLength(usize),
    #[error("the app context does not decrypt with any configured client secret")]
    Decrypt,
    #[error("the app context's claims are not a JSON object of the documented shape ({0})")]
    Claims(String),
    #[error("the app context has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the app context's issuer is not marketplace.zoom.us")]
    Issuer,
    #[error("the app context's audience is not the client id of the secret that decrypted it")]
    Audience,
    #[error("the app context expired at {exp_ms} (now {now_ms}, epoch ms)")]
    Expired { exp_ms: i64, now_ms: i64 },
}

impl ContextError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ContextError::NoCredentials => "no_credentials",
            ContextError::Empty => "empty",
            ContextError::TooLong { .. } => "too_long",
            ContextError::Base64 => "base64",
            ContextError::Truncated { .. } => "truncated",
            ContextError::UnsupportedIvLength(_) => "iv_length",
            ContextError::NegativeLength => "negative_length",
            ContextError::AadTooLong(_) => "aad_too_long",
            ContextError::TagLength(_) => "tag_length",
            ContextError::Decrypt => "decrypt",
            ContextError::Claims(_) => "claims",
            ContextError::MissingClaim(_) => "missing_claim",
            ContextError::Issuer => "issuer",
            ContextError::Audience => "audience",
            ContextError::Expired { .. } => "expired",
        }
    }
}

/// The AES-256 key: SHA-256 of the client secret's UTF-8 bytes.
#[derive(Clone)]
pub struct ContextKey([u8; 32]);

impl ContextKey {
    pub fn from_client_secret(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }
}

impl fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContextKey(***)")
    }
}

/// The decrypted claims. Field names are Zoom's; unknown claims are kept in `extra`.
/// `Debug` masks `uid` and the other identifiers: Zoom asks that account and user ids are not logged in clear.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppContext {
    /// Context type: `panel`, `meeting`, `webinar`, `chat` (❓ the value inside Contact Center).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Zoom user id of the user who opened the app (absent in Guest Mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The app's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Always `marketplace.zoom.us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Creation time, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Expiry time, epoch milliseconds (two minutes after `ts` in the one real context on record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Meeting UUID (meeting contexts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendrole: Option<String>,
    /// Invitation id (Guest Mode, instead of `uid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iid: Option<String>,
    /// Action payload of a deeplink (expires in five minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Every other claim (`bmid`, `cid`, `aid`, `chid`, `msgid`, `tid`, `of`, `trid`, `entitlements`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for AppContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("AppContext")
            .field("typ", &self.typ)
            .field("uid", &masked(&self.uid))
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("ts", &self.ts)
            .field("exp", &self.exp)
            .field("mid", &masked(&self.mid))
            .field("iid", &masked(&self.iid))
            .field("act", &masked(&self.act))
            .field("extra_claims", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The parts of a decoded context, borrowed from the decoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub iv: &'a [u8],
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
    pub tag: &'a [u8],
}

fn take<'a>(
    buf: &'a [u8],
    n: usize,
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), ContextError> {
    buf.split_at_checked(n).ok_or(ContextError::Truncated {
        field,
        needed: n,
        remaining: buf.len(),
    })
}

/// Splits decoded bytes into IV, AAD, cipher text and tag, checking every length against what is left.
pub fn unpack(raw: &[u8]) -> Result<Envelope<'_>, ContextError> {
    let (iv_len, rest) = take(raw, 1, "ivLength")?;
    let iv_len = usize::from(iv_len[0]);
    if iv_len != 12 && iv_len != 16 {
        return Err(ContextError::UnsupportedIvLength(iv_len));
    }
    let (iv, rest) = take(rest, iv_len, "iv")?;
    let (aad_len, rest) = take(rest, 2, "aadLength")?;
    let aad_len = usize::from(u16::from_le_bytes([aad_len[0], aad_len[1]]));
    let (aad, rest) = take(rest, aad_len, "aad")?;
    let (ct_len, rest) = take(rest, 4, "cipherTextLength")?;
    // Zoom's samples read it with `readInt32LE`: a signed integer.
    let ct_len = i32::from_le_bytes([ct_len[0], ct_len[1], ct_len[2], ct_len[3]]);
    let ct_len = usize::try_from(ct_len).map_err(|_| ContextError::NegativeLength)?;
    let (ciphertext, tag) = take(rest, ct_len, "cipherText")?;
    if tag.len() != TAG_LEN {
        return Err(ContextError::TagLength(tag.len()));
    }
    Ok(Envelope {
        iv,
        aad,
        ciphertext,
        tag,
    })
}

/// Base64 with either alphabet (`+/` or `-_`), with or without padding; surrounding whitespace is ignored.
pub fn decode_base64(input: &[u8]) -> Result<Vec<u8>, ContextError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let input = input.trim_ascii();
    let normalized: Vec<u8> = input
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    ENGINE.decode(normalized).map_err(|_| ContextError::Base64)
}

fn decrypt(envelope: &Envelope<'_>, key: &ContextKey) -> Result<Vec<u8>, ContextError> {
    let mut sealed = Vec::with_capacity(envelope.ciphertext.len() + TAG_LEN);
    sealed.extend_from_slice(envelope.ciphertext);
    sealed.extend_from_slice(envelope.tag);
    let payload = Payload {
        msg: &sealed,
        aad: envelope.aad,
    };
    let key = GenericArray::from_slice(&key.0);
    let opened =
        match envelope.iv.len() {
            12 => AesGcm::<Aes256, U12>::new(key)
                .decrypt(GenericArray::from_slice(envelope.iv), payload),
            16 => AesGcm::<Aes256, U16>::new(key)
                .decrypt(GenericArray::from_slice(envelope.iv), payload),
            n => return Err(ContextError::UnsupportedIvLength(n)),
        };
    opened.map_err(|_| ContextError::Decrypt)
}

fn parse_claims(plaintext: &[u8]) -> Result<AppContext, ContextError> {
    // The error names only the category and position, never the text around it (a claim's value).
    serde_json::from_slice(plaintext)
        .map_err(|e| ContextError::Claims(format!("{:?} at column {}", e.classify(), e.column())))
}

fn check_len(input: &[u8], max_len: usize) -> Result<(), ContextError> {
    if input.trim_ascii().is_empty() {
        return Err(ContextError::Empty);
    }
    if input.len() > max_len {
        return Err(ContextError::TooLong {
            len: input.len(),
            max: max_len,
        });
    }
    Ok(())
}

/// Decodes and decrypts a context with one key and parses its claims, without checking them. This is the
/// whole untrusted-input path (size cap, base64, layout, AES-GCM, JSON), meant as a fuzz target: it never panics.
pub fn decode(input: &[u8], key: &ContextKey) -> Result<AppContext, ContextError> {
    check_len(input, DEFAULT_MAX_LEN)?;
    let raw = decode_base64(input)?;
    let envelope = unpack(&raw)?;
    parse_claims(&decrypt(&envelope, key)?)
}

/// Builds a context exactly as Zoom lays it out: random 12-byte IV, no AAD, base64url without padding.
/// For tests and the simulator; `claims` is serialised as JSON.
pub fn encode(claims: &AppContext, client_secret: &str) -> String {
    let mut iv = [0u8; 12];
    rand::rng().fill_bytes(&mut iv);
    // Serialising a struct of strings and numbers, and sealing with a 12-byte IV and no AAD, cannot fail.
    let plaintext = serde_json::to_vec(claims).unwrap_or_default();
    seal(
        &plaintext,
        &ContextKey::from_client_secret(client_secret),
        &iv,
        &[],
    )
    .map(|raw| URL_SAFE_NO_PAD.encode(raw))
    .unwrap_or_default()
}

/// The binary layout for any plaintext, a 12- or 16-byte IV and up to 65,535 bytes of AAD.
/// Encode the result with any base64 flavour.
pub fn seal(
    plaintext: &[u8],
    key: &ContextKey,
    iv: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, ContextError> {
    let aad_len = u16::try_from(aad.len()).map_err(|_| ContextError::AadTooLong(aad.len()))?;
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    let gcm_key = GenericArray::from_slice(&key.0);
    let sealed = match iv.len() {
        12 => AesGcm::<Aes256, U12>::new(gcm_key).encrypt(GenericArray::from_slice(iv), payload),
        16 => AesGcm::<Aes256, U16>::new(gcm_key).encrypt(GenericArray::from_slice(iv), payload),
        n => return Err(ContextError::UnsupportedIvLength(n)),
    }
    // Only messages over 64 GiB fail to encrypt.
    .map_err(|_| ContextError::Decrypt)?;
    let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(TAG_LEN));
    let ct_len = i32::try_from(ciphertext.len()).map_err(|_| ContextError::NegativeLength)?;
    let mut out = Vec::with_capacity(1 + iv.len() + 2 + aad.len() + 4 + sealed.len());
    out.push(iv.len() as u8);
    out.extend_from_slice(iv);
    out.extend_from_slice(&aad_len.to_le_bytes());
    out.extend_from_slice(aad);
    out.extend_from_slice(&ct_len.to_le_bytes());
    out.extend_from_slice(ciphertext);
    out.extend_from_slice(tag);
    Ok(out)
}

/// A Zoom App's credentials for one environment (development or production).
#[derive(Clone, Debug)]
pub struct AppCredentials {
    pub environment: Environment,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A context that decrypted with one configured secret and whose claims passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedContext {
    /// The credentials whose secret decrypted it and whose client id is its `aud`.
    pub environment: Environment,
    pub client_id: String,
    pub context: AppContext,
}

impl VerifiedContext {
    /// The Zoom user id, required to open a session (a Guest Mode context has none).
    pub fn user_id(&self) -> Result<&str, ContextError> {
        self.context
            .uid
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(ContextError::MissingClaim("uid"))
    }
}

#[derive(Clone)]
struct Candidate {
    environment: Environment,
    client_id: String,
    key: ContextKey,
}

/// Verifies contexts against the development and/or production credentials: a context is accepted when one
/// configured secret decrypts it, its `iss` is Zoom's, its `aud` is that secret's client id, and it has not expired.
#[derive(Clone)]
pub struct ContextVerifier {
    candidates: Vec<Candidate>,
    skew_ms: i64,
    max_len: usize,
}

impl fmt::Debug for ContextVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVerifier")
            .field(
                "apps",
                &self
                    .candidates
                    .iter()
                    .map(|c| (c.environment, c.client_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("skew_ms", &self.skew_ms)
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl ContextVerifier {
    pub fn new<'a>(apps: impl IntoIterator<Item = &'a AppCredentials>) -> Self {
        Self {
            candidates: apps
                .into_iter()
                .filter(|a| !a.client_id.is_empty() && !a.client_secret.is_empty())
                .map(|a| Candidate {
                    environment: a.environment,
                    client_id: a.client_id.clone(),
                    key: ContextKey::from_client_secret(a.client_secret.expose()),
                })
                .collect(),
            skew_ms: DEFAULT_SKEW_MS,
            max_len: DEFAULT_MAX_LEN,
        }
    }

    /// Clock tolerance for `exp` (milliseconds, negative values count as 0).
    pub fn with_skew_ms(mut self, skew_ms: i64) -> Self {
        self.skew_ms = skew_ms.max(0);
        self
    }

    /// Cap on the encoded context, in bytes.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Verifies a header value (or what `zoomSdk.getAppContext()` returned). `now_ms`: epoch milliseconds.
    pub fn verify(&self, input: &[u8], now_ms: i64) -> Result<VerifiedContext, ContextError> {
        if self.candidates.is_empty() {
            return Err(ContextError::NoCredentials);
        }
        check_len(input, self.max_len)?;
        let raw = decode_base64(input)?;
        let envelope = unpack(&raw)?;
        // `aud` is inside the cipher text, so the secret is found by trying each (one or two); GCM's tag tells.
        let (candidate, plaintext) = self
            .candidates
            .iter()
            .find_map(|c| decrypt(&envelope, &c.key).ok().map(|p| (c, p)))
            .ok_or(ContextError::Decrypt)?;
        let context = parse_claims(&plaintext)?;
        match context.iss.as_deref() {
            None => return Err(ContextError::MissingClaim("iss")),
            Some(ISSUER) => {}
            Some(_) => return Err(ContextError::Issuer),
        }
        match context.aud.as_deref() {
            None => return Err(ContextError::MissingClaim("aud")),
            Some(aud) if aud == candidate.client_id => {}
            Some(_) => return Err(ContextError::Audience),
        }
        let exp_ms = context.exp.ok_or(ContextError::MissingClaim("exp"))?;
        if exp_ms.saturating_add(self.skew_ms) <= now_ms {
            return Err(ContextError::Expired { exp_ms, now_ms });
        }
        Ok(VerifiedContext {
            environment: candidate.environment,
            client_id: candidate.client_id.clone(),
            context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const NOW: i64 = 1_715_424_700_000;
    const DEV_SECRET: &str = "dev-secret-for-tests-only";
    const PROD_SECRET: &str = "prod-secret-for-tests-only";

    fn creds() -> Vec<AppCredentials> {
        vec![
            AppCredentials {
                environment: Environment::Development,
                client_id: "devClientId".into(),
                client_secret: DEV_SECRET.into(),
            },
            AppCredentials {
                environment: Environment::Production,
                client_id: "prodClientId".into(),
                client_secret: PROD_SECRET.into(),
            },
        ]
    }

    fn claims(aud: &str) -> AppContext {
        AppContext {
            typ: Some("panel".into()),
            uid: Some("gAVxCrl0SASZS4PvSa6Klw".into()),
            aud: Some(aud.into()),
            iss: Some(ISSUER.into()),
            ts: Some(NOW - 1_000),
            exp: Some(NOW - 1_000 + 120_000),
            ..Default::default()
        }
    }

    fn verifier() -> ContextVerifier {
        ContextVerifier::new(&creds())
    }

    #[test]
    fn a_minted_context_verifies_and_says_which_credentials() {
        let v = verifier();
        let dev = v
            .verify(encode(&claims("devClientId"), DEV_SECRET).as_bytes(), NOW)
            .unwrap();
        assert_eq!(dev.environment, Environment::Development);
        assert_eq!(dev.user_id().unwrap(), "gAVxCrl0SASZS4PvSa6Klw");
        let prod = v
            .verify(encode(&claims("prodClientId"), PROD_SECRET).as_bytes(), NOW)
            .unwrap();
        assert_eq!(prod.environment, Environment::Production);
        assert_eq!(prod.client_id, "prodClientId");
    }

    #[test]
    fn layout_is_zooms_little_endian_one_two_four() {
        let key = ContextKey::from_client_secret(DEV_SECRET);
        let raw = seal(b"{\"a\":1}", &key, &[7u8; 12], b"xyz").unwrap();
        assert_eq!(raw[0], 12);
        assert_eq!(&raw[1..13], &[7u8; 12]);
        assert_eq!(&raw[13..15], &[3, 0]);
        assert_eq!(&raw[15..18], b"xyz");
        assert_eq!(&raw[18..22], &[7, 0, 0, 0]);
        assert_eq!(raw.len(), 22 + 7 + 16);
        let env = unpack(&raw).unwrap();
        assert_eq!(env.aad, b"xyz");
        assert_eq!(env.ciphertext.len(), 7);
        assert_eq!(env.tag.len(), 16);
    }

    #[test]
    fn key_is_sha256_of_the_secret() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let key = ContextKey::from_client_secret("abc");
        assert_eq!(
            key.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "key must be the SHA-256 digest"
        );
    }

    #[test]
    fn every_base64_flavour_is_accepted() {
        let key = ContextKey::from_client_secret(DEV_SECRET);
        let json = serde_json::to_vec(&claims("devClientId")).unwrap();
        let raw = seal(&json, &key, &[1u8; 12], &[]).unwrap();
        let v = verifier();
        for text in [
            URL_SAFE_NO_PAD.encode(&raw),
            URL_SAFE.encode(&raw),
            STANDARD.encode(&raw),
            format!(" {} ", STANDARD.encode(&raw)),
        ] {
            v.verify(text.as_bytes(), NOW).unwrap();
        }
    }

    #[test]
    fn aad_and_a_sixteen_byte_iv_are_honoured() {
        let key = ContextKey::from_client_secret(DEV_SECRET);
        let json = serde_json::to_vec(&claims("devClientId")).unwrap();
        let raw = seal(&json, &key, &[9u8; 16], b"additional data").unwrap();
        let ctx = decode(URL_SAFE_NO_PAD.encode(&raw).as_bytes(), &key).unwrap();
        assert_eq!(ctx.aud.as_deref(), Some("devClientId"));
        // The AAD is authenticated: changing it fails the tag.
        let mut changed = raw.clone();
        changed[1 + 16 + 2] ^= 1;
        assert_eq!(
            decode(URL_SAFE_NO_PAD.encode(&changed).as_bytes(), &key),
            Err(ContextError::Decrypt)
        );
    }

    #[test]
    fn claims_are_checked() {
        let v = verifier();
        // Decrypts with the development secret but names the production client id.
        let crossed = encode(&claims("prodClientId"), DEV_SECRET);
        assert_eq!(
            v.verify(crossed.as_bytes(), NOW).unwrap_err(),
            ContextError::Audience
        );
        let mut c = claims("devClientId");
        c.iss = Some("evil.example".into());
        assert_eq!(
            v.verify(encode(&c, DEV_SECRET).as_bytes(), NOW)
                .unwrap_err(),
            ContextError::Issuer
        );
        let mut c = claims("devClientId");
        c.exp = None;
        assert_eq!(
            v.verify(encode(&c, DEV_SECRET).as_bytes(), NOW)
                .unwrap_err(),
            ContextError::MissingClaim("exp")
        );
        let c = claims("devClientId");
        let exp = c.exp.unwrap();
        let text = encode(&c, DEV_SECRET);
        // Within the skew it still passes; past it, it is expired.
        v.verify(text.as_bytes(), exp + DEFAULT_SKEW_MS - 1)
            .unwrap();
        assert!(matches!(
            v.verify(text.as_bytes(), exp + DEFAULT_SKEW_MS),
            Err(ContextError::Expired { .. })
        ));
        let mut guest = claims("devClientId");
        guest.uid = None;
        let ok = v
            .verify(encode(&guest, DEV_SECRET).as_bytes(), NOW)
            .unwrap();
        assert_eq!(ok.user_id(), Err(ContextError::MissingClaim("uid")));
    }

    #[test]
    fn structural_errors_are_typed() {
        let key = ContextKey::from_client_secret(DEV_SECRET);
        assert_eq!(decode(b"", &key), Err(ContextError::Empty));
        assert_eq!(decode(b"!!!!", &key), Err(ContextError::Base64));
        let too_long = vec![b'A'; DEFAULT_MAX_LEN + 1];
        assert!(matches!(
            decode(&too_long, &key),
            Err(ContextError::TooLong { .. })
        ));
        let raw = seal(b"{}", &key, &[0u8; 12], &[]).unwrap();
        // Claimed cipher length larger than what follows.
        let mut lying = raw.clone();
        lying[15..19].copy_from_slice(&1000i32.to_le_bytes());
        assert!(matches!(
            unpack(&lying),
            Err(ContextError::Truncated {
                field: "cipherText",
                ..
            })
        ));
        lying[15..19].copy_from_slice(&(-5i32).to_le_bytes());
        assert_eq!(unpack(&lying), Err(ContextError::NegativeLength));
        let mut iv8 = raw.clone();
        iv8[0] = 8;
        assert_eq!(unpack(&iv8), Err(ContextError::UnsupportedIvLength(8)));
        assert_eq!(
            unpack(&raw[..raw.len() - 1]),
            Err(ContextError::TagLength(15))
        );
        let not_json = seal(b"not json", &key, &[0u8; 12], &[]).unwrap();
        assert!(matches!(
            decode(URL_SAFE_NO_PAD.encode(&not_json).as_bytes(), &key),
            Err(ContextError::Claims(_))
        ));
    }

    #[test]
    fn seal_refuses_what_the_layout_cannot_carry() {
        let key = ContextKey::from_client_secret(DEV_SECRET);
        assert_eq!(
            seal(b"{}", &key, &[0u8; 8], &[]),
            Err(ContextError::UnsupportedIvLength(8))
        );
        assert_eq!(
            seal(b"{}", &key, &[0u8; 12], &vec![0u8; 65_536]),
            Err(ContextError::AadTooLong(65_536))
        );
        assert!(seal(b"{}", &key, &[0u8; 12], &vec![0u8; 65_535]).is_ok());
    }

    #[test]
    fn debug_masks_identifiers() {
        let c = claims("devClientId");
        let shown = format!("{c:?} {:?}", ContextKey::from_client_secret(DEV_SECRET));
        assert!(!shown.contains("gAVxCrl0"), "{shown}");
        assert!(shown.contains("devClientId"));
    }
}
