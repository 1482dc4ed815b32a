//! The CPU cost this crate adds to one consumer message on the bridge's hot path: verify the client-app JWT, parse
//! the virtual agent request, run the built-in bot, encode the reply. Prints p50/p99/max per algorithm.
//!
//!     cargo run --release -p chatbot --features sim --example overhead [-- ITERATIONS]

use std::time::{Duration, Instant};

use chatbot::backends::builtin::{BuiltinBot, BuiltinConfig, Faq};
use chatbot::backends::BotBackend;
use chatbot::client_app::{ClientApp, ClientAppConfig, JwtAlgorithm};
use chatbot::sim::TokenSigner;
use chatbot::zoom_connector::{ConnectorReply, VirtualAgentRequest};
use chatbot::Secret;

const SECRET: &str = "0123456789abcdef0123456789abcdef-overhead";

fn key(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture key")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let bot = BuiltinBot::new(BuiltinConfig {
        faq: vec![Faq {
            question: "What are your opening hours?".into(),
            answer: "9 to 5.".into(),
        }],
        ..Default::default()
    })
    .expect("bot");
    let cases = [
        (
            JwtAlgorithm::HS256,
            ClientAppConfig::hs("cs-1", JwtAlgorithm::HS256, Secret::new(SECRET)),
            TokenSigner::hs("cs-1", JwtAlgorithm::HS256, &Secret::new(SECRET)).expect("signer"),
        ),
        (
            JwtAlgorithm::RS256,
            ClientAppConfig::rs("cs-1", JwtAlgorithm::RS256, key("rsa_a_public.pem")),
            TokenSigner::rs("cs-1", JwtAlgorithm::RS256, &key("rsa_a_private.pem"))
                .expect("signer"),
        ),
    ];
    for (alg, config, signer) in cases {
        let app = ClientApp::new(&config).expect("app");
        let token = signer.sign(Some("alice@example.com"));
        let body = serde_json::to_vec(&serde_json::json!({
            "id": "m1", "sessionId": "s1", "conversationMode": "CONTINUE_CONVERSATION",
            "message": {"type": "text", "value": "what are your opening hours?"},
            "conversationVariables": {"global_system.Consumer.email": "alice@example.com"},
            "languageCode": "en-US"
        }))
        .expect("body");
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            let verified = app.verify(&token).expect("verify");
            let request = VirtualAgentRequest::parse(&body).expect("parse");
            let identity = app
                .identify(
                    &verified,
                    request.consumer_email().as_deref(),
                    None,
                    &request.session_id,
                )
                .expect("identify");
            let turn = request
                .to_bot_request(identity.bot_user(), vec![], None)
                .expect("turn");
            let response = bot.converse(&turn).await.expect("bot");
            let (reply, _) = ConnectorReply::from_response("r1", &request, &response, &[]);
            let bytes = serde_json::to_vec(&reply).expect("encode");
            std::hint::black_box(bytes);
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{alg}: {iterations} messages, p50 {:?}, p99 {:?}, max {:?}",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
}
