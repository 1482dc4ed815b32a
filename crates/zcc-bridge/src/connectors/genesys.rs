//! Genesys Cloud, pull: the Notifications API as a source of conversation events, for deployments that prefer
//! not to expose an endpoint (`[presence.genesys.<name>] notifications = true`).
//!
//! The source subscribes to `v2.users.{id}.conversations` for its users (1,000 topics per channel, as many
//! channels as needed; the `genesys::notifications` subscriber keeps each alive). A conversation event carries
//! the whole conversation; each of the user's sessions in it becomes a detail event in Genesys's own
//! `user.start` / `user.end` shape and goes through the same parser and event log as pushed events, so
//! pulled and pushed events are one vocabulary, deduplicated alike, and rebuilt alike.
//!
//! Genesys does not replay what was published while no socket was connected. After every reconnect the open
//! sessions of the source's users (as presence sync holds them) are checked against
//! `GET /api/v2/conversations/{id}`, so an end missed during the gap still releases its user. A session that
//! started during the gap is seen with the conversation's next event (each one carries the whole state).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use genesys::models::{user_conversations_topic, user_of_topic, Notification, UserSession};
use genesys::notifications::{NotificationItem, NotificationsConfig, MAX_TOPICS_PER_CHANNEL};
use genesys::{Conversation, GenesysClient, SessionState};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::core::EventSource;
use crate::ingest::EventLog;
use crate::presence::GenesysOrg;
use crate::sources::genesys as detail_events;
use crate::store::{now_ms, Inbound, NewQuarantine, Outcome, Store};

#[derive(Debug, Clone)]
pub struct PullSettings {
    pub notifications: NotificationsConfig,
    /// How often the user list is fetched again (new hires, e-mail entries).
    pub refresh: Duration,
}

impl Default for PullSettings {
    fn default() -> Self {
        Self {
            notifications: NotificationsConfig::default(),
            refresh: Duration::from_secs(3600),
        }
    }
}

/// Runs the pull source of `puller`'s org until `shutdown`. One replica pulls (Postgres: an advisory lock per
/// source); the others wait and take over when it stops.
pub async fn run(puller: Arc<Feed>, settings: PullSettings, mut shutdown: watch::Receiver<bool>) {
    let name = format!("genesys-notifications:{}", puller.org.name);
    let lock = loop {
        match puller.store.try_exclusive(&name).await {
            Ok(Some(lock)) => break lock,
            Ok(None) => {
                tracing::debug!(source = %puller.org.name, "Genesys notifications: another replica pulls");
            }
            Err(e) => {
                tracing::warn!(source = %puller.org.name, error = %e, "Genesys notifications: taking the lead failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TAKE_OVER_EVERY) => {}
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
        }
    };
    pull(&puller, &settings, &mut shutdown).await;
    lock.release().await;
}

/// How often a standby replica tries to take the lead.
const TAKE_OVER_EVERY: Duration = Duration::from_secs(5);

async fn pull(puller: &Arc<Feed>, settings: &PullSettings, shutdown: &mut watch::Receiver<bool>) {
    let mut channels: Vec<watch::Sender<Vec<String>>> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut retry = Duration::from_secs(1);
    loop {
        let topics = tokio::select! {
            topics = puller.topics() => topics,
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        };
        let next = match topics {
            Ok(topics) => {
                retry = Duration::from_secs(1);
                let chunks: Vec<Vec<String>> = topics
                    .chunks(MAX_TOPICS_PER_CHANNEL)
                    .map(<[String]>::to_vec)
                    .collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    match channels.get(i) {
                        Some(sender) => {
                            sender.send_if_modified(|current| {
                                let changed = current != chunk;
                                if changed {
                                    current.clone_from(chunk);
                                }
                                changed
                            });
                        }
                        None => {
                            let (sender, receiver) = watch::channel(chunk.clone());
                            channels.push(sender);
                            tasks.spawn(puller.clone().channel(
                                settings.notifications.clone(),
                                receiver,
                                shutdown.clone(),
                            ));
                        }
                    }
                }
                // Channels no longer needed keep running with no topics (cheap; users come back).
                for sender in channels.iter().skip(chunks.len()) {
                    sender.send_if_modified(|current| {
                        let changed = !current.is_empty();
                        current.clear();
                        changed
                    });
                }
                settings.refresh
            }
            Err(e) => {
                tracing::warn!(source = %puller.org.name, error = %e, "Genesys notifications: listing users failed; will retry");
                retry = (retry * 2).min(Duration::from_secs(60));
                retry
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// An org's conversation states into the event log: the pull source, the check after a reconnect, and the
/// confirmation of pushed starts.
pub struct Feed {
    org: Arc<GenesysOrg>,
    client: Arc<GenesysClient>,
    store: Arc<dyn Store>,
    log: EventLog,
    /// The last state logged per session (a conversation event repeats the states of every unchanged session).
    seen: Mutex<HashMap<String, SessionState>>,
    /// API calls of the checks are spaced by this (Genesys: 300 requests per minute per token by default).
    pace: tokio::sync::Mutex<tokio::time::Instant>,
    /// Pushed starts being followed (a repeated post does not start a second follower).
    following: Mutex<HashSet<String>>,
}

/// Spacing of the checks' API calls: a quarter of Genesys's default budget of 300 per minute.
const CHECK_SPACING: Duration = Duration::from_millis(800);
/// When a pushed, ringing start is checked again (seconds after it), until connected or ended.
const CONFIRM_SCHEDULE: [u64; 9] = [2, 4, 7, 11, 16, 25, 40, 60, 90];

impl Feed {
    /// `None` without API access.
    pub fn new(org: Arc<GenesysOrg>, store: Arc<dyn Store>, log: EventLog) -> Option<Arc<Feed>> {
        Some(Arc::new(Feed {
            client: org.client.clone()?,
            org,
            store,
            log,
            seen: Mutex::new(HashMap::new()),
            pace: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            following: Mutex::new(HashSet::new()),
        }))
    }

    /// A conversation, paced.
    async fn conversation(&self, id: &str) -> Result<Conversation, genesys::GenesysError> {
        {
            let mut next = self.pace.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = tokio::time::Instant::now() + CHECK_SPACING;
        }
        self.client.conversation(id).await
    }

    /// A pushed `user.start` says the session rings (Genesys fires it on alerting, reference §2.4): follow the
    /// conversation until this user's session is connected or ended, and log what it becomes under the pushed
    /// session's id (so the pushed end closes the same session).
    pub async fn confirm(self: Arc<Self>, conversation_id: String, user: String, session: String) {
        let key = format!("{conversation_id}/{session}");
        if !self
            .following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone())
        {
            return;
        }
        self.follow(&conversation_id, &user, &session).await;
        self.following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    async fn follow(&self, conversation_id: &str, user: &str, session: &str) {
        let started = tokio::time::Instant::now();
        for after in CONFIRM_SCHEDULE {
            tokio::time::sleep_until(started + Duration::from_secs(after)).await;
            let now = now_ms();
            match self.conversation(conversation_id).await {
                Ok(conversation) => {
                    let mut sessions = conversation.user_sessions(user);
                    // The pushed session: the same id, or the participant:media id ending in it, or the user's
                    // latest session in the conversation.
                    let suffix = format!(":{session}");
                    let Some(i) = sessions
                        .iter()
                        .position(|s| s.session_id == session || s.session_id.ends_with(&suffix))
                        .or(sessions.len().checked_sub(1))
                    else {
                        return;
                    };
                    let mut found = sessions.swap_remove(i);
                    found.session_id = session.to_string();
                    let settled = found.state != SessionState::Ringing;
                    self.log_sessions(user, std::slice::from_ref(&found), now)
                        .await;
                    if settled {
                        return;
                    }
                }
                Err(e) if e.is_not_found() => return,
                Err(e) => {
                    tracing::warn!(source = %self.org.name, conversation = ?conversation_id, error = %e, "Genesys: checking a ringing session failed")
                }
            }
        }
    }

    /// The topics of the source's users: `users` (ids, or e-mails found in the user list) or every active user.
    async fn topics(&self) -> Result<Vec<String>, genesys::GenesysError> {
        let config = &self.org.config;
        let emails: BTreeSet<String> = config
            .users
            .iter()
            .filter(|u| u.contains('@'))
            .map(|u| u.to_ascii_lowercase())
            .collect();
        let mut ids: BTreeSet<String> = config
            .users
            .iter()
            .filter(|u| !u.contains('@'))
            .cloned()
            .collect();
        if config.all_users || !emails.is_empty() {
            let users = self.client.all_users().await?;
            self.org.remember(&users);
            for u in &users {
                let by_email = u
                    .address()
                    .is_some_and(|a| emails.contains(&a.to_ascii_lowercase()));
                if config.all_users || by_email {
                    ids.insert(u.id.clone());
                }
            }
            let found = users
                .iter()
                .filter_map(|u| u.address())
                .map(str::to_ascii_lowercase)
                .collect::<BTreeSet<_>>();
            for missing in emails.difference(&found) {
                tracing::warn!(source = %self.org.name, email = ?missing, "Genesys notifications: no active Genesys user has this e-mail");
            }
        }
        Ok(ids.iter().map(|id| user_conversations_topic(id)).collect())
    }

    /// One channel: its subscriber, and what it reports turned into events.
    async fn channel(
        self: Arc<Self>,
        config: NotificationsConfig,
        topics: watch::Receiver<Vec<String>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let (tx, mut rx) = mpsc::channel(256);
        let subscriber = tokio::spawn(genesys::notifications::run(
            self.client.clone(),
            config,
            topics,
            tx,
            shutdown.clone(),
        ));
        let name = self.org.name.clone();
        let mut gap = false;
        while let Some(item) = rx.recv().await {
            match item {
                NotificationItem::Connected { new_channel, .. } => {
                    metrics::gauge!("zcc_genesys_notifications_connected", "source" => name.clone())
                        .increment(1.0);
                    if gap || new_channel {
                        // Sessions may have changed while nothing was delivered.
                        let me = self.clone();
                        tokio::spawn(async move { me.reconcile_open_sessions().await });
                    }
                    gap = false;
                }
                NotificationItem::Disconnected { .. } => {
                    metrics::gauge!("zcc_genesys_notifications_connected", "source" => name.clone())
                        .decrement(1.0);
                    metrics::counter!("zcc_genesys_notifications_disconnects_total", "source" => name.clone())
                        .increment(1);
                    gap = true;
                }
                NotificationItem::Event {
                    topic,
                    raw,
                    received_at_ms,
                } => self.on_event(&topic, &raw, received_at_ms).await,
                NotificationItem::Malformed {
                    raw,
                    error,
                    received_at_ms,
                } => {
                    tracing::warn!(source = %name, error = ?error.to_string(), "Genesys notifications: frame not understood; quarantining");
                    self.quarantine(raw, error, received_at_ms).await;
                }
            }
        }
        if let Err(e) = subscriber.await {
            tracing::error!(source = %self.org.name, error = %e, "Genesys notifications subscriber panicked");
        }
    }

    async fn quarantine(&self, raw: Vec<u8>, reason: String, received_at: i64) {
        self.append(vec![Inbound::Quarantine(NewQuarantine {
            source: EventSource::Genesys,
            source_label: Some(format!("genesys:{}", self.org.name)),
            received_at,
            request_id: None,
            reason,
            raw: Bytes::from(raw),
        })])
        .await;
    }

    async fn on_event(&self, topic: &str, raw: &[u8], received_at: i64) {
        let Some(user) = user_of_topic(topic) else {
            tracing::debug!(source = %self.org.name, topic, "Genesys notifications: topic not used");
            return;
        };
        let conversation = serde_json::from_slice::<Notification>(raw)
            .map_err(|e| e.to_string())
            .and_then(|n| {
                serde_json::from_value::<Conversation>(n.event_body).map_err(|e| e.to_string())
            });
        match conversation {
            Ok(conversation) => {
                let sessions = conversation.user_sessions(user);
                self.log_sessions(user, &sessions, received_at).await;
            }
            Err(error) => {
                tracing::warn!(source = %self.org.name, topic, error = ?error.to_string(), "Genesys notifications: conversation event not understood; quarantining");
                self.quarantine(
                    raw.to_vec(),
                    format!("conversation event: {error}"),
                    received_at,
                )
                .await;
            }
        }
    }

    /// Logs the sessions whose state is new to us, as detail events.
    async fn log_sessions(&self, user: &str, sessions: &[UserSession], received_at: i64) {
        let fresh: Vec<&UserSession> = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() > 100_000 {
                // Forgetting only costs a repeated (deduplicated or harmless) event.
                seen.clear();
            }
            sessions
                .iter()
                .filter(|s| {
                    let key = format!("{}/{}", s.conversation_id, s.session_id);
                    let old = seen.insert(key, s.state);
                    old != Some(s.state)
                })
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let items = fresh
            .into_iter()
            .map(|s| {
                let body = Bytes::from(detail_event(user, s, received_at).to_string());
                detail_events::inbound(&self.org.name, body, received_at).0
            })
            .collect();
        self.append(items).await;
    }

    /// Appends until the log takes it: what Genesys sent is not dropped because the database hiccuped.
    async fn append(&self, items: Vec<Inbound>) {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.log.append(items.clone()).await {
                Ok(outcomes) => {
                    // The push endpoint's metric and labels.
                    for outcome in outcomes {
                        let label = match outcome {
                            Outcome::Stored { .. } => "stored",
                            Outcome::Duplicate { .. } => "duplicate",
                            Outcome::Quarantined { .. } => "quarantined",
                        };
                        metrics::counter!("zcc_genesys_events_total", "source" => self.org.name.clone(), "outcome" => label)
                            .increment(1);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(source = %self.org.name, error = %e, "Genesys notifications: logging events failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Checks every open session of this source against the conversation as Genesys has it now.
    async fn reconcile_open_sessions(&self) {
        let prefix = format!(
            "genesys/{}{}:",
            detail_events::SESSION_PREFIX,
            self.org.name
        );
        let rows = match self.store.presence_rows().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(source = %self.org.name, error = %e, "Genesys notifications: reading open sessions failed");
                return;
            }
        };
        // `genesys/genesys:<name>:<conversation>/<participant>:<media>` → conversation, participant.
        let mut open: BTreeSet<(String, String)> = BTreeSet::new();
        for row in rows {
            for key in row.state.sessions.keys() {
                if let Some((conversation, session)) =
                    key.strip_prefix(&prefix).and_then(|k| k.split_once('/'))
                {
                    let participant = session.split(':').next().unwrap_or(session);
                    open.insert((conversation.to_string(), participant.to_string()));
                }
            }
        }
        if open.is_empty() {
            return;
        }
        tracing::info!(source = %self.org.name, sessions = open.len(), "Genesys notifications: checking open sessions after a reconnect");
        let conversations: BTreeSet<&String> = open.iter().map(|(c, _)| c).collect();
        for id in conversations {
            let now = now_ms();
            match self.conversation(id).await {
                Ok(conversation) => {
                    let users: BTreeSet<String> = conversation
                        .participants
                        .iter()
                        .filter(|p| open.contains(&(id.clone(), p.id.clone())))
                        .filter_map(|p| p.user_id.clone())
                        .collect();
                    for user in users {
                        let sessions = conversation.user_sessions(&user);
                        self.log_sessions(&user, &sessions, now).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %self.org.name, conversation = ?id, error = %e, "Genesys notifications: conversation lookup failed")
                }
            }
        }
    }
}

/// A session state as a detail event (reference §2.4), the shape pushed events have, plus `connected`.
fn detail_event(user: &str, s: &UserSession, received_at: i64) -> serde_json::Value {
    let topic = match s.state {
        SessionState::Ended => "v2.detail.events.conversation.{id}.user.end",
        SessionState::Ringing | SessionState::Connected => {
            "v2.detail.events.conversation.{id}.user.start"
        }
    };
    let mut event = json!({
        "topicName": topic,
        "eventTime": s.at_ms.unwrap_or(received_at),
        "conversationId": s.conversation_id,
        "sessionId": s.session_id,
        "userId": user,
        "mediaType": s.media_type.to_ascii_uppercase(),
        "connected": s.state == SessionState::Connected,
        "via": "notifications",
    });
    if let Some(direction) = &s.direction {
        event["direction"] = json!(direction.to_ascii_uppercase());
    }
    if let Some(queue) = &s.queue_id {
        event["queueId"] = json!(queue);
    }
    event
}
