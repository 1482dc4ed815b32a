//! Genesys Cloud → Zoom presence, black-box against `genesys-sim` (OAuth, users, conversations, the Notifications
//! API and its WebSocket, triggers) and `zoom-sim` (presence with its one-update-per-interval rule).
//!
//! Pull: conversation events over a notification channel drive presence; the socket drops, goes silent, is
//! closed for maintenance and its channel expires, and the final presence of every user is still right.
//! Push: a ringing start is followed through the API until connected; users are found by their Genesys e-mail.
//! Setup: the triggers are created once, left alone when unchanged, and updated when the rule changes.

use std::time::Duration;

use crate::common::presence::*;
use crate::common::sim::use_simulator;
use crate::common::{backends, now_secs, TestServer};
use genesys_sim::{GenesysSim, GenesysSimConfig, Media};
use serde_json::{json, Value};
use zcc_bridge::config::{GenesysSource, Secret};

const PUSH_TOKEN: &str = "genesys-push-token-0123456789";

async fn genesys() -> GenesysSim {
    GenesysSim::start(GenesysSimConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("start genesys-sim")
}

/// A source with API access to the stand-in.
fn source(g: &GenesysSim) -> GenesysSource {
    let defaults = GenesysSimConfig::default();
    GenesysSource {
        client_id: Some(defaults.client_id),
        client_secret: Some(Secret::new(defaults.client_secret)),
        api_base: Some(g.base_url()),
        login_base: Some(g.base_url()),
        silence_timeout_ms: 1_000,
        ..Default::default()
    }
}

/// The user's agent participant of a conversation in the stand-in.
fn participant(g: &GenesysSim, conversation: &str, user: &str) -> Value {
    g.conversation(conversation).expect("conversation")["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .find(|p| p["userId"] == user)
        .cloned()
        .expect("participant")
}

async fn until<F: Fn() -> bool>(what: &str, check: F) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_drive_presence_through_drops_silence_maintenance_and_expiry() {
    for backend in backends() {
        let (zoom, zoom_config) = simulator().await;
        user(&zoom, "z1", "Away", true);
        user(&zoom, "z2", "Available", true);
        user(&zoom, "z3", "Do_Not_Disturb", true);
        let g = genesys().await;
        // Zoom users are found by the Genesys users' e-mails (`user` gives `<id>@example.com`).
        g.add_user("g1", "Agent One", "z1@example.com");
        g.add_user("g2", "Agent Two", "z2@example.com");
        g.add_user("g3", "Agent Three", "z3@example.com");
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &zoom, &zoom_config);
            c.presence.enabled = true;
            c.presence.min_interval_seconds = INTERVAL.as_secs();
            c.presence.genesys.insert(
                "gc".into(),
                GenesysSource {
                    notifications: true,
                    all_users: true,
                    ..source(&g)
                },
            );
        })
        .await;
        until("the channel to be subscribed and connected", || {
            g.connected_sockets() == 1 && g.subscribed_topics().len() == 3
        })
        .await;
        assert_eq!(
            g.subscribed_topics(),
            [
                "v2.users.g1.conversations",
                "v2.users.g2.conversations",
                "v2.users.g3.conversations"
            ]
        );
        // A pull-only source (no push credentials) refuses every push.
        let refused = server
            .client
            .post(server.url("/webhooks/genesys/gc"))
            .json(&json!({"conversationId": "c0", "userId": "g1"}))
            .send()
            .await
            .expect("post");
        assert_eq!(refused.status(), 401);

        // Ringing does not count; connected does; the end restores.
        g.offer("c1", "g1", Media::Call, "inbound", Some("q1"));
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&zoom, "z1"), "Away", "{backend:?}");
        g.connect("c1", "g1");
        until_status(&zoom, "z1", "On_A_Call").await;
        g.end("c1", "g1");
        until_status(&zoom, "z1", "Away").await;

        // Overlapping voice and chat: released only when the last one ends.
        g.offer("c2", "g2", Media::Call, "inbound", None);
        g.connect("c2", "g2");
        g.offer("c3", "g2", Media::Chat, "inbound", None);
        g.connect("c3", "g2");
        until_status(&zoom, "z2", "On_A_Call").await;
        g.end("c2", "g2");
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(status(&zoom, "z2"), "On_A_Call", "{backend:?}");
        g.end("c3", "g2");
        until_status(&zoom, "z2", "Available").await;

        // The socket drops mid-call and the end happens while nobody listens: the open session is checked
        // against the conversation after the reconnect, and the user is released.
        g.offer("c4", "g3", Media::Call, "inbound", None);
        g.connect("c4", "g3");
        until_status(&zoom, "z3", "On_A_Call").await;
        let connections = g.stats().ws_connections;
        g.drop_sockets();
        g.end("c4", "g3");
        until("a reconnect", || g.stats().ws_connections > connections).await;
        until_status(&zoom, "z3", "Do_Not_Disturb").await;

        // The socket goes silent (a dead connection): it is replaced after the silence timeout. A start missed
        // meanwhile is picked up from the conversation's next event, which carries the whole state.
        let connections = g.stats().ws_connections;
        g.set_heartbeats(false);
        g.offer("c5", "g1", Media::Call, "inbound", None);
        g.connect("c5", "g1");
        until("a reconnect after silence", || {
            g.stats().ws_connections > connections
        })
        .await;
        g.set_heartbeats(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        g.hold("c5", "g1", true);
        until_status(&zoom, "z1", "On_A_Call").await;

        // Maintenance: `v2.system.socket_closing`, then the close; the subscriber moves at once.
        let connections = g.stats().ws_connections;
        g.socket_closing(Duration::from_millis(500));
        until("a reconnect after socket_closing", || {
            g.stats().ws_connections > connections
        })
        .await;
        g.end("c5", "g1");
        until_status(&zoom, "z1", "Away").await;

        // The channel expires: a new one is created and subscribed.
        let channels = g.stats().channels_created;
        g.expire_channels();
        until("a new channel", || {
            g.stats().channels_created > channels && g.connected_sockets() == 1
        })
        .await;
        g.offer("c6", "g2", Media::Call, "outbound", None);
        g.connect("c6", "g2");
        until_status(&zoom, "z2", "On_A_Call").await;
        g.end("c6", "g2");
        until_status(&zoom, "z2", "Available").await;

        assert_eq!(
            applied(&zoom, "z1"),
            ["On_A_Call", "Away", "On_A_Call", "Away"],
            "{backend:?}"
        );
        assert_eq!(
            applied(&zoom, "z2"),
            ["On_A_Call", "Available", "On_A_Call", "Available"]
        );
        assert_eq!(applied(&zoom, "z3"), ["On_A_Call", "Do_Not_Disturb"]);
        // The events are in the log as Genesys detail events of the source.
        let presence = server.get_json("/api/v1/presence").await;
        let users: Vec<&str> = presence["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| u["user"].as_str())
            .collect();
        assert_eq!(
            users,
            ["z1@example.com", "z2@example.com", "z3@example.com"]
        );
        server.shutdown().await;
    }
}

/// Push with API access: the data action's `user.start` rings, the bridge follows the conversation until the
/// user is connected; the Zoom user is the Genesys user's e-mail (looked up once, cached), unless mapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_ringing_starts_are_confirmed_and_users_found_by_email() {
    for backend in backends() {
        let (zoom, zoom_config) = simulator().await;
        user(&zoom, "z1", "Away", true);
        user(&zoom, "z9", "Available", true);
        let g = genesys().await;
        g.add_user("g1", "Agent One", "Z1@Example.com");
        g.add_user("g2", "Agent Two", "someone-else@example.com");
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &zoom, &zoom_config);
            c.presence.enabled = true;
            c.presence.min_interval_seconds = INTERVAL.as_secs();
            // g2's e-mail is mapped to another Zoom user.
            c.presence
                .users
                .insert("Someone-Else@Example.com".into(), "z9".into());
            c.presence.genesys.insert(
                "gc".into(),
                GenesysSource {
                    token: Some(Secret::new(PUSH_TOKEN)),
                    ..source(&g)
                },
            );
        })
        .await;
        let post = |body: Value| {
            let request = server
                .client
                .post(server.url("/webhooks/genesys/gc"))
                .bearer_auth(PUSH_TOKEN)
                .json(&body);
            async move { request.send().await.expect("post").status() }
        };
        let t = now_secs() * 1000;
        for (conversation, user) in [("c1", "g1"), ("c2", "g2")] {
            g.offer(conversation, user, Media::Call, "inbound", None);
            let participant = participant(&g, conversation, user);
            let start = json!({"jsonData": {"eventTime": t, "conversationId": conversation,
                "participantId": participant["id"], "sessionId": participant["calls"][0]["id"],
                "userId": user, "mediaType": "VOICE", "direction": "INBOUND"},
                "topicName": "v2.detail.events.conversation.{id}.user.start"});
            assert_eq!(post(start).await, 200);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(status(&zoom, "z1"), "Away", "ringing alone: {backend:?}");
        g.connect("c1", "g1");
        g.connect("c2", "g2");
        until_status(&zoom, "z1", "On_A_Call").await;
        until_status(&zoom, "z9", "On_A_Call").await;
        for (conversation, user) in [("c1", "g1"), ("c2", "g2")] {
            g.end(conversation, user);
            let participant = participant(&g, conversation, user);
            let end = json!({"eventTime": t + 5_000, "conversationId": conversation,
                "participantId": participant["id"], "sessionId": participant["calls"][0]["id"],
                "userId": user, "mediaType": "VOICE", "direction": "INBOUND",
                "disconnectType": "CLIENT", "interactingDurationMs": 5000});
            assert_eq!(post(end).await, 200);
        }
        until_status(&zoom, "z1", "Away").await;
        until_status(&zoom, "z9", "Available").await;
        // Each user was looked up once.
        let lookups = g
            .requests()
            .iter()
            .filter(|(m, p)| m == "GET" && p.starts_with("/api/v2/users/"))
            .count();
        assert_eq!(lookups, 2, "{backend:?}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_triggers_once_and_updates_them_when_the_rule_changes() {
    let g = genesys().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let defaults = GenesysSimConfig::default();
    let write_config = |media: &str| {
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                r#"[presence.genesys.gc]
token = "{PUSH_TOKEN}"
client_id = "{}"
client_secret = "{}"
api_base = "{}"
login_base = "{}"
media_types = [{media}]
directions = ["inbound"]
"#,
                defaults.client_id,
                defaults.client_secret,
                g.base_url(),
                g.base_url()
            ),
        )
        .expect("write config");
        path
    };
    let run = |config: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "--config".to_string(),
            config.display().to_string(),
            "genesys".into(),
            "setup".into(),
            "--source".into(),
            "gc".into(),
            "--workflow-id".into(),
            "wf-123".into(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
            .args(&args)
            .output()
            .expect("run zcc-bridge genesys setup");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<Value>(&stdout).expect("genesys setup --json")
    };
    let outcomes = |report: &Value, outcome: &str| {
        report["triggers"]
            .as_array()
            .expect("triggers")
            .iter()
            .filter(|t| t["outcome"] == outcome)
            .count()
    };
    let config = write_config(r#""voice""#);
    let export = dir.path().join("export");
    let first = run(
        &config,
        &[
            "--public-url",
            "https://bridge.example.com",
            "--export",
            export.to_str().expect("path"),
        ],
    );
    assert_eq!(outcomes(&first, "created"), 2, "{first}");
    let action: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("data-action.json")).unwrap())
            .expect("data action JSON");
    assert_eq!(
        action["config"]["request"]["requestUrlTemplate"],
        "https://bridge.example.com/webhooks/genesys/gc"
    );
    assert!(std::fs::read_to_string(export.join("workflow.yaml"))
        .unwrap()
        .contains("Flow.jsonData"));

    let again = run(&config, &[]);
    assert_eq!(outcomes(&again, "unchanged"), 2, "{again}");
    assert_eq!(g.triggers().len(), 2);

    let changed = write_config(r#""voice", "chat""#);
    let dry = run(&changed, &["--dry-run"]);
    assert_eq!(outcomes(&dry, "would_update"), 2, "{dry}");
    let updated = run(&changed, &[]);
    assert_eq!(outcomes(&updated, "updated"), 2, "{updated}");
    let triggers = g.triggers();
    assert_eq!(triggers.len(), 2);
    for t in &triggers {
        assert_eq!(t["version"], 2, "{t}");
        assert_eq!(t["target"]["id"], "wf-123");
        assert_eq!(t["target"]["workflowTargetSettings"]["dataFormat"], "Json");
        let criteria = t["matchCriteria"].as_array().expect("criteria");
        assert!(
            criteria.contains(
                &json!({"jsonPath": "mediaType", "operator": "In", "values": ["VOICE", "CHAT"]})
            ),
            "{t}"
        );
        assert!(
            criteria.contains(
                &json!({"jsonPath": "direction", "operator": "In", "values": ["INBOUND"]})
            ),
            "{t}"
        );
    }
    let topics: Vec<&str> = triggers
        .iter()
        .filter_map(|t| t["topicName"].as_str())
        .collect();
    assert_eq!(
        topics,
        [
            "v2.detail.events.conversation.{id}.user.start",
            "v2.detail.events.conversation.{id}.user.end"
        ]
    );
}

/// Postgres, two replicas on one database: one pulls (one socket), and when it stops the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_pulls_and_another_takes_over() {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, crate::common::Backend::Postgres(_)))
    else {
        return;
    };
    let (zoom, zoom_config) = simulator().await;
    user(&zoom, "z1", "Away", true);
    let g = genesys().await;
    g.add_user("g1", "Agent One", "z1@example.com");
    let configure = |c: &mut zcc_bridge::config::Config| {
        use_simulator(c, &zoom, &zoom_config);
        c.presence.enabled = true;
        c.presence.min_interval_seconds = INTERVAL.as_secs();
        c.presence.genesys.insert(
            "gc".into(),
            GenesysSource {
                notifications: true,
                users: vec!["g1".into()],
                ..source(&g)
            },
        );
    };
    let mut first = TestServer::start_with(&backend, configure).await;
    until("the first replica to connect", || {
        g.connected_sockets() == 1
    })
    .await;
    let mut config = crate::common::test_config(&first.db.url);
    configure(&mut config);
    let second = zcc_bridge::start(config).await.expect("second replica");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(g.connected_sockets(), 1, "only one replica pulls");
    assert_eq!(g.stats().channels_created, 1);
    first.shutdown().await;
    until("the second replica to take over", || {
        g.connected_sockets() == 1 && g.stats().channels_created == 2
    })
    .await;
    g.offer("c1", "g1", Media::Call, "inbound", None);
    g.connect("c1", "g1");
    until_status(&zoom, "z1", "On_A_Call").await;
    g.end("c1", "g1");
    until_status(&zoom, "z1", "Away").await;
    second.shutdown().await.expect("shutdown");
}
