//! The wire contract of genesys-sim, exercised over HTTP and WebSocket as a client would.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use genesys_sim::{GenesysSim, GenesysSimConfig, Media};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CONV_TOPIC_U1: &str = "v2.users.u1.conversations";

fn fast() -> GenesysSimConfig {
    GenesysSimConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..GenesysSimConfig::default()
    }
}

async fn start(config: GenesysSimConfig) -> GenesysSim {
    GenesysSim::start(config).await.expect("sim starts")
}

/// A client that talks to `sim` with a fresh token.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn new(sim: &GenesysSim) -> Self {
        let http = reqwest::Client::new();
        let base = sim.base_url();
        let response = http
            .post(format!("{base}/oauth/token"))
            .basic_auth("sim-client", Some("sim-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        Self { http, base, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn channel(&self) -> (String, String) {
        let (status, body) = self
            .call(Method::POST, "/api/v2/notifications/channels", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["connectUri"].as_str().unwrap().to_owned(),
        )
    }

    async fn subscribe(
        &self,
        method: Method,
        channel: &str,
        topics: &[&str],
    ) -> (StatusCode, Value) {
        let body: Vec<Value> = topics.iter().map(|t| json!({"id": t})).collect();
        self.call(
            method,
            &format!("/api/v2/notifications/channels/{channel}/subscriptions"),
            Some(Value::Array(body)),
        )
        .await
    }

    async fn head_channel(&self, channel: &str) -> StatusCode {
        self.call(
            Method::HEAD,
            &format!("/api/v2/notifications/channels/{channel}"),
            None,
        )
        .await
        .0
    }
}

async fn connect(uri: &str) -> Ws {
    tokio_tungstenite::connect_async(uri)
        .await
        .expect("WebSocket connects")
        .0
}

/// The next frame within `within`: `None` on timeout, `Some(Err)` on a broken connection.
async fn next_frame(ws: &mut Ws, within: Duration) -> Option<Result<Message, tungstenite::Error>> {
    tokio::time::timeout(within, ws.next()).await.ok().flatten()
}

fn text_json(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => Some(serde_json::from_str(text.as_str()).expect("JSON frame")),
        _ => None,
    }
}

fn is_heartbeat(frame: &Value) -> bool {
    frame["topicName"] == "channel.metadata"
        && frame["eventBody"]["message"] == "WebSocket Heartbeat"
}

/// The next text frame that is not a heartbeat.
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let message = next_frame(ws, Duration::from_secs(2))
            .await
            .expect("a frame in time")
            .expect("an open socket");
        if let Some(frame) = text_json(&message) {
            if !is_heartbeat(&frame) {
                return frame;
            }
        }
    }
}

/// Reads for `within` and returns every non-heartbeat text frame (the socket must stay open).
async fn events_for(ws: &mut Ws, within: Duration) -> Vec<Value> {
    let until = tokio::time::Instant::now() + within;
    let mut events = Vec::new();
    while let Ok(frame) = tokio::time::timeout_at(until, ws.next()).await {
        let message = frame.expect("socket open").expect("no error");
        if let Some(frame) = text_json(&message) {
            if !is_heartbeat(&frame) {
                events.push(frame);
            }
        }
    }
    events
}

/// Reads until the socket ends; returns the close frame's code if one came, and whether heartbeats did.
async fn until_closed(ws: &mut Ws, within: Duration) -> (Option<u16>, Vec<Value>) {
    let until = tokio::time::Instant::now() + within;
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => panic!("socket still open after {within:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (Some(frame.map_or(1005, |f| u16::from(f.code))), frames)
            }
            Ok(Some(Ok(message))) => frames.extend(text_json(&message)),
            Ok(None) | Ok(Some(Err(_))) => return (None, frames),
        }
    }
}

fn agent_of<'a>(conversation: &'a Value, user: &str) -> &'a Value {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p["userId"] == user)
        .expect("the user's participant")
}

#[tokio::test]
async fn oauth_issues_tokens_to_the_configured_client_only() {
    let sim = start(GenesysSimConfig::default()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/oauth/token", sim.base_url());

    let ok = http
        .post(&url)
        .basic_auth("sim-client", Some("sim-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 20));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_399);

    let bad = http
        .post(&url)
        .basic_auth("sim-client", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["description"].is_string());

    let grant = http
        .post(&url)
        .basic_auth("sim-client", Some("sim-secret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), StatusCode::BAD_REQUEST);
    let body: Value = grant.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    assert_eq!(sim.stats().token_requests, 3);
}

#[tokio::test]
async fn api_routes_need_a_valid_bearer_token() {
    let sim = start(GenesysSimConfig::default()).await;
    sim.add_user("u1", "Ann", "ann@example.com");
    let http = reqwest::Client::new();
    let url = format!("{}/api/v2/users/u1", sim.base_url());

    for request in [http.get(&url), http.get(&url).bearer_auth("made-up")] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "bad.credentials");
        assert_eq!(body["status"], 401);
        assert!(body["message"].is_string());
    }
    let client = Client::new(&sim).await;
    assert_eq!(client.get("/api/v2/users/u1").await.0, StatusCode::OK);
    assert_eq!(
        sim.requests().last(),
        Some(&("GET".to_owned(), "/api/v2/users/u1".to_owned()))
    );

    // A token past its lifetime is refused.
    let expiring = start(GenesysSimConfig {
        token_ttl: Duration::ZERO,
        ..GenesysSimConfig::default()
    })
    .await;
    let client = Client::new(&expiring).await;
    let (status, body) = client.get("/api/v2/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "bad.credentials");
}

#[tokio::test]
async fn users_are_read_one_by_one_and_by_page() {
    let sim = start(GenesysSimConfig::default()).await;
    for id in ["u3", "u1", "u5", "u2", "u4"] {
        sim.add_user(id, &format!("User {id}"), &format!("{id}@example.com"));
    }
    let client = Client::new(&sim).await;

    let (status, user) = client.get("/api/v2/users/u2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        user,
        json!({"id": "u2", "name": "User u2", "email": "u2@example.com", "username": "u2@example.com",
               "state": "active", "selfUri": "/api/v2/users/u2"})
    );
    let (status, error) = client.get("/api/v2/users/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "not.found");
    assert_eq!(error["status"], 404);

    let (_, page) = client.get("/api/v2/users?pageSize=2&pageNumber=2").await;
    let ids: Vec<&str> = page["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u3", "u4"]);
    assert_eq!(page["pageSize"], 2);
    assert_eq!(page["pageNumber"], 2);
    assert_eq!(page["total"], 5);
    assert_eq!(page["pageCount"], 3);
    let (_, last) = client.get("/api/v2/users?pageSize=2&pageNumber=3").await;
    assert_eq!(last["entities"].as_array().unwrap().len(), 1);
    let (_, default) = client.get("/api/v2/users").await;
    assert_eq!(default["pageSize"], 25);
    assert_eq!(default["entities"].as_array().unwrap().len(), 5);
    let (status, error) = client.get("/api/v2/users?pageSize=501").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid.value");
}

#[tokio::test]
async fn subscribed_sockets_get_heartbeats_pongs_and_conversation_events() {
    let sim = start(fast()).await;
    sim.add_user("u1", "Ann", "ann@example.com");
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    assert!(uri.starts_with("ws://127.0.0.1:") && uri.ends_with(&format!("/channels/{channel}")));
    let (status, body) = client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1, "bogus.topic"])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["entities"],
        json!([{"id": CONV_TOPIC_U1, "state": "Permitted"},
               {"id": "bogus.topic", "state": "Rejected",
                "rejectionReason": body["entities"][1]["rejectionReason"]}])
    );
    assert!(body["entities"][1]["rejectionReason"].is_string());
    assert_eq!(sim.subscribed_topics(), [CONV_TOPIC_U1]);
    let (_, listed) = client
        .get(&format!(
            "/api/v2/notifications/channels/{channel}/subscriptions"
        ))
        .await;
    assert_eq!(listed, json!({"entities": [{"id": CONV_TOPIC_U1}]}));

    let mut ws = connect(&uri).await;
    assert_eq!(sim.connected_sockets(), 1);
    // Heartbeats arrive on their own.
    let first = next_frame(&mut ws, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        text_json(&first).unwrap(),
        json!({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
    );
    // Ping is answered.
    ws.send(Message::text(r#"{"message":"ping"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut ws).await,
        json!({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})
    );

    // u2 is not subscribed: their conversation is not delivered.
    sim.offer("c2", "u2", Media::Chat, "inbound", None);
    sim.offer("c1", "u1", Media::Call, "inbound", Some("q1"));
    let offered = next_event(&mut ws).await;
    assert_eq!(offered["topicName"], CONV_TOPIC_U1);
    assert_eq!(offered["version"], "2");
    assert!(offered["metadata"]["CorrelationId"]
        .as_str()
        .is_some_and(|c| c.len() == 36));
    let conversation = &offered["eventBody"];
    assert_eq!(conversation["id"], "c1");
    let customer = &conversation["participants"][0];
    assert_eq!(customer["purpose"], "customer");
    assert_eq!(customer["calls"][0]["state"], "connected");
    assert_eq!(customer["calls"][0]["direction"], "inbound");
    let agent = agent_of(conversation, "u1");
    assert_eq!(agent["purpose"], "agent");
    assert_eq!(agent["queueId"], "q1");
    assert_eq!(agent["calls"][0]["state"], "alerting");
    assert_eq!(agent["calls"][0]["held"], false);
    assert!(agent.get("chats").is_none());

    sim.connect("c1", "u1");
    sim.hold("c1", "u1", true);
    sim.end("c1", "u1");
    let connected = next_event(&mut ws).await;
    let agent = agent_of(&connected["eventBody"], "u1");
    assert_eq!(agent["calls"][0]["state"], "connected");
    let connected_time = agent["connectedTime"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(connected_time).is_ok());
    assert_eq!(connected_time.len(), "2026-01-01T00:00:00.000Z".len());
    let held = next_event(&mut ws).await;
    let agent = agent_of(&held["eventBody"], "u1");
    assert_eq!(agent["calls"][0]["state"], "connected");
    assert_eq!(agent["calls"][0]["held"], true);
    let ended = next_event(&mut ws).await;
    let agent = agent_of(&ended["eventBody"], "u1");
    assert_eq!(agent["calls"][0]["state"], "disconnected");
    assert_eq!(agent["calls"][0]["disconnectType"], "client");
    assert!(agent["endTime"].is_string());
    assert!(agent["calls"][0]["disconnectedTime"].is_string());

    // Offered again after the end: a transfer back is a new participant.
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    let again = next_event(&mut ws).await;
    let agents: Vec<&Value> = again["eventBody"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["userId"] == "u1")
        .collect();
    assert_eq!(agents.len(), 2);
    assert_ne!(agents[0]["id"], agents[1]["id"]);
    assert!(agents[1].get("queueId").is_none());

    // Nothing about u2 ever arrived; the REST view matches the last event.
    assert!(events_for(&mut ws, Duration::from_millis(250))
        .await
        .is_empty());
    let (status, rest) = client.get("/api/v2/conversations/c1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rest, again["eventBody"]);
    assert_eq!(sim.conversation("c1"), Some(rest));
    assert_eq!(
        client.get("/api/v2/conversations/nope").await.0,
        StatusCode::NOT_FOUND
    );
    let stats = sim.stats();
    assert_eq!(stats.events_published, 6);
    assert_eq!(stats.events_delivered, 5);
    assert_eq!(stats.ws_connections, 1);
    assert_eq!(stats.subscription_puts, 1);
    assert_eq!(stats.channels_created, 1);

    // A client close is a clean close.
    ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.connected_sockets(), 0);
}

#[tokio::test]
async fn events_published_while_disconnected_are_lost() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    sim.offer("c1", "u1", Media::Call, "inbound", None);

    let mut ws = connect(&uri).await;
    assert!(events_for(&mut ws, Duration::from_millis(300))
        .await
        .is_empty());
    sim.connect("c1", "u1");
    let event = next_event(&mut ws).await;
    assert_eq!(
        agent_of(&event["eventBody"], "u1")["calls"][0]["state"],
        "connected"
    );
    assert_eq!(sim.stats().events_published, 2);
    assert_eq!(sim.stats().events_delivered, 1);
}

#[tokio::test]
async fn drop_sockets_closes_without_a_close_frame_and_the_channel_survives() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    let mut ws = connect(&uri).await;
    assert_eq!(sim.connected_sockets(), 1);

    sim.drop_sockets();
    assert_eq!(sim.connected_sockets(), 0);
    let (close, _) = until_closed(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(close, None, "no close frame");

    assert_eq!(client.head_channel(&channel).await, StatusCode::OK);
    let mut ws = connect(&uri).await;
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    assert_eq!(next_event(&mut ws).await["topicName"], CONV_TOPIC_U1);
    assert_eq!(sim.stats().ws_connections, 2);
}

#[tokio::test]
async fn socket_closing_warns_then_closes() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    let mut ws = connect(&uri).await;

    sim.socket_closing(Duration::from_millis(300));
    let warning = next_event(&mut ws).await;
    assert_eq!(warning["topicName"], "v2.system.socket_closing");
    assert_eq!(warning["version"], "2");
    assert!(warning["eventBody"].is_object());
    assert!(warning["metadata"]["CorrelationId"].is_string());
    // Still delivering until the close.
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    assert_eq!(next_event(&mut ws).await["topicName"], CONV_TOPIC_U1);
    let started = std::time::Instant::now();
    let (close, _) = until_closed(&mut ws, Duration::from_secs(2)).await;
    assert!(close.is_some(), "a close frame");
    assert!(started.elapsed() >= Duration::from_millis(150));
    // The channel stays usable.
    assert_eq!(client.head_channel(&channel).await, StatusCode::OK);
    let _ws = connect(&uri).await;
}

#[tokio::test]
async fn silent_sockets_send_nothing() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    let mut ws = connect(&uri).await;
    sim.set_heartbeats(false);
    ws.send(Message::text(r#"{"message":"ping"}"#))
        .await
        .unwrap();
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    assert!(next_frame(&mut ws, Duration::from_millis(350))
        .await
        .is_none());
    assert_eq!(sim.connected_sockets(), 1);
    sim.set_heartbeats(true);
    let frame = next_frame(&mut ws, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(is_heartbeat(&text_json(&frame).unwrap()));
}

#[tokio::test]
async fn channels_expire_unless_resubscribed() {
    let sim = start(GenesysSimConfig {
        heartbeat_interval: Duration::from_millis(50),
        channel_ttl: Duration::from_millis(1000),
        ..GenesysSimConfig::default()
    })
    .await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    let mut ws = connect(&uri).await;

    // Resubscribing before the TTL runs out keeps the channel beyond its first expiry.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = client
        .subscribe(
            Method::PUT,
            &channel,
            &[CONV_TOPIC_U1, "v2.users.u2.conversations"],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entities"].as_array().unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(client.head_channel(&channel).await, StatusCode::OK);
    assert_eq!(sim.connected_sockets(), 1);
    // POST extends it too.
    let (status, _) = client
        .subscribe(Method::POST, &channel, &["v2.users.u3.conversations"])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.subscribed_topics().len(), 3);

    // Then it expires: close frame, 404 everywhere.
    let (close, _) = until_closed(&mut ws, Duration::from_secs(2)).await;
    assert!(close.is_some(), "a close frame");
    assert_eq!(client.head_channel(&channel).await, StatusCode::NOT_FOUND);
    let (status, error) = client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "not.found");
    match tokio_tungstenite::connect_async(&uri).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected a 404, got {other:?}"),
    }
    assert!(sim.subscribed_topics().is_empty());
}

#[tokio::test]
async fn expire_channels_closes_every_socket_now() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    let mut ws = connect(&uri).await;
    sim.expire_channels();
    let (close, _) = until_closed(&mut ws, Duration::from_secs(2)).await;
    assert!(close.is_some(), "a close frame");
    assert_eq!(client.head_channel(&channel).await, StatusCode::NOT_FOUND);
    assert_eq!(sim.connected_sockets(), 0);
}

#[tokio::test]
async fn one_connection_per_channel_and_twenty_channels_per_client() {
    let sim = start(fast()).await;
    let client = Client::new(&sim).await;
    let (first, uri) = client.channel().await;
    let mut old = connect(&uri).await;
    let _new = connect(&uri).await;
    let (close, _) = until_closed(&mut old, Duration::from_secs(2)).await;
    assert!(close.is_some(), "the older connection is closed");
    assert_eq!(sim.connected_sockets(), 1);

    // `first` is connected, so the 21st channel evicts the oldest unconnected one (the second).
    let mut ids = vec![first.clone()];
    for _ in 1..20 {
        ids.push(client.channel().await.0);
    }
    let (twenty_first, _) = client.channel().await;
    assert_eq!(client.head_channel(&first).await, StatusCode::OK);
    assert_eq!(client.head_channel(&ids[1]).await, StatusCode::NOT_FOUND);
    assert_eq!(client.head_channel(&ids[2]).await, StatusCode::OK);
    assert_eq!(client.head_channel(&twenty_first).await, StatusCode::OK);
    assert_eq!(sim.stats().channels_created, 21);
}

#[tokio::test]
async fn subscriptions_are_limited_to_a_thousand_topics() {
    let sim = start(GenesysSimConfig::default()).await;
    let client = Client::new(&sim).await;
    let (channel, _) = client.channel().await;
    let topics: Vec<String> = (0..1001)
        .map(|i| format!("v2.users.u{i}.conversations"))
        .collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();

    let (status, body) = client.subscribe(Method::PUT, &channel, &refs[..1000]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entities"].as_array().unwrap().len(), 1000);

    let (status, error) = client
        .subscribe(Method::POST, &channel, &refs[1000..])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "notification.too.many.topics");
    assert_eq!(error["status"], 400);
    let (status, error) = client.subscribe(Method::PUT, &channel, &refs).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "notification.too.many.topics");
    let (_, listed) = client
        .get(&format!(
            "/api/v2/notifications/channels/{channel}/subscriptions"
        ))
        .await;
    assert_eq!(listed["entities"].as_array().unwrap().len(), 1000);

    let (status, _) = client
        .call(
            Method::DELETE,
            &format!("/api/v2/notifications/channels/{channel}/subscriptions"),
            None,
        )
        .await;
    assert!(status.is_success());
    assert!(sim.subscribed_topics().is_empty());
    let (status, error) = client
        .call(
            Method::PUT,
            &format!("/api/v2/notifications/channels/{channel}/subscriptions"),
            Some(json!({"id": "not an array"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].is_string());
}

fn trigger(topic: &str, name: &str) -> Value {
    json!({
        "topicName": topic,
        "name": name,
        "target": {"id": "wf-1", "type": "Workflow", "workflowTargetSettings": {"dataFormat": "TopLevelPrimitives"}},
        "matchCriteria": [{"jsonPath": "mediaType", "operator": "Equal", "value": "VOICE"}],
        "enabled": true,
    })
}

const START: &str = "v2.detail.events.conversation.{id}.user.start";
const END: &str = "v2.detail.events.conversation.{id}.user.end";
const TRIGGERS: &str = "/api/v2/processautomation/triggers";

#[tokio::test]
async fn triggers_are_validated_stored_listed_and_versioned() {
    let sim = start(GenesysSimConfig::default()).await;
    let client = Client::new(&sim).await;

    let (status, created) = client
        .call(Method::POST, TRIGGERS, Some(trigger(START, "start")))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["selfUri"], format!("{TRIGGERS}/{id}"));
    assert_eq!(created["topicName"], START);
    assert_eq!(
        created["target"]["workflowTargetSettings"]["dataFormat"],
        "TopLevelPrimitives"
    );
    assert_eq!(created["matchCriteria"][0]["operator"], "Equal");

    // Validation names the field.
    let invalid: Vec<(Value, &str)> = vec![
        (
            json!({"name": "x", "enabled": true, "target": {"id": "w", "type": "Workflow"}}),
            "topicName",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t["target"]["type"] = json!("Lambda");
                t
            },
            "target.type",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t["matchCriteria"][0]["operator"] = json!("Like");
                t
            },
            "operator",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t["matchCriteria"][0]["values"] = json!(["A"]);
                t
            },
            "value",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t["eventTTLSeconds"] = json!(9);
                t
            },
            "eventTTLSeconds",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t["description"] = json!("d".repeat(513));
                t
            },
            "description",
        ),
        (
            {
                let mut t = trigger(START, "x");
                t.as_object_mut().unwrap().remove("enabled");
                t
            },
            "enabled",
        ),
    ];
    for (body, field) in invalid {
        let (status, error) = client.call(Method::POST, TRIGGERS, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["code"], "invalid.value");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{field}: {error}"
        );
    }

    for i in 0..4 {
        let (status, _) = client
            .call(
                Method::POST,
                TRIGGERS,
                Some(trigger(END, &format!("end {i}"))),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(sim.triggers().len(), 5);

    // Filter by topic, page through with nextUri.
    let (_, starts) = client.get(&format!("{TRIGGERS}?topicName={START}")).await;
    assert_eq!(starts["entities"].as_array().unwrap().len(), 1);
    assert!(starts.get("nextUri").is_none());
    let (_, both) = client
        .get(&format!("{TRIGGERS}?topicName={START},{END}"))
        .await;
    assert_eq!(both["entities"].as_array().unwrap().len(), 5);
    let mut names = Vec::new();
    let mut next = format!("{TRIGGERS}?topicName={END}&pageSize=3");
    loop {
        let (status, page) = client.get(&next).await;
        assert_eq!(status, StatusCode::OK);
        names.extend(
            page["entities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["nextUri"].as_str() {
            Some(uri) => {
                assert!(
                    uri.starts_with(&format!("{TRIGGERS}?after=")) && uri.ends_with("&pageSize=3"),
                    "{uri}"
                );
                next = uri.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(names, ["end 0", "end 1", "end 2", "end 3"]);
    let (status, _) = client.get(&format!("{TRIGGERS}?pageSize=201")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // PUT: version must match, topicName is immutable.
    let path = format!("{TRIGGERS}/{id}");
    let mut update = trigger(START, "renamed");
    update["version"] = json!(2);
    let (status, error) = client.call(Method::PUT, &path, Some(update.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["code"], "conflict");
    let mut moved = trigger(END, "renamed");
    moved["version"] = json!(1);
    let (status, error) = client.call(Method::PUT, &path, Some(moved)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid.value");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("topicName cannot be updated"));
    update["version"] = json!(1);
    let (status, updated) = client.call(Method::PUT, &path, Some(update.clone())).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "renamed");
    let (_, read) = client.get(&path).await;
    assert_eq!(read, updated);
    let (status, _) = client.call(Method::PUT, &path, Some(update)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = client.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = client.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "not.found");
    assert_eq!(sim.triggers().len(), 4);
}

#[tokio::test]
async fn extreme_durations_do_not_panic_and_shutdown_closes_sockets() {
    let sim = start(GenesysSimConfig {
        token_ttl: Duration::MAX,
        heartbeat_interval: Duration::MAX,
        channel_ttl: Duration::MAX,
        ..GenesysSimConfig::default()
    })
    .await;
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    let (status, _) = client
        .subscribe(Method::PUT, &channel, &[CONV_TOPIC_U1])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut ws = connect(&uri).await;
    sim.socket_closing(Duration::MAX);
    assert_eq!(
        next_event(&mut ws).await["topicName"],
        "v2.system.socket_closing"
    );
    // Unknown conversations and users are ignored.
    sim.connect("nope", "u1");
    sim.end("nope", "u1");
    assert_eq!(sim.conversation("nope"), None);
    assert_eq!(sim.stats().events_published, 0);

    sim.shutdown().await;
    let (close, _) = until_closed(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(close, Some(1001));
}

// ---------------------------------------------------------------------------------------------------------------------
// Genesys's models: what the sim sends on `v2.users.{id}.conversations` (and `GET /api/v2/conversations/{id}`, the
// same object) against the notification model of that topic in the SDK docs of `shared/vendor/genesys/`. genesys-sim
// produces no detail-event bodies (`v2.detail.events.conversation.{id}.user.start`/`.end`): its triggers are stored,
// never fired, so there is nothing else to compare.

const SKIP: &str =
    "skipping: vendor reference data not found at ../shared/vendor (see shared/vendor/README.md)";
const CONVERSATIONS_TOPIC: &str = "v2.users.{id}.conversations";

/// `shared/vendor` next to the checkout, or `$ZCC_VENDOR_DIR`; `None` (after saying so) when it is not there.
fn vendor_dir() -> Option<std::path::PathBuf> {
    let (dir, overridden) = match std::env::var_os("ZCC_VENDOR_DIR") {
        Some(dir) => (std::path::PathBuf::from(dir), true),
        None => (
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/vendor"
            )),
            false,
        ),
    };
    if dir.join("genesys/sdk-python/docs").is_dir() {
        return Some(dir);
    }
    if overridden {
        eprintln!("{SKIP} (ZCC_VENDOR_DIR={})", dir.display());
    } else {
        eprintln!("{SKIP}");
    }
    None
}

/// `connected_time` → `connectedTime`: the Python SDK's attribute names in the wire's camelCase.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The SDK model docs: `model name → wire name → type as the doc writes it` (`str`, `int`, `bool`, `datetime`,
/// `list[str]`, `dict(str, str)`, `[Model](Model)`, `[list[Model]](Model)`).
struct Models {
    docs: std::path::PathBuf,
    cache: std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
}

impl Models {
    fn new(vendor: &std::path::Path) -> Self {
        Models {
            docs: vendor.join("genesys/sdk-python/docs"),
            cache: std::collections::HashMap::new(),
        }
    }

    /// The model's properties, from the `| **name** | type | ... |` rows of its doc.
    fn properties(&mut self, model: &str) -> std::collections::BTreeMap<String, String> {
        if let Some(known) = self.cache.get(model) {
            return known.clone();
        }
        let path = self.docs.join(format!("{model}.md"));
        let doc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("model {model}: {}: {e}", path.display()));
        let properties = doc_properties(&doc)
            .into_iter()
            .map(|(name, kind)| (camel(&name), kind))
            .collect::<std::collections::BTreeMap<_, _>>();
        assert!(!properties.is_empty(), "model {model} has no properties");
        self.cache.insert(model.to_owned(), properties.clone());
        properties
    }

    /// Every key of `value` is a property of `model` with a compatible type, recursively.
    fn check(&mut self, path: &str, model: &str, value: &Value, problems: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            problems.push(format!("{path}: a {model} must be an object, is {value}"));
            return;
        };
        let properties = self.properties(model);
        for (key, value) in object {
            let at = format!("{path}.{key}");
            match properties.get(key) {
                None => problems.push(format!("{at}: `{key}` is not a property of {model}")),
                Some(kind) => self.check_type(&at, kind, value, problems),
            }
        }
    }

    fn check_type(&mut self, path: &str, kind: &str, value: &Value, problems: &mut Vec<String>) {
        // `[list[Model]](Model)` / `[Model](Model)`: a link to a model doc.
        if let Some(link) = kind.strip_prefix('[') {
            let target = link
                .rsplit_once("](")
                .map(|(_, t)| t.trim_end_matches(')'))
                .unwrap_or_default();
            if link.starts_with("list[") {
                match value.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.check(&format!("{path}[{i}]"), target, item, problems);
                        }
                    }
                    None => {
                        problems.push(format!("{path}: must be a list of {target}, is {value}"))
                    }
                }
            } else {
                self.check(path, target, value, problems);
            }
            return;
        }
        if let Some(inner) = kind.strip_prefix("list[").and_then(|k| k.strip_suffix(']')) {
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_type(&format!("{path}[{i}]"), inner, item, problems);
                    }
                }
                None => problems.push(format!("{path}: must be a list, is {value}")),
            }
            return;
        }
        let ok = match kind {
            "str" => value.is_string(),
            "int" => value.is_i64() || value.is_u64(),
            "float" => value.is_number(),
            "bool" => value.is_boolean(),
            "datetime" => value
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            k if k.starts_with("dict(") => value.is_object(),
            other => {
                problems.push(format!("{path}: unknown model type {other}"));
                return;
            }
        };
        if !ok {
            problems.push(format!("{path}: must be {kind}, is {value}"));
        }
    }
}

/// `(name, type)` of the rows `| **name** | type | description | notes |` of a Python SDK model doc.
fn doc_properties(doc: &str) -> Vec<(String, String)> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix("**")?.strip_suffix("**")?;
            Some((name.to_owned(), (*cells.get(2)?).to_owned()))
        })
        .collect()
}

/// The model class of a topic, from `notificationMappings.json`.
fn topic_model(vendor: &std::path::Path, topic: &str) -> String {
    let path = vendor.join("genesys/sdk-python/notificationMappings.json");
    let text = std::fs::read_to_string(&path).expect("notificationMappings.json");
    let mappings: Value = serde_json::from_str(&text).expect("notificationMappings.json is JSON");
    mappings["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["topic"] == topic)
        .and_then(|m| m["class"].as_str())
        .unwrap_or_else(|| panic!("no model for {topic}"))
        .to_owned()
}

/// The Python docs' snake_case names become the wire's camelCase exactly as the Java docs spell them: checked on the
/// one model both SDKs document (the Java doc is of an older SDK, without `utilizationLabel`).
#[test]
fn python_model_names_map_to_the_java_wire_names() {
    let Some(vendor) = vendor_dir() else {
        return;
    };
    let read = |path: &str| {
        std::fs::read_to_string(vendor.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let python: std::collections::BTreeSet<String> = doc_properties(&read(
        "genesys/sdk-python/docs/UserStartDetailEventTopicUserStartEvent.md",
    ))
    .into_iter()
    .map(|(name, _)| camel(&name))
    .filter(|name| name != "utilizationLabel")
    .collect();
    let java: std::collections::BTreeSet<String> = doc_properties(&read(
        "genesys/sdk-java-docs/UserStartDetailEventTopicUserStartEvent.md",
    ))
    .into_iter()
    .map(|(name, _)| name)
    .collect();
    assert!(
        java.contains("conversationId") && java.len() > 15,
        "{java:?}"
    );
    assert_eq!(python, java);
}

#[tokio::test]
async fn conversation_events_are_genesys_conversation_models() {
    let Some(vendor) = vendor_dir() else {
        return;
    };
    let model = topic_model(&vendor, CONVERSATIONS_TOPIC);
    assert_eq!(model, "ConversationEventTopicConversation");
    let mut models = Models::new(&vendor);

    let sim = start(fast()).await;
    sim.add_user("u1", "Ann", "ann@example.com");
    sim.add_user("u2", "Bob", "bob@example.com");
    let client = Client::new(&sim).await;
    let (channel, uri) = client.channel().await;
    let topics = ["v2.users.u1.conversations", "v2.users.u2.conversations"];
    let (status, _) = client.subscribe(Method::PUT, &channel, &topics).await;
    assert_eq!(status, StatusCode::OK);
    let mut ws = connect(&uri).await;

    // Every media type through a whole life: offered, answered, held and resumed, transferred, ended.
    let media = [
        Media::Call,
        Media::Chat,
        Media::Email,
        Media::Message,
        Media::Callback,
    ];
    for (i, kind) in media.into_iter().enumerate() {
        let conversation = format!("c{i}");
        let direction = if i % 2 == 0 { "inbound" } else { "outbound" };
        sim.offer(&conversation, "u1", kind, direction, Some("q1"));
        sim.connect(&conversation, "u1");
        sim.hold(&conversation, "u1", true);
        sim.hold(&conversation, "u1", false);
        sim.offer(&conversation, "u2", kind, direction, Some("q2"));
        sim.end(&conversation, "u1");
        sim.connect(&conversation, "u2");
        sim.end(&conversation, "u2");
    }
    let frames = events_for(&mut ws, Duration::from_millis(600)).await;
    // Per media: 4 changes seen by u1 alone, then 4 seen by both.
    assert_eq!(frames.len(), media.len() * 12, "{frames:?}");

    let mut problems = Vec::new();
    let mut arrays = std::collections::BTreeSet::new();
    for (n, frame) in frames.iter().enumerate() {
        let keys: std::collections::BTreeSet<&str> = frame
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["eventBody", "metadata", "topicName", "version"].into(),
            "{frame}"
        );
        assert!(topics.contains(&frame["topicName"].as_str().unwrap_or("")));
        let body = &frame["eventBody"];
        models.check(&format!("frame {n}"), &model, body, &mut problems);
        // Values as the reference (presence-sync §3.3) describes them.
        for participant in body["participants"].as_array().into_iter().flatten() {
            let purpose = participant["purpose"].as_str().unwrap_or("");
            if !["agent", "customer"].contains(&purpose) {
                problems.push(format!("frame {n}: purpose {purpose}"));
            }
            for (array, entries) in participant.as_object().into_iter().flatten() {
                let Some(entries) = entries.as_array() else {
                    continue;
                };
                arrays.insert(array.clone());
                for entry in entries {
                    let state = entry["state"].as_str().unwrap_or("");
                    let states = [
                        "alerting",
                        "dialing",
                        "contacting",
                        "offering",
                        "connected",
                        "disconnected",
                        "terminated",
                    ];
                    if !states.contains(&state) {
                        problems.push(format!("frame {n}: {array} state {state}"));
                    }
                    if let Some(direction) = entry.get("direction") {
                        if !["inbound", "outbound"].contains(&direction.as_str().unwrap_or("")) {
                            problems.push(format!("frame {n}: {array} direction {direction}"));
                        }
                    }
                }
            }
        }
    }
    for conversation in 0..media.len() {
        let (status, body) = client
            .get(&format!("/api/v2/conversations/c{conversation}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        models.check(
            &format!("GET c{conversation}"),
            &model,
            &body,
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every media array was exercised.
    for kind in media {
        assert!(arrays.contains(kind.array_name()), "{arrays:?}");
    }
}
