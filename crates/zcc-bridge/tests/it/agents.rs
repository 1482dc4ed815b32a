//! Agent state from marketplace events: a simulated shift of three agents, posted out of order, with every event
//! delivered twice and some facts reported twice in different words, gives exact timelines and counters.

use crate::common::{backends, envelope, TestServer};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;
/// The shift lasts about five minutes.
const SHIFT_MS: i64 = 310_000;

/// The shift's start: a quarter of an hour ago (the agent list looks a day back for engagements still held),
/// moved earlier when the shift would cross midnight UTC.
fn base() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let mut t = crate::common::now_secs() * 1000 - 15 * 60_000;
        if t.div_euclid(DAY_MS) != (t + SHIFT_MS).div_euclid(DAY_MS) {
            t -= 2 * SHIFT_MS;
        }
        t
    })
}

/// The API's times are RFC 3339.
fn iso(ms: i64) -> String {
    zcc_bridge::core::record::format_ms(ms).expect("a time")
}

fn ms(value: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn at(seconds: f64) -> i64 {
    base() + (seconds * 1000.0) as i64
}

/// The agent-day query for the shift's UTC day, up to 400 s after its start (so open spans end there).
fn window() -> String {
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let day_start = base().div_euclid(DAY_MS) * DAY_MS;
    format!("from={}&to={}", rfc(day_start), rfc(at(400.0))).replace('+', "%2B")
}

fn event(name: &str, seconds: f64, object: Value) -> Vec<u8> {
    envelope(&format!("contact_center.{name}"), at(seconds), object)
}

fn status(user: Value, seconds: f64, from: &str, to: &str, sub: &str) -> Vec<u8> {
    let mut object = user;
    object["previous_status_name"] = json!(from);
    object["current_status_name"] = json!(to);
    object["current_sub_status_name"] = json!(sub);
    event("user_status_changed", seconds, object)
}

fn shift() -> Vec<Vec<u8>> {
    let ann = || json!({"user_id": "ua", "user_email": "ann@example.com", "display_name": "Ann"});
    let bob = || json!({"user_id": "ub", "user_email": "bob@example.com", "display_name": "Bob"});
    let on = |id: &str, user: &str| json!({"engagement_id": id, "user_id": user});
    vec![
        // Ann: a shift with one engagement, transferred to Bob.
        event("user_login", 0.0, ann()),
        status(ann(), 2.0, "Offline", "Ready", ""),
        event(
            "user_opt_in",
            5.0,
            json!({"user_id": "ua", "cc_queue_id": "Q1", "queue_name": "Sales"}),
        ),
        event(
            "engagement_started",
            10.0,
            json!({"engagement_id": "E1", "channel": "voice", "engagement_direction": "inbound", "cc_queue_id": "Q1",
                   "queue_name": "Sales", "consumer_number": "+15550100"}),
        ),
        event("engagement_user_answered", 14.0, on("E1", "ua")),
        event("engagement_user_hold", 20.0, on("E1", "ua")),
        event("engagement_user_unhold", 30.0, on("E1", "ua")),
        event("engagement_user_hold", 40.0, on("E1", "ua")),
        event("engagement_user_unhold", 45.0, on("E1", "ua")),
        event("engagement_user_muted", 50.0, on("E1", "ua")),
        event("engagement_user_unmuted", 51.0, on("E1", "ua")),
        event("engagement_transfer_initiated", 60.0, on("E1", "ua")),
        // Zoom's shape: `user_id` is Ann, who transfers; `transfer_to_*` is Bob and his queue.
        event(
            "engagement_transfer_accepted",
            70.0,
            json!({"engagement_id": "E1", "user_id": "ua", "user_display_name": "Ann", "cc_queue_id": "Q1",
                   "transfer_to_user_id": "ub", "transfer_to_user_display_name": "Bob",
                   "transfer_to_cc_queue_id": "Q2", "task_id": "T1", "transfer_to_task_id": "T2"}),
        ),
        event("engagement_user_answered", 72.0, on("E1", "ub")),
        event("engagement_ended", 90.0, json!({"engagement_id": "E1"})),
        event("engagement_wrap_up_started", 90.5, on("E1", "ub")),
        event("engagement_wrap_up_ended", 100.5, on("E1", "ub")),
        status(ann(), 110.0, "Ready", "Not Ready", "Break"),
        status(ann(), 170.0, "Not Ready", "Ready", ""),
        event(
            "user_opt_out",
            200.0,
            json!({"user_id": "ua", "cc_queue_id": "Q1", "queue_name": "Sales"}),
        ),
        status(ann(), 300.0, "Ready", "Offline", ""),
        event("user_logout", 301.0, ann()),
        // Bob: an engagement whose hold never ends before the engagement does.
        event("user_login", 1.0, bob()),
        status(bob(), 3.0, "Offline", "Ready", ""),
        event(
            "engagement_started",
            120.0,
            json!({"engagement_id": "E2", "channel": "voice", "cc_queue_id": "Q2"}),
        ),
        event("engagement_user_answered", 125.0, on("E2", "ub")),
        event("engagement_user_hold", 130.0, on("E2", "ub")),
        event("engagement_ended", 150.0, json!({"engagement_id": "E2"})),
        // Cleo: named by e-mail on status events and by user id on engagement events; her login names both.
        event(
            "user_login",
            0.0,
            json!({"user_id": "uc", "user_email": "cleo@example.com"}),
        ),
        status(
            json!({"user_email": "Cleo@Example.com"}),
            4.0,
            "Offline",
            "Ready",
            "",
        ),
        event(
            "engagement_started",
            200.0,
            json!({"engagement_id": "E3", "channel": "chat"}),
        ),
        event("engagement_user_answered", 203.0, on("E3", "uc")),
    ]
}

/// The same facts reported again in other words (another field present): new log entries that must not count.
fn restatements() -> Vec<Vec<u8>> {
    vec![
        event(
            "engagement_user_hold",
            20.0,
            json!({"engagement_id": "E1", "user_id": "ua", "channel_source": "zoom_phone"}),
        ),
        event(
            "engagement_transfer_accepted",
            70.0,
            json!({"engagement_id": "E1", "user_id": "ua", "transfer_to_user_id": "ub",
                   "transfer_to_queue_name": "Support", "task_id": "T1", "transfer_to_task_id": "T2"}),
        ),
        status(
            json!({"user_id": "ua", "user_email": "ann@example.com", "date_time": "restated"}),
            110.0,
            "Ready",
            "Not Ready",
            "Break",
        ),
        event(
            "user_logout",
            301.0,
            json!({"user_id": "ua", "note": "again"}),
        ),
    ]
}

/// Posts every event twice (the second time re-encoded with its keys in another order), in a scrambled order,
/// eight at a time.
async fn post_scrambled(server: &TestServer, events: Vec<Vec<u8>>) {
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for body in &events {
        bodies.push(body.clone());
        let value: Value = serde_json::from_slice(body).expect("json");
        // serde_json's map is ordered by key; write the envelope's keys reversed by hand.
        let reencoded = format!(
            r#"{{"payload":{},"event_ts":{},"event":{}}}"#,
            value["payload"], value["event_ts"], value["event"]
        );
        bodies.push(reencoded.into_bytes());
    }
    // A fixed scramble: stride through the list.
    let n = bodies.len();
    let stride = 17;
    let order: Vec<usize> = (0..n).map(|i| (i * stride) % n).collect();
    let mut seen = vec![false; n];
    for &i in &order {
        assert!(!seen[i], "the stride visits each event once");
        seen[i] = true;
    }
    let statuses: Vec<u16> = stream::iter(order)
        .map(|i| {
            let body = bodies[i].clone();
            async move { server.post_webhook(&body).await.status().as_u16() }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

fn spans(day: &Value) -> Vec<(String, Option<String>, i64, Option<i64>)> {
    day["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| {
            (
                s["status"].as_str().expect("status").to_string(),
                s["sub_status"].as_str().map(str::to_string),
                ms(&s["from"]).expect("from"),
                ms(&s["to"]),
            )
        })
        .collect()
}

fn engagement<'a>(day: &'a Value, id: &str) -> &'a Value {
    day["engagements"]
        .as_array()
        .expect("engagements")
        .iter()
        .find(|e| e["engagement_id"] == id)
        .unwrap_or_else(|| panic!("{id} in {day}"))
}

#[tokio::test]
async fn a_scrambled_shift_gives_exact_timelines_and_counters() {
    for backend in backends() {
        let mut server = TestServer::start(&backend).await;
        let mut events = shift();
        events.extend(restatements());
        post_scrambled(&server, events).await;

        let ann = server
            .get_json(&format!("/api/v1/agents/ann@example.com?{}", window()))
            .await;
        assert_eq!(ann["agent_key"], "ua", "{backend:?}");
        assert_eq!(ann["display_name"], "Ann");
        assert_eq!(
            spans(&ann),
            vec![
                ("Ready".into(), None, at(2.0), Some(at(110.0))),
                (
                    "Not Ready".into(),
                    Some("Break".into()),
                    at(110.0),
                    Some(at(170.0))
                ),
                ("Ready".into(), None, at(170.0), Some(at(300.0))),
                ("Offline".into(), None, at(300.0), None),
            ],
            "{backend:?}"
        );
        assert_eq!(ann["status_ms"]["Ready"], 108_000 + 130_000);
        assert_eq!(ann["status_ms"]["Not Ready: Break"], 60_000);
        assert_eq!(ann["status_ms"]["Offline"], 100_000);
        assert_eq!(
            ann["sessions"],
            json!([{"login": iso(at(0.0)), "logout": iso(at(301.0))}])
        );
        assert_eq!(ann["logged_in"], false);
        assert_eq!(
            ann["queues"],
            json!([{"cc_queue_id": "Q1", "queue_name": "Sales", "opted_in": false, "since": iso(at(200.0))}])
        );
        assert_eq!(ann["active_engagements"], json!([]));
        let e1 = engagement(&ann, "E1");
        assert_eq!(e1["hold_count"], 2, "{backend:?}: {e1}");
        assert_eq!(e1["hold_ms"], 15_000);
        assert_eq!(e1["mute_count"], 1);
        assert_eq!(e1["transfer_count"], 1);
        assert_eq!(e1["time_to_answer_ms"], 4_000);
        assert_eq!(e1["wrap_up_ms"], 10_000);
        assert_eq!(e1["agents"], json!(["ua", "ub"]));
        assert_eq!(e1["consumer_number"], "+15550100");
        assert!(e1["current_agent"].is_null());

        // The same counters by engagement.
        let by_engagement = server.get_json("/api/v1/engagements/E1/activity").await;
        assert_eq!(&by_engagement, e1);

        let bob = server
            .get_json(&format!("/api/v1/agents/ub?{}", window()))
            .await;
        assert_eq!(bob["engagements"].as_array().map(Vec::len), Some(2));
        let e2 = engagement(&bob, "E2");
        assert_eq!(e2["hold_count"], 1);
        assert_eq!(
            e2["hold_ms"], 20_000,
            "an open hold ends with the engagement"
        );
        assert_eq!(e2["time_to_answer_ms"], 5_000);
        assert_eq!(e2["on_hold"], false);
        assert_eq!(bob["status"], "Ready");

        // Cleo's e-mail-only status and user-id engagement are one person.
        let cleo = server
            .get_json(&format!("/api/v1/agents/uc?{}", window()))
            .await;
        assert_eq!(cleo["status"], "Ready");
        assert_eq!(cleo["active_engagements"], json!(["E3"]));
        assert_eq!(spans(&cleo), vec![("Ready".into(), None, at(4.0), None)]);

        let list = server.get_json("/api/v1/agents").await;
        let summary: Vec<(String, Option<String>, Value)> = list["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .map(|a| {
                (
                    a["agent_key"].as_str().expect("key").to_string(),
                    a["status"].as_str().map(str::to_string),
                    a["active_engagements"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ua".into(), Some("Offline".into()), json!([])),
                ("ub".into(), Some("Ready".into()), json!([])),
                ("uc".into(), Some("Ready".into()), json!(["E3"])),
            ],
            "{backend:?}"
        );

        // Unknown agents and engagements are 404s; a bad date is a 400.
        assert_eq!(server.get("/api/v1/agents/nobody").await.status(), 404);
        assert_eq!(
            server
                .get("/api/v1/engagements/E404/activity")
                .await
                .status(),
            404
        );
        assert_eq!(
            server
                .get("/api/v1/agents/ua?date=yesterday")
                .await
                .status(),
            400
        );

        // Hold and mute counts reach /metrics by queue, counted once however often they were reported.
        let metrics = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("zcc_engagement_holds_total{queue=\"Q1\"}"),
            "{backend:?}"
        );

        // `rebuild` records the activity again from the log: the same days come out.
        let store = server.server.as_ref().expect("running").store();
        let report = zcc_bridge::rebuild::rebuild(&*store, &Default::default())
            .await
            .expect("rebuild");
        assert!(report.activity_events >= 36, "{report:?}");
        let again = server
            .get_json(&format!("/api/v1/agents/ann@example.com?{}", window()))
            .await;
        assert_eq!(again, ann, "{backend:?}");
        server.shutdown().await;
    }
}
