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

fn keys_cli(args: &[&str], db_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .args(args)
        .env_remove("ZCC_BRIDGE_CONFIG")
        .env("ZCC_BRIDGE_STORAGE__DATABASE", db_url)
        .env("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", SECRET)
        .output()
        .expect("run zcc-bridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_api_keys_made_by_the_cli_open_what_their_role_allows() {
    for backend in backends() {
        let mut s = TestServer::start(&backend).await;
        let url = s.db.url.clone();
        let create = |role: &str| {
            let out = keys_cli(
                &["--json", "keys", "create", "--name", role, "--role", role],
                &url,
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let created: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(created["role"], role);
            created["key"].as_str().expect("the key").to_string()
        };
        let (read, operator, admin) = (create("read_only"), create("operator"), create("admin"));
        let client = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
            let mut request = client.request(method, s.url(path)).bearer_auth(key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { request.send().await.expect("sent").status().as_u16() }
        };
        let get = reqwest::Method::GET;
        let post = reqwest::Method::POST;
        let replay = json!({"sink": "nowhere", "dead": true});
        let revoke = json!({"all": true});
        for key in [&read, &operator, &admin] {
            assert_eq!(
                call(get.clone(), "/api/v1/engagements", key, None).await,
                200
            );
        }
        // An operator replays; a read-only key may not. Revoking links is the admin's.
        assert_eq!(
            call(
                post.clone(),
                "/api/v1/deliveries/replay",
                &read,
                Some(replay.clone())
            )
            .await,
            403
        );
        assert_eq!(
            call(
                post.clone(),
                "/api/v1/deliveries/replay",
                &operator,
                Some(replay.clone())
            )
            .await,
            200
        );
        assert_eq!(
            call(
                post.clone(),
                "/api/v1/media/permalinks/revoke",
                &operator,
                Some(revoke.clone())
            )
            .await,
            403
        );
        assert_eq!(
            call(
                post.clone(),
                "/api/v1/media/permalinks/revoke",
                &admin,
                Some(revoke.clone())
            )
            .await,
            200
        );
        // A key with a wrong secret, or a made-up one, is no key.
        // zcb_<12 hex digits>_<secret> (the secret may hold _ too).
        let id_part = &read[..16];
        let secret_of = |key: &str| key[17..].to_string();
        for wrong in [
            format!("{id_part}_AAAA"),
            "zcb_000000000000_x".to_string(),
            read[..read.len() - 1].to_string(),
        ] {
            assert_eq!(
                call(get.clone(), "/api/v1/engagements", &wrong, None).await,
                401,
                "{wrong}"
            );
        }

        // The list shows each key's role and use, never a secret.
        let out = keys_cli(&["--json", "keys", "list"], &url);
        assert!(out.status.success());
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        for key in [&read, &operator, &admin] {
            assert!(
                !listed.contains(&secret_of(key)),
                "a secret is listed: {listed}"
            );
        }
        let keys: Value = serde_json::from_str(&listed).expect("json");
        let keys = keys["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 3);
        assert!(
            keys.iter().all(|k| k["last_used_at"].is_string()),
            "{keys:?}"
        );

        // A revoked key stops working at once; revoking it again is refused.
        let read_id = id_part.trim_start_matches("zcb_");
        let out = keys_cli(&["keys", "revoke", read_id], &url);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            call(get.clone(), "/api/v1/engagements", &read, None).await,
            401
        );
        let again = keys_cli(&["keys", "revoke", read_id], &url);
        assert_eq!(again.status.code(), Some(1));
        // The bootstrap admin token still works.
        assert_eq!(
            call(get.clone(), "/api/v1/engagements", ADMIN_TOKEN, None).await,
            200
        );
        s.shutdown().await;
    }
}
