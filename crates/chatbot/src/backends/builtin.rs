//! The built-in rules bot (`kind = "builtin"`): answers FAQ questions, hands the conversation over to a live agent
//! when the consumer asks for one ("agent", "human", …), ends it on "bye". The demo uses it; it needs no service.
//!
//! Matching: the consumer's text and each FAQ question are reduced to lowercase words without common stop words; a
//! question matches when the share of its words found in the text reaches `match_threshold` (an exact match scores
//! 1). The best match wins; ties go to the question listed first. Greeting and fallback offer the first FAQ
//! questions as quick replies, whose values are the questions themselves so that picking one matches exactly.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Deserialize;

use super::{BackendError, BotBackend};
use crate::model::{BotRequest, BotResponse, Choice, EndOfConversation, Handover, Reply, TurnKind};

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "can", "do", "does", "for", "how", "i", "in", "is", "it", "me", "my",
    "of", "on", "or", "please", "the", "to", "what", "when", "where", "which", "who", "with",
    "you", "your",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Faq {
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuiltinConfig {
    #[serde(default = "default_greeting")]
    pub greeting: String,
    #[serde(default = "default_fallback")]
    pub fallback: String,
    #[serde(default)]
    pub faq: Vec<Faq>,
    #[serde(default = "default_handover_keywords")]
    pub handover_keywords: Vec<String>,
    #[serde(default = "default_handover_message")]
    pub handover_message: String,
    #[serde(default = "default_end_keywords")]
    pub end_keywords: Vec<String>,
    #[serde(default = "default_end_message")]
    pub end_message: String,
    #[serde(default = "default_threshold")]
    pub match_threshold: f64,
    /// How many FAQ questions greeting and fallback offer as quick replies (0: none).
    #[serde(default = "default_suggestions")]
    pub suggestions: usize,
}

fn default_greeting() -> String {
    "Hi! I'm the virtual assistant. Ask me a question, or type \"agent\" to talk to a person."
        .into()
}
fn default_fallback() -> String {
    "Sorry, I don't know that one. Type \"agent\" to talk to a person.".into()
}
fn default_handover_keywords() -> Vec<String> {
    ["agent", "human", "person", "representative", "operator"]
        .map(String::from)
        .to_vec()
}
fn default_handover_message() -> String {
    "Connecting you to an agent…".into()
}
fn default_end_keywords() -> Vec<String> {
    ["bye", "goodbye"].map(String::from).to_vec()
}
fn default_end_message() -> String {
    "Goodbye!".into()
}
fn default_threshold() -> f64 {
    0.5
}
fn default_suggestions() -> usize {
    3
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({}))
            .unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

#[derive(Debug)]
pub struct BuiltinBot {
    config: BuiltinConfig,
    faq_words: Vec<BTreeSet<String>>,
    handover: BTreeSet<String>,
    end: BTreeSet<String>,
}

impl BuiltinBot {
    pub fn new(config: BuiltinConfig) -> Result<Self, BackendError> {
        if !(0.0..=1.0).contains(&config.match_threshold) {
            return Err(BackendError::Config(
                "match_threshold must be between 0 and 1".into(),
            ));
        }
        if let Some(f) = config
            .faq
            .iter()
            .find(|f| words(&f.question).is_empty() || f.answer.trim().is_empty())
        {
            return Err(BackendError::Config(format!(
                "FAQ entry {:?} has no words or no answer",
                f.question
            )));
        }
        let faq_words = config.faq.iter().map(|f| words(&f.question)).collect();
        let lower = |v: &[String]| v.iter().map(|k| k.to_lowercase()).collect::<BTreeSet<_>>();
        Ok(BuiltinBot {
            handover: lower(&config.handover_keywords),
            end: lower(&config.end_keywords),
            faq_words,
            config,
        })
    }

    fn suggestions(&self) -> Option<Reply> {
        let options: Vec<Choice> = self
            .config
            .faq
            .iter()
            .take(self.config.suggestions)
            .map(|f| Choice {
                label: f.question.clone(),
                value: f.question.clone(),
            })
            .collect();
        (!options.is_empty()).then_some(Reply::QuickReplies {
            title: None,
            options,
        })
    }

    /// The best FAQ for a text, if any reaches the threshold.
    pub fn best_match(&self, text: &str) -> Option<&Faq> {
        let normalized = normalize(text);
        if let Some(f) = self
            .config
            .faq
            .iter()
            .find(|f| normalize(&f.question) == normalized)
        {
            return Some(f);
        }
        let said = words(text);
        let mut best: Option<(f64, usize)> = None;
        for (i, q) in self.faq_words.iter().enumerate() {
            let common = q.intersection(&said).count();
            if common == 0 {
                continue;
            }
            let score = common as f64 / q.len() as f64;
            if score >= self.config.match_threshold && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| &self.config.faq[i])
    }
}

#[async_trait]
impl BotBackend for BuiltinBot {
    fn kind(&self) -> &'static str {
        "builtin"
    }

    async fn converse(&self, request: &BotRequest) -> Result<BotResponse, BackendError> {
        let mut response = BotResponse::default();
        if request.kind == TurnKind::End {
            return Ok(response);
        }
        let raw: BTreeSet<String> = normalize(&request.text)
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if request.kind == TurnKind::Start && raw.is_empty() {
            response.replies.push(Reply::text(&self.config.greeting));
            response.replies.extend(self.suggestions());
            return Ok(response);
        }
        if !raw.is_disjoint(&self.handover) {
            response
                .replies
                .push(Reply::text(&self.config.handover_message));
            let mut handover = Handover {
                reason: Some("consumer asked for an agent".into()),
                ..Default::default()
            };
            handover.context.insert(
                "last_message".into(),
                serde_json::Value::String(request.text.clone()),
            );
            response.handover = Some(handover);
            return Ok(response);
        }
        if !raw.is_disjoint(&self.end) {
            response.replies.push(Reply::text(&self.config.end_message));
            response.end = Some(EndOfConversation {
                reason: Some("consumer said goodbye".into()),
            });
            return Ok(response);
        }
        match self.best_match(&request.text) {
            Some(faq) => response.replies.push(Reply::text(&faq.answer)),
            None if request.kind == TurnKind::Start => {
                response.replies.push(Reply::text(&self.config.greeting));
                response.replies.extend(self.suggestions());
            }
            None => {
                response.replies.push(Reply::text(&self.config.fallback));
                response.replies.extend(self.suggestions());
            }
        }
        Ok(response)
    }
}

fn normalize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> BTreeSet<String> {
    normalize(text)
        .split(' ')
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BotUser;

    fn bot() -> BuiltinBot {
        BuiltinBot::new(BuiltinConfig {
            faq: vec![
                Faq {
                    question: "What are your opening hours?".into(),
                    answer: "9 to 5, Monday to Friday.".into(),
                },
                Faq {
                    question: "How do I reset my password?".into(),
                    answer: "Use the 'Forgot password' link.".into(),
                },
            ],
            ..Default::default()
        })
        .unwrap()
    }

    fn req(kind: TurnKind, text: &str) -> BotRequest {
        BotRequest {
            conversation_id: "s".into(),
            message_id: "m".into(),
            kind,
            text: text.into(),
            user: BotUser {
                id: "u".into(),
                anonymous: true,
                email: None,
                phone: None,
            },
            language: None,
            variables: Default::default(),
            history: vec![],
            backend_state: None,
        }
    }

    #[tokio::test]
    async fn greets_answers_falls_back() {
        let b = bot();
        let r = b.converse(&req(TurnKind::Start, "")).await.unwrap();
        assert!(matches!(&r.replies[0], Reply::Text { text } if text.starts_with("Hi!")));
        assert!(matches!(&r.replies[1], Reply::QuickReplies { options, .. } if options.len() == 2));
        let r = b
            .converse(&req(TurnKind::Message, "when are you open? opening hours"))
            .await
            .unwrap();
        assert_eq!(r.replies, vec![Reply::text("9 to 5, Monday to Friday.")]);
        let r = b
            .converse(&req(TurnKind::Message, "How do I reset my password?"))
            .await
            .unwrap();
        assert_eq!(
            r.replies,
            vec![Reply::text("Use the 'Forgot password' link.")]
        );
        let r = b
            .converse(&req(TurnKind::Message, "password reset please"))
            .await
            .unwrap();
        assert_eq!(
            r.replies,
            vec![Reply::text("Use the 'Forgot password' link.")]
        );
        let r = b
            .converse(&req(TurnKind::Message, "tell me a joke"))
            .await
            .unwrap();
        assert!(matches!(&r.replies[0], Reply::Text { text } if text.starts_with("Sorry")));
        assert!(r.handover.is_none() && r.end.is_none());
    }

    #[tokio::test]
    async fn hands_over_and_ends() {
        let b = bot();
        let r = b
            .converse(&req(TurnKind::Message, "I want an AGENT now!"))
            .await
            .unwrap();
        let h = r.handover.expect("handover");
        assert_eq!(
            h.context.get("last_message"),
            Some(&serde_json::json!("I want an AGENT now!"))
        );
        assert_eq!(r.replies, vec![Reply::text("Connecting you to an agent…")]);
        // "agents" or "agenda" are other words.
        assert!(b
            .converse(&req(TurnKind::Message, "agenda"))
            .await
            .unwrap()
            .handover
            .is_none());
        let r = b.converse(&req(TurnKind::Message, "ok bye")).await.unwrap();
        assert!(r.end.is_some());
        let r = b.converse(&req(TurnKind::End, "")).await.unwrap();
        assert!(r.replies.is_empty());
    }

    #[test]
    fn rejects_bad_config() {
        let c = BuiltinConfig {
            match_threshold: 2.0,
            ..Default::default()
        };
        assert!(BuiltinBot::new(c).is_err());
        let c = BuiltinConfig {
            faq: vec![Faq {
                question: "the a".into(),
                answer: "x".into(),
            }],
            ..Default::default()
        };
        assert!(BuiltinBot::new(c).is_err());
    }
}
