//! Presence sync, the worker: turns engagements the projector marked into session changes per Zoom user, and
//! writes each user's Zoom presence when it is due (decisions in `core::presence`).
//!
//! Durable end to end: the projector marks an engagement in the transaction that records its activity; the
//! worker applies the session changes and clears the mark in one transaction; a user's state (sessions, what we
//! wrote, what to restore, when the next write may happen) lives in the database, so a restart resumes where it
//! was. Every event applied, read, write and failure is in the audit log (`GET /api/v1/presence`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinError, JoinSet};
use zoom::api::{ApiError, PresenceUpdate, ZoomClient};

use crate::config::{PresenceConfig, PresenceRule};
use crate::core::activity::{engagement_activity, ActivityKind, AgentDirectory, LoggedActivity};
use crate::core::presence::{Action, Desired, Failure, InteractionEvent, Phase, UserPresence};
use crate::sources::genesys;
use crate::store::activity::AgentRow;
use crate::store::presence::{AuditEntry, Claim, DueFn, NEVER};
use crate::store::{now_ms, Store};

pub mod orgs;
pub mod setup;

pub use orgs::{GenesysOrg, GenesysOrgs, ZoomUser};

/// Engagements looked at per round.
const WATCH_BATCH: u32 = 200;
/// Users acted for at once.
const CONCURRENCY: usize = 8;
/// Users the apply loop may hand to the act loop ahead of it: a few seconds of Zoom calls, well inside the lease.
const HANDOFF: usize = 64;
/// How often the worker looks for due users when nothing wakes it.
const TICK: Duration = Duration::from_millis(250);
/// A claimed user is someone else's after this long (a replica that died mid-call).
const LEASE_MS: i64 = 60_000;
/// Audit lines are kept this long.
const AUDIT_KEEP_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Clone)]
pub struct PresenceSync {
    store: Arc<dyn Store>,
    client: Arc<ZoomClient>,
    config: Arc<PresenceConfig>,
    orgs: GenesysOrgs,
}

impl PresenceSync {
    pub fn new(
        store: Arc<dyn Store>,
        client: Arc<ZoomClient>,
        config: PresenceConfig,
        orgs: GenesysOrgs,
    ) -> Self {
        Self {
            store,
            client,
            config: Arc::new(config),
            orgs,
        }
    }

    fn interval_ms(&self) -> i64 {
        i64::try_from(self.config.min_interval_seconds.saturating_mul(1000)).unwrap_or(60_000)
    }

    /// Runs until `shutdown`: applying marked engagements and acting for due users are two loops, so new events
    /// never wait behind the Zoom calls of earlier ones. The apply loop leases the users an event made due in its
    /// own transaction and hands them straight to the act loop; the act loop also claims users that fall due later
    /// (the minute between writes, retries) or that another replica left.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let (handoff, handed) = mpsc::channel(HANDOFF);
        let left_due = Notify::new();
        tokio::join!(
            self.apply_loop(handoff, &left_due, shutdown.clone()),
            self.act_loop(handed, &left_due, shutdown)
        );
    }

    async fn apply_loop(
        &self,
        handoff: mpsc::Sender<UserPresence>,
        left_due: &Notify,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last_expiry = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.apply_marked(&handoff, left_due).await {
                tracing::warn!(error = %e, "presence sync: applying engagement changes failed; retrying");
            }
            let now = now_ms();
            if now - last_expiry >= 60_000 {
                last_expiry = now;
                if let Err(e) = self.expire(now, &handoff, left_due).await {
                    tracing::warn!(error = %e, "presence sync: expiring stale sessions failed");
                }
                if let Err(e) = self.store.prune_presence_audit(now - AUDIT_KEEP_MS).await {
                    tracing::warn!(error = %e, "presence sync: pruning the audit log failed");
                }
            }
            tokio::select! {
                _ = self.store.signals().wait_presence() => {}
                _ = tokio::time::sleep(TICK) => {}
                r = shutdown.changed() => if r.is_err() { return },
            }
        }
    }

    /// Applies `changes` and passes the users it leased to the act loop.
    async fn apply(
        &self,
        changes: &[(String, Vec<InteractionEvent>)],
        marks: &[(String, i64)],
        now: i64,
        handoff: &mpsc::Sender<UserPresence>,
        left_due: &Notify,
        due: &DueFn,
    ) -> crate::store::Result<()> {
        // Only as many as the act loop can take now: a leased user must not wait in a queue for its lease to end.
        let claim = Claim {
            lease_until: now + LEASE_MS,
            limit: handoff.capacity(),
        };
        let applied = self
            .store
            .apply_presence(changes, marks, now, claim, due)
            .await?;
        for user in applied.claimed {
            // Only this loop sends, so the capacity read above is still free; failing means shutdown, and the
            // lease then lapses for whichever process acts next.
            if let Err(e) = handoff.try_send(user) {
                tracing::debug!(error = %e, "presence sync: the act loop is gone; the lease will lapse");
            }
        }
        if applied.left_due > 0 {
            left_due.notify_one();
        }
        Ok(())
    }

    async fn act_loop(
        &self,
        mut handed: mpsc::Receiver<UserPresence>,
        left_due: &Notify,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Tasks, not futures polled by this loop: an act holding the (single SQLite) writer mid-transaction must
        // progress while this loop waits for its own claim.
        let mut acting: JoinSet<crate::store::Result<()>> = JoinSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim = true;
        while !*shutdown.borrow() {
            if claim && acting.len() < CONCURRENCY {
                claim = false;
                let now = now_ms();
                let room = CONCURRENCY - acting.len();
                match self
                    .store
                    .claim_presence(now, now + LEASE_MS, u32::try_from(room).unwrap_or(1))
                    .await
                {
                    Ok(users) => {
                        // A full batch: there may be more.
                        claim = users.len() == room;
                        for user in users {
                            acting.spawn(self.clone().act(user));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "presence sync: claiming due users failed; retrying")
                    }
                }
            }
            tokio::select! {
                user = handed.recv(), if acting.len() < CONCURRENCY => match user {
                    Some(user) => {
                        acting.spawn(self.clone().act(user));
                    }
                    None => break,
                },
                Some(result) = acting.join_next(), if !acting.is_empty() => acted(result),
                () = left_due.notified() => claim = true,
                _ = tick.tick() => claim = true,
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
        // Calls under way finish and are stored (a write Zoom made must not be forgotten); users handed over but
        // not started are released for the next start.
        while let Some(result) = acting.join_next().await {
            acted(result);
        }
        while let Some(user) = handed.recv().await {
            let now = now_ms();
            if let Err(e) = self
                .store
                .finish_presence(&user, &[], now, &|state, now| due_at(state, now))
                .await
            {
                tracing::warn!(user = ?user.user, error = %e, "presence sync: releasing a user at shutdown failed; the lease will lapse");
            }
        }
    }

    /// Marked engagements → each agent's session on it: connected while they hold it, ended otherwise.
    async fn apply_marked(
        &self,
        handoff: &mpsc::Sender<UserPresence>,
        left_due: &Notify,
    ) -> crate::store::Result<()> {
        loop {
            let marks = self.store.presence_watch(WATCH_BATCH).await?;
            if marks.is_empty() {
                return Ok(());
            }
            let ids: Vec<String> = marks.iter().map(|(id, _)| id.clone()).collect();
            let activity = self.store.engagement_activity(&ids).await?;
            // Engagement events name agents by user id; only an e-mail-only one (a Flow post) needs everyone
            // events ever named to find out who it is.
            let email_only = activity.iter().any(|a| {
                a.activity
                    .agent
                    .as_ref()
                    .is_some_and(|p| p.user_id.is_none())
            });
            let directory = if email_only {
                let rows = self.store.agent_rows().await?;
                let idents: Vec<_> = rows.iter().map(AgentRow::ident).collect();
                AgentDirectory::build(idents.iter())
            } else {
                AgentDirectory::build(activity.iter().filter_map(|a| a.activity.agent.as_ref()))
            };
            let mut by_engagement: BTreeMap<&str, Vec<&LoggedActivity>> = BTreeMap::new();
            for a in &activity {
                if let Some(id) = a.activity.engagement_id.as_deref() {
                    by_engagement.entry(id).or_default().push(a);
                }
            }
            let now = now_ms();
            let mut changes: BTreeMap<String, Vec<InteractionEvent>> = BTreeMap::new();
            let mut deferred = Vec::new();
            for (engagement, events) in by_engagement {
                let sessions = if engagement.starts_with(genesys::SESSION_PREFIX) {
                    match self.genesys_sessions(engagement, &events, now).await {
                        Some(sessions) => sessions,
                        None => {
                            deferred.push(engagement.to_string());
                            continue;
                        }
                    }
                } else {
                    self.zcc_sessions(engagement, &events, &directory, now)
                };
                for (user, event) in sessions {
                    changes.entry(user).or_default().push(event);
                }
            }
            let changes: Vec<(String, Vec<InteractionEvent>)> = changes.into_iter().collect();
            // A session whose user could not be looked up keeps its mark, for a later round.
            let cleared: Vec<(String, i64)> = marks
                .iter()
                .filter(|(id, _)| !deferred.contains(id))
                .cloned()
                .collect();
            let interval = self.interval_ms();
            self.apply(
                &changes,
                &cleared,
                now,
                handoff,
                left_due,
                &move |state, now| {
                    state.touched(now, interval);
                    due_at(state, now)
                },
            )
            .await?;
            if marks.len() < WATCH_BATCH as usize || !deferred.is_empty() {
                return Ok(());
            }
        }
    }

    /// The sessions an engagement gives its agents, from all its activity (so the order in which the activity
    /// arrived does not matter).
    fn zcc_sessions(
        &self,
        engagement: &str,
        events: &[&LoggedActivity],
        directory: &AgentDirectory,
        now: i64,
    ) -> Vec<(String, InteractionEvent)> {
        let rule: &PresenceRule = &self.config.zcc;
        if !rule.enabled {
            return Vec::new();
        }
        let folded = engagement_activity(engagement, events, directory, now);
        let queue = folded.queue.as_ref().map(|q| q.cc_queue_id.as_str());
        if !rule.matches(
            folded.channel.as_deref(),
            folded.direction.as_deref(),
            queue,
        ) {
            return Vec::new();
        }
        // The latest wrap-up, offer and declined offer of each agent (wrap-up releases the agent: the engagement
        // itself is over for them).
        let latest = |kind: ActivityKind| {
            let mut by_agent: BTreeMap<String, i64> = BTreeMap::new();
            for e in events.iter().filter(|e| e.activity.kind == kind) {
                if let Some(key) = e.activity.agent_key() {
                    let at = by_agent
                        .entry(directory.canonical(&key))
                        .or_insert(i64::MIN);
                    *at = (*at).max(e.activity.event_ts);
                }
            }
            by_agent
        };
        let wrapped = latest(ActivityKind::WrapUpStarted);
        let declined = latest(ActivityKind::Declined);
        let offered = if rule.ringing {
            latest(ActivityKind::Offered)
        } else {
            BTreeMap::new()
        };
        let mut agents: Vec<&String> = folded.agents.iter().collect();
        agents.extend(offered.keys().filter(|a| !folded.agents.contains(a)));
        agents
            .into_iter()
            .map(|agent| {
                let wrap = wrapped.get(agent).copied();
                let stint = folded.current_since.or(folded.answered_at);
                let holding = folded.ended_at.is_none()
                    && folded.current_agent.as_deref() == Some(agent.as_str())
                    && wrap.is_none_or(|w| stint.is_some_and(|since| w < since));
                // The latest end of the agent's part: left, transferred away, wrap-up, offer declined, the
                // engagement's end.
                let until = [
                    folded.agent_until.get(agent).copied(),
                    wrap,
                    declined.get(agent).copied(),
                    folded.ended_at,
                ]
                .into_iter()
                .flatten()
                .max();
                // Offered after the agent's last end (and the rule counts ringing): ringing.
                let ringing = offered
                    .get(agent)
                    .copied()
                    .filter(|offer| folded.ended_at.is_none() && until.is_none_or(|u| *offer > u));
                // A new stint starts when the agent takes the engagement (a transfer back is a new stint of the
                // same engagement); it ends at the latest end of their part.
                let (phase, at) = if holding {
                    (Phase::Connected, stint.unwrap_or(now))
                } else if let Some(offer) = ringing {
                    (Phase::Ringing, offer)
                } else {
                    (Phase::Ended, until.unwrap_or(now))
                };
                let user = self.zoom_user(agent, directory);
                (
                    user,
                    InteractionEvent {
                        source: "zcc".into(),
                        interaction_id: engagement.to_string(),
                        phase,
                        event_ts: at,
                        busy_status: rule.busy_status.clone(),
                        ringing_counts: rule.ringing,
                    },
                )
            })
            .collect()
    }

    /// A Genesys session (one user's part of a conversation): ringing, connected or ended, by its source's rule.
    /// Unmapped Genesys users are reported (log, metric), not guessed. `None`: the user could not be looked up
    /// now; try again later.
    async fn genesys_sessions(
        &self,
        session: &str,
        events: &[&LoggedActivity],
        now: i64,
    ) -> Option<Vec<(String, InteractionEvent)>> {
        let Some(org) = genesys::source_of(session).and_then(|s| self.orgs.get(s)) else {
            tracing::warn!(
                session,
                "presence sync: Genesys session of a source no longer configured"
            );
            return Some(Vec::new());
        };
        let source = &org.config;
        let Some(first) = events.first() else {
            return Some(Vec::new());
        };
        let a = &first.activity;
        let queue = events
            .iter()
            .find_map(|e| e.activity.queue.as_ref().map(|q| q.cc_queue_id.clone()));
        if !source.rule().matches(
            a.channel.as_deref(),
            a.direction.as_deref(),
            queue.as_deref(),
        ) {
            return Some(Vec::new());
        }
        let Some(user) = a.agent_key() else {
            return Some(Vec::new());
        };
        let genesys_user = genesys::user_of(&user).unwrap_or(&user);
        let zoom_user = match org.zoom_user(&self.config.users, genesys_user).await {
            ZoomUser::Mapped(zoom) => zoom,
            ZoomUser::Unmapped(why) => {
                org.report_unmapped(genesys_user, &why, now);
                metrics::counter!("zcc_presence_unmapped_total", "source" => "genesys")
                    .increment(1);
                tracing::warn!(
                    source = %org.name,
                    genesys_user,
                    why = ?why,
                    "presence sync: Genesys user has no Zoom user; ignored"
                );
                return Some(Vec::new());
            }
            ZoomUser::Later(_) => return None,
        };
        let kinds: Vec<ActivityKind> = events.iter().map(|e| e.activity.kind).collect();
        let phase = if kinds.contains(&ActivityKind::Ended) {
            Phase::Ended
        } else if kinds.contains(&ActivityKind::Accepted) {
            Phase::Connected
        } else {
            Phase::Ringing
        };
        let times = events.iter().filter(|e| match phase {
            Phase::Ended => e.activity.kind == ActivityKind::Ended,
            _ => true,
        });
        let at = match phase {
            Phase::Ended => times.map(|e| e.activity.event_ts).max(),
            _ => times.map(|e| e.activity.event_ts).min(),
        }
        .unwrap_or(now);
        Some(vec![(
            zoom_user,
            InteractionEvent {
                source: "genesys".into(),
                interaction_id: session.to_string(),
                phase,
                event_ts: at,
                busy_status: source.busy_status.clone(),
                ringing_counts: source.ringing,
            },
        )])
    }

    /// The Zoom user of a contact-center agent: the mapping table (by user id or e-mail), else the agent's Zoom
    /// user id (ZCC agents are Zoom users).
    fn zoom_user(&self, agent: &str, directory: &AgentDirectory) -> String {
        let person = directory.person(agent);
        let by_email = person.email.as_ref().and_then(|e| {
            self.config
                .users
                .get(&e.to_ascii_lowercase())
                .or(self.config.users.get(e))
        });
        self.config
            .users
            .get(agent)
            .or(by_email)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }

    /// Releases sessions whose end never came.
    async fn expire(
        &self,
        now: i64,
        handoff: &mpsc::Sender<UserPresence>,
        left_due: &Notify,
    ) -> crate::store::Result<()> {
        let timeout = i64::try_from(self.config.session_timeout_minutes.saturating_mul(60_000))
            .unwrap_or(i64::MAX / 4);
        let mut changes = Vec::new();
        for row in self.store.presence_rows().await? {
            let mut probe = row.state.clone();
            let stale = probe.expire(now - timeout, now - crate::core::presence::TOMBSTONE_MS);
            if stale.is_empty() {
                continue;
            }
            let events: Vec<InteractionEvent> = stale
                .iter()
                .filter_map(|key| {
                    let (source, id) = key.split_once('/')?;
                    tracing::warn!(user = ?row.state.user, session = ?key, "presence sync: no end after the session timeout; releasing");
                    Some(InteractionEvent {
                        source: source.to_string(),
                        interaction_id: id.to_string(),
                        phase: Phase::Ended,
                        event_ts: now,
                        busy_status: String::new(),
                        ringing_counts: false,
                    })
                })
                .collect();
            changes.push((row.state.user.clone(), events));
        }
        if changes.is_empty() {
            return Ok(());
        }
        metrics::counter!("zcc_presence_sessions_expired_total").increment(changes.len() as u64);
        self.apply(&changes, &[], now, handoff, left_due, &|state, now| {
            due_at(state, now)
        })
        .await
    }

    /// Reads and writes what one user needs now, then stores the outcome.
    async fn act(self, mut user: UserPresence) -> crate::store::Result<()> {
        let started = now_ms();
        let interval = self.interval_ms();
        let mut audit = Vec::new();
        let mut known = false;
        for _ in 0..3 {
            let now = now_ms();
            match user.next_action(known) {
                Action::Idle => break,
                Action::Read => match self.client.presence_status(&user.user).await {
                    Ok(status) => {
                        let status = status.status.unwrap_or_else(|| "Unknown".into());
                        audit.push(entry(now, "read", format!("Zoom says {status}")));
                        let held = user.written_status.is_some();
                        user.read(&status);
                        if held && user.written_status.is_none() {
                            audit.push(entry(
                                now,
                                "left_alone",
                                format!("the user changed their status to {status} meanwhile: not restored"),
                            ));
                        }
                        known = true;
                    }
                    Err(e) => {
                        self.failed(&mut user, &e, now, &mut audit);
                        break;
                    }
                },
                Action::Write(status) => {
                    if now < user.next_write_at {
                        // Zoom's minute since our last write has not passed: come back then.
                        break;
                    }
                    let update = PresenceUpdate {
                        status: status.clone(),
                        duration: None,
                    };
                    match self
                        .client
                        .update_presence_status(&user.user, &update)
                        .await
                    {
                        Ok(()) => {
                            let kind = match user.desired() {
                                Desired::Busy(_) => "write_busy",
                                Desired::Free => "write_restore",
                            };
                            audit.push(entry(now, kind, format!("set {status}")));
                            metrics::counter!("zcc_presence_writes_total", "outcome" => "ok")
                                .increment(1);
                            metrics::histogram!("zcc_presence_decision_seconds")
                                .record((now_ms() - started).max(0) as f64 / 1000.0);
                            user.wrote(&status, now_ms(), interval);
                        }
                        Err(e) => {
                            self.failed(&mut user, &e, now, &mut audit);
                        }
                    }
                    break;
                }
            }
        }
        self.store
            .finish_presence(&user, &audit, now_ms(), &|state, now| due_at(state, now))
            .await
    }

    fn failed(&self, user: &mut UserPresence, e: &ApiError, now: i64, audit: &mut Vec<AuditEntry>) {
        let failure = classify(e);
        let label = match failure {
            Failure::RateLimited => "rate_limited",
            Failure::NotLoggedIn => "not_logged_in",
            Failure::UnknownUser => "unknown_user",
            Failure::Transient => "error",
        };
        metrics::counter!("zcc_presence_writes_total", "outcome" => label).increment(1);
        let retry = user.failed(failure, e.to_string(), now, self.interval_ms());
        tracing::warn!(user = ?user.user, error = %e, ?retry, "presence sync: Zoom call failed");
        audit.push(entry(now, "failed", format!("{label}: {e}")));
    }
}

fn entry(at: i64, kind: &str, detail: String) -> AuditEntry {
    AuditEntry {
        at,
        kind: kind.to_string(),
        detail,
    }
}

/// When the worker should next act for a user: now (or when Zoom allows the next write) if there is something
/// to do, otherwise never.
pub fn due_at(state: &mut UserPresence, now: i64) -> i64 {
    let write_allowed = state.next_write_at.max(now);
    match state.next_action(false) {
        Action::Idle => NEVER,
        // Reading before a restore, or after a failure, waits for the write it prepares.
        Action::Read if state.written_status.is_some() || state.failure.is_some() => write_allowed,
        Action::Read => now,
        Action::Write(_) => write_allowed,
    }
}

/// Logs what an act task ended with.
fn acted(result: Result<crate::store::Result<()>, JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "presence sync: storing a user's outcome failed; the lease will lapse and it is retried")
        }
        Err(e) => {
            tracing::error!(error = %e, "presence sync: acting for a user panicked; the lease will lapse and it is retried")
        }
    }
}

/// Zoom's answer, as far as retrying goes.
pub fn classify(e: &ApiError) -> Failure {
    match e {
        ApiError::Api { status: 429, .. } | ApiError::RateLimited { .. } => Failure::RateLimited,
        ApiError::Api {
            code: Some(zoom::api::CODE_PRESENCE_UPDATE_FAILED),
            ..
        } => Failure::NotLoggedIn,
        ApiError::Api {
            code: Some(zoom::api::CODE_USER_NOT_FOUND),
            ..
        }
        | ApiError::Api { status: 404, .. } => Failure::UnknownUser,
        // No permission, a bad status: retrying will not help until the configuration changes.
        ApiError::Api {
            status: 400..=499, ..
        } => Failure::UnknownUser,
        _ => Failure::Transient,
    }
}

/// A user as `GET /api/v1/presence` shows them.
#[derive(Debug, Serialize)]
pub struct PresenceView {
    pub user: String,
    pub desired: Desired,
    pub actual_status: Option<String>,
    /// What we set and hold (none when we do not hold the user).
    pub written_status: Option<String>,
    /// What the user had before, restored on release.
    pub saved_status: Option<String>,
    pub sessions: Vec<String>,
    /// The next call to Zoom (none: nothing pending).
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub pending_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub last_write_at: Option<i64>,
    pub last_error: Option<String>,
    pub failure: Option<Failure>,
    pub audit: Vec<AuditEntry>,
}

pub async fn view(store: &dyn Store, audit_lines: u32) -> crate::store::Result<Vec<PresenceView>> {
    let mut audit = store.presence_audit(audit_lines).await?;
    let mut out = Vec::new();
    for row in store.presence_rows().await? {
        let s = row.state;
        out.push(PresenceView {
            desired: s.desired(),
            audit: audit.remove(&s.user).unwrap_or_default(),
            user: s.user,
            actual_status: s.actual_status,
            written_status: s.written_status,
            saved_status: s.saved_status,
            sessions: s.sessions.keys().cloned().collect(),
            pending_at: (row.due_at < NEVER).then_some(row.due_at),
            last_write_at: s.last_write_at,
            last_error: s.last_error,
            failure: s.failure,
        });
    }
    Ok(out)
}
