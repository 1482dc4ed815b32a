//! Hostile input at the edges: values from requests in the logs, wrong-typed secrets in the configuration.

use std::ffi::OsStr;
use std::time::Duration;

use crate::common::process::spawn_serve_logging;
use crate::common::*;

/// A forged log line: a newline, a plausible timestamp and level, then terminal escapes (clear screen, a C1 CSI),
/// a carriage return and a NUL byte. Percent-encoded for paths.
const FORGED_DATE: &str = "1999-12-31T23:59:59";
const INJECTION: &str =
    "x\n1999-12-31T23:59:59.000000Z ERROR zcc_bridge: FORGED\u{1b}[2J\r\0\u{9b}31m";

fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `line` starts like a line of the text log: `<RFC 3339 UTC timestamp> <LEVEL> `.
fn starts_like_a_log_line(line: &str) -> bool {
    let Some((timestamp, rest)) = line.split_once(' ') else {
        return false;
    };
    let shape = timestamp.len() >= 20
        && timestamp.ends_with('Z')
        && timestamp.as_bytes()[4] == b'-'
        && timestamp.as_bytes()[10] == b'T'
        && timestamp[..4].bytes().all(|b| b.is_ascii_digit());
    let level = rest.trim_start();
    shape
        && ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
            .iter()
            .any(|l| level.starts_with(l))
}

fn config_file(dir: &std::path::Path, format: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{format}.toml"));
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[storage]
database = "sqlite://{db}"
media = "file://{media}"
[admin]
token = "{ADMIN_TOKEN}"
[zoom]
webhook_secret_token = "{SECRET}"
[log]
format = "{format}"
[flow.sources.ivr]
token = "flow-token-0123456789"
[presence.genesys.gc]
token = "genesys-token-0123456789"
"#,
        db = dir.join(format!("{format}.db")).display(),
        media = dir.join(format!("media-{format}")).display(),
    );
    std::fs::write(&path, toml).expect("write config");
    path
}

/// Sends `INJECTION` in every path parameter of every route (with and without credentials), in the bodies of
/// authenticated posts, and in the query, then returns.
async fn inject_everywhere(base: &str) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let x = encoded(INJECTION);
    let gets = [
        format!("/media/recording/{x}?expires=1&signature=abc"),
        format!("/media/{x}/{x}?expires=1&signature=abc"),
        format!("/api/v1/engagements/{x}"),
        format!("/api/v1/engagements/{x}/activity"),
        format!("/api/v1/agents/{x}"),
        format!("/api/v1/quarantine/{x}"),
        format!("/api/v1/reconciliation/runs/{x}"),
        format!("/api/v1/deliveries/{x}"),
        format!("/api/v1/events?engagement_id={x}&cursor={x}"),
        format!("/api/v1/events/{x}"),
        format!("/api/v1/engagements?consumer_number={x}&cursor={x}"),
        format!("/api/v1/media?engagement_id={x}&cursor={x}"),
        format!("/api/v1/deliveries?cursor={x}"),
        format!("/{x}"),
    ];
    let posts = [
        format!("/webhooks/flow/{x}"),
        format!("/webhooks/genesys/{x}"),
        format!("/api/v1/quarantine/{x}/replay"),
        format!("/api/v1/deliveries/{x}/replay"),
        format!("/api/v1/sinks/{x}/enable"),
    ];
    for admin in [false, true] {
        for path in &gets {
            let mut request = client.get(format!("{base}{path}"));
            if admin {
                request = request.bearer_auth(ADMIN_TOKEN);
            }
            let r = request.send().await.expect("GET answered");
            assert!(r.status().as_u16() < 500, "GET {path}: {}", r.status());
        }
        for path in &posts {
            let mut request = client.post(format!("{base}{path}")).body("{}");
            if admin {
                request = request.bearer_auth(ADMIN_TOKEN);
            }
            let r = request.send().await.expect("POST answered");
            assert!(r.status().as_u16() < 500, "POST {path}: {}", r.status());
        }
    }
    // Authenticated posts whose contents carry the injection: logged, quarantined or refused, never spliced.
    let bodies = [
        format!(r#"{{"event": {INJECTION:?}, "payload": 5}}"#),
        format!(r#"{{"event": "contact_center.engagement_started", "event_ts": {INJECTION:?}}}"#),
        format!(
            r#"{{"engagement_id": {INJECTION:?}, "event": {INJECTION:?}, "event_ts": {INJECTION:?}}}"#
        ),
        format!(
            r#"{{"topicName": {INJECTION:?}, "eventBody": {{"conversationId": {INJECTION:?}}}}}"#
        ),
        INJECTION.to_string(),
    ];
    for body in &bodies {
        let ts = now_secs();
        let r = client
            .post(format!("{base}/webhooks/zoom"))
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                zoom::webhook::sign(SECRET.as_bytes(), ts, body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "zoom: {}", r.status());
        for (path, token) in [
            ("/webhooks/flow/ivr", "flow-token-0123456789"),
            ("/webhooks/genesys/gc", "genesys-token-0123456789"),
        ] {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
        }
    }
}

/// Control characters in every path parameter (and in bodies and queries) end up in the text log as escaped data:
/// every line of the log starts with the server's own timestamp and level, none with the forged one, and no raw
/// ESC, NUL, CR or C1 character is written. The JSON log stays one valid object per line.
/// (Logging does not depend on the database: SQLite only.)
#[tokio::test]
async fn request_values_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let config = config_file(dir.path(), format);
        let log_path = dir.path().join(format!("{format}.log"));
        let (mut child, base) = spawn_serve_logging(
            &[OsStr::new("--config"), config.as_os_str()],
            &[],
            "debug,sqlx=info,hyper=info,hyper_util=info",
            &log_path,
        )
        .await;
        inject_everywhere(&base).await;
        child.kill().await.expect("stop the server");
        let log = std::fs::read(&log_path).expect("read the log");
        let log = String::from_utf8(log).expect("the log is UTF-8");
        let lines: Vec<&str> = log.lines().collect();
        let forged_markers = log.matches("FORGED").count();
        assert!(
            forged_markers >= 10,
            "{format}: the injected values should be in the log (as data), found {forged_markers} times:\n{log}"
        );
        for (n, line) in lines.iter().enumerate() {
            let bad = line
                .chars()
                .find(|c| c.is_control() && *c != '\t')
                .map(|c| format!("{:?}", c));
            assert!(
                bad.is_none(),
                "{format} line {n} holds a raw {bad:?}: {line:?}"
            );
            match format {
                "text" => {
                    assert!(
                        starts_like_a_log_line(line) && !line.starts_with(FORGED_DATE),
                        "text line {n} is not one of the server's own lines: {line:?}"
                    );
                }
                _ => {
                    let value: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("json line {n} does not parse ({e}): {line:?}"));
                    assert!(value.is_object(), "json line {n}: {line:?}");
                }
            }
        }
    }
}

/// `zcc-bridge config check` with a list key given a string (the issue's case) names the key, not the value.
#[test]
fn config_check_does_not_print_a_misplaced_secret() {
    let secret = "wh-secret-do-not-print-0123456789";
    for (key, value) in [
        ("ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKENS", secret.to_string()),
        ("ZCC_BRIDGE_ADMIN__TOKEN", format!("[\"{secret}\"]")),
        ("ZCC_BRIDGE_ADMIN", secret.to_string()),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
            .args(["config", "check"])
            .env(key, &value)
            .output()
            .expect("run config check");
        assert!(!out.status.success(), "{key}: accepted");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(secret), "{key}: printed the secret: {text}");
        let named = key
            .trim_start_matches("ZCC_BRIDGE_")
            .to_ascii_lowercase()
            .replace("__", ".");
        assert!(
            text.contains(&named),
            "{key}: does not name {named}: {text}"
        );
    }
}

/// Page sizes out of range are refused (400) by every list, never silently clamped.
#[tokio::test]
async fn list_limits_out_of_range_are_refused() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        for path in [
            "/api/v1/events?limit=0",
            "/api/v1/events?limit=1001",
            "/api/v1/events?limit=100000000",
            "/api/v1/quarantine?limit=0",
            "/api/v1/quarantine?limit=201",
            "/api/v1/engagements?limit=0",
            "/api/v1/media?limit=100000000",
            "/api/v1/deliveries?limit=0",
        ] {
            let r = s.get(path).await;
            assert_eq!(r.status(), 400, "{backend:?} {path}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap_or_default().contains("limit"),
                "{path}: {body}"
            );
        }
        for path in [
            "/api/v1/events?limit=1",
            "/api/v1/events?limit=1000",
            "/api/v1/quarantine?limit=200",
        ] {
            assert_eq!(s.get(path).await.status(), 200, "{backend:?} {path}");
        }
    }
}

/// The admin API takes the bearer scheme in any case, as the webhook endpoints do (RFC 9110 §11.1).
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let r = s
                .client
                .get(s.url("/api/v1/stats"))
                .header("authorization", format!("{scheme} {ADMIN_TOKEN}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?} {scheme}");
        }
        for wrong in [
            format!("Basic {ADMIN_TOKEN}"),
            format!("Bearer{ADMIN_TOKEN}"),
            format!("bearer {ADMIN_TOKEN}x"),
            ADMIN_TOKEN.to_string(),
        ] {
            let r = s
                .client
                .get(s.url("/api/v1/stats"))
                .header("authorization", &wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{backend:?} {wrong}");
        }
    }
}

/// Events dated beyond any real time (or a day past their receipt) never sort first: a Zoom event keeps its place
/// in the log with its receive time (its odd `event_ts` is a field it could not read, issue 16's rule), a Flow post
/// (whose time field the operator maps) is quarantined.
#[tokio::test]
async fn event_times_out_of_range_never_sort_first() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, |c| {
            c.flow.sources.insert(
                "ivr".into(),
                toml::from_str("token = \"flow-token-0123456789\"").unwrap(),
            );
        })
        .await;
        let tomorrow_and_more = (now_secs() + 2 * 86_400) * 1000;
        for (i, ts) in [i64::MAX, -1, tomorrow_and_more].into_iter().enumerate() {
            let id = format!("E-future-{i}");
            let body = envelope(
                "contact_center.engagement_started",
                ts,
                serde_json::json!({"engagement_id": id}),
            );
            let before = now_secs() * 1000;
            let r = s.post_webhook(&body).await;
            assert_eq!(r.status(), 200, "{backend:?} zoom {ts}");
            let record = s.get_json(&format!("/api/v1/engagements/{id}")).await;
            let logged = record["timeline"][0]["event_ts"].as_i64().unwrap();
            assert!(
                (before - 1000..=now_secs() * 1000 + 1000).contains(&logged),
                "{backend:?} {ts}: logged at {logged}"
            );
            let flow =
                format!(r#"{{"engagement_id":"E-future","event":"accepted","event_ts":{ts}}}"#);
            let r = s
                .client
                .post(s.url("/webhooks/flow/ivr"))
                .bearer_auth("flow-token-0123456789")
                .body(flow)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{backend:?} flow {ts}");
        }
        let stats = s.stats().await;
        assert_eq!(stats["events"], 3, "{backend:?}: {stats}");
        assert_eq!(stats["quarantined"], 3, "{backend:?}: {stats}");
    }
}

/// A sink that is not configured cannot be "enabled": 404 over the API, an error from the CLI.
#[tokio::test]
async fn enabling_an_unknown_sink_is_refused() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let r = s
            .client
            .post(s.url("/api/v1/sinks/no-such-sink/enable"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{backend:?}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
            .args(["deliveries", "enable", "no-such-sink"])
            .env("ZCC_BRIDGE_STORAGE__DATABASE", &s.db.url)
            .output()
            .expect("run deliveries enable");
        assert!(
            !out.status.success(),
            "{backend:?}: the CLI enabled an unknown sink"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no sink"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `log.level = "!!!"` and an unbounded timestamp tolerance are refused by `config check`.
#[test]
fn config_check_refuses_a_bad_log_filter_and_an_unbounded_replay_window() {
    for (key, value) in [
        ("ZCC_BRIDGE_LOG__LEVEL", "!!!"),
        (
            "ZCC_BRIDGE_ZOOM__WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS",
            "9223372036854775807",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
            .args(["config", "check"])
            .env(key, value)
            .output()
            .expect("run config check");
        assert!(!out.status.success(), "{key}={value} accepted");
    }
}

/// A sink kind's own options are checked by its module, and `config check` still refuses them before anything starts.
#[test]
fn config_check_refuses_a_crm_sink_without_its_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[[sinks]]\nname = \"desk\"\nkind = \"zendesk\"\nurl = \"https://acme.zendesk.com\"\n\
         deliver = [\"engagement.completed\"]\nusername = \"agent@example.com\"\n",
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .args([
            "--config",
            path.to_str().expect("utf-8 path"),
            "config",
            "check",
        ])
        .output()
        .expect("run config check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("\"desk\"") && stderr.contains("needs token"),
        "{stderr}"
    );
}
