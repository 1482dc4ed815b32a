//! The client proper.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{self, Stream};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::budget::{Budget, RateLabel};
use super::error::{ApiError, CODE_INVALID_TOKEN};
use super::models::{
    Engagement, EngagementPage, EngagementQuery, InboxMessage, InboxMessagePage, InboxMessageQuery,
    Note, NotePage, Page, PresenceStatus, PresenceUpdate, Recording, RecordingPage, RecordingQuery,
    TokenResponse,
};

/// Connection and budget settings. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientConfig {
    pub account_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// `https://zoom.us` (the token endpoint is `{oauth_base}/oauth/token`).
    pub oauth_base: String,
    /// `https://api.zoom.us/v2`.
    pub api_base: String,
    /// Requests per second this client allows itself per label. Zoom's limits are per account and shared by
    /// every app on it: set these to this app's share. Defaults: Zoom's Business+ ZCC limits.
    pub light_per_second: f64,
    pub medium_per_second: f64,
    pub heavy_per_second: f64,
    /// Share of each rate kept in reserve (default 5%). Zoom counts requests per one-second window as they
    /// arrive; at exactly the limit, a few milliseconds of network jitter put one request too many into a
    /// window and draw a 429 (and a pause). 5% spacing tolerates ~50 ms of jitter at 20 requests/s.
    pub rate_headroom: f64,
    /// Renew the token this long before it expires.
    pub token_refresh_margin: Duration,
    /// Attempts per request for 429, 5xx and network errors.
    pub max_attempts: u32,
    /// Longest `Retry-After` worth waiting for; a longer one (a daily limit) fails with `RateLimited`.
    pub max_retry_wait: Duration,
    /// Total timeout of a REST request (not of file downloads, which may take as long as they need).
    pub timeout: Duration,
    /// A file download fails when no body byte arrives for this long (default 60 s), so a stalled transfer ends
    /// instead of hanging; there is no total download timeout (files can be GiBs).
    pub download_read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            account_id: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            oauth_base: "https://zoom.us".into(),
            api_base: "https://api.zoom.us/v2".into(),
            light_per_second: 40.0,
            medium_per_second: 20.0,
            heavy_per_second: 10.0,
            rate_headroom: 0.05,
            token_refresh_margin: Duration::from_secs(300),
            max_attempts: 6,
            max_retry_wait: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
            download_read_timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("oauth_base", &self.oauth_base)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

struct CachedToken {
    value: String,
    /// When to stop using it (expiry minus the refresh margin).
    renew_at: Instant,
}

/// A ZCC REST client. Share one per account (`Arc`): the token and the budgets are per client.
pub struct ZoomClient {
    http: reqwest::Client,
    /// File downloads (`super::download`): no total timeout, a read timeout, redirects followed.
    pub(super) downloads: reqwest::Client,
    pub(super) config: ClientConfig,
    /// Held while a token is fetched, so concurrent callers wait for one fetch instead of each starting one.
    token: Mutex<Option<CachedToken>>,
    light: Budget,
    medium: Budget,
    heavy: Budget,
}

/// Zoom's error body.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub(super) code: Option<i64>,
    pub(super) message: Option<String>,
}

impl ZoomClient {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        for (name, value) in [
            ("account_id", &config.account_id),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
        ] {
            if value.trim().is_empty() {
                return Err(ApiError::Config(format!("{name} is empty")));
            }
        }
        let keep = 1.0 - config.rate_headroom.clamp(0.0, 0.5);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("zcc-bridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let downloads = super::download::http_client(&config)?;
        Ok(Self {
            http,
            downloads,
            light: Budget::new(config.light_per_second * keep),
            medium: Budget::new(config.medium_per_second * keep),
            heavy: Budget::new(config.heavy_per_second * keep),
            config,
            token: Mutex::new(None),
        })
    }

    fn budget(&self, label: RateLabel) -> &Budget {
        match label {
            RateLabel::Light => &self.light,
            RateLabel::Medium => &self.medium,
            RateLabel::Heavy => &self.heavy,
        }
    }

    /// A valid access token: the cached one, or a new one (one fetch at a time).
    pub async fn access_token(&self) -> Result<String, ApiError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let fetched = self.fetch_token().await?;
        let value = fetched.value.clone();
        *cached = Some(fetched);
        Ok(value)
    }

    /// Forgets `token` if it is still the cached one (Zoom refused it), so the next call fetches a new one.
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, ApiError> {
        let url = format!(
            "{}/oauth/token",
            self.config.oauth_base.trim_end_matches('/')
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(&url)
                .query(&[
                    ("grant_type", "account_credentials"),
                    ("account_id", self.config.account_id.as_str()),
                ])
                .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempt < self.config.max_attempts => {
                    tracing::warn!(error = %e, attempt, "Zoom OAuth request failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = response.status();
            if status.is_server_error() && attempt < self.config.max_attempts {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            let body = response.text().await?;
            if !status.is_success() {
                return Err(ApiError::Auth {
                    status: status.as_u16(),
                    body: truncate(&body, 300),
                });
            }
            let token: TokenResponse =
                serde_json::from_str(&body).map_err(|e| ApiError::Decode {
                    what: "OAuth token".into(),
                    detail: e.to_string(),
                })?;
            let ttl = Duration::from_secs(token.expires_in.unwrap_or(3600));
            // Renew before expiry, but never sooner than half the lifetime (short test tokens).
            let margin = self.config.token_refresh_margin.min(ttl / 2);
            tracing::debug!(
                ?ttl,
                scope = token.scope.as_deref().unwrap_or(""),
                "new Zoom access token"
            );
            return Ok(CachedToken {
                value: token.access_token,
                renew_at: Instant::now() + ttl - margin,
            });
        }
    }

    /// GET `path` (relative to `api_base`) under `label`'s budget; decodes the JSON body.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        label: RateLabel,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let response = self.send(label, Method::GET, path, query).await?;
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: path.to_string(),
            detail: e.to_string(),
        })
    }

    /// Sends a request with retries: a refused token is renewed once; 429 waits for `Retry-After` (seconds or
    /// an HTTP/ISO-8601 date) or about a second; 5xx and network errors back off exponentially with jitter.
    pub async fn send(
        &self,
        label: RateLabel,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Response, ApiError> {
        let url = self.api_url(path);
        let mut attempt = 0;
        let mut renewed_token = false;
        loop {
            attempt += 1;
            let token = self.access_token().await?;
            self.budget(label).acquire().await;
            let sent = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .query(query)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempt < self.config.max_attempts => {
                    tracing::warn!(error = %e, attempt, path, "Zoom request failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let (category, kind, wait) = rate_limit_details(&response);
                match wait {
                    Some(wait) if wait > self.config.max_retry_wait => {
                        return Err(ApiError::RateLimited {
                            category,
                            kind,
                            retry_at: SystemTime::now().checked_add(wait),
                        });
                    }
                    _ if attempt >= self.config.max_attempts => {
                        return Err(ApiError::RateLimited {
                            category,
                            kind,
                            retry_at: wait.and_then(|w| SystemTime::now().checked_add(w)),
                        });
                    }
                    wait => {
                        let wait =
                            wait.unwrap_or_else(|| backoff::jittered(Duration::from_secs(1), 0.25));
                        tracing::warn!(?wait, %category, %kind, path, "Zoom rate limit hit; waiting");
                        // Everyone sharing this label waits, not just this request.
                        self.budget(label).pause(wait).await;
                        continue;
                    }
                }
            }
            if status.is_server_error() && attempt < self.config.max_attempts {
                tracing::warn!(%status, attempt, path, "Zoom server error; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            let error = api_error(response).await;
            if !renewed_token && token_refused(&error) {
                // Expired early or revoked: one fresh token, then give up.
                renewed_token = true;
                self.invalidate(&token).await;
                attempt -= 1;
                continue;
            }
            return Err(error);
        }
    }

    fn api_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.config.api_base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// `GET /users/{userId}/presence_status` (Medium). `user_id`: a Zoom user id or an e-mail address.
    pub async fn presence_status(&self, user_id: &str) -> Result<PresenceStatus, ApiError> {
        let path = format!("users/{}/presence_status", path_segment(user_id));
        let response = self
            .send_once(RateLabel::Medium, Method::GET, &path, None)
            .await?;
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: path,
            detail: e.to_string(),
        })
    }

    /// `PUT /users/{userId}/presence_status` (Medium), one attempt: Zoom takes one update per user per minute, so
    /// a 429 here is about this user and is the caller's to schedule (the label is not paused), as are 5301
    /// (not logged in to the client) and 1001 (no such user).
    pub async fn update_presence_status(
        &self,
        user_id: &str,
        update: &PresenceUpdate,
    ) -> Result<(), ApiError> {
        let path = format!("users/{}/presence_status", path_segment(user_id));
        let body = serde_json::to_value(update).map_err(|e| ApiError::Config(e.to_string()))?;
        self.send_once(RateLabel::Medium, Method::PUT, &path, Some(body))
            .await
            .map(|_| ())
    }

    /// One request under `label`'s budget (a refused token is renewed once); any other failure is returned as
    /// it is, without retrying.
    pub async fn send_once(
        &self,
        label: RateLabel,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Response, ApiError> {
        let url = self.api_url(path);
        let mut renewed_token = false;
        loop {
            let token = self.access_token().await?;
            self.budget(label).acquire().await;
            let mut request = self.http.request(method.clone(), &url).bearer_auth(&token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let error = api_error(response).await;
            if !renewed_token && token_refused(&error) {
                renewed_token = true;
                self.invalidate(&token).await;
                continue;
            }
            return Err(error);
        }
    }

    /// `GET /contact_center/engagements/{id}` (Light). Zoom answers 404 code 2901 until the engagement is done.
    pub async fn engagement(&self, engagement_id: &str) -> Result<Engagement, ApiError> {
        self.get_json(
            RateLabel::Light,
            &format!("contact_center/engagements/{}", path_segment(engagement_id)),
            &[],
        )
        .await
    }

    /// One page of `GET /contact_center/engagements` (Medium).
    pub async fn engagement_page(
        &self,
        query: &EngagementQuery,
        page_token: Option<&str>,
    ) -> Result<EngagementPage, ApiError> {
        let mut params = query.params();
        if let Some(token) = page_token.filter(|t| !t.is_empty()) {
            params.push(("next_page_token", token.to_string()));
        }
        self.get_json(RateLabel::Medium, "contact_center/engagements", &params)
            .await
    }

    /// Every engagement of the window, one item at a time (see [`ZoomClient::pages`]).
    pub fn engagements(
        &self,
        query: EngagementQuery,
    ) -> impl Stream<Item = Result<Engagement, ApiError>> + '_ {
        flatten(self.pages::<EngagementPage>(
            RateLabel::Medium,
            "contact_center/engagements".into(),
            query.params(),
        ))
    }

    /// `GET /contact_center/engagements` (Medium), page by page.
    pub fn engagement_pages(
        &self,
        query: &EngagementQuery,
    ) -> impl Stream<Item = Result<Vec<Engagement>, ApiError>> + '_ {
        self.pages::<EngagementPage>(
            RateLabel::Medium,
            "contact_center/engagements".into(),
            query.params(),
        )
    }

    /// `GET /contact_center/recordings` (Medium), page by page.
    pub fn recording_pages(
        &self,
        query: &RecordingQuery,
    ) -> impl Stream<Item = Result<Vec<Recording>, ApiError>> + '_ {
        self.pages::<RecordingPage>(
            RateLabel::Medium,
            "contact_center/recordings".into(),
            query.params(),
        )
    }

    /// `GET /contact_center/engagements/{id}/recordings` (Medium, as the account-wide list), page by page.
    pub fn engagement_recording_pages(
        &self,
        engagement_id: &str,
    ) -> impl Stream<Item = Result<Vec<Recording>, ApiError>> + '_ {
        self.pages::<RecordingPage>(
            RateLabel::Medium,
            format!(
                "contact_center/engagements/{}/recordings",
                path_segment(engagement_id)
            ),
            vec![("page_size", "300".into())],
        )
    }

    /// `GET /contact_center/inboxes/messages` (Medium): voicemails of every inbox, page by page.
    pub fn inbox_message_pages(
        &self,
        query: &InboxMessageQuery,
    ) -> impl Stream<Item = Result<Vec<InboxMessage>, ApiError>> + '_ {
        self.pages::<InboxMessagePage>(
            RateLabel::Medium,
            "contact_center/inboxes/messages".into(),
            query.params(),
        )
    }

    /// `GET /contact_center/engagements/{id}/notes` (Medium), page by page.
    pub fn engagement_note_pages(
        &self,
        engagement_id: &str,
    ) -> impl Stream<Item = Result<Vec<Note>, ApiError>> + '_ {
        self.pages::<NotePage>(
            RateLabel::Medium,
            format!(
                "contact_center/engagements/{}/notes",
                path_segment(engagement_id)
            ),
            vec![("page_size", "300".into())],
        )
    }

    /// Walks a paginated list page after page. When a page token has expired (Zoom: after 15 minutes) the list
    /// is walked again from the start and items already yielded are skipped, so each item is yielded once. The
    /// stream ends after the first error.
    pub fn pages<P: Page + 'static>(
        &self,
        label: RateLabel,
        path: String,
        params: Vec<(&'static str, String)>,
    ) -> impl Stream<Item = Result<Vec<P::Item>, ApiError>> + '_ {
        struct Walk {
            path: String,
            params: Vec<(&'static str, String)>,
            token: Option<String>,
            /// Keys already yielded; kept only after a restart made it necessary (a walk is usually one pass).
            seen: Option<HashSet<String>>,
            yielded: Vec<String>,
            restarts: u32,
            done: bool,
        }
        let walk = Walk {
            path,
            params,
            token: None,
            seen: None,
            yielded: Vec::new(),
            restarts: 0,
            done: false,
        };
        stream::unfold(walk, move |mut walk| async move {
            loop {
                if walk.done {
                    return None;
                }
                let mut params = walk.params.clone();
                if let Some(token) = &walk.token {
                    params.push(("next_page_token", token.clone()));
                }
                match self.get_json::<P>(label, &walk.path, &params).await {
                    Ok(page) => {
                        walk.token = page.next_page_token().map(str::to_string);
                        walk.done = walk.token.is_none();
                        let mut items = page.into_items();
                        match &mut walk.seen {
                            Some(seen) => items.retain(|i| seen.insert(P::key(i).to_string())),
                            // Remember this pass's keys cheaply in case a restart needs them.
                            None => walk
                                .yielded
                                .extend(items.iter().map(|i| P::key(i).to_string())),
                        }
                        return Some((Ok(items), walk));
                    }
                    Err(e)
                        if e.is_page_token_expired()
                            && walk.token.is_some()
                            && walk.restarts < 5 =>
                    {
                        walk.restarts += 1;
                        tracing::info!(
                            restarts = walk.restarts,
                            path = %walk.path,
                            "page token expired; walking the list again"
                        );
                        let seen = walk.seen.get_or_insert_with(HashSet::new);
                        seen.extend(walk.yielded.drain(..));
                        walk.token = None;
                    }
                    Err(e) => {
                        walk.done = true;
                        return Some((Err(e), walk));
                    }
                }
            }
        })
    }
}

/// Pages into items.
fn flatten<T, S>(pages: S) -> impl Stream<Item = Result<T, ApiError>>
where
    S: Stream<Item = Result<Vec<T>, ApiError>>,
{
    use futures_util::StreamExt as _;
    pages.flat_map(|page| {
        let items: Vec<Result<T, ApiError>> = match page {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    })
}

/// An id as one URL path segment (ids are url-safe base64 today; this keeps a surprising one from changing
/// the path).
fn path_segment(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '~' => c.to_string(),
            other => {
                let mut buf = [0u8; 4];
                other
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// `Retry-After` as seconds or as a date (Zoom sends an ISO-8601 date for daily limits), plus the category and
/// type headers.
pub(super) fn rate_limit_details(response: &Response) -> (String, String, Option<Duration>) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let category = header("x-ratelimit-category").unwrap_or_else(|| "unknown".into());
    let kind = header("x-ratelimit-type").unwrap_or_else(|| "unknown".into());
    let wait = header("retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
    (category, kind, wait)
}

/// Parses `Retry-After`: delta seconds, RFC 3339 / ISO-8601 (`2025-08-23T00:00:00Z`) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc3339(value)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(value))
        .ok()?;
    let at: SystemTime = at.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// 0.5 s, 1 s, 2 s, ... capped at 30 s, less up to a quarter at random.
fn backoff(attempt: u32) -> Duration {
    backoff::jittered(
        backoff::exponential(
            Duration::from_millis(500),
            Duration::from_secs(30),
            attempt.saturating_sub(1),
        ),
        0.25,
    )
}

/// The `ApiError::Api` a failed response carries (Zoom's `{code, message}` body, or the start of the text).
async fn api_error(response: Response) -> ApiError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let parsed: Option<ErrorBody> = serde_json::from_str(&body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| truncate(&body, 300));
    ApiError::Api {
        status,
        code,
        message,
    }
}

/// The access token was refused (expired early or revoked): worth one fresh token.
fn token_refused(error: &ApiError) -> bool {
    matches!(error, ApiError::Api { status, code, .. }
        if *status == StatusCode::UNAUTHORIZED.as_u16() && code.is_none_or(|c| c == CODE_INVALID_TOKEN))
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        // Zoom's daily-limit form: an ISO-8601 date.
        assert_eq!(
            parse_retry_after("2026-11-22T00:00:00Z", now),
            Some(Duration::from_secs(15 * 3600))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 00:00:00 GMT", now),
            Some(Duration::from_secs(15 * 3600))
        );
        // A date in the past means now.
        assert_eq!(
            parse_retry_after("2020-01-01T00:00:00Z", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(625));
        assert!(backoff(4) >= Duration::from_millis(3000));
        assert!(backoff(20) <= Duration::from_millis(37_500));
    }

    #[test]
    fn secret_is_not_debug_printed() {
        let config = ClientConfig {
            client_secret: "s3cr3t".into(),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
