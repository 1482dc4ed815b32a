//! Zendesk Support sink: one ticket per engagement, found again by its `external_id` (the engagement id).
//!
//! The first message of an engagement creates the ticket: the summary is its first comment, an internal note
//! (`public: false`), and the customer, matched by phone or email, is the requester. A later message for the same
//! engagement adds an internal note with the current summary, unless the last note the sink wrote for that
//! engagement already shows the same summary (each note ends with a marker line carrying a fingerprint of it).
//! With `mode = "comment"`, an engagement without a ticket of its own becomes a note on the customer's newest
//! unsolved ticket instead. Every step is safe to repeat: lookups come first, and ticket creation carries the
//! message id as Zendesk's `Idempotency-Key`. See docs/sinks/zendesk.md.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::CallSummary;
use crate::config::{SinkConfig, SinkOptions, ZendeskAuth, ZendeskMode, ZendeskOptions};
use crate::delivery::http::{classify_status, describe, parse_retry_after};
use crate::delivery::sink::{AttemptResult, Message, Outcome, Sink};

/// Tag on every ticket the sink creates (channel and direction tags are added, `zcc_` prefixed).
const TAG: &str = "zoom_contact_center";
/// Start of the last line of every note the sink writes: `zcc-bridge: engagement {id} summary {fingerprint}`.
const MARKER: &str = "zcc-bridge: engagement";
/// Successful replies are parsed whole up to this size (a page of 100 comments); error bodies are read up to
/// `ERROR_CAP` to find Zendesk's error text, then clipped to the body limit for the attempt log.
const JSON_CAP: usize = 16 * 1024 * 1024;
const ERROR_CAP: usize = 64 * 1024;
/// Ticket statuses before `solved`: what "the customer's open ticket" means in comment mode.
const UNSOLVED: [&str; 4] = ["new", "open", "pending", "hold"];
/// Shorter numbers (extensions, short codes) would match far too many users with a suffix search.
const MIN_PHONE_DIGITS: usize = 7;
/// Zendesk's longest subject (characters).
const SUBJECT_MAX: usize = 150;
/// Longest error text kept from a Zendesk error body.
const ERROR_TEXT_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    auth: ZendeskAuth,
    mode: ZendeskMode,
    /// Extra tags on created tickets, as Zendesk stores them.
    tags: Vec<String>,
}

fn check_options(options: &ZendeskOptions) -> Result<Options, String> {
    let mut tags = Vec::new();
    for raw in &options.tags {
        let tag = tag(raw);
        if tag.is_empty() {
            return Err(format!("options.tags: {raw:?} is not a usable tag"));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(Options {
        auth: options.auth,
        mode: options.mode,
        tags,
    })
}

/// The API base, `https://{subdomain}.zendesk.com`, without a trailing slash (`/api/v2` is accepted and dropped).
fn base_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("url: must be http(s)://host, e.g. https://acme.zendesk.com".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: credentials go in username and token, not in the url".into());
    }
    let path = parsed.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/api/v2")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err("url: give the account's address only, e.g. https://acme.zendesk.com".into());
    }
    let mut base = parsed;
    base.set_path("");
    Ok(base.as_str().trim_end_matches('/').to_string())
}

/// The `Authorization` value: Basic `{email}/token:{api_token}` for an API token, Bearer for an OAuth token.
fn authorization(auth: ZendeskAuth, username: Option<&str>, token: &str) -> Result<String, String> {
    match auth {
        ZendeskAuth::Bearer => Ok(format!("Bearer {token}")),
        ZendeskAuth::Token => {
            let user = username.map(str::trim).filter(|u| !u.is_empty()).ok_or(
                "username: an API token needs the email address of the agent it belongs to",
            )?;
            // Accept the email with Zendesk's `/token` suffix already on it.
            let user = user.strip_suffix("/token").unwrap_or(user);
            if !user.contains('@') {
                return Err("username: the agent's email address, e.g. bridge@acme.com".into());
            }
            Ok(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}/token:{token}"))
            ))
        }
    }
}

/// A Zendesk tag: lowercase, letters, digits, `_` and `-` (Zendesk splits tags at spaces).
fn tag(raw: &str) -> String {
    let mapped: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    mapped.trim_matches('_').to_string()
}

/// The tags of a created ticket: ours, the channel and direction, then the configured ones.
fn tags(summary: &CallSummary, extra: &[String]) -> Vec<String> {
    let mut out = vec![TAG.to_string()];
    for facet in [&summary.channel, &summary.direction].into_iter().flatten() {
        let t = tag(facet);
        if !t.is_empty() {
            out.push(format!("zcc_{t}"));
        }
    }
    for t in extra {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// A users-search query for a phone number: its digits (no `+`), with a leading `*` so numbers stored in other
/// formats (`+1 415.555.0100`, `(415) 555-0100` when given without country code) still match, as Zendesk
/// documents for caller lookup. `None` for numbers too short to search by.
fn phone_query(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= MIN_PHONE_DIGITS).then(|| format!("phone:*{digits}"))
}

/// A users-search query for an email address; quoted (without quotes or backslashes inside) when it holds
/// anything the search syntax could read as an operator.
fn email_query(email: &str) -> Option<String> {
    let email = email.trim();
    if email.is_empty() {
        return None;
    }
    let plain = email
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@._+-'".contains(c));
    if plain && !email.starts_with('-') {
        return Some(format!("email:{email}"));
    }
    let cleaned: String = email
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    (!cleaned.trim().is_empty()).then(|| format!("email:\"{}\"", cleaned.trim()))
}

/// A fingerprint of the summary as shown: signed links lose their query (`expires`, `signature`), which changes
/// each time a record is rendered although the file is the same.
fn fingerprint(summary: &CallSummary) -> String {
    let text = summary.description();
    let mut hasher = Sha256::new();
    for line in text.lines() {
        for token in line.split_whitespace() {
            let stable = if token.starts_with("http://") || token.starts_with("https://") {
                token.split(['?', '#']).next().unwrap_or(token)
            } else {
                token
            };
            hasher.update(stable.as_bytes());
            hasher.update(b" ");
        }
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())[..16].to_string()
}

fn marker(engagement_id: &str, fingerprint: &str) -> String {
    format!("{MARKER} {engagement_id} summary {fingerprint}")
}

/// The note text: the summary, then the marker line. On someone else's ticket (comment mode) the subject leads.
fn note(summary: &CallSummary, fingerprint: &str, with_subject: bool) -> String {
    let mut text = String::new();
    if with_subject {
        text.push_str(&summary.subject);
        text.push_str("\n\n");
    }
    text.push_str(&summary.description());
    text.push_str("\n\n");
    text.push_str(&marker(&summary.engagement_id, fingerprint));
    text
}

/// At most `max` characters, the last one `…` when something was cut.
fn clip_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Who requests a created ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requester {
    /// A matched Zendesk user.
    User(u64),
    /// A customer known by email only: Zendesk finds or creates the user.
    New { name: String, email: String },
}

/// `POST /api/v2/tickets` body.
fn ticket_body(
    summary: &CallSummary,
    fingerprint: &str,
    requester: Option<&Requester>,
    extra_tags: &[String],
    followup_of: Option<u64>,
) -> Value {
    let mut ticket = json!({
        "external_id": summary.engagement_id,
        "subject": clip_chars(&summary.subject, SUBJECT_MAX),
        "comment": {"body": note(summary, fingerprint, false), "public": false},
        "tags": tags(summary, extra_tags),
    });
    match requester {
        Some(Requester::User(id)) => ticket["requester_id"] = json!(id),
        Some(Requester::New { name, email }) => {
            ticket["requester"] = json!({"name": name, "email": email})
        }
        None => {}
    }
    if let Some(closed) = followup_of {
        ticket["via_followup_source_id"] = json!(closed);
    }
    json!({ "ticket": ticket })
}

/// Zendesk's error body in words: `{"error": "RecordInvalid", "description": "...", "details": {field:
/// [{"description": ...}]}}`, `{"error": {"title", "message"}}` or `{"errors": [{"title", "detail"}]}`.
fn error_text(body: &Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    match body.get("error") {
        Some(Value::String(s)) => parts.push(s.clone()),
        Some(Value::Object(o)) => {
            for key in ["title", "message"] {
                if let Some(s) = o.get(key).and_then(Value::as_str) {
                    parts.push(s.to_string());
                }
            }
        }
        _ => {}
    }
    if let Some(d) = body.get("description").and_then(Value::as_str) {
        parts.push(d.to_string());
    }
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text: Vec<&str> = ["title", "detail"]
            .iter()
            .filter_map(|k| e.get(*k).and_then(Value::as_str))
            .collect();
        if !text.is_empty() {
            parts.push(text.join(": "));
        }
    }
    let mut text = parts.join(": ");
    if let Some(Value::Object(details)) = body.get("details") {
        let items: Vec<String> = details
            .iter()
            .flat_map(|(field, list)| {
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("description").and_then(Value::as_str))
                    .map(move |d| format!("{field}: {d}"))
            })
            .collect();
        if !items.is_empty() {
            text = format!("{text} ({})", items.join("; "));
        }
    }
    let text = text.trim().to_string();
    (!text.is_empty()).then(|| clip_chars(&text, ERROR_TEXT_MAX))
}

#[derive(Debug, Clone, Deserialize)]
struct Ticket {
    id: u64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    requester_id: Option<u64>,
}

impl Ticket {
    fn is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct User {
    id: u64,
    #[serde(default)]
    role: Option<String>,
}

/// Of the tickets carrying the engagement id (external ids need not be unique), the newest one not closed; when
/// all are closed, the newest (a follow-up is then created from it).
fn pick(tickets: &[Ticket]) -> Option<&Ticket> {
    tickets
        .iter()
        .filter(|t| !t.is("closed"))
        .max_by_key(|t| t.id)
        .or_else(|| tickets.iter().max_by_key(|t| t.id))
}

/// The fingerprint in the newest comment that carries this engagement's marker.
fn last_fingerprint(comments: &[Value], engagement_id: &str) -> Option<String> {
    let prefix = format!("{MARKER} {engagement_id} summary ");
    comments
        .iter()
        .filter_map(|c| {
            let id = c.get("id").and_then(Value::as_u64).unwrap_or(0);
            ["body", "plain_body"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(Value::as_str))
                .find_map(|text| {
                    let at = text.rfind(&prefix)?;
                    let print: String = text[at + prefix.len()..]
                        .chars()
                        .take_while(char::is_ascii_hexdigit)
                        .collect();
                    (!print.is_empty()).then_some(print)
                })
                .map(|print| (id, print))
        })
        .max_by_key(|(id, _)| *id)
        .map(|(_, print)| print)
}

/// A 2xx reply, parsed.
struct Reply {
    status: u16,
    json: Value,
    body: Vec<u8>,
}

pub struct ZendeskSink {
    base: String,
    authorization: HeaderValue,
    options: Options,
    client: reqwest::Client,
    body_limit: usize,
}

impl ZendeskSink {
    pub fn check(config: &SinkConfig) -> Result<(), String> {
        Self::settings(config).map(|_| ())
    }

    pub fn new(
        config: &SinkConfig,
        client: reqwest::Client,
        body_limit: usize,
    ) -> Result<Self, String> {
        let (base, authorization, options) = Self::settings(config)?;
        Ok(Self {
            base,
            authorization,
            options,
            client,
            body_limit,
        })
    }

    fn settings(config: &SinkConfig) -> Result<(String, HeaderValue, Options), String> {
        let err = |problem: String| format!("sink {:?}: {problem}", config.name);
        let base = base_url(&config.url).map_err(err)?;
        let SinkOptions::Zendesk(options) = &config.options else {
            return Err(err("options: not a zendesk sink's".into()));
        };
        let options = check_options(options).map_err(err)?;
        let token = config
            .token
            .as_ref()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                err("a zendesk sink needs token: an API token (with username = the agent's email), or an OAuth \
                     access token with options.auth = \"bearer\""
                    .into())
            })?;
        let value = authorization(options.auth, config.username.as_deref(), token).map_err(err)?;
        // The error of `from_str` is generic; it never echoes the value.
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| err("token: holds characters an HTTP header cannot carry".into()))?;
        header.set_sensitive(true);
        Ok((base, header, options))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
    }

    fn clip(&self, body: &[u8]) -> String {
        String::from_utf8_lossy(&body[..body.len().min(self.body_limit)]).into_owned()
    }

    /// Sends one request; a non-2xx status, a network error or an unreadable reply ends the attempt.
    async fn call(
        &self,
        step: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, AttemptResult> {
        let response = request
            .send()
            .await
            .map_err(|e| AttemptResult::network(format!("{step}: {}", describe(&e))))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        if classify_status(status) != Outcome::Delivered {
            // A cut-off error body still shows the status; the text is a bonus.
            let body = read_capped(response, ERROR_CAP).await.unwrap_or_default();
            return Err(self.failure(step, status, &body, retry_after));
        }
        let body = read_capped(response, JSON_CAP)
            .await
            .map_err(|e| AttemptResult::network(format!("{step}: {}", describe(&e))))?;
        match serde_json::from_slice(&body) {
            Ok(json) => Ok(Reply { status, json, body }),
            Err(_) => Err(AttemptResult {
                outcome: Outcome::Retry,
                status: Some(status),
                body: self.clip(&body),
                retry_after: None,
                error: Some(format!(
                    "{step}: HTTP {status} without the JSON Zendesk answers with (is url the Zendesk account?)"
                )),
            }),
        }
    }

    fn failure(
        &self,
        step: &str,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> AttemptResult {
        let mut result = AttemptResult::from_status(status, self.clip(body), retry_after);
        let text = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| error_text(&v))
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        let hint = match status {
            401 => {
                " (Zendesk refused the credentials: check username and token, or set options.auth = \"bearer\" \
                 for an OAuth access token)"
            }
            403 => " (the user lacks permission: the sink needs an agent or admin)",
            // Redirects are not followed (http:// to https://, a renamed subdomain).
            300..=399 => " (a redirect: url should be https://{subdomain}.zendesk.com)",
            _ => "",
        };
        result.error = Some(format!("{step}: HTTP {status}{text}{hint}"));
        result
    }

    fn tickets_in(reply: &Reply, step: &str) -> Result<Vec<Ticket>, AttemptResult> {
        let list = reply.json.get("tickets").cloned().unwrap_or(Value::Null);
        serde_json::from_value(list).map_err(|e| {
            AttemptResult::reject(format!("{step}: unexpected reply from Zendesk: {e}"))
        })
    }

    async fn sync(
        &self,
        message: &Message,
        summary: &CallSummary,
    ) -> Result<AttemptResult, AttemptResult> {
        let print = fingerprint(summary);
        let step = "find the engagement's ticket";
        let reply = self
            .call(
                step,
                self.request(Method::GET, "/api/v2/tickets")
                    .query(&[("external_id", summary.engagement_id.as_str())]),
            )
            .await?;
        let tickets = Self::tickets_in(&reply, step)?;
        if let Some(ticket) = pick(&tickets) {
            return self.add_note(message, ticket, summary, &print, false).await;
        }
        let requester = self.requester(summary).await?;
        if self.options.mode == ZendeskMode::Comment {
            if let Some(Requester::User(user)) = requester {
                if let Some(ticket) = self.newest_unsolved(user).await? {
                    return self.add_note(message, &ticket, summary, &print, true).await;
                }
            }
        }
        self.create(message, summary, &print, requester.as_ref(), None)
            .await
    }

    /// A note with the summary on `ticket`, unless the last one written for this engagement shows it already.
    async fn add_note(
        &self,
        message: &Message,
        ticket: &Ticket,
        summary: &CallSummary,
        print: &str,
        with_subject: bool,
    ) -> Result<AttemptResult, AttemptResult> {
        let comments = self
            .call(
                "read the ticket's comments",
                self.request(
                    Method::GET,
                    &format!("/api/v2/tickets/{}/comments", ticket.id),
                )
                .query(&[("sort_order", "desc"), ("per_page", "100")]),
            )
            .await?;
        let list = comments
            .json
            .get("comments")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if last_fingerprint(list, &summary.engagement_id).as_deref() == Some(print) {
            return Ok(AttemptResult::delivered(
                comments.status,
                format!("ticket {} already shows this summary", ticket.id),
            ));
        }
        if ticket.is("closed") {
            // Closed tickets take no more changes; Zendesk's way on is a follow-up ticket.
            let requester = ticket.requester_id.map(Requester::User);
            return self
                .create(message, summary, print, requester.as_ref(), Some(ticket.id))
                .await;
        }
        let body = json!({"ticket": {"comment": {"body": note(summary, print, with_subject), "public": false}}});
        let reply = self
            .call(
                "add a note to the ticket",
                self.request(Method::PUT, &format!("/api/v2/tickets/{}", ticket.id))
                    .json(&body),
            )
            .await?;
        Ok(AttemptResult::delivered(
            reply.status,
            self.clip(&reply.body),
        ))
    }

    async fn create(
        &self,
        message: &Message,
        summary: &CallSummary,
        print: &str,
        requester: Option<&Requester>,
        followup_of: Option<u64>,
    ) -> Result<AttemptResult, AttemptResult> {
        let body = ticket_body(summary, print, requester, &self.options.tags, followup_of);
        let mut request = self.request(Method::POST, "/api/v2/tickets").json(&body);
        // Stable across attempts: a create whose reply was lost is answered from Zendesk's record, not repeated.
        if let Ok(key) = HeaderValue::from_str(&message.id) {
            request = request.header("Idempotency-Key", key);
        }
        let reply = self.call("create the ticket", request).await?;
        Ok(AttemptResult::delivered(
            reply.status,
            self.clip(&reply.body),
        ))
    }

    /// The customer as a Zendesk user: by phone, else by email; an unmatched email becomes a new requester.
    async fn requester(&self, summary: &CallSummary) -> Result<Option<Requester>, AttemptResult> {
        if let Some(query) = summary.customer_phone.as_deref().and_then(phone_query) {
            if let Some(id) = self.search_user(&query).await? {
                return Ok(Some(Requester::User(id)));
            }
        }
        if let Some(email) = summary.customer_email.as_deref() {
            if let Some(query) = email_query(email) {
                if let Some(id) = self.search_user(&query).await? {
                    return Ok(Some(Requester::User(id)));
                }
                let email = email.trim().to_string();
                let name = summary
                    .customer_name
                    .clone()
                    .unwrap_or_else(|| email.clone());
                return Ok(Some(Requester::New { name, email }));
            }
        }
        Ok(None)
    }

    /// The first end user the search returns, else the first user (a colleague calling in).
    async fn search_user(&self, query: &str) -> Result<Option<u64>, AttemptResult> {
        let step = "search the customer";
        let reply = self
            .call(
                step,
                self.request(Method::GET, "/api/v2/users/search")
                    .query(&[("query", query)]),
            )
            .await?;
        let users: Vec<User> =
            serde_json::from_value(reply.json.get("users").cloned().unwrap_or(Value::Null))
                .map_err(|e| {
                    AttemptResult::reject(format!("{step}: unexpected reply from Zendesk: {e}"))
                })?;
        Ok(users
            .iter()
            .find(|u| u.role.as_deref() == Some("end-user"))
            .or(users.first())
            .map(|u| u.id))
    }

    async fn newest_unsolved(&self, user: u64) -> Result<Option<Ticket>, AttemptResult> {
        let step = "list the customer's tickets";
        let reply = self
            .call(
                step,
                self.request(
                    Method::GET,
                    &format!("/api/v2/users/{user}/tickets/requested"),
                )
                .query(&[
                    ("sort_by", "created_at"),
                    ("sort_order", "desc"),
                    ("per_page", "100"),
                ]),
            )
            .await?;
        let tickets = Self::tickets_in(&reply, step)?;
        Ok(tickets
            .into_iter()
            .filter(|t| t.status.as_deref().is_some_and(|s| UNSOLVED.contains(&s)))
            .max_by_key(|t| t.id))
    }
}

/// The body's first `cap` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() >= cap {
            body.truncate(cap);
            break;
        }
    }
    Ok(body)
}

#[async_trait]
impl Sink for ZendeskSink {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        if !message.is_engagement() {
            return AttemptResult::reject(format!(
                "a zendesk sink delivers engagement messages only, not {}",
                message.event_type
            ));
        }
        let record = match message.engagement() {
            Ok(record) => record,
            Err(e) => return AttemptResult::reject(e),
        };
        let summary = CallSummary::from_record(&record);
        if summary.engagement_id.trim().is_empty() {
            return AttemptResult::reject(
                "the record has no engagement id to file the ticket under",
            );
        }
        match self.sync(message, &summary).await {
            Ok(result) | Err(result) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SinkKind};

    fn summary() -> CallSummary {
        CallSummary {
            engagement_id: "eng-1".into(),
            subject: "Inbound voice engagement: Billing (+14155550100)".into(),
            channel: Some("voice".into()),
            direction: Some("inbound".into()),
            start_time: Some("2026-03-02T10:00:00Z".into()),
            end_time: Some("2026-03-02T10:05:30Z".into()),
            start_ms: Some(1_772_445_600_000),
            duration_seconds: Some(330),
            dispositions: vec!["Resolved".into()],
            notes: vec!["Customer asked about the invoice".into()],
            agents: vec!["Ada".into()],
            queues: vec!["Billing".into()],
            customer_phone: Some("+14155550100".into()),
            customer_email: None,
            customer_name: Some("Grace".into()),
            recording_links: vec![
                "https://bridge.example/media/recording/r1?expires=100&signature=abc".into(),
            ],
            transcript_links: vec![],
            voicemail_links: vec![],
        }
    }

    fn config(options: &[(&str, &str)]) -> SinkConfig {
        SinkConfig {
            deliver: vec!["engagement.completed".into()],
            concurrency: 1,
            timeout_seconds: 10,
            token: Some(Secret::new("tok-123")),
            username: Some("bridge@acme.com".into()),
            options: SinkOptions::from_pairs(SinkKind::Zendesk, options).expect("valid options"),
            ..SinkConfig::new("zd", SinkKind::Zendesk, "https://acme.zendesk.com")
        }
    }

    /// What a sink with these options gets: the configuration's typing first, then the sink's own check.
    fn checked(options: &[(&str, &str)]) -> Result<(), String> {
        let options = SinkOptions::from_pairs(SinkKind::Zendesk, options)?;
        ZendeskSink::check(&SinkConfig {
            options,
            ..config(&[])
        })
    }

    #[test]
    fn api_token_header_is_zendesks_documented_example() {
        // From Zendesk's "Security and authentication" page.
        let header = authorization(
            ZendeskAuth::Token,
            Some("jdoe@example.com"),
            "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",
        )
        .expect("header");
        assert_eq!(
            header,
            "Basic amRvZUBleGFtcGxlLmNvbS90b2tlbjo2d2lJQldiR2tCTW8xbVJETXVWd2t3MUVQc05rZVVqOTVQSXoyYWt2"
        );
        let suffixed = authorization(
            ZendeskAuth::Token,
            Some("jdoe@example.com/token"),
            "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",
        );
        assert_eq!(suffixed.as_deref(), Ok(header.as_str()));
        assert_eq!(
            authorization(ZendeskAuth::Bearer, None, "abc").as_deref(),
            Ok("Bearer abc")
        );
        assert!(authorization(ZendeskAuth::Token, None, "abc").is_err());
        assert!(authorization(ZendeskAuth::Token, Some("bridge"), "abc").is_err());
    }

    #[test]
    fn check_wants_credentials_a_base_url_and_known_options() {
        assert_eq!(ZendeskSink::check(&config(&[])), Ok(()));
        let mut c = config(&[]);
        c.token = None;
        assert!(ZendeskSink::check(&c).unwrap_err().contains("needs token"));
        let mut c = config(&[]);
        c.username = None;
        assert!(ZendeskSink::check(&c).unwrap_err().contains("username"));
        let mut c = config(&[("auth", "bearer")]);
        c.username = None;
        assert_eq!(ZendeskSink::check(&c), Ok(()));
        for url in [
            "ftp://acme.zendesk.com",
            "https://acme.zendesk.com/agent",
            "not a url",
            "https://u:p@acme.zendesk.com",
        ] {
            let mut c = config(&[]);
            c.url = url.into();
            assert!(ZendeskSink::check(&c).is_err(), "{url}");
        }
        assert!(checked(&[("mode", "merge")]).is_err());
        assert!(checked(&[("auth", "password")]).is_err());
        assert!(checked(&[("tags", "ok, ???")]).is_err());
        assert!(checked(&[("tag", "x")])
            .unwrap_err()
            .contains("unknown field"));
        let mut c = config(&[("auth", "bearer")]);
        c.token = Some(Secret::new("very-secret\ntoken"));
        let problem = ZendeskSink::check(&c).unwrap_err();
        assert!(!problem.contains("very-secret"), "{problem}");
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("https://acme.zendesk.com").as_deref(),
            Ok("https://acme.zendesk.com")
        );
        assert_eq!(
            base_url("https://acme.zendesk.com/").as_deref(),
            Ok("https://acme.zendesk.com")
        );
        assert_eq!(
            base_url("https://acme.zendesk.com/api/v2/").as_deref(),
            Ok("https://acme.zendesk.com")
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert!(base_url("https://acme.zendesk.com/?x=1").is_err());
    }

    #[test]
    fn options_parse() {
        let SinkOptions::Zendesk(options) =
            config(&[("mode", "comment"), ("tags", "VIP, Phone Support,vip")]).options
        else {
            panic!("not zendesk options")
        };
        let o = check_options(&options).expect("options");
        assert_eq!(o.mode, ZendeskMode::Comment);
        assert_eq!(o.auth, ZendeskAuth::Token);
        assert_eq!(o.tags, vec!["vip".to_string(), "phone_support".to_string()]);
    }

    #[test]
    fn search_queries_are_escaped() {
        assert_eq!(
            phone_query("+1 (415) 555-0100").as_deref(),
            Some("phone:*14155550100")
        );
        assert_eq!(
            phone_query("+14155550100").as_deref(),
            Some("phone:*14155550100")
        );
        assert_eq!(phone_query("1001"), None);
        assert_eq!(phone_query("anonymous"), None);
        assert_eq!(
            email_query(" jane.doe+zcc@example.com ").as_deref(),
            Some("email:jane.doe+zcc@example.com")
        );
        assert_eq!(
            email_query("o'brien@example.ie").as_deref(),
            Some("email:o'brien@example.ie")
        );
        assert_eq!(
            email_query("\"odd name\"@example.com").as_deref(),
            Some("email:\"odd name@example.com\"")
        );
        assert_eq!(
            email_query("a@b.com role:admin").as_deref(),
            Some("email:\"a@b.com role:admin\"")
        );
        assert_eq!(
            email_query("-x@example.com").as_deref(),
            Some("email:\"-x@example.com\"")
        );
        assert_eq!(email_query("\"\""), None);
        assert_eq!(email_query(""), None);
    }

    #[test]
    fn tags_name_channel_and_direction() {
        let s = summary();
        assert_eq!(
            tags(&s, &["vip".into(), TAG.into()]),
            vec!["zoom_contact_center", "zcc_voice", "zcc_inbound", "vip"]
        );
        assert_eq!(tag(" Voice Mail! "), "voice_mail");
        assert_eq!(tag("???"), "");
        let mut bare = s;
        bare.channel = None;
        bare.direction = Some("   ".into());
        assert_eq!(tags(&bare, &[]), vec!["zoom_contact_center"]);
    }

    #[test]
    fn ticket_body_is_an_internal_note_with_external_id_requester_and_tags() {
        let s = summary();
        let print = fingerprint(&s);
        let body = ticket_body(
            &s,
            &print,
            Some(&Requester::User(42)),
            &["vip".into()],
            None,
        );
        let t = &body["ticket"];
        assert_eq!(t["external_id"], "eng-1");
        assert_eq!(t["subject"], s.subject.as_str());
        assert_eq!(t["requester_id"], 42);
        assert!(t.get("requester").is_none());
        assert!(t.get("via_followup_source_id").is_none());
        assert_eq!(t["comment"]["public"], false);
        let text = t["comment"]["body"].as_str().expect("body");
        for needle in [
            "Disposition: Resolved",
            "- Customer asked about the invoice",
            "Recording: https://bridge.example/media/recording/r1?expires=100&signature=abc",
            &format!("zcc-bridge: engagement eng-1 summary {print}"),
        ] {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
        assert!(text.ends_with(&print));
        assert_eq!(
            t["tags"],
            json!(["zoom_contact_center", "zcc_voice", "zcc_inbound", "vip"])
        );

        let new = Requester::New {
            name: "Grace".into(),
            email: "grace@example.com".into(),
        };
        let body = ticket_body(&s, &print, Some(&new), &[], Some(7));
        assert_eq!(
            body["ticket"]["requester"],
            json!({"name": "Grace", "email": "grace@example.com"})
        );
        assert_eq!(body["ticket"]["via_followup_source_id"], 7);
        let body = ticket_body(&s, &print, None, &[], None);
        assert!(
            body["ticket"].get("requester_id").is_none()
                && body["ticket"].get("requester").is_none()
        );

        let mut long = s.clone();
        long.subject = "x".repeat(400);
        let body = ticket_body(&long, &print, None, &[], None);
        assert_eq!(
            body["ticket"]["subject"]
                .as_str()
                .map(|s| s.chars().count()),
            Some(SUBJECT_MAX)
        );
    }

    #[test]
    fn comment_mode_notes_lead_with_the_subject() {
        let s = summary();
        let text = note(&s, "abc", true);
        assert!(text.starts_with(&s.subject));
        assert!(text.ends_with("zcc-bridge: engagement eng-1 summary abc"));
        assert!(!note(&s, "abc", false).starts_with(&s.subject));
    }

    #[test]
    fn fingerprints_ignore_link_signatures_but_not_content() {
        let s = summary();
        let mut resigned = s.clone();
        resigned.recording_links =
            vec!["https://bridge.example/media/recording/r1?expires=999&signature=xyz".into()];
        assert_eq!(fingerprint(&s), fingerprint(&resigned));
        assert_eq!(fingerprint(&s).len(), 16);
        let mut more = s.clone();
        more.notes.push("Called back".into());
        assert_ne!(fingerprint(&s), fingerprint(&more));
        let mut other_file = s.clone();
        other_file.recording_links =
            vec!["https://bridge.example/media/recording/r2?expires=100".into()];
        assert_ne!(fingerprint(&s), fingerprint(&other_file));
    }

    #[test]
    fn the_newest_marked_comment_wins() {
        let comments = vec![
            json!({"id": 30, "body": "hello"}),
            json!({"id": 20, "body": "x\n\nzcc-bridge: engagement eng-1 summary bbbb"}),
            json!({"id": 10, "plain_body": "x\n\nzcc-bridge: engagement eng-1 summary aaaa"}),
            json!({"id": 40, "body": "zcc-bridge: engagement eng-10 summary cccc"}),
        ];
        assert_eq!(
            last_fingerprint(&comments, "eng-1").as_deref(),
            Some("bbbb")
        );
        assert_eq!(
            last_fingerprint(&comments, "eng-10").as_deref(),
            Some("cccc")
        );
        assert_eq!(last_fingerprint(&comments, "eng-2"), None);
        assert_eq!(last_fingerprint(&[], "eng-1"), None);
    }

    #[test]
    fn picks_the_newest_ticket_not_closed() {
        let t = |id, status: &str| Ticket {
            id,
            status: Some(status.into()),
            requester_id: None,
        };
        assert_eq!(
            pick(&[t(1, "open"), t(3, "closed"), t(2, "solved")]).map(|t| t.id),
            Some(2)
        );
        assert_eq!(
            pick(&[t(1, "closed"), t(3, "closed")]).map(|t| t.id),
            Some(3)
        );
        assert!(pick(&[]).is_none());
    }

    #[test]
    fn zendesk_errors_in_words() {
        let invalid = json!({"error": "RecordInvalid", "description": "Record validation errors",
            "details": {"status": [{"description": "Status: closed prevents ticket update"}]}});
        assert_eq!(
            error_text(&invalid).as_deref(),
            Some("RecordInvalid: Record validation errors (status: Status: closed prevents ticket update)")
        );
        assert_eq!(
            error_text(&json!({"error": "Couldn't authenticate you"})).as_deref(),
            Some("Couldn't authenticate you")
        );
        assert_eq!(
            error_text(
                &json!({"error": {"title": "Forbidden", "message": "You do not have access"}})
            )
            .as_deref(),
            Some("Forbidden: You do not have access")
        );
        assert_eq!(
            error_text(&json!({"errors": [{"code": "X", "title": "Bad", "detail": "very"}]}))
                .as_deref(),
            Some("Bad: very")
        );
        assert_eq!(error_text(&json!({"ok": true})), None);
        let long = error_text(&json!({"error": "e".repeat(2000)})).expect("text");
        assert_eq!(long.chars().count(), ERROR_TEXT_MAX);
        assert_eq!(clip_chars("abc", 3), "abc");
        assert_eq!(clip_chars("abcd", 3), "ab…");
    }
}
