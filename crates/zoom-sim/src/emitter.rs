//! Webhook emitter: delivers [`SimEvent`]s to a webhook endpoint the way Zoom does (reference §3).
//!
//! - Signing: `x-zm-request-timestamp` (epoch seconds at send time) and `x-zm-signature` over the exact body bytes,
//!   a fresh `x-zm-request-id` per attempt, Zoom's `user-agent` and `content-type`.
//! - Delivery: success is any 2xx within the timeout (3 s at Zoom). Status >= 500, timeouts and connection errors
//!   are retried 5, 20 and 60 minutes apart (times `retry_scale`); 3xx/4xx are not retried.
//! - Faults (seeded, so a run can be repeated): drops, duplicates (a second delivery of the same body, re-signed
//!   at its own send time, a few deliveries later), reordering within windows, random extra delay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use zoom::webhook::{
    encrypt_plain_token, sign, UrlValidationResponse, REQUEST_ID_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, URL_VALIDATION_EVENT,
};

use crate::{now_ms, opaque_id, SimEvent};

/// Zoom's retry schedule: each entry is the wait before the next retry (reference §3.6).
pub const RETRY_SCHEDULE: [Duration; 3] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(60 * 60),
];
/// Zoom's delivery timeout.
pub const ZOOM_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest sleep between two events in paced mode, so quiet stretches of the day do not stall a demo.
pub const MAX_PACED_SLEEP: Duration = Duration::from_secs(2);
pub const USER_AGENT: &str = "Zoom Marketplace/1.0a";
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Delivery faults to inject. Rates are probabilities in `[0, 1]` (out-of-range values are clamped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    pub duplicate_rate: f64,
    pub drop_rate: f64,
    /// Events are shuffled within consecutive windows of this many events (0 or 1: no reordering).
    pub reorder_window: usize,
    /// Extra delay before a delivery's first attempt, drawn uniformly from `lo..=hi` milliseconds.
    pub delay_ms: (u64, u64),
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            duplicate_rate: 0.0,
            drop_rate: 0.0,
            reorder_window: 0,
            delay_ms: (0, 0),
            seed: 0,
        }
    }
}

#[derive(Clone)]
pub struct EmitterConfig {
    /// URL of the webhook endpoint, e.g. `http://127.0.0.1:8080/webhooks/zoom`.
    pub target: String,
    /// The subscription's secret token.
    pub secret: String,
    pub faults: Faults,
    /// Multiplies [`RETRY_SCHEDULE`]: 1.0 is Zoom's real schedule, 0.001 turns 5/20/60 min into 0.3/1.2/3.6 s.
    pub retry_scale: f64,
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl EmitterConfig {
    /// Zoom's behaviour: no faults, real retry schedule, 3 s timeout; 8 requests in flight.
    pub fn new(target: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            secret: secret.into(),
            faults: Faults::default(),
            retry_scale: 1.0,
            timeout: ZOOM_TIMEOUT,
            concurrency: 8,
        }
    }
}

impl std::fmt::Debug for EmitterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitterConfig")
            .field("target", &self.target)
            .field("secret", &"***")
            .field("faults", &self.faults)
            .field("retry_scale", &self.retry_scale)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// What happened to a batch of events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmitReport {
    /// Input events.
    pub events: usize,
    /// Deliveries made (originals plus duplicate copies), however many attempts each took.
    pub sent: usize,
    /// Deliveries that eventually got a 2xx.
    pub acked: usize,
    /// Duplicate copies among `sent`.
    pub duplicates_sent: usize,
    /// Events never sent (fault injection).
    pub dropped: usize,
    /// HTTP requests, retries included.
    pub attempts: usize,
    pub retries: usize,
    /// Deliveries given up on: 3xx/4xx, or still failing after the last retry.
    pub failed: usize,
    /// Per attempt: the status code (`"200"`, `"500"`) or `"timeout"`, `"connect_error"`, `"error"`.
    pub status_counts: BTreeMap<String, usize>,
    pub elapsed_ms: u64,
}

/// Sends events to one endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    target: String,
    secret: Vec<u8>,
    faults: Faults,
    retry_delays: [Duration; 3],
    concurrency: usize,
}

/// One planned delivery of `events[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    index: usize,
    duplicate: bool,
    delay_ms: u64,
}

#[derive(Debug, Default)]
struct DeliveryOutcome {
    duplicate: bool,
    acked: bool,
    attempts: usize,
    statuses: Vec<String>,
}

enum Verdict {
    Acked,
    Retry,
    GiveUp,
}

impl Emitter {
    pub fn new(config: EmitterConfig) -> anyhow::Result<Self> {
        ensure!(!config.secret.is_empty(), "the webhook secret is empty");
        let target = reqwest::Url::parse(&config.target)
            .with_context(|| format!("invalid target URL {:?}", config.target))?;
        let scale = if config.retry_scale.is_finite() && config.retry_scale >= 0.0 {
            config.retry_scale
        } else {
            bail!("retry_scale must be a non-negative number");
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                target: target.to_string(),
                secret: config.secret.into_bytes(),
                faults: config.faults,
                retry_delays: RETRY_SCHEDULE.map(|d| d.mul_f64(scale)),
                concurrency: config.concurrency.max(1),
            }),
        })
    }

    /// Sends every event as fast as `concurrency` allows, applying the configured faults.
    pub async fn emit_all(&self, events: &[SimEvent]) -> EmitReport {
        self.run(events, None).await
    }

    /// Like [`Emitter::emit_all`], but sleeps between deliveries for the gap between their `event_ts` divided by
    /// `speedup` (at most [`MAX_PACED_SLEEP`]), so a demo shows a live stream. A `speedup` that is not a positive
    /// number is treated as 1.
    pub async fn emit_paced(&self, events: &[SimEvent], speedup: f64) -> EmitReport {
        let speedup = if speedup.is_finite() && speedup > 0.0 {
            speedup
        } else {
            1.0
        };
        self.run(events, Some(speedup)).await
    }

    /// Zoom's `endpoint.url_validation` handshake: a signed challenge whose answer must carry
    /// `encryptedToken = hex(HMAC-SHA256(secret, plainToken))`.
    pub async fn url_validation(&self) -> anyhow::Result<()> {
        let inner = &self.inner;
        let plain_token = opaque_id(&mut rand::rng());
        // Field order as in Zoom's example request.
        let body = format!(
            r#"{{"payload":{{"plainToken":"{plain_token}"}},"event_ts":{},"event":"{URL_VALIDATION_EVENT}"}}"#,
            now_ms()
        );
        let response = inner
            .request(body.as_bytes())
            .send()
            .await
            .with_context(|| format!("sending {URL_VALIDATION_EVENT} to {}", inner.target))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the url_validation response")?;
        if status.as_u16() != 200 && status.as_u16() != 204 {
            let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            bail!(
                "url_validation was answered with {status} (Zoom requires 200 or 204): {preview}"
            );
        }
        let answer: UrlValidationResponse = serde_json::from_slice(&bytes)
            .context("url_validation answer is not {\"plainToken\", \"encryptedToken\"} JSON")?;
        ensure!(
            answer.plain_token == plain_token,
            "url_validation answered plainToken {:?}, expected {plain_token:?}",
            answer.plain_token
        );
        ensure!(
            answer.encrypted_token == encrypt_plain_token(&inner.secret, &plain_token),
            "url_validation encryptedToken does not match the secret token"
        );
        Ok(())
    }

    async fn run(&self, events: &[SimEvent], speedup: Option<f64>) -> EmitReport {
        let started = Instant::now();
        let (plan, dropped) = plan(events.len(), &self.inner.faults);
        let mut report = EmitReport {
            events: events.len(),
            dropped,
            ..EmitReport::default()
        };
        let in_flight = Arc::new(Semaphore::new(self.inner.concurrency));
        // Bounds spawned deliveries (each holds its body), including those waiting out a retry delay, which must
        // not hold an in-flight slot: Zoom keeps delivering other events meanwhile.
        let outstanding = Arc::new(Semaphore::new(
            self.inner.concurrency.saturating_mul(16).max(256),
        ));
        let mut tasks = JoinSet::new();
        let mut previous_ts: Option<i64> = None;

        for delivery in plan {
            let Some(event) = events.get(delivery.index) else {
                continue;
            };
            if let Some(speedup) = speedup {
                if let Some(prev) = previous_ts {
                    let gap_ms = (event.event_ts.saturating_sub(prev)).max(0) as f64 / speedup;
                    let pause = Duration::from_secs_f64(gap_ms / 1000.0).min(MAX_PACED_SLEEP);
                    tokio::time::sleep(pause).await;
                }
                previous_ts = Some(event.event_ts);
            }
            let Ok(permit) = outstanding.clone().acquire_owned().await else {
                break;
            };
            while let Some(done) = tasks.try_join_next() {
                merge(&mut report, done);
            }
            let inner = Arc::clone(&self.inner);
            let in_flight = Arc::clone(&in_flight);
            let body = event.to_bytes();
            tasks.spawn(async move {
                let _permit = permit;
                if delivery.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delivery.delay_ms)).await;
                }
                let mut outcome = inner.deliver(&body, &in_flight).await;
                outcome.duplicate = delivery.duplicate;
                outcome
            });
        }
        while let Some(done) = tasks.join_next().await {
            merge(&mut report, done);
        }
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report
    }
}

fn merge(report: &mut EmitReport, done: Result<DeliveryOutcome, tokio::task::JoinError>) {
    let outcome = match done {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(%error, "delivery task failed");
            report.sent += 1;
            report.failed += 1;
            return;
        }
    };
    report.sent += 1;
    report.duplicates_sent += usize::from(outcome.duplicate);
    report.attempts += outcome.attempts;
    report.retries += outcome.attempts.saturating_sub(1);
    if outcome.acked {
        report.acked += 1;
    } else {
        report.failed += 1;
    }
    for status in outcome.statuses {
        *report.status_counts.entry(status).or_default() += 1;
    }
}

impl Inner {
    /// A POST of `body`, signed now, with a fresh request id.
    fn request(&self, body: &[u8]) -> reqwest::RequestBuilder {
        let timestamp = now_ms().div_euclid(1000);
        self.client
            .post(&self.target)
            .header(CONTENT_TYPE, JSON_CONTENT_TYPE)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, body))
            .header(REQUEST_ID_HEADER, request_id())
            .body(body.to_vec())
    }

    async fn deliver(&self, body: &[u8], in_flight: &Semaphore) -> DeliveryOutcome {
        let mut outcome = DeliveryOutcome::default();
        for attempt in 0..=self.retry_delays.len() {
            if attempt > 0 {
                tokio::time::sleep(self.retry_delays[attempt - 1]).await;
            }
            let result = {
                let Ok(_slot) = in_flight.acquire().await else {
                    break;
                };
                self.attempt(body).await
            };
            outcome.attempts += 1;
            let (label, verdict) = match result {
                Ok(status) if status.is_success() => (status.as_u16().to_string(), Verdict::Acked),
                Ok(status) if status.is_server_error() => {
                    (status.as_u16().to_string(), Verdict::Retry)
                }
                Ok(status) => (status.as_u16().to_string(), Verdict::GiveUp),
                Err(error) if error.is_timeout() => ("timeout".to_owned(), Verdict::Retry),
                Err(error) if error.is_connect() => ("connect_error".to_owned(), Verdict::Retry),
                Err(error) => {
                    tracing::debug!(%error, "webhook delivery error");
                    ("error".to_owned(), Verdict::Retry)
                }
            };
            tracing::debug!(attempt, status = %label, "webhook delivery attempt");
            outcome.statuses.push(label);
            match verdict {
                Verdict::Acked => {
                    outcome.acked = true;
                    break;
                }
                Verdict::GiveUp => break,
                Verdict::Retry => {}
            }
        }
        if !outcome.acked {
            tracing::warn!(attempts = outcome.attempts, statuses = ?outcome.statuses, "webhook not delivered");
        }
        outcome
    }

    async fn attempt(&self, body: &[u8]) -> Result<reqwest::StatusCode, reqwest::Error> {
        let response = self.request(body).send().await?;
        let status = response.status();
        // Read the body so the connection can be reused; the status alone decides the outcome.
        let _ = response.bytes().await;
        Ok(status)
    }
}

/// Zoom's request id format, e.g. `6009d653_d487_445d_8406_42b654974899`.
fn request_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}_{}_{}_{}_{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn probability(p: f64) -> f64 {
    if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The deliveries for `n` events in send order, and how many events are dropped. Deterministic for `faults.seed`.
fn plan(n: usize, faults: &Faults) -> (Vec<Delivery>, usize) {
    let mut rng = StdRng::seed_from_u64(faults.seed);
    let drop_rate = probability(faults.drop_rate);
    let duplicate_rate = probability(faults.duplicate_rate);
    let (lo, hi) = faults.delay_ms;
    let delay = |rng: &mut StdRng| {
        if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        }
    };

    let mut order: Vec<usize> = (0..n).collect();
    if faults.reorder_window > 1 {
        for window in order.chunks_mut(faults.reorder_window) {
            window.shuffle(&mut rng);
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut dropped = 0;
    // Duplicate copies waiting for their position: (position, event index).
    let mut pending: Vec<(usize, usize)> = Vec::new();
    for (position, &index) in order.iter().enumerate() {
        let mut k = 0;
        while k < pending.len() {
            if pending[k].0 <= position {
                let (_, dup) = pending.remove(k);
                let delay_ms = delay(&mut rng);
                out.push(Delivery {
                    index: dup,
                    duplicate: true,
                    delay_ms,
                });
            } else {
                k += 1;
            }
        }
        if rng.random_bool(drop_rate) {
            dropped += 1;
            continue;
        }
        let delay_ms = delay(&mut rng);
        out.push(Delivery {
            index,
            duplicate: false,
            delay_ms,
        });
        if rng.random_bool(duplicate_rate) {
            // The copy arrives a few deliveries later, as a Zoom retry after a slow ack would.
            pending.push((position + rng.random_range(1..=8), index));
        }
    }
    for (_, dup) in pending {
        let delay_ms = delay(&mut rng);
        out.push(Delivery {
            index: dup,
            duplicate: true,
            delay_ms,
        });
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_without_faults_is_identity() {
        let (plan, dropped) = plan(5, &Faults::default());
        assert_eq!(dropped, 0);
        let indices: Vec<usize> = plan.iter().map(|d| d.index).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4]);
        assert!(plan.iter().all(|d| !d.duplicate && d.delay_ms == 0));
    }

    #[test]
    fn plan_applies_faults_deterministically() {
        let faults = Faults {
            duplicate_rate: 0.2,
            drop_rate: 0.1,
            reorder_window: 4,
            delay_ms: (5, 50),
            seed: 42,
        };
        let (a, dropped) = plan(1000, &faults);
        assert_eq!((a.clone(), dropped), plan(1000, &faults));
        let duplicates = a.iter().filter(|d| d.duplicate).count();
        assert!((40..=160).contains(&dropped), "dropped {dropped}");
        assert!((100..=300).contains(&duplicates), "duplicates {duplicates}");
        assert_eq!(a.len(), 1000 - dropped + duplicates);
        assert!(a.iter().all(|d| (5..=50).contains(&d.delay_ms)));
        // A duplicate always follows its original, and dropped events are never duplicated.
        for (pos, d) in a.iter().enumerate().filter(|(_, d)| d.duplicate) {
            assert!(a[..pos].iter().any(|o| !o.duplicate && o.index == d.index));
        }
        // Reordering stays within windows of 4.
        let originals: Vec<usize> = a.iter().filter(|d| !d.duplicate).map(|d| d.index).collect();
        assert!(originals.windows(2).any(|w| w[0] > w[1]));
        for w in originals.windows(2) {
            if w[0] > w[1] {
                assert_eq!(w[0] / 4, w[1] / 4);
            }
        }
    }

    #[test]
    fn request_ids_have_zoom_shape() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('_').count(), 4);
        assert_ne!(id, request_id());
    }

    mod http {
        use super::super::*;
        use crate::{generate, GeneratorConfig};
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::{IntoResponse, Response};
        use axum::routing::post;
        use axum::{Json, Router};
        use serde_json::{json, Value};
        use std::collections::{HashMap, HashSet};
        use std::sync::Mutex;
        use zoom::WebhookVerifier;

        const SECRET: &str = "sim-secret-token";

        #[derive(Debug, Clone)]
        struct Received {
            at: Instant,
            timestamp: Option<String>,
            signature: Option<String>,
            request_id: Option<String>,
            content_type: Option<String>,
            user_agent: Option<String>,
            body: Vec<u8>,
        }

        /// Decides the answer from the body's attempt number (0 for the first time this body arrives).
        type Behaviour = Arc<dyn Fn(usize) -> (StatusCode, Duration) + Send + Sync>;

        #[derive(Clone)]
        struct Server {
            received: Arc<Mutex<Vec<Received>>>,
            behaviour: Behaviour,
            /// The secret the URL validation answer is computed with.
            validation_secret: String,
        }

        impl Server {
            fn received(&self) -> Vec<Received> {
                self.received.lock().expect("lock").clone()
            }
        }

        async fn hook(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let received = Received {
                at: Instant::now(),
                timestamp: header(TIMESTAMP_HEADER),
                signature: header(SIGNATURE_HEADER),
                request_id: header(REQUEST_ID_HEADER),
                content_type: header("content-type"),
                user_agent: header("user-agent"),
                body: body.to_vec(),
            };
            let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
            if parsed["event"] == URL_VALIDATION_EVENT {
                let token = parsed["payload"]["plainToken"].as_str().unwrap_or_default();
                let encrypted = encrypt_plain_token(server.validation_secret.as_bytes(), token);
                server.received.lock().expect("lock").push(received);
                return Json(json!({"plainToken": token, "encryptedToken": encrypted}))
                    .into_response();
            }
            let nth = {
                let mut all = server.received.lock().expect("lock");
                let nth = all.iter().filter(|r| r.body == received.body).count();
                all.push(received);
                nth
            };
            let (status, delay) = (server.behaviour)(nth);
            tokio::time::sleep(delay).await;
            status.into_response()
        }

        async fn start_with(behaviour: Behaviour, validation_secret: &str) -> (String, Server) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = Server {
                received: Arc::default(),
                behaviour,
                validation_secret: validation_secret.to_owned(),
            };
            let app = Router::new()
                .route("/webhooks/zoom", post(hook))
                .with_state(server.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            (format!("http://{addr}/webhooks/zoom"), server)
        }

        async fn start(
            behaviour: impl Fn(usize) -> (StatusCode, Duration) + Send + Sync + 'static,
        ) -> (String, Server) {
            start_with(Arc::new(behaviour), SECRET).await
        }

        fn config(url: &str) -> EmitterConfig {
            EmitterConfig {
                retry_scale: 0.001,
                ..EmitterConfig::new(url, SECRET)
            }
        }

        fn synthetic(n: usize) -> Vec<SimEvent> {
            (0..n)
                .map(|i| {
                    let ts = 1_795_251_600_000 + 500 * i as i64;
                    SimEvent {
                        event_ts: ts,
                        body: json!({
                            "event": "contact_center.engagement_started", "event_ts": ts,
                            "payload": {"account_id": "A", "object": {"engagement_id": format!("e{i}")}},
                        }),
                    }
                })
                .collect()
        }

        fn assert_zoom_request(r: &Received, verifier: &WebhookVerifier) {
            let now = now_ms() / 1000;
            assert!(
                verifier
                    .verify(r.signature.as_deref(), r.timestamp.as_deref(), &r.body, now)
                    .is_ok(),
                "signature of {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.content_type.as_deref(), Some(JSON_CONTENT_TYPE));
            assert_eq!(r.user_agent.as_deref(), Some(USER_AGENT));
            assert!(r.request_id.as_deref().is_some_and(|id| id.len() == 36));
        }

        #[tokio::test]
        async fn signed_bodies_with_duplicates_and_drops() {
            let scenario = generate(&GeneratorConfig {
                engagements: 10,
                ..GeneratorConfig::default()
            });
            let events = &scenario.events;
            let (url, server) = start(|_| (StatusCode::OK, Duration::ZERO)).await;
            let emitter = Emitter::new(EmitterConfig {
                faults: Faults {
                    duplicate_rate: 0.3,
                    drop_rate: 0.1,
                    reorder_window: 5,
                    delay_ms: (0, 3),
                    seed: 9,
                },
                concurrency: 4,
                ..config(&url)
            })
            .expect("emitter");
            let report = emitter.emit_all(events).await;

            assert!(
                report.duplicates_sent > 0 && report.dropped > 0,
                "{report:?}"
            );
            assert_eq!(report.events, events.len());
            assert_eq!(
                report.sent,
                events.len() - report.dropped + report.duplicates_sent
            );
            assert_eq!(
                (report.acked, report.failed, report.retries),
                (report.sent, 0, 0)
            );
            assert_eq!(report.status_counts.get("200"), Some(&report.sent));

            let received = server.received();
            assert_eq!(received.len(), report.sent);
            let verifier = WebhookVerifier::new([SECRET], 300);
            for r in &received {
                assert_zoom_request(r, &verifier);
            }
            let ids: HashSet<_> = received.iter().map(|r| r.request_id.clone()).collect();
            assert_eq!(ids.len(), received.len(), "fresh request id per request");

            // Bodies are the exact compact envelopes; each duplicate is a byte-identical second copy.
            let originals: HashSet<Vec<u8>> = events.iter().map(SimEvent::to_bytes).collect();
            let mut copies: HashMap<&[u8], usize> = HashMap::new();
            for r in &received {
                assert!(originals.contains(&r.body));
                *copies.entry(&r.body).or_default() += 1;
            }
            assert_eq!(copies.len(), events.len() - report.dropped);
            assert_eq!(
                copies.values().filter(|&&n| n == 2).count(),
                report.duplicates_sent
            );
            assert!(copies.values().all(|&n| n <= 2));
        }

        #[tokio::test]
        async fn server_errors_are_retried_on_the_compressed_schedule() {
            let events = synthetic(3);
            let (url, server) = start(|nth| {
                let status = if nth < 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                (status, Duration::ZERO)
            })
            .await;
            let report = Emitter::new(config(&url))
                .expect("emitter")
                .emit_all(&events)
                .await;
            assert_eq!((report.sent, report.acked, report.failed), (3, 3, 0));
            assert_eq!((report.attempts, report.retries), (9, 6));
            assert_eq!(report.status_counts.get("500"), Some(&6));
            assert_eq!(report.status_counts.get("200"), Some(&3));

            let received = server.received();
            let verifier = WebhookVerifier::new([SECRET], 300);
            for event in &events {
                let body = event.to_bytes();
                let attempts: Vec<&Received> = received.iter().filter(|r| r.body == body).collect();
                assert_eq!(attempts.len(), 3);
                attempts
                    .iter()
                    .for_each(|r| assert_zoom_request(r, &verifier));
                // 5 and 20 minutes, scaled by 0.001.
                let first_gap = attempts[1].at - attempts[0].at;
                let second_gap = attempts[2].at - attempts[1].at;
                assert!(first_gap >= Duration::from_millis(290), "{first_gap:?}");
                assert!(second_gap >= Duration::from_millis(1190), "{second_gap:?}");
                assert!(second_gap < Duration::from_millis(3000), "{second_gap:?}");
            }
        }

        #[tokio::test]
        async fn client_errors_are_not_retried_and_retries_run_out() {
            let events = synthetic(2);
            let (url, server) = start(|_| (StatusCode::NOT_FOUND, Duration::ZERO)).await;
            let report = Emitter::new(config(&url))
                .expect("emitter")
                .emit_all(&events)
                .await;
            assert_eq!(
                (report.attempts, report.retries, report.failed, report.acked),
                (2, 0, 2, 0)
            );
            assert_eq!(server.received().len(), 2);

            let (url, server) = start(|_| (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)).await;
            let report = Emitter::new(EmitterConfig {
                retry_scale: 0.0001,
                ..config(&url)
            })
            .expect("emitter")
            .emit_all(&events)
            .await;
            // The initial attempt plus Zoom's three retries, then the event is given up.
            assert_eq!((report.attempts, report.retries, report.failed), (8, 6, 2));
            assert_eq!(report.status_counts.get("503"), Some(&8));
            assert_eq!(server.received().len(), 8);
        }

        #[tokio::test]
        async fn slow_answers_time_out_and_are_retried() {
            let events = synthetic(2);
            let (url, _server) = start(|nth| {
                let delay = if nth == 0 {
                    Duration::from_millis(800)
                } else {
                    Duration::ZERO
                };
                (StatusCode::OK, delay)
            })
            .await;
            let report = Emitter::new(EmitterConfig {
                timeout: Duration::from_millis(200),
                ..config(&url)
            })
            .expect("emitter")
            .emit_all(&events)
            .await;
            assert_eq!((report.acked, report.retries), (2, 2));
            assert_eq!(report.status_counts.get("timeout"), Some(&2));
        }

        #[tokio::test]
        async fn unreachable_endpoint_counts_connection_errors() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            drop(listener);
            let report = Emitter::new(EmitterConfig {
                retry_scale: 0.0001,
                ..config(&format!("http://{addr}/webhooks/zoom"))
            })
            .expect("emitter")
            .emit_all(&synthetic(1))
            .await;
            assert_eq!((report.attempts, report.failed), (4, 1));
            assert_eq!(report.status_counts.get("connect_error"), Some(&4));
        }

        #[tokio::test]
        async fn url_validation_handshake() {
            let (url, server) = start(|_| (StatusCode::OK, Duration::ZERO)).await;
            let emitter = Emitter::new(config(&url)).expect("emitter");
            emitter.url_validation().await.expect("validation passes");
            let received = server.received();
            assert_eq!(received.len(), 1);
            assert_zoom_request(&received[0], &WebhookVerifier::new([SECRET], 300));
            let body: Value = serde_json::from_slice(&received[0].body).expect("json");
            assert_eq!(body["event"], "endpoint.url_validation");
            assert!(body["event_ts"].is_i64());
            let request: zoom::webhook::UrlValidationRequest =
                serde_json::from_value(body).expect("Zoom's challenge shape");
            assert_eq!(request.payload.plain_token.len(), 22);

            let (url, _) = start_with(
                Arc::new(|_| (StatusCode::OK, Duration::ZERO)),
                "another-secret",
            )
            .await;
            let error = Emitter::new(config(&url))
                .expect("emitter")
                .url_validation()
                .await
                .expect_err("a wrong encryptedToken is rejected");
            assert!(error.to_string().contains("encryptedToken"), "{error:#}");

            let (url, _) = start(|_| (StatusCode::OK, Duration::ZERO)).await;
            let wrong_path = url.replace("/webhooks/zoom", "/nope");
            assert!(Emitter::new(config(&wrong_path))
                .expect("emitter")
                .url_validation()
                .await
                .is_err());
        }

        #[tokio::test]
        async fn paced_emission_follows_event_time() {
            // Gaps of 500 ms at speedup 2: about 250 ms between deliveries.
            let events = synthetic(4);
            let (url, server) = start(|_| (StatusCode::OK, Duration::ZERO)).await;
            let emitter = Emitter::new(EmitterConfig {
                concurrency: 1,
                ..config(&url)
            })
            .expect("emitter");
            let started = Instant::now();
            let report = emitter.emit_paced(&events, 2.0).await;
            assert_eq!(report.acked, 4);
            assert!(started.elapsed() >= Duration::from_millis(740));
            let received = server.received();
            let bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
            let expected: Vec<Vec<u8>> = events.iter().map(SimEvent::to_bytes).collect();
            assert_eq!(bodies, expected, "paced delivery keeps event order");
        }

        #[test]
        fn invalid_configuration_is_rejected() {
            assert!(Emitter::new(EmitterConfig::new("not a url", SECRET)).is_err());
            assert!(Emitter::new(EmitterConfig::new("http://127.0.0.1:1/", "")).is_err());
            assert!(Emitter::new(EmitterConfig {
                retry_scale: f64::NAN,
                ..EmitterConfig::new("http://127.0.0.1:1/", SECRET)
            })
            .is_err());
            let debug = format!("{:?}", EmitterConfig::new("http://127.0.0.1:1/", SECRET));
            assert!(!debug.contains(SECRET));
        }
    }
}
