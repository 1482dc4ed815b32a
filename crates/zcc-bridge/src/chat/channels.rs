//! Channels: those of the configuration file and those created through the admin API (stored with their secrets
//! sealed), each built into the chatbot crate's [`chatbot::channel::Channel`], and the outbox routes they need.

use serde_json::{Map, Value};

use super::secrets::{SealError, Sealer};
use crate::config::{check_chat_channel, ChatChannelConfig, Secret};
use crate::sources::chat::{source_column, CONSUMER_TYPES, REPLY_TYPES};
use crate::store::chat::{ChannelRow, ChatRoute};

/// Where a channel is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `[chat.channels.<name>]` of the configuration file: read-only through the API.
    Config,
    /// Created through the admin API, stored in the database.
    Api,
}

/// The secret keys of a channel, as paths in its settings.
pub const SECRET_PATHS: [&[&str]; 7] = [
    &["jwt_secret"],
    &["access_token"],
    &["push", "token"],
    &["bot", "token"],
    &["bot", "callback_token"],
    &["bot", "secret"],
    &["bot", "api_key"],
];

fn secret_at<'a>(c: &'a ChatChannelConfig, path: &[&str]) -> Option<&'a Secret> {
    match path {
        ["jwt_secret"] => c.jwt_secret.as_ref(),
        ["access_token"] => c.access_token.as_ref(),
        ["push", "token"] => c.push.as_ref().and_then(|p| p.token.as_ref()),
        ["bot", "token"] => c.bot.token.as_ref(),
        ["bot", "callback_token"] => c.bot.callback_token.as_ref(),
        ["bot", "secret"] => c.bot.secret.as_ref(),
        ["bot", "api_key"] => c.bot.api_key.as_ref(),
        _ => None,
    }
}

fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn set_path(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = v;
    for key in parents {
        let Some(obj) = current.as_object_mut() else {
            return;
        };
        current = obj
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(obj) = current.as_object_mut() {
        obj.insert(last.to_string(), value);
    }
}

fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = v;
    for key in parents {
        match current.get_mut(*key) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(obj) = current.as_object_mut() {
        obj.remove(*last);
    }
}

/// The chatbot crate's configuration of a channel: the same keys, the secrets exposed into the value handed to
/// the crate only (never logged), the bridge's own keys (`fallback_message`, `handover_on_bot_failure`) left out.
pub fn chatbot_config(c: &ChatChannelConfig) -> Result<chatbot::channel::ChannelConfig, String> {
    let mut v = serde_json::to_value(c).map_err(|e| e.to_string())?;
    for path in SECRET_PATHS {
        remove_path(&mut v, path);
        if let Some(secret) = secret_at(c, path) {
            set_path(&mut v, path, Value::String(secret.expose().to_string()));
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("fallback_message");
        obj.remove("handover_on_bot_failure");
    }
    // A serde error here names a field, never a value.
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Builds the chatbot crate's channel (checks the PEM key and the bot's own options).
pub fn build_channel(
    name: &str,
    c: &ChatChannelConfig,
    http: reqwest::Client,
) -> Result<chatbot::channel::Channel, String> {
    check_chat_channel(name, c)?;
    let config = chatbot_config(c).map_err(|e| format!("channel {name:?}: {e}"))?;
    chatbot::channel::Channel::new(name, &config, http)
        .map_err(|e| format!("channel {name:?}: {e}"))
}

/// A channel's settings for storage: the JSON without secrets, and the secrets sealed (`None` when it has none).
pub fn to_row(
    name: &str,
    c: &ChatChannelConfig,
    sealer: &Sealer,
    created_at: i64,
    updated_at: i64,
) -> Result<ChannelRow, SealError> {
    let mut settings = serde_json::to_value(c).map_err(|_| SealError::Corrupt)?;
    let mut secrets = Map::new();
    for path in SECRET_PATHS {
        remove_path(&mut settings, path);
        if let Some(secret) = secret_at(c, path) {
            secrets.insert(path.join("."), Value::String(secret.expose().to_string()));
        }
    }
    let secrets = if secrets.is_empty() {
        None
    } else {
        Some(sealer.seal(name, &Value::Object(secrets).to_string())?)
    };
    Ok(ChannelRow {
        name: name.to_string(),
        settings: settings.to_string(),
        secrets,
        created_at,
        updated_at,
    })
}

/// A stored channel's configuration, and whether its secrets were sealed with an earlier key.
pub fn from_row(row: &ChannelRow, sealer: &Sealer) -> Result<(ChatChannelConfig, bool), String> {
    let mut settings: Value = serde_json::from_str(&row.settings)
        .map_err(|e| format!("channel {:?}: stored settings unreadable: {e}", row.name))?;
    let mut resealed = false;
    if let Some(sealed) = &row.secrets {
        let (plain, old) = sealer
            .open(&row.name, sealed)
            .map_err(|e| format!("channel {:?}: {e}", row.name))?;
        resealed = old;
        let secrets: Map<String, Value> = serde_json::from_str(&plain)
            .map_err(|_| format!("channel {:?}: stored secrets unreadable", row.name))?;
        for (path, value) in secrets {
            let parts: Vec<&str> = path.split('.').collect();
            set_path(&mut settings, &parts, value);
        }
    }
    let config: ChatChannelConfig = serde_json::from_value(settings)
        .map_err(|e| format!("channel {:?}: stored settings unreadable: {e}", row.name))?;
    Ok((config, resealed))
}

/// For an update through the API: secret keys the body leaves out keep their stored values (secrets are
/// write-only: a client that read the channel never saw them). A key given as `null` removes the secret.
pub fn keep_omitted_secrets(body: &mut Value, stored: &ChatChannelConfig) {
    for path in SECRET_PATHS {
        let Some((_, parent)) = path.split_last() else {
            continue;
        };
        // A section the body leaves out (push) is removed as a whole, secrets included.
        let parent_present = parent.is_empty() || get_path(body, parent).is_some();
        if parent_present && get_path(body, path).is_none() {
            if let Some(secret) = secret_at(stored, path) {
                set_path(body, path, Value::String(secret.expose().to_string()));
            }
        }
    }
}

/// A channel as the API shows it: its settings with secrets masked.
pub fn masked(c: &ChatChannelConfig) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// The outbox sinks of a channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkNames {
    /// Bot turns (trigger mode).
    pub bot: String,
    /// Replies to the Post URL (trigger mode).
    pub reply: String,
    /// Push notifications.
    pub push: String,
}

impl SinkNames {
    pub fn of(channel: &str) -> Self {
        Self {
            bot: format!("chat:{channel}:bot"),
            reply: format!("chat:{channel}:reply"),
            push: format!("chat:{channel}:push"),
        }
    }
}

/// The routes of one channel: trigger mode sends consumer messages to the bot-turn outbox and the bot's answers to
/// the Post URL outbox, both created leased (`lease_ms`) to the process that logged them; push notifications get
/// every message (`mode = "all"`), and dead letters (both modes).
pub fn routes(
    name: &str,
    c: &ChatChannelConfig,
    lease_ms: i64,
) -> (Vec<ChatRoute>, Vec<(String, String)>) {
    let source = source_column(name);
    let sinks = SinkNames::of(name);
    let mut routes = Vec::new();
    let mut failures = Vec::new();
    let route = |event_type: &str, sink: &str, lease_ms: i64| ChatRoute {
        source: source.clone(),
        event_type: event_type.to_string(),
        sink: sink.to_string(),
        lease_ms,
    };
    let trigger = c.reply_mode == chatbot::zoom_connector::ReplyMode::Trigger;
    if trigger {
        for t in CONSUMER_TYPES {
            routes.push(route(t, &sinks.bot, lease_ms));
        }
        for t in REPLY_TYPES {
            routes.push(route(t, &sinks.reply, lease_ms));
        }
    }
    if let Some(push) = &c.push {
        if push.mode == chatbot::push::PushMode::All {
            for t in CONSUMER_TYPES.iter().chain(REPLY_TYPES.iter()) {
                routes.push(route(t, &sinks.push, 0));
            }
        }
        if trigger {
            failures.push((sinks.bot.clone(), sinks.push.clone()));
            failures.push((sinks.reply.clone(), sinks.push.clone()));
        }
    }
    (routes, failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChatConfig;

    fn channel() -> ChatChannelConfig {
        serde_json::from_value(serde_json::json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "jwt_secret": "0123456789abcdef0123456789abcdef-s",
            "post_url": "https://zoom.example/post", "access_token": "tok-secret-1",
            "push": {"url": "https://push.example/n", "mode": "all", "token": "push-secret-2"},
            "bot": {"kind": "http", "url": "http://bot.example/turn", "token": "bot-secret-3"}
        }))
        .unwrap()
    }

    fn sealer() -> Sealer {
        Sealer::from_config(&ChatConfig {
            encryption_key: Some(Secret::new("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
            ..ChatConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn stored_rows_hold_no_secret_in_clear_and_read_back() {
        let c = channel();
        let row = to_row("web", &c, &sealer(), 1, 2).unwrap();
        for secret in [
            "0123456789abcdef",
            "tok-secret-1",
            "push-secret-2",
            "bot-secret-3",
        ] {
            assert!(!row.settings.contains(secret), "{}", row.settings);
            assert!(!row.secrets.as_deref().unwrap().contains(secret));
        }
        let (back, old) = from_row(&row, &sealer()).unwrap();
        assert!(!old);
        assert_eq!(back.access_token.unwrap().expose(), "tok-secret-1");
        assert_eq!(back.bot.token.unwrap().expose(), "bot-secret-3");
        assert_eq!(back.push.unwrap().token.unwrap().expose(), "push-secret-2");
        let masked = masked(&c).to_string();
        assert!(
            !masked.contains("tok-secret-1") && masked.contains("***"),
            "{masked}"
        );
    }

    #[test]
    fn the_chatbot_crate_gets_the_secrets_and_builds_the_channel() {
        let c = channel();
        let built = build_channel("web", &c, reqwest::Client::new()).unwrap();
        assert!(built.post_url.is_some() && built.push.is_some());
        assert_eq!(built.bot.kind(), "http");
        assert!(!format!("{built:?}").contains("tok-secret-1"));
    }

    #[test]
    fn omitted_secrets_are_kept_and_null_removes() {
        let stored = channel();
        let mut body = serde_json::json!({
            "client_id": "cs-1", "jwt_algorithm": "HS256", "post_url": "https://zoom.example/post2",
            "push": {"url": "https://push.example/n", "token": null},
            "bot": {"kind": "http", "url": "http://bot.example/turn"}
        });
        keep_omitted_secrets(&mut body, &stored);
        let c: ChatChannelConfig = serde_json::from_value(body).unwrap();
        assert_eq!(c.access_token.unwrap().expose(), "tok-secret-1");
        assert_eq!(c.bot.token.unwrap().expose(), "bot-secret-3");
        assert!(c.push.unwrap().token.is_none());
    }

    #[test]
    fn routes_by_mode() {
        let c = channel();
        let (routes, failures) = routes("web", &c, 60_000);
        assert!(routes.iter().any(|r| r.sink == "chat:web:bot"
            && r.event_type == "chat.consumer.message"
            && r.lease_ms == 60_000));
        assert!(routes
            .iter()
            .any(|r| r.sink == "chat:web:reply" && r.event_type == "chat.bot.handover"));
        assert!(routes
            .iter()
            .any(|r| r.sink == "chat:web:push" && r.lease_ms == 0));
        assert_eq!(failures.len(), 2);
        let mut action = channel();
        action.reply_mode = chatbot::zoom_connector::ReplyMode::Action;
        action.push = None;
        let (none, no_failures) = super::routes("web", &action, 60_000);
        assert!(none.is_empty() && no_failures.is_empty());
    }
}
