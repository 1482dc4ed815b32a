//! Process-automation (Event Orchestration) triggers (reference §2.1, §2.2).
//!
//! - `GET /api/v2/processautomation/triggers?topicName=a,b&enabled=&pageSize=&after=` → `{"entities":[...]}` in
//!   creation order, plus `"nextUri":"/api/v2/processautomation/triggers?after=<cursor>&pageSize=N"` when more
//!   match. `pageSize` 25 by default, at most 200. The cursor is opaque and carries the filters, so following
//!   `nextUri` as given keeps them (a `topicName` or `enabled` on the request wins over the cursor's).
//! - `POST /api/v2/processautomation/triggers` (`CreateTriggerRequest`) → 200, the request's fields plus `id`,
//!   `"version":1` and `selfUri`.
//! - `GET /api/v2/processautomation/triggers/{id}` → the trigger; `PUT` (`UpdateTriggerRequest`: the same fields plus
//!   `version`) → the stored trigger with `version` + 1; `DELETE` → 204. Unknown id → 404 `not.found`.
//!
//! Validation (400 `invalid.value`, the message names the field): `topicName`, `name` (non-empty strings) and
//! `enabled` (boolean) required; `target` required with `type` `"Workflow"` and a non-empty `id`;
//! `target.workflowTargetSettings.dataFormat`, if given, `Json` or `TopLevelPrimitives`; `matchCriteria`, if given, a
//! list of `{jsonPath, operator, value | values}` with an operator of [`OPERATORS`] and exactly one of `value` and
//! `values` (an array); `eventTTLSeconds` ≥ 10; `delayBySeconds` 60–900 and not together with `eventTTLSeconds`;
//! `description` at most 512 characters. A body that is not a JSON object → 400 `bad.request`. PUT also needs
//! `version` (an integer), the stored `topicName` (else 400 `invalid.value` "topicName cannot be updated") and the
//! current version (else 409 `conflict`). A JSON `null` counts as absent. Numbers given as strings (`"120"`, as in
//! Genesys' own blog example) are accepted for `eventTTLSeconds` and `delayBySeconds` and stored as numbers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{comma_list, page_param, ApiError, ApiResult, QueryMap, Shared};

/// `matchCriteria[].operator` values.
pub const OPERATORS: [&str; 12] = [
    "GreaterThanOrEqual",
    "LessThanOrEqual",
    "Equal",
    "NotEqual",
    "LessThan",
    "GreaterThan",
    "NotIn",
    "In",
    "Contains",
    "All",
    "Exists",
    "Size",
];
/// `target.workflowTargetSettings.dataFormat` values.
pub const DATA_FORMATS: [&str; 2] = ["Json", "TopLevelPrimitives"];
pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 512;
pub const MIN_EVENT_TTL_SECONDS: i64 = 10;
pub const DELAY_BY_SECONDS: std::ops::RangeInclusive<i64> = 60..=900;
const BASE_PATH: &str = "/api/v2/processautomation/triggers";

/// The stored triggers, by creation sequence number.
#[derive(Debug, Default)]
pub(super) struct Triggers {
    by_seq: BTreeMap<u64, Map<String, Value>>,
    next_seq: u64,
}

impl Triggers {
    pub(super) fn all(&self) -> Vec<Value> {
        self.by_seq.values().cloned().map(Value::Object).collect()
    }

    fn find(&mut self, id: &str) -> Option<&mut Map<String, Value>> {
        self.by_seq
            .values_mut()
            .find(|t| t.get("id").and_then(Value::as_str) == Some(id))
    }
}

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(BASE_PATH, get(list).post(create))
        .route(
            "/api/v2/processautomation/triggers/{id}",
            get(read).put(update).delete(remove),
        )
}

fn trigger_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Trigger {id} not found."))
}

/// Where a listing resumes, and the filters it was made with.
#[derive(Debug, Default, PartialEq, Eq)]
struct Cursor {
    after: u64,
    topic_name: Option<String>,
    enabled: Option<bool>,
}

impl Cursor {
    fn encode(&self) -> String {
        let mut json = json!({"after": self.after});
        if let Some(topic_name) = &self.topic_name {
            json["topicName"] = json!(topic_name);
        }
        if let Some(enabled) = self.enabled {
            json["enabled"] = json!(enabled);
        }
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn decode(raw: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        let json: Value = serde_json::from_slice(&bytes).ok()?;
        Some(Cursor {
            after: json.get("after")?.as_u64()?,
            topic_name: json
                .get("topicName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            enabled: json.get("enabled").and_then(Value::as_bool),
        })
    }
}

/// `GET /api/v2/processautomation/triggers`.
async fn list(State(shared): State<Arc<Shared>>, query: QueryMap) -> ApiResult {
    let Query(query) = query?;
    let page_size = page_param(&query, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let cursor = match query.get("after").filter(|a| !a.is_empty()) {
        Some(raw) => Cursor::decode(raw)
            .ok_or_else(|| ApiError::invalid(format!("after: invalid cursor {raw:?}")))?,
        None => Cursor::default(),
    };
    let topic_name = query
        .get("topicName")
        .cloned()
        .or(cursor.topic_name)
        .filter(|t| !t.trim().is_empty());
    let enabled = match query.get("enabled").map(String::as_str) {
        None | Some("") => cursor.enabled,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "enabled must be true or false, got {other:?}"
            )))
        }
    };
    let topics = topic_name.as_deref().map(comma_list);
    let state = shared.lock();
    let mut page: Vec<(u64, &Map<String, Value>)> = state
        .triggers
        .by_seq
        .range(cursor.after.saturating_add(1)..)
        .filter(|(_, t)| {
            let topic = t.get("topicName").and_then(Value::as_str).unwrap_or("");
            topics.as_ref().is_none_or(|set| set.contains(topic))
                && enabled.is_none_or(|e| t.get("enabled").and_then(Value::as_bool) == Some(e))
        })
        .map(|(seq, t)| (*seq, t))
        .take(page_size + 1)
        .collect();
    let more = page.len() > page_size;
    page.truncate(page_size);
    let mut body = json!({
        "entities": page.iter().map(|(_, t)| Value::Object((*t).clone())).collect::<Vec<_>>(),
    });
    if more {
        if let Some((last, _)) = page.last() {
            let next = Cursor {
                after: *last,
                topic_name,
                enabled,
            };
            body["nextUri"] = json!(format!(
                "{BASE_PATH}?after={}&pageSize={page_size}",
                next.encode()
            ));
        }
    }
    Ok(Json(body).into_response())
}

/// `POST /api/v2/processautomation/triggers`.
async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let mut trigger = validate(&body, false)?;
    let id = crate::uuid();
    trigger.insert("id".into(), json!(id));
    trigger.insert("version".into(), json!(1));
    trigger.insert("selfUri".into(), json!(format!("{BASE_PATH}/{id}")));
    let mut state = shared.lock();
    let triggers = &mut state.triggers;
    triggers.next_seq += 1;
    triggers.by_seq.insert(triggers.next_seq, trigger.clone());
    Ok(Json(Value::Object(trigger)).into_response())
}

/// `GET /api/v2/processautomation/triggers/{id}`.
async fn read(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let mut state = shared.lock();
    let trigger = state
        .triggers
        .find(&id)
        .ok_or_else(|| trigger_not_found(&id))?;
    Ok(Json(Value::Object(trigger.clone())).into_response())
}

/// `PUT /api/v2/processautomation/triggers/{id}`.
async fn update(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult {
    let Path(id) = id?;
    if shared.lock().triggers.find(&id).is_none() {
        return Err(trigger_not_found(&id));
    }
    let mut request = validate(&body, true)?;
    let mut state = shared.lock();
    let stored = state
        .triggers
        .find(&id)
        .ok_or_else(|| trigger_not_found(&id))?;
    if stored.get("topicName") != request.get("topicName") {
        return Err(ApiError::invalid("topicName cannot be updated"));
    }
    let current = stored.get("version").and_then(Value::as_i64).unwrap_or(1);
    let asked = request.get("version").and_then(Value::as_i64);
    if asked != Some(current) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "version {} does not match the trigger's current version {current}",
                asked.map_or_else(|| "?".to_owned(), |v| v.to_string())
            ),
        ));
    }
    request.insert("id".into(), json!(id));
    request.insert("version".into(), json!(current + 1));
    request.insert("selfUri".into(), json!(format!("{BASE_PATH}/{id}")));
    *stored = request.clone();
    Ok(Json(Value::Object(request)).into_response())
}

/// `DELETE /api/v2/processautomation/triggers/{id}`.
async fn remove(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    let mut state = shared.lock();
    let triggers = &mut state.triggers;
    let seq = triggers
        .by_seq
        .iter()
        .find(|(_, t)| t.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .map(|(seq, _)| *seq)
        .ok_or_else(|| trigger_not_found(&id))?;
    triggers.by_seq.remove(&seq);
    Ok(StatusCode::NO_CONTENT)
}

/// The field, unless absent or `null`.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn required_string(object: &Map<String, Value>, name: &str, path: &str) -> ApiResult<String> {
    match field(object, name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::invalid(format!("{path} must not be empty"))),
        Some(_) => Err(ApiError::invalid(format!("{path} must be a string"))),
        None => Err(ApiError::invalid(format!("{path} is required"))),
    }
}

/// An integer field, given as a number or a string of digits.
fn integer(object: &Map<String, Value>, name: &str) -> ApiResult<Option<i64>> {
    let Some(value) = field(object, name) else {
        return Ok(None);
    };
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| ApiError::invalid(format!("{name} must be an integer")))
}

/// Checks a `CreateTriggerRequest` (or, with `update`, an `UpdateTriggerRequest`) and returns it as an object with
/// `null` fields removed and numeric strings made numbers.
fn validate(body: &[u8], update: bool) -> ApiResult<Map<String, Value>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(mut request) = value else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    request.retain(|_, v| !v.is_null());

    required_string(&request, "topicName", "topicName")?;
    required_string(&request, "name", "name")?;
    match field(&request, "enabled") {
        Some(Value::Bool(_)) => {}
        Some(_) => return Err(ApiError::invalid("enabled must be a boolean")),
        None => return Err(ApiError::invalid("enabled is required")),
    }

    let target = match field(&request, "target") {
        Some(Value::Object(target)) => target,
        Some(_) => return Err(ApiError::invalid("target must be an object")),
        None => return Err(ApiError::invalid("target is required")),
    };
    match field(target, "type") {
        Some(Value::String(t)) if t == "Workflow" => {}
        Some(_) => return Err(ApiError::invalid("target.type must be \"Workflow\"")),
        None => return Err(ApiError::invalid("target.type is required")),
    }
    required_string(target, "id", "target.id")?;
    match field(target, "workflowTargetSettings") {
        None => {}
        Some(Value::Object(settings)) => {
            match field(settings, "dataFormat") {
                None => {}
                Some(Value::String(f)) if DATA_FORMATS.contains(&f.as_str()) => {}
                Some(_) => return Err(ApiError::invalid(
                    "target.workflowTargetSettings.dataFormat must be Json or TopLevelPrimitives",
                )),
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "target.workflowTargetSettings must be an object",
            ))
        }
    }

    match field(&request, "matchCriteria") {
        None => {}
        Some(Value::Array(criteria)) => {
            for (i, criterion) in criteria.iter().enumerate() {
                validate_criterion(criterion, i)?;
            }
        }
        Some(_) => return Err(ApiError::invalid("matchCriteria must be an array")),
    }

    let ttl = integer(&request, "eventTTLSeconds")?;
    if let Some(ttl) = ttl {
        if ttl < MIN_EVENT_TTL_SECONDS {
            return Err(ApiError::invalid(format!(
                "eventTTLSeconds must be at least {MIN_EVENT_TTL_SECONDS}"
            )));
        }
        request.insert("eventTTLSeconds".into(), json!(ttl));
    }
    let delay = integer(&request, "delayBySeconds")?;
    if let Some(delay) = delay {
        if !DELAY_BY_SECONDS.contains(&delay) {
            return Err(ApiError::invalid(format!(
                "delayBySeconds must be from {} to {}",
                DELAY_BY_SECONDS.start(),
                DELAY_BY_SECONDS.end()
            )));
        }
        if ttl.is_some() {
            return Err(ApiError::invalid(
                "delayBySeconds and eventTTLSeconds cannot both be set",
            ));
        }
        request.insert("delayBySeconds".into(), json!(delay));
    }

    match field(&request, "description") {
        None => {}
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => {}
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            )))
        }
        Some(_) => return Err(ApiError::invalid("description must be a string")),
    }

    if update {
        match integer(&request, "version")? {
            Some(version) => {
                request.insert("version".into(), json!(version));
            }
            None => return Err(ApiError::invalid("version is required")),
        }
    }
    Ok(request)
}

fn validate_criterion(criterion: &Value, i: usize) -> ApiResult<()> {
    let Value::Object(criterion) = criterion else {
        return Err(ApiError::invalid(format!(
            "matchCriteria[{i}] must be an object"
        )));
    };
    required_string(
        criterion,
        "jsonPath",
        &format!("matchCriteria[{i}].jsonPath"),
    )?;
    match field(criterion, "operator") {
        Some(Value::String(op)) if OPERATORS.contains(&op.as_str()) => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "matchCriteria[{i}].operator must be one of {}",
                OPERATORS.join(", ")
            )))
        }
        None => {
            return Err(ApiError::invalid(format!(
                "matchCriteria[{i}].operator is required"
            )))
        }
    }
    match (field(criterion, "value"), field(criterion, "values")) {
        (Some(_), None) | (None, Some(Value::Array(_))) => Ok(()),
        (None, Some(_)) => Err(ApiError::invalid(format!(
            "matchCriteria[{i}].values must be an array"
        ))),
        _ => Err(ApiError::invalid(format!(
            "matchCriteria[{i}] must have exactly one of value and values"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        json!({
            "topicName": "v2.detail.events.conversation.{id}.user.start",
            "name": "Agent joins conversation",
            "target": {"id": "wf-1", "type": "Workflow",
                       "workflowTargetSettings": {"dataFormat": "TopLevelPrimitives"}},
            "matchCriteria": [{"jsonPath": "mediaType", "operator": "Equal", "value": "VOICE"},
                              {"jsonPath": "disconnectType", "operator": "In", "values": ["ERROR"]}],
            "eventTTLSeconds": "120",
            "enabled": true,
        })
    }

    fn check(body: &Value) -> Result<Map<String, Value>, String> {
        validate(body.to_string().as_bytes(), false).map_err(|e| e.message)
    }

    #[test]
    fn accepts_the_blog_example_and_stores_numbers() {
        let stored = check(&valid()).unwrap();
        assert_eq!(stored["eventTTLSeconds"], json!(120));
    }

    #[test]
    fn names_the_offending_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/topicName", Value::Null, "topicName"),
            ("/name", json!(""), "name"),
            ("/enabled", json!("yes"), "enabled"),
            ("/target/type", json!("Lambda"), "target.type"),
            ("/target/id", json!(""), "target.id"),
            (
                "/target/workflowTargetSettings/dataFormat",
                json!("Xml"),
                "dataFormat",
            ),
            ("/matchCriteria/0/operator", json!("Like"), "operator"),
            ("/matchCriteria/1/value", json!("X"), "exactly one"),
            ("/eventTTLSeconds", json!(5), "eventTTLSeconds"),
            ("/description", json!("x".repeat(513)), "description"),
        ];
        for (pointer, replacement, expected) in cases {
            let mut body = valid();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            body.pointer_mut(parent).unwrap()[key] = replacement;
            let message = check(&body).unwrap_err();
            assert!(message.contains(expected), "{pointer}: {message}");
        }
        let mut body = valid();
        body.as_object_mut().unwrap().remove("target");
        assert!(check(&body).unwrap_err().contains("target"));
        let mut body = valid();
        body["matchCriteria"][0]
            .as_object_mut()
            .unwrap()
            .remove("value");
        assert!(check(&body).unwrap_err().contains("exactly one"));
        assert!(validate(b"[1]", false).is_err());
        assert!(validate(b"not json", false).is_err());
    }

    #[test]
    fn update_needs_a_version() {
        let body = valid().to_string();
        assert!(validate(body.as_bytes(), true)
            .unwrap_err()
            .message
            .contains("version"));
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            after: 7,
            topic_name: Some("a,b".into()),
            enabled: Some(true),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("%%%"), None);
    }
}
