//! End to end against the simulator: a generated day of ZCC traffic, delivered the way Zoom delivers it
//! (signed, with duplicate deliveries and reordering injected), must yield records equal to the day's ground
//! truth; `rebuild` must then find nothing to change.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::DateTime;
use common::*;
use zcc_bridge::core::record::EngagementRecord;
use zoom_sim::emitter::{Emitter, EmitterConfig, Faults};
use zoom_sim::generator::{generate, GeneratorConfig, TruthEngagement};

fn ms(time: &Option<String>) -> Option<i64> {
    time.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

/// Every difference between a record and the truth, as readable lines (empty: they agree).
fn differences(truth: &TruthEngagement, record: &EngagementRecord) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            out.push(format!("{}: {what}: {detail}", truth.engagement_id));
        }
    };
    check(
        "channel",
        record.channel.as_deref() == Some(&truth.channel),
        format!("{:?} vs {}", record.channel, truth.channel),
    );
    check(
        "direction",
        record.direction.as_deref() == Some(&truth.direction),
        format!("{:?} vs {}", record.direction, truth.direction),
    );
    check(
        "start_time",
        ms(&record.start_time) == Some(truth.start_time_ms),
        format!("{:?} vs {}", record.start_time, truth.start_time_ms),
    );
    check(
        "end_time",
        ms(&record.end_time) == Some(truth.end_time_ms),
        format!("{:?} vs {}", record.end_time, truth.end_time_ms),
    );
    let queues: BTreeSet<String> = record
        .queues
        .iter()
        .map(|q| q.cc_queue_id.clone())
        .collect();
    check(
        "queues",
        queues == truth.queue_ids,
        format!("{queues:?} vs {:?}", truth.queue_ids),
    );
    let agents: BTreeSet<String> = record.agents.iter().map(|a| a.user_id.clone()).collect();
    check(
        "agents",
        agents == truth.agent_ids,
        format!("{agents:?} vs {:?}", truth.agent_ids),
    );
    let numbers: BTreeSet<String> = record
        .consumers
        .iter()
        .filter_map(|c| c.consumer_number.clone())
        .collect();
    check(
        "consumer numbers",
        numbers == truth.consumer_numbers,
        format!("{numbers:?} vs {:?}", truth.consumer_numbers),
    );
    let notes: BTreeMap<String, String> = record
        .notes
        .iter()
        .map(|n| (n.note_id.clone(), n.note.clone().unwrap_or_default()))
        .collect();
    check(
        "notes",
        notes == truth.notes,
        format!("{notes:?} vs {:?}", truth.notes),
    );
    let dispositions: BTreeSet<String> = record
        .dispositions
        .iter()
        .map(|d| d.disposition_id.clone())
        .collect();
    check(
        "dispositions",
        dispositions == truth.disposition_ids,
        format!("{dispositions:?} vs {:?}", truth.disposition_ids),
    );
    let recordings: BTreeSet<String> = record
        .recordings
        .iter()
        .map(|r| r.recording_id.clone())
        .collect();
    check(
        "recordings",
        recordings == truth.recording_ids,
        format!("{recordings:?} vs {:?}", truth.recording_ids),
    );
    let transcripts: BTreeSet<(String, String)> = record
        .transcripts
        .iter()
        .map(|t| (t.kind.as_str().to_string(), t.source_id.clone()))
        .collect();
    check(
        "transcripts",
        transcripts == truth.transcripts,
        format!("{transcripts:?} vs {:?}", truth.transcripts),
    );
    let voicemails: BTreeSet<String> = record
        .voicemails
        .iter()
        .map(|v| v.message_id.clone())
        .collect();
    check(
        "voicemails",
        voicemails == truth.voicemail_ids,
        format!("{voicemails:?} vs {:?}", truth.voicemail_ids),
    );
    check(
        "timeline",
        record.timeline.len() == truth.event_count,
        format!(
            "{} entries vs {} events",
            record.timeline.len(),
            truth.event_count
        ),
    );
    out
}

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
            problems.extend(differences(expected, &record));
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
        let rebuilt = zcc_bridge::rebuild::rebuild(&*store)
            .await
            .expect("rebuild");
        assert_eq!(rebuilt.changed, 0, "{backend:?}: {rebuilt:?}");
        assert_eq!(rebuilt.engagements, truth.engagements.len() as u64);
        assert_eq!(rebuilt.unparseable, 0);
        server.shutdown().await;
    }
}
