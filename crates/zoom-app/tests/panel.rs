//! The agent panel in a real browser: headless Debian Chromium driven through ChromeDriver (fantoccini), the SDK
//! replaced by the test double (`assets/test/zoomsdk-double.js`), the backend by an in-memory fake of the workspace
//! API that applies the crate's own merge rule (`zoom_app::workspace`) and verifies the app context with the crate's
//! own verifier.
//!
//! Two chats; the agent switches back and forth while typing notes; the engagement that is not on screen ends; the
//! panel reloads; the one on screen ends. Every note must land on its own engagement.
//!
//! Needs `ZCC_CHROMEDRIVER_URL` (`scripts/browser.sh` starts ChromeDriver and sets it). Without it the test skips,
//! unless `ZCC_REQUIRE_BROWSER=1`, which makes the absence a failure. Screenshots go to
//! `target/zoomapp-screenshots/`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zoom_app::context::{encode, AppContext, ISSUER};
use zoom_app::workspace::{
    apply_finalize, apply_write, validate_engagement_id, Outcome, WorkspaceState, WorkspaceWrite,
};
use zoom_app::{assets, owasp, AppCredentials, ContextVerifier, Environment};

const CLIENT_ID: &str = "panelTestClientId";
const CLIENT_SECRET: &str = "panel-test-secret";
const USER: &str = "agentUserId01";
const COOKIE: &str = "zcc_zoomapp";
const A: &str = "eng_A_chat_alice";
const B: &str = "eng_B_chat_bob";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
struct Write {
    engagement: String,
    kind: &'static str,
    notes: String,
    outcome: Outcome,
}

#[derive(Default)]
struct Backend {
    sessions: HashMap<String, String>,
    workspaces: HashMap<(String, String), WorkspaceState>,
    writes: Vec<Write>,
    oauth_state: Option<String>,
    authorized: Vec<Value>,
}

#[derive(Clone)]
struct App {
    backend: Arc<Mutex<Backend>>,
    verifier: ContextVerifier,
    /// The SDK double, served as `sdk.js`; `None` serves the real (vendored) SDK.
    double: Option<Arc<Vec<u8>>>,
}

fn user_of(app: &App, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)?
        .1;
    app.backend.lock().ok()?.sessions.get(token).cloned()
}

fn json_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

fn session_body() -> Value {
    json!({
        "environment": "development",
        "oauth": {"in_client": true, "connected": false, "pkce": "plain"},
        "checklist": [
            {"id": "verified", "label": "Identity verified"},
            {"id": "resolved", "label": "Issue resolved"},
            {"id": "follow_up", "label": "Follow-up scheduled"}
        ]
    })
}

async fn get_session(State(app): State<App>, headers: HeaderMap) -> Response {
    match user_of(&app, &headers) {
        Some(_) => Json(session_body()).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "no_session"),
    }
}

async fn post_session(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let context = body["context"].as_str().unwrap_or_default();
    let verified = match app.verifier.verify(context.as_bytes(), now_ms()) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::UNAUTHORIZED, e.reason()),
    };
    let Ok(user) = verified.user_id() else {
        return json_error(StatusCode::UNAUTHORIZED, "no_user");
    };
    let token = zoom_app::oauth::new_state();
    app.backend
        .lock()
        .unwrap()
        .sessions
        .insert(token.clone(), user.to_string());
    let mut response = Json(session_body()).into_response();
    // On loopback http; the bridge adds Secure, SameSite=None and Partitioned for the embedded webview.
    let cookie = format!("{COOKIE}={token}; Path=/zoomapp/; HttpOnly; SameSite=Strict");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
    response
}

async fn get_workspace(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user_of(&app, &headers) else {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    };
    let backend = app.backend.lock().unwrap();
    match backend.workspaces.get(&(user, id.clone())) {
        Some(state) => {
            let mut v = serde_json::to_value(state).unwrap();
            v["engagement_id"] = json!(id);
            Json(v).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn write_workspace(
    app: &App,
    id: String,
    headers: &HeaderMap,
    body: &[u8],
    finalize: bool,
) -> Response {
    let Some(user) = user_of(app, headers) else {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    };
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/json")
    {
        return json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_only");
    }
    if validate_engagement_id(&id).is_err() {
        return json_error(StatusCode::BAD_REQUEST, "bad_engagement_id");
    }
    let write: WorkspaceWrite = match serde_json::from_slice(body) {
        Ok(w) => w,
        Err(_) => return json_error(StatusCode::BAD_REQUEST, "bad_json"),
    };
    if write.validate().is_err() {
        return json_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    let mut backend = app.backend.lock().unwrap();
    let key = (user, id.clone());
    let stored = backend.workspaces.remove(&key);
    let notes = write.workspace.notes.clone();
    let (state, outcome) = if finalize {
        apply_finalize(stored, write)
    } else {
        apply_write(stored, write)
    };
    backend.workspaces.insert(key, state.clone());
    backend.writes.push(Write {
        engagement: id,
        kind: if finalize { "finalize" } else { "put" },
        notes,
        outcome,
    });
    let status = if outcome == Outcome::Finalized {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"outcome": outcome, "workspace": state})),
    )
        .into_response()
}

async fn put_workspace(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_workspace(&app, id, &headers, &body, false).await
}

async fn post_finalize(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_workspace(&app, id, &headers, &body, true).await
}

async fn get_context(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if user_of(&app, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    }
    let (name, phone, prev) = if id == A {
        ("Alice Example", "+1 415 555 0101", 2)
    } else {
        ("Bob Sample", "+44 20 7946 0958", 0)
    };
    let previous: Vec<Value> = (0..prev)
        .map(|i| json!({"engagement_id": format!("old-{i}"), "start_time": format!("2026-11-1{i}T09:0{i}:00Z"), "channel": "voice", "queue_name": "Billing", "disposition": "Resolved"}))
        .collect();
    Json(json!({
        "engagement_id": id,
        "customer": {"name": name, "phone": phone, "email": null, "crm_url": "https://crm.example/contacts/1"},
        "previous_engagements": previous,
        "activity": [{"kind": "accepted", "at": "2026-11-21T09:00:05Z"}],
        "recordings": [{"recording_id": "rec-1", "recording_start_time": "2026-11-21T09:00:06Z", "link": "/media/recording/rec-1?expires=1&signature=x"}],
        "transcripts": [],
        "deliveries": [{"sink": "salesforce", "state": "pending", "attempts": 0}]
    }))
    .into_response()
}

async fn stream(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if user_of(&app, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    }
    let kind = if id == A {
        "held"
    } else {
        "transfer_initiated"
    };
    // As the bridge's live stream sends them: the event name is the activity's kind.
    let body = format!(
        "retry: 600000\nid: 1\nevent: {kind}\ndata: {}\n\n",
        json!({"kind": kind, "event_ts": 1_795_251_660_000i64})
    );
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn oauth_authorize(State(app): State<App>, headers: HeaderMap) -> Response {
    if user_of(&app, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    }
    let pkce = zoom_app::oauth::Pkce::generate(zoom_app::oauth::PkceMethod::Plain);
    let state = zoom_app::oauth::new_state();
    app.backend.lock().unwrap().oauth_state = Some(state.clone());
    Json(zoom_app::oauth::AuthorizeOptions::new(&pkce, &state)).into_response()
}

async fn oauth_authorized(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if user_of(&app, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "no_session");
    }
    let mut backend = app.backend.lock().unwrap();
    let expected = backend.oauth_state.clone().unwrap_or_default();
    if !zoom_app::oauth::state_matches(&expected, body["state"].as_str().unwrap_or_default()) {
        return json_error(StatusCode::BAD_REQUEST, "state");
    }
    backend.authorized.push(body);
    Json(json!({"connected": true})).into_response()
}

async fn asset(State(app): State<App>, path: Option<Path<String>>) -> Response {
    let path = path.map(|Path(p)| p).unwrap_or_default();
    if let (Some(double), "sdk.js") = (&app.double, path.as_str()) {
        return (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            double.as_ref().clone(),
        )
            .into_response();
    }
    let Some(asset) = assets::get(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    if asset.is_html() {
        owasp::apply(response.headers_mut());
    }
    response
}

async fn serve(with_double: bool) -> (String, App) {
    let double_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/test/zoomsdk-double.js");
    let app = App {
        backend: Arc::default(),
        verifier: ContextVerifier::new(&[AppCredentials {
            environment: Environment::Development,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        }]),
        double: with_double.then(|| Arc::new(std::fs::read(double_path).expect("the SDK double"))),
    };
    let router = Router::new()
        .route("/zoomapp/", get(asset))
        .route("/zoomapp/{*path}", get(asset))
        .route("/zoomapp/api/session", get(get_session).post(post_session))
        .route(
            "/zoomapp/api/engagements/{id}/workspace",
            get(get_workspace).put(put_workspace),
        )
        .route(
            "/zoomapp/api/engagements/{id}/finalize",
            post(post_finalize),
        )
        .route("/zoomapp/api/engagements/{id}/context", get(get_context))
        .route("/zoomapp/api/engagements/{id}/stream", get(stream))
        .route("/zoomapp/api/oauth/authorize", post(oauth_authorize))
        .route("/zoomapp/api/oauth/authorized", post(oauth_authorized))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), app)
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("zoomapp-screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/zoomapp-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn wait_js(client: &Client, condition: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let script = format!("return !!({condition});");
    loop {
        if js(client, &script).await == json!(true) {
            return;
        }
        if Instant::now() > deadline {
            let status = js(client, "return document.getElementById('status-line').textContent + ' | ' + document.getElementById('notice').textContent + ' | ' + document.getElementById('save-state').textContent").await;
            panic!("timed out waiting for {what} ({condition}); panel says {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_backend(app: &App, what: &str, done: impl Fn(&Backend) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if done(&app.backend.lock().unwrap()) {
            return;
        }
        if Instant::now() > deadline {
            let b = app.backend.lock().unwrap();
            panic!(
                "timed out waiting for {what}; workspaces {:?}",
                b.workspaces
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until engagement `id` is on screen, loaded and editable.
async fn on_screen(client: &Client, id: &str) {
    wait_js(
        client,
        &format!("document.getElementById('notes').dataset.engagementId === '{id}' && !document.getElementById('notes').disabled && document.querySelector('.tab.current')?.dataset.engagementId === '{id}'"),
        &format!("{id} on screen"),
    )
    .await;
}

async fn type_notes(client: &Client, text: &str) {
    client
        .find(Locator::Id("notes"))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn notes_value(client: &Client) -> String {
    js(client, "return document.getElementById('notes').value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn stored(app: &App, id: &str) -> Option<WorkspaceState> {
    app.backend
        .lock()
        .unwrap()
        .workspaces
        .get(&(USER.to_string(), id.to_string()))
        .cloned()
}

fn scenario() -> Value {
    let now = now_ms();
    let context = encode(
        &AppContext {
            typ: Some("panel".into()),
            uid: Some(USER.into()),
            aud: Some(CLIENT_ID.into()),
            iss: Some(ISSUER.into()),
            ts: Some(now),
            exp: Some(now + 120_000),
            ..Default::default()
        },
        CLIENT_SECRET,
    );
    let engagement = |id: &str, name: &str, source: &str, queue: &str| {
        json!({
            "context": {"engagementId": id, "startTime": now - 60_000, "acceptTime": now - 50_000,
                        "queueId": "q1", "queueName": queue},
            "status": {"engagementId": id, "state": "active", "channel": "messaging", "source": source,
                       "isConference": "false", "assignedAgentId": USER, "assignedAgentName": "Agent One",
                       "consumers": [{"consumerId": format!("c-{id}"), "consumerDisplayName": name}]}
        })
    };
    json!({
        "appContext": context,
        "current": A,
        "engagements": {
            A: engagement(A, "Alice Example", "messaging_webChat", "Billing chat"),
            B: engagement(B, "Bob Sample", "messaging_inAppChat", "Support chat"),
        }
    })
}

/// The ChromeDriver URL, or `None` when the test is to be skipped.
fn webdriver_url() -> Option<String> {
    match std::env::var("ZCC_CHROMEDRIVER_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("ZCC_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("ZCC_REQUIRE_BROWSER=1 but ZCC_CHROMEDRIVER_URL is not set: run `source scripts/browser.sh && browser_start`")
        }
        Err(_) => {
            eprintln!("SKIPPED: the panel browser tests need ZCC_CHROMEDRIVER_URL (run them as `scripts/browser.sh cargo test -p zoom-app --test panel`)");
            None
        }
    }
}

async fn browser(webdriver: &str, profile: &std::path::Path) -> Client {
    let chromium = std::env::var("ZCC_CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=460,1200",
            ]
        }),
    );
    // ChromeDriver is on loopback over plain http: no TLS connector.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a ChromeDriver session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_land_on_their_own_engagement_through_switches_ends_and_a_reload() {
    let Some(webdriver) = webdriver_url() else {
        return;
    };
    let (base, app) = serve(true).await;

    // The HTML route carries the headers the Zoom client requires.
    let home = reqwest::get(format!("{base}/zoomapp/")).await.unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(owasp::check(home.headers()), Vec::<String>::new());

    let profile = tempfile::tempdir().unwrap();
    let client = browser(&webdriver, profile.path()).await;
    run(&client, &base, &app).await;
    client.close().await.ok();
}

/// The real vendored SDK under the real CSP, outside Zoom: the module loads (no CSP violation, imports resolve),
/// `config` fails as it must outside the client, and the panel says so. Also the load metrics of BENCHMARKS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_sdk_loads_under_the_csp_and_outside_zoom_the_panel_says_so() {
    let Some(webdriver) = webdriver_url() else {
        return;
    };
    let (base, _app) = serve(false).await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&webdriver, profile.path()).await;
    client.goto(&format!("{base}/zoomapp/")).await.unwrap();
    wait_js(
        &client,
        "document.getElementById('status-line').textContent === 'Not running in Zoom'",
        "the outside-Zoom notice",
    )
    .await;
    let metrics = js(
        &client,
        "const paint = performance.getEntriesByName('first-contentful-paint')[0];\
         const nav = performance.getEntriesByType('navigation')[0];\
         const res = performance.getEntriesByType('resource');\
         return {fcp_ms: paint ? paint.startTime : null, html_bytes: nav.transferSize,\
                 total_bytes: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),\
                 files: res.map(r => [r.name.split('/zoomapp/')[1], r.transferSize])};",
    )
    .await;
    eprintln!("panel load on loopback (real SDK): {metrics}");
    let files: Vec<String> = metrics["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        files.contains(&assets::VENDORED_SDK_PATH.to_string()),
        "{files:?}"
    );
    assert!(
        metrics["fcp_ms"].as_f64().is_some(),
        "no first paint: {metrics}"
    );
    shot(&client, "00-outside-zoom").await;
    client.close().await.ok();
}

async fn run(client: &Client, base: &str, app: &App) {
    // The agent desktop state before the app opens: two chats, Alice's on screen (the double reads it from
    // sessionStorage, which is per origin, so it is written from another page of the same origin).
    client
        .goto(&format!("{base}/zoomapp/panel.css"))
        .await
        .unwrap();
    js(
        client,
        &format!(
            "sessionStorage.setItem('zoomsdk-double', JSON.stringify({})); return true;",
            scenario()
        ),
    )
    .await;
    client.goto(&format!("{base}/zoomapp/")).await.unwrap();
    on_screen(client, A).await;
    assert_eq!(notes_value(client).await, "");

    // Switch while typing: each burst is shorter than the save delay, so unsaved text rides along every switch.
    type_notes(client, "apple one ").await;
    js(
        client,
        &format!("zoomSdkDouble.switchTo('{B}'); return true;"),
    )
    .await;
    on_screen(client, B).await;
    assert_eq!(notes_value(client).await, "", "Bob's notes start empty");
    type_notes(client, "banana one ").await;
    js(
        client,
        &format!("zoomSdkDouble.switchTo('{A}'); return true;"),
    )
    .await;
    on_screen(client, A).await;
    assert_eq!(notes_value(client).await, "apple one ");
    type_notes(client, "apple two ").await;
    js(
        client,
        &format!("zoomSdkDouble.switchTo('{B}'); return true;"),
    )
    .await;
    on_screen(client, B).await;
    assert_eq!(notes_value(client).await, "banana one ");
    type_notes(client, "banana two").await;
    let tag = client.find(Locator::Id("tag-input")).await.unwrap();
    tag.send_keys("vip\u{E007}").await.unwrap(); // WebDriver's Enter key
    client
        .find(Locator::Css("#checklist input[data-item='verified']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        client,
        "document.getElementById('save-state').textContent === 'Saved'",
        "Bob's workspace saved",
    )
    .await;
    wait_js(
        client,
        "document.getElementById('activity').children.length >= 2",
        "activity from the stream",
    )
    .await;
    shot(client, "01-bob-on-screen").await;

    // Back to Alice; Bob's chat ends while Alice is on screen.
    js(
        client,
        &format!("zoomSdkDouble.switchTo('{A}'); return true;"),
    )
    .await;
    on_screen(client, A).await;
    js(
        client,
        &format!("zoomSdkDouble.end('{B}', 1795251700000); return true;"),
    )
    .await;
    wait_backend(app, "Bob finalized", |b| {
        b.workspaces
            .get(&(USER.to_string(), B.to_string()))
            .is_some_and(|w| w.finalized)
    })
    .await;
    wait_js(client, "document.querySelector(`.tab[data-engagement-id='eng_B_chat_bob']`)?.classList.contains('ended')", "Bob's tab shows the end").await;
    assert_eq!(
        notes_value(client).await,
        "apple one apple two ",
        "Alice still on screen"
    );

    // Type and reload at once: the pending save goes out as the page hides.
    type_notes(client, "apple three").await;
    client.refresh().await.unwrap();
    on_screen(client, A).await;
    wait_backend(app, "Alice's last words saved", |b| {
        b.workspaces
            .get(&(USER.to_string(), A.to_string()))
            .is_some_and(|w| w.workspace.notes == "apple one apple two apple three")
    })
    .await;
    assert_eq!(notes_value(client).await, "apple one apple two apple three");
    wait_js(
        client,
        "document.getElementById('previous').children.length === 2",
        "Alice's previous engagements",
    )
    .await;
    shot(client, "02-alice-after-reload").await;

    // In-client OAuth through the double: authorize, onAuthorized, the code posted with the state.
    wait_js(
        client,
        "!document.getElementById('connect').hidden",
        "connect button",
    )
    .await;
    client
        .find(Locator::Id("connect"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_backend(app, "onAuthorized forwarded", |b| !b.authorized.is_empty()).await;

    // The backend forgets every session (expiry, restart): the panel proves who it is again and carries on.
    let sessions_before = app.backend.lock().unwrap().sessions.len();
    app.backend.lock().unwrap().sessions.clear();

    // Alice's chat ends on screen; a last edit typed just before goes into the final workspace.
    type_notes(client, " (end)").await;
    js(
        client,
        &format!("zoomSdkDouble.end('{A}', 1795251800000); return true;"),
    )
    .await;
    wait_backend(app, "Alice finalized", |b| {
        b.workspaces
            .get(&(USER.to_string(), A.to_string()))
            .is_some_and(|w| w.finalized)
    })
    .await;
    wait_js(
        client,
        "document.getElementById('save-state').textContent === 'Final'",
        "final state shown",
    )
    .await;
    shot(client, "03-alice-ended").await;

    // What the backend holds: each engagement exactly what was typed for it.
    let a = stored(app, A).expect("Alice's workspace");
    let b = stored(app, B).expect("Bob's workspace");
    assert_eq!(a.workspace.notes, "apple one apple two apple three (end)");
    assert!(a.finalized);
    assert_eq!(a.end_time, Some(1_795_251_800_000));
    assert_eq!(b.workspace.notes, "banana one banana two");
    assert_eq!(b.workspace.tags, vec!["vip".to_string()]);
    assert_eq!(b.workspace.checklist.get("verified"), Some(&true));
    assert!(b.finalized);
    assert_eq!(b.end_time, Some(1_795_251_700_000));
    let backend = app.backend.lock().unwrap();
    assert!(sessions_before >= 1);
    assert_eq!(backend.sessions.len(), 1, "one new session after the loss");
    for w in &backend.writes {
        let foreign = if w.engagement == A { "banana" } else { "apple" };
        assert!(
            !w.notes.contains(foreign),
            "a {} for {} carried another engagement's notes: {w:?}",
            w.kind,
            w.engagement
        );
    }
    assert!(backend.writes.iter().any(|w| w.kind == "put"));
    assert_eq!(
        backend
            .writes
            .iter()
            .filter(|w| w.kind == "finalize" && w.outcome == Outcome::Applied)
            .count(),
        2
    );
    eprintln!(
        "{} writes: {:?}",
        backend.writes.len(),
        backend
            .writes
            .iter()
            .map(|w| (w.engagement.as_str(), w.kind, w.outcome))
            .collect::<Vec<_>>()
    );
}
