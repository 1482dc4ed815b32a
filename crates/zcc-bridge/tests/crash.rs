//! kill -9 during a load of signed events: after a restart every acknowledged event is in the log and merged,
//! and Zoom's retries of everything (acknowledged or not) duplicate nothing in the records.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

async fn spawn_server(db_url: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .arg("serve")
        .env("ZCC_BRIDGE_SERVER__LISTEN", "127.0.0.1:0")
        .env("ZCC_BRIDGE_STORAGE__DATABASE", db_url)
        .env("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", SECRET)
        .env("ZCC_BRIDGE_ADMIN__TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn zcc-bridge");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("zcc-bridge listening on ") {
                return url.trim().to_string();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server listens within 60 s");
    (child, base)
}

fn event_body(i: usize) -> Vec<u8> {
    let engagement = format!("E{}", i / 4);
    match i % 4 {
        0 => envelope(
            "contact_center.engagement_started",
            1_763_715_600_000 + i as i64,
            json!({"engagement_id": engagement, "channel": "voice"}),
        ),
        1 => envelope(
            "contact_center.engagement_note_added",
            1_763_715_600_000 + i as i64,
            json!({"engagement_id": engagement, "note_id": format!("N{i}"), "note": "n"}),
        ),
        2 => envelope(
            "contact_center.engagement_disposition_added",
            1_763_715_600_000 + i as i64,
            json!({"engagement_id": engagement, "disposition_id": "D1", "disposition_name": "Sale"}),
        ),
        _ => envelope(
            "contact_center.engagement_ended",
            1_763_715_600_000 + i as i64,
            json!({"engagement_id": engagement}),
        ),
    }
}

async fn send(client: &reqwest::Client, base: &str, body: &[u8]) -> Option<reqwest::StatusCode> {
    let ts = now_secs();
    client
        .post(format!("{base}/webhooks/zoom"))
        .header("x-zm-request-timestamp", ts.to_string())
        .header(
            "x-zm-signature",
            zoom::webhook::sign(SECRET.as_bytes(), ts, body),
        )
        .body(body.to_vec())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event() {
    for backend in backends() {
        let db = fresh_db(&backend).await;
        let (mut child, base) = spawn_server(&db.url).await;
        let client = reqwest::Client::new();
        let total = 4000;
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for _ in 0..16 {
            let (client, base, acked, next, dead) = (
                client.clone(),
                base.clone(),
                acked.clone(),
                next.clone(),
                dead.clone(),
            );
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total || dead.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some(status) = send(&client, &base, &event_body(i)).await {
                        if status.is_success() {
                            acked.lock().unwrap().insert(i);
                        }
                    }
                }
            }));
        }
        // Let a few hundred events through, then pull the plug mid-load.
        while acked.lock().unwrap().len() < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reaped");
        dead.store(true, Ordering::SeqCst);
        for w in workers {
            w.await.expect("worker");
        }
        let acked: BTreeSet<usize> = acked.lock().unwrap().clone();
        assert!(
            acked.len() >= 300 && acked.len() < total,
            "acked {} of {total}",
            acked.len()
        );

        let (mut child, base) = spawn_server(&db.url).await;
        let api = |path: String| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let r = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .expect("api");
                r.json::<Value>().await.expect("json")
            }
        };
        let stats = api("/api/v1/stats".into()).await;
        let logged = stats["events"].as_u64().unwrap() as usize;
        assert!(
            logged >= acked.len(),
            "log has {logged} events, {} were acknowledged",
            acked.len()
        );
        for &i in &acked {
            let record = api(format!("/api/v1/engagements/E{}", i / 4)).await;
            let ts = 1_763_715_600_000 + i as i64;
            let timeline = record["timeline"]
                .as_array()
                .expect("record exists for an acknowledged event");
            assert!(
                timeline.iter().any(|e| e["event_ts"] == ts),
                "acknowledged event {i} missing from its record"
            );
        }

        // Zoom retries everything it did not see acknowledged (and some it did): nothing doubles.
        for i in 0..total.min(acked.iter().max().unwrap() + 50) {
            let status = send(&client, &base, &event_body(i))
                .await
                .expect("server up");
            assert!(status.is_success(), "event {i}: {status}");
        }
        let sent = total.min(acked.iter().max().unwrap() + 50);
        let stats = api("/api/v1/stats".into()).await;
        assert_eq!(stats["events"].as_u64().unwrap() as usize, sent);
        for e in 0..sent / 4 {
            let record = api(format!("/api/v1/engagements/E{e}")).await;
            let timeline = record["timeline"].as_array().unwrap();
            let distinct: BTreeSet<String> = timeline.iter().map(|t| t.to_string()).collect();
            assert_eq!(
                distinct.len(),
                timeline.len(),
                "duplicate timeline entries in E{e}"
            );
            assert_eq!(timeline.len(), 4, "E{e}: {record}");
            assert_eq!(record["dispositions"].as_array().unwrap().len(), 1);
            assert_eq!(record["notes"].as_array().unwrap().len(), 1);
        }
        child.start_kill().expect("stop");
        child.wait().await.expect("reaped");
    }
}
