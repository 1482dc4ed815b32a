//! Push notifications, as Kore.ai's client apps offer them [KORE-ZCC]: a URL receives a notification for **all
//! messages** or only for **message delivery failures** ("WebSocket Disconnected, App is Killed, and Message Delivery
//! Failure"), showing the **original message** or a **standard message** ("Show a standard message from standard
//! responses"), editable per event and language.
//!
//! Kore does not document the notification body, so the body here is this project's (documented in
//! `docs/chat/protocol.md`). The bridge sends notifications through its outbox with [`PushClient`], which only
//! classifies outcomes.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use crate::http_outcome::{classify_error, classify_response, PostOutcome};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    /// Every conversation message (consumer and bot) and every failure.
    All,
    /// Only delivery failures.
    #[default]
    Failures,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushDisplay {
    /// The message itself.
    #[default]
    Original,
    /// A standard response instead of the message (nothing of the conversation leaves the bridge).
    Standard,
}

/// The failures Kore names. The bridge itself raises `DeliveryFailure` (a Post URL reply dead-lettered); the other
/// two exist for clients that report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    SocketDisconnected,
    AppKilled,
    DeliveryFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushEvent {
    Message,
    Failure(FailureKind),
}

impl PushEvent {
    /// The key of this event in `standard_responses`.
    pub fn key(self) -> &'static str {
        match self {
            PushEvent::Message => "message",
            PushEvent::Failure(FailureKind::SocketDisconnected) => "socket_disconnected",
            PushEvent::Failure(FailureKind::AppKilled) => "app_killed",
            PushEvent::Failure(FailureKind::DeliveryFailure) => "delivery_failure",
        }
    }

    fn default_standard(self) -> &'static str {
        match self {
            PushEvent::Message => "You have a new message.",
            PushEvent::Failure(_) => "A message could not be delivered.",
        }
    }
}

/// `[chat.channels.NAME.push]`: `url`, `mode`, `display` (DESIGN.md), plus `standard_responses` (event → language →
/// text; languages as BCP-47 tags, `default` for any) and an optional bearer `token` for the URL.
#[derive(Debug, Clone, Deserialize)]
pub struct PushConfig {
    pub url: String,
    #[serde(default)]
    pub mode: PushMode,
    #[serde(default)]
    pub display: PushDisplay,
    #[serde(default)]
    pub standard_responses: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub token: Option<Secret>,
}

/// The body posted to the push URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushNotification {
    /// `message` or `delivery_failure`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    pub channel: String,
    pub session_id: String,
    pub user_id: String,
    /// Who wrote the message (`consumer`, `bot`, `agent`) for `message` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The original message or the standard response, per `display`.
    pub message: String,
    pub display: PushDisplay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// What happened, for [`PushConfig::notification`].
#[derive(Debug, Clone)]
pub struct PushContext<'a> {
    pub channel: &'a str,
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub from: Option<&'a str>,
    pub original: &'a str,
    pub language: Option<&'a str>,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl PushConfig {
    /// Whether this event is notified in this mode.
    pub fn wants(&self, event: PushEvent) -> bool {
        match (self.mode, event) {
            (PushMode::All, _) => true,
            (PushMode::Failures, PushEvent::Failure(_)) => true,
            (PushMode::Failures, PushEvent::Message) => false,
        }
    }

    /// The notification for an event, `None` when the mode does not notify it.
    pub fn notification(
        &self,
        event: PushEvent,
        ctx: &PushContext<'_>,
    ) -> Option<PushNotification> {
        if !self.wants(event) {
            return None;
        }
        let message = match self.display {
            PushDisplay::Original => ctx.original.to_owned(),
            PushDisplay::Standard => self.standard_response(event, ctx.language),
        };
        Some(PushNotification {
            event: match event {
                PushEvent::Message => "message".into(),
                PushEvent::Failure(_) => "delivery_failure".into(),
            },
            failure: match event {
                PushEvent::Failure(k) => Some(k),
                PushEvent::Message => None,
            },
            channel: ctx.channel.to_owned(),
            session_id: ctx.session_id.to_owned(),
            user_id: ctx.user_id.to_owned(),
            from: ctx.from.map(str::to_owned),
            message,
            display: self.display,
            language: ctx.language.map(str::to_owned),
            at: ctx.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    /// The standard response for an event in a language: exact tag, then its primary subtag (`en-US` → `en`), then
    /// `default`, each compared case-insensitively; else a built-in English text.
    pub fn standard_response(&self, event: PushEvent, language: Option<&str>) -> String {
        let Some(by_lang) = self.standard_responses.get(event.key()) else {
            return event.default_standard().to_owned();
        };
        let find = |tag: &str| {
            by_lang
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .map(|(_, v)| v.clone())
        };
        language
            .and_then(|l| find(l).or_else(|| l.split(['-', '_']).next().and_then(find)))
            .or_else(|| find("default"))
            .unwrap_or_else(|| event.default_standard().to_owned())
    }
}

/// Posts push notifications; never retries, never prints its token.
#[derive(Clone)]
pub struct PushClient {
    http: reqwest::Client,
    url: String,
    token: Option<Secret>,
}

impl fmt::Debug for PushClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("PushClient")
            .field("host", &host)
            .finish_non_exhaustive()
    }
}

impl PushClient {
    pub fn new(http: reqwest::Client, config: &PushConfig) -> Self {
        PushClient {
            http,
            url: config.url.clone(),
            token: config.token.clone(),
        }
    }

    pub async fn send(&self, notification: &PushNotification) -> PostOutcome {
        let body = match serde_json::to_vec(notification) {
            Ok(b) => b,
            Err(e) => {
                return PostOutcome::Permanent {
                    status: 0,
                    reason: format!("cannot serialise: {e}"),
                }
            }
        };
        let mut req = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = if status.is_success() {
                    String::new()
                } else {
                    resp.text().await.unwrap_or_default()
                };
                classify_response(status, &headers, &body)
            }
            Err(e) => classify_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: PushMode, display: PushDisplay) -> PushConfig {
        let mut standard_responses = BTreeMap::new();
        let mut msg = BTreeMap::new();
        msg.insert("en".to_owned(), "New message".to_owned());
        msg.insert("de".to_owned(), "Neue Nachricht".to_owned());
        standard_responses.insert("message".to_owned(), msg);
        let mut fail = BTreeMap::new();
        fail.insert("default".to_owned(), "Delivery failed".to_owned());
        standard_responses.insert("delivery_failure".to_owned(), fail);
        PushConfig {
            url: "http://x".into(),
            mode,
            display,
            standard_responses,
            token: None,
        }
    }

    fn ctx(language: Option<&str>) -> PushContext<'_> {
        PushContext {
            channel: "web",
            session_id: "s1",
            user_id: "u1",
            from: Some("bot"),
            original: "Your balance is $12",
            language,
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn modes() {
        let all = cfg(PushMode::All, PushDisplay::Original);
        let failures = cfg(PushMode::Failures, PushDisplay::Original);
        assert!(all.notification(PushEvent::Message, &ctx(None)).is_some());
        assert!(failures
            .notification(PushEvent::Message, &ctx(None))
            .is_none());
        let f = failures
            .notification(PushEvent::Failure(FailureKind::DeliveryFailure), &ctx(None))
            .unwrap();
        assert_eq!(f.event, "delivery_failure");
        assert_eq!(f.failure, Some(FailureKind::DeliveryFailure));
        assert_eq!(f.message, "Your balance is $12");
    }

    #[test]
    fn displays_and_languages() {
        let std = cfg(PushMode::All, PushDisplay::Standard);
        let n = std
            .notification(PushEvent::Message, &ctx(Some("de-DE")))
            .unwrap();
        assert_eq!(n.message, "Neue Nachricht");
        assert!(!serde_json::to_string(&n).unwrap().contains("balance"));
        assert_eq!(
            std.notification(PushEvent::Message, &ctx(Some("EN")))
                .unwrap()
                .message,
            "New message"
        );
        assert_eq!(
            std.notification(PushEvent::Message, &ctx(Some("fr")))
                .unwrap()
                .message,
            "You have a new message."
        );
        let f = std
            .notification(
                PushEvent::Failure(FailureKind::DeliveryFailure),
                &ctx(Some("fr")),
            )
            .unwrap();
        assert_eq!(f.message, "Delivery failed");
        let f = std
            .notification(PushEvent::Failure(FailureKind::AppKilled), &ctx(None))
            .unwrap();
        assert_eq!(f.message, "A message could not be delivered.");
        assert_eq!(
            serde_json::to_value(std.notification(PushEvent::Message, &ctx(None)).unwrap())
                .unwrap(),
            serde_json::json!({"event": "message", "channel": "web", "session_id": "s1", "user_id": "u1",
                "from": "bot", "message": "You have a new message.", "display": "standard",
                "at": "2027-01-15T08:00:00.000Z"})
        );
    }
}
