//! Agent activity, read side: agents' days and lists from the `activity` table (folded by `core::activity`),
//! and the activity metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::core::activity::{
    agent_day, engagement_activity, Activity, ActivityKind, AgentDay, AgentDirectory,
    EngagementActivity, LoggedActivity,
};
use crate::store::activity::AgentRow;
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;
/// How far back the list looks for engagements an agent may still hold.
const ACTIVE_LOOKBACK_MS: i64 = DAY_MS;

/// Counts activity recorded for the first time (repeats are not counted again) and the status spans it closed.
pub fn count_new_activity(new: &[(Activity, Option<String>)], closed_spans: &[(String, i64)]) {
    for (activity, queue) in new {
        metrics::counter!("zcc_activity_events_total", "kind" => activity.kind.as_str())
            .increment(1);
        let name = match activity.kind {
            ActivityKind::Held => "zcc_engagement_holds_total",
            ActivityKind::Muted => "zcc_engagement_mutes_total",
            ActivityKind::Transferred => "zcc_engagement_transfers_total",
            _ => continue,
        };
        let queue = queue.clone().unwrap_or_else(|| "unknown".to_string());
        metrics::counter!(name, "queue" => queue).increment(1);
    }
    for (status, ms) in closed_spans {
        metrics::histogram!("zcc_agent_status_duration_seconds", "status" => status.clone())
            .record(*ms as f64 / 1000.0);
    }
}

/// One line of `GET /api/v1/agents`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSummary {
    pub agent_key: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub sub_status: Option<String>,
    /// When the current status was set.
    #[serde(serialize_with = "crate::core::time::rfc3339_opt")]
    pub status_since: Option<i64>,
    /// Zoom's ids of the status and its reason (`current_status_id`, `current_sub_status_id`), when sent.
    pub status_id: Option<String>,
    pub sub_status_id: Option<String>,
    pub logged_in: bool,
    pub active_engagements: Vec<String>,
    #[serde(serialize_with = "crate::core::time::rfc3339")]
    pub last_event_ts: i64,
}

/// Reads agents' state from the store.
#[derive(Clone)]
pub struct Agents {
    store: Arc<dyn Store>,
}

impl Agents {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    async fn directory(&self) -> crate::store::Result<(AgentDirectory, Vec<AgentRow>)> {
        let rows = self.store.agent_rows().await?;
        let idents: Vec<_> = rows.iter().map(AgentRow::ident).collect();
        Ok((AgentDirectory::build(idents.iter()), rows))
    }

    /// Every agent events named, with their current status and the engagements they hold.
    pub async fn list(&self, now: i64) -> crate::store::Result<Vec<AgentSummary>> {
        let (directory, mut people) = self.statuses().await?;
        for (engagement, agent) in self.held_engagements(&directory, now).await? {
            if let Some(p) = people.get_mut(&agent) {
                p.active_engagements.push(engagement);
            }
        }
        Ok(people.into_values().collect())
    }

    /// Every agent with their current status (no engagements: cheap), by canonical key.
    async fn statuses(
        &self,
    ) -> crate::store::Result<(AgentDirectory, BTreeMap<String, AgentSummary>)> {
        let (directory, rows) = self.directory().await?;
        let mut people: BTreeMap<String, AgentSummary> = BTreeMap::new();
        let mut logged_in_since: HashMap<String, i64> = HashMap::new();
        for row in &rows {
            let key = directory.canonical(&row.agent_key);
            let person = directory.person(&key);
            let entry = people.entry(key.clone()).or_insert_with(|| AgentSummary {
                agent_key: key.clone(),
                user_id: person.user_id.clone(),
                email: person.email.clone(),
                display_name: person.display_name.clone(),
                status: None,
                sub_status: None,
                status_since: None,
                status_id: None,
                sub_status_id: None,
                logged_in: false,
                active_engagements: Vec::new(),
                last_event_ts: 0,
            });
            entry.last_event_ts = entry.last_event_ts.max(row.last_event_ts);
            // One person may be filed under several keys (a user id, an e-mail): the newest row decides.
            let row_ts = row.status_ts.max(row.session_ts);
            if row_ts > *logged_in_since.get(&key).unwrap_or(&0) {
                logged_in_since.insert(key.clone(), row_ts);
                entry.logged_in = row.logged_in();
            }
            if row.status.is_some() && Some(row.status_ts) > entry.status_since {
                entry.status.clone_from(&row.status);
                entry.sub_status.clone_from(&row.sub_status);
                entry.status_since = Some(row.status_ts);
                entry.status_id.clone_from(&row.status_id);
                entry.sub_status_id.clone_from(&row.sub_status_id);
            }
        }
        Ok((directory, people))
    }

    /// Engagements of the last day that an agent holds now: (engagement, canonical agent key).
    async fn held_engagements(
        &self,
        directory: &AgentDirectory,
        now: i64,
    ) -> crate::store::Result<Vec<(String, String)>> {
        // Who holds an engagement depends on these alone.
        let kinds = [
            ActivityKind::Accepted,
            ActivityKind::Transferred,
            ActivityKind::Left,
            ActivityKind::Ended,
        ];
        let recent = self
            .store
            .activity_between(now - ACTIVE_LOOKBACK_MS, i64::MAX, Some(&kinds))
            .await?;
        let mut by_engagement: BTreeMap<&str, Vec<&LoggedActivity>> = BTreeMap::new();
        for e in &recent {
            if let Some(id) = e.activity.engagement_id.as_deref() {
                by_engagement.entry(id).or_default().push(e);
            }
        }
        Ok(by_engagement
            .into_iter()
            .filter_map(|(id, events)| {
                let folded = engagement_activity(id, &events, directory, now);
                Some((id.to_string(), folded.current_agent?))
            })
            .collect())
    }

    /// One agent's day (`window`: from, to epoch ms), by user id or email. None: no event names them.
    pub async fn day(
        &self,
        id_or_email: &str,
        window: (i64, i64),
        now: i64,
    ) -> crate::store::Result<Option<AgentDay>> {
        let (directory, _) = self.directory().await?;
        let Some(key) = directory.resolve(id_or_email) else {
            return Ok(None);
        };
        let keys = directory.keys_of(&key);
        let own = self.store.agent_activity(&keys, window.0, window.1).await?;
        let before = self
            .store
            .status_events_before(&keys, window.0, 20)
            .await?
            .into_iter()
            .find(|e| e.activity.resulting_status().is_some());
        let mut engagement_ids: Vec<String> = own
            .iter()
            .filter_map(|e| e.activity.engagement_id.clone())
            .collect();
        engagement_ids.sort();
        engagement_ids.dedup();
        let engagement_events = self.store.engagement_activity(&engagement_ids).await?;
        let own: Vec<&LoggedActivity> = own.iter().collect();
        let engagement_events: Vec<&LoggedActivity> = engagement_events.iter().collect();
        Ok(Some(agent_day(
            &key,
            &directory,
            before.as_ref(),
            &own,
            &engagement_events,
            window,
            now,
        )))
    }

    /// An engagement's counters. None: no activity is known for it.
    pub async fn engagement(
        &self,
        engagement_id: &str,
        now: i64,
    ) -> crate::store::Result<Option<EngagementActivity>> {
        let events = self
            .store
            .engagement_activity(&[engagement_id.to_string()])
            .await?;
        if events.is_empty() {
            return Ok(None);
        }
        let (directory, _) = self.directory().await?;
        let refs: Vec<&LoggedActivity> = events.iter().collect();
        Ok(Some(engagement_activity(
            engagement_id,
            &refs,
            &directory,
            now,
        )))
    }

    /// Keeps `zcc_agents{status}` (agents per current status) up to date.
    pub async fn run_gauges(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut shown: HashSet<String> = HashSet::new();
        loop {
            match self.statuses().await {
                Ok((_, agents)) => {
                    let mut counts: HashMap<String, f64> = HashMap::new();
                    for a in agents.values() {
                        let status = a.status.clone().unwrap_or_else(|| "Unknown".into());
                        *counts.entry(status).or_default() += 1.0;
                    }
                    // Statuses nobody is in any more go to zero rather than keep their last count.
                    for status in &shown {
                        counts.entry(status.clone()).or_default();
                    }
                    for (status, n) in counts {
                        metrics::gauge!("zcc_agents", "status" => status.clone()).set(n);
                        shown.insert(status);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "agent gauges not refreshed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The UTC day containing `at`, as (start, end) epoch ms.
pub fn utc_day(at: i64) -> (i64, i64) {
    let start = at.div_euclid(DAY_MS) * DAY_MS;
    (start, start + DAY_MS)
}
