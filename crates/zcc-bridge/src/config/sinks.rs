//! `[[sinks]]`: what every sink has, and each kind's own `options`, typed per kind as Vector types each sink's
//! settings. Unknown keys and values of the wrong type are refused here, by name; what only the vendor's rules can
//! judge (a Salesforce API name, a HubSpot outcome GUID) the sink checks when it is built.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{secret_list, Secret};

/// `[sinks.options]` as written, before its kind gives it a type.
pub type RawOptions = toml::Table;

/// `kind` of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Http,
    Salesforce,
    Hubspot,
    Zendesk,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Http => "http",
            SinkKind::Salesforce => "salesforce",
            SinkKind::Hubspot => "hubspot",
            SinkKind::Zendesk => "zendesk",
        }
    }
}

/// One `[[sinks]]` entry. `O` is the form of `options`: read as a table (`RawOptions`), then typed by `kind`
/// (`SinkOptions`); the rest of the code sees the typed form only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig<O = SinkOptions> {
    /// Unique; names the sink in the API, the CLI, metrics and the outbox (renaming a sink orphans its queue).
    pub name: String,
    pub kind: SinkKind,
    /// `http`: the endpoint. CRMs: the API base (`https://myorg.my.salesforce.com`, `https://api.hubapi.com`,
    /// `https://acme.zendesk.com`).
    pub url: String,
    /// `http`: Standard Webhooks secrets (`whsec_...`); the first signs, all are sent (rotation).
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    /// Message types: `engagement.completed`, `engagement.updated`, and Zoom event names delivered as they arrive.
    #[serde(default = "default_deliver")]
    pub deliver: Vec<String>,
    /// Only engagements of these channels / queues (`cc_queue_id`) / directions (empty: all).
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub directions: Vec<String>,
    /// Deliveries in flight at once (per replica).
    #[serde(default = "default_sink_concurrency")]
    pub concurrency: usize,
    /// Attempts started per second at most (per replica); none: unlimited.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Whole-attempt timeout.
    #[serde(default = "default_sink_timeout")]
    pub timeout_seconds: u64,
    /// CRM credentials: OAuth client (Salesforce), API token (HubSpot private app, Zendesk API token) and the
    /// user the token belongs to (Zendesk).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub username: Option<String>,
    /// The kind's own settings (`[sinks.options]`; docs/sinks/), e.g. Salesforce's `external_id_field`.
    #[serde(default)]
    pub options: O,
}

impl SinkConfig {
    /// A sink with every optional setting at its default (what a `[[sinks]]` entry with only these keys gives).
    pub fn new(name: impl Into<String>, kind: SinkKind, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            url: url.into(),
            secrets: Vec::new(),
            deliver: default_deliver(),
            channels: Vec::new(),
            queues: Vec::new(),
            directions: Vec::new(),
            concurrency: default_sink_concurrency(),
            rate_per_second: None,
            timeout_seconds: default_sink_timeout(),
            client_id: None,
            client_secret: None,
            token: None,
            username: None,
            options: SinkOptions::defaults(kind),
        }
    }
}

fn default_deliver() -> Vec<String> {
    vec![
        "engagement.completed".to_string(),
        "engagement.updated".to_string(),
    ]
}

fn default_sink_concurrency() -> usize {
    4
}

fn default_sink_timeout() -> u64 {
    30
}

/// A sink kind's own settings. The variant always matches the sink's `kind`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SinkOptions {
    /// `kind = "http"` takes no options.
    #[default]
    Http,
    Salesforce(SalesforceOptions),
    Hubspot(HubspotOptions),
    Zendesk(ZendeskOptions),
}

impl SinkOptions {
    /// Every option of `kind` at its default.
    pub fn defaults(kind: SinkKind) -> Self {
        match kind {
            SinkKind::Http => Self::Http,
            SinkKind::Salesforce => Self::Salesforce(SalesforceOptions::default()),
            SinkKind::Hubspot => Self::Hubspot(HubspotOptions::default()),
            SinkKind::Zendesk => Self::Zendesk(ZendeskOptions::default()),
        }
    }

    /// Types `table` as `kind`'s options. Errors name the key (`unknown field "x", expected one of ...`).
    pub fn parse(kind: SinkKind, table: RawOptions) -> Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(table: RawOptions) -> Result<T, String> {
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    // toml puts the key last ("...\nin `mode`\n"); say it first.
                    let text = e.to_string();
                    match text.trim_end().rsplit_once("\nin `") {
                        Some((problem, key)) => format!("{}: {problem}", key.trim_end_matches('`')),
                        None => text.trim_end().to_string(),
                    }
                })
        }
        Ok(match kind {
            SinkKind::Http => match table.keys().next() {
                None => Self::Http,
                Some(key) => return Err(format!("an http sink takes no options (found {key:?})")),
            },
            SinkKind::Salesforce => Self::Salesforce(typed(table)?),
            SinkKind::Hubspot => Self::Hubspot(typed(table)?),
            SinkKind::Zendesk => Self::Zendesk(typed(table)?),
        })
    }

    /// `parse` from `key = "value"` pairs, the way an environment variable or a test gives them.
    pub fn from_pairs(kind: SinkKind, pairs: &[(&str, &str)]) -> Result<Self, String> {
        let table = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string())))
            .collect();
        Self::parse(kind, table)
    }
}

impl Serialize for SinkOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Http => RawOptions::new().serialize(s),
            Self::Salesforce(o) => o.serialize(s),
            Self::Hubspot(o) => o.serialize(s),
            Self::Zendesk(o) => o.serialize(s),
        }
    }
}

impl SinkConfig<RawOptions> {
    fn typed(self) -> Result<SinkConfig, String> {
        let options = SinkOptions::parse(self.kind, self.options)
            .map_err(|e| format!("sink {:?}: options: {e}", self.name))?;
        Ok(SinkConfig {
            name: self.name,
            kind: self.kind,
            url: self.url,
            secrets: self.secrets,
            deliver: self.deliver,
            channels: self.channels,
            queues: self.queues,
            directions: self.directions,
            concurrency: self.concurrency,
            rate_per_second: self.rate_per_second,
            timeout_seconds: self.timeout_seconds,
            client_id: self.client_id,
            client_secret: self.client_secret,
            token: self.token,
            username: self.username,
            options,
        })
    }
}

/// `Config::sinks`: each entry read with its options as a table, then typed by its kind.
pub(super) fn typed_sinks<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<SinkConfig>, D::Error> {
    Vec::<SinkConfig<RawOptions>>::deserialize(d)?
        .into_iter()
        .map(|sink| sink.typed().map_err(serde::de::Error::custom))
        .collect()
}

/// `kind = "salesforce"` (docs/sinks/salesforce.md). Empty strings mean the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceOptions {
    /// The Task field (External ID, Unique) holding the engagement id (default `Zoom_Engagement_Id__c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_field: Option<String>,
    /// REST API version, `NN.N` (default `60.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Task fields that get the first archived recording / transcript link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_url_field: Option<String>,
    /// Look the customer up among Contacts and Leads (`WhoId`).
    #[serde(default = "yes", deserialize_with = "flag")]
    pub match_customer: bool,
    /// One SOSL search of phone fields after SOQL finds nobody.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub sosl_fallback: bool,
    /// IANA zone whose calendar date of the engagement start becomes `ActivityDate` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        Self {
            external_id_field: None,
            api_version: None,
            recording_url_field: None,
            transcript_url_field: None,
            match_customer: true,
            sosl_fallback: true,
            time_zone: None,
        }
    }
}

/// `kind = "hubspot"` (docs/sinks/hubspot.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotOptions {
    /// The call property holding the engagement id (default `zcc_engagement_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_property: Option<String>,
    /// Zoom disposition (name or id) → HubSpot call outcome GUID: a table, or `"NAME=GUID;NAME=GUID"`.
    #[serde(
        default,
        deserialize_with = "pairs",
        serialize_with = "pairs_as_table",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub disposition_map: Vec<(String, String)>,
    /// Contact properties searched for the customer's number: a list or `"phone,mobilephone"`; none set means
    /// HubSpot's defaults, an empty list turns the phone lookup off.
    #[serde(
        default,
        deserialize_with = "some_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub contact_phone_properties: Option<Vec<String>>,
    #[serde(default)]
    pub body_format: BodyFormat,
}

/// How HubSpot's `hs_call_body` is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// Escaped HTML with line breaks and clickable links.
    #[default]
    Html,
    Text,
}

/// `kind = "zendesk"` (docs/sinks/zendesk.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskOptions {
    #[serde(default)]
    pub auth: ZendeskAuth,
    #[serde(default)]
    pub mode: ZendeskMode,
    /// Extra tags on created tickets: a list or `"a,b"`.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
}

/// What Zendesk's `token` is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZendeskAuth {
    /// An API token: Basic `{username}/token:{token}`.
    #[default]
    Token,
    /// An OAuth access token: `Authorization: Bearer`.
    Bearer,
}

/// Where an engagement goes in Zendesk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZendeskMode {
    /// A ticket per engagement.
    #[default]
    Ticket,
    /// A note on the customer's newest unsolved ticket when the engagement has none of its own.
    Comment,
}

/// Message types made from records (`delivery::sink` has the same names).
pub const PLANNED_TYPES: [&str; 3] = ["engagement.completed", "engagement.updated", "call.logged"];

/// Event types of the sources other than Zoom's webhooks (the sources' tests check their adapters stay in this
/// list): Genesys pushes and pulls, what reconciliation polls, and the agent panel's finalized workspaces.
pub const OTHER_EVENT_TYPES: [&str; 7] = [
    "genesys.user.start",
    "genesys.user.end",
    "poll.engagement",
    "poll.recording",
    "poll.inbox_message",
    "poll.note",
    "zoomapp.workspace_finalized",
];

/// Checks one `deliver` entry: a planned type, a Zoom Contact Center event name from Zoom's catalog, a Flow
/// event (`flow.<event>`), or another source's event type. A misspelling is refused with the nearest name.
pub fn check_deliver_type(name: &str) -> Result<(), String> {
    let zoom_event = name
        .strip_prefix(zoom::events::CONTACT_CENTER_PREFIX)
        .is_some_and(|event| zoom::events::CONTACT_CENTER_EVENTS.contains(&event));
    let flow_event = name.strip_prefix("flow.").is_some_and(|event| {
        !event.is_empty()
            && event.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            })
    });
    if zoom_event
        || flow_event
        || PLANNED_TYPES.contains(&name)
        || OTHER_EVENT_TYPES.contains(&name)
    {
        return Ok(());
    }
    let known = PLANNED_TYPES
        .iter()
        .chain(OTHER_EVENT_TYPES.iter())
        .map(|t| t.to_string())
        .chain(
            zoom::events::CONTACT_CENTER_EVENTS
                .iter()
                .map(|e| format!("{}{e}", zoom::events::CONTACT_CENTER_PREFIX)),
        );
    let nearest = known
        .map(|k| (strsim::jaro_winkler(name, &k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.8)
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default();
    Err(format!(
        "{name:?} is not a message type{nearest}: engagement.completed, engagement.updated, call.logged, a \
         Zoom Contact Center event (contact_center.*, Zoom's webhook catalog), flow.<event>, genesys.user.start \
         or .end, poll.<kind>, or zoomapp.workspace_finalized"
    ))
}

fn yes() -> bool {
    true
}

/// `true`/`false`, as a boolean or a string (environment variables and `key = "value"` pairs are strings).
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(Flag)
}

/// A list of strings, or one string of comma-separated items (blank items dropped).
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(item.to_string());
                }
            }
            Ok(out)
        }
    }
    d.deserialize_any(List)
}

fn some_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    list(d).map(Some)
}

/// `NAME=VALUE` pairs: a table, or one string of pairs separated by `;` or new lines (a name may hold `=`, the
/// last one splits).
fn pairs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of NAME = VALUE or a string \"NAME=VALUE;NAME=VALUE\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let mut out = Vec::new();
            for pair in v
                .split([';', '\n'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let Some((name, value)) = pair.rsplit_once('=') else {
                    return Err(E::custom(format!("{pair:?} is not NAME=VALUE")));
                };
                out.push((name.trim().to_string(), value.trim().to_string()));
            }
            if out.is_empty() {
                return Err(E::custom("no NAME=VALUE pair (leave the key out instead)"));
            }
            Ok(out)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                out.push((name.trim().to_string(), value.trim().to_string()));
            }
            Ok(out)
        }
    }
    d.deserialize_any(Pairs)
}

fn pairs_as_table<S: serde::Serializer>(
    pairs: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let table: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    table.serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: SinkKind, toml: &str) -> Result<SinkOptions, String> {
        SinkOptions::parse(kind, toml.parse::<RawOptions>().expect("toml"))
    }

    #[test]
    fn each_kind_types_its_options_and_refuses_others_by_name() {
        assert_eq!(parse(SinkKind::Http, ""), Ok(SinkOptions::Http));
        assert!(parse(SinkKind::Http, "mode = \"x\"")
            .unwrap_err()
            .contains("\"mode\""));
        let e = parse(SinkKind::Zendesk, "colour = \"red\"").unwrap_err();
        assert!(e.contains("colour") && e.contains("mode"), "{e}");
        let e = parse(SinkKind::Zendesk, "mode = \"everything\"").unwrap_err();
        assert!(e.contains("everything") && e.contains("comment"), "{e}");
        assert_eq!(
            parse(
                SinkKind::Zendesk,
                "auth = \"bearer\"\nmode = \"comment\"\ntags = \"a, b,,c\""
            ),
            Ok(SinkOptions::Zendesk(ZendeskOptions {
                auth: ZendeskAuth::Bearer,
                mode: ZendeskMode::Comment,
                tags: vec!["a".into(), "b".into(), "c".into()],
            }))
        );
        assert_eq!(
            parse(SinkKind::Zendesk, "tags = [\"a\", \" \"]"),
            parse(SinkKind::Zendesk, "tags = \"a\"")
        );
    }

    #[test]
    fn flags_lists_and_pairs_take_either_spelling() {
        let SinkOptions::Salesforce(o) = parse(
            SinkKind::Salesforce,
            "match_customer = false\nsosl_fallback = \"FALSE\"",
        )
        .unwrap() else {
            panic!("not salesforce")
        };
        assert!(!o.match_customer && !o.sosl_fallback);
        let e = parse(SinkKind::Salesforce, "match_customer = \"maybe\"").unwrap_err();
        assert!(e.contains("maybe") && e.contains("true or false"), "{e}");
        assert!(parse(SinkKind::Salesforce, "match_customer = 1").is_err());

        let from_string = parse(
            SinkKind::Hubspot,
            "disposition_map = \"Sold=a; Lost = b\"\ncontact_phone_properties = \"\"",
        )
        .unwrap();
        let SinkOptions::Hubspot(h) = &from_string else {
            panic!("not hubspot")
        };
        assert_eq!(
            h.disposition_map,
            vec![("Sold".into(), "a".into()), ("Lost".into(), "b".into())]
        );
        assert_eq!(h.contact_phone_properties, Some(vec![]));
        let from_table = parse(
            SinkKind::Hubspot,
            "contact_phone_properties = []\n[disposition_map]\nLost = \"b\"\nSold = \"a\"",
        )
        .unwrap();
        let SinkOptions::Hubspot(t) = &from_table else {
            panic!("not hubspot")
        };
        assert_eq!(t.contact_phone_properties, Some(vec![]));
        assert_eq!(t.disposition_map.len(), 2);
        assert!(parse(SinkKind::Hubspot, "disposition_map = \"Sold\"")
            .unwrap_err()
            .contains("NAME=VALUE"));
        assert!(parse(SinkKind::Hubspot, "body_format = \"pdf\"").is_err());
    }

    #[test]
    fn deliver_types_are_known_names() {
        for ok in [
            "engagement.completed",
            "call.logged",
            "contact_center.engagement_user_hold",
            "flow.screen_pop",
            "genesys.user.end",
            "poll.note",
        ] {
            assert_eq!(check_deliver_type(ok), Ok(()), "{ok}");
        }
        let e = check_deliver_type("contact_center.engagement_user_hould").unwrap_err();
        assert!(
            e.contains("did you mean \"contact_center.engagement_user_hold\""),
            "{e}"
        );
        let e = check_deliver_type("engagement.complete").unwrap_err();
        assert!(e.contains("did you mean \"engagement.completed\""), "{e}");
        assert!(check_deliver_type("flow.").is_err());
        assert!(check_deliver_type("flow.Screen Pop").is_err());
        assert!(!check_deliver_type("xyzzy")
            .unwrap_err()
            .contains("did you mean"));
    }

    #[test]
    fn options_print_back_as_they_read() {
        for (kind, text) in [
            (
                SinkKind::Salesforce,
                "api_version = \"61.0\"\nmatch_customer = false\nsosl_fallback = true\n",
            ),
            (
                SinkKind::Hubspot,
                "body_format = \"text\"\n\n[disposition_map]\nSold = \"a\"\n",
            ),
            (
                SinkKind::Zendesk,
                "auth = \"token\"\nmode = \"comment\"\ntags = [\"vip\"]\n",
            ),
        ] {
            let options = parse(kind, text).unwrap();
            let printed = toml::to_string(&options).unwrap();
            assert_eq!(printed, text);
            assert_eq!(parse(kind, &printed), Ok(options));
        }
    }
}
