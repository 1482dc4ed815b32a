//! Zoom's published Contact Center webhook examples (`shared/vendor/zoom/webhooks/`, see its README and
//! SOURCES.md), signed and posted to a real server the way Zoom sends them, on every backend: each is
//! acknowledged (the one sample that is not JSON is quarantined), and what each says comes out in the record
//! and the agents API exactly. The examples are read from the vendor folder, never copied into the project; the
//! test skips where the folder is absent.
//!
//! Every example shares one `event_ts` and many share ids, so each is posted under its own engagement id
//! (`E-<event>`) and its own agent (`U-<event>`): the record then says what that one example says.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common::*;
use chrono::DateTime;
use serde_json::{json, Value};

fn vendor_dir() -> PathBuf {
    std::env::var("ZCC_VENDOR_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor")
        })
}

/// (event name from the file name, body bytes) of every example, or None where the folder is absent.
fn examples() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = vendor_dir().join("zoom/webhooks");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipping: vendor reference data not found at {} (see shared/vendor/README.md)",
            dir.display()
        );
        return None;
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let name = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            (name, std::fs::read(e.path()).expect("read example"))
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 134, "Zoom's 134 published examples");
    Some(out)
}

fn short(name: &str) -> &str {
    name.strip_prefix("contact_center.").unwrap_or(name)
}

/// The example with its own engagement and agent ids (the rest untouched).
fn own_ids(name: &str, mut body: Value) -> Value {
    let s = short(name).to_string();
    let object = match body["payload"].get("object") {
        Some(_) => &mut body["payload"]["object"],
        None => &mut body["payload"],
    };
    if object.get("engagement_id").is_some() {
        object["engagement_id"] = json!(format!("E-{s}"));
    }
    if s.starts_with("user_") && object.get("user_id").is_some() {
        object["user_id"] = json!(format!("U-{s}"));
        object["user_email"] = json!(format!("{s}@example.com"));
    }
    body
}

fn iso(value: &Value) -> String {
    let text = value.as_str().expect("an ISO time");
    let ms = DateTime::parse_from_rfc3339(text)
        .expect("parses")
        .timestamp_millis();
    zcc_bridge::core::record::format_ms(ms).expect("formats")
}

fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect()
}

/// Checks that the record of one example says what the example says.
fn check_record(name: &str, o: &Value, record: &Value) {
    let s = short(name);
    let ctx = |what: &str| format!("{s}: {what}\nrecord: {record:#}");
    if let Some(direction) = o.get("engagement_direction") {
        assert_eq!(&record["direction"], direction, "{}", ctx("direction"));
    }
    if let Some(channel) = o.get("channel") {
        assert_eq!(&record["channel"], channel, "{}", ctx("channel"));
    }
    if let Some(source) = o.get("channel_source") {
        assert_eq!(
            &record["channel_source"],
            source,
            "{}",
            ctx("channel_source")
        );
    }
    let queues = ids(&record["queues"], "cc_queue_id");
    if let Some(q) = o["cc_queue_id"].as_str() {
        assert!(queues.contains(q), "{}", ctx("queue"));
    }
    if let Some(flow) = o["flow_id"].as_str() {
        let flows = ids(&record["flows"], "flow_id");
        assert!(flows.contains(flow), "{}", ctx("flow id"));
        assert_eq!(
            record["flows"][0]["flow_name"],
            o["flow_name"],
            "{}",
            ctx("flow name")
        );
    }
    let consumers = ids(&record["consumers"], "consumer_number");
    if let Some(n) = o["consumer_number"].as_str() {
        assert!(consumers.contains(n), "{}", ctx("consumer number"));
    }
    for c in o["consumers"].as_array().into_iter().flatten() {
        let n = c["consumer_number"].as_str().expect("number");
        assert!(consumers.contains(n), "{}", ctx("recording consumer"));
    }
    let agents = ids(&record["agents"], "user_id");
    let agent_events = s.starts_with("engagement_user_")
        || s.starts_with("engagement_transfer_")
        || s.starts_with("engagement_wrap_up_")
        || s.starts_with("engagement_consumer_")
        || matches!(s, "engagement_note_added" | "engagement_disposition_added");
    if agent_events {
        let user = o["user_id"].as_str().expect("the agent");
        assert!(agents.contains(user), "{}", ctx("agent"));
        let shown = record["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user_id"] == user)
            .unwrap();
        assert_eq!(
            shown["display_name"],
            o["user_display_name"],
            "{}",
            ctx("agent name")
        );
    }
    for u in o["users"].as_array().into_iter().flatten() {
        assert!(
            agents.contains(u["user_id"].as_str().unwrap()),
            "{}",
            ctx("recording user")
        );
    }

    if let Some(step) = s.strip_prefix("engagement_transfer_") {
        assert_eq!(
            record["transfers"].as_array().unwrap().len(),
            1,
            "{}",
            ctx("transfers")
        );
        let t = &record["transfers"][0];
        assert_eq!(t["status"], step, "{}", ctx("transfer status"));
        assert_eq!(
            t["transfer_id"],
            o["transfer_to_task_id"],
            "{}",
            ctx("transfer id")
        );
        assert_eq!(
            t["transfer_type"],
            o["transfer_type"],
            "{}",
            ctx("transfer type")
        );
        assert_eq!(
            t["transfer_level"],
            o["transfer_level"],
            "{}",
            ctx("transfer level")
        );
        assert_eq!(
            t["from"]["user_id"],
            o["user_id"],
            "{}",
            ctx("transfer from")
        );
        assert_eq!(
            t["to"]["user_id"],
            o["transfer_to_user_id"],
            "{}",
            ctx("transfer to user")
        );
        assert_eq!(
            t["to"]["display_name"],
            o["transfer_to_user_display_name"],
            "{}",
            ctx("transfer to name")
        );
        assert_eq!(
            t["to"]["cc_queue_id"],
            o["transfer_to_cc_queue_id"],
            "{}",
            ctx("transfer to queue")
        );
        // The receiving agent and queue join the engagement once the transfer is taken.
        let target = o["transfer_to_user_id"].as_str().unwrap();
        let target_queue = o["transfer_to_cc_queue_id"].as_str().unwrap();
        let taken = matches!(step, "accepted" | "completed");
        assert_eq!(agents.contains(target), taken, "{}", ctx("receiving agent"));
        assert_eq!(
            queues.contains(target_queue),
            taken || o["cc_queue_id"] == target_queue,
            "{}",
            ctx("receiving queue")
        );
    }

    if s == "engagement_note_added" {
        let n = &record["notes"][0];
        assert_eq!(n["note_id"], o["note_id"], "{}", ctx("note id"));
        assert_eq!(n["note"], o["note"], "{}", ctx("note"));
        assert_eq!(n["user_id"], o["user_id"], "{}", ctx("note author"));
        assert_eq!(
            n["last_modified_time"],
            json!(iso(&o["last_modified_time"])),
            "{}",
            ctx("note time")
        );
    }
    if s == "engagement_disposition_added" {
        let d = &record["dispositions"][0];
        assert_eq!(
            d["disposition_id"],
            o["disposition_id"],
            "{}",
            ctx("disposition id")
        );
        assert_eq!(
            d["disposition_name"],
            o["disposition_name"],
            "{}",
            ctx("disposition name")
        );
    }
    if s.starts_with("recording_") {
        if let Some(recording) = record["recordings"].as_array().and_then(|r| r.first()) {
            assert_eq!(
                recording["recording_id"],
                o["recording_id"],
                "{}",
                ctx("recording id")
            );
            if let Some(t) = o.get("recording_start_time_ms") {
                assert_eq!(
                    recording["recording_start_time"],
                    json!(iso(t)),
                    "{}",
                    ctx("recording start")
                );
            }
            if let Some(t) = o.get("recording_end_time_ms") {
                assert_eq!(
                    recording["recording_end_time"],
                    json!(iso(t)),
                    "{}",
                    ctx("recording end")
                );
            }
            for key in [
                "recording_type",
                "recording_duration",
                "owner_id",
                "owner_name",
                "owner_type",
            ] {
                if let Some(v) = o.get(key) {
                    assert_eq!(&recording[key], v, "{}", ctx(key));
                }
            }
            assert_eq!(
                ids(&recording["users"], "user_id"),
                ids(&o["users"], "user_id"),
                "{}",
                ctx("recording users")
            );
            assert_eq!(
                ids(&recording["consumers"], "consumer_number"),
                ids(&o["consumers"], "consumer_number"),
                "{}",
                ctx("recording consumers")
            );
            assert_eq!(
                recording["deleted"],
                json!(matches!(
                    s,
                    "recording_deleted" | "recording_permanently_deleted"
                )),
                "{}",
                ctx("deleted")
            );
        } else {
            // `recording_deleted` names no engagement: there is no record to check.
            panic!("{}", ctx("no recording"));
        }
    }
    let transcript = match s {
        "recording_transcript_completed" => Some(("recording", o["recording_id"].clone())),
        "voicemail_transcript_completed" => Some(("voicemail", o["message_id"].clone())),
        "engagement_messaging_transcript_completed" => {
            Some(("messaging", record["engagement_id"].clone()))
        }
        "engagement_email_transcript_completed" => Some(("email", record["engagement_id"].clone())),
        _ => None,
    };
    if let Some((kind, source_id)) = transcript {
        let t = &record["transcripts"][0];
        assert_eq!(t["type"], kind, "{}", ctx("transcript type"));
        assert_eq!(t["source_id"], source_id, "{}", ctx("transcript subject"));
        assert_eq!(
            t["transcript_url"],
            o["transcript_url"],
            "{}",
            ctx("transcript url")
        );
    }
    if s.starts_with("inbox_message_") || s == "voicemail_transcript_completed" {
        let v = &record["voicemails"][0];
        assert_eq!(v["message_id"], o["message_id"], "{}", ctx("voicemail"));
        assert_eq!(v["inbox_id"], o["inbox_id"], "{}", ctx("inbox"));
    }
    if s == "engagement_started" {
        assert_eq!(
            record["start_time"],
            json!(iso(&o["date_time_ms"])),
            "{}",
            ctx("start")
        );
    }
    if s == "engagement_ended" {
        assert_eq!(
            record["end_time"],
            json!(iso(&o["date_time_ms"])),
            "{}",
            ctx("end")
        );
    }
}

#[tokio::test]
async fn every_published_example_is_accepted_and_merged() {
    let Some(examples) = examples() else { return };
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let mut posted = Vec::new();
        for (name, raw) in &examples {
            let Ok(parsed) = serde_json::from_slice::<Value>(raw) else {
                // `message_status` is not JSON (bad escaping in the sample): kept in quarantine, 400.
                let r = s.post_webhook(raw).await;
                assert_eq!(r.status(), 400, "{name}");
                let v: Value = r.json().await.unwrap();
                assert!(v["quarantine_id"].is_i64(), "{name}: {v}");
                assert_eq!(name, "contact_center.message_status");
                continue;
            };
            let body = own_ids(name, parsed);
            let r = s.post_webhook(&serde_json::to_vec(&body).unwrap()).await;
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{name}: {v}");
            if name == "endpoint.url_validation" {
                assert!(v["encryptedToken"].is_string(), "{v}");
            } else {
                assert!(v["event_id"].is_i64(), "{name}: {v}");
                posted.push((name.clone(), body));
            }
        }
        // Nothing but the one defective sample was quarantined.
        let quarantine = s.get_json("/api/v1/quarantine").await;
        assert_eq!(
            quarantine["items"].as_array().unwrap().len(),
            1,
            "{quarantine}"
        );

        let mut checked = 0;
        for (name, body) in &posted {
            let object = body["payload"].get("object").unwrap_or(&body["payload"]);
            let Some(id) = object["engagement_id"].as_str() else {
                continue;
            };
            let record = s.get_json(&format!("/api/v1/engagements/{id}")).await;
            check_record(name, object, &record);
            checked += 1;
        }
        assert!(checked >= 80, "only {checked} examples name an engagement");

        // Agent events: a lone login means logged in; a status change carries names and ids.
        let agents = s.get_json("/api/v1/agents").await;
        let agent = |id: &str| -> Value {
            agents["agents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["user_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("agent {id} in {agents:#}"))
        };
        assert_eq!(agent("U-user_login")["logged_in"], true);
        assert_eq!(agent("U-user_logout")["logged_in"], false);
        let changed = agent("U-user_status_changed");
        assert_eq!(changed["status"], "Not Ready");
        assert_eq!(changed["sub_status"], "Meal");
        assert_eq!(changed["status_id"], "2");
        assert_eq!(changed["sub_status_id"], "21");
        assert_eq!(changed["display_name"], "John Doe");
        assert_eq!(agent("U-user_opt_in")["display_name"], "John Doe");

        // The offered agent of a task reservation is `assigned_user_id`, and the receiving agent of an accepted
        // transfer `transfer_to_user_id`: the agents API knows both.
        agent("M2rStJNqSyOlmyw-ti2fGg");
        agent("WTTRVy3gQ2i-WjoUIjeHzh");
    }
}

/// Dedup keys hash RFC 8785 bytes since they stopped relying on serde_json's output: for every one of Zoom's
/// published examples the bytes are what was hashed before, so events logged before the change keep their keys
/// without the ingest path having to look up an old one.
#[test]
fn every_published_example_keeps_its_dedup_key_under_rfc_8785() {
    use zcc_bridge::core::canonical::{jcs, legacy, legacy_differs};
    let Some(examples) = examples() else { return };
    let mut checked = 0;
    for (name, body) in examples {
        // A few published examples are not JSON (shared/vendor/README.md): they are quarantined, keyless.
        let Ok(value) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        checked += 1;
        assert_eq!(jcs(&value), legacy(&value), "{name}");
        assert!(
            !legacy_differs(&value),
            "{name} has a number or name that could change its key"
        );
    }
    assert!(checked > 120, "only {checked} examples parse");
}
