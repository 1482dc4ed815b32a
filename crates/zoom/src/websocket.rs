//! A subscriber for Zoom's WebSocket event subscriptions (reference §4).
//!
//! [`run`] keeps one socket to `{url}?subscriptionId=…&access_token=…` open: it fetches a fresh token from the
//! caller's [`TokenSource`] before every (re)connect, sends `{"module":"heartbeat"}` every
//! [`WsConfig::heartbeat_interval`], treats a socket on which nothing at all arrived for
//! [`WsConfig::silence_timeout`] as dead, and reconnects with jittered exponential backoff. What it sees goes to
//! the caller as [`WsItem`]s.
//!
//! Zoom has **no backfill**: events that happen while the socket is down are never delivered, so every
//! [`WsItem::Disconnected`] … [`WsItem::Connected`] gap must be covered by REST reconciliation.
//!
//! Frame handling (server → client). Only the URL, the query parameters and the client heartbeat are in Zoom's
//! docs; the frame shapes come from community clients (reference §4 🟡) and are handled leniently:
//! - `{"module":"message","content":"<JSON string>"}` → [`WsItem::Event`] with `content`'s bytes as received (a
//!   webhook-shaped `{event, event_ts, payload}`). ❓ Should Zoom send `content` as a JSON object instead of a
//!   string, it is accepted and re-serialized compactly.
//! - `{"module":"heartbeat",…}` (❓ whether Zoom replies to every heartbeat is unconfirmed; if it does not, and
//!   events are rare, set [`WsConfig::silence_timeout`] to `None` or a large value) and
//!   `{"module":"build_connection","success":true,…}` only refresh the silence timer. ❓ A `build_connection` with
//!   `"success":false` is treated as a refused connection (token renewed, then reconnect).
//! - Other modules are logged and ignored (forward compatibility).
//! - Anything else (not JSON, no `module`, `message` without usable `content`, binary frames) →
//!   [`WsItem::Malformed`], so the caller can quarantine it.
//!
//! The access token travels in the URL (Zoom's design), so neither the token nor the full URL is ever logged
//! or put into a [`WsItem`]; error texts are scrubbed of it.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backoff::Backoff;
use futures_util::{FutureExt, SinkExt, StreamExt};
use reqwest::Url;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, error::UrlError, Message};
use tokio_tungstenite::WebSocketStream;

/// Zoom's WebSocket endpoint (the `subscriptionId` comes from the endpoint URL shown in the app config).
pub const DEFAULT_WS_URL: &str = "wss://ws.zoom.us/ws";

/// The heartbeat frame Zoom asks clients to send every 30 s.
pub const HEARTBEAT_FRAME: &str = r#"{"module":"heartbeat"}"#;

/// A boxed error from a [`TokenSource`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies access tokens for the socket URL, e.g. backed by `zoom::api::ZoomClient::access_token()`.
pub trait TokenSource: Send + Sync {
    /// A currently valid access token. Called before every connection attempt.
    fn token(&self) -> impl Future<Output = Result<String, BoxError>> + Send;

    /// Zoom refused `token` (401/403 on the handshake, or a failed `build_connection`): forget it, so that the
    /// next [`token`](Self::token) call fetches a new one.
    fn invalidate(&self, token: &str) -> impl Future<Output = ()> + Send;
}

/// A [`TokenSource`] from a closure `f(force_refresh)`; `force_refresh` is true on the first call after Zoom
/// refused a token. See [`token_fn`].
pub struct FnTokenSource<F> {
    fetch: F,
    force_refresh: AtomicBool,
}

/// Wraps `f(force_refresh: bool) -> impl Future<Output = Result<String, BoxError>>` as a [`TokenSource`].
pub fn token_fn<F, Fut>(f: F) -> FnTokenSource<F>
where
    F: Fn(bool) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, BoxError>> + Send,
{
    FnTokenSource {
        fetch: f,
        force_refresh: AtomicBool::new(false),
    }
}

impl<F, Fut> TokenSource for FnTokenSource<F>
where
    F: Fn(bool) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, BoxError>> + Send,
{
    fn token(&self) -> impl Future<Output = Result<String, BoxError>> + Send {
        (self.fetch)(self.force_refresh.swap(false, Ordering::Relaxed))
    }

    fn invalidate(&self, _token: &str) -> impl Future<Output = ()> + Send {
        self.force_refresh.store(true, Ordering::Relaxed);
        std::future::ready(())
    }
}

impl<F> fmt::Debug for FnTokenSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTokenSource").finish_non_exhaustive()
    }
}

/// What the subscriber reports. `Connected` and `Disconnected` alternate, starting with `Connected`; failed
/// connection attempts are only logged. Times are epoch milliseconds (local clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsItem {
    /// The handshake succeeded; events flow from now on.
    Connected { at_ms: i64 },
    /// An event: the frame's `content`, exactly as received (a webhook-shaped JSON envelope).
    Event { raw: Vec<u8>, received_at_ms: i64 },
    /// A frame that could not be understood: the whole frame as received, and why.
    Malformed {
        raw: Vec<u8>,
        error: String,
        received_at_ms: i64,
    },
    /// The connection ended (events may have been missed until the next `Connected`). `at_ms` is the last moment
    /// the subscriber is known to have been caught up with the server: a close read behind a backlog of frames, or
    /// after a silence, is noticed late, and events published since then may be lost.
    Disconnected { at_ms: i64, reason: String },
}

/// Subscriber settings. [`WsConfig::new`] gives Zoom's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// `ws://` or `wss://` endpoint without the query parameters, e.g. [`DEFAULT_WS_URL`].
    pub url: String,
    pub subscription_id: String,
    /// How often `{"module":"heartbeat"}` is sent (Zoom: every 30 s).
    pub heartbeat_interval: Duration,
    /// A connection on which no frame at all arrived for this long is considered dead and replaced. `None`
    /// disables the check. Default 2.5 × the heartbeat interval (75 s).
    pub silence_timeout: Option<Duration>,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max`, each delay jittered down by up to
    /// half. It starts over after a connection that stayed up for at least one heartbeat interval.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Limit on TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
}

impl WsConfig {
    pub fn new(url: impl Into<String>, subscription_id: impl Into<String>) -> Self {
        let heartbeat_interval = Duration::from_secs(30);
        Self {
            url: url.into(),
            subscription_id: subscription_id.into(),
            heartbeat_interval,
            silence_timeout: Some(heartbeat_interval * 5 / 2),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Why [`run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("invalid WebSocket URL: {0}")]
    InvalidUrl(String),
    #[error("invalid WebSocket config: {0}")]
    InvalidConfig(&'static str),
}

/// Runs the subscription until `shutdown` becomes true (or its sender is dropped) or `tx`'s receiver is dropped.
/// Connection failures never end it: they are logged and retried with backoff. Errors only for an unusable
/// config.
///
/// `tx` applies backpressure: while the receiver is full no frames are read (heartbeats still go out), so keep
/// up, or Zoom will eventually close the socket.
pub async fn run<T: TokenSource>(
    config: WsConfig,
    tokens: T,
    tx: mpsc::Sender<WsItem>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WsError> {
    let base = Url::parse(&config.url).map_err(|e| WsError::InvalidUrl(e.to_string()))?;
    if !matches!(base.scheme(), "ws" | "wss") {
        return Err(WsError::InvalidUrl(format!(
            "scheme must be ws or wss, not {}",
            base.scheme()
        )));
    }
    if config.heartbeat_interval.is_zero() {
        return Err(WsError::InvalidConfig(
            "heartbeat_interval must be positive",
        ));
    }
    // For logs: scheme, host, port and path, never the query (it will hold the token).
    let endpoint = format!(
        "{}://{}{}{}",
        base.scheme(),
        base.host_str().unwrap_or(""),
        base.port().map(|p| format!(":{p}")).unwrap_or_default(),
        base.path()
    );
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let mut attempt: u64 = 0;

    loop {
        if is_stopping(&shutdown, &tx) {
            return Ok(());
        }
        attempt += 1;
        let token = tokio::select! {
            token = tokens.token() => token,
            () = stopped(&mut shutdown, &tx) => return Ok(()),
        };
        let token = match token {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "Zoom WebSocket: no access token; will retry");
                if !pause(&mut backoff, &mut shutdown, &tx).await {
                    return Ok(());
                }
                continue;
            }
        };
        let url = connect_url(&base, &config.subscription_id, &token);
        tracing::debug!(%endpoint, subscription_id = %config.subscription_id, attempt, "Zoom WebSocket: connecting");
        let connected = tokio::select! {
            r = tokio::time::timeout(
                config.connect_timeout,
                tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
            ) => r,
            () = stopped(&mut shutdown, &tx) => return Ok(()),
        };
        drop(url);

        let stream = match connected {
            Ok(Ok((stream, _response))) => stream,
            Ok(Err(e)) => {
                let refused = refused_status(&e);
                tracing::warn!(
                    %endpoint,
                    attempt,
                    error = %describe(&e, &token),
                    "Zoom WebSocket: connection failed"
                );
                if let Some(status) = refused {
                    tracing::info!(status, "Zoom WebSocket: token refused; renewing it");
                    tokens.invalidate(&token).await;
                }
                if !pause(&mut backoff, &mut shutdown, &tx).await {
                    return Ok(());
                }
                continue;
            }
            Err(_elapsed) => {
                tracing::warn!(%endpoint, attempt, timeout = ?config.connect_timeout, "Zoom WebSocket: connect timed out");
                if !pause(&mut backoff, &mut shutdown, &tx).await {
                    return Ok(());
                }
                continue;
            }
        };

        let up_since = Instant::now();
        tracing::info!(%endpoint, subscription_id = %config.subscription_id, attempt, "Zoom WebSocket: connected");
        if !emit(WsItem::Connected { at_ms: now_ms() }, &tx, &mut shutdown).await {
            close_quietly(stream).await;
            return Ok(());
        }
        let end = session(stream, &config, &tx, &mut shutdown).await;
        match end {
            SessionEnd::Stop => {
                let _ = tx.try_send(WsItem::Disconnected {
                    at_ms: now_ms(),
                    reason: "shutdown".into(),
                });
                return Ok(());
            }
            SessionEnd::Lost {
                reason,
                refused,
                alive_until_ms,
            } => {
                let reason = scrub(&reason, &token);
                tracing::warn!(%endpoint, reason = %reason, up_for = ?up_since.elapsed(), "Zoom WebSocket: disconnected");
                if !emit(
                    WsItem::Disconnected {
                        at_ms: alive_until_ms,
                        reason,
                    },
                    &tx,
                    &mut shutdown,
                )
                .await
                {
                    return Ok(());
                }
                if refused {
                    tokens.invalidate(&token).await;
                }
                if up_since.elapsed() >= config.heartbeat_interval {
                    backoff.reset();
                    attempt = 0;
                }
                if !pause(&mut backoff, &mut shutdown, &tx).await {
                    return Ok(());
                }
            }
        }
    }
}

enum SessionEnd {
    /// Shutdown requested or the receiver is gone.
    Stop,
    /// The connection died; `refused` when Zoom rejected it in-band (renew the token). `alive_until_ms`: see
    /// [`WsItem::Disconnected`].
    Lost {
        reason: String,
        refused: bool,
        alive_until_ms: i64,
    },
}

/// When a session was last known to be current, for the disconnection gap: the later of the two clocks would
/// understate the gap. `caught_up_ms`: the last time the socket had nothing more to read (everything the server sent
/// until then was read); `last_frame_ms`: the last time a frame arrived (after it, a half-dead socket stays quiet).
#[derive(Clone, Copy)]
struct Liveness {
    caught_up_ms: i64,
    last_frame_ms: i64,
}

impl Liveness {
    fn alive_until_ms(self) -> i64 {
        self.caught_up_ms.min(self.last_frame_ms)
    }

    fn lost(self, reason: impl Into<String>) -> SessionEnd {
        SessionEnd::Lost {
            reason: reason.into(),
            refused: false,
            alive_until_ms: self.alive_until_ms(),
        }
    }
}

/// One connected socket: heartbeats, silence detection, frames → items.
async fn session<S>(
    mut ws: WebSocketStream<S>,
    config: &WsConfig,
    tx: &mpsc::Sender<WsItem>,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + config.heartbeat_interval,
        config.heartbeat_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = Instant::now();
    let mut live = Liveness {
        caught_up_ms: now_ms(),
        last_frame_ms: now_ms(),
    };

    loop {
        // A frame already buffered is read without waiting (a backlog); only when none is does the session wait,
        // and only then is it known to be caught up with the server.
        let ready = ws.next().now_or_never();
        let frame = match ready {
            Some(frame) => {
                if heartbeat.tick().now_or_never().is_some() {
                    if let Err(reason) = send_heartbeat(&mut ws, config).await {
                        return live.lost(reason);
                    }
                }
                frame
            }
            None => {
                live.caught_up_ms = now_ms();
                let silence = async {
                    match config.silence_timeout {
                        Some(limit) => tokio::time::sleep_until(last_frame + limit).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    () = stopped(shutdown, tx) => {
                        close_quietly(ws).await;
                        return SessionEnd::Stop;
                    }
                    _ = heartbeat.tick() => {
                        if let Err(reason) = send_heartbeat(&mut ws, config).await {
                            return live.lost(reason);
                        }
                        continue;
                    }
                    frame = ws.next() => frame,
                    () = silence => {
                        return live.lost(format!(
                            "no frame received for {:?} (silence timeout)",
                            config.silence_timeout.unwrap_or_default()
                        ));
                    }
                }
            }
        };
        last_frame = Instant::now();
        let item = match frame {
            None => return live.lost("connection closed"),
            Some(Err(e)) => return live.lost(format!("read failed: {e}")),
            Some(Ok(Message::Close(frame))) => {
                // Answer the close (tungstenite queued the reply) so the server can end the connection cleanly.
                let end = live.lost(match frame {
                    Some(f) => format!(
                        "closed by server: {} {}",
                        u16::from(f.code),
                        f.reason.as_str()
                    ),
                    None => "closed by server".to_owned(),
                });
                close_quietly(ws).await;
                return end;
            }
            Some(Ok(Message::Text(text))) => match classify(text.as_str()) {
                Frame::Event(raw) => WsItem::Event {
                    raw,
                    received_at_ms: now_ms(),
                },
                Frame::Malformed(error) => malformed(text.as_bytes(), error),
                Frame::Heartbeat => {
                    tracing::trace!("Zoom WebSocket: heartbeat reply");
                    live.last_frame_ms = now_ms();
                    continue;
                }
                Frame::BuildConnection { success: true } => {
                    tracing::debug!("Zoom WebSocket: build_connection");
                    live.last_frame_ms = now_ms();
                    continue;
                }
                Frame::BuildConnection { success: false } => {
                    close_quietly(ws).await;
                    return SessionEnd::Lost {
                        reason: format!(
                            "build_connection refused: {}",
                            truncate(text.as_str(), 300)
                        ),
                        refused: true,
                        alive_until_ms: live.alive_until_ms(),
                    };
                }
                Frame::Other(module) => {
                    tracing::info!(%module, "Zoom WebSocket: ignoring frame of unknown module");
                    live.last_frame_ms = now_ms();
                    continue;
                }
            },
            Some(Ok(Message::Binary(bytes))) => malformed(&bytes, "binary frame".to_owned()),
            Some(Ok(_)) => {
                live.last_frame_ms = now_ms();
                continue; // ping / pong (pongs are answered by tungstenite)
            }
        };
        live.last_frame_ms = now_ms();
        if let WsItem::Malformed { error, raw, .. } = &item {
            tracing::warn!(%error, len = raw.len(), "Zoom WebSocket: malformed frame");
        }
        if let Err(end) = deliver(item, &mut ws, &mut heartbeat, config, tx, shutdown, live).await {
            if matches!(end, SessionEnd::Stop) {
                close_quietly(ws).await;
            }
            return end;
        }
    }
}

/// Hands `item` to the receiver, waiting for room while keeping the heartbeat going.
async fn deliver<S>(
    item: WsItem,
    ws: &mut WebSocketStream<S>,
    heartbeat: &mut tokio::time::Interval,
    config: &WsConfig,
    tx: &mpsc::Sender<WsItem>,
    shutdown: &mut watch::Receiver<bool>,
    live: Liveness,
) -> Result<(), SessionEnd>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            biased;
            () = stopped(shutdown, tx) => return Err(SessionEnd::Stop),
            permit = tx.reserve() => {
                return match permit {
                    Ok(permit) => {
                        permit.send(item);
                        Ok(())
                    }
                    Err(_) => Err(SessionEnd::Stop),
                };
            }
            _ = heartbeat.tick() => send_heartbeat(ws, config).await.map_err(|reason| live.lost(reason))?,
        }
    }
}

async fn send_heartbeat<S>(ws: &mut WebSocketStream<S>, config: &WsConfig) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let limit = config.heartbeat_interval.max(Duration::from_secs(1));
    match tokio::time::timeout(limit, ws.send(Message::text(HEARTBEAT_FRAME))).await {
        Ok(Ok(())) => {
            tracing::trace!("Zoom WebSocket: heartbeat sent");
            Ok(())
        }
        Ok(Err(e)) => Err(format!("heartbeat send failed: {e}")),
        Err(_) => Err("heartbeat send timed out".to_owned()),
    }
}

async fn close_quietly<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

fn malformed(raw: &[u8], error: String) -> WsItem {
    WsItem::Malformed {
        raw: raw.to_vec(),
        error,
        received_at_ms: now_ms(),
    }
}

/// A server frame, understood.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Event(Vec<u8>),
    Heartbeat,
    BuildConnection { success: bool },
    Other(String),
    Malformed(String),
}

fn classify(text: &str) -> Frame {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return Frame::Malformed(format!("frame is not JSON: {e}")),
    };
    let Some(module) = value.get("module").and_then(Value::as_str) else {
        return Frame::Malformed("frame has no string \"module\"".to_owned());
    };
    match module {
        "message" => match value.get("content") {
            Some(Value::String(content)) => match serde_json::from_str::<Value>(content) {
                Ok(Value::Object(_)) => Frame::Event(content.as_bytes().to_vec()),
                Ok(_) => Frame::Malformed("\"content\" is not a JSON object".to_owned()),
                Err(e) => Frame::Malformed(format!("\"content\" is not JSON: {e}")),
            },
            Some(object @ Value::Object(_)) => Frame::Event(object.to_string().into_bytes()),
            Some(_) => Frame::Malformed("\"content\" is neither a string nor an object".to_owned()),
            None => Frame::Malformed("message frame without \"content\"".to_owned()),
        },
        "heartbeat" => Frame::Heartbeat,
        "build_connection" => Frame::BuildConnection {
            success: value
                .get("success")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        },
        other => Frame::Other(other.to_owned()),
    }
}

fn connect_url(base: &Url, subscription_id: &str, token: &str) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("subscriptionId", subscription_id)
        .append_pair("access_token", token);
    url
}

/// The HTTP status of a refused handshake that calls for a new token.
fn refused_status(e: &tungstenite::Error) -> Option<u16> {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            matches!(status, 401 | 403).then_some(status)
        }
        _ => None,
    }
}

/// A connection error as text, without the URL (which holds the token).
fn describe(e: &tungstenite::Error, token: &str) -> String {
    let text = match e {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            format!(
                "handshake refused: HTTP {} {}",
                response.status(),
                truncate(&body, 300)
            )
        }
        tungstenite::Error::Url(UrlError::UnableToConnect(_)) => "unable to connect".to_owned(),
        other => other.to_string(),
    };
    scrub(&text, token)
}

/// Removes `token` (raw or URL-encoded) from `text`.
fn scrub(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    let encoded: String = reqwest::Url::parse_with_params("ws://x/", &[("t", token)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("t=").to_owned()))
        .unwrap_or_default();
    let mut out = text.replace(token, "<redacted>");
    if !encoded.is_empty() && encoded != token {
        out = out.replace(&encoded, "<redacted>");
    }
    out
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn is_stopping(shutdown: &watch::Receiver<bool>, tx: &mpsc::Sender<WsItem>) -> bool {
    *shutdown.borrow() || tx.is_closed() || shutdown.has_changed().is_err()
}

/// Resolves when shutdown is requested (or its sender is gone) or the item receiver is dropped.
async fn stopped(shutdown: &mut watch::Receiver<bool>, tx: &mpsc::Sender<WsItem>) {
    tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => {}
        () = tx.closed() => {}
    }
}

/// Sends `item` unless stopping first; false when the subscriber should stop.
async fn emit(
    item: WsItem,
    tx: &mpsc::Sender<WsItem>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        biased;
        () = stopped(shutdown, tx) => false,
        sent = tx.send(item) => sent.is_ok(),
    }
}

/// Sleeps the next backoff delay; false when the subscriber should stop.
async fn pause(
    backoff: &mut Backoff,
    shutdown: &mut watch::Receiver<bool>,
    tx: &mpsc::Sender<WsItem>,
) -> bool {
    let delay = backoff.next_delay();
    tracing::debug!(?delay, "Zoom WebSocket: reconnecting after backoff");
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stopped(shutdown, tx) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        let envelope = r#"{"event":"contact_center.engagement_started","event_ts":1,"payload":{"account_id":"a","object":{}}}"#;
        let frame = serde_json::json!({"module": "message", "content": envelope}).to_string();
        assert_eq!(classify(&frame), Frame::Event(envelope.as_bytes().to_vec()));
        assert_eq!(
            classify(r#"{"module":"message","content":{"event":"x"}}"#),
            Frame::Event(br#"{"event":"x"}"#.to_vec())
        );
        assert_eq!(
            classify(r#"{"module":"heartbeat","success":true}"#),
            Frame::Heartbeat
        );
        assert_eq!(
            classify(r#"{"module":"build_connection","success":true}"#),
            Frame::BuildConnection { success: true }
        );
        assert_eq!(
            classify(r#"{"module":"build_connection","success":false}"#),
            Frame::BuildConnection { success: false }
        );
        assert_eq!(
            classify(r#"{"module":"news"}"#),
            Frame::Other("news".into())
        );
        for bad in [
            "not json",
            r#"{"content":"{}"}"#,
            r#"{"module":"message"}"#,
            r#"{"module":"message","content":"{oops"}"#,
            r#"{"module":"message","content":"[1]"}"#,
            r#"{"module":"message","content":7}"#,
        ] {
            assert!(matches!(classify(bad), Frame::Malformed(_)), "{bad}");
        }
    }

    #[test]
    fn connect_url_encodes_parameters_and_scrub_hides_the_token() {
        let base = Url::parse("wss://ws.zoom.us/ws").expect("url");
        let url = connect_url(&base, "sub/1", "s3cr3t+x=");
        assert_eq!(
            url.as_str(),
            "wss://ws.zoom.us/ws?subscriptionId=sub%2F1&access_token=s3cr3t%2Bx%3D"
        );
        let text = format!("failed for {url} (s3cr3t+x=)");
        let scrubbed = scrub(&text, "s3cr3t+x=");
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert_eq!(scrubbed.matches("<redacted>").count(), 2, "{scrubbed}");
    }
}
