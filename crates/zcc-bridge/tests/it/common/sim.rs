//! The simulator as the bridge's Zoom: a scenario served over REST, the bridge's app pointed at it, runs started
//! through the API.

use std::time::Duration;

use serde_json::{json, Value};
use zcc_bridge::config::{Config, Secret};
use zoom_sim::generator::{generate, GeneratorConfig, Scenario};
use zoom_sim::{SimServer, SimServerConfig};

use super::{TestServer, ADMIN_TOKEN};

/// The simulator serving a scenario generated with its own URL in payloads (download links point at it).
pub async fn simulator(
    engagements: usize,
    seed: u64,
    config: SimServerConfig,
) -> (SimServer, Scenario) {
    let bound = SimServer::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind the simulator");
    let scenario = generate(&GeneratorConfig {
        seed,
        engagements,
        api_base: format!("{}/v2", bound.base_url()),
        ..Default::default()
    });
    let sim = bound.serve(config, &scenario);
    (sim, scenario)
}

/// Points the bridge's Zoom app at the simulator; scheduled work off (tests start runs themselves).
pub fn use_simulator(config: &mut Config, sim: &SimServer, sim_config: &SimServerConfig) {
    config.zoom.account_id = Some(sim_config.account_id.clone());
    config.zoom.client_id = Some(sim_config.client_id.clone());
    config.zoom.client_secret = Some(Secret::new(sim_config.client_secret.clone()));
    config.zoom.api_base = format!("{}/v2", sim.base_url());
    config.zoom.oauth_base = sim.base_url();
    config.reconcile.enabled = false;
}

/// A window around the scenario: from an hour before its first event to two days after.
pub fn window(scenario: &Scenario) -> Value {
    let first = scenario
        .events
        .iter()
        .map(|e| e.event_ts)
        .min()
        .unwrap_or_default();
    let iso = |ms: i64| zoom_sim::iso_time(ms);
    json!({"from": iso(first - 3_600_000), "to": iso(first + 2 * 86_400_000)})
}

/// Starts a run through the API and waits for it to finish; returns its report.
pub async fn reconcile(server: &TestServer, scenario: &Scenario) -> Value {
    let response = server
        .client
        .post(server.url("/api/v1/reconciliation/runs"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&window(scenario))
        .send()
        .await
        .expect("start a run");
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let started: Value = response.json().await.expect("json");
    let id = started["id"].as_i64().expect("run id");
    for _ in 0..1200 {
        let run = server
            .get_json(&format!("/api/v1/reconciliation/runs/{id}"))
            .await;
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reconciliation run {id} did not finish in two minutes");
}

/// SHA-256 of a file as Zoom (the simulator) serves it, fetched in one piece.
pub async fn file_sha256(sim: &SimServer, sim_config: &SimServerConfig, url: &str) -> String {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    let client = zoom::api::ZoomClient::new(zoom::api::ClientConfig {
        account_id: sim_config.account_id.clone(),
        client_id: sim_config.client_id.clone(),
        client_secret: sim_config.client_secret.clone(),
        api_base: format!("{}/v2", sim.base_url()),
        oauth_base: sim.base_url(),
        ..Default::default()
    })
    .expect("client");
    let download = client.download(url, 0).await.expect("download");
    let mut body = download.body;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        hasher.update(chunk.expect("chunk"));
    }
    hex::encode(hasher.finalize())
}
