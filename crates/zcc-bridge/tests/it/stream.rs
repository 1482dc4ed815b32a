//! The live stream (`GET /api/v1/stream`): normalised events in order, filters, the matched customer, and a
//! client that disconnects and resumes with `Last-Event-ID` receives every event exactly once, in order.

use std::time::Duration;

use crate::common::sse::SseClient;
use crate::common::{backends, envelope, now_secs, TestServer, ADMIN_TOKEN};
use serde_json::json;

/// A hold by agent `user` on engagement `E<i>`.
fn hold(i: usize, user: &str) -> Vec<u8> {
    envelope(
        "contact_center.engagement_user_hold",
        now_secs() * 1000 + i as i64,
        json!({"engagement_id": format!("E{i}"), "user_id": user, "cc_queue_id": "Q1"}),
    )
}

async fn post(server: &TestServer, body: &[u8]) {
    let response = server.post_webhook(body).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_resumed_client_gets_every_event_exactly_once_in_order() {
    for backend in backends() {
        let mut server = TestServer::start(&backend).await;
        let mut client = SseClient::connect(&server, "", None).await;
        // Events that are not activity (a recording) are skipped by the stream but still advance it.
        post(
            &server,
            &envelope(
                "contact_center.recording_started",
                now_secs() * 1000,
                json!({"engagement_id": "R", "recording_id": "r1"}),
            ),
        )
        .await;
        for i in 0..30 {
            post(&server, &hold(i, "u1")).await;
        }
        let first = client.take(10).await;
        drop(client);
        // Missed while away: the rest of the first batch and twenty more.
        for i in 30..50 {
            post(&server, &hold(i, "u1")).await;
        }
        let last_id = first.last().map(|f| f.id.clone()).expect("frames");
        let mut resumed = SseClient::connect(&server, "", Some(&last_id)).await;
        let rest = resumed.take(40).await;
        for i in 50..55 {
            post(&server, &hold(i, "u1")).await;
        }
        let live = resumed.take(5).await;
        assert!(
            resumed.next(Duration::from_millis(500)).await.is_none(),
            "{backend:?}: nothing more than what was posted"
        );
        let engagements: Vec<String> = first
            .iter()
            .chain(&rest)
            .chain(&live)
            .map(|f| {
                assert_eq!(f.event, "held");
                assert_eq!(f.data["kind"], "held");
                assert_eq!(f.data["id"], f.id.as_str());
                f.data["engagement_id"].as_str().expect("id").to_string()
            })
            .collect();
        let expected: Vec<String> = (0..55).map(|i| format!("E{i}")).collect();
        assert_eq!(engagements, expected, "{backend:?}");

        // A bad resume id is refused.
        let response = server
            .client
            .get(server.url("/api/v1/stream"))
            .bearer_auth(ADMIN_TOKEN)
            .header("last-event-id", "not-an-id")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400);
        // Shutting down ends open streams (a client reconnects to another replica, or later, and resumes).
        let shutdown = tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await;
        assert!(
            shutdown.is_ok(),
            "{backend:?}: open streams held the shutdown up"
        );
        assert!(resumed.next(Duration::from_secs(2)).await.is_none());
    }
}

#[tokio::test]
async fn filters_select_events_and_the_customer_is_matched() {
    for backend in backends() {
        let contacts = tempfile::Builder::new()
            .suffix(".csv")
            .tempfile()
            .expect("temp file");
        std::fs::write(
            contacts.path(),
            "name,phone,crm_id\nJane Doe,+1 (555) 010-0100,003A1\n",
        )
        .expect("write contacts");
        let path = contacts.path().to_path_buf();
        let mut server = TestServer::start_with(&backend, |c| c.contacts.file = Some(path)).await;
        let mut by_agent =
            SseClient::connect(&server, "?agent=Ann@Example.com&kinds=accepted,ended", None).await;
        let mut by_queue = SseClient::connect(&server, "?queue=Q2", None).await;
        let ts = now_secs() * 1000;
        let events = [
            envelope(
                "contact_center.engagement_started",
                ts,
                json!({"engagement_id": "E1", "cc_queue_id": "Q2", "consumer_number": "+15550100100"}),
            ),
            envelope(
                "contact_center.engagement_user_answered",
                ts + 1,
                json!({"engagement_id": "E1", "user_id": "ua", "user_email": "ann@example.com",
                       "consumer_number": "5550100100", "cc_queue_id": "Q2"}),
            ),
            envelope(
                "contact_center.engagement_user_answered",
                ts + 2,
                json!({"engagement_id": "E2", "user_id": "ub", "user_email": "bob@example.com"}),
            ),
            envelope(
                "contact_center.engagement_user_hold",
                ts + 3,
                json!({"engagement_id": "E1", "user_id": "ua", "user_email": "ann@example.com"}),
            ),
            envelope(
                "contact_center.engagement_ended",
                ts + 4,
                json!({"engagement_id": "E1", "user_email": "ann@example.com"}),
            ),
        ];
        for body in &events {
            post(&server, body).await;
        }
        let ann = by_agent.take(2).await;
        assert_eq!(
            ann.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(),
            vec!["accepted", "ended"],
            "{backend:?}"
        );
        assert_eq!(ann[0].data["customer"]["crm_id"], "003A1");
        assert_eq!(ann[0].data["customer"]["name"], "Jane Doe");
        assert_eq!(ann[0].data["agent"]["user_id"], "ua");
        assert_eq!(ann[0].data["source"], "webhook");
        assert!(by_agent.next(Duration::from_millis(300)).await.is_none());
        let q2 = by_queue.take(2).await;
        assert_eq!(
            q2.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(),
            vec!["started", "accepted"]
        );

        let response = server
            .client
            .get(server.url("/api/v1/stream?kinds=exploded"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400);
        let unauthenticated = server
            .client
            .get(server.url("/api/v1/stream"))
            .send()
            .await
            .expect("request");
        assert_eq!(unauthenticated.status(), 401);
        server.shutdown().await;
    }
}
