//! The Contact Center Zoom App against zoom-sim, on SQLite and Postgres: OWASP headers on every HTML answer, the
//! `X-Zoom-App-Context` cases, both OAuth flows, token refresh and deauthorization, workspace writes that are
//! idempotent and order-insensitive, the finalized workspace in the record and in what sinks receive, and the
//! panel's engagement context and live activity. The panel in a real browser: `zoomapp_browser.rs`.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use zcc_bridge::config::{Config, InClientPkce, Secret, ZoomAppCredentials};
use zoom_app::context::{encode, seal, AppContext, ContextKey, ISSUER};
use zoom_app::{assets, owasp};
use zoom_sim::generator::Scenario;
use zoom_sim::{DeauthorizeRequest, SimServer, SimServerConfig, SimZoomApp};

use crate::common::receiver::Receiver;
use crate::common::sim::simulator;
use crate::common::{backends, envelope, Backend, TestServer};

pub const DEV_ID: &str = "devZoomAppClientId000";
pub const DEV_SECRET: &str = "devZoomAppClientSecret0000000000";
pub const PROD_ID: &str = "prodZoomAppClientId00";
pub const PROD_SECRET: &str = "prodZoomAppClientSecret000000000";
pub const APP_SECRET_TOKEN: &str = "zoom-app-secret-token-0123456789";
/// What Marketplace would hold; the bridge runs on a loopback port, so tests rewrite the host.
pub const REDIRECT_URL: &str = "https://bridge.example/zoomapp/oauth/callback";
pub const HOME_URL: &str = "https://bridge.example/zoomapp/";

pub fn sim_config() -> SimServerConfig {
    SimServerConfig {
        zoom_apps: vec![
            SimZoomApp {
                client_id: DEV_ID.into(),
                client_secret: DEV_SECRET.into(),
            },
            SimZoomApp {
                client_id: PROD_ID.into(),
                client_secret: PROD_SECRET.into(),
            },
        ],
        ..SimServerConfig::default()
    }
}

/// Both credential sets, Zoom's endpoints at the simulator.
pub fn configure(c: &mut Config, sim: &SimServer) {
    c.zoom.oauth_base = sim.base_url();
    c.zoom.api_base = format!("{}/v2", sim.base_url());
    c.zoom_app.development = Some(ZoomAppCredentials {
        client_id: DEV_ID.into(),
        client_secret: Secret::new(DEV_SECRET),
    });
    c.zoom_app.production = Some(ZoomAppCredentials {
        client_id: PROD_ID.into(),
        client_secret: Secret::new(PROD_SECRET),
    });
    c.zoom_app.redirect_url = Some(REDIRECT_URL.into());
    c.zoom_app.webhook_secret_token = Some(Secret::new(APP_SECRET_TOKEN));
}

struct Setup {
    server: TestServer,
    sim: SimServer,
    scenario: Scenario,
}

impl Setup {
    async fn start(
        backend: &Backend,
        sim_cfg: SimServerConfig,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let (sim, scenario) = simulator(3, 20, sim_cfg).await;
        let server = TestServer::start_with(backend, |c| {
            configure(c, &sim);
            tweak(c);
        })
        .await;
        Self {
            server,
            sim,
            scenario,
        }
    }

    fn agent(&self, i: usize) -> String {
        self.scenario.directory.agents[i].user_id.clone()
    }

    fn context(&self, client_id: &str, user: &str) -> String {
        self.sim
            .mint_app_context(client_id, user, Duration::from_secs(120))
            .expect("a known app")
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client")
    }

    async fn panel(&self, client_id: &str, user: &str) -> Panel {
        Panel::open(&self.server.base, &self.context(client_id, user)).await
    }
}

/// The panel's side of the API: a session cookie and JSON requests.
pub struct Panel {
    base: String,
    client: reqwest::Client,
    cookie: String,
    pub session: Value,
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("zcc_zoomapp="))
        .map(str::to_string)
}

impl Panel {
    pub async fn open(base: &str, context: &str) -> Self {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{base}/zoomapp/api/session"))
            .json(&json!({ "context": context }))
            .send()
            .await
            .expect("session request");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        let set = session_cookie(response.headers()).expect("a session cookie");
        let cookie = set.split(';').next().unwrap_or_default().to_string();
        let session = response.json().await.expect("json");
        Self {
            base: base.to_string(),
            client,
            cookie,
            session,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/zoomapp/{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, self.url(path))
            .header(COOKIE, &self.cookie)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put_workspace(&self, id: &str, body: &Value) -> (u16, Value) {
        self.send(
            reqwest::Method::PUT,
            &format!("api/engagements/{id}/workspace"),
            body,
        )
        .await
    }

    pub async fn finalize(&self, id: &str, body: &Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            &format!("api/engagements/{id}/finalize"),
            body,
        )
        .await
    }
}

fn write(notes: &str, ts: i64, device: &str, rev: u64) -> Value {
    json!({
        "notes": notes,
        "tags": ["t1"],
        "checklist": {"verified": rev.is_multiple_of(2)},
        "version": {"client_ts": ts, "device_id": device, "rev": rev}
    })
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- OWASP ------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_html_answer_carries_the_owasp_headers() {
    for backend in backends() {
        let setup = Setup::start(&backend, sim_config(), |_| {}).await;
        let client = setup.client();
        let base = &setup.server.base;
        // Every HTML file of the panel, the Home URL (with and without a context), and the install flow's pages.
        let mut urls: Vec<(String, Option<String>)> = assets::ASSETS
            .iter()
            .filter(|a| a.is_html())
            .map(|a| (format!("{base}/zoomapp/{}", a.path), None))
            .collect();
        urls.push((
            format!("{base}/zoomapp/"),
            Some(setup.context(PROD_ID, &setup.agent(0))),
        ));
        urls.push((format!("{base}/zoomapp/"), Some("garbage".into())));
        urls.push((format!("{base}/zoomapp/install?environment=staging"), None));
        urls.push((format!("{base}/zoomapp/oauth/callback"), None));
        urls.push((
            format!("{base}/zoomapp/oauth/callback?code=x&state=unknown"),
            None,
        ));
        urls.push((
            format!("{base}/zoomapp/oauth/callback?error=access_denied"),
            None,
        ));
        let mut html = 0;
        for (url, context) in &urls {
            let mut request = client.get(url);
            if let Some(c) = context {
                request = request.header("x-zoom-app-context", c);
            }
            let response = request.send().await.expect("request");
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(
                content_type.starts_with("text/html"),
                "{url}: {content_type}"
            );
            html += 1;
            assert_eq!(
                owasp::check(response.headers()),
                Vec::<String>::new(),
                "{backend:?} {url}"
            );
        }
        assert!(html >= 7);
        // The other files: nosniff, their own type, no HTML headers needed.
        for a in assets::ASSETS.iter().filter(|a| !a.is_html()) {
            let r = client
                .get(format!("{base}/zoomapp/{}", a.path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", a.path);
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            assert_eq!(r.headers()[CONTENT_TYPE], a.content_type);
            // Revalidation: the same bytes are not sent twice.
            let tag = r.headers()["etag"].clone();
            let again = client
                .get(format!("{base}/zoomapp/{}", a.path))
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{}", a.path);
        }
        // Compressed for clients that take gzip; the versioned SDK cached for a year.
        let sdk = client
            .get(format!("{base}/zoomapp/{}", assets::VENDORED_SDK_PATH))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(sdk.headers()["content-encoding"], "gzip");
        assert!(sdk.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let gz = sdk.bytes().await.unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, assets::get(assets::VENDORED_SDK_PATH).unwrap().body);
        assert!(
            gz.len() * 4 < plain.len(),
            "{} of {}",
            gz.len(),
            plain.len()
        );
        let missing = client
            .get(format!("{base}/zoomapp/nope.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let bare = client.get(format!("{base}/zoomapp")).send().await.unwrap();
        assert_eq!(bare.headers()[LOCATION], "/zoomapp/");
    }
}

// ---- the app context ----------------------------------------------------------------------------------------------

fn claims(aud: &str, uid: Option<&str>, exp_offset_ms: i64) -> AppContext {
    let now = zoom_sim::now_ms();
    AppContext {
        typ: Some("panel".into()),
        uid: uid.map(str::to_string),
        aud: Some(aud.into()),
        iss: Some(ISSUER.into()),
        ts: Some(now),
        exp: Some(now + exp_offset_ms),
        ..Default::default()
    }
}

async fn post_session(base: &str, body: &Value) -> (u16, Value, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/zoomapp/api/session"))
        .json(body)
        .send()
        .await
        .expect("request");
    let cookie = session_cookie(r.headers());
    (
        r.status().as_u16(),
        r.json().await.unwrap_or(Value::Null),
        cookie,
    )
}

#[tokio::test]
async fn the_context_header_and_the_pwa_path_open_sessions_and_bad_contexts_are_refused() {
    for backend in backends() {
        let setup = Setup::start(&backend, sim_config(), |_| {}).await;
        let base = setup.server.base.clone();
        let agent = setup.agent(0);
        let client = setup.client();

        // The desktop client: the Home URL request carries the header; the session comes with the page.
        let home = client
            .get(format!("{base}/zoomapp/"))
            .header("x-zoom-app-context", setup.context(PROD_ID, &agent))
            .send()
            .await
            .unwrap();
        assert_eq!(home.status(), 200);
        let set = session_cookie(home.headers()).expect("Set-Cookie on the Home URL");
        for attribute in [
            "Path=/zoomapp/",
            "HttpOnly",
            "Secure",
            "SameSite=None",
            "Partitioned",
            "Max-Age=",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let cookie = set.split(';').next().unwrap().to_string();
        let session: Value = client
            .get(format!("{base}/zoomapp/api/session"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(session["environment"], "production");
        assert_eq!(session["oauth"]["connected"], false);
        assert_eq!(session["oauth"]["pkce"], "plain");
        assert_eq!(session["checklist"][0]["id"], "verified");
        assert!(
            !session.to_string().contains(&agent),
            "the user id is not sent back"
        );

        // The PWA client: no header; getAppContext() posted. The development app's context opens a development
        // session: `aud` picks the credentials.
        let dev = setup.panel(DEV_ID, &agent).await;
        assert_eq!(dev.session["environment"], "development");
        // base64 with padding and the standard alphabet works too.
        let raw = URL_SAFE_NO_PAD
            .decode(setup.context(DEV_ID, &agent))
            .unwrap();
        let standard = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert_eq!(
            post_session(&base, &json!({ "context": standard })).await.0,
            200
        );

        // Refusals: each with its reason, never a session.
        let valid = setup.context(PROD_ID, &agent);
        let mut tampered = URL_SAFE_NO_PAD.decode(&valid).unwrap();
        let last = tampered.len() - 20;
        tampered[last] ^= 0x40;
        let key = ContextKey::from_client_secret(PROD_SECRET);
        let cases: Vec<(&str, String, u16, &str)> = vec![
            (
                "expired",
                encode(&claims(PROD_ID, Some(&agent), -60_000), PROD_SECRET),
                401,
                "expired",
            ),
            (
                "crossed audience",
                encode(&claims(PROD_ID, Some(&agent), 60_000), DEV_SECRET),
                401,
                "audience",
            ),
            (
                "unknown app",
                encode(
                    &claims("someoneElse", Some(&agent), 60_000),
                    "another-secret",
                ),
                401,
                "decrypt",
            ),
            (
                "tampered",
                URL_SAFE_NO_PAD.encode(&tampered),
                401,
                "decrypt",
            ),
            (
                "truncated",
                URL_SAFE_NO_PAD.encode(&raw[..raw.len() / 2]),
                401,
                "truncated",
            ),
            (
                "cut tag",
                URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(&valid).unwrap()[..raw.len() - 3]),
                401,
                "tag_length",
            ),
            ("not base64", "!!!not base64!!!".into(), 401, "base64"),
            (
                "guest",
                encode(&claims(PROD_ID, None, 60_000), PROD_SECRET),
                401,
                "no_user",
            ),
            (
                "wrong issuer",
                {
                    let mut c = claims(PROD_ID, Some(&agent), 60_000);
                    c.iss = Some("evil.example".into());
                    encode(&c, PROD_SECRET)
                },
                401,
                "issuer",
            ),
            (
                "not JSON inside",
                URL_SAFE_NO_PAD.encode(seal(b"nope", &key, &[1; 12], &[]).unwrap()),
                401,
                "claims",
            ),
            ("oversized", "A".repeat(4097), 401, "too_long"),
            ("empty", String::new(), 401, "empty"),
        ];
        for (name, context, status, code) in cases {
            let (got, body, cookie) = post_session(&base, &json!({ "context": context })).await;
            assert_eq!(
                (got, body["code"].as_str()),
                (status, Some(code)),
                "{backend:?} {name}: {body}"
            );
            assert!(cookie.is_none(), "{name}");
            // The same on the Home URL: the page, but no session.
            let home = client
                .get(format!("{base}/zoomapp/"))
                .header("x-zoom-app-context", context.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(home.status(), 200, "{name}");
            assert!(session_cookie(home.headers()).is_none(), "{name}");
        }
        let (status, _, _) = post_session(&base, &json!({ "context": "A".repeat(9000) })).await;
        assert_eq!(status, 413);
        // No session, a forged cookie, a write without JSON.
        for cookie in [None, Some("zcc_zoomapp=forged")] {
            let mut r = client.get(format!("{base}/zoomapp/api/session"));
            if let Some(c) = cookie {
                r = r.header(COOKIE, c);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 401);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "no_session");
        }
        let form = client
            .put(format!("{base}/zoomapp/api/engagements/E1/workspace"))
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("notes=x")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 415);
    }
}

// ---- OAuth --------------------------------------------------------------------------------------------------------

/// Rewrites the Marketplace redirect URL's origin to the bridge's loopback address.
fn to_bridge(location: &str, base: &str) -> String {
    location.replacen("https://bridge.example", base, 1)
}

/// Runs the web install flow for the simulator's signed-in user; returns the deeplink.
async fn web_install(setup: &Setup, environment: Option<&str>) -> String {
    let client = setup.client();
    let base = &setup.server.base;
    let start = match environment {
        Some(e) => format!("{base}/zoomapp/install?environment={e}"),
        None => format!("{base}/zoomapp/install"),
    };
    let to_zoom = client.get(start).send().await.unwrap();
    assert_eq!(to_zoom.status(), 302, "{:?}", to_zoom.text().await);
    let authorize = url::Url::parse(to_zoom.headers()[LOCATION].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(authorize.path(), "/oauth/authorize");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], REDIRECT_URL);
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["state"].len(), 43);
    let back = client.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let callback = to_bridge(back.headers()[LOCATION].to_str().unwrap(), base);
    let done = client.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    let deeplink = done.headers()[LOCATION].to_str().unwrap().to_string();
    // The state was good once.
    let again = client.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400);
    deeplink
}

#[tokio::test]
async fn the_web_install_flow_with_pkce_stores_sealed_tokens_and_deeplinks_into_the_client() {
    for backend in backends() {
        let setup = Setup::start(&backend, sim_config(), |_| {}).await;
        let agent = setup.agent(0);
        let deeplink = web_install(&setup, None).await;
        assert!(deeplink.starts_with("zoommtg://"), "{deeplink}");
        assert!(
            deeplink.contains(PROD_ID),
            "production is the default: {deeplink}"
        );
        let stats = setup.sim.zoom_app_stats();
        assert_eq!(
            (stats.code_exchanges, stats.users_me, stats.deeplinks),
            (1, 1, 1)
        );
        let store = setup.server.server.as_ref().unwrap().store();
        let row = store
            .zoomapp_tokens(&agent, "production")
            .await
            .unwrap()
            .expect("tokens stored");
        assert!(row.sealed.starts_with("v1."), "sealed at rest");
        assert!(row.expires_at > zoom_sim::now_ms() && row.refresh_at < row.expires_at);
        // The user's panel now says connected.
        let panel = setup.panel(PROD_ID, &agent).await;
        assert_eq!(panel.session["oauth"]["connected"], true);
        // The development credentials side by side.
        let dev_link = web_install(&setup, Some("development")).await;
        assert!(dev_link.contains(DEV_ID));
        assert!(store
            .zoomapp_tokens(&agent, "development")
            .await
            .unwrap()
            .is_some());
        // A forged state, and Zoom's error answer.
        let client = setup.client();
        let base = &setup.server.base;
        let forged = client
            .get(format!(
                "{base}/zoomapp/oauth/callback?code=abc&state=forged"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 400);
        assert!(forged.text().await.unwrap().contains("state"));
    }
}

#[tokio::test]
async fn in_client_oauth_with_either_pkce_method() {
    for backend in backends() {
        for (method, pkce) in [("plain", InClientPkce::Plain), ("S256", InClientPkce::S256)] {
            let setup =
                Setup::start(&backend, sim_config(), |c| c.zoom_app.in_client_pkce = pkce).await;
            let agent = setup.agent(1);
            let panel = setup.panel(PROD_ID, &agent).await;
            assert_eq!(panel.session["oauth"]["pkce"], method);
            let (status, options) = panel
                .send(reqwest::Method::POST, "api/oauth/authorize", &json!({}))
                .await;
            assert_eq!(status, 200, "{options}");
            let challenge = options["codeChallenge"].as_str().unwrap().to_string();
            let state = options["state"].as_str().unwrap().to_string();
            // What zoomSdk.authorize does in the client, then onAuthorized forwarded by the panel.
            let code = setup
                .sim
                .in_client_authorize(PROD_ID, &agent, &challenge, method, HOME_URL)
                .unwrap();
            let event = json!({"code": code, "redirectUri": HOME_URL, "result": true, "state": state,
                               "timestamp": 1, "href": HOME_URL});
            let (status, body) = panel
                .send(reqwest::Method::POST, "api/oauth/authorized", &event)
                .await;
            assert_eq!(
                (status, &body),
                (200, &json!({"connected": true})),
                "{method}"
            );
            let (_, session) = panel.get("api/session").await;
            assert_eq!(session["oauth"]["connected"], true);
            // The state is spent.
            let (status, body) = panel
                .send(reqwest::Method::POST, "api/oauth/authorized", &event)
                .await;
            assert_eq!((status, body["code"].as_str()), (400, Some("state")));
            // A state that is not the session's.
            panel
                .send(reqwest::Method::POST, "api/oauth/authorize", &json!({}))
                .await;
            let forged =
                json!({"code": "x", "redirectUri": HOME_URL, "result": true, "state": "other"});
            let (status, body) = panel
                .send(reqwest::Method::POST, "api/oauth/authorized", &forged)
                .await;
            assert_eq!((status, body["code"].as_str()), (400, Some("state")));
            // Zoom expecting the other method than the one configured: the exchange fails, clearly.
            let (_, options) = panel
                .send(reqwest::Method::POST, "api/oauth/authorize", &json!({}))
                .await;
            let other = if method == "plain" { "S256" } else { "plain" };
            let code = setup
                .sim
                .in_client_authorize(
                    PROD_ID,
                    &agent,
                    options["codeChallenge"].as_str().unwrap(),
                    other,
                    HOME_URL,
                )
                .unwrap();
            let event = json!({"code": code, "redirectUri": HOME_URL, "result": true,
                               "state": options["state"]});
            let (status, body) = panel
                .send(reqwest::Method::POST, "api/oauth/authorized", &event)
                .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (502, Some("zoom_oauth")),
                "{body}"
            );
            assert!(
                body["detail"].as_str().unwrap().contains("code_verifier"),
                "{body}"
            );
            // Another user's authorization is not stored for this session.
            let (_, options) = panel
                .send(reqwest::Method::POST, "api/oauth/authorize", &json!({}))
                .await;
            let code = setup
                .sim
                .in_client_authorize(
                    PROD_ID,
                    &setup.agent(2),
                    options["codeChallenge"].as_str().unwrap(),
                    method,
                    HOME_URL,
                )
                .unwrap();
            let event = json!({"code": code, "redirectUri": HOME_URL, "result": true, "state": options["state"]});
            let (status, body) = panel
                .send(reqwest::Method::POST, "api/oauth/authorized", &event)
                .await;
            assert_eq!((status, body["code"].as_str()), (409, Some("other_user")));
        }
        // Switched off: the panel offers no "Connect" and the bridge starts no flow.
        let setup = Setup::start(&backend, sim_config(), |c| {
            c.zoom_app.in_client_oauth = false
        })
        .await;
        let panel = setup.panel(PROD_ID, &setup.agent(1)).await;
        assert_eq!(panel.session["oauth"]["in_client"], false);
        let (status, body) = panel
            .send(reqwest::Method::POST, "api/oauth/authorize", &json!({}))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("in_client_oauth"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire_with_rotation() {
    for backend in backends() {
        let sim_cfg = SimServerConfig {
            user_token_ttl: Duration::from_secs(3),
            ..sim_config()
        };
        let setup = Setup::start(&backend, sim_cfg, |_| {}).await;
        let agent = setup.agent(0);
        web_install(&setup, None).await;
        let store = setup.server.server.as_ref().unwrap().store();
        let first = store
            .zoomapp_tokens(&agent, "production")
            .await
            .unwrap()
            .unwrap();
        // Due at half its three-second life (the configured ten-minute margin is longer than the token).
        assert!(first.refresh_at - first.obtained_at <= 1_600, "{first:?}");
        // Two refreshes in a row: the second needs the refresh token the first one got (Zoom rotates them).
        wait_for("two refreshes", async || {
            (setup.sim.zoom_app_stats().refreshes >= 2).then_some(())
        })
        .await;
        let now = store
            .zoomapp_tokens(&agent, "production")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(now.sealed, first.sealed);
        assert!(now.refreshed_at.is_some());
        assert_eq!(now.refresh_failures, 0);
        assert_eq!(
            setup.sim.zoom_app_stats().token_refusals,
            0,
            "no refresh token was used twice"
        );
        // The user removes the app at Zoom: the next refresh is refused and the useless tokens are deleted.
        setup
            .sim
            .deauthorize(&DeauthorizeRequest {
                client_id: PROD_ID.into(),
                user_id: agent.clone(),
                url: "http://127.0.0.1:9/unreachable".into(),
                secret_token: APP_SECRET_TOKEN.into(),
                user_data_retention: false,
            })
            .await
            .ok();
        wait_for("revoked tokens deleted", async || {
            store
                .zoomapp_tokens(&agent, "production")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_deauthorization_notice_deletes_that_users_tokens_and_data() {
    for backend in backends() {
        let setup = Setup::start(&backend, sim_config(), |_| {}).await;
        let (gone, kept) = (setup.agent(0), setup.agent(1));
        web_install(&setup, None).await; // the sim's signed-in user is agent 0
        let panel = setup.panel(PROD_ID, &gone).await;
        let other = setup.panel(PROD_ID, &kept).await;
        assert_eq!(
            panel
                .put_workspace("E1", &write("mine", 10, "d1", 1))
                .await
                .0,
            200
        );
        assert_eq!(
            other
                .put_workspace("E1", &write("theirs", 10, "d2", 1))
                .await
                .0,
            200
        );
        let url = format!("{}/zoomapp/deauthorize", setup.server.base);
        // Unsigned or wrongly signed notices change nothing.
        let unsigned = reqwest::Client::new()
            .post(&url)
            .json(&json!({"event": "app_deauthorized", "payload": {"user_id": gone}}))
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), 401);
        let wrong = DeauthorizeRequest {
            client_id: PROD_ID.into(),
            user_id: gone.clone(),
            url: url.clone(),
            secret_token: "not-the-app-secret-token".into(),
            user_data_retention: false,
        };
        assert_eq!(setup.sim.deauthorize(&wrong).await.unwrap(), 401);
        let store = setup.server.server.as_ref().unwrap().store();
        assert!(store
            .zoomapp_tokens(&gone, "production")
            .await
            .unwrap()
            .is_some());
        // Zoom's URL validation of the endpoint.
        let body =
            br#"{"event":"endpoint.url_validation","payload":{"plainToken":"abc"},"event_ts":1}"#;
        let ts = crate::common::now_secs();
        let validation: Value = reqwest::Client::new()
            .post(&url)
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(APP_SECRET_TOKEN.as_bytes(), ts, body),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(validation["plainToken"], "abc");
        assert_eq!(validation["encryptedToken"].as_str().unwrap().len(), 64);
        // The real notice.
        let notice = DeauthorizeRequest {
            secret_token: APP_SECRET_TOKEN.into(),
            ..wrong
        };
        assert_eq!(setup.sim.deauthorize(&notice).await.unwrap(), 200);
        assert!(store
            .zoomapp_tokens(&gone, "production")
            .await
            .unwrap()
            .is_none());
        assert!(store
            .zoomapp_workspace(&gone, "E1")
            .await
            .unwrap()
            .is_none());
        assert_eq!(panel.get("api/session").await.0, 401, "the session is gone");
        // The other user is untouched.
        assert_eq!(
            other.get("api/engagements/E1/workspace").await.1["notes"],
            "theirs"
        );
        // With data retention granted, only the tokens go.
        let panel = setup.panel(PROD_ID, &kept).await;
        web_install_for(&setup, &kept).await;
        let retained = DeauthorizeRequest {
            client_id: PROD_ID.into(),
            user_id: kept.clone(),
            url,
            secret_token: APP_SECRET_TOKEN.into(),
            user_data_retention: true,
        };
        assert_eq!(setup.sim.deauthorize(&retained).await.unwrap(), 200);
        assert!(store
            .zoomapp_tokens(&kept, "production")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            panel.get("api/engagements/E1/workspace").await.1["notes"],
            "theirs"
        );
    }
}

/// The install flow for a given user (the simulator's `sim_user`).
async fn web_install_for(setup: &Setup, user: &str) {
    let client = setup.client();
    let base = &setup.server.base;
    let to_zoom = client
        .get(format!("{base}/zoomapp/install"))
        .send()
        .await
        .unwrap();
    let authorize = format!(
        "{}&sim_user={user}",
        to_zoom.headers()[LOCATION].to_str().unwrap()
    );
    let back = client.get(authorize).send().await.unwrap();
    let callback = to_bridge(back.headers()[LOCATION].to_str().unwrap(), base);
    assert_eq!(client.get(callback).send().await.unwrap().status(), 302);
}

// ---- workspaces -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn workspace_writes_are_idempotent_and_order_insensitive() {
    for backend in backends() {
        let setup = Setup::start(&backend, sim_config(), |_| {}).await;
        let panel = setup.panel(PROD_ID, &setup.agent(0)).await;
        let writes = [
            write("a", 100, "laptop", 1),
            write("ab", 200, "laptop", 2),
            write("abc", 300, "phone", 1),
            write("abcd", 300, "tablet", 1),
        ];
        let mut finalize = write("final words", 250, "laptop", 3);
        finalize["end_time"] = json!(1_795_251_700_000i64);
        // Two engagements get the same writes in different orders, with repeats; a finalize in the middle.
        let orders: [&[usize]; 2] = [&[0, 1, 2, 3, 4, 3, 0], &[3, 4, 2, 2, 0, 1, 4]];
        let mut finals = Vec::new();
        for (n, order) in orders.iter().enumerate() {
            let id = format!("order-{n}");
            for &i in *order {
                let (status, body) = if i == 4 {
                    panel.finalize(&id, &finalize).await
                } else {
                    panel.put_workspace(&id, &writes[i]).await
                };
                assert!(status == 200 || status == 409, "{status} {body}");
            }
            let (status, mut stored) = panel.get(&format!("api/engagements/{id}/workspace")).await;
            assert_eq!(status, 200);
            stored.as_object_mut().unwrap().remove("engagement_id");
            finals.push(stored);
        }
        assert_eq!(
            finals[0], finals[1],
            "{backend:?}: order changed the result"
        );
        assert_eq!(finals[0]["notes"], "final words");
        assert_eq!(finals[0]["finalized"], true);
        assert_eq!(finals[0]["end_time"], 1_795_251_700_000i64);

        // Outcomes: applied, unchanged on a retry, stale when older, 409 after the end.
        let id = "outcomes";
        assert_eq!(
            panel.put_workspace(id, &writes[1]).await.1["outcome"],
            "applied"
        );
        assert_eq!(
            panel.put_workspace(id, &writes[1]).await.1["outcome"],
            "unchanged"
        );
        let (status, body) = panel.put_workspace(id, &writes[0]).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("stale")));
        assert_eq!(body["workspace"]["notes"], "ab");
        assert_eq!(panel.finalize(id, &finalize).await.1["outcome"], "applied");
        let (status, body) = panel.put_workspace(id, &writes[3]).await;
        assert_eq!((status, body["outcome"].as_str()), (409, Some("finalized")));
        assert_eq!(body["workspace"]["notes"], "final words");

        // Refusals.
        assert_eq!(panel.get("api/engagements/never/workspace").await.0, 404);
        assert_eq!(panel.put_workspace("a%20b", &writes[0]).await.0, 400);
        let mut long = writes[0].clone();
        long["notes"] = json!("x".repeat(64 * 1024 + 1));
        assert_eq!(panel.put_workspace("E1", &long).await.1["code"], "invalid");
        let mut bad = writes[0].clone();
        bad["version"]["device_id"] = json!("has space");
        assert_eq!(panel.put_workspace("E1", &bad).await.0, 422);
        assert_eq!(
            panel.put_workspace("E1", &json!({"notes": 5})).await.1["code"],
            "bad_json"
        );
        // Another agent never sees this one's workspace.
        let other = setup.panel(PROD_ID, &setup.agent(1)).await;
        assert_eq!(other.get("api/engagements/order-0/workspace").await.0, 404);
    }
}

fn engagement_events(id: &str, agent: &str, number: &str, t0: i64) -> Vec<Vec<u8>> {
    let object = |extra: Value| {
        let mut o = json!({"engagement_id": id, "channel": "voice", "engagement_direction": "inbound",
                           "user_id": agent, "user_display_name": "Agent One", "cc_queue_id": "Q1",
                           "queue_name": "Billing", "consumer_number": number, "consumer_id": format!("c-{number}")});
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
            t0 + 5_000,
            object(json!({})),
        ),
        envelope(
            "contact_center.engagement_user_hold",
            t0 + 20_000,
            object(json!({})),
        ),
        envelope(
            "contact_center.engagement_user_unhold",
            t0 + 40_000,
            object(json!({})),
        ),
        envelope(
            "contact_center.engagement_disposition_added",
            t0 + 55_000,
            object(json!({"disposition_id": "D1", "disposition_name": "Resolved"})),
        ),
        envelope(
            "contact_center.engagement_ended",
            t0 + 60_000,
            object(json!({"date_time_ms": zoom_sim::iso_time_ms(t0 + 60_000)})),
        ),
    ]
}

#[tokio::test]
async fn a_finalized_workspace_is_part_of_the_record_and_of_what_sinks_receive() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let setup = Setup::start(&backend, sim_config(), |c| {
            c.sinks.push(crate::delivery::http_sink(
                "hook",
                &format!("http://{}/hook", receiver.addr),
                &["engagement.completed", "engagement.updated"],
            ));
            c.delivery.settle_seconds = 0;
            c.delivery.coalesce_ms = 50;
            c.delivery.poll_ms = 100;
        })
        .await;
        let agent = setup.agent(0);
        let t0 = zoom_sim::now_ms() - 120_000;
        for body in engagement_events("REC1", &agent, "+14155550101", t0) {
            assert_eq!(setup.server.post_webhook(&body).await.status(), 200);
        }
        let panel = setup.panel(PROD_ID, &agent).await;
        panel
            .put_workspace("REC1", &write("draft", 10, "d1", 1))
            .await;
        let mut fin = json!({
            "notes": "Refund approved for order 1234", "tags": ["refund", "vip"],
            "checklist": {"verified": true, "resolved": true, "follow_up": false},
            "version": {"client_ts": 20, "device_id": "d1", "rev": 2}, "end_time": t0 + 60_000
        });
        let (status, body) = panel.finalize("REC1", &fin).await;
        assert_eq!(status, 200, "{body}");
        let record = setup.server.get_json("/api/v1/engagements/REC1").await;
        let ws = &record["agent_workspaces"];
        assert_eq!(ws.as_array().unwrap().len(), 1, "{record}");
        assert_eq!(ws[0]["user_id"], agent.as_str());
        assert_eq!(ws[0]["notes"], "Refund approved for order 1234");
        assert_eq!(ws[0]["tags"], json!(["refund", "vip"]));
        assert_eq!(ws[0]["checklist"]["resolved"], true);
        assert!(record["sources"]
            .as_array()
            .unwrap()
            .contains(&json!("zoomapp")));
        assert!(record["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "zoomapp.workspace_finalized"));
        // A retry logs nothing new.
        let before = setup.server.stats().await;
        assert_eq!(panel.finalize("REC1", &fin).await.1["outcome"], "unchanged");
        let after = setup.server.stats().await;
        assert_eq!(after["events"], before["events"]);
        assert_eq!(
            after["duplicates"].as_i64().unwrap(),
            before["duplicates"].as_i64().unwrap() + 1
        );
        // A second device's later finalize wins, in the record too.
        fin["version"] = json!({"client_ts": 30, "device_id": "d2", "rev": 1});
        fin["notes"] = json!("Refund approved for order 1234; customer called back");
        assert_eq!(panel.finalize("REC1", &fin).await.1["outcome"], "applied");
        let record = setup.server.get_json("/api/v1/engagements/REC1").await;
        assert_eq!(
            record["agent_workspaces"][0]["notes"],
            "Refund approved for order 1234; customer called back"
        );
        // Completed (notes aside, it has a disposition and no media; settled by the long wait or not) and sent.
        let delivered = wait_for("the record with the workspace at the sink", async || {
            receiver.received().into_iter().find(|r| {
                r.body["data"]["engagement_id"] == "REC1"
                    && r.body["data"]["agent_workspaces"][0]["notes"]
                        == "Refund approved for order 1234; customer called back"
            })
        })
        .await;
        assert!(delivered.signature_ok);
        // The record is a projection of the log: a rebuild computes the same.
        let store = setup.server.server.as_ref().unwrap().store();
        let report =
            zcc_bridge::rebuild::rebuild(&*store, &zcc_bridge::sources::Decoder::default())
                .await
                .unwrap();
        assert_eq!((report.changed, report.unparseable), (0, 0), "{report:?}");
    }
}

// ---- the panel's engagement context -----------------------------------------------------------------------------

#[tokio::test]
async fn the_panel_shows_customer_history_activity_and_deliveries_to_the_agent_only() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let contacts = tempfile::NamedTempFile::with_suffix(".csv").unwrap();
        std::fs::write(
            contacts.path(),
            "name,phone,email,company,crm_url\nAlice Example,+1 (415) 555-0101,alice@example.com,ACME,https://crm.example/contacts/1\n",
        )
        .unwrap();
        let path = contacts.path().to_path_buf();
        let setup = Setup::start(&backend, sim_config(), |c| {
            c.contacts.file = Some(path);
            c.sinks.push(crate::delivery::http_sink(
                "hook",
                &format!("http://{}/hook", receiver.addr),
                &["engagement.completed"],
            ));
            c.delivery.settle_seconds = 0;
            c.delivery.coalesce_ms = 50;
            c.delivery.poll_ms = 100;
        })
        .await;
        let agent = setup.agent(0);
        let t0 = zoom_sim::now_ms() - 3_600_000;
        for (id, t) in [("OLD1", t0), ("NOW1", t0 + 1_800_000)] {
            for body in engagement_events(id, &agent, "+14155550101", t) {
                assert_eq!(setup.server.post_webhook(&body).await.status(), 200);
            }
        }
        let panel = setup.panel(PROD_ID, &agent).await;
        let (status, c) = wait_for("delivered", async || {
            let (s, c) = panel.get("api/engagements/NOW1/context").await;
            (c["deliveries"][0]["state"] == "delivered").then_some((s, c))
        })
        .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["customer"]["name"], "Alice Example");
        assert_eq!(c["customer"]["crm_url"], "https://crm.example/contacts/1");
        assert_eq!(c["previous_engagements"][0]["engagement_id"], "OLD1");
        assert_eq!(c["previous_engagements"][0]["disposition"], "Resolved");
        assert_eq!(c["previous_engagements"].as_array().unwrap().len(), 1);
        let kinds: Vec<&str> = c["activity"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        assert!(
            kinds.contains(&"held") && kinds.contains(&"resumed"),
            "{kinds:?}"
        );
        assert_eq!(c["deliveries"][0]["sink"], "hook");
        assert_eq!(c["queue_name"], "Billing");
        // Another agent, an unknown engagement.
        let stranger = setup.panel(PROD_ID, &setup.agent(2)).await;
        let (status, body) = stranger.get("api/engagements/NOW1/context").await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
        assert_eq!(stranger.get("api/engagements/NOW1/stream").await.0, 403);
        assert_eq!(panel.get("api/engagements/UNKNOWN/context").await.0, 404);

        // Live activity of this engagement only.
        let mut stream = reqwest::Client::new()
            .get(format!(
                "{}/zoomapp/api/engagements/NOW1/stream",
                setup.server.base
            ))
            .header(COOKIE, &panel.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let hold = |id: &str| {
            envelope(
                "contact_center.engagement_user_hold",
                zoom_sim::now_ms(),
                json!({"engagement_id": id, "user_id": agent, "cc_queue_id": "Q1"}),
            )
        };
        setup.server.post_webhook(&hold("ELSEWHERE")).await;
        setup.server.post_webhook(&hold("NOW1")).await;
        let mut text = String::new();
        while !text.contains("event: held") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("more");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            text.contains("\"engagement_id\":\"NOW1\"") && !text.contains("ELSEWHERE"),
            "{text}"
        );
    }
}

// ---- the manifest -----------------------------------------------------------------------------------------------

#[test]
fn zoomapp_manifest_prints_the_contact_center_manifest() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
            .args(args)
            .env(
                "ZCC_BRIDGE_ZOOM_APP__REDIRECT_URL",
                "https://zcc.example.com/zoomapp/oauth/callback",
            )
            .env("ZCC_BRIDGE_ZOOM_APP__PRODUCTION__CLIENT_ID", "prodId")
            .env(
                "ZCC_BRIDGE_ZOOM_APP__PRODUCTION__CLIENT_SECRET",
                "prodSecret",
            )
            .output()
            .expect("run zcc-bridge")
    };
    let output = run(&["zoomapp", "manifest"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The manifest on standard output, where to paste it on standard error.
    assert!(String::from_utf8_lossy(&output.stderr).contains("Marketplace"));
    // With --json: the same document and nothing else.
    let json_output = run(&["--json", "zoomapp", "manifest"]);
    assert!(json_output.status.success());
    assert_eq!(json_output.stdout, output.stdout);
    assert!(
        json_output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&json_output.stderr)
    );
    let m: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let f = &m["manifest"]["features"];
    assert_eq!(f["products"], json!(["ZOOM_CONTACT_CENTER"]));
    assert_eq!(f["production_home_uri"], "https://zcc.example.com/zoomapp/");
    assert_eq!(f["development_home_uri"], "");
    let apis = f["in_client_feature"]["zoom_app_api"]["zoom_app_apis"]
        .as_array()
        .unwrap();
    assert!(apis.contains(&json!("onEngagementStatusChange")));
    assert_eq!(
        m["manifest"]["oauth_information"]["production_redirect_uri"],
        "https://zcc.example.com/zoomapp/oauth/callback"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("prodSecret"));
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .args(["zoomapp", "manifest"])
        .output()
        .expect("run zcc-bridge");
    // Refused: exit 1 with the reason, nothing on standard output.
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("zoom_app.redirect_url"));
}
