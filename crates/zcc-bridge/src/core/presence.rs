//! Presence sync, the pure part: which contact-center interactions a user has, what their Zoom presence should
//! be, and what to do about it next.
//!
//! Interaction events arrive duplicated, out of order and in parallel (Genesys says all three happen), so a user's
//! state is a set of sessions keyed by (source, interaction) in which an end always wins: an end that arrives
//! before its start leaves a tombstone that the start cannot undo, and a repeated start or end changes nothing.
//! The user is busy while any session counts (connected, or ringing when the rule says so) and released only
//! when the last one ends. Writes to Zoom are decided when they are due (Zoom takes one update per user per
//! minute), from the state at that moment, so bursts coalesce and the final state always converges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Ended sessions are remembered this long after a newer end (a start that arrives later than that is released
/// by the session timeout instead): the state of a user stays small however many calls they take.
pub const TOMBSTONE_MS: i64 = 24 * 3_600_000;

/// Where an interaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Offered to the user, ringing.
    Ringing,
    /// The user is connected (answered).
    Connected,
    Ended,
}

/// One event about one of a user's interactions, already mapped to the Zoom user and filtered by the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionEvent {
    /// `genesys:<name>`, `zcc`.
    pub source: String,
    /// The interaction (a Genesys conversation's session, a ZCC engagement).
    pub interaction_id: String,
    pub phase: Phase,
    pub event_ts: i64,
    /// The Zoom status to show while this interaction counts (from the source's rule).
    pub busy_status: String,
    /// Whether ringing already counts as busy (the source's rule).
    pub ringing_counts: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The furthest phase of the starts since the last end, and the first of them.
    pub phase: Phase,
    pub since: i64,
    pub busy_status: String,
    pub ringing_counts: bool,
    /// The starts after the interaction's last end (time → phase): an end removes those before it, so a late
    /// end of an earlier stint never ends a later one (a transfer back), whatever the order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub starts: BTreeMap<i64, Phase>,
}

impl Session {
    /// States stored before `starts` existed have one start: `since`.
    fn normalize(&mut self) {
        if self.starts.is_empty() {
            self.starts.insert(self.since, self.phase);
        }
    }

    /// `phase` and `since` from `starts` (non-empty).
    fn refresh(&mut self) {
        self.phase = self.starts.values().copied().max().unwrap_or(self.phase);
        self.since = self.starts.keys().next().copied().unwrap_or(self.since);
    }

    fn last_start(&self) -> i64 {
        self.starts
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.since)
    }

    fn counts(&self) -> bool {
        match self.phase {
            Phase::Connected => true,
            Phase::Ringing => self.ringing_counts,
            Phase::Ended => false,
        }
    }
}

/// Why the last write failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// 429: try again after the interval.
    RateLimited,
    /// 5301: the user is not logged in to the Zoom client; try again later, slowly.
    NotLoggedIn,
    /// 1001: no such Zoom user; do not retry until something changes.
    UnknownUser,
    /// Network, 5xx, token: retry with backoff.
    Transient,
}

/// A user's presence-sync state (stored as JSON, one row per user).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    /// Zoom user id or e-mail.
    pub user: String,
    /// Open sessions by `source/interaction`.
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
    /// Ended sessions (end time) by `source/interaction`: a late start of one of them changes nothing.
    #[serde(default)]
    pub ended: BTreeMap<String, i64>,
    /// The status the user had before we changed it (restored on release).
    #[serde(default)]
    pub saved_status: Option<String>,
    /// The status before the busy spell was read (`saved_status` is what it was, if not ours).
    #[serde(default)]
    pub captured: bool,
    /// The status we last wrote, while we hold the user busy.
    #[serde(default)]
    pub written_status: Option<String>,
    /// The last status read from or written to Zoom.
    #[serde(default)]
    pub actual_status: Option<String>,
    /// No write before this (Zoom's one-per-minute rule, or a backoff), epoch ms.
    #[serde(default)]
    pub next_write_at: i64,
    #[serde(default)]
    pub last_write_at: Option<i64>,
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// What the user's Zoom presence should be now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "status", rename_all = "snake_case")]
pub enum Desired {
    /// Busy with this status.
    Busy(String),
    /// Not busy: whatever the user had (restored if we changed it).
    Free,
}

/// The next call to make for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    Idle,
    /// Read the current status first (before the first change, to restore it later; before a release, to see
    /// whether the user changed it meanwhile).
    Read,
    /// Write this status.
    Write(String),
}

/// Statuses Zoom may report back for one we wrote (its webhook vocabulary differs from the PUT's).
pub fn same_status(written: &str, seen: &str) -> bool {
    let norm = |s: &str| -> String {
        match s.to_ascii_lowercase().replace(['_', ' '], "").as_str() {
            "onacall" | "onphonecall" | "inacall" => "onacall".into(),
            "inazoommeeting" | "inmeeting" | "inameeting" => "inmeeting".into(),
            "incalendarevent" | "inacalendarevent" => "incalendarevent".into(),
            "donotdisturb" | "donodisturb" => "dnd".into(),
            other => other.to_string(),
        }
    };
    norm(written) == norm(seen)
}

impl UserPresence {
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            ..Default::default()
        }
    }

    /// Applies an event. Returns whether anything changed.
    pub fn apply(&mut self, e: &InteractionEvent) -> bool {
        let key = format!("{}/{}", e.source, e.interaction_id);
        let ended_at = self.ended.get(&key).copied();
        if e.phase == Phase::Ended {
            // The latest end is remembered; it ends every start at or before it (an end wins a tie).
            let end = ended_at.map_or(e.event_ts, |t| t.max(e.event_ts));
            let mut changed = ended_at != Some(end);
            self.ended.insert(key.clone(), end);
            let forget_before = e.event_ts.saturating_sub(TOMBSTONE_MS);
            self.ended.retain(|_, at| *at >= forget_before);
            if let Some(session) = self.sessions.get_mut(&key) {
                session.normalize();
                let before = session.starts.len();
                session.starts.retain(|ts, _| *ts > end);
                if session.starts.is_empty() {
                    self.sessions.remove(&key);
                    changed = true;
                } else if session.starts.len() != before {
                    session.refresh();
                    changed = true;
                }
            }
            return changed;
        }
        // A start no later than the last end is late news of an earlier stint.
        if ended_at.is_some_and(|end| e.event_ts <= end) {
            return false;
        }
        match self.sessions.get_mut(&key) {
            None => {
                self.sessions.insert(
                    key,
                    Session {
                        phase: e.phase,
                        since: e.event_ts,
                        busy_status: e.busy_status.clone(),
                        ringing_counts: e.ringing_counts,
                        starts: BTreeMap::from([(e.event_ts, e.phase)]),
                    },
                );
                true
            }
            Some(session) => {
                session.normalize();
                let before = session.clone();
                // A connection is never undone by a late "ringing".
                let phase = session.starts.entry(e.event_ts).or_insert(e.phase);
                *phase = (*phase).max(e.phase);
                session.refresh();
                *session != before
            }
        }
    }

    /// Ends sessions open since before `cutoff` (their end never came) and forgets tombstones older than
    /// `forget_before`. Returns the sessions ended.
    pub fn expire(&mut self, cutoff: i64, forget_before: i64) -> Vec<String> {
        let stale: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last_start() < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &stale {
            self.sessions.remove(key);
            let end = self.ended.get(key).map_or(cutoff, |t| (*t).max(cutoff));
            self.ended.insert(key.clone(), end);
        }
        self.ended.retain(|_, at| *at >= forget_before);
        stale
    }

    pub fn desired(&self) -> Desired {
        // The status of the oldest counting session wins (stable while others come and go).
        self.sessions
            .values()
            .filter(|s| s.counts())
            .min_by(|a, b| (a.since, &a.busy_status).cmp(&(b.since, &b.busy_status)))
            .map_or(Desired::Free, |s| Desired::Busy(s.busy_status.clone()))
    }

    /// What to do next, given what we know. `known`: whether `actual_status` was read (or written) since the
    /// last decision that needs it.
    pub fn next_action(&self, known: bool) -> Action {
        if self.failure == Some(Failure::UnknownUser) {
            return Action::Idle;
        }
        match self.desired() {
            Desired::Busy(status) => {
                if self.written_status.as_deref() == Some(status.as_str())
                    && self
                        .actual_status
                        .as_deref()
                        .is_some_and(|a| same_status(&status, a))
                {
                    Action::Idle
                } else if self.written_status.is_none() && !self.captured && !known {
                    // Remember what to restore.
                    Action::Read
                } else {
                    Action::Write(status)
                }
            }
            Desired::Free => match &self.written_status {
                None => Action::Idle,
                Some(_) if !known => Action::Read,
                Some(written) => {
                    let user_changed = self
                        .actual_status
                        .as_deref()
                        .is_some_and(|a| !same_status(written, a));
                    if user_changed {
                        Action::Idle
                    } else {
                        Action::Write(
                            self.saved_status
                                .clone()
                                .unwrap_or_else(|| "Available".to_string()),
                        )
                    }
                }
            },
        }
    }

    /// Records a read of the current status. Before the first change it is what to restore later; when
    /// releasing, a status other than ours means the user changed it: we leave it and stop holding them.
    pub fn read(&mut self, status: &str) {
        self.actual_status = Some(status.to_string());
        match (&self.written_status, self.desired()) {
            (None, Desired::Busy(busy)) if !self.captured => {
                self.captured = true;
                // Never restore to the status we set ourselves (a crash between a write and its record).
                if !same_status(&busy, status) {
                    self.saved_status = Some(status.to_string());
                }
            }
            (Some(written), Desired::Free) if !same_status(written, status) => {
                self.written_status = None;
                self.saved_status = None;
                self.captured = false;
            }
            _ => {}
        }
    }

    /// Records a successful write at `now`; the next one may come after `interval_ms`.
    pub fn wrote(&mut self, status: &str, now: i64, interval_ms: i64) {
        self.actual_status = Some(status.to_string());
        self.last_write_at = Some(now);
        self.next_write_at = now + interval_ms;
        self.failure = None;
        self.last_error = None;
        self.consecutive_failures = 0;
        match self.desired() {
            Desired::Busy(_) => self.written_status = Some(status.to_string()),
            Desired::Free => {
                self.written_status = None;
                self.saved_status = None;
                self.captured = false;
            }
        }
    }

    /// Records a failed call; returns when to try again (None: not until an event changes something).
    pub fn failed(
        &mut self,
        failure: Failure,
        error: String,
        now: i64,
        interval_ms: i64,
    ) -> Option<i64> {
        self.failure = Some(failure);
        self.last_error = Some(error);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let backoff = |base: i64, cap: i64| {
            let shift = self.consecutive_failures.saturating_sub(1).min(10);
            (base << shift).min(cap)
        };
        let retry = match failure {
            Failure::RateLimited => Some(now + interval_ms),
            Failure::NotLoggedIn => Some(now + backoff(interval_ms, 30 * 60_000)),
            Failure::Transient => Some(now + backoff(2_000, 5 * 60_000)),
            Failure::UnknownUser => None,
        };
        self.next_write_at = retry.unwrap_or(i64::MAX);
        retry
    }

    /// Takes what the worker learnt from and did at Zoom (`outcome`), keeping this state's sessions (events may
    /// have changed them while the worker was calling Zoom).
    pub fn take_zoom_side(&mut self, outcome: &UserPresence) {
        self.saved_status.clone_from(&outcome.saved_status);
        self.captured = outcome.captured;
        self.written_status.clone_from(&outcome.written_status);
        self.actual_status.clone_from(&outcome.actual_status);
        self.next_write_at = outcome.next_write_at;
        self.last_write_at = outcome.last_write_at;
        self.failure = outcome.failure;
        self.last_error.clone_from(&outcome.last_error);
        self.consecutive_failures = outcome.consecutive_failures;
    }

    /// An event changed the user's sessions: a user given up on (unknown, not logged in) is tried again, as
    /// soon as Zoom's interval since our last write allows.
    pub fn touched(&mut self, now: i64, interval_ms: i64) {
        if matches!(
            self.failure,
            Some(Failure::UnknownUser) | Some(Failure::NotLoggedIn)
        ) {
            self.failure = None;
            self.next_write_at = self
                .last_write_at
                .map_or(now, |w| (w + interval_ms).max(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, phase: Phase, ts: i64) -> InteractionEvent {
        InteractionEvent {
            source: "zcc".into(),
            interaction_id: id.into(),
            phase,
            event_ts: ts,
            busy_status: "On_A_Call".into(),
            ringing_counts: false,
        }
    }

    fn busy() -> Desired {
        Desired::Busy("On_A_Call".into())
    }

    #[test]
    fn released_only_when_the_last_session_ends() {
        let mut u = UserPresence::new("u");
        u.apply(&ev("a", Phase::Connected, 1));
        u.apply(&ev("b", Phase::Connected, 2));
        assert_eq!(u.desired(), busy());
        u.apply(&ev("a", Phase::Ended, 3));
        assert_eq!(u.desired(), busy());
        u.apply(&ev("b", Phase::Ended, 4));
        assert_eq!(u.desired(), Desired::Free);
    }

    #[test]
    fn an_end_before_its_start_never_leaves_the_user_busy() {
        let mut u = UserPresence::new("u");
        u.apply(&ev("a", Phase::Ended, 5));
        u.apply(&ev("a", Phase::Connected, 1));
        u.apply(&ev("a", Phase::Ringing, 0));
        assert_eq!(u.desired(), Desired::Free);
    }

    #[test]
    fn ringing_counts_only_when_the_rule_says_so() {
        let mut u = UserPresence::new("u");
        u.apply(&ev("a", Phase::Ringing, 1));
        assert_eq!(u.desired(), Desired::Free);
        let mut e = ev("b", Phase::Ringing, 1);
        e.ringing_counts = true;
        u.apply(&e);
        assert_eq!(u.desired(), busy());
        // A late "ringing" never undoes a connection.
        u.apply(&ev("a", Phase::Connected, 2));
        u.apply(&ev("a", Phase::Ringing, 1));
        assert_eq!(u.sessions["zcc/a"].phase, Phase::Connected);
    }

    #[test]
    fn any_order_and_repetition_gives_the_same_desire() {
        let events = [
            ev("a", Phase::Ringing, 1),
            ev("a", Phase::Connected, 2),
            ev("b", Phase::Connected, 3),
            ev("a", Phase::Ended, 4),
            ev("b", Phase::Ended, 9),
            ev("c", Phase::Connected, 10),
        ];
        // Every rotation, reversed or not, each event twice.
        for rot in 0..events.len() {
            for rev in [false, true] {
                let mut order: Vec<&InteractionEvent> =
                    events.iter().cycle().skip(rot).take(events.len()).collect();
                if rev {
                    order.reverse();
                }
                let mut u = UserPresence::new("u");
                for e in order.iter().chain(order.iter()) {
                    u.apply(e);
                }
                assert_eq!(u.desired(), busy(), "rotation {rot} reversed {rev}");
                assert_eq!(u.sessions.keys().collect::<Vec<_>>(), vec!["zcc/c"]);
            }
        }
    }

    #[test]
    fn read_then_write_then_restore_unless_the_user_changed_it() {
        let mut u = UserPresence::new("u");
        u.apply(&ev("a", Phase::Connected, 1));
        assert_eq!(u.next_action(false), Action::Read);
        u.read("Away");
        assert_eq!(u.next_action(true), Action::Write("On_A_Call".into()));
        u.wrote("On_A_Call", 100, 60_000);
        assert_eq!(u.next_action(true), Action::Idle);
        u.apply(&ev("a", Phase::Ended, 2));
        assert_eq!(u.next_action(false), Action::Read);
        // Zoom reports our status in its own words: still ours.
        u.read("On_Phone_Call");
        assert_eq!(u.next_action(true), Action::Write("Away".into()));
        u.wrote("Away", 200_000, 60_000);
        assert_eq!(u.written_status, None);
        assert_eq!(u.next_action(true), Action::Idle);

        // The user sets DND during the call: on release we leave it alone.
        u.apply(&ev("b", Phase::Connected, 3));
        u.read("Available");
        u.wrote("On_A_Call", 300_000, 60_000);
        u.apply(&ev("b", Phase::Ended, 4));
        u.read("Do_Not_Disturb");
        assert_eq!(u.next_action(true), Action::Idle);
        assert_eq!(u.written_status, None);
    }

    #[test]
    fn failures_back_off_and_an_unknown_user_waits_for_news() {
        let mut u = UserPresence::new("u");
        assert_eq!(
            u.failed(Failure::RateLimited, "429".into(), 0, 60_000),
            Some(60_000)
        );
        assert_eq!(
            u.failed(Failure::NotLoggedIn, "5301".into(), 0, 60_000),
            Some(120_000)
        );
        assert_eq!(
            u.failed(Failure::UnknownUser, "1001".into(), 0, 60_000),
            None
        );
        u.apply(&ev("a", Phase::Connected, 1));
        assert_eq!(u.next_action(true), Action::Idle);
        u.touched(5, 60_000);
        assert_eq!(u.failure, None);
        assert!(u.next_write_at <= 5);
    }

    #[test]
    fn tombstones_are_forgotten_a_day_after_newer_ends() {
        let mut u = UserPresence::new("u");
        for i in 0..100 {
            u.apply(&ev(&format!("e{i}"), Phase::Ended, i * 3_600_000));
        }
        assert_eq!(u.ended.len(), 25, "the last day's ends, not all");
    }

    #[test]
    fn stale_sessions_expire() {
        let mut u = UserPresence::new("u");
        u.apply(&ev("a", Phase::Connected, 1));
        u.apply(&ev("b", Phase::Connected, 100));
        assert_eq!(u.expire(50, 0), vec!["zcc/a".to_string()]);
        assert_eq!(u.desired(), busy());
        u.apply(&ev("a", Phase::Connected, 1));
        assert!(
            !u.sessions.contains_key("zcc/a"),
            "an expired session stays ended"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn event() -> impl Strategy<Value = InteractionEvent> {
            (0..4u8, 0..3u8, 0..50i64, any::<bool>()).prop_map(|(id, phase, ts, ringing)| {
                InteractionEvent {
                    source: "zcc".into(),
                    interaction_id: format!("i{id}"),
                    phase: [Phase::Ringing, Phase::Connected, Phase::Ended][phase as usize],
                    event_ts: ts,
                    busy_status: "On_A_Call".into(),
                    // The rule is per source; vary it per interaction, not per event.
                    ringing_counts: ringing && id % 2 == 0,
                }
            })
        }

        fn fold(events: &[InteractionEvent]) -> (Desired, Vec<String>) {
            let mut u = UserPresence::new("u");
            for e in events {
                u.apply(e);
            }
            (u.desired(), u.sessions.keys().cloned().collect())
        }

        proptest! {
            /// The user's sessions and desired status depend on the set of events only: not on their order,
            /// nor on repeats. (The busy status and ringing rule are the same for all events of an interaction
            /// in real use; the strategy keeps the rule stable per interaction id.)
            #[test]
            fn order_and_repeats_do_not_matter(
                events in proptest::collection::vec(event(), 0..24),
                seed in any::<u64>(),
            ) {
                let mut events = events;
                for e in &mut events {
                    e.ringing_counts = e.interaction_id == "i0" || e.interaction_id == "i2";
                }
                let expected = fold(&events);
                let mut shuffled: Vec<InteractionEvent> = events.iter().chain(events.iter()).cloned().collect();
                // A deterministic shuffle from the seed.
                let mut x = seed | 1;
                for i in (1..shuffled.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    shuffled.swap(i, (x % (i as u64 + 1)) as usize);
                }
                prop_assert_eq!(fold(&shuffled), expected);
            }

            /// An interaction is open exactly when it has a start later than its latest end (a later start is
            /// a new stint, such as a transfer back), with the furthest phase of those starts.
            #[test]
            fn an_interaction_is_open_after_its_last_end_only(events in proptest::collection::vec(event(), 0..24)) {
                let mut u = UserPresence::new("u");
                for e in &events {
                    u.apply(e);
                }
                for id in 0..4 {
                    let of = |e: &&InteractionEvent| e.interaction_id == format!("i{id}");
                    let last_end = events.iter().filter(of).filter(|e| e.phase == Phase::Ended).map(|e| e.event_ts).max();
                    let after: Vec<&InteractionEvent> = events.iter().filter(of)
                        .filter(|e| e.phase != Phase::Ended && last_end.is_none_or(|end| e.event_ts > end))
                        .collect();
                    let session = u.sessions.get(&format!("zcc/i{id}"));
                    prop_assert_eq!(session.is_some(), !after.is_empty());
                    if let Some(s) = session {
                        prop_assert_eq!(Some(s.phase), after.iter().map(|e| e.phase).max());
                    }
                }
            }
        }
    }
}
