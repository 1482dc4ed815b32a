//! The Genesys Cloud REST client: OAuth client credentials (`POST {login}/oauth/token`, reference §3.4), a cached
//! token renewed before it expires or when the API refuses it, and bounded retries on 429 (honouring
//! `Retry-After`), 5xx and transport errors.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::models::{Channel, ChannelTopic, Conversation, Trigger, User, UserPage};

#[derive(Clone)]
pub struct ClientConfig {
    /// `https://api.<region domain>` (see [`crate::Region`]), or a stand-in's URL.
    pub api_base: String,
    /// `https://login.<region domain>`.
    pub login_base: String,
    pub client_id: String,
    pub client_secret: String,
    pub timeout: Duration,
    /// Attempts per request on 429, 5xx and transport errors.
    pub max_attempts: u32,
}

impl ClientConfig {
    pub fn new(
        api_base: impl Into<String>,
        login_base: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            api_base: api_base.into(),
            login_base: login_base.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            timeout: Duration::from_secs(30),
            max_attempts: 4,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_base", &self.api_base)
            .field("login_base", &self.login_base)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenesysError {
    #[error("Genesys request failed: {0}")]
    Transport(String),
    #[error("Genesys token request refused ({status}): {message}")]
    Auth { status: u16, message: String },
    #[error("Genesys API answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected Genesys answer: {0}")]
    Decode(String),
}

impl GenesysError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, GenesysError::Api { status: 404, .. })
    }
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

pub struct GenesysClient {
    http: reqwest::Client,
    config: ClientConfig,
    token: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Genesys's error body: `{"message", "code", "status"}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct Entities<T> {
    #[serde(default = "Vec::new")]
    entities: Vec<T>,
    #[serde(default, rename = "nextUri")]
    next_uri: Option<String>,
}

#[derive(Serialize)]
struct TopicRef<'a> {
    id: &'a str,
}

impl GenesysClient {
    pub fn new(config: ClientConfig) -> Result<Self, GenesysError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| GenesysError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            config,
            token: Mutex::new(None),
        })
    }

    /// A valid access token (cached; renewed a minute before it expires).
    pub async fn access_token(&self) -> Result<String, GenesysError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.config.client_id, self.config.client_secret
        ));
        let response = self
            .http
            .post(format!(
                "{}/oauth/token",
                self.config.login_base.trim_end_matches('/')
            ))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| GenesysError::Transport(format!("token request: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(GenesysError::Auth {
                status: status.as_u16(),
                message: truncate(&text, 300),
            });
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| GenesysError::Decode(format!("token response: {e}")))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        let margin = (lifetime / 10).min(Duration::from_secs(300));
        let value = token.access_token;
        *cached = Some(CachedToken {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(value)
    }

    async fn forget_token(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    /// One API call with the retries described above; `Ok` only for a 2xx.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, GenesysError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.config.api_base.trim_end_matches('/'), path)
        };
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.access_token().await?;
            let mut request = self.http.request(method.clone(), &url).bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let last = attempt >= self.config.max_attempts.max(1);
            // A POST that failed in transit or with a 5xx may have been carried out: only a 429 (refused before
            // doing anything) is retried for it.
            let idempotent = method != Method::POST;
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if !last && idempotent => {
                    tracing::debug!(path, error = %e, attempt, "Genesys request failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GenesysError::Transport(format!("{method} {path}: {e}"))),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // Expired or revoked early: one fresh token, then the API's answer stands.
                refreshed = true;
                self.forget_token(&token).await;
                continue;
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || (status.is_server_error() && idempotent))
                && !last
            {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)))
                    .unwrap_or_else(|| backoff(attempt));
                tracing::debug!(path, %status, attempt, ?wait, "Genesys API busy; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            let parsed: Option<ErrorBody> = serde_json::from_str(&text).ok();
            return Err(GenesysError::Api {
                status: status.as_u16(),
                code: parsed
                    .as_ref()
                    .and_then(|b| b.code.clone())
                    .unwrap_or_default(),
                message: parsed
                    .and_then(|b| b.message)
                    .unwrap_or_else(|| truncate(&text, 300)),
            });
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, GenesysError> {
        let response = self.call(method, path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GenesysError::Transport(format!("{path}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| GenesysError::Decode(format!("{path}: {e}")))
    }

    pub async fn user(&self, id: &str) -> Result<User, GenesysError> {
        self.json(Method::GET, &format!("/api/v2/users/{}", segment(id)), None)
            .await
    }

    /// Every user, page by page.
    pub async fn all_users(&self) -> Result<Vec<User>, GenesysError> {
        let mut out = Vec::new();
        for number in 1.. {
            let page: UserPage = self
                .json(
                    Method::GET,
                    &format!("/api/v2/users?pageSize=500&pageNumber={number}&state=active"),
                    None,
                )
                .await?;
            let n = page.entities.len();
            out.extend(page.entities);
            if n == 0 || page.page_count.is_some_and(|count| number >= count) {
                break;
            }
        }
        Ok(out)
    }

    pub async fn conversation(&self, id: &str) -> Result<Conversation, GenesysError> {
        self.json(
            Method::GET,
            &format!("/api/v2/conversations/{}", segment(id)),
            None,
        )
        .await
    }

    pub async fn create_channel(&self) -> Result<Channel, GenesysError> {
        self.json(Method::POST, "/api/v2/notifications/channels", None)
            .await
    }

    /// Whether a channel still exists (`HEAD`: 200 or 404).
    pub async fn channel_exists(&self, id: &str) -> Result<bool, GenesysError> {
        match self
            .call(
                Method::HEAD,
                &format!("/api/v2/notifications/channels/{}", segment(id)),
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces a channel's subscriptions (which also keeps the channel alive another 24 h).
    pub async fn put_subscriptions(
        &self,
        channel: &str,
        topics: &[String],
    ) -> Result<Vec<ChannelTopic>, GenesysError> {
        let body = serde_json::to_value(
            topics
                .iter()
                .map(|t| TopicRef { id: t })
                .collect::<Vec<_>>(),
        )
        .map_err(|e| GenesysError::Decode(e.to_string()))?;
        let answer: Entities<ChannelTopic> = self
            .json(
                Method::PUT,
                &format!(
                    "/api/v2/notifications/channels/{}/subscriptions",
                    segment(channel)
                ),
                Some(&body),
            )
            .await?;
        Ok(answer.entities)
    }

    /// The triggers on these topics (all pages).
    pub async fn triggers(&self, topics: &[&str]) -> Result<Vec<Trigger>, GenesysError> {
        let mut out = Vec::new();
        let mut next = Some(format!(
            "/api/v2/processautomation/triggers?pageSize=200&topicName={}",
            topics.join(",")
        ));
        while let Some(path) = next.take() {
            let page: Entities<Trigger> = self.json(Method::GET, &path, None).await?;
            out.extend(page.entities);
            next = page.next_uri.filter(|u| !u.is_empty());
        }
        Ok(out)
    }

    pub async fn create_trigger(&self, trigger: &Trigger) -> Result<Trigger, GenesysError> {
        let body =
            serde_json::to_value(trigger).map_err(|e| GenesysError::Decode(e.to_string()))?;
        self.json(
            Method::POST,
            "/api/v2/processautomation/triggers",
            Some(&body),
        )
        .await
    }

    /// Updates a trigger; `trigger.version` must be the stored one (and the topic cannot change).
    pub async fn update_trigger(
        &self,
        id: &str,
        trigger: &Trigger,
    ) -> Result<Trigger, GenesysError> {
        let body =
            serde_json::to_value(trigger).map_err(|e| GenesysError::Decode(e.to_string()))?;
        self.json(
            Method::PUT,
            &format!("/api/v2/processautomation/triggers/{}", segment(id)),
            Some(&body),
        )
        .await
    }
}

/// A path segment: ids are UUIDs, anything else is percent-encoded rather than trusted.
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// 200 ms doubling to 12.8 s.
fn backoff(attempt: u32) -> Duration {
    backoff::exponential(
        Duration::from_millis(200),
        Duration::from_millis(12_800),
        attempt,
    )
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_and_secrets_hidden() {
        assert_eq!(segment("a-b_c"), "a-b_c");
        assert_eq!(segment("../x"), "..%2Fx");
        let config = ClientConfig::new("a", "b", "id", "very-secret");
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
