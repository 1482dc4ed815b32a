//! The HTTP webhook sink: `POST {url}` with `{"type", "timestamp", "data"}`, signed per Standard Webhooks
//! (`webhook-id` = the message id, stable across retries; `webhook-timestamp`; `webhook-signature` with every
//! configured secret so the receiver can rotate). Redirects are not followed: a signed payload goes only where it
//! was configured to go.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;

use super::http::{describe, read_response};
use super::sink::{AttemptResult, Message, Sink};
use super::standard_webhooks::{
    signature_header, Secret, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};
use crate::config::SinkConfig;

pub struct HttpSink {
    url: reqwest::Url,
    secrets: Vec<Secret>,
    client: reqwest::Client,
    body_limit: usize,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a RawValue,
}

impl HttpSink {
    pub fn check(config: &SinkConfig) -> Result<(), String> {
        reqwest::Url::parse(&config.url)
            .map_err(|e| format!("sink {:?}: url: {e}", config.name))?;
        if config.secrets.is_empty() {
            return Err(format!(
                "sink {:?}: an http sink needs at least one secret (whsec_...) to sign with",
                config.name
            ));
        }
        for (i, s) in config.secrets.iter().enumerate() {
            Secret::parse(s.expose())
                .map_err(|e| format!("sink {:?}: secrets[{i}]: {e}", config.name))?;
        }
        Ok(())
    }

    pub fn new(
        config: &SinkConfig,
        client: reqwest::Client,
        body_limit: usize,
    ) -> Result<Self, String> {
        Self::check(config)?;
        let url = reqwest::Url::parse(&config.url).map_err(|e| e.to_string())?;
        let secrets = config
            .secrets
            .iter()
            .map(|s| Secret::parse(s.expose()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            url,
            secrets,
            client,
            body_limit,
        })
    }

    /// The exact bytes sent for `message`.
    pub fn body(message: &Message) -> Result<Vec<u8>, String> {
        let data: &RawValue = serde_json::from_str(&message.data)
            .map_err(|e| format!("the stored message data is not JSON: {e}"))?;
        let timestamp = crate::core::record::format_ms(message.created_at).unwrap_or_default();
        serde_json::to_vec(&Body {
            event_type: &message.event_type,
            timestamp,
            data,
        })
        .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Sink for HttpSink {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        let body = match Self::body(message) {
            Ok(b) => b,
            Err(e) => return AttemptResult::reject(e),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature_header(&self.secrets, &message.id, timestamp, &body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_ID, &message.id)
            .header(WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => read_response(response, self.body_limit).await,
            Err(e) => AttemptResult::network(describe(&e)),
        }
    }
}
