//! The `zoom` REST client against the simulator: token caching and renewal, pagination (including an expired
//! page token), 429s survived, Zoom's error codes surfaced.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::TryStreamExt;
use zoom::api::{ApiError, ClientConfig, EngagementQuery, ZoomClient};
use zoom_sim::generator::{generate, GeneratorConfig, Scenario};
use zoom_sim::server::{SimServer, SimServerConfig};

const CLIENT_ID: &str = "sim-client";
const CLIENT_SECRET: &str = "sim-secret";

fn sim_config() -> SimServerConfig {
    SimServerConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        ..Default::default()
    }
}

fn client_for(
    server: &SimServer,
    account_id: &str,
    tweak: impl FnOnce(&mut ClientConfig),
) -> ZoomClient {
    let mut config = ClientConfig {
        account_id: account_id.into(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        oauth_base: server.base_url(),
        api_base: format!("{}/v2", server.base_url()),
        ..Default::default()
    };
    tweak(&mut config);
    ZoomClient::new(config).expect("client")
}

/// A generated day served by the simulator for the day's account.
async fn serve_day(
    seed: u64,
    engagements: usize,
    tweak: impl FnOnce(&mut SimServerConfig),
) -> (Scenario, SimServer) {
    let scenario = generate(&GeneratorConfig {
        seed,
        engagements,
        ..Default::default()
    });
    let mut config = SimServerConfig {
        account_id: scenario.directory.account_id.clone(),
        ..sim_config()
    };
    tweak(&mut config);
    let server = SimServer::start(config, &scenario).await.expect("sim");
    (scenario, server)
}

fn day_query(page_size: u32) -> EngagementQuery {
    EngagementQuery {
        from: Some("2026-11-20".into()),
        to: Some("2026-11-22".into()),
        page_size: Some(page_size),
        ..Default::default()
    }
}

#[tokio::test]
async fn walks_every_engagement_once_with_one_cached_token() {
    let (scenario, server) = serve_day(3, 120, |_| {}).await;
    let client = client_for(&server, &scenario.directory.account_id, |_| {});
    let engagements: Vec<_> = client
        .engagements(day_query(25))
        .try_collect()
        .await
        .expect("walk");
    let got: BTreeSet<String> = engagements
        .iter()
        .map(|e| e.engagement_id.clone())
        .collect();
    let want: BTreeSet<String> = scenario
        .truth
        .engagements
        .iter()
        .map(|e| e.engagement_id.clone())
        .collect();
    assert_eq!(engagements.len(), got.len(), "no engagement twice");
    assert_eq!(got, want);
    assert_eq!(
        server.stats().tokens_issued,
        1,
        "one token for the whole walk"
    );

    // A single engagement, and Zoom's 2901 for an unknown one.
    let first = client
        .engagement(&engagements[0].engagement_id)
        .await
        .expect("get");
    assert_eq!(first.engagement_id, engagements[0].engagement_id);
    let missing = client
        .engagement("no-such-engagement")
        .await
        .expect_err("404");
    assert!(missing.is_not_found(), "{missing:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn survives_token_expiry_and_expired_page_tokens() {
    let (scenario, server) = serve_day(4, 60, |_| {}).await;
    let client = client_for(&server, &scenario.directory.account_id, |_| {});
    let mut walk = Box::pin(client.engagements(day_query(10)));
    let mut ids = BTreeSet::new();
    let mut count = 0;
    while let Some(engagement) = walk.try_next().await.expect("walk") {
        count += 1;
        ids.insert(engagement.engagement_id);
        if count == 15 {
            // Mid-walk: Zoom revokes every token and every page token.
            server.expire_all_tokens();
            server.expire_all_page_tokens();
        }
    }
    assert_eq!(count, ids.len(), "no engagement twice after the restart");
    assert_eq!(ids.len(), scenario.truth.engagements.len());
    assert!(server.stats().tokens_issued >= 2, "a new token was fetched");
    server.shutdown().await;
}

#[tokio::test]
async fn a_burst_beyond_the_limit_is_absorbed_by_retries() {
    let (scenario, server) = serve_day(5, 10, |c| c.light_per_second = 5).await;
    // The client believes it may send 1000/s: the server's 429s must slow it down without failures.
    let client = client_for(&server, &scenario.directory.account_id, |c| {
        c.light_per_second = 1000.0;
        c.max_attempts = 20;
    });
    let id = scenario.truth.engagements[0].engagement_id.clone();
    let calls = (0..20).map(|_| client.engagement(&id));
    let results = futures_util::future::join_all(calls).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert!(
        server.stats().rate_limited > 0,
        "the burst did hit the limit"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_fail_loudly() {
    let (scenario, server) = serve_day(6, 1, |_| {}).await;
    let client = client_for(&server, &scenario.directory.account_id, |c| {
        c.client_secret = "wrong".into();
        c.timeout = Duration::from_secs(5);
    });
    match client.engagement("x").await {
        Err(ApiError::Auth { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected an OAuth refusal, got {other:?}"),
    }
    server.shutdown().await;
}
