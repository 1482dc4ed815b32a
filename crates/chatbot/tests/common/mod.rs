//! Helpers shared by the integration tests: an axum fake on 127.0.0.1 and neutral requests.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::Router;
use chatbot::model::{BotRequest, BotUser, TurnKind};

/// A server running `app` on a free loopback port; stopped when dropped.
pub struct Fake {
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
}

impl Fake {
    pub async fn start(app: Router) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        Self::start_on(listener, app)
    }

    /// Serves `app` on a listener bound earlier (when the URL is needed before the app exists).
    pub fn start_on(listener: tokio::net::TcpListener, app: Router) -> Fake {
        let addr = listener.local_addr().expect("local addr");
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake server");
        });
        Fake { addr, handle }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub fn request(kind: TurnKind, text: &str) -> BotRequest {
    BotRequest {
        conversation_id: "sess-1".into(),
        message_id: "sess-1-m1".into(),
        kind,
        text: text.into(),
        user: BotUser {
            id: "user@example.com".into(),
            anonymous: false,
            email: Some("user@example.com".into()),
            phone: None,
        },
        language: Some("en-US".into()),
        variables: [(
            "global_system.Engagement.locale".to_owned(),
            "en-us".to_owned(),
        )]
        .into_iter()
        .collect(),
        history: vec![],
        backend_state: None,
    }
}

pub fn http() -> reqwest::Client {
    chatbot::http_outcome::http_client(std::time::Duration::from_secs(5)).expect("client")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}
