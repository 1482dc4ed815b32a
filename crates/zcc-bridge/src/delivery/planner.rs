//! The planner: turns changed engagement records into messages. An engagement is delivered as
//! `engagement.completed` once it has settled (ended, and notes, dispositions and media all there, or
//! `delivery.settle_seconds` after its end); every later change of what the record says is delivered as
//! `engagement.updated`. The projector marks changed records (`delivery_watch`) in the transaction that changes
//! them; the planner queues a message and clears the mark in one transaction, so a crash loses neither.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::sink::{CALL_LOGGED, ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED};
use super::sinks::{Facets, Route};
use crate::core::{EngagementRecord, EngagementState};
use crate::media::MediaLinks;
use crate::store::delivery::{ExtraMessage, PlannedMessage, PlannedState, WatchRow};
use crate::store::media::{MEDIA_ARCHIVED, MEDIA_DEAD, MEDIA_EXPIRED};
use crate::store::{now_ms, Store};

/// Watched engagements looked at per round.
const BATCH: u32 = 200;

#[derive(Clone)]
pub struct PlannerSettings {
    pub settle: Duration,
    pub poll: Duration,
    /// A claimed engagement is someone else's after this long (a replica that died while planning).
    pub lease: Duration,
}

pub struct Planner {
    pub store: Arc<dyn Store>,
    pub routes: Vec<Route>,
    pub links: Option<Arc<MediaLinks>>,
    pub settings: PlannerSettings,
    /// Whether media is archived (then "media present" means archived or given up on).
    pub media_enabled: bool,
}

impl Planner {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let touched = self.store.signals().watch_touched_signal();
            tokio::pin!(touched);
            touched.as_mut().enable();
            let looked = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery planning failed; retrying");
                    0
                }
            };
            if looked >= BATCH as usize {
                continue;
            }
            tokio::select! {
                _ = &mut touched => {
                    // Changes come in bursts: let the coalescing window of the first one pass.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Looks at every due engagement once; returns how many.
    pub async fn round(&self) -> crate::store::Result<usize> {
        let now = now_ms();
        let lease_until = now + i64::try_from(self.settings.lease.as_millis()).unwrap_or(60_000);
        let due = self.store.claim_watch(now, lease_until, BATCH).await?;
        let mut queued = false;
        for watch in &due {
            match self.plan(watch, now).await {
                Ok(q) => queued |= q,
                Err(e) => {
                    tracing::warn!(engagement_id = ?watch.engagement_id, error = %e,
                        "planning the delivery of an engagement failed; it is looked at again when its lease ends");
                }
            }
        }
        if queued {
            self.store.signals().deliveries_queued();
        }
        Ok(due.len())
    }

    /// Decides about one engagement; returns whether deliveries were queued.
    async fn plan(&self, watch: &WatchRow, now: i64) -> crate::store::Result<bool> {
        let Some(state) = self.store.engagement(&watch.engagement_id).await? else {
            self.store.settle_watch(watch, None).await?;
            return Ok(false);
        };
        let planned = self
            .store
            .planned_state(&watch.engagement_id)
            .await?
            .unwrap_or_default();
        let mut records = [state.to_record()];
        if let Some(links) = &self.links {
            links.attach(&*self.store, &mut records).await?;
        }
        let [record] = records;
        let hash = content_hash(&record);
        let (event_type, completed_at, revision) = match planned.completed_at {
            None => {
                let Some(end) = state.end_time() else {
                    // Not ended: nothing to send; the end's event marks the record again.
                    self.store.settle_watch(watch, None).await?;
                    return Ok(false);
                };
                let deadline = end
                    .saturating_add(i64::try_from(self.settings.settle.as_millis()).unwrap_or(0));
                if now < deadline && !self.complete(&record) {
                    self.store.settle_watch(watch, Some(deadline)).await?;
                    return Ok(false);
                }
                (ENGAGEMENT_COMPLETED, now, 1)
            }
            Some(completed_at) => {
                if planned.content_hash.as_deref() == Some(hash.as_str()) {
                    self.store.settle_watch(watch, None).await?;
                    return Ok(false);
                }
                (ENGAGEMENT_UPDATED, completed_at, planned.revision + 1)
            }
        };
        let sinks = self.sinks_for(event_type, &state);
        let payload = serde_json::to_string(&record).map_err(|e| {
            crate::store::StoreError::Invalid(format!("record does not serialise: {e}"))
        })?;
        let extra = self
            .call_log(&record, &state, now)
            .await?
            .into_iter()
            .collect();
        let message = PlannedMessage {
            extra,
            msg_id: message_id(&watch.engagement_id, event_type, revision),
            event_type: event_type.to_string(),
            engagement_id: watch.engagement_id.clone(),
            payload,
            created_at: now,
            caused_at: watch.caused_at,
            state: PlannedState {
                completed_at: Some(completed_at),
                revision,
                content_hash: Some(hash),
            },
            sinks,
        };
        self.store.plan_message(watch, &message).await?;
        tracing::debug!(engagement_id = ?watch.engagement_id, event_type, revision, sinks = message.sinks.len(),
            "engagement message queued");
        Ok(!message.sinks.is_empty())
    }

    /// The call log of a completed engagement with a disposition, for the sinks that take call logs. Its id is
    /// the same at every planning, so it is queued once.
    async fn call_log(
        &self,
        record: &EngagementRecord,
        state: &EngagementState,
        now: i64,
    ) -> crate::store::Result<Option<ExtraMessage>> {
        let sinks = self.sinks_for(CALL_LOGGED, state);
        if sinks.is_empty() || record.dispositions.is_empty() {
            return Ok(None);
        }
        let activity = crate::activity::Agents::new(self.store.clone())
            .engagement(&record.engagement_id, now)
            .await?;
        let payload = call_log_payload(record, activity.as_ref()).to_string();
        Ok(Some(ExtraMessage {
            msg_id: message_id(&record.engagement_id, CALL_LOGGED, 1),
            event_type: CALL_LOGGED.to_string(),
            payload,
            sinks,
        }))
    }

    /// Settled early: notes, dispositions and media are all there.
    fn complete(&self, record: &EngagementRecord) -> bool {
        let mut media = record
            .recordings
            .iter()
            .flat_map(|r| [&r.media, &r.transcript_media])
            .chain(
                record
                    .voicemails
                    .iter()
                    .flat_map(|v| [&v.media, &v.transcript_media]),
            )
            .chain(record.transcripts.iter().map(|t| &t.media))
            .peekable();
        let has_media = !record.recordings.is_empty()
            || !record.voicemails.is_empty()
            || !record.transcripts.is_empty();
        let media_done = if self.media_enabled {
            media.peek().is_some()
                && media.all(|m| {
                    // A file the archive does not know of yet (a transcript not listed) does not hold delivery up.
                    m.as_ref().is_none_or(|m| {
                        [MEDIA_ARCHIVED, MEDIA_DEAD, MEDIA_EXPIRED].contains(&m.state.as_str())
                    })
                })
        } else {
            has_media
        };
        !record.notes.is_empty() && !record.dispositions.is_empty() && media_done
    }

    fn sinks_for(&self, event_type: &str, state: &EngagementState) -> Vec<String> {
        let queues = state.queue_ids();
        let facets = Facets {
            channel: state.channel(),
            direction: state.direction(),
            queues: &queues,
        };
        self.routes
            .iter()
            .filter(|r| r.wants_type(event_type) && r.matches(facets))
            .map(|r| r.sink.clone())
            .collect()
    }
}

/// A call log: who, when, how long, the outcome, and the engagement's activity counters.
pub fn call_log_payload(
    record: &EngagementRecord,
    activity: Option<&crate::core::activity::EngagementActivity>,
) -> serde_json::Value {
    let seconds = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1000.0);
    serde_json::json!({
        "engagement_id": record.engagement_id,
        "channel": record.channel,
        "direction": record.direction,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "duration_seconds": record.duration,
        "queue": record.queues.first(),
        "agents": record.agents,
        "consumer": record.consumers.first(),
        "disposition": record.dispositions.last(),
        "dispositions": record.dispositions,
        "notes": record.notes,
        "recordings": record.recordings,
        "time_to_answer_seconds": seconds(activity.and_then(|a| a.time_to_answer_ms)),
        "hold_count": activity.map(|a| a.hold_count),
        "hold_seconds": seconds(activity.map(|a| a.hold_ms)),
        "mute_count": activity.map(|a| a.mute_count),
        "transfer_count": activity.map(|a| a.transfer_count),
        "wrap_up_seconds": seconds(activity.map(|a| a.wrap_up_ms)),
    })
}

/// A stable id per (engagement, type, revision): re-planning after a crash yields the same message.
pub fn message_id(engagement_id: &str, event_type: &str, revision: i64) -> String {
    let digest = Sha256::digest(format!("{engagement_id}\n{event_type}\n{revision}").as_bytes());
    format!("msg_{}", &hex::encode(digest)[..32])
}

/// What the record says, for "did it change": without links (re-signed on every read; a revoked durable link is
/// not news to send either), the timeline and the sources (a reconciliation that confirms what webhooks said
/// changes nothing a sink cares about).
pub fn content_hash(record: &EngagementRecord) -> String {
    let mut r = record.clone();
    r.timeline.clear();
    r.sources.clear();
    let strip = |m: &mut Option<crate::core::MediaView>| {
        if let Some(m) = m {
            m.link = None;
            m.link_expires_at = None;
            m.permalink = None;
        }
    };
    for x in &mut r.recordings {
        strip(&mut x.media);
        strip(&mut x.transcript_media);
    }
    for x in &mut r.voicemails {
        strip(&mut x.media);
        strip(&mut x.transcript_media);
    }
    for x in &mut r.transcripts {
        strip(&mut x.media);
    }
    let json = serde_json::to_vec(&r).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_distinct() {
        let a = message_id("E1", ENGAGEMENT_COMPLETED, 1);
        assert_eq!(a, message_id("E1", ENGAGEMENT_COMPLETED, 1));
        assert_ne!(a, message_id("E1", ENGAGEMENT_UPDATED, 2));
        assert_ne!(a, message_id("E2", ENGAGEMENT_COMPLETED, 1));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }

    #[test]
    fn the_hash_ignores_links_timeline_and_sources_but_not_content() {
        let mut state = EngagementState::empty("E1");
        let mut obs = crate::core::Observation::new(
            "E1",
            "contact_center.engagement_started",
            1,
            crate::core::EventSource::Webhook,
        );
        obs.channel = Some("voice".into());
        state.apply(&obs);
        let record = state.to_record();
        let mut other = record.clone();
        other.timeline.clear();
        other.sources.clear();
        assert_eq!(content_hash(&record), content_hash(&other));
        other.channel = Some("video".into());
        assert_ne!(content_hash(&record), content_hash(&other));
    }
}
