//! Genesys Cloud conversation detail events (`v2.detail.events.conversation.{id}.user.start` / `.user.end`),
//! posted by an Event Orchestration trigger → Architect workflow → web services data action to
//! `POST /webhooks/genesys/{source}` (reference: genesys-presence-sync.md §2).
//!
//! The workflow passes the event either as top-level fields (data format `TopLevelPrimitives`) or whole as
//! `jsonData` (format `Json`); both are accepted. The event body does not name its topic, so the data action adds
//! `topicName` (or `eventType`: `user.start` / `user.end`); without it, an end is recognised by its end-only
//! fields (`disconnectType`, `interactingDurationMs`). `user.start` fires while the interaction is ringing: it
//! counts as connected only when the workflow says so (`connected: true`, or `state: "connected"`).

use bytes::Bytes;
use serde_json::Value;

use crate::core::activity::{Activity, ActivityKind, AgentIdent};
use crate::core::observation::QueueRef;
use crate::core::EventSource;
use crate::store::{Inbound, NewEvent, NewQuarantine};

/// The engagement-id namespace of Genesys sessions in the activity table: `genesys:<source>:<conversation>/<session>`.
pub const SESSION_PREFIX: &str = "genesys:";

#[derive(Debug, thiserror::Error)]
pub enum GenesysError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not a JSON object (nor has a jsonData object)")]
    NotAnObject,
    #[error("no {0}")]
    Missing(&'static str),
    #[error("unknown event {0:?}: expected user.start or user.end")]
    UnknownEvent(String),
    #[error("eventTime: {0}")]
    Time(String),
}

/// The event types this adapter logs (a sink may `deliver` them: `config::sinks::OTHER_EVENT_TYPES`).
pub const USER_START: &str = "genesys.user.start";
pub const USER_END: &str = "genesys.user.end";

#[derive(Debug, Clone)]
pub struct GenesysEvent {
    /// `genesys.user.start` / `genesys.user.end`.
    pub event_type: String,
    pub event_ts: i64,
    pub dedup_key: String,
    /// The key before RFC 8785, where it differs (`core::canonical::digests`).
    pub legacy_dedup_key: Option<String>,
    pub activity: Activity,
}

/// The agent key a Genesys user is filed under (kept apart from Zoom user ids).
pub fn agent_key(user_id: &str) -> String {
    format!("genesys:{user_id}")
}

/// The Genesys user id of an agent key made by `agent_key`.
pub fn user_of(agent_key: &str) -> Option<&str> {
    agent_key.strip_prefix("genesys:")
}

/// The conversation and session ids of a session id made by `parse`.
pub fn conversation_of(session: &str) -> Option<(&str, &str)> {
    let rest = session.strip_prefix(SESSION_PREFIX)?;
    let (_source, rest) = rest.split_once(':')?;
    rest.split_once('/')
}

/// The source name of a session id made by `parse`.
pub fn source_of(session: &str) -> Option<&str> {
    session.strip_prefix(SESSION_PREFIX)?.split(':').next()
}

pub fn parse(name: &str, body: &[u8], received_at: i64) -> Result<GenesysEvent, GenesysError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| GenesysError::Json(e.to_string()))?;
    let outer = value.as_object().ok_or(GenesysError::NotAnObject)?;
    // `jsonData` may arrive as an object or as a string of JSON (depending on how the data action maps it).
    let event: Value = match outer.get("jsonData") {
        Some(Value::Object(_)) => outer["jsonData"].clone(),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| GenesysError::Json(format!("jsonData: {e}")))?
        }
        _ => value.clone(),
    };
    let e = event.as_object().ok_or(GenesysError::NotAnObject)?;
    let text = |k: &str| -> Option<String> {
        match e.get(k).or_else(|| outer.get(k))? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let user = text("userId").ok_or(GenesysError::Missing("userId"))?;
    let conversation = text("conversationId").ok_or(GenesysError::Missing("conversationId"))?;
    // `<participant>:<session>` when both are given: the pull path keys a session as participant and media id
    // (the detail event's sessionId being the media session's id is unconfirmed), so both paths can meet.
    let session = match (text("participantId"), text("sessionId")) {
        (Some(participant), Some(session)) => format!("{participant}:{session}"),
        (participant, session) => session.or(participant).unwrap_or_else(|| "-".to_string()),
    };
    let topic = text("topicName")
        .or_else(|| text("eventType"))
        .or_else(|| text("event"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let ended = if topic.ends_with("user.end") || topic == "end" {
        true
    } else if topic.ends_with("user.start") || topic == "start" {
        false
    } else if topic.is_empty() {
        ["disconnectType", "interactingDurationMs", "disconnectTime"]
            .iter()
            .any(|k| e.contains_key(*k))
    } else {
        return Err(GenesysError::UnknownEvent(topic));
    };
    let connected = text("connected").is_some_and(|v| v == "true")
        || text("state").is_some_and(|s| s.eq_ignore_ascii_case("connected"));
    let event_ts = match e.get("eventTime").or_else(|| outer.get("eventTime")) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(received_at),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.timestamp_millis())
            })
            .unwrap_or(received_at),
        _ => received_at,
    };
    super::check_event_time(event_ts, received_at).map_err(GenesysError::Time)?;
    let kind = match (ended, connected) {
        (true, _) => ActivityKind::Ended,
        (false, true) => ActivityKind::Accepted,
        (false, false) => ActivityKind::Offered,
    };
    let mut activity = Activity::new(kind, event_ts);
    activity.engagement_id = Some(format!("{SESSION_PREFIX}{name}:{conversation}/{session}"));
    activity.agent = Some(AgentIdent {
        user_id: Some(agent_key(&user)),
        email: None,
        display_name: None,
    });
    activity.channel = text("mediaType").map(|m| m.to_ascii_lowercase());
    activity.direction = text("direction").map(|d| d.to_ascii_lowercase());
    activity.queue = text("queueId").map(|id| QueueRef {
        cc_queue_id: id,
        queue_name: None,
    });
    activity.consumer_number = text("ani");
    let (digest, legacy_digest) =
        crate::core::canonical::digests(&[name.as_bytes(), &[0u8]].concat(), &value);
    let key = |digest: &str| format!("{event_ts:013}:genesys:sha256:{digest}");
    Ok(GenesysEvent {
        event_type: if ended { USER_END } else { USER_START }.into(),
        event_ts,
        dedup_key: key(&digest),
        legacy_dedup_key: legacy_digest.as_deref().map(key),
        activity,
    })
}

/// The log's `source` column of a Genesys source's events: `genesys:<source name>`.
pub fn source_column(name: &str) -> String {
    format!("genesys:{name}")
}

impl GenesysEvent {
    /// The event-log entry of this event of source `name`.
    pub fn into_event(self, name: &str, body: Bytes, received_at: i64) -> NewEvent {
        NewEvent {
            source: EventSource::Genesys,
            dedup_key: self.dedup_key,
            legacy_dedup_key: self.legacy_dedup_key,
            event_type: self.event_type,
            engagement_id: None,
            event_ts: Some(self.event_ts),
            received_at,
            request_id: None,
            raw: body,
            observation: None,
            activity: Some(self.activity),
            source_label: Some(source_column(name)),
            conversation: None,
        }
    }
}

/// A body for the event log: the event, or (when it cannot be used) a quarantine entry and the reason.
pub fn inbound(name: &str, body: Bytes, received_at: i64) -> (Inbound, Option<String>) {
    let label = Some(source_column(name));
    match parse(name, &body, received_at) {
        Ok(parsed) => (
            Inbound::Event(parsed.into_event(name, body, received_at)),
            None,
        ),
        Err(e) => {
            tracing::warn!(source = ?name, reason = ?e.to_string(), "Genesys event could not be used; quarantining");
            (
                Inbound::Quarantine(NewQuarantine {
                    source: EventSource::Genesys,
                    source_label: label,
                    received_at,
                    request_id: None,
                    reason: e.to_string(),
                    raw: body,
                }),
                Some(e.to_string()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_json_data_forms_parse_alike() {
        let flat = br#"{"topicName":"v2.detail.events.conversation.{id}.user.start","eventTime":1700000000000,
            "conversationId":"c1","sessionId":"s1","userId":"u1","mediaType":"VOICE","direction":"INBOUND","queueId":"q1"}"#;
        let wrapped = br#"{"jsonData":{"eventTime":1700000000000,"conversationId":"c1","sessionId":"s1",
            "userId":"u1","mediaType":"VOICE","direction":"INBOUND","queueId":"q1"},"eventType":"user.start"}"#;
        let a = parse("gc", flat, 1_700_000_001_000).unwrap();
        let b = parse("gc", wrapped, 1_700_000_001_000).unwrap();
        assert_eq!(a.activity, b.activity);
        assert_eq!(a.activity.kind, ActivityKind::Offered);
        assert_eq!(
            a.activity.engagement_id.as_deref(),
            Some("genesys:gc:c1/s1")
        );
        assert_eq!(a.activity.channel.as_deref(), Some("voice"));
        assert_eq!(source_of("genesys:gc:c1/s1"), Some("gc"));
        assert_eq!(conversation_of("genesys:gc:c1/s1"), Some(("c1", "s1")));
        assert_eq!(a.event_type, "genesys.user.start");
    }

    #[test]
    fn event_times_out_of_range_are_refused() {
        for ts in [i64::MAX, -1, 1_700_000_000_000 + 2 * 86_400_000] {
            let body = format!(
                r#"{{"eventType":"user.end","eventTime":{ts},"conversationId":"c1","userId":"u1"}}"#
            );
            let e = parse("gc", body.as_bytes(), 1_700_000_000_000);
            assert!(matches!(e, Err(GenesysError::Time(_))), "{ts}: {e:?}");
        }
    }

    #[test]
    fn ends_and_connections_are_recognised() {
        let end = br#"{"conversationId":"c1","userId":"u1","disconnectType":"CLIENT","interactingDurationMs":5000}"#;
        assert_eq!(
            parse("gc", end, 9).unwrap().activity.kind,
            ActivityKind::Ended
        );
        assert_eq!(parse("gc", end, 9).unwrap().event_ts, 9);
        let connected =
            br#"{"eventType":"user.start","conversationId":"c1","userId":"u1","connected":true}"#;
        assert_eq!(
            parse("gc", connected, 9).unwrap().activity.kind,
            ActivityKind::Accepted
        );
        let as_string = br#"{"jsonData":"{\"conversationId\":\"c1\",\"userId\":\"u1\",\"state\":\"connected\"}"}"#;
        assert_eq!(
            parse("gc", as_string, 9).unwrap().activity.kind,
            ActivityKind::Accepted
        );
    }

    #[test]
    fn unusable_bodies_say_why() {
        assert!(matches!(
            parse("gc", b"nope", 1),
            Err(GenesysError::Json(_))
        ));
        assert!(matches!(
            parse("gc", br#"{"conversationId":"c"}"#, 1),
            Err(GenesysError::Missing("userId"))
        ));
        assert!(matches!(
            parse(
                "gc",
                br#"{"conversationId":"c","userId":"u","eventType":"acd.start"}"#,
                1
            ),
            Err(GenesysError::UnknownEvent(_))
        ));
    }
}
