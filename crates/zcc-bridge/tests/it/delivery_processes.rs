//! Delivery across process deaths and replicas: kill -9 with deliveries in flight loses nothing; two server
//! processes sharing one Postgres deliver each message once.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::process::{send_signed, spawn_serve};
use crate::common::receiver::{Receiver, WHSEC};
use crate::common::*;
use serde_json::{json, Value};
use tokio::process::Child;

const TYPES: [&str; 4] = [
    "contact_center.engagement_started",
    "contact_center.engagement_note_added",
    "contact_center.engagement_disposition_added",
    "contact_center.engagement_ended",
];

/// A config file with one HTTP sink taking the four real-time types and the completed engagement.
fn write_config(dir: &std::path::Path, db_url: &str, sink_url: &str) -> std::path::PathBuf {
    let deliver: Vec<String> = TYPES
        .iter()
        .map(|t| format!("{t:?}"))
        .chain(["\"engagement.completed\"".to_string()])
        .collect();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[storage]
database = "{db_url}"
[zoom]
webhook_secret_token = "{SECRET}"
[admin]
token = "{ADMIN_TOKEN}"
[media]
enabled = false
[delivery]
settle_seconds = 0
coalesce_ms = 50
poll_ms = 100
lease_seconds = 8
retry_schedule_seconds = [0.2, 0.2, 0.2, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]

[[sinks]]
name = "warehouse"
kind = "http"
url = "{sink_url}"
secrets = ["{WHSEC}"]
deliver = [{deliver}]
concurrency = 4
timeout_seconds = 5
"#,
        deliver = deliver.join(", ")
    );
    let path = dir.join(format!("zcc-{}.toml", random_suffix()));
    std::fs::write(&path, toml).expect("write config");
    path
}

async fn spawn_server(config: &std::path::Path) -> (Child, String) {
    spawn_serve(&["--config".as_ref(), config.as_os_str()], &[]).await
}

fn bodies(engagements: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..engagements {
        let id = format!("K{n}");
        let t = 1_763_715_600_000 + n as i64 * 1000;
        out.push(envelope(
            TYPES[0],
            t,
            json!({"engagement_id": id, "channel": "voice"}),
        ));
        out.push(envelope(
            TYPES[1],
            t + 1,
            json!({"engagement_id": id, "note_id": format!("N{n}"), "note": "n"}),
        ));
        out.push(envelope(
            TYPES[2],
            t + 2,
            json!({"engagement_id": id, "disposition_id": "D1", "disposition_name": "Sale"}),
        ));
        out.push(envelope(TYPES[3], t + 3, json!({"engagement_id": id})));
    }
    out
}

async fn send(client: &reqwest::Client, base: &str, body: &[u8]) {
    assert_eq!(
        send_signed(client, base, body).await,
        Some(reqwest::StatusCode::OK),
        "webhook accepted"
    );
}

async fn sink_counts(client: &reqwest::Client, base: &str) -> Value {
    let r = client
        .get(format!("{base}/api/v1/sinks"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sinks");
    let body: Value = r.json().await.expect("json");
    body["sinks"][0].clone()
}

async fn until_all_delivered(client: &reqwest::Client, base: &str, expected: i64) -> Value {
    let mut last = Value::Null;
    for _ in 0..900 {
        last = sink_counts(client, base).await;
        if last["pending"] == 0 && last["delivered"].as_i64() == Some(expected) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not everything delivered: {last}");
}

/// How often each message id was accepted.
fn acceptances(receiver: &Receiver) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in receiver.accepted() {
        *counts.entry(r.id).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_deliveries_in_flight_loses_nothing() {
    for backend in backends() {
        let db = fresh_db(&backend).await;
        let receiver = Receiver::start().await;
        // Slow answers keep deliveries in flight when the process dies.
        receiver.set_delay(Duration::from_millis(150));
        let config = write_config(db.dir(), &db.url, &receiver.url());
        let client = reqwest::Client::new();
        let (mut child, base) = spawn_server(&config).await;
        let engagements = 25;
        for body in bodies(engagements) {
            send(&client, &base, &body).await;
        }
        // Die with some delivered and some in flight.
        for _ in 0..300 {
            if receiver.received().len() >= 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().await.expect("kill -9");
        let at_kill = receiver.received().len();
        let expected = (engagements * 5) as i64;
        assert!(
            (at_kill as i64) < expected,
            "{backend:?}: killed before the end ({at_kill})"
        );

        receiver.set_delay(Duration::ZERO);
        let (mut child, base) = spawn_server(&config).await;
        let counts = until_all_delivered(&client, &base, expected).await;
        assert_eq!(counts["dead"], 0, "{counts}");
        let accepted = acceptances(&receiver);
        assert_eq!(
            accepted.len() as i64,
            expected,
            "{backend:?}: every message arrived"
        );
        // At-least-once: only what was in flight at the kill (at most the sink's concurrency) may come twice.
        let twice = accepted.values().filter(|n| **n > 1).count();
        assert!(
            twice <= 4,
            "{backend:?}: {twice} messages accepted more than once"
        );
        assert!(accepted.values().all(|n| *n <= 2));
        child.kill().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_postgres_deliver_each_message_once() {
    let Some(Backend::Postgres(admin)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        eprintln!("no Postgres configured: skipped (scripts/test.sh runs it)");
        return;
    };
    let db = fresh_db(&Backend::Postgres(admin)).await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(5));
    let config = write_config(db.dir(), &db.url, &receiver.url());
    let client = reqwest::Client::new();
    let (mut a, base_a) = spawn_server(&config).await;
    let (mut b, base_b) = spawn_server(&config).await;
    let engagements = 60;
    for (i, body) in bodies(engagements).iter().enumerate() {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        send(&client, base, body).await;
    }
    let expected = (engagements * 5) as i64;
    until_all_delivered(&client, &base_a, expected).await;
    let accepted = acceptances(&receiver);
    assert_eq!(accepted.len() as i64, expected);
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(
        receiver.received().len() as i64,
        expected,
        "no attempt beyond one per message"
    );
    a.kill().await.expect("stop a");
    b.kill().await.expect("stop b");
}
