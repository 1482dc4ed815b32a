//! The media archive end to end: the bridge against the simulator's REST API and download URLs, archiving into
//! local disk, the S3-compatible server and Azurite that `scripts/test.sh` starts, on SQLite and Postgres.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::archives::{stores, use_store, Store};
use crate::common::sim::{file_sha256, reconcile, simulator, use_simulator};
use crate::common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zcc_bridge::config::{Config, LinkMode, Secret};
use zcc_bridge::core::{EngagementRecord, MediaKind};
use zcc_bridge::media::{Archive, LinkSigner};
use zoom_sim::generator::Scenario;
use zoom_sim::{SimServer, SimServerConfig};

const LINK_SECRET: &str = "test-link-secret-0123456789";

/// Every file the scenario's records point at, as media ids.
fn expected_media(scenario: &Scenario) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in &scenario.truth.engagements {
        for id in &e.recording_ids {
            out.insert(format!("recording:{id}"));
        }
        for id in &e.voicemail_ids {
            out.insert(format!("voicemail:{id}"));
        }
        for (kind, source) in &e.transcripts {
            out.insert(format!("{kind}_transcript:{source}"));
        }
    }
    out
}

fn archive_config(
    config: &mut Config,
    sim: &SimServer,
    sim_config: &SimServerConfig,
    store: Store,
    dir: &std::path::Path,
) {
    use_simulator(config, sim, sim_config);
    config.media.enabled = true;
    config.media.link_secret = Some(Secret::new(LINK_SECRET));
    config.media.not_ready_retry_ms = 200;
    config.media.retry_base_ms = 100;
    config.media.retention_check_seconds = 1;
    use_store(config, store, dir);
}

async fn media_stats(server: &TestServer) -> Value {
    server.get_json("/api/v1/media/stats").await
}

/// Waits until no archive job is pending; returns the stats.
async fn settled(server: &TestServer, within: Duration) -> Value {
    // A read of records waits until every acknowledged event is merged, so every job they imply exists.
    server.get_json("/api/v1/engagements?limit=1").await;
    let deadline = Instant::now() + within;
    loop {
        let stats = media_stats(server).await;
        if stats["pending"] == 0
            && stats["archived"].as_i64().unwrap_or(0) + stats["dead"].as_i64().unwrap_or(0) > 0
        {
            return stats;
        }
        if Instant::now() >= deadline {
            let pending = all_media(server, "&state=pending").await;
            panic!("archive jobs still pending after {within:?}: {stats}: {pending:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_media(server: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = server
            .get_json(&format!("/api/v1/media?limit=1000{query}{after}"))
            .await;
        out.extend(page["media"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => after = format!("&cursor={next}"),
            None => return out,
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn record(server: &TestServer, id: &str) -> EngagementRecord {
    server
        .get(&format!("/api/v1/engagements/{id}"))
        .await
        .json()
        .await
        .expect("an engagement record")
}

/// The public client of a link: no admin token.
async fn fetch(link: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(link);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.expect("request sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_is_archived_once_and_served_through_signed_links() {
    let sim_config = SimServerConfig {
        media_bytes: 300_007,
        // Zoom is still "processing" the files for a moment after the calls.
        media_processing_delay: Duration::from_millis(1500),
        download_redirect: true,
        ..Default::default()
    };
    for backend in backends() {
        for store in stores() {
            let (sim, scenario) = simulator(14, 41, sim_config.clone()).await;
            let expected = expected_media(&scenario);
            assert!(
                expected.iter().any(|m| m.starts_with("recording:")),
                "the scenario has recordings"
            );
            let dir = tempfile::tempdir().expect("tempdir");
            let mut server = TestServer::start_with(&backend, |c| {
                archive_config(c, &sim, &sim_config, store, dir.path())
            })
            .await;
            let run = reconcile(&server, &scenario).await;
            assert_eq!(run["status"], "succeeded", "{run}");
            let stats = settled(&server, Duration::from_secs(60)).await;
            let case = format!("{backend:?}/{store:?}");
            assert_eq!(stats["archived"], expected.len(), "{case}: {stats}");
            assert_eq!(stats["dead"], 0, "{case}: {stats}");
            let sim_stats = sim.stats();
            assert!(
                sim_stats.download_requests > sim_stats.downloads,
                "{case}: files answered 'not ready' at first and were fetched later: {sim_stats:?}"
            );
            assert!(sim_stats.download_redirects > 0, "{case}: {sim_stats:?}");

            let rows = all_media(&server, "").await;
            let ids: BTreeSet<String> = rows
                .iter()
                .filter_map(|r| r["media_id"].as_str().map(String::from))
                .collect();
            assert_eq!(ids, expected, "{case}");
            for row in &rows {
                let key = row["object_key"].as_str().expect("key");
                let engagement = row["engagement_id"].as_str().expect("engagement");
                let parts: Vec<&str> = key.split('/').collect();
                assert_eq!(parts.len(), 5, "{key}");
                assert!(
                    parts[0].len() == 4 && parts[1].len() == 2 && parts[2].len() == 2,
                    "{key}"
                );
                assert_eq!(parts[3], engagement, "{key}");
                if row["kind"] == "recording" {
                    let item = row["item_id"].as_str().unwrap_or_default();
                    assert!(
                        parts[4] == format!("{item}.mp3") || parts[4] == format!("{item}.mp4"),
                        "{key}"
                    );
                    assert_eq!(row["bytes"], 300_007, "{key}");
                }
            }

            // Every record's files carry a working link; the bytes are what was hashed.
            let mut first_recording_link = None;
            for truth in &scenario.truth.engagements {
                let record = record(&server, &truth.engagement_id).await;
                let mut views = Vec::new();
                for r in &record.recordings {
                    views.push((
                        MediaKind::Recording,
                        r.recording_id.clone(),
                        r.media.clone(),
                    ));
                    if truth
                        .transcripts
                        .contains(&("recording".into(), r.recording_id.clone()))
                    {
                        views.push((
                            MediaKind::RecordingTranscript,
                            r.recording_id.clone(),
                            r.transcript_media.clone(),
                        ));
                    }
                }
                for v in &record.voicemails {
                    views.push((MediaKind::Voicemail, v.message_id.clone(), v.media.clone()));
                }
                for (kind, id, view) in views {
                    let view =
                        view.unwrap_or_else(|| panic!("{case}: {kind:?} {id} has no media view"));
                    assert_eq!(view.state, "archived", "{case}: {kind:?} {id}: {view:?}");
                    let link = view.link.clone().expect("a link");
                    assert!(link.starts_with(&server.base), "{link}");
                    let response = fetch(&link, None).await;
                    assert_eq!(response.status(), 200, "{case}: {link}");
                    assert_eq!(response.headers()["accept-ranges"], "bytes");
                    assert_eq!(
                        response.headers()["content-type"]
                            .to_str()
                            .unwrap_or_default(),
                        view.content_type.clone().unwrap_or_default()
                    );
                    let body = response.bytes().await.expect("body");
                    assert_eq!(Some(body.len() as i64), view.bytes, "{case}: {link}");
                    assert_eq!(Some(sha256(&body)), view.sha256, "{case}: {link}");
                    if kind == MediaKind::Recording && first_recording_link.is_none() {
                        first_recording_link = Some((link, body));
                    }
                }
            }

            // Seeking: byte ranges as an audio player asks for them.
            let (link, full) = first_recording_link.expect("a recording link");
            let partial = fetch(&link, Some("bytes=1000-1999")).await;
            assert_eq!(partial.status(), 206);
            assert_eq!(
                partial.headers()["content-range"],
                format!("bytes 1000-1999/{}", full.len())
            );
            assert_eq!(partial.bytes().await.expect("body"), full.slice(1000..2000));
            let tail = fetch(&link, Some("bytes=-100")).await;
            assert_eq!(tail.status(), 206);
            assert_eq!(
                tail.bytes().await.expect("body"),
                full.slice(full.len() - 100..)
            );
            let beyond = fetch(&link, Some(&format!("bytes={}-", full.len()))).await;
            assert_eq!(beyond.status(), 416);
            assert_eq!(
                beyond.headers()["content-range"],
                format!("bytes */{}", full.len())
            );
            // Last positions past the end, even past u64, are clamped to it.
            for huge in ["18446744073709551615", "99999999999999999999999999"] {
                let clamped = fetch(&link, Some(&format!("bytes=10-{huge}"))).await;
                assert_eq!(clamped.status(), 206, "{huge}");
                assert_eq!(
                    clamped.headers()["content-range"],
                    format!("bytes 10-{}/{}", full.len() - 1, full.len())
                );
                assert_eq!(clamped.bytes().await.expect("body"), full.slice(10..));
            }
            // Conditional requests against the ETag (the SHA-256).
            let etag = fetch(&link, None).await.headers()["etag"].clone();
            let conditional = |name: &'static str, value: String, range: Option<&'static str>| {
                let link = link.clone();
                async move {
                    let mut request = reqwest::Client::new().get(&link).header(name, value);
                    if let Some(range) = range {
                        request = request.header("range", range);
                    }
                    request.send().await.expect("media request")
                }
            };
            let etag_text = etag.to_str().expect("etag").to_string();
            let unchanged = conditional("if-none-match", etag_text.clone(), None).await;
            assert_eq!(unchanged.status(), 304);
            assert_eq!(unchanged.headers()["etag"], etag);
            assert!(unchanged.bytes().await.expect("body").is_empty());
            let weak =
                conditional("if-none-match", format!("\"other\", W/{etag_text}"), None).await;
            assert_eq!(weak.status(), 304);
            let changed = conditional("if-none-match", "\"other\"".into(), None).await;
            assert_eq!(changed.status(), 200);
            let same_version = conditional("if-range", etag_text.clone(), Some("bytes=0-9")).await;
            assert_eq!(same_version.status(), 206);
            let other_version =
                conditional("if-range", "\"other\"".into(), Some("bytes=0-9")).await;
            assert_eq!(other_version.status(), 200);
            assert_eq!(other_version.bytes().await.expect("body"), full);

            // Tampered and expired links are refused.
            let (path, query) = link.split_once('?').expect("query");
            let tampered_sig = if query.ends_with('A') {
                format!("{}B", &link[..link.len() - 1])
            } else {
                format!("{}A", &link[..link.len() - 1])
            };
            let other_file = link.replacen("/media/recording/", "/media/voicemail/", 1);
            let later = {
                let expires: i64 = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("expires="))
                    .and_then(|v| v.parse().ok())
                    .expect("expires");
                link.replace(
                    &format!("expires={expires}"),
                    &format!("expires={}", expires + 3600),
                )
            };
            for bad in [tampered_sig, other_file, later, path.to_string()] {
                let response = fetch(&bad, None).await;
                assert_eq!(response.status(), 403, "{bad}");
            }
            let recording_id = path.rsplit('/').next().expect("id");
            let signer = LinkSigner::new(
                LINK_SECRET.as_bytes(),
                &server.base,
                Duration::from_secs(60),
            );
            let expired = signer.link_expiring(MediaKind::Recording, recording_id, now_secs() - 1);
            let response = fetch(&expired, None).await;
            assert_eq!(response.status(), 403);
            assert!(response
                .text()
                .await
                .unwrap_or_default()
                .contains("expired"));
            let fresh = signer.link_expiring(MediaKind::Recording, recording_id, now_secs() + 60);
            assert_eq!(
                fetch(&fresh, None).await.status(),
                200,
                "a link signed with the key is good"
            );

            // Reconciling again archives nothing twice: no download, the same rows.
            let downloads = sim.stats().downloads;
            let again = reconcile(&server, &scenario).await;
            assert_eq!(again["status"], "succeeded");
            tokio::time::sleep(Duration::from_millis(800)).await;
            let stats_again = settled(&server, Duration::from_secs(30)).await;
            assert_eq!(stats_again, stats, "{case}");
            assert_eq!(
                sim.stats().downloads,
                downloads,
                "{case}: nothing downloaded again"
            );
            server.shutdown().await;
            sim.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_downloads_resume_and_tokens_expiring_mid_download_are_renewed() {
    let sim_config = SimServerConfig {
        media_bytes: 2_000_003,
        // The first transfer of every file breaks after 700 kB: detected by size (short of Content-Length).
        cut_first_download_after: Some(700_000),
        // About two seconds per file.
        download_bytes_per_second: Some(1_000_000),
        ..Default::default()
    };
    for store in stores() {
        let (sim, scenario) = simulator(6, 43, sim_config.clone()).await;
        let expected = expected_media(&scenario);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer::start_with(&crate::common::Backend::Sqlite, |c| {
            archive_config(c, &sim, &sim_config, store, dir.path())
        })
        .await;
        let run = reconcile(&server, &scenario).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        // From now on tokens keep expiring (every 300 ms, shorter than a download): downloads and their resumes
        // meet a 401 and renew.
        let expiring = async {
            loop {
                sim.expire_all_tokens();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let work = settled(&server, Duration::from_secs(90));
        let stats = tokio::select! {
            stats = work => stats,
            _ = expiring => unreachable!("expires tokens forever"),
        };
        assert_eq!(stats["archived"], expected.len(), "{store:?}: {stats}");
        let sim_stats = sim.stats();
        assert!(sim_stats.downloads_cut > 0, "{sim_stats:?}");
        assert!(sim_stats.unauthorized > 0, "{sim_stats:?}");
        assert!(sim_stats.tokens_issued > 1, "{sim_stats:?}");
        // The archived bytes are exactly Zoom's file, though fetched in pieces.
        for row in all_media(&server, "&kind=recording").await {
            let id = row["item_id"].as_str().expect("id");
            let url =
                scenario_recording_url(&server, row["engagement_id"].as_str().expect("e"), id)
                    .await;
            assert_eq!(
                row["sha256"],
                file_sha256(&sim, &sim_config, &url).await,
                "{store:?}: {id}"
            );
            assert_eq!(row["bytes"], 2_000_003);
        }
        server.shutdown().await;
        sim.shutdown().await;
    }
}

/// The download URL a record holds for a recording.
async fn scenario_recording_url(
    server: &TestServer,
    engagement_id: &str,
    recording_id: &str,
) -> String {
    let record = record(server, engagement_id).await;
    record
        .recordings
        .iter()
        .find(|r| r.recording_id == recording_id)
        .and_then(|r| r.download_url.clone())
        .expect("the record has the recording's URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_never_made_available_are_dead_lettered_and_replayable() {
    let sim_config = SimServerConfig {
        media_bytes: 50_000,
        media_processing_delay: Duration::from_secs(4),
        ..Default::default()
    };
    for backend in backends() {
        let (sim, scenario) = simulator(5, 47, sim_config.clone()).await;
        let expected = expected_media(&scenario);
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let mut server = TestServer::start_with(&backend, |c| {
            archive_config(c, &sim, &sim_config, Store::Local, dir.path());
            c.media.not_ready_give_up_seconds = 1;
        })
        .await;
        reconcile(&server, &scenario).await;
        let stats = settled(&server, Duration::from_secs(30)).await;
        assert_eq!(stats["dead"], expected.len(), "{backend:?}: {stats}");
        let dead = all_media(&server, "&state=dead").await;
        assert_eq!(dead.len(), expected.len());
        assert!(
            dead.iter().all(|d| d["media"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("never made the file available"))),
            "{dead:?}"
        );
        // The records say so too.
        let some = &scenario
            .truth
            .engagements
            .iter()
            .find(|e| !e.recording_ids.is_empty())
            .expect("a recording");
        let r = record(&server, &some.engagement_id).await;
        assert_eq!(
            r.recordings[0].media.as_ref().map(|m| m.state.as_str()),
            Some("dead")
        );

        // Zoom finishes processing; the operator replays the dead letters.
        tokio::time::sleep(Duration::from_secs(4).saturating_sub(started.elapsed())).await;
        let response = server
            .client
            .post(server.url("/api/v1/media/retry"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .expect("retry");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["requeued"], expected.len());
        let stats = settled(&server, Duration::from_secs(30)).await;
        assert_eq!(stats["archived"], expected.len(), "{backend:?}: {stats}");
        assert_eq!(stats["dead"], 0);
        server.shutdown().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_files_and_the_record_shows_it() {
    let sim_config = SimServerConfig {
        media_bytes: 40_000,
        ..Default::default()
    };
    for store in stores() {
        let (sim, scenario) = simulator(6, 53, sim_config.clone()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config_used = None;
        let mut server = TestServer::start_with(&crate::common::Backend::Sqlite, |c| {
            archive_config(c, &sim, &sim_config, store, dir.path());
            // Recordings are kept for 0 days: deleted at the first check after archiving. Transcripts are kept.
            c.media.retention_days.recordings = Some(0);
            config_used = Some(c.clone());
        })
        .await;
        let config = config_used.expect("config");
        reconcile(&server, &scenario).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let recordings = loop {
            let rows = all_media(&server, "&kind=recording").await;
            if !rows.is_empty() && rows.iter().all(|r| r["state"] == "expired") {
                break rows;
            }
            assert!(Instant::now() < deadline, "{store:?}: {rows:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let archive =
            Archive::open(&config.storage.media, &config.storage, &config.media).expect("archive");
        for row in &recordings {
            assert!(row["deleted_at"].as_i64().is_some(), "{row}");
            let key = row["object_key"].as_str().expect("key");
            assert_eq!(
                archive.head(key).await.expect("head"),
                None,
                "{store:?}: {key} deleted"
            );
        }
        let transcripts = all_media(&server, "&kind=recording_transcript").await;
        for row in &transcripts {
            assert_eq!(row["state"], "archived", "{row}");
            assert!(archive
                .head(row["object_key"].as_str().expect("key"))
                .await
                .expect("head")
                .is_some());
        }
        // The record shows the deletion; an old link answers 410 Gone.
        let id = recordings[0]["item_id"].as_str().expect("id");
        let engagement = recordings[0]["engagement_id"].as_str().expect("e");
        let r = record(&server, engagement).await;
        let view = r
            .recordings
            .iter()
            .find(|x| x.recording_id == id)
            .and_then(|x| x.media.clone())
            .expect("view");
        assert_eq!(view.state, "expired");
        assert!(view.deleted_at.is_some() && view.link.is_none());
        let signer = LinkSigner::new(
            LINK_SECRET.as_bytes(),
            &server.base,
            Duration::from_secs(60),
        );
        let (link, _) = signer.link(MediaKind::Recording, id, now_secs());
        assert_eq!(fetch(&link, None).await.status(), 410);
        // So does the durable link a system of record kept.
        assert!(view.permalink.is_none());
        let permalink = signer.permalink(MediaKind::Recording, id, 0);
        assert_eq!(fetch(&permalink, None).await.status(), 410);
        server.shutdown().await;
        sim.shutdown().await;
    }
}

/// What a durable link answers, without following its redirect.
async fn resolve(permalink: &str) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client.get(permalink).send().await.expect("request sent");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_links_for_systems_of_record_redirect_until_revoked() {
    let sim_config = SimServerConfig {
        media_bytes: 30_000,
        ..Default::default()
    };
    for backend in backends() {
        let (sim, scenario) = simulator(14, 41, sim_config.clone()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer::start_with(&backend, |c| {
            archive_config(c, &sim, &sim_config, Store::Local, dir.path());
            // Expiring links live a day; the redirect still hands out a short-lived one.
            c.media.link_ttl_seconds = 86_400;
        })
        .await;
        reconcile(&server, &scenario).await;
        settled(&server, Duration::from_secs(60)).await;
        let engagement = scenario
            .truth
            .engagements
            .iter()
            .find(|e| !e.recording_ids.is_empty())
            .expect("a recorded engagement");
        let first = record(&server, &engagement.engagement_id).await;
        let recording = &first.recordings[0];
        let media = recording.media.clone().expect("archived");
        let permalink = media.permalink.clone().expect("a durable link");
        // Stable: the same link at every read (expiring links are signed anew).
        let again = record(&server, &engagement.engagement_id).await;
        assert_eq!(
            again.recordings[0]
                .media
                .as_ref()
                .unwrap()
                .permalink
                .as_ref(),
            Some(&permalink)
        );

        // It redirects to a fresh signed link that lives minutes, not the configured day, and serves the file.
        let (status, location) = resolve(&permalink).await;
        assert_eq!(status, 307, "{backend:?}");
        let location = location.expect("a location");
        let expires: i64 = location
            .split("expires=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .and_then(|v| v.parse().ok())
            .expect("an expiring link");
        assert!(expires <= now_secs() + 301, "{location}");
        let served = fetch(&location, None).await;
        assert_eq!(served.status(), 200);
        let bytes = served.bytes().await.expect("body");
        assert_eq!(Some(sha256(&bytes)), media.sha256);

        // A token that is not the file's, or a file that does not exist, gets 403 alike.
        let forged = format!("{}AAAA", &permalink[..permalink.len() - 4]);
        assert_eq!(resolve(&forged).await.0, 403);
        let other_file = permalink.replace(&recording.recording_id, "no-such-recording");
        assert_eq!(resolve(&other_file).await.0, 403);

        // Revoking the one file: its old link is dead, the record carries a new one that works.
        let revoke = |body: Value| {
            let client = server.client.clone();
            let url = server.url("/api/v1/media/permalinks/revoke");
            async move {
                let r = client
                    .post(url)
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent");
                (r.status().as_u16(), r.json::<Value>().await.expect("json"))
            }
        };
        let (status, body) =
            revoke(json!({"kind": "recording", "item_id": recording.recording_id})).await;
        assert_eq!((status, &body["revoked"]), (200, &json!(1)), "{body}");
        assert_eq!(resolve(&permalink).await.0, 403);
        let renewed = record(&server, &engagement.engagement_id).await.recordings[0]
            .media
            .clone()
            .and_then(|m| m.permalink)
            .expect("a new durable link");
        assert_ne!(renewed, permalink);
        assert_eq!(resolve(&renewed).await.0, 307);
        // Other files' links were left alone ...
        let others: Vec<String> = all_media(&server, "&state=archived")
            .await
            .iter()
            .filter(|m| m["item_id"] != recording.recording_id.as_str())
            .map(|m| {
                let kind = MediaKind::parse(m["kind"].as_str().unwrap()).unwrap();
                let signer = LinkSigner::new(
                    LINK_SECRET.as_bytes(),
                    &server.base,
                    Duration::from_secs(60),
                );
                signer.permalink(kind, m["item_id"].as_str().unwrap(), 0)
            })
            .collect();
        assert!(!others.is_empty());
        for link in &others {
            assert_eq!(resolve(link).await.0, 307, "{link}");
        }
        // ... until every link is revoked at once.
        let (status, body) = revoke(json!({"all": true})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(resolve(&renewed).await.0, 403);
        for link in &others {
            assert_eq!(resolve(link).await.0, 403, "{link}");
        }
        // Bad requests and unknown files.
        assert_eq!(revoke(json!({"kind": "recording"})).await.0, 400);
        assert_eq!(
            revoke(json!({"kind": "recording", "item_id": "nope"}))
                .await
                .0,
            404
        );
        server.shutdown().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_links_come_from_the_store_itself() {
    let sim_config = SimServerConfig {
        media_bytes: 30_000,
        ..Default::default()
    };
    for store in stores().into_iter().filter(|s| *s != Store::Local) {
        let (sim, scenario) = simulator(4, 59, sim_config.clone()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer::start_with(&crate::common::Backend::Sqlite, |c| {
            archive_config(c, &sim, &sim_config, store, dir.path());
            c.media.links = LinkMode::Presigned;
        })
        .await;
        reconcile(&server, &scenario).await;
        settled(&server, Duration::from_secs(30)).await;
        let rows = all_media(&server, "&state=archived").await;
        assert!(!rows.is_empty());
        for row in rows {
            let link = row["media"]["link"].as_str().expect("link");
            assert!(
                !link.starts_with(&server.base),
                "{store:?}: {link} is the store's URL"
            );
            let response = fetch(link, None).await;
            assert_eq!(response.status(), 200, "{store:?}: {link}");
            let body = response.bytes().await.expect("body");
            assert_eq!(row["sha256"], sha256(&body));
        }
        server.shutdown().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_the_archive_verified_and_resumes() {
    let sim_config = SimServerConfig {
        media_bytes: 120_000,
        ..Default::default()
    };
    let (sim, scenario) = simulator(8, 61, sim_config.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config_used = None;
    let mut server = TestServer::start_with(&crate::common::Backend::Sqlite, |c| {
        archive_config(c, &sim, &sim_config, Store::Local, &dir.path().join("disk"));
        config_used = Some(c.clone());
    })
    .await;
    let config = config_used.expect("config");
    reconcile(&server, &scenario).await;
    let stats = settled(&server, Duration::from_secs(30)).await;
    let archived = stats["archived"].as_u64().expect("count");
    let rows = all_media(&server, "&state=archived").await;
    server.shutdown().await;
    sim.shutdown().await;

    // To the last store available (S3 or Azure on CI), else another directory.
    let target_store = *stores().last().expect("a store");
    let mut target_config = config.clone();
    use_store(&mut target_config, target_store, &dir.path().join("copy"));
    let target = target_config.storage.media.clone();
    let run = |to: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"));
        command
            .args(["media", "migrate", "--json", "--to", to])
            .env(
                "ZCC_BRIDGE_STORAGE__DATABASE",
                config.storage.database.expose(),
            )
            .env("ZCC_BRIDGE_STORAGE__MEDIA", &config.storage.media)
            .env("ZCC_BRIDGE_LOG__LEVEL", "warn");
        let s3 = &target_config.storage.s3;
        let az = &target_config.storage.azure;
        for (key, value) in [
            ("STORAGE__S3__ENDPOINT", s3.endpoint.clone()),
            ("STORAGE__S3__REGION", s3.region.clone()),
            ("STORAGE__S3__ACCESS_KEY_ID", s3.access_key_id.clone()),
            (
                "STORAGE__S3__SECRET_ACCESS_KEY",
                s3.secret_access_key
                    .as_ref()
                    .map(|s| s.expose().to_string()),
            ),
            ("STORAGE__S3__ALLOW_HTTP", Some(s3.allow_http.to_string())),
            ("STORAGE__AZURE__ACCOUNT", az.account.clone()),
            (
                "STORAGE__AZURE__ACCESS_KEY",
                az.access_key.as_ref().map(|s| s.expose().to_string()),
            ),
            ("STORAGE__AZURE__ENDPOINT", az.endpoint.clone()),
            (
                "STORAGE__AZURE__ALLOW_HTTP",
                Some(az.allow_http.to_string()),
            ),
        ] {
            if let Some(value) = value {
                command.env(format!("ZCC_BRIDGE_{key}"), value);
            }
        }
        command.output().expect("run zcc-bridge media migrate")
    };
    let first = run(&target);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    let report: Value = serde_json::from_str(&stdout).expect("report json");
    assert_eq!(report["copied"], archived, "{report}");
    // Not a terminal: no progress drawn, no carriage returns or escape codes in what a file would keep.
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert_eq!(report["failed"], 0);

    let copy = Archive::open(&target, &target_config.storage, &target_config.media)
        .expect("target archive");
    for row in &rows {
        let key = row["object_key"].as_str().expect("key");
        let bytes = copy
            .get(key, None)
            .await
            .expect("copied object")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(row["sha256"], sha256(&bytes), "{target_store:?}: {key}");
    }
    // A second run copies nothing: every file is recorded as done for this target.
    let second = run(&target);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    let report: Value = serde_json::from_str(&stdout).expect("report json");
    assert_eq!(report["copied"], 0, "{report}");
    assert_eq!(report["skipped"], archived);
}

/// Zoom's `recording_completed`, `*_transcript_completed` and `inbox_message_received` webhooks name a file but carry
/// no download URL (Zoom's published examples): each makes the bridge fetch that engagement's recordings and inbox
/// messages over REST, and every file is archived without any window-wide listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_announced_by_webhooks_are_fetched_per_engagement_and_archived() {
    let sim_config = SimServerConfig {
        media_bytes: 64_000,
        ..Default::default()
    };
    for backend in backends() {
        let (sim, scenario) = simulator(10, 67, sim_config.clone()).await;
        let expected = expected_media(&scenario);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer::start_with(&backend, |c| {
            archive_config(c, &sim, &sim_config, Store::Local, dir.path());
            c.reconcile.enabled = true;
            c.reconcile.fetch_on_events = true;
            c.reconcile.fetch_settle_seconds = 0;
        })
        .await;
        // Every webhook once, in order.
        let mut config =
            zoom_sim::emitter::EmitterConfig::new(server.url("/webhooks/zoom"), SECRET);
        config.concurrency = 8;
        let report = zoom_sim::emitter::Emitter::new(config)
            .expect("emitter")
            .emit_all(&scenario.events)
            .await;
        assert_eq!(report.failed, 0, "{report:?}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let stats = loop {
            let stats = media_stats(&server).await;
            if stats["pending"] == 0 && stats["archived"] == expected.len() {
                break stats;
            }
            assert!(
                Instant::now() < deadline,
                "{backend:?}: {stats} of {}",
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(stats["dead"], 0, "{backend:?}: {stats}");
        let sim_stats = sim.stats();
        assert!(sim_stats.engagement_recordings > 0, "{sim_stats:?}");
        assert_eq!(
            sim_stats.list_recordings, 0,
            "no window-wide listing was needed"
        );
        server.shutdown().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limits_on_downloads_are_retried_with_backoff() {
    let sim_config = SimServerConfig {
        media_bytes: 20_000,
        download_fault_5xx_rate: 0.3,
        download_fault_429_rate: 0.2,
        fault_seed: 9,
        ..Default::default()
    };
    let (sim, scenario) = simulator(24, 71, sim_config.clone()).await;
    let expected = expected_media(&scenario);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_with(&crate::common::Backend::Sqlite, |c| {
        archive_config(c, &sim, &sim_config, Store::Local, dir.path());
    })
    .await;
    reconcile(&server, &scenario).await;
    let stats = settled(&server, Duration::from_secs(90)).await;
    assert_eq!(stats["archived"], expected.len(), "{stats}");
    assert_eq!(stats["dead"], 0, "{stats}");
    let sim_stats = sim.stats();
    assert!(
        sim_stats.injected_5xx > 0 && sim_stats.injected_429 > 0,
        "{sim_stats:?}"
    );
    // The failed attempts are on the files' records; the last one succeeded.
    let rows = all_media(&server, "").await;
    let retried = rows
        .iter()
        .filter(|r| r["attempts"].as_i64().unwrap_or(0) > 0)
        .count();
    assert!(retried > 0, "{rows:?}");
    server.shutdown().await;
    sim.shutdown().await;
}
