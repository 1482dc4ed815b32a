//! Presence tests' shared pieces: the Zoom simulator with its one-update-per-interval rule, users, and waiting
//! for and checking what Zoom was told.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use zoom_sim::{NewPresenceUser, SimServer, SimServerConfig};

use super::sim::use_simulator;
use super::{envelope, TestServer};

pub const INTERVAL: Duration = Duration::from_secs(1);

pub async fn simulator() -> (SimServer, SimServerConfig) {
    let config = SimServerConfig {
        presence_min_interval: INTERVAL,
        ..Default::default()
    };
    let bound = SimServer::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind the simulator");
    let scenario = zoom_sim::generator::generate(&zoom_sim::generator::GeneratorConfig {
        seed: 7,
        engagements: 0,
        api_base: format!("{}/v2", bound.base_url()),
        ..Default::default()
    });
    (bound.serve(config.clone(), &scenario), config)
}

pub async fn bridge(
    backend: &super::Backend,
    sim: &SimServer,
    sim_config: &SimServerConfig,
) -> TestServer {
    TestServer::start_with(backend, |c| {
        use_simulator(c, sim, sim_config);
        c.presence.enabled = true;
        c.presence.min_interval_seconds = INTERVAL.as_secs();
    })
    .await
}

pub fn user(sim: &SimServer, id: &str, status: &str, logged_in: bool) {
    let mut new = NewPresenceUser::new(id, format!("{id}@example.com"));
    new.status = Some(status.to_string());
    new.logged_in = logged_in;
    if !logged_in {
        new.status = None;
    }
    sim.add_presence_user(new).expect("add user");
}

pub fn answered(engagement: &str, user: &str, ts: i64) -> Vec<u8> {
    envelope(
        "contact_center.engagement_user_answered",
        ts,
        json!({"engagement_id": engagement, "user_id": user, "channel": "voice"}),
    )
}

pub fn ended(engagement: &str, ts: i64) -> Vec<u8> {
    envelope(
        "contact_center.engagement_ended",
        ts,
        json!({"engagement_id": engagement}),
    )
}

pub async fn post(server: &TestServer, body: &[u8]) {
    assert_eq!(server.post_webhook(body).await.status(), 200);
}

pub fn status(sim: &SimServer, user: &str) -> String {
    sim.presence_user(user).expect("user").status
}

/// Waits until the user's Zoom status is `expected` (at most 30 s: generous for a loaded CI machine).
pub async fn until_status(sim: &SimServer, user: &str, expected: &str) {
    for _ in 0..300 {
        if status(sim, user) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{user} never reached {expected}: {:?}",
        sim.presence_user(user)
    );
}

/// The applied API statuses of a user, and that no two came closer than the interval.
pub fn applied(sim: &SimServer, user: &str) -> Vec<String> {
    let u = sim.presence_user(user).expect("user");
    if let Some(gap) = u.min_api_update_gap_ms() {
        assert!(
            gap >= INTERVAL.as_millis() as i64,
            "{user}: two updates {gap} ms apart"
        );
    }
    u.applied_api_updates().map(|x| x.status.clone()).collect()
}
