//! The chatbot channel (issue 19): Zoom Contact Center's bot connector on one side, the user's bot on the other.
//!
//! - `POST /chat/zoom/{channel}` (`http/chat.rs`) verifies the connector's JWT, admits the consumer ([`Chat::admit`]:
//!   anonymous and auto-registration rules) and logs the message like any source (durable before the 2xx,
//!   de-duplicated by message id). In trigger mode it is acknowledged at once and answered through the outbox; in
//!   action mode the bot's answer is the response.
//! - The conversation (`turns`): history and state are read back from the log; the bot's answer is logged as a
//!   `chat.bot.*` event, which queues the reply to the Post URL and any push notification in the same statement.
//! - Outboxes (`sinks`): the delivery engine's, one sink per channel and purpose (`chat:<channel>:bot`, `:reply`,
//!   `:push`): in order per conversation, retries, dead letters, replay; the `runner` works on what this process
//!   logged at once, the sinks' workers on everything else (retries, replays, other replicas' leftovers).
//! - Channels (`channels`): the configuration file's and the admin API's (stored with their secrets sealed,
//!   `secrets`), reloaded when any replica changes them.

pub mod channels;
mod runner;
pub mod secrets;
mod sinks;
mod turns;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use chatbot::client_app::{Admission, ConsumerIdentity, UserError};
use chatbot::zoom_connector::{ReplyMode, VirtualAgentRequest};
use tokio::sync::{oneshot, watch, Notify, Semaphore};
use tokio::task::JoinSet;

pub use self::channels::{Origin, SinkNames};
use self::secrets::{SealError, Sealer};
pub use self::turns::{TurnDone, TurnError};
use crate::config::{ChatChannelConfig, ChatConfig, Config};
use crate::delivery::engine::{self, EngineSettings, Recorder, RetryPolicy, SinkWorker};
use crate::delivery::sink::Sink;
use crate::ingest::EventLog;
use crate::sources::chat::conversation_key;
use crate::store::chat::{ChannelRow, ChatUser, SessionOpen};
use crate::store::{now_ms, Store, StoreError};

/// What the chatbot crate finds wrong with the configuration's channels when it builds them (the PEM key, each
/// bot's own options): `server::feature_problems`. A channel `Config::problems` already refuses is not reported
/// twice; the encryption keys are checked there too (and again by `start`).
pub fn config_problems(config: &Config) -> Vec<crate::config::InvalidValue> {
    let http = reqwest::Client::new();
    config
        .chat
        .channels
        .iter()
        .filter(|(name, channel)| crate::config::check_chat_channel(name, channel).is_ok())
        .filter_map(|(name, channel)| channels::build_channel(name, channel, http.clone()).err())
        .map(|problem| crate::config::InvalidValue {
            key: "chat.channels",
            problem,
        })
        .collect()
}

/// A loaded channel.
pub struct LiveChannel {
    pub name: String,
    pub origin: Origin,
    pub config: ChatChannelConfig,
    pub channel: chatbot::channel::Channel,
    pub sinks: SinkNames,
    /// API channels: creation and last change (epoch ms).
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    runtime: Runtime,
}

/// A sink the runner attempts held rows of through the engine (its own worker handle and recorder).
struct Attempter {
    worker: SinkWorker,
    recorder: Recorder,
    settings: EngineSettings,
}

struct Runtime {
    /// Trigger mode: bot turns and Post URL replies.
    bot: Option<Attempter>,
    reply: Option<Attempter>,
    /// Bot turns in flight at once on this channel.
    turns: Semaphore,
}

/// Settings of the chat outboxes, from `[chat]`.
#[derive(Clone)]
struct Settings {
    engine: EngineSettings,
    retries: usize,
    max_concurrent_turns: usize,
    reload: Duration,
    post_timeout: Duration,
    body_limit: usize,
}

impl Settings {
    fn from_config(c: &ChatConfig, body_limit: usize) -> Self {
        let retry = RetryPolicy {
            schedule: c
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(s.max(0.0)))
                .collect(),
            max_retry_after: Duration::from_secs(c.max_retry_after_seconds),
        };
        Self {
            retries: retry.schedule.len(),
            engine: EngineSettings {
                retry,
                lease: Duration::from_secs(c.lease_seconds),
                poll: Duration::from_millis(c.poll_ms),
            },
            max_concurrent_turns: c.max_concurrent_turns,
            reload: Duration::from_secs(c.reload_seconds),
            post_timeout: Duration::from_secs(c.post_timeout_seconds),
            body_limit,
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.engine.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// A small bounded memory of conversations admitted in this process (conversation → user id): two generations,
/// the older dropped when the newer fills.
#[derive(Default)]
struct Admitted {
    current: HashMap<String, String>,
    older: HashMap<String, String>,
}

const ADMITTED_PER_GENERATION: usize = 50_000;

impl Admitted {
    fn get(&self, key: &str) -> Option<&String> {
        self.current.get(key).or_else(|| self.older.get(key))
    }

    fn insert(&mut self, key: String, user: String) {
        if self.current.len() >= ADMITTED_PER_GENERATION {
            self.older = std::mem::take(&mut self.current);
        }
        self.current.insert(key, user);
    }
}

/// What the chat feature shares between the HTTP routes, the runner and the sinks.
pub struct Shared {
    store: Arc<dyn Store>,
    log: EventLog,
    settings: Settings,
    sealer: Sealer,
    /// Post URL and push notifications (no redirects, `chat.post_timeout_seconds`).
    http: reqwest::Client,
    config_channels: BTreeMap<String, ChatChannelConfig>,
    registry: RwLock<Arc<BTreeMap<String, Arc<LiveChannel>>>>,
    conversations: runner::Conversations,
    admitted: std::sync::Mutex<Admitted>,
    /// A local change of the API channels: reload now.
    changed: Notify,
}

impl Shared {
    fn channel(&self, name: &str) -> Option<Arc<LiveChannel>> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn channels(&self) -> Arc<BTreeMap<String, Arc<LiveChannel>>> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Builds a channel with its sinks (they refer back to `self` weakly).
    fn build(
        self: &Arc<Self>,
        name: &str,
        origin: Origin,
        config: ChatChannelConfig,
        times: Option<(i64, i64)>,
    ) -> Result<LiveChannel, String> {
        // One client for the Post URL, push notifications and the bot: its timeout is the Post URL's; the bot
        // backends set their own per request.
        let channel = channels::build_channel(name, &config, self.http.clone())?;
        let sinks = SinkNames::of(name);
        let trigger = config.reply_mode == ReplyMode::Trigger;
        let turn_timeout = sinks::turn_timeout(config.bot.longest_turn_ms());
        let attempter = |sink_name: &str, sink: Arc<dyn Sink>, timeout: Duration| {
            let (recorder, _task) = Recorder::spawn(
                self.store.clone(),
                sink_name.to_string(),
                self.settings.engine.lease,
            );
            Attempter {
                worker: SinkWorker {
                    name: sink_name.to_string(),
                    sink,
                    concurrency: self.settings.max_concurrent_turns,
                    rate_per_second: None,
                    timeout,
                    body_limit: self.settings.body_limit,
                },
                recorder,
                settings: self.settings.engine.clone(),
            }
        };
        let runtime = Runtime {
            bot: trigger.then(|| attempter(&sinks.bot, self.bot_sink(name), turn_timeout)),
            reply: trigger.then(|| {
                attempter(
                    &sinks.reply,
                    self.reply_sink(name),
                    self.settings.post_timeout,
                )
            }),
            turns: Semaphore::new(self.settings.max_concurrent_turns),
        };
        Ok(LiveChannel {
            name: name.to_string(),
            origin,
            config,
            channel,
            sinks,
            created_at: times.map(|t| t.0),
            updated_at: times.map(|t| t.1),
            runtime,
        })
    }

    fn bot_sink(self: &Arc<Self>, channel: &str) -> Arc<dyn Sink> {
        Arc::new(sinks::BotTurns {
            shared: Arc::downgrade(self),
            channel: channel.to_string(),
            retries: self.settings.retries,
        })
    }

    fn reply_sink(self: &Arc<Self>, channel: &str) -> Arc<dyn Sink> {
        Arc::new(sinks::Replies {
            shared: Arc::downgrade(self),
            channel: channel.to_string(),
        })
    }

    fn push_sink(self: &Arc<Self>, channel: &str) -> Arc<dyn Sink> {
        Arc::new(sinks::Pushes {
            shared: Arc::downgrade(self),
            channel: channel.to_string(),
        })
    }

    /// The API channels as stored, built. A channel that cannot be built is logged and left out (its messages
    /// are refused with 404 until it is fixed).
    async fn load_api_channels(self: &Arc<Self>) -> Result<Vec<LiveChannel>, StoreError> {
        let rows = self.store.chat_channels().await?;
        let mut out = Vec::new();
        for row in rows {
            if self.config_channels.contains_key(&row.name) {
                tracing::warn!(channel = %row.name, "a stored chat channel has the name of a configured one; the configured one is used");
                continue;
            }
            let (config, old_key) = match channels::from_row(&row, &self.sealer) {
                Ok(found) => found,
                Err(problem) => {
                    tracing::error!(channel = %row.name, %problem, "stored chat channel not loaded");
                    continue;
                }
            };
            if old_key && self.sealer.can_seal() {
                // Sealed with an earlier key: seal again with the current one, so the old key can go.
                match channels::to_row(
                    &row.name,
                    &config,
                    &self.sealer,
                    row.created_at,
                    row.updated_at,
                ) {
                    Ok(resealed) => {
                        if let Err(e) = self.store.update_chat_channel(&resealed).await {
                            tracing::warn!(channel = %row.name, error = %e, "re-sealing the channel's secrets failed");
                        } else {
                            tracing::info!(channel = %row.name, "channel secrets sealed again with the current chat.encryption_key");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(channel = %row.name, error = %e, "re-sealing the channel's secrets failed")
                    }
                }
            }
            match self.build(
                &row.name,
                Origin::Api,
                config,
                Some((row.created_at, row.updated_at)),
            ) {
                Ok(channel) => out.push(channel),
                Err(problem) => {
                    tracing::error!(channel = %row.name, %problem, "stored chat channel not loaded")
                }
            }
        }
        Ok(out)
    }

    /// Replaces the loaded channels and the outbox routes.
    async fn install(
        &self,
        channels: BTreeMap<String, Arc<LiveChannel>>,
    ) -> Result<(), StoreError> {
        let mut routes = Vec::new();
        let mut failures = Vec::new();
        for c in channels.values() {
            let (r, f) = channels::routes(&c.name, &c.config, self.settings.lease_ms());
            routes.extend(r);
            failures.extend(f);
        }
        self.store.set_chat_routes(&routes, &failures).await?;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(channels);
        Ok(())
    }
}

/// Why a consumer is not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// 403: the client app's rules (`allow_anonymous`, `auto_register`), or a session of another user.
    User(String),
    /// 503: the database.
    Store(StoreError),
}

/// The chat feature, as the HTTP layer sees it.
#[derive(Clone)]
pub struct Chat {
    shared: Arc<Shared>,
}

/// How the admin API changes channels.
#[derive(Debug)]
pub enum ChannelChange {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Chat {
    pub fn channel(&self, name: &str) -> Option<Arc<LiveChannel>> {
        self.shared.channel(name)
    }

    pub fn channels(&self) -> Vec<Arc<LiveChannel>> {
        self.shared.channels().values().cloned().collect()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Conversations with work in hand in this process.
    pub fn active_conversations(&self) -> usize {
        self.shared.conversations.active()
    }

    /// Admits the consumer of a request: the session's user (the same on every message of a session), known or
    /// registered now (`auto_register`), or anonymous (`allow_anonymous`, checked by `identify`).
    pub async fn admit(
        &self,
        channel: &LiveChannel,
        identity: &ConsumerIdentity,
        request: &VirtualAgentRequest,
        received_at: i64,
    ) -> Result<(), Refusal> {
        let key = conversation_key(&channel.name, &request.session_id);
        let admitted_user = {
            let admitted = self
                .shared
                .admitted
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            admitted.get(&key).cloned()
        };
        if let Some(user) = admitted_user {
            return if user == identity.id {
                Ok(())
            } else {
                Err(Refusal::User(
                    "this session belongs to another user".to_string(),
                ))
            };
        }
        let known = match identity.source {
            chatbot::client_app::IdentitySource::Anonymous => false,
            _ => self
                .shared
                .store
                .chat_user(&channel.name, &identity.id)
                .await
                .map_err(Refusal::Store)?
                .is_some(),
        };
        let admission = channel
            .channel
            .client_app
            .admit(identity, known)
            .map_err(|e: UserError| Refusal::User(e.to_string()))?;
        let register = (admission == Admission::Register).then(|| ChatUser {
            channel: channel.name.clone(),
            user_id: identity.id.clone(),
            email: identity.email.clone(),
            phone: identity.phone.clone(),
            registered_by: "auto".into(),
            created_at: received_at,
        });
        let session = self
            .shared
            .store
            .open_chat_session(
                &SessionOpen {
                    conversation: key.clone(),
                    channel: channel.name.clone(),
                    session_id: request.session_id.clone(),
                    user_id: identity.id.clone(),
                    anonymous: admission == Admission::Anonymous,
                    email: identity.email.clone(),
                    phone: identity.phone.clone(),
                    language: request.language_code.clone(),
                    started_at: received_at,
                },
                register.as_ref(),
            )
            .await
            .map_err(Refusal::Store)?;
        if register.is_some() {
            metrics::counter!("zcc_chat_users_registered_total", "channel" => channel.name.clone())
                .increment(1);
            tracing::info!(channel = %channel.name, user = ?identity.id, "chat user registered (auto_register)");
        }
        if session.user_id != identity.id {
            return Err(Refusal::User(
                "this session belongs to another user".to_string(),
            ));
        }
        self.shared
            .admitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, identity.id.clone());
        Ok(())
    }

    /// Trigger mode: the logged message's bot turn is worked on at once.
    pub fn submit_turn(&self, channel: &LiveChannel, session_id: &str, event_id: i64) {
        runner::submit(
            &self.shared,
            conversation_key(&channel.name, session_id),
            runner::Work::Turn { event_id },
        );
    }

    /// A logged bot turn (a callback's) whose reply this process holds.
    pub fn submit_reply(&self, channel: &LiveChannel, session_id: &str, event_id: i64) {
        if channel.runtime.reply.is_some() {
            runner::submit(
                &self.shared,
                conversation_key(&channel.name, session_id),
                runner::Work::Reply { event_id },
            );
        }
    }

    /// Action mode: answers the logged message (in turn with the conversation's other messages).
    pub async fn answer(
        &self,
        channel: &LiveChannel,
        event_id: i64,
        request: VirtualAgentRequest,
    ) -> Result<TurnDone, TurnError> {
        let (done, rx) = oneshot::channel();
        runner::submit(
            &self.shared,
            conversation_key(&channel.name, &request.session_id),
            runner::Work::Action {
                event_id,
                request: Box::new(request),
                done,
            },
        );
        rx.await.unwrap_or_else(|_| {
            Err(TurnError::Retry {
                reason: "the turn was interrupted".into(),
                retry_after: None,
            })
        })
    }

    /// The `http` backend's callback: logged as a bot turn, its reply queued.
    pub async fn callback(
        &self,
        channel: &LiveChannel,
        body: &[u8],
        callback: chatbot::backends::http::Callback,
    ) -> Result<TurnDone, TurnError> {
        let session_id = callback.conversation_id.clone();
        let done = turns::callback(&self.shared, channel, body, callback).await?;
        if let (Some(id), Some(turn)) = (done.event_id, &done.turn) {
            if crate::sources::chat::REPLY_TYPES.contains(&turn.event_type()) {
                self.submit_reply(channel, &session_id, id);
            }
        }
        Ok(done)
    }

    /// Whether a name is a channel of the configuration file.
    pub fn is_configured(&self, name: &str) -> bool {
        self.shared.config_channels.contains_key(name)
    }

    /// Creates, replaces or deletes an API channel, then reloads. The configuration's channels are read-only.
    pub async fn change_channel(
        &self,
        name: &str,
        change: ChannelChange,
        config: Option<ChatChannelConfig>,
    ) -> Result<(), ChannelError> {
        if self.is_configured(name) {
            return Err(ChannelError::Conflict(format!(
                "channel {name:?} is defined in the configuration file; change it there"
            )));
        }
        let now = now_ms();
        let existing = self
            .shared
            .store
            .chat_channels()
            .await?
            .into_iter()
            .find(|r| r.name == name);
        match change {
            ChannelChange::Deleted => {
                if !self.shared.store.delete_chat_channel(name, now).await? {
                    return Err(ChannelError::NotFound(format!("no chat channel {name:?}")));
                }
            }
            ChannelChange::Created | ChannelChange::Updated => {
                let config = config.ok_or_else(|| ChannelError::Invalid("no settings".into()))?;
                // Everything the server would check at start-up.
                let lease_ms = self.shared.settings.engine.lease.as_millis();
                if u128::from(config.bot.longest_turn_ms()) >= lease_ms {
                    return Err(ChannelError::Invalid(format!(
                        "the bot's longest turn ({} ms) must be shorter than chat.lease_seconds",
                        config.bot.longest_turn_ms()
                    )));
                }
                channels::build_channel(name, &config, reqwest::Client::new())
                    .map_err(ChannelError::Invalid)?;
                let created_at = existing.as_ref().map_or(now, |r| r.created_at);
                let row: ChannelRow =
                    channels::to_row(name, &config, &self.shared.sealer, created_at, now)?;
                let done = match change {
                    ChannelChange::Created => {
                        if existing.is_some() {
                            return Err(ChannelError::Conflict(format!("channel {name:?} exists")));
                        }
                        self.shared.store.insert_chat_channel(&row).await?
                    }
                    _ => self.shared.store.update_chat_channel(&row).await?,
                };
                if !done {
                    return Err(match change {
                        ChannelChange::Created => {
                            ChannelError::Conflict(format!("channel {name:?} exists"))
                        }
                        _ => ChannelError::NotFound(format!("no chat channel {name:?}")),
                    });
                }
            }
        }
        tracing::info!(channel = %name, ?change, "chat channel changed through the admin API");
        self.shared.changed.notify_one();
        // Wait for the reload so that the caller's next request sees the change.
        for _ in 0..100 {
            let loaded = self.shared.channel(name);
            let settled = match (
                &loaded,
                self.shared
                    .store
                    .chat_channels()
                    .await?
                    .iter()
                    .find(|r| r.name == name),
            ) {
                (None, None) => true,
                (Some(c), Some(row)) => c.updated_at == Some(row.updated_at),
                _ => false,
            };
            if settled {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// A stored API channel's configuration (secrets included: for an update that keeps them).
    pub async fn stored_config(
        &self,
        name: &str,
    ) -> Result<Option<ChatChannelConfig>, ChannelError> {
        let Some(row) = self
            .shared
            .store
            .chat_channels()
            .await?
            .into_iter()
            .find(|r| r.name == name)
        else {
            return Ok(None);
        };
        channels::from_row(&row, &self.shared.sealer)
            .map(|(c, _)| Some(c))
            .map_err(ChannelError::Invalid)
    }

    pub fn can_seal(&self) -> bool {
        self.shared.sealer.can_seal()
    }
}

/// Starts the chat feature: loads the channels (the configuration's and the stored ones), writes their outbox
/// routes, and starts each channel's sink workers and the reload loop.
pub async fn start(
    config: &Config,
    store: Arc<dyn Store>,
    log: EventLog,
    background: &mut JoinSet<()>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Chat> {
    let sealer = Sealer::from_config(&config.chat).map_err(|e| anyhow::anyhow!("{e}"))?;
    let http =
        chatbot::http_outcome::http_client(Duration::from_secs(config.chat.post_timeout_seconds))
            .context("the chat channel's HTTP client")?;
    let shared = Arc::new(Shared {
        store: store.clone(),
        log,
        settings: Settings::from_config(&config.chat, config.delivery.response_body_bytes),
        sealer,
        http,
        config_channels: config.chat.channels.clone(),
        registry: RwLock::new(Arc::new(BTreeMap::new())),
        conversations: runner::Conversations::default(),
        admitted: std::sync::Mutex::new(Admitted::default()),
        changed: Notify::new(),
    });
    let mut loaded = BTreeMap::new();
    for (name, c) in &config.chat.channels {
        let channel = shared
            .build(name, Origin::Config, c.clone(), None)
            .map_err(anyhow::Error::msg)?;
        loaded.insert(name.clone(), Arc::new(channel));
    }
    for channel in shared
        .load_api_channels()
        .await
        .context("loading the chat channels")?
    {
        loaded.insert(channel.name.clone(), Arc::new(channel));
    }
    shared
        .install(loaded)
        .await
        .context("writing the chat routes")?;
    // Committers wake the sink workers after each commit (the chat routes queue rows in it).
    store.signals().set_realtime(true);
    for c in shared.channels().values() {
        tracing::info!(channel = %c.name, origin = ?c.origin, mode = ?c.config.reply_mode,
            bot = c.channel.bot.kind(), enabled = c.config.enabled, "chat channel ready");
    }
    background.spawn(manage(shared.clone(), shutdown));
    Ok(Chat { shared })
}

/// Runs each channel's sink workers, restarting them when the channels change (any replica's API change is seen
/// within `chat.reload_seconds`, a local one at once).
async fn manage(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut workers: BTreeMap<String, (i64, watch::Sender<bool>)> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    let mut version = shared.store.chat_channels_version().await.ok();
    loop {
        // Start the workers of channels that have none (or whose settings changed), stop the others'.
        let current = shared.channels();
        let stamp = |c: &LiveChannel| c.updated_at.unwrap_or(0);
        workers.retain(|name, (at, stop)| {
            let keep = current.get(name).is_some_and(|c| stamp(c) == *at);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        for (name, channel) in current.iter() {
            if workers.contains_key(name) {
                continue;
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            spawn_workers(&shared, channel, &mut tasks, stop_rx);
            workers.insert(name.clone(), (stamp(channel), stop_tx));
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = shared.changed.notified() => {}
            _ = tokio::time::sleep(shared.settings.reload) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let now_version = match shared.store.chat_channels_version().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "reading the chat channels' version failed");
                continue;
            }
        };
        if now_version == version {
            continue;
        }
        match shared.load_api_channels().await {
            Ok(api) => {
                let mut loaded: BTreeMap<String, Arc<LiveChannel>> = shared
                    .channels()
                    .iter()
                    .filter(|(_, c)| c.origin == Origin::Config)
                    .map(|(n, c)| (n.clone(), c.clone()))
                    .collect();
                for c in api {
                    loaded.insert(c.name.clone(), Arc::new(c));
                }
                match shared.install(loaded).await {
                    Ok(()) => {
                        version = now_version;
                        tracing::info!("chat channels reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "writing the chat routes failed; retrying")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reloading the chat channels failed; retrying"),
        }
    }
    for (_, (_, stop)) in workers {
        let _ = stop.send(true);
    }
    while tasks.join_next().await.is_some() {}
}

/// A channel's sink workers: bot turns and Post URL replies (trigger mode), push notifications.
fn spawn_workers(
    shared: &Arc<Shared>,
    channel: &LiveChannel,
    tasks: &mut JoinSet<()>,
    stop: watch::Receiver<bool>,
) {
    let settings = shared.settings.engine.clone();
    let mut spawn = |name: &str, sink: Arc<dyn Sink>, timeout: Duration, concurrency: usize| {
        let worker = SinkWorker {
            name: name.to_string(),
            sink,
            concurrency,
            rate_per_second: None,
            timeout,
            body_limit: shared.settings.body_limit,
        };
        tasks.spawn(engine::run_sink(
            worker,
            shared.store.clone(),
            settings.clone(),
            stop.clone(),
        ));
    };
    if channel.config.reply_mode == ReplyMode::Trigger {
        spawn(
            &channel.sinks.bot,
            shared.bot_sink(&channel.name),
            sinks::turn_timeout(channel.config.bot.longest_turn_ms()),
            shared.settings.max_concurrent_turns,
        );
        spawn(
            &channel.sinks.reply,
            shared.reply_sink(&channel.name),
            shared.settings.post_timeout,
            8,
        );
    }
    if channel.config.push.is_some() {
        spawn(
            &channel.sinks.push,
            shared.push_sink(&channel.name),
            shared.settings.post_timeout,
            4,
        );
    }
}
