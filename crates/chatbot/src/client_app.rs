//! The client app that authenticates Zoom's connector on the Webhook URL, as Kore.ai's client apps do: the
//! connector signs a JWT with the app's credentials and the bridge verifies it against the channel's app.
//!
//! Per `DESIGN.md` ("Contracts added for the second wave") and Kore's documentation (`sdk-security.md`,
//! `add-webhook-channel.md`, `api-introduction.md`; see `docs/chat/protocol.md`):
//! - the algorithm is **pinned per app**: HS256/HS512 with the app's secret, or RS256/RS512 with the public key of a
//!   key pair whose private half the user keeps. A token whose header names any other algorithm is refused before
//!   any key is used, so `alg: none` and the HS/RS confusion (an HS256 token "signed" with the RSA public key as the
//!   HMAC secret) cannot succeed;
//! - the app is named by the claim `appId` (Kore's webhook and API JWTs) or `iss` (Kore's SDK JWT, "The ClientID");
//!   every one present must equal the channel's `client_id`;
//! - the user is `sub`; no `sub` (or Kore's `isAnonymous: true`) is an anonymous user;
//! - `exp` is required; `iat` and `nbf` are checked when present; `aud` when the app configures audiences; all with a
//!   small configurable leeway for clock skew. Times are in seconds (Kore: "should be in seconds"). A token with a
//!   `jti` may live at most one hour (Kore: `if "jti" claim "exp" must be <= 1 hour(s)`); replay detection of `jti`
//!   needs shared state and is the bridge's.
//!
//! Claims are checked here with strict types (a string `exp` is an error, not a missing claim), not by the JWT
//! library's optional validation.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::BotUser;
use crate::secret::Secret;

/// Leeway for clock skew when none is configured.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// Kore's rule for tokens that carry a `jti`.
pub const JTI_MAX_LIFETIME_SECONDS: i64 = 3600;
/// Shortest HS secret accepted: 32 bytes, the SHA-256 block strength Kore's generated secrets exceed.
pub const MIN_HS_SECRET_BYTES: usize = 32;

/// The JWT signing algorithm of a client app (config `jwt_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    HS512,
    RS256,
    RS512,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::HS512 => "HS512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS512 => "RS512",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, JwtAlgorithm::HS256 | JwtAlgorithm::HS512)
    }

    pub fn jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::HS512 => Algorithm::HS512,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::RS512 => Algorithm::RS512,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client app as configured (`[chat.channels.NAME]`: `client_id`, `jwt_algorithm`, `jwt_secret` or
/// `jwt_public_key`, `allow_anonymous`, `auto_register`; `jwt_audience` and `jwt_leeway_seconds` are this crate's
/// additions). `Debug` never shows the secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientAppConfig {
    pub client_id: String,
    pub jwt_algorithm: JwtAlgorithm,
    #[serde(default)]
    pub jwt_secret: Option<Secret>,
    /// PEM (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`).
    #[serde(default)]
    pub jwt_public_key: Option<String>,
    #[serde(default)]
    pub allow_anonymous: bool,
    #[serde(default)]
    pub auto_register: bool,
    /// Accepted `aud` values; when set, a token must carry one of them.
    #[serde(default)]
    pub jwt_audience: Option<Vec<String>>,
    #[serde(default = "default_leeway")]
    pub jwt_leeway_seconds: u64,
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}

impl ClientAppConfig {
    /// An HS app with the defaults (no anonymous users, no auto-registration, no audience).
    pub fn hs(client_id: impl Into<String>, algorithm: JwtAlgorithm, secret: Secret) -> Self {
        ClientAppConfig {
            client_id: client_id.into(),
            jwt_algorithm: algorithm,
            jwt_secret: Some(secret),
            jwt_public_key: None,
            allow_anonymous: false,
            auto_register: false,
            jwt_audience: None,
            jwt_leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// An RS app with the defaults.
    pub fn rs(
        client_id: impl Into<String>,
        algorithm: JwtAlgorithm,
        public_key_pem: impl Into<String>,
    ) -> Self {
        ClientAppConfig {
            client_id: client_id.into(),
            jwt_algorithm: algorithm,
            jwt_secret: None,
            jwt_public_key: Some(public_key_pem.into()),
            allow_anonymous: false,
            auto_register: false,
            jwt_audience: None,
            jwt_leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }
}

/// A configuration that cannot make a client app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAppError {
    #[error("client_id is empty")]
    EmptyClientId,
    #[error("{0} needs jwt_secret")]
    MissingSecret(JwtAlgorithm),
    #[error("jwt_secret is shorter than {MIN_HS_SECRET_BYTES} bytes")]
    WeakSecret,
    #[error("{0} needs jwt_public_key (PEM)")]
    MissingPublicKey(JwtAlgorithm),
    #[error("jwt_public_key is not an RSA public key in PEM: {0}")]
    InvalidPublicKey(String),
    #[error("{0} takes {1} only; remove the other key")]
    ConflictingKey(JwtAlgorithm, &'static str),
    #[error("credentials can only be generated for HS256/HS512")]
    NotHmac,
}

/// Why a token was refused. The bridge answers 401 and counts the kind ([`TokenError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsigned token (alg none) refused")]
    AlgorithmNone,
    #[error("algorithm {found} refused: this app is pinned to {expected}")]
    AlgorithmMismatch {
        expected: JwtAlgorithm,
        found: String,
    },
    #[error("unsupported critical header")]
    CriticalHeader,
    #[error("bad signature")]
    BadSignature,
    #[error("token names no app (appId or iss)")]
    MissingAppId,
    #[error("token is for another app ({found})")]
    AppMismatch { found: String },
    #[error("claim `{0}` has the wrong type")]
    WrongClaimType(&'static str),
    #[error("token has no exp")]
    MissingExpiry,
    #[error("token expired")]
    Expired,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("token lives longer than allowed")]
    LifetimeTooLong,
    #[error("token audience not accepted")]
    AudienceMismatch,
}

impl TokenError {
    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::AlgorithmNone => "alg_none",
            TokenError::AlgorithmMismatch { .. } => "alg_mismatch",
            TokenError::CriticalHeader => "crit_header",
            TokenError::BadSignature => "bad_signature",
            TokenError::MissingAppId => "missing_app",
            TokenError::AppMismatch { .. } => "app_mismatch",
            TokenError::WrongClaimType(_) => "claim_type",
            TokenError::MissingExpiry => "missing_exp",
            TokenError::Expired => "expired",
            TokenError::IssuedInFuture => "iat_future",
            TokenError::NotYetValid => "nbf_future",
            TokenError::LifetimeTooLong => "lifetime",
            TokenError::AudienceMismatch => "audience",
        }
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The app the token names (= the channel's `client_id`).
    pub app_id: String,
    /// `sub`, when present and not empty.
    pub subject: Option<String>,
    /// No subject, or Kore's `isAnonymous: true`.
    pub anonymous: bool,
    /// Kore's webhook `userIdentity`, when present.
    pub user_identity: Option<String>,
    pub issued_at: Option<i64>,
    pub expires_at: i64,
    pub jti: Option<String>,
    /// Every claim, for the bridge's record.
    pub claims: Map<String, Value>,
}

/// A client app ready to verify tokens. `Debug` never shows key material.
#[derive(Clone)]
pub struct ClientApp {
    client_id: String,
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    allow_anonymous: bool,
    auto_register: bool,
    audience: Option<Vec<String>>,
    leeway: i64,
}

impl fmt::Debug for ClientApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientApp")
            .field("client_id", &self.client_id)
            .field("algorithm", &self.algorithm)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("auto_register", &self.auto_register)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl ClientApp {
    pub fn new(config: &ClientAppConfig) -> Result<Self, ClientAppError> {
        if config.client_id.trim().is_empty() {
            return Err(ClientAppError::EmptyClientId);
        }
        let alg = config.jwt_algorithm;
        let key = if alg.is_hmac() {
            if config.jwt_public_key.is_some() {
                return Err(ClientAppError::ConflictingKey(alg, "jwt_secret"));
            }
            let secret = config
                .jwt_secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .ok_or(ClientAppError::MissingSecret(alg))?;
            if secret.expose().len() < MIN_HS_SECRET_BYTES {
                return Err(ClientAppError::WeakSecret);
            }
            DecodingKey::from_secret(secret.expose().as_bytes())
        } else {
            if config.jwt_secret.is_some() {
                return Err(ClientAppError::ConflictingKey(alg, "jwt_public_key"));
            }
            let pem = config
                .jwt_public_key
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .ok_or(ClientAppError::MissingPublicKey(alg))?;
            if pem.contains("PRIVATE KEY") {
                return Err(ClientAppError::InvalidPublicKey(
                    "this is a private key; configure its public half".into(),
                ));
            }
            DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| ClientAppError::InvalidPublicKey(e.to_string()))?
        };
        Ok(ClientApp {
            client_id: config.client_id.clone(),
            algorithm: alg,
            key,
            allow_anonymous: config.allow_anonymous,
            auto_register: config.auto_register,
            audience: config.jwt_audience.clone().filter(|a| !a.is_empty()),
            leeway: i64::try_from(config.jwt_leeway_seconds)
                .unwrap_or(i64::MAX / 4)
                .min(3600),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    pub fn auto_registers(&self) -> bool {
        self.auto_register
    }

    /// Verifies a token at the current time.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies a token as of `now`.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, TokenError> {
        let token = token.trim();
        let mut parts = token.split('.');
        let (Some(header_b64), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "not three dot-separated parts".into(),
            ));
        };
        // 1. The header, read by us: the algorithm is compared with the pinned one before any key is touched.
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64.trim_end_matches('='))
            .map_err(|_| TokenError::Malformed("header is not base64url".into()))?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|_| TokenError::Malformed("header is not a JSON object".into()))?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(TokenError::Malformed("alg is not a string".into())),
            None => return Err(TokenError::Malformed("header has no alg".into())),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgorithmNone);
        }
        if alg != self.algorithm.as_str() {
            return Err(TokenError::AlgorithmMismatch {
                expected: self.algorithm,
                found: alg.chars().take(16).collect(),
            });
        }
        if header.contains_key("crit") {
            return Err(TokenError::CriticalHeader);
        }
        // 2. The signature, with the app's key and only the pinned algorithm; claims are checked below.
        let mut validation = Validation::new(self.algorithm.jsonwebtoken());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<Value>(token, &self.key, &validation).map_err(map_jwt_error)?;
        let Value::Object(claims) = data.claims else {
            return Err(TokenError::Malformed("claims are not a JSON object".into()));
        };
        // 3. The claims, strictly typed.
        let now = unix_seconds(now);
        let app_id = self.check_app(&claims)?;
        let exp = numeric_claim(&claims, "exp")?.ok_or(TokenError::MissingExpiry)?;
        let iat = numeric_claim(&claims, "iat")?;
        let nbf = numeric_claim(&claims, "nbf")?;
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(TokenError::IssuedInFuture);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(TokenError::NotYetValid);
        }
        let jti = string_claim(&claims, "jti")?;
        if jti.is_some() {
            let issued = iat.unwrap_or(now);
            if exp.saturating_sub(issued) > JTI_MAX_LIFETIME_SECONDS {
                return Err(TokenError::LifetimeTooLong);
            }
        }
        if let Some(accepted) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => accepted.iter().any(|x| x == a),
                Some(Value::Array(list)) => list
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| accepted.iter().any(|x| x == a))),
                _ => false,
            };
            if !ok {
                return Err(TokenError::AudienceMismatch);
            }
        }
        let subject = string_claim(&claims, "sub")?;
        let anonymous_claim = match claims.get("isAnonymous") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(TokenError::WrongClaimType("isAnonymous")),
        };
        let user_identity = string_claim(&claims, "userIdentity")?;
        Ok(VerifiedToken {
            app_id,
            anonymous: subject.is_none() || anonymous_claim,
            subject,
            user_identity,
            issued_at: iat,
            expires_at: exp,
            jti,
            claims,
        })
    }

    fn check_app(&self, claims: &Map<String, Value>) -> Result<String, TokenError> {
        let mut named = None;
        for claim in ["appId", "iss"] {
            match claims.get(claim) {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) if v == &self.client_id => named = Some(v.clone()),
                Some(Value::String(v)) => {
                    return Err(TokenError::AppMismatch {
                        found: v.chars().take(64).collect(),
                    })
                }
                Some(_) => {
                    return Err(TokenError::WrongClaimType(if claim == "iss" {
                        "iss"
                    } else {
                        "appId"
                    }))
                }
            }
        }
        named.ok_or(TokenError::MissingAppId)
    }

    /// Who the consumer is: the token's subject, else the e-mail or phone the conversation variables carry, else an
    /// anonymous user keyed by the session — which only an app that allows anonymous users accepts.
    pub fn identify(
        &self,
        token: &VerifiedToken,
        email: Option<&str>,
        phone: Option<&str>,
        session_id: &str,
    ) -> Result<ConsumerIdentity, UserError> {
        let email = email.map(str::to_owned);
        let phone = phone.map(str::to_owned);
        let (id, source) = if let (false, Some(sub)) = (token.anonymous, &token.subject) {
            (sub.clone(), IdentitySource::Subject)
        } else if let Some(e) = &email {
            (e.to_ascii_lowercase(), IdentitySource::Email)
        } else if let Some(p) = &phone {
            (p.clone(), IdentitySource::Phone)
        } else {
            if !self.allow_anonymous {
                return Err(UserError::AnonymousNotAllowed);
            }
            let id = match &token.subject {
                // Kore marks anonymous users with isAnonymous and a random sub: keep that id.
                Some(sub) => sub.clone(),
                None => format!("anon:{session_id}"),
            };
            return Ok(ConsumerIdentity {
                id,
                source: IdentitySource::Anonymous,
                email: None,
                phone: None,
            });
        };
        Ok(ConsumerIdentity {
            id,
            source,
            email,
            phone,
        })
    }

    /// Whether an identified consumer may talk to the bot: an anonymous one always (it passed [`Self::identify`]), a
    /// known one always, an unknown one only when the app auto-registers users (the bridge then creates the record).
    pub fn admit(&self, identity: &ConsumerIdentity, known: bool) -> Result<Admission, UserError> {
        if identity.source == IdentitySource::Anonymous {
            return Ok(Admission::Anonymous);
        }
        if known {
            return Ok(Admission::Known);
        }
        if self.auto_register {
            return Ok(Admission::Register);
        }
        Err(UserError::UnknownUser)
    }
}

/// Where a consumer's identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    Subject,
    Email,
    Phone,
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerIdentity {
    pub id: String,
    pub source: IdentitySource,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl ConsumerIdentity {
    pub fn bot_user(&self) -> BotUser {
        BotUser {
            id: self.id.clone(),
            anonymous: self.source == IdentitySource::Anonymous,
            email: self.email.clone(),
            phone: self.phone.clone(),
        }
    }
}

/// What the bridge does with an identified consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Anonymous,
    Known,
    /// Create the user record, then go on.
    Register,
}

/// A consumer the app does not admit. The bridge answers 403 with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("anonymous users are not allowed on this channel (allow_anonymous = false)")]
    AnonymousNotAllowed,
    #[error("unknown user and auto-registration is off on this channel (auto_register = false)")]
    UnknownUser,
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::BadSignature,
        // Unreachable after the header check, but a refusal either way.
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            TokenError::Malformed("algorithm refused".into())
        }
        K::InvalidKeyFormat | K::InvalidRsaKey(_) => TokenError::BadSignature,
        K::Base64(_) => TokenError::Malformed("not base64url".into()),
        K::Json(_) => TokenError::Malformed("claims are not JSON".into()),
        K::Utf8(_) => TokenError::Malformed("not UTF-8".into()),
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A NumericDate claim: an integer, or a finite number with a fraction (truncated). Seconds.
fn numeric_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15) {
                Ok(Some(f.trunc() as i64))
            } else {
                Err(TokenError::WrongClaimType(name))
            }
        }
        Some(_) => Err(TokenError::WrongClaimType(name)),
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::WrongClaimType(name)),
    }
}

/// HS credentials for a new client app, as Kore.ai generates them when HS256/HS512 is chosen: a client id
/// (`cs-` and a random UUID, Kore's form) and a client secret (base64 of 32 random bytes for HS256, 64 for HS512,
/// from the thread-local CSPRNG). The secret's characters are the HMAC key, as Kore's SDK samples use it.
#[derive(Debug, Clone)]
pub struct HsCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

pub fn generate_hs_credentials(algorithm: JwtAlgorithm) -> Result<HsCredentials, ClientAppError> {
    let secret_len = match algorithm {
        JwtAlgorithm::HS256 => 32,
        JwtAlgorithm::HS512 => 64,
        JwtAlgorithm::RS256 | JwtAlgorithm::RS512 => return Err(ClientAppError::NotHmac),
    };
    let mut rng = rand::rng();
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    id[6] = (id[6] & 0x0f) | 0x40; // UUID version 4
    id[8] = (id[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(id);
    let client_id = format!(
        "cs-{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let mut secret = vec![0u8; secret_len];
    rng.fill_bytes(&mut secret);
    Ok(HsCredentials {
        client_id,
        client_secret: Secret::new(STANDARD.encode(&secret)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_have_kore_form_and_differ() {
        let a = generate_hs_credentials(JwtAlgorithm::HS256).unwrap();
        let b = generate_hs_credentials(JwtAlgorithm::HS256).unwrap();
        assert!(
            a.client_id.starts_with("cs-") && a.client_id.len() == 39,
            "{}",
            a.client_id
        );
        assert_ne!(a.client_id, b.client_id);
        assert_ne!(a.client_secret.expose(), b.client_secret.expose());
        assert_eq!(STANDARD.decode(a.client_secret.expose()).unwrap().len(), 32);
        let c = generate_hs_credentials(JwtAlgorithm::HS512).unwrap();
        assert_eq!(STANDARD.decode(c.client_secret.expose()).unwrap().len(), 64);
        assert_eq!(
            generate_hs_credentials(JwtAlgorithm::RS256).unwrap_err(),
            ClientAppError::NotHmac
        );
        // A generated secret makes a valid app.
        ClientApp::new(&ClientAppConfig::hs(
            a.client_id,
            JwtAlgorithm::HS256,
            a.client_secret,
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains(c.client_secret.expose()));
    }

    #[test]
    fn config_errors() {
        let mut cfg = ClientAppConfig::hs("cs-1", JwtAlgorithm::HS256, Secret::new("short"));
        assert_eq!(
            ClientApp::new(&cfg).unwrap_err(),
            ClientAppError::WeakSecret
        );
        cfg.jwt_secret = None;
        assert_eq!(
            ClientApp::new(&cfg).unwrap_err(),
            ClientAppError::MissingSecret(JwtAlgorithm::HS256)
        );
        cfg.jwt_secret = Some(Secret::new("x".repeat(40)));
        cfg.jwt_public_key = Some("pem".into());
        assert!(matches!(
            ClientApp::new(&cfg).unwrap_err(),
            ClientAppError::ConflictingKey(..)
        ));
        let rs = ClientAppConfig::rs("cs-1", JwtAlgorithm::RS256, "not a pem");
        assert!(matches!(
            ClientApp::new(&rs).unwrap_err(),
            ClientAppError::InvalidPublicKey(_)
        ));
        let rs = ClientAppConfig::rs("", JwtAlgorithm::RS256, "x");
        assert_eq!(
            ClientApp::new(&rs).unwrap_err(),
            ClientAppError::EmptyClientId
        );
    }

    #[test]
    fn config_from_toml_like_json() {
        let cfg: ClientAppConfig = serde_json::from_value(serde_json::json!({
            "client_id": "cs-1", "jwt_algorithm": "HS512", "jwt_secret": "s", "allow_anonymous": true
        }))
        .unwrap();
        assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::HS512);
        assert!(cfg.allow_anonymous && !cfg.auto_register);
        assert_eq!(cfg.jwt_leeway_seconds, DEFAULT_LEEWAY_SECONDS);
        assert!(!format!("{cfg:?}").contains("\"s\""));
        assert!(
            serde_json::from_value::<ClientAppConfig>(serde_json::json!({
                "client_id": "cs-1", "jwt_algorithm": "none"
            }))
            .is_err()
        );
    }
}
