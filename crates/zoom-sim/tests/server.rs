//! The REST simulator over plain HTTP: OAuth, bearer checks, pagination against the ground truth, page-token expiry,
//! window limits, rate limits and error bodies (reference §1.1, §1.2, §5.1, §6); recordings, inbox messages, notes
//! and their transcript rule (§1.5–§1.7, §1.9); file downloads and their faults; injected 5xx/429s.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use zoom_sim::{
    generate, iso_time, GeneratorConfig, RateLabel, Scenario, SimServer, SimServerConfig,
};

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
    walk_list(
        client,
        server,
        token,
        "/contact_center/engagements",
        "engagements",
        query,
    )
    .await
}

/// `get`, waiting out per-second 429s (a fast test outruns the MEDIUM limit, as a client must handle).
async fn get_patiently(
    client: &Client,
    server: &SimServer,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    loop {
        let answer = get(client, server, token, path, query).await;
        if answer.0 != StatusCode::TOO_MANY_REQUESTS {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Walks every page of the list at `path`; returns the `field` items in the order served and the page count.
async fn walk_list(
    client: &Client,
    server: &SimServer,
    token: &str,
    path: &str,
    field: &str,
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
        let (status, _, body) = get_patiently(client, server, token, path, &q).await;
        assert_eq!(status, StatusCode::OK, "{path} {q:?}: {body}");
        pages += 1;
        all.extend(body[field].as_array().cloned().unwrap_or_default());
        let total = body["total_records"].as_u64().expect("total_records");
        assert!(total >= all.len() as u64, "{body}");
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

// ---------------------------------------------------------------------------------------------------------------------
// Recordings, inbox messages, notes (reference §1.5–§1.7)

/// `payload.object` of every `contact_center.{name}` event of the scenario.
fn objects<'a>(scenario: &'a Scenario, name: &str) -> Vec<&'a Value> {
    let name = format!("contact_center.{name}");
    scenario
        .events
        .iter()
        .filter(|e| e.event() == name)
        .filter_map(|e| e.object())
        .collect()
}

fn ms(iso: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

/// Every transcript of the ground truth, `(kind, id)`.
fn truth_transcripts(scenario: &Scenario) -> BTreeSet<(String, String)> {
    scenario
        .truth
        .engagements
        .iter()
        .flat_map(|e| e.transcripts.iter().cloned())
        .collect()
}

fn ids<'a>(items: &'a [Value], field: &str) -> Vec<&'a str> {
    items.iter().filter_map(|i| i[field].as_str()).collect()
}

#[tokio::test]
async fn recordings_list_by_start_or_end_time_and_page_like_zoom() {
    let scenario = scenario(120);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let completed = objects(&scenario, "recording_completed");
    assert!(completed.len() > 30, "{}", completed.len());
    let starts: Vec<i64> = completed
        .iter()
        .map(|o| ms(&o["recording_start_time_ms"]))
        .collect();
    let (from, to) = (
        iso_time(*starts.iter().min().expect("recordings")),
        iso_time(*starts.iter().max().expect("recordings")),
    );
    let list = "/contact_center/recordings";

    // The whole day on one page of the maximum size, then the same through small pages.
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        list,
        &[("from", &from), ("to", &to), ("page_size", "300")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["page_size"], 300);
    assert_eq!(body["next_page_token"], "");
    assert_eq!(body["total_records"], completed.len());
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some(from.as_str()), Some(to.as_str()))
    );
    let one_page = body["recordings"].as_array().cloned().unwrap_or_default();
    let (items, pages) = walk_list(
        &client,
        &server,
        &token,
        list,
        "recordings",
        &[("from", &from), ("to", &to), ("page_size", "7")],
    )
    .await;
    assert_eq!(pages, completed.len().div_ceil(7));
    assert_eq!(items, one_page, "pages concatenate to the single page");
    let truth_ids: BTreeSet<&str> = scenario
        .truth
        .engagements
        .iter()
        .flat_map(|e| e.recording_ids.iter().map(String::as_str))
        .collect();
    let served = ids(&items, "recording_id");
    assert_eq!(served.len(), truth_ids.len(), "no repeats");
    assert_eq!(BTreeSet::from_iter(served), truth_ids);
    let order: Vec<(i64, &str)> = items
        .iter()
        .map(|r| {
            (
                ms(&r["recording_start_time"]),
                r["recording_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "by start time, then id"
    );

    // Every item has the reference's fields; transcript_url only where the transcript completed.
    let transcripts = truth_transcripts(&scenario);
    for r in &items {
        for key in [
            "recording_id",
            "cc_queue_id",
            "queue_name",
            "download_url",
            "playback_url",
            "recording_start_time",
            "recording_end_time",
            "user_id",
            "display_name",
            "user_email",
            "channel",
            "direction",
            "owner_id",
            "owner_name",
            "engagement_id",
            "flow_name",
            "flow_id",
        ] {
            assert!(r[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {r}");
        }
        assert!(r["recording_duration"].is_u64());
        // Automatic recordings belong to the queue, on-demand ones to the agent who started them.
        match r["recording_type"].as_str() {
            Some("automatic") => {
                assert_eq!(r["owner_type"], "queue");
                assert_eq!(r["owner_id"], r["cc_queue_id"]);
            }
            Some("on_demand") => {
                assert_eq!(r["owner_type"], "user");
                assert_eq!(r["owner_id"], r["user_id"]);
            }
            other => panic!("recording_type {other:?}"),
        }
        // The deprecated top-level consumer fields repeat the first consumer.
        assert_eq!(r["consumer_name"], r["consumers"][0]["consumer_name"]);
        assert!(r["consumers"][0]["consumer_name"].is_string(), "{r}");
        let id = r["recording_id"].as_str().expect("id");
        let engagement = scenario
            .truth
            .engagement(r["engagement_id"].as_str().expect("engagement"))
            .expect("known engagement");
        assert!(engagement.recording_ids.contains(id));
        assert_eq!(r["direction"], engagement.direction.as_str());
        assert_eq!(r["channel"], engagement.channel.as_str());
        assert_eq!(
            r.get("transcript_url").is_some(),
            transcripts.contains(&("recording".to_owned(), id.to_owned())),
            "{r}"
        );
    }
    assert!(items.iter().any(|r| r.get("transcript_url").is_some()));
    assert!(items.iter().any(|r| r.get("transcript_url").is_none()));

    // A window by end time selects and orders by end time; by start time it selects on start time.
    let mid = ms(&items[items.len() / 2]["recording_end_time"]);
    let (lo, hi) = (mid - 20 * 60 * 1000, mid + 20 * 60 * 1000);
    for (date_type, webhook_key) in [
        ("recording_end_time", "recording_end_time_ms"),
        ("recording_start_time", "recording_start_time_ms"),
    ] {
        let (got, _) = walk_list(
            &client,
            &server,
            &token,
            list,
            "recordings",
            &[
                ("query_date_type", date_type),
                ("from", &iso_time(lo)),
                ("to", &iso_time(hi)),
                ("page_size", "4"),
            ],
        )
        .await;
        let want: BTreeSet<&str> = completed
            .iter()
            // REST times are whole seconds; the webhooks' have milliseconds.
            .filter(|o| (lo..=hi).contains(&(ms(&o[webhook_key]) / 1000 * 1000)))
            .filter_map(|o| o["recording_id"].as_str())
            .collect();
        assert!(!want.is_empty());
        assert_eq!(
            BTreeSet::from_iter(ids(&got, "recording_id")),
            want,
            "{date_type}"
        );
        let times: Vec<(i64, &str)> = got
            .iter()
            .map(|r| (ms(&r[date_type]), r["recording_id"].as_str().unwrap_or("")))
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{date_type} order");
    }

    // The channel filter.
    let (video, _) = walk_list(
        &client,
        &server,
        &token,
        list,
        "recordings",
        &[
            ("from", &from),
            ("to", &to),
            ("channel", "video"),
            ("page_size", "300"),
        ],
    )
    .await;
    let want = completed.iter().filter(|o| o["channel"] == "video").count();
    assert!(want > 0);
    assert_eq!(video.len(), want);
    assert!(video.iter().all(|r| r["channel"] == "video"));

    // The default window is the past 30 days.
    let (status, _, body) = get_patiently(&client, &server, &token, list, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ms(&body["to"]) - ms(&body["from"]), 30 * 24 * 3600 * 1000);
    assert_eq!(body["page_size"], 30);

    // Validation: page size, window, enums; a token is bound to its endpoint.
    for query in [
        vec![("page_size", "301")],
        vec![("page_size", "0")],
        vec![("query_date_type", "created_time")],
        vec![("channel", "messaging")],
        vec![("from", "2026-10-01"), ("to", "2026-11-21")],
        vec![("from", "2026-11-01")],
    ] {
        let (status, _, body) = get_patiently(&client, &server, &token, list, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(body["code"], 300, "{query:?}");
    }
    let (_, _, first) = get_patiently(
        &client,
        &server,
        &token,
        list,
        &[("from", &from), ("to", &to), ("page_size", "2")],
    )
    .await;
    let next = first["next_page_token"].as_str().expect("token").to_owned();
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        "/contact_center/engagements/notes",
        &[("next_page_token", &next)],
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );
    assert!(server.stats().list_recordings >= 12);
    server.shutdown().await;
}

#[tokio::test]
async fn engagement_recordings_and_notes() {
    let scenario = scenario(40);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;

    let recorded = scenario
        .truth
        .engagements
        .iter()
        .max_by_key(|e| e.recording_ids.len())
        .expect("engagements");
    assert!(!recorded.recording_ids.is_empty());
    let path = format!(
        "/contact_center/engagements/{}/recordings",
        recorded.engagement_id
    );
    let (items, pages) = walk_list(
        &client,
        &server,
        &token,
        &path,
        "recordings",
        &[("page_size", "1")],
    )
    .await;
    assert_eq!(pages, recorded.recording_ids.len());
    assert_eq!(
        BTreeSet::from_iter(ids(&items, "recording_id").into_iter().map(str::to_owned)),
        recorded.recording_ids
    );
    let (status, _, body) =
        get_patiently(&client, &server, &token, &path, &[("page_size", "301")]).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    let chat = scenario
        .truth
        .engagements
        .iter()
        .find(|e| e.channel == "messaging")
        .expect("a messaging engagement");
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        &format!(
            "/contact_center/engagements/{}/recordings",
            chat.engagement_id
        ),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recordings"], json!([]));
    assert_eq!(body["total_records"], 0);
    assert_eq!(body["next_page_token"], "");
    assert_eq!(body["page_size"], 30);

    let unknown = "doesNotExist000000000A";
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{unknown}/recordings"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["code"],
        zoom_sim::server::ENGAGEMENT_RECORDINGS_NOT_FOUND_CODE
    );

    // All notes, the latest version of each, exactly the truth's.
    let before = server.stats();
    let (notes, _) = walk_list(
        &client,
        &server,
        &token,
        "/contact_center/engagements/notes",
        "notes",
        &[("page_size", "5")],
    )
    .await;
    let stats = server.stats();
    assert!(stats.list_notes > before.list_notes);
    assert_eq!(
        stats.get_engagement, before.get_engagement,
        "/engagements/notes is not an engagement id"
    );
    let served: BTreeMap<(String, String), String> = notes
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
            ((s("engagement_id"), s("note_id")), s("note"))
        })
        .collect();
    assert_eq!(served.len(), notes.len(), "no repeats");
    let truth: BTreeMap<(String, String), String> = scenario
        .truth
        .engagements
        .iter()
        .flat_map(|e| {
            e.notes
                .iter()
                .map(|(id, text)| ((e.engagement_id.clone(), id.clone()), text.clone()))
        })
        .collect();
    assert!(truth.len() > 10);
    assert_eq!(served, truth);
    for n in &notes {
        let engagement = scenario
            .truth
            .engagement(n["engagement_id"].as_str().expect("id"))
            .expect("known");
        assert_eq!(n["channel"], engagement.channel.as_str());
        for key in ["channel_source", "last_modified_time", "user_id"] {
            assert!(n[key].is_string(), "{key}: {n}");
        }
    }
    let times: Vec<(&str, &str)> = notes
        .iter()
        .map(|n| {
            (
                n["last_modified_time"].as_str().unwrap_or(""),
                n["note_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "by last modification, then id"
    );
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        "/contact_center/engagements/notes",
        &[("page_size", "301")],
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    // One engagement's notes.
    let noted = scenario
        .truth
        .engagements
        .iter()
        .max_by_key(|e| e.notes.len())
        .expect("engagements");
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{}/notes", noted.engagement_id),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let texts: BTreeMap<String, String> = body["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            assert_eq!(n["engagement_id"], noted.engagement_id.as_str());
            (
                n["note_id"].as_str().unwrap_or_default().to_owned(),
                n["note"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(texts, noted.notes);
    assert_eq!(body["total_records"], noted.notes.len());
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{unknown}/notes"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], zoom_sim::server::ENGAGEMENT_NOT_FOUND_CODE);
    server.shutdown().await;
}

#[tokio::test]
async fn inbox_messages_follow_the_spec_and_the_transcript_rule() {
    let scenario = scenario(120);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let list = "/contact_center/inboxes/messages";
    let received = objects(&scenario, "inbox_message_received");
    assert!(received.len() >= 3, "{}", received.len());
    let created: Vec<i64> = received.iter().map(|o| ms(&o["date_time_ms"])).collect();
    let (from, to) = (
        iso_time(*created.iter().min().expect("voicemails")),
        iso_time(*created.iter().max().expect("voicemails")),
    );
    let day = [("from", from.as_str()), ("to", to.as_str())];

    let (items, _) = walk_list(
        &client,
        &server,
        &token,
        list,
        "messages",
        &[day[0], day[1], ("page_size", "2")],
    )
    .await;
    let truth_ids: BTreeSet<&str> = scenario
        .truth
        .engagements
        .iter()
        .flat_map(|e| e.voicemail_ids.iter().map(String::as_str))
        .collect();
    assert_eq!(ids(&items, "message_id").len(), truth_ids.len());
    assert_eq!(BTreeSet::from_iter(ids(&items, "message_id")), truth_ids);
    let transcripts = truth_transcripts(&scenario);
    for m in &items {
        for key in [
            "message_id",
            "inbox_id",
            "inbox_name",
            "engagement_id",
            "created_at",
            "flow_id",
            "flow_name",
            "cci_queue_id",
            "queue_name",
            "download_url",
            "playback_url",
            "consumer_number",
            "consumer_id",
            "consumer_display_name",
        ] {
            assert!(m[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {m}");
        }
        assert!(
            m.get("cc_queue_id").is_none(),
            "this endpoint spells it cci_queue_id"
        );
        assert_eq!(m["message_type"], "voicemail");
        assert_eq!(m["status"], "normal");
        assert!(m["message_duration"].as_u64().is_some_and(|d| d > 0));
        let id = m["message_id"].as_str().expect("id");
        assert_eq!(
            m.get("transcript_url").is_some(),
            transcripts.contains(&("voicemail".to_owned(), id.to_owned())),
            "{m}"
        );
    }
    let created: Vec<(&str, &str)> = items
        .iter()
        .map(|m| {
            (
                m["created_at"].as_str().unwrap_or(""),
                m["message_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] < w[1]),
        "by created_at, then id"
    );

    // Filters.
    let first = &items[0];
    for key in ["inbox_id", "engagement_id", "consumer_number"] {
        let value = first[key].as_str().expect("value");
        let (got, _) = walk_list(
            &client,
            &server,
            &token,
            list,
            "messages",
            &[day[0], day[1], (key, value)],
        )
        .await;
        assert!(ids(&got, "message_id").contains(&first["message_id"].as_str().unwrap_or("")));
        assert!(got.iter().all(|m| m[key] == value), "{key}");
    }
    for (query, expect_empty) in [
        (vec![("message_type", "voicemail")], false),
        (vec![("status", "normal")], false),
        (vec![("status", "deleted")], true),
    ] {
        let mut q = day.to_vec();
        q.extend(query.iter().copied());
        let (status, _, body) = get_patiently(&client, &server, &token, list, &q).await;
        assert_eq!(status, StatusCode::OK, "{query:?}");
        assert_eq!(
            body["messages"].as_array().is_some_and(Vec::is_empty),
            expect_empty,
            "{query:?}"
        );
    }
    for query in [
        vec![("message_type", "sms")],
        vec![("status", "archived")],
        vec![("page_size", "301")],
        vec![("from", "2026-09-01"), ("to", "2026-11-21")],
    ] {
        let (status, _, body) = get_patiently(&client, &server, &token, list, &query).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(300)),
            "{query:?}"
        );
    }
    let (status, _, body) =
        get_patiently(&client, &server, &token, list, &[("page_size", "300")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["page_size"], 300);
    assert!(server.stats().list_inbox_messages >= 10);
    server.shutdown().await;
}

#[tokio::test]
async fn engagements_carry_transcripts_and_an_event_timeline() {
    let scenario = scenario(60);
    let config = SimServerConfig::default();
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let (from, to) = full_window(&scenario);
    let (items, _) = walk(
        &client,
        &server,
        &token,
        &[("from", &from), ("to", &to), ("page_size", "100")],
    )
    .await;
    let transcripts = truth_transcripts(&scenario);
    let mut with_transcript = 0;
    for item in &items {
        let id = item["engagement_id"].as_str().expect("id");
        let channel = item["channels"][0]["channel"].as_str().expect("channel");
        let expected = transcripts.contains(&(channel.to_owned(), id.to_owned()));
        assert_eq!(item.get("transcript_url").is_some(), expected, "{item}");
        if expected {
            with_transcript += 1;
            assert!(matches!(channel, "messaging" | "email"));
            let url = item["transcript_url"].as_str().expect("url");
            // As the transcript webhook announced it: a file for messaging, the messages API for e-mail.
            let expected = if channel == "email" {
                zoom_sim::urls::email_transcript(&scenario.api_base, id)
            } else {
                zoom_sim::urls::engagement_transcript(&scenario.api_base, id)
            };
            assert_eq!(url, expected);
        }
        assert!(item["flows"][0]["flow_id"].is_string());
    }
    assert!(with_transcript > 0);

    // get-engagement fills events[] from the engagement's webhooks.
    let transferred = scenario
        .truth
        .engagements
        .iter()
        .find(|e| e.agent_ids.len() >= 2)
        .expect("a transfer");
    let (status, _, body) = get_patiently(
        &client,
        &server,
        &token,
        &format!("/contact_center/engagements/{}", transferred.engagement_id),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = body["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    for expected in ["Start", "Agent Ringing", "Agent Accept", "Transfer", "End"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    for event in events {
        for key in [
            "start_time",
            "channel",
            "channel_source",
            "direction",
            "event_type",
        ] {
            assert!(event[key].is_string(), "{key}: {event}");
        }
        assert!(event["duration"].is_u64());
    }
    let accepted: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "Agent Accept")
        .filter_map(|e| e["user_id"].as_str())
        .collect();
    assert_eq!(
        accepted,
        transferred.agent_ids.iter().map(String::as_str).collect()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn truth_is_served_without_auth() {
    let scenario = scenario(5);
    let (server, client) = start(SimServerConfig::default(), &scenario).await;
    let response = client
        .get(format!("{}/sim/truth", server.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::to_value(&scenario.truth).expect("truth json")
    );
    assert_eq!(server.stats().truth_requests, 1);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Downloads (reference §1.5, §1.6, §1.9)

/// A scenario whose payload URLs point at the simulator serving it.
async fn serve_bound(config: SimServerConfig, engagements: usize) -> (Scenario, SimServer) {
    let bound = SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let scenario = generate(&GeneratorConfig {
        seed: 42,
        engagements,
        api_base: format!("{}/v2", bound.base_url()),
        ..GeneratorConfig::default()
    });
    let base = bound.base_url();
    let server = bound.serve(config, &scenario);
    assert_eq!(server.base_url(), base);
    (scenario, server)
}

/// GET an absolute URL with an optional bearer token and `Range`; the body may fail (a cut transfer).
async fn fetch(
    client: &Client,
    url: &str,
    token: Option<&str>,
    range: Option<&str>,
) -> (
    StatusCode,
    reqwest::header::HeaderMap,
    Result<axum::body::Bytes, reqwest::Error>,
) {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = request.send().await.expect("response head");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A file URL of the first `name` event whose object satisfies `pick`: its `field` when the webhook carries it
/// (transcripts), else the URL REST lists for it (recording and voicemail downloads, a recording's transcript),
/// formed from the scenario's REST base as Zoom forms it.
fn url_of(scenario: &Scenario, name: &str, field: &str, pick: impl Fn(&Value) -> bool) -> String {
    let object = objects(scenario, name)
        .into_iter()
        .find(|o| pick(o))
        .unwrap_or_else(|| panic!("no such {name}"));
    let text = |key: &str| object[key].as_str().unwrap_or_default();
    let base = &scenario.api_base;
    match (name, field) {
        ("recording_completed", "download_url") => {
            zoom_sim::urls::recording_download(base, text("recording_id"), text("channel"))
        }
        ("recording_completed", "transcript_url") => {
            zoom_sim::urls::recording_transcript(base, text("recording_id"), text("channel"))
        }
        ("inbox_message_received", "download_url") => {
            zoom_sim::urls::voicemail_download(base, text("message_id"))
        }
        _ => object[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} on {name}"))
            .to_owned(),
    }
}

#[tokio::test]
async fn downloads_need_a_token_and_serve_deterministic_ranged_bytes() {
    let config = SimServerConfig {
        media_bytes: 300_000,
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 40).await;
    let client = Client::new();
    let token = token(&client, &server, &config).await;
    let transcripts = truth_transcripts(&scenario);
    let has_transcript = |kind: &'static str, key: &'static str| {
        let transcripts = transcripts.clone();
        move |o: &Value| {
            transcripts.contains(&(kind.to_owned(), o[key].as_str().unwrap_or("").to_owned()))
        }
    };
    let recording = url_of(
        &scenario,
        "recording_completed",
        "download_url",
        has_transcript("recording", "recording_id"),
    );
    assert!(recording.starts_with(&format!(
        "{}/v2/contact_center/recording/download/",
        server.base_url()
    )));

    // 401 without (or with a bad) token.
    for bad in [None, Some("made-up")] {
        let (status, _, body) = fetch(&client, &recording, bad, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let body: Value = serde_json::from_slice(&body.expect("body")).expect("json");
        assert_eq!(body["code"], 124);
    }

    // The whole file, twice the same; playback serves the same bytes.
    let (status, headers, whole) = fetch(&client, &recording, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let whole = whole.expect("body");
    assert_eq!(whole.len(), 300_000);
    assert_eq!(header(&headers, "content-length"), "300000");
    assert!(matches!(
        header(&headers, "content-type"),
        "audio/mpeg" | "video/mp4"
    ));
    assert_eq!(header(&headers, "accept-ranges"), "bytes");
    let (_, _, again) = fetch(&client, &recording, Some(&token), None).await;
    assert_eq!(again.expect("body"), whole);
    let playback = recording.replace("/recording/download/", "/recording/playback/");
    let (status, _, played) = fetch(&client, &playback, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(played.expect("body"), whole);

    // Ranges.
    for (range, lo, hi) in [
        ("bytes=1000-1999", 1000, 2000),
        ("bytes=299990-", 299_990, 300_000),
        ("bytes=-16", 299_984, 300_000),
    ] {
        let (status, headers, part) = fetch(&client, &recording, Some(&token), Some(range)).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            format!("bytes {lo}-{}/300000", hi - 1)
        );
        assert_eq!(part.expect("body"), whole.slice(lo..hi), "{range}");
    }
    let (status, headers, _) =
        fetch(&client, &recording, Some(&token), Some("bytes=300000-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&headers, "content-range"), "bytes */300000");

    // Transcripts exist only if completed; voicemails and messaging transcripts too.
    let transcript = url_of(
        &scenario,
        "recording_transcript_completed",
        "transcript_url",
        |_| true,
    );
    let (status, headers, text) = fetch(&client, &transcript, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/vtt");
    let text = text.expect("body");
    assert!(text.starts_with(b"WEBVTT"));
    assert!((1024..16 * 1024).contains(&text.len()));
    let (_, _, again) = fetch(&client, &transcript, Some(&token), None).await;
    assert_eq!(again.expect("body"), text);
    let untranscribed = url_of(&scenario, "recording_completed", "transcript_url", |o| {
        !transcripts.contains(&(
            "recording".to_owned(),
            o["recording_id"].as_str().unwrap_or("").to_owned(),
        ))
    });
    let (status, _, body) = fetch(&client, &untranscribed, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&body.expect("body")).expect("json");
    assert_eq!(body["code"], zoom_sim::server::FILE_NOT_FOUND_CODE);
    let voicemail = url_of(&scenario, "inbox_message_received", "download_url", |_| {
        true
    });
    let (status, headers, audio) = fetch(&client, &voicemail, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "content-type"),
        zoom_sim::server::VOICEMAIL_CONTENT_TYPE
    );
    let audio = audio.expect("body");
    assert_eq!(audio.len(), 300_000);
    assert_ne!(audio, whole, "bytes depend on the file");
    for (name, kind) in [
        ("voicemail_transcript_completed", "voicemail"),
        ("engagement_messaging_transcript_completed", "messaging"),
    ] {
        let url = url_of(&scenario, name, "transcript_url", |_| true);
        let (status, headers, _) = fetch(&client, &url, Some(&token), None).await;
        assert_eq!(
            (status, header(&headers, "content-type")),
            (StatusCode::OK, "text/vtt"),
            "{kind}"
        );
    }
    // A voicemail transcript is served at reference §1.6's spelling of its URL too.
    let url = url_of(
        &scenario,
        "voicemail_transcript_completed",
        "transcript_url",
        |_| true,
    );
    let legacy = url
        .replace("/voicemail/transcripts/", "/inbox/message/transcripts/")
        .replace("?type=voice", "");
    let (status, _, _) = fetch(&client, &legacy, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{legacy}");
    // An e-mail engagement's "transcript" is its messages, as JSON.
    let url = url_of(
        &scenario,
        "engagement_email_transcript_completed",
        "transcript_url",
        |_| true,
    );
    let (status, headers, body) = fetch(&client, &url, Some(&token), None).await;
    assert_eq!(
        (status, header(&headers, "content-type")),
        (StatusCode::OK, "application/json")
    );
    let messages: Value = serde_json::from_slice(&body.expect("body")).expect("json");
    let list = messages["messages"].as_array().expect("messages");
    assert!(list.len() >= 2, "{messages}");
    for m in list {
        assert!(
            m["content"]["value"].is_string() && m["sent_time"].is_string(),
            "{m}"
        );
    }
    assert_eq!(messages["has_more"], false);
    let messaging_id = objects(&scenario, "engagement_messaging_transcript_completed")[0]
        ["engagement_id"]
        .as_str()
        .expect("id");
    let not_email = zoom_sim::urls::email_transcript(&scenario.api_base, messaging_id);
    let (status, _, _) = fetch(&client, &not_email, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unknown = format!(
        "{}/v2/contact_center/recording/download/doesNotExist000000000A",
        server.base_url()
    );
    let (status, _, _) = fetch(&client, &unknown, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let stats = server.stats();
    // Every 200/206: the recording three times (download, again, playback), three ranges, the recording
    // transcript twice, the voicemail, two more transcripts, the voicemail one again and the e-mail messages.
    assert_eq!(stats.downloads, 13, "{stats:?}");
    assert!(stats.download_bytes >= 4 * 300_000, "{stats:?}");
    assert_eq!(stats.download_redirects, 0);
    assert!(stats.download_requests > stats.downloads);
    assert_eq!(stats.list_engagements, 0, "downloads are not REST calls");
    server.shutdown().await;
}

#[tokio::test]
async fn redirected_downloads_use_short_lived_unauthenticated_links() {
    let config = SimServerConfig {
        media_bytes: 50_000,
        download_redirect: true,
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 20).await;
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let token = token(&no_redirects, &server, &config).await;
    let url = url_of(&scenario, "recording_completed", "download_url", |_| true);

    let (status, headers, _) = fetch(&no_redirects, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = header(&headers, "location").to_owned();
    assert!(
        location.starts_with(&format!("{}/v2/_files/", server.base_url())),
        "{location}"
    );
    let (status, _, body) = fetch(&no_redirects, &location, None, None).await;
    assert_eq!(status, StatusCode::OK, "the link needs no token");
    let body = body.expect("body");
    assert_eq!(body.len(), 50_000);
    let (status, _, part) = fetch(&no_redirects, &location, None, Some("bytes=100-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.expect("body"), body.slice(100..));

    // A following client gets the bytes in one go; the same bytes as without redirects.
    let (status, _, followed) = fetch(&Client::new(), &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(followed.expect("body"), body);
    let direct = SimServer::start(
        SimServerConfig {
            download_redirect: false,
            ..config.clone()
        },
        &scenario,
    )
    .await
    .expect("start");
    let direct_token = self::token(&no_redirects, &direct, &config).await;
    let path = url.trim_start_matches(&server.base_url()).to_owned();
    let (status, _, same) = fetch(
        &no_redirects,
        &format!("{}{path}", direct.base_url()),
        Some(&direct_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same.expect("body"), body);
    direct.shutdown().await;

    // Unauthenticated requests are still refused before a link is issued; links expire.
    let (status, _, _) = fetch(&no_redirects, &url, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.expire_all_download_links();
    let (status, _, body) = fetch(&no_redirects, &location, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_slice(&body.expect("body")).expect("json");
    assert_eq!(body["code"], zoom_sim::server::FILE_LINK_INVALID_CODE);
    assert_eq!(server.stats().download_redirects, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn huge_files_are_served_without_buffering() {
    const FIVE_GIB: u64 = 5 * 1024 * 1024 * 1024;
    let config = SimServerConfig {
        media_bytes: FIVE_GIB,
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 10).await;
    let client = Client::new();
    let token = token(&client, &server, &config).await;
    let url = url_of(&scenario, "recording_completed", "download_url", |_| true);
    let response = client
        .head(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("head");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "content-length"),
        FIVE_GIB.to_string()
    );
    let (status, headers, tail) = fetch(&client, &url, Some(&token), Some("bytes=-100")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&headers, "content-range"),
        format!("bytes {}-{}/{FIVE_GIB}", FIVE_GIB - 100, FIVE_GIB - 1)
    );
    assert_eq!(tail.expect("body").len(), 100);
    // Reading the head of the full body and dropping it costs only what was read.
    let mut response = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let first = response.chunk().await.expect("chunk").expect("bytes");
    assert!(!first.is_empty());
    drop(response);
    assert!(server.stats().download_bytes < 64 * 1024 * 1024);
    server.shutdown().await;
}

#[tokio::test]
async fn files_appear_after_the_processing_delay() {
    let config = SimServerConfig {
        media_bytes: 1000,
        media_processing_delay: Duration::from_millis(700),
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 10).await;
    let client = Client::new();
    let token = token(&client, &server, &config).await;
    let url = url_of(&scenario, "recording_completed", "download_url", |_| true);
    let (status, _, body) = fetch(&client, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&body.expect("body")).expect("json");
    assert_eq!(body["code"], zoom_sim::server::FILE_NOT_FOUND_CODE);
    assert!(body["message"].is_string());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _, body) = fetch(&client, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.expect("body").len(), 1000);
    server.shutdown().await;
}

#[tokio::test]
async fn the_first_transfer_of_a_file_is_cut_and_later_ones_succeed() {
    let config = SimServerConfig {
        media_bytes: 200_000,
        cut_first_download_after: Some(70_000),
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 20).await;
    let client = Client::new();
    let token = token(&client, &server, &config).await;
    let url = url_of(&scenario, "recording_completed", "download_url", |_| true);

    // The first transfer delivers exactly the configured bytes, then breaks.
    let mut response = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("response head");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(response.headers(), "content-length"), "200000");
    let mut received = 0;
    let error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => panic!("the first transfer completed"),
            Err(error) => break error,
        }
    };
    assert_eq!(received, 70_000);
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    // Resuming from where it broke works, and so does a full retry.
    let (status, _, rest) = fetch(&client, &url, Some(&token), Some("bytes=70000-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.expect("body").len(), 130_000);
    let (status, _, whole) = fetch(&client, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whole.expect("body").len(), 200_000);
    // Another file is cut once too.
    let voicemail = url_of(&scenario, "inbox_message_received", "download_url", |_| {
        true
    });
    let (_, _, body) = fetch(&client, &voicemail, Some(&token), None).await;
    assert!(body.is_err());
    let stats = server.stats();
    assert_eq!(stats.downloads_cut, 2);
    assert_eq!(stats.downloads, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn throttled_downloads_take_their_time() {
    let config = SimServerConfig {
        media_bytes: 60_000,
        download_bytes_per_second: Some(200_000),
        ..SimServerConfig::default()
    };
    let (scenario, server) = serve_bound(config.clone(), 10).await;
    let client = Client::new();
    let token = token(&client, &server, &config).await;
    let url = url_of(&scenario, "recording_completed", "download_url", |_| true);
    let started = Instant::now();
    let (status, _, body) = fetch(&client, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.expect("body").len(), 60_000);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Injected faults and the HEAVY label (reference §6)

/// The statuses of `n` sequential get-engagement requests.
async fn statuses(
    server: &SimServer,
    config: &SimServerConfig,
    id: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let client = Client::new();
    let token = token(&client, server, config).await;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (status, _, body) = get(
            &client,
            server,
            &token,
            &format!("/contact_center/engagements/{id}"),
            &[],
        )
        .await;
        out.push((status.as_u16(), body));
    }
    out
}

#[tokio::test]
async fn injected_faults_are_seeded_and_roughly_as_configured() {
    let scenario = scenario(3);
    let config = SimServerConfig {
        light_per_second: 1_000_000,
        fault_5xx_rate: 0.2,
        fault_429_rate: 0.1,
        fault_seed: 7,
        ..SimServerConfig::default()
    };
    let id = scenario.truth.engagements[0].engagement_id.clone();
    let (server, _) = start(config.clone(), &scenario).await;
    let answers = statuses(&server, &config, &id, 500).await;
    let count = |codes: &[u16]| answers.iter().filter(|(s, _)| codes.contains(s)).count();
    let (errors, limited, ok) = (count(&[500, 503]), count(&[429]), count(&[200]));
    assert_eq!(errors + limited + ok, 500);
    assert!((60..=140).contains(&errors), "{errors} 5xx of 500");
    assert!((25..=80).contains(&limited), "{limited} 429s of 500");
    assert!(count(&[500]) > 0 && count(&[503]) > 0);
    for (status, body) in &answers {
        if *status != 200 {
            assert_eq!(body["code"], *status, "Zoom-shaped: {body}");
            assert!(body["message"].is_string());
        }
    }
    let stats = server.stats();
    assert_eq!(stats.injected_5xx as usize, errors);
    assert_eq!(stats.injected_429 as usize, limited);
    assert_eq!(stats.rate_limited as usize, limited);
    // The token request is never faulted; the same seed gives the same sequence.
    let (again, _) = start(config.clone(), &scenario).await;
    let replay = statuses(&again, &config, &id, 100).await;
    let first: Vec<u16> = answers.iter().take(100).map(|(s, _)| *s).collect();
    assert_eq!(replay.iter().map(|(s, _)| *s).collect::<Vec<_>>(), first);
    server.shutdown().await;
    again.shutdown().await;
}

#[tokio::test]
async fn heavy_and_daily_limits_answer_zoom_429s() {
    let scenario = scenario(3);
    let heavy = BTreeMap::from([("/v2/contact_center/recordings".to_owned(), RateLabel::Heavy)]);
    let config = SimServerConfig {
        heavy_per_second: 3,
        label_overrides: heavy.clone(),
        ..SimServerConfig::default()
    };
    let (server, client) = start(config.clone(), &scenario).await;
    let token = token(&client, &server, &config).await;
    let url = format!("{}/v2/contact_center/recordings", server.base_url());
    let burst = (0..20).map(|_| {
        let request = client.get(&url).bearer_auth(&token);
        async move {
            let response = request.send().await.expect("request");
            (response.status(), response.headers().clone())
        }
    });
    let results = join_all(burst).await;
    let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
    assert!((1..=6).contains(&ok), "{ok} succeeded");
    let (_, headers) = results
        .iter()
        .find(|r| r.0 == StatusCode::TOO_MANY_REQUESTS)
        .expect("some 429s");
    assert_eq!(headers["x-ratelimit-category"], "Heavy");
    assert_eq!(headers["x-ratelimit-type"], "QPS");
    server.shutdown().await;

    // Daily caps, per label, with an ISO-8601 Retry-After at the next UTC midnight.
    let config = SimServerConfig {
        heavy_per_day: Some(2),
        light_per_day: Some(1),
        label_overrides: heavy,
        ..SimServerConfig::default()
    };
    let (server, client) = start(config.clone(), &scenario).await;
    let token = self::token(&client, &server, &config).await;
    let id = &scenario.truth.engagements[0].engagement_id;
    for (path, category, cap) in [
        ("/contact_center/recordings".to_owned(), "Heavy", 2),
        (format!("/contact_center/engagements/{id}"), "Light", 1),
    ] {
        for _ in 0..cap {
            let (status, _, _) = get(&client, &server, &token, &path, &[]).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, headers, body) = get(&client, &server, &token, &path, &[]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(headers["x-ratelimit-category"], category);
        assert_eq!(headers["x-ratelimit-type"], "Daily-limit");
        assert_eq!(headers["x-ratelimit-limit"], cap.to_string().as_str());
        let retry = headers["retry-after"].to_str().expect("ascii");
        let retry = chrono::DateTime::parse_from_rfc3339(retry).expect("ISO-8601 Retry-After");
        assert!(retry.to_rfc3339().contains("T00:00:00"));
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.contains("maximum daily rate limit")));
    }
    // MEDIUM has no daily cap here.
    let (status, _, _) = get(
        &client,
        &server,
        &token,
        "/contact_center/engagements/notes",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}
