//! The agent panel (the Contact Center Zoom App) as a source: an agent's workspace (notes, tags, wrap-up checklist)
//! finalized when the engagement ended is logged as an event of source `zoomapp`, so the projector merges it into the
//! engagement record (and `rebuild` does again) like every other fact, and sinks receive it with the record.
//!
//! The logged body is the bridge's own JSON, written once here and read back by [`parse`]: it carries no time of
//! its own that changes between retries, so the same finalized workspace always logs as the same bytes and a retry
//! is a duplicate.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::core::observation::WorkspaceFact;
use crate::core::{EventSource, Observation};
use crate::store::NewEvent;

/// The event name in the log and the record's timeline.
pub const WORKSPACE_FINALIZED: &str = "zoomapp.workspace_finalized";

#[derive(Debug, thiserror::Error)]
pub enum ZoomAppEventError {
    #[error("not a finalized workspace: {0}")]
    Malformed(String),
    #[error("the finalized workspace has no {0}")]
    Missing(&'static str),
}

#[derive(Debug, Serialize, Deserialize)]
struct Version {
    client_ts: i64,
    device_id: String,
    rev: u64,
}

/// The logged body. Field order is fixed and the checklist is sorted, so equal content gives equal bytes.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    engagement_id: String,
    user_id: String,
    version: Version,
    notes: String,
    tags: Vec<String>,
    checklist: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
}

/// The event time of a finalized workspace: the end time the Zoom client reported, else the device's clock of
/// the finalizing write, each only if it is a time the log accepts; else the receive time.
fn event_time(fact: &WorkspaceFact, received_at: i64) -> i64 {
    [fact.end_time, Some(fact.version.0)]
        .into_iter()
        .flatten()
        .find(|t| super::check_event_time(*t, received_at).is_ok())
        .unwrap_or(received_at)
}

/// The event to log for an agent's finalized workspace of `engagement_id`.
pub fn finalized_event(engagement_id: &str, fact: WorkspaceFact, received_at: i64) -> NewEvent {
    let event_ts = event_time(&fact, received_at);
    let body = Body {
        kind: WORKSPACE_FINALIZED.to_string(),
        engagement_id: engagement_id.to_string(),
        user_id: fact.user_id.clone(),
        version: Version {
            client_ts: fact.version.0,
            device_id: fact.version.1.clone(),
            rev: fact.version.2,
        },
        notes: fact.notes.clone(),
        tags: fact.tags.clone(),
        checklist: fact.checklist.clone(),
        end_time: fact.end_time,
    };
    // A struct of strings, numbers and a string-keyed map always serialises.
    let raw = serde_json::to_vec(&body).unwrap_or_default();
    let digest = hex::encode(Sha256::digest(&raw));
    let mut observation = Observation::new(
        engagement_id,
        WORKSPACE_FINALIZED,
        event_ts,
        EventSource::ZoomApp,
    );
    observation.workspaces.push(fact);
    NewEvent {
        source: EventSource::ZoomApp,
        // The bytes are the bridge's own serialisation of a struct (fields in declaration order, the checklist a
        // sorted map, integers only): no dependency feature changes them, so there is no earlier key to honour.
        dedup_key: format!("{event_ts:013}:zoomapp:sha256:{digest}"),
        legacy_dedup_key: None,
        event_type: WORKSPACE_FINALIZED.to_string(),
        engagement_id: Some(engagement_id.to_string()),
        event_ts: Some(event_ts),
        received_at,
        request_id: None,
        raw: Bytes::from(raw),
        observation: Some(observation),
        activity: None,
        source_label: None,
        conversation: None,
    }
}

/// Reads a logged finalized workspace back (`event_ts`: the time it was logged with).
pub fn parse(raw: &[u8], event_ts: i64) -> Result<Observation, ZoomAppEventError> {
    let body: Body = serde_json::from_slice(raw).map_err(|e| {
        ZoomAppEventError::Malformed(format!("{:?} at column {}", e.classify(), e.column()))
    })?;
    if body.kind != WORKSPACE_FINALIZED {
        return Err(ZoomAppEventError::Malformed(format!(
            "type {:?}",
            body.kind
        )));
    }
    if body.engagement_id.is_empty() {
        return Err(ZoomAppEventError::Missing("engagement_id"));
    }
    if body.user_id.is_empty() {
        return Err(ZoomAppEventError::Missing("user_id"));
    }
    let mut observation = Observation::new(
        body.engagement_id,
        WORKSPACE_FINALIZED,
        event_ts,
        EventSource::ZoomApp,
    );
    observation.workspaces.push(WorkspaceFact {
        user_id: body.user_id,
        version: (
            body.version.client_ts,
            body.version.device_id,
            body.version.rev,
        ),
        notes: body.notes,
        tags: body.tags,
        checklist: body.checklist,
        end_time: body.end_time,
    });
    Ok(observation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(notes: &str) -> WorkspaceFact {
        WorkspaceFact {
            user_id: "agent1".into(),
            version: (1_795_251_600_000, "d-1".into(), 3),
            notes: notes.into(),
            tags: vec!["vip".into()],
            checklist: BTreeMap::from([("resolved".into(), true), ("verified".into(), false)]),
            end_time: Some(1_795_251_700_000),
        }
    }

    #[test]
    fn logged_and_read_back_the_same() {
        let event = finalized_event("E1", fact("hello"), 1_795_251_700_500);
        assert_eq!(event.event_ts, Some(1_795_251_700_000));
        assert!(event.dedup_key.starts_with("1795251700000:zoomapp:sha256:"));
        let observation = parse(&event.raw, 1_795_251_700_000).unwrap();
        assert_eq!(Some(observation), event.observation);
    }

    #[test]
    fn a_retry_is_the_same_event_and_other_content_is_not() {
        let a = finalized_event("E1", fact("hello"), 1_795_251_700_500);
        let b = finalized_event("E1", fact("hello"), 1_795_251_999_000);
        let c = finalized_event("E1", fact("hello!"), 1_795_251_700_500);
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_eq!(a.raw, b.raw);
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn impossible_times_fall_back() {
        let mut f = fact("x");
        f.end_time = Some(-5);
        assert_eq!(event_time(&f, 1_795_251_700_500), 1_795_251_600_000);
        f.version.0 = i64::MAX;
        assert_eq!(event_time(&f, 1_795_251_700_500), 1_795_251_700_500);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        assert!(parse(b"{}", 0).is_err());
        assert!(parse(b"not json", 0).is_err());
        let mut event = finalized_event("E1", fact("x"), 1);
        event.raw = Bytes::from(String::from_utf8_lossy(&event.raw).replace("\"agent1\"", "\"\""));
        assert!(matches!(
            parse(&event.raw, 0),
            Err(ZoomAppEventError::Missing("user_id"))
        ));
    }
}
