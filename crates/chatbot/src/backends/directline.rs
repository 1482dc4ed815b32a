//! The `directline` backend: Microsoft Bot Framework Direct Line 3.0 over HTTP, receiving by polling (no WebSocket).
//! Contract (learn.microsoft.com, "Direct Line API 3.0": authentication, start conversation, send activity, receive
//! activities, API reference):
//! - `Authorization: Bearer SECRET_OR_TOKEN` on every call.
//! - `POST /v3/directline/tokens/generate` (secret) → `{conversationId, token, expires_in}`;
//!   `POST /v3/directline/tokens/refresh` (token) → the same with a fresh token.
//! - `POST /v3/directline/conversations` → `201 {conversationId, token, expires_in, streamUrl}` (200 when the token's
//!   conversation already exists); `GET /v3/directline/conversations/{id}?watermark=` reconnects (new token).
//! - `POST /v3/directline/conversations/{id}/activities` with an Activity → `{"id": "…"}`; a bot error is a 502.
//! - `GET /v3/directline/conversations/{id}/activities?watermark=W` → `{activities: [...], watermark}`.
//!
//! With `use_tokens = false` (default) every call presents the secret, as the docs suggest for service-to-service
//! use. With `use_tokens = true` the secret is only used to generate a per-conversation token (and to reconnect after
//! a restart); the token is refreshed before it expires and never leaves memory.
//!
//! Mapping of the bot's activities: `message` text → text; `suggestedActions` (`imBack`/`postBack`) → quick replies;
//! image attachments (`contentType image/*`, `contentUrl`) → images; hero and thumbnail cards → cards; `event`
//! `handoff.initiate` (Bot Framework's hand-off protocol) → hand-over with its `value` as context;
//! `endOfConversation` → end. Other attachments (Adaptive Cards) are counted as unmapped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::{base_url, send_ok, BackendError, BotBackend};
use crate::model::{
    BotRequest, BotResponse, Card, CardButton, Choice, EndOfConversation, Handover, Reply, TurnKind,
};
use crate::secret::Secret;

pub const DEFAULT_BASE_URL: &str = "https://directline.botframework.com";
/// Refresh a token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Deserialize)]
pub struct DirectLineConfig {
    #[serde(default = "default_base")]
    pub url: String,
    pub secret: Secret,
    #[serde(default)]
    pub use_tokens: bool,
    /// Time for one HTTP call.
    #[serde(default = "default_request_timeout")]
    pub timeout_ms: u64,
    /// How often to poll for the bot's activities.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Once the bot said something, how long without new activities means it is done.
    #[serde(default = "default_settle")]
    pub settle_ms: u64,
    /// How long to wait for the bot's first activity; nothing by then is an empty answer.
    #[serde(default = "default_reply_timeout")]
    pub reply_timeout_ms: u64,
    /// Conversations idle this long are forgotten from memory (their stored state resumes them).
    #[serde(default = "default_session_idle")]
    pub session_idle_ms: u64,
}

fn default_base() -> String {
    DEFAULT_BASE_URL.into()
}
fn default_request_timeout() -> u64 {
    10_000
}
fn default_poll() -> u64 {
    250
}
fn default_settle() -> u64 {
    600
}
fn default_reply_timeout() -> u64 {
    10_000
}
fn default_session_idle() -> u64 {
    3_600_000
}
/// Above this many conversations in memory, idle ones are evicted on the next insert.
const EVICT_ABOVE: usize = 1024;

/// What the bridge keeps between turns ([`BotResponse::backend_state`]): no credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectLineState {
    pub conversation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

#[derive(Debug, Clone)]
struct Session {
    state: DirectLineState,
    token: Option<(Secret, Instant)>,
    last_used: Instant,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationBody {
    conversation_id: String,
    #[serde(default)]
    token: Option<String>,
    /// Direct Line spells this one in snake case (`expires_in`), unlike the other fields.
    #[serde(default, rename = "expires_in")]
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ResourceResponse {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ActivitySet {
    #[serde(default)]
    activities: Vec<Value>,
    #[serde(default)]
    watermark: Option<String>,
}

#[derive(Debug)]
pub struct DirectLineBackend {
    config: DirectLineConfig,
    /// `{bot.url}/v3/directline`.
    base: reqwest::Url,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
}

impl DirectLineBackend {
    pub fn new(config: DirectLineConfig, http: reqwest::Client) -> Result<Self, BackendError> {
        if config.secret.is_empty() {
            return Err(BackendError::Config(
                "bot.secret (Direct Line secret) is empty".into(),
            ));
        }
        let mut base = reqwest::Url::parse(&base_url(&config.url, "bot.url")?)
            .map_err(|e| BackendError::Config(format!("bot.url: {e}")))?;
        if let Ok(mut path) = base.path_segments_mut() {
            path.pop_if_empty().extend(["v3", "directline"]);
        }
        Ok(DirectLineBackend {
            config,
            base,
            http,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment, and `?watermark=` when
    /// there is one (encoded as a query value).
    fn url(&self, segments: &[&str], watermark: Option<&str>) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        if let Some(w) = watermark {
            url.query_pairs_mut().append_pair("watermark", w);
        }
        url
    }

    fn post(&self, segments: &[&str], bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(segments, None))
            .header(AUTHORIZATION, format!("Bearer {bearer}"))
    }

    fn token_from(body: &ConversationBody) -> Option<(Secret, Instant)> {
        let token = body.token.clone()?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(1800));
        Some((Secret::new(token), Instant::now() + lifetime))
    }

    /// A new conversation.
    async fn start(&self) -> Result<Session, BackendError> {
        let secret = self.config.secret.expose();
        if self.config.use_tokens {
            let (_, body) =
                send_ok(self.post(&["tokens", "generate"], secret), self.timeout()).await?;
            let generated: ConversationBody = body.json()?;
            let token = Self::token_from(&generated).ok_or_else(|| {
                BackendError::Malformed("tokens/generate returned no token".into())
            })?;
            let (_, body) = send_ok(
                self.post(&["conversations"], token.0.expose()),
                self.timeout(),
            )
            .await?;
            let started: ConversationBody = body.json()?;
            let token = Self::token_from(&started).or(Some(token));
            Ok(Session {
                state: DirectLineState {
                    conversation_id: started.conversation_id,
                    watermark: None,
                },
                token,
                last_used: Instant::now(),
            })
        } else {
            let (_, body) = send_ok(self.post(&["conversations"], secret), self.timeout()).await?;
            let started: ConversationBody = body.json()?;
            Ok(Session {
                state: DirectLineState {
                    conversation_id: started.conversation_id,
                    watermark: None,
                },
                token: None,
                last_used: Instant::now(),
            })
        }
    }

    /// A conversation known from the stored state (after a restart): in token mode, reconnect to get a token.
    async fn resume(&self, state: DirectLineState) -> Result<Session, BackendError> {
        if !self.config.use_tokens {
            return Ok(Session {
                state,
                token: None,
                last_used: Instant::now(),
            });
        }
        let url = self.url(
            &["conversations", &state.conversation_id],
            state.watermark.as_deref(),
        );
        let req = self.http.get(url).header(
            AUTHORIZATION,
            format!("Bearer {}", self.config.secret.expose()),
        );
        let (_, body) = send_ok(req, self.timeout()).await?;
        let reconnected: ConversationBody = body.json()?;
        Ok(Session {
            token: Self::token_from(&reconnected),
            state,
            last_used: Instant::now(),
        })
    }

    async fn bearer(&self, session: &mut Session) -> Result<Secret, BackendError> {
        match &session.token {
            None => Ok(self.config.secret.clone()),
            Some((token, expires)) if Instant::now() + REFRESH_MARGIN < *expires => {
                Ok(token.clone())
            }
            Some((token, _)) => {
                let (_, body) = send_ok(
                    self.post(&["tokens", "refresh"], token.expose()),
                    self.timeout(),
                )
                .await?;
                let refreshed: ConversationBody = body.json()?;
                let fresh = Self::token_from(&refreshed).ok_or_else(|| {
                    BackendError::Malformed("tokens/refresh returned no token".into())
                })?;
                session.token = Some(fresh.clone());
                Ok(fresh.0)
            }
        }
    }

    async fn post_activity(
        &self,
        session: &mut Session,
        activity: &Value,
    ) -> Result<String, BackendError> {
        let bearer = self.bearer(session).await?;
        let path = [
            "conversations",
            &session.state.conversation_id,
            "activities",
        ];
        let body =
            serde_json::to_vec(activity).map_err(|e| BackendError::Malformed(e.to_string()))?;
        let req = self
            .post(&path, bearer.expose())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let (_, body) = send_ok(req, self.timeout()).await?;
        let posted: ResourceResponse = body.json()?;
        Ok(posted.id)
    }

    async fn get_activities(&self, session: &mut Session) -> Result<Vec<Value>, BackendError> {
        let bearer = self.bearer(session).await?;
        let url = self.url(
            &[
                "conversations",
                &session.state.conversation_id,
                "activities",
            ],
            session.state.watermark.as_deref(),
        );
        let req = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", bearer.expose()));
        let (_, body) = send_ok(req, self.timeout()).await?;
        let set: ActivitySet = body.json()?;
        if set.watermark.is_some() {
            session.state.watermark = set.watermark;
        }
        Ok(set.activities)
    }

    /// Polls until the bot said something and then stayed quiet for `settle_ms`, or ended / handed over, or
    /// `reply_timeout_ms` passed.
    async fn collect(
        &self,
        session: &mut Session,
        user_id: &str,
    ) -> Result<BotResponse, BackendError> {
        let mut response = BotResponse::default();
        let started = Instant::now();
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let settle = Duration::from_millis(self.config.settle_ms);
        let deadline = started + Duration::from_millis(self.config.reply_timeout_ms);
        let mut last_bot_activity: Option<Instant> = None;
        loop {
            let activities = self.get_activities(session).await?;
            for a in activities {
                let from = a
                    .pointer("/from/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if from == user_id {
                    continue; // our own activities come back too
                }
                last_bot_activity = Some(Instant::now());
                map_activity(&a, &mut response);
            }
            let now = Instant::now();
            if response.handover.is_some() || response.end.is_some() {
                break;
            }
            match last_bot_activity {
                Some(t) if now.duration_since(t) >= settle => break,
                None if now >= deadline => break,
                Some(_) if now >= deadline + settle => break,
                _ => {}
            }
            tokio::time::sleep(poll).await;
        }
        Ok(response)
    }
}

#[async_trait]
impl BotBackend for DirectLineBackend {
    fn kind(&self) -> &'static str {
        "directline"
    }

    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError> {
        // One turn per conversation at a time is the caller's rule; the map lock is not held across network calls.
        let known = self
            .sessions
            .lock()
            .await
            .get(&request.conversation_id)
            .cloned();
        let stored = request
            .backend_state
            .clone()
            .and_then(|v| serde_json::from_value::<DirectLineState>(v).ok());
        let mut session = match (known, stored) {
            (Some(s), _) => s,
            (None, Some(state)) => self.resume(state).await?,
            (None, None) if request.kind == TurnKind::End => return Ok(BotResponse::default()),
            (None, None) => self.start().await?,
        };
        let user_id = request.user.id.as_str();
        if request.kind == TurnKind::End {
            let activity = json!({"type": "endOfConversation", "from": {"id": user_id}});
            let result = self.post_activity(&mut session, &activity).await;
            self.sessions.lock().await.remove(&request.conversation_id);
            result?;
            return Ok(BotResponse::default());
        }
        if !(request.kind == TurnKind::Start && request.text.trim().is_empty()) {
            let mut activity = json!({
                "type": "message",
                "from": {"id": user_id},
                "text": request.text,
                "channelData": {"messageId": request.message_id, "variables": request.variables},
            });
            if let Some(lang) = &request.language {
                activity["locale"] = Value::String(lang.clone());
            }
            self.post_activity(&mut session, &activity).await?;
        }
        // Without text at the start, the greeting the bot sends on the conversation's start is collected.
        let result = self.collect(&mut session, user_id).await;
        let state = serde_json::to_value(&session.state).ok();
        if result.as_ref().is_ok_and(|r| r.end.is_some()) {
            self.sessions.lock().await.remove(&request.conversation_id);
        } else {
            session.last_used = Instant::now();
            let idle = Duration::from_millis(self.config.session_idle_ms);
            let mut sessions = self.sessions.lock().await;
            if sessions.len() >= EVICT_ABOVE {
                sessions.retain(|_, s| s.last_used.elapsed() < idle);
            }
            sessions.insert(request.conversation_id.clone(), session);
        }
        let mut response = result?;
        response.backend_state = state;
        Ok(response)
    }
}

fn map_activity(a: &Value, response: &mut BotResponse) {
    match a.get("type").and_then(Value::as_str).unwrap_or_default() {
        "message" => {
            if let Some(text) = a
                .get("text")
                .and_then(Value::as_str)
                .filter(|t| !t.trim().is_empty())
            {
                response.replies.push(Reply::text(text));
            }
            for att in a
                .get("attachments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match map_attachment(att) {
                    Some(r) => response.replies.push(r),
                    None => response.unmapped += 1,
                }
            }
            let actions = a
                .pointer("/suggestedActions/actions")
                .and_then(Value::as_array);
            let options: Vec<Choice> = actions
                .into_iter()
                .flatten()
                .filter_map(|act| {
                    let kind = act.get("type").and_then(Value::as_str)?;
                    if kind != "imBack" && kind != "postBack" && kind != "messageBack" {
                        return None;
                    }
                    let title = act.get("title").and_then(Value::as_str)?;
                    let value = act
                        .get("value")
                        .map(value_text)
                        .unwrap_or_else(|| title.to_owned());
                    Some(Choice {
                        label: title.to_owned(),
                        value,
                    })
                })
                .collect();
            if !options.is_empty() {
                response.replies.push(Reply::QuickReplies {
                    title: None,
                    options,
                });
            }
        }
        "event" if a.get("name").and_then(Value::as_str) == Some("handoff.initiate") => {
            let value = a
                .get("value")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            response.handover = Some(Handover {
                reason: value
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                queue: ["Skill", "skill", "queue"]
                    .iter()
                    .find_map(|k| value.get(*k).and_then(Value::as_str))
                    .map(str::to_owned),
                context: value.into_iter().collect(),
            });
        }
        "endOfConversation" => {
            response.end = Some(EndOfConversation {
                reason: a.get("code").and_then(Value::as_str).map(str::to_owned),
            });
        }
        _ => {} // typing, conversationUpdate, traces: nothing to show
    }
}

fn map_attachment(att: &Value) -> Option<Reply> {
    let content_type = att.get("contentType").and_then(Value::as_str)?;
    if content_type.starts_with("image/") {
        let url = att.get("contentUrl").and_then(Value::as_str)?;
        return Some(Reply::Image {
            url: url.to_owned(),
            alt: att.get("name").and_then(Value::as_str).map(str::to_owned),
        });
    }
    if content_type == "application/vnd.microsoft.card.hero"
        || content_type == "application/vnd.microsoft.card.thumbnail"
    {
        let c = att.get("content")?;
        let title = c
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let subtitle = ["subtitle", "text"]
            .iter()
            .filter_map(|k| c.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        let buttons = c
            .get("buttons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| {
                let label = b.get("title").and_then(Value::as_str)?.to_owned();
                let value = b.get("value").map(value_text)?;
                match b.get("type").and_then(Value::as_str)? {
                    "openUrl" => Some(CardButton::Link { label, url: value }),
                    "imBack" | "postBack" | "messageBack" => {
                        Some(CardButton::Postback { label, value })
                    }
                    _ => None,
                }
            })
            .collect();
        return Some(Reply::Card(Card {
            title,
            subtitle: (!subtitle.is_empty()).then(|| subtitle.join("\n\n")),
            image_url: c
                .pointer("/images/0/url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            buttons,
        }));
    }
    None
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_the_conversation_id_and_watermark() {
        let config: DirectLineConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9/proxy/",
            "secret": "s"
        }))
        .expect("config");
        let backend = DirectLineBackend::new(config, reqwest::Client::new()).expect("backend");
        assert_eq!(
            backend.url(&["conversations"], None).as_str(),
            "http://127.0.0.1:9/proxy/v3/directline/conversations"
        );
        // Ids and watermarks are the service's opaque strings: a `/`, `?` or `&` in one stays inside it.
        assert_eq!(
            backend
                .url(&["conversations", "a/b?c", "activities"], Some("7&x=1"))
                .as_str(),
            "http://127.0.0.1:9/proxy/v3/directline/conversations/a%2Fb%3Fc/activities?watermark=7%26x%3D1"
        );
    }
}
