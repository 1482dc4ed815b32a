//! kill -9 during a load of signed events: after a restart every acknowledged event is in the log and merged,
//! and Zoom's retries of everything (acknowledged or not) duplicate nothing in the records.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::process::{send_signed, spawn_serve};
use crate::common::*;
use serde_json::{json, Value};
use tokio::process::Child;

async fn spawn_server(db_url: &str) -> (Child, String) {
    spawn_server_with(db_url, &[("ZCC_BRIDGE_MEDIA__ENABLED", "false".into())]).await
}

async fn spawn_server_with(db_url: &str, env: &[(&str, String)]) -> (Child, String) {
    let mut env = env.to_vec();
    env.extend([
        ("ZCC_BRIDGE_SERVER__LISTEN", "127.0.0.1:0".to_string()),
        ("ZCC_BRIDGE_STORAGE__DATABASE", db_url.to_string()),
        ("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", SECRET.to_string()),
        ("ZCC_BRIDGE_ADMIN__TOKEN", ADMIN_TOKEN.to_string()),
    ]);
    spawn_serve(&[], &env).await
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
    send_signed(client, base, body).await
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

/// kill -9 in the middle of archiving a recording: the job outlives the process (it was written with the
/// projection of the REST fetch that Zoom's `recording_completed` webhook triggers), is taken up again after the
/// restart, and the archived file is exactly Zoom's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_interrupted_by_kill_9_completes_after_restart() {
    use zoom_sim::SimServerConfig;
    let sim_config = SimServerConfig {
        media_bytes: 6_000_000,
        download_bytes_per_second: Some(2_000_000),
        ..Default::default()
    };
    let (sim, scenario) = crate::common::sim::simulator(1, 1, sim_config.clone()).await;
    let completed: Vec<&zoom_sim::generator::SimEvent> = scenario
        .events
        .iter()
        .filter(|e| e.body["event"] == "contact_center.recording_completed")
        .collect();
    assert!(!completed.is_empty(), "the scenario has a recording");
    for backend in backends() {
        let db = fresh_db(&backend).await;
        let media = db.dir().join("media");
        let env = [
            (
                "ZCC_BRIDGE_STORAGE__MEDIA",
                format!("file://{}", media.display()),
            ),
            ("ZCC_BRIDGE_ZOOM__ACCOUNT_ID", sim_config.account_id.clone()),
            ("ZCC_BRIDGE_ZOOM__CLIENT_ID", sim_config.client_id.clone()),
            (
                "ZCC_BRIDGE_ZOOM__CLIENT_SECRET",
                sim_config.client_secret.clone(),
            ),
            (
                "ZCC_BRIDGE_ZOOM__API_BASE",
                format!("{}/v2", sim.base_url()),
            ),
            ("ZCC_BRIDGE_ZOOM__OAUTH_BASE", sim.base_url()),
            // Zoom's `recording_completed` names no file: the webhook makes the bridge fetch the engagement's
            // recordings over REST (at once here); the nightly schedule waits for its first night.
            ("ZCC_BRIDGE_RECONCILE__ENABLED", "true".into()),
            ("ZCC_BRIDGE_RECONCILE__FETCH_SETTLE_SECONDS", "0".into()),
            ("ZCC_BRIDGE_MEDIA__LEASE_SECONDS", "3".into()),
        ];
        let (mut child, base) = spawn_server_with(&db.url, &env).await;
        let client = reqwest::Client::new();
        for event in &completed {
            let body = serde_json::to_vec(&event.body).expect("json");
            assert_eq!(
                send(&client, &base, &body).await.map(|s| s.as_u16()),
                Some(200)
            );
        }
        // Kill it once the download is well under way (a partial file is growing).
        let partial = media.join(".partial");
        let mut started = false;
        for _ in 0..200 {
            let size: u64 = std::fs::read_dir(&partial)
                .map(|d| {
                    d.filter_map(|e| e.ok()?.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            if size > 1_000_000 {
                started = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started, "{backend:?}: the download started");
        child.kill().await.expect("kill -9");
        let _ = child.wait().await;

        let (mut child, base) = spawn_server_with(&db.url, &env).await;
        let mut archived = Value::Null;
        for _ in 0..300 {
            let stats: Value = client
                .get(format!("{base}/api/v1/media/stats"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("stats")
                .json()
                .await
                .expect("json");
            // The recordings, and their transcripts where Zoom lists one.
            if stats["pending"] == 0 && stats["archived"].as_u64() >= Some(completed.len() as u64) {
                archived = stats;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !archived.is_null(),
            "{backend:?}: archived after the restart"
        );
        let rows: Value = client
            .get(format!("{base}/api/v1/media?kind=recording"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let rows = rows["media"].as_array().expect("rows");
        assert_eq!(rows.len(), completed.len(), "{backend:?}: {rows:?}");
        for event in &completed {
            let object = &event.body["payload"]["object"];
            let id = object["recording_id"].as_str().expect("id");
            let row = rows
                .iter()
                .find(|r| r["item_id"] == id)
                .unwrap_or_else(|| panic!("{backend:?}: recording {id} archived"));
            assert_eq!(row["state"], "archived");
            let url = zoom_sim::urls::recording_download(
                &scenario.api_base,
                id,
                object["channel"].as_str().unwrap_or("voice"),
            );
            assert_eq!(
                row["sha256"],
                crate::common::sim::file_sha256(&sim, &sim_config, &url).await,
                "{backend:?}"
            );
        }
        child.kill().await.expect("stop");
    }
}
