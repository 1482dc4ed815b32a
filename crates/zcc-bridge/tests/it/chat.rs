//! The chatbot channel, black box (issue 19): Zoom's bot connector played by zoom-sim (consumer sessions that
//! sign their messages, a Post URL that checks the Access Token), the bot engines by fakes of their documented
//! contracts, on SQLite and Postgres.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use zcc_bridge::config::{ChatChannelConfig, Config, Secret as ConfigSecret};
use zoom_sim::chat::{
    AppClaim, ConsumerSession, Fault, JwtAlgorithm, PostUrlServer, Secret, TokenSigner,
    MODE_CONTINUE, MODE_START,
};

use crate::common::fakes::bots::FakeBot;
use crate::common::sse::SseClient;
use crate::common::{backends, Backend, TestDb, TestServer, ADMIN_TOKEN};

const HS256_SECRET: &str = "hs256-client-secret-0123456789abcdef";
const HS512_SECRET: &str = "hs512-client-secret-0123456789abcdef0123456789abcdef0123456789abcdef";
const ACCESS_TOKEN: &str = "zoom-connector-access-token-0123";
const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const ENGAGEMENT_VAR: &str = "global_system.Engagement.engagementId";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../chatbot/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn channel(v: Value) -> ChatChannelConfig {
    serde_json::from_value(v).expect("channel settings")
}

/// An HS256 channel answering through the Post URL with the builtin bot (FAQ, "agent" hands over).
fn trigger_channel(client_id: &str, post: &PostUrlServer) -> Value {
    json!({
        "client_id": client_id, "jwt_algorithm": "HS256", "jwt_secret": HS256_SECRET,
        "auto_register": true, "post_url": post.url(), "access_token": ACCESS_TOKEN,
        "bot": {"kind": "builtin", "faq": [{"question": "What are your opening hours?", "answer": "9 to 5."}]}
    })
}

/// Retries and polls fast enough for a test.
fn fast(config: &mut Config) {
    config.chat.retry_schedule_seconds = vec![0.2, 0.3, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    config.chat.poll_ms = 100;
    config.chat.lease_seconds = 5;
    config.chat.post_timeout_seconds = 2;
    config.chat.max_retry_after_seconds = 2;
}

fn hs(client_id: &str, alg: JwtAlgorithm, secret: &str) -> Arc<TokenSigner> {
    Arc::new(TokenSigner::hs(client_id, alg, &Secret::new(secret)).expect("signer"))
}

fn rs(client_id: &str, alg: JwtAlgorithm, key: &str) -> Arc<TokenSigner> {
    Arc::new(TokenSigner::rs(client_id, alg, &fixture(key)).expect("signer"))
}

fn session(
    server: &TestServer,
    channel: &str,
    signer: &Arc<TokenSigner>,
    id: &str,
) -> ConsumerSession {
    ConsumerSession::new(
        server.client.clone(),
        server.url(&format!("/chat/zoom/{channel}")),
        signer.clone(),
        id,
    )
}

/// A token with these claims and this header, unsigned (`alg: none`).
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn now() -> i64 {
    crate::common::now_secs()
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(server: &TestServer) -> i64 {
    server.stats().await["events"].as_i64().unwrap_or(0)
}

/// Reply texts of a session, in the order the Post URL accepted them.
fn reply_texts(post: &PostUrlServer, session: &str) -> Vec<String> {
    post.replies_for(session)
        .iter()
        .map(|r| {
            r.messages
                .iter()
                .filter_map(|m| m.value.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test]
async fn each_jwt_algorithm_with_the_right_key_only() {
    for backend in backends() {
        let server = TestServer::start_with(&backend, |c| {
            let action = |client_id: &str, alg: &str, key: Value| {
                let mut v = json!({"client_id": client_id, "jwt_algorithm": alg, "reply_mode": "action",
                    "auto_register": true, "bot": {"kind": "builtin"}});
                let field = if alg.starts_with("HS") { "jwt_secret" } else { "jwt_public_key" };
                v[field] = key;
                channel(v)
            };
            let public = fixture("rsa_a_public.pem");
            c.chat.channels.insert("hs256".into(), action("cs-hs256", "HS256", json!(HS256_SECRET)));
            c.chat.channels.insert("hs512".into(), action("cs-hs512", "HS512", json!(HS512_SECRET)));
            c.chat.channels.insert("rs256".into(), action("cs-rs256", "RS256", json!(public)));
            c.chat.channels.insert("rs512".into(), action("cs-rs512", "RS512", json!(public)));
        })
        .await;
        let cases = [
            (
                "hs256",
                JwtAlgorithm::HS256,
                hs("cs-hs256", JwtAlgorithm::HS256, HS256_SECRET),
                hs(
                    "cs-hs256",
                    JwtAlgorithm::HS256,
                    "another-secret-0123456789abcdef0123",
                ),
            ),
            (
                "hs512",
                JwtAlgorithm::HS512,
                hs("cs-hs512", JwtAlgorithm::HS512, HS512_SECRET),
                hs(
                    "cs-hs512",
                    JwtAlgorithm::HS512,
                    &HS512_SECRET.replace('0', "1"),
                ),
            ),
            (
                "rs256",
                JwtAlgorithm::RS256,
                rs("cs-rs256", JwtAlgorithm::RS256, "rsa_a_private.pem"),
                rs("cs-rs256", JwtAlgorithm::RS256, "rsa_b_private.pem"),
            ),
            (
                "rs512",
                JwtAlgorithm::RS512,
                rs("cs-rs512", JwtAlgorithm::RS512, "rsa_a_private.pem"),
                rs("cs-rs512", JwtAlgorithm::RS512, "rsa_b_private.pem"),
            ),
        ];
        let mut accepted = 0;
        for (name, alg, good, wrong) in cases {
            let app = format!("cs-{name}");
            let mut s = session(&server, name, &good, &format!("{name}-s1")).with_subject("user-1");
            let ok = s.start("hi").await.unwrap();
            assert_eq!(ok.status, 200, "{backend:?} {name}: {:?}", ok.body);
            assert!(
                ok.body["messages"].is_array(),
                "{backend:?} {name}: {:?}",
                ok.body
            );
            accepted += 1;
            // The app named by `iss` instead of `appId` (Kore's SDK JWT) is the same app.
            let iss = Arc::new((*good).clone().with_app_claim(AppClaim::Iss));
            let mut s2 = session(&server, name, &iss, &format!("{name}-s2")).with_subject("user-2");
            assert_eq!(
                s2.start("hi").await.unwrap().status,
                200,
                "{backend:?} {name} iss"
            );
            accepted += 1;

            let (_, body) = s.next_body(MODE_CONTINUE, "again");
            let refused = |r: zoom_sim::chat::SimResponse, what: &str| {
                assert_eq!(r.status, 401, "{backend:?} {name} {what}: {:?}", r.body);
            };
            refused(
                s.post_with_token(body.clone(), &wrong.sign(Some("user-1")))
                    .await
                    .unwrap(),
                "wrong key",
            );
            let expired =
                json!({"appId": app, "sub": "user-1", "iat": now() - 7200, "exp": now() - 3600});
            refused(
                s.post_with_token(body.clone(), &good.sign_claims(&expired))
                    .await
                    .unwrap(),
                "expired",
            );
            let claims = json!({"appId": app, "sub": "user-1", "iat": now(), "exp": now() + 300});
            refused(
                s.post_with_token(body.clone(), &unsigned(&claims))
                    .await
                    .unwrap(),
                "alg none",
            );
            if !alg.is_hmac() {
                // HS256 "signed" with the RS public key as the HMAC secret (the algorithm confusion attack).
                let confused = hs(&app, JwtAlgorithm::HS256, &fixture("rsa_a_public.pem"));
                refused(
                    s.post_with_token(body.clone(), &confused.sign(Some("user-1")))
                        .await
                        .unwrap(),
                    "HS/RS",
                );
            }
            let other_app =
                json!({"appId": "cs-other", "sub": "user-1", "iat": now(), "exp": now() + 300});
            refused(
                s.post_with_token(body.clone(), &good.sign_claims(&other_app))
                    .await
                    .unwrap(),
                "other app",
            );
            let missing = s.post_with_token(body, "").await.unwrap();
            assert_eq!(missing.status, 401);
        }
        // Nothing refused was logged: the accepted messages and their answers only.
        assert_eq!(events(&server).await, 2 * accepted, "{backend:?}");
        let metrics = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for reason in [
            "bad_signature",
            "expired",
            "alg_none",
            "alg_mismatch",
            "app_mismatch",
        ] {
            assert!(
                metrics.contains(&format!("reason=\"{reason}\"")),
                "{backend:?}: no zcc_chat_refused_total for {reason}"
            );
        }
    }
}

#[tokio::test]
async fn anonymous_users_and_auto_registration_follow_the_client_app() {
    for backend in backends() {
        let server = TestServer::start_with(&backend, |c| {
            let action = |anon: bool, register: bool| {
                channel(json!({"client_id": "cs-users", "jwt_algorithm": "HS256", "jwt_secret": HS256_SECRET,
                    "reply_mode": "action", "allow_anonymous": anon, "auto_register": register,
                    "bot": {"kind": "builtin"}}))
            };
            c.chat.channels.insert("strict".into(), action(false, false));
            c.chat.channels.insert("anon".into(), action(true, false));
            c.chat.channels.insert("reg".into(), action(false, true));
        })
        .await;
        let signer = hs("cs-users", JwtAlgorithm::HS256, HS256_SECRET);
        let error = |r: &zoom_sim::chat::SimResponse| {
            r.body["detail"].as_str().unwrap_or_default().to_string()
        };

        // Strict: no anonymous consumer, no unknown one.
        let r = session(&server, "strict", &signer, "st-1")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{backend:?}");
        assert!(
            error(&r).contains("allow_anonymous"),
            "{backend:?}: {}",
            error(&r)
        );
        let r = session(&server, "strict", &signer, "st-2")
            .with_subject("alice")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        assert!(error(&r).contains("auto_register"), "{}", error(&r));
        // Known by e-mail variable only, still unknown.
        let r = session(&server, "strict", &signer, "st-3")
            .with_variable("global_system.Consumer.email", "Carol@Example.com")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        // Registered through the API: admitted.
        let response = server
            .client
            .post(server.url("/api/v1/chat/channels/strict/users"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"user_id": "alice", "email": "alice@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let r = session(&server, "strict", &signer, "st-4")
            .with_subject("alice")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{backend:?}: {:?}", r.body);
        let r = session(&server, "strict", &signer, "st-5")
            .with_variable("global_system.Consumer.email", "Carol@Example.com")
            .start("hi")
            .await;
        assert_eq!(r.unwrap().status, 403);

        // Anonymous allowed.
        let r = session(&server, "anon", &signer, "an-1")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{backend:?}: {:?}", r.body);
        let s = server.get_json("/api/v1/chat/sessions/anon/an-1").await;
        assert_eq!(s["anonymous"], true);
        assert_eq!(s["user_id"], "anon:an-1");

        // Auto-registration: the user record is created.
        let r = session(&server, "reg", &signer, "rg-1")
            .with_subject("bob")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        let bob = server.get_json("/api/v1/chat/channels/reg/users/bob").await;
        assert_eq!(bob["registered_by"], "auto");
        let users = server.get_json("/api/v1/chat/channels/strict/users").await;
        assert_eq!(users["users"].as_array().unwrap().len(), 1);
        // A session stays with its user.
        let r = session(&server, "reg", &signer, "rg-1")
            .with_subject("mallory")
            .start("hi again")
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        assert!(error(&r).contains("another user"), "{}", error(&r));
    }
}

#[tokio::test]
async fn a_disabled_or_unknown_channel_is_refused_and_nothing_is_logged() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            let mut v = trigger_channel("cs-off", &post);
            v["enabled"] = json!(false);
            c.chat.channels.insert("off".into(), channel(v));
        })
        .await;
        let signer = hs("cs-off", JwtAlgorithm::HS256, HS256_SECRET);
        let r = session(&server, "off", &signer, "s")
            .with_subject("u")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{backend:?}");
        assert!(r.body["detail"].as_str().unwrap().contains("disabled"));
        let r = session(&server, "nope", &signer, "s")
            .with_subject("u")
            .start("hi")
            .await
            .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(events(&server).await, 0);
        assert_eq!(post.attempts(), 0);
        let listed = server.get_json("/api/v1/chat/channels").await;
        assert_eq!(listed["channels"][0]["enabled"], false);
    }
}

#[tokio::test]
async fn each_bot_backend_answers_through_the_post_url() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let http = FakeBot::http().await;
        let rasa = FakeBot::rasa().await;
        let directline = FakeBot::directline().await;
        let openai = FakeBot::openai().await;
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            let with_bot = |bot: Value| {
                let mut v = trigger_channel("cs-bots", &post);
                v["bot"] = bot;
                channel(v)
            };
            c.chat.channels.insert("builtin".into(), channel(trigger_channel("cs-bots", &post)));
            c.chat.channels.insert("http".into(), with_bot(json!({"kind": "http", "url": format!("{}/turn", http.url()),
                "token": "bot-token-0123456789", "callback_url": "http://127.0.0.1:9/unused",
                "callback_token": "callback-token-0123456789", "timeout_ms": 2000})));
            c.chat.channels.insert("rasa".into(), with_bot(json!({"kind": "rasa", "url": rasa.url(), "timeout_ms": 2000})));
            c.chat.channels.insert("directline".into(), with_bot(json!({"kind": "directline", "url": directline.url(),
                "secret": "dl-secret-0123456789", "timeout_ms": 1000, "poll_interval_ms": 20, "settle_ms": 50,
                "reply_timeout_ms": 1000})));
            c.chat.channels.insert("openai".into(), with_bot(json!({"kind": "openai", "url": format!("{}/v1", openai.url()),
                "model": "test-model", "api_key": "sk-test-0123456789", "timeout_ms": 2000})));
        })
        .await;
        http.set_callback(
            server.url("/chat/bot/http/callback"),
            "callback-token-0123456789".into(),
        );
        let signer = hs("cs-bots", JwtAlgorithm::HS256, HS256_SECRET);
        let mut expected = 0;
        for kind in ["builtin", "http", "rasa", "directline", "openai"] {
            let id = format!("{kind}-1");
            let mut s = session(&server, kind, &signer, &id).with_subject("u1");
            let text = if kind == "builtin" {
                "What are your opening hours?"
            } else {
                "hello"
            };
            assert_eq!(
                s.start(text).await.unwrap().status,
                200,
                "{backend:?} {kind}"
            );
            expected += 1;
            assert!(
                post.wait_for(expected, Duration::from_secs(10)).await,
                "{backend:?} {kind}: no reply"
            );
            assert_eq!(s.say("I want an agent").await.unwrap().status, 200);
            expected += 1;
            assert!(
                post.wait_for(expected, Duration::from_secs(10)).await,
                "{backend:?} {kind}: no hand-over"
            );
            let replies = post.replies_for(&id);
            let first = reply_texts(&post, &id)[0].clone();
            let want = if kind == "builtin" {
                "9 to 5.".to_string()
            } else {
                format!("{kind}: hello")
            };
            assert!(first.starts_with(&want), "{backend:?} {kind}: {first:?}");
            assert_eq!(
                replies[1].conversation_mode.as_deref(),
                Some("HANDOVER"),
                "{backend:?} {kind}"
            );
        }
        // The http backend's state comes back on the next turn, and a deferred answer arrives by callback.
        let turns = http.seen();
        assert_eq!(turns[1]["state"]["n"], 1, "{backend:?}: {turns:?}");
        let mut s = session(&server, "http", &signer, "http-2").with_subject("u1");
        assert_eq!(s.start("later").await.unwrap().status, 200);
        assert!(
            post.wait_for(expected + 1, Duration::from_secs(10)).await,
            "{backend:?}: no callback reply"
        );
        assert_eq!(
            reply_texts(&post, "http-2"),
            vec!["http: answered later".to_string()]
        );
        // Refused callbacks.
        let r = server
            .client
            .post(server.url("/chat/bot/http/callback"))
            .bearer_auth("wrong")
            .json(&json!({"conversation_id": "http-2", "replies": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            post.unauthorized(),
            0,
            "the Access Token was always presented"
        );
    }
}

#[tokio::test]
async fn a_hand_over_carries_the_context_and_joins_the_engagement_record() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            c.chat
                .channels
                .insert("web".into(), channel(trigger_channel("cs-web", &post)));
        })
        .await;
        let mut stream = SseClient::connect(&server, "?engagement_id=eng-chat-1", None).await;
        let signer = hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET);
        let mut s = session(&server, "web", &signer, "sess-h")
            .with_subject("dana@example.com")
            .with_variable(ENGAGEMENT_VAR, "eng-chat-1");
        for (i, text) in ["hi", "What are your opening hours?", "I want an agent"]
            .iter()
            .enumerate()
        {
            let r = if i == 0 {
                s.start(text).await
            } else {
                s.say(text).await
            };
            assert_eq!(r.unwrap().status, 200);
            assert!(
                post.wait_for(i + 1, Duration::from_secs(10)).await,
                "{backend:?}: reply {i}"
            );
        }
        // After the hand-over the bot is not asked any more.
        assert_eq!(s.say("hello?").await.unwrap().status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let replies = post.replies_for("sess-h");
        assert_eq!(replies.len(), 3, "{backend:?}");
        let handover = &replies[2];
        assert_eq!(handover.conversation_mode.as_deref(), Some("HANDOVER"));
        let transcript: Vec<(String, String)> = handover
            .handover
            .as_ref()
            .unwrap()
            .transcript
            .iter()
            .map(|l| (l.from.clone(), l.text.clone()))
            .collect();
        assert!(
            transcript.contains(&("consumer".into(), "What are your opening hours?".into())),
            "{transcript:?}"
        );
        assert!(
            transcript.contains(&("bot".into(), "9 to 5.".into())),
            "{transcript:?}"
        );
        assert_eq!(
            transcript.last().unwrap(),
            &("consumer".to_string(), "I want an agent".to_string())
        );
        assert_eq!(
            handover.conversation_variables["last_message"],
            "I want an agent"
        );

        // The engagement record: every message with its sender and time, the hand-over marked.
        let record = server.get_json("/api/v1/engagements/eng-chat-1").await;
        let chat = record["chat"].as_array().expect("chat");
        let senders: Vec<&str> = chat.iter().map(|m| m["sender"].as_str().unwrap()).collect();
        assert_eq!(
            senders,
            ["consumer", "bot", "consumer", "bot", "consumer", "bot", "consumer"],
            "{backend:?}: {chat:?}"
        );
        assert!(chat
            .iter()
            .all(|m| m["time"].is_string() && m["session_id"] == "sess-h"));
        let marked: Vec<bool> = chat
            .iter()
            .map(|m| m["handover"].as_bool().unwrap())
            .collect();
        assert_eq!(marked, [false, false, false, false, false, true, false]);
        assert!(record["sources"]
            .as_array()
            .unwrap()
            .contains(&json!("chat")));

        // The conversation through the API, and its state.
        let conversation = server.get_json("/api/v1/chat/sessions/web/sess-h").await;
        assert_eq!(conversation["state"], "handed_over");
        assert_eq!(conversation["engagement_id"], "eng-chat-1");
        assert_eq!(conversation["messages"].as_array().unwrap().len(), 7);
        let listed = server
            .get_json("/api/v1/chat/sessions?engagement_id=eng-chat-1")
            .await;
        assert_eq!(listed["sessions"][0]["session_id"], "sess-h");

        // The live stream showed it.
        let frames = stream.take(7).await;
        let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "chat_message",
                "chat_reply",
                "chat_message",
                "chat_reply",
                "chat_message",
                "chat_handover",
                "chat_message"
            ],
            "{backend:?}"
        );
        assert_eq!(frames[5].data["chat"]["sender"], "bot");
    }
}

#[tokio::test]
async fn a_post_url_outage_then_recovery_delivers_every_reply_in_order() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            c.chat
                .channels
                .insert("web".into(), channel(trigger_channel("cs-web", &post)));
        })
        .await;
        let signer = hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET);
        post.set_outage(Some(Fault::Status(503)));
        let mut s = session(&server, "web", &signer, "sess-o").with_subject("erin");
        let texts = ["hi", "What are your opening hours?", "one", "two", "three"];
        for (i, t) in texts.iter().enumerate() {
            let r = if i == 0 {
                s.start(t).await
            } else {
                s.say(t).await
            };
            assert_eq!(r.unwrap().status, 200);
        }
        // The first reply is being retried; the others wait behind it.
        wait_until("retries", Duration::from_secs(10), || async {
            post.attempts() >= 3
        })
        .await;
        assert!(post.received().is_empty());
        post.set_outage(None);
        // A 429 with Retry-After on the way.
        post.fail_next(
            1,
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
        assert!(
            post.wait_for(5, Duration::from_secs(20)).await,
            "{backend:?}: {} replies",
            post.received().len()
        );
        let ids: Vec<String> = post
            .replies_for("sess-o")
            .iter()
            .filter_map(|r| r.reply_to_id.clone())
            .collect();
        let sent: Vec<String> = s.sent().iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, sent, "{backend:?}: every reply once, in order");
        let deliveries = server
            .get_json("/api/v1/deliveries?sink=chat:web:reply")
            .await;
        let first = deliveries["deliveries"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(first["state"], "delivered");
        assert!(first["attempts"].as_i64().unwrap() >= 3, "{first}");
    }
}

#[tokio::test]
async fn a_dead_reply_raises_a_failure_push_and_replays() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let pushes = PushReceiver::start().await;
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            // Every message pushed with its text.
            let mut all = trigger_channel("cs-all", &post);
            all["push"] = json!({"url": pushes.url("all"), "mode": "all", "display": "original", "token": "push-token-0123"});
            c.chat.channels.insert("all".into(), channel(all));
            // Failures only, with a standard response.
            let mut failures = trigger_channel("cs-fail", &post);
            failures["push"] = json!({"url": pushes.url("fail"), "mode": "failures", "display": "standard",
                "standard_responses": {"delivery_failure": {"default": "A message could not be delivered.",
                                                            "de": "Nicht zugestellt."}}});
            c.chat.channels.insert("fail".into(), channel(failures));
        })
        .await;
        let all = hs("cs-all", JwtAlgorithm::HS256, HS256_SECRET);
        let fail = hs("cs-fail", JwtAlgorithm::HS256, HS256_SECRET);

        // mode = all, display = original: the consumer's message and the bot's answer.
        let mut a = session(&server, "all", &all, "push-a").with_subject("fay");
        a.start("What are your opening hours?").await.unwrap();
        wait_until("two pushes", Duration::from_secs(10), || async {
            pushes.of("all").len() >= 2
        })
        .await;
        let got = pushes.of("all");
        assert_eq!(got[0]["event"], "message");
        assert_eq!(got[0]["from"], "consumer");
        assert_eq!(got[0]["message"], "What are your opening hours?");
        assert_eq!(got[1]["from"], "bot");
        assert_eq!(got[1]["message"], "9 to 5.");
        assert_eq!(got[0]["user_id"], "fay");
        assert_eq!(
            pushes.authorization("all"),
            Some("Bearer push-token-0123".to_string())
        );

        // mode = failures: nothing for a delivered message.
        let mut f = session(&server, "fail", &fail, "push-f")
            .with_subject("gus")
            .with_language("de-DE");
        f.start("What are your opening hours?").await.unwrap();
        assert!(post.wait_for(2, Duration::from_secs(10)).await);
        // The Post URL refuses the next reply for good: dead letter, then a standard failure notification.
        post.fail_next(1, Fault::Status(400));
        f.say("one").await.unwrap();
        f.say("two").await.unwrap();
        wait_until("the failure push", Duration::from_secs(10), || async {
            !pushes.of("fail").is_empty()
        })
        .await;
        let got = pushes.of("fail");
        assert_eq!(got.len(), 1, "{backend:?}: {got:?}");
        assert_eq!(got[0]["event"], "delivery_failure");
        assert_eq!(got[0]["failure"], "delivery_failure");
        assert_eq!(got[0]["display"], "standard");
        assert_eq!(got[0]["message"], "Nicht zugestellt.");
        // The later reply waits behind the dead one; a replay sends both, in order.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(post.replies_for("push-f").len(), 1);
        let response = server
            .client
            .post(server.url("/api/v1/deliveries/replay"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"sink": "chat:fail:reply", "dead": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        wait_until("replayed replies", Duration::from_secs(10), || async {
            post.replies_for("push-f").len() == 3
        })
        .await;
        let ids: Vec<String> = post
            .replies_for("push-f")
            .iter()
            .filter_map(|r| r.reply_to_id.clone())
            .collect();
        let sent: Vec<String> = f.sent().iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, sent, "{backend:?}");
        // A failure in mode = all shows the original reply.
        post.fail_next(1, Fault::Status(400));
        a.say("What are your opening hours?").await.unwrap();
        wait_until("the failure push", Duration::from_secs(10), || async {
            pushes
                .of("all")
                .iter()
                .any(|p| p["event"] == "delivery_failure")
        })
        .await;
        let failure = pushes
            .of("all")
            .into_iter()
            .find(|p| p["event"] == "delivery_failure")
            .unwrap();
        assert_eq!(failure["message"], "9 to 5.");
        assert_eq!(failure["display"], "original");
    }
}

async fn start_on(db: &TestDb, tweak: &dyn Fn(&mut Config)) -> (zcc_bridge::RunningServer, String) {
    let mut config = crate::common::test_config(&db.url);
    config.storage.media = format!("file://{}", db.dir().join("media").display());
    tweak(&mut config);
    let server = zcc_bridge::start(config).await.expect("server starts");
    let base = format!("http://{}", server.addr());
    (server, base)
}

#[tokio::test]
async fn a_restart_mid_conversation_loses_nothing() {
    for backend in backends() {
        crate::common::init_test_logging();
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let bot = FakeBot::http().await;
        let db = crate::common::fresh_db(&backend).await;
        let url = format!("{}/turn", bot.url());
        let tweak = |c: &mut Config| {
            fast(c);
            let mut v = trigger_channel("cs-web", &post);
            v["bot"] = json!({"kind": "http", "url": url, "token": "bot-token-0123456789", "timeout_ms": 1000});
            c.chat.channels.insert("web".into(), channel(v));
        };
        let (first, base) = start_on(&db, &tweak).await;
        let client = reqwest::Client::new();
        let signer = hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET);
        let mut s = ConsumerSession::new(
            client.clone(),
            format!("{base}/chat/zoom/web"),
            signer.clone(),
            "sess-r",
        )
        .with_subject("hal");
        // First message answered; then the Post URL is down and the bot fails: turns and replies pending.
        assert_eq!(s.start("one").await.unwrap().status, 200);
        assert!(post.wait_for(1, Duration::from_secs(10)).await);
        post.set_outage(Some(Fault::Status(502)));
        assert_eq!(s.say("two").await.unwrap().status, 200);
        wait_until("a failed reply", Duration::from_secs(10), || async {
            post.attempts() >= 2
        })
        .await;
        bot.fail_next(1000);
        assert_eq!(s.say("three").await.unwrap().status, 200);
        assert_eq!(s.say("four").await.unwrap().status, 200);
        wait_until("a failed turn", Duration::from_secs(10), || async {
            bot.seen().len() >= 3
        })
        .await;
        first.shutdown().await.expect("clean shutdown");

        bot.fail_next(0);
        post.set_outage(None);
        let (second, base) = start_on(&db, &tweak).await;
        let mut s2 = ConsumerSession::new(
            client.clone(),
            format!("{base}/chat/zoom/web"),
            signer.clone(),
            "sess-r",
        )
        .with_subject("hal");
        // The session goes on after the restart (message ids continue the first process's).
        for _ in 0..4 {
            s2.next_body(MODE_CONTINUE, "");
        }
        assert_eq!(s2.say("five").await.unwrap().status, 200);
        assert!(
            post.wait_for(5, Duration::from_secs(20)).await,
            "{backend:?}: {:?}",
            reply_texts(&post, "sess-r")
        );
        let texts = reply_texts(&post, "sess-r");
        let turns: Vec<String> = texts
            .iter()
            .map(|t| t.split(" (turn").next().unwrap().to_string())
            .collect();
        assert_eq!(
            turns,
            [
                "http: one",
                "http: two",
                "http: three",
                "http: four",
                "http: five"
            ],
            "{backend:?}"
        );
        // The bot's state survived: the fifth answer is its fifth turn.
        assert!(texts[4].ends_with("(turn 5)"), "{backend:?}: {texts:?}");
        second.shutdown().await.expect("clean shutdown");
        drop(db);
    }
}

#[tokio::test]
async fn action_mode_answers_in_the_response_and_duplicates_ask_the_bot_once() {
    for backend in backends() {
        let bot = FakeBot::http().await;
        let server = TestServer::start_with(&backend, |c| {
            c.chat.channels.insert("sync".into(), channel(json!({
                "client_id": "cs-sync", "jwt_algorithm": "HS512", "jwt_secret": HS512_SECRET,
                "reply_mode": "action", "auto_register": true,
                "bot": {"kind": "http", "url": format!("{}/turn", bot.url()), "token": "bot-token-0123456789"}})));
        })
        .await;
        let signer = hs("cs-sync", JwtAlgorithm::HS512, HS512_SECRET);
        let mut s = session(&server, "sync", &signer, "sess-a").with_subject("ivy");
        let r = s.start("hello").await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body["messages"][0]["value"], "http: hello (turn 1)");
        assert_eq!(r.body["replyToId"], s.sent()[0].id);
        // ZCC redelivers the same message: the same answer, the bot asked once.
        let again = s.resend_last().await.unwrap();
        assert_eq!(again.status, 200);
        assert_eq!(again.body, r.body, "{backend:?}");
        assert_eq!(bot.seen().len(), 1);
        assert_eq!(server.stats().await["duplicates"], 1);
        // The bot down: the fallback message answers.
        bot.fail_next(1);
        let r = s.say("still there?").await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["messages"][0]["value"],
            "Sorry, I cannot answer right now. Please try again in a moment."
        );
    }
}

#[tokio::test]
async fn an_unreadable_request_is_quarantined_and_a_duplicate_answered_once() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            c.chat
                .channels
                .insert("web".into(), channel(trigger_channel("cs-web", &post)));
        })
        .await;
        let signer = hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET);
        let s = session(&server, "web", &signer, "q").with_subject("jo");
        let r = s
            .post_with_token(b"{\"id\": 5".to_vec(), &signer.sign(Some("jo")))
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{backend:?}");
        let q = server.get_json("/api/v1/quarantine").await;
        assert_eq!(q["items"][0]["source"], "chat:web", "{q}");

        let mut s = session(&server, "web", &signer, "dup")
            .with_subject("jo")
            .with_retries(0, Duration::ZERO);
        assert_eq!(
            s.start("What are your opening hours?")
                .await
                .unwrap()
                .status,
            200
        );
        assert_eq!(s.resend_last().await.unwrap().status, 200);
        assert_eq!(s.resend_last().await.unwrap().status, 200);
        assert!(post.wait_for(1, Duration::from_secs(10)).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(post.replies_for("dup").len(), 1, "{backend:?}");
        assert_eq!(server.stats().await["duplicates"], 2);
    }
}

#[tokio::test]
async fn channels_through_the_admin_api_keep_their_secrets_sealed() {
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            c.chat.encryption_key = Some(ConfigSecret::new(ENCRYPTION_KEY));
            c.chat
                .channels
                .insert("file".into(), channel(trigger_channel("cs-file", &post)));
        })
        .await;
        let api = |method: reqwest::Method, path: &str| {
            server
                .client
                .request(method, server.url(path))
                .bearer_auth(ADMIN_TOKEN)
        };
        // Generated HS credentials.
        let creds: Value = api(reqwest::Method::POST, "/api/v1/chat/credentials")
            .json(&json!({"jwt_algorithm": "HS256"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let client_id = creds["client_id"].as_str().unwrap().to_string();
        let secret = creds["client_secret"].as_str().unwrap().to_string();
        assert!(client_id.starts_with("cs-"));
        let mut body = trigger_channel(&client_id, &post);
        body["name"] = json!("api1");
        body["jwt_secret"] = json!(secret);
        let r = api(reqwest::Method::POST, "/api/v1/chat/channels")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{backend:?}: {}", r.text().await.unwrap());
        let shown = server.get_json("/api/v1/chat/channels/api1").await;
        assert_eq!(shown["origin"], "api");
        assert_eq!(shown["settings"]["access_token"], "***");
        assert_eq!(shown["settings"]["jwt_secret"], "***");
        let listed = server.get_json("/api/v1/chat/channels").await.to_string();
        assert!(!listed.contains(ACCESS_TOKEN) && !listed.contains(&secret));
        // At rest: sealed.
        let rows = stored_channels(&server.db.url).await;
        assert_eq!(rows.len(), 1);
        assert!(
            !rows[0].0.contains(ACCESS_TOKEN) && !rows[0].1.contains(ACCESS_TOKEN),
            "{rows:?}"
        );
        assert!(!rows[0].1.contains(&secret) && rows[0].1.starts_with("v1."));

        // The channel works.
        let signer = hs(&client_id, JwtAlgorithm::HS256, &secret);
        let mut s = session(&server, "api1", &signer, "api-s").with_subject("kim");
        assert_eq!(
            s.start("What are your opening hours?")
                .await
                .unwrap()
                .status,
            200
        );
        assert!(
            post.wait_for(1, Duration::from_secs(10)).await,
            "{backend:?}"
        );
        // An update that leaves the secrets out keeps them (write-only).
        let mut update = trigger_channel(&client_id, &post);
        update.as_object_mut().unwrap().remove("jwt_secret");
        update.as_object_mut().unwrap().remove("access_token");
        update["fallback_message"] = json!("Back soon.");
        let r = api(reqwest::Method::PUT, "/api/v1/chat/channels/api1")
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(
            s.say("What are your opening hours?").await.unwrap().status,
            200
        );
        assert!(
            post.wait_for(2, Duration::from_secs(10)).await,
            "{backend:?}: the kept access token"
        );
        // Configured channels are read-only; names are unique.
        let r = api(reqwest::Method::PUT, "/api/v1/chat/channels/file")
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        let mut dup = body.clone();
        dup["name"] = json!("file");
        assert_eq!(
            api(reqwest::Method::POST, "/api/v1/chat/channels")
                .json(&dup)
                .send()
                .await
                .unwrap()
                .status(),
            409
        );
        // Deleted: refused.
        assert_eq!(
            api(reqwest::Method::DELETE, "/api/v1/chat/channels/api1")
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(s.say("gone?").await.unwrap().status, 404);
    }
    // Without an encryption key, no channel with secrets is stored.
    let server = TestServer::start(&Backend::Sqlite).await;
    let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
        .await
        .unwrap();
    let mut body = trigger_channel("cs-x", &post);
    body["name"] = json!("nokey");
    let r = server
        .client
        .post(server.url("/api/v1/chat/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("encryption_key"));
}

async fn stored_channels(url: &str) -> Vec<(String, String)> {
    use sqlx::Connection;
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT settings, COALESCE(secrets, '') FROM chat_channels")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT settings, COALESCE(secrets, '') FROM chat_channels")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
}

/// Push notifications received: (path, `Authorization`, body).
type Pushed = Arc<std::sync::Mutex<Vec<(String, Option<String>, Value)>>>;

/// Records push notifications per path (`/<name>`).
struct PushReceiver {
    addr: std::net::SocketAddr,
    seen: Pushed,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl PushReceiver {
    async fn start() -> Self {
        use axum::extract::{Path, State};
        async fn receive(
            State(seen): State<Pushed>,
            Path(name): Path<String>,
            headers: axum::http::HeaderMap,
            axum::Json(body): axum::Json<Value>,
        ) -> &'static str {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            seen.lock().unwrap().push((name, auth, body));
            "ok"
        }
        let seen: Pushed = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{name}", axum::routing::post(receive))
            .with_state(seen.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, handle }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn of(&self, name: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, b)| b.clone())
            .collect()
    }

    fn authorization(&self, name: &str) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, a, _)| a.clone())
    }
}

#[tokio::test]
async fn the_simulated_connector_load_is_answered_once_in_order() {
    // zoom-sim's load generator: concurrent conversations with duplicates, checked against its ground truth.
    for backend in backends() {
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let server = TestServer::start_with(&backend, |c| {
            fast(c);
            c.chat
                .channels
                .insert("web".into(), channel(trigger_channel("cs-web", &post)));
        })
        .await;
        let config = zoom_sim::chat::LoadConfig {
            webhook_url: server.url("/chat/zoom/web"),
            conversations: 20,
            messages_per_conversation: 4,
            rate_per_second: 80.0,
            duplicate_rate: 0.2,
            ..Default::default()
        };
        let truth = zoom_sim::chat::run_load(
            server.client.clone(),
            hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET),
            &config,
        )
        .await;
        assert!(truth.messages().all(|m| m.status == 200), "{backend:?}");
        assert!(
            post.wait_for(80, Duration::from_secs(30)).await,
            "{backend:?}: {} replies",
            post.received().len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let check = truth.check(&post.received(), |_| true);
        assert!(check.is_perfect(), "{backend:?}: {check:?}");
        assert_eq!(check.answered, 80);
        assert!(truth.messages().any(|m| m.duplicated));
        let _ = MODE_START;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_conversation_loses_no_acknowledged_message() {
    use crate::common::process::spawn_serve;
    for backend in backends() {
        let db = crate::common::fresh_db(&backend).await;
        let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN))
            .await
            .unwrap();
        let bot = FakeBot::http().await;
        // Slow enough that the kill lands while turns are with the bot.
        bot.set_delay(150);
        let config = db.dir().join("chat.toml");
        std::fs::write(
            &config,
            format!(
                r#"[chat]
retry_schedule_seconds = [0.2, 0.3, 0.5, 1.0, 1.0, 1.0, 1.0]
poll_ms = 100
lease_seconds = 3
post_timeout_seconds = 2
[chat.channels.web]
client_id = "cs-web"
jwt_algorithm = "HS256"
jwt_secret = "{HS256_SECRET}"
auto_register = true
post_url = "{}"
access_token = "{ACCESS_TOKEN}"
[chat.channels.web.bot]
kind = "http"
url = "{}/turn"
token = "bot-token-0123456789"
timeout_ms = 1000
"#,
                post.url(),
                bot.url()
            ),
        )
        .unwrap();
        let env = [
            ("ZCC_BRIDGE_SERVER__LISTEN", "127.0.0.1:0".to_string()),
            ("ZCC_BRIDGE_STORAGE__DATABASE", db.url.clone()),
            ("ZCC_BRIDGE_ADMIN__TOKEN", ADMIN_TOKEN.to_string()),
            ("ZCC_BRIDGE_MEDIA__ENABLED", "false".to_string()),
            (
                "ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN",
                crate::common::SECRET.to_string(),
            ),
        ];
        let args = [std::ffi::OsStr::new("--config"), config.as_os_str()];
        let (mut child, base) = spawn_serve(&args, &env).await;
        let signer = hs("cs-web", JwtAlgorithm::HS256, HS256_SECRET);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let new_session = |base: &str, i: usize| {
            ConsumerSession::new(
                client.clone(),
                format!("{base}/chat/zoom/web"),
                signer.clone(),
                format!("k9-{i}"),
            )
            .with_subject(format!("user{i}"))
        };
        let mut sessions: Vec<ConsumerSession> = (0..8).map(|i| new_session(&base, i)).collect();
        // Acknowledged messages per session, in order.
        let mut acked: Vec<Vec<String>> = vec![Vec::new(); sessions.len()];
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            child.start_kill().expect("kill -9");
            let _ = child.wait().await;
        });
        // Round one: messages until the server dies under them; a message with no answer is redelivered later
        // (as the connector would), the same body.
        let mut unanswered: Vec<Option<Vec<u8>>> = vec![None; sessions.len()];
        for round in 0..10 {
            for (i, s) in sessions.iter_mut().enumerate() {
                if unanswered[i].is_some() {
                    continue;
                }
                let mode = if round == 0 {
                    MODE_START
                } else {
                    MODE_CONTINUE
                };
                let (id, body) = s.next_body(mode, &format!("m{round}"));
                match s.post_body(body.clone()).await {
                    Ok(r) if r.status == 200 => acked[i].push(id),
                    _ => unanswered[i] = Some(body),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        killer.await.unwrap();
        assert!(
            unanswered.iter().any(Option::is_some),
            "{backend:?}: the kill came after the load"
        );
        // Restart on the same database; the connector redelivers what was not acknowledged, then goes on.
        let (child, base) = spawn_serve(&args, &env).await;
        for (i, s) in sessions.iter_mut().enumerate() {
            let mut fresh = new_session(&base, i);
            for m in s.sent() {
                fresh.next_body(&m.mode, &m.text);
            }
            if let Some(body) = unanswered[i].take() {
                let id = fresh.sent().last().unwrap().id.clone();
                let r = fresh.post_body(body).await.unwrap();
                assert_eq!(r.status, 200, "{backend:?}");
                acked[i].push(id);
            }
            let (id, body) = fresh.next_body(MODE_CONTINUE, "after");
            assert_eq!(fresh.post_body(body).await.unwrap().status, 200);
            acked[i].push(id);
            *s = fresh;
        }
        let total: usize = acked.iter().map(Vec::len).sum();
        wait_until(
            "every acknowledged message answered",
            Duration::from_secs(30),
            || async {
                let answered: std::collections::BTreeSet<String> = post
                    .received()
                    .iter()
                    .filter_map(|r| r.reply()?.reply_to_id)
                    .collect();
                acked.iter().flatten().all(|id| answered.contains(id))
            },
        )
        .await;
        for (i, ids) in acked.iter().enumerate() {
            let replies = post.replies_for(&format!("k9-{i}"));
            // At least once: a reply posted just before the kill may be posted again, with the same id and body.
            let mut first: Vec<String> = Vec::new();
            let mut bodies: std::collections::BTreeMap<String, String> = Default::default();
            for r in &replies {
                let to = r.reply_to_id.clone().unwrap();
                let body = serde_json::to_string(&r.messages).unwrap();
                if let Some(earlier) = bodies.insert(r.id.clone(), body.clone()) {
                    assert_eq!(earlier, body, "{backend:?}: one reply id, two bodies");
                }
                if !first.contains(&to) {
                    first.push(to);
                }
            }
            assert_eq!(
                &first, ids,
                "{backend:?}: session {i}: every acknowledged message answered, in order"
            );
            let distinct: std::collections::BTreeSet<&String> =
                replies.iter().map(|r| &r.id).collect();
            assert_eq!(
                distinct.len(),
                ids.len(),
                "{backend:?}: one reply per message"
            );
        }
        drop(child);
        assert!(total > 8);
    }
}
