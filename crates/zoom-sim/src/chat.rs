//! Zoom Contact Center's bot connector, simulated: the side of ZCC's chatbot integration that Zoom plays toward a
//! bot platform (the bridge's `POST /chat/zoom/{channel}`).
//!
//! - Consumer sessions post virtual agent requests signed with the channel's client-app JWT, either family
//!   (HS256/HS512 with the client secret, RS256/RS512 with a private key) and either app claim (`appId`, `iss`);
//!   they can redeliver a message (a duplicate) and retry on 5xx/429 or network errors.
//! - The Post URL checks the Access Token, records every reply it accepts in order, and answers 5xx or 429 (with
//!   `Retry-After`) on demand or for an outage.
//! - [`run_load`] plays many conversations at once at a fixed total rate (open loop: a message is sent when it is
//!   due, whatever the bridge's pace), with duplicates, and keeps the ground truth ([`ChatTruth`]): what each
//!   session sent and when, against which the replies the Post URL received are checked ([`ChatTruth::check`]).
//!
//! The request and reply shapes are `chatbot::zoom_connector`'s (the one module that holds every unconfirmed wire
//! detail; see docs/chat/protocol.md), so a correction there changes the simulator too. The request follows the
//! example of Zoom's "Virtual agents (non-Zoom) messaging protocol reference"; the JWT claims follow Kore.ai's
//! client-app documentation (tests/chat_contract.rs checks both).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use chatbot::client_app::JwtAlgorithm;
pub use chatbot::sim::{
    AppClaim, ConsumerSession, Fault, PostUrlServer, Received, SentMessage, SimError, SimResponse,
    TokenSigner, POST_URL_PATH,
};
pub use chatbot::zoom_connector::{
    AccessTokenAuth, ConnectorReply, MODE_CONTINUE, MODE_END, MODE_START,
};
pub use chatbot::Secret;

/// What the consumers of a load say, in turn.
pub const DEFAULT_TEXTS: [&str; 4] = [
    "What are your opening hours?",
    "How do I reset my password?",
    "Do you ship abroad?",
    "thanks",
];

/// Many conversations at once.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The bot platform's Webhook URL (`http://bridge/chat/zoom/<channel>`).
    pub webhook_url: String,
    pub conversations: usize,
    /// Messages per conversation, the `START_CONVERSATION` included.
    pub messages_per_conversation: usize,
    /// Messages per second over all conversations (open loop).
    pub rate_per_second: f64,
    /// Share of messages delivered a second time (same body, a fresh token), as a connector retry would.
    pub duplicate_rate: f64,
    /// Consumers as JWT subjects `<prefix><n>@example.com`; `None`: anonymous (no `sub`).
    pub subject_prefix: Option<String>,
    /// Session ids are `<session_prefix><n>`.
    pub session_prefix: String,
    pub texts: Vec<String>,
    /// Extra conversation variables of every session (e.g. an engagement id).
    pub variables: BTreeMap<String, String>,
    /// Redeliveries of a message answered 5xx/429 or not answered.
    pub retries: u32,
    pub retry_delay: Duration,
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            conversations: 10,
            messages_per_conversation: 5,
            rate_per_second: 20.0,
            duplicate_rate: 0.0,
            subject_prefix: Some("consumer".into()),
            session_prefix: "sess-".into(),
            texts: DEFAULT_TEXTS.iter().map(|t| t.to_string()).collect(),
            variables: BTreeMap::new(),
            retries: 3,
            retry_delay: Duration::from_millis(200),
            seed: 1,
        }
    }
}

/// One message as sent: when, how the connector's request was answered, whether it was also redelivered.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    pub session_id: String,
    pub message_id: String,
    pub mode: String,
    pub text: String,
    /// When the first delivery started (epoch ms, fractional).
    pub sent_at_ms: f64,
    /// Its acknowledgement (ms after `sent_at_ms`) and status (0: no answer).
    pub ack_ms: f64,
    pub status: u16,
    pub duplicated: bool,
}

/// What one session sent.
#[derive(Debug, Clone, Serialize)]
pub struct SessionTruth {
    pub session_id: String,
    pub subject: Option<String>,
    pub messages: Vec<MessageRecord>,
}

/// The ground truth of a load: every message every session sent.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatTruth {
    pub sessions: Vec<SessionTruth>,
}

/// How the replies the Post URL received compare with what was sent.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct TruthCheck {
    pub messages: usize,
    /// Messages the connector acknowledged (2xx).
    pub acknowledged: usize,
    /// Replies received for acknowledged messages.
    pub answered: usize,
    /// Acknowledged messages with no reply (session, message id).
    pub missing: Vec<(String, String)>,
    /// Messages answered more than once.
    pub duplicated: Vec<(String, String)>,
    /// Sessions whose replies arrived in another order than their messages.
    pub out_of_order: Vec<String>,
}

impl TruthCheck {
    pub fn is_perfect(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.out_of_order.is_empty()
    }
}

impl ChatTruth {
    pub fn messages(&self) -> impl Iterator<Item = &MessageRecord> {
        self.sessions.iter().flat_map(|s| s.messages.iter())
    }

    /// Checks the replies of `received` (the Post URL's, in arrival order) against the messages sent: every
    /// acknowledged message `expect` says is answered once, and each session's replies come in the order of its
    /// messages. `expect` decides which messages get a reply (with a bot that answers everything, all but the
    /// end of the conversation).
    pub fn check(
        &self,
        received: &[Received],
        expect: impl Fn(&MessageRecord) -> bool,
    ) -> TruthCheck {
        let mut by_session: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in received.iter().filter_map(Received::reply) {
            if let Some(to) = r.reply_to_id {
                by_session.entry(r.session_id).or_default().push(to);
            }
        }
        let mut out = TruthCheck::default();
        for s in &self.sessions {
            let replies = by_session.get(&s.session_id).cloned().unwrap_or_default();
            let mut order = Vec::new();
            for m in &s.messages {
                out.messages += 1;
                if !(200..300).contains(&m.status) {
                    continue;
                }
                out.acknowledged += 1;
                if !expect(m) {
                    continue;
                }
                let n = replies.iter().filter(|id| **id == m.message_id).count();
                match n {
                    0 => out
                        .missing
                        .push((s.session_id.clone(), m.message_id.clone())),
                    1 => out.answered += 1,
                    _ => {
                        out.answered += 1;
                        out.duplicated
                            .push((s.session_id.clone(), m.message_id.clone()))
                    }
                }
                order.push(m.message_id.clone());
            }
            let mut seen: Vec<&String> = Vec::new();
            for id in &replies {
                if !seen.contains(&id) {
                    seen.push(id);
                }
            }
            let expected: Vec<&String> = order.iter().filter(|id| seen.contains(id)).collect();
            if seen
                .iter()
                .filter(|id| order.contains(id))
                .copied()
                .collect::<Vec<_>>()
                != expected
            {
                out.out_of_order.push(s.session_id.clone());
            }
        }
        out
    }
}

fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// A tiny deterministic generator (xorshift), so a seed gives the same duplicates.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Plays `config.conversations` conversations at once: conversation `c` sends its `i`-th message when
/// `(i × conversations + c) / rate` seconds have passed, so the total rate is `rate_per_second` and each
/// conversation waits `conversations / rate` seconds between its messages. Returns the ground truth.
pub async fn run_load(
    http: reqwest::Client,
    signer: Arc<TokenSigner>,
    config: &LoadConfig,
) -> ChatTruth {
    let start = tokio::time::Instant::now();
    let rate = config.rate_per_second.max(0.001);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..config.conversations {
        let http = http.clone();
        let signer = signer.clone();
        let config = config.clone();
        tasks.spawn(async move {
            let session_id = format!("{}{c}", config.session_prefix);
            let subject = config
                .subject_prefix
                .as_ref()
                .map(|p| format!("{p}{c}@example.com"));
            let mut session =
                ConsumerSession::new(http, config.webhook_url.clone(), signer, session_id.clone())
                    .with_retries(config.retries, config.retry_delay);
            if let Some(s) = &subject {
                session = session.with_subject(s.clone());
            }
            for (k, v) in &config.variables {
                session = session.with_variable(k.clone(), v.clone());
            }
            let mut rng = Rng(config.seed.wrapping_mul(6364136223846793005) ^ (c as u64 + 1) | 1);
            let mut messages = Vec::new();
            for i in 0..config.messages_per_conversation {
                let due = Duration::from_secs_f64((i * config.conversations + c) as f64 / rate);
                tokio::time::sleep_until(start + due).await;
                let mode = if i == 0 { MODE_START } else { MODE_CONTINUE };
                let text = if config.texts.is_empty() {
                    String::new()
                } else {
                    config.texts[(i + c) % config.texts.len()].clone()
                };
                let (id, body) = session.next_body(mode, &text);
                let sent_at = SystemTime::now();
                let clock = std::time::Instant::now();
                let answer = session.post_body(body).await;
                let ack_ms = clock.elapsed().as_secs_f64() * 1000.0;
                let status = answer.as_ref().map(|r| r.status).unwrap_or(0);
                let duplicated = rng.next_f64() < config.duplicate_rate;
                if duplicated {
                    let _ = session.resend_last().await;
                }
                messages.push(MessageRecord {
                    session_id: session_id.clone(),
                    message_id: id,
                    mode: mode.to_string(),
                    text,
                    sent_at_ms: epoch_ms(sent_at),
                    ack_ms,
                    status,
                    duplicated,
                });
            }
            SessionTruth {
                session_id,
                subject,
                messages,
            }
        });
    }
    let mut sessions = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(s) = done {
            sessions.push(s);
        }
    }
    sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    ChatTruth { sessions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received(session: &str, reply_to: &str) -> Received {
        Received {
            at: SystemTime::now(),
            body: json!({"id": format!("r-{reply_to}"), "sessionId": session, "replyToId": reply_to,
                "messages": [{"type": "text", "value": "ok"}]}),
        }
    }

    fn record(session: &str, id: &str, status: u16) -> MessageRecord {
        MessageRecord {
            session_id: session.into(),
            message_id: id.into(),
            mode: MODE_CONTINUE.into(),
            text: "x".into(),
            sent_at_ms: 0.0,
            ack_ms: 0.0,
            status,
            duplicated: false,
        }
    }

    #[test]
    fn the_check_finds_missing_duplicated_and_reordered_replies() {
        let truth = ChatTruth {
            sessions: vec![
                SessionTruth {
                    session_id: "a".into(),
                    subject: None,
                    messages: vec![
                        record("a", "a1", 200),
                        record("a", "a2", 200),
                        record("a", "a3", 503),
                    ],
                },
                SessionTruth {
                    session_id: "b".into(),
                    subject: None,
                    messages: vec![record("b", "b1", 200), record("b", "b2", 200)],
                },
            ],
        };
        let perfect = [
            received("a", "a1"),
            received("b", "b1"),
            received("a", "a2"),
            received("b", "b2"),
        ];
        let check = truth.check(&perfect, |_| true);
        assert!(check.is_perfect(), "{check:?}");
        assert_eq!(
            (check.messages, check.acknowledged, check.answered),
            (5, 4, 4)
        );
        let bad = [
            received("a", "a2"),
            received("a", "a1"),
            received("b", "b1"),
            received("b", "b1"),
        ];
        let check = truth.check(&bad, |_| true);
        assert_eq!(check.out_of_order, vec!["a".to_string()]);
        assert_eq!(check.duplicated, vec![("b".to_string(), "b1".to_string())]);
        assert_eq!(check.missing, vec![("b".to_string(), "b2".to_string())]);
    }
}
