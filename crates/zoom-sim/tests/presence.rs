//! Zoom Workplace user presence over HTTP (reference §7.1, presence-sync reference §5.1–§5.2): the
//! one-update-per-minute rule, its refusals (5301, 1001, 401, 400), reads, the user's own changes, the truth and
//! control routes under `/sim/presence`, and the `user.presence_status_updated` events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use zoom::WebhookVerifier;
use zoom_sim::{
    generate, now_ms, GeneratorConfig, NewPresenceUser, PresenceChange, PresenceOutcome,
    PresenceUser, PresenceVia, PresenceWebhook, Scenario, SimServer, SimServerConfig,
};

const INTERVAL: Duration = Duration::from_millis(1000);
const SECRET: &str = "presence-secret";

fn scenario() -> Scenario {
    generate(&GeneratorConfig {
        seed: 7,
        engagements: 3,
        ..GeneratorConfig::default()
    })
}

fn config() -> SimServerConfig {
    SimServerConfig {
        presence_min_interval: INTERVAL,
        ..SimServerConfig::default()
    }
}

struct Sim {
    server: SimServer,
    client: Client,
    token: String,
}

async fn start(config: SimServerConfig) -> Sim {
    let server = SimServer::start(config.clone(), &scenario())
        .await
        .expect("start");
    let client = Client::new();
    let response = client
        .post(format!("{}/oauth/token", server.base_url()))
        .query(&[
            ("grant_type", "account_credentials"),
            ("account_id", config.account_id.as_str()),
        ])
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token json");
    let token = body["access_token"].as_str().expect("token").to_owned();
    Sim {
        server,
        client,
        token,
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// `(code, message)` of a Zoom error body.
    fn error(&self) -> (i64, String) {
        let body = self.json();
        (
            body["code"].as_i64().unwrap_or(-1),
            body["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

impl Sim {
    fn url(&self, user: &str) -> String {
        format!("{}/v2/users/{user}/presence_status", self.server.base_url())
    }

    async fn put(&self, user: &str, body: Value) -> Answer {
        answer(
            self.client
                .put(self.url(user))
                .bearer_auth(&self.token)
                .json(&body),
        )
        .await
    }

    async fn set(&self, user: &str, status: &str) -> Answer {
        self.put(user, json!({ "status": status })).await
    }

    async fn get(&self, user: &str) -> Answer {
        answer(self.client.get(self.url(user)).bearer_auth(&self.token)).await
    }

    async fn status(&self, user: &str) -> String {
        let answer = self.get(user).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["status"].as_str().expect("status").to_owned()
    }

    async fn control(&self, path: &str, body: Value) -> Answer {
        answer(
            self.client
                .post(format!("{}/sim/presence{path}", self.server.base_url()))
                .json(&body),
        )
        .await
    }

    async fn truth(&self) -> Vec<PresenceUser> {
        let answer = answer(
            self.client
                .get(format!("{}/sim/presence", self.server.base_url())),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        serde_json::from_value(answer.json()["users"].clone()).expect("users")
    }

    async fn truth_of(&self, user: &str) -> PresenceUser {
        self.truth()
            .await
            .into_iter()
            .find(|u| u.user_id == user)
            .expect("user in truth")
    }

    fn agent(&self, i: usize) -> (String, String) {
        let users = self.server.presence();
        (users[i].user_id.clone(), users[i].email.clone())
    }
}

fn assert_no_content(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    assert!(answer.text.is_empty());
}

#[tokio::test]
async fn one_update_per_interval_per_user() {
    let sim = start(config()).await;
    let (agent, email) = sim.agent(0);
    let (other, _) = sim.agent(1);

    assert_no_content(&sim.set(&agent, "Busy").await);
    // Within the interval: 429, Zoom's body, no Retry-After (unconfirmed, off by default).
    let refused = sim.set(&agent, "Away").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.error(),
        (
            429,
            "Too many requests submitted to update the presence status of this user.".to_owned()
        )
    );
    assert!(refused.headers.get("retry-after").is_none());
    // The e-mail address names the same user, so the same window.
    assert_eq!(
        sim.set(&email.to_uppercase(), "Away").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other users have their own window.
    assert_no_content(&sim.set(&other, "On_A_Call").await);
    assert_eq!(sim.status(&agent).await, "Busy");

    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    assert_no_content(&sim.set(&agent, "Away").await);
    assert_eq!(sim.status(&agent).await, "Away");

    let stats = sim.server.stats();
    assert_eq!(stats.presence_updates, 5);
    assert_eq!(stats.presence_rate_limited, 2);
    assert_eq!(stats.rate_limited, 0);

    let user = sim.truth_of(&agent).await;
    let outcomes: Vec<_> = user.updates.iter().map(|u| u.outcome).collect();
    assert_eq!(
        outcomes,
        [
            PresenceOutcome::Applied,
            PresenceOutcome::RateLimited,
            PresenceOutcome::RateLimited,
            PresenceOutcome::Applied
        ]
    );
    assert!(user.updates.iter().all(|u| u.via == PresenceVia::Api));
    assert!(user.min_api_update_gap_ms().expect("two applied") >= 1000);
}

#[tokio::test]
async fn retry_after_on_request() {
    let sim = start(SimServerConfig {
        presence_min_interval: Duration::from_secs(60),
        presence_retry_after: true,
        ..SimServerConfig::default()
    })
    .await;
    let (agent, _) = sim.agent(0);
    assert_no_content(&sim.set(&agent, "Busy").await);
    let refused = sim.set(&agent, "Away").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((59..=60).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn refusals_not_logged_in_unknown_user_no_token_bad_body() {
    let sim = start(config()).await;
    let (agent, email) = sim.agent(0);

    // Signed out in the client: GET says Offline, PUT fails with 5301 and does not open a window.
    let out = sim
        .control(&format!("/{email}"), json!({"logged_in": false}))
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert_eq!(out.json()["status"], "Offline");
    assert_eq!(sim.status(&agent).await, "Offline");
    let failed = sim.set(&agent, "Busy").await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        failed.error(),
        (
            5301,
            "Request to update the presence status of this user failed.".to_owned()
        )
    );
    assert_eq!(
        sim.control(&format!("/{agent}"), json!({"logged_in": true}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(sim.status(&agent).await, "Available");
    assert_no_content(&sim.set(&agent, "Busy").await);
    let outcomes: Vec<_> = sim
        .truth_of(&agent)
        .await
        .updates
        .iter()
        .map(|u| (u.via, u.outcome, u.status.clone(), u.logged_in))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                PresenceVia::User,
                PresenceOutcome::Applied,
                "Offline".to_owned(),
                Some(false)
            ),
            (
                PresenceVia::Api,
                PresenceOutcome::NotLoggedIn,
                "Busy".to_owned(),
                None
            ),
            (
                PresenceVia::User,
                PresenceOutcome::Applied,
                "Available".to_owned(),
                Some(true)
            ),
            (
                PresenceVia::Api,
                PresenceOutcome::Applied,
                "Busy".to_owned(),
                None
            ),
        ]
    );

    // Unknown user: 404 1001, on PUT and GET.
    let unknown = sim.set("nobody", "Busy").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.error(),
        (1001, "User does not exist: nobody.".to_owned())
    );
    assert_eq!(sim.get("nobody").await.error().0, 1001);
    assert_eq!(sim.get("me").await.status, StatusCode::NOT_FOUND);

    // No token, or a bad one: 401 124 before anything else.
    let (other, _) = sim.agent(1);
    let no_token = answer(
        sim.client
            .put(sim.url(&other))
            .json(&json!({"status": "Busy"})),
    )
    .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.error().0, 124);
    let bad_token = answer(sim.client.get(sim.url(&other)).bearer_auth("nope")).await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.server.stats().unauthorized, 2);

    // Bad bodies and statuses: 400 300, nothing recorded, no window opened.
    for body in [
        json!({"status": "Offline"}),
        json!({"status": "available"}),
        json!({"status": "Away", "duration": 10}),
        json!({"status": "Do_Not_Disturb", "duration": 0}),
        json!({"status": "Do_Not_Disturb", "duration": 1441}),
        json!({}),
        json!("Busy"),
    ] {
        let refused = sim.put(&other, body.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(refused.error().0, 300, "{body}: {}", refused.text);
    }
    let not_json = answer(
        sim.client
            .put(sim.url(&other))
            .bearer_auth(&sim.token)
            .body("status=Busy"),
    )
    .await;
    assert_eq!(not_json.error().0, 300);
    assert!(sim.truth_of(&other).await.updates.is_empty());
    assert_no_content(&sim.set(&other, "Busy").await);
}

#[tokio::test]
async fn reads_reflect_updates_and_do_not_disturb() {
    let sim = start(config()).await;
    let (agent, email) = sim.agent(0);
    // Directory agents start logged in and Available, by id or e-mail.
    assert_eq!(sim.status(&agent).await, "Available");
    assert_eq!(sim.status(&email).await, "Available");

    // The spec's typo is accepted and stored as Do_Not_Disturb, 20 minutes by default.
    assert_no_content(&sim.set(&agent, "Do_No_Disturb").await);
    let read = sim.get(&agent).await.json();
    assert_eq!(read["status"], "Do_Not_Disturb");
    assert_eq!(read["remaining_time"], 20);
    let end = chrono::DateTime::parse_from_rfc3339(read["end_time"].as_str().expect("end_time"))
        .expect("rfc3339")
        .timestamp_millis();
    assert!((end - (now_ms() + 20 * 60_000)).abs() < 2_000);

    let (other, _) = sim.agent(1);
    assert_no_content(
        &sim.put(
            &other,
            json!({"status": "Do_Not_Disturb", "duration": 1440}),
        )
        .await,
    );
    assert_eq!(sim.get(&other).await.json()["remaining_time"], 1440);

    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    assert_no_content(&sim.set(&agent, "In_A_Zoom_Meeting").await);
    let read = sim.get(&agent).await.json();
    assert_eq!(read, json!({"status": "In_A_Zoom_Meeting"}));
    assert_eq!(sim.server.stats().presence_reads, 5);
}

#[tokio::test]
async fn the_users_own_changes_are_not_rate_limited() {
    let sim = start(config()).await;
    let (agent, _) = sim.agent(0);
    assert_no_content(&sim.set(&agent, "Busy").await);
    for status in ["Away", "Available", "Do_Not_Disturb", "Busy"] {
        let changed = sim
            .control(&format!("/{agent}"), json!({ "status": status }))
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(sim.status(&agent).await, status);
    }
    // ...and they neither open nor close the API's window.
    assert_eq!(
        sim.set(&agent, "Away").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let user = sim.truth_of(&agent).await;
    assert_eq!(user.status, "Busy");
    let user_changes = user
        .updates
        .iter()
        .filter(|u| u.via == PresenceVia::User && u.outcome == PresenceOutcome::Applied)
        .count();
    assert_eq!(user_changes, 4);
    // A DND the user sets in the client has no end unless they give one.
    assert!(user.dnd_end_ms.is_none());

    // Control refusals.
    let unknown = sim.control("/nobody", json!({"status": "Busy"})).await;
    assert_eq!(
        (unknown.status, unknown.error().0),
        (StatusCode::NOT_FOUND, 1001)
    );
    let bad = sim
        .control(&format!("/{agent}"), json!({"status": "Sleeping"}))
        .await;
    assert_eq!((bad.status, bad.error().0), (StatusCode::BAD_REQUEST, 300));
    sim.server.set_logged_in(&agent, false).expect("sign out");
    let offline = sim
        .control(&format!("/{agent}"), json!({"status": "Busy"}))
        .await;
    assert_eq!(offline.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn control_api_adds_users_and_the_truth_lists_them() {
    let sim = start(config()).await;
    let directory = scenario().directory;
    let truth = sim.truth().await;
    assert_eq!(truth.len(), directory.agents.len());
    for (user, agent) in truth.iter().zip(&directory.agents) {
        assert_eq!(
            (
                &user.user_id,
                &user.email,
                user.logged_in,
                user.status.as_str()
            ),
            (&agent.user_id, &agent.email, true, "Available")
        );
    }

    let added = sim
        .control(
            "/users",
            json!({"user_id": "zoomUser1", "email": "ext@example.com", "logged_in": true, "status": "Busy"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(sim.status("ext@example.com").await, "Busy");
    let logged_out = sim
        .control(
            "/users",
            json!({"user_id": "zoomUser2", "email": "off@example.com", "logged_in": false}),
        )
        .await;
    assert_eq!(logged_out.json()["status"], "Offline");
    assert_eq!(sim.set("zoomUser2", "Busy").await.error().0, 5301);
    let invalid = sim
        .control("/users", json!({"user_id": "", "email": "x@example.com"}))
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let invalid = sim
        .control("/users", json!({"email": "x@example.com"}))
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);

    // Replacing a user resets them.
    sim.control(
        "/users",
        json!({"user_id": "zoomUser1", "email": "ext@example.com"}),
    )
    .await;
    assert_eq!(sim.status("zoomUser1").await, "Available");

    let truth = sim.truth().await;
    assert_eq!(truth.len(), directory.agents.len() + 2);
    let second = truth.last().expect("added");
    assert_eq!(second.user_id, "zoomUser2");
    assert_eq!(second.updates.len(), 1);
    assert_eq!(second.updates[0].outcome, PresenceOutcome::NotLoggedIn);
    // The raw JSON shape of one update.
    let raw = answer(
        sim.client
            .get(format!("{}/sim/presence/zoomUser2", sim.server.base_url())),
    )
    .await
    .json();
    let update = &raw["updates"][0];
    assert_eq!(update["via"], "api");
    assert_eq!(update["outcome"], "not_logged_in");
    assert_eq!(update["status"], "Busy");
    assert!(update["at_ms"].is_i64());

    // The library API mirrors the control routes.
    let user = sim
        .server
        .add_presence_user(NewPresenceUser::new("lib", "lib@example.com"))
        .expect("add");
    assert_eq!(user.status, "Available");
    let user = sim
        .server
        .change_presence(
            "lib@example.com",
            PresenceChange {
                status: Some("Do_Not_Disturb".to_owned()),
                duration: Some(30),
                ..PresenceChange::default()
            },
        )
        .expect("dnd");
    assert!(user.dnd_end_ms.is_some());
    assert_eq!(sim.get("lib").await.json()["remaining_time"], 30);
    assert_eq!(
        sim.server.presence_user("lib").expect("lib").updates.len(),
        1
    );
}

#[tokio::test]
async fn presence_counts_against_the_medium_label() {
    let sim = start(SimServerConfig {
        medium_per_second: 2,
        ..config()
    })
    .await;
    let (agent, _) = sim.agent(0);
    // Wait for the start of a second so the burst stays in one window.
    let into_second = now_ms().rem_euclid(1000);
    if into_second > 700 {
        tokio::time::sleep(Duration::from_millis((1000 - into_second + 10) as u64)).await;
    }
    let answers = [
        sim.get(&agent).await,
        sim.get(&agent).await,
        sim.get(&agent).await,
    ];
    let refused = &answers[2];
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["x-ratelimit-category"], "Medium");
    assert_eq!(refused.headers["x-ratelimit-type"], "QPS");
}

// ---------------------------------------------------------------------------------------------------------------------
// Events

/// A webhook as received: headers and raw body.
type Delivery = (HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Delivery>>>);

async fn hook(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    received
        .0
        .lock()
        .expect("lock")
        .push((headers, body.to_vec()));
    AxumStatus::NO_CONTENT
}

async fn receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Received::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

/// Waits until `n` webhooks arrived; returns their bodies after checking the signatures.
async fn bodies(received: &Received, n: usize) -> Vec<Value> {
    let verifier = WebhookVerifier::new([SECRET], 300);
    for _ in 0..200 {
        let got = received.0.lock().expect("lock").clone();
        if got.len() >= n {
            return got
                .iter()
                .map(|(headers, body)| {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                    verifier
                        .verify(
                            header("x-zm-signature"),
                            header("x-zm-request-timestamp"),
                            body,
                            now_ms() / 1000,
                        )
                        .expect("signed");
                    serde_json::from_slice(body).expect("json")
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} webhooks");
}

#[tokio::test]
async fn the_users_changes_fire_signed_webhooks() {
    let (target, received) = receiver().await;
    let sim = start(SimServerConfig {
        presence_webhook: Some(PresenceWebhook::new(target, SECRET)),
        ..config()
    })
    .await;
    let (agent, email) = sim.agent(0);

    // An API update fires nothing by default.
    assert_no_content(&sim.set(&agent, "Busy").await);
    sim.server
        .user_sets_presence(&agent, "On_A_Call")
        .expect("change");
    let events = bodies(&received, 1).await;
    let event = &events[0];
    assert_eq!(event["event"], "user.presence_status_updated");
    assert!(event["event_ts"].is_i64());
    assert_eq!(
        event["payload"]["account_id"],
        zoom_sim::generator::DEFAULT_ACCOUNT_ID
    );
    let object = &event["payload"]["object"];
    assert_eq!(object["id"], agent.as_str());
    assert_eq!(object["email"], email.as_str());
    // The event's vocabulary: On_A_Call is On_Phone_Call there.
    assert_eq!(object["presence_status"], "On_Phone_Call");
    assert!(object["date_time"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    sim.server.set_logged_in(&agent, false).expect("sign out");
    let events = bodies(&received, 2).await;
    assert!(events
        .iter()
        .any(|e| e["payload"]["object"]["presence_status"] == "Offline"));

    let user = sim.server.presence_user(&agent).expect("agent");
    let fired: Vec<_> = user.updates.iter().map(|u| (u.via, u.event)).collect();
    assert_eq!(
        fired,
        [
            (PresenceVia::Api, false),
            (PresenceVia::User, true),
            (PresenceVia::User, true)
        ]
    );
    let stats = sim.server.stats();
    assert_eq!(stats.presence_events, 2);
    // Published to the WebSocket subscription too (dropped: nobody is connected).
    assert_eq!(sim.server.hub().stats().published, 2);
    for _ in 0..100 {
        if sim.server.stats().presence_webhooks_acked == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.server.stats().presence_webhooks_acked, 2);
}

#[tokio::test]
async fn api_updates_are_echoed_on_request() {
    let (target, received) = receiver().await;
    let sim = start(SimServerConfig {
        presence_webhook: Some(PresenceWebhook::new(target, SECRET)),
        presence_echo_api_updates: true,
        ..config()
    })
    .await;
    let (agent, _) = sim.agent(0);
    assert_no_content(&sim.set(&agent, "In_A_Zoom_Meeting").await);
    // A refused update fires nothing.
    assert_eq!(
        sim.set(&agent, "Busy").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let events = bodies(&received, 1).await;
    assert_eq!(
        events[0]["payload"]["object"]["presence_status"],
        "In_Meeting"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received.0.lock().expect("lock").len(), 1);
    let user = sim.server.presence_user(&agent).expect("agent");
    assert!(user.updates[0].event);
    assert!(!user.updates[1].event);
}
