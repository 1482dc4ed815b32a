//! The `http` backend against a fake service implementing our contract (`docs/chat/http-backend.md`): inline 200
//! replies of every kind with state, 204, 202 followed by a callback to the bridge, errors, timeouts, malformed
//! bodies.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chatbot::backends::http::{parse_callback, HttpBackend, HttpConfig, TurnBody};
use chatbot::backends::{BackendError, BotBackend};
use chatbot::model::{Card, CardButton, Choice, Reply, TurnKind};
use common::{http, request, Fake};
use serde_json::{json, Value};

#[derive(Default)]
struct Svc {
    turns: Vec<TurnBody>,
    auth: Vec<Option<String>>,
}

type S = Arc<Mutex<Svc>>;

async fn bot(State(s): State<S>, headers: HeaderMap, Json(turn): Json<TurnBody>) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.lock().unwrap().turns.push(turn.clone());
    s.lock().unwrap().auth.push(auth);
    match turn.text.as_str() {
        "everything" => Json(json!({
            "replies": [
                {"type": "text", "text": "Here is everything"},
                {"type": "quick_replies", "title": "Choose", "options": [{"label": "A", "value": "a"}]},
                {"type": "image", "url": "https://img.example/x.png", "alt": "x"},
                {"type": "card", "title": "T", "buttons": [{"type": "link", "label": "L", "url": "https://l"},
                                                           {"type": "postback", "label": "P", "value": "p"}]}
            ],
            "state": {"step": turn.state.as_ref().and_then(|s| s["step"].as_i64()).unwrap_or(0) + 1}
        }))
        .into_response(),
        "agent" => Json(json!({"replies": [{"type": "text", "text": "Transferring"}],
                               "handover": {"reason": "asked", "queue": "sales", "context": {"tier": "gold"}}})).into_response(),
        "bye" => Json(json!({"replies": [], "end": {"reason": "done"}})).into_response(),
        "later" => {
            let cb = turn.callback_url.clone().expect("callback_url in the turn");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let body = json!({"conversation_id": turn.conversation_id, "in_reply_to": turn.message_id,
                                  "replies": [{"type": "text", "text": "Thanks for waiting"}]});
                reqwest::Client::new().post(cb).bearer_auth("cb-token").json(&body).send().await.expect("callback");
            });
            StatusCode::ACCEPTED.into_response()
        }
        "nothing" => StatusCode::NO_CONTENT.into_response(),
        "garbage" => (StatusCode::OK, "<html>oops</html>").into_response(),
        "badtype" => Json(json!({"replies": [{"type": "hologram"}]})).into_response(),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "5")], "maintenance").into_response(),
        "nope" => (StatusCode::UNPROCESSABLE_ENTITY, "cannot").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        other => Json(json!({"replies": [{"type": "text", "text": format!("echo {other}")}]})).into_response(),
    }
}

/// The bridge's callback route, reduced to what this crate provides.
async fn callback(
    State(cb): State<Arc<(HttpBackend, Mutex<Vec<Value>>)>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if !cb.0.verify_callback(auth) {
        return StatusCode::UNAUTHORIZED;
    }
    match parse_callback(&body) {
        Ok(c) => {
            cb.1.lock().unwrap().push(
                json!({"conversation_id": c.conversation_id, "in_reply_to": c.in_reply_to,
                                             "replies": c.response.replies}),
            );
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn setup() -> (
    HttpBackend,
    S,
    Fake,
    Arc<(HttpBackend, Mutex<Vec<Value>>)>,
    Fake,
) {
    let s: S = Arc::default();
    let svc = Fake::start(Router::new().route("/bot", post(bot)).with_state(s.clone())).await;
    // The callback receiver's URL goes into the config, which the receiver itself needs: bind it first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb_addr = listener.local_addr().unwrap();
    let config: HttpConfig = serde_json::from_value(json!({
        "url": format!("{}/bot", svc.url()), "token": "svc-token",
        "callback_url": format!("http://{cb_addr}/callback"), "callback_token": "cb-token",
        "timeout_ms": 500, "send_history": true
    }))
    .unwrap();
    let backend = HttpBackend::new(config.clone(), http()).unwrap();
    let receiver = Arc::new((
        HttpBackend::new(config, http()).unwrap(),
        Mutex::new(Vec::new()),
    ));
    let cb = Fake::start_on(
        listener,
        Router::new()
            .route("/callback", post(callback))
            .with_state(receiver.clone()),
    );
    (backend, s, svc, receiver, cb)
}

#[tokio::test]
async fn inline_replies_state_handover_end() {
    let (bot, s, _svc, _, _cb) = setup().await;
    let r = bot
        .converse(&request(TurnKind::Message, "everything"))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![
            Reply::text("Here is everything"),
            Reply::QuickReplies {
                title: Some("Choose".into()),
                options: vec![Choice {
                    label: "A".into(),
                    value: "a".into()
                }]
            },
            Reply::Image {
                url: "https://img.example/x.png".into(),
                alt: Some("x".into())
            },
            Reply::Card(Card {
                title: "T".into(),
                subtitle: None,
                image_url: None,
                buttons: vec![
                    CardButton::Link {
                        label: "L".into(),
                        url: "https://l".into()
                    },
                    CardButton::Postback {
                        label: "P".into(),
                        value: "p".into()
                    }
                ]
            }),
        ]
    );
    assert_eq!(r.backend_state, Some(json!({"step": 1})));
    let mut next = request(TurnKind::Message, "everything");
    next.backend_state = r.backend_state;
    assert_eq!(
        bot.converse(&next).await.unwrap().backend_state,
        Some(json!({"step": 2})),
        "state round-trips"
    );
    let r = bot
        .converse(&request(TurnKind::Message, "agent"))
        .await
        .unwrap();
    let h = r.handover.unwrap();
    assert_eq!(
        (h.reason.as_deref(), h.queue.as_deref()),
        (Some("asked"), Some("sales"))
    );
    assert_eq!(h.context.get("tier"), Some(&json!("gold")));
    assert!(bot
        .converse(&request(TurnKind::Message, "bye"))
        .await
        .unwrap()
        .end
        .is_some());
    let r = bot
        .converse(&request(TurnKind::Message, "nothing"))
        .await
        .unwrap();
    assert!(r.replies.is_empty() && !r.deferred);
    let svc = s.lock().unwrap();
    let t = &svc.turns[0];
    assert_eq!(
        (t.version.as_str(), t.kind, t.conversation_id.as_str()),
        ("1", TurnKind::Message, "sess-1")
    );
    assert_eq!(t.user.email.as_deref(), Some("user@example.com"));
    assert_eq!(svc.auth[0].as_deref(), Some("Bearer svc-token"));
}

#[tokio::test]
async fn callback_replies() {
    let (bot, _, _svc, receiver, _cb) = setup().await;
    let r = bot
        .converse(&request(TurnKind::Message, "later"))
        .await
        .unwrap();
    assert!(r.deferred && r.replies.is_empty());
    for _ in 0..100 {
        if !receiver.1.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = receiver.1.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            json!({"conversation_id": "sess-1", "in_reply_to": "sess-1-m1", "replies": [{"type": "text", "text": "Thanks for waiting"}]})
        ]
    );
    // The callback token is checked.
    assert!(!receiver.0.verify_callback(Some("Bearer wrong")));
    assert!(!receiver.0.verify_callback(None));
    assert!(receiver.0.verify_callback(Some("bearer cb-token")));
    assert!(parse_callback(br#"{"conversation_id": "", "replies": []}"#).is_err());
    assert!(parse_callback(b"{}").is_err());
}

#[tokio::test]
async fn errors_timeouts_malformed() {
    let (bot, _, _svc, _, _cb) = setup().await;
    let e = bot
        .converse(&request(TurnKind::Message, "down"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BackendError::Status { status: 503, retry_after: Some(d), .. } if *d == Duration::from_secs(5)),
        "{e:?}"
    );
    let e = bot
        .converse(&request(TurnKind::Message, "nope"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Status { status: 422, .. }) && !e.is_retryable());
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "garbage")).await,
        Err(BackendError::Malformed(_))
    ));
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "badtype")).await,
        Err(BackendError::Malformed(_))
    ));
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "slow")).await,
        Err(BackendError::Timeout(_))
    ));
}
