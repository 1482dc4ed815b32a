//! Deterministic traffic generator: a seeded contact-center "day" of `contact_center.*` webhook events plus the
//! ground truth the bridge's engagement records must match.
//!
//! Payload shapes follow reference §2 where Zoom documents them and the REST resources' field names elsewhere
//! (Zoom publishes no complete webhook schemas). Zoom's at-least-once habits that a correct consumer must absorb are
//! reproduced on purpose: `engagement_note_added` and `engagement_disposition_added` are re-fired with later
//! `event_ts`, notes are edited under the same `note_id`, and transcripts and recordings complete after the
//! engagement has ended.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{iso_time, opaque_id};

/// Zoom's REST base; URLs inside payloads are built from it.
pub const DEFAULT_API_BASE: &str = "https://api.zoom.us/v2";
/// 2026-11-21T09:00:00Z.
pub const DEFAULT_START_MS: i64 = 1_795_251_600_000;
/// The simulated account.
pub const DEFAULT_ACCOUNT_ID: &str = "simAcct7Qx2LpN4vR8sT0w";

const EVENT_PREFIX: &str = "contact_center.";

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthEngagement {
    pub engagement_id: String,
    /// `voice`, `video`, `messaging` or `email`.
    pub channel: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Whole seconds, equal to the `start_time`/`end_time` ISO strings.
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    /// Every `cc_queue_id` on any event of the engagement.
    pub queue_ids: BTreeSet<String>,
    /// Every `user_id` on `engagement_user_answered` / `engagement_transfer_accepted`.
    pub agent_ids: BTreeSet<String>,
    pub consumer_numbers: BTreeSet<String>,
    /// `note_id` → the text with the latest `last_modified_time`.
    pub notes: BTreeMap<String, String>,
    pub disposition_ids: BTreeSet<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub disposition_id: String,
    pub disposition_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub consumer_id: String,
    pub consumer_display_name: String,
    /// E.164.
    pub consumer_number: String,
}

/// The account's static data (what Zoom's REST API would list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub account_id: String,
    pub agents: Vec<Agent>,
    pub queues: Vec<Queue>,
    pub dispositions: Vec<Disposition>,
    pub consumers: Vec<Consumer>,
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
const DISPOSITION_NAMES: &[&str] = &[
    "Inquiry",
    "Resolved",
    "Follow-up required",
    "Sale",
    "Complaint",
    "Callback scheduled",
    "Wrong number",
    "Escalated",
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
const BREAK_REASONS: &[&str] = &["Break", "Lunch", "Meeting", "Training"];

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

    // Stable: events with equal timestamps keep their causal generation order.
    events.sort_by_key(|e| e.event_ts);
    truths.sort_by(|a, b| a.engagement_id.cmp(&b.engagement_id));
    Scenario {
        events,
        truth: GroundTruth {
            engagements: truths,
            non_engagement_events,
        },
        directory: gen.directory,
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
    let queues = QUEUE_NAMES
        .iter()
        .map(|name| Queue {
            cc_queue_id: opaque_id(rng),
            queue_name: (*name).to_owned(),
            inbox_id: opaque_id(rng),
            inbox_name: format!("{name} Voicemail"),
        })
        .collect();
    let dispositions = DISPOSITION_NAMES
        .iter()
        .map(|name| Disposition {
            disposition_id: opaque_id(rng),
            disposition_name: (*name).to_owned(),
        })
        .collect();
    let consumers = (0..CONSUMER_POOL)
        .map(|_| {
            let first = CONSUMER_FIRST.choose(rng).copied().unwrap_or("Jill");
            let last = CONSUMER_LAST.choose(rng).copied().unwrap_or("Walker");
            let area = AREA_CODES.choose(rng).copied().unwrap_or(205);
            Consumer {
                consumer_id: opaque_id(rng),
                consumer_display_name: format!("{first} {last}"),
                consumer_number: format!(
                    "+1{area}{}{:06}",
                    rng.random_range(2..10),
                    rng.random_range(0..1_000_000)
                ),
            }
        })
        .collect();
    Directory {
        account_id: account_id.to_owned(),
        agents,
        queues,
        dispositions,
        consumers,
    }
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

struct Gen {
    rng: StdRng,
    account_id: String,
    api_base: String,
    directory: Directory,
    /// Per agent: when the agent is next free (a soft constraint; overload falls back to the least busy agent).
    busy_until: Vec<i64>,
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

struct Recording {
    id: String,
    start_ms: i64,
    end_ms: i64,
    agent: usize,
    queue: usize,
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

    fn pick_agent(&mut self, at: i64, exclude: Option<usize>) -> usize {
        let candidates: Vec<usize> = (0..self.busy_until.len())
            .filter(|&i| Some(i) != exclude)
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

    fn answered(&self, agent: usize, queue: usize, eng: &Eng) -> Value {
        let (user_id, display_name) = self.agent_fields(agent);
        let (cc_queue_id, queue_name) = self.queue_fields(queue);
        json!({
            "channel": eng.channel, "channel_source": eng.channel_source,
            "user_id": user_id, "display_name": display_name,
            "cc_queue_id": cc_queue_id, "queue_name": queue_name,
        })
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
        let mut eng = Eng::new(
            self.account_id.clone(),
            opaque_id(&mut self.rng),
            channel,
            channel_source,
            direction,
            start,
        );
        let consumer = self
            .directory
            .consumers
            .choose(&mut self.rng)
            .cloned()
            .expect("the consumer pool is never empty");
        let queue = self.rng.random_range(0..self.directory.queues.len());
        let (cc_queue_id, queue_name) = self.queue_fields(queue);
        let mut started = json!({
            "channel": channel, "channel_source": channel_source, "direction": direction,
            "cc_queue_id": cc_queue_id, "queue_name": queue_name,
            "consumer_id": consumer.consumer_id, "consumer_display_name": consumer.consumer_display_name,
            "start_time": iso_time(start),
        });
        // Only phone-based sources know the consumer's number.
        if matches!(channel_source, "voice" | "sms" | "whatsapp") {
            started["consumer_number"] = json!(consumer.consumer_number);
        }
        eng.emit("engagement_started", start, started);

        match kind {
            Kind::Abandoned => {
                let end = ceil_second(start + self.secs(5, 120) + self.millis(0, 999));
                eng.ended(end);
            }
            Kind::Voicemail => self.voicemail(&mut eng, start, queue, &consumer),
            _ => self.handled(&mut eng, start, plan, queue, &consumer),
        }
        eng
    }

    fn voicemail(&mut self, eng: &mut Eng, start: i64, queue: usize, consumer: &Consumer) {
        let duration_s = self.rng.random_range(8..=120);
        let end = ceil_second(start + self.secs(15, 60) + duration_s * 1000);
        eng.ended(end);
        let message_id = opaque_id(&mut self.rng);
        let q = self.directory.queues[queue].clone();
        let received = end + self.millis(2000, 15_000);
        let base = &self.api_base;
        let transcript_url =
            format!("{base}/contact_center/inbox/message/transcripts/download/{message_id}");
        eng.emit(
            "inbox_message_received",
            received,
            json!({
                "message_id": message_id, "inbox_id": q.inbox_id, "inbox_name": q.inbox_name,
                "message_type": "voicemail", "message_duration": duration_s, "created_at": iso_time(end),
                "download_url": format!("{base}/contact_center/inbox/message/download/{message_id}?type=voicemail"),
                "playback_url": format!("{base}/contact_center/inbox/message/playback/{message_id}?type=voicemail"),
                "transcript_url": transcript_url,
                "consumer_number": consumer.consumer_number, "consumer_id": consumer.consumer_id,
                "cc_queue_id": q.cc_queue_id, "queue_name": q.queue_name,
            }),
        );
        if self.rng.random_bool(0.65) {
            let at = received + self.rng.random_range(30..=180) * 1000;
            eng.emit(
                "voicemail_transcript_completed",
                at,
                json!({"message_id": message_id, "transcript_url": transcript_url}),
            );
        }
    }

    /// An engagement handled by one or more agents: answer, talk segments separated by transfers, end, wrap-up.
    fn handled(
        &mut self,
        eng: &mut Eng,
        start: i64,
        plan: &Plan,
        mut queue: usize,
        consumer: &Consumer,
    ) {
        let kind = plan.kind;
        let av = matches!(kind.channel(), "voice" | "video");
        let mut t = match kind {
            Kind::VoiceOutbound => start + self.millis(300, 1500),
            Kind::VoiceInbound => start + self.secs(5, 90) + self.millis(0, 999),
            Kind::Video => start + self.secs(5, 60) + self.millis(0, 999),
            Kind::Messaging => start + self.secs(10, 180) + self.millis(0, 999),
            _ => start + self.secs(60, 1800) + self.millis(0, 999),
        };
        let mut agent = self.pick_agent(t, None);
        let answered = self.answered(agent, queue, eng);
        eng.emit("engagement_user_answered", t, answered);
        if kind == Kind::VoiceOutbound {
            t += self.secs(5, 25) + self.millis(0, 999);
            eng.emit(
                "engagement_consumer_answered",
                t,
                json!({
                    "channel": eng.channel, "channel_source": eng.channel_source,
                    "consumer_id": consumer.consumer_id, "consumer_number": consumer.consumer_number,
                }),
            );
        }

        let recorded = av && self.rng.random_bool(0.75);
        let segments = plan.transfers + 1;
        let note_count = weighted(&mut self.rng, NOTE_COUNT_WEIGHTS);
        // Phase `segments` is the wrap-up.
        let note_phases: Vec<usize> = (0..note_count)
            .map(|_| self.rng.random_range(0..=segments))
            .collect();
        let mut notes: Vec<NoteState> = Vec::new();
        let mut saved_dispositions: Vec<(usize, usize)> = Vec::new();

        for seg in 0..segments {
            let seg_len = match kind.channel() {
                "voice" => self.secs(40, 480),
                "video" => self.secs(60, 600),
                _ => self.secs(120, 900),
            };
            let seg_end = t + seg_len + self.millis(0, 999);
            let (user_id, _) = self.agent_fields(agent);

            if recorded {
                let recording = Recording {
                    id: opaque_id(&mut self.rng),
                    start_ms: t + self.millis(300, 2000),
                    end_ms: seg_end,
                    agent,
                    queue,
                };
                eng.emit(
                    "recording_started",
                    recording.start_ms,
                    json!({
                        "recording_id": recording.id, "channel": eng.channel,
                        "recording_start_time_ms": recording.start_ms, "user_id": user_id,
                    }),
                );
                self.recording_completed(eng, &recording);
            }
            if av {
                for (on, off, p) in [
                    ("engagement_user_hold", "engagement_user_unhold", 0.25),
                    ("engagement_user_muted", "engagement_user_unmuted", 0.15),
                ] {
                    if self.rng.random_bool(p) {
                        let at = self.between(t + seg_len / 10, t + seg_len * 6 / 10);
                        let back = (at + self.secs(10, 90)).min(seg_end - 1000);
                        eng.emit(on, at, json!({"user_id": user_id}));
                        eng.emit(off, back.max(at + 1), json!({"user_id": user_id}));
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
            // Transfer: the current agent may save a disposition before handing over (at most one before the
            // final agent's, so an engagement carries one or two).
            if saved_dispositions.is_empty() && self.rng.random_bool(0.5) {
                let at = seg_end - self.secs(1, 10);
                self.add_disposition(eng, &mut saved_dispositions, agent, at);
            }
            eng.emit(
                "engagement_transfer_initiated",
                seg_end,
                json!({"user_id": user_id}),
            );
            self.occupy(agent, seg_end);
            let new_agent = self.pick_agent(seg_end, Some(agent));
            let new_queue = if self.rng.random_bool(0.6) {
                self.other_queue(queue)
            } else {
                queue
            };
            let accept = seg_end + self.secs(5, 40) + self.millis(0, 999);
            let (new_user, new_name) = self.agent_fields(new_agent);
            let (cc_queue_id, queue_name) = self.queue_fields(new_queue);
            eng.emit(
                "engagement_transfer_accepted",
                accept,
                json!({
                    "user_id": new_user, "display_name": new_name,
                    "cc_queue_id": cc_queue_id, "queue_name": queue_name,
                }),
            );
            // Zoom re-fires the engagement's notes and dispositions after a transfer.
            let refire_from = accept + 1000;
            self.refire(eng, &notes, &saved_dispositions, refire_from, 0.7, 0.5);
            t = accept + self.secs(1, 3);
            agent = new_agent;
            queue = new_queue;
            let answered = self.answered(agent, queue, eng);
            eng.emit("engagement_user_answered", t, answered);
        }

        let end = ceil_second(t + 1);
        eng.ended(end);

        // Wrap-up by the last agent: new notes, edits of the agent's own notes, the final disposition.
        let (user_id, _) = self.agent_fields(agent);
        let wrap_start = end + self.millis(200, 1500);
        let wrap_end = wrap_start + self.secs(15, 120);
        eng.emit(
            "engagement_wrap_up_started",
            wrap_start,
            json!({"user_id": user_id}),
        );
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
        self.add_disposition(eng, &mut saved_dispositions, agent, at);
        eng.emit(
            "engagement_wrap_up_ended",
            wrap_end,
            json!({"user_id": user_id}),
        );
        self.occupy(agent, wrap_end);
        // Re-saves after wrap-up.
        self.refire(eng, &notes, &saved_dispositions, wrap_end + 1000, 0.35, 0.4);

        match kind {
            Kind::Messaging if self.rng.random_bool(0.9) => {
                let at = end + self.secs(10, 120);
                let url = format!(
                    "{}/contact_center/engagements/transcripts/download/{}",
                    self.api_base, eng.truth.engagement_id
                );
                eng.emit(
                    "engagement_messaging_transcript_completed",
                    at,
                    json!({"channel": "messaging", "transcript_url": url}),
                );
            }
            Kind::Email if self.rng.random_bool(0.9) => {
                let at = end + self.secs(5, 60);
                let url = format!(
                    "{}/contact_center/engagements/transcripts/download/{}",
                    self.api_base, eng.truth.engagement_id
                );
                eng.emit(
                    "engagement_email_transcript_completed",
                    at,
                    json!({"channel": "email", "transcript_url": url}),
                );
            }
            _ => {}
        }
    }

    fn recording_completed(&mut self, eng: &mut Eng, rec: &Recording) {
        let (user_id, _) = self.agent_fields(rec.agent);
        let (cc_queue_id, queue_name) = self.queue_fields(rec.queue);
        let completed = rec.end_ms + self.secs(5, 60);
        let base = &self.api_base;
        let id = &rec.id;
        let kind = eng.channel;
        let transcript_url =
            format!("{base}/contact_center/recording/transcripts/download/{id}?type={kind}");
        let duration_s = (rec.end_ms - rec.start_ms).max(0) / 1000;
        eng.emit(
            "recording_completed",
            completed,
            json!({
                "recording_id": id, "channel": kind,
                "recording_start_time": iso_time(rec.start_ms), "recording_end_time": iso_time(rec.end_ms),
                "recording_start_time_ms": rec.start_ms, "recording_duration": duration_s,
                "download_url": format!("{base}/contact_center/recording/download/{id}?type={kind}"),
                "transcript_url": transcript_url,
                "playback_url": format!("{base}/contact_center/recording/playback/{id}?type={kind}"),
                "user_id": user_id, "cc_queue_id": cc_queue_id, "queue_name": queue_name,
            }),
        );
        if self.rng.random_bool(0.6) {
            let at = completed + self.rng.random_range(60..=600) * 1000;
            eng.emit(
                "recording_transcript_completed",
                at,
                json!({
                    "recording_id": id, "transcript_url": transcript_url,
                    "recording_start_time_ms": rec.start_ms,
                }),
            );
        }
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
        let (user_id, _) = self.agent_fields(note.author);
        eng.emit(
            "engagement_note_added",
            at,
            json!({
                "note_id": note.note_id, "note": note.text, "user_id": user_id,
                "last_modified_time": iso_time(note.last_modified_ms),
            }),
        );
    }

    /// Saves a disposition not yet on the engagement (catalogue permitting).
    fn add_disposition(
        &mut self,
        eng: &mut Eng,
        saved: &mut Vec<(usize, usize)>,
        agent: usize,
        at: i64,
    ) {
        let options: Vec<usize> = (0..self.directory.dispositions.len())
            .filter(|i| !saved.iter().any(|(d, _)| d == i))
            .collect();
        let Some(&d) = options.choose(&mut self.rng) else {
            return;
        };
        saved.push((d, agent));
        self.emit_disposition(eng, d, agent, at);
    }

    fn emit_disposition(&self, eng: &mut Eng, d: usize, agent: usize, at: i64) {
        let (user_id, _) = self.agent_fields(agent);
        let disposition = &self.directory.dispositions[d];
        eng.emit(
            "engagement_disposition_added",
            at,
            json!({
                "disposition_id": disposition.disposition_id,
                "disposition_name": disposition.disposition_name,
                "user_id": user_id,
            }),
        );
    }

    /// Re-fires the current state of notes and dispositions, each with its own probability, after `from`.
    fn refire(
        &mut self,
        eng: &mut Eng,
        notes: &[NoteState],
        dispositions: &[(usize, usize)],
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
        for &(d, agent) in dispositions {
            if self.rng.random_bool(disposition_p) {
                let at = from + self.millis(0, 30_000);
                self.emit_disposition(eng, d, agent, at);
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
                let mut object = json!({"user_id": agent.user_id, "user_email": agent.email});
                if let (Some(o), Value::Object(extra)) = (object.as_object_mut(), extra) {
                    o.extend(extra);
                }
                object["date_time"] = json!(iso_time(ts));
                out.push(SimEvent {
                    event_ts: ts,
                    body: envelope(&account_id, name, ts, object),
                });
            };
            let status = |prev: &str, prev_sub: &str, cur: &str, cur_sub: &str| {
                json!({
                    "previous_status_name": prev, "previous_sub_status_name": prev_sub,
                    "current_status_name": cur, "current_sub_status_name": cur_sub,
                })
            };
            emit(
                "user_login",
                login,
                json!({"display_name": agent.display_name}),
            );
            let ready_at = login + self.rng.random_range(1000..5000);
            emit(
                "user_status_changed",
                ready_at,
                status("Offline", "", "Ready", ""),
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
                    .unwrap_or("Break");
                emit(
                    "user_status_changed",
                    away,
                    status("Ready", "", "Not Ready", reason),
                );
                emit(
                    "user_status_changed",
                    back,
                    status("Not Ready", reason, "Ready", ""),
                );
                cursor = back + 60_000;
            }
            let offline_at = logout - self.rng.random_range(1000..5000);
            emit(
                "user_status_changed",
                offline_at,
                status("Ready", "", "Offline", ""),
            );
            emit(
                "user_logout",
                logout,
                json!({"display_name": agent.display_name}),
            );
        }
        out
    }
}

/// Builds one engagement's events and derives its truth from exactly what was emitted.
struct Eng {
    account_id: String,
    channel: &'static str,
    channel_source: &'static str,
    direction: &'static str,
    used: HashSet<(&'static str, i64)>,
    events: Vec<SimEvent>,
    truth: TruthEngagement,
    /// note_id → latest `last_modified_time` seen (ISO strings of one format sort chronologically).
    note_versions: BTreeMap<String, String>,
    last_ts: i64,
}

impl Eng {
    fn new(
        account_id: String,
        engagement_id: String,
        channel: &'static str,
        channel_source: &'static str,
        direction: &'static str,
        start: i64,
    ) -> Self {
        Self {
            account_id,
            channel,
            channel_source,
            direction,
            used: HashSet::new(),
            events: Vec::new(),
            truth: TruthEngagement {
                engagement_id,
                channel: channel.to_owned(),
                direction: direction.to_owned(),
                start_time_ms: start,
                end_time_ms: start,
                ..TruthEngagement::default()
            },
            note_versions: BTreeMap::new(),
            last_ts: start,
        }
    }

    /// Emits `contact_center.{name}`; bumps `ts` by a millisecond until (name, ts) is unique in the engagement so no
    /// two distinct events are byte-identical. Returns the timestamp used.
    fn emit(&mut self, name: &'static str, mut ts: i64, mut object: Value) -> i64 {
        while !self.used.insert((name, ts)) {
            ts += 1;
        }
        let id = self.truth.engagement_id.clone();
        object["engagement_id"] = json!(id);
        self.observe(name, &object);
        self.last_ts = self.last_ts.max(ts);
        self.events.push(SimEvent {
            event_ts: ts,
            body: envelope(&self.account_id, name, ts, object),
        });
        ts
    }

    fn ended(&mut self, end: i64) {
        self.truth.end_time_ms = end;
        let object = json!({
            "channel": self.channel, "channel_source": self.channel_source, "direction": self.direction,
            "end_time": iso_time(end),
        });
        self.emit("engagement_ended", end, object);
    }

    fn observe(&mut self, name: &str, object: &Value) {
        let field = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let truth = &mut self.truth;
        truth.event_count += 1;
        if let Some(q) = field("cc_queue_id") {
            truth.queue_ids.insert(q);
        }
        if let Some(n) = field("consumer_number") {
            truth.consumer_numbers.insert(n);
        }
        match name {
            "engagement_user_answered" | "engagement_transfer_accepted" => {
                truth.agent_ids.extend(field("user_id"));
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
            // The typo in the zoom crate's event list (messaging transcript entry) is tolerated here.
            assert!(
                zoom::events::is_known_event(e.event())
                    || e.event() == "contact_center.engagement_messaging_transcript_completed",
                "unknown event {}",
                e.event()
            );
            // The bridge's own envelope type must accept every body.
            let parsed: zoom::WebhookEnvelope =
                serde_json::from_value(e.body.clone()).expect("zoom::WebhookEnvelope");
            assert_eq!(parsed.event_ts, e.event_ts);
            let is_agent_event = short_name(e).starts_with("user_");
            assert_eq!(
                parsed.payload.object.engagement_id.is_none(),
                is_agent_event,
                "{}",
                e.body
            );
        }
        let agent_events = s.events.iter().filter(|e| e.engagement_id().is_none());
        assert_eq!(agent_events.count(), s.truth.non_engagement_events);
        assert_eq!(s.truth.total_events(), s.events.len());
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
        for e in &s.events {
            for key in [
                "engagement_id",
                "user_id",
                "cc_queue_id",
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
            for key in ["download_url", "transcript_url", "playback_url"] {
                if let Some(url) = str_field(e, key) {
                    assert!(
                        url.starts_with("http://127.0.0.1:9/v2/contact_center/"),
                        "{url}"
                    );
                }
            }
            if let Some(n) = str_field(e, "consumer_number") {
                assert!(n.starts_with("+1") && n.len() == 12, "{n}");
            }
        }
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
                    t.direction = f("direction").unwrap_or_default();
                    t.start_time_ms = iso_ms(&f("start_time").unwrap_or_default());
                    assert_eq!(t.start_time_ms, e.event_ts);
                }
                "engagement_ended" => {
                    t.end_time_ms = iso_ms(&f("end_time").unwrap_or_default());
                    assert_eq!(t.end_time_ms, e.event_ts);
                }
                "engagement_user_answered" | "engagement_transfer_accepted" => {
                    t.agent_ids.extend(f("user_id"));
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
                assert!(!truth.queue_ids.is_empty());
                for (kind, _) in &truth.transcripts {
                    assert!(
                        ["recording", "messaging", "email", "voicemail"].contains(&kind.as_str())
                    );
                }
            }
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
}
