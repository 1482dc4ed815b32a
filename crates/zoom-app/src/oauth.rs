//! OAuth for the Zoom App: PKCE, the web install flow, in-client authorization, token exchange and refresh,
//! the deeplink back into the client, and the deauthorization notice.
//!
//! Sources (reference §1.6):
//! - Web install flow with PKCE S256: `GET {oauth_base}/oauth/authorize?response_type=code&client_id&redirect_uri
//!   &code_challenge&code_challenge_method=S256&state` (zoom/zoomapps-sample-js `server/helpers/zoom-api.js`
//!   @ f357443; zoom/zoomapps-serverless-vuejs `functions/index.js`).
//! - Token exchange and refresh: `POST {oauth_base}/oauth/token`, HTTP Basic `client_id:client_secret`,
//!   `application/x-www-form-urlencoded` body `grant_type=authorization_code&code&redirect_uri&code_verifier` or
//!   `grant_type=refresh_token&refresh_token` (zoom/zoomapps-advancedsample-react `backend/util/zoom-api.js`;
//!   marketplace.zoom.us/docs/guides/auth/oauth). Zoom rotates refresh tokens: "the latest refresh token must
//!   always be used" (devsupport.zoom.us article 360060332931), so a refresh returns a new pair to store.
//! - In-client OAuth: `zoomSdk.authorize({codeChallenge, state})`, then the `onAuthorized` event
//!   `{code, redirectUri, result, state?, timestamp}` (`@zoom/appssdk` `AuthorizeOptions`, `OnAuthorizedEvent`).
//!   **Which challenge method Zoom expects there is contradictory**: developers.zoom.us/docs/zoom-apps/authentication/
//!   says only `plain` is supported and Zoom's advanced sample sends `codeChallenge = codeVerifier`
//!   (zoomapps-advancedsample-react `backend/api/zoomapp/controller.js`), while an older marketplace page said
//!   "only code_challenge_method SHA256 is supported". Hence [`PkceMethod`] is a setting; `plain` is the default.
//! - Deeplink: `POST {api_base}/zoomapp/deeplink` with the user's bearer token, body `{"action": "<string>"}`
//!   (the samples) or `{"action":"openApp","type":1}` (ZCC quickstart: "1 = open in Zoom Client"); the answer's
//!   `deeplink` is where the browser is sent. ❓ The full request schema is not documented.
//! - Deauthorization: event `app_deauthorized`, payload `account_id`, `user_id`, `client_id`,
//!   `deauthorization_time`, `signature`, `user_data_retention` (marketplace.zoom.us/docs/api-reference/
//!   webhook-reference/app-events/app-deauthorized and docs/guides/publishing/data-compliance). Verification tokens
//!   were retired in 2023; the notice is checked like every other Zoom event, with `x-zm-signature`
//!   ([`zoom::webhook`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;
use subtle::ConstantTimeEq;
use url::Url;
use zoom::webhook::{UrlValidationResponse, WebhookVerifier, URL_VALIDATION_EVENT};

use crate::secret::Secret;

/// RFC 7636 §4.1: the verifier's alphabet.
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
/// Length of generated verifiers (RFC 7636 allows 43..=128).
pub const VERIFIER_LEN: usize = 64;

/// How the code challenge is derived from the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PkceMethod {
    /// `BASE64URL(SHA-256(verifier))` without padding. Always used for the web install flow.
    S256,
    /// challenge = verifier. Zoom's current in-client docs and sample use it.
    #[default]
    #[serde(rename = "plain")]
    Plain,
}

impl PkceMethod {
    /// The `code_challenge_method` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::S256 => "S256",
            PkceMethod::Plain => "plain",
        }
    }
}

/// A PKCE verifier and its challenge. Keep the whole value server-side (in the session); send only the challenge.
#[derive(Clone)]
pub struct Pkce {
    verifier: Secret,
    challenge: String,
    method: PkceMethod,
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A `plain` challenge is the verifier itself, so it is masked too.
        let challenge: &str = match self.method {
            PkceMethod::S256 => &self.challenge,
            PkceMethod::Plain => "***",
        };
        f.debug_struct("Pkce")
            .field("verifier", &self.verifier)
            .field("challenge", &challenge)
            .field("method", &self.method)
            .finish()
    }
}

impl Pkce {
    /// A fresh 64-character verifier from the unreserved alphabet (OS-seeded CSPRNG).
    pub fn generate(method: PkceMethod) -> Self {
        let mut rng = rand::rng();
        let mut bytes = [0u8; VERIFIER_LEN];
        rng.fill_bytes(&mut bytes);
        // 66 symbols: reject bytes >= 198 (3 * 66) to keep the draw uniform.
        let mut verifier = String::with_capacity(VERIFIER_LEN);
        let mut i = 0;
        while verifier.len() < VERIFIER_LEN {
            if i == bytes.len() {
                rng.fill_bytes(&mut bytes);
                i = 0;
            }
            let b = bytes[i];
            i += 1;
            if usize::from(b) < UNRESERVED.len() * 3 {
                verifier.push(char::from(UNRESERVED[usize::from(b) % UNRESERVED.len()]));
            }
        }
        Self::build(verifier, method)
    }

    /// Rebuilds from a stored verifier; refuses one outside RFC 7636's alphabet or length.
    pub fn from_verifier(verifier: &str, method: PkceMethod) -> Result<Self, OAuthError> {
        let ok_len = (43..=128).contains(&verifier.len());
        if !ok_len || !verifier.bytes().all(|b| UNRESERVED.contains(&b)) {
            return Err(OAuthError::InvalidVerifier);
        }
        Ok(Self::build(verifier.to_string(), method))
    }

    fn build(verifier: String, method: PkceMethod) -> Self {
        let challenge = match method {
            PkceMethod::S256 => s256_challenge(&verifier),
            PkceMethod::Plain => verifier.clone(),
        };
        Self {
            verifier: Secret::new(verifier),
            challenge,
            method,
        }
    }

    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    pub fn method(&self) -> PkceMethod {
        self.method
    }
}

/// `BASE64URL(SHA-256(ASCII(verifier)))` without padding (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh OAuth `state`: 32 random bytes, base64url (43 characters).
pub fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares the state sent back with the one kept in the session, in constant time.
pub fn state_matches(expected: &str, received: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

/// What the panel passes to `zoomSdk.authorize(...)` (SDK `AuthorizeOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeOptions {
    pub code_challenge: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl AuthorizeOptions {
    pub fn new(pkce: &Pkce, state: &str) -> Self {
        Self {
            code_challenge: pkce.challenge().to_string(),
            state: Some(state.to_string()),
        }
    }
}

/// The SDK's `onAuthorized` event, as the panel forwards it (SDK `OnAuthorizedEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnAuthorized {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub redirect_uri: String,
    pub result: bool,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// Why an OAuth step failed. Never carries a token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("the PKCE verifier is not 43-128 unreserved characters")]
    InvalidVerifier,
    #[error("request to Zoom failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The token endpoint refused: Zoom answers `{"reason": "...", "error": "..."}`.
    #[error("Zoom OAuth refused ({status}): {error:?} {reason:?}")]
    Refused {
        status: u16,
        error: Option<String>,
        reason: Option<String>,
    },
    /// A REST call answered with Zoom's error body `{code, message}`.
    #[error("Zoom API error {status} (code {code:?}): {message}")]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    #[error("unexpected Zoom response for {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("the deeplink Zoom returned is not a zoommtg:, zoomus: or https: URL")]
    UntrustedDeeplink,
}

/// Where Zoom is and which app is asking.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// `https://zoom.us` (`{oauth_base}/oauth/authorize`, `{oauth_base}/oauth/token`).
    pub oauth_base: Url,
    /// `https://api.zoom.us/v2`.
    pub api_base: Url,
    pub client_id: String,
    pub client_secret: Secret,
}

/// Tokens of one user. `Debug` masks both tokens.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenSet {
    pub access_token: Secret,
    /// Rotated by every refresh: store the new one.
    pub refresh_token: Secret,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime of the access token, seconds (Zoom: an hour).
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    #[serde(default)]
    pub scope: Option<String>,
    /// Some token answers name the API host to use for this user.
    #[serde(default)]
    pub api_url: Option<String>,
}

fn default_expires_in() -> u64 {
    3600
}

impl TokenSet {
    /// Epoch milliseconds at which the access token expires, given when it was obtained.
    pub fn expires_at_ms(&self, obtained_at_ms: i64) -> i64 {
        let lifetime = i64::try_from(self.expires_in.saturating_mul(1000)).unwrap_or(i64::MAX);
        obtained_at_ms.saturating_add(lifetime)
    }
}

/// True when a token expiring at `expires_at_ms` should be refreshed now (within `margin` of expiry).
pub fn refresh_due(expires_at_ms: i64, now_ms: i64, margin: Duration) -> bool {
    let margin_ms = i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
    now_ms >= expires_at_ms.saturating_sub(margin_ms)
}

/// `GET /users/me`: who authorized. Other fields are ignored.
#[derive(Clone, Deserialize)]
pub struct ZoomUser {
    pub id: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl fmt::Debug for ZoomUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoomUser")
            .field("id", &"***")
            .field("account_id", &self.account_id.as_ref().map(|_| "***"))
            .field("email", &self.email.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Body of `POST /zoomapp/deeplink`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeeplinkRequest {
    /// Comes back as the `act` claim of the app context (a string; the samples send JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `1` = open in the Zoom client (ZCC quickstart).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<u32>,
}

#[derive(Deserialize)]
struct DeeplinkResponse {
    deeplink: String,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Talks to Zoom's OAuth endpoints and the two REST calls the install flow needs.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    http: reqwest::Client,
    config: OAuthConfig,
}

impl OAuthClient {
    pub fn new(http: reqwest::Client, config: OAuthConfig) -> Self {
        Self { http, config }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    fn join(base: &Url, path: &str) -> Result<Url, OAuthError> {
        let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), path);
        Url::parse(&joined).map_err(|e| OAuthError::InvalidUrl(e.to_string()))
    }

    /// The web install flow's authorization URL (always PKCE S256, with `state`).
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        pkce: &Pkce,
        state: &str,
    ) -> Result<Url, OAuthError> {
        let mut url = Self::join(&self.config.oauth_base, "oauth/authorize")?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", pkce.challenge())
            .append_pair("code_challenge_method", pkce.method().as_str())
            .append_pair("state", state);
        Ok(url)
    }

    /// Exchanges an authorization code (from the callback or from `onAuthorized`) for tokens.
    /// `redirect_uri` must be the one the code was issued for: the callback URL, or for in-client OAuth the
    /// event's `redirectUri` (Zoom's sample passes the page's `href`).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<TokenSet, OAuthError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ])
        .await
    }

    /// Refreshes; the answer carries a new refresh token that replaces the old one.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenSet, OAuthError> {
        let url = Self::join(&self.config.oauth_base, "oauth/token")?;
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            let parsed: Option<OAuthErrorBody> = serde_json::from_slice(&body).ok();
            return Err(OAuthError::Refused {
                status: status.as_u16(),
                error: parsed.as_ref().and_then(|p| p.error.clone()),
                reason: parsed.and_then(|p| p.reason),
            });
        }
        serde_json::from_slice(&body).map_err(|e| OAuthError::Decode {
            what: "OAuth token",
            detail: format!("{:?} at column {}", e.classify(), e.column()),
        })
    }

    async fn api_error(response: reqwest::Response) -> OAuthError {
        let status = response.status().as_u16();
        let parsed: Option<ApiErrorBody> = match response.bytes().await {
            Ok(body) => serde_json::from_slice(&body).ok(),
            Err(_) => None,
        };
        OAuthError::Api {
            status,
            code: parsed.as_ref().and_then(|p| p.code),
            message: parsed.and_then(|p| p.message).unwrap_or_default(),
        }
    }

    /// `GET {api_base}/users/me` with the user's token: the Zoom user id to key the tokens by.
    pub async fn current_user(&self, access_token: &Secret) -> Result<ZoomUser, OAuthError> {
        let url = Self::join(&self.config.api_base, "users/me")?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token.expose())
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(Self::api_error(response).await);
        }
        response.json().await.map_err(|e| OAuthError::Decode {
            what: "users/me",
            detail: e.to_string(),
        })
    }

    /// `POST {api_base}/zoomapp/deeplink`: a link that opens the app in the Zoom client. Only `zoommtg:`,
    /// `zoomus:` and `https:` links are returned (the bridge redirects the browser to it).
    pub async fn deeplink(
        &self,
        access_token: &Secret,
        request: &DeeplinkRequest,
    ) -> Result<Url, OAuthError> {
        let url = Self::join(&self.config.api_base, "zoomapp/deeplink")?;
        let response = self
            .http
            .post(url)
            .bearer_auth(access_token.expose())
            .json(request)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(Self::api_error(response).await);
        }
        let body: DeeplinkResponse = response.json().await.map_err(|e| OAuthError::Decode {
            what: "zoomapp/deeplink",
            detail: e.to_string(),
        })?;
        let link = Url::parse(&body.deeplink).map_err(|_| OAuthError::UntrustedDeeplink)?;
        match link.scheme() {
            "zoommtg" | "zoomus" | "https" => Ok(link),
            _ => Err(OAuthError::UntrustedDeeplink),
        }
    }
}

/// The event name of the deauthorization notice.
pub const DEAUTHORIZED_EVENT: &str = "app_deauthorized";

/// A user (or their admin) removed the app: delete that user's tokens and data, unless `user_data_retention`
/// is true. `Debug` masks the ids and the compliance signature.
#[derive(Clone)]
pub struct DeauthorizationNotice {
    pub event_ts: Option<i64>,
    pub account_id: String,
    pub user_id: String,
    pub client_id: String,
    /// ISO-8601 (`2019-06-17T13:52:28.632Z` in Zoom's example).
    pub deauthorization_time: Option<String>,
    /// Zoom's examples show it both as a boolean and as the string `"false"`; absent means "not granted".
    pub user_data_retention: bool,
    /// Passed back to Zoom's data compliance API.
    pub signature: Option<Secret>,
}

impl fmt::Debug for DeauthorizationNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeauthorizationNotice")
            .field("event_ts", &self.event_ts)
            .field("account_id", &"***")
            .field("user_id", &"***")
            .field("client_id", &self.client_id)
            .field("deauthorization_time", &self.deauthorization_time)
            .field("user_data_retention", &self.user_data_retention)
            .finish()
    }
}

/// A request to the app's event endpoint, after its signature was checked.
#[derive(Debug, Clone)]
pub enum AppNotice {
    /// `endpoint.url_validation`: answer with this body.
    UrlValidation(UrlValidationResponse),
    Deauthorized(DeauthorizationNotice),
    /// Any other (signed) event; the caller decides.
    Other {
        event: String,
    },
}

/// Why a notice was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Signature(#[from] zoom::webhook::SignatureError),
    #[error("the notice is not JSON with an event name ({0})")]
    Malformed(String),
    #[error("the deauthorization notice has no {0}")]
    MissingField(&'static str),
}

#[derive(Deserialize)]
struct RawNotice {
    event: String,
    #[serde(default)]
    event_ts: Option<i64>,
    #[serde(default)]
    payload: serde_json::Value,
}

fn string_field(payload: &serde_json::Value, name: &'static str) -> Option<String> {
    payload
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Checks `x-zm-signature` / `x-zm-request-timestamp` over the raw body (`now_s`: epoch seconds), then reads the
/// event. The bridge answers 401 on `Signature`, 400 on the others.
pub fn parse_app_notice(
    verifier: &WebhookVerifier,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<AppNotice, NoticeError> {
    let verified = verifier.verify(signature, timestamp, body, now_s)?;
    let raw: RawNotice = serde_json::from_slice(body).map_err(|e| {
        NoticeError::Malformed(format!("{:?} at column {}", e.classify(), e.column()))
    })?;
    match raw.event.as_str() {
        URL_VALIDATION_EVENT => {
            let plain_token = string_field(&raw.payload, "plainToken")
                .ok_or(NoticeError::MissingField("plainToken"))?;
            let encrypted_token = verifier
                .encrypt_plain_token(verified, &plain_token)
                .ok_or(NoticeError::MissingField("secret"))?;
            Ok(AppNotice::UrlValidation(UrlValidationResponse {
                plain_token,
                encrypted_token,
            }))
        }
        DEAUTHORIZED_EVENT => {
            let p = &raw.payload;
            let retention = match p.get("user_data_retention") {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            Ok(AppNotice::Deauthorized(DeauthorizationNotice {
                event_ts: raw.event_ts,
                account_id: string_field(p, "account_id")
                    .ok_or(NoticeError::MissingField("account_id"))?,
                user_id: string_field(p, "user_id").ok_or(NoticeError::MissingField("user_id"))?,
                client_id: string_field(p, "client_id")
                    .ok_or(NoticeError::MissingField("client_id"))?,
                deauthorization_time: string_field(p, "deauthorization_time"),
                user_data_retention: retention,
                signature: string_field(p, "signature").map(Secret::new),
            }))
        }
        _ => Ok(AppNotice::Other { event: raw.event }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_follow_rfc7636() {
        for method in [PkceMethod::S256, PkceMethod::Plain] {
            let p = Pkce::generate(method);
            let v = p.verifier().expose();
            assert_eq!(v.len(), VERIFIER_LEN);
            assert!(v.bytes().all(|b| UNRESERVED.contains(&b)));
            Pkce::from_verifier(v, method).unwrap();
            match method {
                PkceMethod::S256 => assert_eq!(p.challenge(), s256_challenge(v)),
                PkceMethod::Plain => assert_eq!(p.challenge(), v),
            }
        }
        assert_ne!(
            Pkce::generate(PkceMethod::S256).verifier(),
            Pkce::generate(PkceMethod::S256).verifier()
        );
        assert!(Pkce::from_verifier("short", PkceMethod::S256).is_err());
        assert!(Pkce::from_verifier(&"a".repeat(129), PkceMethod::S256).is_err());
        assert!(Pkce::from_verifier(&format!("{}+", "a".repeat(50)), PkceMethod::S256).is_err());
    }

    #[test]
    fn pkce_debug_hides_the_verifier() {
        for method in [PkceMethod::Plain, PkceMethod::S256] {
            let p = Pkce::generate(method);
            let shown = format!("{p:?}");
            assert!(!shown.contains(p.verifier().expose()), "{shown}");
        }
    }

    #[test]
    fn state_comparison() {
        let s = new_state();
        assert_eq!(s.len(), 43);
        assert!(state_matches(&s, &s));
        assert!(!state_matches(&s, &new_state()));
        assert!(!state_matches("", ""));
        assert!(!state_matches(&s, &s[..42]));
    }

    #[test]
    fn authorize_url_has_every_parameter_once() {
        let client = OAuthClient::new(
            reqwest::Client::new(),
            OAuthConfig {
                oauth_base: Url::parse("https://zoom.us/").unwrap(),
                api_base: Url::parse("https://api.zoom.us/v2").unwrap(),
                client_id: "cid".into(),
                client_secret: "cs".into(),
            },
        );
        let pkce = Pkce::generate(PkceMethod::S256);
        let url = client
            .authorize_url(
                "https://bridge.example/zoomapp/oauth/callback",
                &pkce,
                "st&=",
            )
            .unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q.len(), 6);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(
            q["redirect_uri"],
            "https://bridge.example/zoomapp/oauth/callback"
        );
        assert_eq!(q["code_challenge"], pkce.challenge());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], "st&=");
        assert!(!url.as_str().contains(pkce.verifier().expose()));
    }

    #[test]
    fn token_set_expiry_and_refresh_due() {
        let t: TokenSet = serde_json::from_str(
            r#"{"access_token":"a","token_type":"bearer","refresh_token":"r","expires_in":3599,"scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_at_ms(1_000), 1_000 + 3_599_000);
        let exp = t.expires_at_ms(0);
        assert!(!refresh_due(exp, exp - 301_000, Duration::from_secs(300)));
        assert!(refresh_due(exp, exp - 300_000, Duration::from_secs(300)));
        assert!(!format!("{t:?}").contains("\"a\""));
    }
}
