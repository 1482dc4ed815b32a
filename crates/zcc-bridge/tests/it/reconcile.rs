//! Reconciliation end to end: the bridge against the simulator's REST API, started the way a user starts it.
//! Webhooks are lost, duplicated and reordered; after a reconciliation every record equals the simulator's ground
//! truth, and reconciling again changes nothing. Token expiry, expired page tokens and 429s are survived.

use std::time::Duration;

use crate::common::sim::{reconcile, simulator, use_simulator, window};
use crate::common::truth::differences;
use crate::common::*;
use serde_json::{json, Value};
use zcc_bridge::core::record::EngagementRecord;
use zoom_sim::emitter::{Emitter, EmitterConfig, Faults};
use zoom_sim::generator::Scenario;
use zoom_sim::SimServerConfig;

async fn records_against_truth(server: &TestServer, scenario: &Scenario) -> Vec<String> {
    let mut problems = Vec::new();
    for expected in &scenario.truth.engagements {
        let response = server
            .get(&format!("/api/v1/engagements/{}", expected.engagement_id))
            .await;
        if response.status() == 404 {
            problems.push(format!("{}: no record", expected.engagement_id));
            continue;
        }
        let record: EngagementRecord = response.json().await.expect("an engagement record");
        problems.extend(differences(expected, &record, false));
    }
    problems
}

/// Every record of the scenario's engagements, by id (absent ones left out).
async fn records(
    server: &TestServer,
    scenario: &Scenario,
) -> std::collections::HashMap<String, Value> {
    let mut out = std::collections::HashMap::new();
    for expected in &scenario.truth.engagements {
        let id = &expected.engagement_id;
        let response = server.get(&format!("/api/v1/engagements/{id}")).await;
        if response.status() == 200 {
            out.insert(
                id.clone(),
                response.json().await.expect("an engagement record"),
            );
        }
    }
    out
}

/// What a run must report as missed: every engagement it created, and every item its records gained.
fn gained(
    before: &std::collections::HashMap<String, Value>,
    after: &std::collections::HashMap<String, Value>,
) -> Value {
    const ITEMS: [&str; 7] = [
        "notes",
        "dispositions",
        "recordings",
        "transcripts",
        "voicemails",
        "agents",
        "queues",
    ];
    let len = |record: Option<&Value>, item: &str| {
        record.and_then(|r| r[item].as_array()).map_or(0, Vec::len) as i64
    };
    let mut missed = serde_json::Map::new();
    missed.insert(
        "engagements".into(),
        json!(after.keys().filter(|id| !before.contains_key(*id)).count()),
    );
    for item in ITEMS {
        let n: i64 = after
            .iter()
            .map(|(id, record)| len(Some(record), item) - len(before.get(id), item))
            .sum();
        missed.insert(item.into(), json!(n));
    }
    Value::Object(missed)
}

fn summary(run: &Value, key: &str) -> i64 {
    run["summary"][key].as_i64().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_duplicated_and_reordered_webhooks_are_made_whole_by_reconciliation() {
    let sim_config = SimServerConfig::default();
    let (sim, scenario) = simulator(2000, 23, sim_config.clone()).await;
    for backend in backends() {
        let mut server =
            TestServer::start_with(&backend, |c| use_simulator(c, &sim, &sim_config)).await;
        let mut config = EmitterConfig::new(server.url("/webhooks/zoom"), SECRET);
        config.faults = Faults {
            drop_rate: 0.10,
            duplicate_rate: 0.05,
            reorder_window: 25,
            seed: 5,
            ..Default::default()
        };
        config.concurrency = 32;
        config.retry_scale = 0.0005;
        config.timeout = Duration::from_secs(10);
        let report = Emitter::new(config)
            .expect("emitter")
            .emit_all(&scenario.events)
            .await;
        assert_eq!(report.failed, 0, "{backend:?}: {report:?}");
        assert!(report.dropped > scenario.events.len() / 20, "{report:?}");

        let before = records_against_truth(&server, &scenario).await;
        assert!(
            before.len() > 100,
            "{backend:?}: lost webhooks leave records incomplete before reconciling (only {} differences)",
            before.len()
        );

        let records_before = records(&server, &scenario).await;
        let first = reconcile(&server, &scenario).await;
        assert_eq!(first["status"], "succeeded", "{backend:?}: {first}");
        // The run counts exactly what it repaired: the engagements it created and the items records gained.
        let expected = gained(&records_before, &records(&server, &scenario).await);
        assert!(expected["notes"].as_i64() > Some(0), "{expected}");
        assert_eq!(first["summary"]["missed"], expected, "{backend:?}");
        assert_eq!(
            summary(&first, "engagements_seen"),
            scenario.truth.engagements.len() as i64,
            "{first}"
        );
        assert!(
            first["summary"]["missed"]["notes"].as_i64() > Some(0),
            "{first}"
        );
        assert!(summary(&first, "changed") > 0, "{first}");
        let problems = records_against_truth(&server, &scenario).await;
        assert!(
            problems.is_empty(),
            "{backend:?}: {} records differ from the ground truth after reconciliation:\n{}",
            problems.len(),
            problems[..problems.len().min(40)].join("\n")
        );
        let stats = server.stats().await;
        assert_eq!(
            stats["engagements"].as_i64(),
            Some(scenario.truth.engagements.len() as i64),
            "{stats}"
        );

        // Reconciling the same window again finds nothing new.
        let second = reconcile(&server, &scenario).await;
        assert_eq!(second["status"], "succeeded", "{second}");
        assert_eq!(summary(&second, "resources_logged"), 0, "{second}");
        assert_eq!(summary(&second, "created"), 0, "{second}");
        assert_eq!(summary(&second, "changed"), 0, "{second}");
        assert_eq!(
            summary(&second, "resources_unchanged"),
            summary(&first, "resources_logged") + summary(&first, "resources_unchanged"),
            "{first}\n{second}"
        );
        let overview = server.get_json("/api/v1/reconciliation").await;
        assert_eq!(overview["last_run"]["id"], second["id"], "{overview}");

        // The log alone still reproduces every record.
        let store = server.server.as_ref().expect("running").store();
        let rebuilt = zcc_bridge::rebuild::rebuild(&*store, &Default::default())
            .await
            .expect("rebuild");
        assert_eq!(rebuilt.changed, 0, "{backend:?}: {rebuilt:?}");
        assert_eq!(rebuilt.unparseable, 0);
        server.shutdown().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_survives_token_expiry_expired_page_tokens_and_429s() {
    let sim_config = SimServerConfig {
        // Spurious per-second 429s on a quarter of the requests, and a slower Medium limit so a run takes a while.
        fault_429_rate: 0.25,
        fault_seed: 3,
        medium_per_second: 10,
        ..Default::default()
    };
    let (sim, scenario) = simulator(700, 41, sim_config.clone()).await;
    let sim = std::sync::Arc::new(sim);
    for backend in backends() {
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &sim, &sim_config);
            c.zoom.medium_per_second = 10.0;
        })
        .await;
        let before = sim.stats();
        // Mid-run, every access token and every page token in flight expires.
        let saboteur = {
            let sim = sim.clone();
            tokio::spawn(async move {
                loop {
                    if sim.stats().list_engagements >= before.list_engagements + 3 {
                        sim.expire_all_tokens();
                        sim.expire_all_page_tokens();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        // No webhooks at all: everything comes from the REST API.
        let run = reconcile(&server, &scenario).await;
        saboteur.await.expect("saboteur");
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        let after = sim.stats();
        assert!(
            after.unauthorized > before.unauthorized,
            "an expired token was refused: {after:?}"
        );
        assert!(
            after.rate_limited + after.injected_429 > before.rate_limited + before.injected_429,
            "429s were answered: {after:?}"
        );
        assert!(
            after.tokens_issued > before.tokens_issued + 1,
            "a new token was fetched after expiry: {after:?}"
        );
        let problems = records_against_truth(&server, &scenario).await;
        assert!(
            problems.is_empty(),
            "{backend:?}: {} records differ:\n{}",
            problems.len(),
            problems[..problems.len().min(40)].join("\n")
        );
        assert_eq!(
            summary(&run, "created"),
            scenario.truth.engagements.len() as i64,
            "{run}"
        );
        let again = reconcile(&server, &scenario).await;
        assert_eq!(summary(&again, "resources_logged"), 0, "{again}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_source_with_forced_disconnects_then_reconciliation_matches_the_truth() {
    let sim_config = SimServerConfig::default();
    let (sim, scenario) = simulator(300, 77, sim_config.clone()).await;
    for backend in backends() {
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &sim, &sim_config);
            c.zoom.websocket_url = Some(sim.ws_url());
            c.zoom.websocket_subscription_id = Some(zoom_sim::server::WS_SUBSCRIPTION_ID.into());
            c.zoom.websocket_heartbeat_seconds = 1;
            c.zoom.websocket_gap_margin_seconds = 1;
        })
        .await;
        let hub = sim.hub();
        // Generous: the close frame queues behind every event already sent, and a loaded 2-core machine (CI)
        // takes a while to log them before the bridge sees it and reconnects.
        let connected = |n: usize| async move {
            for _ in 0..1200 {
                if hub.connected() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("the bridge did not connect to the WebSocket");
        };
        connected(1).await;
        let envelopes: Vec<Value> = scenario.events.iter().map(|e| e.body.clone()).collect();
        let third = envelopes.len() / 3;
        let mut delivered = 0;
        let mut dropped = 0;
        for (i, chunk) in envelopes.chunks(third.max(1)).enumerate() {
            if i > 0 {
                // Force a disconnect; what is published before the bridge is back is lost, as with Zoom.
                let disconnect_at = zcc_bridge::reconcile::now_ms();
                hub.disconnect_all();
                let lost = (chunk.len() / 10).max(1);
                for envelope in &chunk[..lost] {
                    dropped += usize::from(hub.publish(envelope) == 0);
                }
                connected(1).await;
                // The gap is reconciled (kind `gap`) over a window that covers the disconnection.
                let mut gap = Value::Null;
                for _ in 0..600 {
                    let overview = server.get_json("/api/v1/reconciliation").await;
                    let found = overview["runs"].as_array().and_then(|runs| {
                        runs.iter()
                            .find(|r| {
                                r["kind"] == "gap"
                                    && r["status"] != "running"
                                    && chrono::DateTime::parse_from_rfc3339(
                                        r["window_from"].as_str().unwrap_or(""),
                                    )
                                    .is_ok_and(|t| t.timestamp_millis() <= disconnect_at)
                            })
                            .cloned()
                    });
                    if let Some(run) = found {
                        gap = run;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert_eq!(
                    gap["status"], "succeeded",
                    "{backend:?}: a gap run after the reconnect: {gap}"
                );
                for envelope in &chunk[lost..] {
                    delivered += hub.publish(envelope);
                }
            } else {
                for envelope in chunk {
                    delivered += hub.publish(envelope);
                }
            }
        }
        assert!(dropped > 0, "events were lost while disconnected");
        // Everything delivered over the socket is logged (source `websocket`).
        let mut logged = 0;
        // Generous: a loaded 2-core machine (CI) can take a while to drain a burst into Postgres.
        for _ in 0..600 {
            logged = server.stats().await["events"].as_i64().unwrap_or_default();
            if logged >= delivered as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            logged >= delivered as i64,
            "{backend:?}: {logged} logged of {delivered} delivered"
        );
        let some = server.get_json("/api/v1/events?limit=1").await;
        assert_eq!(some["events"][0]["source"], "websocket", "{some}");

        // The gap runs covered wall-clock windows; the scenario's own day is reconciled as a whole.
        let run = reconcile(&server, &scenario).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let problems = records_against_truth(&server, &scenario).await;
        assert!(
            problems.is_empty(),
            "{backend:?}: {} records differ:\n{}",
            problems.len(),
            problems[..problems.len().min(40)].join("\n")
        );
        let again = reconcile(&server, &scenario).await;
        assert_eq!(summary(&again, "resources_logged"), 0, "{again}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_and_completed_events_trigger_fetches_that_repair_lost_webhooks() {
    let sim_config = SimServerConfig::default();
    let (sim, scenario) = simulator(150, 91, sim_config.clone()).await;
    for backend in backends() {
        let mut server = TestServer::start_with(&backend, |c| {
            use_simulator(c, &sim, &sim_config);
            // The schedule and the event-driven fetches run as in production, without the settle wait.
            c.reconcile.enabled = true;
            c.reconcile.fetch_settle_seconds = 0;
        })
        .await;
        let before = sim.stats();
        let mut config = EmitterConfig::new(server.url("/webhooks/zoom"), SECRET);
        config.faults = Faults {
            drop_rate: 0.10,
            seed: 8,
            ..Default::default()
        };
        config.concurrency = 16;
        config.retry_scale = 0.0005;
        let report = Emitter::new(config)
            .expect("emitter")
            .emit_all(&scenario.events)
            .await;
        assert_eq!(report.failed, 0, "{report:?}");

        // The fetch queue drains: every queued engagement was fetched.
        let mut overview = Value::Null;
        for _ in 0..600 {
            overview = server.get_json("/api/v1/reconciliation").await;
            if overview["fetch_queue"]["pending"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            overview["fetch_queue"]["pending"], 0,
            "{backend:?}: {overview}"
        );
        assert_eq!(
            overview["fetch_queue"]["gave_up"], 0,
            "{backend:?}: {overview}"
        );
        let after = sim.stats();
        assert!(after.get_engagement > before.get_engagement, "{after:?}");
        assert!(
            after.engagement_recordings > before.engagement_recordings,
            "{after:?}"
        );
        assert!(
            after.list_inbox_messages > before.list_inbox_messages,
            "{after:?}"
        );

        // Only engagements whose every fetch-triggering event was lost can still differ (an abandoned call has
        // one such event); the nightly run covers those.
        let problems = records_against_truth(&server, &scenario).await;
        let engagements_with_problems: std::collections::BTreeSet<&str> = problems
            .iter()
            .filter_map(|p| p.split(':').next())
            .collect();
        assert!(
            engagements_with_problems.len() * 20 < scenario.truth.engagements.len(),
            "{backend:?}: {} of {} engagements still differ after event-driven fetches:\n{}",
            engagements_with_problems.len(),
            scenario.truth.engagements.len(),
            problems.join("\n")
        );
        // What the fetches repaired is counted, in the API and in the metric, like a run's repairs.
        let repaired = &overview["repaired_by_fetches"];
        assert!(
            repaired["notes"].as_u64() > Some(0),
            "{backend:?}: {overview}"
        );
        let metrics = server.get("/metrics").await.text().await.expect("metrics");
        for item in [
            "engagement",
            "note",
            "disposition",
            "recording",
            "voicemail",
        ] {
            let counted: u64 = metrics
                .lines()
                .filter(|l| {
                    l.starts_with("zcc_reconcile_missed_items_total{")
                        && l.contains(&format!("item=\"{item}\""))
                        && l.contains("via=\"fetch\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            // The recorder is the test process's, shared by every server in it: at least this server's repairs.
            let here = repaired[format!("{item}s")].as_u64().expect("a count");
            assert!(counted >= here, "{backend:?}: {item}: {counted} < {here}");
        }
        let polled = server
            .get_json(&format!(
                "/api/v1/engagements/{}",
                scenario.truth.engagements[0].engagement_id
            ))
            .await;
        assert!(
            polled["sources"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("poll"))),
            "{polled}"
        );
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_restart_resumes_at_the_next_start() {
    let sim_config = SimServerConfig::default();
    let (sim, scenario) = simulator(120, 13, sim_config.clone()).await;
    for backend in backends() {
        let db = fresh_db(&backend).await;
        let mut config = test_config(&db.url);
        use_simulator(&mut config, &sim, &sim_config);
        config.reconcile.enabled = true;
        config.reconcile.fetch_on_events = false;
        // A run left `running` by a process that died, its voicemail part already checkpointed.
        let window = window(&scenario);
        let ms = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(window[key].as_str().unwrap_or(""))
                .expect("window time")
                .timestamp_millis()
        };
        let store = zcc_bridge::server::open_store(&config, Default::default())
            .await
            .expect("store");
        let mut row = store
            .create_run("manual", ms("from"), ms("to"), ms("from"))
            .await
            .expect("run");
        let first_part_end = (ms("from") + 86_400_000 - 1000).min(ms("to"));
        row.progress = json!([format!("Voicemails:{}:{}", ms("from"), first_part_end)]).to_string();
        store.save_run(&row).await.expect("save");
        store.close().await;

        let server = zcc_bridge::start(config).await.expect("server starts");
        let base = format!("http://{}", server.addr());
        let client = reqwest::Client::new();
        let mut run = Value::Null;
        for _ in 0..300 {
            run = client
                .get(format!("{base}/api/v1/reconciliation/runs/{}", row.id))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("get run")
                .json()
                .await
                .expect("json");
            if run["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(
            summary(&run, "parts_done"),
            summary(&run, "parts_total"),
            "{run}"
        );
        // The checkpointed part was not walked again: the scenario's voicemails (all in the first day) were
        // skipped, everything else was fetched.
        assert_eq!(summary(&run, "voicemails_seen"), 0, "{run}");
        assert_eq!(
            summary(&run, "engagements_seen"),
            scenario.truth.engagements.len() as i64,
            "{run}"
        );
        server.shutdown().await.expect("shutdown");
    }
}

/// `POST /api/v1/reconciliation/runs` reads a bare date at the end of a window as that day's last second (as
/// `zcc-bridge sync --to` does), and a manual run over an instant is listed like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_as_the_end_of_a_manual_run_covers_that_day() {
    let sim_config = SimServerConfig::default();
    let (sim, scenario) = simulator(5, 21, sim_config.clone()).await;
    let db = fresh_db(&backends()[0]).await;
    let mut config = test_config(&db.url);
    use_simulator(&mut config, &sim, &sim_config);
    config.reconcile.enabled = true;
    config.reconcile.fetch_on_events = false;
    let server = zcc_bridge::start(config).await.expect("server starts");
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let day = window(&scenario)["from"]
        .as_str()
        .and_then(|t| t.get(..10))
        .expect("the scenario's date")
        .to_string();
    let start = |body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let response = client
                .post(format!("{base}/api/v1/reconciliation/runs"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("start a run");
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.expect("json")["id"].clone()
        }
    };
    let by_date = start(json!({"from": day, "to": day})).await;
    let instant = format!("{day}T12:00:00Z");
    let by_instant = start(json!({"from": instant, "to": instant})).await;
    let mut listed = Value::Null;
    for _ in 0..300 {
        listed = client
            .get(format!("{base}/api/v1/reconciliation"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        if listed["running"].as_array().is_some_and(|r| r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = listed["runs"].as_array().expect("runs");
    let run = |id: &Value| runs.iter().find(|r| &r["id"] == id).cloned();
    let whole_day = run(&by_date).unwrap_or_else(|| panic!("run {by_date} listed: {listed}"));
    assert_eq!(
        whole_day["window_from"],
        format!("{day}T00:00:00Z"),
        "{whole_day}"
    );
    assert_eq!(
        whole_day["window_to"],
        format!("{day}T23:59:59Z"),
        "{whole_day}"
    );
    assert_eq!(whole_day["status"], "succeeded", "{whole_day}");
    let one_instant =
        run(&by_instant).unwrap_or_else(|| panic!("the run over an instant is listed: {listed}"));
    assert_eq!(one_instant["window_from"], one_instant["window_to"]);
    server.shutdown().await.expect("clean shutdown");
}
