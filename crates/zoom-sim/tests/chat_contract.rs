//! The simulated bot connector against what the references document: the request is Zoom's "Virtual agents
//! (non-Zoom) messaging protocol reference" example field for field; the client-app JWT carries Kore.ai's claims
//! (app named by `appId` or `iss`, `sub`, `iat` and `exp` in seconds); the Post URL checks the Access Token and
//! answers Kore's error shapes, 429 with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use zoom_sim::chat::{
    AppClaim, ConsumerSession, Fault, JwtAlgorithm, PostUrlServer, Secret, TokenSigner, MODE_START,
};

/// The request payload of the protocol reference, verbatim (the public excerpt ends at `"additionalPayload": nul`).
const DOC_EXAMPLE: &str = r#"{
    "id": "xxx",
    "sessionId": "xxx",
    "conversationMode": "START_CONVERSATION",
    "message": { "type": "text", "value": "hi" },
    "conversationVariables": {
        "global_system.Engagement.timezone": "America/New_York",
        "global_system.Consumer.email": "a@q.com"
    },
    "languageCode": "en-US",
    "additionalPayload": null
}"#;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn the_request_has_the_documented_fields_and_types() {
    let doc: Value = serde_json::from_str(DOC_EXAMPLE).unwrap();
    let signer = Arc::new(
        TokenSigner::hs(
            "cs-1",
            JwtAlgorithm::HS256,
            &Secret::new("0123456789abcdef0123456789abcdef"),
        )
        .unwrap(),
    );
    let mut session = ConsumerSession::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9/x",
        signer,
        "s-1",
    )
    .with_variable("global_system.Consumer.email", "a@q.com");
    let (id, body) = session.next_body(MODE_START, "hi");
    let sim: Value = serde_json::from_slice(&body).unwrap();
    let doc_keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    let sim_keys: Vec<&String> = sim.as_object().unwrap().keys().collect();
    assert_eq!(sim_keys, doc_keys);
    for (key, value) in doc.as_object().unwrap() {
        assert_eq!(kind(&sim[key]), kind(value), "{key}");
    }
    assert_eq!(sim["id"], id);
    assert_eq!(sim["conversationMode"], "START_CONVERSATION");
    assert_eq!(sim["message"], json!({"type": "text", "value": "hi"}));
    assert_eq!(
        sim["conversationVariables"]["global_system.Consumer.email"],
        "a@q.com"
    );
    assert_eq!(sim["languageCode"], "en-US");
    // The bridge's parser reads it as the documented example.
    chatbot::zoom_connector::VirtualAgentRequest::parse(&body).unwrap();
    chatbot::zoom_connector::VirtualAgentRequest::parse(DOC_EXAMPLE.as_bytes()).unwrap();
}

fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

#[test]
fn tokens_carry_kore_claims_in_both_families() {
    let hs = TokenSigner::hs(
        "cs-app",
        JwtAlgorithm::HS512,
        &Secret::new("0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let (header, payload) = claims(&hs.sign(Some("user@example.com")));
    assert_eq!(header["alg"], "HS512");
    assert_eq!(payload["appId"], "cs-app");
    assert_eq!(payload["sub"], "user@example.com");
    let (iat, exp) = (
        payload["iat"].as_i64().unwrap(),
        payload["exp"].as_i64().unwrap(),
    );
    assert!(
        iat > 1_600_000_000 && iat < 10_000_000_000,
        "seconds, not ms: {iat}"
    );
    assert!(exp > iat);
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../chatbot/tests/fixtures/rsa_a_private.pem"
    ))
    .unwrap();
    let rs = TokenSigner::rs("cs-app", JwtAlgorithm::RS256, &pem)
        .unwrap()
        .with_app_claim(AppClaim::Iss);
    let (header, payload) = claims(&rs.sign(None));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(payload["iss"], "cs-app");
    assert!(payload.get("sub").is_none(), "anonymous: no sub");
}

#[tokio::test]
async fn the_post_url_checks_the_access_token_and_answers_faults() {
    let post = PostUrlServer::start(Secret::new("tok-1")).await.unwrap();
    let http = reqwest::Client::new();
    let reply = json!({"id": "r1", "sessionId": "s", "replyToId": "m1", "messages": [{"type": "text", "value": "x"}]});
    let r = http.post(post.url()).json(&reply).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], 401);
    let r = http
        .post(post.url())
        .bearer_auth("nope")
        .json(&reply)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(post.unauthorized(), 2);
    post.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: 3,
        },
    );
    let r = http
        .post(post.url())
        .bearer_auth("tok-1")
        .json(&reply)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    post.set_outage(Some(Fault::Status(503)));
    let r = http
        .post(post.url())
        .bearer_auth("tok-1")
        .json(&reply)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    post.set_outage(None);
    let r = http
        .post(post.url())
        .bearer_auth("tok-1")
        .json(&reply)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(post.wait_for(1, Duration::from_secs(1)).await);
    assert_eq!(post.replies_for("s")[0].reply_to_id.as_deref(), Some("m1"));
    assert_eq!(post.attempts(), 5);
}
