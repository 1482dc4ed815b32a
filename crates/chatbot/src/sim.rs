//! ZCC's connector side, simulated (feature `sim`), for the crate's tests, the bridge's black-box tests and, later,
//! zoom-sim:
//! - [`TokenSigner`] signs client-app JWTs of both families (HS256/HS512 with a secret, RS256/RS512 with a PEM
//!   private key), naming the app by `appId` or `iss`;
//! - [`ConsumerSession`] posts virtual agent requests for one consumer to a Webhook URL, signed, and keeps the ground
//!   truth of what it sent; it can resend a message (a duplicate delivery);
//! - [`PostUrlServer`] is the connector's Post URL: it checks the Access Token, records every reply it accepts in
//!   order, and answers 5xx or 429 (with `Retry-After`) on demand.
//!
//! The request and reply shapes are [`crate::zoom_connector`]'s, so a correction there changes the simulator too.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::client_app::JwtAlgorithm;
use crate::secret::Secret;
use crate::zoom_connector::{AccessTokenAuth, ConnectorReply, MODE_CONTINUE, MODE_END, MODE_START};

/// Which claim names the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppClaim {
    /// Kore's webhook / API JWTs.
    AppId,
    /// Kore's SDK JWT.
    Iss,
}

/// Signs client-app JWTs the way the connector would.
#[derive(Clone)]
pub struct TokenSigner {
    app_id: String,
    claim: AppClaim,
    algorithm: JwtAlgorithm,
    key: EncodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("app_id", &self.app_id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("{0} needs the other key family")]
    WrongFamily(JwtAlgorithm),
    #[error("http: {0}")]
    Http(String),
}

impl TokenSigner {
    pub fn hs(
        app_id: impl Into<String>,
        algorithm: JwtAlgorithm,
        secret: &Secret,
    ) -> Result<Self, SimError> {
        if !algorithm.is_hmac() {
            return Err(SimError::WrongFamily(algorithm));
        }
        Ok(TokenSigner {
            app_id: app_id.into(),
            claim: AppClaim::AppId,
            algorithm,
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
            ttl: Duration::from_secs(300),
        })
    }

    pub fn rs(
        app_id: impl Into<String>,
        algorithm: JwtAlgorithm,
        private_key_pem: &str,
    ) -> Result<Self, SimError> {
        if algorithm.is_hmac() {
            return Err(SimError::WrongFamily(algorithm));
        }
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| SimError::Key(e.to_string()))?;
        Ok(TokenSigner {
            app_id: app_id.into(),
            claim: AppClaim::AppId,
            algorithm,
            key,
            ttl: Duration::from_secs(300),
        })
    }

    pub fn with_app_claim(mut self, claim: AppClaim) -> Self {
        self.claim = claim;
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// A token for a user (`sub`), or an anonymous one (`None`), issued now.
    pub fn sign(&self, subject: Option<&str>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut claims = json!({"iat": now, "exp": now + self.ttl.as_secs()});
        match self.claim {
            AppClaim::AppId => claims["appId"] = Value::String(self.app_id.clone()),
            AppClaim::Iss => claims["iss"] = Value::String(self.app_id.clone()),
        }
        if let Some(s) = subject {
            claims["sub"] = Value::String(s.to_owned());
        }
        self.sign_claims(&claims)
    }

    /// A token with exactly these claims (for tests of odd tokens).
    pub fn sign_claims(&self, claims: &Value) -> String {
        let header = Header::new(self.algorithm.jsonwebtoken());
        // Signing a JSON value with a valid key cannot fail; an empty token would be refused by any verifier.
        jsonwebtoken::encode(&header, claims, &self.key).unwrap_or_default()
    }
}

/// What a consumer session sent (the ground truth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub mode: String,
    pub text: String,
    pub at: SystemTime,
}

/// ZCC's answer to a posted request.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: u16,
    pub body: Value,
}

/// One consumer's conversation, posted to a Webhook URL as ZCC's connector would.
#[derive(Debug)]
pub struct ConsumerSession {
    http: reqwest::Client,
    webhook_url: String,
    signer: Arc<TokenSigner>,
    session_id: String,
    subject: Option<String>,
    variables: BTreeMap<String, Value>,
    language: String,
    seq: u64,
    sent: Vec<SentMessage>,
    last: Option<(String, Vec<u8>)>,
    retries: u32,
    retry_delay: Duration,
    deliveries: AtomicUsize,
}

impl ConsumerSession {
    pub fn new(
        http: reqwest::Client,
        webhook_url: impl Into<String>,
        signer: Arc<TokenSigner>,
        session_id: impl Into<String>,
    ) -> Self {
        ConsumerSession {
            http,
            webhook_url: webhook_url.into(),
            signer,
            session_id: session_id.into(),
            subject: None,
            variables: BTreeMap::new(),
            language: "en-US".into(),
            seq: 0,
            sent: Vec::new(),
            last: None,
            retries: 0,
            retry_delay: Duration::from_millis(50),
            deliveries: AtomicUsize::new(0),
        }
    }

    /// Redeliver a message (same body, same `id`, a fresh token) up to `retries` more times when the Webhook URL
    /// answers 5xx or 429 or cannot be reached, as ZCC would (❓ ZCC's actual retry policy is not public).
    pub fn with_retries(mut self, retries: u32, delay: Duration) -> Self {
        self.retries = retries;
        self.retry_delay = delay;
        self
    }

    /// How many HTTP deliveries were made, retries and resends included.
    pub fn deliveries(&self) -> usize {
        self.deliveries.load(Ordering::SeqCst)
    }

    /// The consumer's id as the JWT subject (none: anonymous).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn with_variable(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Everything sent so far, in order (resends not repeated).
    pub fn sent(&self) -> &[SentMessage] {
        &self.sent
    }

    /// The next request body in a mode, recorded as sent.
    pub fn next_body(&mut self, mode: &str, text: &str) -> (String, Vec<u8>) {
        self.seq += 1;
        let id = format!("{}-m{:04}", self.session_id, self.seq);
        let message = (!text.is_empty()).then(|| json!({"type": "text", "value": text}));
        let body = json!({
            "id": id,
            "sessionId": self.session_id,
            "conversationMode": mode,
            "message": message,
            "conversationVariables": self.variables,
            "languageCode": self.language,
            "additionalPayload": null,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.sent.push(SentMessage {
            id: id.clone(),
            mode: mode.to_owned(),
            text: text.to_owned(),
            at: SystemTime::now(),
        });
        self.last = Some((id.clone(), bytes.clone()));
        (id, bytes)
    }

    pub async fn start(&mut self, text: &str) -> Result<SimResponse, SimError> {
        let (_, body) = self.next_body(MODE_START, text);
        self.post(body, None).await
    }

    pub async fn say(&mut self, text: &str) -> Result<SimResponse, SimError> {
        let (_, body) = self.next_body(MODE_CONTINUE, text);
        self.post(body, None).await
    }

    pub async fn end(&mut self) -> Result<SimResponse, SimError> {
        let (_, body) = self.next_body(MODE_END, "");
        self.post(body, None).await
    }

    /// Posts a body from [`Self::next_body`] with a fresh token (retrying as configured).
    pub async fn post_body(&self, body: Vec<u8>) -> Result<SimResponse, SimError> {
        self.post(body, None).await
    }

    /// Posts the last message again, with a fresh token (a retried delivery).
    pub async fn resend_last(&self) -> Result<SimResponse, SimError> {
        let Some((_, body)) = &self.last else {
            return Err(SimError::Http("nothing sent yet".into()));
        };
        self.post(body.clone(), None).await
    }

    /// Posts a body with a given token instead of a freshly signed one (for refused-token tests).
    pub async fn post_with_token(
        &self,
        body: Vec<u8>,
        token: &str,
    ) -> Result<SimResponse, SimError> {
        self.post(body, Some(token)).await
    }

    async fn post(&self, body: Vec<u8>, token: Option<&str>) -> Result<SimResponse, SimError> {
        let mut attempt = 0;
        loop {
            let result = self.post_once(body.clone(), token).await;
            let retry = match &result {
                Ok(r) => r.status == 429 || r.status >= 500,
                Err(_) => true,
            };
            if !retry || attempt >= self.retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(self.retry_delay).await;
        }
    }

    async fn post_once(&self, body: Vec<u8>, token: Option<&str>) -> Result<SimResponse, SimError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let token = match token {
            Some(t) => t.to_owned(),
            None => self.signer.sign(self.subject.as_deref()),
        };
        let resp = self
            .http
            .post(&self.webhook_url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| SimError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| SimError::Http(e.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(SimResponse { status, body })
    }
}

/// A failure the Post URL answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    RateLimited {
        retry_after_secs: u64,
    },
}

/// A reply the Post URL accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: SystemTime,
    pub body: Value,
}

impl Received {
    /// The body read as a [`ConnectorReply`], when it is one.
    pub fn reply(&self) -> Option<ConnectorReply> {
        serde_json::from_value(self.body.clone()).ok()
    }
}

#[derive(Debug)]
struct PostUrlState {
    token: Secret,
    auth: AccessTokenAuth,
    received: Mutex<Vec<Received>>,
    faults: Mutex<VecDeque<Fault>>,
    outage: Mutex<Option<Fault>>,
    attempts: AtomicUsize,
    unauthorized: AtomicUsize,
    notify: Notify,
}

/// The connector's Post URL on 127.0.0.1, shut down when dropped.
#[derive(Debug)]
pub struct PostUrlServer {
    addr: SocketAddr,
    state: Arc<PostUrlState>,
    shutdown: Option<oneshot::Sender<()>>,
}

pub const POST_URL_PATH: &str = "/zcc/bot-connector/post";

impl PostUrlServer {
    /// Starts a Post URL that accepts `access_token` as `Authorization: Bearer`.
    pub async fn start(access_token: Secret) -> std::io::Result<Self> {
        Self::start_with_auth(access_token, AccessTokenAuth::Bearer).await
    }

    pub async fn start_with_auth(
        access_token: Secret,
        auth: AccessTokenAuth,
    ) -> std::io::Result<Self> {
        Self::start_at(([127, 0, 0, 1], 0).into(), access_token, auth).await
    }

    /// Starts a Post URL on `addr` (port 0: any free port).
    pub async fn start_at(
        addr: SocketAddr,
        access_token: Secret,
        auth: AccessTokenAuth,
    ) -> std::io::Result<Self> {
        let state = Arc::new(PostUrlState {
            token: access_token,
            auth,
            received: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            outage: Mutex::new(None),
            attempts: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            notify: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(POST_URL_PATH, post(receive))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("simulated Post URL stopped: {e}");
            }
        });
        Ok(PostUrlServer {
            addr,
            state,
            shutdown: Some(tx),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{POST_URL_PATH}", self.addr)
    }

    /// The next `n` requests (authorised ones) get this fault.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut q = lock(&self.state.faults);
        q.extend(std::iter::repeat_n(fault, n));
    }

    /// Every request gets this fault until the outage is lifted with `None`.
    pub fn set_outage(&self, fault: Option<Fault>) {
        *lock(&self.state.outage) = fault;
    }

    /// Accepted replies, in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// Accepted replies of one session, in order.
    pub fn replies_for(&self, session_id: &str) -> Vec<ConnectorReply> {
        self.received()
            .iter()
            .filter_map(Received::reply)
            .filter(|r| r.session_id == session_id)
            .collect()
    }

    /// Every request, accepted or not.
    pub fn attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// Requests refused for a missing or wrong access token.
    pub fn unauthorized(&self) -> usize {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` replies were accepted; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            if lock(&self.state.received).len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return lock(&self.state.received).len() >= n;
            }
        }
    }
}

impl Drop for PostUrlServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn receive(
    State(state): State<Arc<PostUrlState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let presented = match &state.auth {
        AccessTokenAuth::Bearer => headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned()),
        AccessTokenAuth::Header(name) => headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if !presented.is_some_and(|t| state.token.matches(&t)) {
        state.unauthorized.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": [{"msg": "Invalid Access token", "code": 401}]})),
        )
            .into_response();
    }
    let fault = { *lock(&state.outage) }.or_else(|| lock(&state.faults).pop_front());
    if let Some(fault) = fault {
        return match fault {
            Fault::Status(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "simulated failure",
            )
                .into_response(),
            Fault::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                axum::Json(json!({"errors": [{"msg": "Too Many requests", "code": 429}]})),
            )
                .into_response(),
        };
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"errors": [{"msg": "Invalid Request Payload", "code": 400}]})),
        )
            .into_response();
    };
    lock(&state.received).push(Received {
        at: SystemTime::now(),
        body: value,
    });
    state.notify.notify_waiters();
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}
