//! The simulated WebSocket event subscription (`zoom_sim::websocket`) against the real subscriber
//! (`zoom::websocket`): delivery, heartbeats, reconnects, no backfill, token renewal, silence detection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zoom::websocket::{self as ws, BoxError, TokenSource, WsConfig, WsError, WsItem};
use zoom_sim::websocket::{EventHub, HubConfig, HubServer};
use zoom_sim::{generate, GeneratorConfig};

const SUB: &str = "ZhPGtK84QbapRWXzEBW7MA";
const TOKEN: &str = "test-token";
const WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct TokenState {
    stale_first: AtomicBool,
    fetches: AtomicUsize,
    invalidated: Mutex<Vec<String>>,
}

/// Hands out `TOKEN`, or `"stale-token"` until told to renew when `stale_first`.
#[derive(Clone, Default)]
struct TestTokens(Arc<TokenState>);

impl TokenSource for TestTokens {
    async fn token(&self) -> Result<String, BoxError> {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(if self.0.stale_first.load(Ordering::SeqCst) {
            "stale-token".to_owned()
        } else {
            TOKEN.to_owned()
        })
    }

    async fn invalidate(&self, token: &str) {
        self.0
            .invalidated
            .lock()
            .expect("lock")
            .push(token.to_owned());
        self.0.stale_first.store(false, Ordering::SeqCst);
    }
}

async fn start_hub(config: HubConfig) -> (EventHub, HubServer) {
    let hub = EventHub::with_config(SUB, Arc::new(|t: &str| t == TOKEN), config);
    let server = hub
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    (hub, server)
}

fn client_config(server: &HubServer) -> WsConfig {
    WsConfig {
        heartbeat_interval: Duration::from_millis(100),
        silence_timeout: Some(Duration::from_millis(350)),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        ..WsConfig::new(server.ws_url(), SUB)
    }
}

struct Client {
    rx: mpsc::Receiver<WsItem>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), WsError>>,
}

fn spawn_client(config: WsConfig, tokens: TestTokens) -> Client {
    let (tx, rx) = mpsc::channel(64);
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(ws::run(config, tokens, tx, shutdown));
    Client { rx, stop, task }
}

impl Client {
    async fn next(&mut self) -> WsItem {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an item in time")
            .expect("subscriber still running")
    }

    async fn expect_connected(&mut self) {
        match self.next().await {
            WsItem::Connected { .. } => {}
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    async fn expect_disconnected(&mut self) -> String {
        match self.next().await {
            WsItem::Disconnected { reason, .. } => reason,
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }

    async fn expect_event(&mut self) -> Vec<u8> {
        match self.next().await {
            WsItem::Event { raw, .. } => raw,
            other => panic!("expected Event, got {other:?}"),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let ended = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("subscriber stops in time")
            .expect("subscriber task");
        assert!(ended.is_ok(), "{ended:?}");
    }
}

fn envelopes(n: usize) -> Vec<Value> {
    let scenario = generate(&GeneratorConfig {
        seed: 7,
        engagements: 3,
        ..GeneratorConfig::default()
    });
    let events: Vec<Value> = scenario.events.into_iter().map(|e| e.body).collect();
    assert!(events.len() >= n, "scenario too small");
    events.into_iter().take(n).collect()
}

fn as_json(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).expect("event content is JSON")
}

#[tokio::test]
async fn events_arrive_as_published_and_heartbeats_keep_the_socket_alive() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;
    assert_eq!(hub.connected(), 1);

    let sent = envelopes(5);
    for envelope in &sent {
        assert_eq!(hub.publish(envelope), 1);
    }
    for envelope in &sent {
        let raw = client.expect_event().await;
        // The content string exactly as published, i.e. the compact envelope.
        assert_eq!(raw, envelope.to_string().into_bytes());
        assert_eq!(&as_json(&raw), envelope);
    }

    // Paced playback keeps the order.
    let more = envelopes(4);
    assert_eq!(
        hub.publish_all(&more, Some(Duration::from_millis(10)))
            .await,
        4
    );
    for envelope in &more {
        assert_eq!(&as_json(&client.expect_event().await), envelope);
    }

    // No events for well over the silence timeout: heartbeat replies keep the connection up.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        client.rx.try_recv().is_err(),
        "nothing (no Disconnected) while idle"
    );
    let stats = hub.stats();
    assert!(stats.heartbeats >= 5, "{stats:?}");
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.published, 9);
    assert_eq!(stats.delivered, 9);
    assert_eq!(stats.dropped_while_disconnected, 0);

    client.stop().await;
}

#[tokio::test]
async fn malformed_frames_are_reported_not_dropped() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;

    assert_eq!(hub.send_frame("not json"), 1);
    assert_eq!(hub.publish_content("{oops"), 1);
    assert_eq!(hub.send_frame(r#"{"module":"something_new"}"#), 1); // ignored
    hub.publish(&json!({"event": "contact_center.engagement_started", "event_ts": 1}));

    match client.next().await {
        WsItem::Malformed { raw, error, .. } => {
            assert_eq!(raw, b"not json");
            assert!(error.contains("not JSON"), "{error}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match client.next().await {
        WsItem::Malformed { raw, error, .. } => {
            assert_eq!(
                as_json(&raw),
                json!({"module": "message", "content": "{oops"})
            );
            assert!(error.contains("content"), "{error}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let raw = client.expect_event().await;
    assert_eq!(as_json(&raw)["event"], "contact_center.engagement_started");
    client.stop().await;
}

#[tokio::test]
async fn disconnect_reconnects_and_events_in_between_are_lost() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;

    let [lost, kept]: [Value; 2] = envelopes(2).try_into().expect("two");
    assert_eq!(hub.disconnect_all(), 1);
    assert_eq!(hub.connected(), 0);
    assert_eq!(hub.publish(&lost), 0, "nobody connected: dropped");
    assert_eq!(hub.stats().dropped_while_disconnected, 1);

    let reason = client.expect_disconnected().await;
    assert!(reason.contains("closed by server"), "{reason}");
    client.expect_connected().await;
    assert_eq!(hub.publish(&kept), 1);
    // The dropped event is never backfilled: the next event is the one published after reconnecting.
    assert_eq!(as_json(&client.expect_event().await), kept);

    let stats = hub.stats();
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.published, 2);
    assert_eq!(stats.delivered, 1);
    client.stop().await;
}

#[tokio::test]
async fn a_close_behind_a_backlog_loses_nothing_and_dates_the_gap_from_when_the_client_was_caught_up(
) {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;

    // The receiver does not read: the subscriber's channel (64) fills and frames back up in the socket.
    let published: Vec<Value> = envelopes(10).into_iter().cycle().take(300).collect();
    let caught_up_until = now_ms();
    for envelope in &published {
        assert_eq!(hub.publish(envelope), 1);
    }
    // Heartbeats keep going meanwhile (every 100 ms), and the server's close lands behind the backlog.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hub.disconnect_all(), 1);

    for envelope in &published {
        assert_eq!(&as_json(&client.expect_event().await), envelope);
    }
    match client.next().await {
        WsItem::Disconnected { at_ms, reason } => {
            assert!(reason.contains("closed by server"), "{reason}");
            // Noticed only after the backlog, but dated from before it: a gap reconciliation covers the backlog.
            assert!(
                at_ms <= caught_up_until + 50,
                "gap dated {} ms after the client was last caught up",
                at_ms - caught_up_until
            );
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(hub.stats().heartbeat_timeouts, 0);
    client.stop().await;
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

#[tokio::test]
async fn refused_token_is_renewed_then_the_client_connects() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let tokens = TestTokens::default();
    tokens.0.stale_first.store(true, Ordering::SeqCst);
    let mut client = spawn_client(client_config(&server), tokens.clone());

    client.expect_connected().await;
    assert_eq!(
        *tokens.0.invalidated.lock().expect("lock"),
        vec!["stale-token".to_owned()]
    );
    assert_eq!(tokens.0.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(hub.stats().refused, 1);
    assert_eq!(hub.stats().connections, 1);
    client.stop().await;
}

#[tokio::test]
async fn refusals_are_zoom_shaped_json() {
    let (_hub, server) = start_hub(HubConfig::default()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/ws", server.addr());
    let get = |query: Vec<(&'static str, &'static str)>| {
        let request = http.get(&url).query(&query);
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };

    let (status, body) = get(vec![("subscriptionId", SUB), ("access_token", "nope")]).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 124, "message": "Invalid access token."})
    );
    let (status, _) = get(vec![("subscriptionId", SUB)]).await;
    assert_eq!(status, 401);
    let (status, body) = get(vec![("subscriptionId", "other"), ("access_token", TOKEN)]).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], 403);
    // Valid credentials but not a WebSocket upgrade.
    let (status, _) = get(vec![("subscriptionId", SUB), ("access_token", TOKEN)]).await;
    assert!((400..500).contains(&status), "{status}");
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_silence_timeout() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;

    hub.set_silent(true);
    let started = tokio::time::Instant::now();
    let reason = client.expect_disconnected().await;
    assert!(reason.contains("silence timeout"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(2));

    hub.set_silent(false);
    // The client may have reconnected (and timed out again) while the hub was silent; it ends up connected and
    // receiving.
    let envelope = envelopes(1).remove(0);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event after un-silencing"
        );
        if hub.connected() > 0 && hub.publish(&envelope) > 0 {
            match tokio::time::timeout(Duration::from_millis(500), client.rx.recv()).await {
                Ok(Some(WsItem::Event { raw, .. })) => {
                    assert_eq!(as_json(&raw), envelope);
                    break;
                }
                Ok(Some(_)) | Err(_) => continue,
                Ok(None) => panic!("subscriber ended"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.stop().await;
}

#[tokio::test]
async fn the_hub_drops_clients_that_stop_sending_heartbeats() {
    let (hub, server) = start_hub(HubConfig {
        heartbeat_timeout: Duration::from_millis(300),
    })
    .await;
    let config = WsConfig {
        heartbeat_interval: Duration::from_secs(30),
        silence_timeout: None,
        ..client_config(&server)
    };
    let mut client = spawn_client(config, TestTokens::default());
    client.expect_connected().await;
    let reason = client.expect_disconnected().await;
    assert!(reason.contains("heartbeat timeout"), "{reason}");
    assert_eq!(hub.stats().heartbeat_timeouts, 1);
    client.expect_connected().await;
    client.stop().await;
}

#[tokio::test]
async fn the_subscriber_stops_when_its_receiver_is_dropped() {
    let (hub, server) = start_hub(HubConfig::default()).await;
    let mut client = spawn_client(client_config(&server), TestTokens::default());
    client.expect_connected().await;
    let Client { rx, stop, task } = client;
    drop(rx);
    let ended = tokio::time::timeout(WAIT, task)
        .await
        .expect("stops in time")
        .expect("task");
    assert!(ended.is_ok());
    drop(stop);
    // The hub notices the closed socket.
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.connected() > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bad_url_is_an_error() {
    let (tx, _rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let result = ws::run(
        WsConfig::new("http://example.com/ws", SUB),
        TestTokens::default(),
        tx,
        shutdown,
    )
    .await;
    assert!(matches!(result, Err(WsError::InvalidUrl(_))), "{result:?}");
}
