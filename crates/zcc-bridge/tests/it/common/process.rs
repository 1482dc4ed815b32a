//! The server as a separate process (`zcc-bridge serve`), for tests that kill it or run several at once.

use std::ffi::OsStr;
use std::time::Duration;

use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{now_secs, SECRET};

/// Starts `zcc-bridge serve` with `args` and `env` and waits until it prints where it listens; returns the child
/// (killed when dropped) and its base URL.
pub async fn spawn_serve(args: &[&OsStr], env: &[(&str, String)]) -> (Child, String) {
    spawn_serve_with(args, env, "warn", Stdio::inherit()).await
}

/// `spawn_serve` with the log filter `rust_log` and the server's log (stderr) written to `log_file`.
pub async fn spawn_serve_logging(
    args: &[&OsStr],
    env: &[(&str, String)],
    rust_log: &str,
    log_file: &std::path::Path,
) -> (Child, String) {
    let file = std::fs::File::create(log_file).expect("create the log file");
    spawn_serve_with(args, env, rust_log, Stdio::from(file)).await
}

async fn spawn_serve_with(
    args: &[&OsStr],
    env: &[(&str, String)],
    rust_log: &str,
    stderr: Stdio,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .arg("serve")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn zcc-bridge");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("zcc-bridge listening on ") {
                return url.trim().to_string();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server listens within 60 s");
    (child, base)
}

/// POSTs `body` to a server's `/webhooks/zoom`, signed now with `SECRET`; `None` when no answer came within 5 s
/// (the server died under it, say).
pub async fn send_signed(
    client: &reqwest::Client,
    base: &str,
    body: &[u8],
) -> Option<reqwest::StatusCode> {
    let ts = now_secs();
    client
        .post(format!("{base}/webhooks/zoom"))
        .header("x-zm-request-timestamp", ts.to_string())
        .header(
            "x-zm-signature",
            zoom::webhook::sign(SECRET.as_bytes(), ts, body),
        )
        .body(body.to_vec())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}
