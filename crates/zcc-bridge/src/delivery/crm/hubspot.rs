//! The HubSpot sink: one Call engagement per Zoom Contact Center engagement, written through the CRM v3 objects
//! API with a private app access token (`Authorization: Bearer`), and associated with the contact found by the
//! customer's phone number or email address.
//!
//! HubSpot's create is not idempotent, so the call is first looked up by a custom call property holding the
//! engagement id (`id_property`, default `zcc_engagement_id`, created by the HubSpot admin): found, it is updated
//! (`PATCH`); not found, it is created (`POST`, with the contact association inline). HubSpot's search is
//! eventually consistent (a call created seconds ago may not be found yet), so the sink also remembers the call
//! ids it wrote. `docs/sinks/hubspot.md` has the setup and what was and was not confirmed against HubSpot's docs.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use super::CallSummary;
use crate::config::{BodyFormat, SinkConfig, SinkOptions};
use crate::core::EngagementRecord;
use crate::delivery::http::{classify_status, describe, parse_retry_after, read_body};
use crate::delivery::sink::{AttemptResult, Message, Outcome, Sink};

/// The API base when `url` is empty.
pub const DEFAULT_URL: &str = "https://api.hubapi.com";
/// The custom call property that holds the engagement id, unless `id_property` names another.
pub const DEFAULT_ID_PROPERTY: &str = "zcc_engagement_id";
/// HubSpot-defined association type of call → contact.
pub const CALL_TO_CONTACT: u32 = 194;
const DEFAULT_PHONE_PROPERTIES: [&str; 2] = ["phone", "mobilephone"];
/// HubSpot's search takes at most five filter groups (OR-ed); email takes one of them.
const MAX_PHONE_PROPERTIES: usize = 4;
/// Successful responses are parsed, so they are read further than the logged body limit.
const SUCCESS_BODY_LIMIT: usize = 1 << 20;
/// Remembered engagement → call ids; past this the memory starts over (search still finds older calls).
const KNOWN_CALLS_LIMIT: usize = 10_000;
/// Text properties hold at most 65,536 characters; notes are cut well before.
const MAX_BODY_CHARS: usize = 60_000;
const SCOPES_HINT: &str =
    "the private app needs the crm.objects.contacts.read and crm.objects.contacts.write scopes";

/// The sink's settings, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    base: Url,
    id_property: String,
    /// (Zoom disposition name or id, lowercased; HubSpot call outcome GUID).
    dispositions: Vec<(String, String)>,
    phone_properties: Vec<String>,
    html_body: bool,
}

impl Settings {
    /// The settings of `config`; errors name the setting but never echo the token or the URL.
    pub fn from_config(config: &SinkConfig) -> Result<Self, String> {
        let at = |m: String| format!("sink {:?}: {m}", config.name);
        match &config.token {
            Some(t) if !t.expose().trim().is_empty() => {
                if HeaderValue::from_str(&format!("Bearer {}", t.expose().trim())).is_err() {
                    return Err(at(
                        "`token` has characters an HTTP header cannot carry".into()
                    ));
                }
            }
            _ => {
                return Err(at(format!(
                    "a hubspot sink needs `token`: a private app access token ({SCOPES_HINT})"
                )))
            }
        }
        let base = parse_base(&config.url).map_err(at)?;
        let SinkOptions::Hubspot(options) = &config.options else {
            return Err(at("options: not a hubspot sink's".into()));
        };
        let id_property = match options.id_property.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_ID_PROPERTY,
            Some(name) => name,
        };
        if !is_property_name(id_property) {
            return Err(at(format!(
                "options.id_property {id_property:?} is not a HubSpot property internal name"
            )));
        }
        let dispositions = check_disposition_map(&options.disposition_map).map_err(at)?;
        let phone_properties = match &options.contact_phone_properties {
            Some(names) => {
                if let Some(bad) = names.iter().find(|n| !is_property_name(n)) {
                    return Err(at(format!(
                        "options.contact_phone_properties: {bad:?} is not a property internal name"
                    )));
                }
                if names.len() > MAX_PHONE_PROPERTIES {
                    return Err(at(format!(
                        "options.contact_phone_properties: at most {MAX_PHONE_PROPERTIES} properties \
                         (HubSpot's search takes five filter groups, one is the email)"
                    )));
                }
                names.clone()
            }
            None => DEFAULT_PHONE_PROPERTIES
                .iter()
                .map(|p| p.to_string())
                .collect(),
        };
        let html_body = options.body_format == BodyFormat::Html;
        Ok(Self {
            base,
            id_property: id_property.to_string(),
            dispositions,
            phone_properties,
            html_body,
        })
    }
}

/// The API base: `url`, or HubSpot's when empty. Credentials, queries and fragments have no place in it.
fn parse_base(url: &str) -> Result<Url, String> {
    let url = match url.trim() {
        "" => DEFAULT_URL,
        u => u,
    };
    let parsed = Url::parse(url).map_err(|e| format!("url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(
            "url: the API base must be an http(s) URL such as https://api.hubapi.com".into(),
        );
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: credentials do not belong in the URL; the token goes in `token`".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("url: the API base takes no query or fragment".into());
    }
    Ok(parsed)
}

/// A HubSpot property internal name: a letter, then letters, digits and underscores.
fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 100
}

/// Zoom disposition (name or id) → HubSpot call outcome: names lowercased, GUIDs checked.
fn check_disposition_map(map: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (name, guid) in map {
        if name.is_empty() {
            return Err(format!(
                "options.disposition_map: {name:?}={guid:?} names no disposition"
            ));
        }
        if !is_guid(guid) {
            return Err(format!(
                "options.disposition_map: {guid:?} (for {name:?}) is not a HubSpot call outcome GUID"
            ));
        }
        out.push((name.to_lowercase(), guid.to_ascii_lowercase()));
    }
    Ok(out)
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// HubSpot's `hs_call_direction`.
pub fn hubspot_direction(direction: Option<&str>) -> Option<&'static str> {
    match direction?.trim().to_ascii_lowercase().as_str() {
        "inbound" => Some("INBOUND"),
        "outbound" => Some("OUTBOUND"),
        _ => None,
    }
}

/// `hs_call_duration` is in milliseconds.
pub fn duration_ms(seconds: Option<i64>) -> Option<i64> {
    seconds
        .filter(|s| *s >= 0)
        .and_then(|s| s.checked_mul(1000))
}

/// The forms a number may be stored in on a contact: `phone` is free text unless the portal validates it (then
/// E.164, `+14155550100`). Search matches exactly, so the likely spellings are all asked for.
pub fn phone_variants(phone: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: String| {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    };
    let given = phone.trim();
    push(given.to_string());
    let digits: String = given.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return out;
    }
    if given.starts_with('+') {
        push(format!("+{digits}"));
    }
    push(digits.clone());
    // North American numbers are often typed without the country code.
    if digits.len() == 11 && digits.starts_with('1') {
        let n = &digits[1..];
        push(n.to_string());
        push(format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..]));
        push(format!("{}-{}-{}", &n[..3], &n[3..6], &n[6..]));
    }
    out
}

/// The contact search for the customer: phone variants on each phone property, or the email, as OR-ed groups.
pub fn contact_search(settings: &Settings, summary: &CallSummary) -> Option<Value> {
    let mut groups = Vec::new();
    if let Some(phone) = summary.customer_phone.as_deref() {
        let values = phone_variants(phone);
        if !values.is_empty() {
            for property in &settings.phone_properties {
                groups.push(json!({"filters": [{"propertyName": property, "operator": "IN", "values": values}]}));
            }
        }
    }
    if let Some(email) = summary
        .customer_email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        groups.push(json!({"filters": [{"propertyName": "email", "operator": "EQ", "value": email.to_lowercase()}]}));
    }
    if groups.is_empty() {
        return None;
    }
    // HubSpot's guides write `sorts` as objects, its OpenAPI schema as strings (and marks `sorts` and `after`
    // required): an empty `sorts` and the first page satisfy both. The oldest of the matches is picked here
    // (`oldest`), so duplicates resolve to the same contact every time.
    Some(json!({
        "filterGroups": groups,
        "properties": ["email", "phone", "mobilephone", "createdate"],
        "sorts": [],
        "after": "0",
        "limit": CONTACT_SEARCH_LIMIT,
    }))
}

/// Matches read per contact search: the oldest of them is the contact (more duplicates than this are unlikely).
const CONTACT_SEARCH_LIMIT: u64 = 100;

/// The oldest search result (by `createdate`, then id): the same contact every time.
fn oldest(json: &Value) -> Option<String> {
    let results = json.get("results")?.as_array()?;
    results
        .iter()
        .filter_map(|r| {
            let id = object_id(r)?;
            let created = r
                .pointer("/properties/createdate")
                .and_then(Value::as_str)
                .map(str::to_string);
            // Numeric ids compare as numbers (HubSpot's ids grow with time).
            let numeric = id.parse::<u64>().unwrap_or(u64::MAX);
            Some(((created.is_none(), created, numeric, id.clone()), id))
        })
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, id)| id)
}

/// The call search by engagement id.
pub fn call_search(settings: &Settings, engagement_id: &str) -> Value {
    json!({
        "filterGroups": [{"filters": [{
            "propertyName": settings.id_property, "operator": "EQ", "value": engagement_id,
        }]}],
        "properties": [settings.id_property],
        "sorts": [],
        "after": "0",
        "limit": 1,
    })
}

/// The call's properties. `fallback_ms` stands in for `hs_timestamp` (required) when the start is unknown.
pub fn call_properties(
    settings: &Settings,
    summary: &CallSummary,
    record: &EngagementRecord,
    fallback_ms: i64,
) -> Map<String, Value> {
    let mut p = Map::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), Value::String(v));
    };
    let end_ms = summary
        .end_time
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let timestamp = summary.start_ms.or(end_ms).unwrap_or(fallback_ms);
    set("hs_timestamp", timestamp.to_string());
    set(&settings.id_property, summary.engagement_id.clone());
    set("hs_call_title", summary.subject.clone());
    set(
        "hs_call_body",
        call_body(&summary.description(), settings.html_body),
    );
    set("hs_call_status", "COMPLETED".into());
    let direction = hubspot_direction(summary.direction.as_deref());
    if let Some(d) = direction {
        set("hs_call_direction", d.into());
    }
    if let Some(ms) = duration_ms(summary.duration_seconds) {
        set("hs_call_duration", ms.to_string());
    }
    if let Some(phone) = summary.customer_phone.as_deref() {
        match direction {
            Some("INBOUND") => set("hs_call_from_number", phone.to_string()),
            Some("OUTBOUND") => set("hs_call_to_number", phone.to_string()),
            _ => {}
        }
    }
    // HubSpot takes only HTTPS recording URLs; other links stay in the body.
    if let Some(link) = summary.recording_links.iter().find(|l| {
        l.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }) {
        set("hs_call_recording_url", link.clone());
    }
    if let Some(guid) = disposition_guid(settings, record) {
        set("hs_call_disposition", guid);
    }
    p
}

/// The outcome GUID of the latest saved disposition that the map names (by id or name).
fn disposition_guid(settings: &Settings, record: &EngagementRecord) -> Option<String> {
    record.dispositions.iter().rev().find_map(|d| {
        let id = d.disposition_id.to_lowercase();
        let name = d.disposition_name.as_deref().map(str::to_lowercase);
        settings
            .dispositions
            .iter()
            .find(|(key, _)| *key == id || Some(key) == name.as_ref())
            .map(|(_, guid)| guid.clone())
    })
}

/// `hs_call_body`: the description, as HTML (escaped, line breaks kept, links clickable) or as is.
fn call_body(text: &str, html: bool) -> String {
    let mut body = if html {
        text.lines().map(html_line).collect::<Vec<_>>().join("<br>")
    } else {
        text.to_string()
    };
    if body.chars().count() > MAX_BODY_CHARS {
        body = body.chars().take(MAX_BODY_CHARS).collect();
        body.push_str(" [truncated]");
    }
    body
}

fn html_line(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = [rest.find("https://"), rest.find("http://")]
        .into_iter()
        .flatten()
        .min()
    {
        out.push_str(&escape_html(&rest[..at]));
        let end = rest[at..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |e| at + e);
        let link = escape_html(&rest[at..end]);
        out.push_str(&format!("<a href=\"{link}\">{link}</a>"));
        rest = &rest[end..];
    }
    out.push_str(&escape_html(rest));
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A failed HubSpot response in words: the step, status, HubSpot's `category` (or `errorType`), the rate limit
/// `policyName`, `message` and `correlationId`, and what to do about 401/403.
pub fn error_text(step: &str, status: u16, body: &str, hint: Option<&str>) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(Value::as_str);
    let mut text = format!("{step}: HTTP {status}");
    if let Some(category) = field("category").or_else(|| field("errorType")) {
        text.push(' ');
        text.push_str(category);
    }
    if let Some(policy) = field("policyName") {
        text.push_str(&format!(" (rate limit policy {policy})"));
    }
    if let Some(message) = field("message") {
        text.push_str(": ");
        text.extend(message.chars().take(500));
    }
    if let Some(id) = field("correlationId") {
        text.push_str(&format!(" [correlationId {id}]"));
    }
    match status {
        401 => text.push_str(
            "; HubSpot refused the access token: check the sink's `token` (a private app token, not revoked or rotated)",
        ),
        403 => text.push_str(&format!("; {SCOPES_HINT}")),
        _ => {}
    }
    if let Some(hint) = hint {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

/// The id of the first search result.
fn first_id(json: &Value) -> Option<String> {
    json.get("results")?.as_array()?.first().and_then(object_id)
}

fn object_id(object: &Value) -> Option<String> {
    match object.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub struct HubspotSink {
    settings: Settings,
    auth: HeaderValue,
    client: reqwest::Client,
    body_limit: usize,
    /// Engagement id → id of the call this process wrote for it: HubSpot's search lags behind writes.
    known: Mutex<HashMap<String, String>>,
}

impl HubspotSink {
    pub fn check(config: &SinkConfig) -> Result<(), String> {
        Settings::from_config(config).map(|_| ())
    }

    pub fn new(
        config: &SinkConfig,
        client: reqwest::Client,
        body_limit: usize,
    ) -> Result<Self, String> {
        let settings = Settings::from_config(config)?;
        let token = config
            .token
            .as_ref()
            .map(|t| t.expose().trim())
            .unwrap_or_default();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            format!(
                "sink {:?}: `token` is not a valid header value",
                config.name
            )
        })?;
        auth.set_sensitive(true);
        Ok(Self {
            settings,
            auth,
            client,
            body_limit,
            known: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.settings.base.clone();
        // Never fails: `check` refused cannot-be-a-base URLs.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One request. `Ok`: a 2xx status and its body; `Err`: the attempt's result.
    async fn send(
        &self,
        step: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        hint: Option<&str>,
    ) -> Result<(u16, String), AttemptResult> {
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AttemptResult::network(format!("{step}: {}", describe(&e))))?;
        let status = response.status().as_u16();
        if classify_status(status) == Outcome::Delivered {
            return Ok((
                status,
                read_body(response, SUCCESS_BODY_LIMIT.max(self.body_limit)).await,
            ));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_body(response, self.body_limit).await;
        let mut result = AttemptResult::from_status(status, body, retry_after);
        result.error = Some(error_text(step, status, &result.body, hint));
        Err(result)
    }

    /// A 2xx body as JSON; anything else there is a broken response, retried.
    fn parse(&self, step: &str, status: u16, body: &str) -> Result<Value, AttemptResult> {
        serde_json::from_str(body).map_err(|e| AttemptResult {
            outcome: Outcome::Retry,
            status: Some(status),
            body: truncate(body, self.body_limit),
            retry_after: None,
            error: Some(format!(
                "{step}: HTTP {status} with a body that is not JSON: {e}"
            )),
        })
    }

    async fn find_contact(&self, summary: &CallSummary) -> Result<Option<String>, AttemptResult> {
        let Some(search) = contact_search(&self.settings, summary) else {
            return Ok(None);
        };
        let step = "search contacts";
        let url = self.url(&["crm", "v3", "objects", "contacts", "search"]);
        let (status, body) = self
            .send(step, Method::POST, url, Some(&search), None)
            .await?;
        Ok(oldest(&self.parse(step, status, &body)?))
    }

    async fn find_call(&self, engagement_id: &str) -> Result<Option<String>, AttemptResult> {
        let step = "search calls";
        let hint = format!(
            "is `{}` created as a call property (single-line text)? see docs/sinks/hubspot.md",
            self.settings.id_property
        );
        let url = self.url(&["crm", "v3", "objects", "calls", "search"]);
        let search = call_search(&self.settings, engagement_id);
        let (status, body) = self
            .send(step, Method::POST, url, Some(&search), Some(&hint))
            .await?;
        Ok(first_id(&self.parse(step, status, &body)?))
    }

    async fn update_call(
        &self,
        call_id: &str,
        properties: &Map<String, Value>,
    ) -> Result<u16, AttemptResult> {
        let url = self.url(&["crm", "v3", "objects", "calls", call_id]);
        let body = json!({ "properties": properties });
        let (status, _) = self
            .send("update call", Method::PATCH, url, Some(&body), None)
            .await?;
        Ok(status)
    }

    /// Creates the call (associated with `contact` in the same request); its id when HubSpot returned one.
    async fn create_call(
        &self,
        properties: &Map<String, Value>,
        contact: Option<&str>,
    ) -> Result<(u16, Option<String>), AttemptResult> {
        let step = "create call";
        // HubSpot's schema requires `associations` (its guides leave it out when there is nothing to link).
        let associations = match contact {
            Some(contact) => json!([{
                "to": {"id": contact},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}],
            }]),
            None => json!([]),
        };
        let body = json!({ "properties": properties, "associations": associations });
        let url = self.url(&["crm", "v3", "objects", "calls"]);
        let (status, response) = self
            .send(step, Method::POST, url, Some(&body), None)
            .await?;
        // The call exists now whatever the body says: a parse failure must not make the engine create another.
        let id = serde_json::from_str::<Value>(&response)
            .ok()
            .as_ref()
            .and_then(object_id);
        Ok((status, id))
    }

    /// The default (unlabelled) call → contact association; `PUT`, so repeating it is harmless.
    async fn associate(&self, call_id: &str, contact: &str) -> Result<(), AttemptResult> {
        let url = self.url(&[
            "crm",
            "v4",
            "objects",
            "calls",
            call_id,
            "associations",
            "default",
            "contacts",
            contact,
        ]);
        self.send("associate call with contact", Method::PUT, url, None, None)
            .await
            .map(|_| ())
    }

    fn remembered(&self, engagement_id: &str) -> Option<String> {
        self.known.lock().ok()?.get(engagement_id).cloned()
    }

    fn remember(&self, engagement_id: &str, call_id: &str) {
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= KNOWN_CALLS_LIMIT && !known.contains_key(engagement_id) {
                known.clear();
            }
            known.insert(engagement_id.to_string(), call_id.to_string());
        }
    }

    fn forget(&self, engagement_id: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.remove(engagement_id);
        }
    }

    async fn write(&self, message: &Message) -> Result<AttemptResult, AttemptResult> {
        let record = message.engagement().map_err(AttemptResult::reject)?;
        if record.engagement_id.trim().is_empty() {
            return Err(AttemptResult::reject(
                "the engagement record has no engagement_id",
            ));
        }
        let summary = CallSummary::from_record(&record);
        let engagement_id = summary.engagement_id.as_str();
        let properties = call_properties(&self.settings, &summary, &record, message.created_at);
        let contact = self.find_contact(&summary).await?;
        let existing = match self.remembered(engagement_id) {
            Some(id) => Some(id),
            None => self.find_call(engagement_id).await?,
        };
        if let Some(call_id) = existing {
            match self.update_call(&call_id, &properties).await {
                Ok(status) => {
                    if let Some(contact) = contact.as_deref() {
                        self.associate(&call_id, contact).await?;
                    }
                    self.remember(engagement_id, &call_id);
                    let body = outcome_body("updated", Some(&call_id), contact.as_deref());
                    return Ok(AttemptResult::delivered(
                        status,
                        truncate(&body, self.body_limit),
                    ));
                }
                // Deleted in HubSpot since it was found or remembered: write it anew.
                Err(result) if result.status == Some(404) => self.forget(engagement_id),
                Err(result) => return Err(result),
            }
        }
        let (status, call_id) = self.create_call(&properties, contact.as_deref()).await?;
        if let Some(id) = &call_id {
            self.remember(engagement_id, id);
        }
        let body = outcome_body("created", call_id.as_deref(), contact.as_deref());
        Ok(AttemptResult::delivered(
            status,
            truncate(&body, self.body_limit),
        ))
    }
}

/// The attempt log's body of a delivery: what was written where (HubSpot's echo of the call says less).
fn outcome_body(action: &str, call_id: Option<&str>, contact_id: Option<&str>) -> String {
    json!({"action": action, "call_id": call_id, "contact_id": contact_id}).to_string()
}

fn truncate(s: &str, limit: usize) -> String {
    let mut end = s.len().min(limit);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[async_trait]
impl Sink for HubspotSink {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        self.write(message).await.unwrap_or_else(|failed| failed)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::{Secret, SinkKind};
    use crate::core::record::{
        AgentView, ConsumerView, DispositionView, NoteView, QueueView, RecordingView,
    };
    use crate::core::MediaView;

    fn config(options: &[(&str, &str)]) -> SinkConfig {
        SinkConfig {
            deliver: vec!["engagement.completed".into()],
            timeout_seconds: 10,
            token: Some(Secret::new("pat-na1-test")),
            options: SinkOptions::from_pairs(SinkKind::Hubspot, options).expect("valid options"),
            ..SinkConfig::new("crm", SinkKind::Hubspot, "")
        }
    }

    /// What a sink with these options gets: the configuration's typing first, then the sink's own check.
    fn checked(options: &[(&str, &str)]) -> Result<(), String> {
        let options = SinkOptions::from_pairs(SinkKind::Hubspot, options)?;
        HubspotSink::check(&SinkConfig {
            options,
            ..config(&[])
        })
    }

    fn settings(options: &[(&str, &str)]) -> Settings {
        Settings::from_config(&config(options)).expect("valid settings")
    }

    fn media(link: &str) -> Option<MediaView> {
        Some(MediaView {
            state: "archived".into(),
            sha256: None,
            bytes: None,
            content_type: Some("audio/mpeg".into()),
            link: Some(link.into()),
            link_expires_at: None,
            archived_at: None,
            deleted_at: None,
            attempts: 0,
            error: None,
            ..Default::default()
        })
    }

    fn recording(id: &str, link: &str) -> RecordingView {
        RecordingView {
            recording_id: id.into(),
            channel: Some("voice".into()),
            recording_start_time: None,
            recording_end_time: None,
            recording_duration: Some(60),
            download_url: None,
            transcript_url: None,
            playback_url: None,
            user_id: None,
            deleted: false,
            media: media(link),
            transcript_media: None,
            ..Default::default()
        }
    }

    fn record(direction: &str, number: &str) -> EngagementRecord {
        EngagementRecord {
            engagement_id: "eng-1".into(),
            channel: Some("voice".into()),
            channel_source: None,
            direction: Some(direction.into()),
            start_time: Some("2026-03-02T10:00:00Z".into()),
            end_time: Some("2026-03-02T10:02:05Z".into()),
            duration: Some(125),
            queues: vec![QueueView {
                cc_queue_id: "q1".into(),
                queue_name: Some("Billing".into()),
            }],
            agents: vec![AgentView {
                user_id: "u1".into(),
                display_name: Some("Ada".into()),
            }],
            consumers: vec![ConsumerView {
                consumer_id: None,
                consumer_number: Some(number.into()),
                consumer_display_name: None,
            }],
            notes: vec![NoteView {
                note_id: "n1".into(),
                note: Some("Refund <approved> & sent".into()),
                user_id: None,
                last_modified_time: None,
            }],
            dispositions: vec![
                DispositionView {
                    disposition_id: "d1".into(),
                    disposition_name: Some("Resolved".into()),
                },
                DispositionView {
                    disposition_id: "d2".into(),
                    disposition_name: Some("Callback".into()),
                },
            ],
            recordings: vec![
                recording("r0", "http://insecure.example/r0"),
                recording("r1", "https://bridge.example/media/r1?sig=x"),
                recording("r2", "https://bridge.example/media/r2"),
            ],
            transcripts: vec![],
            voicemails: vec![],
            timeline: vec![],
            sources: vec![],
            ..Default::default()
        }
    }

    fn props(settings: &Settings, record: &EngagementRecord) -> Map<String, Value> {
        call_properties(settings, &CallSummary::from_record(record), record, 7)
    }

    fn get<'a>(p: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
        p.get(k).and_then(Value::as_str)
    }

    #[test]
    fn an_inbound_call_maps_to_hubspot_properties() {
        let s = settings(&[]);
        let p = props(&s, &record("inbound", "+14155550100"));
        assert_eq!(get(&p, "hs_timestamp"), Some("1772445600000"));
        assert_eq!(get(&p, "zcc_engagement_id"), Some("eng-1"));
        assert_eq!(
            get(&p, "hs_call_title"),
            Some("Inbound voice engagement: Billing (+14155550100)")
        );
        assert_eq!(get(&p, "hs_call_direction"), Some("INBOUND"));
        assert_eq!(get(&p, "hs_call_duration"), Some("125000"));
        assert_eq!(get(&p, "hs_call_status"), Some("COMPLETED"));
        assert_eq!(get(&p, "hs_call_from_number"), Some("+14155550100"));
        assert_eq!(get(&p, "hs_call_to_number"), None);
        // The first HTTPS link: HubSpot refuses others.
        assert_eq!(
            get(&p, "hs_call_recording_url"),
            Some("https://bridge.example/media/r1?sig=x")
        );
        assert_eq!(get(&p, "hs_call_disposition"), None);
        let body = get(&p, "hs_call_body").expect("body");
        assert!(body.contains("Disposition: Resolved, Callback"), "{body}");
        assert!(
            body.contains("- Refund &lt;approved&gt; &amp; sent"),
            "{body}"
        );
        assert!(
            body.contains(
                "<a href=\"https://bridge.example/media/r2\">https://bridge.example/media/r2</a>"
            ),
            "{body}"
        );
        assert!(body.contains("<br>"), "{body}");
    }

    #[test]
    fn an_outbound_call_dials_the_customer() {
        let p = props(&settings(&[]), &record("OUTBOUND", "+442071838750"));
        assert_eq!(get(&p, "hs_call_direction"), Some("OUTBOUND"));
        assert_eq!(get(&p, "hs_call_to_number"), Some("+442071838750"));
        assert_eq!(get(&p, "hs_call_from_number"), None);
    }

    #[test]
    fn missing_facts_leave_properties_out_and_the_timestamp_falls_back() {
        let mut r = record("sideways", "+14155550100");
        r.start_time = None;
        r.duration = None;
        r.recordings.clear();
        let p = props(&settings(&[]), &r);
        assert_eq!(
            get(&p, "hs_timestamp"),
            Some("1772445725000"),
            "the end time"
        );
        assert_eq!(get(&p, "hs_call_direction"), None);
        assert_eq!(get(&p, "hs_call_from_number"), None);
        assert_eq!(get(&p, "hs_call_duration"), None);
        assert_eq!(get(&p, "hs_call_recording_url"), None);
        r.end_time = None;
        assert_eq!(get(&props(&settings(&[]), &r), "hs_timestamp"), Some("7"));
    }

    #[test]
    fn text_bodies_and_a_custom_id_property() {
        let s = settings(&[("body_format", "text"), ("id_property", "zoom_engagement")]);
        let p = props(&s, &record("inbound", "+14155550100"));
        assert_eq!(get(&p, "zoom_engagement"), Some("eng-1"));
        assert!(!p.contains_key(DEFAULT_ID_PROPERTY));
        let body = get(&p, "hs_call_body").expect("body");
        assert!(body.contains("- Refund <approved> & sent\n"), "{body}");
        assert_eq!(
            call_search(&s, "eng-1")["filterGroups"][0]["filters"][0]["propertyName"],
            "zoom_engagement"
        );
    }

    #[test]
    fn the_latest_mapped_disposition_becomes_the_outcome() {
        let connected = "f240bbac-87c9-4f6e-bf70-924b57d47db7";
        let busy = "9D9162E7-6CF3-4944-BF63-4DFF82258764";
        let r = record("inbound", "+14155550100");
        let s = settings(&[(
            "disposition_map",
            &format!("resolved={connected}; d2 = {busy}"),
        )]);
        // "Callback" (d2) was saved last and is mapped by id.
        assert_eq!(
            get(&props(&s, &r), "hs_call_disposition"),
            Some(busy.to_lowercase().as_str())
        );
        let s = settings(&[("disposition_map", &format!("Resolved={connected}"))]);
        assert_eq!(get(&props(&s, &r), "hs_call_disposition"), Some(connected));
    }

    #[test]
    fn direction_and_duration() {
        assert_eq!(hubspot_direction(Some("inbound")), Some("INBOUND"));
        assert_eq!(hubspot_direction(Some(" Outbound ")), Some("OUTBOUND"));
        assert_eq!(hubspot_direction(Some("internal")), None);
        assert_eq!(hubspot_direction(None), None);
        assert_eq!(duration_ms(Some(125)), Some(125_000));
        assert_eq!(duration_ms(Some(0)), Some(0));
        assert_eq!(duration_ms(Some(-1)), None);
        assert_eq!(duration_ms(Some(i64::MAX)), None);
        assert_eq!(duration_ms(None), None);
    }

    #[test]
    fn phone_variants_cover_common_spellings() {
        assert_eq!(
            phone_variants("+14155550100"),
            [
                "+14155550100",
                "14155550100",
                "4155550100",
                "(415) 555-0100",
                "415-555-0100"
            ]
        );
        assert_eq!(
            phone_variants(" +44 20 7183 8750 "),
            ["+44 20 7183 8750", "+442071838750", "442071838750"]
        );
        assert_eq!(phone_variants("1001"), ["1001"]);
        assert!(phone_variants("  ").is_empty());
    }

    #[test]
    fn the_oldest_match_is_the_contact() {
        let results = json!({"results": [
            {"id": "30", "properties": {"createdate": "2024-05-01T00:00:00Z"}},
            {"id": "7", "properties": {"createdate": "2023-01-01T00:00:00Z"}},
            {"id": "5", "properties": {}},
            {"id": "9", "properties": {"createdate": "2023-01-01T00:00:00Z"}}
        ]});
        assert_eq!(oldest(&results).as_deref(), Some("7"));
        assert_eq!(oldest(&json!({"results": []})), None);
    }

    #[test]
    fn the_contact_search_ors_phone_properties_or_the_email() {
        let s = settings(&[]);
        let summary = CallSummary::from_record(&record("inbound", "+14155550100"));
        let search = contact_search(&s, &summary).expect("a search");
        let groups = search["filterGroups"].as_array().expect("groups");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0]["filters"][0]["propertyName"], "phone");
        assert_eq!(groups[1]["filters"][0]["propertyName"], "mobilephone");
        assert_eq!(groups[1]["filters"][0]["operator"], "IN");
        assert_eq!(groups[1]["filters"][0]["values"][0], "+14155550100");
        assert_eq!(search["sorts"], json!([]));
        assert_eq!(search["after"], "0");

        let summary = CallSummary::from_record(&record("inbound", "Ada@Example.com"));
        let search = contact_search(&s, &summary).expect("a search");
        assert_eq!(
            search["filterGroups"],
            json!([{"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}])
        );

        let mut anonymous = record("inbound", "x");
        anonymous.consumers.clear();
        assert!(contact_search(&s, &CallSummary::from_record(&anonymous)).is_none());
        let none = settings(&[("contact_phone_properties", "")]);
        let summary = CallSummary::from_record(&record("inbound", "+14155550100"));
        assert!(contact_search(&none, &summary).is_none());
    }

    #[test]
    fn errors_carry_hubspot_category_policy_and_message() {
        let body = r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"c-1","policyName":"SECONDLY"}"#;
        assert_eq!(
            error_text("search calls", 429, body, None),
            "search calls: HTTP 429 RATE_LIMIT (rate limit policy SECONDLY): You have reached your secondly limit. [correlationId c-1]"
        );
        let body = r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#;
        let text = error_text("create call", 401, body, None);
        assert!(
            text.starts_with("create call: HTTP 401 INVALID_AUTHENTICATION: Authentication"),
            "{text}"
        );
        assert!(text.contains("check the sink's `token`"), "{text}");
        assert_eq!(
            error_text("x", 502, "<html>", Some("hint")),
            "x: HTTP 502; hint"
        );
    }

    #[test]
    fn settings_are_checked() {
        assert!(HubspotSink::check(&config(&[])).is_ok());
        assert_eq!(settings(&[]).base.as_str(), "https://api.hubapi.com/");
        let mut c = config(&[]);
        c.token = None;
        assert!(HubspotSink::check(&c)
            .expect_err("no token")
            .contains("needs `token`"));
        c.token = Some(Secret::new("  "));
        assert!(HubspotSink::check(&c).is_err());
        c.token = Some(Secret::new("pat\nx"));
        let e = HubspotSink::check(&c).expect_err("bad token");
        assert!(!e.contains("pat"), "{e}");
        for url in [
            "ftp://x",
            "not a url",
            "https://user:pw@api.hubapi.com",
            "https://api.hubapi.com/?a=1",
        ] {
            let mut c = config(&[]);
            c.url = url.into();
            let e = HubspotSink::check(&c).expect_err(url);
            assert!(!e.contains("pw"), "{e}");
        }
        for bad in [
            ("colour", "blue"),
            ("id_property", "zcc engagement"),
            ("id_property", "1abc"),
            ("disposition_map", "Resolved"),
            ("disposition_map", "Resolved=not-a-guid"),
            ("disposition_map", " ; "),
            ("contact_phone_properties", "phone,mobile phone"),
            ("contact_phone_properties", "a,b,c,d,e"),
            ("body_format", "markdown"),
        ] {
            assert!(checked(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_keep_a_base_path() {
        let mut c = config(&[]);
        c.url = "http://127.0.0.1:9/proxy/hubspot/".into();
        let sink = HubspotSink::new(&c, reqwest::Client::new(), 100).expect("sink");
        assert_eq!(
            sink.url(&["crm", "v3", "objects", "calls", "12 3"])
                .as_str(),
            "http://127.0.0.1:9/proxy/hubspot/crm/v3/objects/calls/12%203"
        );
        assert_eq!(truncate("héllo", 2), "h");
    }
}
