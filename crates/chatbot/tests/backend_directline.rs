//! The `directline` backend against a fake Direct Line 3.0 service built from Microsoft's documented contract:
//! secrets and tokens (`tokens/generate`, `tokens/refresh`, token scoped to one conversation), start conversation
//! (201, or 200 when the token's conversation exists), reconnect, send activity (`{id}`, 502 when the bot fails),
//! receive activities by polling with a watermark. The fake's bot greets on start, echoes, offers suggested actions,
//! sends cards and images, hands off with `handoff.initiate`, ends with `endOfConversation`, and can answer late.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chatbot::backends::directline::{DirectLineBackend, DirectLineConfig, DirectLineState};
use chatbot::backends::{BackendError, BotBackend};
use chatbot::model::{BotRequest, Card, CardButton, Choice, Reply, TurnKind};
use common::{http, request, Fake};
use serde_json::{json, Value};

const SECRET: &str = "dl-secret-123";

#[derive(Default)]
struct Dl {
    conversations: HashMap<String, Vec<Value>>,
    started: HashMap<String, bool>,
    tokens: HashMap<String, String>, // token -> conversation
    next: usize,
    token_lifetime: u64,
    calls: Vec<String>,
}

type S = Arc<Mutex<Dl>>;

fn bearer(h: &HeaderMap) -> Option<String> {
    h.get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn unauthorized() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": {"code": "BadArgument", "message": "not authorized"}})),
    )
        .into_response()
}

/// Authorises a call on a conversation: the secret, or a token for that conversation.
fn allowed(dl: &Dl, h: &HeaderMap, conv: &str) -> bool {
    match bearer(h) {
        Some(b) if b == SECRET => true,
        Some(b) => dl.tokens.get(&b).is_some_and(|c| c == conv),
        None => false,
    }
}

fn new_token(dl: &mut Dl, conv: &str) -> String {
    dl.next += 1;
    let t = format!("tok-{}", dl.next);
    dl.tokens.insert(t.clone(), conv.to_owned());
    t
}

fn bot(text: &str) -> Value {
    json!({"type": "message", "from": {"id": "the-bot", "name": "Bot"}, "text": text})
}

async fn generate(State(s): State<S>, h: HeaderMap) -> Response {
    let mut dl = s.lock().unwrap();
    dl.calls.push("generate".into());
    if bearer(&h).as_deref() != Some(SECRET) {
        return unauthorized();
    }
    dl.next += 1;
    let conv = format!("conv-{}", dl.next);
    dl.conversations.insert(conv.clone(), vec![]);
    let token = new_token(&mut dl, &conv);
    Json(json!({"conversationId": conv, "token": token, "expires_in": dl.token_lifetime}))
        .into_response()
}

async fn refresh(State(s): State<S>, h: HeaderMap) -> Response {
    let mut dl = s.lock().unwrap();
    dl.calls.push("refresh".into());
    let Some(conv) = bearer(&h).and_then(|b| dl.tokens.get(&b).cloned()) else {
        return unauthorized();
    };
    let token = new_token(&mut dl, &conv);
    Json(json!({"conversationId": conv, "token": token, "expires_in": dl.token_lifetime}))
        .into_response()
}

async fn start(State(s): State<S>, h: HeaderMap) -> Response {
    let mut dl = s.lock().unwrap();
    dl.calls.push("start".into());
    let conv = match bearer(&h) {
        Some(b) if b == SECRET => {
            dl.next += 1;
            let c = format!("conv-{}", dl.next);
            dl.conversations.insert(c.clone(), vec![]);
            c
        }
        Some(b) => match dl.tokens.get(&b) {
            Some(c) => c.clone(),
            None => return unauthorized(),
        },
        None => return unauthorized(),
    };
    let existed = dl.started.insert(conv.clone(), true).is_some();
    if !existed {
        // The bot greets when the conversation starts (its conversationUpdate handler).
        dl.conversations
            .entry(conv.clone())
            .or_default()
            .push(bot("Welcome to the bot!"));
    }
    let token = new_token(&mut dl, &conv);
    let lifetime = dl.token_lifetime;
    let body = json!({"conversationId": conv, "token": token, "expires_in": lifetime,
                      "streamUrl": format!("wss://example/{conv}/stream?t={token}")});
    (
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(body),
    )
        .into_response()
}

async fn reconnect(State(s): State<S>, h: HeaderMap, Path(conv): Path<String>) -> Response {
    let mut dl = s.lock().unwrap();
    dl.calls.push("reconnect".into());
    if !dl.conversations.contains_key(&conv) {
        return (StatusCode::NOT_FOUND, "no such conversation").into_response();
    }
    if !allowed(&dl, &h, &conv) {
        return unauthorized();
    }
    let token = new_token(&mut dl, &conv);
    let lifetime = dl.token_lifetime;
    Json(json!({"conversationId": conv, "token": token, "expires_in": lifetime, "streamUrl": "wss://example"})).into_response()
}

async fn send_activity(
    State(s): State<S>,
    h: HeaderMap,
    Path(conv): Path<String>,
    Json(a): Json<Value>,
) -> Response {
    let text = a["text"].as_str().unwrap_or_default().to_owned();
    let (id, delayed) = {
        let mut dl = s.lock().unwrap();
        dl.calls
            .push(format!("send:{}", a["type"].as_str().unwrap_or_default()));
        if !allowed(&dl, &h, &conv) {
            return unauthorized();
        }
        let Some(list) = dl.conversations.get_mut(&conv) else {
            return (StatusCode::NOT_FOUND, "").into_response();
        };
        if text == "boom" {
            return (StatusCode::BAD_GATEWAY, Json(json!({"error": {"code": "BotError", "message": "Failed to send activity: bot returned an error"}}))).into_response();
        }
        let id = format!("{conv}|{:07}", list.len());
        let mut user = a.clone();
        user["id"] = json!(id);
        list.push(user);
        let reply = |mut v: Value| {
            v["replyToId"] = json!(id);
            v
        };
        let mut delayed = None;
        match text.as_str() {
            "" if a["type"] == "endOfConversation" => {}
            "menu" => list.push(reply(json!({"type": "message", "from": {"id": "the-bot"}, "text": "Pick one",
                "suggestedActions": {"actions": [
                    {"type": "imBack", "title": "Yes", "value": "yes"},
                    {"type": "postBack", "title": "No", "value": {"answer": "no"}},
                    {"type": "openUrl", "title": "Docs", "value": "https://docs"}]}}))),
            "card" => list.push(reply(json!({"type": "message", "from": {"id": "the-bot"}, "attachments": [
                {"contentType": "application/vnd.microsoft.card.hero", "content": {
                    "title": "Plan A", "subtitle": "Best value", "images": [{"url": "https://img.example/a.png"}],
                    "buttons": [{"type": "openUrl", "title": "Details", "value": "https://example.com/a"},
                                {"type": "imBack", "title": "Buy", "value": "buy A"}]}},
                {"contentType": "image/png", "contentUrl": "https://img.example/chart.png", "name": "chart"},
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard"}}]}))),
            "human" => {
                list.push(reply(bot("Transferring you to an agent")));
                list.push(reply(json!({"type": "event", "name": "handoff.initiate", "from": {"id": "the-bot"},
                    "value": {"Skill": "billing", "reason": "asked for a human"}, "conversation": {"id": conv}})));
            }
            "bye" => {
                list.push(reply(bot("Goodbye")));
                list.push(reply(json!({"type": "endOfConversation", "from": {"id": "the-bot"}, "code": "completedSuccessfully"})));
            }
            "later" => delayed = Some(reply(bot("Sorry for the wait"))),
            "mute" => {}
            other => {
                list.push(reply(json!({"type": "typing", "from": {"id": "the-bot"}})));
                list.push(reply(bot(&format!("You said: {other}"))));
            }
        }
        (id, delayed)
    };
    if let Some(late) = delayed {
        let s = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            s.lock()
                .unwrap()
                .conversations
                .get_mut(&conv)
                .unwrap()
                .push(late);
        });
    }
    Json(json!({"id": id})).into_response()
}

async fn get_activities(
    State(s): State<S>,
    h: HeaderMap,
    Path(conv): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let dl = s.lock().unwrap();
    if !allowed(&dl, &h, &conv) {
        return unauthorized();
    }
    let Some(list) = dl.conversations.get(&conv) else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let from: usize = q.get("watermark").and_then(|w| w.parse().ok()).unwrap_or(0);
    let activities: Vec<Value> = list.iter().skip(from).cloned().collect();
    Json(json!({"activities": activities, "watermark": list.len().to_string()})).into_response()
}

async fn setup(use_tokens: bool, token_lifetime: u64) -> (S, Fake, DirectLineConfig) {
    let s: S = Arc::new(Mutex::new(Dl {
        token_lifetime,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/v3/directline/tokens/generate", post(generate))
        .route("/v3/directline/tokens/refresh", post(refresh))
        .route("/v3/directline/conversations", post(start))
        .route("/v3/directline/conversations/{id}", get(reconnect))
        .route(
            "/v3/directline/conversations/{id}/activities",
            post(send_activity).get(get_activities),
        )
        .with_state(s.clone());
    let fake = Fake::start(app).await;
    let config: DirectLineConfig = serde_json::from_value(json!({
        "url": fake.url(), "secret": SECRET, "use_tokens": use_tokens,
        "poll_interval_ms": 20, "settle_ms": 100, "reply_timeout_ms": 1500, "timeout_ms": 2000
    }))
    .unwrap();
    (s, fake, config)
}

fn turn(kind: TurnKind, text: &str, state: Option<Value>) -> BotRequest {
    let mut r = request(kind, text);
    r.backend_state = state;
    r
}

#[tokio::test]
async fn secret_mode_conversation() {
    let (s, _fake, config) = setup(false, 1800).await;
    let bot = DirectLineBackend::new(config, http()).unwrap();
    let r = bot
        .converse(&turn(TurnKind::Start, "", None))
        .await
        .unwrap();
    assert_eq!(r.replies, vec![Reply::text("Welcome to the bot!")]);
    let state: DirectLineState = serde_json::from_value(r.backend_state.clone().unwrap()).unwrap();
    assert_eq!(state.watermark.as_deref(), Some("1"));
    let r = bot
        .converse(&turn(TurnKind::Message, "hello", r.backend_state))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![Reply::text("You said: hello")],
        "typing is not shown; our own activity is skipped"
    );
    let r = bot
        .converse(&turn(TurnKind::Message, "menu", r.backend_state))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![
            Reply::text("Pick one"),
            Reply::QuickReplies {
                title: None,
                options: vec![
                    Choice {
                        label: "Yes".into(),
                        value: "yes".into()
                    },
                    Choice {
                        label: "No".into(),
                        value: "{\"answer\":\"no\"}".into()
                    }
                ]
            }
        ]
    );
    let r = bot
        .converse(&turn(TurnKind::Message, "card", r.backend_state))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![
            Reply::Card(Card {
                title: "Plan A".into(),
                subtitle: Some("Best value".into()),
                image_url: Some("https://img.example/a.png".into()),
                buttons: vec![
                    CardButton::Link {
                        label: "Details".into(),
                        url: "https://example.com/a".into()
                    },
                    CardButton::Postback {
                        label: "Buy".into(),
                        value: "buy A".into()
                    }
                ]
            }),
            Reply::Image {
                url: "https://img.example/chart.png".into(),
                alt: Some("chart".into())
            }
        ]
    );
    assert_eq!(r.unmapped, 1, "the adaptive card");
    let r = bot
        .converse(&turn(TurnKind::Message, "later", r.backend_state))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![Reply::text("Sorry for the wait")],
        "a late reply is collected by polling"
    );
    let r = bot
        .converse(&turn(TurnKind::Message, "mute", r.backend_state))
        .await
        .unwrap();
    assert!(
        r.replies.is_empty(),
        "a bot that says nothing yields an empty answer after reply_timeout"
    );
    let r = bot
        .converse(&turn(TurnKind::Message, "human", r.backend_state))
        .await
        .unwrap();
    let h = r.handover.clone().unwrap();
    assert_eq!(
        (h.queue.as_deref(), h.reason.as_deref()),
        (Some("billing"), Some("asked for a human"))
    );
    assert_eq!(r.replies, vec![Reply::text("Transferring you to an agent")]);
    let r = bot
        .converse(&turn(TurnKind::Message, "bye", r.backend_state))
        .await
        .unwrap();
    assert_eq!(
        r.end.unwrap().reason.as_deref(),
        Some("completedSuccessfully")
    );
    let calls = s.lock().unwrap().calls.clone();
    assert_eq!(calls.iter().filter(|c| *c == "start").count(), 1);
    assert!(
        !calls.iter().any(|c| c == "generate" || c == "refresh"),
        "secret mode uses no tokens: {calls:?}"
    );
}

#[tokio::test]
async fn token_mode_generates_refreshes_and_ends() {
    // Tokens that live 60 s are always inside the 120 s refresh margin: every call refreshes first.
    let (s, _fake, config) = setup(true, 60).await;
    let bot = DirectLineBackend::new(config, http()).unwrap();
    let r = bot
        .converse(&turn(TurnKind::Start, "hi there", None))
        .await
        .unwrap();
    assert_eq!(
        r.replies,
        vec![
            Reply::text("Welcome to the bot!"),
            Reply::text("You said: hi there")
        ]
    );
    let r = bot
        .converse(&turn(TurnKind::Message, "again", r.backend_state))
        .await
        .unwrap();
    assert_eq!(r.replies, vec![Reply::text("You said: again")]);
    bot.converse(&turn(TurnKind::End, "", r.backend_state))
        .await
        .unwrap();
    let calls = s.lock().unwrap().calls.clone();
    assert_eq!(calls[0], "generate");
    assert_eq!(calls[1], "start");
    assert!(calls.iter().any(|c| c == "refresh"), "{calls:?}");
    assert_eq!(
        calls.last().map(String::as_str),
        Some("send:endOfConversation")
    );
}

#[tokio::test]
async fn resumes_after_a_restart_from_the_stored_state() {
    for use_tokens in [false, true] {
        let (s, _fake, config) = setup(use_tokens, 1800).await;
        let first = DirectLineBackend::new(config.clone(), http()).unwrap();
        let r = first
            .converse(&turn(TurnKind::Start, "", None))
            .await
            .unwrap();
        let r = first
            .converse(&turn(TurnKind::Message, "one", r.backend_state))
            .await
            .unwrap();
        drop(first);
        // A new process: only the stored state is left.
        let second = DirectLineBackend::new(config, http()).unwrap();
        let r = second
            .converse(&turn(TurnKind::Message, "two", r.backend_state))
            .await
            .unwrap();
        assert_eq!(
            r.replies,
            vec![Reply::text("You said: two")],
            "no greeting again, no old replies again"
        );
        let calls = s.lock().unwrap().calls.clone();
        assert_eq!(
            calls.iter().filter(|c| *c == "start").count(),
            1,
            "same conversation: {calls:?}"
        );
        assert_eq!(
            calls.iter().any(|c| c == "reconnect"),
            use_tokens,
            "{calls:?}"
        );
    }
}

#[tokio::test]
async fn bot_errors_and_bad_secrets() {
    let (_, _fake, config) = setup(false, 1800).await;
    let bot = DirectLineBackend::new(config.clone(), http()).unwrap();
    let r = bot
        .converse(&turn(TurnKind::Start, "", None))
        .await
        .unwrap();
    let e = bot
        .converse(&turn(TurnKind::Message, "boom", r.backend_state))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Status { status: 502, .. }) && e.is_retryable(),
        "{e:?}"
    );
    let mut wrong = config;
    wrong.secret = chatbot::Secret::new("not-the-secret");
    let bot = DirectLineBackend::new(wrong, http()).unwrap();
    let e = bot
        .converse(&turn(TurnKind::Start, "", None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Status { status: 403, .. }) && !e.is_retryable(),
        "{e:?}"
    );
    assert!(!format!("{e:?} {bot:?}").contains("not-the-secret"));
}
