//! Our Standard Webhooks signatures (the HTTP sink's) checked by the specification's reference library, the
//! `standardwebhooks` package from PyPI that `scripts/test.sh` installs (`ZCC_TEST_PYTHON`).

use std::process::Command;

use serde_json::json;
use zcc_bridge::delivery::standard_webhooks::{signature_header, Secret};

const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
cases = json.load(open(sys.argv[1]))
ok = 0
for c in cases:
    headers = {"webhook-id": c["id"], "webhook-timestamp": str(c["timestamp"]), "webhook-signature": c["signature"]}
    for secret in c["secrets"]:
        Webhook(secret).verify(c["body"], headers, json_parse=False)
        ok += 1
    try:
        Webhook(c["secrets"][0]).verify(c["body"] + " ", headers, json_parse=False)
        raise SystemExit("a tampered body verified")
    except WebhookVerificationError:
        pass
print(f"verified {ok}")
"#;

#[test]
fn the_reference_library_verifies_our_signatures() {
    let Some(python) = std::env::var("ZCC_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        assert!(
            std::env::var("ZCC_REQUIRE_OBJECT_STORES").as_deref() != Ok("1"),
            "ZCC_TEST_PYTHON is not set (scripts/object-stores.sh installs the reference library)"
        );
        eprintln!("skipped: ZCC_TEST_PYTHON not set");
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut cases = Vec::new();
    for i in 0..40 {
        // Rotation: two secrets sign every message; a receiver with either one verifies.
        let (new, new_text) = Secret::generate();
        let (old, old_text) = Secret::generate();
        let id = format!("msg_{i:04}_zcc");
        let body = serde_json::to_string(&json!({
            "type": "engagement.completed",
            "timestamp": "2026-11-21T09:07:12Z",
            "data": {"engagement_id": format!("E{i}"), "notes": [{"note": "café ☕ ".repeat(i)}]},
        }))
        .expect("json");
        let signature = signature_header(&[new, old], &id, now, body.as_bytes());
        cases.push(json!({
            "id": id, "timestamp": now, "body": body, "signature": signature,
            "secrets": [new_text, old_text],
        }));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).expect("json")).expect("write cases");
    let output = Command::new(&python)
        .args(["-c", VERIFY])
        .arg(&file)
        .output()
        .expect("run the reference library");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "verified 80");
}

/// The HTTP sink's actual requests, captured off the wire, verified by the reference library with each of the
/// sink's two secrets (rotation).
#[tokio::test]
async fn the_reference_library_verifies_the_http_sinks_requests() {
    use std::sync::{Arc, Mutex};
    let Some(python) = std::env::var("ZCC_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        assert!(
            std::env::var("ZCC_REQUIRE_OBJECT_STORES").as_deref() != Ok("1"),
            "ZCC_TEST_PYTHON is not set (scripts/object-stores.sh installs the reference library)"
        );
        eprintln!("skipped: ZCC_TEST_PYTHON not set");
        return;
    };
    let captured: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink_captured = captured.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let captured = sink_captured.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    captured.lock().expect("lock").push(json!({
                        "id": h("webhook-id"),
                        "timestamp": h("webhook-timestamp").parse::<i64>().unwrap_or_default(),
                        "signature": h("webhook-signature"),
                        "body": String::from_utf8_lossy(&body),
                    }));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (_, current) = Secret::generate();
    let (_, previous) = Secret::generate();
    let config = zcc_bridge::config::SinkConfig {
        secrets: vec![
            zcc_bridge::config::Secret::new(current.clone()),
            zcc_bridge::config::Secret::new(previous.clone()),
        ],
        deliver: vec!["engagement.completed".into()],
        concurrency: 1,
        timeout_seconds: 5,
        ..zcc_bridge::config::SinkConfig::new(
            "warehouse",
            zcc_bridge::config::SinkKind::Http,
            format!("http://{addr}/hook"),
        )
    };
    let sink = zcc_bridge::delivery::sinks::build(&config, 1024).expect("sink");
    for i in 0..5 {
        let message = zcc_bridge::delivery::sink::Message {
            id: format!("msg_{i:032}"),
            event_type: "engagement.completed".into(),
            created_at: 1_795_251_600_000,
            engagement_id: Some(format!("E{i}")),
            data: json!({"engagement_id": format!("E{i}"), "notes": [{"note": "café ☕"}]})
                .to_string(),
            attempt: 1,
        };
        let result = sink.deliver(&message).await;
        assert_eq!(
            result.outcome,
            zcc_bridge::delivery::sink::Outcome::Delivered,
            "{result:?}"
        );
    }
    let cases: Vec<serde_json::Value> = captured
        .lock()
        .expect("lock")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["secrets"] = json!([current, previous]);
            c
        })
        .collect();
    assert_eq!(cases.len(), 5);
    let body: serde_json::Value =
        serde_json::from_str(cases[0]["body"].as_str().unwrap_or_default()).expect("json body");
    assert_eq!(body["type"], "engagement.completed");
    assert_eq!(body["timestamp"], "2026-11-21T09:00:00Z");
    assert_eq!(body["data"]["engagement_id"], "E0");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("captured.json");
    std::fs::write(&file, serde_json::to_vec(&cases).expect("json")).expect("write");
    let output = Command::new(&python)
        .args(["-c", VERIFY])
        .arg(&file)
        .output()
        .expect("run the reference library");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "verified 10");
}
