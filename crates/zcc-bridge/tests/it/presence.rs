//! Presence sync, black-box: ZCC engagements drive agents' Zoom presence in the simulator, which enforces Zoom's
//! one-update-per-user-per-minute rule (shortened to one second here, and the bridge's interval with it). The
//! final presence of every user is right, and no update ever broke the rule.

use std::time::Duration;

use crate::common::presence::*;
use crate::common::sim::use_simulator;
use crate::common::{backends, envelope, now_secs, TestServer};
use serde_json::{json, Value};

async fn presence_of(server: &TestServer, user: &str) -> Value {
    let all = server.get_json("/api/v1/presence").await;
    all["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user"] == user)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engagements_drive_presence_and_it_converges() {
    for backend in backends() {
        let (sim, sim_config) = simulator().await;
        for (id, s) in [
            ("short", "Away"),
            ("overlap", "Available"),
            ("reversed", "Available"),
            ("changer", "Available"),
            ("burst", "Available"),
        ] {
            user(&sim, id, s, true);
        }
        user(&sim, "offline", "Available", false);
        let mut server = bridge(&backend, &sim, &sim_config).await;
        let t = now_secs() * 1000;

        // A call shorter than Zoom's interval: busy, then back to what the user had (Away), never too fast.
        post(&server, &answered("E-short", "short", t)).await;
        until_status(&sim, "short", "On_A_Call").await;
        post(&server, &ended("E-short", t + 200)).await;
        until_status(&sim, "short", "Away").await;
        assert_eq!(
            applied(&sim, "short"),
            vec!["On_A_Call", "Away"],
            "{backend:?}"
        );

        // Two engagements at once: released only when the last one ends.
        post(&server, &answered("E-o1", "overlap", t)).await;
        post(&server, &answered("E-o2", "overlap", t + 10)).await;
        until_status(&sim, "overlap", "On_A_Call").await;
        post(&server, &ended("E-o1", t + 20)).await;
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(
            status(&sim, "overlap"),
            "On_A_Call",
            "{backend:?}: one still open"
        );
        post(&server, &ended("E-o2", t + 30)).await;
        until_status(&sim, "overlap", "Available").await;

        // The end arrives before the start (and the start twice): never busy.
        post(&server, &ended("E-r", t + 50)).await;
        post(&server, &answered("E-r", "reversed", t + 5)).await;
        post(&server, &answered("E-r", "reversed", t + 5)).await;
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&sim, "reversed"), "Available");
        assert!(
            applied(&sim, "reversed").is_empty(),
            "{backend:?}: nothing to write"
        );

        // The user changes their status during the call: it is left alone at the end.
        post(&server, &answered("E-c", "changer", t)).await;
        until_status(&sim, "changer", "On_A_Call").await;
        sim.user_sets_presence("changer", "Do_Not_Disturb")
            .expect("user changes");
        post(&server, &ended("E-c", t + 100)).await;
        tokio::time::sleep(INTERVAL * 3).await;
        assert_eq!(status(&sim, "changer"), "Do_Not_Disturb", "{backend:?}");
        assert_eq!(applied(&sim, "changer"), vec!["On_A_Call"]);

        // A burst of calls of a few hundred milliseconds each, shorter than Zoom's interval: the updates
        // coalesce (at most one per interval) and the user ends Available.
        for i in 0..6 {
            let id = format!("E-b{i}");
            post(&server, &answered(&id, "burst", t + i * 400)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            post(&server, &ended(&id, t + i * 400 + 200)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(INTERVAL * 3).await;
        assert_eq!(status(&sim, "burst"), "Available", "{backend:?}");
        let burst = applied(&sim, "burst");
        assert!(!burst.is_empty(), "{backend:?}: the first call is shown");
        assert!(
            burst.len() <= 6,
            "{backend:?}: 12 changes coalesced, got {burst:?}"
        );
        assert_eq!(burst.last().map(String::as_str), Some("Available"));

        // Not logged in to Zoom: reported, not retried in a storm.
        post(&server, &answered("E-off", "offline", t)).await;
        tokio::time::sleep(INTERVAL * 3).await;
        let offline = presence_of(&server, "offline").await;
        assert_eq!(
            offline["failure"], "not_logged_in",
            "{backend:?}: {offline}"
        );
        assert!(offline["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("5301")));
        let attempts = sim.presence_user("offline").expect("user").updates.len();
        assert!(attempts <= 3, "{backend:?}: {attempts} attempts in 3 s");

        // The API shows desired vs actual and the audit.
        let short = presence_of(&server, "short").await;
        assert_eq!(short["desired"]["state"], "free");
        assert_eq!(short["actual_status"], "Away");
        assert!(short["audit"].as_array().is_some_and(|a| !a.is_empty()));
        server.shutdown().await;
    }
}

/// The server stops in the middle of a call; the end arrives while it is down; after the restart the user is
/// released (the state is in the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    for backend in backends() {
        let (sim, sim_config) = simulator().await;
        user(&sim, "r1", "Away", true);
        let mut server = bridge(&backend, &sim, &sim_config).await;
        let t = now_secs() * 1000;
        post(&server, &answered("E-restart", "r1", t)).await;
        until_status(&sim, "r1", "On_A_Call").await;
        server.shutdown().await;

        // Same database, a new server process (in-process here): the end of the call arrives.
        let db_url = server.db.url.clone();
        let restarted = zcc_bridge::start({
            let mut c = crate::common::test_config(&db_url);
            c.storage.media = format!("file://{}", server.db.dir().join("media").display());
            use_simulator(&mut c, &sim, &sim_config);
            c.presence.enabled = true;
            c.presence.min_interval_seconds = INTERVAL.as_secs();
            c
        })
        .await
        .expect("restart");
        let base = format!("http://{}", restarted.addr());
        let body = ended("E-restart", t + 500);
        let ts = now_secs();
        let response = server
            .client
            .post(format!("{base}/webhooks/zoom"))
            .header("content-type", "application/json")
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(crate::common::SECRET.as_bytes(), ts, &body),
            )
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
        until_status(&sim, "r1", "Away").await;
        assert_eq!(
            applied(&sim, "r1"),
            vec!["On_A_Call", "Away"],
            "{backend:?}"
        );
        restarted.shutdown().await.expect("shutdown");
    }
}

const GENESYS_TOKEN: &str = "genesys-token-0123456789";

async fn genesys_post(server: &TestServer, token: &str, body: Value) -> reqwest::Response {
    server
        .client
        .post(server.url("/webhooks/genesys/gc"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post")
}

/// Genesys Cloud push: a data action posts `user.start` / `user.end` (top-level fields or `jsonData`); mapped users
/// follow, ringing alone does not count by default, unmapped users change nothing, bad credentials are refused
/// and unusable bodies quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genesys_conversation_events_drive_presence() {
    for backend in backends() {
        let (sim, sim_config) = simulator().await;
        user(&sim, "gz1", "Away", true);
        user(&sim, "gz2", "Available", true);
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &sim, &sim_config);
            c.presence.enabled = true;
            c.presence.min_interval_seconds = INTERVAL.as_secs();
            c.presence.users.insert("g-user-1".into(), "gz1".into());
            c.presence.users.insert("g-user-2".into(), "gz2".into());
            c.presence.genesys.insert(
                "gc".into(),
                zcc_bridge::config::GenesysSource {
                    token: Some(zcc_bridge::config::Secret::new(GENESYS_TOKEN)),
                    media_types: vec!["voice".into()],
                    ..Default::default()
                },
            );
        })
        .await;
        let t = now_secs() * 1000;
        let start = |user: &str, conversation: &str, connected: bool, media: &str| {
            json!({"topicName": "v2.detail.events.conversation.{id}.user.start", "eventTime": t,
                   "conversationId": conversation, "sessionId": "s1", "userId": user,
                   "mediaType": media, "direction": "INBOUND", "connected": connected})
        };

        // Ringing only: not busy (the default rule counts connected interactions).
        let r = genesys_post(
            &server,
            GENESYS_TOKEN,
            start("g-user-1", "c1", false, "VOICE"),
        )
        .await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&sim, "gz1"), "Away", "{backend:?}");
        // Connected: busy.
        genesys_post(
            &server,
            GENESYS_TOKEN,
            start("g-user-1", "c1", true, "VOICE"),
        )
        .await;
        until_status(&sim, "gz1", "On_A_Call").await;
        // A chat does not count for this source.
        genesys_post(
            &server,
            GENESYS_TOKEN,
            start("g-user-2", "c2", true, "CHAT"),
        )
        .await;
        // The end, as the whole event in jsonData (no topic: recognised by its end-only fields).
        let end = json!({"jsonData": {"eventTime": t + 900, "conversationId": "c1", "sessionId": "s1",
                         "userId": "g-user-1", "mediaType": "VOICE", "direction": "INBOUND",
                         "disconnectType": "CLIENT", "interactingDurationMs": 900}});
        assert_eq!(
            genesys_post(&server, GENESYS_TOKEN, end).await.status(),
            200
        );
        until_status(&sim, "gz1", "Away").await;
        tokio::time::sleep(INTERVAL).await;
        assert_eq!(status(&sim, "gz2"), "Available", "{backend:?}");
        assert!(applied(&sim, "gz2").is_empty());
        // An unmapped user changes nothing and fails nothing.
        assert_eq!(
            genesys_post(
                &server,
                GENESYS_TOKEN,
                start("g-stranger", "c3", true, "VOICE")
            )
            .await
            .status(),
            200
        );
        // ... and is reported.
        let mut reported = Value::Null;
        for _ in 0..300 {
            let presence = server.get_json("/api/v1/presence").await;
            if let Some(u) = presence["unmapped"].as_array().and_then(|u| u.first()) {
                reported = u.clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(reported["genesys_user"], "g-stranger", "{backend:?}");
        assert_eq!(reported["source"], "gc");
        assert!(reported["reason"]
            .as_str()
            .is_some_and(|r| r.contains("presence.users")));
        // Wrong token: 401; an unusable body: quarantined.
        assert_eq!(
            genesys_post(
                &server,
                "wrong-token-0123456789",
                start("g-user-1", "c4", true, "VOICE")
            )
            .await
            .status(),
            401
        );
        let bad = genesys_post(&server, GENESYS_TOKEN, json!({"conversationId": "c5"})).await;
        assert_eq!(bad.status(), 400);
        let bad: Value = bad.json().await.expect("json");
        assert!(bad["quarantine_id"].is_i64(), "{bad}");
        // Replay reads it with the Genesys parser (its own source), not Zoom's.
        let replay = server
            .client
            .post(server.url(&format!(
                "/api/v1/quarantine/{}/replay",
                bad["quarantine_id"]
            )))
            .bearer_auth(crate::common::ADMIN_TOKEN)
            .send()
            .await
            .expect("sent");
        assert_eq!(replay.status(), 422);
        let replay: Value = replay.json().await.expect("json");
        let reason = replay["error"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("still unusable: no ") && !reason.contains("Zoom"),
            "{replay}"
        );
        assert_eq!(
            applied(&sim, "gz1"),
            vec!["On_A_Call", "Away"],
            "{backend:?}"
        );
        server.shutdown().await;
    }
}

/// Zoom's shape: `user_id` is the transferring agent, `transfer_to_user_id` the one who takes it over.
fn transfer_accepted(engagement: &str, from: &str, to: &str, ts: i64) -> Vec<u8> {
    envelope(
        "contact_center.engagement_transfer_accepted",
        ts,
        json!({"engagement_id": engagement, "user_id": from, "transfer_to_user_id": to, "channel": "voice",
               "task_id": format!("task-{ts}"), "transfer_to_task_id": format!("task-{to}-{ts}"),
               "transfer_level": "agent", "transfer_type": "warm"}),
    )
}

/// An agent transferred away is released; transferred back onto the same engagement, they are busy again (a new
/// stint of the engagement, not undone by the earlier release), and the engagement's end releases them for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_back_makes_the_agent_busy_again() {
    for backend in backends() {
        let (sim, sim_config) = simulator().await;
        user(&sim, "ta", "Away", true);
        user(&sim, "tb", "Available", true);
        let mut server = bridge(&backend, &sim, &sim_config).await;
        let t = now_secs() * 1000;
        post(&server, &answered("e-tb", "ta", t)).await;
        until_status(&sim, "ta", "On_A_Call").await;
        post(&server, &transfer_accepted("e-tb", "ta", "tb", t + 10_000)).await;
        until_status(&sim, "ta", "Away").await;
        until_status(&sim, "tb", "On_A_Call").await;
        post(&server, &transfer_accepted("e-tb", "tb", "ta", t + 20_000)).await;
        until_status(&sim, "ta", "On_A_Call").await;
        until_status(&sim, "tb", "Available").await;
        // The first hand-over, repeated late, changes nothing.
        post(&server, &transfer_accepted("e-tb", "ta", "tb", t + 10_000)).await;
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&sim, "ta"), "On_A_Call", "{backend:?}");
        post(&server, &ended("e-tb", t + 30_000)).await;
        until_status(&sim, "ta", "Away").await;
        assert_eq!(
            applied(&sim, "ta"),
            ["On_A_Call", "Away", "On_A_Call", "Away"],
            "{backend:?}"
        );
        assert_eq!(applied(&sim, "tb"), ["On_A_Call", "Available"]);
        server.shutdown().await;
    }
}

fn reservation(event: &str, engagement: &str, user: &str, ts: i64) -> Vec<u8> {
    envelope(
        &format!("contact_center.task_reservation_{event}"),
        ts,
        json!({"engagement_id": engagement, "assigned_user_id": user, "channel": "voice",
               "task_id": format!("task-{engagement}"), "task_reservation_id": format!("res-{engagement}-{ts}")}),
    )
}

/// `presence.zcc.ringing = true`: an engagement offered to the agent counts while it rings; a missed (timed out)
/// or rejected offer releases them, an accepted one keeps them busy until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringing_counts_when_the_rule_says_so() {
    for backend in backends() {
        let (sim, sim_config) = simulator().await;
        user(&sim, "ra", "Away", true);
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &sim, &sim_config);
            c.presence.enabled = true;
            c.presence.min_interval_seconds = INTERVAL.as_secs();
            c.presence.zcc.ringing = true;
        })
        .await;
        let t = now_secs() * 1000;
        post(&server, &reservation("created", "e-r1", "ra", t)).await;
        until_status(&sim, "ra", "On_A_Call").await;
        post(&server, &reservation("timeout", "e-r1", "ra", t + 8_000)).await;
        until_status(&sim, "ra", "Away").await;
        post(&server, &reservation("created", "e-r2", "ra", t + 20_000)).await;
        post(&server, &answered("e-r2", "ra", t + 24_000)).await;
        until_status(&sim, "ra", "On_A_Call").await;
        // The offer's acceptance is not its end.
        post(&server, &reservation("rejected", "e-r1", "ra", t + 8_000)).await;
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&sim, "ra"), "On_A_Call", "{backend:?}");
        post(&server, &ended("e-r2", t + 60_000)).await;
        until_status(&sim, "ra", "Away").await;
        assert_eq!(
            applied(&sim, "ra"),
            ["On_A_Call", "Away", "On_A_Call", "Away"],
            "{backend:?}"
        );
        server.shutdown().await;
    }
}

/// The store's contract the worker relies on: applying an event leases the users it made due (up to the limit) in
/// the same transaction; a claim never returns a leased user; finishing releases the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_leases_the_users_it_makes_due_and_claims_skip_them() {
    use zcc_bridge::core::presence::{InteractionEvent, Phase};
    use zcc_bridge::store::presence::Claim;

    for backend in backends() {
        let db = crate::common::fresh_db(&backend).await;
        let store = zcc_bridge::server::open_store(
            &crate::common::test_config(&db.url),
            Default::default(),
        )
        .await
        .expect("open the store");
        let now = 1_800_000_000_000;
        let start = |user: &str| {
            (
                user.to_string(),
                vec![InteractionEvent {
                    source: "zcc".into(),
                    interaction_id: format!("e-{user}"),
                    phase: Phase::Connected,
                    event_ts: now,
                    busy_status: "On_A_Call".into(),
                    ringing_counts: false,
                }],
            )
        };
        let due = |state: &mut zcc_bridge::core::presence::UserPresence, now: i64| {
            zcc_bridge::presence::due_at(state, now)
        };
        let changes = vec![start("a"), start("b"), start("c")];
        let claim = Claim {
            lease_until: now + 60_000,
            limit: 2,
        };
        let applied = store
            .apply_presence(&changes, &[], now, claim, &due)
            .await
            .expect("apply");
        let claimed: Vec<&str> = applied.claimed.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(
            claimed,
            ["a", "b"],
            "{backend:?}: leased in key order up to the limit"
        );
        assert_eq!(applied.left_due, 1, "{backend:?}");
        // The one left over is claimable; the two leased ones are not.
        let rest = store
            .claim_presence(now, now + 60_000, 10)
            .await
            .expect("claim");
        let rest: Vec<&str> = rest.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(rest, ["c"], "{backend:?}");
        // A new event for a leased user changes its state but does not lease it a second time.
        let again = store
            .apply_presence(&[start("a")], &[], now + 1, claim, &due)
            .await
            .expect("apply again");
        assert!(again.claimed.is_empty(), "{backend:?}: {again:?}");
        assert_eq!(again.left_due, 0, "{backend:?}: someone holds it");
        // Finishing releases it: still due (nothing was written), so the next claim takes it.
        store
            .finish_presence(&applied.claimed[0], &[], now + 2, &due)
            .await
            .expect("finish");
        let after = store
            .claim_presence(now + 2, now + 60_000, 10)
            .await
            .expect("claim after finish");
        let after: Vec<&str> = after.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(after, ["a"], "{backend:?}");
        store.close().await;
    }
}
