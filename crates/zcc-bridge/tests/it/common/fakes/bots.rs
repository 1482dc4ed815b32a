//! Bot engines behind a chat channel, each answering in its vendor's documented shape (docs/chat/backends.md):
//! - `http`: our JSON contract (docs/chat/http-backend.md): a turn in, `{"replies": [...], "handover", "state"}`
//!   out (200), or 202 and a callback to `callback_url` with `callback_token`;
//! - `rasa`: the REST channel, `POST /webhooks/rest/webhook` `{"sender", "message"}` → `[{"text"}, {"custom"}]`;
//! - `directline`: Direct Line 3.0 (start a conversation, post an activity, poll activities with a watermark);
//! - `openai`: `POST /v1/chat/completions`, the hand-over as a `handover_to_agent` tool call.
//!
//! Every fake answers `<kind>: <text>`, hands over when the text contains "agent", and can fail the next N calls
//! (503) or answer after a delay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
pub struct BotState {
    /// Every turn received (the request bodies).
    pub seen: Mutex<Vec<Value>>,
    fail_next: AtomicUsize,
    delay_ms: AtomicU64,
    /// The `http` fake's callback target and its token.
    callback: Mutex<Option<(String, String)>>,
    /// Direct Line conversations: their activities.
    conversations: Mutex<HashMap<String, Vec<Value>>>,
    next_id: AtomicU64,
}

pub struct FakeBot {
    pub addr: SocketAddr,
    pub state: Arc<BotState>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBot {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeBot {
    async fn serve(app: Router<Arc<BotState>>) -> Self {
        let state = Arc::new(BotState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = app.with_state(state.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn http() -> Self {
        Self::serve(Router::new().route("/turn", post(http_turn))).await
    }

    pub async fn rasa() -> Self {
        Self::serve(Router::new().route("/webhooks/rest/webhook", post(rasa_webhook))).await
    }

    pub async fn directline() -> Self {
        Self::serve(
            Router::new()
                .route("/v3/directline/conversations", post(dl_start))
                .route(
                    "/v3/directline/conversations/{id}/activities",
                    post(dl_post).get(dl_get),
                ),
        )
        .await
    }

    pub async fn openai() -> Self {
        Self::serve(Router::new().route("/v1/chat/completions", post(openai_completions))).await
    }

    /// The `http` fake posts deferred replies ("later") here.
    pub fn set_callback(&self, url: String, token: String) {
        *self.state.callback.lock().unwrap() = Some((url, token));
    }

    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn set_delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Value> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl BotState {
    /// Records the turn; `Some(response)` when this call is to fail.
    async fn take(&self, body: Value) -> Option<Response> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.seen.lock().unwrap().push(body);
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        failing.then(|| (StatusCode::SERVICE_UNAVAILABLE, "bot down").into_response())
    }
}

async fn http_turn(
    State(s): State<Arc<BotState>>,
    headers: HeaderMap,
    Json(turn): Json<Value>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some("Bearer bot-token-0123456789")
    {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    if let Some(failed) = s.take(turn.clone()).await {
        return failed;
    }
    let text = turn["text"].as_str().unwrap_or_default().to_string();
    let n = turn["state"]["n"].as_i64().unwrap_or(0) + 1;
    if text == "later" {
        let callback = s.callback.lock().unwrap().clone();
        if let Some((url, token)) = callback {
            let body = json!({
                "conversation_id": turn["conversation_id"], "in_reply_to": turn["message_id"],
                "replies": [{"type": "text", "text": "http: answered later"}], "state": {"n": n}
            });
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await;
            });
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let mut reply = json!({
        "replies": [{"type": "text", "text": format!("http: {text} (turn {n})")}],
        "state": {"n": n}
    });
    if text.contains("agent") {
        reply["handover"] = json!({"reason": "asked for an agent", "queue": "billing",
            "context": {"intent": "billing"}});
    }
    Json(reply).into_response()
}

async fn rasa_webhook(State(s): State<Arc<BotState>>, Json(body): Json<Value>) -> Response {
    if let Some(failed) = s.take(body.clone()).await {
        return failed;
    }
    let message = body["message"].as_str().unwrap_or_default();
    let mut out = vec![json!({"recipient_id": body["sender"], "text": format!("rasa: {message}")})];
    if message.contains("agent") {
        out.push(json!({"recipient_id": body["sender"], "custom": {"handover": {"reason": "rasa hand-over"}}}));
    }
    Json(Value::Array(out)).into_response()
}

async fn dl_start(State(s): State<Arc<BotState>>, headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some("Bearer dl-secret-0123456789")
    {
        return (StatusCode::FORBIDDEN, "bad secret").into_response();
    }
    let id = format!("conv-{}", s.next_id.fetch_add(1, Ordering::SeqCst));
    s.conversations
        .lock()
        .unwrap()
        .insert(id.clone(), Vec::new());
    (
        StatusCode::CREATED,
        Json(json!({"conversationId": id, "expires_in": 1800})),
    )
        .into_response()
}

async fn dl_post(
    State(s): State<Arc<BotState>>,
    Path(id): Path<String>,
    Json(activity): Json<Value>,
) -> Response {
    if let Some(failed) = s.take(activity.clone()).await {
        return failed;
    }
    let text = activity["text"].as_str().unwrap_or_default().to_string();
    let mut conversations = s.conversations.lock().unwrap();
    let Some(list) = conversations.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "no conversation").into_response();
    };
    list.push(activity.clone());
    if activity["type"] == "message" {
        list.push(json!({"type": "message", "from": {"id": "bot"}, "text": format!("directline: {text}")}));
        if text.contains("agent") {
            list.push(
                json!({"type": "event", "name": "handoff.initiate", "from": {"id": "bot"},
                "value": {"reason": "directline hand-over"}}),
            );
        }
    }
    Json(json!({"id": format!("{id}|{}", list.len())})).into_response()
}

async fn dl_get(
    State(s): State<Arc<BotState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let conversations = s.conversations.lock().unwrap();
    let Some(list) = conversations.get(&id) else {
        return (StatusCode::NOT_FOUND, "no conversation").into_response();
    };
    let from: usize = q.get("watermark").and_then(|w| w.parse().ok()).unwrap_or(0);
    let activities: Vec<Value> = list.iter().skip(from).cloned().collect();
    Json(json!({"activities": activities, "watermark": list.len().to_string()})).into_response()
}

async fn openai_completions(State(s): State<Arc<BotState>>, Json(body): Json<Value>) -> Response {
    if let Some(failed) = s.take(body.clone()).await {
        return failed;
    }
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let message = if last.contains("agent") {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "handover_to_agent",
                         "arguments": "{\"reason\": \"asked for a person\", \"summary\": \"wants an agent\"}"}}]})
    } else {
        json!({"role": "assistant", "content": format!("openai: {last}")})
    };
    Json(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}),
    )
    .into_response()
}
