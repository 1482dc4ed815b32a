//! Black-box tests of `POST /webhooks/flow/{source}` (Flow event scripts) with the bodies the scripts in
//! `docs/flow-scripts/` post, and of what the read API makes of them, against every configured backend.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use zcc_bridge::config::FlowSourceConfig;
use zcc_bridge::config::Secret;
use zcc_bridge::sources::flow::{sign, SIGNATURE_HEADER};

const ACCEPTED: &str =
    include_str!("../../../../docs/flow-scripts/engagement-accepted.example.json");
const DISPOSITION: &str =
    include_str!("../../../../docs/flow-scripts/disposition-saved.example.json");
const TOKEN: &str = "crm-flow-token-0123456789";
const HMAC_SECRET: &str = "crm-flow-hmac-secret-0123456789";

/// A server with the flow source `crm` (bearer token) and `signed` (HMAC only).
async fn start(backend: &Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.flow.sources.insert(
            "crm".into(),
            FlowSourceConfig {
                token: Some(Secret::new(TOKEN)),
                ..Default::default()
            },
        );
        c.flow.sources.insert(
            "signed".into(),
            FlowSourceConfig {
                hmac_secret: Some(Secret::new(HMAC_SECRET)),
                ..Default::default()
            },
        );
    })
    .await
}

fn example(text: &str) -> Value {
    serde_json::from_str(text).expect("the example is JSON")
}

/// POSTs `body` to `/webhooks/flow/{source}` as the scripts do, with `token` as bearer token if given.
async fn post_flow(
    s: &TestServer,
    source: &str,
    token: Option<&str>,
    body: &[u8],
) -> reqwest::Response {
    let mut request = s
        .client
        .post(s.url(&format!("/webhooks/flow/{source}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn post_signed(s: &TestServer, signature: &str, body: &[u8]) -> reqwest::Response {
    s.client
        .post(s.url("/webhooks/flow/signed"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent")
}

async fn admin_post(s: &TestServer, path: &str) -> reqwest::Response {
    s.client
        .post(s.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request sent")
}

/// `GET path` until it answers 200 with a body that satisfies `done` (the activity is the projector's work).
async fn poll_json(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = s.get(path).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} -> {status}: {body} (still not as expected after 10 s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(stats: &Value) -> (Option<i64>, Option<i64>, Option<i64>) {
    (
        stats["events"].as_i64(),
        stats["duplicates"].as_i64(),
        stats["quarantined"].as_i64(),
    )
}

/// Reads the live stream from the start (`last_event_id=0`) until `n` events arrived; their JSON.
async fn stream_events(s: &TestServer, n: usize) -> Vec<Value> {
    let mut response = s
        .get("/api/v1/stream?last_event_id=0")
        .await
        .error_for_status()
        .expect("the stream answers");
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} stream events in 10 s: {text}", events.len()))
            .expect("stream read")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                events.push(serde_json::from_str(data.trim()).expect("event data is JSON"));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_example_posts_are_stored_once_and_fill_the_engagement_activity() {
    let accepted = example(ACCEPTED);
    let disposition = example(DISPOSITION);
    let id = accepted["engagement_id"].as_str().unwrap();
    let email = accepted["agent_email"].as_str().unwrap();
    assert_eq!(disposition["engagement_id"], id);
    for backend in backends() {
        let s = start(&backend).await;
        let r = post_flow(&s, "crm", Some(TOKEN), ACCEPTED.as_bytes()).await;
        assert_eq!(r.status(), 200);
        let first: Value = r.json().await.unwrap();
        assert_eq!(first["status"], "stored", "{first}");
        assert!(first["event_id"].as_i64().is_some(), "{first}");
        // A script's retry (the same body), and the same body formatted otherwise: one event.
        let pretty = serde_json::to_vec_pretty(&accepted).unwrap();
        for body in [ACCEPTED.as_bytes(), &pretty] {
            let r = post_flow(&s, "crm", Some(TOKEN), body).await;
            assert_eq!(r.status(), 200);
            let again: Value = r.json().await.unwrap();
            assert_eq!(again["status"], "duplicate", "{again}");
            assert_eq!(again["event_id"], first["event_id"]);
        }
        let r = post_flow(&s, "crm", Some(TOKEN), DISPOSITION.as_bytes()).await;
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!(saved["status"], "stored", "{saved}");
        assert_ne!(saved["event_id"], first["event_id"]);
        assert_eq!(counts(&s.stats().await), (Some(2), Some(2), Some(0)));

        let activity = poll_json(&s, &format!("/api/v1/engagements/{id}/activity"), |a| {
            a["answered_at"].is_string() && !a["dispositions"].as_array().unwrap().is_empty()
        })
        .await;
        assert_eq!(activity["engagement_id"], id);
        assert_eq!(
            activity["answered_at"].as_str(),
            zcc_bridge::core::record::format_ms(accepted["event_ts"].as_i64().expect("event_ts"))
                .as_deref()
        );
        assert_eq!(
            activity["dispositions"],
            json!([disposition["disposition"]])
        );
        assert_eq!(activity["consumer_number"], accepted["consumer_number"]);
        assert_eq!(activity["channel"], accepted["channel"]);
        assert_eq!(activity["direction"], accepted["direction"]);
        assert_eq!(activity["queue"]["cc_queue_id"], accepted["queue_id"]);
        assert_eq!(activity["queue"]["queue_name"], accepted["queue_name"]);
        assert_eq!(activity["agents"], json!([format!("email:{email}")]));
        // The disposition (known by name only) and the consumer are in the record too.
        let record = s.get_json(&format!("/api/v1/engagements/{id}")).await;
        assert_eq!(
            record["dispositions"][0]["disposition_name"],
            disposition["disposition"]
        );
        assert_eq!(
            record["consumers"][0]["consumer_number"],
            accepted["consumer_number"]
        );

        let events = s
            .get_json(&format!("/api/v1/events?engagement_id={id}"))
            .await;
        let events = events["events"].as_array().unwrap();
        let summary: Vec<(&str, &str, i64)> = events
            .iter()
            .map(|e| {
                (
                    e["source"].as_str().unwrap(),
                    e["event_type"].as_str().unwrap(),
                    e["duplicate_count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("flow:crm", "flow.accepted", 2),
                ("flow:crm", "flow.disposition_saved", 0)
            ]
        );
        assert_eq!(events[0]["event_ts"], accepted["event_ts"]);
        assert_eq!(events[1]["event_ts"], disposition["event_ts"]);

        // The agent is known by the address the script sent (in any case), on the day of the events.
        for who in [email.to_string(), email.to_ascii_uppercase()] {
            let day = s
                .get_json(&format!("/api/v1/agents/{who}?date=2026-11-21"))
                .await;
            assert_eq!(day["email"], email, "{day}");
            let engagements: Vec<&Value> = day["engagements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["engagement_id"])
                .collect();
            assert_eq!(engagements, [id], "{day}");
        }
        assert_eq!(
            s.get("/api/v1/agents/nobody@example.com").await.status(),
            404
        );

        // The live stream carries both, the script's extra variable included.
        let live = stream_events(&s, 2).await;
        assert_eq!(live[0]["kind"], "accepted", "{}", live[0]);
        assert_eq!(live[0]["source"], "flow:crm");
        assert_eq!(live[0]["agent"]["email"], email);
        assert_eq!(live[0]["variables"], json!({"customer_tier": "gold"}));
        assert_eq!(live[1]["kind"], "disposition_saved", "{}", live[1]);
        assert_eq!(live[1]["disposition"], disposition["disposition"]);
        assert!(live[1].get("variables").is_none(), "{}", live[1]);
    }
}

#[tokio::test]
async fn posts_without_the_right_credentials_are_refused_and_not_stored() {
    for backend in backends() {
        let s = start(&backend).await;
        let before = counts(&s.stats().await);
        let body = ACCEPTED.as_bytes();
        for token in [
            Some("crm-flow-token-wrong-wrong"),
            Some(&TOKEN[..TOKEN.len() - 1]),
            Some(""),
            None,
        ] {
            let r = post_flow(&s, "crm", token, body).await;
            assert_eq!(r.status(), 401, "token {token:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
        }
        // The token without the scheme, and the admin token, are not the source's token either.
        let bare = s
            .client
            .post(s.url("/webhooks/flow/crm"))
            .header("authorization", TOKEN)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), 401);
        assert_eq!(
            post_flow(&s, "crm", Some(ADMIN_TOKEN), body).await.status(),
            401
        );
        // Another source's token does not open this one; a source with no token takes no bearer token.
        assert_eq!(
            post_flow(&s, "signed", Some(TOKEN), body).await.status(),
            401
        );
        // An unknown source is not found, whatever the credentials.
        for source in ["nope", "CRM"] {
            let r = post_flow(&s, source, Some(TOKEN), body).await;
            assert_eq!(r.status(), 404, "source {source}");
        }
        assert_eq!(
            s.client
                .post(s.url("/webhooks/flow/"))
                .bearer_auth(TOKEN)
                .body(body.to_vec())
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(counts(&s.stats().await), before);
        assert_eq!(before, (Some(0), Some(0), Some(0)));
        let list = s.get_json("/api/v1/quarantine").await;
        assert_eq!(list["items"], json!([]));
    }
}

#[tokio::test]
async fn authenticated_posts_that_cannot_be_used_are_quarantined_and_listed() {
    for backend in backends() {
        let s = start(&backend).await;
        let malformed = &ACCEPTED.as_bytes()[..ACCEPTED.len() / 2];
        let r = post_flow(&s, "crm", Some(TOKEN), malformed).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        let malformed_id = v["quarantine_id"].as_i64().expect("a quarantine id");
        assert!(v["error"].as_str().unwrap().contains("JSON"), "{v}");

        // Valid JSON, but the engagement id is missing (a variable name the script got wrong: null).
        let mut no_engagement = example(ACCEPTED);
        no_engagement["engagement_id"] = Value::Null;
        let no_engagement = serde_json::to_vec(&no_engagement).unwrap();
        let r = post_flow(&s, "crm", Some(TOKEN), &no_engagement).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        let no_engagement_id = v["quarantine_id"].as_i64().expect("a quarantine id");
        assert!(v["error"].as_str().unwrap().contains("engagement"), "{v}");
        assert_ne!(malformed_id, no_engagement_id);

        let list = s.get_json("/api/v1/quarantine").await;
        let items = list["items"].as_array().unwrap();
        let listed: Vec<(i64, &str)> = items
            .iter()
            .map(|i| (i["id"].as_i64().unwrap(), i["source"].as_str().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [(malformed_id, "flow:crm"), (no_engagement_id, "flow:crm")]
        );
        assert_eq!(items[0]["body"].as_str().unwrap().as_bytes(), malformed);
        assert!(items[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no engagement id"));
        let one = s
            .get_json(&format!("/api/v1/quarantine/{no_engagement_id}"))
            .await;
        assert_eq!(one["body"].as_str().unwrap().as_bytes(), &no_engagement[..]);
        assert_eq!(counts(&s.stats().await), (Some(0), Some(0), Some(2)));
    }
}

#[tokio::test]
async fn replaying_a_post_that_is_still_unusable_is_refused() {
    for backend in backends() {
        let s = start(&backend).await;
        let r = post_flow(
            &s,
            "crm",
            Some(TOKEN),
            b"{\"event\": \"Engagement Accepted\",",
        )
        .await;
        assert_eq!(r.status(), 400);
        let id = r.json::<Value>().await.unwrap()["quarantine_id"]
            .as_i64()
            .unwrap();
        let r = admin_post(&s, &format!("/api/v1/quarantine/{id}/replay")).await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("still unusable"),
            "{v}"
        );
        let item = s.get_json(&format!("/api/v1/quarantine/{id}")).await;
        assert!(item["resolved_event_id"].is_null(), "{item}");
        assert_eq!(counts(&s.stats().await), (Some(0), Some(0), Some(1)));
        assert_eq!(
            admin_post(&s, "/api/v1/quarantine/999999/replay")
                .await
                .status(),
            404
        );
    }
}

/// The documented repair: fix the source's field mapping, restart, replay what was quarantined.
#[tokio::test]
async fn a_quarantined_post_replays_once_the_mapping_is_fixed() {
    for backend in backends() {
        let mut s = start(&backend).await;
        // The script nests the engagement id; the default mapping looks for a top-level `engagement_id`.
        let mut nested = example(ACCEPTED);
        let id = nested["engagement_id"].take();
        nested.as_object_mut().unwrap().remove("engagement_id");
        nested["vars"] = json!({ "global_system.Engagement.engagementId": id });
        let nested = serde_json::to_vec(&nested).unwrap();
        let r = post_flow(&s, "crm", Some(TOKEN), &nested).await;
        assert_eq!(r.status(), 400);
        let quarantine_id = r.json::<Value>().await.unwrap()["quarantine_id"]
            .as_i64()
            .unwrap();

        s.shutdown().await;
        let mut config = test_config(&s.db.url);
        config.flow.sources.insert(
            "crm".into(),
            FlowSourceConfig {
                token: Some(Secret::new(TOKEN)),
                fields: zcc_bridge::config::FlowFields {
                    engagement_id: "/vars/global_system.Engagement.engagementId".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let server = zcc_bridge::start(config).await.expect("server restarts");
        s.base = format!("http://{}", server.addr());
        s.server = Some(server);

        let r = admin_post(&s, &format!("/api/v1/quarantine/{quarantine_id}/replay")).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "stored", "{v}");
        let item = s
            .get_json(&format!("/api/v1/quarantine/{quarantine_id}"))
            .await;
        assert_eq!(item["resolved_event_id"], v["event_id"]);
        let r = admin_post(&s, &format!("/api/v1/quarantine/{quarantine_id}/replay")).await;
        assert_eq!(r.status(), 409);

        let id = id.as_str().unwrap();
        let activity = poll_json(&s, &format!("/api/v1/engagements/{id}/activity"), |a| {
            a["answered_at"].is_string()
        })
        .await;
        assert_eq!(
            activity["answered_at"].as_str(),
            zcc_bridge::core::record::format_ms(
                example(ACCEPTED)["event_ts"].as_i64().expect("event_ts")
            )
            .as_deref()
        );
        // The same post sent again now is the replayed event.
        let again: Value = post_flow(&s, "crm", Some(TOKEN), &nested)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(again["event_id"], v["event_id"]);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_signing_source_takes_a_correct_signature_only() {
    for backend in backends() {
        let s = start(&backend).await;
        let body = ACCEPTED.as_bytes();
        let signature = format!("sha256={}", sign(HMAC_SECRET, body));
        let r = post_signed(&s, &signature, body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "stored", "{v}");
        // Hex digits in upper case are the same signature (and the same post: a duplicate).
        let upper = format!("sha256={}", sign(HMAC_SECRET, body).to_ascii_uppercase());
        let v: Value = post_signed(&s, &upper, body).await.json().await.unwrap();
        assert_eq!(v["status"], "duplicate", "{v}");

        let other = DISPOSITION.as_bytes();
        for bad in [
            format!("sha256={}", sign("not-the-secret-0123456789", other)),
            // A valid signature of another body.
            signature.clone(),
            sign(HMAC_SECRET, other),
            format!("sha1={}", sign(HMAC_SECRET, other)),
            "sha256=".to_string(),
        ] {
            let r = post_signed(&s, &bad, other).await;
            assert_eq!(r.status(), 401, "signature {bad}");
        }
        assert_eq!(
            post_flow(&s, "signed", None, other).await.status(),
            401,
            "unsigned"
        );
        let stats = s.stats().await;
        assert_eq!(counts(&stats), (Some(1), Some(1), Some(0)));
        let events = s.get_json("/api/v1/events").await;
        assert_eq!(events["events"][0]["source"], "flow:signed");
    }
}

/// `[flow.sources.<name>.kinds]` maps a script's own event names to kinds (here: messaging's "Engagement
/// Assigned", which is when an agent accepts a chat or SMS); names it does not know are logged, without activity.
#[tokio::test]
async fn custom_event_names_map_to_kinds() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.flow.sources.insert(
                "chat".into(),
                FlowSourceConfig {
                    token: Some(Secret::new(TOKEN)),
                    kinds: [
                        ("Engagement Assigned".to_string(), "accepted".to_string()),
                        ("wrapped".to_string(), "disposition_saved".to_string()),
                    ]
                    .into(),
                    ..Default::default()
                },
            );
        })
        .await;
        let mut assigned = example(ACCEPTED);
        assigned["event"] = json!("Engagement Assigned");
        assigned["channel"] = json!("messaging");
        let mut wrapped = example(DISPOSITION);
        wrapped["event"] = json!("Wrapped");
        wrapped["channel"] = json!("messaging");
        let mut recording = example(ACCEPTED);
        recording["event"] = json!("Recording Started");
        recording["event_ts"] = json!(1_795_251_606_000i64);
        for body in [&assigned, &wrapped, &recording] {
            let r = post_flow(&s, "chat", Some(TOKEN), &serde_json::to_vec(body).unwrap()).await;
            assert_eq!(r.status(), 200, "{body}");
        }
        let id = assigned["engagement_id"].as_str().unwrap();
        let activity = poll_json(&s, &format!("/api/v1/engagements/{id}/activity"), |a| {
            a["answered_at"].is_string() && !a["dispositions"].as_array().unwrap().is_empty()
        })
        .await;
        assert_eq!(
            activity["answered_at"].as_str(),
            zcc_bridge::core::record::format_ms(assigned["event_ts"].as_i64().expect("event_ts"))
                .as_deref()
        );
        assert_eq!(activity["channel"], "messaging");
        // In the order logged.
        let events = s
            .get_json(&format!("/api/v1/events?engagement_id={id}"))
            .await;
        let types: Vec<&str> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "flow.accepted",
                "flow.disposition_saved",
                "flow.recording_started"
            ]
        );
        // The engagement's record has all three in its timeline, in time order.
        let record = s.get_json(&format!("/api/v1/engagements/{id}")).await;
        assert_eq!(record["sources"], json!(["flow"]), "{record}");
        let timeline: Vec<&str> = record["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            timeline,
            [
                "flow.accepted",
                "flow.recording_started",
                "flow.disposition_saved"
            ],
            "{record}"
        );
    }
}
