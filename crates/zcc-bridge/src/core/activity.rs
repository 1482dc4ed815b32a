//! Real-time activity of agents and engagements, in the core's own terms, and the pure folds that turn a set of
//! activity events into an agent's day (status timeline, sessions, queues, engagements) and an engagement's
//! counters (holds, mutes, transfers, time to answer, wrap-up).
//!
//! Events fire more than once and arrive out of order, so nothing here depends on arrival: a fold sorts its
//! input by event time and walks it as a state machine in which a repeated fact changes nothing (a second
//! "held" while on hold is not a second hold). The same set of events, in any order and with any repeats,
//! gives the same result.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::observation::QueueRef;

/// What happened, normalised across Zoom webhooks, the WebSocket and Flow event scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// The engagement entered the contact center.
    Started,
    /// Offered (reserved, ringing) to an agent.
    Offered,
    /// The offer to an agent ended unanswered: rejected, cancelled or timed out.
    Declined,
    /// An agent accepted (answered) it.
    Accepted,
    Held,
    Resumed,
    Muted,
    Unmuted,
    /// An agent asked to transfer it.
    TransferInitiated,
    /// Another agent took it over (the agent named is the new one).
    Transferred,
    /// An agent left it (the engagement may go on).
    Left,
    Ended,
    WrapUpStarted,
    WrapUpEnded,
    DispositionSaved,
    NoteAdded,
    AgentLogin,
    AgentLogout,
    AgentStatusChanged,
    QueueOptIn,
    QueueOptOut,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 21] = [
        ActivityKind::Started,
        ActivityKind::Offered,
        ActivityKind::Declined,
        ActivityKind::Accepted,
        ActivityKind::Held,
        ActivityKind::Resumed,
        ActivityKind::Muted,
        ActivityKind::Unmuted,
        ActivityKind::TransferInitiated,
        ActivityKind::Transferred,
        ActivityKind::Left,
        ActivityKind::Ended,
        ActivityKind::WrapUpStarted,
        ActivityKind::WrapUpEnded,
        ActivityKind::DispositionSaved,
        ActivityKind::NoteAdded,
        ActivityKind::AgentLogin,
        ActivityKind::AgentLogout,
        ActivityKind::AgentStatusChanged,
        ActivityKind::QueueOptIn,
        ActivityKind::QueueOptOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Started => "started",
            ActivityKind::Offered => "offered",
            ActivityKind::Declined => "declined",
            ActivityKind::Accepted => "accepted",
            ActivityKind::Held => "held",
            ActivityKind::Resumed => "resumed",
            ActivityKind::Muted => "muted",
            ActivityKind::Unmuted => "unmuted",
            ActivityKind::TransferInitiated => "transfer_initiated",
            ActivityKind::Transferred => "transferred",
            ActivityKind::Left => "left",
            ActivityKind::Ended => "ended",
            ActivityKind::WrapUpStarted => "wrap_up_started",
            ActivityKind::WrapUpEnded => "wrap_up_ended",
            ActivityKind::DispositionSaved => "disposition_saved",
            ActivityKind::NoteAdded => "note_added",
            ActivityKind::AgentLogin => "agent_login",
            ActivityKind::AgentLogout => "agent_logout",
            ActivityKind::AgentStatusChanged => "agent_status_changed",
            ActivityKind::QueueOptIn => "queue_opt_in",
            ActivityKind::QueueOptOut => "queue_opt_out",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    /// Kinds about an agent rather than an engagement.
    pub fn is_agent_only(self) -> bool {
        matches!(
            self,
            ActivityKind::AgentLogin
                | ActivityKind::AgentLogout
                | ActivityKind::AgentStatusChanged
                | ActivityKind::QueueOptIn
                | ActivityKind::QueueOptOut
        )
    }

    /// Kinds that change who is on an engagement (what presence sync follows).
    pub fn drives_presence(self) -> bool {
        matches!(
            self,
            ActivityKind::Offered
                | ActivityKind::Declined
                | ActivityKind::Accepted
                | ActivityKind::Transferred
                | ActivityKind::Left
                | ActivityKind::Ended
                | ActivityKind::WrapUpStarted
        )
    }

    /// Order among events with the same time: a session opens before anything happens in it, an engagement
    /// starts before it is answered, a hold ends before the engagement does, and a logout comes last.
    fn tie_rank(self) -> u8 {
        match self {
            ActivityKind::AgentLogin => 0,
            ActivityKind::Started => 1,
            ActivityKind::Offered => 2,
            ActivityKind::Accepted | ActivityKind::Declined => 3,
            ActivityKind::Transferred => 4,
            ActivityKind::Held | ActivityKind::Muted => 5,
            ActivityKind::Resumed | ActivityKind::Unmuted => 6,
            ActivityKind::NoteAdded | ActivityKind::DispositionSaved => 7,
            ActivityKind::TransferInitiated => 8,
            ActivityKind::Left => 9,
            ActivityKind::Ended => 10,
            ActivityKind::WrapUpStarted => 11,
            ActivityKind::WrapUpEnded => 12,
            ActivityKind::QueueOptIn | ActivityKind::QueueOptOut => 13,
            ActivityKind::AgentStatusChanged => 14,
            ActivityKind::AgentLogout => 15,
        }
    }
}

/// An agent as an event names it: by Zoom user id, by email, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentIdent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl AgentIdent {
    /// The key an event is filed under: the user id when the event has it, otherwise `email:<lower-case email>`.
    /// Keys of one person are joined by `AgentDirectory`.
    pub fn key(&self) -> Option<String> {
        self.user_id
            .clone()
            .or_else(|| self.email.as_deref().map(email_key))
    }
}

pub fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_ascii_lowercase())
}

/// One activity event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub kind: ActivityKind,
    /// When it happened, epoch ms.
    pub event_ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentIdent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_number: Option<String>,
    /// Agent status after the event (`Ready`, `Not Ready`, `Occupied`, `Offline`, or a custom status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Reason of a `Not Ready` status (`Break`, `Meal`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_status: Option<String>,
    /// Zoom's ids of the status and its reason (`current_status_id`, `current_sub_status_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_status_id: Option<String>,
    /// The status before the change, as Zoom reports it (name and id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sub_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Extra variables a Flow event script posted, kept as they came.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_json::Value>,
}

impl Activity {
    pub fn new(kind: ActivityKind, event_ts: i64) -> Self {
        Self {
            kind,
            event_ts,
            engagement_id: None,
            agent: None,
            queue: None,
            channel: None,
            direction: None,
            consumer_number: None,
            status: None,
            sub_status: None,
            status_id: None,
            sub_status_id: None,
            previous_status: None,
            previous_sub_status: None,
            disposition: None,
            variables: BTreeMap::new(),
        }
    }

    pub fn agent_key(&self) -> Option<String> {
        self.agent.as_ref().and_then(AgentIdent::key)
    }

    /// The status this event leaves the agent in, if it says: a logout means Offline.
    pub fn resulting_status(&self) -> Option<(String, Option<String>)> {
        match self.kind {
            ActivityKind::AgentLogout => Some(("Offline".to_string(), None)),
            ActivityKind::AgentStatusChanged | ActivityKind::AgentLogin => self
                .status
                .clone()
                .filter(|s| !s.is_empty())
                .map(|s| (s, self.sub_status.clone().filter(|s| !s.is_empty()))),
            _ => None,
        }
    }
}

/// An activity event with its event-log id (the tie-breaker of last resort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedActivity {
    pub event_id: i64,
    pub activity: Activity,
}

fn sort(events: &mut [&LoggedActivity]) {
    events.sort_by_key(|e| (e.activity.event_ts, e.activity.kind.tie_rank(), e.event_id));
}

/// Who is who: joins the keys of one person (a user id and an email seen together on some event).
#[derive(Debug, Clone, Default)]
pub struct AgentDirectory {
    /// key → canonical key.
    canonical: HashMap<String, String>,
    /// canonical key → what is known of the person.
    people: BTreeMap<String, AgentIdent>,
}

impl AgentDirectory {
    /// Builds the directory from what events said about people (each entry: one event's or one stored row's
    /// ident). The canonical key is the user id where one is known.
    pub fn build<'a>(idents: impl IntoIterator<Item = &'a AgentIdent>) -> Self {
        // Union-find over keys: an ident with both a user id and an email joins the two.
        let mut parent: HashMap<String, String> = HashMap::new();
        fn find(parent: &mut HashMap<String, String>, key: &str) -> String {
            let mut root = key.to_string();
            while let Some(p) = parent.get(&root) {
                if *p == root {
                    break;
                }
                root = p.clone();
            }
            parent.insert(key.to_string(), root.clone());
            root
        }
        let idents: Vec<&AgentIdent> = idents.into_iter().collect();
        for ident in &idents {
            let keys: Vec<String> = ident
                .user_id
                .iter()
                .cloned()
                .chain(ident.email.as_deref().map(email_key))
                .collect();
            for key in &keys {
                parent.entry(key.clone()).or_insert_with(|| key.clone());
            }
            if let [a, b] = keys.as_slice() {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                if ra != rb {
                    // Prefer a user id as the root.
                    let (root, child) = if rb.starts_with("email:") {
                        (ra, rb)
                    } else {
                        (rb, ra)
                    };
                    parent.insert(child, root);
                }
            }
        }
        let keys: Vec<String> = parent.keys().cloned().collect();
        let mut canonical = HashMap::new();
        for key in keys {
            let root = find(&mut parent, &key);
            canonical.insert(key, root);
        }
        let mut people: BTreeMap<String, AgentIdent> = BTreeMap::new();
        for ident in idents {
            let Some(key) = ident.key() else { continue };
            let root = canonical.get(&key).cloned().unwrap_or(key);
            let person = people.entry(root).or_default();
            fill(&mut person.user_id, &ident.user_id);
            fill(&mut person.email, &ident.email);
            fill(&mut person.display_name, &ident.display_name);
        }
        Self { canonical, people }
    }

    pub fn canonical(&self, key: &str) -> String {
        self.canonical
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// The canonical key of a user id or an email as a client writes it.
    pub fn resolve(&self, id_or_email: &str) -> Option<String> {
        let key = if id_or_email.contains('@') {
            email_key(id_or_email)
        } else {
            id_or_email.to_string()
        };
        self.canonical.get(&key).cloned()
    }

    /// Every key filed under the same person as `canonical`.
    pub fn keys_of(&self, canonical: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .canonical
            .iter()
            .filter(|(_, root)| root.as_str() == canonical)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    pub fn person(&self, canonical: &str) -> AgentIdent {
        self.people.get(canonical).cloned().unwrap_or_default()
    }

    pub fn people(&self) -> impl Iterator<Item = (&String, &AgentIdent)> {
        self.people.iter()
    }

    fn key_of(&self, activity: &Activity) -> Option<String> {
        activity.agent_key().map(|k| self.canonical(&k))
    }
}

fn fill(slot: &mut Option<String>, value: &Option<String>) {
    if slot.is_none() {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            *slot = Some(v.clone());
        }
    }
}

/// An engagement's counters, from every activity event of the engagement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngagementActivity {
    pub engagement_id: String,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub offered_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub answered_at: Option<i64>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub ended_at: Option<i64>,
    /// From start (or offer) to the first acceptance, ms.
    pub time_to_answer_ms: Option<i64>,
    pub hold_count: u32,
    /// Time on hold, ms (a hold still open counts up to the end, or to `now` while the engagement goes on).
    pub hold_ms: i64,
    pub mute_count: u32,
    /// Times another agent took the engagement over.
    pub transfer_count: u32,
    pub wrap_up_ms: i64,
    /// Agents (canonical keys) in the order they took the engagement.
    pub agents: Vec<String>,
    /// The agent handling it now (none once it ended or the agent left), and since when.
    pub current_agent: Option<String>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub current_since: Option<i64>,
    /// When each agent last stopped handling it (left, transferred away, ended).
    pub agent_until: BTreeMap<String, i64>,
    pub on_hold: bool,
    pub queue: Option<QueueRef>,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub consumer_number: Option<String>,
    pub dispositions: Vec<String>,
}

#[derive(Default)]
struct AgentOnEngagement {
    held_since: Option<i64>,
    muted: bool,
    wrap_since: Option<i64>,
}

/// Folds one engagement's events (any order, any repeats) into its counters. `now` closes what is still open.
pub fn engagement_activity(
    engagement_id: &str,
    events: &[&LoggedActivity],
    directory: &AgentDirectory,
    now: i64,
) -> EngagementActivity {
    let mut sorted: Vec<&LoggedActivity> = events.to_vec();
    sort(&mut sorted);
    let mut out = EngagementActivity {
        engagement_id: engagement_id.to_string(),
        ..Default::default()
    };
    let mut per_agent: BTreeMap<String, AgentOnEngagement> = BTreeMap::new();
    let mut seen_dispositions: BTreeSet<String> = BTreeSet::new();
    for logged in sorted {
        let a = &logged.activity;
        let t = a.event_ts;
        let who = directory.key_of(a);
        if out.queue.is_none() {
            out.queue.clone_from(&a.queue);
        }
        fill(&mut out.channel, &a.channel);
        fill(&mut out.direction, &a.direction);
        fill(&mut out.consumer_number, &a.consumer_number);
        match a.kind {
            ActivityKind::Started => out.started_at = Some(out.started_at.map_or(t, |s| s.min(t))),
            ActivityKind::Offered => out.offered_at = Some(out.offered_at.map_or(t, |s| s.min(t))),
            ActivityKind::Accepted | ActivityKind::Transferred => {
                if out.answered_at.is_none() && a.kind == ActivityKind::Accepted {
                    out.answered_at = Some(t);
                }
                if let Some(who) = who {
                    if out.current_agent.as_deref() != Some(who.as_str()) {
                        if a.kind == ActivityKind::Transferred && out.current_agent.is_some() {
                            out.transfer_count += 1;
                        }
                        if let Some(previous) = out.current_agent.take() {
                            close_agent(
                                &mut out,
                                per_agent.entry(previous.clone()).or_default(),
                                t,
                            );
                            out.agent_until.insert(previous, t);
                        }
                        if !out.agents.contains(&who) {
                            out.agents.push(who.clone());
                        }
                        out.current_agent = Some(who);
                        out.current_since = Some(t);
                    }
                }
            }
            ActivityKind::Held => {
                let state = per_agent.entry(who.unwrap_or_default()).or_default();
                if state.held_since.is_none() {
                    state.held_since = Some(t);
                    out.hold_count += 1;
                }
            }
            ActivityKind::Resumed => {
                let state = per_agent.entry(who.unwrap_or_default()).or_default();
                if let Some(since) = state.held_since.take() {
                    out.hold_ms += t - since;
                }
            }
            ActivityKind::Muted => {
                let state = per_agent.entry(who.unwrap_or_default()).or_default();
                if !state.muted {
                    state.muted = true;
                    out.mute_count += 1;
                }
            }
            ActivityKind::Unmuted => {
                per_agent.entry(who.unwrap_or_default()).or_default().muted = false;
            }
            ActivityKind::Left => {
                let who = who.unwrap_or_default();
                close_agent(&mut out, per_agent.entry(who.clone()).or_default(), t);
                if out.current_agent.as_deref() == Some(who.as_str()) {
                    out.current_agent = None;
                    out.current_since = None;
                }
                out.agent_until.insert(who, t);
            }
            ActivityKind::Ended => {
                out.ended_at = Some(out.ended_at.map_or(t, |s| s.min(t)));
                for state in per_agent.values_mut() {
                    close_agent(&mut out, state, t);
                }
                if let Some(last) = out.current_agent.take() {
                    out.agent_until.insert(last, t);
                }
                out.current_since = None;
            }
            ActivityKind::WrapUpStarted => {
                let state = per_agent.entry(who.unwrap_or_default()).or_default();
                if state.wrap_since.is_none() {
                    state.wrap_since = Some(t);
                }
            }
            ActivityKind::WrapUpEnded => {
                let state = per_agent.entry(who.unwrap_or_default()).or_default();
                if let Some(since) = state.wrap_since.take() {
                    out.wrap_up_ms += t - since;
                }
            }
            ActivityKind::DispositionSaved => {
                if let Some(d) = a.disposition.as_ref().filter(|d| !d.is_empty()) {
                    if seen_dispositions.insert(d.clone()) {
                        out.dispositions.push(d.clone());
                    }
                }
            }
            ActivityKind::TransferInitiated
            | ActivityKind::Declined
            | ActivityKind::NoteAdded
            | ActivityKind::AgentLogin
            | ActivityKind::AgentLogout
            | ActivityKind::AgentStatusChanged
            | ActivityKind::QueueOptIn
            | ActivityKind::QueueOptOut => {}
        }
    }
    // What is still open counts up to now while the engagement goes on.
    let open_until = out.ended_at.unwrap_or(now);
    for state in per_agent.values() {
        if let Some(since) = state.held_since {
            out.hold_ms += (open_until - since).max(0);
        }
    }
    out.on_hold = out.ended_at.is_none()
        && out
            .current_agent
            .as_ref()
            .and_then(|a| per_agent.get(a))
            .is_some_and(|s| s.held_since.is_some());
    let began = out.offered_at.or(out.started_at);
    out.time_to_answer_ms = match (began, out.answered_at) {
        (Some(b), Some(a)) => Some((a - b).max(0)),
        _ => None,
    };
    out
}

/// An agent that leaves the engagement: an open hold ends with them.
fn close_agent(out: &mut EngagementActivity, state: &mut AgentOnEngagement, t: i64) {
    if let Some(since) = state.held_since.take() {
        out.hold_ms += (t - since).max(0);
    }
    state.muted = false;
}

/// A stretch of time in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSpan {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_status: Option<String>,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub from: i64,
    /// None: still in it.
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// None: the login happened before the window (or its event never came).
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub login: Option<i64>,
    /// None: still logged in.
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub logout: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMembership {
    pub cc_queue_id: String,
    pub queue_name: Option<String>,
    pub opted_in: bool,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub since: i64,
}

/// An agent's day: where they are now, and what they did in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDay {
    pub agent_key: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub sub_status: Option<String>,
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub status_since: Option<i64>,
    /// Zoom's ids of the current status and reason, when the event that set them carried ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_status_id: Option<String>,
    pub logged_in: bool,
    pub timeline: Vec<StatusSpan>,
    /// Milliseconds per status in the window (`Not Ready` reasons as `Not Ready: Break`).
    pub status_ms: BTreeMap<String, i64>,
    pub sessions: Vec<Session>,
    pub queues: Vec<QueueMembership>,
    /// Engagements this agent handles now.
    pub active_engagements: Vec<String>,
    /// Engagements the agent took part in during the window, with the engagement's counters.
    pub engagements: Vec<EngagementActivity>,
}

fn session_open(day: &AgentDay) -> bool {
    day.sessions.last().is_some_and(|s| s.logout.is_none())
}

/// Folds an agent's events into their day. `before`: the agent's last status-setting event before the window
/// (where the day starts from); `own`: the agent's events in the window; `engagement_events`: every event of the
/// engagements the agent took part in (for counters and for whether they still hold them). `now` closes what is
/// still open.
pub fn agent_day(
    agent_key: &str,
    directory: &AgentDirectory,
    before: Option<&LoggedActivity>,
    own: &[&LoggedActivity],
    engagement_events: &[&LoggedActivity],
    window: (i64, i64),
    now: i64,
) -> AgentDay {
    let (from, to) = window;
    let person = directory.person(agent_key);
    let mut day = AgentDay {
        agent_key: agent_key.to_string(),
        user_id: person.user_id,
        email: person.email,
        display_name: person.display_name,
        status: None,
        sub_status: None,
        status_since: None,
        status_id: None,
        sub_status_id: None,
        logged_in: false,
        timeline: Vec::new(),
        status_ms: BTreeMap::new(),
        sessions: Vec::new(),
        queues: Vec::new(),
        active_engagements: Vec::new(),
        engagements: Vec::new(),
    };
    if let Some((status, sub)) = before.and_then(|b| b.activity.resulting_status()) {
        day.logged_in = status != "Offline";
        day.status = Some(status.clone());
        day.sub_status = sub.clone();
        day.status_since = before.map(|b| b.activity.event_ts);
        day.status_id = before.and_then(|b| b.activity.status_id.clone());
        day.sub_status_id = before.and_then(|b| b.activity.sub_status_id.clone());
        day.timeline.push(StatusSpan {
            status,
            sub_status: sub,
            from,
            to: None,
        });
        if day.logged_in {
            day.sessions.push(Session {
                login: None,
                logout: None,
            });
        }
    }
    let mut sorted: Vec<&LoggedActivity> = own.to_vec();
    sort(&mut sorted);
    let mut queues: BTreeMap<String, QueueMembership> = BTreeMap::new();
    for logged in sorted {
        let a = &logged.activity;
        let t = a.event_ts;
        match a.kind {
            ActivityKind::AgentLogin => {
                if !session_open(&day) {
                    day.sessions.push(Session {
                        login: Some(t),
                        logout: None,
                    });
                }
                day.logged_in = true;
            }
            ActivityKind::AgentLogout => {
                match day.sessions.last_mut() {
                    Some(s) if s.logout.is_none() => s.logout = Some(t),
                    // The login was before the window (or its event never came).
                    None => day.sessions.push(Session {
                        login: None,
                        logout: Some(t),
                    }),
                    // A repeat of a logout already seen.
                    Some(_) => {}
                }
                day.logged_in = false;
            }
            ActivityKind::QueueOptIn | ActivityKind::QueueOptOut => {
                if let Some(q) = &a.queue {
                    let opted_in = a.kind == ActivityKind::QueueOptIn;
                    let entry = queues
                        .entry(q.cc_queue_id.clone())
                        .or_insert(QueueMembership {
                            cc_queue_id: q.cc_queue_id.clone(),
                            queue_name: None,
                            opted_in: !opted_in,
                            since: t,
                        });
                    fill(&mut entry.queue_name, &q.queue_name);
                    if entry.opted_in != opted_in {
                        entry.opted_in = opted_in;
                        entry.since = t;
                    }
                }
            }
            _ => {}
        }
        if let Some((status, sub)) = a.resulting_status() {
            if day.status.as_deref() != Some(status.as_str()) || day.sub_status != sub {
                if let Some(last) = day.timeline.last_mut() {
                    last.to = Some(t);
                }
                // A status set by a logged-in agent implies a session even if the login event was lost.
                if status != "Offline" && !session_open(&day) {
                    day.sessions.push(Session {
                        login: None,
                        logout: None,
                    });
                    day.logged_in = true;
                }
                day.timeline.push(StatusSpan {
                    status: status.clone(),
                    sub_status: sub.clone(),
                    from: t,
                    to: None,
                });
                day.status = Some(status);
                day.sub_status = sub;
                day.status_since = Some(t);
            }
            // Ids come with the names (a repeat of the same status may be the first to carry them).
            if a.kind != ActivityKind::AgentLogout && a.status_id.is_some() {
                day.status_id.clone_from(&a.status_id);
                day.sub_status_id.clone_from(&a.sub_status_id);
            } else if a.kind == ActivityKind::AgentLogout {
                day.status_id = None;
                day.sub_status_id = None;
            }
        }
    }
    // Nothing before the window is shown; an empty first span (a change at the very start) is dropped.
    day.timeline.retain(|s| s.to.is_none_or(|to| to > s.from));
    let end = to.min(now);
    for span in &day.timeline {
        let until = span.to.unwrap_or(end).min(end);
        let ms = (until - span.from.max(from)).max(0);
        let label = match &span.sub_status {
            Some(sub) => format!("{}: {sub}", span.status),
            None => span.status.clone(),
        };
        *day.status_ms.entry(label).or_default() += ms;
    }
    day.queues = queues.into_values().collect();

    // Engagements: grouped, folded, and the ones this agent holds now.
    let mut by_engagement: BTreeMap<&str, Vec<&LoggedActivity>> = BTreeMap::new();
    for e in engagement_events {
        if let Some(id) = e.activity.engagement_id.as_deref() {
            by_engagement.entry(id).or_default().push(e);
        }
    }
    let mut engagements: Vec<EngagementActivity> = by_engagement
        .into_iter()
        .map(|(id, events)| engagement_activity(id, &events, directory, now))
        .filter(|e| e.agents.iter().any(|a| a == agent_key))
        .collect();
    engagements.sort_by_key(|e| {
        (
            e.answered_at.or(e.started_at).unwrap_or(i64::MAX),
            e.engagement_id.clone(),
        )
    });
    day.active_engagements = engagements
        .iter()
        .filter(|e| e.current_agent.as_deref() == Some(agent_key))
        .map(|e| e.engagement_id.clone())
        .collect();
    day.engagements = engagements;
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        id: i64,
        kind: ActivityKind,
        ts: i64,
        agent: Option<&str>,
        eng: Option<&str>,
    ) -> LoggedActivity {
        let mut a = Activity::new(kind, ts);
        a.agent = agent.map(|u| AgentIdent {
            user_id: Some(u.to_string()),
            email: Some(format!("{u}@example.com")),
            display_name: None,
        });
        a.engagement_id = eng.map(str::to_string);
        LoggedActivity {
            event_id: id,
            activity: a,
        }
    }

    fn status(id: i64, ts: i64, agent: &str, s: &str, sub: Option<&str>) -> LoggedActivity {
        let mut e = ev(id, ActivityKind::AgentStatusChanged, ts, Some(agent), None);
        e.activity.status = Some(s.into());
        e.activity.sub_status = sub.map(str::to_string);
        e
    }

    fn shift() -> Vec<LoggedActivity> {
        use ActivityKind::*;
        vec![
            ev(1, AgentLogin, 1_000, Some("u1"), None),
            status(2, 2_000, "u1", "Ready", None),
            ev(3, Started, 10_000, None, Some("E1")),
            ev(4, Accepted, 14_000, Some("u1"), Some("E1")),
            ev(5, Held, 20_000, Some("u1"), Some("E1")),
            ev(6, Resumed, 30_000, Some("u1"), Some("E1")),
            ev(7, Held, 40_000, Some("u1"), Some("E1")),
            ev(8, Resumed, 45_000, Some("u1"), Some("E1")),
            ev(9, Muted, 50_000, Some("u1"), Some("E1")),
            ev(10, Unmuted, 51_000, Some("u1"), Some("E1")),
            ev(11, TransferInitiated, 60_000, Some("u1"), Some("E1")),
            ev(12, Transferred, 70_000, Some("u2"), Some("E1")),
            ev(13, Ended, 90_000, None, Some("E1")),
            ev(14, WrapUpStarted, 90_500, Some("u2"), Some("E1")),
            ev(15, WrapUpEnded, 100_500, Some("u2"), Some("E1")),
            status(16, 110_000, "u1", "Not Ready", Some("Break")),
            status(17, 170_000, "u1", "Ready", None),
            status(18, 200_000, "u1", "Offline", None),
            ev(19, AgentLogout, 201_000, Some("u1"), None),
        ]
    }

    fn day_of(events: &[LoggedActivity], agent: &str, now: i64) -> AgentDay {
        let refs: Vec<&LoggedActivity> = events.iter().collect();
        let dir = AgentDirectory::build(events.iter().filter_map(|e| e.activity.agent.as_ref()));
        let own: Vec<&LoggedActivity> = refs
            .iter()
            .copied()
            .filter(|e| e.activity.agent_key().as_deref() == Some(agent))
            .collect();
        agent_day(agent, &dir, None, &own, &refs, (0, 1_000_000), now)
    }

    #[test]
    fn an_engagement_counts_holds_mutes_transfers_and_wrap_up() {
        let events = shift();
        let refs: Vec<&LoggedActivity> = events
            .iter()
            .filter(|e| e.activity.engagement_id.is_some())
            .collect();
        let dir = AgentDirectory::build(events.iter().filter_map(|e| e.activity.agent.as_ref()));
        let e = engagement_activity("E1", &refs, &dir, 500_000);
        assert_eq!(e.hold_count, 2);
        assert_eq!(e.hold_ms, 15_000);
        assert_eq!(e.mute_count, 1);
        assert_eq!(e.transfer_count, 1);
        assert_eq!(e.time_to_answer_ms, Some(4_000));
        assert_eq!(e.wrap_up_ms, 10_000);
        assert_eq!(e.agents, vec!["u1".to_string(), "u2".to_string()]);
        assert_eq!(e.current_agent, None);
    }

    #[test]
    fn an_agent_day_has_the_status_timeline_and_sessions() {
        let day = day_of(&shift(), "u1", 500_000);
        let spans: Vec<(&str, Option<&str>, i64, Option<i64>)> = day
            .timeline
            .iter()
            .map(|s| (s.status.as_str(), s.sub_status.as_deref(), s.from, s.to))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("Ready", None, 2_000, Some(110_000)),
                ("Not Ready", Some("Break"), 110_000, Some(170_000)),
                ("Ready", None, 170_000, Some(200_000)),
                ("Offline", None, 200_000, None),
            ]
        );
        assert_eq!(
            day.sessions,
            vec![Session {
                login: Some(1_000),
                logout: Some(201_000)
            }]
        );
        assert_eq!(day.status_ms["Ready"], 108_000 + 30_000);
        assert_eq!(day.status_ms["Not Ready: Break"], 60_000);
        assert_eq!(day.status_ms["Offline"], 300_000);
        assert!(!day.logged_in);
        assert_eq!(day.engagements.len(), 1);
        assert!(day.active_engagements.is_empty());
    }

    #[test]
    fn order_and_repeats_do_not_change_the_result() {
        let events = shift();
        let expected = day_of(&events, "u1", 500_000);
        let mut shuffled: Vec<LoggedActivity> = events.iter().rev().cloned().collect();
        // Repeats with new log ids (a second source reporting the same facts).
        for (i, e) in events.iter().enumerate() {
            let mut again = e.clone();
            again.event_id = 1000 + i as i64;
            shuffled.insert((i * 7) % shuffled.len(), again);
        }
        assert_eq!(day_of(&shuffled, "u1", 500_000), expected);
    }

    #[test]
    fn an_email_only_event_joins_the_user_id_of_the_same_person() {
        let events = shift();
        let mut flow = Activity::new(ActivityKind::Accepted, 14_500);
        flow.engagement_id = Some("E1".into());
        flow.agent = Some(AgentIdent {
            user_id: None,
            email: Some("U1@Example.com".into()),
            display_name: None,
        });
        let mut all = events.clone();
        all.push(LoggedActivity {
            event_id: 99,
            activity: flow,
        });
        let refs: Vec<&LoggedActivity> = all.iter().collect();
        let dir = AgentDirectory::build(all.iter().filter_map(|e| e.activity.agent.as_ref()));
        assert_eq!(dir.resolve("u1@example.com").as_deref(), Some("u1"));
        let e = engagement_activity("E1", &refs, &dir, 500_000);
        assert_eq!(
            e.transfer_count, 1,
            "the flow's acceptance is the same agent"
        );
        assert_eq!(e.answered_at, Some(14_000));
    }

    #[test]
    fn an_open_hold_counts_up_to_now_and_the_agent_is_active() {
        use ActivityKind::*;
        let events = vec![
            ev(1, Started, 0, None, Some("E2")),
            ev(2, Accepted, 1_000, Some("u3"), Some("E2")),
            ev(3, Held, 5_000, Some("u3"), Some("E2")),
        ];
        let day = day_of(&events, "u3", 9_000);
        assert_eq!(day.active_engagements, vec!["E2".to_string()]);
        assert_eq!(day.engagements[0].hold_ms, 4_000);
        assert!(day.engagements[0].on_hold);
    }
}
