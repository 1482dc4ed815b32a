//! Flow event scripts: custom JSON that a ZCC flow's Start widget posts on engagement events (Engagement
//! Accepted, Disposition Saved, ...) to `POST /webhooks/flow/{source}`.
//!
//! The JSON is whatever the script builds, so each source maps it to our fields (`[flow.sources.<name>.fields]`):
//! a value is a top-level key (`"ani"`) or a JSON Pointer (`"/vars/global_system.Engagement.ANI"`: flow variable
//! names contain dots, so dotted paths would be ambiguous). Top-level keys that are not mapped are kept as the
//! event's variables. The defaults match the scripts in `docs/flow-scripts/`.

use std::collections::BTreeMap;

use chrono::DateTime;
use hmac::{Hmac, Mac};

use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{FlowSourceConfig, Secret};
use crate::core::activity::{Activity, ActivityKind, AgentIdent};
use crate::core::observation::{ConsumerRef, DispositionFact, EventSource, Observation, QueueRef};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` for sources that sign instead of sending a token.
pub const SIGNATURE_HEADER: &str = "x-flow-signature";

/// The configured sources, by name.
#[derive(Debug, Clone, Default)]
pub struct FlowSources {
    sources: BTreeMap<String, FlowSourceConfig>,
}

impl FlowSources {
    pub fn new(sources: BTreeMap<String, FlowSourceConfig>) -> Self {
        Self { sources }
    }

    pub fn get(&self, name: &str) -> Option<&FlowSourceConfig> {
        self.sources.get(name)
    }
}

/// Why a post was refused before anything was stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing or wrong bearer token or signature")]
    Refused,
}

/// Checks the post's credentials: the bearer token, or the body's signature, whichever the source has.
pub fn authenticate(
    config: &FlowSourceConfig,
    authorization: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), AuthError> {
    authenticate_with(
        config.token.as_ref(),
        config.hmac_secret.as_ref(),
        authorization,
        signature,
        body,
    )
}

/// The credentials of an `Authorization: Bearer <token>` header. The scheme name is case-insensitive (RFC 9110
/// §11.1): `bearer`, `BEARER` work too.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Bearer `token` (`Authorization: Bearer …`, scheme case-insensitive) or `hmac_secret` (`sha256=<hex HMAC-SHA256
/// of the body>` in `signature`): either configured one that matches lets the post in. Constant-time compares.
pub fn authenticate_with(
    token: Option<&Secret>,
    hmac_secret: Option<&Secret>,
    authorization: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), AuthError> {
    let bearer = authorization.and_then(bearer_token);
    if let (Some(token), Some(presented)) = (token, bearer) {
        if bool::from(presented.trim().as_bytes().ct_eq(token.expose().as_bytes())) {
            return Ok(());
        }
    }
    if let (Some(secret), Some(presented)) = (
        hmac_secret,
        signature.and_then(|v| v.trim().strip_prefix("sha256=")),
    ) {
        if bool::from(
            presented
                .to_ascii_lowercase()
                .as_bytes()
                .ct_eq(sign(secret.expose(), body).as_bytes()),
        ) {
            return Ok(());
        }
    }
    Err(AuthError::Refused)
}

/// Hex HMAC-SHA256 of `body` (what `x-flow-signature` carries after `sha256=`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Why an authenticated post could not be used. It is quarantined, not dropped.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("no engagement id at {0:?}")]
    NoEngagement(String),
    #[error("no event name at {0:?}")]
    NoEvent(String),
    #[error("unreadable event time at {0:?}: {1}")]
    Time(String, String),
    #[error("flow source {0:?} is not configured")]
    UnknownSource(String),
}

/// A parsed post, ready for the event log.
#[derive(Debug, Clone)]
pub struct FlowEvent {
    /// `flow.<kind>` (or `flow.<event name>` for names we do not know).
    pub event_type: String,
    pub engagement_id: String,
    pub event_ts: i64,
    /// Whether the time came from the body (otherwise it is the receive time).
    pub timed: bool,
    pub dedup_key: String,
    /// The key before RFC 8785, where it differs (`core::canonical::digests`).
    pub legacy_dedup_key: Option<String>,
    pub observation: Observation,
    pub activity: Option<Activity>,
}

impl FlowEvent {
    /// The event-log entry of this post to source `name`.
    pub fn into_event(
        self,
        name: &str,
        body: bytes::Bytes,
        received_at: i64,
        request_id: Option<String>,
    ) -> crate::store::NewEvent {
        crate::store::NewEvent {
            source: EventSource::Flow,
            dedup_key: self.dedup_key,
            legacy_dedup_key: self.legacy_dedup_key,
            event_type: self.event_type,
            engagement_id: Some(self.engagement_id),
            event_ts: Some(self.event_ts),
            received_at,
            request_id,
            raw: body,
            observation: Some(self.observation),
            activity: self.activity,
            source_label: Some(super::flow_source_column(name)),
            conversation: None,
        }
    }
}

/// Parses a post of source `name`; `received_at` stands in for a time the body does not carry.
pub fn parse(
    name: &str,
    config: &FlowSourceConfig,
    body: &[u8],
    received_at: i64,
) -> Result<FlowEvent, FlowError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| FlowError::Json(e.to_string()))?;
    let Value::Object(object) = &value else {
        return Err(FlowError::NotAnObject);
    };
    let f = &config.fields;
    let engagement_id = text(&value, &f.engagement_id)
        .ok_or_else(|| FlowError::NoEngagement(f.engagement_id.clone()))?;
    let event = text(&value, &f.event).ok_or_else(|| FlowError::NoEvent(f.event.clone()))?;
    let (event_ts, timed) = match lookup(&value, &f.event_ts) {
        None | Some(Value::Null) => (received_at, false),
        Some(v) => (
            time(v)
                .and_then(|t| super::check_event_time(t, received_at))
                .map_err(|e| FlowError::Time(f.event_ts.clone(), e))?,
            true,
        ),
    };
    let normalised = normalise(&event);
    let kind = config
        .kinds
        .get(&event)
        .or_else(|| config.kinds.get(&normalised))
        .and_then(|k| ActivityKind::parse(k))
        .or_else(|| known_kind(&normalised));
    let event_type = match kind {
        Some(kind) => format!("flow.{}", kind.as_str()),
        None => format!("flow.{normalised}"),
    };

    // The key: the same post (same source, same content) is the same event, however it is formatted.
    let (digest, legacy_digest) =
        crate::core::canonical::digests(&[name.as_bytes(), &[0u8]].concat(), &value);
    let key = |digest: &str| {
        if timed {
            format!("{event_ts:013}:flow:sha256:{digest}")
        } else {
            // No time in the body: only the content identifies it (a re-post is a duplicate).
            format!("flow:sha256:{digest}")
        }
    };
    let dedup_key = key(&digest);
    let legacy_dedup_key = legacy_digest.as_deref().map(key);

    let queue = text(&value, &f.queue_id).map(|id| QueueRef {
        cc_queue_id: id,
        queue_name: text(&value, &f.queue_name),
    });
    let channel = text(&value, &f.channel);
    let direction = text(&value, &f.direction);

    let mut observation = Observation::new(
        engagement_id.clone(),
        &event_type,
        event_ts,
        EventSource::Flow,
    );
    observation.channel.clone_from(&channel);
    observation.direction.clone_from(&direction);
    observation.queues.extend(queue.clone());
    let consumer_number = text(&value, &f.consumer_number);
    if let Some(number) = &consumer_number {
        observation.consumers.push(ConsumerRef {
            consumer_id: None,
            consumer_number: Some(number.clone()),
            consumer_display_name: None,
        });
    }
    let disposition = text(&value, &f.disposition);
    if kind == Some(ActivityKind::DispositionSaved) {
        // The Disposition Saved script posts the name an agent picked; the record lists it like Zoom's (a
        // later REST fetch with its id takes its place: see `DISPOSITION_BY_NAME`).
        observation.dispositions.extend(DispositionFact::new(
            text(&value, &f.disposition_id),
            disposition.clone(),
        ));
    }

    let activity = kind.map(|kind| {
        let mut a = Activity::new(kind, event_ts);
        a.engagement_id = Some(engagement_id.clone());
        let agent = AgentIdent {
            user_id: text(&value, &f.agent_id),
            email: text(&value, &f.agent_email),
            display_name: None,
        };
        a.agent = agent.key().is_some().then_some(agent);
        a.queue = queue;
        a.channel = channel;
        a.direction = direction;
        a.consumer_number = consumer_number;
        a.disposition = disposition;
        let mapped: Vec<&str> = f
            .all()
            .into_iter()
            .filter(|p| !p.starts_with('/'))
            .collect();
        a.variables = object
            .iter()
            .filter(|(k, _)| !mapped.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        a
    });
    Ok(FlowEvent {
        event_type,
        engagement_id,
        event_ts,
        timed,
        dedup_key,
        legacy_dedup_key,
        observation,
        activity,
    })
}

/// `Engagement Accepted`, `engagement-accepted`, `EngagementAccepted` → `engagement_accepted`.
fn normalise(event: &str) -> String {
    let mut out = String::with_capacity(event.len() + 4);
    let mut previous_lower = false;
    for c in event.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && previous_lower {
                out.push('_');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            previous_lower = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The Start widget's event names (and their obvious spellings) → kinds.
fn known_kind(normalised: &str) -> Option<ActivityKind> {
    let name = normalised.strip_prefix("engagement_").unwrap_or(normalised);
    Some(match name {
        "started" | "created" => ActivityKind::Started,
        "offered" | "reserved" | "ringing" => ActivityKind::Offered,
        "declined" | "rejected" | "missed" | "reservation_timeout" => ActivityKind::Declined,
        // "Engagement Assigned" fires when an agent accepts an SMS or chat engagement (KB0059147, Japanese
        // edition; unconfirmed in English): the messaging form of accepted.
        "accepted" | "answered" | "assigned" => ActivityKind::Accepted,
        "held" | "hold" => ActivityKind::Held,
        "resumed" | "unhold" | "unheld" => ActivityKind::Resumed,
        "muted" => ActivityKind::Muted,
        "unmuted" => ActivityKind::Unmuted,
        "transferred" | "transfer_accepted" => ActivityKind::Transferred,
        "transfer_initiated" => ActivityKind::TransferInitiated,
        "ended" | "closed" | "completed" => ActivityKind::Ended,
        "wrap_up_started" => ActivityKind::WrapUpStarted,
        "wrap_up_ended" => ActivityKind::WrapUpEnded,
        "disposition_saved" | "disposition_added" | "disposition" => ActivityKind::DispositionSaved,
        "note_added" | "note_saved" => ActivityKind::NoteAdded,
        _ => return None,
    })
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') {
        value.pointer(path)
    } else {
        value.get(path)
    }
}

/// A string (or number) at `path`, trimmed; empty counts as absent.
fn text(value: &Value, path: &str) -> Option<String> {
    match lookup(value, path)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Epoch ms (a number below 10^11 is taken as seconds), or an RFC 3339 string.
fn time(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            let ms = n
                .as_f64()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("{n} is not a positive time"))?;
            let ms = if ms < 1e11 { ms * 1000.0 } else { ms };
            Ok(ms as i64)
        }
        Value::String(s) => {
            if let Ok(n) = s.trim().parse::<f64>() {
                return time(&serde_json::json!(n));
            }
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.timestamp_millis())
                .map_err(|e| format!("{s:?}: {e}"))
        }
        other => Err(format!("expected a number or a string, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> FlowSourceConfig {
        FlowSourceConfig {
            token: Some(Secret::new("flow-token-0123456789")),
            hmac_secret: Some(Secret::new("flow-hmac-0123456789")),
            ..Default::default()
        }
    }

    #[test]
    fn names_normalise_to_kinds() {
        for (name, kind) in [
            ("Engagement Accepted", ActivityKind::Accepted),
            ("engagement-accepted", ActivityKind::Accepted),
            ("EngagementAccepted", ActivityKind::Accepted),
            ("Disposition Saved", ActivityKind::DispositionSaved),
            ("engagement_closed", ActivityKind::Ended),
            ("Engagement Assigned", ActivityKind::Accepted),
        ] {
            assert_eq!(known_kind(&normalise(name)), Some(kind), "{name}");
        }
        assert_eq!(normalise("  Recording  Started! "), "recording_started");
    }

    #[test]
    fn bearer_or_signature() {
        let s = source();
        let body = br#"{"a":1}"#;
        assert!(authenticate(&s, Some("Bearer flow-token-0123456789"), None, body).is_ok());
        assert!(authenticate(&s, Some("bearer flow-token-0123456789"), None, body).is_ok());
        assert!(authenticate(&s, Some("Bearer nope"), None, body).is_err());
        assert!(authenticate(&s, Some("Basic flow-token-0123456789"), None, body).is_err());
        let sig = format!("sha256={}", sign("flow-hmac-0123456789", body));
        assert!(authenticate(&s, None, Some(&sig), body).is_ok());
        assert!(authenticate(&s, None, Some(&sig), br#"{"a":2}"#).is_err());
        assert!(authenticate(&s, None, None, body).is_err());
    }

    #[test]
    fn event_times_out_of_range_are_refused() {
        let received = 1_763_715_600_000;
        for ts in [
            i64::MAX.to_string(),
            "1e300".into(),
            "-5".into(),
            "\"9999-12-31T23:59:59Z\"".into(),
            (received + 2 * 86_400_000).to_string(),
        ] {
            let body = format!(
                r#"{{"event":"Engagement Accepted","engagement_id":"E1","event_ts":{ts}}}"#
            );
            let e = parse("crm", &source(), body.as_bytes(), received);
            assert!(matches!(e, Err(FlowError::Time(..))), "{ts}: {e:?}");
        }
        let body = format!(
            r#"{{"event":"Engagement Accepted","engagement_id":"E1","event_ts":{}}}"#,
            received + 3_600_000
        );
        assert!(parse("crm", &source(), body.as_bytes(), received).is_ok());
    }

    #[test]
    fn a_post_maps_to_fields_and_keeps_extras() {
        let body = br#"{"event":"Engagement Accepted","engagement_id":"E1","event_ts":1763715600,
            "consumer_number":"+15550100","agent_email":"a@example.com","queue_id":"Q1","queue_name":"Sales",
            "customer_tier":"gold"}"#;
        let e = parse("crm", &source(), body, 1_763_715_601_000).unwrap();
        assert_eq!(e.event_type, "flow.accepted");
        assert_eq!(e.event_ts, 1_763_715_600_000);
        let a = e.activity.unwrap();
        assert_eq!(a.kind, ActivityKind::Accepted);
        assert_eq!(a.consumer_number.as_deref(), Some("+15550100"));
        assert_eq!(a.agent.unwrap().email.as_deref(), Some("a@example.com"));
        assert_eq!(a.variables.len(), 1);
        assert_eq!(a.variables["customer_tier"], "gold");
    }

    #[test]
    fn pointers_reach_dotted_variable_names() {
        let mut s = source();
        s.fields.consumer_number = "/vars/global_system.Engagement.ANI".into();
        s.fields.engagement_id = "/vars/global_system.Engagement.engagementId".into();
        let body = br#"{"event":"accepted","vars":{"global_system.Engagement.ANI":"+1555","global_system.Engagement.engagementId":"E9"}}"#;
        let e = parse("crm", &s, body, 7).unwrap();
        assert_eq!(e.engagement_id, "E9");
        assert_eq!(e.event_ts, 7);
        assert!(!e.timed);
        assert_eq!(
            e.activity.unwrap().consumer_number.as_deref(),
            Some("+1555")
        );
    }

    #[test]
    fn the_same_post_has_the_same_key_whatever_its_formatting() {
        let a = parse(
            "crm",
            &source(),
            br#"{"event":"x","engagement_id":"E","event_ts":1}"#,
            1,
        )
        .unwrap();
        let b = parse(
            "crm",
            &source(),
            br#"{ "engagement_id": "E", "event": "x", "event_ts": 1 }"#,
            9,
        )
        .unwrap();
        let c = parse(
            "other",
            &source(),
            br#"{"event":"x","engagement_id":"E","event_ts":1}"#,
            1,
        )
        .unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
        assert!(a.activity.is_none());
        assert_eq!(a.event_type, "flow.x");
    }

    #[test]
    fn unusable_posts_say_why() {
        let s = source();
        assert!(matches!(
            parse("c", &s, b"{not json", 1),
            Err(FlowError::Json(_))
        ));
        assert!(matches!(
            parse("c", &s, b"[1]", 1),
            Err(FlowError::NotAnObject)
        ));
        assert!(matches!(
            parse("c", &s, br#"{"event":"accepted"}"#, 1),
            Err(FlowError::NoEngagement(_))
        ));
        assert!(matches!(
            parse(
                "c",
                &s,
                br#"{"event":"accepted","engagement_id":"E","event_ts":"soon"}"#,
                1
            ),
            Err(FlowError::Time(..))
        ));
    }
}
