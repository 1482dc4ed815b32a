//! An HTTP stand-in for Zoom's Server-to-Server OAuth and the ZCC REST API (reference §1.0–1.9, §5.1, §6), serving a
//! generated [`Scenario`] so the bridge's OAuth client, reconciler, archiver and rate-limit handling can be tested
//! without a Zoom account.
//!
//! Routes (`GET` unless noted; rate-limit label in brackets):
//! - `POST /oauth/token`: S2S OAuth (`account_credentials`).
//! - `/v2/contact_center/engagements` [MEDIUM], `/v2/contact_center/engagements/{id}` [LIGHT],
//!   `/v2/contact_center/engagements/{id}/recordings` [MEDIUM], `/v2/contact_center/engagements/{id}/notes` [MEDIUM],
//!   `/v2/contact_center/engagements/notes` [MEDIUM], `/v2/contact_center/recordings` [MEDIUM],
//!   `/v2/contact_center/inboxes/messages` [MEDIUM].
//! - `GET` and `PUT /v2/users/{userId}/presence_status` [MEDIUM]: Zoom Workplace user presence with its
//!   one-update-per-minute rule, and `/sim/presence...`, its control and truth routes ([`presence`]).
//! - The download, playback and transcript URLs of [`crate::urls`] (Bearer token, not rate limited): those REST lists
//!   for recordings and voicemails, and those the `*_transcript_completed` webhooks announce, including an e-mail
//!   engagement's `/v2/contact_center/email/messages?engagement_id=` (its messages, as JSON); and `/v2/_files/{link}`,
//!   the unauthenticated CDN-style link they redirect to when `download_redirect` is on.
//! - `/sim/truth`: the scenario's ground truth (no auth; not a Zoom API).
//!
//! Everything else answers Zoom's JSON error shape; no request input can make a handler panic.

mod downloads;
mod lists;
mod paging;
pub mod presence;
mod view;
pub mod zoomapp;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{Days, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::generator::{Scenario, DEFAULT_ACCOUNT_ID};
use crate::websocket::EventHub;
use crate::{iso_time, opaque_id};
use presence::{NewPresenceUser, PresenceChange, PresenceError, PresenceUser, PresenceWebhook};

pub use downloads::{FILE_LINK_INVALID_CODE, FILE_NOT_FOUND_CODE, VOICEMAIL_CONTENT_TYPE};
pub use lists::{ENGAGEMENT_NOT_FOUND_CODE, ENGAGEMENT_RECORDINGS_NOT_FOUND_CODE};
/// Zoom's rate-limit labels (the client crate's type, so both sides speak the same vocabulary).
pub use zoom::api::RateLabel;
pub use zoomapp::{DeauthorizeRequest, SimZoomApp, ZoomAppStats};

/// Scopes a ZCC reporting app would hold (reference §5.1); informational only, nothing checks them.
const SCOPES: &str = "contact_center_report:read:admin contact_center_recording:read:admin \
                      contact_center_inbox:read:admin contact_center_note:read:admin";
const QPS_MESSAGE: &str =
    "You have reached the maximum per-second rate limit for this API. Try again later.";
const DAILY_MESSAGE: &str =
    "You have reached the maximum daily rate limit for this API. Refer to the response \
                             header for details on when you can make another request.";
/// Bodies of injected server errors. ❓ Zoom documents no 5xx body; these follow its `{code, message}` shape.
const INTERNAL_ERROR_MESSAGE: &str = "Internal Server Error";
const UNAVAILABLE_MESSAGE: &str = "Service Unavailable";

/// Behaviour of a [`SimServer`]. The defaults match a Business+ ZCC account (reference §6.1) with Zoom's TTLs, and
/// switch every fault off.
#[derive(Debug, Clone, PartialEq)]
pub struct SimServerConfig {
    /// The account the S2S app belongs to; a token request for another account is refused.
    pub account_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of an access token (Zoom: one hour).
    pub token_ttl: Duration,
    /// Lifetime of a `next_page_token` (ZCC spec: 15 minutes).
    pub page_token_ttl: Duration,
    /// Requests per second for LIGHT-labelled endpoints (get engagement). Business+: 40.
    pub light_per_second: u32,
    /// Requests per second for MEDIUM-labelled endpoints (every list). Business+: 20.
    pub medium_per_second: u32,
    /// Requests per second for HEAVY-labelled endpoints. Business+: 10. No served endpoint is HEAVY by default;
    /// [`SimServerConfig::label_overrides`] makes one so.
    pub heavy_per_second: u32,
    /// Optional daily caps per label, to exercise the `Daily-limit` 429 (Zoom resets them at UTC midnight; its
    /// documented daily cap is HEAVY's 30,000 on Business+, shared with resource-intensive APIs).
    pub light_per_day: Option<u32>,
    pub medium_per_day: Option<u32>,
    pub heavy_per_day: Option<u32>,
    /// Route template (`/v2/contact_center/recordings`, `/v2/contact_center/engagements/{engagement_id}`, ...) →
    /// the label to apply instead of the documented one, e.g. to test a client against a HEAVY endpoint.
    pub label_overrides: BTreeMap<String, RateLabel>,
    /// Hide what does not exist yet by the wall clock, as Zoom does: engagements that have not ended (reference
    /// §1.2), recordings, voicemails and transcripts whose completion event lies in the future. Off by default so
    /// that a scenario dated later today is fully visible to tests; the live demo turns it on.
    pub completed_only: bool,
    /// Size of every recording and voicemail file (the bytes are synthetic, derived from the file's id).
    pub media_bytes: u64,
    /// Files answer 404 until this long after the server started, like a recording Zoom is still processing
    /// after `recording_completed` fired.
    pub media_processing_delay: Duration,
    /// Answer downloads with a 302 to a short-lived unauthenticated link on this server (as a CDN-signed URL
    /// would be) instead of the bytes.
    pub download_redirect: bool,
    /// Lifetime of such a link (one minute by default).
    pub download_link_ttl: Duration,
    /// Throttle of every file transfer.
    pub download_bytes_per_second: Option<u64>,
    /// The first transfer of each file breaks (the connection is aborted) after this many body bytes; later
    /// transfers of the file succeed. Tests resumable downloads.
    pub cut_first_download_after: Option<u64>,
    /// Share of `/v2` JSON requests answered 500 or 503 before any work (auth, rate limits) is done.
    pub fault_5xx_rate: f64,
    /// Share of `/v2` JSON requests answered with a spurious per-second 429.
    pub fault_429_rate: f64,
    /// Seed of the fault draws: the n-th `/v2` JSON request's fate depends only on `(fault_seed, n)`.
    pub fault_seed: u64,
    /// Share of download requests (files, not redirect links) answered 500 or 503.
    pub download_fault_5xx_rate: f64,
    /// Share of download requests answered 429 with `Retry-After: 1`. ❓ Zoom documents no limit for files.
    pub download_fault_429_rate: f64,
    /// Shortest time between two successful `PUT /v2/users/{userId}/presence_status` of one user; an update
    /// sooner is answered 429. Zoom: one minute.
    pub presence_min_interval: Duration,
    /// Put `Retry-After: <seconds until the window ends>` on the presence 429. ❓ Zoom's header is unconfirmed, so
    /// off by default.
    pub presence_retry_after: bool,
    /// Send `user.presence_status_updated` webhooks here (they always go to the WebSocket subscription).
    pub presence_webhook: Option<PresenceWebhook>,
    /// Fire `user.presence_status_updated` for API updates too, not only for the user's own changes. ❓ Whether
    /// Zoom does is unconfirmed.
    pub presence_echo_api_updates: bool,
    /// User-managed Zoom Apps (the Contact Center Zoom App's development and production credentials): their
    /// authorization-code grant with PKCE, refresh, `users/me`, deeplinks, app contexts ([`zoomapp`]).
    pub zoom_apps: Vec<SimZoomApp>,
    /// The user signed in to Zoom in the browser of the web install flow (default: the directory's first agent).
    pub zoom_app_user: Option<String>,
    /// Lifetime of a user's access token (Zoom: one hour).
    pub user_token_ttl: Duration,
}

impl Default for SimServerConfig {
    fn default() -> Self {
        Self {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            client_id: "simClientId0000000000".to_owned(),
            client_secret: "simClientSecret00000000000000000".to_owned(),
            token_ttl: Duration::from_secs(3600),
            page_token_ttl: Duration::from_secs(15 * 60),
            light_per_second: 40,
            medium_per_second: 20,
            heavy_per_second: 10,
            light_per_day: None,
            medium_per_day: None,
            heavy_per_day: None,
            label_overrides: BTreeMap::new(),
            completed_only: false,
            media_bytes: 1024 * 1024,
            media_processing_delay: Duration::ZERO,
            download_redirect: false,
            download_link_ttl: Duration::from_secs(60),
            download_bytes_per_second: None,
            cut_first_download_after: None,
            fault_5xx_rate: 0.0,
            fault_429_rate: 0.0,
            fault_seed: 0,
            download_fault_5xx_rate: 0.0,
            download_fault_429_rate: 0.0,
            presence_min_interval: Duration::from_secs(60),
            presence_retry_after: false,
            presence_webhook: None,
            presence_echo_api_updates: false,
            zoom_apps: Vec::new(),
            zoom_app_user: None,
            user_token_ttl: Duration::from_secs(3600),
        }
    }
}

/// Request counters, for tests that assert how a client behaved (how many tokens it fetched, whether it backed off,
/// whether it resumed a download). Endpoint counters count every request, whatever its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// `POST /oauth/token` requests, successful or not.
    pub token_requests: u64,
    pub tokens_issued: u64,
    /// `GET /v2/contact_center/engagements`.
    pub list_engagements: u64,
    /// `GET /v2/contact_center/engagements/{id}`.
    pub get_engagement: u64,
    /// `GET /v2/contact_center/recordings`.
    pub list_recordings: u64,
    /// `GET /v2/contact_center/engagements/{id}/recordings`.
    pub engagement_recordings: u64,
    /// `GET /v2/contact_center/inboxes/messages`.
    pub list_inbox_messages: u64,
    /// `GET /v2/contact_center/engagements/{id}/notes`.
    pub engagement_notes: u64,
    /// `GET /v2/contact_center/engagements/notes`.
    pub list_notes: u64,
    /// `GET /sim/truth`.
    pub truth_requests: u64,
    /// Requests to the download, playback and transcript URLs (all outcomes, redirects included).
    pub download_requests: u64,
    /// File transfers started (200 or 206 with a body), on the Zoom URLs or on redirect links.
    pub downloads: u64,
    /// File body bytes sent.
    pub download_bytes: u64,
    /// 302s to a redirect link.
    pub download_redirects: u64,
    /// Transfers aborted by `cut_first_download_after`.
    pub downloads_cut: u64,
    /// Requests to paths or methods the simulator does not serve.
    pub unknown: u64,
    /// Requests refused with 401 (`/v2` and downloads).
    pub unauthorized: u64,
    /// 429 responses sent: per-second, daily and injected ones.
    pub rate_limited: u64,
    /// 500/503 answers injected by `fault_5xx_rate`.
    pub injected_5xx: u64,
    /// 429 answers injected by `fault_429_rate` (also counted in `rate_limited`).
    pub injected_429: u64,
    /// `PUT /v2/users/{userId}/presence_status`.
    pub presence_updates: u64,
    /// `GET /v2/users/{userId}/presence_status`.
    pub presence_reads: u64,
    /// Presence updates refused by the per-user minimum interval (not counted in `rate_limited`).
    pub presence_rate_limited: u64,
    /// `user.presence_status_updated` events fired.
    pub presence_events: u64,
    /// Presence webhooks acknowledged by the target, and given up on.
    pub presence_webhooks_acked: u64,
    pub presence_webhooks_failed: u64,
}

/// A running simulator; dropping it stops the server too, [`SimServer::shutdown`] also waits for it.
#[derive(Debug)]
pub struct SimServer {
    shared: Arc<Shared>,
    hub: EventHub,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The subscription id of the simulator's WebSocket endpoint.
pub const WS_SUBSCRIPTION_ID: &str = "simSubscription0000000";

/// A bound but not yet serving simulator: its address is known, so a scenario can be generated with payload URLs
/// that point at it (`api_base = format!("{}/v2", bound.base_url())`) before it starts serving that scenario.
#[derive(Debug)]
pub struct BoundSim {
    listener: TcpListener,
    addr: SocketAddr,
}

impl BoundSim {
    /// `http://ADDR:PORT`, what [`SimServer::base_url`] will return.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving `scenario`. Must be called within a Tokio runtime (it spawns the server task).
    pub fn serve(self, config: SimServerConfig, scenario: &Scenario) -> SimServer {
        let BoundSim { listener, addr } = self;
        let shared = Arc::new(Shared::new(config, scenario, format!("http://{addr}")));
        // The WebSocket endpoint accepts the tokens this server issued, while they are valid.
        let tokens = Arc::downgrade(&shared);
        let hub = EventHub::new(
            WS_SUBSCRIPTION_ID,
            Arc::new(move |token: &str| {
                tokens.upgrade().is_some_and(|shared| {
                    lock(&shared.tokens)
                        .get(token)
                        .is_some_and(|expiry| Instant::now() < *expiry)
                })
            }),
        );
        // Presence events are published to the subscription too.
        let _ = shared.hub.set(hub.clone());
        let app = router(shared.clone()).merge(crate::websocket::router(hub.clone()));
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
        SimServer {
            shared,
            hub,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
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
        Ok(Self::bind(addr).await?.serve(config, scenario))
    }

    /// Binds `addr` (port 0: any free port) without serving yet; see [`BoundSim`].
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<BoundSim> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        Ok(BoundSim { listener, addr })
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

    /// The WebSocket event subscription (`GET /ws?subscriptionId=...&access_token=...`): publish events to it.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// `ws://127.0.0.1:PORT/ws`; the subscription id is [`WS_SUBSCRIPTION_ID`].
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, crate::websocket::WS_PATH)
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

    /// Makes every download redirect link issued so far expired.
    pub fn expire_all_download_links(&self) {
        let now = Instant::now();
        for link in lock(&self.shared.links).values_mut() {
            link.expires = now;
        }
    }

    /// Every presence user with their history, in the order they were added (the directory's agents first): what
    /// `GET /sim/presence` serves.
    pub fn presence(&self) -> Vec<PresenceUser> {
        self.shared.presence_users()
    }

    /// One presence user, by id or e-mail.
    pub fn presence_user(&self, user: &str) -> Option<PresenceUser> {
        self.shared.presence_user(user)
    }

    /// Adds a presence user, or replaces the one with the same id (history included): `POST /sim/presence/users`.
    pub fn add_presence_user(&self, user: NewPresenceUser) -> Result<PresenceUser, PresenceError> {
        self.shared.add_presence_user(user)
    }

    /// The user (by id or e-mail) changes their own status in the Zoom client, or signs in or out:
    /// `POST /sim/presence/{userId}`. Not subject to the API's per-minute rule; fires `user.presence_status_updated`.
    pub fn change_presence(
        &self,
        user: &str,
        change: PresenceChange,
    ) -> Result<PresenceUser, PresenceError> {
        self.shared.change_presence(user, change)
    }

    /// Shorthand for [`SimServer::change_presence`] with a status only.
    pub fn user_sets_presence(
        &self,
        user: &str,
        status: &str,
    ) -> Result<PresenceUser, PresenceError> {
        self.change_presence(
            user,
            PresenceChange {
                status: Some(status.to_owned()),
                ..PresenceChange::default()
            },
        )
    }

    /// Shorthand for [`SimServer::change_presence`]: signs the user in (`Available`) or out (`Offline`).
    pub fn set_logged_in(
        &self,
        user: &str,
        logged_in: bool,
    ) -> Result<PresenceUser, PresenceError> {
        self.change_presence(
            user,
            PresenceChange {
                logged_in: Some(logged_in),
                ..PresenceChange::default()
            },
        )
    }

    /// A fresh `X-Zoom-App-Context` for `user_id` opening the Zoom App `client_id` (valid `ttl`), encrypted with
    /// that app's secret as Zoom does; `None` for an app the simulator does not know.
    pub fn mint_app_context(
        &self,
        client_id: &str,
        user_id: &str,
        ttl: Duration,
    ) -> Option<String> {
        self.shared.mint_app_context(client_id, user_id, ttl)
    }

    /// What `zoomSdk.authorize({codeChallenge})` does in the client (in-client OAuth): an authorization code for
    /// `user_id`, bound to the challenge (`method` `S256` or `plain`) and to the page (`redirect_uri`).
    pub fn in_client_authorize(
        &self,
        client_id: &str,
        user_id: &str,
        code_challenge: &str,
        method: &str,
        redirect_uri: &str,
    ) -> Option<String> {
        self.shared
            .in_client_code(client_id, user_id, code_challenge, method, redirect_uri)
    }

    /// The user removes the app: their tokens stop working and Zoom posts the signed `app_deauthorized` notice
    /// to `request.url`. Returns the target's HTTP status.
    pub async fn deauthorize(&self, request: &DeauthorizeRequest) -> anyhow::Result<u16> {
        zoomapp::send_deauthorization(&self.shared, request).await
    }

    /// Makes every user access token issued so far expired.
    pub fn expire_user_tokens(&self) {
        self.shared.expire_user_tokens();
    }

    pub fn zoom_app_stats(&self) -> ZoomAppStats {
        self.shared.zoom_app_stats()
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
    /// When serving began; `media_processing_delay` counts from here.
    started: Instant,
    view: view::View,
    /// `scenario.truth` serialized once.
    truth_json: Vec<u8>,
    /// Access token → expiry. Expired tokens stay so they can be told apart from unknown ones.
    tokens: Mutex<HashMap<String, Instant>>,
    page_tokens: Mutex<HashMap<String, paging::PageCursor>>,
    /// Redirect link → the file it serves.
    links: Mutex<HashMap<String, downloads::Link>>,
    /// Files whose first transfer was already cut (`cut_first_download_after`).
    cut_done: Mutex<HashSet<view::FileKey>>,
    limits: Mutex<Limits>,
    /// How many fault draws were made (the index of the next one).
    fault_draws: AtomicU64,
    counters: Counters,
    /// Presence users and their histories.
    presence: Mutex<presence::Presence>,
    /// The WebSocket subscription (set once serving), where presence events are published.
    hub: OnceLock<EventHub>,
    presence_sink: presence::PresenceSink,
    /// Zoom Apps: codes, user tokens and counters.
    zoom_app: Mutex<zoomapp::AppState>,
    /// The scenario's people (users of the Zoom Apps).
    directory: crate::generator::Directory,
}

impl Shared {
    fn new(config: SimServerConfig, scenario: &Scenario, base_url: String) -> Shared {
        // Serializing plain strings, numbers and sets cannot fail; an empty body would only hide a bug in a test.
        let truth_json = serde_json::to_vec(&scenario.truth).unwrap_or_default();
        Shared {
            presence: Mutex::new(presence::Presence::from_directory(&scenario.directory)),
            zoom_app: Mutex::default(),
            directory: scenario.directory.clone(),
            hub: OnceLock::new(),
            presence_sink: presence::PresenceSink::new(&config),
            base_url,
            started: Instant::now(),
            view: view::View::build(scenario),
            truth_json,
            config,
            tokens: Mutex::default(),
            page_tokens: Mutex::default(),
            links: Mutex::default(),
            cut_done: Mutex::default(),
            limits: Mutex::default(),
            fault_draws: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    list_engagements: AtomicU64,
    get_engagement: AtomicU64,
    list_recordings: AtomicU64,
    engagement_recordings: AtomicU64,
    list_inbox_messages: AtomicU64,
    engagement_notes: AtomicU64,
    list_notes: AtomicU64,
    truth_requests: AtomicU64,
    download_requests: AtomicU64,
    downloads: AtomicU64,
    download_bytes: AtomicU64,
    download_redirects: AtomicU64,
    downloads_cut: AtomicU64,
    unknown: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    injected_5xx: AtomicU64,
    injected_429: AtomicU64,
    presence_updates: AtomicU64,
    presence_reads: AtomicU64,
    presence_rate_limited: AtomicU64,
    presence_events: AtomicU64,
    presence_webhooks_acked: AtomicU64,
    presence_webhooks_failed: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn endpoint(&self, endpoint: Endpoint) -> &AtomicU64 {
        match endpoint {
            Endpoint::ListEngagements => &self.list_engagements,
            Endpoint::GetEngagement => &self.get_engagement,
            Endpoint::ListRecordings => &self.list_recordings,
            Endpoint::EngagementRecordings => &self.engagement_recordings,
            Endpoint::InboxMessages => &self.list_inbox_messages,
            Endpoint::EngagementNotes => &self.engagement_notes,
            Endpoint::Notes => &self.list_notes,
            Endpoint::UpdatePresenceStatus => &self.presence_updates,
            Endpoint::GetPresenceStatus => &self.presence_reads,
        }
    }

    fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            token_requests: get(&self.token_requests),
            tokens_issued: get(&self.tokens_issued),
            list_engagements: get(&self.list_engagements),
            get_engagement: get(&self.get_engagement),
            list_recordings: get(&self.list_recordings),
            engagement_recordings: get(&self.engagement_recordings),
            list_inbox_messages: get(&self.list_inbox_messages),
            engagement_notes: get(&self.engagement_notes),
            list_notes: get(&self.list_notes),
            truth_requests: get(&self.truth_requests),
            download_requests: get(&self.download_requests),
            downloads: get(&self.downloads),
            download_bytes: get(&self.download_bytes),
            download_redirects: get(&self.download_redirects),
            downloads_cut: get(&self.downloads_cut),
            unknown: get(&self.unknown),
            unauthorized: get(&self.unauthorized),
            rate_limited: get(&self.rate_limited),
            injected_5xx: get(&self.injected_5xx),
            injected_429: get(&self.injected_429),
            presence_updates: get(&self.presence_updates),
            presence_reads: get(&self.presence_reads),
            presence_rate_limited: get(&self.presence_rate_limited),
            presence_events: get(&self.presence_events),
            presence_webhooks_acked: get(&self.presence_webhooks_acked),
            presence_webhooks_failed: get(&self.presence_webhooks_failed),
        }
    }
}

/// The `/v2` JSON endpoints: their route, documented rate-limit label and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ListEngagements,
    GetEngagement,
    ListRecordings,
    EngagementRecordings,
    InboxMessages,
    EngagementNotes,
    Notes,
    /// `PUT /v2/users/{user_id}/presence_status`.
    UpdatePresenceStatus,
    /// `GET /v2/users/{user_id}/presence_status` (same route as the `PUT`).
    GetPresenceStatus,
}

impl Endpoint {
    /// The axum route template, also the key of [`SimServerConfig::label_overrides`] (shared by the `GET` and `PUT`
    /// of presence).
    fn route(self) -> &'static str {
        match self {
            Endpoint::ListEngagements => "/v2/contact_center/engagements",
            Endpoint::GetEngagement => "/v2/contact_center/engagements/{engagement_id}",
            Endpoint::ListRecordings => "/v2/contact_center/recordings",
            Endpoint::EngagementRecordings => {
                "/v2/contact_center/engagements/{engagement_id}/recordings"
            }
            Endpoint::InboxMessages => "/v2/contact_center/inboxes/messages",
            Endpoint::EngagementNotes => "/v2/contact_center/engagements/{engagement_id}/notes",
            Endpoint::Notes => "/v2/contact_center/engagements/notes",
            Endpoint::UpdatePresenceStatus | Endpoint::GetPresenceStatus => {
                "/v2/users/{user_id}/presence_status"
            }
        }
    }

    /// Reference §6.1: lists of engagements, recordings, inbox messages and notes are MEDIUM; get engagement LIGHT.
    /// §7.1: both presence endpoints are MEDIUM.
    fn label(self) -> RateLabel {
        match self {
            Endpoint::GetEngagement => RateLabel::Light,
            _ => RateLabel::Medium,
        }
    }
}

/// 1-second and daily windows per rate-limit label (indexed by [`label_index`]).
#[derive(Debug, Default)]
struct Limits {
    second: i64,
    this_second: [u32; 3],
    day: Option<NaiveDate>,
    today: [u32; 3],
}

fn label_index(label: RateLabel) -> usize {
    match label {
        RateLabel::Light => 0,
        RateLabel::Medium => 1,
        RateLabel::Heavy => 2,
    }
}

/// The `X-RateLimit-Category` value.
fn label_name(label: RateLabel) -> &'static str {
    match label {
        RateLabel::Light => "Light",
        RateLabel::Medium => "Medium",
        RateLabel::Heavy => "Heavy",
    }
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

/// SplitMix64's finalizer: a fast, well-mixed, stable hash step (the fault draws and the synthetic file bytes must
/// not change between Rust releases, which rules out `DefaultHasher`).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a of `parts` (separated, so `("ab", "c")` and `("a", "bc")` differ), then mixed.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    mix(h)
}

fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/oauth/token", post(oauth_token))
        .route("/sim/truth", get(truth));
    router = lists::routes(router);
    router = downloads::routes(router);
    router = presence::routes(router);
    router = zoomapp::routes(router);
    router
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

/// The ground truth, so an out-of-process test (the CLI's `serve`) can check a bridge against it.
async fn truth(State(shared): State<Arc<Shared>>) -> Response {
    Counters::bump(&shared.counters.truth_requests);
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        shared.truth_json.clone(),
    )
        .into_response()
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

    if matches!(
        param("grant_type"),
        Some("authorization_code") | Some("refresh_token")
    ) {
        return zoomapp::user_grant(&shared, &headers, &params);
    }
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
// What every `/v2` request goes through

impl Shared {
    /// Counts a `/v2` JSON request, then applies, in order: injected faults (before any work, as a failing front
    /// end would), the bearer check and the rate limit of the endpoint's label.
    fn gate(&self, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), ZoomError> {
        Counters::bump(self.counters.endpoint(endpoint));
        let label = self
            .config
            .label_overrides
            .get(endpoint.route())
            .copied()
            .unwrap_or_else(|| endpoint.label());
        self.inject_fault(
            self.config.fault_5xx_rate,
            self.config.fault_429_rate,
            label,
        )?;
        self.authorize(headers)?;
        self.admit(label)
    }

    /// Draws this request's injected fault, if any. The draw is a hash of `(fault_seed, n)` for the n-th request,
    /// so a sequential client sees the same faults on every run.
    pub(super) fn inject_fault(
        &self,
        p5xx: f64,
        p429: f64,
        label: RateLabel,
    ) -> Result<(), ZoomError> {
        let rate = |r: f64| {
            if r.is_finite() {
                r.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let (p5xx, p429) = (rate(p5xx), rate(p429));
        if p5xx == 0.0 && p429 == 0.0 {
            return Ok(());
        }
        let n = self.fault_draws.fetch_add(1, Ordering::Relaxed);
        let draw = mix(self.config.fault_seed ^ mix(n));
        // 53 random bits as a uniform number in [0, 1).
        let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
        if u < p5xx {
            Counters::bump(&self.counters.injected_5xx);
            return Err(if draw & 1 == 0 {
                zoom_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    500,
                    INTERNAL_ERROR_MESSAGE,
                )
            } else {
                zoom_error(StatusCode::SERVICE_UNAVAILABLE, 503, UNAVAILABLE_MESSAGE)
            });
        }
        if u < p5xx + p429 {
            Counters::bump(&self.counters.injected_429);
            Counters::bump(&self.counters.rate_limited);
            return Err(qps_error(label));
        }
        Ok(())
    }

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

    /// Admits a request under its rate-limit label or answers Zoom's 429 (reference §6.2). The daily cap is checked
    /// first: once it is spent, Zoom answers `Daily-limit` whatever the per-second load.
    fn admit(&self, label: RateLabel) -> Result<(), ZoomError> {
        let config = &self.config;
        let i = label_index(label);
        let per_second = [
            config.light_per_second,
            config.medium_per_second,
            config.heavy_per_second,
        ][i];
        let per_day = [
            config.light_per_day,
            config.medium_per_day,
            config.heavy_per_day,
        ][i];
        let now = Utc::now();
        let refused = {
            let mut limits = lock(&self.limits);
            let second = now.timestamp();
            if limits.second != second {
                limits.second = second;
                limits.this_second = [0; 3];
            }
            let today = now.date_naive();
            if limits.day != Some(today) {
                limits.day = Some(today);
                limits.today = [0; 3];
            }
            if let Some(cap) = per_day.filter(|&cap| limits.today[i] >= cap) {
                Some(Some(cap))
            } else if limits.this_second[i] >= per_second {
                Some(None)
            } else {
                limits.this_second[i] += 1;
                limits.today[i] = limits.today[i].saturating_add(1);
                None
            }
        };
        let Some(daily) = refused else {
            return Ok(());
        };
        Counters::bump(&self.counters.rate_limited);
        let error = match daily {
            Some(cap) => {
                let midnight = now
                    .date_naive()
                    .checked_add_days(Days::new(1))
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
                    .unwrap_or(now.timestamp_millis());
                zoom_error(StatusCode::TOO_MANY_REQUESTS, 429, DAILY_MESSAGE)
                    .header(
                        HeaderName::from_static("x-ratelimit-category"),
                        label_name(label),
                    )
                    .header(HeaderName::from_static("x-ratelimit-type"), "Daily-limit")
                    .header(
                        HeaderName::from_static("x-ratelimit-limit"),
                        cap.to_string(),
                    )
                    .header(HeaderName::from_static("x-ratelimit-remaining"), "0")
                    .header(RETRY_AFTER, iso_time(midnight))
            }
            None => qps_error(label),
        };
        Err(error)
    }
}

/// The per-second 429 (reference §6.2: no `Retry-After`, only the category and type headers).
fn qps_error(label: RateLabel) -> ZoomError {
    zoom_error(StatusCode::TOO_MANY_REQUESTS, 429, QPS_MESSAGE)
        .header(
            HeaderName::from_static("x-ratelimit-category"),
            label_name(label),
        )
        .header(HeaderName::from_static("x-ratelimit-type"), "QPS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_separate_parts() {
        assert_eq!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"ab", b"c"]));
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        // Pinned: the synthetic file bytes derive from these, and must not change between builds.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn every_endpoint_route_is_distinct() {
        // The presence GET and PUT share one route (and so one label override).
        assert_eq!(
            Endpoint::GetPresenceStatus.route(),
            Endpoint::UpdatePresenceStatus.route()
        );
        let all = [
            Endpoint::UpdatePresenceStatus,
            Endpoint::ListEngagements,
            Endpoint::GetEngagement,
            Endpoint::ListRecordings,
            Endpoint::EngagementRecordings,
            Endpoint::InboxMessages,
            Endpoint::EngagementNotes,
            Endpoint::Notes,
        ];
        let routes: HashSet<&str> = all.iter().map(|e| e.route()).collect();
        assert_eq!(routes.len(), all.len());
    }
}
