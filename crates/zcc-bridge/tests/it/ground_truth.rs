//! End to end against the simulator: a generated day of ZCC traffic, delivered the way Zoom delivers it
//! (signed, with duplicate deliveries and reordering injected), must yield records equal to the day's ground
//! truth; `rebuild` must then find nothing to change.

use std::time::Duration;

use crate::common::truth::differences;
use crate::common::*;
use zcc_bridge::core::record::EngagementRecord;
use zoom_sim::emitter::{Emitter, EmitterConfig, Faults};
use zoom_sim::generator::{generate, GeneratorConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_day_with_duplicates_and_reordering_matches_ground_truth() {
    for backend in backends() {
        let mut server = TestServer::start(&backend).await;
        let scenario = generate(&GeneratorConfig {
            seed: 7,
            engagements: 60,
            ..Default::default()
        });
        let mut config = EmitterConfig::new(server.url("/webhooks/zoom"), SECRET);
        config.faults = Faults {
            duplicate_rate: 0.3,
            reorder_window: 25,
            seed: 11,
            ..Default::default()
        };
        config.concurrency = 16;
        config.retry_scale = 0.0005;
        config.timeout = Duration::from_secs(10);
        let emitter = Emitter::new(config).expect("emitter");
        // The simulator signs with the current time; its events carry the scenario's own times.
        let report = emitter.emit_all(&scenario.events).await;
        assert_eq!(report.failed, 0, "{backend:?}: {report:?}");
        assert_eq!(report.acked, report.sent, "{backend:?}: {report:?}");
        assert!(
            report.duplicates_sent > 0,
            "the fault injection sent duplicates"
        );

        let truth = &scenario.truth;
        let stats = server.stats().await;
        assert_eq!(
            stats["events"].as_i64(),
            Some(truth.total_events() as i64),
            "{backend:?}: every distinct event logged once: {stats}"
        );
        assert_eq!(
            stats["duplicates"].as_i64(),
            Some(report.duplicates_sent as i64),
            "{backend:?}: every duplicate delivery recorded as such: {stats}"
        );

        let mut problems = Vec::new();
        for expected in &truth.engagements {
            let body = server
                .get_json(&format!("/api/v1/engagements/{}", expected.engagement_id))
                .await;
            let record: EngagementRecord =
                serde_json::from_value(body).expect("an engagement record");
            problems.extend(differences(expected, &record, true));
        }
        assert!(
            problems.is_empty(),
            "{backend:?}: records differ from the ground truth:\n{}",
            problems.join("\n")
        );
        let stats = server.stats().await;
        assert_eq!(
            stats["engagements"].as_i64(),
            Some(truth.engagements.len() as i64),
            "{backend:?}: no record beyond the truth's engagements: {stats}"
        );
        assert_eq!(stats["projection_pending"].as_i64(), Some(0), "{stats}");

        // The log alone reproduces every record exactly.
        let store = server.server.as_ref().expect("running").store();
        let rebuilt = zcc_bridge::rebuild::rebuild(&*store, &Default::default())
            .await
            .expect("rebuild");
        assert_eq!(rebuilt.changed, 0, "{backend:?}: {rebuilt:?}");
        assert_eq!(rebuilt.engagements, truth.engagements.len() as u64);
        assert_eq!(rebuilt.unparseable, 0);
        server.shutdown().await;
    }
}
