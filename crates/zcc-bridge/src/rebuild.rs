//! `zcc-bridge rebuild`: recompute every engagement record from the event log.

use serde::Serialize;

use crate::core::EngagementState;
use crate::sources::Decoder;
use crate::store::{EventQuery, ProjectionItem, Store, StoreError};

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RebuildReport {
    pub engagements: u64,
    pub events: u64,
    /// Records whose stored state differed from the recomputed one (and were replaced).
    pub changed: u64,
    /// Records with no event in the log (deleted).
    pub orphans_deleted: u64,
    /// Logged events that no longer parse (left in the log; see the logs).
    pub unparseable: u64,
    /// Activity events recorded again (agents' days and engagement counters).
    pub activity_events: u64,
}

/// Recomputes records one engagement at a time (bounded memory). Safe while the server runs: a record that
/// receives new events during its recomputation is recomputed again.
pub async fn rebuild(store: &dyn Store, decoder: &Decoder) -> Result<RebuildReport, StoreError> {
    rebuild_with_progress(store, decoder, |_| {}).await
}

/// `rebuild`, calling `progress` after each record with the counts so far.
pub async fn rebuild_with_progress(
    store: &dyn Store,
    decoder: &Decoder,
    mut progress: impl FnMut(&RebuildReport),
) -> Result<RebuildReport, StoreError> {
    let mut report = RebuildReport::default();
    let mut after: Option<String> = None;
    loop {
        let ids = store.logged_engagement_ids(after.as_deref(), 500).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        for engagement_id in ids {
            loop {
                let (state, last_event_id, events, unparseable) =
                    recompute(store, decoder, &engagement_id).await?;
                let changed = store.engagement(&engagement_id).await?.as_ref() != Some(&state);
                if !changed || store.replace_engagement(&state, last_event_id).await? {
                    report.engagements += 1;
                    report.events += events;
                    report.unparseable += unparseable;
                    report.changed += u64::from(changed);
                    progress(&report);
                    break;
                }
            }
        }
        after = Some(last);
    }
    report.orphans_deleted = store.delete_orphan_engagements().await?;
    report.activity_events = rebuild_activity(store, decoder).await?;
    Ok(report)
}

/// Records every logged event's activity again, read with the current parsers and flow mappings. Agents' views
/// are empty for the moment between the clear and the first page; events arriving meanwhile are recorded by the
/// projector as usual (recording an event twice is harmless).
async fn rebuild_activity(store: &dyn Store, decoder: &Decoder) -> Result<u64, StoreError> {
    store.clear_activity().await?;
    let mut after = 0;
    let mut recorded = 0;
    loop {
        let page = store
            .events(&EventQuery {
                engagement_id: None,
                after_id: Some(after),
                limit: 1000,
                with_raw: true,
            })
            .await?;
        let Some(last) = page.last().map(|e| e.id) else {
            return Ok(recorded);
        };
        after = last;
        let items: Vec<ProjectionItem> = page
            .iter()
            .filter_map(|e| {
                let activity = decoder
                    .decode(&e.source, &e.raw, e.event_ts)
                    .ok()?
                    .activity?;
                Some(ProjectionItem {
                    event_id: e.id,
                    observation: None,
                    activity: Some(activity),
                })
            })
            .collect();
        recorded += items.len() as u64;
        if !items.is_empty() {
            let projected = store.project(&items, &[]).await?;
            crate::projection::after_projection(store.signals(), &projected);
        }
    }
}

async fn recompute(
    store: &dyn Store,
    decoder: &Decoder,
    engagement_id: &str,
) -> Result<(EngagementState, i64, u64, u64), StoreError> {
    let mut state = EngagementState::empty(engagement_id);
    let mut last_id = 0;
    let (mut events, mut unparseable) = (0, 0);
    loop {
        let page = store
            .events(&EventQuery {
                engagement_id: Some(engagement_id.to_string()),
                after_id: Some(last_id),
                limit: 1000,
                with_raw: true,
            })
            .await?;
        let Some(last) = page.last() else { break };
        last_id = last.id;
        for event in &page {
            events += 1;
            match decoder.decode(&event.source, &event.raw, event.event_ts) {
                Ok(decoded) => {
                    if let Some(obs) = decoded.observation {
                        state.apply(&obs);
                    }
                }
                Err(e) => {
                    unparseable += 1;
                    tracing::warn!(event_id = event.id, error = %e, "logged event no longer parses");
                }
            }
        }
    }
    Ok((state, last_id, events, unparseable))
}
