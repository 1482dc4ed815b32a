//! Deterministic traffic generator: a seeded contact-center "day" of `contact_center.*` webhook events plus the
//! ground truth the bridge's engagement records must match.
//!
//! # Shapes
//!
//! Every body has the shape of Zoom's published example for its event: the `contact_center.<event>.json` samples in
//! `shared/vendor/zoom/webhooks/` (ZoomNet's copies of the examples of Zoom's Contact Center webhook reference; see
//! `shared/vendor/SOURCES.md`). The envelope is `{event, event_ts (epoch ms), payload: {account_id, object}}`, and
//! `object` holds only keys that the example of that event has, each with the example's JSON type: the engagement's
//! `engagement_direction`, `channel`, `channel_source` (on the events whose example has it), `flow_id`, `flow_name`,
//! `flow_number`; the agent as `user_id` + `user_display_name` (`display_name` on `user_*` agent events); the
//! consumer as `consumer_id`, `consumer_display_name`, `consumer_number`; and `date_time_ms` and every other `*_ms`
//! field as an ISO-8601 **string** with milliseconds. The sim sends every key of the example whose value it knows;
//! `tests/contract.rs` checks all of this against the examples, and lists the few keys the sim leaves out and why.
//! Per event:
//!
//! - `engagement_started` (no queue, agent or consumer; its `date_time_ms` is the start; `transfer_from:
//!   "zoom_phone"` + `transfer_from_id` for a call transferred in from Zoom Phone), `engagement_ended` (its
//!   `date_time_ms` is the end). Both are whole seconds, so they equal REST's second-precision times.
//! - `task_reservation_created` → `_accepted` → `engagement_user_answered` when an inbound engagement is offered to
//!   an agent (`assigned_user_id`); an offer can be `_rejected` or `_timeout` (then another agent is offered), or
//!   `_canceled` when the consumer hangs up while it rings (abandoned calls); `_completed` when the agent is done.
//!   Outbound calls are dialled by their agent: no reservation.
//! - `engagement_transfer_*`: `initiated` → `queued` → `reserved` (→ `rejected`/`timeout` → `reserved` again) →
//!   `accepted` → `completed`, or `initiated` → `queued` → `canceled`. `task_id` is the transferring agent's task,
//!   `transfer_to_task_id` the new task (the same on every step of one transfer), `user_id`/`user_display_name` and
//!   `cc_queue_id`/`queue_name` the transferring agent and queue, `transfer_to_user_id`/`_display_name` and
//!   `transfer_to_cc_queue_id`/`transfer_to_queue_name` the target. The target's `task_reservation_*` carry the new
//!   task. The receiving agent then gets `engagement_user_answered`.
//! - `recording_started` (→ `recording_paused` → `recording_resumed`) → `recording_stopped` → `recording_completed`
//!   (→ `recording_transcript_completed` with `transcript_url`), with `recording_type`, `owner_*`, `users[]`,
//!   `consumers[]`, `recording_start_time_ms`/`recording_end_time_ms` and `recording_duration` (seconds), and no
//!   download or playback URL: the bridge fetches a recording over REST after the webhook.
//! - `inbox_message_received` carries no type, URL, duration or creation time (REST does);
//!   `voicemail_transcript_completed` carries the transcript URL and the duration.
//! - `engagement_messaging_transcript_completed` and `engagement_email_transcript_completed` carry `transcript_url`
//!   (for e-mail, the engagement's e-mail messages API, as in Zoom's example).
//! - `user_login`, `user_logout`, `user_status_changed` (`previous_/current_status_id/_name`,
//!   `previous_/current_sub_status_id/_name`; ids are strings).
//!
//! # Semantics
//!
//! One flow per engagement: the flow of the queue it arrives in (the directory has one flow per queue); transfers
//! move the engagement between queues, not flows. Zoom's at-least-once habits that a correct consumer must absorb are
//! reproduced on purpose: `engagement_note_added` and `engagement_disposition_added` are re-fired with later
//! `event_ts`, notes are edited under the same `note_id`, and transcripts and recordings complete after the
//! engagement has ended.
//!
//! ❓ Guessed, not documented by Zoom: `transfer_level` (always `queue`: the sim transfers to queues), the task
//! statuses along a transfer, `task_timeout`, `auto_assign` (false), the empty `*_sub_status_id`/`_name` of statuses
//! without a sub-status, the disposition's `status`/`last_modified_time`/`modified_by` (read as: active, when and by
//! whom it was saved on the engagement), whether `engagement_user_answered` follows `engagement_transfer_accepted`,
//! `engagement_user_ended` for messaging and e-mail, `recording_duration` excluding paused time, and which party
//! ends a call (`engagement_user_ended` or `engagement_consumer_ended`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{iso_time, iso_time_ms, opaque_id, urls};

/// Zoom's REST base; URLs inside payloads are built from it.
pub const DEFAULT_API_BASE: &str = "https://api.zoom.us/v2";
/// 2026-11-21T09:00:00Z.
pub const DEFAULT_START_MS: i64 = 1_795_251_600_000;
/// The simulated account.
pub const DEFAULT_ACCOUNT_ID: &str = "simAcct7Qx2LpN4vR8sT0w";

const EVENT_PREFIX: &str = "contact_center.";

/// Every event the generator can emit (without the `contact_center.` prefix). A day of a few dozen engagements has
/// the common ones; the rare branches (rejected and timed-out offers, canceled transfers, paused recordings, calls
/// from Zoom Phone) show up in a few hundred.
pub const EVENT_KINDS: &[&str] = &[
    "engagement_started",
    "engagement_ended",
    "task_reservation_created",
    "task_reservation_accepted",
    "task_reservation_rejected",
    "task_reservation_timeout",
    "task_reservation_canceled",
    "task_reservation_completed",
    "engagement_user_answered",
    "engagement_consumer_answered",
    "engagement_user_hold",
    "engagement_user_unhold",
    "engagement_user_muted",
    "engagement_user_unmuted",
    "engagement_user_ended",
    "engagement_consumer_ended",
    "engagement_transfer_initiated",
    "engagement_transfer_queued",
    "engagement_transfer_reserved",
    "engagement_transfer_rejected",
    "engagement_transfer_timeout",
    "engagement_transfer_accepted",
    "engagement_transfer_canceled",
    "engagement_transfer_completed",
    "engagement_wrap_up_started",
    "engagement_wrap_up_ended",
    "engagement_note_added",
    "engagement_disposition_added",
    "recording_started",
    "recording_paused",
    "recording_resumed",
    "recording_stopped",
    "recording_completed",
    "recording_transcript_completed",
    "engagement_messaging_transcript_completed",
    "engagement_email_transcript_completed",
    "inbox_message_received",
    "voicemail_transcript_completed",
    "user_login",
    "user_logout",
    "user_status_changed",
];

/// Seconds a task may wait (`task_timeout`, `transfer_to_task_timeout`); ❓ the value of Zoom's examples.
const TASK_TIMEOUT_S: i64 = 86_400;
/// How long an offer rings before `task_reservation_timeout`. ❓ A queue setting; 20 s here.
const RING_TIMEOUT_MS: i64 = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Epoch ms of the first event of the day (agent logins); engagements start two minutes later.
    pub start_ms: i64,
    pub engagements: usize,
    pub api_base: String,
    pub account_id: String,
    /// Seconds between one engagement's start and the next (uniform in `lo..=hi`, plus under a second). The
    /// default, 15 to 150 s, is a small center's day; `(0, 1)` packs about 80,000 engagements into a day.
    #[serde(default = "default_arrival_gap")]
    pub arrival_gap_secs: (i64, i64),
}

fn default_arrival_gap() -> (i64, i64) {
    (15, 150)
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            start_ms: DEFAULT_START_MS,
            engagements: 50,
            api_base: DEFAULT_API_BASE.to_owned(),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            arrival_gap_secs: default_arrival_gap(),
        }
    }
}

/// One webhook event in its "true" position in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimEvent {
    pub event_ts: i64,
    /// The full envelope `{"event", "event_ts", "payload": {"account_id", "object"}}`.
    pub body: Value,
}

impl SimEvent {
    /// The full event name, e.g. `contact_center.engagement_started`.
    pub fn event(&self) -> &str {
        self.body.get("event").and_then(Value::as_str).unwrap_or("")
    }

    /// `payload.object`.
    pub fn object(&self) -> Option<&Value> {
        self.body.get("payload")?.get("object")
    }

    pub fn engagement_id(&self) -> Option<&str> {
        self.object()?.get("engagement_id")?.as_str()
    }

    /// Compact JSON, the bytes Zoom signs and sends.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).expect("a serde_json::Value always serializes")
    }
}

/// A generated day: events sorted by `event_ts`, the truth they imply and the account's static data.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub events: Vec<SimEvent>,
    pub truth: GroundTruth,
    pub directory: Directory,
    /// The REST base every URL of the scenario is built from ([`GeneratorConfig::api_base`] without a trailing
    /// `/`); see [`crate::urls`].
    pub api_base: String,
    /// `message_id` → seconds of the voicemail's audio: what Zoom's REST API reports as `message_duration` but
    /// `inbox_message_received` does not carry (only `voicemail_transcript_completed` does, when it fires).
    pub voicemail_durations: BTreeMap<String, i64>,
}

/// What the bridge's records must contain once every event has been processed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Sorted by `engagement_id`.
    pub engagements: Vec<TruthEngagement>,
    /// `user_login`, `user_status_changed`, `user_logout`: events without an engagement.
    pub non_engagement_events: usize,
}

impl GroundTruth {
    pub fn engagement(&self, engagement_id: &str) -> Option<&TruthEngagement> {
        self.engagements
            .binary_search_by(|e| e.engagement_id.as_str().cmp(engagement_id))
            .ok()
            .and_then(|i| self.engagements.get(i))
    }

    /// Every distinct event of the scenario.
    pub fn total_events(&self) -> usize {
        self.non_engagement_events
            + self
                .engagements
                .iter()
                .map(|e| e.event_count)
                .sum::<usize>()
    }
}

/// One engagement's truth, derived from exactly the events emitted for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthEngagement {
    pub engagement_id: String,
    /// `channel` of `engagement_started`: `voice`, `video`, `messaging` or `email`.
    pub channel: String,
    /// `engagement_direction` of `engagement_started`: `inbound` or `outbound`.
    pub direction: String,
    /// `date_time_ms` of `engagement_started` and `engagement_ended`: whole seconds, equal to REST's
    /// `start_time`/`end_time`.
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    /// Every `cc_queue_id` on any event of the engagement (a transfer's target queue counts once an event names it
    /// as `cc_queue_id`: a canceled transfer's target does not).
    pub queue_ids: BTreeSet<String>,
    /// The agents who handled it: `user_id` of `engagement_user_answered` and `transfer_to_user_id` of
    /// `engagement_transfer_accepted` (offered agents who rejected or let an offer time out are not agents).
    pub agent_ids: BTreeSet<String>,
    /// Every top-level `consumer_number` (web chat, video and e-mail engagements have none).
    pub consumer_numbers: BTreeSet<String>,
    /// `note_id` → the text with the latest `last_modified_time`.
    pub notes: BTreeMap<String, String>,
    pub disposition_ids: BTreeSet<String>,
    /// `recording_id` of `recording_started` / `recording_completed`.
    pub recording_ids: BTreeSet<String>,
    /// `(type, id)`: `("recording", recording_id)`, `("messaging", engagement_id)`, `("email", engagement_id)`,
    /// `("voicemail", message_id)`; present only when the matching `*_transcript_completed` event was fired.
    pub transcripts: BTreeSet<(String, String)>,
    /// `message_id`s of `inbox_message_received` voicemails.
    pub voicemail_ids: BTreeSet<String>,
    /// Distinct events, re-fires included (they differ in `event_ts`), emitter duplicates not.
    pub event_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub user_id: String,
    pub display_name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub cc_queue_id: String,
    pub queue_name: String,
    /// The queue's voicemail inbox.
    pub inbox_id: String,
    pub inbox_name: String,
}

/// A flow (entry point): every engagement enters the flow of the queue it arrives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// `ZWW` + 32 hex digits, the shape of flow ids in Zoom's webhook examples.
    pub flow_id: String,
    pub flow_name: String,
    /// E.164 number of the flow (`flow_number` on phone-based engagements).
    pub flow_number: String,
    /// The queue the flow routes to.
    pub cc_queue_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub disposition_id: String,
    pub disposition_name: String,
    #[serde(default)]
    pub disposition_description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub consumer_id: String,
    pub consumer_display_name: String,
    /// E.164, unique in the directory.
    pub consumer_number: String,
}

/// The account's static data (what Zoom's REST API would list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub account_id: String,
    pub agents: Vec<Agent>,
    pub queues: Vec<Queue>,
    /// One per queue, in the queues' order.
    #[serde(default)]
    pub flows: Vec<Flow>,
    pub dispositions: Vec<Disposition>,
    pub consumers: Vec<Consumer>,
}

impl Directory {
    /// The flow of the queue `cc_queue_id`.
    pub fn flow_of_queue(&self, cc_queue_id: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.cc_queue_id == cc_queue_id)
    }

    pub fn agent(&self, user_id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.user_id == user_id)
    }

    pub fn consumer(&self, consumer_id: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.consumer_id == consumer_id)
    }

    pub fn consumer_by_number(&self, number: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.consumer_number == number)
    }
}

const AGENT_NAMES: &[&str] = &[
    "Avery Chen",
    "Jordan Patel",
    "Sofia Martinez",
    "Liam O'Brien",
    "Maya Johnson",
    "Noah Kim",
    "Priya Sharma",
    "Lucas Silva",
    "Emma Rossi",
    "Kenji Watanabe",
    "Amara Okafor",
    "Elena Novak",
];
const AGENT_COUNT: usize = 8;
const QUEUE_NAMES: &[&str] = &["Sales", "Support", "Billing", "Retention"];
const DISPOSITION_NAMES: &[(&str, &str)] = &[
    ("Inquiry", "The consumer asked for information."),
    ("Resolved", "The issue was solved during the engagement."),
    (
        "Follow-up required",
        "Someone must get back to the consumer.",
    ),
    ("Sale", "The consumer bought something."),
    ("Complaint", "The consumer complained."),
    ("Callback scheduled", "A callback was agreed."),
    ("Wrong number", "The consumer reached the wrong business."),
    ("Escalated", "Handed to a supervisor or another team."),
];
const CONSUMER_FIRST: &[&str] = &[
    "Jill", "Marcus", "Ana", "Tom", "Grace", "Omar", "Hannah", "Diego", "Chloe", "Ivan", "Leila",
    "Sam",
];
const CONSUMER_LAST: &[&str] = &[
    "Walker", "Nguyen", "Fischer", "Brooks", "Haddad", "Lopez", "Schmidt", "Reyes", "Moreau",
    "Park",
];
const AREA_CODES: &[u32] = &[205, 312, 415, 512, 617, 646, 702, 808];
const CONSUMER_POOL: usize = 40;
const NOTE_TEXTS: &[&str] = &[
    "Customer asked about the status of order #{n}.",
    "Caller reports login failures since the last update; reset the password.",
    "Requested a refund for invoice {n}; approved per policy.",
    "Customer wants to upgrade to the premium plan; sent pricing.",
    "Verified identity with the last four digits of the account.",
    "Promised a callback tomorrow before noon.",
    "Escalated to tier 2 after basic troubleshooting.",
    "Address change requested; updated in the CRM.",
    "Customer unhappy with the delivery delay; offered a 10% credit.",
    "Explained the late fee on statement {n}; customer accepted.",
];
const NOTE_EDITS: &[&str] = &[
    " Update: resolved after follow-up.",
    " Update: customer confirmed by email.",
    " Correction: the reference number is {n}.",
    " Update: ticket {n} opened.",
];
/// ZCC agent statuses `(status_id, status_name)` (reference §7.2).
const OFFLINE: (&str, &str) = ("0", "Offline");
const READY: (&str, &str) = ("1", "Ready");
const NOT_READY: (&str, &str) = ("2", "Not Ready");
/// Default Not-Ready reasons `(sub_status_id, sub_status_name)` (reference §7.2).
const BREAK_REASONS: &[(&str, &str)] = &[
    ("20", "Break"),
    ("21", "Meal"),
    ("22", "Training"),
    ("23", "Meeting"),
];
/// No sub-status. ❓ Whether Zoom sends empty strings or leaves the keys out.
const NO_SUB_STATUS: (&str, &str) = ("", "");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    VoiceInbound,
    VoiceOutbound,
    Voicemail,
    Abandoned,
    Video,
    Messaging,
    Email,
}

/// Share of each kind of engagement, in percent.
const KIND_WEIGHTS: &[(Kind, u32)] = &[
    (Kind::VoiceInbound, 44),
    (Kind::VoiceOutbound, 8),
    (Kind::Voicemail, 7),
    (Kind::Abandoned, 4),
    (Kind::Video, 9),
    (Kind::Messaging, 19),
    (Kind::Email, 9),
];
const TRANSFER_WEIGHTS: &[(usize, u32)] = &[(0, 78), (1, 17), (2, 5)];
const NOTE_COUNT_WEIGHTS: &[(usize, u32)] = &[(0, 30), (1, 35), (2, 25), (3, 10)];

impl Kind {
    fn channel(self) -> &'static str {
        match self {
            Kind::VoiceInbound | Kind::VoiceOutbound | Kind::Voicemail | Kind::Abandoned => "voice",
            Kind::Video => "video",
            Kind::Messaging => "messaging",
            Kind::Email => "email",
        }
    }

    fn can_transfer(self) -> bool {
        matches!(
            self,
            Kind::VoiceInbound | Kind::VoiceOutbound | Kind::Video | Kind::Messaging
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    kind: Kind,
    transfers: usize,
}

/// Generates the scenario for `config`; the same config always yields the same scenario.
pub fn generate(config: &GeneratorConfig) -> Scenario {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let directory = directory(&mut rng, &config.account_id);
    let mut gen = Gen {
        rng,
        account_id: config.account_id.clone(),
        api_base: config.api_base.trim_end_matches('/').to_owned(),
        busy_until: vec![i64::MIN; directory.agents.len()],
        directory,
        voicemail_durations: BTreeMap::new(),
    };

    let plans = gen.plans(config.engagements);
    let mut events = Vec::new();
    let mut truths = Vec::with_capacity(plans.len());
    let mut start = floor_second(config.start_ms) + 120_000;
    let mut day_end = start;
    for plan in &plans {
        let eng = gen.engagement(start, plan);
        day_end = day_end.max(eng.last_ts);
        events.extend(eng.events);
        truths.push(eng.truth);
        let (lo, hi) = config.arrival_gap_secs;
        start += gen.secs(lo.max(0), hi.max(lo.max(0))) + gen.rng.random_range(0..1000);
        start = floor_second(start);
    }
    let agent_events = gen.agent_day(floor_second(config.start_ms), day_end);
    let non_engagement_events = agent_events.len();
    events.extend(agent_events);
    // Stable: events of one engagement keep their emission order on equal timestamps.
    events.sort_by_key(|e| e.event_ts);
    truths.sort_by(|a, b| a.engagement_id.cmp(&b.engagement_id));

    Scenario {
        events,
        truth: GroundTruth {
            engagements: truths,
            non_engagement_events,
        },
        directory: gen.directory,
        api_base: gen.api_base,
        voicemail_durations: gen.voicemail_durations,
    }
}

fn directory(rng: &mut StdRng, account_id: &str) -> Directory {
    let mut names = AGENT_NAMES.to_vec();
    names.shuffle(rng);
    let agents = names
        .into_iter()
        .take(AGENT_COUNT)
        .map(|name| Agent {
            user_id: opaque_id(rng),
            display_name: name.to_owned(),
            email: format!(
                "{}@example.com",
                name.to_lowercase()
                    .replace(' ', ".")
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "")
            ),
        })
        .collect();
    let queues: Vec<Queue> = QUEUE_NAMES
        .iter()
        .map(|name| Queue {
            cc_queue_id: opaque_id(rng),
            queue_name: (*name).to_owned(),
            inbox_id: opaque_id(rng),
            inbox_name: format!("{name} Voicemail"),
        })
        .collect();
    let flows = queues
        .iter()
        .enumerate()
        .map(|(i, q)| Flow {
            flow_id: zoom_hex_id(rng, "ZWW"),
            flow_name: format!("{} Flow", q.queue_name),
            flow_number: format!("+1800555{:04}", 100 + i),
            cc_queue_id: q.cc_queue_id.clone(),
        })
        .collect();
    let dispositions = DISPOSITION_NAMES
        .iter()
        .map(|(name, description)| Disposition {
            disposition_id: opaque_id(rng),
            disposition_name: (*name).to_owned(),
            disposition_description: (*description).to_owned(),
        })
        .collect();
    let mut numbers = HashSet::new();
    let mut consumers = Vec::with_capacity(CONSUMER_POOL);
    while consumers.len() < CONSUMER_POOL {
        let first = CONSUMER_FIRST.choose(rng).copied().unwrap_or("Jill");
        let last = CONSUMER_LAST.choose(rng).copied().unwrap_or("Walker");
        let area = AREA_CODES.choose(rng).copied().unwrap_or(205);
        let consumer = Consumer {
            consumer_id: opaque_id(rng),
            consumer_display_name: format!("{first} {last}"),
            consumer_number: format!(
                "+1{area}{}{:06}",
                rng.random_range(2..10),
                rng.random_range(0..1_000_000)
            ),
        };
        // Numbers identify consumers on events that carry no consumer id (`inbox_message_received`).
        if numbers.insert(consumer.consumer_number.clone()) {
            consumers.push(consumer);
        }
    }
    Directory {
        account_id: account_id.to_owned(),
        agents,
        queues,
        flows,
        dispositions,
        consumers,
    }
}

/// `prefix` + 32 upper-case hex digits: the shape of flow (`ZWW`), task (`ZWT`) and task reservation (`ZWR`) ids in
/// Zoom's examples.
fn zoom_hex_id<R: Rng + ?Sized>(rng: &mut R, prefix: &str) -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 16] = rng.random();
    let mut out = String::with_capacity(prefix.len() + 32);
    out.push_str(prefix);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

fn floor_second(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

fn ceil_second(ms: i64) -> i64 {
    floor_second(ms + 999)
}

fn weighted<T: Copy>(rng: &mut StdRng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for &(value, weight) in table {
        if pick < weight {
            return value;
        }
        pick -= weight;
    }
    table[0].0
}

fn envelope(account_id: &str, name: &str, ts: i64, object: Value) -> Value {
    json!({
        "event": format!("{EVENT_PREFIX}{name}"),
        "event_ts": ts,
        "payload": {"account_id": account_id, "object": object},
    })
}

/// The keys of an engagement event that come from the engagement's state (see [`Eng::context`]), per event, as Zoom's
/// example of the event has them. Event-specific keys are added by the emitter of each event.
fn context_keys(name: &str) -> &'static [&'static str] {
    /// Agent-and-consumer events: answered, hold, wrap-up, notes, dispositions, ...
    const ENGAGEMENT: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "channel_source",
        "date_time_ms",
        "flow_id",
        "flow_name",
        "flow_number",
        "cc_queue_id",
        "queue_name",
        "user_id",
        "user_display_name",
        "consumer_id",
        "consumer_display_name",
        "consumer_number",
    ];
    /// The same without `channel_source` (mute, unmute, consumer ended) and the transfers.
    const NO_SOURCE: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "date_time_ms",
        "flow_id",
        "flow_name",
        "flow_number",
        "cc_queue_id",
        "queue_name",
        "user_id",
        "user_display_name",
        "consumer_id",
        "consumer_display_name",
        "consumer_number",
    ];
    const STARTED: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "flow_id",
        "flow_name",
        "date_time_ms",
    ];
    const ENDED: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "channel_source",
        "flow_id",
        "flow_name",
        "date_time_ms",
    ];
    const RESERVATION: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "channel_source",
        "flow_id",
        "flow_name",
        "cc_queue_id",
        "queue_name",
    ];
    const RESERVATION_OVER: &[&str] = &[
        "engagement_id",
        "channel",
        "channel_source",
        "flow_id",
        "flow_name",
        "cc_queue_id",
        "queue_name",
    ];
    const RECORDING_AT: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "date_time_ms",
        "flow_id",
        "flow_name",
        "cc_queue_id",
        "queue_name",
    ];
    const RECORDING_DONE: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "flow_id",
        "flow_name",
        "cc_queue_id",
        "queue_name",
    ];
    const INBOX: &[&str] = &[
        "engagement_id",
        "engagement_direction",
        "channel",
        "cc_queue_id",
        "queue_name",
        "flow_id",
        "flow_name",
        "flow_number",
        "consumer_number",
        "date_time_ms",
    ];
    const VOICEMAIL_TRANSCRIPT: &[&str] = &[
        "engagement_id",
        "date_time_ms",
        "flow_id",
        "flow_name",
        "queue_name",
        "cc_queue_id",
        "consumer_number",
        "consumer_id",
        "consumer_display_name",
    ];
    match name {
        "engagement_started" => STARTED,
        "engagement_ended"
        | "engagement_messaging_transcript_completed"
        | "engagement_email_transcript_completed" => ENDED,
        "task_reservation_created" | "task_reservation_accepted" | "task_reservation_completed" => {
            RESERVATION
        }
        "task_reservation_rejected" | "task_reservation_canceled" | "task_reservation_timeout" => {
            RESERVATION_OVER
        }
        "engagement_user_muted" | "engagement_user_unmuted" | "engagement_consumer_ended" => {
            NO_SOURCE
        }
        n if n.starts_with("engagement_transfer_") => NO_SOURCE,
        "recording_started" | "recording_paused" | "recording_resumed" | "recording_stopped" => {
            RECORDING_AT
        }
        "recording_completed" | "recording_transcript_completed" => RECORDING_DONE,
        "inbox_message_received" => INBOX,
        "voicemail_transcript_completed" => VOICEMAIL_TRANSCRIPT,
        _ => ENGAGEMENT,
    }
}

struct Gen {
    rng: StdRng,
    account_id: String,
    api_base: String,
    directory: Directory,
    /// Per agent: when the agent is next free (a soft constraint; overload falls back to the least busy agent).
    busy_until: Vec<i64>,
    voicemail_durations: BTreeMap<String, i64>,
}

/// A note as Zoom currently holds it.
#[derive(Debug, Clone)]
struct NoteState {
    note_id: String,
    text: String,
    author: usize,
    /// Whole seconds.
    last_modified_ms: i64,
}

/// A disposition saved on the engagement.
#[derive(Debug, Clone, Copy)]
struct SavedDisposition {
    index: usize,
    agent: usize,
    /// Whole seconds.
    saved_ms: i64,
}

struct Recording {
    id: String,
    channel: &'static str,
    start_ms: i64,
    end_ms: i64,
    /// Milliseconds spent paused.
    paused_ms: i64,
    agent: usize,
    queue: usize,
    on_demand: bool,
}

/// A task offered to an agent.
#[derive(Debug, Clone)]
struct Reservation {
    id: String,
    task_id: String,
    agent: usize,
    queue: usize,
    created_ms: i64,
}

/// One transfer (all its steps share the tasks).
struct Transfer {
    task_id: String,
    to_task_id: String,
    transfer_type: &'static str,
    from_agent: usize,
    from_queue: usize,
    to_queue: usize,
}

/// The outcome of offering a task until an agent accepts it.
struct Offer {
    agent: usize,
    reservation: Reservation,
    accepted_ms: i64,
}

impl Gen {
    /// Random whole seconds in `lo..=hi`, as milliseconds.
    fn secs(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi) * 1000
    }

    /// Random milliseconds in `lo..=hi`.
    fn millis(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// A random instant in `[lo, hi]`, or `lo` when the window is empty.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        }
    }

    fn plans(&mut self, n: usize) -> Vec<Plan> {
        let mut kinds = Vec::with_capacity(n);
        // Every kind appears at least once when there is room, so small scenarios still cover every path.
        if n >= KIND_WEIGHTS.len() {
            kinds.extend(KIND_WEIGHTS.iter().map(|(k, _)| *k));
        }
        while kinds.len() < n {
            kinds.push(weighted(&mut self.rng, KIND_WEIGHTS));
        }
        kinds.shuffle(&mut self.rng);
        let mut plans: Vec<Plan> = kinds
            .into_iter()
            .map(|kind| Plan {
                kind,
                transfers: if kind.can_transfer() {
                    weighted(&mut self.rng, TRANSFER_WEIGHTS)
                } else {
                    0
                },
            })
            .collect();
        if n >= KIND_WEIGHTS.len() && plans.iter().all(|p| p.transfers == 0) {
            if let Some(p) = plans.iter_mut().find(|p| p.kind == Kind::VoiceInbound) {
                p.transfers = 1;
            }
        }
        plans
    }

    fn pick_agent(&mut self, at: i64, exclude: &[usize]) -> usize {
        let candidates: Vec<usize> = (0..self.busy_until.len())
            .filter(|i| !exclude.contains(i))
            .collect();
        let free: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.busy_until[i] <= at)
            .collect();
        if let Some(&i) = free.choose(&mut self.rng) {
            return i;
        }
        candidates
            .into_iter()
            .min_by_key(|&i| self.busy_until[i])
            .unwrap_or(0)
    }

    fn occupy(&mut self, agent: usize, until: i64) {
        if let Some(b) = self.busy_until.get_mut(agent) {
            *b = (*b).max(until);
        }
    }

    fn other_queue(&mut self, queue: usize) -> usize {
        let n = self.directory.queues.len();
        if n < 2 {
            return queue;
        }
        (queue + self.rng.random_range(1..n)) % n
    }

    fn note_text(&mut self, table: &[&str]) -> String {
        let template = table.choose(&mut self.rng).copied().unwrap_or("Note.");
        let n = self.rng.random_range(1000..100_000);
        template.replace("{n}", &n.to_string())
    }

    fn agent_fields(&self, agent: usize) -> (String, String) {
        let a = &self.directory.agents[agent];
        (a.user_id.clone(), a.display_name.clone())
    }

    fn queue_fields(&self, queue: usize) -> (String, String) {
        let q = &self.directory.queues[queue];
        (q.cc_queue_id.clone(), q.queue_name.clone())
    }

    fn engagement(&mut self, start: i64, plan: &Plan) -> Eng {
        let kind = plan.kind;
        let channel = kind.channel();
        let channel_source = match kind {
            Kind::Video => ["in_app_video", "web_video", "kiosk_video"]
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("web_video"),
            Kind::Messaging => [
                "web_chat",
                "in_app_chat",
                "sms",
                "whatsapp",
                "facebook_messenger",
            ]
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("web_chat"),
            Kind::Email => "email_address",
            _ => "voice",
        };
        let direction = if kind == Kind::VoiceOutbound {
            "outbound"
        } else {
            "inbound"
        };
        let consumer = self
            .directory
            .consumers
            .choose(&mut self.rng)
            .cloned()
            .expect("the consumer pool is never empty");
        let queue = self.rng.random_range(0..self.directory.queues.len());
        let flow = self.directory.flows[queue].clone();
        let mut eng = Eng {
            account_id: self.account_id.clone(),
            direction,
            channel,
            channel_source,
            // Only phone-based sources know numbers: the consumer's, the flow's, a task's caller and callee.
            phone: matches!(channel_source, "voice" | "sms" | "whatsapp"),
            flow,
            consumer,
            queue: Some(self.queue_fields(queue)),
            agent: None,
            used: HashSet::new(),
            events: Vec::new(),
            truth: TruthEngagement {
                engagement_id: opaque_id(&mut self.rng),
                ..TruthEngagement::default()
            },
            note_versions: BTreeMap::new(),
            last_ts: start,
        };
        // Some calls reach the contact center transferred from a Zoom Phone user.
        let started = if kind == Kind::VoiceInbound && self.rng.random_bool(0.1) {
            let call_id: String = (0..19)
                .map(|i| {
                    let lo = if i == 0 { 1 } else { 0 };
                    char::from(b'0' + self.rng.random_range(lo..10u8))
                })
                .collect();
            json!({"transfer_from": "zoom_phone", "transfer_from_id": call_id})
        } else {
            json!({})
        };
        eng.emit("engagement_started", start, started);

        match kind {
            Kind::Abandoned => self.abandoned(&mut eng, start, queue),
            Kind::Voicemail => self.voicemail(&mut eng, start, queue),
            _ => self.handled(&mut eng, start, plan, queue),
        }
        eng
    }

    /// The consumer hangs up before anyone answers, sometimes while an agent's phone rings.
    fn abandoned(&mut self, eng: &mut Eng, start: i64, queue: usize) {
        let hang_up = start + self.secs(5, 120) + self.millis(0, 999);
        if self.rng.random_bool(0.5) {
            let offered = self.between(start + 2000, hang_up - 3000);
            let agent = self.pick_agent(offered, &[]);
            let reservation = Reservation {
                id: zoom_hex_id(&mut self.rng, "ZWR"),
                task_id: zoom_hex_id(&mut self.rng, "ZWT"),
                agent,
                queue,
                created_ms: offered,
            };
            self.reservation_event(eng, "task_reservation_created", &reservation, offered);
            let canceled = hang_up + self.millis(50, 400);
            self.reservation_event(eng, "task_reservation_canceled", &reservation, canceled);
        }
        eng.emit("engagement_consumer_ended", hang_up, json!({}));
        eng.ended(ceil_second(hang_up + 500));
    }

    fn voicemail(&mut self, eng: &mut Eng, start: i64, queue: usize) {
        let duration_s = self.rng.random_range(8..=120);
        let hang_up = start + self.secs(15, 60) + duration_s * 1000 + self.millis(0, 999);
        eng.emit("engagement_consumer_ended", hang_up, json!({}));
        let end = ceil_second(hang_up + 1);
        eng.ended(end);
        let message_id = opaque_id(&mut self.rng);
        let q = self.directory.queues[queue].clone();
        let received = end + self.millis(2000, 15_000);
        eng.emit(
            "inbox_message_received",
            received,
            json!({"message_id": message_id, "inbox_id": q.inbox_id, "inbox_name": q.inbox_name}),
        );
        self.voicemail_durations
            .insert(message_id.clone(), duration_s);
        if self.rng.random_bool(0.65) {
            let at = received + self.rng.random_range(30..=180) * 1000;
            let url = urls::voicemail_transcript(&self.api_base, &message_id);
            eng.emit(
                "voicemail_transcript_completed",
                at,
                json!({
                    "message_id": message_id, "inbox_id": q.inbox_id, "inbox_name": q.inbox_name,
                    "transcript_url": url, "message_duration": duration_s, "status": "normal",
                }),
            );
        }
    }

    /// `task_reservation_*` for `reservation` at `ts`.
    fn reservation_event(
        &self,
        eng: &mut Eng,
        name: &'static str,
        reservation: &Reservation,
        ts: i64,
    ) -> i64 {
        let ts = eng.slot(name, ts);
        let (user_id, _) = self.agent_fields(reservation.agent);
        let (cc_queue_id, queue_name) = self.queue_fields(reservation.queue);
        let (caller, callee) = eng.caller_callee();
        eng.put(
            name,
            ts,
            json!({
                "task_reservation_id": reservation.id, "task_id": reservation.task_id,
                "assigned_user_id": user_id, "cc_queue_id": cc_queue_id, "queue_name": queue_name,
                "created_time_ms": iso_time_ms(reservation.created_ms),
                "last_modified_time_ms": iso_time_ms(ts),
                "auto_assign": false, "task_timeout": TASK_TIMEOUT_S,
                "caller_number": caller, "callee_number": callee,
            }),
        );
        ts
    }

    /// `engagement_transfer_*` for `transfer` at `ts`; `to_agent` once a target agent is reserved.
    fn transfer_event(
        &self,
        eng: &mut Eng,
        name: &'static str,
        transfer: &Transfer,
        ts: i64,
        to_agent: Option<usize>,
        statuses: (&str, Option<&str>),
    ) -> i64 {
        let (user_id, user_name) = self.agent_fields(transfer.from_agent);
        let (cc_queue_id, queue_name) = self.queue_fields(transfer.from_queue);
        let (to_queue_id, to_queue_name) = self.queue_fields(transfer.to_queue);
        let (to_user_id, to_user_name) = match to_agent.map(|a| self.agent_fields(a)) {
            Some((id, name)) => (Some(id), Some(name)),
            None => (None, None),
        };
        eng.emit(
            name,
            ts,
            json!({
                "task_id": transfer.task_id, "transfer_to_task_id": transfer.to_task_id,
                "task_status": statuses.0, "transfer_to_task_status": statuses.1,
                "task_timeout": TASK_TIMEOUT_S, "transfer_to_task_timeout": TASK_TIMEOUT_S,
                "transfer_level": "queue", "transfer_type": transfer.transfer_type,
                "user_id": user_id, "user_display_name": user_name,
                "cc_queue_id": cc_queue_id, "queue_name": queue_name,
                "transfer_to_cc_queue_id": to_queue_id, "transfer_to_queue_name": to_queue_name,
                "transfer_to_user_id": to_user_id, "transfer_to_user_display_name": to_user_name,
            }),
        )
    }

    /// Offers a task to agents (not `exclude`) from `at` until one accepts; a transfer's steps are fired along.
    fn offer(
        &mut self,
        eng: &mut Eng,
        task_id: &str,
        queue: usize,
        mut at: i64,
        exclude: Option<usize>,
        transfer: Option<&Transfer>,
    ) -> Offer {
        let av = matches!(eng.channel, "voice" | "video");
        let mut declined: Vec<usize> = exclude.into_iter().collect();
        loop {
            let agent = self.pick_agent(at, &declined);
            if let Some(t) = transfer {
                at = self.transfer_event(
                    eng,
                    "engagement_transfer_reserved",
                    t,
                    at,
                    Some(agent),
                    ("assigned", Some("reserved")),
                );
            }
            let created = at + self.millis(1, 50);
            let reservation = Reservation {
                id: zoom_hex_id(&mut self.rng, "ZWR"),
                task_id: task_id.to_owned(),
                agent,
                queue,
                created_ms: created,
            };
            let created =
                self.reservation_event(eng, "task_reservation_created", &reservation, created);
            // At most two unanswered offers, then someone takes it.
            if declined.len() < 2 + usize::from(exclude.is_some()) && self.rng.random_bool(0.12) {
                let (reservation_event, transfer_event, over) = if self.rng.random_bool(0.5) {
                    let over = created + self.secs(2, 8) + self.millis(0, 999);
                    (
                        "task_reservation_rejected",
                        "engagement_transfer_rejected",
                        over,
                    )
                } else {
                    let over = created + RING_TIMEOUT_MS + self.millis(0, 300);
                    (
                        "task_reservation_timeout",
                        "engagement_transfer_timeout",
                        over,
                    )
                };
                let over = self.reservation_event(eng, reservation_event, &reservation, over);
                if let Some(t) = transfer {
                    let statuses = if transfer_event == "engagement_transfer_timeout" {
                        ("assigned", None)
                    } else {
                        ("assigned", Some("pending"))
                    };
                    let at = over + self.millis(1, 50);
                    self.transfer_event(eng, transfer_event, t, at, Some(agent), statuses);
                }
                declined.push(agent);
                at = over + self.millis(500, 3000);
                continue;
            }
            let ring = if av {
                self.secs(2, 12)
            } else {
                self.secs(3, 30)
            } + self.millis(0, 999);
            let accepted = self.reservation_event(
                eng,
                "task_reservation_accepted",
                &reservation,
                created + ring,
            );
            if let Some(t) = transfer {
                let at = accepted + self.millis(1, 30);
                self.transfer_event(
                    eng,
                    "engagement_transfer_accepted",
                    t,
                    at,
                    Some(agent),
                    ("assigned", Some("assigned")),
                );
            }
            return Offer {
                agent,
                reservation,
                accepted_ms: accepted,
            };
        }
    }

    /// An engagement handled by one or more agents: offer and answer, talk segments separated by transfers, end,
    /// wrap-up.
    fn handled(&mut self, eng: &mut Eng, start: i64, plan: &Plan, mut queue: usize) {
        let kind = plan.kind;
        let av = matches!(kind.channel(), "voice" | "video");
        let mut task_id = zoom_hex_id(&mut self.rng, "ZWT");
        let (mut agent, mut reservation, mut t) = if kind == Kind::VoiceOutbound {
            // The agent dials: no routing, no reservation.
            let t = start + self.millis(300, 1500);
            (self.pick_agent(t, &[]), None, t)
        } else {
            let wait = match kind {
                Kind::VoiceInbound => self.secs(5, 90),
                Kind::Video => self.secs(5, 60),
                Kind::Messaging => self.secs(10, 180),
                _ => self.secs(60, 1800),
            } + self.millis(0, 999);
            let offer = self.offer(eng, &task_id, queue, start + wait, None, None);
            let answered = offer.accepted_ms + self.millis(50, 400);
            (offer.agent, Some(offer.reservation), answered)
        };
        eng.agent = Some(self.agent_fields(agent));
        eng.emit("engagement_user_answered", t, json!({}));
        if kind == Kind::VoiceOutbound {
            t += self.secs(5, 25) + self.millis(0, 999);
            eng.emit("engagement_consumer_answered", t, json!({}));
        }

        let recorded = av && self.rng.random_bool(0.75);
        let segments = plan.transfers + 1;
        let note_count = weighted(&mut self.rng, NOTE_COUNT_WEIGHTS);
        // Phase `segments` is the wrap-up.
        let note_phases: Vec<usize> = (0..note_count)
            .map(|_| self.rng.random_range(0..=segments))
            .collect();
        let mut notes: Vec<NoteState> = Vec::new();
        let mut saved: Vec<SavedDisposition> = Vec::new();

        for seg in 0..segments {
            let seg_len = match kind.channel() {
                "voice" => self.secs(40, 480),
                "video" => self.secs(60, 600),
                _ => self.secs(120, 900),
            };
            let seg_end = t + seg_len + self.millis(0, 999);

            if recorded {
                self.record(eng, agent, queue, t, seg_end);
            }
            if av {
                for (on, off, p) in [
                    ("engagement_user_hold", "engagement_user_unhold", 0.25),
                    ("engagement_user_muted", "engagement_user_unmuted", 0.15),
                ] {
                    if self.rng.random_bool(p) {
                        let at = self.between(t + seg_len / 10, t + seg_len * 6 / 10);
                        let back = (at + self.secs(10, 90)).min(seg_end - 1000);
                        eng.emit(on, at, json!({}));
                        eng.emit(off, back.max(at + 1), json!({}));
                    }
                }
            }
            for _ in note_phases.iter().filter(|&&p| p == seg) {
                let at = self.between(t + 5000, seg_end - 2000);
                self.add_note(eng, &mut notes, agent, at);
            }

            if seg + 1 == segments {
                t = seg_end;
                break;
            }
            let to_queue = if self.rng.random_bool(0.6) {
                self.other_queue(queue)
            } else {
                queue
            };
            // A transfer the agent gives up on while it waits in the queue.
            if seg_len >= 120_000 && self.rng.random_bool(0.12) {
                let at = self.between(t + seg_len / 3, seg_end - 60_000);
                let attempt = Transfer {
                    task_id: task_id.clone(),
                    to_task_id: zoom_hex_id(&mut self.rng, "ZWT"),
                    transfer_type: "cold",
                    from_agent: agent,
                    from_queue: queue,
                    to_queue: self.other_queue(queue),
                };
                let statuses = ("assigned", Some("pending"));
                let at = self.transfer_event(
                    eng,
                    "engagement_transfer_initiated",
                    &attempt,
                    at,
                    None,
                    statuses,
                );
                let queued = at + self.millis(200, 1500);
                self.transfer_event(
                    eng,
                    "engagement_transfer_queued",
                    &attempt,
                    queued,
                    None,
                    statuses,
                );
                let canceled = queued + self.secs(5, 20);
                self.transfer_event(
                    eng,
                    "engagement_transfer_canceled",
                    &attempt,
                    canceled,
                    None,
                    ("assigned", Some("canceled")),
                );
            }
            // The current agent may save a disposition before handing over (at most one before the final agent's,
            // so an engagement carries one or two).
            if saved.is_empty() && self.rng.random_bool(0.5) {
                let at = seg_end - self.secs(1, 10);
                self.add_disposition(eng, &mut saved, agent, at);
            }
            let transfer = Transfer {
                task_id: task_id.clone(),
                to_task_id: zoom_hex_id(&mut self.rng, "ZWT"),
                transfer_type: if self.rng.random_bool(0.4) {
                    "warm"
                } else {
                    "cold"
                },
                from_agent: agent,
                from_queue: queue,
                to_queue,
            };
            let statuses = ("assigned", Some("pending"));
            let initiated = self.transfer_event(
                eng,
                "engagement_transfer_initiated",
                &transfer,
                seg_end,
                None,
                statuses,
            );
            let queued = initiated + self.millis(200, 1500);
            let queued = self.transfer_event(
                eng,
                "engagement_transfer_queued",
                &transfer,
                queued,
                None,
                statuses,
            );
            let offered = queued + self.millis(300, 2000);
            let offer = self.offer(
                eng,
                &transfer.to_task_id,
                to_queue,
                offered,
                Some(agent),
                Some(&transfer),
            );
            // A cold transfer completes at once; a warm one when the transferring agent leaves the consultation.
            let completed = if transfer.transfer_type == "warm" {
                offer.accepted_ms + self.secs(10, 60)
            } else {
                offer.accepted_ms + self.millis(300, 2000)
            };
            let target = Some(offer.agent);
            let completed = self.transfer_event(
                eng,
                "engagement_transfer_completed",
                &transfer,
                completed,
                target,
                ("completed", Some("assigned")),
            );
            if let Some(done) = reservation.take() {
                let at = completed + self.millis(50, 300);
                self.reservation_event(eng, "task_reservation_completed", &done, at);
            }
            self.occupy(agent, completed);
            // Zoom re-fires the engagement's notes and dispositions after a transfer.
            let refire_from = offer.accepted_ms + 1000;
            self.refire(eng, &notes, &saved, refire_from, 0.7, 0.5);
            t = offer.accepted_ms + self.secs(1, 3);
            agent = offer.agent;
            queue = to_queue;
            task_id = transfer.to_task_id;
            reservation = Some(offer.reservation);
            eng.agent = Some(self.agent_fields(agent));
            eng.queue = Some(self.queue_fields(queue));
            eng.emit("engagement_user_answered", t, json!({}));
        }

        // Who ends it: the agent, or on a call either party.
        let party = if av && self.rng.random_bool(0.5) {
            "engagement_consumer_ended"
        } else {
            "engagement_user_ended"
        };
        eng.emit(party, t, json!({}));
        let end = ceil_second(t + 1);
        eng.ended(end);

        // Wrap-up by the last agent: new notes, edits of the agent's own notes, the final disposition.
        let wrap_start = end + self.millis(200, 1500);
        let wrap_end = wrap_start + self.secs(15, 120);
        eng.emit("engagement_wrap_up_started", wrap_start, json!({}));
        for _ in note_phases.iter().filter(|&&p| p == segments) {
            let at = self.between(wrap_start + 2000, wrap_end - 8000);
            self.add_note(eng, &mut notes, agent, at);
        }
        for note in notes.iter_mut() {
            if note.author != agent || !self.rng.random_bool(0.35) {
                continue;
            }
            // A later whole second than the current version, so "latest last_modified_time wins" is unambiguous.
            let earliest = note.last_modified_ms + 1000;
            if earliest >= wrap_end - 1000 {
                continue;
            }
            let at = self.between(earliest.max(wrap_start + 1000), wrap_end - 1000);
            let suffix = self.note_text(NOTE_EDITS);
            note.text.push_str(&suffix);
            note.last_modified_ms = floor_second(at);
            self.emit_note(eng, note, at);
        }
        let at = self.between(wrap_start + 1000, wrap_end - 1000);
        self.add_disposition(eng, &mut saved, agent, at);
        eng.emit("engagement_wrap_up_ended", wrap_end, json!({}));
        if let Some(done) = reservation {
            let at = wrap_end + self.millis(50, 300);
            self.reservation_event(eng, "task_reservation_completed", &done, at);
        }
        self.occupy(agent, wrap_end);
        // Re-saves after wrap-up.
        self.refire(eng, &notes, &saved, wrap_end + 1000, 0.35, 0.4);

        let id = eng.truth.engagement_id.clone();
        match kind {
            Kind::Messaging if self.rng.random_bool(0.9) => {
                let at = end + self.secs(10, 120);
                let url = urls::engagement_transcript(&self.api_base, &id);
                eng.emit(
                    "engagement_messaging_transcript_completed",
                    at,
                    json!({"transcript_url": url}),
                );
            }
            Kind::Email if self.rng.random_bool(0.9) => {
                let at = end + self.secs(5, 60);
                let url = urls::email_transcript(&self.api_base, &id);
                eng.emit(
                    "engagement_email_transcript_completed",
                    at,
                    json!({"transcript_url": url}),
                );
            }
            _ => {}
        }
    }

    /// One agent segment's recording: automatic (queue-owned, from the segment's start) or on demand (agent-owned,
    /// started by the agent later), sometimes paused, stopped with the segment, completed a little later.
    fn record(&mut self, eng: &mut Eng, agent: usize, queue: usize, from: i64, to: i64) {
        let on_demand = self.rng.random_bool(0.2);
        let start_ms = if on_demand {
            self.between(from + 5000, from + (to - from) / 2)
        } else {
            from + self.millis(300, 2000)
        };
        let mut recording = Recording {
            id: opaque_id(&mut self.rng),
            channel: eng.channel,
            start_ms,
            end_ms: to,
            paused_ms: 0,
            agent,
            queue,
            on_demand,
        };
        self.recording_event(eng, "recording_started", &recording, start_ms, json!({}));
        let since = json!({"recording_start_time_ms": iso_time_ms(start_ms)});
        if to - start_ms > 60_000 && self.rng.random_bool(0.15) {
            let paused = self.between(start_ms + 5000, start_ms + (to - start_ms) / 2);
            let resumed = paused + self.secs(5, 30);
            let paused =
                self.recording_event(eng, "recording_paused", &recording, paused, since.clone());
            let resumed =
                self.recording_event(eng, "recording_resumed", &recording, resumed, since.clone());
            recording.paused_ms = resumed - paused;
        }
        self.recording_event(eng, "recording_stopped", &recording, to, since);
        let completed = to + self.secs(5, 60);
        let done = json!({
            "recording_start_time_ms": iso_time_ms(recording.start_ms),
            "recording_end_time_ms": iso_time_ms(recording.end_ms),
            "recording_duration": (recording.end_ms - recording.start_ms - recording.paused_ms).max(0) / 1000,
        });
        let completed = self.recording_event(
            eng,
            "recording_completed",
            &recording,
            completed,
            done.clone(),
        );
        if self.rng.random_bool(0.6) {
            let at = completed + self.rng.random_range(60..=600) * 1000;
            let mut fields = done;
            fields["transcript_url"] = json!(urls::recording_transcript(
                &self.api_base,
                &recording.id,
                recording.channel
            ));
            self.recording_event(
                eng,
                "recording_transcript_completed",
                &recording,
                at,
                fields,
            );
        }
    }

    /// `recording_*` for `recording` at `ts`, with `extra` fields.
    fn recording_event(
        &self,
        eng: &mut Eng,
        name: &'static str,
        recording: &Recording,
        ts: i64,
        extra: Value,
    ) -> i64 {
        let (user_id, user_name) = self.agent_fields(recording.agent);
        let (cc_queue_id, queue_name) = self.queue_fields(recording.queue);
        let (owner_id, owner_name, owner_type, recording_type) = if recording.on_demand {
            (user_id.clone(), user_name.clone(), "user", "on_demand")
        } else {
            (
                cc_queue_id.clone(),
                queue_name.clone(),
                "queue",
                "automatic",
            )
        };
        let mut consumer = json!({
            "consumer_id": eng.consumer.consumer_id,
            "consumer_display_name": eng.consumer.consumer_display_name,
        });
        if eng.phone {
            consumer["consumer_number"] = json!(eng.consumer.consumer_number);
        }
        let mut fields = json!({
            "recording_id": recording.id, "recording_type": recording_type,
            "cc_queue_id": cc_queue_id, "queue_name": queue_name,
            "owner_id": owner_id, "owner_name": owner_name, "owner_type": owner_type,
            "users": [{"user_id": user_id, "user_display_name": user_name}],
            "consumers": [consumer],
        });
        if let (Some(fields), Value::Object(extra)) = (fields.as_object_mut(), extra) {
            fields.extend(extra);
        }
        eng.emit(name, ts, fields)
    }

    fn add_note(&mut self, eng: &mut Eng, notes: &mut Vec<NoteState>, agent: usize, at: i64) {
        let note = NoteState {
            note_id: opaque_id(&mut self.rng),
            text: self.note_text(NOTE_TEXTS),
            author: agent,
            last_modified_ms: floor_second(at),
        };
        self.emit_note(eng, &note, at);
        notes.push(note);
    }

    fn emit_note(&self, eng: &mut Eng, note: &NoteState, at: i64) {
        let (user_id, user_name) = self.agent_fields(note.author);
        eng.emit(
            "engagement_note_added",
            at,
            json!({
                "note_id": note.note_id, "note": note.text,
                "user_id": user_id, "user_display_name": user_name,
                "last_modified_time": iso_time(note.last_modified_ms),
            }),
        );
    }

    /// Saves a disposition not yet on the engagement (catalogue permitting).
    fn add_disposition(
        &mut self,
        eng: &mut Eng,
        saved: &mut Vec<SavedDisposition>,
        agent: usize,
        at: i64,
    ) {
        let options: Vec<usize> = (0..self.directory.dispositions.len())
            .filter(|i| !saved.iter().any(|s| s.index == *i))
            .collect();
        let Some(&index) = options.choose(&mut self.rng) else {
            return;
        };
        let disposition = SavedDisposition {
            index,
            agent,
            saved_ms: floor_second(at),
        };
        saved.push(disposition);
        self.emit_disposition(eng, disposition, at);
    }

    fn emit_disposition(&self, eng: &mut Eng, saved: SavedDisposition, at: i64) {
        let (user_id, user_name) = self.agent_fields(saved.agent);
        let disposition = &self.directory.dispositions[saved.index];
        eng.emit(
            "engagement_disposition_added",
            at,
            json!({
                "disposition_id": disposition.disposition_id,
                "disposition_name": disposition.disposition_name,
                "disposition_description": disposition.disposition_description,
                "status": "active",
                "last_modified_time": iso_time(saved.saved_ms),
                "modified_by": user_id,
                "user_id": user_id, "user_display_name": user_name,
            }),
        );
    }

    /// Re-fires the current state of notes and dispositions, each with its own probability, after `from`.
    fn refire(
        &mut self,
        eng: &mut Eng,
        notes: &[NoteState],
        dispositions: &[SavedDisposition],
        from: i64,
        note_p: f64,
        disposition_p: f64,
    ) {
        for note in notes {
            if self.rng.random_bool(note_p) {
                let at = from + self.millis(0, 30_000);
                self.emit_note(eng, note, at);
            }
        }
        for &saved in dispositions {
            if self.rng.random_bool(disposition_p) {
                let at = from + self.millis(0, 30_000);
                self.emit_disposition(eng, saved, at);
            }
        }
    }

    /// Logins, status changes (breaks) and logouts for every agent around the engagements.
    fn agent_day(&mut self, day_start: i64, day_end: i64) -> Vec<SimEvent> {
        let mut out = Vec::new();
        let mut used: HashSet<(&'static str, i64)> = HashSet::new();
        let agents = self.directory.agents.clone();
        let account_id = self.account_id.clone();
        for (i, agent) in agents.iter().enumerate() {
            let login = day_start + self.millis(0, 60_000);
            let logout = day_end.max(self.busy_until[i]) + self.secs(60, 600);
            let mut emit = |name: &'static str, mut ts: i64, extra: Value| {
                while !used.insert((name, ts)) {
                    ts += 1;
                }
                let mut object = json!({
                    "user_id": agent.user_id, "display_name": agent.display_name,
                    "user_email": agent.email, "date_time_ms": iso_time_ms(ts),
                });
                if let (Some(o), Value::Object(extra)) = (object.as_object_mut(), extra) {
                    o.extend(extra);
                }
                out.push(SimEvent {
                    event_ts: ts,
                    body: envelope(&account_id, name, ts, object),
                });
            };
            type Status = ((&'static str, &'static str), (&'static str, &'static str));
            let status = |previous: Status, current: Status| {
                let ((prev_id, prev_name), (prev_sub_id, prev_sub_name)) = previous;
                let ((cur_id, cur_name), (cur_sub_id, cur_sub_name)) = current;
                json!({
                    "previous_status_id": prev_id, "previous_status_name": prev_name,
                    "previous_sub_status_id": prev_sub_id, "previous_sub_status_name": prev_sub_name,
                    "current_status_id": cur_id, "current_status_name": cur_name,
                    "current_sub_status_id": cur_sub_id, "current_sub_status_name": cur_sub_name,
                })
            };
            emit("user_login", login, json!({}));
            let ready_at = login + self.rng.random_range(1000..5000);
            emit(
                "user_status_changed",
                ready_at,
                status((OFFLINE, NO_SUB_STATUS), (READY, NO_SUB_STATUS)),
            );
            // Up to two non-overlapping breaks between login and logout.
            let mut cursor = ready_at + 300_000;
            for _ in 0..self.rng.random_range(0..=2) {
                let latest = logout - 1_500_000;
                if cursor >= latest {
                    break;
                }
                let away = self.rng.random_range(cursor..latest);
                let back = away + self.rng.random_range(300_000..=1_200_000);
                let reason = BREAK_REASONS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or(BREAK_REASONS[0]);
                emit(
                    "user_status_changed",
                    away,
                    status((READY, NO_SUB_STATUS), (NOT_READY, reason)),
                );
                emit(
                    "user_status_changed",
                    back,
                    status((NOT_READY, reason), (READY, NO_SUB_STATUS)),
                );
                cursor = back + 60_000;
            }
            let offline_at = logout - self.rng.random_range(1000..5000);
            emit(
                "user_status_changed",
                offline_at,
                status((READY, NO_SUB_STATUS), (OFFLINE, NO_SUB_STATUS)),
            );
            emit("user_logout", logout, json!({}));
        }
        out
    }
}

/// Builds one engagement's events and derives its truth from exactly what was emitted.
struct Eng {
    account_id: String,
    direction: &'static str,
    channel: &'static str,
    channel_source: &'static str,
    /// Whether the channel source carries phone numbers (voice, SMS, WhatsApp).
    phone: bool,
    flow: Flow,
    consumer: Consumer,
    /// The queue and the agent handling the engagement now, as `(id, name)`.
    queue: Option<(String, String)>,
    agent: Option<(String, String)>,
    used: HashSet<(&'static str, i64)>,
    events: Vec<SimEvent>,
    truth: TruthEngagement,
    /// note_id → latest `last_modified_time` seen (ISO strings of one format sort chronologically).
    note_versions: BTreeMap<String, String>,
    last_ts: i64,
}

impl Eng {
    /// The value of an engagement key as the engagement stands now; `None` when it does not apply (no agent yet,
    /// no numbers on a web chat, ...).
    fn context(&self, key: &str) -> Option<Value> {
        let phone = |value: &str| self.phone.then(|| json!(value));
        match key {
            "engagement_id" => Some(json!(self.truth.engagement_id)),
            "engagement_direction" => Some(json!(self.direction)),
            "channel" => Some(json!(self.channel)),
            "channel_source" => Some(json!(self.channel_source)),
            "flow_id" => Some(json!(self.flow.flow_id)),
            "flow_name" => Some(json!(self.flow.flow_name)),
            "flow_number" => phone(&self.flow.flow_number),
            "cc_queue_id" => self.queue.as_ref().map(|(id, _)| json!(id)),
            "queue_name" => self.queue.as_ref().map(|(_, name)| json!(name)),
            "user_id" => self.agent.as_ref().map(|(id, _)| json!(id)),
            "user_display_name" => self.agent.as_ref().map(|(_, name)| json!(name)),
            "consumer_id" => Some(json!(self.consumer.consumer_id)),
            "consumer_display_name" => Some(json!(self.consumer.consumer_display_name)),
            "consumer_number" => phone(&self.consumer.consumer_number),
            _ => None,
        }
    }

    /// `(caller_number, callee_number)` of the engagement's tasks: the consumer and the flow's number, inbound or
    /// outbound; none off the phone.
    fn caller_callee(&self) -> (Option<String>, Option<String>) {
        if !self.phone {
            return (None, None);
        }
        let consumer = Some(self.consumer.consumer_number.clone());
        let flow = Some(self.flow.flow_number.clone());
        if self.direction == "outbound" {
            (flow, consumer)
        } else {
            (consumer, flow)
        }
    }

    /// Claims `ts` for `name`, a millisecond later until (name, ts) is unique in the engagement, so no two distinct
    /// events are byte-identical. Returns the timestamp claimed.
    fn slot(&mut self, name: &'static str, mut ts: i64) -> i64 {
        while !self.used.insert((name, ts)) {
            ts += 1;
        }
        ts
    }

    /// Emits `contact_center.{name}` at the first free `ts`; returns the timestamp used.
    fn emit(&mut self, name: &'static str, ts: i64, extra: Value) -> i64 {
        let ts = self.slot(name, ts);
        self.put(name, ts, extra);
        ts
    }

    /// Emits `contact_center.{name}` at `ts` (claimed with [`Eng::slot`]): the event's context keys
    /// ([`context_keys`]), then `extra` (which wins; its `null`s are left out).
    fn put(&mut self, name: &'static str, ts: i64, extra: Value) {
        let mut object = Map::new();
        for &key in context_keys(name) {
            let value = if key == "date_time_ms" {
                Some(json!(iso_time_ms(ts)))
            } else {
                self.context(key)
            };
            if let Some(value) = value {
                object.insert(key.to_owned(), value);
            }
        }
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                if value.is_null() {
                    object.remove(&key);
                } else {
                    object.insert(key, value);
                }
            }
        }
        let object = Value::Object(object);
        self.observe(name, &object);
        self.last_ts = self.last_ts.max(ts);
        self.events.push(SimEvent {
            event_ts: ts,
            body: envelope(&self.account_id, name, ts, object),
        });
    }

    fn ended(&mut self, end: i64) {
        self.emit("engagement_ended", end, json!({}));
    }

    fn observe(&mut self, name: &str, object: &Value) {
        let field = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = |key: &str| {
            field(key)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp_millis())
        };
        let truth = &mut self.truth;
        truth.event_count += 1;
        if let Some(q) = field("cc_queue_id") {
            truth.queue_ids.insert(q);
        }
        if let Some(n) = field("consumer_number") {
            truth.consumer_numbers.insert(n);
        }
        match name {
            "engagement_started" => {
                truth.channel = field("channel").unwrap_or_default();
                truth.direction = field("engagement_direction").unwrap_or_default();
                truth.start_time_ms = time("date_time_ms").unwrap_or_default();
                truth.end_time_ms = truth.end_time_ms.max(truth.start_time_ms);
            }
            "engagement_ended" => {
                truth.end_time_ms = time("date_time_ms").unwrap_or_default();
            }
            "engagement_user_answered" => {
                truth.agent_ids.extend(field("user_id"));
            }
            "engagement_transfer_accepted" => {
                truth.agent_ids.extend(field("transfer_to_user_id"));
            }
            "engagement_note_added" => {
                if let (Some(id), Some(text), Some(modified)) =
                    (field("note_id"), field("note"), field("last_modified_time"))
                {
                    let newer = self
                        .note_versions
                        .get(&id)
                        .is_none_or(|seen| modified >= *seen);
                    if newer {
                        self.note_versions.insert(id.clone(), modified);
                        truth.notes.insert(id, text);
                    }
                }
            }
            "engagement_disposition_added" => {
                if let Some(id) = field("disposition_id") {
                    truth.disposition_ids.insert(id);
                }
            }
            "recording_started" | "recording_completed" => {
                truth.recording_ids.extend(field("recording_id"));
            }
            "recording_transcript_completed" => {
                if let Some(id) = field("recording_id") {
                    truth.transcripts.insert(("recording".to_owned(), id));
                }
            }
            "engagement_messaging_transcript_completed" => {
                let id = truth.engagement_id.clone();
                truth.transcripts.insert(("messaging".to_owned(), id));
            }
            "engagement_email_transcript_completed" => {
                let id = truth.engagement_id.clone();
                truth.transcripts.insert(("email".to_owned(), id));
            }
            "voicemail_transcript_completed" => {
                if let Some(id) = field("message_id") {
                    truth.transcripts.insert(("voicemail".to_owned(), id));
                }
            }
            "inbox_message_received" => {
                truth.voicemail_ids.extend(field("message_id"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn scenario(seed: u64, engagements: usize) -> Scenario {
        generate(&GeneratorConfig {
            seed,
            engagements,
            ..GeneratorConfig::default()
        })
    }

    fn short_name(event: &SimEvent) -> &str {
        event.event().strip_prefix(EVENT_PREFIX).unwrap_or("")
    }

    fn str_field<'a>(event: &'a SimEvent, key: &str) -> Option<&'a str> {
        event.object()?.get(key)?.as_str()
    }

    fn iso_ms(iso: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(iso)
            .expect("ISO timestamp")
            .timestamp_millis()
    }

    /// Events of one engagement, in order.
    fn by_engagement(s: &Scenario) -> BTreeMap<&str, Vec<&SimEvent>> {
        let mut out: BTreeMap<&str, Vec<&SimEvent>> = BTreeMap::new();
        for e in &s.events {
            if let Some(id) = e.engagement_id() {
                out.entry(id).or_default().push(e);
            }
        }
        out
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = scenario(7, 30);
        assert_eq!(a, scenario(7, 30));
        let b = scenario(8, 30);
        assert_ne!(a.events, b.events);
        assert_ne!(a.truth, b.truth);
    }

    #[test]
    fn envelopes_are_well_formed_and_sorted() {
        let s = scenario(1, 50);
        assert!(s.events.windows(2).all(|w| w[0].event_ts <= w[1].event_ts));
        for e in &s.events {
            assert_eq!(e.body["event_ts"].as_i64(), Some(e.event_ts));
            assert_eq!(
                e.body["payload"]["account_id"].as_str(),
                Some(DEFAULT_ACCOUNT_ID)
            );
            assert!(e.object().is_some_and(Value::is_object), "{}", e.body);
            assert!(
                zoom::events::is_known_event(e.event()),
                "unknown event {}",
                e.event()
            );
            assert!(EVENT_KINDS.contains(&short_name(e)), "{}", e.event());
            // The bridge's own envelope decoder reads every field of every body.
            let parsed = zoom::WebhookEnvelope::decode(&e.body).expect("an envelope");
            assert_eq!(parsed.event_ts, Some(e.event_ts));
            assert!(
                parsed.field_errors.is_empty(),
                "{:?}: {}",
                parsed.field_errors,
                e.body
            );
            let is_agent_event = short_name(e).starts_with("user_");
            assert_eq!(
                parsed.object.engagement_id.is_none(),
                is_agent_event,
                "{}",
                e.body
            );
            // When it happened, by Zoom's clock: `date_time_ms` is the event's own time.
            if let Some(at) = str_field(e, "date_time_ms") {
                assert_eq!(iso_ms(at), e.event_ts, "{}", e.body);
            }
        }
        let agent_events = s.events.iter().filter(|e| e.engagement_id().is_none());
        assert_eq!(agent_events.count(), s.truth.non_engagement_events);
        assert_eq!(s.truth.total_events(), s.events.len());
    }

    /// The names of Zoom's examples, never the guessed ones the simulator used to send.
    #[test]
    fn objects_use_zooms_field_names_and_types() {
        let s = scenario(11, 120);
        for e in &s.events {
            let Some(Value::Object(object)) = e.object() else {
                panic!("no object: {}", e.body);
            };
            for stale in [
                "direction",
                "start_time",
                "end_time",
                "date_time",
                "download_url",
                "playback_url",
                "created_at",
                "message_type",
                "recording_start_time",
                "recording_end_time",
            ] {
                assert!(!object.contains_key(stale), "{stale} in {}", e.body);
            }
            if e.engagement_id().is_some() {
                assert!(!object.contains_key("display_name"), "{}", e.body);
            }
            for (key, value) in object {
                if key.ends_with("_ms") {
                    let text = value
                        .as_str()
                        .unwrap_or_else(|| panic!("{key}: {}", e.body));
                    // Milliseconds always: `2026-11-21T09:00:00.123Z`.
                    assert_eq!(text.len(), 24, "{key}: {text}");
                    iso_ms(text);
                }
            }
            if object.contains_key("user_id") && e.engagement_id().is_some() {
                assert!(object["user_display_name"].is_string(), "{}", e.body);
            }
        }
    }

    #[test]
    fn distinct_events_are_never_byte_identical() {
        let s = scenario(3, 200);
        let mut bodies = HashSet::new();
        let mut keys = HashSet::new();
        for e in &s.events {
            assert!(bodies.insert(e.to_bytes()), "duplicate body {}", e.body);
            let user = str_field(e, "user_id").filter(|_| e.engagement_id().is_none());
            assert!(keys.insert((e.engagement_id(), user, e.event(), e.event_ts)));
        }
    }

    #[test]
    fn ids_are_opaque_and_urls_use_api_base() {
        let s = generate(&GeneratorConfig {
            api_base: "http://127.0.0.1:9/v2/".to_owned(),
            ..GeneratorConfig::default()
        });
        assert_eq!(s.api_base, "http://127.0.0.1:9/v2");
        let mut urls = 0;
        for e in &s.events {
            for key in [
                "engagement_id",
                "user_id",
                "assigned_user_id",
                "transfer_to_user_id",
                "cc_queue_id",
                "transfer_to_cc_queue_id",
                "note_id",
                "disposition_id",
                "recording_id",
                "message_id",
                "consumer_id",
                "inbox_id",
            ] {
                if let Some(id) = str_field(e, key) {
                    assert_eq!(id.len(), 22, "{key} {id}");
                }
            }
            for (key, prefix) in [
                ("flow_id", "ZWW"),
                ("task_id", "ZWT"),
                ("transfer_to_task_id", "ZWT"),
                ("task_reservation_id", "ZWR"),
            ] {
                if let Some(id) = str_field(e, key) {
                    assert!(id.starts_with(prefix) && id.len() == 35, "{key} {id}");
                }
            }
            if let Some(url) = str_field(e, "transcript_url") {
                urls += 1;
                assert!(
                    url.starts_with("http://127.0.0.1:9/v2/contact_center/"),
                    "{url}"
                );
            }
            for key in ["consumer_number", "flow_number"] {
                if let Some(n) = str_field(e, key) {
                    assert!(n.starts_with("+1") && n.len() == 12, "{n}");
                }
            }
        }
        assert!(urls > 0);
    }

    /// Recomputes the truth from the events alone, the way a correct order-insensitive projection would.
    fn project(events: &[SimEvent]) -> BTreeMap<String, TruthEngagement> {
        let mut out: BTreeMap<String, TruthEngagement> = BTreeMap::new();
        let mut note_times: HashMap<(String, String), String> = HashMap::new();
        // Project in reverse to prove the result does not depend on order.
        for e in events.iter().rev() {
            let Some(id) = e.engagement_id() else {
                continue;
            };
            let t = out.entry(id.to_owned()).or_default();
            t.engagement_id = id.to_owned();
            t.event_count += 1;
            let f = |key: &str| str_field(e, key).map(str::to_owned);
            t.queue_ids.extend(f("cc_queue_id"));
            t.consumer_numbers.extend(f("consumer_number"));
            match short_name(e) {
                "engagement_started" => {
                    t.channel = f("channel").unwrap_or_default();
                    t.direction = f("engagement_direction").unwrap_or_default();
                    t.start_time_ms = iso_ms(&f("date_time_ms").unwrap_or_default());
                    assert_eq!(t.start_time_ms, e.event_ts);
                }
                "engagement_ended" => {
                    t.end_time_ms = iso_ms(&f("date_time_ms").unwrap_or_default());
                    assert_eq!(t.end_time_ms, e.event_ts);
                }
                "engagement_user_answered" => {
                    t.agent_ids.extend(f("user_id"));
                }
                "engagement_transfer_accepted" => {
                    t.agent_ids.extend(f("transfer_to_user_id"));
                }
                "engagement_note_added" => {
                    let note_id = f("note_id").unwrap_or_default();
                    let modified = f("last_modified_time").unwrap_or_default();
                    let key = (id.to_owned(), note_id.clone());
                    let newer = note_times.get(&key).is_none_or(|seen| modified > *seen);
                    if newer {
                        note_times.insert(key, modified);
                        t.notes.insert(note_id, f("note").unwrap_or_default());
                    }
                }
                "engagement_disposition_added" => {
                    t.disposition_ids.extend(f("disposition_id"));
                }
                "recording_started" | "recording_completed" => {
                    t.recording_ids.extend(f("recording_id"));
                }
                "recording_transcript_completed" => {
                    t.transcripts
                        .insert(("recording".into(), f("recording_id").unwrap_or_default()));
                }
                "engagement_messaging_transcript_completed" => {
                    t.transcripts.insert(("messaging".into(), id.to_owned()));
                }
                "engagement_email_transcript_completed" => {
                    t.transcripts.insert(("email".into(), id.to_owned()));
                }
                "voicemail_transcript_completed" => {
                    t.transcripts
                        .insert(("voicemail".into(), f("message_id").unwrap_or_default()));
                }
                "inbox_message_received" => {
                    t.voicemail_ids.extend(f("message_id"));
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn truth_matches_an_independent_projection() {
        for seed in [1, 2, 99] {
            let s = scenario(seed, 80);
            let projected = project(&s.events);
            assert_eq!(s.truth.engagements.len(), 80);
            assert!(s
                .truth
                .engagements
                .windows(2)
                .all(|w| w[0].engagement_id < w[1].engagement_id));
            for truth in &s.truth.engagements {
                assert_eq!(Some(truth), projected.get(&truth.engagement_id));
                assert_eq!(
                    s.truth.engagement(&truth.engagement_id),
                    Some(truth),
                    "lookup"
                );
                assert!(truth.end_time_ms > truth.start_time_ms);
                assert_eq!(truth.start_time_ms % 1000, 0);
                assert_eq!(truth.end_time_ms % 1000, 0);
                assert!(!truth.queue_ids.is_empty());
                for (kind, _) in &truth.transcripts {
                    assert!(
                        ["recording", "messaging", "email", "voicemail"].contains(&kind.as_str())
                    );
                }
            }
            let voicemails: BTreeSet<&String> = s
                .truth
                .engagements
                .iter()
                .flat_map(|e| &e.voicemail_ids)
                .collect();
            assert_eq!(
                voicemails,
                s.voicemail_durations.keys().collect::<BTreeSet<_>>()
            );
        }
    }

    #[test]
    fn a_day_covers_every_path_and_zoom_refires() {
        // Coverage is by construction (every kind at least once, at least one transfer), not by luck of a seed.
        for seed in 0..20 {
            check_day(seed);
        }
    }

    fn check_day(seed: u64) {
        let s = scenario(seed, 50);
        let t = &s.truth;
        let count = |channel: &str| {
            t.engagements
                .iter()
                .filter(|e| e.channel == channel)
                .count()
        };
        assert!(count("voice") > count("messaging"));
        assert!(count("messaging") >= 1 && count("email") >= 1 && count("video") >= 1);
        assert!(t.engagements.iter().any(|e| e.direction == "outbound"));
        assert!(t.engagements.iter().any(|e| !e.voicemail_ids.is_empty()));
        assert!(
            t.engagements.iter().any(|e| e.agent_ids.len() >= 2),
            "a transfer"
        );
        assert!(t.engagements.iter().any(|e| !e.recording_ids.is_empty()));
        assert!(t.engagements.iter().any(|e| !e.transcripts.is_empty()));
        assert!(t.non_engagement_events >= 8 * 4);

        // Every note in the truth was fired, with its final text on at least one event.
        for e in &t.engagements {
            for (note_id, text) in &e.notes {
                assert!(s
                    .events
                    .iter()
                    .any(|ev| ev.engagement_id() == Some(&e.engagement_id)
                        && str_field(ev, "note_id") == Some(note_id)
                        && str_field(ev, "note") == Some(text)));
            }
            let answered = !e.agent_ids.is_empty();
            assert_eq!(!e.disposition_ids.is_empty(), answered);
            assert!(e.disposition_ids.len() <= 2);
            assert!(e.notes.len() <= 3);
        }

        let mut disposition_fires: HashMap<(&str, &str), usize> = HashMap::new();
        let mut note_texts: HashMap<(&str, &str), BTreeSet<&str>> = HashMap::new();
        let mut note_fires: HashMap<(&str, &str), usize> = HashMap::new();
        for ev in &s.events {
            let Some(id) = ev.engagement_id() else {
                continue;
            };
            if let Some(d) = str_field(ev, "disposition_id") {
                *disposition_fires.entry((id, d)).or_default() += 1;
            }
            if let (Some(n), Some(text)) = (str_field(ev, "note_id"), str_field(ev, "note")) {
                *note_fires.entry((id, n)).or_default() += 1;
                note_texts.entry((id, n)).or_default().insert(text);
            }
        }
        assert!(
            disposition_fires.values().any(|&n| n >= 2),
            "disposition re-fired"
        );
        assert!(note_fires.values().any(|&n| n >= 2), "note re-fired");
        assert!(
            note_texts.values().any(|texts| texts.len() >= 2),
            "note edited"
        );
    }

    #[test]
    fn every_event_kind_appears_in_a_few_busy_days() {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let days: Vec<Scenario> = (0..3).map(|seed| scenario(seed, 300)).collect();
        for s in &days {
            seen.extend(s.events.iter().map(short_name));
        }
        let missing: Vec<&&str> = EVENT_KINDS.iter().filter(|k| !seen.contains(**k)).collect();
        assert!(missing.is_empty(), "never emitted: {missing:?}");
    }

    /// Offers and transfers name the agents as Zoom does: the offered agent is `assigned_user_id`; a transfer's
    /// `user_id` is the transferring agent and `transfer_to_user_id` the receiving one; one `transfer_to_task_id`
    /// per transfer, which becomes the `task_id` of the target's reservations.
    #[test]
    fn offers_and_transfers_are_consistent() {
        let s = scenario(21, 200);
        let mut transfers_checked = 0;
        for (id, events) in by_engagement(&s) {
            let truth = s.truth.engagement(id).expect("truth");
            let mut current: Option<&str> = None;
            let mut reserved: Option<(&str, &str)> = None;
            let mut accepted_reservation: Option<&str> = None;
            let mut transfer_tasks: HashMap<&str, &str> = HashMap::new();
            let mut transferring: HashMap<&str, Option<&str>> = HashMap::new();
            for e in &events {
                let f = |key: &str| str_field(e, key);
                match short_name(e) {
                    "task_reservation_created" => {
                        reserved = Some((
                            f("task_reservation_id").expect("reservation id"),
                            f("assigned_user_id").expect("assigned_user_id"),
                        ));
                    }
                    "task_reservation_accepted" => {
                        let (reservation, user) = reserved.expect("created before accepted");
                        assert_eq!(f("task_reservation_id"), Some(reservation));
                        assert_eq!(f("assigned_user_id"), Some(user));
                        accepted_reservation = Some(user);
                    }
                    "engagement_user_answered" => {
                        let user = f("user_id").expect("user_id");
                        if truth.direction == "inbound" || current.is_some() {
                            assert_eq!(accepted_reservation.take(), Some(user), "{id}");
                        }
                        assert!(truth.agent_ids.contains(user));
                        current = Some(user);
                    }
                    name if name.starts_with("engagement_transfer_") => {
                        let task = f("transfer_to_task_id").expect("transfer_to_task_id");
                        let from = f("task_id").expect("task_id");
                        assert_ne!(task, from);
                        if let Some(seen) = transfer_tasks.insert(task, from) {
                            assert_eq!(seen, from);
                        }
                        // Every step names the agent who initiated it (during a warm transfer the target has
                        // already answered when the transfer completes).
                        let user = f("user_id");
                        if name == "engagement_transfer_initiated" {
                            assert_eq!(user, current, "{id}: {name} names the transferring agent");
                            transferring.insert(task, user);
                        } else {
                            assert_eq!(transferring.get(task).copied(), Some(user), "{id}: {name}");
                        }
                        if name == "engagement_transfer_accepted" {
                            let (_, user) = reserved.expect("reserved");
                            assert_eq!(f("transfer_to_user_id"), Some(user));
                            assert_ne!(Some(user), current);
                            transfers_checked += 1;
                        }
                        if name == "engagement_transfer_reserved" {
                            assert!(f("transfer_to_user_id").is_some());
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(transfers_checked >= 10, "{transfers_checked}");
    }

    #[test]
    fn edited_notes_resolve_by_last_modified_time() {
        let s = scenario(5, 200);
        let mut latest: HashMap<(&str, &str), (&str, &str)> = HashMap::new();
        for ev in &s.events {
            let (Some(id), Some(n), Some(m), Some(text)) = (
                ev.engagement_id(),
                str_field(ev, "note_id"),
                str_field(ev, "last_modified_time"),
                str_field(ev, "note"),
            ) else {
                continue;
            };
            let slot = latest.entry((id, n)).or_insert((m, text));
            if m > slot.0 {
                *slot = (m, text);
            } else if m == slot.0 {
                assert_eq!(slot.1, text, "same last_modified_time, different text");
            }
        }
        for ((id, n), (_, text)) in latest {
            let truth = s.truth.engagement(id).expect("engagement in truth");
            assert_eq!(truth.notes.get(n).map(String::as_str), Some(text));
        }
    }

    #[test]
    fn tiny_and_empty_scenarios() {
        let s = scenario(1, 0);
        assert!(s.truth.engagements.is_empty());
        assert_eq!(s.events.len(), s.truth.non_engagement_events);
        let s = scenario(1, 1);
        assert_eq!(s.truth.engagements.len(), 1);
    }

    #[test]
    fn truth_round_trips_through_json() {
        let truth = scenario(4, 20).truth;
        let json = serde_json::to_string(&truth).expect("serialize");
        assert_eq!(
            serde_json::from_str::<GroundTruth>(&json).expect("deserialize"),
            truth
        );
    }

    #[test]
    fn the_directory_has_a_flow_per_queue_and_unique_numbers() {
        let d = scenario(1, 0).directory;
        assert_eq!(d.flows.len(), d.queues.len());
        for (flow, queue) in d.flows.iter().zip(&d.queues) {
            assert_eq!(flow.cc_queue_id, queue.cc_queue_id);
            assert_eq!(d.flow_of_queue(&queue.cc_queue_id), Some(flow));
        }
        let numbers: HashSet<&str> = d
            .consumers
            .iter()
            .map(|c| c.consumer_number.as_str())
            .collect();
        assert_eq!(numbers.len(), d.consumers.len());
    }
}
