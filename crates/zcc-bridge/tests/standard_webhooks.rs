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
