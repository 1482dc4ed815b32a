//! One chatbot channel as configured (`[chat.channels.NAME]`, DESIGN.md "Contracts added for the second wave"), and
//! the pieces it makes: the client app that verifies the connector, the Post URL client, the bot backend, the push
//! client. The bridge deserialises [`ChannelConfig`] from its config file or admin API and builds a [`Channel`].
//!
//! Keys fixed by DESIGN.md: `enabled` (default true), `client_id`, `jwt_algorithm`, `jwt_secret` / `jwt_public_key`,
//! `allow_anonymous`, `auto_register`, `post_url`, `access_token`, `[push]` `url` `mode` `display`, `[bot]` `kind`
//! `url` and what each kind needs. This crate's additions: `reply_mode` (`trigger` | `action`, default `trigger`),
//! `access_token_header` (send the Access Token raw in this header instead of `Authorization: Bearer`),
//! `jwt_audience`, `jwt_leeway_seconds`, `[push]` `standard_responses` and `token`.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::backends::{self, BackendConfig, BackendError, BotBackend};
use crate::client_app::{ClientApp, ClientAppConfig, ClientAppError};
use crate::push::{PushClient, PushConfig};
use crate::secret::Secret;
use crate::zoom_connector::{AccessTokenAuth, PostUrlClient, ReplyMode};

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(flatten)]
    pub client_app: ClientAppConfig,
    #[serde(default)]
    pub reply_mode: ReplyMode,
    /// Zoom's connector Post URL (trigger mode).
    #[serde(default)]
    pub post_url: Option<String>,
    /// Zoom's connector Access Token for the Post URL.
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub access_token_header: Option<String>,
    #[serde(default)]
    pub push: Option<PushConfig>,
    pub bot: BackendConfig,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("client app: {0}")]
    ClientApp(#[from] ClientAppError),
    #[error("bot: {0}")]
    Bot(#[from] BackendError),
    #[error("{0}")]
    Invalid(String),
}

/// A channel ready to serve.
pub struct Channel {
    pub name: String,
    pub enabled: bool,
    pub reply_mode: ReplyMode,
    pub client_app: ClientApp,
    /// Present in trigger mode.
    pub post_url: Option<PostUrlClient>,
    pub push: Option<(PushConfig, PushClient)>,
    pub bot: Arc<dyn BotBackend>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("reply_mode", &self.reply_mode)
            .field("client_app", &self.client_app)
            .field("post_url", &self.post_url)
            .field("bot", &self.bot.kind())
            .finish_non_exhaustive()
    }
}

fn check_url(url: &str, key: &str) -> Result<(), ChannelError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(ChannelError::Invalid(format!(
            "{key} is not an http(s) URL"
        ))),
    }
}

impl Channel {
    /// Builds a channel; `http` should come from [`crate::http_outcome::http_client`].
    pub fn new(
        name: impl Into<String>,
        config: &ChannelConfig,
        http: reqwest::Client,
    ) -> Result<Self, ChannelError> {
        let name = name.into();
        let client_app = ClientApp::new(&config.client_app)?;
        let post_url = match (config.reply_mode, &config.post_url, &config.access_token) {
            (_, Some(url), Some(token)) if !token.is_empty() => {
                check_url(url, "post_url")?;
                let client = PostUrlClient::new(http.clone(), url.clone(), token.clone());
                Some(match &config.access_token_header {
                    Some(h) if !h.trim().is_empty() => client.with_auth(AccessTokenAuth::Header(h.trim().to_owned())),
                    _ => client,
                })
            }
            (ReplyMode::Trigger, _, _) => {
                return Err(ChannelError::Invalid(
                    "reply_mode = \"trigger\" needs post_url and access_token (from Zoom's connector page)".into(),
                ))
            }
            (ReplyMode::Action, _, _) => None,
        };
        let push = match &config.push {
            Some(p) => {
                check_url(&p.url, "push.url")?;
                Some((p.clone(), PushClient::new(http.clone(), p)))
            }
            None => None,
        };
        let bot = backends::build(&config.bot, http)?;
        Ok(Channel {
            name,
            enabled: config.enabled,
            reply_mode: config.reply_mode,
            client_app,
            post_url,
            push,
            bot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> ChannelConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn design_keys_build_a_channel() {
        let c = cfg(json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "jwt_secret": "0123456789abcdef0123456789abcdef",
            "allow_anonymous": true, "post_url": "https://zoom.example/post", "access_token": "tok-secret",
            "push": {"url": "https://push.example/n", "mode": "all", "display": "standard"},
            "bot": {"kind": "builtin"}
        }));
        assert!(c.enabled, "enabled defaults to true");
        assert_eq!(c.reply_mode, ReplyMode::Trigger);
        let ch = Channel::new("web", &c, reqwest::Client::new()).unwrap();
        assert!(ch.post_url.is_some() && ch.push.is_some());
        assert!(ch.client_app.allows_anonymous() && !ch.client_app.auto_registers());
        let dbg = format!("{ch:?} {c:?}");
        assert!(
            !dbg.contains("tok-secret") && !dbg.contains("0123456789abcdef"),
            "{dbg}"
        );
    }

    #[test]
    fn trigger_mode_needs_the_post_url() {
        let c = cfg(json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "jwt_secret": "0123456789abcdef0123456789abcdef",
            "bot": {"kind": "builtin"}
        }));
        assert!(matches!(
            Channel::new("web", &c, reqwest::Client::new()),
            Err(ChannelError::Invalid(_))
        ));
        let c = cfg(json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "jwt_secret": "0123456789abcdef0123456789abcdef",
            "reply_mode": "action", "enabled": false, "bot": {"kind": "builtin"}
        }));
        let ch = Channel::new("web", &c, reqwest::Client::new()).unwrap();
        assert!(!ch.enabled && ch.post_url.is_none());
        let c = cfg(json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "jwt_secret": "0123456789abcdef0123456789abcdef",
            "post_url": "ftp://x", "access_token": "t", "bot": {"kind": "builtin"}
        }));
        assert!(matches!(
            Channel::new("web", &c, reqwest::Client::new()),
            Err(ChannelError::Invalid(_))
        ));
    }
}
