//! Comparing engagement records with the simulator's ground truth.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use zcc_bridge::core::record::EngagementRecord;
use zoom_sim::generator::TruthEngagement;

fn ms(time: &Option<String>) -> Option<i64> {
    time.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

/// Every difference between a record and the truth, as readable lines (empty: they agree). The timeline is
/// checked only when every event was delivered (reconciliation restores the facts, not lost events).
pub fn differences(
    truth: &TruthEngagement,
    record: &EngagementRecord,
    check_timeline: bool,
) -> Vec<String> {
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
        !check_timeline || record.timeline.len() == truth.event_count,
        format!(
            "{} entries vs {} events",
            record.timeline.len(),
            truth.event_count
        ),
    );
    out
}
