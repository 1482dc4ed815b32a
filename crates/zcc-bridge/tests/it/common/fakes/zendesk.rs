//! A local Zendesk Support API, in memory, for the Zendesk sink's tests. Built from Zendesk's documented shapes:
//! `GET /api/v2/users/search?query=`, `GET /api/v2/tickets?external_id=`, `POST /api/v2/tickets` (with
//! `Idempotency-Key`), `PUT /api/v2/tickets/{id}` with `{"ticket": {"comment": {...}}}`,
//! `GET /api/v2/tickets/{id}/comments`, `GET /api/v2/users/{id}/tickets/requested`. Authentication is the API
//! token form (Basic `{email}/token:{token}`) or an OAuth Bearer token. Every request is recorded (method, path,
//! query, headers, JSON body), and failures can be programmed (the next N requests, or the next matching one).
//!
//! Not modelled: pagination (everything fits one page), search syntax beyond `phone:`, `email:` and plain text,
//! and what Zendesk does when an idempotency key is reused with another body (the stored reply is returned).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

/// The API user: an agent whose email and API token the sink is configured with.
pub const EMAIL: &str = "bridge@acme.example";
pub const API_TOKEN: &str = "zd-test-api-token-0123456789";
/// An OAuth access token the fake also accepts.
pub const OAUTH_TOKEN: &str = "zd-test-oauth-access-token";
/// The API user's id (requester of tickets created without one).
pub const AGENT_ID: u64 = 1;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

impl Recorded {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// `"GET /api/v2/tickets"`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A programmed failure: answer `status` (with `body` and `Retry-After`) instead of handling the request, or
/// after handling it (`after`: the work is done but the reply is lost).
#[derive(Debug, Clone)]
struct Failure {
    method: Option<String>,
    path: Option<String>,
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    after: bool,
}

impl Failure {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}

#[derive(Default)]
struct Inner {
    users: Vec<Value>,
    tickets: Vec<Value>,
    comments: HashMap<u64, Vec<Value>>,
    next_id: u64,
    clock: i64,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
    idempotent: HashMap<String, (u16, Value)>,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Strictly increasing timestamps, a second apart.
    fn now(&mut self) -> String {
        self.clock += 1;
        chrono::DateTime::from_timestamp(1_767_225_600 + self.clock, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    fn user(&self, id: u64) -> Option<&Value> {
        self.users.iter().find(|u| u["id"] == id)
    }

    fn ticket_mut(&mut self, id: u64) -> Option<&mut Value> {
        self.tickets.iter_mut().find(|t| t["id"] == id)
    }

    fn add_user(
        &mut self,
        name: &str,
        email: Option<&str>,
        phone: Option<&str>,
        role: &str,
    ) -> u64 {
        let id = self.id();
        let now = self.now();
        self.users.push(json!({
            "id": id, "url": format!("https://acme.zendesk.com/api/v2/users/{id}.json"), "name": name,
            "email": email, "phone": phone, "role": role, "active": true, "created_at": now, "updated_at": now,
        }));
        id
    }

    fn add_comment(&mut self, ticket: u64, body: &str, public: bool, author: u64) -> Value {
        let id = self.id();
        let now = self.now();
        let comment = json!({
            "id": id, "type": "Comment", "author_id": author, "body": body, "plain_body": body,
            "public": public, "attachments": [], "created_at": now,
        });
        self.comments
            .entry(ticket)
            .or_default()
            .push(comment.clone());
        if let Some(t) = self.ticket_mut(ticket) {
            t["updated_at"] = json!(now);
        }
        comment
    }
}

/// A running fake; the server lives as long as the test's runtime.
#[derive(Clone)]
pub struct FakeZendesk {
    /// `http://127.0.0.1:{port}`: the sink's `url`.
    pub url: String,
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeZendesk {
    /// Starts on 127.0.0.1, port 0, with the API user (an agent, id [`AGENT_ID`]).
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let id = lock(&inner).add_user("Bridge", Some(EMAIL), None, "agent");
        assert_eq!(id, AGENT_ID);
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake zendesk");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            addr,
            inner,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// A user; `role` is `end-user`, `agent` or `admin`.
    pub fn add_user(
        &self,
        name: &str,
        email: Option<&str>,
        phone: Option<&str>,
        role: &str,
    ) -> u64 {
        self.lock().add_user(name, email, phone, role)
    }

    /// A ticket requested by `requester`, with a first public comment.
    pub fn add_ticket(
        &self,
        requester: u64,
        subject: &str,
        status: &str,
        external_id: Option<&str>,
    ) -> u64 {
        let mut inner = self.lock();
        let id = inner.id();
        let now = inner.now();
        inner.tickets.push(json!({
            "id": id, "url": format!("https://acme.zendesk.com/api/v2/tickets/{id}.json"),
            "external_id": external_id, "subject": subject, "raw_subject": subject, "description": subject,
            "status": status, "requester_id": requester, "submitter_id": requester, "assignee_id": null,
            "tags": [], "via": {"channel": "email"}, "created_at": now, "updated_at": now,
        }));
        inner.add_comment(id, subject, true, requester);
        id
    }

    pub fn set_status(&self, ticket: u64, status: &str) {
        if let Some(t) = self.lock().ticket_mut(ticket) {
            t["status"] = json!(status);
        }
    }

    /// All tickets, oldest first.
    pub fn tickets(&self) -> Vec<Value> {
        self.lock().tickets.clone()
    }

    pub fn ticket(&self, id: u64) -> Option<Value> {
        self.lock().tickets.iter().find(|t| t["id"] == id).cloned()
    }

    /// A ticket's comments, oldest first.
    pub fn comments(&self, ticket: u64) -> Vec<Value> {
        self.lock()
            .comments
            .get(&ticket)
            .cloned()
            .unwrap_or_default()
    }

    pub fn users(&self) -> Vec<Value> {
        self.lock().users.clone()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests so far, forgetting them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.lock().requests)
    }

    fn push(&self, failure: Failure) {
        self.lock().failures.push_back(failure);
    }

    /// The next `n` requests, whatever they are, get `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        for _ in 0..n {
            self.push(Failure {
                method: None,
                path: None,
                status,
                body: json!({"error": "ServiceUnavailable", "description": "Try again later"}),
                retry_after: None,
                after: false,
            });
        }
    }

    /// The next request gets 429 with `Retry-After: {seconds}`, as Zendesk's rate limiter answers.
    pub fn rate_limit_next(&self, seconds: u64) {
        self.push(Failure {
            method: None,
            path: None,
            status: 429,
            body: json!({"error": "TooManyRequests", "description": "Rate limit exceeded"}),
            retry_after: Some(seconds),
            after: false,
        });
    }

    /// The next `method path` request gets `status` with `body`.
    pub fn fail_when(&self, method: &str, path: &str, status: u16, body: Value) {
        self.push(Failure {
            method: Some(method.into()),
            path: Some(path.into()),
            status,
            body,
            retry_after: None,
            after: false,
        });
    }

    /// The next `method path` request is carried out, but answered with `status` (a reply lost on the way).
    pub fn lose_reply(&self, method: &str, path: &str, status: u16) {
        self.push(Failure {
            method: Some(method.into()),
            path: Some(path.into()),
            status,
            body: json!({"error": "GatewayTimeout"}),
            retry_after: None,
            after: true,
        });
    }
}

fn lock(inner: &Arc<Mutex<Inner>>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn not_found() -> Response {
    reply(
        404,
        json!({"error": "RecordNotFound", "description": "Not found"}),
    )
}

fn invalid(field: &str, description: &str) -> Response {
    reply(
        422,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
               "details": {field: [{"description": description, "error": "InvalidValue"}]}}),
    )
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `Basic base64({EMAIL}/token:{API_TOKEN})` or `Bearer {OAUTH_TOKEN}`.
fn authorised(header: Option<&str>) -> bool {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{API_TOKEN}"))
    );
    header.is_some_and(|h| h == basic || h == format!("Bearer {OAUTH_TOKEN}"))
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> = reqwest::Url::parse(&format!("http://fake{}", parts.uri))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let recorded = Recorded {
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        body,
    };

    let mut inner = lock(&inner);
    inner.requests.push(recorded.clone());
    let failure = inner
        .failures
        .iter()
        .position(|f| f.matches(&method, &path))
        .and_then(|at| inner.failures.remove(at));
    if let Some(f) = failure.as_ref().filter(|f| !f.after) {
        let mut response = reply(f.status, f.body.clone());
        if let Some(seconds) = f.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        return response;
    }
    if !authorised(recorded.header("authorization")) {
        return reply(401, json!({"error": "Couldn't authenticate you"}));
    }
    let response = route(&mut inner, &recorded);
    match failure {
        Some(f) => reply(f.status, f.body),
        None => response,
    }
}

fn route(inner: &mut Inner, r: &Recorded) -> Response {
    let segments: Vec<&str> = r
        .path
        .trim_start_matches("/api/v2/")
        .trim_end_matches(".json")
        .split('/')
        .collect();
    let id = |s: &str| s.parse::<u64>().ok();
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["users", "search"]) => search_users(inner, r.query("query").unwrap_or("")),
        ("GET", ["users", user, "tickets", "requested"]) => match id(user) {
            Some(user) => requested(inner, user, r.query("sort_order") == Some("desc")),
            None => not_found(),
        },
        ("GET", ["tickets"]) => {
            let tickets: Vec<Value> = inner
                .tickets
                .iter()
                .filter(|t| r.query("external_id").is_none_or(|e| t["external_id"] == e))
                .cloned()
                .collect();
            let count = tickets.len();
            reply(
                200,
                json!({"tickets": tickets, "next_page": null, "previous_page": null, "count": count}),
            )
        }
        ("POST", ["tickets"]) => create_ticket(inner, r),
        ("GET", ["tickets", ticket]) => {
            match id(ticket).and_then(|t| inner.tickets.iter().find(|x| x["id"] == t)) {
                Some(t) => reply(200, json!({ "ticket": t })),
                None => not_found(),
            }
        }
        ("PUT", ["tickets", ticket]) => match id(ticket) {
            Some(ticket) => update_ticket(inner, ticket, r),
            None => not_found(),
        },
        ("GET", ["tickets", ticket, "comments"]) => match id(ticket) {
            Some(ticket) if inner.tickets.iter().any(|t| t["id"] == ticket) => {
                let mut comments = inner.comments.get(&ticket).cloned().unwrap_or_default();
                if r.query("sort_order") == Some("desc") {
                    comments.reverse();
                }
                let count = comments.len();
                reply(
                    200,
                    json!({"comments": comments, "next_page": null, "previous_page": null, "count": count}),
                )
            }
            _ => not_found(),
        },
        _ => reply(
            404,
            json!({"error": "InvalidEndpoint", "description": "Not found"}),
        ),
    }
}

/// `phone:[*]digits` (a leading `*` matches numbers ending so), `email:value` (quotes allowed), else a name or
/// email containing the text.
fn search_users(inner: &Inner, query: &str) -> Response {
    let query = query.trim();
    let users: Vec<Value> = inner
        .users
        .iter()
        .filter(|u| {
            if let Some(phone) = query.strip_prefix("phone:") {
                let wanted = digits(phone);
                let have = digits(u["phone"].as_str().unwrap_or(""));
                !wanted.is_empty()
                    && !have.is_empty()
                    && if phone.trim().starts_with('*') {
                        have.ends_with(&wanted) || wanted.ends_with(&have)
                    } else {
                        have == wanted
                    }
            } else if let Some(email) = query.strip_prefix("email:") {
                let email = email.trim().trim_matches('"');
                u["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            } else {
                let text = query.to_lowercase();
                ["name", "email"].iter().any(|k| {
                    u[*k]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&text))
                })
            }
        })
        .cloned()
        .collect();
    let count = users.len();
    reply(
        200,
        json!({"users": users, "next_page": null, "previous_page": null, "count": count}),
    )
}

fn requested(inner: &Inner, user: u64, descending: bool) -> Response {
    if inner.user(user).is_none() {
        return not_found();
    }
    let mut tickets: Vec<Value> = inner
        .tickets
        .iter()
        .filter(|t| t["requester_id"] == user)
        .cloned()
        .collect();
    if descending {
        tickets.reverse();
    }
    let count = tickets.len();
    reply(
        200,
        json!({"tickets": tickets, "next_page": null, "previous_page": null, "count": count}),
    )
}

fn comment_text(comment: &Value) -> Option<String> {
    ["body", "html_body"]
        .iter()
        .filter_map(|k| comment[*k].as_str())
        .find(|s| !s.trim().is_empty())
        .map(str::to_string)
}

fn create_ticket(inner: &mut Inner, r: &Recorded) -> Response {
    let key = r.header("idempotency-key").map(str::to_string);
    if let Some((status, body)) = key.as_ref().and_then(|k| inner.idempotent.get(k)) {
        let mut response = reply(*status, body.clone());
        response
            .headers_mut()
            .insert("x-idempotency-lookup", HeaderValue::from_static("hit"));
        return response;
    }
    let Some(ticket) = r
        .body
        .as_ref()
        .and_then(|b| b.get("ticket"))
        .filter(|t| t.is_object())
    else {
        return reply(
            400,
            json!({"error": "InvalidValue", "description": "ticket is missing"}),
        );
    };
    let Some(text) = ticket.get("comment").and_then(comment_text) else {
        return invalid("description", "Description: cannot be blank");
    };
    let requester = if let Some(id) = ticket.get("requester_id") {
        match id.as_u64().filter(|id| inner.user(*id).is_some()) {
            Some(id) => id,
            None => return invalid("requester", "Requester: is invalid"),
        }
    } else if let Some(new) = ticket.get("requester") {
        let Some(email) = new["email"].as_str() else {
            return invalid("requester", "Requester: Email is invalid");
        };
        let existing = inner
            .users
            .iter()
            .find(|u| {
                u["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .and_then(|u| u["id"].as_u64());
        match existing {
            Some(id) => id,
            None => {
                let name = new["name"].as_str().unwrap_or(email).to_string();
                inner.add_user(&name, Some(email), None, "end-user")
            }
        }
    } else {
        AGENT_ID
    };
    let followup = ticket.get("via_followup_source_id").and_then(Value::as_u64);
    if let Some(source) = followup {
        let closed = inner
            .tickets
            .iter()
            .any(|t| t["id"] == source && t["status"] == "closed");
        if !closed {
            return invalid("via_followup_source_id", "is not a closed ticket");
        }
    }
    let public = ticket["comment"]["public"].as_bool().unwrap_or(true);
    let id = inner.id();
    let now = inner.now();
    let subject = ticket["subject"].as_str().unwrap_or("").to_string();
    let created = json!({
        "id": id, "url": format!("https://acme.zendesk.com/api/v2/tickets/{id}.json"),
        "external_id": ticket.get("external_id").cloned().unwrap_or(Value::Null),
        "subject": subject, "raw_subject": subject, "description": text, "status": "new",
        "requester_id": requester, "submitter_id": AGENT_ID, "assignee_id": null,
        "tags": ticket.get("tags").cloned().unwrap_or(json!([])),
        "via": {"channel": "api"}, "followup_source_id": followup, "created_at": now, "updated_at": now,
    });
    inner.tickets.push(created.clone());
    inner.add_comment(id, &text, public, AGENT_ID);
    let body = json!({ "ticket": created });
    if let Some(key) = key {
        inner.idempotent.insert(key, (201, body.clone()));
    }
    let mut response = reply(201, body);
    if let Ok(location) = HeaderValue::from_str(&format!(
        "https://acme.zendesk.com/api/v2/tickets/{id}.json"
    )) {
        response.headers_mut().insert("location", location);
    }
    response
        .headers_mut()
        .insert("x-idempotency-lookup", HeaderValue::from_static("miss"));
    response
}

fn update_ticket(inner: &mut Inner, id: u64, r: &Recorded) -> Response {
    let Some(current) = inner.tickets.iter().find(|t| t["id"] == id).cloned() else {
        return not_found();
    };
    if current["status"] == "closed" {
        return invalid("status", "Status: closed prevents ticket update");
    }
    let Some(changes) = r
        .body
        .as_ref()
        .and_then(|b| b.get("ticket"))
        .filter(|t| t.is_object())
    else {
        return reply(
            400,
            json!({"error": "InvalidValue", "description": "ticket is missing"}),
        );
    };
    let mut events = Vec::new();
    if let Some(comment) = changes.get("comment") {
        let Some(text) = comment_text(comment) else {
            return invalid("comment", "Comment: cannot be blank");
        };
        let public = comment["public"].as_bool().unwrap_or(true);
        let added = inner.add_comment(id, &text, public, AGENT_ID);
        events.push(json!({"id": added["id"], "type": "Comment", "body": text, "public": public}));
    }
    if let Some(status) = changes.get("status").and_then(Value::as_str) {
        if let Some(t) = inner.ticket_mut(id) {
            t["status"] = json!(status);
        }
    }
    let audit_id = inner.id();
    let now = inner.now();
    let ticket = inner.ticket_mut(id).map(|t| {
        t["updated_at"] = json!(now);
        t.clone()
    });
    reply(
        200,
        json!({"ticket": ticket, "audit": {"id": audit_id, "ticket_id": id, "author_id": AGENT_ID,
               "created_at": now, "events": events}}),
    )
}
