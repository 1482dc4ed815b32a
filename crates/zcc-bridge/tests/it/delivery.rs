//! Delivery to an HTTP sink, black-box: a real server on port 0 against a real database, a Standard Webhooks
//! receiver that verifies every signature, and the admin API to look at the outbox.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::receiver::{reserve_port, Receiver, WHSEC};
use crate::common::*;
use serde_json::{json, Value};
use zcc_bridge::config::{Config, Secret, SinkConfig, SinkKind};

const STARTED: &str = "contact_center.engagement_started";
const NOTE: &str = "contact_center.engagement_note_added";
const ENDED: &str = "contact_center.engagement_ended";

pub fn http_sink(name: &str, url: &str, deliver: &[&str]) -> SinkConfig {
    SinkConfig {
        secrets: vec![Secret::new(WHSEC)],
        deliver: deliver.iter().map(|s| s.to_string()).collect(),
        timeout_seconds: 5,
        ..SinkConfig::new(name, SinkKind::Http, url)
    }
}

/// Fast retries and planning for tests (the schedule is long enough that nothing dies while a sink is down).
fn fast_delivery(c: &mut Config) {
    c.delivery.settle_seconds = 0;
    c.delivery.coalesce_ms = 50;
    c.delivery.poll_ms = 100;
    c.delivery.lease_seconds = 30;
    c.delivery.retry_schedule_seconds = vec![0.2; 40];
}

/// started, note, disposition, ended of engagement `E{n}` (times long past: they settle at once).
fn engagement_events(n: usize) -> Vec<Vec<u8>> {
    let id = format!("E{n}");
    let t = 1_763_715_600_000 + n as i64 * 1000;
    vec![
        envelope(
            STARTED,
            t,
            json!({"engagement_id": id, "channel": "voice", "engagement_direction": "inbound"}),
        ),
        envelope(
            NOTE,
            t + 1,
            json!({"engagement_id": id, "note_id": format!("N{n}"), "note": "first"}),
        ),
        envelope(
            "contact_center.engagement_disposition_added",
            t + 2,
            json!({"engagement_id": id, "disposition_id": "D1", "disposition_name": "Sale"}),
        ),
        envelope(ENDED, t + 3, json!({"engagement_id": id})),
    ]
}

async fn post_all(server: &TestServer, bodies: &[Vec<u8>]) {
    for body in bodies {
        let r = server.post_webhook(body).await;
        assert_eq!(r.status(), 200, "webhook accepted");
    }
}

async fn admin_post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = server
        .client
        .post(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the sink has nothing pending and `delivered` deliveries delivered.
async fn until_delivered(server: &TestServer, sink: &str, delivered: i64) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let sinks = server.get_json("/api/v1/sinks").await;
        if let Some(s) = sinks["sinks"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["name"] == sink))
        {
            if s["pending"] == 0 && s["delivered"].as_i64() == Some(delivered) {
                return s.clone();
            }
            last = s.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sink {sink} did not deliver {delivered}: {last}");
}

async fn all_deliveries(server: &TestServer, query: &str) -> Vec<Value> {
    let list = server
        .get_json(&format!("/api/v1/deliveries?limit=1000{query}"))
        .await;
    let mut rows = list["deliveries"].as_array().cloned().unwrap_or_default();
    rows.reverse(); // oldest first
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_then_failing_then_up_gets_everything_once_and_in_order() {
    for backend in backends() {
        let port = reserve_port();
        let url = format!("http://{port}/hook");
        let server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink(
                "warehouse",
                &url,
                &[
                    "engagement.completed",
                    "engagement.updated",
                    STARTED,
                    NOTE,
                    ENDED,
                ],
            )];
        })
        .await;
        // Nothing listens: connections are refused while the engagements arrive and complete.
        for n in 0..10 {
            post_all(&server, &engagement_events(n)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // A later note on half of them: an update after the completion, and one more real-time event.
        for n in 0..5 {
            let body = envelope(
                NOTE,
                1_763_715_600_000 + n as i64 * 1000 + 10,
                json!({"engagement_id": format!("E{n}"), "note_id": format!("N{n}b"), "note": "second"}),
            );
            post_all(&server, &[body]).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Up, but failing with 503 for a while.
        let receiver = Receiver::start_on(port).await;
        receiver.fail_next(8, 503);

        // 10 × (started, note, ended) + 5 second notes real-time, 10 completed, 5 updated.
        let sink = until_delivered(&server, "warehouse", 50).await;
        assert_eq!(sink["dead"], 0, "{sink}");

        let received = receiver.received();
        assert!(
            received.iter().all(|r| r.signature_ok),
            "every request verifies"
        );
        assert!(received.iter().filter(|r| r.status == 503).count() == 8);
        let accepted = receiver.accepted();
        let ids: BTreeSet<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            accepted.len(),
            "{backend:?}: each idempotency key accepted once"
        );
        let deliveries = all_deliveries(&server, "&sink=warehouse").await;
        assert_eq!(deliveries.len(), 50);
        let expected: BTreeSet<&str> = deliveries
            .iter()
            .filter_map(|d| d["msg_id"].as_str())
            .collect();
        assert_eq!(
            ids, expected,
            "the receiver got exactly the outbox's messages"
        );

        // Per engagement, the receiver saw the messages in outbox order: the completion after the real-time
        // events before it, and the update after the completion.
        for n in 0..10 {
            let id = format!("E{n}");
            let outbox: Vec<&str> = deliveries
                .iter()
                .filter(|d| d["engagement_id"] == id.as_str())
                .filter_map(|d| d["msg_id"].as_str())
                .collect();
            let arrived: Vec<&str> = accepted
                .iter()
                .filter(|r| r.body["data"]["engagement_id"] == id.as_str())
                .map(|r| r.id.as_str())
                .collect();
            assert_eq!(arrived, outbox, "{backend:?}: order of {id}");
            let types: Vec<&str> = accepted
                .iter()
                .filter(|r| r.body["data"]["engagement_id"] == id.as_str())
                .filter_map(|r| r.body["type"].as_str())
                .collect();
            let completed = types
                .iter()
                .position(|t| *t == "engagement.completed")
                .expect("completed");
            assert!(types[..completed].contains(&ENDED), "{types:?}");
            if n < 5 {
                let updated = types
                    .iter()
                    .position(|t| *t == "engagement.updated")
                    .expect("updated");
                assert!(updated > completed, "{types:?}");
            } else {
                assert!(!types.contains(&"engagement.updated"), "{types:?}");
            }
        }
        // The completed message carries the record as the API shows it.
        let completed = accepted
            .iter()
            .find(|r| {
                r.body["type"] == "engagement.completed" && r.body["data"]["engagement_id"] == "E3"
            })
            .expect("E3 completed");
        assert_eq!(completed.body["data"]["notes"][0]["note"], "first");
        assert_eq!(
            completed.body["data"]["dispositions"][0]["disposition_name"],
            "Sale"
        );
        assert_eq!(completed.body["data"]["channel"], "voice");
        assert!(completed.body["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        let updated = accepted
            .iter()
            .find(|r| {
                r.body["type"] == "engagement.updated" && r.body["data"]["engagement_id"] == "E3"
            })
            .expect("E3 updated");
        assert_eq!(
            updated.body["data"]["notes"].as_array().map(Vec::len),
            Some(2)
        );

        // Attempts are recorded: refused connections, then 503s, then success.
        let first = deliveries[0]["id"].as_i64().expect("id");
        let detail = server
            .get_json(&format!("/api/v1/deliveries/{first}"))
            .await;
        let log = detail["attempt_log"].as_array().expect("attempt log");
        assert!(log.len() >= 2, "{detail}");
        assert_eq!(log[0]["outcome"], "retry");
        assert!(log[0]["status"].is_null(), "{detail}");
        assert!(
            log[0]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("connection"),
            "{detail}"
        );
        assert_eq!(log.last().expect("last")["outcome"], "delivered");
        assert_eq!(detail["state"], "delivered");
        let saw_503 = {
            let mut found = false;
            for d in &deliveries {
                let detail = server
                    .get_json(&format!("/api/v1/deliveries/{}", d["id"]))
                    .await;
                if detail["attempt_log"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|a| a["status"] == 503))
                {
                    found = true;
                    break;
                }
            }
            found
        };
        assert!(saw_503, "a 503 attempt is in some delivery's log");
        let metrics = server.get("/metrics").await.text().await.expect("metrics");
        assert!(
            metrics.contains("zcc_delivery_attempts_total"),
            "metrics exported"
        );
        assert!(
            metrics.contains("zcc_delivery_latency_seconds"),
            "latency histogram exported"
        );
        let mut server = server;
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_dead_lettered_and_replayed_and_410_disables_the_sink() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let url = receiver.url();
        let mut server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink("crm", &url, &["engagement.completed"])];
        })
        .await;
        // A 400 is final: dead at the first attempt.
        receiver.fail_next(1, 400);
        post_all(&server, &engagement_events(0)).await;
        let mut dead = Vec::new();
        for _ in 0..300 {
            dead = all_deliveries(&server, "&state=dead").await;
            if !dead.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(dead.len(), 1, "{backend:?}: dead-lettered");
        assert_eq!(dead[0]["attempts"], 1);
        assert_eq!(dead[0]["last_status"], 400);
        // A dead delivery holds back later ones of the same engagement (order is kept)...
        post_all(
            &server,
            &[envelope(
                NOTE,
                1_763_715_600_100,
                json!({"engagement_id": "E0", "note_id": "late", "note": "x"}),
            )],
        )
        .await;
        // ...and the replay of every dead letter of the sink delivers it.
        let (status, body) = admin_post(
            &server,
            "/api/v1/deliveries/replay",
            json!({"sink": "crm", "dead": true}),
        )
        .await;
        assert_eq!((status, &body["replayed"]), (200, &json!(1)), "{body}");
        until_delivered(&server, "crm", 1).await;
        assert_eq!(receiver.accepted().len(), 1);
        assert_eq!(receiver.received().len(), 2, "the 400 and the replay");
        assert_eq!(
            receiver.accepted()[0].id,
            dead[0]["msg_id"].as_str().unwrap_or_default(),
            "same id on replay"
        );

        // Replay one delivered message by id: sent again with the same id.
        let id = dead[0]["id"].as_i64().expect("id");
        let (status, _) = admin_post(
            &server,
            &format!("/api/v1/deliveries/{id}/replay"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
        until_delivered(&server, "crm", 1).await;
        for _ in 0..300 {
            if receiver.accepted().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[0].id, accepted[1].id);

        // 410 Gone disables the sink: nothing more is attempted until it is enabled again.
        receiver.fail_next(1, 410);
        post_all(&server, &engagement_events(1)).await;
        let mut disabled = Value::Null;
        for _ in 0..300 {
            let sinks = server.get_json("/api/v1/sinks").await;
            disabled = sinks["sinks"][0]["disabled"].clone();
            if !disabled.is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            disabled["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("410"),
            "{disabled}"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        let before = receiver.received().len();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            receiver.received().len(),
            before,
            "a disabled sink gets nothing"
        );
        let (status, _) = admin_post(&server, "/api/v1/sinks/crm/enable", json!({})).await;
        assert_eq!(status, 200);
        until_delivered(&server, "crm", 2).await;
        let sinks = server.get_json("/api/v1/sinks").await;
        assert!(sinks["sinks"][0]["disabled"].is_null(), "{sinks}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engagement_waits_for_its_settle_window_unless_everything_is_there() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let url = receiver.url();
        let mut server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.delivery.settle_seconds = 3;
            c.sinks = vec![http_sink(
                "crm",
                &url,
                &["engagement.completed", "engagement.updated"],
            )];
        })
        .await;
        let now = chrono::Utc::now().timestamp_millis();
        // E1: ended now, no notes: waits for the window. E2: notes and disposition, no media expected to arrive
        // in time either: also waits (media is part of "everything").
        post_all(
            &server,
            &[
                envelope(
                    STARTED,
                    now - 60_000,
                    json!({"engagement_id": "E1", "channel": "chat"}),
                ),
                envelope(ENDED, now, json!({"engagement_id": "E1"})),
            ],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            receiver.accepted().is_empty(),
            "{backend:?}: nothing before the window ends"
        );
        until_delivered(&server, "crm", 1).await;
        let completed = &receiver.accepted()[0];
        assert_eq!(completed.body["type"], "engagement.completed");
        // A duplicate of an event changes nothing a sink cares about: no update.
        post_all(
            &server,
            &[envelope(ENDED, now, json!({"engagement_id": "E1"}))],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(receiver.accepted().len(), 1, "no update for a duplicate");
        server.shutdown().await;
    }
}

/// Events of the same engagements posted concurrently (so, on PostgreSQL, logged by several committers at once,
/// whose ids are not committed in order): each engagement's real-time deliveries reach the receiver exactly in
/// the order of its queue, and that order never changes after the fact. A queue ordered by id alone fails this on
/// PostgreSQL: a later id of an engagement can be committed, claimed and sent before an earlier one is visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_of_an_engagement_go_out_in_queue_order() {
    const ENGAGEMENTS: usize = 12;
    const PER_ENGAGEMENT: usize = 25;
    for backend in backends() {
        let receiver = Receiver::start().await;
        let server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink("live", &receiver.url(), &[NOTE])];
        })
        .await;
        // Every task posts a slice of every engagement, so an engagement's events are in flight together.
        let mut posts = tokio::task::JoinSet::new();
        for task in 0..10 {
            let client = server.client.clone();
            let url = server.url("/webhooks/zoom");
            posts.spawn(async move {
                for k in (task..PER_ENGAGEMENT).step_by(10) {
                    for e in 0..ENGAGEMENTS {
                        let body = envelope(
                            NOTE,
                            1_763_715_600_000 + k as i64,
                            json!({"engagement_id": format!("C{e}"), "note_id": format!("C{e}-{k}"), "note": "n"}),
                        );
                        let ts = now_secs();
                        let r = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-zm-request-timestamp", ts.to_string())
                            .header("x-zm-signature", zoom::webhook::sign(SECRET.as_bytes(), ts, &body))
                            .body(body)
                            .send()
                            .await
                            .expect("post");
                        assert_eq!(r.status(), 200);
                    }
                }
            });
        }
        while let Some(done) = posts.join_next().await {
            done.expect("poster");
        }
        let total = (ENGAGEMENTS * PER_ENGAGEMENT) as i64;
        let sink = until_delivered(&server, "live", total).await;
        assert_eq!(sink["dead"], 0, "{sink}");

        let accepted = receiver.accepted();
        let ids: BTreeSet<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), accepted.len(), "{backend:?}: each message once");
        assert_eq!(accepted.len() as i64, total);

        // The queue order as the store keeps it (migration 0006), read after the fact.
        for e in 0..ENGAGEMENTS {
            let key = format!("C{e}");
            let queue = queue_order(&server.db.url, "live", &key).await;
            let arrived: Vec<String> = accepted
                .iter()
                .filter(|r| r.body["data"]["engagement_id"] == key.as_str())
                .map(|r| r.id.clone())
                .collect();
            assert_eq!(arrived, queue, "{backend:?}: order of {key}");
        }
    }
}

/// The messages of one engagement on one sink, in queue order.
async fn queue_order(db_url: &str, sink: &str, key: &str) -> Vec<String> {
    const SQL: &str =
        "SELECT msg_id FROM deliveries WHERE sink = $1 AND ordering_key = $2 ORDER BY xid, id";
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.expect("connect");
        sqlx::query_scalar(SQL)
            .bind(sink)
            .bind(key)
            .fetch_all(&pool)
            .await
            .expect("queue")
    } else {
        let pool = sqlx::SqlitePool::connect(db_url).await.expect("connect");
        sqlx::query_scalar(SQL)
            .bind(sink)
            .bind(key)
            .fetch_all(&pool)
            .await
            .expect("queue")
    }
}

/// PostgreSQL, deterministically: a delivery of an engagement queued by a transaction that is still open (the
/// planner writing an `engagement.updated`, a slow committer, another replica) when a later event of the same
/// engagement commits. The later one must not go first: it waits until the earlier transaction ends, then both go
/// out in queue order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_event_waits_for_an_earlier_transaction_of_its_engagement() {
    use sqlx::Connection;
    for backend in backends() {
        let Backend::Postgres(_) = backend else {
            continue;
        };
        let receiver = Receiver::start().await;
        let server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink("live", &receiver.url(), &[NOTE])];
        })
        .await;
        let mut slow = sqlx::PgConnection::connect(&server.db.url)
            .await
            .expect("connect");
        let mut held = slow.begin().await.expect("begin");
        let now = chrono::Utc::now().timestamp_millis();
        sqlx::query(
            "INSERT INTO outbound_messages (msg_id, event_type, engagement_id, payload, created_at, caused_at)
             VALUES ('msg_held', 'engagement.updated', 'H1', '{\"held\": true}', $1, $1)",
        )
        .bind(now)
        .execute(&mut *held)
        .await
        .expect("insert the held message");
        sqlx::query(
            "INSERT INTO deliveries (sink, msg_id, event_type, ordering_key, next_attempt_at, created_at, caused_at)
             VALUES ('live', 'msg_held', 'engagement.updated', 'H1', 0, $1, $1)",
        )
        .bind(now)
        .execute(&mut *held)
        .await
        .expect("insert the held delivery");

        let later = envelope(
            NOTE,
            1_763_715_600_001,
            json!({"engagement_id": "H1", "note_id": "second", "note": "posted"}),
        );
        post_all(&server, &[later]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            receiver.accepted().is_empty(),
            "nothing of H1 may go while an earlier transaction of it is open"
        );

        held.commit().await.expect("commit");
        until_delivered(&server, "live", 2).await;
        let ids: Vec<String> = receiver.accepted().iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], "msg_held", "{ids:?}");
        assert!(ids[1].starts_with("msg_evt_"), "{ids:?}");
    }
}

/// A completed engagement with a disposition goes to a `call.logged` sink once, as a call log with the
/// engagement's activity counters, after its `engagement.completed` (same queue, same order); one without a
/// disposition is logged when the disposition arrives.
#[tokio::test]
async fn a_completed_engagement_with_a_disposition_is_delivered_as_a_call_log() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let url = receiver.url();
        let mut server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink(
                "log",
                &url,
                &["engagement.completed", "engagement.updated", "call.logged"],
            )];
        })
        .await;
        let mut events = engagement_events(1);
        let t = 1_763_715_600_000;
        events.extend([
            envelope(
                "contact_center.engagement_user_answered",
                t + 10,
                json!({"engagement_id": "E1", "user_id": "ua"}),
            ),
            envelope(
                "contact_center.engagement_user_hold",
                t + 20,
                json!({"engagement_id": "E1", "user_id": "ua"}),
            ),
            envelope(
                "contact_center.engagement_user_unhold",
                t + 1020,
                json!({"engagement_id": "E1", "user_id": "ua"}),
            ),
        ]);
        // The end comes last (and later), so the record and its activity are complete when it is planned.
        events.remove(3);
        events.push(envelope(ENDED, t + 2000, json!({"engagement_id": "E1"})));
        post_all(&server, &events).await;
        until_delivered(&server, "log", 2).await;
        let accepted = receiver.accepted();
        let types: Vec<&str> = accepted
            .iter()
            .map(|r| r.body["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            types,
            vec!["engagement.completed", "call.logged"],
            "{backend:?}"
        );
        let log = &accepted[1].body["data"];
        assert_eq!(log["engagement_id"], "E1");
        assert_eq!(log["disposition"]["disposition_name"], "Sale");
        assert_eq!(log["hold_count"], 1);
        assert_eq!(log["hold_seconds"], 1.0);
        assert_eq!(log["direction"], "inbound");

        // No disposition yet: the completed record goes out, the call log waits for the disposition.
        let t2 = t + 10_000;
        post_all(
            &server,
            &[
                envelope(
                    STARTED,
                    t2,
                    json!({"engagement_id": "E2", "channel": "voice"}),
                ),
                envelope(ENDED, t2 + 5, json!({"engagement_id": "E2"})),
            ],
        )
        .await;
        until_delivered(&server, "log", 3).await;
        post_all(
            &server,
            &[envelope(
                "contact_center.engagement_disposition_added",
                t2 + 9,
                json!({"engagement_id": "E2", "disposition_id": "D2", "disposition_name": "No sale"}),
            )],
        )
        .await;
        until_delivered(&server, "log", 5).await;
        let accepted = receiver.accepted();
        let e2: Vec<&str> = accepted
            .iter()
            .filter(|r| r.body["data"]["engagement_id"] == "E2")
            .map(|r| r.body["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            e2,
            vec!["engagement.completed", "engagement.updated", "call.logged"],
            "{backend:?}"
        );
        // Later changes never log the call again.
        post_all(
            &server,
            &[envelope(
                NOTE,
                t2 + 20,
                json!({"engagement_id": "E2", "note_id": "N9", "note": "later"}),
            )],
        )
        .await;
        until_delivered(&server, "log", 6).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let logs = receiver
            .accepted()
            .iter()
            .filter(|r| r.body["type"] == "call.logged")
            .count();
        assert_eq!(logs, 2, "{backend:?}");
        server.shutdown().await;
    }
}

/// A disposition that only a Flow *Disposition Saved* script reports (no Zoom webhook, no REST fetch) is in the
/// record and in the call log.
#[tokio::test]
async fn a_disposition_from_a_flow_script_alone_reaches_the_record_and_the_call_log() {
    const FLOW_TOKEN: &str = "crm-flow-token-0123456789";
    for backend in backends() {
        let receiver = Receiver::start().await;
        let url = receiver.url();
        let mut server = TestServer::start_with(&backend, |c| {
            fast_delivery(c);
            c.sinks = vec![http_sink(
                "log",
                &url,
                &["engagement.completed", "call.logged"],
            )];
            c.flow.sources.insert(
                "crm".into(),
                zcc_bridge::config::FlowSourceConfig {
                    token: Some(Secret::new(FLOW_TOKEN)),
                    ..Default::default()
                },
            );
        })
        .await;
        let t = 1_763_715_600_000;
        let posted = server
            .client
            .post(server.url("/webhooks/flow/crm"))
            .bearer_auth(FLOW_TOKEN)
            .json(&json!({"event": "Disposition Saved", "engagement_id": "F1", "event_ts": t + 50,
                          "consumer_number": "+14155550123", "disposition": "Resolved - billing question"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(posted.status(), 200);
        post_all(
            &server,
            &[
                envelope(
                    STARTED,
                    t,
                    json!({"engagement_id": "F1", "channel": "voice"}),
                ),
                envelope(ENDED, t + 100, json!({"engagement_id": "F1"})),
            ],
        )
        .await;
        let record = server.get_json("/api/v1/engagements/F1").await;
        assert_eq!(
            record["dispositions"],
            json!([{"disposition_id": "name:Resolved - billing question", "disposition_name": "Resolved - billing question"}]),
            "{backend:?}"
        );
        assert_eq!(record["consumers"][0]["consumer_number"], "+14155550123");
        until_delivered(&server, "log", 2).await;
        let accepted = receiver.accepted();
        let log = accepted
            .iter()
            .find(|r| r.body["type"] == "call.logged")
            .expect("a call log");
        assert_eq!(
            log.body["data"]["disposition"]["disposition_name"], "Resolved - billing question",
            "{backend:?}"
        );
        server.shutdown().await;
    }
}
