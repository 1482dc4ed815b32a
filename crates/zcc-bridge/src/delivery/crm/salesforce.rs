//! Salesforce sink: one completed call Task per engagement, upserted by an external-id field so that
//! `engagement.completed` and every later `engagement.updated` land on the same Task.
//!
//! Per attempt: an access token (OAuth 2.0 client credentials, cached, shared by concurrent attempts and
//! renewed once when the API answers 401), a lookup of the customer (Contact, then Lead, by phone or email:
//! SOQL on the usual formats of the number, then an optional SOSL search over phone fields), then
//! `PATCH /services/data/vXX.X/sobjects/Task/{external_id_field}/{engagement_id}`.
//! See `docs/sinks/salesforce.md` for the Salesforce facts this relies on.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::CallSummary;
use crate::config::{Secret, SinkConfig, SinkOptions};
use crate::delivery::http::{classify_status, describe, parse_retry_after, read_body};
use crate::delivery::sink::{AttemptResult, Message, Outcome, Sink};

pub const DEFAULT_EXTERNAL_ID_FIELD: &str = "Zoom_Engagement_Id__c";
pub const DEFAULT_API_VERSION: &str = "60.0";
/// Task field limits, in characters (Salesforce counts characters, not bytes).
pub const SUBJECT_MAX: usize = 255;
pub const DESCRIPTION_MAX: usize = 32_000;
pub const CALL_DISPOSITION_MAX: usize = 255;
/// A URL custom field holds 255 characters; a cut link is useless, so a longer one is left out.
pub const URL_FIELD_MAX: usize = 255;
/// `CallDurationInSeconds` is an 8-digit int.
const DURATION_MAX: i64 = 99_999_999;
/// How much of an error body is read to find Salesforce's `errorCode` (the stored body is cut to body_limit).
const PARSE_LIMIT: usize = 64 * 1024;

/// The sink's `options`, checked.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    external_id_field: String,
    api_version: String,
    recording_url_field: Option<String>,
    transcript_url_field: Option<String>,
    match_customer: bool,
    sosl_fallback: bool,
    /// The zone whose calendar date becomes `ActivityDate`.
    time_zone: chrono_tz::Tz,
}

impl Settings {
    fn parse(config: &SinkConfig) -> Result<Self, String> {
        let SinkOptions::Salesforce(options) = &config.options else {
            return Err("options: not a salesforce sink's".into());
        };
        let field = |key: &str, value: &Option<String>| -> Result<Option<String>, String> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if is_api_name(v) => Ok(Some(v.to_string())),
                Some(v) => Err(format!("option {key}: {v:?} is not a field API name")),
            }
        };
        let api_version = match options.api_version.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_API_VERSION.to_string(),
            Some(v) => {
                let v = v.strip_prefix('v').unwrap_or(v);
                let ok = v
                    .split_once('.')
                    .is_some_and(|(major, minor)| is_digits(major) && is_digits(minor));
                if !ok {
                    return Err(format!("option api_version: {v:?} is not like 60.0"));
                }
                v.to_string()
            }
        };
        let time_zone = match options.time_zone.as_deref().map(str::trim) {
            None | Some("") => chrono_tz::UTC,
            Some(v) => v
                .parse()
                .map_err(|_| format!("option time_zone: {v:?} is not an IANA time zone"))?,
        };
        Ok(Self {
            external_id_field: field("external_id_field", &options.external_id_field)?
                .unwrap_or_else(|| DEFAULT_EXTERNAL_ID_FIELD.to_string()),
            api_version,
            recording_url_field: field("recording_url_field", &options.recording_url_field)?,
            transcript_url_field: field("transcript_url_field", &options.transcript_url_field)?,
            match_customer: options.match_customer,
            sosl_fallback: options.sosl_fallback,
            time_zone,
        })
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A field API name (`Subject`, `Zoom_Engagement_Id__c`, `ns__Field__c`): it goes into URLs and JSON keys.
fn is_api_name(s: &str) -> bool {
    s.len() <= 80
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An access token and the API base it belongs to (`instance_url` of the token response).
#[derive(Clone)]
struct Token {
    access: String,
    base: reqwest::Url,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: Option<String>,
}

/// An OAuth error (`{"error": "invalid_client", "error_description": "..."}`).
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// One entry of a REST API error body (`[{"message": "...", "errorCode": "...", "fields": [...]}]`).
#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// A finished response: status, `Retry-After` and up to [`PARSE_LIMIT`] bytes of body.
struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

pub struct SalesforceSink {
    /// The configured instance URL: where tokens come from, and the API base until a token names another.
    url: reqwest::Url,
    client_id: String,
    client_secret: Secret,
    settings: Settings,
    client: reqwest::Client,
    body_limit: usize,
    /// The cached token. A tokio mutex held across the token request: concurrent attempts wait for one fetch.
    token: Mutex<Option<Token>>,
}

impl SalesforceSink {
    pub fn check(config: &SinkConfig) -> Result<(), String> {
        let name = &config.name;
        let url =
            reqwest::Url::parse(&config.url).map_err(|e| format!("sink {name:?}: url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(format!(
                "sink {name:?}: url must be the org's https URL, e.g. https://myorg.my.salesforce.com"
            ));
        }
        if config
            .client_id
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(format!(
                "sink {name:?}: a salesforce sink needs client_id (the connected app's consumer key)"
            ));
        }
        if config
            .client_secret
            .as_ref()
            .is_none_or(|s| s.expose().trim().is_empty())
        {
            return Err(format!(
                "sink {name:?}: a salesforce sink needs client_secret (the connected app's consumer secret)"
            ));
        }
        Settings::parse(config).map_err(|e| format!("sink {name:?}: {e}"))?;
        Ok(())
    }

    pub fn new(
        config: &SinkConfig,
        client: reqwest::Client,
        body_limit: usize,
    ) -> Result<Self, String> {
        Self::check(config)?;
        let url = reqwest::Url::parse(&config.url).map_err(|e| e.to_string())?;
        let settings = Settings::parse(config)?;
        Ok(Self {
            url,
            client_id: config
                .client_id
                .clone()
                .unwrap_or_default()
                .trim()
                .to_string(),
            client_secret: config
                .client_secret
                .clone()
                .unwrap_or_else(|| Secret::new("")),
            settings,
            client,
            body_limit,
            token: Mutex::new(None),
        })
    }

    async fn deliver_record(&self, message: &Message) -> AttemptResult {
        let record = match message.engagement() {
            Ok(r) => r,
            Err(e) => return AttemptResult::reject(e),
        };
        if record.engagement_id.trim().is_empty() {
            return AttemptResult::reject("the record has no engagement_id to upsert the Task by");
        }
        let summary = CallSummary::from_record(&record);
        let who = if self.settings.match_customer {
            match self.find_who(&summary).await {
                Ok(who) => who,
                Err(failed) => return failed,
            }
        } else {
            None
        };
        let mut fields = task_fields(&summary, &self.settings, who.as_deref());
        let mut reply = match self.upsert(&summary.engagement_id, &fields).await {
            Ok(r) => r,
            Err(failed) => return failed,
        };
        if reply.status == 400 && refuses_field(&reply.body, "TaskSubtype") {
            // TaskSubtype may be settable on create only; an update then refuses it. Send the rest.
            fields.remove("TaskSubtype");
            reply = match self.upsert(&summary.engagement_id, &fields).await {
                Ok(r) => r,
                Err(failed) => return failed,
            };
        }
        if reply.status == 300 {
            let mut result = self.result(reply, "Task upsert");
            result.error = Some(format!(
                "several Tasks have {} = {:?}: make the field unique, or merge them",
                self.settings.external_id_field, summary.engagement_id
            ));
            return result;
        }
        self.result(reply, "Task upsert")
    }

    async fn upsert(
        &self,
        engagement_id: &str,
        fields: &Map<String, Value>,
    ) -> Result<Reply, AttemptResult> {
        let body = serde_json::to_vec(fields).map_err(|e| AttemptResult::reject(e.to_string()))?;
        let path = [
            "sobjects",
            "Task",
            self.settings.external_id_field.as_str(),
            engagement_id,
        ];
        self.call(|token| {
            self.client
                .patch(self.api_url(&token.base, &path))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }

    /// The WhoId of the customer: a Contact, else an unconverted Lead, by phone or email.
    async fn find_who(&self, summary: &CallSummary) -> Result<Option<String>, AttemptResult> {
        let phones = summary
            .customer_phone
            .as_deref()
            .map(phone_variants)
            .unwrap_or_default();
        let email = summary
            .customer_email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty() && e.len() <= 254);
        for object in ["Contact", "Lead"] {
            let Some(soql) = match_query(object, &phones, email) else {
                return Ok(None);
            };
            if let Some(id) = self.query_first(object, &soql).await? {
                return Ok(Some(id));
            }
        }
        if self.settings.sosl_fallback {
            if let Some(sosl) = summary.customer_phone.as_deref().and_then(phone_search) {
                return self.search_first(&sosl).await;
            }
        }
        Ok(None)
    }

    async fn query_first(&self, object: &str, soql: &str) -> Result<Option<String>, AttemptResult> {
        let reply = self
            .call(|token| {
                let mut url = self.api_url(&token.base, &["query"]);
                url.query_pairs_mut().append_pair("q", soql);
                self.client.get(url)
            })
            .await?;
        let Some(body) = self.lookup_body(reply, &format!("{object} lookup"))? else {
            return Ok(None);
        };
        Ok(body
            .get("records")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("Id"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    async fn search_first(&self, sosl: &str) -> Result<Option<String>, AttemptResult> {
        let reply = self
            .call(|token| {
                let mut url = self.api_url(&token.base, &["search"]);
                url.query_pairs_mut().append_pair("q", sosl);
                self.client.get(url)
            })
            .await?;
        let Some(body) = self.lookup_body(reply, "phone search")? else {
            return Ok(None);
        };
        // `{"searchRecords": [...]}`; API versions before 37.0 answered a bare array.
        let records = body
            .get("searchRecords")
            .and_then(Value::as_array)
            .or_else(|| body.as_array());
        Ok(records.and_then(|records| first_person(records)))
    }

    /// A lookup's JSON body. A lookup that fails for good (a 4xx: a field or object the integration user
    /// cannot read, say) does not stop the Task: it is logged and the Task goes without a WhoId. Retryable
    /// failures (5xx, 429, network) end the attempt.
    fn lookup_body(&self, reply: Reply, what: &str) -> Result<Option<Value>, AttemptResult> {
        if (200..300).contains(&reply.status) {
            return Ok(serde_json::from_str(&reply.body).ok());
        }
        let result = self.result(reply, what);
        if result.outcome == Outcome::Reject {
            tracing::warn!(
                status = ?result.status,
                error = result.error.as_deref().unwrap_or(""),
                "salesforce customer lookup failed; the Task goes without a WhoId"
            );
            return Ok(None);
        }
        Err(result)
    }

    /// `{base}/services/data/v{api_version}/{segments...}`, each segment percent-encoded.
    fn api_url(&self, base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
        let version = format!("v{}", self.settings.api_version);
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["services", "data", version.as_str()])
                .extend(segments);
        }
        url
    }

    /// One API call with the cached token; on 401 the token is renewed and the call repeated, once.
    async fn call(
        &self,
        request: impl Fn(&Token) -> reqwest::RequestBuilder,
    ) -> Result<Reply, AttemptResult> {
        let token = self.token().await?;
        let reply = self
            .send(request(&token).bearer_auth(&token.access))
            .await?;
        if reply.status != 401 {
            return Ok(reply);
        }
        // Sessions end without notice (timeout, revocation, INVALID_SESSION_ID): a fresh token, one more try.
        let fresh = self.renew(&token).await?;
        self.send(request(&fresh).bearer_auth(&fresh.access)).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, AttemptResult> {
        match request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(response) => Ok(self.read(response).await),
            Err(e) => Err(AttemptResult::network(describe(&e))),
        }
    }

    async fn read(&self, response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_body(response, self.body_limit.max(PARSE_LIMIT)).await;
        Reply {
            status,
            retry_after,
            body,
        }
    }

    /// The attempt's result from a final reply: [`classify_status`], Salesforce's errorCode in `error`.
    fn result(&self, reply: Reply, what: &str) -> AttemptResult {
        let outcome = classify_status(reply.status);
        AttemptResult {
            outcome,
            status: Some(reply.status),
            error: (outcome != Outcome::Delivered)
                .then(|| format!("{what}: {}", error_summary(reply.status, &reply.body))),
            body: truncate_bytes(&reply.body, self.body_limit).to_string(),
            retry_after: reply.retry_after,
        }
    }

    async fn token(&self) -> Result<Token, AttemptResult> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            return Ok(token.clone());
        }
        let token = self.fetch_token().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// A new token in place of `stale`, unless another attempt already replaced it.
    async fn renew(&self, stale: &Token) -> Result<Token, AttemptResult> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            if token.access != stale.access {
                return Ok(token.clone());
            }
        }
        *slot = None;
        let token = self.fetch_token().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// `POST {url}/services/oauth2/token` with the client credentials. Nothing of the request or of a
    /// successful response (the token) goes into errors or logs.
    async fn fetch_token(&self) -> Result<Token, AttemptResult> {
        let mut url = self.url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["services", "oauth2", "token"]);
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        let response = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| AttemptResult::network(format!("token request: {}", describe(&e))))?;
        let reply = self.read(response).await;
        if (200..300).contains(&reply.status) {
            let parsed: TokenResponse = serde_json::from_str(&reply.body).map_err(|_| {
                // The body is not kept: it might hold a token after all.
                AttemptResult {
                    outcome: Outcome::Reject,
                    status: Some(reply.status),
                    body: String::new(),
                    retry_after: None,
                    error: Some(
                        "the token endpoint answered without an access_token: is url the org's My Domain URL?"
                            .into(),
                    ),
                }
            })?;
            let base = parsed
                .instance_url
                .as_deref()
                .and_then(|u| reqwest::Url::parse(u).ok())
                .filter(|u| matches!(u.scheme(), "https" | "http"))
                .unwrap_or_else(|| self.url.clone());
            return Ok(Token {
                access: parsed.access_token,
                base,
            });
        }
        let oauth = serde_json::from_str::<OAuthError>(&reply.body);
        let mut result = self.result(reply, "token request");
        if let Ok(oauth) = oauth {
            let description = oauth.error_description.unwrap_or_default();
            let hint = match oauth.error.as_str() {
                "invalid_client" | "invalid_client_id" => {
                    "check client_id and client_secret (the connected app's consumer key and secret)"
                }
                "invalid_grant" | "unauthorized_client" | "unsupported_grant_type" | "invalid_scope" => {
                    "check that the connected app enables the client credentials flow with a run-as user \
                     and the api scope, and that url is the org's My Domain URL"
                }
                _ => "",
            };
            if !hint.is_empty() {
                // A configuration problem: retrying the same credentials cannot help.
                result.outcome = Outcome::Reject;
                result.retry_after = None;
            }
            result.error = Some(format!(
                "Salesforce refused the token request: {} ({}){}{}",
                oauth.error,
                truncate_chars(&description, 200),
                if hint.is_empty() { "" } else { ": " },
                hint
            ));
        }
        Err(result)
    }
}

#[async_trait]
impl Sink for SalesforceSink {
    async fn deliver(&self, message: &Message) -> AttemptResult {
        if !message.is_engagement() {
            return AttemptResult::reject(format!(
                "a salesforce sink delivers engagement records only, not {}",
                message.event_type
            ));
        }
        self.deliver_record(message).await
    }
}

/// The Task's fields. The external-id field is in the URL and must not be in the body.
fn task_fields(
    summary: &CallSummary,
    settings: &Settings,
    who: Option<&str>,
) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_string(), value);
    };
    put(
        "Subject",
        truncate_chars(&summary.subject, SUBJECT_MAX).into(),
    );
    put(
        "Description",
        truncate_chars(&summary.description(), DESCRIPTION_MAX).into(),
    );
    put("Status", "Completed".into());
    put("TaskSubtype", "Call".into());
    if let Some(date) = summary
        .start_ms
        .and_then(|ms| activity_date(ms, settings.time_zone))
    {
        put("ActivityDate", date.into());
    }
    if let Some(call_type) = summary.direction.as_deref().and_then(call_type) {
        put("CallType", call_type.into());
    }
    if let Some(seconds) = summary.duration_seconds.filter(|d| *d >= 0) {
        put("CallDurationInSeconds", seconds.min(DURATION_MAX).into());
    }
    if !summary.dispositions.is_empty() {
        let joined = summary.dispositions.join(", ");
        put(
            "CallDisposition",
            truncate_chars(&joined, CALL_DISPOSITION_MAX).into(),
        );
    }
    let links = [
        (&settings.recording_url_field, &summary.recording_links),
        (&settings.transcript_url_field, &summary.transcript_links),
    ];
    for (field, list) in links {
        if let (Some(field), Some(link)) = (field, list.first()) {
            if link.chars().count() <= URL_FIELD_MAX {
                put(field, link.as_str().into());
            }
        }
    }
    if let Some(who) = who {
        put("WhoId", who.into());
    }
    fields
}

/// `YYYY-MM-DD` of `ms` in `zone`.
fn activity_date(ms: i64, zone: chrono_tz::Tz) -> Option<String> {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
    Some(at.with_timezone(&zone).format("%Y-%m-%d").to_string())
}

/// `CallType` is a picklist of Inbound, Internal and Outbound.
fn call_type(direction: &str) -> Option<&'static str> {
    match direction.trim().to_ascii_lowercase().as_str() {
        "inbound" => Some("Inbound"),
        "outbound" => Some("Outbound"),
        "internal" => Some("Internal"),
        _ => None,
    }
}

/// The SOQL that finds the customer among `object`s (Contact or Lead), newest first; `None` when there is
/// nothing to look for.
fn match_query(object: &str, phones: &[String], email: Option<&str>) -> Option<String> {
    let mut terms = Vec::new();
    if !phones.is_empty() {
        let list = phones
            .iter()
            .map(|p| format!("'{}'", soql_escape(p)))
            .collect::<Vec<_>>()
            .join(", ");
        terms.push(format!("Phone IN ({list})"));
        terms.push(format!("MobilePhone IN ({list})"));
    }
    if let Some(email) = email {
        terms.push(format!("Email = '{}'", soql_escape(email)));
    }
    if terms.is_empty() {
        return None;
    }
    // A converted Lead lives on as a Contact; the Task belongs with that one.
    let converted = if object == "Lead" {
        "IsConverted = false AND "
    } else {
        ""
    };
    Some(format!(
        "SELECT Id FROM {object} WHERE {converted}({}) ORDER BY LastModifiedDate DESC LIMIT 1",
        terms.join(" OR ")
    ))
}

/// A value for a SOQL string literal: backslash, quotes and the control characters SOQL has escapes for
/// are escaped; other control characters are dropped (SOQL has no escape for them).
fn soql_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The forms a phone number is likely stored in. Salesforce keeps what was typed (the UI of US/Canada
/// locales turns 10 digits into `(415) 555-0100`), Zoom gives E.164: the exact forms are matched by SOQL.
/// Empty for what is not a phone number (fewer than 7 or more than 15 digits).
fn phone_variants(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    let international = raw.starts_with('+') || raw.starts_with("00");
    let mut digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if raw.starts_with("00") {
        digits.drain(..2);
    }
    if !(7..=15).contains(&digits.len()) {
        return Vec::new();
    }
    let mut out = vec![raw.to_string()];
    if international {
        out.push(format!("+{digits}"));
    }
    out.push(digits.clone());
    if let Some(n) = nanp_national(&digits, international) {
        let (a, b, c) = (&n[..3], &n[3..6], &n[6..]);
        out.extend([
            n.to_string(),
            format!("({a}) {b}-{c}"),
            format!("{a}-{b}-{c}"),
            format!("{a}.{b}.{c}"),
            format!("{a} {b} {c}"),
        ]);
        // Country-code forms only when the number says it is North American.
        if international {
            out.extend([
                format!("1{n}"),
                format!("+1 ({a}) {b}-{c}"),
                format!("+1 {a}-{b}-{c}"),
                format!("+1 {a} {b} {c}"),
                format!("+1-{a}-{b}-{c}"),
                format!("1-{a}-{b}-{c}"),
                format!("1 ({a}) {b}-{c}"),
            ]);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out
}

/// The 10-digit national number of a North American (+1) number: `+1` and 11 digits, or 10 digits
/// without a country code. The area code starts with 2-9.
fn nanp_national(digits: &str, international: bool) -> Option<&str> {
    let national = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 if !international => digits,
        _ => return None,
    };
    national
        .starts_with(['2', '3', '4', '5', '6', '7', '8', '9'])
        .then_some(national)
}

/// A SOSL search of phone fields for the number's digits (the search index, unlike SOQL, does not depend on
/// how the number was typed). Digits only, so nothing needs escaping.
fn phone_search(raw: &str) -> Option<String> {
    let variants = phone_variants(raw);
    let digits = variants.iter().find(|v| is_digits(v))?;
    let mut terms = vec![digits.clone()];
    let international = raw.trim().starts_with('+') || raw.trim().starts_with("00");
    if let Some(n) = nanp_national(digits, international) {
        if n != digits {
            terms.push(n.to_string());
        }
    }
    Some(format!(
        "FIND {{{}}} IN PHONE FIELDS RETURNING \
         Contact(Id ORDER BY LastModifiedDate DESC LIMIT 1), \
         Lead(Id WHERE IsConverted = false ORDER BY LastModifiedDate DESC LIMIT 1)",
        terms.join(" OR ")
    ))
}

/// The first Contact of search results, else the first Lead.
fn first_person(records: &[Value]) -> Option<String> {
    let of = |kind: &str| {
        records
            .iter()
            .filter(|r| r.pointer("/attributes/type").and_then(Value::as_str) == Some(kind))
            .find_map(|r| r.get("Id").and_then(Value::as_str))
            .map(str::to_string)
    };
    of("Contact").or_else(|| of("Lead"))
}

/// Whether a 400 body says `field` cannot be set (`INVALID_FIELD_FOR_INSERT_UPDATE` naming it).
fn refuses_field(body: &str, field: &str) -> bool {
    let Ok(errors) = serde_json::from_str::<Vec<ApiError>>(body) else {
        return false;
    };
    errors.iter().any(|e| {
        e.error_code.as_deref() == Some("INVALID_FIELD_FOR_INSERT_UPDATE")
            && (e.fields.iter().any(|f| f == field)
                || e.message.as_deref().is_some_and(|m| m.contains(field)))
    })
}

/// `HTTP 400 STRING_TOO_LONG: Subject: data value too large` from a Salesforce error body; the OAuth error
/// for the token endpoint; `HTTP 503` when the body says nothing readable.
fn error_summary(status: u16, body: &str) -> String {
    if let Ok(errors) = serde_json::from_str::<Vec<ApiError>>(body) {
        if let Some(first) = errors.iter().find(|e| e.error_code.is_some()) {
            let code = first.error_code.as_deref().unwrap_or_default();
            let message = first.message.as_deref().unwrap_or_default();
            let more = match errors.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            return format!(
                "HTTP {status} {code}: {}{more}",
                truncate_chars(message, 300)
            );
        }
    }
    if let Ok(oauth) = serde_json::from_str::<OAuthError>(body) {
        return format!(
            "HTTP {status} {}: {}",
            oauth.error,
            truncate_chars(oauth.error_description.as_deref().unwrap_or_default(), 300)
        );
    }
    format!("HTTP {status}")
}

/// The first `max` characters of `s`.
fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::SinkKind;

    fn config(options: &[(&str, &str)]) -> SinkConfig {
        SinkConfig {
            deliver: vec!["engagement.completed".into()],
            timeout_seconds: 10,
            client_id: Some("id".into()),
            client_secret: Some(Secret::new("secret")),
            options: SinkOptions::from_pairs(SinkKind::Salesforce, options).expect("valid options"),
            ..SinkConfig::new("sf", SinkKind::Salesforce, "https://acme.my.salesforce.com")
        }
    }

    /// What a sink with these options gets: the configuration's typing first, then the sink's own check.
    fn checked(options: &[(&str, &str)]) -> Result<(), String> {
        let options = SinkOptions::from_pairs(SinkKind::Salesforce, options)?;
        SalesforceSink::check(&SinkConfig {
            options,
            ..config(&[])
        })
    }

    fn summary() -> CallSummary {
        CallSummary {
            engagement_id: "eng-1".into(),
            subject: "Inbound voice engagement: Billing (+14155550100)".into(),
            channel: Some("voice".into()),
            direction: Some("inbound".into()),
            start_time: Some("2026-03-01T23:30:00Z".into()),
            end_time: Some("2026-03-01T23:35:07Z".into()),
            start_ms: Some(1_772_407_800_000),
            duration_seconds: Some(307),
            dispositions: vec!["Resolved".into(), "Upsell".into()],
            notes: vec!["called about the invoice".into()],
            agents: vec!["Agent Smith".into()],
            queues: vec!["Billing".into()],
            customer_phone: Some("+14155550100".into()),
            customer_email: None,
            customer_name: None,
            recording_links: vec!["https://bridge.example/media/r1?sig=abc".into()],
            transcript_links: vec!["https://bridge.example/media/t1?sig=def".into()],
            voicemail_links: Vec::new(),
        }
    }

    #[test]
    fn fields_of_a_call() {
        let settings = Settings::parse(&config(&[
            ("recording_url_field", "Recording_Link__c"),
            ("transcript_url_field", "Transcript_Link__c"),
        ]))
        .expect("settings");
        let s = summary();
        let fields = task_fields(&s, &settings, Some("003000000000001AAA"));
        let get = |k: &str| fields.get(k).cloned().unwrap_or(Value::Null);
        assert_eq!(get("Subject"), Value::from(s.subject.as_str()));
        assert_eq!(get("Description"), Value::from(s.description()));
        assert_eq!(get("Status"), "Completed");
        assert_eq!(get("TaskSubtype"), "Call");
        assert_eq!(get("ActivityDate"), "2026-03-01");
        assert_eq!(get("CallType"), "Inbound");
        assert_eq!(get("CallDurationInSeconds"), 307);
        assert_eq!(get("CallDisposition"), "Resolved, Upsell");
        assert_eq!(
            get("Recording_Link__c"),
            "https://bridge.example/media/r1?sig=abc"
        );
        assert_eq!(
            get("Transcript_Link__c"),
            "https://bridge.example/media/t1?sig=def"
        );
        assert_eq!(get("WhoId"), "003000000000001AAA");
        assert!(
            !fields.contains_key(DEFAULT_EXTERNAL_ID_FIELD),
            "the external id is in the URL only"
        );
    }

    #[test]
    fn optional_fields_stay_out() {
        let settings = Settings::parse(&config(&[])).expect("settings");
        let mut s = summary();
        s.direction = Some("sideways".into());
        s.duration_seconds = None;
        s.dispositions.clear();
        s.start_ms = None;
        let fields = task_fields(&s, &settings, None);
        for absent in [
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
            "ActivityDate",
            "WhoId",
            "Recording_Link__c",
        ] {
            assert!(!fields.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn activity_date_follows_the_time_zone() {
        let tokyo = Settings::parse(&config(&[("time_zone", "Asia/Tokyo")])).expect("settings");
        let fields = task_fields(&summary(), &tokyo, None);
        assert_eq!(fields.get("ActivityDate"), Some(&Value::from("2026-03-02")));
    }

    #[test]
    fn long_values_are_cut_to_salesforce_limits() {
        let settings =
            Settings::parse(&config(&[("recording_url_field", "Rec__c")])).expect("settings");
        let mut s = summary();
        s.subject = "é".repeat(300);
        s.notes = vec!["☎".repeat(40_000)];
        s.dispositions = vec!["ü".repeat(200), "ß".repeat(200)];
        s.recording_links = vec![format!("https://x.example/{}", "a".repeat(300))];
        let fields = task_fields(&s, &settings, None);
        let chars = |k: &str| fields[k].as_str().map(|v| v.chars().count());
        assert_eq!(chars("Subject"), Some(SUBJECT_MAX));
        assert_eq!(chars("Description"), Some(DESCRIPTION_MAX));
        assert_eq!(chars("CallDisposition"), Some(CALL_DISPOSITION_MAX));
        assert!(
            !fields.contains_key("Rec__c"),
            "a link too long for a URL field is left out"
        );
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("", 3), "");
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("héllo", 3), "hé");
        assert_eq!(truncate_bytes("☎☎", 5), "☎");
        assert_eq!(truncate_bytes("abc", 0), "");
    }

    #[test]
    fn soql_literals_cannot_be_broken_out_of() {
        assert_eq!(soql_escape("o'brien@example.com"), "o\\'brien@example.com");
        assert_eq!(soql_escape("a\\' OR Id != '"), "a\\\\\\' OR Id != \\'");
        assert_eq!(
            soql_escape("line\nbreak\t\"q\""),
            "line\\nbreak\\t\\\"q\\\""
        );
        assert_eq!(soql_escape("nul\u{0}bell\u{7}"), "nulbell");
        let q = match_query("Contact", &[], Some("x' OR Email != 'y")).expect("query");
        assert_eq!(
            q,
            "SELECT Id FROM Contact WHERE (Email = 'x\\' OR Email != \\'y') \
             ORDER BY LastModifiedDate DESC LIMIT 1"
        );
    }

    #[test]
    fn match_queries() {
        assert_eq!(match_query("Contact", &[], None), None);
        let phones = vec!["+14155550100".to_string(), "(415) 555-0100".to_string()];
        let q = match_query("Lead", &phones, None).expect("query");
        assert_eq!(
            q,
            "SELECT Id FROM Lead WHERE IsConverted = false AND \
             (Phone IN ('+14155550100', '(415) 555-0100') OR MobilePhone IN ('+14155550100', '(415) 555-0100')) \
             ORDER BY LastModifiedDate DESC LIMIT 1"
        );
    }

    #[test]
    fn north_american_numbers_in_their_usual_forms() {
        let v = phone_variants("+14155550100");
        for form in [
            "+14155550100",
            "14155550100",
            "4155550100",
            "(415) 555-0100",
            "415-555-0100",
            "415.555.0100",
            "415 555 0100",
            "+1 (415) 555-0100",
            "+1 415-555-0100",
            "1-415-555-0100",
        ] {
            assert!(v.iter().any(|x| x == form), "{form} missing from {v:?}");
        }
        assert_eq!(
            v.len(),
            v.iter().collect::<std::collections::HashSet<_>>().len(),
            "no duplicates"
        );
        // Without a country code, no +1 forms are guessed.
        let national = phone_variants("415 555 0100");
        assert!(national.contains(&"(415) 555-0100".to_string()));
        assert!(
            !national.iter().any(|x| x.starts_with("+1")),
            "{national:?}"
        );
    }

    #[test]
    fn other_numbers_and_non_numbers() {
        assert_eq!(
            phone_variants("+442079460958"),
            vec!["+442079460958".to_string(), "442079460958".to_string()]
        );
        assert_eq!(
            phone_variants("0044 20 7946 0958"),
            vec![
                "0044 20 7946 0958".to_string(),
                "+442079460958".to_string(),
                "442079460958".to_string()
            ]
        );
        assert!(phone_variants("anonymous").is_empty());
        assert!(phone_variants("+1234").is_empty());
        assert!(phone_variants("+1234567890123456").is_empty());
        // +1 with an area code starting 0 or 1 is not a North American number.
        assert!(!phone_variants("+10155550100").contains(&"(015) 555-0100".to_string()));
    }

    #[test]
    fn sosl_searches_digits_only() {
        assert_eq!(
            phone_search("+1 (415) 555-0100").as_deref(),
            Some(
                "FIND {14155550100 OR 4155550100} IN PHONE FIELDS RETURNING \
                 Contact(Id ORDER BY LastModifiedDate DESC LIMIT 1), \
                 Lead(Id WHERE IsConverted = false ORDER BY LastModifiedDate DESC LIMIT 1)"
            )
        );
        assert!(phone_search("+442079460958")
            .expect("search")
            .starts_with("FIND {442079460958} IN PHONE FIELDS"));
        assert_eq!(phone_search("} OR {x"), None);
    }

    #[test]
    fn search_results_prefer_contacts() {
        let records: Vec<Value> = serde_json::from_str(
            r#"[{"attributes":{"type":"Lead"},"Id":"00Q1"},{"attributes":{"type":"Contact"},"Id":"0031"}]"#,
        )
        .expect("json");
        assert_eq!(first_person(&records).as_deref(), Some("0031"));
        assert_eq!(first_person(&records[..1]).as_deref(), Some("00Q1"));
        assert_eq!(first_person(&[]), None);
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_summary(
                400,
                r#"[{"message":"Subject: data value too large","errorCode":"STRING_TOO_LONG","fields":["Subject"]}]"#
            ),
            "HTTP 400 STRING_TOO_LONG: Subject: data value too large"
        );
        assert_eq!(
            error_summary(
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"},{"errorCode":"X"}]"#
            ),
            "HTTP 401 INVALID_SESSION_ID: Session expired or invalid (+1 more)"
        );
        assert_eq!(
            error_summary(
                400,
                r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#
            ),
            "HTTP 400 invalid_client: invalid client credentials"
        );
        assert_eq!(error_summary(503, "<html>busy</html>"), "HTTP 503");
        assert!(refuses_field(
            r#"[{"message":"Unable to create/update fields: TaskSubtype.","errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE","fields":["TaskSubtype"]}]"#,
            "TaskSubtype"
        ));
        assert!(!refuses_field(
            r#"[{"message":"x","errorCode":"STRING_TOO_LONG"}]"#,
            "TaskSubtype"
        ));
    }

    #[test]
    fn configuration_is_checked() {
        assert!(SalesforceSink::check(&config(&[])).is_ok());
        let mut c = config(&[]);
        c.client_secret = None;
        assert!(SalesforceSink::check(&c)
            .unwrap_err()
            .contains("client_secret"));
        let mut c = config(&[]);
        c.client_id = Some(" ".into());
        assert!(SalesforceSink::check(&c).unwrap_err().contains("client_id"));
        let mut c = config(&[]);
        c.url = "ftp://acme.example".into();
        assert!(SalesforceSink::check(&c).is_err());
        c.url = "not a url".into();
        assert!(SalesforceSink::check(&c).is_err());
        for bad in [
            ("external_id_field", "Bad/Field"),
            ("api_version", "sixty"),
            ("match_customer", "yes"),
            ("time_zone", "Mars/Olympus"),
            ("colour", "blue"),
        ] {
            let err = checked(&[bad]).expect_err(bad.0);
            assert!(err.contains(bad.0), "{err}");
        }
        let s = Settings::parse(&config(&[
            ("api_version", "v61.0"),
            ("sosl_fallback", "FALSE"),
        ]))
        .expect("settings");
        assert_eq!(s.api_version, "61.0");
        assert!(!s.sosl_fallback);
        assert_eq!(s.external_id_field, DEFAULT_EXTERNAL_ID_FIELD);
    }

    #[test]
    fn api_urls_encode_the_external_id() {
        let sink = SalesforceSink::new(&config(&[]), reqwest::Client::new(), 1024).expect("sink");
        let base = reqwest::Url::parse("https://acme.my.salesforce.com/").expect("url");
        let url = sink.api_url(
            &base,
            &["sobjects", "Task", "Zoom_Engagement_Id__c", "a/b?c#d"],
        );
        assert_eq!(
            url.as_str(),
            "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Task/Zoom_Engagement_Id__c/a%2Fb%3Fc%23d"
        );
    }
}
