//! An HTTP stand-in for Zoom's Server-to-Server OAuth and the ZCC engagements REST API (reference §1.0–1.2, §5.1,
//! §6), serving a generated [`Scenario`] so the bridge's OAuth client, reconciler and rate-limit handling can be tested
//! without a Zoom account.
//!
//! Routes: `POST /oauth/token`, `GET /v2/contact_center/engagements`, `GET /v2/contact_center/engagements/{id}`.
//! Everything else answers Zoom's JSON error shape; no request input can make a handler panic.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Days, Months, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::generator::{Scenario, SimEvent, DEFAULT_ACCOUNT_ID};
use crate::{iso_time, opaque_id};

/// Scopes a ZCC reporting app would hold (reference §5.1); informational only, nothing checks them.
const SCOPES: &str = "contact_center_report:read:admin contact_center_recording:read:admin \
                      contact_center_inbox:read:admin contact_center_note:read:admin";
const MAX_PAGE_SIZE: u32 = 100;
const DEFAULT_PAGE_SIZE: u32 = 10;
const PAGE_TOKEN_INVALID: &str = "The next page token is invalid or expired.";
const QPS_MESSAGE: &str =
    "You have reached the maximum per-second rate limit for this API. Try again later.";
const DAILY_MESSAGE: &str =
    "You have reached the maximum daily rate limit for this API. Refer to the response \
                             header for details on when you can make another request.";

/// Behaviour of a [`SimServer`]. The defaults match a Business+ ZCC account (reference §6.1) with Zoom's TTLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimServerConfig {
    /// The account the S2S app belongs to; a token request for another account is refused.
    pub account_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of an access token (Zoom: one hour).
    pub token_ttl: Duration,
    /// Lifetime of a `next_page_token` (ZCC spec: 15 minutes).
    pub page_token_ttl: Duration,
    /// Requests per second for MEDIUM-labelled endpoints (list engagements).
    pub medium_per_second: u32,
    /// Requests per second for LIGHT-labelled endpoints (get engagement).
    pub light_per_second: u32,
    /// Optional daily cap for MEDIUM endpoints, to exercise the `Daily-limit` 429 (Zoom resets it at UTC midnight).
    pub medium_per_day: Option<u32>,
    /// Hide engagements that have not ended yet by the wall clock, as Zoom does (reference §1.2). Off by default so
    /// that a scenario dated later today is fully visible to tests; the live demo turns it on.
    pub completed_only: bool,
}

impl Default for SimServerConfig {
    fn default() -> Self {
        Self {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            client_id: "simClientId0000000000".to_owned(),
            client_secret: "simClientSecret00000000000000000".to_owned(),
            token_ttl: Duration::from_secs(3600),
            page_token_ttl: Duration::from_secs(15 * 60),
            medium_per_second: 20,
            light_per_second: 40,
            medium_per_day: None,
            completed_only: false,
        }
    }
}

/// Request counters, for tests that assert how a client behaved (how many tokens it fetched, whether it backed off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// `POST /oauth/token` requests, successful or not.
    pub token_requests: u64,
    pub tokens_issued: u64,
    /// `GET /v2/contact_center/engagements` requests (all outcomes).
    pub list_engagements: u64,
    /// `GET /v2/contact_center/engagements/{id}` requests (all outcomes).
    pub get_engagement: u64,
    /// Requests to paths or methods the simulator does not serve.
    pub unknown: u64,
    /// `/v2` requests refused with 401.
    pub unauthorized: u64,
    /// 429 responses sent (per-second and daily).
    pub rate_limited: u64,
}

/// A running simulator; dropping it stops the server too, [`SimServer::shutdown`] also waits for it.
#[derive(Debug)]
pub struct SimServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Serves `scenario` on an ephemeral port of 127.0.0.1.
    pub async fn start(config: SimServerConfig, scenario: &Scenario) -> anyhow::Result<SimServer> {
        Self::start_on(config, scenario, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `scenario` on `addr` (the CLI's fixed port).
    pub async fn start_on(
        config: SimServerConfig,
        scenario: &Scenario,
        addr: SocketAddr,
    ) -> anyhow::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            engagements: build_engagements(scenario),
            config,
            tokens: Mutex::default(),
            page_tokens: Mutex::default(),
            limits: Mutex::default(),
            counters: Counters::default(),
        });
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender means the SimServer is gone: stop as well.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "zoom-sim server stopped with an error");
            }
        });
        Ok(SimServer {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, the `api_url` of issued tokens: OAuth at `{base}/oauth/token`, REST at `{base}/v2`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The bound address (the port the OS chose for [`SimServer::start`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// Makes every token issued so far expired, so a test can check the client fetches a new one.
    pub fn expire_all_tokens(&self) {
        let now = Instant::now();
        for expiry in lock(&self.shared.tokens).values_mut() {
            *expiry = now;
        }
    }

    /// Makes every `next_page_token` issued so far expired (a walk that took longer than 15 minutes).
    pub fn expire_all_page_tokens(&self) {
        let now = Instant::now();
        for cursor in lock(&self.shared.page_tokens).values_mut() {
            cursor.expires = now;
        }
    }

    /// Stops accepting connections and waits (at most 5 s) for requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug)]
struct Shared {
    config: SimServerConfig,
    base_url: String,
    /// Sorted by `(start_ms, engagement_id)`, the order Zoom pages in.
    engagements: Vec<RestEngagement>,
    /// Access token → expiry. Expired tokens stay so they can be told apart from unknown ones.
    tokens: Mutex<HashMap<String, Instant>>,
    page_tokens: Mutex<HashMap<String, PageCursor>>,
    limits: Mutex<Limits>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    list_engagements: AtomicU64,
    get_engagement: AtomicU64,
    unknown: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            token_requests: get(&self.token_requests),
            tokens_issued: get(&self.tokens_issued),
            list_engagements: get(&self.list_engagements),
            get_engagement: get(&self.get_engagement),
            unknown: get(&self.unknown),
            unauthorized: get(&self.unauthorized),
            rate_limited: get(&self.rate_limited),
        }
    }
}

/// Where a paginated walk stands. Keyset (not offset) so that engagements becoming visible mid-walk
/// (`completed_only`) cannot shift pages and make the walk skip or repeat one.
#[derive(Debug, Clone)]
struct PageCursor {
    /// The query parameters the token is bound to (everything but `next_page_token` and `page_size`).
    binding: String,
    /// The window resolved by the first request, so a defaulted "past 24 h" does not slide between pages.
    window: (i64, i64),
    /// `(start_ms, engagement_id)` of the last engagement already returned.
    after: (i64, String),
    expires: Instant,
}

/// 1-second and daily windows for the rate-limit labels.
#[derive(Debug, Default)]
struct Limits {
    second: i64,
    medium: u32,
    light: u32,
    day: Option<NaiveDate>,
    medium_today: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Light,
    Medium,
}

impl Label {
    fn name(self) -> &'static str {
        match self {
            Label::Light => "Light",
            Label::Medium => "Medium",
        }
    }
}

/// The REST view of one engagement plus the fields the list filters on.
#[derive(Debug, Clone)]
struct RestEngagement {
    id: String,
    start_ms: i64,
    end_ms: i64,
    channel: String,
    direction: String,
    queue_ids: Vec<String>,
    agent_ids: Vec<String>,
    consumer_numbers: Vec<String>,
    /// The list item, field names as reference §1.1.
    item: Value,
}

/// `instant + duration`, saturating instead of panicking on an absurd configured TTL.
fn later(instant: Instant, duration: Duration) -> Instant {
    instant
        .checked_add(duration)
        .or_else(|| instant.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(instant)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked, so poisoning is not worth propagating.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(oauth_token))
        .route("/v2/contact_center/engagements", get(list_engagements))
        .route(
            "/v2/contact_center/engagements/{engagement_id}",
            get(get_engagement),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// A REST refusal: Zoom's error body `{"code", "message"}` plus headers (the 429s'). Kept small, unlike a
/// `Response`, so it can travel in `Result`s.
#[derive(Debug)]
struct ZoomError {
    status: StatusCode,
    code: u32,
    message: String,
    headers: Vec<(HeaderName, String)>,
}

impl ZoomError {
    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for ZoomError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "message": self.message});
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

fn zoom_error(status: StatusCode, code: u32, message: &str) -> ZoomError {
    ZoomError {
        status,
        code,
        message: message.to_owned(),
        headers: Vec::new(),
    }
}

fn bad_request(message: &str) -> ZoomError {
    zoom_error(StatusCode::BAD_REQUEST, 300, message)
}

/// The OAuth endpoint's error body `{"reason", "error"}` (a different shape from the REST errors).
fn oauth_error(status: StatusCode, error: &str, reason: &str) -> Response {
    (status, Json(json!({"reason": reason, "error": error}))).into_response()
}

async fn not_found(State(shared): State<Arc<Shared>>) -> ZoomError {
    Counters::bump(&shared.counters.unknown);
    zoom_error(StatusCode::NOT_FOUND, 404, "Not Found")
}

async fn method_not_allowed(State(shared): State<Arc<Shared>>) -> ZoomError {
    Counters::bump(&shared.counters.unknown);
    zoom_error(StatusCode::METHOD_NOT_ALLOWED, 405, "Method Not Allowed")
}

// ---------------------------------------------------------------------------------------------------------------------
// OAuth

async fn oauth_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let counters = &shared.counters;
    Counters::bump(&counters.token_requests);
    let config = &shared.config;
    // The query string wins; a form body is the documented alternative (reference §5.1).
    let mut params = form.map(|Form(p)| p).unwrap_or_default();
    params.extend(query.map(|Query(p)| p).unwrap_or_default());
    let param = |name: &str| params.get(name).map(String::as_str);

    if param("grant_type") != Some("account_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    let credentials = basic_credentials(&headers);
    let valid = credentials
        .as_ref()
        .is_some_and(|(id, secret)| *id == config.client_id && *secret == config.client_secret);
    if !valid {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client_id or client_secret",
        );
    }
    if param("account_id") != Some(config.account_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid account_id",
        );
    }

    let token = {
        let mut rng = rand::rng();
        format!("{}{}", opaque_id(&mut rng), opaque_id(&mut rng))
    };
    {
        let mut tokens = lock(&shared.tokens);
        let now = Instant::now();
        // Tokens dead for a whole TTL are forgotten (they then read as invalid rather than expired), so a client
        // that fetches a token per request cannot grow the map without bound.
        tokens.retain(|_, expiry| later(*expiry, config.token_ttl) > now);
        tokens.insert(token.clone(), later(now, config.token_ttl));
    }
    Counters::bump(&counters.tokens_issued);
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": config.token_ttl.as_secs(),
        "scope": SCOPES,
        "api_url": shared.base_url,
    }))
    .into_response()
}

/// `(client_id, client_secret)` from `Authorization: Basic base64(id:secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

// ---------------------------------------------------------------------------------------------------------------------
// REST

impl Shared {
    /// Checks the bearer token (header only: Zoom refuses tokens in the query string since 2023).
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ZoomError> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let expiry = token.and_then(|t| lock(&self.tokens).get(t).copied());
        let message = match expiry {
            Some(expiry) if Instant::now() < expiry => return Ok(()),
            Some(_) => "Access token is expired.",
            None => "Invalid access token.",
        };
        Counters::bump(&self.counters.unauthorized);
        Err(zoom_error(StatusCode::UNAUTHORIZED, 124, message))
    }

    /// Admits a request under its rate-limit label or answers Zoom's 429 (reference §6.2).
    fn admit(&self, label: Label) -> Result<(), ZoomError> {
        let now = Utc::now();
        let refused = {
            let mut limits = lock(&self.limits);
            let second = now.timestamp();
            if limits.second != second {
                limits.second = second;
                limits.medium = 0;
                limits.light = 0;
            }
            let today = now.date_naive();
            if limits.day != Some(today) {
                limits.day = Some(today);
                limits.medium_today = 0;
            }
            let daily = match (label, self.config.medium_per_day) {
                (Label::Medium, Some(cap)) if limits.medium_today >= cap => Some(cap),
                _ => None,
            };
            let (used, cap) = match label {
                Label::Medium => (&mut limits.medium, self.config.medium_per_second),
                Label::Light => (&mut limits.light, self.config.light_per_second),
            };
            if let Some(cap) = daily {
                Some(Some(cap))
            } else if *used >= cap {
                Some(None)
            } else {
                *used += 1;
                if label == Label::Medium {
                    limits.medium_today += 1;
                }
                None
            }
        };
        let Some(daily) = refused else {
            return Ok(());
        };
        Counters::bump(&self.counters.rate_limited);
        let category = HeaderName::from_static("x-ratelimit-category");
        let kind = HeaderName::from_static("x-ratelimit-type");
        let error = match daily {
            Some(cap) => {
                let midnight = now
                    .date_naive()
                    .checked_add_days(Days::new(1))
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
                    .unwrap_or(now.timestamp_millis());
                zoom_error(StatusCode::TOO_MANY_REQUESTS, 429, DAILY_MESSAGE)
                    .header(category, label.name())
                    .header(kind, "Daily-limit")
                    .header(
                        HeaderName::from_static("x-ratelimit-limit"),
                        cap.to_string(),
                    )
                    .header(HeaderName::from_static("x-ratelimit-remaining"), "0")
                    .header(RETRY_AFTER, iso_time(midnight))
            }
            None => zoom_error(StatusCode::TOO_MANY_REQUESTS, 429, QPS_MESSAGE)
                .header(category, label.name())
                .header(kind, "QPS"),
        };
        Err(error)
    }

    fn visible(&self, engagement: &RestEngagement, now_ms: i64) -> bool {
        !self.config.completed_only || engagement.end_ms <= now_ms
    }

    fn list(&self, params: &HashMap<String, String>) -> Result<Value, ZoomError> {
        let param = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let page_size = match param("page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                Ok(n) if n > MAX_PAGE_SIZE => {
                    return Err(bad_request(&format!(
                        "The page_size can not exceed {MAX_PAGE_SIZE}."
                    )))
                }
                _ => return Err(bad_request("Invalid field: page_size.")),
            },
        };
        let filters = Filters::parse(params)?;
        // Bound to every non-empty parameter but the token itself and the page size, as Zoom asks for "the same
        // query parameters" on each page.
        let binding = params
            .iter()
            .filter(|(k, v)| {
                !v.is_empty() && k.as_str() != "next_page_token" && k.as_str() != "page_size"
            })
            .collect::<BTreeMap<_, _>>()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");

        let now = Utc::now();
        let (window, after) = match param("next_page_token") {
            Some(token) => {
                let cursor = lock(&self.page_tokens).get(token).cloned();
                match cursor {
                    Some(c) if c.binding == binding && Instant::now() < c.expires => {
                        (c.window, Some(c.after))
                    }
                    _ => return Err(bad_request(PAGE_TOKEN_INVALID)),
                }
            }
            None => (window(param("from"), param("to"), now)?, None),
        };

        let now_ms = now.timestamp_millis();
        let matching: Vec<&RestEngagement> = self
            .engagements
            .iter()
            .filter(|e| e.start_ms >= window.0 && e.start_ms <= window.1)
            .filter(|e| self.visible(e, now_ms) && filters.matches(e))
            .collect();
        let remaining: Vec<&RestEngagement> = match &after {
            Some((ms, id)) => matching
                .iter()
                .copied()
                .filter(|e| (e.start_ms, e.id.as_str()) > (*ms, id.as_str()))
                .collect(),
            None => matching.clone(),
        };
        let size = usize::try_from(page_size).unwrap_or(usize::MAX);
        let page = &remaining[..remaining.len().min(size)];
        let next_page_token = match page.last() {
            Some(last) if remaining.len() > page.len() => {
                let token = opaque_id(&mut rand::rng());
                let cursor = PageCursor {
                    binding,
                    window,
                    after: (last.start_ms, last.id.clone()),
                    expires: later(Instant::now(), self.config.page_token_ttl),
                };
                let mut tokens = lock(&self.page_tokens);
                // Forget long-dead cursors so a long benchmark does not grow the map without bound.
                let horizon = Instant::now();
                tokens.retain(|_, c| later(c.expires, self.config.page_token_ttl) > horizon);
                tokens.insert(token.clone(), cursor);
                token
            }
            _ => String::new(),
        };
        Ok(json!({
            "next_page_token": next_page_token,
            "page_size": page_size,
            "total_records": matching.len(),
            "from": iso_time(window.0),
            "to": iso_time(window.1),
            "timezone": "UTC",
            "engagements": page.iter().map(|e| e.item.clone()).collect::<Vec<_>>(),
        }))
    }
}

/// The list filters of reference §1.1 that the simulator applies (`channel_types`/`channel_sources` are ignored).
#[derive(Debug, Default)]
struct Filters {
    queue_id: Option<String>,
    user_id: Option<String>,
    consumer_number: Option<String>,
    channel: Option<String>,
    direction: Option<String>,
}

impl Filters {
    fn parse(params: &HashMap<String, String>) -> Result<Filters, ZoomError> {
        let param = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        let filters = Filters {
            queue_id: param("queue_id"),
            user_id: param("user_id"),
            consumer_number: param("consumer_number"),
            channel: param("channel"),
            direction: param("direction"),
        };
        if let Some(channel) = &filters.channel {
            if !matches!(channel.as_str(), "voice" | "video" | "messaging" | "email") {
                return Err(bad_request("Invalid field: channel."));
            }
        }
        if let Some(direction) = &filters.direction {
            if !matches!(direction.as_str(), "inbound" | "outbound") {
                return Err(bad_request("Invalid field: direction."));
            }
        }
        Ok(filters)
    }

    fn matches(&self, e: &RestEngagement) -> bool {
        let eq =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        let any = |filter: &Option<String>, values: &[String]| {
            filter
                .as_deref()
                .is_none_or(|f| values.iter().any(|v| v == f))
        };
        eq(&self.channel, &e.channel)
            && eq(&self.direction, &e.direction)
            && any(&self.queue_id, &e.queue_ids)
            && any(&self.user_id, &e.agent_ids)
            && any(&self.consumer_number, &e.consumer_numbers)
    }
}

/// Resolves `from`/`to` to an inclusive epoch-ms window: default the past 24 h, at most one month.
fn window(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(i64, i64), ZoomError> {
    let (from, to) = match (from, to) {
        (None, None) => (now - chrono::Duration::hours(24), now),
        (Some(_), None) => {
            return Err(bad_request(
                "The to parameter is required when from is given.",
            ))
        }
        (None, Some(to)) => {
            let to = parse_time(to, true).ok_or_else(|| bad_request("Invalid field: to."))?;
            (to - chrono::Duration::hours(24), to)
        }
        (Some(from), Some(to)) => (
            parse_time(from, false).ok_or_else(|| bad_request("Invalid field: from."))?,
            parse_time(to, true).ok_or_else(|| bad_request("Invalid field: to."))?,
        ),
    };
    if from > to {
        return Err(bad_request(
            "The from date can not be later than the to date.",
        ));
    }
    if from
        .checked_add_months(Months::new(1))
        .is_some_and(|limit| to > limit)
    {
        return Err(bad_request("The date range can not exceed one month."));
    }
    Ok((from.timestamp_millis(), to.timestamp_millis()))
}

/// `yyyy-mm-dd` (the whole day: its first second for `from`, its last for `to`) or an RFC 3339 time
/// (`yyyy-MM-ddTHH:mm:ssZ`; offsets are accepted too).
fn parse_time(value: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)?
        } else {
            NaiveTime::MIN
        };
        return Some(date.and_time(time).and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn list_engagements(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    Counters::bump(&shared.counters.list_engagements);
    let answer = shared
        .authorize(&headers)
        .and_then(|()| shared.admit(Label::Medium))
        .and_then(|()| query.map_err(|_| bad_request("Invalid query string.")))
        .and_then(|Query(params)| shared.list(&params));
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn get_engagement(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    Counters::bump(&shared.counters.get_engagement);
    if let Err(error) = shared
        .authorize(&headers)
        .and_then(|()| shared.admit(Label::Light))
    {
        return error.into_response();
    }
    let now_ms = Utc::now().timestamp_millis();
    let found = id.ok().and_then(|Path(id)| {
        shared
            .engagements
            .iter()
            .find(|e| e.id == id && shared.visible(e, now_ms))
    });
    let Some(engagement) = found else {
        return zoom_error(StatusCode::NOT_FOUND, 2901, "Engagement does not exist")
            .into_response();
    };
    let mut body = engagement.item.clone();
    if let Value::Object(fields) = &mut body {
        // Zoom adds the engagement's event timeline here; the simulator does not model it (yet).
        fields.insert("events".to_owned(), Value::Array(Vec::new()));
    }
    Json(body).into_response()
}

// ---------------------------------------------------------------------------------------------------------------------
// The REST view of a scenario

/// Builds every engagement's REST view from the ground truth (membership: which queues, agents, notes, ...) and the
/// events (what the truth does not keep: names, channel source, note authors and times, transfer count).
fn build_engagements(scenario: &Scenario) -> Vec<RestEngagement> {
    let mut events: HashMap<&str, Vec<&SimEvent>> = HashMap::new();
    for event in &scenario.events {
        if let Some(id) = event.engagement_id() {
            events.entry(id).or_default().push(event);
        }
    }
    let directory = &scenario.directory;
    let agent_name = |id: &str| {
        directory
            .agents
            .iter()
            .find(|a| a.user_id == id)
            .map(|a| a.display_name.clone())
    };
    let queue_name = |id: &str| {
        directory
            .queues
            .iter()
            .find(|q| q.cc_queue_id == id)
            .map(|q| q.queue_name.clone())
    };

    let mut out: Vec<RestEngagement> = scenario
        .truth
        .engagements
        .iter()
        .map(|truth| {
            let events = events
                .get(truth.engagement_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let text = |object: &Value, key: &str| {
                object.get(key).and_then(Value::as_str).map(str::to_owned)
            };
            let mut channel_source = None;
            // Insertion-ordered (first appearance) collections, keyed by id.
            let mut queues: Vec<(String, String)> = Vec::new();
            let mut agents: Vec<(String, String)> = Vec::new();
            let mut consumers: Vec<(String, Map<String, Value>)> = Vec::new();
            let mut dispositions: Vec<(String, String)> = Vec::new();
            let mut notes: Vec<(String, Value)> = Vec::new();
            let mut transfer_count = 0u32;
            for event in events {
                let Some(object) = event.object() else {
                    continue;
                };
                let name = event.event().strip_prefix("contact_center.").unwrap_or("");
                if channel_source.is_none() {
                    channel_source = text(object, "channel_source");
                }
                if let Some(id) = text(object, "cc_queue_id") {
                    if !queues.iter().any(|(q, _)| *q == id) {
                        let name = text(object, "queue_name")
                            .or_else(|| queue_name(&id))
                            .unwrap_or_default();
                        queues.push((id, name));
                    }
                }
                if let Some(id) = text(object, "consumer_id") {
                    let at = match consumers.iter().position(|(c, _)| *c == id) {
                        Some(at) => at,
                        None => {
                            consumers.push((id.clone(), Map::new()));
                            consumers.len() - 1
                        }
                    };
                    if let Some((_, fields)) = consumers.get_mut(at) {
                        fields.insert("consumer_id".to_owned(), json!(id));
                        for key in ["consumer_display_name", "consumer_number"] {
                            if let Some(value) = text(object, key) {
                                fields.insert(key.to_owned(), json!(value));
                            }
                        }
                    }
                }
                match name {
                    "engagement_user_answered" | "engagement_transfer_accepted" => {
                        if let Some(id) = text(object, "user_id") {
                            if !agents.iter().any(|(a, _)| *a == id) {
                                let name = text(object, "display_name")
                                    .or_else(|| agent_name(&id))
                                    .unwrap_or_default();
                                agents.push((id, name));
                            }
                        }
                        if name == "engagement_transfer_accepted" {
                            transfer_count += 1;
                        }
                    }
                    "engagement_disposition_added" => {
                        if let Some(id) = text(object, "disposition_id") {
                            if !dispositions.iter().any(|(d, _)| *d == id) {
                                let name = text(object, "disposition_name").unwrap_or_default();
                                dispositions.push((id, name));
                            }
                        }
                    }
                    "engagement_note_added" => {
                        let (Some(id), Some(modified)) =
                            (text(object, "note_id"), text(object, "last_modified_time"))
                        else {
                            continue;
                        };
                        let note = json!({
                            "note_id": id,
                            "note": text(object, "note").unwrap_or_default(),
                            "user_id": text(object, "user_id").unwrap_or_default(),
                            "last_modified_time": modified,
                        });
                        // The latest `last_modified_time` wins (ties: the later event), as in the ground truth.
                        match notes.iter_mut().find(|(n, _)| *n == id) {
                            Some((_, current)) => {
                                let newer = current["last_modified_time"]
                                    .as_str()
                                    .is_none_or(|seen| modified.as_str() >= seen);
                                if newer {
                                    *current = note;
                                }
                            }
                            None => notes.push((id, note)),
                        }
                    }
                    _ => {}
                }
            }
            // Fill in what a consumer's events did not carry from the directory; the number only when the
            // engagement knew it (web chat and email have none).
            for (id, fields) in &mut consumers {
                if let Some(known) = directory.consumers.iter().find(|c| c.consumer_id == *id) {
                    fields
                        .entry("consumer_display_name")
                        .or_insert_with(|| json!(known.consumer_display_name));
                    if truth.consumer_numbers.contains(&known.consumer_number) {
                        fields
                            .entry("consumer_number")
                            .or_insert_with(|| json!(known.consumer_number));
                    }
                }
            }
            let channel_source = channel_source.unwrap_or_else(|| truth.channel.clone());
            let consumer_numbers = consumers
                .iter()
                .filter_map(|(_, f)| f.get("consumer_number")?.as_str().map(str::to_owned))
                .chain(truth.consumer_numbers.iter().cloned())
                .collect();
            let item = json!({
                "engagement_id": truth.engagement_id,
                "start_time": iso_time(truth.start_time_ms),
                "end_time": iso_time(truth.end_time_ms),
                "duration": (truth.end_time_ms - truth.start_time_ms).max(0) / 1000,
                "direction": truth.direction,
                "channels": [{"channel": truth.channel, "channel_source": channel_source}],
                "consumers": consumers.into_iter().map(|(_, f)| Value::Object(f)).collect::<Vec<_>>(),
                "queues": queues.iter().map(|(id, name)| json!({"cc_queue_id": id, "queue_name": name}))
                    .collect::<Vec<_>>(),
                "agents": agents.iter().map(|(id, name)| json!({"user_id": id, "display_name": name}))
                    .collect::<Vec<_>>(),
                "dispositions": dispositions.iter()
                    .map(|(id, name)| json!({"disposition_id": id, "disposition_name": name}))
                    .collect::<Vec<_>>(),
                "notes": notes.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
                "transfer_count": transfer_count,
            });
            RestEngagement {
                id: truth.engagement_id.clone(),
                start_ms: truth.start_time_ms,
                end_ms: truth.end_time_ms,
                channel: truth.channel.clone(),
                direction: truth.direction.clone(),
                queue_ids: queues.into_iter().map(|(id, _)| id).collect(),
                agent_ids: agents.into_iter().map(|(id, _)| id).collect(),
                consumer_numbers,
                item,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{generate, GeneratorConfig};

    #[test]
    fn rest_view_matches_the_ground_truth() {
        let scenario = generate(&GeneratorConfig {
            engagements: 60,
            ..GeneratorConfig::default()
        });
        let view = build_engagements(&scenario);
        assert_eq!(view.len(), scenario.truth.engagements.len());
        assert!(view
            .windows(2)
            .all(|w| (w[0].start_ms, &w[0].id) <= (w[1].start_ms, &w[1].id)));
        for e in &view {
            let truth = scenario.truth.engagement(&e.id).expect("in the truth");
            let ids = |key: &str, field: &str| {
                let mut ids: Vec<String> = e.item[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v[field].as_str().map(str::to_owned))
                    .collect();
                ids.sort();
                ids
            };
            assert_eq!(
                ids("queues", "cc_queue_id"),
                Vec::from_iter(truth.queue_ids.clone())
            );
            assert_eq!(
                ids("agents", "user_id"),
                Vec::from_iter(truth.agent_ids.clone())
            );
            assert_eq!(
                ids("dispositions", "disposition_id"),
                Vec::from_iter(truth.disposition_ids.clone())
            );
            let notes: BTreeMap<String, String> = e.item["notes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    (
                        n["note_id"].as_str().unwrap_or_default().to_owned(),
                        n["note"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(notes, truth.notes);
            assert_eq!(e.item["start_time"], iso_time(truth.start_time_ms));
            assert_eq!(e.item["channels"][0]["channel"], truth.channel.as_str());
        }
        assert!(view.iter().any(|e| e.item["transfer_count"] != 0));
    }

    #[test]
    fn windows_follow_zoom_rules() {
        let now = Utc::now();
        let (from, to) = window(None, None, now).expect("default window");
        assert_eq!(to - from, 24 * 3600 * 1000);
        let (from, to) = window(Some("2026-11-01"), Some("2026-11-30"), now).expect("dates");
        assert_eq!(iso_time(from), "2026-11-01T00:00:00Z");
        assert_eq!(iso_time(to), "2026-11-30T23:59:59Z");
        assert!(window(
            Some("2026-10-01T00:00:00Z"),
            Some("2026-11-01T00:00:00Z"),
            now
        )
        .is_ok());
        assert!(window(
            Some("2026-10-01T00:00:00Z"),
            Some("2026-11-01T00:00:01Z"),
            now
        )
        .is_err());
        assert!(window(Some("2026-11-01"), None, now).is_err());
        assert!(window(Some("2026-11-02"), Some("2026-11-01"), now).is_err());
        assert!(window(Some("yesterday"), Some("2026-11-01"), now).is_err());
    }
}
