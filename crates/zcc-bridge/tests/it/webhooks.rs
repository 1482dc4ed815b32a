//! Black-box tests of `POST /webhooks/zoom` and the read API, against every configured backend.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn url_validation_handshake_requires_a_signature() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let r = s.post_webhook(body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(
            v["encryptedToken"],
            zoom::webhook::encrypt_plain_token(SECRET.as_bytes(), "qgg8vlvZRS6UYooatFL8Aw")
        );
        // Unsigned, it would be an HMAC oracle for forging signatures.
        let r = s
            .client
            .post(s.url("/webhooks/zoom"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(s.stats().await["events"], 0);
    }
}

#[tokio::test]
async fn unauthenticated_requests_are_refused_and_not_stored() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let body = envelope(
            "contact_center.engagement_started",
            1,
            json!({"engagement_id": "E1"}),
        );
        let now = now_secs();
        let wrong_secret = s.post_signed(&body, "not-the-secret", now).await;
        assert_eq!(wrong_secret.status(), 401);
        let stale = s.post_signed(&body, SECRET, now - 301).await;
        assert_eq!(stale.status(), 401);
        let future = s.post_signed(&body, SECRET, now + 301).await;
        assert_eq!(future.status(), 401);
        let missing = s
            .client
            .post(s.url("/webhooks/zoom"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 401);
        let garbled = s
            .client
            .post(s.url("/webhooks/zoom"))
            .header("x-zm-request-timestamp", "yesterday")
            .header("x-zm-signature", "v0=zz")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(garbled.status(), 401);
        // A valid signature over another body.
        let ts = now_secs();
        let swapped = s
            .client
            .post(s.url("/webhooks/zoom"))
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(SECRET.as_bytes(), ts, b"{}"),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(swapped.status(), 401);
        let stats = s.stats().await;
        assert_eq!(
            (stats["events"].as_i64(), stats["quarantined"].as_i64()),
            (Some(0), Some(0))
        );
        let metrics = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("zcc_webhook_rejected_total"), "{metrics}");
    }
}

#[tokio::test]
async fn rotated_secrets_all_verify() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.zoom.webhook_secret_tokens = vec![zcc_bridge::config::Secret::new("next-secret")];
        })
        .await;
        let a = envelope(
            "contact_center.engagement_started",
            1,
            json!({"engagement_id": "E1"}),
        );
        let b = envelope(
            "contact_center.engagement_started",
            2,
            json!({"engagement_id": "E2"}),
        );
        assert_eq!(s.post_signed(&a, SECRET, now_secs()).await.status(), 200);
        assert_eq!(
            s.post_signed(&b, "next-secret", now_secs()).await.status(),
            200
        );
        assert_eq!(s.stats().await["events"], 2);
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_and_are_not_stored() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| c.server.max_body_bytes = 2048).await;
        let big = envelope(
            "contact_center.engagement_started",
            1,
            json!({"engagement_id": "E", "pad": "x".repeat(4096)}),
        );
        assert_eq!(s.post_webhook(&big).await.status(), 413);
        let ok = envelope(
            "contact_center.engagement_started",
            1,
            json!({"engagement_id": "E"}),
        );
        assert_eq!(s.post_webhook(&ok).await.status(), 200);
        assert_eq!(s.stats().await["events"], 1);
    }
}

#[tokio::test]
async fn unparseable_authenticated_bodies_are_quarantined_and_listed() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        for body in [
            &b"{not json"[..],
            br#"{"event_ts": 5}"#,
            br#"{"event":5,"event_ts":1763715600000}"#,
        ] {
            let r = s.post_webhook(body).await;
            assert_eq!(r.status(), 400);
            let v: Value = r.json().await.unwrap();
            assert!(v["quarantine_id"].as_i64().is_some(), "{v}");
        }
        // An unreadable event time is not a reason to lose the event: it is stored with the receive time.
        let r = s
            .post_webhook(br#"{"event":"contact_center.x","event_ts":"later"}"#)
            .await;
        assert_eq!(r.status(), 200);
        let list = s.get_json("/api/v1/quarantine").await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["body"], "{not json");
        assert!(items[0]["reason"].as_str().unwrap().contains("JSON"));
        let id = items[0]["id"].as_i64().unwrap();
        let one = s.get_json(&format!("/api/v1/quarantine/{id}")).await;
        assert_eq!(one["body"], "{not json");
        // Replaying something that still does not parse is refused and it stays quarantined.
        let r = s
            .client
            .post(s.url(&format!("/api/v1/quarantine/{id}/replay")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(s.stats().await["quarantined"], 3);
        // Only the event with the unreadable time was stored.
        assert_eq!(s.stats().await["events"], 1);
    }
}

#[tokio::test]
async fn redeliveries_are_recorded_as_duplicates_and_merged_once() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let note = envelope(
            "contact_center.engagement_note_added",
            1_763_715_700_000,
            json!({"engagement_id": "E1", "note_id": "N1", "note": "call back", "user_id": "U1",
                   "last_modified_time": "2026-11-21T09:01:40Z"}),
        );
        let first: Value = s.post_webhook(&note).await.json().await.unwrap();
        assert_eq!(first["status"], "stored");
        // Zoom re-serialises: same event, other key order and spacing.
        let reordered: Value = serde_json::from_slice(&note).unwrap();
        let pretty = serde_json::to_vec_pretty(&reordered).unwrap();
        for body in [&note, &pretty] {
            let again: Value = s.post_webhook(body).await.json().await.unwrap();
            assert_eq!(again["status"], "duplicate");
            assert_eq!(again["event_id"], first["event_id"]);
        }
        // The same note re-fired after a transfer is a new event (new event_ts) but the same note.
        let refired = envelope(
            "contact_center.engagement_note_added",
            1_763_715_900_000,
            json!({"engagement_id": "E1", "note_id": "N1", "note": "call back", "user_id": "U1",
                   "last_modified_time": "2026-11-21T09:01:40Z"}),
        );
        assert_eq!(s.post_webhook(&refired).await.status(), 200);
        let stats = s.stats().await;
        assert_eq!(
            (stats["events"].as_i64(), stats["duplicates"].as_i64()),
            (Some(2), Some(2))
        );
        let record = s.get_json("/api/v1/engagements/E1").await;
        assert_eq!(record["notes"].as_array().unwrap().len(), 1);
        assert_eq!(record["notes"][0]["note"], "call back");
        assert_eq!(record["timeline"].as_array().unwrap().len(), 2);
        let events = s.get_json("/api/v1/events?engagement_id=E1").await;
        assert_eq!(events["events"][0]["duplicate_count"], 2);
    }
}

#[tokio::test]
async fn unknown_events_are_kept_in_log_and_timeline() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let body = envelope(
            "contact_center.engagement_teleported",
            10,
            json!({"engagement_id": "E9", "where": "mars"}),
        );
        assert_eq!(s.post_webhook(&body).await.status(), 200);
        let no_engagement = envelope(
            "contact_center.user_status_changed",
            11,
            json!({"user_email": "a@example.com"}),
        );
        assert_eq!(s.post_webhook(&no_engagement).await.status(), 200);
        let record = s.get_json("/api/v1/engagements/E9").await;
        assert_eq!(
            record["timeline"][0]["event"],
            "contact_center.engagement_teleported"
        );
        assert_eq!(record["sources"], json!(["webhook"]));
        assert_eq!(s.stats().await["events"], 2);
        let metrics = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("event_type=\"unknown\""), "{metrics}");
        assert!(metrics.contains("zcc_ingest_commit_batch_size"));
        assert!(metrics.contains("zcc_webhook_ingest_seconds"));
    }
}

#[tokio::test]
async fn admin_api_requires_the_bearer_token() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let url = s.url("/api/v1/engagements");
        assert_eq!(s.client.get(&url).send().await.unwrap().status(), 401);
        assert_eq!(
            s.client
                .get(&url)
                .bearer_auth("wrong-token-wrong-token")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(s.get("/api/v1/engagements").await.status(), 200);
        assert_eq!(s.get("/api/v1/engagements/nope").await.status(), 404);
        assert_eq!(
            s.get("/api/v1/engagements?from=yesterday").await.status(),
            400
        );
        assert_eq!(
            s.get("/api/v1/engagements?cursor=garbage").await.status(),
            400
        );
        assert_eq!(
            s.client
                .get(s.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let ready: Value = s
            .client
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready");

        let closed = TestServer::start_with(&backend, |c| c.admin.token = None).await;
        assert_eq!(closed.get("/api/v1/engagements").await.status(), 401);
    }
}

#[tokio::test]
async fn list_filters_and_cursor_pagination() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let base = 1_795_251_600_000i64; // 2026-11-21T09:00:00Z
        for i in 0..7i64 {
            let channel = if i % 2 == 0 { "voice" } else { "messaging" };
            let body = envelope(
                "contact_center.engagement_started",
                base + i * 60_000,
                json!({"engagement_id": format!("E{i}"), "channel": channel, "engagement_direction": "inbound",
                       "cc_queue_id": format!("Q{}", i % 3), "consumer_number": format!("+1555000{i}")}),
            );
            assert_eq!(s.post_webhook(&body).await.status(), 200);
            let answered = envelope(
                "contact_center.engagement_user_answered",
                base + i * 60_000 + 5_000,
                json!({"engagement_id": format!("E{i}"), "user_id": format!("U{}", i % 2), "display_name": "Agent"}),
            );
            assert_eq!(s.post_webhook(&answered).await.status(), 200);
        }
        let ids = |v: &Value| -> Vec<String> {
            v["engagements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["engagement_id"].as_str().unwrap().to_string())
                .collect()
        };
        let all = s.get_json("/api/v1/engagements").await;
        assert_eq!(ids(&all), ["E6", "E5", "E4", "E3", "E2", "E1", "E0"]);
        assert_eq!(
            ids(&s.get_json("/api/v1/engagements?channel=voice").await),
            ["E6", "E4", "E2", "E0"]
        );
        assert_eq!(
            ids(&s.get_json("/api/v1/engagements?queue_id=Q1").await),
            ["E4", "E1"]
        );
        assert_eq!(
            ids(&s
                .get_json("/api/v1/engagements?user_id=U1&channel=messaging")
                .await),
            ["E5", "E3", "E1"]
        );
        assert_eq!(
            ids(&s
                .get_json("/api/v1/engagements?consumer_number=%2B15550003")
                .await),
            ["E3"]
        );
        assert_eq!(
            ids(&s
                .get_json("/api/v1/engagements?consumer_number=+15550003")
                .await),
            ["E3"]
        );
        let window = s
            .get_json("/api/v1/engagements?from=2026-11-21T09:02:00Z&to=2026-11-21T09:05:00Z")
            .await;
        assert_eq!(ids(&window), ["E4", "E3", "E2"]);
        // Walk pages of 3.
        let mut seen = Vec::new();
        let mut path = "/api/v1/engagements?limit=3".to_string();
        loop {
            let page = s.get_json(&path).await;
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/engagements?limit=3&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, ids(&all));
        let record = s.get_json("/api/v1/engagements/E3").await;
        assert_eq!(record["start_time"], "2026-11-21T09:03:00Z");
        assert_eq!(
            record["agents"],
            json!([{"user_id": "U1", "display_name": "Agent"}])
        );
    }
}

/// Dedup keys hash RFC 8785 bytes (`core::canonical`). An event logged before under its old key (serde_json's
/// bytes, which differ for a number such as `4.0`) is still found when Zoom redelivers it after the upgrade.
#[tokio::test]
async fn an_event_logged_under_its_pre_rfc_8785_key_is_still_a_duplicate() {
    use zcc_bridge::core::EventSource;
    use zcc_bridge::sources::zoom_webhook::{parse, ParsedWebhook};
    use zcc_bridge::store::{Inbound, Outcome};
    for backend in backends() {
        let mut s = TestServer::start(&backend).await;
        let body = envelope(
            "contact_center.engagement_note_added",
            1_795_251_600_000,
            json!({"engagement_id": "E-jcs", "note_id": "n1", "note": "x", "score": 4.0, "ratio": 1e21}),
        );
        let now_ms = now_secs() * 1000;
        let Ok(ParsedWebhook::Event(parsed)) = parse(&body, EventSource::Webhook, now_ms) else {
            panic!("parses");
        };
        let mut old = parsed.into_event(EventSource::Webhook, body.clone().into(), 1, None);
        let legacy = old
            .legacy_dedup_key
            .take()
            .expect("4.0 (JCS: 4) changes the key");
        assert_ne!(legacy, old.dedup_key);
        old.dedup_key = legacy;
        let store = s.server.as_ref().expect("running").store();
        let logged = store.commit(&[Inbound::Event(old)]).await.expect("commit");
        let Outcome::Stored { event_id } = logged[0] else {
            panic!("{logged:?}");
        };
        let redelivered: Value = s.post_webhook(&body).await.json().await.unwrap();
        assert_eq!(
            redelivered["status"], "duplicate",
            "{backend:?}: {redelivered}"
        );
        assert_eq!(redelivered["event_id"], event_id);
        // A new event with such a number is logged once under its RFC 8785 key, and its redelivery found too.
        let fresh = envelope(
            "contact_center.engagement_note_added",
            1_795_251_600_001,
            json!({"engagement_id": "E-jcs", "note_id": "n2", "score": 0.1}),
        );
        let first: Value = s.post_webhook(&fresh).await.json().await.unwrap();
        assert_eq!(first["status"], "stored");
        let again: Value = s.post_webhook(&fresh).await.json().await.unwrap();
        assert_eq!(again["status"], "duplicate");
        assert_eq!(again["event_id"], first["event_id"]);
        s.shutdown().await;
    }
}
