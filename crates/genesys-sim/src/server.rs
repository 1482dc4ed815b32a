//! An HTTP and WebSocket stand-in for Genesys Cloud's login and Platform API (presence-sync reference §2, §3), so the
//! bridge's Genesys client can be tested without an org.
//!
//! Routes (every `/api/v2/...` route needs `Authorization: Bearer <token issued here and unexpired>`, else 401
//! `bad.credentials`):
//! - `POST /oauth/token`: client-credentials grant (reference §3.4). Basic `client_id:client_secret`, form body
//!   `grant_type=client_credentials` → `{"access_token","token_type":"bearer","expires_in"}`; bad client → 401
//!   `{"error":"invalid_client","description"}`; another grant → 400 `{"error":"unsupported_grant_type"}`.
//! - `GET /api/v2/users/{id}` → `{"id","name","email","username","state":"active","selfUri"}`;
//!   `GET /api/v2/users?pageSize=&pageNumber=` (25 by default, at most 500; pages from 1; ordered by id) →
//!   `{"entities","pageSize","pageNumber","total","pageCount"}`.
//! - `GET /api/v2/conversations/{id}` → the conversation as the `v2.users.{id}.conversations` topic carries it
//!   (`ConversationEventTopicConversation`, reference §3.3; see [`GenesysSim::offer`]).
//! - Notifications API (reference §3.1, §3.2; [`notifications`]): `POST /api/v2/notifications/channels` →
//!   `{"id","connectUri","expires"}` (20 channels per client: a 21st removes the least recently used one, unconnected
//!   ones first); `HEAD /api/v2/notifications/channels/{id}` → 200 or 404;
//!   `GET`/`PUT`/`POST`/`DELETE /api/v2/notifications/channels/{id}/subscriptions` (at most 1,000 topics →
//!   400 `notification.too.many.topics`; PUT and POST extend the channel by `channel_ttl`); and the WebSocket
//!   `GET /channels/{id}`: `channel.metadata` heartbeats, `{"message":"ping"}` → pong, one connection per channel,
//!   events only to sockets connected when they are published, `v2.system.socket_closing` before a maintenance close.
//! - Process-automation triggers (reference §2.1, §2.2; [`triggers`]): `GET` (cursor paging, `topicName` filter) and
//!   `POST /api/v2/processautomation/triggers`, `GET`/`PUT`/`DELETE /api/v2/processautomation/triggers/{id}` (PUT
//!   keeps `topicName` and needs the current `version`, else 409 `conflict`).
//!
//! API errors have Genesys' shape, `{"message","code","status"}` (unknown route 404 `not.found`, wrong method 405
//! `method.not.allowed`, unparseable input 400 `bad.request`, invalid field 400 `invalid.value`); OAuth errors have the
//! OAuth shape. No request input can make a handler panic.

pub mod notifications;
pub mod triggers;

mod conversations;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{random_token, GenesysSimConfig, Media, SimStats};
use conversations::Conversation;
use notifications::Channels;
use triggers::Triggers;

/// The page size of `GET /api/v2/users` when none is given, and the largest allowed.
pub const USERS_DEFAULT_PAGE_SIZE: usize = 25;
pub const USERS_MAX_PAGE_SIZE: usize = 500;

/// A running simulator. Not `Clone`: share it behind an `Arc` if needed. The server stops, and every socket is
/// closed, when it is dropped or [shut down](GenesysSim::shutdown).
#[derive(Debug)]
pub struct GenesysSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    reaper: JoinHandle<()>,
}

impl GenesysSim {
    /// Binds `127.0.0.1:0` and starts serving. Must be called within a Tokio runtime.
    pub async fn start(config: GenesysSimConfig) -> anyhow::Result<GenesysSim> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let shared = Arc::new(Shared::new(config, addr));
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender means the GenesysSim is gone: stop as well.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "genesys-sim server stopped with an error");
            }
        });
        let reaper = tokio::spawn(reap(Arc::downgrade(&shared)));
        Ok(GenesysSim {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
            reaper,
        })
    }

    /// `http://127.0.0.1:PORT`: the API base (`/api/v2/...`) and the login base (`/oauth/token`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds (or replaces) a user, state `active`.
    pub fn add_user(&self, id: &str, name: &str, email: &str) {
        self.shared.lock().users.insert(
            id.to_owned(),
            User {
                id: id.to_owned(),
                name: name.to_owned(),
                email: email.to_owned(),
            },
        );
    }

    /// Offers `conversation` (created on first use, with a customer participant whose media mirrors this one) to
    /// `user`: a new agent participant with one `media` entry in state `alerting`. If the user's latest participant
    /// on the conversation has ended, the new participant gets a new id (a transfer back); if it has not, that
    /// participant is offered again in place (same ids, state back to `alerting`, times cleared). Publishes the
    /// conversation to every agent user's `v2.users.{userId}.conversations` topic. `direction` is not shown on chats
    /// (Genesys's chat model has none).
    pub fn offer(
        &self,
        conversation: &str,
        user: &str,
        media: Media,
        direction: &str,
        queue_id: Option<&str>,
    ) {
        self.change(conversation, |c| {
            c.offer(user, media, direction, queue_id);
            true
        });
    }

    /// The user's latest participant on `conversation` is answered: media state `connected`, `connectedTime` set
    /// (on the participant and the media). Nothing happens (and nothing is published) for an unknown conversation or
    /// a user without a participant on it.
    pub fn connect(&self, conversation: &str, user: &str) {
        self.change(conversation, |c| c.connect(user));
    }

    /// Sets `held` on the user's latest participant's media (an update with the same state).
    pub fn hold(&self, conversation: &str, user: &str, held: bool) {
        self.change(conversation, |c| c.hold(user, held));
    }

    /// The user's latest participant disconnects: media state `disconnected` with `disconnectedTime` and
    /// `disconnectType` `client`, participant `endTime`.
    pub fn end(&self, conversation: &str, user: &str) {
        self.change(conversation, |c| c.end(user));
    }

    /// The conversation's JSON, as `GET /api/v2/conversations/{id}` answers it.
    pub fn conversation(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .conversations
            .get(id)
            .map(Conversation::to_json)
    }

    /// Drops every WebSocket abruptly: no close frame, the TCP connection is just closed. Channels stay valid.
    pub fn drop_sockets(&self) {
        self.shared.lock().channels.drop_sockets();
    }

    /// Sends `v2.system.socket_closing` to every socket, then closes each (close frame 1001) `close_after` later.
    /// Events published meanwhile are still delivered; the channels stay valid, so clients may reconnect at once.
    pub fn socket_closing(&self, close_after: Duration) {
        let silent = !self.shared.heartbeats_on();
        self.shared
            .lock()
            .channels
            .socket_closing(close_after, silent);
    }

    /// `false`: sockets stay open but go silent, a dead connection as far as a client can tell: no heartbeats, no
    /// pongs, no events (events published meanwhile are lost) and no `socket_closing` notices. Close frames (channel
    /// expiry, replaced connections, `socket_closing`'s close) are still sent. `true` resumes.
    pub fn set_heartbeats(&self, on: bool) {
        self.shared.heartbeats.store(on, Ordering::Relaxed);
    }

    /// Every channel expires now: sockets are closed (close frame 1000) and the channels deleted (`HEAD` → 404).
    pub fn expire_channels(&self) {
        self.shared.lock().channels.expire_all();
    }

    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// The union of the topics of every live channel, sorted.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut state = self.shared.lock();
        state.channels.expire_due(Instant::now());
        state.channels.subscribed_topics()
    }

    /// WebSockets currently connected.
    pub fn connected_sockets(&self) -> usize {
        self.shared.lock().channels.connected()
    }

    /// Every stored trigger, in creation order.
    pub fn triggers(&self) -> Vec<Value> {
        self.shared.lock().triggers.all()
    }

    /// `(method, path)` of every request the server received (OAuth, API and WebSocket upgrades), in order; the
    /// path has no query string.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }

    /// Closes every socket (close frame 1001) and stops the server, waiting up to 5 s for it.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    fn stop_now(&mut self) {
        self.reaper.abort();
        self.shared
            .lock()
            .channels
            .close_sockets(1001, "going away");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Applies `apply` to the conversation and, when it reports a change, publishes the result.
    fn change(&self, conversation: &str, apply: impl FnOnce(&mut Conversation) -> bool) {
        let shared = &self.shared;
        let mut state = shared.lock();
        let state = &mut *state;
        let conv = state
            .conversations
            .entry(conversation.to_owned())
            .or_insert_with(|| Conversation::new(conversation));
        if !apply(conv) {
            if conv.is_empty() {
                state.conversations.remove(conversation);
            }
            tracing::debug!(conversation, "genesys-sim: nothing to change");
            return;
        }
        let body = conv.to_json();
        let users = conv.agent_users();
        state.channels.expire_due(Instant::now());
        for user in users {
            let topic = format!("v2.users.{user}.conversations");
            shared.publish(&mut state.channels, &topic, &body);
        }
    }
}

impl Drop for GenesysSim {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Checks for expired channels at least every heartbeat interval (and as often as the channel TTL).
async fn reap(shared: Weak<Shared>) {
    let tick = match shared.upgrade() {
        Some(shared) => shared
            .config
            .heartbeat_interval
            .min(shared.config.channel_ttl)
            .clamp(Duration::from_millis(10), Duration::from_secs(86_400)),
        None => return,
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.lock().channels.expire_due(Instant::now());
    }
}

#[derive(Debug)]
struct Shared {
    config: GenesysSimConfig,
    base_url: String,
    /// `ws://127.0.0.1:PORT`, the base of every `connectUri`.
    ws_base: String,
    heartbeats: AtomicBool,
    next_connection: AtomicU64,
    counters: Counters,
    state: Mutex<SimState>,
}

#[derive(Debug, Default)]
struct SimState {
    /// Access token → expiry.
    tokens: HashMap<String, Instant>,
    users: BTreeMap<String, User>,
    conversations: HashMap<String, Conversation>,
    channels: Channels,
    triggers: Triggers,
    requests: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    name: String,
    email: String,
}

impl User {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "username": self.email,
            "state": "active",
            "selfUri": format!("/api/v2/users/{}", self.id),
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    token_requests: AtomicU64,
    channels_created: AtomicU64,
    ws_connections: AtomicU64,
    subscription_puts: AtomicU64,
    events_published: AtomicU64,
    events_delivered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            token_requests: get(&self.token_requests),
            channels_created: get(&self.channels_created),
            ws_connections: get(&self.ws_connections),
            subscription_puts: get(&self.subscription_puts),
            events_published: get(&self.events_published),
            events_delivered: get(&self.events_delivered),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Shared {
    fn new(config: GenesysSimConfig, addr: SocketAddr) -> Self {
        Self {
            config,
            base_url: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            heartbeats: AtomicBool::new(true),
            next_connection: AtomicU64::new(1),
            counters: Counters::default(),
            state: Mutex::new(SimState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // The guarded maps stay consistent even if a holder panicked, so poisoning is not worth propagating.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn heartbeats_on(&self) -> bool {
        self.heartbeats.load(Ordering::Relaxed)
    }

    /// Sends `{"topicName","version":"2","eventBody","metadata":{"CorrelationId"}}` to every socket connected now
    /// whose channel subscribes to `topic`. Lost for everyone else, and for everyone while the sockets are silent.
    fn publish(&self, channels: &mut Channels, topic: &str, body: &Value) {
        bump(&self.counters.events_published);
        if !self.heartbeats_on() {
            return;
        }
        let frame = json!({
            "topicName": topic,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": crate::uuid()},
        })
        .to_string();
        let delivered = channels.deliver(topic, &frame);
        self.counters
            .events_delivered
            .fetch_add(delivered, Ordering::Relaxed);
    }

    /// Whether `headers` carry `Authorization: Bearer <a token issued here that has not expired>`.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
        else {
            return false;
        };
        let now = Instant::now();
        let mut state = self.lock();
        state.tokens.retain(|_, expires| *expires > now);
        state.tokens.contains_key(token)
    }
}

/// `now + ttl`, or a century from now when that does not fit in an `Instant`.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// A Genesys API error: `{"message","code","status"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not.found", message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad.request", message)
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid.value", message)
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "bad.credentials",
            "Invalid login credentials: no valid bearer token.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "message": self.message,
            "code": self.code,
            "status": self.status.as_u16(),
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;
type QueryMap = Result<Query<HashMap<String, String>>, QueryRejection>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/users", get(list_users))
        .route("/api/v2/users/{id}", get(get_user))
        .route("/api/v2/conversations/{id}", get(get_conversation))
        .merge(notifications::routes())
        .merge(triggers::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Records every request, and refuses `/api/v2` requests without a valid bearer token.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    shared
        .lock()
        .requests
        .push((request.method().to_string(), path.clone()));
    if (path == "/api/v2" || path.starts_with("/api/v2/")) && !shared.authorized(request.headers())
    {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("The requested resource was not found.")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method.not.allowed",
        "The HTTP method is not supported on this resource.",
    )
}

fn oauth_error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// `POST /oauth/token`.
async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    bump(&shared.counters.token_requests);
    let config = &shared.config;
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let valid = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(id, secret)| id == config.client_id && secret == config.client_secret);
    if !valid {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "description": "client not found or bad client credentials"}),
        );
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "description": rejection.body_text()}),
            )
        }
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    let token = random_token(86);
    let now = Instant::now();
    {
        let mut state = shared.lock();
        state.tokens.retain(|_, expires| *expires > now);
        state
            .tokens
            .insert(token.clone(), deadline(now, config.token_ttl));
    }
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": config.token_ttl.as_secs(),
    }))
    .into_response()
}

/// Reads an integer query parameter in `1..=max` (`default` when absent).
fn page_param(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> ApiResult<usize> {
    match query.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{name} must be an integer from 1 to {max}, got {raw:?}"
                ))
            }),
    }
}

/// `GET /api/v2/users`.
async fn list_users(State(shared): State<Arc<Shared>>, query: QueryMap) -> ApiResult {
    let Query(query) = query?;
    let page_size = page_param(
        &query,
        "pageSize",
        USERS_DEFAULT_PAGE_SIZE,
        USERS_MAX_PAGE_SIZE,
    )?;
    let page_number = page_param(&query, "pageNumber", 1, usize::MAX)?;
    let state = shared.lock();
    let total = state.users.len();
    let entities: Vec<Value> = state
        .users
        .values()
        .skip((page_number - 1).saturating_mul(page_size))
        .take(page_size)
        .map(User::to_json)
        .collect();
    Ok(Json(json!({
        "entities": entities,
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "pageCount": total.div_ceil(page_size),
    }))
    .into_response())
}

/// `GET /api/v2/users/{id}`.
async fn get_user(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let state = shared.lock();
    let user = state
        .users
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("User {id} not found.")))?;
    Ok(Json(user.to_json()).into_response())
}

/// `GET /api/v2/conversations/{id}`.
async fn get_conversation(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let state = shared.lock();
    let conversation = state
        .conversations
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("Conversation {id} not found.")))?;
    Ok(Json(conversation.to_json()).into_response())
}

/// Splits a comma-separated query value into its non-empty, trimmed parts.
fn comma_list(raw: &str) -> BTreeSet<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
