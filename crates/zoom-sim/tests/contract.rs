//! The contract between zoom-sim and Zoom: what the simulator sends has the shapes Zoom publishes.
//!
//! - Webhooks: every body the generator emits, and the presence server's `user.presence_status_updated`, is compared
//!   key by key and type by type with Zoom's published example of its event (`shared/vendor/zoom/webhooks/
//!   <event>.json`, see `shared/vendor/README.md`): the envelope, then `payload.object` recursively. The sim's keys
//!   must be keys of the example with the same JSON type; the example's keys the sim never sends (over several busy
//!   days) must be in [`OMITTED`], each with its reason; every `*_ms` value is an ISO-8601 string with milliseconds.
//!   Skipped, with a message, when the vendor folder is absent (`ZCC_VENDOR_DIR` overrides where it is looked for).
//! - REST: list engagements, get engagement, recordings (all, per engagement), inbox messages and notes are checked
//!   against the field names and types of reference §1 (`shared/reference/zoom-contact-center-api.md`), encoded
//!   below as field → type tables. Zoom's Contact Center REST OpenAPI is not in the vendor folder (only Markdown
//!   snapshots of the master-account and Users APIs are), so these tables are this project's reading of the
//!   reference, not a copied schema. They need no vendor data and always run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::Router;
use reqwest::{Client, StatusCode};
use serde_json::{Map, Value};
use zoom_sim::generator::EVENT_KINDS;
use zoom_sim::{generate, GeneratorConfig, PresenceWebhook, Scenario, SimServer, SimServerConfig};

// ---------------------------------------------------------------------------------------------------------------------
// Vendor data

const SKIP: &str =
    "skipping: vendor reference data not found at ../shared/vendor (see shared/vendor/README.md)";

/// `shared/vendor` next to the checkout, or `$ZCC_VENDOR_DIR`; `None` (after saying so) when it is not there.
fn vendor_dir() -> Option<PathBuf> {
    let (dir, overridden) = match std::env::var_os("ZCC_VENDOR_DIR") {
        Some(dir) => (PathBuf::from(dir), true),
        None => (
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/vendor"
            )),
            false,
        ),
    };
    if dir.join("zoom/webhooks").is_dir() {
        return Some(dir);
    }
    if overridden {
        eprintln!("{SKIP} (ZCC_VENDOR_DIR={})", dir.display());
    } else {
        eprintln!("{SKIP}");
    }
    None
}

/// Zoom's example body of `event` (`contact_center.engagement_started`, `user.presence_status_updated`, ...).
fn example(vendor: &std::path::Path, event: &str) -> Value {
    let path = vendor.join(format!("zoom/webhooks/{event}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{event}: no example at {}: {e}", path.display()));
    let mut body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{event}: the example is not JSON: {e}"));
    // A documented defect of the sample (vendor README): it spells the schema's `date_time` as `date-time`.
    if event == "user.presence_status_updated" {
        if let Some(Value::Object(object)) = body.pointer_mut("/payload/object") {
            if let Some(time) = object.remove("date-time") {
                object.insert("date_time".to_owned(), time);
            }
        }
    }
    body
}

/// Keys of Zoom's examples that the simulator deliberately never sends: `(event, key path, why)`.
const OMITTED: &[(&str, &str, &str)] = &[
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_user_id",
        "transfers are queue-level: no target agent until one is reserved",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_user_display_name",
        "transfers are queue-level: no target agent until one is reserved",
    ),
    (
        "contact_center.engagement_transfer_queued",
        "transfer_to_user_id",
        "transfers are queue-level: no target agent until one is reserved",
    ),
    (
        "contact_center.engagement_transfer_queued",
        "transfer_to_user_display_name",
        "transfers are queue-level: no target agent until one is reserved",
    ),
    (
        "contact_center.engagement_transfer_canceled",
        "transfer_to_user_id",
        "the sim's agents cancel a transfer while it waits in the queue, before an agent is reserved",
    ),
    (
        "contact_center.engagement_transfer_canceled",
        "transfer_to_user_display_name",
        "the sim's agents cancel a transfer while it waits in the queue, before an agent is reserved",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_flow_id",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_flow_name",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_canceled",
        "transfer_to_flow_id",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_canceled",
        "transfer_to_flow_name",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_completed",
        "transfer_to_flow_id",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_completed",
        "transfer_to_flow_name",
        "the sim transfers to queues, never to a flow",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_inbox_id",
        "the sim never transfers to an inbox",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_inbox_name",
        "the sim never transfers to an inbox",
    ),
    (
        "contact_center.engagement_transfer_initiated",
        "transfer_to_number",
        "the sim never transfers to an external number",
    ),
    (
        "contact_center.engagement_transfer_canceled",
        "transfer_to_number",
        "the sim never transfers to an external number",
    ),
    (
        "contact_center.engagement_transfer_completed",
        "transfer_to_number",
        "the sim never transfers to an external number",
    ),
];

// ---------------------------------------------------------------------------------------------------------------------
// Shapes

/// The JSON type of a value, integers apart from other numbers.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path of an object with its type: `key`, `list[].key`, `object.key`. Elements of an array merge.
fn key_types(object: &Map<String, Value>, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
    for (key, value) in object {
        let path = format!("{prefix}{key}");
        out.insert(path.clone(), kind(value));
        match value {
            Value::Object(inner) => key_types(inner, &format!("{path}."), out),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(inner) => key_types(inner, &format!("{path}[]."), out),
                        other => {
                            out.insert(format!("{path}[]"), kind(other));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// `*_ms` keys (Zoom's webhooks: ISO-8601 strings with milliseconds, `2022-02-15T09:27:15.987Z`), anywhere.
fn check_ms_fields(event: &str, object: &Map<String, Value>, problems: &mut Vec<String>) {
    for (key, value) in object {
        if key.ends_with("_ms") {
            let ok = value.as_str().is_some_and(|text| {
                text.len() == 24
                    && text.as_bytes()[19] == b'.'
                    && text.ends_with('Z')
                    && chrono::DateTime::parse_from_rfc3339(text).is_ok()
            });
            if !ok {
                problems.push(format!(
                    "{event}: `{key}` must be an ISO-8601 string with milliseconds, is {value}"
                ));
            }
        }
        match value {
            Value::Object(inner) => check_ms_fields(event, inner, problems),
            Value::Array(items) => {
                for item in items.iter().filter_map(Value::as_object) {
                    check_ms_fields(event, item, problems);
                }
            }
            _ => {}
        }
    }
}

/// The envelope `{event, event_ts (integer epoch ms), payload: {account_id, object}}` and nothing else.
fn check_envelope(
    body: &Value,
    problems: &mut Vec<String>,
) -> Option<(String, Map<String, Value>)> {
    let Some(top) = body.as_object() else {
        problems.push(format!("not an object: {body}"));
        return None;
    };
    let event = top
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let keys: BTreeSet<&str> = top.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["event", "event_ts", "payload"]) {
        problems.push(format!("{event}: envelope keys {keys:?}"));
    }
    if top.get("event_ts").is_none_or(|ts| kind(ts) != "integer") {
        problems.push(format!(
            "{event}: event_ts must be integer epoch ms: {body}"
        ));
    }
    let payload = top.get("payload").and_then(Value::as_object);
    let payload_keys: BTreeSet<&str> = payload
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if payload_keys != BTreeSet::from(["account_id", "object"]) {
        problems.push(format!("{event}: payload keys {payload_keys:?}"));
    }
    if !payload
        .and_then(|p| p.get("account_id"))
        .is_some_and(Value::is_string)
    {
        problems.push(format!("{event}: payload.account_id must be a string"));
    }
    match payload.and_then(|p| p.get("object")) {
        Some(Value::Object(object)) => Some((event, object.clone())),
        _ => {
            problems.push(format!("{event}: payload.object must be an object"));
            None
        }
    }
}

/// Compares every body with its event's example; returns the problems, naming event and key.
fn compare_with_examples(vendor: &std::path::Path, bodies: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    // Event → key path → the types the sim sent.
    let mut sent: BTreeMap<String, BTreeMap<String, BTreeSet<&'static str>>> = BTreeMap::new();
    let mut examples: BTreeMap<String, BTreeMap<String, &'static str>> = BTreeMap::new();
    for body in bodies {
        let Some((event, object)) = check_envelope(body, &mut problems) else {
            continue;
        };
        check_ms_fields(&event, &object, &mut problems);
        if !examples.contains_key(&event) {
            let example = example(vendor, &event);
            let mut example_problems = Vec::new();
            let Some((example_event, example_object)) =
                check_envelope(&example, &mut example_problems)
            else {
                panic!("{event}: the example has no object: {example_problems:?}");
            };
            assert_eq!(
                example_event, event,
                "the example of {event} names its event"
            );
            let mut types = BTreeMap::new();
            key_types(&example_object, "", &mut types);
            examples.insert(event.clone(), types);
        }
        let mut types = BTreeMap::new();
        key_types(&object, "", &mut types);
        let entry = sent.entry(event.clone()).or_default();
        for (path, kind) in types {
            entry.entry(path).or_default().insert(kind);
        }
    }
    for (event, keys) in &sent {
        let example = &examples[event];
        for (path, kinds) in keys {
            match example.get(path) {
                None => problems.push(format!(
                    "{event}: the sim sends `{path}`, which Zoom's example does not have"
                )),
                Some(expected) if kinds.iter().any(|k| k != expected) => problems.push(format!(
                    "{event}: `{path}` is {kinds:?} in the sim, {expected} in Zoom's example"
                )),
                Some(_) => {}
            }
        }
        for path in example.keys() {
            let omitted = OMITTED.iter().any(|(e, p, _)| e == event && p == path);
            if !keys.contains_key(path) && !omitted {
                problems.push(format!(
                    "{event}: Zoom's example has `{path}`, which the sim never sent (send it, or list it in OMITTED \
                     with the reason)"
                ));
            }
            if keys.contains_key(path) && omitted {
                problems.push(format!(
                    "{event}: `{path}` is listed in OMITTED but the sim sends it"
                ));
            }
        }
    }
    problems
}

/// Several busy seeded days: enough events that every event the generator can emit appears.
fn busy_days() -> Vec<Scenario> {
    (1..=4)
        .map(|seed| {
            generate(&GeneratorConfig {
                seed,
                engagements: 300,
                ..GeneratorConfig::default()
            })
        })
        .collect()
}

#[test]
fn generated_webhooks_have_the_shapes_of_zooms_examples() {
    let Some(vendor) = vendor_dir() else {
        return;
    };
    let days = busy_days();
    let bodies: Vec<Value> = days
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.body.clone()))
        .collect();
    let emitted: BTreeSet<&str> = days
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.event()))
        .collect();
    let missing: Vec<&&str> = EVENT_KINDS
        .iter()
        .filter(|k| !emitted.contains(format!("contact_center.{k}").as_str()))
        .collect();
    assert!(missing.is_empty(), "events never emitted: {missing:?}");
    let mut problems = compare_with_examples(&vendor, &bodies);
    for (event, path, _) in OMITTED {
        if !emitted.contains(event) {
            problems.push(format!(
                "OMITTED names {event} ({path}), which the sim never sends"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The comparison itself catches what it must: a renamed key, a changed type, an epoch-ms number, a missing key.
#[test]
fn the_comparison_names_the_event_and_the_key() {
    let Some(vendor) = vendor_dir() else {
        return;
    };
    let good = example(&vendor, "contact_center.engagement_ended");
    assert!(compare_with_examples(&vendor, std::slice::from_ref(&good)).is_empty());
    let mutate = |pointer: &str, edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut body = good.clone();
        if let Some(Value::Object(object)) = body.pointer_mut(pointer) {
            edit(object);
        }
        compare_with_examples(&vendor, &[body]).join("\n")
    };
    let renamed = mutate("/payload/object", &|o| {
        let direction = o.remove("engagement_direction").unwrap_or(Value::Null);
        o.insert("direction".into(), direction);
    });
    assert!(
        renamed.contains("contact_center.engagement_ended: the sim sends `direction`"),
        "{renamed}"
    );
    assert!(
        renamed.contains("never sent") && renamed.contains("`engagement_direction`"),
        "{renamed}"
    );
    let epoch = mutate("/payload/object", &|o| {
        o.insert("date_time_ms".into(), Value::from(1_651_397_235_987_i64));
    });
    assert!(
        epoch.contains("`date_time_ms` is {\"integer\"} in the sim, string"),
        "{epoch}"
    );
    assert!(
        epoch.contains("ISO-8601 string with milliseconds"),
        "{epoch}"
    );
    let envelope = mutate("", &|top| {
        top.insert("event_ts".into(), Value::from("1627906944384"));
    });
    assert!(envelope.contains("event_ts must be integer"), "{envelope}");
}

// The presence server's webhook.

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Vec<u8>>>>);

async fn hook(State(received): State<Received>, body: Bytes) -> AxumStatus {
    if let Ok(mut got) = received.0.lock() {
        got.push(body.to_vec());
    }
    AxumStatus::NO_CONTENT
}

#[tokio::test]
async fn the_presence_webhook_has_the_shape_of_zooms_example() {
    let Some(vendor) = vendor_dir() else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Received::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let scenario = generate(&GeneratorConfig {
        engagements: 0,
        ..GeneratorConfig::default()
    });
    let server = SimServer::start(
        SimServerConfig {
            presence_webhook: Some(PresenceWebhook::new(
                format!("http://{addr}/hook"),
                "secret",
            )),
            ..SimServerConfig::default()
        },
        &scenario,
    )
    .await
    .expect("start");
    let agent = scenario.directory.agents[0].user_id.clone();
    server
        .user_sets_presence(&agent, "On_A_Call")
        .expect("change");
    server.set_logged_in(&agent, false).expect("sign out");
    let mut bodies = Vec::new();
    for _ in 0..250 {
        bodies = received.0.lock().expect("lock").clone();
        if bodies.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bodies.len(), 2, "two presence webhooks");
    let bodies: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_slice(b).expect("json"))
        .collect();
    let problems = compare_with_examples(&vendor, &bodies);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for body in &bodies {
        let time = body["payload"]["object"]["date_time"]
            .as_str()
            .expect("date_time");
        chrono::DateTime::parse_from_rfc3339(time).expect("an ISO time");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// REST (reference §1)

/// Whether the simulator must send a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// On every item.
    Always,
    /// On some items (a transcript that completed, a consumer with a number, ...): on at least one of those checked.
    Sometimes,
    /// Documented but not simulated (deprecated spellings, newer fields, features the sim does not model).
    Never,
}

use Need::{Always, Never, Sometimes};

/// A field: name, JSON type, need, and for arrays of objects the element's fields.
type Field = (&'static str, &'static str, Need, &'static [Field0]);
/// An element field (no deeper nesting is needed).
type Field0 = (&'static str, &'static str, Need);

const NONE: &[Field0] = &[];

/// `engagements[]` of `GET /contact_center/engagements` (reference §1.1).
const ENGAGEMENT: &[Field] = &[
    ("engagement_id", "string", Always, NONE),
    ("start_time", "string", Always, NONE),
    ("end_time", "string", Always, NONE),
    ("duration", "integer", Always, NONE),
    ("direction", "string", Always, NONE),
    ("channel_types", "array", Never, NONE),
    (
        "channels",
        "array",
        Always,
        &[
            ("channel", "string", Always),
            ("channel_source", "string", Always),
        ],
    ),
    (
        "consumers",
        "array",
        Always,
        &[
            ("consumer_id", "string", Always),
            ("consumer_display_name", "string", Always),
            ("consumer_number", "string", Sometimes),
        ],
    ),
    (
        "flows",
        "array",
        Always,
        &[
            ("flow_id", "string", Always),
            ("flow_name", "string", Always),
            ("flow_version", "string", Always),
        ],
    ),
    (
        "queues",
        "array",
        Always,
        &[
            ("cc_queue_id", "string", Always),
            ("queue_name", "string", Always),
            ("queue_id", "string", Never),
        ],
    ),
    (
        "agents",
        "array",
        Always,
        &[
            ("user_id", "string", Always),
            ("display_name", "string", Always),
        ],
    ),
    ("talk_duration", "integer", Always, NONE),
    ("flow_duration", "integer", Always, NONE),
    ("waiting_duration", "integer", Always, NONE),
    ("handling_duration", "integer", Always, NONE),
    ("wrap_up_duration", "integer", Always, NONE),
    ("transfer_count", "integer", Always, NONE),
    (
        "dispositions",
        "array",
        Always,
        &[
            ("disposition_id", "string", Always),
            ("disposition_name", "string", Always),
        ],
    ),
    (
        "notes",
        "array",
        Always,
        &[
            ("user_id", "string", Always),
            ("note_id", "string", Always),
            ("note", "string", Always),
            ("last_modified_time", "string", Always),
        ],
    ),
    ("transcript_url", "string", Sometimes, NONE),
    ("survey_id", "string", Never, NONE),
    ("queue_wait_type", "string", Never, NONE),
    ("callback_voice_messages", "array", Never, NONE),
];

/// `events[]` of `GET /contact_center/engagements/{engagementId}` (reference §1.2).
const ENGAGEMENT_EVENT: &[Field] = &[
    ("start_time", "string", Always, NONE),
    ("duration", "integer", Always, NONE),
    ("channel_type", "string", Never, NONE),
    ("channel", "string", Always, NONE),
    ("channel_source", "string", Always, NONE),
    ("event_type", "string", Always, NONE),
    ("direction", "string", Always, NONE),
    ("flow_id", "string", Always, NONE),
    ("flow_name", "string", Always, NONE),
    ("cc_queue_id", "string", Sometimes, NONE),
    ("queue_name", "string", Sometimes, NONE),
    ("user_id", "string", Sometimes, NONE),
    ("user_display_name", "string", Sometimes, NONE),
    ("accept_type", "string", Sometimes, NONE),
    ("transfer_to_flow_id", "string", Never, NONE),
    ("transfer_to_flow_name", "string", Never, NONE),
    ("transfer_to_cc_queue_id", "string", Sometimes, NONE),
    ("transfer_to_queue_name", "string", Sometimes, NONE),
    ("transfer_to_user_id", "string", Sometimes, NONE),
    ("transfer_to_user_display_name", "string", Sometimes, NONE),
    ("transfer_to_number", "string", Never, NONE),
    ("transfer_type", "string", Sometimes, NONE),
    ("upgraded_to_channel_type", "string", Never, NONE),
    ("crm_type", "string", Never, NONE),
    ("crm_call_status", "string", Never, NONE),
    ("supervisor_id", "string", Never, NONE),
    ("supervisor_display_name", "string", Never, NONE),
    ("consumer_id", "string", Sometimes, NONE),
    ("consumer_display_name", "string", Sometimes, NONE),
    ("inbox_id", "string", Never, NONE),
    ("inbox_name", "string", Never, NONE),
    ("conference_type", "string", Never, NONE),
    ("invitee_type", "string", Never, NONE),
    ("invitee", "string", Never, NONE),
    ("skills", "array", Never, NONE),
    ("email_reply_to", "array", Never, NONE),
    ("email_reply_cc", "array", Never, NONE),
    ("email_reply_bcc", "array", Never, NONE),
];

/// `recordings[]` of `GET /contact_center/recordings` and `.../engagements/{id}/recordings` (reference §1.5).
const RECORDING: &[Field] = &[
    ("recording_id", "string", Always, NONE),
    ("cc_queue_id", "string", Always, NONE),
    ("queue_name", "string", Always, NONE),
    ("queue_id", "string", Never, NONE),
    ("recording_duration", "integer", Always, NONE),
    ("download_url", "string", Always, NONE),
    ("transcript_url", "string", Sometimes, NONE),
    ("playback_url", "string", Always, NONE),
    ("recording_start_time", "string", Always, NONE),
    ("recording_end_time", "string", Always, NONE),
    ("user_id", "string", Always, NONE),
    ("display_name", "string", Always, NONE),
    ("user_email", "string", Always, NONE),
    ("recording_type", "string", Always, NONE),
    ("channel", "string", Always, NONE),
    ("direction", "string", Always, NONE),
    ("owner_id", "string", Always, NONE),
    ("owner_name", "string", Always, NONE),
    ("owner_type", "string", Always, NONE),
    ("engagement_id", "string", Always, NONE),
    ("flow_name", "string", Always, NONE),
    ("flow_id", "string", Always, NONE),
    (
        "consumers",
        "array",
        Always,
        &[
            ("consumer_name", "string", Always),
            ("consumer_number", "string", Sometimes),
        ],
    ),
    // Deprecated in favour of `consumers[]`, still sent.
    ("consumer_name", "string", Always, NONE),
    ("consumer_number", "string", Sometimes, NONE),
    ("exemption", "boolean", Never, NONE),
    ("team_id", "string", Never, NONE),
    ("team_name", "string", Never, NONE),
    ("conference_participant", "array", Never, NONE),
    ("segment_type", "string", Never, NONE),
    ("reason_details", "string", Never, NONE),
];

/// `messages[]` of `GET /contact_center/inboxes/messages` (reference §1.6; `cci_queue_id` sic).
const INBOX_MESSAGE: &[Field] = &[
    ("message_id", "string", Always, NONE),
    ("inbox_id", "string", Always, NONE),
    ("inbox_name", "string", Always, NONE),
    ("engagement_id", "string", Always, NONE),
    ("created_at", "string", Always, NONE),
    ("flow_id", "string", Always, NONE),
    ("flow_name", "string", Always, NONE),
    ("queue_id", "string", Never, NONE),
    ("cci_queue_id", "string", Always, NONE),
    ("queue_name", "string", Always, NONE),
    ("message_type", "string", Always, NONE),
    ("download_url", "string", Always, NONE),
    ("playback_url", "string", Always, NONE),
    ("transcript_url", "string", Sometimes, NONE),
    ("message_duration", "integer", Always, NONE),
    ("consumer_number", "string", Always, NONE),
    ("consumer_id", "string", Always, NONE),
    ("consumer_display_name", "string", Always, NONE),
    ("status", "string", Always, NONE),
];

/// `notes[]` of `GET /contact_center/engagements/notes` and `.../engagements/{id}/notes` (reference §1.7).
const NOTE: &[Field] = &[
    ("note_id", "string", Always, NONE),
    ("engagement_id", "string", Always, NONE),
    ("channel_type", "string", Never, NONE),
    ("channel", "string", Always, NONE),
    ("channel_source", "string", Always, NONE),
    ("note", "string", Always, NONE),
    ("last_modified_time", "string", Always, NONE),
    ("user_id", "string", Always, NONE),
];

/// Page-level keys: `(name, type)`. ❓ Reference §1.5 lists no `total_records` on recording pages; the simulator
/// sends it as on the other lists.
const ENGAGEMENT_PAGE: &[(&str, &str)] = &[
    ("next_page_token", "string"),
    ("page_size", "integer"),
    ("total_records", "integer"),
    ("timezone", "string"),
    ("from", "string"),
    ("to", "string"),
    ("engagements", "array"),
];
const RECORDING_PAGE: &[(&str, &str)] = &[
    ("next_page_token", "string"),
    ("page_size", "integer"),
    ("total_records", "integer"),
    ("from", "string"),
    ("to", "string"),
    ("recordings", "array"),
];
const INBOX_PAGE: &[(&str, &str)] = &[
    ("next_page_token", "string"),
    ("page_size", "integer"),
    ("total_records", "integer"),
    ("messages", "array"),
];
const NOTE_PAGE: &[(&str, &str)] = &[
    ("next_page_token", "string"),
    ("page_size", "integer"),
    ("total_records", "integer"),
    ("notes", "array"),
];

/// Checks `items` against `table`: every key the sim sends is in it with its type (element fields too), every
/// `Always` field is on every item, every `Sometimes` field on at least one.
fn check_items(what: &str, items: &[Value], table: &[Field], problems: &mut Vec<String>) {
    if items.is_empty() {
        problems.push(format!("{what}: no items to check"));
        return;
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for item in items {
        let Some(fields) = item.as_object() else {
            problems.push(format!("{what}: an item is not an object: {item}"));
            continue;
        };
        for (key, value) in fields {
            let Some((_, expected, _, elements)) = table.iter().find(|(name, ..)| name == key)
            else {
                problems.push(format!("{what}: `{key}` is not a field of the reference"));
                continue;
            };
            seen.insert(key.clone());
            if kind(value) != *expected {
                problems.push(format!(
                    "{what}: `{key}` is {}, the reference says {expected}",
                    kind(value)
                ));
            }
            for element in value.as_array().into_iter().flatten() {
                let Some(element) = element.as_object() else {
                    problems.push(format!("{what}: `{key}[]` holds a non-object: {element}"));
                    continue;
                };
                for (inner, value) in element {
                    let path = format!("{key}[].{inner}");
                    match elements.iter().find(|(name, ..)| name == inner) {
                        None => problems
                            .push(format!("{what}: `{path}` is not a field of the reference")),
                        Some((_, expected, _)) if kind(value) != *expected => {
                            problems.push(format!(
                                "{what}: `{path}` is {}, the reference says {expected}",
                                kind(value)
                            ))
                        }
                        Some(_) => {
                            seen.insert(path);
                        }
                    }
                }
                for (inner, _, need) in elements.iter() {
                    if *need == Always && !element.contains_key(*inner) {
                        problems.push(format!("{what}: `{key}[]` lacks `{inner}`: {element:?}"));
                    }
                }
            }
        }
        for (key, _, need, _) in table {
            if *need == Always && !fields.contains_key(*key) {
                problems.push(format!("{what}: an item lacks `{key}`"));
            }
        }
    }
    for (key, _, need, elements) in table {
        if *need == Sometimes && !seen.contains(*key) {
            problems.push(format!("{what}: no item has `{key}`"));
        }
        for (inner, _, need) in elements.iter() {
            let path = format!("{key}[].{inner}");
            if *need == Sometimes && !seen.contains(&path) {
                problems.push(format!("{what}: no item has `{path}`"));
            }
        }
    }
}

/// Checks a page's own keys and returns its items.
fn page_items(
    what: &str,
    page: &Value,
    keys: &[(&str, &str)],
    problems: &mut Vec<String>,
) -> Vec<Value> {
    let Some(fields) = page.as_object() else {
        problems.push(format!("{what}: the page is not an object: {page}"));
        return Vec::new();
    };
    for (key, value) in fields {
        match keys.iter().find(|(name, _)| name == key) {
            None => problems.push(format!("{what}: page key `{key}` is not in the reference")),
            Some((_, expected)) if kind(value) != *expected => problems.push(format!(
                "{what}: page key `{key}` is {}, not {expected}",
                kind(value)
            )),
            Some(_) => {}
        }
    }
    for (key, _) in keys {
        if !fields.contains_key(*key) {
            problems.push(format!("{what}: the page lacks `{key}`"));
        }
    }
    let list = keys.last().map(|(k, _)| *k).unwrap_or_default();
    page[list].as_array().cloned().unwrap_or_default()
}

struct Rest {
    client: Client,
    base: String,
    token: String,
}

impl Rest {
    async fn new(server: &SimServer, config: &SimServerConfig) -> Rest {
        let client = Client::new();
        let response = client
            .post(format!("{}/oauth/token", server.base_url()))
            .query(&[
                ("grant_type", "account_credentials"),
                ("account_id", config.account_id.as_str()),
            ])
            .basic_auth(&config.client_id, Some(&config.client_secret))
            .send()
            .await
            .expect("token");
        let body: Value = response.json().await.expect("token json");
        Rest {
            client,
            base: format!("{}/v2", server.base_url()),
            token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        }
    }

    /// GET with a retry on a per-second 429 (the lists are MEDIUM-labelled).
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        for _ in 0..50 {
            let response = self
                .client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .query(query)
                .send()
                .await
                .expect("request");
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            return response.json().await.expect("json");
        }
        panic!("{path}: rate limited throughout");
    }
}

#[tokio::test]
async fn rest_responses_have_the_fields_and_types_of_reference_1() {
    let scenario = generate(&GeneratorConfig {
        seed: 5,
        engagements: 120,
        ..GeneratorConfig::default()
    });
    let config = SimServerConfig::default();
    let server = SimServer::start(config.clone(), &scenario)
        .await
        .expect("start");
    let rest = Rest::new(&server, &config).await;
    let starts = scenario.truth.engagements.iter().map(|e| e.start_time_ms);
    let from = zoom_sim::iso_time(starts.clone().min().expect("engagements"));
    let to = zoom_sim::iso_time(
        scenario
            .truth
            .engagements
            .iter()
            .map(|e| e.end_time_ms + 3_600_000)
            .max()
            .expect("engagements"),
    );
    let window = [("from", from.as_str()), ("to", to.as_str())];
    let mut problems = Vec::new();

    // List engagements, every page.
    let mut engagements = Vec::new();
    let mut token = String::new();
    loop {
        let mut query = window.to_vec();
        query.push(("page_size", "100"));
        if !token.is_empty() {
            query.push(("next_page_token", &token));
        }
        let page = rest.get("/contact_center/engagements", &query).await;
        engagements.extend(page_items(
            "list engagements",
            &page,
            ENGAGEMENT_PAGE,
            &mut problems,
        ));
        token = page["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(engagements.len(), scenario.truth.engagements.len());
    check_items("list engagements", &engagements, ENGAGEMENT, &mut problems);

    // Get engagement: one of each channel and direction, and every transferred one.
    let mut picked: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in &scenario.truth.engagements {
        picked
            .entry((e.channel.clone(), e.direction.clone()))
            .or_insert_with(|| e.engagement_id.clone());
    }
    let transferred = scenario
        .truth
        .engagements
        .iter()
        .filter(|e| e.agent_ids.len() >= 2)
        .map(|e| e.engagement_id.clone());
    let ids: BTreeSet<String> = picked.into_values().chain(transferred).collect();
    let mut got = Vec::new();
    let mut timeline = Vec::new();
    for id in &ids {
        let mut body = rest
            .get(&format!("/contact_center/engagements/{id}"), &[])
            .await;
        if let Some(Value::Array(events)) = body.as_object_mut().and_then(|b| b.remove("events")) {
            timeline.extend(events);
        } else {
            problems.push(format!("get engagement {id}: no events[]"));
        }
        got.push(body);
    }
    check_items("get engagement", &got, ENGAGEMENT, &mut problems);
    check_items(
        "get engagement events[]",
        &timeline,
        ENGAGEMENT_EVENT,
        &mut problems,
    );

    // Recordings: all, and per engagement.
    let page = rest
        .get(
            "/contact_center/recordings",
            &[window[0], window[1], ("page_size", "300")],
        )
        .await;
    let recordings = page_items("list recordings", &page, RECORDING_PAGE, &mut problems);
    check_items("list recordings", &recordings, RECORDING, &mut problems);
    let recorded: BTreeSet<&str> = recordings
        .iter()
        .filter_map(|r| r["engagement_id"].as_str())
        .take(5)
        .collect();
    let mut scoped = Vec::new();
    for id in recorded {
        let page = rest
            .get(&format!("/contact_center/engagements/{id}/recordings"), &[])
            .await;
        // The scoped list has no window, so no `from`/`to`.
        let keys: Vec<(&str, &str)> = RECORDING_PAGE
            .iter()
            .copied()
            .filter(|(k, _)| !matches!(*k, "from" | "to"))
            .collect();
        scoped.extend(page_items(
            "engagement recordings",
            &page,
            &keys,
            &mut problems,
        ));
    }
    check_items("engagement recordings", &scoped, RECORDING, &mut problems);

    // Inbox messages.
    let page = rest
        .get(
            "/contact_center/inboxes/messages",
            &[window[0], window[1], ("page_size", "300")],
        )
        .await;
    let messages = page_items("inbox messages", &page, INBOX_PAGE, &mut problems);
    check_items("inbox messages", &messages, INBOX_MESSAGE, &mut problems);

    // Notes: all, and one engagement's.
    let page = rest
        .get("/contact_center/engagements/notes", &[("page_size", "300")])
        .await;
    let notes = page_items("list notes", &page, NOTE_PAGE, &mut problems);
    check_items("list notes", &notes, NOTE, &mut problems);
    let noted = notes[0]["engagement_id"].as_str().expect("engagement_id");
    let page = rest
        .get(&format!("/contact_center/engagements/{noted}/notes"), &[])
        .await;
    let scoped = page_items("engagement notes", &page, NOTE_PAGE, &mut problems);
    check_items("engagement notes", &scoped, NOTE, &mut problems);

    // The URLs have Zoom's forms.
    let base = &scenario.api_base;
    let url_forms: [(&[Value], &str, &str); 6] = [
        (
            &recordings,
            "download_url",
            "/contact_center/recording/download/",
        ),
        (
            &recordings,
            "playback_url",
            "/contact_center/recording/playback/",
        ),
        (
            &recordings,
            "transcript_url",
            "/contact_center/recording/transcripts/download/",
        ),
        (
            &messages,
            "download_url",
            "/contact_center/inbox/message/download/",
        ),
        (
            &messages,
            "playback_url",
            "/contact_center/inbox/message/playback/",
        ),
        (
            &messages,
            "transcript_url",
            "/contact_center/voicemail/transcripts/download/",
        ),
    ];
    for (items, key, path) in url_forms {
        for item in items {
            if let Some(url) = item.get(key).and_then(Value::as_str) {
                if !url.starts_with(&format!("{base}{path}")) || !url.contains("?type=") {
                    problems.push(format!("{key}: {url} is not {base}{path}{{id}}?type=..."));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    server.shutdown().await;
}
