//! The connector protocol end to end inside this crate: the simulator's consumer sessions post signed requests to a
//! small Webhook URL harness built only from this crate's pieces (client-app verification, request parsing, the
//! de-duplication key, a bot backend, reply encoding), which answers inline (action) or posts to the simulator's
//! Post URL through [`PostUrlClient`] (trigger). The harness stands in for the bridge, whose durable event log and
//! outbox come later; its retry loop here only re-posts what [`PostOutcome`] says is retryable.

mod common;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chatbot::backends::builtin::{BuiltinBot, BuiltinConfig, Faq};
use chatbot::backends::BotBackend;
use chatbot::client_app::{ClientApp, ClientAppConfig, JwtAlgorithm};
use chatbot::http_outcome::PostOutcome;
use chatbot::model::BotResponse;
use chatbot::push::{PushClient, PushConfig, PushContext, PushDisplay, PushEvent, PushMode};
use chatbot::sim::{ConsumerSession, Fault, PostUrlServer, TokenSigner};
use chatbot::zoom_connector::{
    bearer_token, error_body, trigger_ack, AccessTokenAuth, ConnectorReply, PostUrlClient,
    ReplyMode, VirtualAgentRequest,
};
use chatbot::Secret;
use common::{fixture, http, Fake};

const SECRET: &str = "0123456789abcdef0123456789abcdef-hs-secret";
const ACCESS_TOKEN: &str = "zcc-post-url-access-token-1";

struct Harness {
    app: ClientApp,
    bot: BuiltinBot,
    mode: ReplyMode,
    enabled: bool,
    seen: Mutex<HashSet<String>>,
    bot_calls: Mutex<usize>,
    outbox: Mutex<VecDeque<ConnectorReply>>,
    /// The next this-many requests fail with 503 before anything is stored (a failed commit).
    fail_inbound: Mutex<usize>,
}

async fn webhook(State(h): State<Arc<Harness>>, headers: HeaderMap, body: Bytes) -> Response {
    {
        let mut failing = h.fail_inbound.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(error_body(503, "try again")),
            )
                .into_response();
        }
    }
    if !h.enabled {
        return (
            StatusCode::FORBIDDEN,
            Json(error_body(403, "channel disabled")),
        )
            .into_response();
    }
    let Some(token) = bearer_token(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(error_body(401, "missing token")),
        )
            .into_response();
    };
    let verified = match h.app.verify(token) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(error_body(401, &e.to_string())),
            )
                .into_response()
        }
    };
    let request = match VirtualAgentRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(error_body(400, &e.to_string())),
            )
                .into_response()
        }
    };
    let identity = match h.app.identify(
        &verified,
        request.consumer_email().as_deref(),
        None,
        &request.session_id,
    ) {
        Ok(i) => i,
        Err(e) => {
            return (StatusCode::FORBIDDEN, Json(error_body(403, &e.to_string()))).into_response()
        }
    };
    let fresh = h.seen.lock().unwrap().insert(request.dedup_key());
    if !fresh {
        return (StatusCode::OK, Json(trigger_ack(&request.id))).into_response();
    }
    let Some(bot_request) = request.to_bot_request(identity.bot_user(), vec![], None) else {
        return (StatusCode::OK, Json(trigger_ack(&request.id))).into_response();
    };
    *h.bot_calls.lock().unwrap() += 1;
    let response = h
        .bot
        .converse(&bot_request)
        .await
        .unwrap_or_else(|_| BotResponse::default());
    let reply_id = format!("r-{}", request.id);
    let (reply, _) = ConnectorReply::from_response(reply_id, &request, &response, &[]);
    match h.mode {
        ReplyMode::Action => (StatusCode::OK, Json(reply)).into_response(),
        ReplyMode::Trigger => {
            h.outbox.lock().unwrap().push_back(reply);
            (StatusCode::OK, Json(trigger_ack(&request.id))).into_response()
        }
    }
}

fn bot() -> BuiltinBot {
    BuiltinBot::new(BuiltinConfig {
        faq: vec![Faq {
            question: "What are your opening hours?".into(),
            answer: "9 to 5.".into(),
        }],
        ..Default::default()
    })
    .unwrap()
}

async fn harness(app: ClientAppConfig, mode: ReplyMode, enabled: bool) -> (Arc<Harness>, Fake) {
    let h = Arc::new(Harness {
        app: ClientApp::new(&app).unwrap(),
        bot: bot(),
        mode,
        enabled,
        seen: Mutex::new(HashSet::new()),
        bot_calls: Mutex::new(0),
        outbox: Mutex::new(VecDeque::new()),
        fail_inbound: Mutex::new(0),
    });
    let fake = Fake::start(
        Router::new()
            .route("/chat/zoom/web", post(webhook))
            .with_state(h.clone()),
    )
    .await;
    (h, fake)
}

fn hs_config() -> ClientAppConfig {
    ClientAppConfig::hs("cs-zcc", JwtAlgorithm::HS256, Secret::new(SECRET))
}

/// Drains the harness's outbox in order, retrying what is retryable (the bridge's outbox does this durably).
async fn drain(h: &Harness, client: &PostUrlClient, max_attempts: usize) -> Vec<PostOutcome> {
    let mut outcomes = Vec::new();
    loop {
        let next = h.outbox.lock().unwrap().front().cloned();
        let Some(reply) = next else { break };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = client.post(&reply).await;
            outcomes.push(outcome.clone());
            match outcome {
                PostOutcome::Delivered { .. } => break,
                PostOutcome::Retryable { .. } if attempts < max_attempts => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                other => panic!("gave up on {}: {other:?}", reply.id),
            }
        }
        h.outbox.lock().unwrap().pop_front();
    }
    outcomes
}

#[tokio::test]
async fn action_mode_answers_inline() {
    let (h, fake) = harness(hs_config(), ReplyMode::Action, true).await;
    let signer =
        Arc::new(TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new(SECRET)).unwrap());
    let mut s = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", fake.url()),
        signer,
        "sess-a",
    )
    .with_subject("alice@example.com");
    let r = s.start("").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let reply: ConnectorReply = serde_json::from_value(r.body).unwrap();
    assert_eq!(reply.session_id, "sess-a");
    assert_eq!(reply.reply_to_id.as_deref(), Some("sess-a-m0001"));
    assert_eq!(reply.messages[0].kind, "text");
    let r = s.say("opening hours?").await.unwrap();
    let reply: ConnectorReply = serde_json::from_value(r.body).unwrap();
    assert_eq!(reply.messages[0].value, "9 to 5.");
    let r = s.say("agent please").await.unwrap();
    let reply: ConnectorReply = serde_json::from_value(r.body).unwrap();
    assert_eq!(reply.conversation_mode.as_deref(), Some("HANDOVER"));
    assert_eq!(*h.bot_calls.lock().unwrap(), 3);
}

#[tokio::test]
async fn refusals_wrong_key_disabled_channel_anonymous() {
    let (_, fake) = harness(hs_config(), ReplyMode::Action, true).await;
    let url = format!("{}/chat/zoom/web", fake.url());
    // Signed with another secret.
    let wrong = Arc::new(
        TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new("x".repeat(40))).unwrap(),
    );
    let mut s = ConsumerSession::new(http(), &url, wrong, "sess-w").with_subject("a");
    let r = s.start("hi").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.body["errors"][0]["msg"], "bad signature");
    // An RS-signed token on an HS app.
    let rs = Arc::new(
        TokenSigner::rs("cs-zcc", JwtAlgorithm::RS256, &fixture("rsa_a_private.pem")).unwrap(),
    );
    let mut s = ConsumerSession::new(http(), &url, rs, "sess-r").with_subject("a");
    assert_eq!(s.start("hi").await.unwrap().status, 401);
    // Anonymous on an app that does not allow it.
    let good =
        Arc::new(TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new(SECRET)).unwrap());
    let mut s = ConsumerSession::new(http(), &url, good.clone(), "sess-anon");
    let r = s.start("hi").await.unwrap();
    assert_eq!(r.status, 403);
    assert!(r.body["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("anonymous"));
    // ... but with an e-mail in the conversation variables the consumer is identified.
    let mut s = ConsumerSession::new(http(), &url, good.clone(), "sess-mail")
        .with_variable("global_system.Consumer.email", "a@q.com");
    assert_eq!(s.start("hi").await.unwrap().status, 200);
    // A disabled channel refuses everything.
    let (_, off) = harness(hs_config(), ReplyMode::Action, false).await;
    let mut s = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", off.url()),
        good,
        "sess-off",
    )
    .with_subject("a");
    assert_eq!(s.start("hi").await.unwrap().status, 403);
}

#[tokio::test]
async fn duplicate_deliveries_reach_the_bot_once() {
    let (h, fake) = harness(hs_config(), ReplyMode::Trigger, true).await;
    let signer =
        Arc::new(TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new(SECRET)).unwrap());
    let mut s = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", fake.url()),
        signer,
        "sess-d",
    )
    .with_subject("a");
    assert_eq!(s.start("hello").await.unwrap().status, 200);
    for _ in 0..3 {
        let r = s.resend_last().await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body["status"], "ok");
    }
    assert_eq!(*h.bot_calls.lock().unwrap(), 1);
    assert_eq!(h.outbox.lock().unwrap().len(), 1);
    assert_eq!(s.sent().len(), 1);
}

#[tokio::test]
async fn the_connector_retries_a_failed_delivery_with_the_same_id() {
    let (h, fake) = harness(hs_config(), ReplyMode::Trigger, true).await;
    *h.fail_inbound.lock().unwrap() = 2;
    let signer =
        Arc::new(TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new(SECRET)).unwrap());
    let mut s = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", fake.url()),
        signer,
        "sess-retry",
    )
    .with_subject("a")
    .with_retries(3, Duration::from_millis(5));
    let r = s.start("hello").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.deliveries(), 3);
    assert_eq!(*h.bot_calls.lock().unwrap(), 1);
    // Without retries the failure is what the caller sees.
    *h.fail_inbound.lock().unwrap() = 1;
    let signer =
        Arc::new(TokenSigner::hs("cs-zcc", JwtAlgorithm::HS256, &Secret::new(SECRET)).unwrap());
    let mut once = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", fake.url()),
        signer,
        "sess-once",
    )
    .with_subject("a");
    assert_eq!(once.start("hello").await.unwrap().status, 503);
    assert_eq!(once.deliveries(), 1);
}

#[tokio::test]
async fn trigger_mode_replies_survive_a_post_url_outage_in_order() {
    let mut cfg = ClientAppConfig::rs("cs-zcc", JwtAlgorithm::RS512, fixture("rsa_a_public.pem"));
    cfg.allow_anonymous = true;
    let (h, fake) = harness(cfg, ReplyMode::Trigger, true).await;
    let post_url = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
        .await
        .unwrap();
    let client = PostUrlClient::new(http(), post_url.url(), Secret::new(ACCESS_TOKEN));
    let signer = Arc::new(
        TokenSigner::rs("cs-zcc", JwtAlgorithm::RS512, &fixture("rsa_a_private.pem")).unwrap(),
    );
    let mut s = ConsumerSession::new(
        http(),
        format!("{}/chat/zoom/web", fake.url()),
        signer,
        "sess-t",
    );
    s.start("").await.unwrap();
    for text in ["opening hours", "tell me a joke", "opening hours?", "bye"] {
        let r = s.say(text).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["status"], "ok",
            "trigger mode acknowledges, replies go to the Post URL"
        );
    }
    // The Post URL is down (503) for a while, then rate-limits once.
    post_url.set_outage(Some(Fault::Status(503)));
    let head = h.outbox.lock().unwrap()[0].clone();
    let first = client.post(&head).await;
    assert!(
        matches!(
            first,
            PostOutcome::Retryable {
                status: Some(503),
                ..
            }
        ),
        "{first:?}"
    );
    post_url.set_outage(None);
    post_url.fail_next(2, Fault::Status(502));
    post_url.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    let outcomes = drain(&h, &client, 10).await;
    assert!(outcomes.iter().any(|o| matches!(o, PostOutcome::Retryable { status: Some(429), retry_after: Some(d), .. } if *d == Duration::from_secs(2))));
    assert!(post_url.wait_for(5, Duration::from_secs(5)).await);
    let replies = post_url.replies_for("sess-t");
    let ids: Vec<String> = replies
        .iter()
        .filter_map(|r| r.reply_to_id.clone())
        .collect();
    let sent: Vec<String> = s.sent().iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        ids, sent,
        "every reply once, in the order of the consumer's messages"
    );
    assert_eq!(
        replies.last().unwrap().conversation_mode.as_deref(),
        Some("END_CONVERSATION")
    );
    assert_eq!(replies[1].messages[0].value, "9 to 5.");
    assert_eq!(post_url.unauthorized(), 0);
    assert_eq!(post_url.attempts(), 1 + 2 + 1 + 5);
}

#[tokio::test]
async fn post_url_client_outcomes() {
    let server = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
        .await
        .unwrap();
    let reply = ConnectorReply {
        id: "r1".into(),
        session_id: "s".into(),
        reply_to_id: None,
        messages: vec![chatbot::zoom_connector::ZoomMessage::text("hi")],
        conversation_mode: None,
        conversation_variables: Default::default(),
        handover: None,
        language_code: None,
    };
    let good = PostUrlClient::new(http(), server.url(), Secret::new(ACCESS_TOKEN));
    assert_eq!(
        good.post(&reply).await,
        PostOutcome::Delivered { status: 200 }
    );
    let bad = PostUrlClient::new(http(), server.url(), Secret::new("wrong"));
    assert!(matches!(
        bad.post(&reply).await,
        PostOutcome::Permanent { status: 401, .. }
    ));
    assert_eq!(server.unauthorized(), 1);
    server.fail_next(1, Fault::Status(400));
    assert!(matches!(
        good.post(&reply).await,
        PostOutcome::Permanent { status: 400, .. }
    ));
    // A body that is not JSON is refused by the Post URL.
    assert!(matches!(
        good.post_raw(b"not json".to_vec()).await,
        PostOutcome::Permanent { status: 400, .. }
    ));
    // Nothing listening: retryable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = PostUrlClient::new(
        http(),
        format!("http://{closed}/post"),
        Secret::new(ACCESS_TOKEN),
    );
    assert!(matches!(
        gone.post(&reply).await,
        PostOutcome::Retryable { status: None, .. }
    ));
    // The token in another header, when the connector wants it so.
    let custom = PostUrlServer::start_with_auth(
        Secret::new(ACCESS_TOKEN),
        AccessTokenAuth::Header("x-zm-access-token".into()),
    )
    .await
    .unwrap();
    let c = PostUrlClient::new(http(), custom.url(), Secret::new(ACCESS_TOKEN))
        .with_auth(AccessTokenAuth::Header("x-zm-access-token".into()));
    assert!(c.post(&reply).await.is_delivered());
    let bearer = PostUrlClient::new(http(), custom.url(), Secret::new(ACCESS_TOKEN));
    assert!(matches!(
        bearer.post(&reply).await,
        PostOutcome::Permanent { status: 401, .. }
    ));
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn push_notifications_both_modes_and_displays() {
    let receiver = PostUrlServer::start(Secret::new("push-token"))
        .await
        .unwrap();
    let ctx = PushContext {
        channel: "web",
        session_id: "s1",
        user_id: "u1",
        from: Some("bot"),
        original: "Your code is 4711",
        language: Some("en-US"),
        at: chrono::Utc::now(),
    };
    let mut sent = 0;
    for mode in [PushMode::All, PushMode::Failures] {
        for display in [PushDisplay::Original, PushDisplay::Standard] {
            let cfg = PushConfig {
                url: receiver.url(),
                mode,
                display,
                standard_responses: Default::default(),
                token: Some(Secret::new("push-token")),
            };
            let client = PushClient::new(http(), &cfg);
            for event in [
                PushEvent::Message,
                PushEvent::Failure(chatbot::push::FailureKind::DeliveryFailure),
            ] {
                if let Some(n) = cfg.notification(event, &ctx) {
                    assert!(client.send(&n).await.is_delivered());
                    sent += 1;
                }
            }
        }
    }
    assert_eq!(
        sent,
        2 * 2 + 2,
        "all: message and failure; failures: failure only"
    );
    let bodies: Vec<serde_json::Value> = receiver.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 6);
    let originals = bodies
        .iter()
        .filter(|b| b["message"] == "Your code is 4711")
        .count();
    assert_eq!(
        originals, 3,
        "original display shows the message; standard display never does"
    );
    assert!(bodies
        .iter()
        .filter(|b| b["display"] == "standard")
        .all(|b| b["message"] != "Your code is 4711"));
    assert_eq!(bodies.iter().filter(|b| b["event"] == "message").count(), 2);
    // A wrong token is permanent.
    let cfg = PushConfig {
        url: receiver.url(),
        mode: PushMode::All,
        display: PushDisplay::Original,
        standard_responses: Default::default(),
        token: None,
    };
    let n = cfg.notification(PushEvent::Message, &ctx).unwrap();
    assert!(matches!(
        PushClient::new(http(), &cfg).send(&n).await,
        PostOutcome::Permanent { status: 401, .. }
    ));
}
