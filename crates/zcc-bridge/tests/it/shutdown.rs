//! Graceful shutdown under load: every event acknowledged before or during the shutdown is in the log and
//! merged into its record when the server comes back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_keeps_every_acknowledged_event() {
    for backend in backends() {
        let mut server = TestServer::start(&backend).await;
        let base = server.base.clone();
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for _ in 0..16 {
            let (acked, next, stop, base) =
                (acked.clone(), next.clone(), stop.clone(), base.clone());
            senders.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let engagement = format!("shutdown-{i}");
                    let body = envelope(
                        "contact_center.engagement_started",
                        1_795_251_600_000 + i as i64,
                        json!({"engagement_id": engagement, "channel": "voice", "direction": "inbound"}),
                    );
                    let ts = now_secs();
                    let response = client
                        .post(format!("{base}/webhooks/zoom"))
                        .header("x-zm-request-timestamp", ts.to_string())
                        .header("x-zm-signature", zoom::webhook::sign(SECRET.as_bytes(), ts, &body))
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().expect("lock").push(engagement)
                        }
                        // Refused or cut off by the shutdown: not acknowledged, so the sender would retry.
                        Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }));
        }
        // Let load build up, then shut down while requests are in flight.
        while acked.lock().expect("lock").len() < 300 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.shutdown().await;
        stop.store(true, Ordering::Relaxed);
        for sender in senders {
            sender.await.expect("sender");
        }
        let acked = acked.lock().expect("lock").clone();

        // Back up on the same database: everything acknowledged is there, merged, exactly once.
        let restarted = zcc_bridge::start(test_config(&server.db.url))
            .await
            .expect("restart");
        let client = reqwest::Client::new();
        let get = |path: String| {
            let client = client.clone();
            let url = format!("http://{}{path}", restarted.addr());
            async move {
                client
                    .get(url)
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .expect("request")
            }
        };
        let stats: serde_json::Value = get("/api/v1/stats".into())
            .await
            .json()
            .await
            .expect("stats");
        assert!(
            stats["events"].as_u64().unwrap_or(0) >= acked.len() as u64,
            "{backend:?}: {} acknowledged, {stats}",
            acked.len()
        );
        for engagement in &acked {
            let response = get(format!("/api/v1/engagements/{engagement}")).await;
            assert_eq!(
                response.status(),
                200,
                "{backend:?}: acknowledged {engagement} lost"
            );
            let record: serde_json::Value = response.json().await.expect("record");
            assert_eq!(
                record["timeline"].as_array().map(Vec::len),
                Some(1),
                "{record}"
            );
        }
        assert_eq!(stats["duplicates"].as_i64(), Some(0), "{stats}");
        // A graceful stop merges everything it logged before exiting; nothing was left for recovery.
        assert_eq!(stats["projection_pending"].as_i64(), Some(0), "{stats}");
        restarted.shutdown().await.expect("clean shutdown");
    }
}
