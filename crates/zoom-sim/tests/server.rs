//! The REST simulator over plain HTTP: OAuth, bearer checks, pagination against the ground truth, page-token expiry,
//! window limits, rate limits and error bodies (reference §1.1, §1.2, §5.1, §6).

use std::collections::{BTreeSet, HashSet};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use zoom_sim::{generate, iso_time, GeneratorConfig, Scenario, SimServer, SimServerConfig};

const ACCOUNT: &str = zoom_sim::generator::DEFAULT_ACCOUNT_ID;

fn scenario(engagements: usize) -> Scenario {
    generate(&GeneratorConfig {
        seed: 42,
        engagements,
        ..GeneratorConfig::default()
    })
}

async fn start(config: SimServerConfig, scenario: &Scenario) -> (SimServer, Client) {
    let server = SimServer::start(config, scenario).await.expect("start");
    (server, Client::new())
}

async fn token_response(
    client: &Client,
    server: &SimServer,
    config: &SimServerConfig,
) -> reqwest::Response {
    client
        .post(format!("{}/oauth/token", server.base_url()))
        .query(&[
            ("grant_type", "account_credentials"),
            ("account_id", config.account_id.as_str()),
        ])
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .send()
        .await
        .expect("token request")
}

async fn token(client: &Client, server: &SimServer, config: &SimServerConfig) -> String {
    let response = token_response(client, server, config).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn get(
    client: &Client,
    server: &SimServer,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client
        .get(format!("{}/v2{path}", server.base_url()))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// The whole scenario in one window: from the first start to the last.
fn full_window(scenario: &Scenario) -> (String, String) {
    let starts = scenario.truth.engagements.iter().map(|e| e.start_time_ms);
    let from = starts.clone().min().expect("engagements");
    let to = starts.max().expect("engagements");
    (iso_time(from), iso_time(to))
}

/// Walks every page of a query; returns the engagements in the order served and the page count.
async fn walk(
    client: &Client,
    server: &SimServer,
    token: &str,
    query: &[(&str, &str)],
) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let mut q = query.to_vec();
        if !next.is_empty() {
            q.push(("next_page_token", next.as_str()));
        }
        let (status, _, body) = get(client, server, token, "/contact_center/engagements", &q).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            // A fast walk outruns the MEDIUM per-second limit; wait for the next window as a client must.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        all.extend(body["engagements"].as_array().cloned().unwrap_or_default());
        next = body["next_page_token"].as_str().expect("token").to_owned();
        if next.is_empty() {
            return (all, pages);
        }
        assert!(pages < 1000, "pagination does not end");
    }
}

#[tokio::test]
async fn oauth_issues_tokens_and_refuses_bad_requests() {
    let scenario = scenario(3);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let url = format!("{}/oauth/token", server.base_url());

    let response = token_response(&client, &server, &config).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["api_url"], server.base_url());
    assert!(body["scope"].as_str().is_some_and(|s| !s.is_empty()));
    let first = body["access_token"].as_str().expect("token").to_owned();

    // Form body instead of the query string; a second token does not revoke the first.
    let response = client
        .post(&url)
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=account_credentials&account_id={ACCOUNT}"
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.expect("json");
    assert_ne!(second["access_token"].as_str(), Some(first.as_str()));
    for t in [
        first.as_str(),
        second["access_token"].as_str().expect("token"),
    ] {
        let (status, _, _) = get(&client, &server, t, "/contact_center/engagements", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }

    let query = [
        ("grant_type", "account_credentials"),
        ("account_id", ACCOUNT),
    ];
    let response = client
        .post(&url)
        .query(&query)
        .basic_auth(&config.client_id, Some("wrong"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
    );

    let response = client.post(&url).query(&query).send().await.expect("send");
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no credentials"
    );

    for query in [
        [
            ("grant_type", "account_credentials"),
            ("account_id", "other"),
        ],
        [
            ("grant_type", "client_credentials"),
            ("account_id", ACCOUNT),
        ],
    ] {
        let response = client
            .post(&url)
            .query(&query)
            .basic_auth(&config.client_id, Some(&config.client_secret))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert!(
            body["reason"].is_string() && body["error"].is_string(),
            "{body}"
        );
    }

    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 2);
    assert_eq!(stats.token_requests, 6);
    server.shutdown().await;
}

#[tokio::test]
async fn rest_requires_a_valid_bearer_token() {
    let scenario = scenario(3);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let url = format!("{}/v2/contact_center/engagements", server.base_url());

    let response = client.get(&url).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"code": 124, "message": "Invalid access token."})
    );
    let (status, _, body) = get(
        &client,
        &server,
        "made-up",
        "/contact_center/engagements",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 124);

    let token = token(&client, &server, &config).await;
    // Not in the query string: Zoom accepts the header only.
    let response = client
        .get(&url)
        .query(&[("access_token", token.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let (status, _, body) = get(&client, &server, &token, "/contact_center/engagements", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timezone"], "UTC");

    server.expire_all_tokens();
    let (status, _, body) = get(&client, &server, &token, "/contact_center/engagements", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"code": 124, "message": "Access token is expired."})
    );
    let fresh = self::token(&client, &server, &config).await;
    let (status, _, _) = get(&client, &server, &fresh, "/contact_center/engagements", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.stats().unauthorized, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn pagination_walks_every_engagement_exactly_once() {
    let scenario = scenario(120);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;

    let (from, to) = full_window(&scenario);
    let (items, pages) = walk(
        &client,
        &server,
        &token,
        &[("from", &from), ("to", &to), ("page_size", "7")],
    )
    .await;
    assert_eq!(pages, 120usize.div_ceil(7));
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|e| e["engagement_id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        HashSet::<&&str>::from_iter(&ids).len(),
        "no repeats"
    );
    let truth_ids: BTreeSet<&str> = scenario
        .truth
        .engagements
        .iter()
        .map(|e| e.engagement_id.as_str())
        .collect();
    assert_eq!(BTreeSet::from_iter(ids.iter().copied()), truth_ids);
    let order: Vec<(&str, &str)> = items
        .iter()
        .map(|e| {
            (
                e["start_time"].as_str().unwrap_or(""),
                e["engagement_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "ordered by start_time then id"
    );

    // Every item carries the reference's fields and agrees with the truth.
    for item in &items {
        let id = item["engagement_id"].as_str().expect("id");
        let truth = scenario.truth.engagement(id).expect("known id");
        assert_eq!(item["start_time"], iso_time(truth.start_time_ms));
        assert_eq!(item["end_time"], iso_time(truth.end_time_ms));
        assert_eq!(
            item["duration"],
            (truth.end_time_ms - truth.start_time_ms) / 1000
        );
        assert_eq!(item["direction"], truth.direction.as_str());
        assert_eq!(item["channels"][0]["channel"], truth.channel.as_str());
        assert!(item["channels"][0]["channel_source"].is_string());
        let set = |key: &str, field: &str| -> BTreeSet<String> {
            item[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v[field].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(set("queues", "cc_queue_id"), truth.queue_ids);
        assert_eq!(set("agents", "user_id"), truth.agent_ids);
        assert_eq!(set("dispositions", "disposition_id"), truth.disposition_ids);
        assert_eq!(
            set("notes", "note_id"),
            truth.notes.keys().cloned().collect()
        );
        assert!(item["consumers"][0]["consumer_id"].is_string());
        assert!(item["transfer_count"].is_u64());
        for note in item["notes"].as_array().into_iter().flatten() {
            assert!(note["user_id"].is_string() && note["last_modified_time"].is_string());
        }
    }

    // A sub-window and a filter give exactly the matching truth.
    let mid = &scenario.truth.engagements[scenario.truth.engagements.len() / 2];
    let lo = mid.start_time_ms - 30 * 60 * 1000;
    let hi = mid.start_time_ms + 30 * 60 * 1000;
    let queue = mid.queue_ids.iter().next().expect("a queue").clone();
    let (items, _) = walk(
        &client,
        &server,
        &token,
        &[
            ("from", &iso_time(lo)),
            ("to", &iso_time(hi)),
            ("queue_id", &queue),
            ("page_size", "3"),
        ],
    )
    .await;
    let got: BTreeSet<&str> = items
        .iter()
        .filter_map(|e| e["engagement_id"].as_str())
        .collect();
    let want: BTreeSet<&str> = scenario
        .truth
        .engagements
        .iter()
        .filter(|e| (lo..=hi).contains(&e.start_time_ms) && e.queue_ids.contains(&queue))
        .map(|e| e.engagement_id.as_str())
        .collect();
    assert!(want.contains(mid.engagement_id.as_str()));
    assert_eq!(got, want);

    // The top level of a page.
    let (status, _, body) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &[("from", &from), ("to", &to)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["page_size"], 10);
    assert_eq!(body["total_records"], 120);
    assert_eq!(body["from"], from.as_str());
    assert_eq!(body["to"], to.as_str());
    assert_eq!(body["engagements"].as_array().map(Vec::len), Some(10));
    server.shutdown().await;
}

#[tokio::test]
async fn page_tokens_expire_and_are_bound_to_the_query() {
    let scenario = scenario(30);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let (from, to) = full_window(&scenario);
    let base = [
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("page_size", "5"),
    ];
    let invalid = json!({"code": 300, "message": "The next page token is invalid or expired."});

    let (_, _, first) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &base,
    )
    .await;
    let next = first["next_page_token"].as_str().expect("token").to_owned();
    assert!(!next.is_empty());

    // Reusable with the same parameters, refused with others.
    let mut same = base.to_vec();
    same.push(("next_page_token", &next));
    let (status, _, page) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &same,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(page["engagements"][0], first["engagements"][0]);
    let mut other = same.clone();
    other.push(("direction", "outbound"));
    let (status, _, body) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &other,
    )
    .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid.clone()));

    server.expire_all_page_tokens();
    let (status, _, body) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &same,
    )
    .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid.clone()));
    let mut made_up = base.to_vec();
    made_up.push(("next_page_token", "nope"));
    let (status, _, body) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements",
        &made_up,
    )
    .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid));
    server.shutdown().await;
}

#[tokio::test]
async fn windows_and_page_sizes_are_validated() {
    let scenario = scenario(3);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let list = "/contact_center/engagements";

    for query in [
        vec![("from", "2026-10-01"), ("to", "2026-11-21")],
        vec![
            ("from", "2026-10-01T00:00:00Z"),
            ("to", "2026-11-01T00:00:01Z"),
        ],
        vec![("from", "2026-11-01")],
        vec![("from", "2026-11-21"), ("to", "2026-11-20")],
        vec![("from", "21/11/2026"), ("to", "2026-11-21")],
        vec![("page_size", "101")],
        vec![("page_size", "ten")],
        vec![("direction", "sideways")],
    ] {
        let (status, _, body) = get(&client, &server, &token, list, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(body["code"], 300, "{query:?}");
        assert!(body["message"].is_string());
    }
    // Exactly one month and a date-only pair are fine.
    for query in [
        vec![
            ("from", "2026-10-21T00:00:00Z"),
            ("to", "2026-11-21T00:00:00Z"),
        ],
        vec![
            ("from", "2026-11-21"),
            ("to", "2026-11-21"),
            ("page_size", "100"),
        ],
    ] {
        let (status, _, body) = get(&client, &server, &token, list, &query).await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn get_engagement_and_unknown_paths() {
    let scenario = scenario(5);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let id = scenario.truth.engagements[0].engagement_id.clone();

    let (status, _, body) = get(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{id}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["engagement_id"], id.as_str());
    assert!(body["events"].is_array());

    let (status, _, body) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements/doesNotExist000000000A",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": 2901, "message": "Engagement does not exist"})
    );

    let (status, _, body) = get(&client, &server, &token, "/contact_center/nothing", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 404);
    let response = client
        .delete(format!(
            "{}/v2/contact_center/engagements",
            server.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}

#[tokio::test]
async fn bursts_get_per_second_429s() {
    let scenario = scenario(5);
    let config = SimServerConfig {
        medium_per_second: 5,
        light_per_second: 8,
        ..SimServerConfig::default()
    };
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let id = scenario.truth.engagements[0].engagement_id.clone();

    for (path, category, cap) in [
        ("/contact_center/engagements".to_owned(), "Medium", 5),
        (format!("/contact_center/engagements/{id}"), "Light", 8),
    ] {
        let url = format!("{}/v2{path}", server.base_url());
        let burst = (0..30).map(|_| {
            let request = client.get(&url).bearer_auth(&token);
            async move {
                let response = request.send().await.expect("request");
                let status = response.status();
                let headers = response.headers().clone();
                (
                    status,
                    headers,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        });
        let results = join_all(burst).await;
        let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
        let limited: Vec<_> = results
            .iter()
            .filter(|r| r.0 == StatusCode::TOO_MANY_REQUESTS)
            .collect();
        assert_eq!(ok + limited.len(), 30);
        // The burst may straddle a second boundary, so at most two windows' worth succeed.
        assert!(ok >= 1 && ok <= 2 * cap, "{category}: {ok} succeeded");
        let (_, headers, body) = limited.first().expect("some 429s");
        assert_eq!(headers["x-ratelimit-category"], category);
        assert_eq!(headers["x-ratelimit-type"], "QPS");
        assert_eq!(
            *body,
            json!({"code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."})
        );
    }
    assert!(server.stats().rate_limited >= 30 - 2 * 5 + 30 - 2 * 8);
    server.shutdown().await;
}

#[tokio::test]
async fn daily_limit_answers_with_retry_after_midnight() {
    let scenario = scenario(3);
    let config = SimServerConfig {
        medium_per_day: Some(3),
        ..SimServerConfig::default()
    };
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let list = "/contact_center/engagements";
    for _ in 0..3 {
        let (status, _, _) = get(&client, &server, &token, list, &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = get(&client, &server, &token, list, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["x-ratelimit-category"], "Medium");
    assert_eq!(headers["x-ratelimit-type"], "Daily-limit");
    assert_eq!(headers["x-ratelimit-limit"], "3");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let retry = headers["retry-after"].to_str().expect("ascii");
    let retry = chrono::DateTime::parse_from_rfc3339(retry).expect("ISO-8601 Retry-After");
    assert!(retry.to_rfc3339().contains("T00:00:00"));
    assert!(retry > chrono::Utc::now());
    assert_eq!(body["code"], 429);
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("maximum daily rate limit")));
    // LIGHT endpoints are not capped.
    let id = &scenario.truth.engagements[0].engagement_id;
    let (status, _, _) = get(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{id}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}

/// `join_all` without a futures dependency: spawn each request, then await them in order.
async fn join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}
