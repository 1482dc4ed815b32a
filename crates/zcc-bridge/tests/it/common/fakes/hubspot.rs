//! A local fake of the HubSpot CRM API, built from HubSpot's documentation (developers.hubspot.com: calls
//! engagements, CRM search, associations v4, error responses, rate limits): private app bearer tokens, contact
//! search, calls search / create / update kept in memory, the default call → contact association, HubSpot-shaped
//! errors, programmable failures, and a record of every request so tests can check what the sink sent.
//!
//! It is stricter than HubSpot where that catches sink bugs: unknown call properties, bad enumerations, non-HTTPS
//! recording URLs and search requests over HubSpot's limits are refused the way HubSpot refuses them.
//!
//! Where HubSpot's guides and its published OpenAPI documents (CRM search, calls; not copied here: HubSpot marks
//! them as not licensed for use outside its tooling) disagree, the fake accepts only what satisfies both: a search
//! must carry `after` (a string) and `sorts` (the schema requires both; the guides leave them out), and `sorts`
//! must be empty (the guides write its elements as objects, the schema as strings); a call is created with an
//! `associations` array (required by the schema, left out by the guides when there is nothing to link).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

/// The private app access token the fake accepts.
pub const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
/// The custom call property the fake's portal has, as the sink's docs ask the admin to create.
pub const ID_PROPERTY: &str = "zcc_engagement_id";
/// The association type HubSpot defines for call → contact.
pub const CALL_TO_CONTACT: u64 = 194;

/// HubSpot's default call properties (the ones the sink may write, and a few more).
const CALL_PROPERTIES: &[&str] = &[
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_direction",
    "hs_call_duration",
    "hs_call_status",
    "hs_call_disposition",
    "hs_call_recording_url",
    "hs_call_from_number",
    "hs_call_to_number",
    "hs_call_callee_object_id",
    "hs_call_callee_object_type",
    "hubspot_owner_id",
    "hs_object_id",
    "hs_createdate",
    "hs_lastmodifieddate",
];
const CALL_STATUSES: &[&str] = &[
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
];
/// Search limits (HubSpot changelog, August 2024): five groups, ten filters a group, twenty-five in all.
const MAX_FILTER_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;
const MAX_SEARCH_LIMIT: u64 = 200;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lowercased names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: Value,
}

/// A contact or a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeObject {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    /// Whether search sees it yet (HubSpot's index lags behind writes).
    pub indexed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub call_id: String,
    pub contact_id: String,
    pub category: String,
    pub type_id: u64,
}

#[derive(Debug, Clone)]
enum Failure {
    Status(u16),
    RateLimit {
        retry_after: Option<u64>,
        policy: String,
    },
}

#[derive(Debug)]
struct Portal {
    token: String,
    next_id: u64,
    clock: u64,
    contacts: Vec<FakeObject>,
    calls: Vec<FakeObject>,
    call_properties: BTreeSet<String>,
    associations: Vec<Association>,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
    search_lag: bool,
}

type Shared = Arc<Mutex<Portal>>;

pub struct FakeHubspot {
    /// The API base to configure the sink with (`http://127.0.0.1:PORT`).
    pub base: String,
    portal: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHubspot {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeHubspot {
    /// A portal with no contacts and the `zcc_engagement_id` call property, on 127.0.0.1 port 0.
    pub async fn start() -> Self {
        let mut call_properties: BTreeSet<String> =
            CALL_PROPERTIES.iter().map(|p| p.to_string()).collect();
        call_properties.insert(ID_PROPERTY.to_string());
        let portal = Arc::new(Mutex::new(Portal {
            token: TOKEN.to_string(),
            next_id: 1000,
            clock: 1_700_000_000_000,
            contacts: Vec::new(),
            calls: Vec::new(),
            call_properties,
            associations: Vec::new(),
            requests: Vec::new(),
            failures: VecDeque::new(),
            search_lag: false,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake HubSpot");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).with_state(portal.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            portal,
            server,
        }
    }

    fn portal(&self) -> std::sync::MutexGuard<'_, Portal> {
        self.portal.lock().expect("fake HubSpot state")
    }

    /// Adds a contact (searchable at once); returns its id.
    pub fn add_contact(&self, properties: &[(&str, &str)]) -> String {
        let mut p = self.portal();
        let id = p.new_id();
        let created = p.tick();
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        props.insert("hs_object_id".into(), id.clone());
        props.insert("createdate".into(), hubspot_time(created));
        p.contacts.push(FakeObject {
            id: id.clone(),
            properties: props,
            indexed: true,
        });
        id
    }

    /// Adds a custom call property to the portal.
    pub fn define_call_property(&self, name: &str) {
        self.portal().call_properties.insert(name.to_string());
    }

    /// The next `n` requests get `status` (before authentication, as a gateway would).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut p = self.portal();
        for _ in 0..n {
            p.failures.push_back(Failure::Status(status));
        }
    }

    /// The next request gets HubSpot's 429 with `policyName`, and `Retry-After` when given.
    pub fn rate_limit_next(&self, retry_after_seconds: Option<u64>, policy: &str) {
        self.portal().failures.push_back(Failure::RateLimit {
            retry_after: retry_after_seconds,
            policy: policy.to_string(),
        });
    }

    /// With lag on, calls created from now on are invisible to search until [`FakeHubspot::reindex`].
    pub fn set_search_lag(&self, on: bool) {
        self.portal().search_lag = on;
    }

    pub fn reindex(&self) {
        for c in &mut self.portal().calls {
            c.indexed = true;
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.portal().requests.clone()
    }

    /// The recorded requests to `method path` (path without the query).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.portal().requests.clear();
    }

    pub fn calls(&self) -> Vec<FakeObject> {
        self.portal().calls.clone()
    }

    pub fn associations(&self) -> Vec<Association> {
        self.portal().associations.clone()
    }
}

async fn handle(
    State(portal): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut p = match portal.lock() {
        Ok(p) => p,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    p.respond(&method, &uri, &headers, &body)
}

fn error(status: u16, category: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": "3f1c2a9e-0d4b-4c55-9a57-2b1f5e6d7c80",
        "category": category,
    });
    (status, axum::Json(body)).into_response()
}

fn validation(message: &str) -> Response {
    error(400, "VALIDATION_ERROR", message)
}

fn invalid_property(name: &str, message: &str, code: &str) -> Response {
    let detail = json!([{"isValid": false, "message": message, "error": code, "name": name}]);
    validation(&format!("Property values were not valid: {detail}"))
}

fn object_json(o: &FakeObject, only: Option<&[String]>) -> Value {
    let properties: Map<String, Value> = o
        .properties
        .iter()
        .filter(|(k, _)| only.is_none_or(|keep| keep.contains(k)))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "id": o.id,
        "properties": properties,
        "createdAt": "2026-03-02T10:05:00.000Z",
        "updatedAt": "2026-03-02T10:05:00.000Z",
        "archived": false,
    })
}

impl Portal {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn respond(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Response {
        let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        self.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        });
        if let Some(failure) = self.failures.pop_front() {
            return failure_response(failure);
        }
        let expected = format!("Bearer {}", self.token);
        if headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            != Some(expected.as_bytes())
        {
            return error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can \
                 find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            );
        }
        if !raw.is_empty() && body.is_null() {
            return validation("Invalid input JSON on line 1");
        }
        let path = uri.path().trim_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["crm", "v3", "objects", "contacts", "search"]) => {
                search(&self.contacts, &body, None, false)
            }
            ("POST", ["crm", "v3", "objects", "calls", "search"]) => {
                search(&self.calls, &body, Some(&self.call_properties), true)
            }
            ("POST", ["crm", "v3", "objects", "calls"]) => self.create_call(&body),
            ("PATCH", ["crm", "v3", "objects", "calls", id]) => self.update_call(id, &body),
            ("GET", ["crm", "v3", "objects", "calls", id]) => {
                match self.calls.iter().find(|c| c.id == *id) {
                    Some(c) => axum::Json(object_json(c, None)).into_response(),
                    None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
                }
            }
            (
                "PUT",
                ["crm", "v4", "objects", from, call, "associations", "default", to, contact],
            ) => self.associate_default(from, call, to, contact),
            _ => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    /// Checks written call properties as HubSpot does (for the ones it validates): the refusal, if any.
    fn refuse_call_properties(&self, properties: &Map<String, Value>) -> Option<Response> {
        for (name, value) in properties {
            if !self.call_properties.contains(name) {
                return Some(invalid_property(
                    name,
                    &format!("Property \"{name}\" does not exist"),
                    "PROPERTY_DOESNT_EXIST",
                ));
            }
            let Some(text) = value.as_str() else {
                return Some(invalid_property(
                    name,
                    "expected a string",
                    "INVALID_STRING",
                ));
            };
            let ok = match name.as_str() {
                "hs_call_direction" => ["INBOUND", "OUTBOUND"].contains(&text),
                "hs_call_status" => CALL_STATUSES.contains(&text),
                "hs_call_duration" => text.parse::<u64>().is_ok(),
                "hs_timestamp" => {
                    text.parse::<i64>().is_ok()
                        || chrono::DateTime::parse_from_rfc3339(text).is_ok()
                }
                "hs_call_recording_url" => text.starts_with("https://"),
                "hs_call_disposition" => text.len() == 36 && text.matches('-').count() == 4,
                _ => true,
            };
            if !ok {
                return Some(invalid_property(
                    name,
                    &format!("{text:?} was not a valid value for {name}"),
                    "INVALID_OPTION",
                ));
            }
        }
        None
    }

    fn create_call(&mut self, body: &Value) -> Response {
        let Some(properties) = body.get("properties").and_then(Value::as_object) else {
            return validation("Some required fields were not set: [properties]");
        };
        if let Some(r) = self.refuse_call_properties(properties) {
            return r;
        }
        if !properties.contains_key("hs_timestamp") {
            return invalid_property(
                "hs_timestamp",
                "hs_timestamp is required",
                "REQUIRED_PROPERTY",
            );
        }
        let Some(associations) = body.get("associations").and_then(Value::as_array) else {
            return validation("Some required fields were not set: [associations]");
        };
        let mut links = Vec::new();
        for a in associations {
            let to = a.pointer("/to/id").and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let Some(to) = to.filter(|to| self.contacts.iter().any(|c| c.id == *to)) else {
                return validation(
                    "One or more associations are invalid: the target object does not exist",
                );
            };
            let types = a
                .get("types")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if types.is_empty() {
                return validation("associations[].types is required");
            }
            for t in types {
                let category = t
                    .get("associationCategory")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let type_id = t
                    .get("associationTypeId")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if category != "HUBSPOT_DEFINED" || type_id != CALL_TO_CONTACT {
                    return validation(&format!(
                        "association type {category}/{type_id} is not valid between calls and the target"
                    ));
                }
                links.push((to.clone(), category.to_string(), type_id));
            }
        }
        let id = self.new_id();
        let created = self.tick();
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        props.insert("hs_object_id".into(), id.clone());
        props.insert("hs_createdate".into(), hubspot_time(created));
        let call = FakeObject {
            id: id.clone(),
            properties: props,
            indexed: !self.search_lag,
        };
        let response = object_json(&call, None);
        self.calls.push(call);
        for (contact_id, category, type_id) in links {
            self.link(&id, &contact_id, &category, type_id);
        }
        (StatusCode::CREATED, axum::Json(response)).into_response()
    }

    fn update_call(&mut self, id: &str, body: &Value) -> Response {
        let Some(properties) = body.get("properties").and_then(Value::as_object) else {
            return validation("Some required fields were not set: [properties]");
        };
        if let Some(r) = self.refuse_call_properties(properties) {
            return r;
        }
        let modified = self.tick();
        let Some(call) = self.calls.iter_mut().find(|c| c.id == id) else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        for (k, v) in properties {
            if let Some(v) = v.as_str() {
                call.properties.insert(k.clone(), v.to_string());
            }
        }
        call.properties
            .insert("hs_lastmodifieddate".into(), hubspot_time(modified));
        axum::Json(object_json(call, None)).into_response()
    }

    fn associate_default(&mut self, from: &str, call: &str, to: &str, contact: &str) -> Response {
        if !["calls", "call", "0-48"].contains(&from)
            || !["contacts", "contact", "0-1"].contains(&to)
        {
            return validation(&format!(
                "the fake only associates calls with contacts, not {from} with {to}"
            ));
        }
        if !self.calls.iter().any(|c| c.id == call)
            || !self.contacts.iter().any(|c| c.id == contact)
        {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        }
        self.link(call, contact, "HUBSPOT_DEFINED", CALL_TO_CONTACT);
        axum::Json(json!({
            "status": "COMPLETE",
            "results": [{
                "fromObjectTypeId": "0-48",
                "fromObjectId": call,
                "toObjectTypeId": "0-1",
                "toObjectId": contact,
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT},
            }],
            "startedAt": "2026-03-02T10:05:00.000Z",
            "completedAt": "2026-03-02T10:05:00.010Z",
        }))
        .into_response()
    }

    fn link(&mut self, call: &str, contact: &str, category: &str, type_id: u64) {
        let a = Association {
            call_id: call.to_string(),
            contact_id: contact.to_string(),
            category: category.to_string(),
            type_id,
        };
        if !self.associations.contains(&a) {
            self.associations.push(a);
        }
    }
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (status, "upstream unavailable").into_response()
        }
        Failure::RateLimit {
            retry_after,
            policy,
        } => {
            let body = json!({
                "status": "error",
                "message": format!("You have reached your {} limit.", policy.to_lowercase()),
                "errorType": "RATE_LIMIT",
                "correlationId": "8d1c3e55-7a0f-4b8e-9a41-5f0e2c7d9b13",
                "policyName": policy,
                "requestId": "0b6b1c2e-4f0a-4c3b-8e7e-1a2b3c4d5e6f",
            });
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

/// HubSpot's timestamps (ISO 8601 with milliseconds): the fake's clock ticks a second a write from 2026-03-01.
fn hubspot_time(tick: u64) -> String {
    let secs = 1_772_323_200 + i64::try_from(tick).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `POST /crm/v3/objects/{type}/search`: filter groups OR-ed, filters AND-ed; EQ, NEQ, IN, HAS_PROPERTY. Results
/// in id order (HubSpot's order without sorts).
fn search(
    objects: &[FakeObject],
    body: &Value,
    known: Option<&BTreeSet<String>>,
    lagging: bool,
) -> Response {
    if !body.get("after").is_some_and(Value::is_string) {
        return validation("Some required fields were not set: [after] (a string)");
    }
    match body.get("sorts").and_then(Value::as_array) {
        None => return validation("Some required fields were not set: [sorts]"),
        Some(sorts) if !sorts.is_empty() => {
            return validation(
                "sorts: HubSpot's guides (objects) and schema (strings) disagree; the fake takes only []",
            )
        }
        Some(_) => {}
    }
    let groups = body
        .get("filterGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if groups.len() > MAX_FILTER_GROUPS {
        return validation(&format!(
            "Too many filter groups ({} > {MAX_FILTER_GROUPS})",
            groups.len()
        ));
    }
    let mut total_filters = 0;
    let mut parsed: Vec<Vec<(String, String, Vec<String>)>> = Vec::new();
    for g in &groups {
        let filters = g
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if filters.len() > MAX_FILTERS_PER_GROUP {
            return validation("Too many filters in a filter group");
        }
        total_filters += filters.len();
        let mut group = Vec::new();
        for f in filters {
            let Some(name) = f.get("propertyName").and_then(Value::as_str) else {
                return validation("filters[].propertyName is required");
            };
            if known.is_some_and(|k| !k.contains(name)) {
                return validation(&format!(
                    "There was a problem with the request: property {name:?} does not exist"
                ));
            }
            let operator = f.get("operator").and_then(Value::as_str).unwrap_or("");
            let values: Vec<String> = match operator {
                "EQ" | "NEQ" => match f.get("value").and_then(Value::as_str) {
                    Some(v) => vec![v.to_string()],
                    None => return validation(&format!("{operator} needs a value")),
                },
                "IN" => match f.get("values").and_then(Value::as_array) {
                    Some(v) if !v.is_empty() => v
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    _ => return validation("IN needs values"),
                },
                "HAS_PROPERTY" => Vec::new(),
                other => {
                    return validation(&format!("the fake does not know the operator {other:?}"))
                }
            };
            group.push((name.to_string(), operator.to_string(), values));
        }
        parsed.push(group);
    }
    if total_filters > MAX_FILTERS {
        return validation("Too many filters");
    }
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10);
    if limit > MAX_SEARCH_LIMIT {
        return validation("limit must be at most 200");
    }
    let matches = |o: &FakeObject| {
        parsed.is_empty()
            || parsed.iter().any(|group| {
                group.iter().all(|(name, operator, values)| {
                    let have = o.properties.get(name);
                    match operator.as_str() {
                        "EQ" => have.is_some_and(|h| h.eq_ignore_ascii_case(&values[0])),
                        "NEQ" => !have.is_some_and(|h| h.eq_ignore_ascii_case(&values[0])),
                        "IN" => {
                            have.is_some_and(|h| values.iter().any(|v| v.eq_ignore_ascii_case(h)))
                        }
                        _ => have.is_some(),
                    }
                })
            })
    };
    let found: Vec<&FakeObject> = objects
        .iter()
        .filter(|o| !lagging || o.indexed)
        .filter(|o| matches(o))
        .collect();
    let wanted: Option<Vec<String>> = body.get("properties").and_then(Value::as_array).map(|p| {
        p.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .chain(["hs_object_id".to_string()])
            .collect()
    });
    let total = found.len();
    let results: Vec<Value> = found
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|o| object_json(o, wanted.as_deref()))
        .collect();
    axum::Json(json!({"total": total, "results": results})).into_response()
}
