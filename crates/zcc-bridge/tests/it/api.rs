//! The API's conventions, as a client meets them: the OpenAPI document is served, unknown routes and methods answer
//! problem documents, every list pages with `cursor`/`next_cursor`, and the event log shows what arrived.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_describes_the_routes() {
    let backend = &backends()[0];
    let mut s = TestServer::start(backend).await;
    // No token needed: tools fetch it to learn how to authenticate.
    let response = reqwest::get(s.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/engagements",
        "/api/v1/engagements/{engagement_id}",
        "/api/v1/events/{id}",
        "/api/v1/deliveries",
        "/webhooks/zoom",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_problem_documents() {
    let backend = &backends()[0];
    let mut s = TestServer::start(backend).await;
    let client = reqwest::Client::new();
    for (method, path, status) in [
        (reqwest::Method::GET, "/", 404),
        (reqwest::Method::GET, "/nope", 404),
        (reqwest::Method::GET, "/api/v1/nope", 404),
        (reqwest::Method::DELETE, "/api/v1/engagements", 405),
        (reqwest::Method::GET, "/webhooks/zoom", 405),
    ] {
        let response = client
            .request(method.clone(), s.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_pages_with_cursors_and_shows_each_body() {
    for backend in backends() {
        let mut s = TestServer::start(&backend).await;
        let id = format!("ev-{}", random_suffix());
        let mut sent = Vec::new();
        for n in 0..7 {
            let body = envelope(
                "contact_center.engagement_note_added",
                1_763_715_600_000 + n,
                json!({"engagement_id": id, "note_id": format!("n{n}"), "note": "x".repeat(5000 * (n as usize % 2))}),
            );
            assert_eq!(s.post_webhook(&body).await.status(), 200);
            sent.push(body);
        }
        // Pages of 3 with the cursor: every event once, in arrival order, each with its body.
        let mut seen = Vec::new();
        let mut cursor = String::new();
        for _ in 0..10 {
            let page = s
                .get_json(&format!(
                    "/api/v1/events?engagement_id={id}&limit=3{cursor}"
                ))
                .await;
            seen.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), sent.len(), "{backend:?}");
        for (event, body) in seen.iter().zip(&sent) {
            assert_eq!(event["bytes"], body.len(), "{event}");
            let shown = event["body"].as_str().unwrap();
            if body.len() > 4096 {
                assert_eq!(event["body_truncated"], true);
                assert_eq!(shown.len(), 4096);
                // The event itself shows all of it.
                let whole = s.get_json(&format!("/api/v1/events/{}", event["id"])).await;
                assert_eq!(whole["body"].as_str().unwrap().as_bytes(), &body[..]);
                assert_eq!(whole["body_truncated"], false);
            } else {
                assert_eq!(shown.as_bytes(), &body[..]);
            }
            // Times are RFC 3339.
            assert!(
                chrono::DateTime::parse_from_rfc3339(event["received_at"].as_str().unwrap())
                    .is_ok(),
                "{event}"
            );
        }
        let ids: Vec<i64> = seen.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // A cursor this API did not hand out is refused; so is an event that does not exist.
        let bad = s.get("/api/v1/events?cursor=not-a-cursor").await;
        assert_eq!(bad.status(), 400);
        assert_eq!(s.get("/api/v1/events/999999999").await.status(), 404);
        assert_eq!(s.get("/api/v1/events/abc").await.status(), 400);
        s.shutdown().await;
    }
}
