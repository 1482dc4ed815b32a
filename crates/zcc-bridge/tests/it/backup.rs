//! `zcc-bridge backup --to FILE` as an operator runs it: the real binary copies the SQLite database of a running
//! server (which keeps taking webhooks meanwhile), the copy holds every event acknowledged before the backup
//! started and passes `PRAGMA integrity_check`, a second server started on the copy serves the same records, an
//! existing FILE is refused without `--force`, `--to -` writes the database to standard output; with PostgreSQL
//! the command prints `pg_dump` instead, password masked, and fails.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, SqliteConnection};
use tokio::process::{Child, Command};

use crate::common::process::{send_signed, spawn_serve};
use crate::common::*;

const TS0: i64 = 1_763_715_600_000;

async fn spawn_server(db_url: &str) -> (Child, String) {
    spawn_serve(
        &[],
        &[
            ("ZCC_BRIDGE_SERVER__LISTEN", "127.0.0.1:0".to_string()),
            ("ZCC_BRIDGE_STORAGE__DATABASE", db_url.to_string()),
            ("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN", SECRET.to_string()),
            ("ZCC_BRIDGE_ADMIN__TOKEN", ADMIN_TOKEN.to_string()),
            ("ZCC_BRIDGE_MEDIA__ENABLED", "false".to_string()),
        ],
    )
    .await
}

/// Event `i`: engagement `E{i/2}` starts (even) or ends (odd).
fn event_body(i: usize) -> Vec<u8> {
    let engagement = format!("E{}", i / 2);
    let event = if i.is_multiple_of(2) {
        "contact_center.engagement_started"
    } else {
        "contact_center.engagement_ended"
    };
    envelope(
        event,
        TS0 + i as i64,
        json!({"engagement_id": engagement, "channel": "voice", "direction": "inbound"}),
    )
}

async fn run_backup(db_url: &str, to: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .arg("backup")
        .arg("--to")
        .arg(to)
        .args(extra)
        .env_remove("ZCC_BRIDGE_CONFIG")
        .env("ZCC_BRIDGE_STORAGE__DATABASE", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run zcc-bridge backup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn api(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let r = client
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("api");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

/// The event times (offsets from TS0) in a database file, read directly.
async fn logged_offsets(path: &Path) -> BTreeSet<i64> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .expect("open the copy");
    let rows: Vec<i64> = sqlx::query_scalar("SELECT event_ts FROM events")
        .fetch_all(&mut conn)
        .await
        .expect("read events");
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check");
    assert_eq!(problems, ["ok"]);
    conn.close().await.ok();
    rows.into_iter().map(|ts| ts - TS0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_running_servers_sqlite_database() {
    let db = fresh_db(&Backend::Sqlite).await;
    let (mut child, base) = spawn_server(&db.url).await;
    let client = reqwest::Client::new();

    let before = 200;
    for i in 0..before {
        let status = send_signed(&client, &base, &event_body(i))
            .await
            .expect("server up");
        assert!(status.is_success(), "event {i}: {status}");
    }

    // Webhooks keep arriving while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = before;
            while !stop.load(Ordering::SeqCst) && i < before + 2000 {
                let status = send_signed(&client, &base, &event_body(i))
                    .await
                    .expect("server up");
                assert!(status.is_success(), "event {i}: {status}");
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    let copy = db.dir().join("backups").join("zcc-bridge.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let out = run_backup(&db.url, &copy, &[]).await;
    stop.store(true, Ordering::SeqCst);
    let sent = writer.await.expect("writer");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "backup failed: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains("integrity_check ok"), "{stdout}");
    assert!(stdout.contains(&copy.display().to_string()), "{stdout}");

    // Every event acknowledged before the backup started is in the copy, and the copy holds nothing that was
    // not sent; it is one file (no WAL beside it), and no temporary file is left behind.
    let in_copy = logged_offsets(&copy).await;
    for i in 0..before as i64 {
        assert!(in_copy.contains(&i), "event {i} is missing from the backup");
    }
    assert!(in_copy.iter().all(|&i| (0..sent as i64).contains(&i)));
    assert!(
        stdout.contains(&format!("{} events", in_copy.len())),
        "{stdout}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(copy.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "zcc-bridge.db")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    // An existing file is kept unless --force.
    let size = std::fs::metadata(&copy).unwrap().len();
    let out = run_backup(&db.url, &copy, &[]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), size);
    let out = run_backup(&db.url, &copy, &["--force", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let everything = logged_offsets(&copy).await;
    assert_eq!(report["events"], everything.len());
    assert_eq!(everything.len(), sent, "the server was idle: all of it");
    assert!(report["bytes"].as_u64().unwrap() > 0);
    assert!(report["schema_version"].as_i64().unwrap() >= 1);

    // `--to -`: the database on standard output (containers without a shell to fetch a file with), the report
    // on standard error, nothing left beside the database.
    let out = run_backup(&db.url, Path::new("-"), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.starts_with(b"SQLite format 3\0"));
    assert!(
        text(&out.stderr).contains(&format!("{sent} events")),
        "{}",
        text(&out.stderr)
    );
    let piped = db.dir().join("piped.db");
    std::fs::write(&piped, &out.stdout).unwrap();
    assert_eq!(logged_offsets(&piped).await, everything);
    let beside: Vec<_> = std::fs::read_dir(db.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("backup-"))
        .collect();
    assert!(beside.is_empty(), "left beside the database: {beside:?}");

    // The server did not notice.
    let status = send_signed(&client, &base, &event_body(sent))
        .await
        .expect("server up");
    assert!(status.is_success());
    child.start_kill().expect("stop");
    child.wait().await.expect("reaped");

    // Restore: a server started on the copy serves the same records.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = restored_dir.path().join("restored.db");
    std::fs::copy(&copy, &restored).unwrap();
    let (mut child, base) = spawn_server(&format!("sqlite://{}", restored.display())).await;
    let stats = api(&client, &base, "/api/v1/stats").await;
    assert_eq!(stats["events"].as_u64().unwrap() as usize, sent, "{stats}");
    let record = api(&client, &base, "/api/v1/engagements/E0").await;
    assert_eq!(record["channel"], "voice", "{record}");
    assert_eq!(record["timeline"].as_array().unwrap().len(), 2, "{record}");
    child.start_kill().expect("stop");
    child.wait().await.expect("reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_what_it_cannot_copy() {
    let dir = tempfile::tempdir().unwrap();

    // PostgreSQL: the pg_dump command, password masked, and a failure. Nothing is connected to.
    let url = "postgres://zcc:not-for-printing@db.invalid:5432/zcc";
    let out = run_backup(url, &dir.path().join("zcc.dump"), &[]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("pg_dump --format=custom --file=")
            && stderr.contains("--dbname='postgres://zcc:***@db.invalid:5432/zcc'"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-for-printing"), "{stderr}");
    assert!(!dir.path().join("zcc.dump").exists());

    // A database that does not exist is not created.
    let missing = dir.path().join("missing.db");
    let out = run_backup(
        &format!("sqlite://{}", missing.display()),
        &dir.path().join("copy.db"),
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no database at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
    assert!(!dir.path().join("copy.db").exists());
}
