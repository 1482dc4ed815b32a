//! The `rasa` backend against a fake of Rasa's REST channel, built from Rasa's documented contract
//! (`POST /webhooks/rest/webhook` with `{sender, message}` → `[{recipient_id, text | image | buttons | custom}]`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chatbot::backends::rasa::{RasaBackend, RasaConfig};
use chatbot::backends::{BackendError, BotBackend};
use chatbot::model::{Choice, Reply, TurnKind};
use common::{http, request, Fake};
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<Value>>>;

async fn rest_webhook(State(seen): State<Seen>, Json(body): Json<Value>) -> Response {
    seen.lock().unwrap().push(body.clone());
    let (Some(sender), Some(message)) = (body["sender"].as_str(), body["message"].as_str()) else {
        return (StatusCode::BAD_REQUEST, "sender and message are required").into_response();
    };
    let r = |v: Value| {
        let mut v = v;
        v["recipient_id"] = json!(sender);
        v
    };
    let out = match message {
        "/session_start" => json!([r(json!({"text": "Hey! How can I help?"}))]),
        "options" => json!([r(json!({"text": "Pick one", "buttons": [
            {"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}))]),
        "picture" => json!([
            r(json!({"text": "Here you go"})),
            r(json!({"image": "https://img.example/cat.png"}))
        ]),
        "human" => json!([
            r(json!({"text": "Transferring you"})),
            r(
                json!({"custom": {"handover": {"reason": "asked", "queue": "billing", "context": {"order": "A1"}}}})
            )
        ]),
        "bye" => json!([
            r(json!({"text": "Bye!"})),
            r(json!({"custom": {"end_conversation": true}}))
        ]),
        "weird" => json!([
            r(json!({"custom": {"carousel": []}})),
            r(json!({"attachment": {"type": "video"}}))
        ]),
        "silence" => json!([]),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!([])
        }
        "crash" => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "garbage" => return (StatusCode::OK, Json(json!({"not": "an array"}))).into_response(),
        other => json!([r(json!({"text": format!("You said: {other}")}))]),
    };
    Json(out).into_response()
}

async fn setup() -> (RasaBackend, Seen, Fake) {
    let seen: Seen = Arc::default();
    let fake = Fake::start(
        Router::new()
            .route("/webhooks/rest/webhook", post(rest_webhook))
            .with_state(seen.clone()),
    )
    .await;
    let config: RasaConfig =
        serde_json::from_value(json!({"url": format!("{}/", fake.url()), "timeout_ms": 500}))
            .unwrap();
    (RasaBackend::new(config, http()).unwrap(), seen, fake)
}

#[tokio::test]
async fn maps_text_buttons_images_handover_end() {
    let (bot, seen, _fake) = setup().await;
    let r = bot.converse(&request(TurnKind::Start, "")).await.unwrap();
    assert_eq!(r.replies, vec![Reply::text("Hey! How can I help?")]);
    let r = bot
        .converse(&request(TurnKind::Message, "options"))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![Reply::QuickReplies {
            title: Some("Pick one".into()),
            options: vec![
                Choice {
                    label: "Yes".into(),
                    value: "/affirm".into()
                },
                Choice {
                    label: "No".into(),
                    value: "/deny".into()
                }
            ]
        }]
    );
    let r = bot
        .converse(&request(TurnKind::Message, "picture"))
        .await
        .unwrap();
    assert_eq!(
        r.replies[1],
        Reply::Image {
            url: "https://img.example/cat.png".into(),
            alt: None
        }
    );
    let r = bot
        .converse(&request(TurnKind::Message, "human"))
        .await
        .unwrap();
    let h = r.handover.unwrap();
    assert_eq!(
        (h.reason.as_deref(), h.queue.as_deref()),
        (Some("asked"), Some("billing"))
    );
    assert_eq!(h.context.get("order"), Some(&json!("A1")));
    let r = bot
        .converse(&request(TurnKind::Message, "bye"))
        .await
        .unwrap();
    assert!(r.end.is_some());
    assert_eq!(r.replies, vec![Reply::text("Bye!")]);
    let r = bot
        .converse(&request(TurnKind::Message, "weird"))
        .await
        .unwrap();
    assert_eq!((r.replies.len(), r.unmapped), (0, 2));
    assert!(bot
        .converse(&request(TurnKind::Message, "silence"))
        .await
        .unwrap()
        .replies
        .is_empty());
    // The end of a conversation is not sent to Rasa.
    let before = seen.lock().unwrap().len();
    bot.converse(&request(TurnKind::End, "")).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), before);
    // What Rasa received: the conversation as sender, the start intent, metadata.
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["sender"], "sess-1");
    assert_eq!(seen[0]["message"], "/session_start");
    assert_eq!(seen[1]["metadata"]["language"], "en-US");
    assert_eq!(
        seen[1]["metadata"]["variables"]["global_system.Engagement.locale"],
        "en-us"
    );
}

#[tokio::test]
async fn errors_timeouts_and_malformed_answers() {
    let (bot, _, _fake) = setup().await;
    let e = bot
        .converse(&request(TurnKind::Message, "crash"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Status { status: 500, .. }) && e.is_retryable(),
        "{e:?}"
    );
    let e = bot
        .converse(&request(TurnKind::Message, "garbage"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Malformed(_)) && !e.is_retryable(),
        "{e:?}"
    );
    let e = bot
        .converse(&request(TurnKind::Message, "slow"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Timeout(_)), "{e:?}");
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config: RasaConfig =
        serde_json::from_value(json!({"url": format!("http://{closed}")})).unwrap();
    let gone = RasaBackend::new(config, http()).unwrap();
    let e = gone
        .converse(&request(TurnKind::Message, "hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Unreachable(_)), "{e:?}");
}
