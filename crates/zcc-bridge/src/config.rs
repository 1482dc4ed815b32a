//! Configuration: embedded defaults, then a TOML file, then `ZCC_BRIDGE_<SECTION>__<KEY>` environment variables.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::core::activity::ActivityKind;

mod sinks;
pub use sinks::{
    check_deliver_type, BodyFormat, HubspotOptions, RawOptions, SalesforceOptions, SinkConfig,
    SinkKind, SinkOptions, ZendeskAuth, ZendeskMode, ZendeskOptions,
};

/// The annotated example configuration (`deploy/config.example.toml`): every key at its default, optional ones
/// commented out. `zcc-bridge config init` writes it.
pub const EXAMPLE: &str = include_str!("../../../deploy/config.example.toml");

/// `EXAMPLE` with a fresh admin token switched on in place of the placeholder, for `config init`.
pub fn example_with_admin_token(token: &str) -> String {
    EXAMPLE.replacen(
        "#token = \"CHANGE-ME-admin-token-at-least-16-chars\"",
        &format!("token = \"{token}\""),
        1,
    )
}

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "ZCC_BRIDGE_";

/// Largest accepted `zoom.webhook_timestamp_tolerance_seconds`: the replay window of a captured webhook.
pub const MAX_TIMESTAMP_TOLERANCE_SECONDS: i64 = 3600;

/// A value that must never be printed or logged. `Debug`, `Display` and `Serialize` all mask it, and so do the
/// errors of its `Deserialize`: a value of the wrong type is refused without being echoed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// What a secret's deserialisation errors say instead of the value.
const SECRET_NOT_SHOWN: &str = "the value is not shown: it is a secret";

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor).map(Secret)
    }
}

/// Accepts a string only. Anything else is refused with its kind, never its value: a secret given as a number
/// (an environment variable of digits is read as one) or a list must not end up in an error message.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>(found: &str) -> E {
        E::custom(format_args!(
            "invalid type: found {found}, expected a string ({SECRET_NOT_SHOWN})"
        ))
    }

    fn refuse_number<E: serde::de::Error>(found: &str) -> E {
        E::custom(format_args!(
            "invalid type: found {found}, expected a string (quote it: an environment variable of digits \
             is read as a number; {SECRET_NOT_SHOWN})"
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
        Err(Self::refuse("a boolean"))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
        Err(Self::refuse_number("an integer"))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
        Err(Self::refuse_number("an integer"))
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<String, E> {
        Err(Self::refuse_number("an integer"))
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<String, E> {
        Err(Self::refuse_number("an integer"))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
        Err(Self::refuse_number("a number"))
    }
    fn visit_char<E: serde::de::Error>(self, _: char) -> Result<String, E> {
        Err(Self::refuse("a character"))
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<String, E> {
        Err(Self::refuse("bytes"))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Err(Self::refuse("nothing"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(Self::refuse("a list"))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(Self::refuse("a table"))
    }
}

/// `deserialize_with` for lists of secrets: a single value where the list belongs is refused without echoing it
/// (the list's own error would quote it). The elements are `Secret`s.
fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    struct ListVisitor;
    impl<'de> serde::de::Visitor<'de> for ListVisitor {
        type Value = Vec<Secret>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of secret strings")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(secret) = seq.next_element::<Secret>()? {
                out.push(secret);
            }
            Ok(out)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(refuse_list("a table"))
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(refuse_list("a single string"))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(refuse_list("a boolean"))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(refuse_list("an integer"))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(refuse_list("an integer"))
        }
        fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Self::Value, E> {
            Err(refuse_list("an integer"))
        }
        fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Self::Value, E> {
            Err(refuse_list("an integer"))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(refuse_list("a number"))
        }
        fn visit_char<E: serde::de::Error>(self, _: char) -> Result<Self::Value, E> {
            Err(refuse_list("a character"))
        }
        fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Err(refuse_list("bytes"))
        }
    }
    fn refuse_list<E: serde::de::Error>(found: &str) -> E {
        E::custom(format_args!(
            "invalid type: found {found}, expected a list of strings such as [\"...\", \"...\"] \
             ({SECRET_NOT_SHOWN})"
        ))
    }
    d.deserialize_any(ListVisitor)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub zoom: ZoomConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Delivery targets (`[[sinks]]`).
    #[serde(default, deserialize_with = "sinks::typed_sinks")]
    pub sinks: Vec<SinkConfig>,
    #[serde(default)]
    pub log: LogConfig,
    /// Flow event script sources (`[flow.sources.<name>]`).
    #[serde(default)]
    pub flow: FlowConfig,
    /// Customer lookup for the live stream.
    #[serde(default)]
    pub contacts: ContactsConfig,
    #[serde(default)]
    pub stream: StreamConfig,
    /// Presence sync: contact-center interactions drive Zoom presence.
    #[serde(default)]
    pub presence: PresenceConfig,
    /// The Contact Center Zoom App (the agent panel under `/zoomapp/`).
    #[serde(default)]
    pub zoom_app: ZoomAppConfig,
    /// The chatbot channel: Zoom's bot connector to your bot (`[chat.channels.<name>]`).
    #[serde(default)]
    pub chat: ChatConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// Off by default: it writes users' Zoom presence (needs the S2S app with `user:write:admin`).
    pub enabled: bool,
    /// Zoom takes one presence update per user per minute.
    pub min_interval_seconds: u64,
    /// A session whose end never came is released after this long.
    pub session_timeout_minutes: u64,
    /// Engagements of ZCC itself.
    pub zcc: PresenceRule,
    /// Contact-center user (ZCC user id or e-mail, Genesys user id or e-mail) → Zoom user (id or e-mail), where
    /// they differ. Genesys users without an entry go by their Genesys e-mail (looked up) when the source has API
    /// access; otherwise they are reported as unmapped.
    pub users: BTreeMap<String, String>,
    /// Genesys Cloud orgs (push: `POST /webhooks/genesys/<name>`; pull: the Notifications API).
    pub genesys: BTreeMap<String, GenesysSource>,
}

/// `[presence.genesys.<name>]`: one Genesys Cloud org, how its events arrive (pushed to
/// `POST /webhooks/genesys/<name>` by an Event Orchestration workflow, and/or pulled from the Notifications API),
/// and the rule of its interactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenesysSource {
    /// Push: bearer token the data action sends, and/or a secret it signs the body with (`x-flow-signature`).
    pub token: Option<Secret>,
    pub hmac_secret: Option<Secret>,
    /// API access (OAuth client credentials): needed to pull, to look users up by e-mail and for
    /// `zcc-bridge genesys setup`. `region` is an AWS region name (`eu_central_1`) or a region domain
    /// (`mypurecloud.de`); `api_base` / `login_base` override it (a proxy, a stand-in).
    pub region: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub api_base: Option<String>,
    pub login_base: Option<String>,
    /// Pull: subscribe to `v2.users.{id}.conversations` over the Notifications API.
    pub notifications: bool,
    /// Whose conversations to subscribe to: Genesys user ids or e-mails, or every active user.
    pub users: Vec<String>,
    pub all_users: bool,
    /// A notification socket silent this long (no heartbeat, no answer to a ping sent halfway) is replaced.
    pub silence_timeout_ms: u64,
    /// How often the subscriptions are renewed (a channel expires 24 h after its last subscription).
    pub resubscribe_minutes: u64,
    /// Map Genesys users to Zoom users by their Genesys e-mail (looked up, cached) when `presence.users` has no
    /// entry for them. Needs API access.
    pub lookup_email: bool,
    pub busy_status: String,
    /// Whether a ringing (offered) interaction already counts; otherwise only a connected one.
    pub ringing: bool,
    /// Media types (`voice`, `chat`, ...), directions (`inbound`, `outbound`) and queue ids that count (empty: all).
    pub media_types: Vec<String>,
    pub directions: Vec<String>,
    pub queues: Vec<String>,
}

impl Default for GenesysSource {
    fn default() -> Self {
        Self {
            token: None,
            hmac_secret: None,
            region: None,
            client_id: None,
            client_secret: None,
            api_base: None,
            login_base: None,
            notifications: false,
            users: Vec::new(),
            all_users: false,
            silence_timeout_ms: 75_000,
            resubscribe_minutes: 20 * 60,
            lookup_email: true,
            busy_status: "On_A_Call".into(),
            ringing: false,
            media_types: Vec::new(),
            directions: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl GenesysSource {
    pub fn rule(&self) -> PresenceRule {
        PresenceRule {
            enabled: true,
            busy_status: self.busy_status.clone(),
            ringing: self.ringing,
            channels: self.media_types.clone(),
            directions: self.directions.clone(),
            queues: self.queues.clone(),
        }
    }

    /// The Notifications API subscriber's settings.
    pub fn notifications_config(&self) -> genesys::notifications::NotificationsConfig {
        let silence = std::time::Duration::from_millis(self.silence_timeout_ms.max(10));
        genesys::notifications::NotificationsConfig {
            ping_after: silence / 2,
            silence_timeout: silence,
            resubscribe_every: std::time::Duration::from_secs(self.resubscribe_minutes.max(1) * 60),
            ..Default::default()
        }
    }

    /// The API client settings, when API access is configured (`Err`: configured but unusable).
    pub fn api(&self) -> Result<Option<genesys::ClientConfig>, String> {
        let (Some(id), Some(secret)) = (&self.client_id, &self.client_secret) else {
            if self.client_id.is_some() || self.client_secret.is_some() {
                return Err("set both client_id and client_secret".into());
            }
            return Ok(None);
        };
        let region = match &self.region {
            Some(r) => {
                Some(genesys::Region::parse(r).ok_or_else(|| format!("unknown region {r:?}"))?)
            }
            None => None,
        };
        let base = |explicit: &Option<String>, from_region: fn(&genesys::Region) -> String| {
            explicit
                .clone()
                .or_else(|| region.as_ref().map(from_region))
                .ok_or_else(|| "set region (or api_base and login_base)".to_string())
        };
        Ok(Some(genesys::ClientConfig::new(
            base(&self.api_base, genesys::Region::api_base)?,
            base(&self.login_base, genesys::Region::login_base)?,
            id.clone(),
            secret.expose().to_string(),
        )))
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            min_interval_seconds: 60,
            session_timeout_minutes: 240,
            zcc: PresenceRule::default(),
            users: BTreeMap::new(),
            genesys: BTreeMap::new(),
        }
    }
}

/// Which interactions of a source count, and what they set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceRule {
    pub enabled: bool,
    /// The Zoom status while busy.
    pub busy_status: String,
    /// Whether an engagement offered to the agent (ringing) already counts; otherwise only an accepted one.
    /// A ringing offer ends when the agent accepts, rejects or misses it, or the engagement ends.
    pub ringing: bool,
    /// Only these channels / media types, directions and queues (empty: all).
    pub channels: Vec<String>,
    pub directions: Vec<String>,
    pub queues: Vec<String>,
}

impl Default for PresenceRule {
    fn default() -> Self {
        Self {
            enabled: true,
            busy_status: "On_A_Call".into(),
            ringing: false,
            channels: Vec::new(),
            directions: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl PresenceRule {
    /// Whether an interaction with these facets counts (values compared case-insensitively; an unknown value
    /// passes a filter only when the filter is empty).
    pub fn matches(
        &self,
        channel: Option<&str>,
        direction: Option<&str>,
        queue: Option<&str>,
    ) -> bool {
        let one = |allowed: &[String], value: Option<&str>| {
            allowed.is_empty()
                || value.is_some_and(|v| allowed.iter().any(|a| a.eq_ignore_ascii_case(v)))
        };
        one(&self.channels, channel) && one(&self.directions, direction) && one(&self.queues, queue)
    }
}

/// `[flow.sources.<name>]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSourceConfig {
    /// Bearer token the script sends (`Authorization: Bearer <token>`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Alternatively (or as well): a secret the body is signed with (`x-flow-signature: sha256=<hex>`).
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    #[serde(default)]
    pub fields: FlowFields,
    /// Event names of the script → our kinds (`accepted`, `disposition_saved`, ...), for names that are not
    /// recognised as they are.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
}

/// Where each of our fields is in the posted JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowFields {
    pub engagement_id: String,
    pub event: String,
    pub event_ts: String,
    pub consumer_number: String,
    pub agent_email: String,
    pub agent_id: String,
    pub queue_id: String,
    pub queue_name: String,
    pub disposition: String,
    pub disposition_id: String,
    pub channel: String,
    pub direction: String,
}

impl Default for FlowFields {
    fn default() -> Self {
        Self {
            engagement_id: "engagement_id".into(),
            event: "event".into(),
            event_ts: "event_ts".into(),
            consumer_number: "consumer_number".into(),
            agent_email: "agent_email".into(),
            agent_id: "agent_id".into(),
            queue_id: "queue_id".into(),
            queue_name: "queue_name".into(),
            disposition: "disposition".into(),
            disposition_id: "disposition_id".into(),
            channel: "channel".into(),
            direction: "direction".into(),
        }
    }
}

impl FlowFields {
    /// Every mapped path (the keys a post's extra variables exclude).
    pub fn all(&self) -> [&str; 12] {
        [
            &self.engagement_id,
            &self.event,
            &self.event_ts,
            &self.consumer_number,
            &self.agent_email,
            &self.agent_id,
            &self.queue_id,
            &self.queue_name,
            &self.disposition,
            &self.disposition_id,
            &self.channel,
            &self.direction,
        ]
    }
}

/// Checks a source's settings (called by `Config::validate`).
pub fn check_flow_source(name: &str, config: &FlowSourceConfig) -> Result<(), String> {
    check_source_name(name)?;
    if config.token.is_none() && config.hmac_secret.is_none() {
        return Err(format!(
            "source {name:?}: set token (bearer) or hmac_secret, or both"
        ));
    }
    for secret in [&config.token, &config.hmac_secret].into_iter().flatten() {
        if secret.expose().len() < 16 {
            return Err(format!(
                "source {name:?}: token and hmac_secret must be at least 16 characters"
            ));
        }
    }
    for path in config.fields.all() {
        if path.is_empty() {
            return Err(format!("source {name:?}: a field mapping is empty"));
        }
    }
    for (from, to) in &config.kinds {
        if ActivityKind::parse(to).is_none() {
            return Err(format!(
                "source {name:?}: kinds.{from} = {to:?} is not one of {}",
                ActivityKind::ALL.map(ActivityKind::as_str).join(", ")
            ));
        }
    }
    Ok(())
}

/// `[chat]`: the chatbot channel. Zoom's bot connector posts consumer messages to `POST /chat/zoom/<name>`; the
/// bridge asks the channel's bot and posts the replies to the connector's Post URL (docs/chat/).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Channels of this file (`[chat.channels.<name>]`); more can be created through the admin API.
    pub channels: BTreeMap<String, ChatChannelConfig>,
    /// AES-256-GCM key (base64 of 32 bytes, e.g. `openssl rand -base64 32`) that encrypts the secrets of channels
    /// created through the admin API before they are stored. Without it the API refuses channels with secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<Secret>,
    /// Keys used before `encryption_key` (rotation): they still decrypt; every write re-encrypts with the key.
    #[serde(deserialize_with = "secret_list")]
    pub previous_encryption_keys: Vec<Secret>,
    /// Waits between attempts of a reply to the Post URL, a bot turn and a push notification (seconds;
    /// fractions allowed; ±20% jitter): one attempt now, one after each wait, then the item is dead-lettered
    /// (replayable; a dead reply raises a `delivery_failure` push notification).
    pub retry_schedule_seconds: Vec<f64>,
    /// Longest `Retry-After` of the Post URL honoured.
    pub max_retry_after_seconds: u64,
    /// A reply or bot turn being worked on is someone else's to retry after this long (a replica that died);
    /// longer than any bot's timeout.
    pub lease_seconds: u64,
    /// How often the workers look for retries and for work other replicas queued.
    pub poll_ms: u64,
    /// Bot turns in flight at once per channel (per replica).
    pub max_concurrent_turns: usize,
    /// Timeout of one POST to the Post URL or to a push URL.
    pub post_timeout_seconds: u64,
    /// How often channels created, changed or deleted through the admin API (by any replica) are picked up.
    pub reload_seconds: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            channels: BTreeMap::new(),
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
            retry_schedule_seconds: vec![1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0],
            max_retry_after_seconds: 600,
            lease_seconds: 60,
            poll_ms: 1000,
            max_concurrent_turns: 256,
            post_timeout_seconds: 10,
            reload_seconds: 5,
        }
    }
}

/// One `[chat.channels.<name>]` (DESIGN.md "Contracts added for the second wave"; the client app, Zoom's connector
/// Post URL and Access Token, push notifications, the bot).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatChannelConfig {
    /// Kore's "Enable Channel": a disabled channel refuses the connector's requests (403).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The client app's id: the `appId` or `iss` claim of the connector's JWTs.
    pub client_id: String,
    pub jwt_algorithm: chatbot::client_app::JwtAlgorithm,
    /// HS256/HS512: the client secret (at least 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<Secret>,
    /// RS256/RS512: the PEM public key of the key pair whose private half signs the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_public_key: Option<String>,
    /// Accepted `aud` values; empty: `aud` is not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_audience: Vec<String>,
    /// Clock skew allowed on `exp`, `iat`, `nbf`.
    #[serde(default = "default_jwt_leeway")]
    pub jwt_leeway_seconds: u64,
    /// Kore's scope "Allow anonymous users": a token without `sub` and no e-mail or phone variable is accepted.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Kore's scope "Auto register new users": an identified consumer without a user record gets one; otherwise
    /// such a consumer is refused (403).
    #[serde(default)]
    pub auto_register: bool,
    /// `trigger` (asynchronous: replies go to the Post URL) or `action` (synchronous: the reply is the response).
    #[serde(default)]
    pub reply_mode: chatbot::zoom_connector::ReplyMode,
    /// Zoom's connector Post URL (trigger mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_url: Option<String>,
    /// Zoom's connector Access Token for the Post URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// ❓ Send the Access Token raw in this header instead of `Authorization: Bearer` (docs/chat/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_header: Option<String>,
    /// What the consumer is told when the bot gives no answer after its retries.
    #[serde(default = "default_chat_fallback")]
    pub fallback_message: String,
    /// Hand the conversation over to a live agent when the bot gives no answer.
    #[serde(default)]
    pub handover_on_bot_failure: bool,
    /// `[chat.channels.<name>.push]`: push notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<ChatPushConfig>,
    /// `[chat.channels.<name>.bot]`: the bot.
    pub bot: ChatBotConfig,
}

fn default_true() -> bool {
    true
}

fn default_jwt_leeway() -> u64 {
    30
}

fn default_chat_fallback() -> String {
    "Sorry, I cannot answer right now. Please try again in a moment.".into()
}

/// `[chat.channels.<name>.push]` (Kore's Push Notifications).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatPushConfig {
    pub url: String,
    /// `all` (every message) or `failures` (message delivery failures only).
    #[serde(default)]
    pub mode: chatbot::push::PushMode,
    /// `original` (the message) or `standard` (a standard response instead).
    #[serde(default)]
    pub display: chatbot::push::PushDisplay,
    /// Standard responses: event (`message`, `delivery_failure`, `socket_disconnected`, `app_killed`) → language
    /// (`en`, `de-DE`, `default`) → text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub standard_responses: BTreeMap<String, BTreeMap<String, String>>,
    /// Sent as `Authorization: Bearer` to the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

/// The bot engine behind a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatBotKind {
    Builtin,
    Http,
    Rasa,
    Directline,
    Openai,
}

impl ChatBotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatBotKind::Builtin => "builtin",
            ChatBotKind::Http => "http",
            ChatBotKind::Rasa => "rasa",
            ChatBotKind::Directline => "directline",
            ChatBotKind::Openai => "openai",
        }
    }
}

/// `[chat.channels.<name>.bot]`: `kind` and what that kind takes (docs/chat/backends.md). Unset keys take the
/// backend's defaults; a key of another kind is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBotConfig {
    pub kind: ChatBotKind,
    /// http, rasa, openai (up to `/v1`), directline (default Microsoft's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// http, rasa, directline, openai: time for one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// http: bearer token sent to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// http: where the service posts replies later (the bridge's `POST /chat/bot/<name>/callback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// http: the bearer token the service presents on callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_token: Option<Secret>,
    /// http: send the conversation so far with each turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_history: Option<bool>,
    /// rasa: the message sent when a conversation starts without text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_message: Option<String>,
    /// rasa: send language and conversation variables as `metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_metadata: Option<bool>,
    /// directline: the Direct Line secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// directline: exchange the secret for per-conversation tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tokens: Option<bool>,
    /// directline: polling for the bot's activities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_idle_ms: Option<u64>,
    /// openai: API key, model and prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_tool: Option<bool>,
    /// builtin, openai: what the consumer is told on a hand-over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_message: Option<String>,
    /// builtin: greeting, fallback, FAQ, keywords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faq: Vec<ChatFaq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_keywords: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_keywords: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatFaq {
    pub question: String,
    pub answer: String,
}

impl ChatBotConfig {
    /// A bot of `kind` with every other key unset.
    pub fn new(kind: ChatBotKind) -> Self {
        Self {
            kind,
            url: None,
            timeout_ms: None,
            token: None,
            callback_url: None,
            callback_token: None,
            send_history: None,
            start_message: None,
            send_metadata: None,
            secret: None,
            use_tokens: None,
            poll_interval_ms: None,
            settle_ms: None,
            reply_timeout_ms: None,
            session_idle_ms: None,
            api_key: None,
            model: None,
            system_prompt: None,
            temperature: None,
            max_tokens: None,
            max_history: None,
            handover_tool: None,
            handover_message: None,
            greeting: None,
            fallback: None,
            faq: Vec::new(),
            handover_keywords: None,
            end_keywords: None,
            end_message: None,
            match_threshold: None,
            suggestions: None,
        }
    }

    /// The keys that are set, by name (for the per-kind check).
    fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |set: bool, key: &'static str| {
            if set {
                keys.push(key);
            }
        };
        add(self.url.is_some(), "url");
        add(self.timeout_ms.is_some(), "timeout_ms");
        add(self.token.is_some(), "token");
        add(self.callback_url.is_some(), "callback_url");
        add(self.callback_token.is_some(), "callback_token");
        add(self.send_history.is_some(), "send_history");
        add(self.start_message.is_some(), "start_message");
        add(self.send_metadata.is_some(), "send_metadata");
        add(self.secret.is_some(), "secret");
        add(self.use_tokens.is_some(), "use_tokens");
        add(self.poll_interval_ms.is_some(), "poll_interval_ms");
        add(self.settle_ms.is_some(), "settle_ms");
        add(self.reply_timeout_ms.is_some(), "reply_timeout_ms");
        add(self.session_idle_ms.is_some(), "session_idle_ms");
        add(self.api_key.is_some(), "api_key");
        add(self.model.is_some(), "model");
        add(self.system_prompt.is_some(), "system_prompt");
        add(self.temperature.is_some(), "temperature");
        add(self.max_tokens.is_some(), "max_tokens");
        add(self.max_history.is_some(), "max_history");
        add(self.handover_tool.is_some(), "handover_tool");
        add(self.handover_message.is_some(), "handover_message");
        add(self.greeting.is_some(), "greeting");
        add(self.fallback.is_some(), "fallback");
        add(!self.faq.is_empty(), "faq");
        add(self.handover_keywords.is_some(), "handover_keywords");
        add(self.end_keywords.is_some(), "end_keywords");
        add(self.end_message.is_some(), "end_message");
        add(self.match_threshold.is_some(), "match_threshold");
        add(self.suggestions.is_some(), "suggestions");
        keys
    }

    /// The keys `kind` takes, and which of them it needs.
    pub fn keys_of(kind: ChatBotKind) -> (&'static [&'static str], &'static [&'static str]) {
        match kind {
            ChatBotKind::Builtin => (
                &[
                    "greeting",
                    "fallback",
                    "faq",
                    "handover_keywords",
                    "handover_message",
                    "end_keywords",
                    "end_message",
                    "match_threshold",
                    "suggestions",
                ],
                &[],
            ),
            ChatBotKind::Http => (
                &[
                    "url",
                    "timeout_ms",
                    "token",
                    "callback_url",
                    "callback_token",
                    "send_history",
                ],
                &["url"],
            ),
            ChatBotKind::Rasa => (
                &["url", "timeout_ms", "start_message", "send_metadata"],
                &["url"],
            ),
            ChatBotKind::Directline => (
                &[
                    "url",
                    "timeout_ms",
                    "secret",
                    "use_tokens",
                    "poll_interval_ms",
                    "settle_ms",
                    "reply_timeout_ms",
                    "session_idle_ms",
                ],
                &["secret"],
            ),
            ChatBotKind::Openai => (
                &[
                    "url",
                    "timeout_ms",
                    "api_key",
                    "model",
                    "system_prompt",
                    "temperature",
                    "max_tokens",
                    "max_history",
                    "handover_tool",
                    "handover_message",
                ],
                &["url", "model"],
            ),
        }
    }

    /// The longest a turn may take this bot (for the lease check), in ms.
    pub fn longest_turn_ms(&self) -> u64 {
        let call = self.timeout_ms.unwrap_or(match self.kind {
            ChatBotKind::Builtin => 0,
            ChatBotKind::Openai => 30_000,
            _ => 10_000,
        });
        match self.kind {
            // Start (token), send, then poll for up to reply_timeout_ms.
            ChatBotKind::Directline => call * 2 + self.reply_timeout_ms.unwrap_or(10_000),
            _ => call,
        }
    }
}

/// Checks a channel's settings as far as the configuration alone can say (the chatbot crate checks the rest
/// when it builds the channel: the PEM key, the bot's own options).
pub fn check_chat_channel(name: &str, c: &ChatChannelConfig) -> Result<(), String> {
    check_source_name(name).map_err(|e| format!("channel {name:?}: {e}"))?;
    let problem = |p: String| Err(format!("channel {name:?}: {p}"));
    let http_url = |u: &str| u.starts_with("https://") || u.starts_with("http://");
    if c.client_id.trim().is_empty() {
        return problem("client_id is empty".into());
    }
    if c.jwt_algorithm.is_hmac() {
        match &c.jwt_secret {
            None => return problem(format!("{} needs jwt_secret", c.jwt_algorithm)),
            Some(s) if s.expose().len() < chatbot::client_app::MIN_HS_SECRET_BYTES => {
                return problem(format!(
                    "jwt_secret must be at least {} bytes",
                    chatbot::client_app::MIN_HS_SECRET_BYTES
                ))
            }
            Some(_) => {}
        }
        if c.jwt_public_key.is_some() {
            return problem(format!(
                "{} takes jwt_secret, not jwt_public_key",
                c.jwt_algorithm
            ));
        }
    } else {
        match &c.jwt_public_key {
            Some(pem) if pem.contains("-----BEGIN") => {}
            _ => return problem(format!("{} needs jwt_public_key (PEM)", c.jwt_algorithm)),
        }
        if c.jwt_secret.is_some() {
            return problem(format!(
                "{} takes jwt_public_key, not jwt_secret",
                c.jwt_algorithm
            ));
        }
    }
    if c.jwt_leeway_seconds > 3600 {
        return problem("jwt_leeway_seconds must be at most 3600".into());
    }
    if let Some(url) = &c.post_url {
        if !http_url(url) {
            return problem("post_url must be an http(s) URL".into());
        }
    }
    if c.reply_mode == chatbot::zoom_connector::ReplyMode::Trigger
        && (c.post_url.is_none()
            || c.access_token
                .as_ref()
                .is_none_or(|t| t.expose().is_empty()))
    {
        return problem(
            "reply_mode = \"trigger\" needs post_url and access_token (from Zoom's connector page)"
                .into(),
        );
    }
    if c.fallback_message.trim().is_empty() {
        return problem("fallback_message is empty".into());
    }
    if let Some(push) = &c.push {
        if !http_url(&push.url) {
            return problem("push.url must be an http(s) URL".into());
        }
        const EVENTS: [&str; 4] = [
            "message",
            "delivery_failure",
            "socket_disconnected",
            "app_killed",
        ];
        if let Some(e) = push
            .standard_responses
            .keys()
            .find(|e| !EVENTS.contains(&e.as_str()))
        {
            return problem(format!(
                "push.standard_responses.{e} is not one of {}",
                EVENTS.join(", ")
            ));
        }
    }
    let (allowed, needed) = ChatBotConfig::keys_of(c.bot.kind);
    let kind = c.bot.kind.as_str();
    if let Some(key) = c.bot.set_keys().into_iter().find(|k| !allowed.contains(k)) {
        return problem(format!("bot.{key} does not apply to kind = {kind:?}"));
    }
    let set = c.bot.set_keys();
    if let Some(key) = needed.iter().find(|k| !set.contains(k)) {
        return problem(format!("bot kind = {kind:?} needs bot.{key}"));
    }
    for (key, url) in [("url", &c.bot.url), ("callback_url", &c.bot.callback_url)] {
        if url.as_deref().is_some_and(|u| !http_url(u)) {
            return problem(format!("bot.{key} must be an http(s) URL"));
        }
    }
    Ok(())
}

impl ChatConfig {
    /// What is wrong with `[chat]`: one problem per channel (later checks of a channel assume the earlier ones
    /// passed), then the outboxes' settings and the keys.
    fn problems(&self, problems: &mut Vec<InvalidValue>) {
        let invalid = |key: &'static str, problem: String| InvalidValue { key, problem };
        for (name, channel) in &self.channels {
            if let Err(p) = check_chat_channel(name, channel) {
                problems.push(invalid("chat.channels", p));
            } else if channel.bot.longest_turn_ms() >= self.lease_seconds.saturating_mul(1000) {
                problems.push(invalid(
                    "chat.lease_seconds",
                    format!(
                        "must be longer than channel {name:?}'s longest bot turn ({} ms)",
                        channel.bot.longest_turn_ms()
                    ),
                ));
            }
        }
        if self
            .retry_schedule_seconds
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            problems.push(invalid(
                "chat.retry_schedule_seconds",
                "waits must be finite and not negative".into(),
            ));
        }
        if self.lease_seconds == 0
            || self.poll_ms == 0
            || self.max_concurrent_turns == 0
            || self.post_timeout_seconds == 0
            || self.reload_seconds == 0
        {
            problems.push(invalid(
                "chat",
                "lease_seconds, poll_ms, max_concurrent_turns, post_timeout_seconds and reload_seconds must be \
                 greater than 0"
                    .into(),
            ));
        } else if self.post_timeout_seconds >= self.lease_seconds {
            problems.push(invalid(
                "chat.post_timeout_seconds",
                format!(
                    "must be shorter than chat.lease_seconds ({})",
                    self.lease_seconds
                ),
            ));
        }
        if let Some(key) = &self.encryption_key {
            problems.extend(
                check_encryption_key(key)
                    .err()
                    .map(|p| invalid("chat.encryption_key", p)),
            );
        }
        for (n, key) in self.previous_encryption_keys.iter().enumerate() {
            problems.extend(check_encryption_key(key).err().map(|p| {
                invalid(
                    "chat.previous_encryption_keys",
                    format!("key {}: {p}", n + 1),
                )
            }));
        }
    }
}

/// A `chat.encryption_key`: base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
pub fn check_encryption_key(key: &Secret) -> Result<[u8; 32], String> {
    use base64::Engine;
    let text = key.expose().trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
        })
        .map_err(|_| "not base64 (generate one with: openssl rand -base64 32)".to_string())?;
    decoded.try_into().map_err(|d: Vec<u8>| {
        format!(
            "decodes to {} bytes; AES-256 needs 32 (openssl rand -base64 32)",
            d.len()
        )
    })
}

/// Where an archive lives, parsed from `storage.media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveUrl {
    /// `file://data/media` (relative to the working directory) or `file:///var/lib/zcc/media`.
    Local(PathBuf),
    /// `s3://bucket/optional/prefix`
    S3 { bucket: String, prefix: String },
    /// `az://container/optional/prefix` (or `azure://`)
    Azure { container: String, prefix: String },
}

impl ArchiveUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let split = |rest: &str| -> Result<(String, String), String> {
            let rest = rest.trim_matches('/');
            let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(format!("{url:?} names no bucket or container"));
            }
            Ok((name.to_string(), prefix.trim_matches('/').to_string()))
        };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a path, e.g. file://data/media".into());
            }
            Ok(ArchiveUrl::Local(PathBuf::from(path)))
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = split(rest)?;
            Ok(ArchiveUrl::S3 { bucket, prefix })
        } else if let Some(rest) = url
            .strip_prefix("az://")
            .or_else(|| url.strip_prefix("azure://"))
        {
            let (container, prefix) = split(rest)?;
            Ok(ArchiveUrl::Azure { container, prefix })
        } else {
            Err(format!(
                "expected a file://, s3:// or az:// URL, got {url:?}"
            ))
        }
    }
}

/// A configured source's name: it goes into URLs, source labels and (Genesys) session ids, so it is kept plain.
pub fn check_source_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(format!(
            "source name {name:?}: use lower-case letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    #[serde(default)]
    pub sources: BTreeMap<String, FlowSourceConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsConfig {
    /// A CSV file (header row; a `phone` column) or a JSON array of objects, matched on the consumer number.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// How often the live stream looks for events other replicas logged (local events wake it at once).
    pub poll_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { poll_ms: 100 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest accepted webhook body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long graceful shutdown waits for in-flight requests before giving up.
    pub shutdown_timeout_seconds: u64,
    /// Client connections served at once (lowered to fit the open-file limit). When full, the connection idle
    /// longest is closed for a new one; if none is idle, the new one is closed.
    pub max_connections: usize,
    /// A connection with no request in flight and no byte of a new one is closed after this long.
    pub idle_timeout_seconds: u64,
    /// A request head must be complete this long after its first byte.
    pub header_read_timeout_seconds: u64,
    /// A request body must be complete this long after its head (else 408).
    pub body_read_timeout_seconds: u64,
    /// Request body bytes held at once by all requests beyond each request's first 16 KiB.
    pub body_memory_bytes: usize,
    /// Requests of one client address in flight at once on the unauthenticated endpoints (webhooks, media links);
    /// 0: no limit.
    pub max_requests_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_seconds: 30,
            max_connections: 1024,
            idle_timeout_seconds: 60,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            body_memory_bytes: 16 * 1024 * 1024,
            max_requests_per_ip: 64,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/api/v1/*`. Without one the API refuses every request.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://path` or `postgres://user:pass@host/db`. Printed with the password masked.
    pub database: Secret,
    /// Media archive location: `file://PATH` (relative or absolute), `s3://bucket/prefix`, `az://container/prefix`.
    pub media: String,
    /// Connections in the Postgres pool (per replica).
    pub max_connections: u32,
    /// Credentials and endpoint of an `s3://` archive. Unset keys fall back to the standard `AWS_*` variables.
    #[serde(default)]
    pub s3: S3Config,
    /// Credentials and endpoint of an `az://` archive. Unset keys fall back to the standard `AZURE_*` variables.
    #[serde(default)]
    pub azure: AzureConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database: Secret::new("sqlite://data/zcc-bridge.db"),
            media: "file://data/media".into(),
            max_connections: 16,
            s3: S3Config::default(),
            azure: AzureConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Any S3-compatible endpoint (MinIO, Ceph, R2, ...); AWS when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
    /// Allow a plain-http endpoint (a test server on loopback).
    pub allow_http: bool,
    /// `https://bucket.endpoint/key` instead of `https://endpoint/bucket/key`.
    pub virtual_hosted_style: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<Secret>,
    /// Blob endpoint including the account for emulators (`http://127.0.0.1:10000/devstoreaccount1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Azurite on its default port with its well-known account.
    pub use_emulator: bool,
    /// Allow a plain-http endpoint.
    pub allow_http: bool,
}

/// How `media.link` points at an archived file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// A signed, expiring URL served by the bridge (`/media/...`), whatever the store.
    #[default]
    Bridge,
    /// The store's own presigned URL (S3 and Azure; a `file://` archive falls back to bridge links).
    Presigned,
}

/// The media archive: recordings, transcripts and voicemails copied from Zoom into `storage.media`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Archive files (needs the Zoom S2S app, whose token the downloads use).
    pub enabled: bool,
    /// Files downloaded at once (per replica).
    pub concurrency: usize,
    /// Failed attempts (5xx, 429, network, refused) before a file is dead-lettered.
    pub max_attempts: u32,
    /// How long a file Zoom keeps answering "not ready" (404/409/empty) for is waited for.
    pub not_ready_give_up_seconds: u64,
    /// First wait after a "not ready" answer; doubles up to 30 minutes.
    pub not_ready_retry_ms: u64,
    /// First wait after a failure; doubles (with jitter) up to an hour. `Retry-After` wins when Zoom sends it.
    pub retry_base_ms: u64,
    /// How long a download's claim on its job lasts without renewal (renewed every third of it while it runs):
    /// how soon another replica takes over the jobs of one that died.
    pub lease_seconds: u64,
    /// Multipart part size for S3/Azure uploads; memory per download is about (1 + upload_concurrency) parts.
    pub part_size_mib: usize,
    /// Parts of one file uploaded at once.
    pub upload_concurrency: usize,
    pub links: LinkMode,
    /// Lifetime of a link handed out in a record.
    pub link_ttl_seconds: u64,
    /// Base URL of links to the bridge (`https://bridge.example.com`); default `http://{server.listen}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Key that signs links. Default: a random key generated once and kept in the database (shared by replicas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_secret: Option<Secret>,
    /// Delete archived files this many days after archiving, per kind; unset keeps them forever.
    pub retention_days: RetentionConfig,
    /// How often the retention policy is applied.
    pub retention_check_seconds: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency: 4,
            max_attempts: 12,
            not_ready_give_up_seconds: 72 * 3600,
            not_ready_retry_ms: 60_000,
            retry_base_ms: 10_000,
            lease_seconds: 60,
            part_size_mib: 8,
            upload_concurrency: 1,
            links: LinkMode::Bridge,
            link_ttl_seconds: 3600,
            public_url: None,
            link_secret: None,
            retention_days: RetentionConfig::default(),
            retention_check_seconds: 900,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recordings: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcripts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voicemails: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomConfig {
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub webhook_secret_token: Option<Secret>,
    /// Several tokens at once while rotating; any of them verifies.
    #[serde(deserialize_with = "secret_list")]
    pub webhook_secret_tokens: Vec<Secret>,
    /// Accepted distance between `x-zm-request-timestamp` and now, either way.
    pub webhook_timestamp_tolerance_seconds: i64,
    pub api_base: String,
    pub oauth_base: String,
    /// Requests per second this app allows itself per Zoom rate-limit label. Zoom's limits are per account and
    /// shared by every app on it: set this app's share. Defaults: a Business+ ZCC account's whole limit.
    pub light_per_second: f64,
    pub medium_per_second: f64,
    pub heavy_per_second: f64,
    /// WebSocket event subscription endpoint (`wss://ws.zoom.us/ws`) and its subscription id (from the app's
    /// event subscription page). Both set: events also arrive over the socket (needs the S2S app).
    pub websocket_url: Option<String>,
    pub websocket_subscription_id: Option<String>,
    /// Heartbeat interval of the socket (Zoom: 30 s).
    pub websocket_heartbeat_seconds: u64,
    /// After a reconnect, the disconnection gap widened by this much on both sides is reconciled (once this
    /// much time has passed since the reconnect).
    pub websocket_gap_margin_seconds: u64,
}

impl Default for ZoomConfig {
    fn default() -> Self {
        Self {
            account_id: None,
            client_id: None,
            client_secret: None,
            webhook_secret_token: None,
            webhook_secret_tokens: Vec::new(),
            webhook_timestamp_tolerance_seconds: 300,
            api_base: "https://api.zoom.us/v2".into(),
            oauth_base: "https://zoom.us".into(),
            light_per_second: 40.0,
            medium_per_second: 20.0,
            heavy_per_second: 10.0,
            websocket_url: None,
            websocket_subscription_id: None,
            websocket_heartbeat_seconds: 30,
            websocket_gap_margin_seconds: 300,
        }
    }
}

impl ZoomConfig {
    /// The REST client's settings, when the Server-to-Server OAuth app is configured.
    pub fn client_config(&self) -> Option<zoom::api::ClientConfig> {
        let account_id = self.account_id.clone().filter(|v| !v.is_empty())?;
        let client_id = self.client_id.clone().filter(|v| !v.is_empty())?;
        let client_secret = self
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .filter(|v| !v.is_empty())?;
        Some(zoom::api::ClientConfig {
            account_id,
            client_id,
            client_secret,
            oauth_base: self.oauth_base.clone(),
            api_base: self.api_base.clone(),
            light_per_second: self.light_per_second,
            medium_per_second: self.medium_per_second,
            heavy_per_second: self.heavy_per_second,
            ..Default::default()
        })
    }

    /// Every configured webhook secret token, the single key first.
    pub fn webhook_secrets(&self) -> Vec<&str> {
        self.webhook_secret_token
            .iter()
            .chain(self.webhook_secret_tokens.iter())
            .map(Secret::expose)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Most events committed in one transaction (one fsync).
    pub max_batch: usize,
    /// Concurrent committing transactions. SQLite always uses one writer.
    pub postgres_committers: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            postgres_committers: 4,
        }
    }
}

/// Reconciliation with Zoom's REST API (needs the `zoom` S2S OAuth app).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Run the schedule and the event-driven fetches when the Zoom app is configured.
    pub enabled: bool,
    /// Local time of the nightly run, `HH:MM`.
    pub nightly_at: String,
    /// IANA time zone of `nightly_at`, e.g. `America/Los_Angeles`.
    pub timezone: String,
    /// The nightly window starts this many days before the previous run's end (late data).
    pub lookback_days: u32,
    /// Minutes between incremental runs; 0 turns them off.
    pub incremental_interval_minutes: u32,
    /// Overlap of an incremental window with the previous run.
    pub incremental_lookback_minutes: u32,
    /// Parts of a window walked at once.
    pub concurrency: usize,
    /// Fetch an engagement's REST view soon after it ends (and when its recordings, transcripts or voicemails
    /// complete).
    pub fetch_on_events: bool,
    /// Quiet time after such an event before fetching.
    pub fetch_settle_seconds: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            nightly_at: "02:00".into(),
            timezone: "UTC".into(),
            lookback_days: 2,
            incremental_interval_minutes: 0,
            incremental_lookback_minutes: 60,
            concurrency: 3,
            fetch_on_events: true,
            fetch_settle_seconds: 120,
        }
    }
}

impl ReconcileConfig {
    /// `nightly_at` as a time of day.
    pub fn nightly_time(&self) -> Result<chrono::NaiveTime, InvalidValue> {
        chrono::NaiveTime::parse_from_str(&self.nightly_at, "%H:%M").map_err(|e| InvalidValue {
            key: "reconcile.nightly_at",
            problem: format!("expected HH:MM, got {:?}: {e}", self.nightly_at),
        })
    }

    /// `timezone` as an IANA zone.
    pub fn time_zone(&self) -> Result<chrono_tz::Tz, InvalidValue> {
        self.timezone.parse().map_err(|_| InvalidValue {
            key: "reconcile.timezone",
            problem: format!("unknown IANA time zone {:?}", self.timezone),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Wait after an engagement ends before delivering it as completed, unless notes, dispositions and media are
    /// all there sooner.
    pub settle_seconds: u64,
    /// Changes to an engagement already delivered are gathered this long into one `engagement.updated`.
    pub coalesce_ms: u64,
    /// Waits between attempts (seconds; fractions allowed): one attempt now, then one after each wait, then the
    /// delivery is dead-lettered. Each wait gets ±20% jitter. Default: the Standard Webhooks schedule.
    pub retry_schedule_seconds: Vec<f64>,
    /// Longest `Retry-After` honoured; a longer one is capped to this.
    pub max_retry_after_seconds: u64,
    /// A claimed delivery is someone else's to retry after this long (a replica that died mid-attempt); longer
    /// than any sink's timeout.
    pub lease_seconds: u64,
    /// How often workers look for due deliveries written by other replicas or due for a retry.
    pub poll_ms: u64,
    /// Response bodies are kept in the attempt log up to this many bytes.
    pub response_body_bytes: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            settle_seconds: 300,
            coalesce_ms: 1000,
            retry_schedule_seconds: vec![5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
            max_retry_after_seconds: 3600,
            lease_seconds: 120,
            poll_ms: 1000,
            response_body_bytes: 2048,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `zcc_bridge=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A configuration value that is well-formed TOML but not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct InvalidValue {
    pub key: &'static str,
    pub problem: String,
}

/// What `Config::readiness` finds.
#[derive(Debug, Default)]
pub struct Readiness {
    pub errors: Vec<InvalidValue>,
    pub warnings: Vec<InvalidValue>,
}

/// Every problem found in a configuration (at least one), each with its key.
#[derive(Debug)]
pub struct InvalidConfig(pub Vec<InvalidValue>);

impl InvalidConfig {
    /// `Ok` when there is nothing to report.
    pub fn from_problems(problems: Vec<InvalidValue>) -> Result<(), Self> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Self(problems))
        }
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "invalid configuration ({} problems):", all.len())?;
                for p in all {
                    write!(f, "\n  {}: {}", p.key, p.problem)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for InvalidConfig {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX).split("__"))
    }

    /// `load` without `validate`: the file and the environment read and typed (every section's type errors at
    /// once), the values not yet judged.
    pub fn read(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::read_from(file, Env::prefixed(ENV_PREFIX).split("__"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let config = Self::read_from(file, env)?;
        config.validate()?;
        Ok(config)
    }

    fn read_from(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(DefaultsView::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            check_toml_syntax(path)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(env.ignore(&["config"]));
        let config: Config = figment.extract().map_err(|e| {
            // serde stops at the first error; reading each section alone finds one in every section.
            let mut errors = section_errors(&figment);
            if errors.is_empty() {
                errors.push(figment_message(&e));
            }
            match errors.as_slice() {
                [one] => anyhow::anyhow!("invalid configuration: {one}"),
                all => anyhow::anyhow!(
                    "invalid configuration ({} problems):\n  {}",
                    all.len(),
                    all.join("\n  ")
                ),
            }
        })?;
        Ok(config)
    }

    /// Checks what types alone cannot; every problem at once.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::from_problems(self.problems())
    }

    /// What is wrong with the values, each problem with its key (empty: nothing).
    pub fn problems(&self) -> Vec<InvalidValue> {
        let mut problems = Vec::new();
        problems.extend(self.database_kind().err());
        for (name, source) in &self.flow.sources {
            problems.extend(
                check_flow_source(name, source)
                    .err()
                    .map(|problem| InvalidValue {
                        key: "flow.sources",
                        problem,
                    }),
            );
        }
        if self.presence.min_interval_seconds == 0 || self.presence.session_timeout_minutes == 0 {
            problems.push(InvalidValue {
                key: "presence",
                problem: "min_interval_seconds and session_timeout_minutes must be greater than 0"
                    .into(),
            });
        }
        const STATUSES: [&str; 9] = [
            "Away",
            "Available",
            "In_Calendar_Event",
            "Presenting",
            "In_A_Zoom_Meeting",
            "On_A_Call",
            "Out_of_Office",
            "Busy",
            "Do_Not_Disturb",
        ];
        let busy_statuses = std::iter::once(&self.presence.zcc.busy_status)
            .chain(self.presence.genesys.values().map(|g| &g.busy_status));
        for status in busy_statuses {
            if !STATUSES.contains(&status.as_str()) {
                problems.push(InvalidValue {
                    key: "presence.*.busy_status",
                    problem: format!("{status:?} is not one of {}", STATUSES.join(", ")),
                });
            }
        }
        for (name, source) in &self.presence.genesys {
            // One problem per source: later checks assume the earlier ones passed.
            let check = || -> Result<(), InvalidValue> {
                let invalid = |problem: String| InvalidValue {
                    key: "presence.genesys",
                    problem: format!("source {name:?}: {problem}"),
                };
                check_source_name(name).map_err(invalid)?;
                let secrets = [&source.token, &source.hmac_secret];
                if secrets
                    .iter()
                    .flat_map(|s| s.iter())
                    .any(|s| s.expose().len() < 16)
                {
                    return Err(invalid(
                        "token and hmac_secret need at least 16 characters".into(),
                    ));
                }
                let api = source.api().map_err(invalid)?;
                if source.notifications {
                    if source.resubscribe_minutes == 0 || source.resubscribe_minutes >= 24 * 60 {
                        return Err(invalid(
                            "resubscribe_minutes must be between 1 and 1439 (channels expire after 24 h)".into(),
                        ));
                    }
                    if api.is_none() {
                        return Err(invalid(
                            "notifications need API access (client_id, client_secret, region)"
                                .into(),
                        ));
                    }
                    if !source.all_users && source.users.is_empty() {
                        return Err(invalid(
                            "notifications need users (Genesys user ids or e-mails) or all_users = true".into(),
                        ));
                    }
                } else if secrets.iter().all(|s| s.is_none()) {
                    return Err(invalid(
                        "set token or hmac_secret (push), or notifications = true with API access (pull)".into(),
                    ));
                }
                Ok(())
            };
            problems.extend(check().err());
        }
        if self.stream.poll_ms == 0 {
            problems.push(InvalidValue {
                key: "stream.poll_ms",
                problem: "must be greater than 0".into(),
            });
        }
        self.validate_delivery(&mut problems);
        self.zoom_app.check(&mut problems);
        self.chat.problems(&mut problems);
        if let Err(problem) = ArchiveUrl::parse(&self.storage.media) {
            problems.push(InvalidValue {
                key: "storage.media",
                problem,
            });
        }
        if self.media.concurrency == 0
            || self.media.max_attempts == 0
            || self.media.upload_concurrency == 0
            || self.media.link_ttl_seconds == 0
            || self.media.retention_check_seconds == 0
            || self.media.lease_seconds == 0
        {
            problems.push(InvalidValue {
                key: "media",
                problem: "concurrency, max_attempts, upload_concurrency, link_ttl_seconds, retention_check_seconds and lease_seconds must be greater than 0"
                    .into(),
            });
        }
        if !(5..=512).contains(&self.media.part_size_mib) {
            problems.push(InvalidValue {
                key: "media.part_size_mib",
                problem: format!(
                    "must be between 5 and 512 (S3's smallest part is 5 MiB), got {}",
                    self.media.part_size_mib
                ),
            });
        }
        if let Some(url) = &self.media.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(InvalidValue {
                    key: "media.public_url",
                    problem: format!("expected an http(s) URL, got {url:?}"),
                });
            }
        }
        if self
            .media
            .link_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            problems.push(InvalidValue {
                key: "media.link_secret",
                problem: "must be at least 16 characters".into(),
            });
        }
        if self.server.max_body_bytes == 0 {
            problems.push(InvalidValue {
                key: "server.max_body_bytes",
                problem: "must be greater than 0".into(),
            });
        }
        if self.server.max_connections == 0
            || self.server.idle_timeout_seconds == 0
            || self.server.header_read_timeout_seconds == 0
            || self.server.body_read_timeout_seconds == 0
        {
            problems.push(InvalidValue {
                key: "server",
                problem: "max_connections, idle_timeout_seconds, header_read_timeout_seconds and \
                          body_read_timeout_seconds must be greater than 0"
                    .into(),
            });
        }
        if self.server.body_memory_bytes < self.server.max_body_bytes {
            problems.push(InvalidValue {
                key: "server.body_memory_bytes",
                problem: format!(
                    "must be at least server.max_body_bytes ({}), or a largest body could never be read",
                    self.server.max_body_bytes
                ),
            });
        }
        if !(1..=MAX_TIMESTAMP_TOLERANCE_SECONDS)
            .contains(&self.zoom.webhook_timestamp_tolerance_seconds)
        {
            problems.push(InvalidValue {
                key: "zoom.webhook_timestamp_tolerance_seconds",
                problem: format!(
                    "must be between 1 and {MAX_TIMESTAMP_TOLERANCE_SECONDS} (a longer window lets a captured \
                     request be replayed for longer), got {}",
                    self.zoom.webhook_timestamp_tolerance_seconds
                ),
            });
        }
        if let Err(problem) = check_log_filter(&self.log.level) {
            problems.push(InvalidValue {
                key: "log.level",
                problem,
            });
        }
        problems.extend(self.reconcile.nightly_time().err());
        problems.extend(self.reconcile.time_zone().err());
        if self.zoom.websocket_heartbeat_seconds == 0 {
            problems.push(InvalidValue {
                key: "zoom.websocket_heartbeat_seconds",
                problem: "must be greater than 0".into(),
            });
        }
        if let Some(url) = &self.zoom.websocket_url {
            if !(url.starts_with("wss://") || url.starts_with("ws://")) {
                problems.push(InvalidValue {
                    key: "zoom.websocket_url",
                    problem: format!("expected a ws(s):// URL, got {url:?}"),
                });
            }
        }
        if self.reconcile.concurrency == 0 {
            problems.push(InvalidValue {
                key: "reconcile.concurrency",
                problem: "must be greater than 0".into(),
            });
        }
        for (key, rate) in [
            ("zoom.light_per_second", self.zoom.light_per_second),
            ("zoom.medium_per_second", self.zoom.medium_per_second),
            ("zoom.heavy_per_second", self.zoom.heavy_per_second),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                problems.push(InvalidValue {
                    key,
                    problem: format!("must be a positive number, got {rate}"),
                });
            }
        }
        if self.ingest.max_batch == 0 || self.ingest.postgres_committers == 0 {
            problems.push(InvalidValue {
                key: "ingest",
                problem: "max_batch and postgres_committers must be greater than 0".into(),
            });
        }
        if self.storage.max_connections < 2 {
            problems.push(InvalidValue {
                key: "storage.max_connections",
                problem: "must be at least 2".into(),
            });
        }
        for (key, url) in [
            ("zoom.api_base", &self.zoom.api_base),
            ("zoom.oauth_base", &self.zoom.oauth_base),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(InvalidValue {
                    key,
                    problem: format!("expected an http(s) URL, got {url:?}"),
                });
            }
        }
        if self
            .admin
            .token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            problems.push(InvalidValue {
                key: "admin.token",
                problem: "must be at least 16 characters".into(),
            });
        }
        problems
    }

    /// What a deployment needs and this configuration leaves unset: `errors` for a part that is on but cannot
    /// work, `warnings` for a part that is off for want of a credential. `serve` and `config check` refuse the
    /// errors; the demo fills in its own secrets first.
    pub fn readiness(&self) -> Readiness {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let zoom = &self.zoom;
        let set = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
        let s2s = [
            ("account_id", set(zoom.account_id.as_deref())),
            ("client_id", set(zoom.client_id.as_deref())),
            (
                "client_secret",
                set(zoom.client_secret.as_ref().map(Secret::expose)),
            ),
        ];
        let s2s_complete = s2s.iter().all(|(_, set)| *set);
        if !s2s_complete && s2s.iter().any(|(_, set)| *set) {
            let missing: Vec<&str> = s2s
                .iter()
                .filter(|(_, set)| !set)
                .map(|(k, _)| *k)
                .collect();
            errors.push(InvalidValue {
                key: "zoom",
                problem: format!(
                    "the Server-to-Server OAuth app needs account_id, client_id and client_secret; {} not set",
                    missing.join(" and ")
                ),
            });
        }
        let websocket = zoom.websocket_url.is_some();
        if websocket && (!s2s_complete || !set(zoom.websocket_subscription_id.as_deref())) {
            errors.push(InvalidValue {
                key: "zoom.websocket_url",
                problem: "the WebSocket needs zoom.websocket_subscription_id and the Server-to-Server OAuth app"
                    .into(),
            });
        }
        if self.zoom.webhook_secrets().is_empty() && !websocket {
            errors.push(InvalidValue {
                key: "zoom.webhook_secret_token",
                problem: "not set: every Zoom webhook would be refused (the app's Secret Token, under Feature > \
                          Event Subscriptions), and no WebSocket is configured either"
                    .into(),
            });
        }
        if self.presence.enabled && !s2s_complete {
            errors.push(InvalidValue {
                key: "presence.enabled",
                problem:
                    "presence sync writes Zoom presence through the Server-to-Server OAuth app \
                          (zoom.account_id, client_id, client_secret), which is not configured"
                        .into(),
            });
        }
        if !s2s_complete && (self.reconcile.enabled || self.media.enabled) {
            warnings.push(InvalidValue {
                key: "zoom",
                problem: "no Server-to-Server OAuth app (account_id, client_id, client_secret): reconciliation \
                          and the media archive are off"
                    .into(),
            });
        }
        if self.admin.token.is_none() {
            warnings.push(InvalidValue {
                key: "admin.token",
                problem: "not set: the API and the console accept API keys only".into(),
            });
        }
        let zoom_app = &self.zoom_app;
        if !zoom_app.credentials().is_empty() {
            if zoom_app.redirect_url.is_none() {
                warnings.push(InvalidValue {
                    key: "zoom_app.redirect_url",
                    problem: "not set: the Zoom App's web install flow (/zoomapp/install) and \
                              manifest (`zcc-bridge zoomapp manifest`) are unavailable"
                        .into(),
                });
            }
            if zoom_app.webhook_secret_token.is_none() {
                warnings.push(InvalidValue {
                    key: "zoom_app.webhook_secret_token",
                    problem: "not set: the Zoom App's deauthorization notices are refused, so a user's tokens \
                              and data are not deleted when they remove the app"
                        .into(),
                });
            }
        }
        Readiness { errors, warnings }
    }

    pub fn database_kind(&self) -> Result<DatabaseKind, InvalidValue> {
        let url = self.storage.database.expose();
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(InvalidValue {
                key: "storage.database",
                problem: format!(
                    "expected sqlite://PATH or postgres://USER:PASS@HOST/DB, got {:?}",
                    mask_url_password(url)
                ),
            })
        }
    }

    /// The configuration as TOML, secrets masked and the database password hidden.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        let mut value = toml_value(self)?;
        if let Some(storage) = value.get_mut("storage").and_then(|s| s.as_table_mut()) {
            storage.insert(
                "database".into(),
                mask_url_password(self.storage.database.expose()).into(),
            );
        }
        Ok(toml::to_string_pretty(&value)?)
    }
}

impl Config {
    fn validate_delivery(&self, problems: &mut Vec<InvalidValue>) {
        let d = &self.delivery;
        if d.retry_schedule_seconds
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            problems.push(InvalidValue {
                key: "delivery.retry_schedule_seconds",
                problem: "waits must be finite and not negative".into(),
            });
        }
        if d.lease_seconds == 0 || d.poll_ms == 0 {
            problems.push(InvalidValue {
                key: "delivery",
                problem: "lease_seconds and poll_ms must be greater than 0".into(),
            });
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            let problem = if sink.name.is_empty()
                || !sink
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Some(format!(
                    "sink name {:?}: use letters, digits, '-' and '_'",
                    sink.name
                ))
            } else if !names.insert(sink.name.as_str()) {
                Some(format!("two sinks are named {:?}", sink.name))
            } else if !(sink.url.starts_with("https://") || sink.url.starts_with("http://")) {
                Some(format!("sink {:?}: url must be http(s)", sink.name))
            } else if sink.deliver.is_empty() {
                Some(format!("sink {:?}: deliver lists nothing", sink.name))
            } else if let Some(problem) = sink
                .deliver
                .iter()
                .find_map(|t| sinks::check_deliver_type(t).err())
            {
                Some(format!("sink {:?}: deliver: {problem}", sink.name))
            } else if sink.concurrency == 0 || sink.timeout_seconds == 0 {
                Some(format!(
                    "sink {:?}: concurrency and timeout_seconds must be greater than 0",
                    sink.name
                ))
            } else if sink
                .rate_per_second
                .is_some_and(|r| !(r > 0.0 && r.is_finite()))
            {
                Some(format!(
                    "sink {:?}: rate_per_second must be positive",
                    sink.name
                ))
            } else if sink.timeout_seconds >= d.lease_seconds {
                Some(format!(
                    "sink {:?}: timeout_seconds must be shorter than delivery.lease_seconds ({})",
                    sink.name, d.lease_seconds
                ))
            } else {
                // Each sink kind's own options are checked by the delivery module (`server::load_config`).
                None
            };
            if let Some(problem) = problem {
                problems.push(InvalidValue {
                    key: "sinks",
                    problem,
                });
            }
        }
    }
}

fn toml_value(config: &Config) -> anyhow::Result<toml::Value> {
    Ok(toml::Value::try_from(config)?)
}

/// Defaults as a serialisable tree (the real `Config` masks secrets when serialised, so it cannot seed figment).
#[derive(Serialize, Default)]
struct DefaultsView {
    server: ServerConfig,
    storage: StorageDefaults,
    zoom: ZoomDefaults,
    ingest: IngestConfig,
    reconcile: ReconcileConfig,
    media: MediaConfig,
    delivery: DeliveryConfig,
    log: LogConfig,
    admin: BTreeMap<String, String>,
    stream: StreamConfig,
}

#[derive(Serialize)]
struct StorageDefaults {
    database: String,
    media: String,
    max_connections: u32,
    s3: S3Config,
    azure: AzureConfig,
}

impl Default for StorageDefaults {
    fn default() -> Self {
        let d = StorageConfig::default();
        Self {
            database: d.database.expose().to_string(),
            media: d.media,
            max_connections: d.max_connections,
            s3: d.s3,
            azure: d.azure,
        }
    }
}

#[derive(Serialize)]
struct ZoomDefaults {
    webhook_secret_tokens: Vec<String>,
    webhook_timestamp_tolerance_seconds: i64,
    api_base: String,
    oauth_base: String,
    light_per_second: f64,
    medium_per_second: f64,
    heavy_per_second: f64,
    websocket_heartbeat_seconds: u64,
    websocket_gap_margin_seconds: u64,
}

impl Default for ZoomDefaults {
    fn default() -> Self {
        let d = ZoomConfig::default();
        Self {
            webhook_secret_tokens: Vec::new(),
            webhook_timestamp_tolerance_seconds: d.webhook_timestamp_tolerance_seconds,
            api_base: d.api_base,
            oauth_base: d.oauth_base,
            light_per_second: d.light_per_second,
            medium_per_second: d.medium_per_second,
            heavy_per_second: d.heavy_per_second,
            websocket_heartbeat_seconds: d.websocket_heartbeat_seconds,
            websocket_gap_margin_seconds: d.websocket_gap_margin_seconds,
        }
    }
}

/// One line naming the key, the problem and where the value came from. Values are quoted only where they cannot
/// be secrets (see `kind_message`).
/// The type errors of each top-level section read alone, and the unknown sections.
fn section_errors(figment: &Figment) -> Vec<String> {
    fn read<T: serde::de::DeserializeOwned>(figment: &Figment, key: &str, out: &mut Vec<String>) {
        if figment.contains(key) {
            if let Err(e) = figment.extract_inner::<T>(key) {
                // `extract_inner` puts the section last in the error's path.
                out.extend(e.into_iter().map(|mut e| {
                    if e.path.last().is_some_and(|last| last == key) {
                        e.path.rotate_right(1);
                    }
                    error_message(&e)
                }));
            }
        }
    }
    /// Read only for its errors.
    #[derive(Deserialize)]
    struct Sinks(
        #[serde(deserialize_with = "sinks::typed_sinks")]
        #[allow(dead_code)]
        Vec<SinkConfig>,
    );
    let mut out = Vec::new();
    read::<ServerConfig>(figment, "server", &mut out);
    read::<AdminConfig>(figment, "admin", &mut out);
    read::<StorageConfig>(figment, "storage", &mut out);
    read::<ZoomConfig>(figment, "zoom", &mut out);
    read::<IngestConfig>(figment, "ingest", &mut out);
    read::<ReconcileConfig>(figment, "reconcile", &mut out);
    read::<MediaConfig>(figment, "media", &mut out);
    read::<DeliveryConfig>(figment, "delivery", &mut out);
    read::<Sinks>(figment, "sinks", &mut out);
    read::<LogConfig>(figment, "log", &mut out);
    read::<FlowConfig>(figment, "flow", &mut out);
    read::<ContactsConfig>(figment, "contacts", &mut out);
    read::<StreamConfig>(figment, "stream", &mut out);
    read::<PresenceConfig>(figment, "presence", &mut out);
    read::<ZoomAppConfig>(figment, "zoom_app", &mut out);
    read::<ChatConfig>(figment, "chat", &mut out);
    const SECTIONS: [&str; 16] = [
        "server",
        "admin",
        "storage",
        "zoom",
        "ingest",
        "reconcile",
        "media",
        "delivery",
        "sinks",
        "log",
        "flow",
        "contacts",
        "stream",
        "presence",
        "zoom_app",
        "chat",
    ];
    if let Ok(data) = figment::Provider::data(figment) {
        for dict in data.values() {
            for key in dict.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
                out.push(format!(
                    "{key}: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            }
        }
    }
    out
}

fn figment_message(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| error_message(&e))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One error (not the rest of its chain): `key.path: what (from where)`, never a secret's value.
fn error_message(e: &figment::Error) -> String {
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", e.path.join("."))
    };
    let origin = e
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    format!("{key}{}{origin}", kind_message(&e.kind, &e.path))
}

/// Whether the key at `path` holds (or may hold) a secret, by its name: the keys of `Secret` values refuse wrong
/// types without echoing them anyway; this also covers keys added later and values given to the wrong key.
fn secret_key(path: &[String]) -> bool {
    const HINTS: [&str; 5] = ["token", "secret", "password", "key", "database"];
    path.iter()
        .rev()
        .find(|segment| segment.parse::<usize>().is_err())
        .is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            HINTS.iter().any(|hint| name.contains(hint))
        })
}

/// A figment error's message, without the offending value when it could be a secret: on a secret key, or where a
/// section or list was expected (a value given one level too high, e.g. `ZCC_BRIDGE_ADMIN=<token>`, or a list key
/// given a string, lands there).
fn kind_message(kind: &figment::error::Kind, path: &[String]) -> String {
    use figment::error::{Actual, Kind};
    let compound = |expected: &str| {
        ["sequence", "map", "struct", "tuple", "list", "table"]
            .iter()
            .any(|word| expected.contains(word))
    };
    let hide = |actual: &Actual| -> String {
        match actual {
            Actual::Bool(_) => "a boolean".into(),
            Actual::Unsigned(_) | Actual::Signed(_) => "an integer".into(),
            Actual::Float(_) => "a number".into(),
            Actual::Char(_) => "a character".into(),
            Actual::Str(_) => "a string".into(),
            Actual::Bytes(_) => "bytes".into(),
            Actual::Other(_) => "a value".into(),
            other => other.to_string(),
        }
    };
    let secret = secret_key(path);
    match kind {
        Kind::InvalidType(actual, expected) if secret || compound(expected) => format!(
            "invalid type: found {}, expected {expected} (the value is not shown)",
            hide(actual)
        ),
        Kind::InvalidValue(actual, expected) if secret || compound(expected) => format!(
            "invalid value: found {}, expected {expected} (the value is not shown)",
            hide(actual)
        ),
        Kind::Unsupported(actual) if secret => format!("unsupported type {}", hide(actual)),
        Kind::UnsupportedKey(actual, expected) if secret => {
            format!("unsupported key type {}: must be {expected}", hide(actual))
        }
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) if secret => {
            "integer out of range (the value is not shown)".into()
        }
        // A deserializer's own message may quote what it was given (`Secret`'s own messages do not).
        Kind::Message(m) if secret && !m.contains(SECRET_NOT_SHOWN) => {
            "invalid value (the value is not shown: it is a secret)".into()
        }
        Kind::UnknownVariant(..) if secret => {
            "invalid value (the value is not shown: it is a secret)".into()
        }
        other => other.to_string(),
    }
}

/// Checks a config file's TOML syntax first, so that a syntax error is reported by position only: the parser's
/// own message quotes the offending line, which may hold a secret (`token = unquoted-secret`).
fn check_toml_syntax(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    let Err(e) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let position = e
        .span()
        .map(|span| {
            let before = text.get(..span.start).unwrap_or(&text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    // The message describes the problem ("invalid string", "expected `=`"), not the text.
    let problem = e
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .to_string();
    anyhow::bail!(
        "invalid configuration: {}: TOML syntax error{position}: {problem} (the line is not shown: it may hold a secret)",
        path.display()
    )
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

/// Checks a `log.level` filter: it must parse as a `tracing` filter, and every target in it must look like a module
/// path (`zcc_bridge::http`). `EnvFilter` itself takes any other word as a target name (`!!!` would turn logging
/// off for everything else).
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\" or \"zcc_bridge=debug,info\")".into());
    }
    for directive in filter.split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let target = directive.split(['[', '=']).next().unwrap_or_default();
        let is_level = target
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_ok();
        let target_ok = target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
        if !(is_level || target_ok || (target.is_empty() && directive.starts_with('['))) {
            return Err(format!(
                "{directive:?} is neither a level (trace, debug, info, warn, error, off) nor TARGET=LEVEL with a \
                 module path as the target"
            ));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|e| format!("{filter:?} is not a valid filter: {e}"))
}

// ---------------------------------------------------------------------------------------------------------------
// The Contact Center Zoom App (`[zoom_app]`, DESIGN.md "Contracts added for the second wave").

/// One of the app's credential sets (`[zoom_app.development]`, `[zoom_app.production]`): Marketplace shows both
/// side by side, and both may be in use at once; an app context's `aud` (the client id) says which verifies it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomAppCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// The challenge method of in-client OAuth (`zoomSdk.authorize`). Zoom's documents disagree (current docs and the
/// advanced sample: `plain`; an older page: only S256), hence a setting. The web install flow always uses S256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InClientPkce {
    #[default]
    #[serde(rename = "plain")]
    Plain,
    S256,
}

/// An item of the agent's wrap-up checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Stable id (1-64 bytes): the key stored in workspaces and records.
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoomAppConfig {
    /// Credentials of the development app (Marketplace → App Credentials → Development).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub development: Option<ZoomAppCredentials>,
    /// Credentials of the production app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub production: Option<ZoomAppCredentials>,
    /// The web install flow's OAuth redirect URL, as entered in Marketplace:
    /// `https://<host>/zoomapp/oauth/callback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The Home URL for the manifest; default: the redirect URL's origin with `/zoomapp/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_url: Option<String>,
    /// The app's name in the manifest.
    pub display_name: String,
    /// Offer "Connect Zoom account" in the panel (in-client OAuth; enable it in Marketplace too).
    pub in_client_oauth: bool,
    /// `plain` or `S256` (see [`InClientPkce`]).
    pub in_client_pkce: InClientPkce,
    /// Secret token of the app (Marketplace → Features → Access): signs the deauthorization notices posted to
    /// `/zoomapp/deauthorize`. Without it every notice is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_token: Option<Secret>,
    /// Key that encrypts users' OAuth tokens at rest (AES-256-GCM, keyed by its SHA-256; at least 32 characters).
    /// Default: a random key generated once and kept in the database (shared by replicas). Set it (from a secret
    /// store) to keep tokens unreadable to whoever holds a copy of the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_key: Option<Secret>,
    /// How long a panel session lasts (the app context that opens it is valid for minutes).
    pub session_hours: u64,
    /// Users' access tokens are refreshed this long before they expire.
    pub refresh_margin_seconds: u64,
    /// The wrap-up checklist the panel shows.
    pub checklist: Vec<ChecklistItem>,
}

impl Default for ZoomAppConfig {
    fn default() -> Self {
        let item = |id: &str, label: &str| ChecklistItem {
            id: id.into(),
            label: label.into(),
        };
        Self {
            development: None,
            production: None,
            redirect_url: None,
            home_url: None,
            display_name: "zcc-bridge agent panel".into(),
            in_client_oauth: true,
            in_client_pkce: InClientPkce::Plain,
            webhook_secret_token: None,
            token_key: None,
            session_hours: 12,
            refresh_margin_seconds: 600,
            checklist: vec![
                item("verified", "Identity verified"),
                item("resolved", "Issue resolved"),
                item("follow_up", "Follow-up scheduled"),
            ],
        }
    }
}

/// Path every redirect URL must end with: the route the bridge serves the callback at.
pub const ZOOM_APP_CALLBACK_PATH: &str = "/zoomapp/oauth/callback";
/// Path of the Home URL.
pub const ZOOM_APP_HOME_PATH: &str = "/zoomapp/";

/// An http(s) URL whose path ends with `path`; http only on loopback (Zoom loads nothing but https).
fn check_app_url(key: &'static str, value: &str, path: &str) -> Result<url::Url, InvalidValue> {
    let invalid = |problem: String| InvalidValue { key, problem };
    let url =
        url::Url::parse(value).map_err(|e| invalid(format!("{value:?} is not a URL: {e}")))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(format!(
                "{value:?} must be an https URL (Zoom loads no plain http outside loopback)"
            )))
        }
    }
    if !url.path().ends_with(path) || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{value:?} must end with {path} (the route the bridge serves), without a query"
        )));
    }
    Ok(url)
}

impl ZoomAppConfig {
    /// The configured credential sets with their environment name (`development`, `production`).
    pub fn credentials(&self) -> Vec<(&'static str, &ZoomAppCredentials)> {
        [
            ("development", self.development.as_ref()),
            ("production", self.production.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, c)| c.map(|c| (name, c)))
        .collect()
    }

    /// The Home URL: `home_url`, or the redirect URL's origin (and any path prefix before `/zoomapp/`) with
    /// `/zoomapp/`.
    pub fn home_url(&self) -> Option<String> {
        if let Some(home) = &self.home_url {
            return Some(home.clone());
        }
        let redirect = self.redirect_url.as_deref()?;
        let prefix = redirect.strip_suffix(ZOOM_APP_CALLBACK_PATH)?;
        Some(format!("{prefix}{ZOOM_APP_HOME_PATH}"))
    }

    /// The section's problems, each with its key (every one at once, like `Config::problems`).
    fn check(&self, problems: &mut Vec<InvalidValue>) {
        let mut push =
            |key: &'static str, problem: String| problems.push(InvalidValue { key, problem });
        for (name, c) in self.credentials() {
            let key = if name == "development" {
                "zoom_app.development"
            } else {
                "zoom_app.production"
            };
            if c.client_id.trim().is_empty() || c.client_secret.expose().is_empty() {
                push(key, "client_id and client_secret must not be empty".into());
            } else if c.client_id.len() > 128 || !c.client_id.bytes().all(|b| b.is_ascii_graphic())
            {
                push(
                    key,
                    "client_id must be up to 128 printable characters without spaces".into(),
                );
            }
        }
        if let (Some(d), Some(p)) = (&self.development, &self.production) {
            if d.client_id == p.client_id {
                push(
                    "zoom_app",
                    "the development and production client ids are the same: an app context's aud could not \
                     say which credentials verify it"
                        .into(),
                );
            }
        }
        let urls = [
            (
                "zoom_app.redirect_url",
                &self.redirect_url,
                ZOOM_APP_CALLBACK_PATH,
            ),
            ("zoom_app.home_url", &self.home_url, ZOOM_APP_HOME_PATH),
        ];
        for (key, url, path) in urls {
            if let Some(Err(e)) = url.as_ref().map(|url| check_app_url(key, url, path)) {
                push(e.key, e.problem);
            }
        }
        if self.display_name.trim().is_empty() {
            push("zoom_app.display_name", "must not be empty".into());
        }
        if self
            .webhook_secret_token
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            push("zoom_app.webhook_secret_token", "must not be empty".into());
        }
        if self
            .token_key
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            push(
                "zoom_app.token_key",
                "must be at least 32 characters".into(),
            );
        }
        if !(1..=24 * 7).contains(&self.session_hours) {
            push(
                "zoom_app.session_hours",
                format!("must be between 1 and 168, got {}", self.session_hours),
            );
        }
        if !(60..=3000).contains(&self.refresh_margin_seconds) {
            push(
                "zoom_app.refresh_margin_seconds",
                format!(
                    "must be between 60 and 3000 (Zoom's access tokens last an hour), got {}",
                    self.refresh_margin_seconds
                ),
            );
        }
        if self.checklist.len() > 64 {
            push("zoom_app.checklist", "at most 64 items".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for item in &self.checklist {
            if item.id.is_empty() || item.id.len() > 64 || item.label.trim().is_empty() {
                push(
                    "zoom_app.checklist",
                    format!(
                        "item {:?}: the id must be 1-64 bytes and the label not empty",
                        item.id
                    ),
                );
            } else if !ids.insert(item.id.as_str()) {
                push(
                    "zoom_app.checklist",
                    format!("item id {:?} appears twice", item.id),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml)?;
        // `Env::prefixed` reads the process environment; tests use a private prefix so they cannot collide.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("ZCC_TEST_{}_{call}_", std::process::id());
        for (k, v) in env {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let result = Config::load_from(Some(&path), Env::prefixed(&prefix).split("__"));
        for (k, _) in env {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        result
    }

    #[test]
    fn sink_options_are_typed_by_kind_when_read() {
        let sink = |options: &str| {
            format!(
                "[[sinks]]\nname = \"desk\"\nkind = \"zendesk\"\nurl = \"https://acme.zendesk.com\"\n\
                 [sinks.options]\n{options}\n"
            )
        };
        let config = load(&sink("mode = \"comment\"\ntags = [\"vip\"]"), &[]).expect("valid");
        assert_eq!(
            config.sinks[0].options,
            SinkOptions::Zendesk(ZendeskOptions {
                mode: ZendeskMode::Comment,
                tags: vec!["vip".into()],
                ..Default::default()
            })
        );
        let e = format!(
            "{:#}",
            load(&sink("mode = \"merge\""), &[]).expect_err("bad mode")
        );
        assert!(
            e.contains("sink \"desk\": options: mode: unknown variant `merge`"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load(&sink("colour = \"red\""), &[]).expect_err("unknown key")
        );
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn filters() {
        assert!(check_log_filter("info").is_ok());
        assert!(check_log_filter("zcc_bridge::http=debug,warn").is_ok());
        assert!(check_log_filter("!!!").is_err());
        assert!(check_log_filter("zcc_bridge=loud").is_err());
    }

    #[test]
    fn defaults_match_the_design() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.database.expose(), "sqlite://data/zcc-bridge.db");
        assert_eq!(c.storage.media, "file://data/media");
        assert_eq!(c.zoom.api_base, "https://api.zoom.us/v2");
        assert_eq!(c.zoom.oauth_base, "https://zoom.us");
        assert_eq!(c.delivery.settle_seconds, 300);
        assert_eq!(c.server.max_body_bytes, 1 << 20);
        assert_eq!(c.zoom.webhook_timestamp_tolerance_seconds, 300);
        assert!(c.admin.token.is_none());
    }

    #[test]
    fn genesys_sources_are_checked() {
        let base = "[presence.genesys.gc]\n";
        let problem = |toml: &str| match load(&format!("{base}{toml}"), &[]) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(problem("").contains("set token or hmac_secret"));
        assert!(problem("token = \"short\"").contains("16 characters"));
        let api = "client_id = \"id\"\nclient_secret = \"secret\"\n";
        assert!(
            problem("client_id = \"id\"\ntoken = \"0123456789abcdef\"").contains("both client_id")
        );
        assert!(
            problem(&format!("{api}notifications = true\nall_users = true")).contains("set region")
        );
        assert!(
            problem(&format!("{api}region = \"mars\"\nnotifications = true"))
                .contains("unknown region")
        );
        assert!(problem(&format!(
            "{api}region = \"eu-central-1\"\nnotifications = true"
        ))
        .contains("need users"));
        assert_eq!(
            problem(&format!(
                "{api}region = \"eu-central-1\"\nnotifications = true\nusers = [\"a@b.c\"]"
            )),
            ""
        );
        let named = load(
            "[presence.genesys.\"G:C\"]\ntoken = \"0123456789abcdef\"\n",
            &[],
        );
        assert!(named.unwrap_err().to_string().contains("lower-case"));
        let ok = load(
            &format!(
                "{base}{api}region = \"mypurecloud.de\"\nnotifications = true\nall_users = true"
            ),
            &[],
        )
        .unwrap();
        let api = ok.presence.genesys["gc"].api().unwrap().unwrap();
        assert_eq!(api.api_base, "https://api.mypurecloud.de");
        assert!(!ok.to_masked_toml().unwrap().contains("\"secret\""));
    }

    #[test]
    fn env_overrides_file() {
        let c = load(
            "[server]\nlisten = \"127.0.0.1:7000\"\n[zoom]\nwebhook_secret_token = \"from-file\"\n",
            &[
                ("SERVER__LISTEN", "127.0.0.1:9000"),
                ("ZOOM__WEBHOOK_SECRET_TOKENS", "[\"a\", \"b\"]"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.zoom.webhook_secrets(), vec!["from-file", "a", "b"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load("[server]\nlisten = \"nonsense\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = load("[storage]\ndatabase = \"mysql://u:pw@h/db\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.database") && !e.contains("pw"), "{e}");
        let e = load("[server]\nlisen = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = load("[admin]\ntoken = \"short\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin.token"), "{e}");
    }

    #[test]
    fn masked_output_hides_every_secret() {
        let c = load(
            "[admin]\ntoken = \"admin-token-0123456789\"\n[storage]\ndatabase = \"postgres://u:hunter2@db/zcc\"\n[zoom]\nclient_secret = \"cs-secret\"\nwebhook_secret_token = \"wh-secret\"\nwebhook_secret_tokens = [\"wh-old\"]\n",
            &[],
        )
        .unwrap();
        let out = c.to_masked_toml().unwrap();
        for secret in [
            "admin-token-0123456789",
            "hunter2",
            "cs-secret",
            "wh-secret",
            "wh-old",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in:\n{out}");
        }
        assert!(out.contains("postgres://u:***@db/zcc"), "{out}");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    /// The secret every wrong-typed value below carries, as text and as a number.
    const SECRET_TEXT: &str = "sup3r-secret-value-9f8e7d";
    const SECRET_DIGITS: &str = "9876543210987654";

    /// Every key that holds a secret today, as a TOML path (`sinks.0`: the first `[[sinks]]`), and whether it is
    /// a list. `secret_keys_are_all_listed` keeps this complete.
    const SECRET_KEYS: [(&str, bool); 26] = [
        ("admin.token", false),
        ("storage.database", false),
        ("storage.s3.secret_access_key", false),
        ("storage.s3.session_token", false),
        ("storage.azure.access_key", false),
        ("media.link_secret", false),
        ("zoom.client_secret", false),
        ("zoom.webhook_secret_token", false),
        ("zoom.webhook_secret_tokens", true),
        ("sinks.0.secrets", true),
        ("sinks.0.client_secret", false),
        ("sinks.0.token", false),
        ("flow.sources.f.token", false),
        ("flow.sources.f.hmac_secret", false),
        ("presence.genesys.g.token", false),
        ("presence.genesys.g.hmac_secret", false),
        ("presence.genesys.g.client_secret", false),
        ("chat.encryption_key", false),
        ("chat.previous_encryption_keys", true),
        ("chat.channels.c.jwt_secret", false),
        ("chat.channels.c.access_token", false),
        ("chat.channels.c.push.token", false),
        ("chat.channels.c.bot.token", false),
        ("chat.channels.c.bot.callback_token", false),
        ("chat.channels.d.bot.secret", false),
        ("chat.channels.o.bot.api_key", false),
    ];

    /// A configuration with every secret key set (to `"secret-<n>"`), the tables they live in included.
    fn all_secrets_toml() -> String {
        let mut table = toml::Table::new();
        for (n, (key, list)) in SECRET_KEYS.iter().enumerate() {
            let value = match *key {
                "sinks.0.secrets" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
                // 32 bytes, base64.
                "chat.encryption_key" | "chat.previous_encryption_keys" => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{:<32}", format!("secret-{n}-key")))
                }
                "chat.channels.c.jwt_secret" => format!("secret-{n}-0123456789abcdef-0123456789"),
                _ => format!("secret-{n}-0123456789abcdef"),
            };
            let value = if *list {
                toml::Value::Array(vec![value.into()])
            } else {
                toml::Value::String(value)
            };
            set_path(&mut table, key, value);
        }
        set_path(&mut table, "storage.database", "sqlite://x.db".into());
        for (key, value) in [
            ("sinks.0.name", "s"),
            ("sinks.0.kind", "http"),
            ("sinks.0.url", "https://example.com/hook"),
            ("presence.genesys.g.region", "eu_central_1"),
            ("presence.genesys.g.client_id", "id"),
            ("chat.channels.c.client_id", "cs-c"),
            ("chat.channels.c.jwt_algorithm", "HS256"),
            ("chat.channels.c.post_url", "https://zoom.example/post"),
            ("chat.channels.c.push.url", "https://push.example/n"),
            ("chat.channels.c.bot.kind", "http"),
            ("chat.channels.c.bot.url", "https://bot.example/turn"),
            ("chat.channels.d.client_id", "cs-d"),
            ("chat.channels.d.jwt_algorithm", "RS256"),
            (
                "chat.channels.d.jwt_public_key",
                "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n",
            ),
            ("chat.channels.d.reply_mode", "action"),
            ("chat.channels.d.bot.kind", "directline"),
            ("chat.channels.o.client_id", "cs-o"),
            ("chat.channels.o.jwt_algorithm", "RS512"),
            (
                "chat.channels.o.jwt_public_key",
                "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n",
            ),
            ("chat.channels.o.reply_mode", "action"),
            ("chat.channels.o.bot.kind", "openai"),
            ("chat.channels.o.bot.url", "http://llm.example/v1"),
            ("chat.channels.o.bot.model", "m"),
        ] {
            set_path(&mut table, key, value.into());
        }
        toml::to_string(&table).unwrap()
    }

    /// Sets `value` at a dotted path; a numeric segment is an index into an array of tables.
    fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
        let parts: Vec<&str> = path.split('.').collect();
        let mut current = table;
        let mut i = 0;
        while i + 1 < parts.len() {
            let part = parts[i];
            if let Some(index) = parts.get(i + 1).and_then(|p| p.parse::<usize>().ok()) {
                let array = current
                    .entry(part)
                    .or_insert_with(|| toml::Value::Array(Vec::new()))
                    .as_array_mut()
                    .unwrap();
                while array.len() <= index {
                    array.push(toml::Value::Table(toml::Table::new()));
                }
                current = array[index].as_table_mut().unwrap();
                i += 2;
            } else {
                current = current
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap();
                i += 1;
            }
        }
        current.insert(parts[parts.len() - 1].to_string(), value);
    }

    /// Paths of every masked value (`"***"`, or a list of them) in a masked TOML tree.
    fn masked_paths(value: &toml::Value, path: String, out: &mut Vec<String>) {
        match value {
            toml::Value::String(s) if s == "***" => out.push(path),
            toml::Value::Array(items)
                if items.iter().all(|i| i.as_str() == Some("***")) && !items.is_empty() =>
            {
                out.push(path)
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    masked_paths(item, format!("{path}.{i}"), out);
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    masked_paths(v, p, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn secret_keys_are_all_listed() {
        let config = load(&all_secrets_toml(), &[]).unwrap();
        let masked: toml::Value = toml::from_str(&config.to_masked_toml().unwrap()).unwrap();
        let mut found = Vec::new();
        masked_paths(&masked, String::new(), &mut found);
        // The database URL is shown with its password masked rather than as "***".
        found.push("storage.database".into());
        found.sort();
        let mut listed: Vec<String> = SECRET_KEYS.iter().map(|(k, _)| k.to_string()).collect();
        listed.sort();
        assert_eq!(
            found, listed,
            "a key masked in the output is missing from SECRET_KEYS, or vice versa"
        );
        for (key, _) in SECRET_KEYS {
            let path: Vec<String> = key.split('.').map(String::from).collect();
            assert!(
                secret_key(&path),
                "{key} is not recognised as a secret key by its name"
            );
        }
    }

    /// Wrong-typed values carrying the secret: (TOML, environment) forms.
    fn wrong_values(list: bool) -> Vec<(String, String)> {
        let mut out = vec![
            (SECRET_DIGITS.to_string(), SECRET_DIGITS.to_string()),
            (
                format!("{{ x = \"{SECRET_TEXT}\" }}"),
                format!("{{x=\"{SECRET_TEXT}\"}}"),
            ),
        ];
        if list {
            out.push((format!("\"{SECRET_TEXT}\""), SECRET_TEXT.to_string()));
            out.push((format!("[{SECRET_DIGITS}]"), format!("[{SECRET_DIGITS}]")));
        } else {
            out.push((
                format!("[\"{SECRET_TEXT}\"]"),
                format!("[\"{SECRET_TEXT}\"]"),
            ));
            out.push(("true".into(), "true".into()));
        }
        out
    }

    fn assert_hidden(result: anyhow::Result<Config>, key: &str, how: &str) {
        let error = match result {
            Ok(_) => panic!("{key} = {how}: accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            !error.contains(SECRET_TEXT) && !error.contains(SECRET_DIGITS),
            "{key} = {how}: the error echoes the secret: {error}"
        );
        assert!(
            error.contains(key),
            "{key} = {how}: the error does not name the key: {error}"
        );
    }

    #[test]
    fn wrong_types_of_secret_keys_in_a_file_are_not_echoed() {
        for (key, list) in SECRET_KEYS {
            for (toml_value, _) in wrong_values(list) {
                let mut table: toml::Table = toml::from_str(&all_secrets_toml()).unwrap();
                let value: toml::Value =
                    toml::from_str::<toml::Table>(&format!("v = {toml_value}")).unwrap()["v"]
                        .clone();
                set_path(&mut table, key, value);
                let text = toml::to_string(&table).unwrap();
                assert_hidden(load(&text, &[]), key, &toml_value);
            }
        }
    }

    #[test]
    fn wrong_types_of_secret_keys_in_the_environment_are_not_echoed() {
        for (key, list) in SECRET_KEYS {
            for (_, env_value) in wrong_values(list) {
                // Array-of-tables keys (sinks) are given whole in the environment.
                let (var, value) = match key.strip_prefix("sinks.0.") {
                    Some(field) => (
                        "SINKS".to_string(),
                        format!("[{{name=\"s\",kind=\"http\",url=\"https://e.com\",{field}={env_value}}}]"),
                    ),
                    None => (key.replace('.', "__").to_ascii_uppercase(), env_value.clone()),
                };
                let result = load(&all_secrets_toml(), &[(var.as_str(), value.as_str())]);
                assert_hidden(result, key, &format!("{var}={value}"));
            }
        }
        // The issue's case: a list key given a string.
        let e = load("", &[("ZOOM__WEBHOOK_SECRET_TOKENS", SECRET_TEXT)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zoom.webhook_secret_tokens") && !e.contains(SECRET_TEXT),
            "{e}"
        );
    }

    #[test]
    fn a_secret_given_to_its_section_is_not_echoed() {
        for var in [
            "ADMIN",
            "ZOOM",
            "STORAGE",
            "MEDIA",
            "SINKS",
            "FLOW",
            "PRESENCE__GENESYS",
        ] {
            let e = load("", &[(var, SECRET_TEXT)]).unwrap_err().to_string();
            assert!(!e.contains(SECRET_TEXT), "{var}: {e}");
        }
        let e = load(&format!("admin = \"{SECRET_TEXT}\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(!e.contains(SECRET_TEXT) && e.contains("admin"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_do_not_quote_the_line() {
        let e = load(&format!("[admin]\ntoken = {SECRET_TEXT}\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(!e.contains(SECRET_TEXT), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn numeric_secrets_must_be_quoted_but_strings_of_digits_work() {
        let c = load("", &[("ADMIN__TOKEN", &format!("\"{SECRET_DIGITS}\""))]).unwrap();
        assert_eq!(c.admin.token.unwrap().expose(), SECRET_DIGITS);
        let c = load(&format!("[admin]\ntoken = \"{SECRET_DIGITS}\"\n"), &[]).unwrap();
        assert_eq!(c.admin.token.unwrap().expose(), SECRET_DIGITS);
    }

    #[test]
    fn log_level_must_be_a_filter() {
        for bad in ["!!!", "", "info,!!!", "zcc bridge=debug", "zcc_bridge=loud"] {
            let e = load(&format!("[log]\nlevel = {bad:?}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains("log.level"), "{bad:?}: {e}");
        }
        for good in [
            "info",
            "warn,zcc_bridge=debug",
            "zcc_bridge::http=trace,info,",
            "off",
        ] {
            load(&format!("[log]\nlevel = {good:?}\n"), &[]).unwrap();
        }
    }

    #[test]
    fn the_timestamp_tolerance_is_bounded() {
        for bad in ["0", "-5", "3601", &i64::MAX.to_string()] {
            let e = load(
                &format!("[zoom]\nwebhook_timestamp_tolerance_seconds = {bad}\n"),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("webhook_timestamp_tolerance_seconds"),
                "{bad}: {e}"
            );
        }
        load("[zoom]\nwebhook_timestamp_tolerance_seconds = 3600\n", &[]).unwrap();
    }

    #[test]
    fn url_masking() {
        assert_eq!(
            mask_url_password("sqlite://data/x.db"),
            "sqlite://data/x.db"
        );
        assert_eq!(
            mask_url_password("postgres://a:b@h:5432/d?x=1"),
            "postgres://a:***@h:5432/d?x=1"
        );
        assert_eq!(mask_url_password("postgres://a@h/d"), "postgres://a@h/d");
    }

    /// `deploy/config.example.toml`, the annotated configuration the deployment recipes install (and the container
    /// image ships as /etc/zcc-bridge/config.toml).
    fn example() -> String {
        EXAMPLE.to_string()
    }

    #[test]
    fn init_switches_on_a_fresh_admin_token() {
        let text = example_with_admin_token("0123456789abcdef0123");
        assert_ne!(
            text, EXAMPLE,
            "the placeholder line moved: config init would write no token"
        );
        let config = load(&text, &[]).expect("loads");
        assert_eq!(
            config.admin.token.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123")
        );
    }

    /// The example with every optional setting switched on: `#key = value`, `#[table]` and `#"key" = value`
    /// lines lose their `#` (explanations are `# text`, with a space).
    fn uncomment_settings(text: &str) -> String {
        text.lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest)
                    if rest.chars().next().is_some_and(|c| {
                        c == '[' || c == '"' || c == '_' || c.is_ascii_lowercase()
                    }) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Dotted paths of every value in `value` (`sinks[].name`, `storage.s3.endpoint`, ...).
    fn leaf_keys(value: &toml::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    leaf_keys(v, &join(k), out);
                }
            }
            toml::Value::Array(items) if items.iter().any(|i| i.is_table()) => {
                for item in items {
                    leaf_keys(item, &format!("{prefix}[]"), out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }

    #[test]
    fn the_example_configuration_is_the_defaults() {
        let example = load(&example(), &[]).expect("deploy/config.example.toml loads");
        let defaults = load("", &[]).unwrap();
        assert_eq!(
            example.to_masked_toml().unwrap(),
            defaults.to_masked_toml().unwrap(),
            "an active line of deploy/config.example.toml differs from the built-in default"
        );
    }

    #[test]
    fn the_example_configuration_shows_every_key_with_a_valid_value() {
        let text = uncomment_settings(&example());
        let config = load(&text, &[]).unwrap_or_else(|e| {
            panic!("deploy/config.example.toml with its optional settings switched on: {e:#}")
        });
        let mut written = std::collections::BTreeSet::new();
        leaf_keys(&toml::from_str(&text).unwrap(), "", &mut written);
        let mut effective = std::collections::BTreeSet::new();
        leaf_keys(&toml_value(&config).unwrap(), "", &mut effective);
        let missing: Vec<&String> = effective.difference(&written).collect();
        assert!(
            missing.is_empty(),
            "keys deploy/config.example.toml does not show: {missing:?}"
        );
        assert!(config.admin.token.is_some() && !config.sinks.is_empty());
    }
}

#[cfg(test)]
mod zoom_app_tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml)?;
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("ZCC_TEST_ZA_{}_{call}_", std::process::id());
        for (k, v) in env {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let result = Config::load_from(Some(&path), Env::prefixed(&prefix).split("__"));
        for (k, _) in env {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        result
    }

    fn problem(toml: &str) -> String {
        match load(toml, &[]) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    const BOTH: &str =
        "[zoom_app]\nredirect_url = \"https://zcc.example.com/zoomapp/oauth/callback\"\n\
        [zoom_app.development]\nclient_id = \"devId\"\nclient_secret = \"devSecret\"\n\
        [zoom_app.production]\nclient_id = \"prodId\"\nclient_secret = \"prodSecret\"\n";

    #[test]
    fn both_credential_sets_side_by_side_secrets_masked() {
        let c = load(BOTH, &[]).unwrap();
        let names: Vec<_> = c.zoom_app.credentials().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["development", "production"]);
        assert_eq!(
            c.zoom_app.home_url().as_deref(),
            Some("https://zcc.example.com/zoomapp/")
        );
        let shown = c.to_masked_toml().unwrap();
        assert!(
            !shown.contains("devSecret") && !shown.contains("prodSecret"),
            "{shown}"
        );
        assert!(shown.contains("prodId"));
        assert!(!format!("{c:?}").contains("prodSecret"));
    }

    #[test]
    fn the_environment_sets_a_secret() {
        let c = load(
            "[zoom_app.production]\nclient_id = \"prodId\"\nclient_secret = \"x\"\n",
            &[("ZOOM_APP__PRODUCTION__CLIENT_SECRET", "from-env")],
        )
        .unwrap();
        assert_eq!(
            c.zoom_app.production.unwrap().client_secret.expose(),
            "from-env"
        );
    }

    #[test]
    fn what_is_refused() {
        assert_eq!(problem(BOTH), "");
        assert!(
            problem("[zoom_app.development]\nclient_id = \"\"\nclient_secret = \"s\"")
                .contains("must not be empty")
        );
        assert!(problem(
            "[zoom_app.development]\nclient_id = \"same\"\nclient_secret = \"a\"\n\
             [zoom_app.production]\nclient_id = \"same\"\nclient_secret = \"b\""
        )
        .contains("are the same"));
        assert!(problem(
            "[zoom_app]\nredirect_url = \"http://zcc.example.com/zoomapp/oauth/callback\""
        )
        .contains("https"));
        assert_eq!(
            problem("[zoom_app]\nredirect_url = \"http://127.0.0.1:8080/zoomapp/oauth/callback\""),
            ""
        );
        assert!(
            problem("[zoom_app]\nredirect_url = \"https://zcc.example.com/callback\"")
                .contains("/zoomapp/oauth/callback")
        );
        assert!(problem("[zoom_app]\ntoken_key = \"short\"").contains("32 characters"));
        assert!(problem("[zoom_app]\nsession_hours = 0").contains("session_hours"));
        assert!(problem(
            "[[zoom_app.checklist]]\nid = \"a\"\nlabel = \"A\"\n[[zoom_app.checklist]]\nid = \"a\"\nlabel = \"B\""
        )
        .contains("twice"));
        assert!(problem("[zoom_app]\nin_client_pkce = \"S512\"").contains("in_client_pkce"));
        let s256 = load("[zoom_app]\nin_client_pkce = \"S256\"", &[]).unwrap();
        assert_eq!(s256.zoom_app.in_client_pkce, InClientPkce::S256);
    }

    #[test]
    fn every_problem_of_the_section_at_once_beside_other_sections() {
        let e = problem(
            "[zoom_app]\ntoken_key = \"short\"\nsession_hours = 0\n\
             redirect_url = \"https://zcc.example.com/callback\"\n[stream]\npoll_ms = 0",
        );
        for key in [
            "zoom_app.token_key",
            "zoom_app.session_hours",
            "zoom_app.redirect_url",
            "stream.poll_ms",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
        // Type errors: the section is known to the strict reader, its keys are typed, one error per section.
        let e =
            problem("[zoom_app]\nsession_hours = \"twelve\"\n[server]\nmax_connections = \"many\"");
        assert!(e.contains("zoom_app.session_hours"), "{e}");
        assert!(e.contains("server.max_connections"), "{e}");
        assert!(!e.contains("unknown section"), "{e}");
        assert!(problem("[zoom_app]\ncolour = 1").contains("zoom_app.colour: unknown field"));
        assert!(problem("[zoom_apps]\ndisplay_name = \"x\"").contains("zoom_apps: unknown section"));
    }

    #[test]
    fn readiness_warns_of_the_parts_that_cannot_run() {
        let warned = |toml: &str| -> Vec<&'static str> {
            let c = load(toml, &[]).unwrap();
            assert!(c
                .readiness()
                .errors
                .iter()
                .all(|e| !e.key.starts_with("zoom_app")));
            c.readiness()
                .warnings
                .into_iter()
                .map(|w| w.key)
                .filter(|k| k.starts_with("zoom_app"))
                .collect()
        };
        // No credentials: the panel is not set up; nothing to warn of.
        assert!(warned("").is_empty());
        assert_eq!(
            warned("[zoom_app.production]\nclient_id = \"p\"\nclient_secret = \"s\""),
            ["zoom_app.redirect_url", "zoom_app.webhook_secret_token"]
        );
        let complete = BOTH.replacen(
            "[zoom_app]\n",
            "[zoom_app]\nwebhook_secret_token = \"app-secret\"\n",
            1,
        );
        assert!(warned(&complete).is_empty(), "{complete}");
    }
}
