//! The agent panel served by the real bridge, in a real browser: headless Debian Chromium through ChromeDriver
//! (fantoccini), the Zoom Apps SDK replaced by the test double (`crates/zoom-app/assets/test/zoomsdk-double.js`,
//! which follows the SDK's typings), the bridge's Zoom at zoom-sim (app contexts), its store on SQLite and Postgres.
//!
//! The double is served as `/zoomapp/sdk.js` by a small reverse proxy in front of the bridge (the bridge itself only
//! ever serves the vendored SDK); the proxy passes everything else through, streams included, and records every
//! workspace write the panel sends.
//!
//! Two chats; the agent switches back and forth while typing notes; the chat not on screen ends; the panel reloads
//! while a save is pending; the chat on screen ends. Every note must land on its own engagement: in the bridge's
//! workspaces, in every write on the wire, and in the engagement records.
//!
//! Needs `ZCC_CHROMEDRIVER_URL` (`scripts/browser.sh` starts ChromeDriver and sets it; `scripts/test.sh` does). Without
//! it the test skips, unless `ZCC_REQUIRE_BROWSER=1`. Screenshots: `target/zoomapp-screenshots/bridge-*.png`;
//! `ZCC_DOCS_SCREENSHOT=1` also writes `docs/zoomapp/panel.png`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use zcc_bridge::store::Store;
use zoom_app::owasp;

use crate::common::sim::simulator;
use crate::common::{backends, envelope, TestServer};
use crate::zoomapp::{configure, sim_config, PROD_ID};

const DOUBLE: &[u8] = include_bytes!("../../../zoom-app/assets/test/zoomsdk-double.js");
const A: &str = "chat_A_alice";
const B: &str = "chat_B_bob";

/// A workspace write the panel sent: engagement, kind, the notes it carried.
#[derive(Debug, Clone)]
struct Write {
    engagement: String,
    kind: &'static str,
    notes: String,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    writes: Arc<Mutex<Vec<Write>>>,
    sessions_posted: Arc<Mutex<usize>>,
}

const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
];

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    record(&proxy, parts.method.as_str(), &path, &body);
    let mut outgoing = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body.to_vec());
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = match outgoing.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    // Streamed as it comes (Server-Sent Events).
    let chunks = futures_util::stream::unfold(upstream, |mut r| async move {
        match r.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), r)),
            _ => None,
        }
    });
    response
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

fn record(proxy: &Proxy, method: &str, path: &str, body: &[u8]) {
    if method == "POST" && path == "/zoomapp/api/session" {
        *proxy.sessions_posted.lock().unwrap() += 1;
    }
    let Some(rest) = path.strip_prefix("/zoomapp/api/engagements/") else {
        return;
    };
    let kind = match (method, rest.rsplit_once('/')) {
        ("PUT", Some((_, "workspace"))) => "put",
        ("POST", Some((_, "finalize"))) => "finalize",
        _ => return,
    };
    let engagement = rest.split('/').next().unwrap_or_default().to_string();
    let notes = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["notes"].as_str().map(str::to_string))
        .unwrap_or_default();
    proxy.writes.lock().unwrap().push(Write {
        engagement,
        kind,
        notes,
    });
}

async fn serve_proxy(upstream: &str) -> (String, Proxy) {
    let proxy = Proxy {
        upstream: upstream.to_string(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        writes: Arc::default(),
        sessions_posted: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/zoomapp/sdk.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    DOUBLE,
                )
            }),
        )
        .fallback(forward)
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), proxy)
}

/// The ChromeDriver URL, or `None` when the test is to be skipped.
pub fn webdriver_url() -> Option<String> {
    match std::env::var("ZCC_CHROMEDRIVER_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("ZCC_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("ZCC_REQUIRE_BROWSER=1 but ZCC_CHROMEDRIVER_URL is not set: run `source scripts/browser.sh && browser_start`")
        }
        Err(_) => {
            eprintln!("SKIPPED: the panel browser tests need ZCC_CHROMEDRIVER_URL (scripts/browser.sh cargo test -p zcc-bridge --test it zoomapp_browser)");
            None
        }
    }
}

pub async fn browser(webdriver: &str, profile: &std::path::Path) -> Client {
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
                "--window-size=460,1300",
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a ChromeDriver session")
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

async fn shot(client: &Client, name: &str) -> Vec<u8> {
    let png = client.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    png
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn wait_js(client: &Client, condition: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
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

async fn switch_to(client: &Client, id: &str) {
    js(
        client,
        &format!("zoomSdkDouble.switchTo('{id}'); return true;"),
    )
    .await;
    on_screen(client, id).await;
}

/// The workspace the bridge holds for (agent, engagement).
async fn stored(store: &Arc<dyn Store>, agent: &str, id: &str) -> Option<Value> {
    store
        .zoomapp_workspace(agent, id)
        .await
        .unwrap()
        .map(|row| serde_json::from_str(&row.state).unwrap())
}

async fn wait_stored(
    store: &Arc<dyn Store>,
    agent: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = stored(store, agent, id).await {
            if done(&v) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; stored {:?}",
            stored(store, agent, id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn chat_events(id: &str, agent: &str, name: &str, number: &str, t0: i64) -> Vec<Vec<u8>> {
    let object = |extra: Value| {
        let mut o = json!({"engagement_id": id, "channel": "messaging", "channel_source": "web_chat",
                           "engagement_direction": "inbound", "user_id": agent, "user_display_name": "Agent One",
                           "cc_queue_id": "Q1", "queue_name": "Billing chat", "consumer_number": number,
                           "consumer_display_name": name, "consumer_id": format!("c-{id}")});
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        o
    };
    vec![
        envelope(
            "contact_center.engagement_started",
            t0,
            object(json!({"date_time_ms": zoom_sim::iso_time_ms(t0)})),
        ),
        envelope(
            "contact_center.engagement_user_answered",
            t0 + 4_000,
            object(json!({})),
        ),
        envelope(
            "contact_center.engagement_user_hold",
            t0 + 30_000,
            object(json!({})),
        ),
        envelope(
            "contact_center.engagement_user_unhold",
            t0 + 45_000,
            object(json!({})),
        ),
    ]
}

fn scenario(context: &str, agent: &str) -> Value {
    let now = zoom_sim::now_ms();
    let engagement = |id: &str, name: &str, source: &str, queue: &str| {
        json!({
            "context": {"engagementId": id, "startTime": now - 60_000, "acceptTime": now - 50_000,
                        "queueId": "Q1", "queueName": queue},
            "status": {"engagementId": id, "state": "active", "channel": "messaging", "source": source,
                       "isConference": "false", "assignedAgentId": agent, "assignedAgentName": "Agent One",
                       "consumers": [{"consumerId": format!("c-{id}"), "consumerDisplayName": name}]}
        })
    };
    json!({
        "appContext": context,
        "current": A,
        "engagements": {
            A: engagement(A, "Alice Example", "messaging_webChat", "Billing chat"),
            B: engagement(B, "Bob Sample", "messaging_inAppChat", "Billing chat"),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_land_on_their_own_engagement_in_the_bridge_through_switches_ends_and_a_reload() {
    let Some(webdriver) = webdriver_url() else {
        return;
    };
    for backend in backends() {
        let (sim, scenario_day) = simulator(2, 21, sim_config()).await;
        let contacts = tempfile::NamedTempFile::with_suffix(".csv").unwrap();
        std::fs::write(
            contacts.path(),
            "name,phone,company,crm_url\nAlice Example,+14155550101,ACME,https://crm.example/contacts/1\n",
        )
        .unwrap();
        let path = contacts.path().to_path_buf();
        let mut server = TestServer::start_with(&backend, |c| {
            configure(c, &sim);
            c.contacts.file = Some(path);
        })
        .await;
        let agent = scenario_day.directory.agents[0].user_id.clone();
        let t0 = zoom_sim::now_ms() - 600_000;
        // Alice called before: the panel shows it.
        for body in chat_events(
            "chat_OLD_alice",
            &agent,
            "Alice Example",
            "+14155550101",
            t0 - 86_400_000,
        )
        .into_iter()
        .chain(chat_events(A, &agent, "Alice Example", "+14155550101", t0))
        .chain(chat_events(
            B,
            &agent,
            "Bob Sample",
            "+442079460958",
            t0 + 10_000,
        ))
        .chain([envelope(
            "contact_center.recording_completed",
            t0 + 50_000,
            json!({"engagement_id": A, "recording_id": "rec-A-1", "channel": "messaging",
                       "recording_start_time_ms": zoom_sim::iso_time_ms(t0 + 5_000),
                       "recording_end_time_ms": zoom_sim::iso_time_ms(t0 + 50_000)}),
        )]) {
            assert_eq!(server.post_webhook(&body).await.status(), 200);
        }
        let (base, proxy) = serve_proxy(&server.base).await;
        let context = sim
            .mint_app_context(PROD_ID, &agent, Duration::from_secs(300))
            .unwrap();

        // The Home URL, through the proxy, carries the headers the Zoom client requires.
        let home = reqwest::get(format!("{base}/zoomapp/")).await.unwrap();
        assert_eq!(home.status(), 200);
        assert_eq!(owasp::check(home.headers()), Vec::<String>::new());

        let profile = tempfile::tempdir().unwrap();
        let client = browser(&webdriver, profile.path()).await;
        let label = match backend {
            crate::common::Backend::Sqlite => "sqlite",
            crate::common::Backend::Postgres(_) => "postgres",
        };
        run(&client, &base, &server, &agent, &context, label).await;
        client.close().await.ok();

        // Every write on the wire carried only its own engagement's notes.
        let writes = proxy.writes.lock().unwrap().clone();
        for w in &writes {
            let foreign = if w.engagement == A { "banana" } else { "apple" };
            assert!(
                !w.notes.contains(foreign),
                "{label}: a {} for {} carried another engagement's notes: {w:?}",
                w.kind,
                w.engagement
            );
        }
        assert!(writes.iter().any(|w| w.kind == "put"));
        assert!(writes.iter().filter(|w| w.kind == "finalize").count() >= 2);
        eprintln!(
            "{label}: {} writes, {} session exchanges: {:?}",
            writes.len(),
            proxy.sessions_posted.lock().unwrap(),
            writes
                .iter()
                .map(|w| (w.engagement.as_str(), w.kind))
                .collect::<Vec<_>>()
        );

        // And the engagement records carry the finalized workspaces.
        for (id, notes) in [
            (A, "apple one apple two apple three (end)"),
            (B, "banana one banana two"),
        ] {
            let record = server.get_json(&format!("/api/v1/engagements/{id}")).await;
            assert_eq!(
                record["agent_workspaces"][0]["notes"], notes,
                "{label}: {record}"
            );
            assert_eq!(record["agent_workspaces"][0]["user_id"], agent.as_str());
        }
        server.shutdown().await;
    }
}

async fn run(
    client: &Client,
    base: &str,
    server: &TestServer,
    agent: &str,
    context: &str,
    label: &str,
) {
    let store = &server.server.as_ref().unwrap().store();
    // The agent desktop's state before the app opens: two chats, Alice's on screen. The double keeps it in
    // sessionStorage (per origin), so it is written from another page of the same origin first.
    client
        .goto(&format!("{base}/zoomapp/panel.css"))
        .await
        .unwrap();
    js(
        client,
        &format!(
            "sessionStorage.setItem('zoomsdk-double', JSON.stringify({})); return true;",
            scenario(context, agent)
        ),
    )
    .await;
    client.goto(&format!("{base}/zoomapp/")).await.unwrap();
    on_screen(client, A).await;
    assert_eq!(notes_value(client).await, "");
    wait_js(
        client,
        "document.getElementById('customer').textContent.includes('Alice Example')",
        "the matched customer from the bridge",
    )
    .await;

    // Switch while typing: each burst is shorter than the save delay, so unsaved text rides along every switch.
    type_notes(client, "apple one ").await;
    switch_to(client, B).await;
    assert_eq!(notes_value(client).await, "", "Bob's notes start empty");
    type_notes(client, "banana one ").await;
    switch_to(client, A).await;
    assert_eq!(notes_value(client).await, "apple one ");
    type_notes(client, "apple two ").await;
    switch_to(client, B).await;
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
    wait_stored(store, agent, B, "Bob's notes in the bridge", |w| {
        w["notes"] == "banana one banana two"
            && w["tags"] == json!(["vip"])
            && w["checklist"]["verified"] == true
    })
    .await;
    wait_js(
        client,
        "document.getElementById('activity').children.length >= 3",
        "Bob's activity from the bridge",
    )
    .await;
    shot(client, &format!("bridge-{label}-01-bob-on-screen")).await;

    // Back to Alice; Bob's chat ends while Alice is on screen.
    switch_to(client, A).await;
    js(
        client,
        &format!("zoomSdkDouble.end('{B}', 1795251700000); return true;"),
    )
    .await;
    wait_stored(store, agent, B, "Bob finalized", |w| w["finalized"] == true).await;
    wait_js(
        client,
        &format!(
            "document.querySelector(`.tab[data-engagement-id='{B}']`)?.classList.contains('ended')"
        ),
        "Bob's tab shows the end",
    )
    .await;
    assert_eq!(
        notes_value(client).await,
        "apple one apple two ",
        "Alice still on screen"
    );

    // Type and reload at once: the pending save goes out as the page hides.
    type_notes(client, "apple three").await;
    client.refresh().await.unwrap();
    on_screen(client, A).await;
    wait_stored(store, agent, A, "Alice's last words saved", |w| {
        w["notes"] == "apple one apple two apple three"
    })
    .await;
    wait_js(
        client,
        "document.getElementById('notes').value === 'apple one apple two apple three'",
        "Alice's notes back after the reload",
    )
    .await;
    wait_js(
        client,
        "document.getElementById('previous').children.length === 1",
        "Alice's previous engagement",
    )
    .await;
    // Live activity from the bridge's stream: Alice is put on hold and a transfer starts while the panel shows her.
    for (event, dt) in [
        ("contact_center.engagement_user_hold", 0),
        ("contact_center.engagement_transfer_initiated", 1),
    ] {
        let body = envelope(
            event,
            zoom_sim::now_ms() + dt,
            json!({"engagement_id": A, "user_id": agent, "user_display_name": "Agent One", "cc_queue_id": "Q1",
                   "queue_name": "Billing chat", "transfer_to_cc_queue_id": "Q2", "transfer_to_queue_name": "Refunds",
                   "transfer_type": "warm"}),
        );
        assert_eq!(server.post_webhook(&body).await.status(), 200);
    }
    wait_js(
        client,
        "[...document.getElementById('activity').children].some(li => li.textContent.includes('transfer_initiated'))",
        "live activity from the stream",
    )
    .await;
    wait_js(
        client,
        "document.getElementById('media').textContent.includes('not archived yet')",
        "the recording",
    )
    .await;
    let png = shot(client, &format!("bridge-{label}-02-alice-after-reload")).await;
    if std::env::var("ZCC_DOCS_SCREENSHOT").as_deref() == Ok("1") && label == "sqlite" {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/zoomapp/panel.png");
        std::fs::write(&docs, png).unwrap();
        eprintln!("screenshot: {}", docs.display());
    }

    // Alice's chat ends on screen; a last edit typed just before goes into the final workspace.
    type_notes(client, " (end)").await;
    js(
        client,
        &format!("zoomSdkDouble.end('{A}', 1795251800000); return true;"),
    )
    .await;
    wait_stored(store, agent, A, "Alice finalized", |w| {
        w["finalized"] == true
    })
    .await;
    wait_js(
        client,
        "document.getElementById('save-state').textContent === 'Final'",
        "final state shown",
    )
    .await;
    shot(client, &format!("bridge-{label}-03-alice-ended")).await;

    let a = stored(store, agent, A).await.unwrap();
    let b = stored(store, agent, B).await.unwrap();
    assert_eq!(a["notes"], "apple one apple two apple three (end)");
    assert_eq!(a["end_time"], 1_795_251_800_000i64);
    assert_eq!(b["notes"], "banana one banana two");
    assert_eq!(b["tags"], json!(["vip"]));
    assert_eq!(b["checklist"]["verified"], true);
    assert_eq!(b["end_time"], 1_795_251_700_000i64);
}
