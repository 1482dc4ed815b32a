//! The `openai` backend against a fake OpenAI-compatible server built from the chat-completions reference:
//! `POST /v1/chat/completions` with `{model, messages, tools, tool_choice}` → `{choices: [{message: {role, content,
//! tool_calls: [{id, type: "function", function: {name, arguments}}]}, finish_reason}]}`; errors as
//! `{"error": {"message", "type", "code"}}` with 401, 429 (+ `Retry-After`), 5xx.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chatbot::backends::openai::{OpenAiBackend, OpenAiConfig, HANDOVER_TOOL};
use chatbot::backends::{BackendError, BotBackend};
use chatbot::model::{HistoryEntry, Reply, Speaker, TurnKind};
use common::{http, request, Fake};
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<Value>>>;

fn completion(message: Value, finish: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_800_000_000, "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .into_response()
}

fn tool_call(arguments: &str) -> Value {
    json!({"id": "call_1", "type": "function", "function": {"name": HANDOVER_TOOL, "arguments": arguments}})
}

async fn completions(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}))).into_response();
    }
    seen.lock().unwrap().push(body.clone());
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    match last.as_str() {
        "human please" => completion(json!({"role": "assistant", "content": null, "tool_calls": [
            tool_call(r#"{"reason":"customer asked for a human","summary":"wants a refund"}"#)]}), "tool_calls"),
        "both" => completion(json!({"role": "assistant", "content": "One moment, connecting you.",
            "tool_calls": [tool_call(r#"{"reason":"complex"}"#)]}), "tool_calls"),
        "badargs" => completion(json!({"role": "assistant", "content": null, "tool_calls": [tool_call("{not json")]}), "tool_calls"),
        "othertool" => completion(json!({"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}]}), "tool_calls"),
        "empty" => completion(json!({"role": "assistant", "content": null}), "stop"),
        "nochoices" => Json(json!({"id": "x", "choices": []})).into_response(),
        "ratelimit" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3")],
            Json(json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}))).into_response(),
        "overloaded" => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": {"message": "overloaded"}}))).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            completion(json!({"role": "assistant", "content": "late"}), "stop")
        }
        text => completion(json!({"role": "assistant", "content": format!("Echo: {text} ({} messages)", messages.len())}), "stop"),
    }
}

async fn setup(extra: Value) -> (OpenAiBackend, Seen, Fake) {
    let seen: Seen = Arc::default();
    let fake = Fake::start(
        Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(seen.clone()),
    )
    .await;
    let mut cfg = json!({"url": format!("{}/v1", fake.url()), "api_key": "sk-test", "model": "fake-model",
                         "system_prompt": "You are the test bot.", "max_history": 2, "timeout_ms": 500});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let config: OpenAiConfig = serde_json::from_value(cfg).unwrap();
    (OpenAiBackend::new(config, http()).unwrap(), seen, fake)
}

#[tokio::test]
async fn prompt_history_and_reply() {
    let (bot, seen, _fake) = setup(json!({"temperature": 0.2})).await;
    let mut req = request(TurnKind::Message, "what is my balance?");
    req.history = vec![
        HistoryEntry {
            speaker: Speaker::Consumer,
            text: "hi".into(),
        },
        HistoryEntry {
            speaker: Speaker::Bot,
            text: "Hello!".into(),
        },
        HistoryEntry {
            speaker: Speaker::Consumer,
            text: "I have a question".into(),
        },
    ];
    let r = bot.converse(&req).await.unwrap();
    // system + 2 (max_history) + the new message
    assert_eq!(
        r.replies,
        vec![Reply::text("Echo: what is my balance? (4 messages)")]
    );
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["model"], "fake-model");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are the test bot."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": "Hello!"})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": "I have a question"})
    );
    assert_eq!(body["tools"][0]["function"]["name"], HANDOVER_TOOL);
    assert_eq!(body["tool_choice"], "auto");
    assert!((body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    // The end of a conversation is not sent.
    assert!(bot
        .converse(&request(TurnKind::End, ""))
        .await
        .unwrap()
        .replies
        .is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_handover_tool() {
    let (bot, _, _fake) = setup(json!({})).await;
    let r = bot
        .converse(&request(TurnKind::Message, "human please"))
        .await
        .unwrap();
    let h = r.handover.unwrap();
    assert_eq!(h.reason.as_deref(), Some("customer asked for a human"));
    assert_eq!(h.context.get("summary"), Some(&json!("wants a refund")));
    assert_eq!(
        r.replies,
        vec![Reply::text("Let me connect you with an agent.")]
    );
    let r = bot
        .converse(&request(TurnKind::Message, "both"))
        .await
        .unwrap();
    assert_eq!(r.replies, vec![Reply::text("One moment, connecting you.")]);
    assert!(r.handover.is_some());
    let r = bot
        .converse(&request(TurnKind::Message, "badargs"))
        .await
        .unwrap();
    assert_eq!(r.handover.unwrap().reason.as_deref(), Some("{not json"));
    let r = bot
        .converse(&request(TurnKind::Message, "othertool"))
        .await
        .unwrap();
    assert!(r.handover.is_none());
    assert_eq!(r.unmapped, 1);
    // Without the tool, none is offered.
    let (plain, seen, _f) = setup(json!({"handover_tool": false})).await;
    plain
        .converse(&request(TurnKind::Message, "hi"))
        .await
        .unwrap();
    assert!(seen.lock().unwrap()[0].get("tools").is_none());
}

#[tokio::test]
async fn errors() {
    let (bot, _, _fake) = setup(json!({})).await;
    let e = bot
        .converse(&request(TurnKind::Message, "ratelimit"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BackendError::Status { status: 429, retry_after: Some(d), body } if *d == Duration::from_secs(3) && body.contains("Rate limit")),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "overloaded"))
            .await,
        Err(BackendError::Status { status: 503, .. })
    ));
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "empty")).await,
        Err(BackendError::Malformed(_))
    ));
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "nochoices")).await,
        Err(BackendError::Malformed(_))
    ));
    assert!(matches!(
        bot.converse(&request(TurnKind::Message, "slow")).await,
        Err(BackendError::Timeout(_))
    ));
    let (nokey, _, _f) = setup(json!({"api_key": "sk-wrong"})).await;
    let e = nokey
        .converse(&request(TurnKind::Message, "hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Status { status: 401, .. }) && !e.is_retryable());
    assert!(!format!("{nokey:?}").contains("sk-wrong"));
}
