//! Test harness: a real server on port 0 against a real database (a fresh SQLite file, and a fresh Postgres
//! database when `ZCC_TEST_POSTGRES_URL` points at a server, as `scripts/test.sh` arranges).
#![allow(dead_code)]

pub mod archives;
pub mod crm;
pub mod fakes;
pub mod hostile;
pub mod presence;
pub mod process;
pub mod receiver;
pub mod sim;
pub mod sse;
pub mod truth;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::Connection;
use zcc_bridge::config::{Config, Secret};
use zcc_bridge::RunningServer;

pub const SECRET: &str = "test-webhook-secret";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// SQLite always; Postgres too when configured. With `ZCC_REQUIRE_POSTGRES=1` a missing Postgres fails.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match std::env::var("ZCC_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push(Backend::Postgres(url)),
        _ => assert!(
            std::env::var("ZCC_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "ZCC_REQUIRE_POSTGRES=1 but ZCC_TEST_POSTGRES_URL is not set"
        ),
    }
    out
}

/// A fresh database for one test; the temp dir lives as long as this value.
pub struct TestDb {
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// A directory that lives as long as the database (e.g. for the media archive).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

pub async fn fresh_db(backend: &Backend) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
        Backend::Postgres(admin_url) => {
            let name = format!("zcc_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("connect to test postgres");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let _ = conn.close().await;
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("postgres url has a database");
            format!("{base}/{name}")
        }
    };
    TestDb { url, _dir: dir }
}

pub fn random_suffix() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

pub fn test_config(db_url: &str) -> Config {
    let mut config = Config::load(None).expect("default config");
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.storage.database = Secret::new(db_url);
    config.zoom.webhook_secret_token = Some(Secret::new(SECRET));
    config.admin.token = Some(Secret::new(ADMIN_TOKEN));
    config.server.shutdown_timeout_seconds = 10;
    // The archive has its own tests (tests/media.rs); elsewhere it would only add downloads to measure around.
    config.media.enabled = false;
    config
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
}

impl TestServer {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: &Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        init_test_logging();
        let db = fresh_db(backend).await;
        let mut config = test_config(&db.url);
        config.storage.media = format!("file://{}", db._dir.path().join("media").display());
        tweak(&mut config);
        let server = zcc_bridge::start(config).await.expect("server starts");
        let base = format!("http://{}", server.addr());
        Self {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            db,
        }
    }

    pub async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs `body` to `/webhooks/zoom`, signed now with `SECRET`.
    pub async fn post_webhook(&self, body: &[u8]) -> reqwest::Response {
        let ts = now_secs();
        self.post_signed(body, SECRET, ts).await
    }

    pub async fn post_signed(&self, body: &[u8], secret: &str, ts: i64) -> reqwest::Response {
        self.client
            .post(self.url("/webhooks/zoom"))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(secret.as_bytes(), ts, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json body");
        assert!(status.is_success(), "GET {path} -> {status}: {body}");
        body
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/api/v1/stats").await
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A webhook envelope as bytes.
pub fn envelope(event: &str, event_ts: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": event,
        "event_ts": event_ts,
        "payload": {"account_id": "acct", "object": object}
    }))
    .expect("serialise")
}

/// With `ZCC_TEST_LOG` set (an `EnvFilter` directive such as `zcc_bridge=debug,zoom=debug`), the servers a test
/// starts log to stderr: run with `--nocapture` to read why a test failed.
pub fn init_test_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("ZCC_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}
