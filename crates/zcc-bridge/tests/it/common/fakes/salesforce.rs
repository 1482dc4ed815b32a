//! A local fake of the Salesforce REST API, built from the documented request and response shapes: the OAuth
//! 2.0 client-credentials token endpoint, SOQL query (a small but real parser: quoting mistakes show up as
//! MALFORMED_QUERY or as a query that matches too much), SOSL search over phone fields, and Task upsert by an
//! external id (201 on create, 204 on update). Every request is recorded with its answer; failures can be
//! programmed (the next N API requests fail, every token expires, the token endpoint refuses).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

pub const CLIENT_ID: &str = "3MVG9fake.consumer.key";
pub const CLIENT_SECRET: &str = "fake-consumer-secret-0123456789";
pub const EXTERNAL_ID_FIELD: &str = "Zoom_Engagement_Id__c";
/// Custom Task fields the fake org has besides the external id (URL fields: 255 characters).
pub const CUSTOM_FIELDS: &[&str] = &["Recording_Link__c", "Transcript_Link__c"];

/// One request as the fake saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The JSON body (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `application/x-www-form-urlencoded` body, decoded.
    pub fn form(&self) -> BTreeMap<String, String> {
        decode_pairs(&self.body)
    }

    /// A query-string parameter, decoded (`q` of a query or search).
    pub fn param(&self, name: &str) -> Option<String> {
        decode_pairs(self.query.as_deref().unwrap_or("")).remove(name)
    }

    pub fn is_token_request(&self) -> bool {
        self.path == "/services/oauth2/token"
    }
}

fn decode_pairs(encoded: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://decode.invalid/?{encoded}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A Contact or Lead of the fake org.
#[derive(Debug, Clone)]
pub struct Person {
    pub object: &'static str,
    pub id: String,
    pub phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub email: Option<String>,
    pub is_converted: bool,
}

impl Person {
    pub fn contact(id: &str) -> Self {
        Self::new("Contact", id)
    }

    pub fn lead(id: &str) -> Self {
        Self::new("Lead", id)
    }

    fn new(object: &'static str, id: &str) -> Self {
        Self {
            object,
            id: id.to_string(),
            phone: None,
            mobile_phone: None,
            email: None,
            is_converted: false,
        }
    }

    pub fn phone(mut self, phone: &str) -> Self {
        self.phone = Some(phone.to_string());
        self
    }

    pub fn mobile(mut self, phone: &str) -> Self {
        self.mobile_phone = Some(phone.to_string());
        self
    }

    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_string());
        self
    }

    pub fn converted(mut self) -> Self {
        self.is_converted = true;
        self
    }
}

/// A Task kept by the fake.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub external_id: String,
    pub fields: Map<String, Value>,
}

impl Task {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }
}

/// A programmed failure of the next matching API request (not of the token endpoint).
#[derive(Debug, Clone)]
pub struct Failure {
    /// Only requests of this method (e.g. PATCH: the upsert); any when `None`.
    pub method: Option<Method>,
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Failure {
    pub fn new(status: u16, body: Value) -> Self {
        Self {
            method: None,
            status,
            body,
            retry_after: None,
        }
    }

    /// `503` with Salesforce's body for an unavailable server.
    pub fn unavailable() -> Self {
        Self::new(
            503,
            json!([{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
    }

    pub fn on(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_string());
        self
    }
}

#[derive(Default)]
struct Org {
    requests: Vec<Recorded>,
    people: Vec<Person>,
    tasks: Vec<Task>,
    valid_tokens: Vec<String>,
    tokens_issued: u64,
    tasks_created: u64,
    failures: VecDeque<Failure>,
    token_failure: Option<(u16, Value)>,
    subtype_create_only: bool,
}

#[derive(Clone)]
struct Shared {
    org: Arc<Mutex<Org>>,
    url: String,
}

/// The running fake; stops when dropped.
pub struct FakeSalesforce {
    /// `http://127.0.0.1:PORT`: the sink's `url`, and the `instance_url` of every token.
    pub url: String,
    org: Arc<Mutex<Org>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSalesforce {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let org = Arc::new(Mutex::new(Org::default()));
        let app = Router::new().fallback(handle).with_state(Shared {
            org: org.clone(),
            url: url.clone(),
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, org, server }
    }

    fn org(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, person: Person) {
        self.org().people.push(person);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.org().requests.clone()
    }

    /// Requests other than token requests.
    pub fn api_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !r.is_token_request())
            .collect()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_token_request)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.org().requests.clear();
    }

    pub fn tasks(&self) -> Vec<Task> {
        self.org().tasks.clone()
    }

    pub fn task(&self, external_id: &str) -> Option<Task> {
        self.org()
            .tasks
            .iter()
            .find(|t| t.external_id == external_id)
            .cloned()
    }

    /// Every issued token stops working: the next API call gets 401 INVALID_SESSION_ID.
    pub fn expire_tokens(&self) {
        self.org().valid_tokens.clear();
    }

    /// The next `count` API requests (matching `failure.method`) answer `failure`.
    pub fn fail_next(&self, count: usize, failure: Failure) {
        let mut org = self.org();
        for _ in 0..count {
            org.failures.push_back(failure.clone());
        }
    }

    /// The token endpoint answers `status` and `body` until cleared with `None`.
    pub fn fail_token(&self, failure: Option<(u16, Value)>) {
        self.org().token_failure = failure;
    }

    /// Makes TaskSubtype settable on create only: an update naming it is refused.
    pub fn task_subtype_create_only(&self, on: bool) {
        self.org().subtype_create_only = on;
    }
}

/// What a route answers.
struct Answer {
    status: u16,
    body: Option<Value>,
    retry_after: Option<String>,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: Some(body),
        retry_after: None,
    }
}

/// The REST API's error shape: `[{"message", "errorCode"[, "fields"]}]`.
fn api_error(status: u16, code: &str, message: &str, fields: &[&str]) -> Answer {
    let mut error = json!({"message": message, "errorCode": code});
    if !fields.is_empty() {
        error["fields"] = json!(fields);
    }
    answer(status, json!([error]))
}

fn oauth_error(error: &str, description: &str) -> Answer {
    answer(
        400,
        json!({"error": error, "error_description": description}),
    )
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut org = shared.org.lock().unwrap_or_else(|e| e.into_inner());
    let reply = org.route(&shared.url, &method, &uri, &headers, &body);
    org.requests.push(Recorded {
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
        body,
        status: reply.status,
    });
    drop(org);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    if let Some(value) = reply
        .retry_after
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

impl Org {
    fn route(
        &mut self,
        url: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &str,
    ) -> Answer {
        let path = uri.path();
        if path == "/services/oauth2/token" {
            return self.token(url, method, headers, body);
        }
        let Some(rest) = path.strip_prefix("/services/data/") else {
            return api_error(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            );
        };
        if let Some(i) = self
            .failures
            .iter()
            .position(|f| f.method.as_ref().is_none_or(|m| m == method))
        {
            if let Some(f) = self.failures.remove(i) {
                return Answer {
                    status: f.status,
                    body: Some(f.body),
                    retry_after: f.retry_after,
                };
            }
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !bearer.is_some_and(|t| self.valid_tokens.iter().any(|v| v == t)) {
            return api_error(401, "INVALID_SESSION_ID", "Session expired or invalid", &[]);
        }
        let (version, resource) = rest.split_once('/').unwrap_or((rest, ""));
        let version_ok = version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(a, b)| {
                !a.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
        if !version_ok {
            return api_error(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            );
        }
        let q = || decode_pairs(uri.query().unwrap_or("")).remove("q");
        let segments: Vec<String> = resource.split('/').map(percent_decode).collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["query"] | ["query", ""]) => self.query(version, q()),
            ("GET", ["search"] | ["search", ""]) => self.search(version, q()),
            ("PATCH", ["sobjects", "Task", field, value]) => {
                self.upsert(field, value, headers, body)
            }
            _ => api_error(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            ),
        }
    }

    fn token(&mut self, url: &str, method: &Method, headers: &HeaderMap, body: &str) -> Answer {
        let form_encoded = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if method != Method::POST || !form_encoded {
            return oauth_error("invalid_request", "must use POST with a form body");
        }
        if let Some((status, body)) = self.token_failure.clone() {
            return answer(status, body);
        }
        let form = decode_pairs(body);
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return oauth_error("unsupported_grant_type", "grant type not supported");
        }
        if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return oauth_error("invalid_client", "invalid client credentials");
        }
        self.tokens_issued += 1;
        let token = format!("00DFAKE000000001!AQ0fake.token.{}", self.tokens_issued);
        self.valid_tokens.push(token.clone());
        answer(
            200,
            json!({
                "access_token": token,
                "signature": "ZmFrZSBzaWduYXR1cmU=",
                "scope": "api",
                "instance_url": url,
                "id": format!("{url}/id/00DFAKE000000001AAA/005FAKE000000001AAA"),
                "token_type": "Bearer",
                "issued_at": "1767225600000",
            }),
        )
    }

    fn query(&self, version: &str, q: Option<String>) -> Answer {
        let Some(q) = q else {
            return api_error(400, "MALFORMED_QUERY", "A query string is required", &[]);
        };
        let parsed = match soql::parse(&q) {
            Ok(p) => p,
            Err(e) => return api_error(400, "MALFORMED_QUERY", &e, &[]),
        };
        if !matches!(parsed.object.as_str(), "Contact" | "Lead") {
            let message = format!("sObject type '{}' is not supported.", parsed.object);
            return api_error(400, "INVALID_TYPE", &message, &[]);
        }
        let mut records = Vec::new();
        for person in self.people.iter().filter(|p| p.object == parsed.object) {
            match parsed.matches(person) {
                Ok(true) => records.push(person),
                Ok(false) => {}
                Err(e) => return api_error(400, "INVALID_FIELD", &e, &[]),
            }
        }
        records.truncate(parsed.limit.unwrap_or(usize::MAX));
        answer(
            200,
            json!({
                "totalSize": records.len(),
                "done": true,
                "records": records.iter().map(|p| record(version, p)).collect::<Vec<_>>(),
            }),
        )
    }

    /// SOSL, as far as phone searches go: `FIND {terms} IN PHONE FIELDS RETURNING Contact(...), Lead(...)`.
    /// The search index is taken to compare digits only, whatever the punctuation of the stored number.
    fn search(&self, version: &str, q: Option<String>) -> Answer {
        let malformed = |m: &str| api_error(400, "MALFORMED_SEARCH", m, &[]);
        let Some(q) = q else {
            return malformed("A search string is required");
        };
        let Some(rest) = q.strip_prefix("FIND {") else {
            return malformed("expected FIND {");
        };
        let Some((terms, rest)) = rest.split_once('}') else {
            return malformed("unterminated search term");
        };
        let Some(returning) = rest.trim_start().strip_prefix("IN PHONE FIELDS RETURNING ") else {
            return malformed("this fake searches phone fields only");
        };
        let terms: Vec<String> = terms
            .split(" OR ")
            .map(|t| t.trim().trim_matches('"').to_string())
            .collect();
        if terms
            .iter()
            .any(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()))
        {
            return malformed("this fake searches for digits only");
        }
        let digits = |v: &Option<String>| -> Option<String> {
            v.as_ref()
                .map(|v| v.chars().filter(char::is_ascii_digit).collect())
        };
        let mut found = Vec::new();
        for object in ["Contact", "Lead"] {
            let Some(start) = returning.find(&format!("{object}(")) else {
                continue;
            };
            let clause = &returning[start..];
            let clause = &clause[..clause.find(')').unwrap_or(clause.len())];
            let unconverted_only = clause.contains("IsConverted = false");
            found.extend(self.people.iter().filter(|p| {
                p.object == object
                    && !(unconverted_only && p.is_converted)
                    && [digits(&p.phone), digits(&p.mobile_phone)]
                        .into_iter()
                        .flatten()
                        .any(|d| terms.contains(&d))
            }));
        }
        answer(
            200,
            json!({"searchRecords": found.iter().map(|p| record(version, p)).collect::<Vec<_>>()}),
        )
    }

    fn upsert(&mut self, field: &str, value: &str, headers: &HeaderMap, body: &str) -> Answer {
        if field != EXTERNAL_ID_FIELD {
            let message =
                format!("Provided external ID field does not exist or is not accessible: {field}");
            return api_error(404, "NOT_FOUND", &message, &[]);
        }
        let json_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_body {
            return api_error(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Content-Type must be JSON",
                &[],
            );
        }
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
            return api_error(
                400,
                "JSON_PARSER_ERROR",
                "The body is not a JSON object",
                &[],
            );
        };
        if let Some(problem) = self.check_task_fields(&fields) {
            return problem;
        }
        if let Some(task) = self.tasks.iter_mut().find(|t| t.external_id == value) {
            if self.subtype_create_only && fields.contains_key("TaskSubtype") {
                return api_error(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "Unable to create/update fields: TaskSubtype. Please check the security settings of \
                     this field and verify that it is read/write for your profile or permission set.",
                    &["TaskSubtype"],
                );
            }
            task.fields.extend(fields);
            return Answer {
                status: 204,
                body: None,
                retry_after: None,
            };
        }
        self.tasks_created += 1;
        let id = format!("00TFAKE{:011}", self.tasks_created);
        self.tasks.push(Task {
            id: id.clone(),
            external_id: value.to_string(),
            fields,
        });
        answer(
            201,
            json!({"id": id, "success": true, "errors": [], "created": true}),
        )
    }

    /// What the Task object refuses: unknown or forbidden fields, values over a field's length, picklist
    /// values it does not have, WhoIds of nobody.
    fn check_task_fields(&self, fields: &Map<String, Value>) -> Option<Answer> {
        const STANDARD: &[&str] = &[
            "Subject",
            "Description",
            "Status",
            "TaskSubtype",
            "ActivityDate",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
            "WhoId",
            "WhatId",
            "Priority",
        ];
        for (key, value) in fields {
            if key == "Id" || key == EXTERNAL_ID_FIELD {
                let message = format!("{key} is not allowed in the body of an upsert");
                return Some(api_error(400, "INVALID_FIELD", &message, &[key]));
            }
            if !STANDARD.contains(&key.as_str()) && !CUSTOM_FIELDS.contains(&key.as_str()) {
                let message = format!("No such column '{key}' on sobject of type Task");
                return Some(api_error(400, "INVALID_FIELD", &message, &[]));
            }
            let max = match key.as_str() {
                "Subject" | "CallDisposition" => Some(255),
                "Description" => Some(32_000),
                k if CUSTOM_FIELDS.contains(&k) => Some(255),
                _ => None,
            };
            if let (Some(max), Some(text)) = (max, value.as_str()) {
                if text.chars().count() > max {
                    let message = format!("{key}: data value too large (max length={max})");
                    return Some(api_error(400, "STRING_TOO_LONG", &message, &[key]));
                }
            }
            let picklist: &[&str] = match key.as_str() {
                "CallType" => &["Inbound", "Internal", "Outbound"],
                "TaskSubtype" => &["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"],
                _ => &[],
            };
            if !picklist.is_empty() && !value.as_str().is_some_and(|v| picklist.contains(&v)) {
                let message = format!("{key}: bad value for restricted picklist field: {value}");
                return Some(api_error(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    &message,
                    &[key],
                ));
            }
            let well_formed = match key.as_str() {
                "ActivityDate" => value.as_str().is_some_and(is_date),
                "CallDurationInSeconds" => value
                    .as_i64()
                    .is_some_and(|d| (0..=99_999_999).contains(&d)),
                _ => true,
            };
            if !well_formed {
                let message = format!("Cannot deserialize {key} from {value}");
                return Some(api_error(400, "JSON_PARSER_ERROR", &message, &[]));
            }
        }
        if let Some(who) = fields.get("WhoId").and_then(Value::as_str) {
            if !self.people.iter().any(|p| p.id == who) {
                let message = format!("Name ID: id value of incorrect type: {who}");
                return Some(api_error(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    &message,
                    &["WhoId"],
                ));
            }
        }
        None
    }
}

fn record(version: &str, p: &Person) -> Value {
    json!({
        "attributes": {"type": p.object, "url": format!("/services/data/{version}/sobjects/{}/{}", p.object, p.id)},
        "Id": p.id,
    })
}

fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Just enough SOQL for customer lookups: `SELECT f, ... FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]]
/// [LIMIT n]`, conditions made of `=`, `!=`, `[NOT] IN (...)`, AND, OR, NOT and parentheses, string literals
/// with SOQL's escape sequences (anything else after a backslash is an error, as in SOQL).
mod soql {
    use super::Person;

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Word(String),
        Str(String),
        Num(u64),
        Open,
        Close,
        Comma,
        Eq,
        Ne,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Val {
        Str(String),
        Bool(bool),
        Null,
    }

    #[derive(Debug)]
    enum Expr {
        Or(Vec<Expr>),
        And(Vec<Expr>),
        Not(Box<Expr>),
        Cmp {
            field: String,
            ne: bool,
            value: Val,
        },
        In {
            field: String,
            not: bool,
            values: Vec<Val>,
        },
    }

    #[derive(Debug)]
    pub struct Query {
        pub object: String,
        pub limit: Option<usize>,
        filter: Option<Expr>,
    }

    impl Query {
        pub fn matches(&self, p: &Person) -> Result<bool, String> {
            match &self.filter {
                Some(e) => eval(e, p),
                None => Ok(true),
            }
        }
    }

    fn lex(q: &str) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        let mut chars = q.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_whitespace() => {}
                '(' => out.push(Tok::Open),
                ')' => out.push(Tok::Close),
                ',' => out.push(Tok::Comma),
                '=' => out.push(Tok::Eq),
                '!' if chars.next_if_eq(&'=').is_some() => out.push(Tok::Ne),
                '\'' => {
                    let mut s = String::new();
                    loop {
                        match chars.next() {
                            None => return Err("unterminated string literal".into()),
                            Some('\'') => break,
                            Some('\\') => s.push(match chars.next() {
                                Some('n' | 'N') => '\n',
                                Some('r' | 'R') => '\r',
                                Some('t' | 'T') => '\t',
                                Some('b' | 'B') => '\u{8}',
                                Some('f' | 'F') => '\u{c}',
                                Some(c @ ('"' | '\'' | '\\')) => c,
                                Some('u') => {
                                    let hex: String = chars.by_ref().take(4).collect();
                                    u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or("invalid unicode escape")?
                                }
                                other => {
                                    return Err(format!("invalid escape sequence \\{other:?}"))
                                }
                            }),
                            Some(c) => s.push(c),
                        }
                    }
                    out.push(Tok::Str(s));
                }
                c if c.is_ascii_digit() => {
                    let mut n = c.to_string();
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        n.push(d);
                    }
                    out.push(Tok::Num(n.parse().map_err(|_| "number too large")?));
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let mut w = c.to_string();
                    while let Some(d) =
                        chars.next_if(|d| d.is_ascii_alphanumeric() || *d == '_' || *d == '.')
                    {
                        w.push(d);
                    }
                    out.push(Tok::Word(w));
                }
                other => return Err(format!("unexpected character {other:?}")),
            }
        }
        Ok(out)
    }

    struct Parser {
        toks: Vec<Tok>,
        at: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Tok> {
            self.toks.get(self.at)
        }

        fn next(&mut self) -> Option<Tok> {
            let t = self.toks.get(self.at).cloned();
            self.at += 1;
            t
        }

        fn keyword(&mut self, word: &str) -> bool {
            let found = matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word));
            if found {
                self.at += 1;
            }
            found
        }

        fn expect_keyword(&mut self, word: &str) -> Result<(), String> {
            if self.keyword(word) {
                Ok(())
            } else {
                Err(format!("expected {word} at token {}", self.at))
            }
        }

        fn expect(&mut self, tok: Tok) -> Result<(), String> {
            match self.next() {
                Some(t) if t == tok => Ok(()),
                other => Err(format!("expected {tok:?}, found {other:?}")),
            }
        }

        fn word(&mut self) -> Result<String, String> {
            match self.next() {
                Some(Tok::Word(w)) => Ok(w),
                other => Err(format!("expected a name, found {other:?}")),
            }
        }

        fn value(&mut self) -> Result<Val, String> {
            match self.next() {
                Some(Tok::Str(s)) => Ok(Val::Str(s)),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Val::Bool(true)),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Val::Bool(false)),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Val::Null),
                other => Err(format!("expected a value, found {other:?}")),
            }
        }

        fn or(&mut self) -> Result<Expr, String> {
            let mut terms = vec![self.and()?];
            while self.keyword("OR") {
                terms.push(self.and()?);
            }
            Ok(if terms.len() == 1 {
                terms.remove(0)
            } else {
                Expr::Or(terms)
            })
        }

        fn and(&mut self) -> Result<Expr, String> {
            let mut terms = vec![self.unary()?];
            while self.keyword("AND") {
                terms.push(self.unary()?);
            }
            Ok(if terms.len() == 1 {
                terms.remove(0)
            } else {
                Expr::And(terms)
            })
        }

        fn unary(&mut self) -> Result<Expr, String> {
            if self.keyword("NOT") {
                return Ok(Expr::Not(Box::new(self.unary()?)));
            }
            if self.peek() == Some(&Tok::Open) {
                self.at += 1;
                let e = self.or()?;
                self.expect(Tok::Close)?;
                return Ok(e);
            }
            let field = self.word()?;
            match self.next() {
                Some(Tok::Eq) => Ok(Expr::Cmp {
                    field,
                    ne: false,
                    value: self.value()?,
                }),
                Some(Tok::Ne) => Ok(Expr::Cmp {
                    field,
                    ne: true,
                    value: self.value()?,
                }),
                Some(Tok::Word(w))
                    if w.eq_ignore_ascii_case("IN") || w.eq_ignore_ascii_case("NOT") =>
                {
                    let not = w.eq_ignore_ascii_case("NOT");
                    if not {
                        self.expect_keyword("IN")?;
                    }
                    self.expect(Tok::Open)?;
                    let mut values = vec![self.value()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.at += 1;
                        values.push(self.value()?);
                    }
                    self.expect(Tok::Close)?;
                    Ok(Expr::In { field, not, values })
                }
                other => Err(format!(
                    "expected an operator after {field}, found {other:?}"
                )),
            }
        }
    }

    pub fn parse(q: &str) -> Result<Query, String> {
        let mut p = Parser {
            toks: lex(q)?,
            at: 0,
        };
        p.expect_keyword("SELECT")?;
        p.word()?;
        while p.peek() == Some(&Tok::Comma) {
            p.at += 1;
            p.word()?;
        }
        p.expect_keyword("FROM")?;
        let object = p.word()?;
        let filter = if p.keyword("WHERE") {
            Some(p.or()?)
        } else {
            None
        };
        if p.keyword("ORDER") {
            p.expect_keyword("BY")?;
            p.word()?;
            let _ = p.keyword("ASC") || p.keyword("DESC");
        }
        let limit = if p.keyword("LIMIT") {
            match p.next() {
                Some(Tok::Num(n)) => Some(usize::try_from(n).map_err(|_| "LIMIT too large")?),
                other => return Err(format!("expected a number after LIMIT, found {other:?}")),
            }
        } else {
            None
        };
        if let Some(t) = p.peek() {
            return Err(format!("unexpected token {t:?}"));
        }
        Ok(Query {
            object,
            limit,
            filter,
        })
    }

    fn field(p: &Person, name: &str) -> Result<Val, String> {
        let text = |v: &Option<String>| v.clone().map_or(Val::Null, Val::Str);
        match (name, p.object) {
            ("Id", _) => Ok(Val::Str(p.id.clone())),
            ("Phone", _) => Ok(text(&p.phone)),
            ("MobilePhone", _) => Ok(text(&p.mobile_phone)),
            ("Email", _) => Ok(text(&p.email)),
            ("IsConverted", "Lead") => Ok(Val::Bool(p.is_converted)),
            _ => Err(format!("No such column '{name}' on entity '{}'", p.object)),
        }
    }

    /// SOQL compares text case-insensitively.
    fn equal(a: &Val, b: &Val) -> bool {
        match (a, b) {
            (Val::Str(a), Val::Str(b)) => a.to_lowercase() == b.to_lowercase(),
            (a, b) => a == b,
        }
    }

    fn eval(e: &Expr, p: &Person) -> Result<bool, String> {
        Ok(match e {
            Expr::Or(terms) => {
                let mut any = false;
                for t in terms {
                    any |= eval(t, p)?;
                }
                any
            }
            Expr::And(terms) => {
                let mut all = true;
                for t in terms {
                    all &= eval(t, p)?;
                }
                all
            }
            Expr::Not(inner) => !eval(inner, p)?,
            Expr::Cmp {
                field: f,
                ne,
                value,
            } => equal(&field(p, f)?, value) != *ne,
            Expr::In {
                field: f,
                not,
                values,
            } => {
                let v = field(p, f)?;
                values.iter().any(|x| equal(&v, x)) != *not
            }
        })
    }
}
