//! The command line as an operator meets it: configuration from a file named by `ZCC_BRIDGE_CONFIG`, every
//! configuration problem at once, `config init`.

use std::process::{Command, Output};

fn bridge(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zcc-bridge"))
        .args(args)
        .env_remove("ZCC_BRIDGE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run zcc-bridge")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const SECRET: (&str, &str) = (
    "ZCC_BRIDGE_ZOOM__WEBHOOK_SECRET_TOKEN",
    "a-webhook-secret-token-for-tests",
);

#[test]
fn the_config_file_can_be_named_by_zcc_bridge_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:7123\"\n").expect("write");
    let out = bridge(
        &["config", "check"],
        &[("ZCC_BRIDGE_CONFIG", path.to_str().expect("utf-8")), SECRET],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("listen = \"127.0.0.1:7123\""), "{printed}");
}

#[test]
fn config_check_reports_every_problem_at_once_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[zoom]\nwebhook_timestamp_tolerance_seconds = 0\n[log]\nlevel = \"!!!\"\n\
         [[sinks]]\nname = \"hooks\"\nkind = \"http\"\nurl = \"https://example.com/h\"\n\
         secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n\
         deliver = [\"engagement.complete\"]\n",
    )
    .expect("write");
    let out = bridge(
        &["--config", path.to_str().expect("utf-8"), "config", "check"],
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for expected in [
        "zoom.webhook_timestamp_tolerance_seconds:",
        "log.level:",
        "did you mean \"engagement.completed\"",
        "zoom.webhook_secret_token: not set",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }
    assert!(err.contains("(4 problems)"), "{err}");

    // Type errors too: one per section, not just the first.
    std::fs::write(
        &path,
        "[server]\nlisten = \"nowhere\"\n[media]\nconcurrency = \"many\"\n[bogus]\nx = 1\n",
    )
    .expect("write");
    let out = bridge(
        &["--config", path.to_str().expect("utf-8"), "config", "check"],
        &[],
    );
    let err = stderr(&out);
    for expected in [
        "server.listen:",
        "media.concurrency:",
        "bogus: unknown section",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }
}

#[test]
fn chat_channels_are_checked_with_the_rest_of_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chat.toml");
    let path_str = path.to_str().expect("utf-8");
    let channel = |name: &str, extra: &str| {
        format!(
            "[chat.channels.{name}]\nclient_id = \"cs-{name}\"\njwt_algorithm = \"HS256\"\n\
             jwt_secret = \"client-secret-0123456789abcdef-0123\"\nreply_mode = \"action\"\n{extra}\n\
             [chat.channels.{name}.bot]\nkind = \"builtin\"\n"
        )
    };
    // A channel the bridge can run, with its secret masked when the configuration is printed.
    std::fs::write(&path, channel("web", "")).expect("write");
    let out = bridge(&["--config", path_str, "config", "check"], &[SECRET]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("[chat.channels.web]"), "{printed}");
    assert!(
        !printed.contains("client-secret-0123456789abcdef"),
        "{printed}"
    );

    // Type errors in [chat] are reported with the other sections' ones.
    std::fs::write(
        &path,
        format!(
            "[chat]\npoll_ms = \"fast\"\n[media]\nconcurrency = \"many\"\n{}",
            channel("web", "")
        ),
    )
    .expect("write");
    let out = bridge(&["--config", path_str, "config", "check"], &[SECRET]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for expected in ["chat.poll_ms:", "media.concurrency:", "(2 problems)"] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }

    // Every channel's problem at once: the configuration's own checks, the encryption key, and what the chatbot
    // crate finds when it builds a channel (an RSA key that is not one); never a secret's value.
    std::fs::write(
        &path,
        format!(
            "[chat]\nencryption_key = \"bm90LTMyLWJ5dGVz\"\n{}{}[chat.channels.rs]\nclient_id = \"cs-rs\"\n\
             jwt_algorithm = \"RS256\"\nreply_mode = \"action\"\n\
             jwt_public_key = \"-----BEGIN PUBLIC KEY-----\\nAA==\\n-----END PUBLIC KEY-----\\n\"\n\
             [chat.channels.rs.bot]\nkind = \"builtin\"\n",
            channel("web", ""),
            channel("pushy", "[chat.channels.pushy.push]\nurl = \"ftp://push.example\""),
        ),
    )
    .expect("write");
    let out = bridge(&["--config", path_str, "config", "check"], &[SECRET]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for expected in [
        "chat.encryption_key: decodes to 12 bytes",
        "chat.channels: channel \"pushy\": push.url must be an http(s) URL",
        "chat.channels: channel \"rs\": client app: jwt_public_key is not an RSA public key",
        "(3 problems)",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }
    assert!(!err.contains("bm90LTMyLWJ5dGVz"), "{err}");
}

#[test]
fn a_chat_channels_outboxes_are_sinks_of_the_command_line() {
    let (dir, url) = database();
    let path = dir.path().join("chat.toml");
    std::fs::write(
        &path,
        "[chat.channels.web]\nclient_id = \"cs-web\"\njwt_algorithm = \"HS256\"\n\
         jwt_secret = \"client-secret-0123456789abcdef-0123\"\nreply_mode = \"action\"\n\
         [chat.channels.web.bot]\nkind = \"builtin\"\n",
    )
    .expect("write");
    let env = [("ZCC_BRIDGE_STORAGE__DATABASE", url.as_str())];
    let config = ["--config", path.to_str().expect("utf-8")];
    let run = |rest: &[&str]| bridge(&[&config[..], rest].concat(), &env);
    // Known: nothing dead to replay yet (README's recovery command), and an empty list.
    let out = run(&["deliveries", "replay", "--sink", "chat:web:reply", "--dead"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sink \"chat:web:reply\" has no dead deliveries"),
        "{}",
        stderr(&out)
    );
    let out = run(&["deliveries", "list", "--sink", "chat:web:push"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A channel that does not exist is not.
    let out = run(&[
        "deliveries",
        "replay",
        "--sink",
        "chat:nope:reply",
        "--dead",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no sink \"chat:nope:reply\" is configured"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_check_warns_of_parts_that_are_off() {
    let out = bridge(&["config", "check"], &[SECRET]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: admin.token: not set"), "{err}");
    assert!(
        err.contains("reconciliation and the media archive are off"),
        "{err}"
    );
    let half_app = bridge(
        &["config", "check"],
        &[SECRET, ("ZCC_BRIDGE_ZOOM__CLIENT_ID", "abc")],
    );
    assert!(!half_app.status.success());
    assert!(
        stderr(&half_app).contains("account_id and client_secret not set"),
        "{}",
        stderr(&half_app)
    );
}

#[test]
fn config_init_writes_a_private_example_with_a_fresh_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zcc-bridge.toml");
    let path_str = path.to_str().expect("utf-8");
    let out = bridge(&["config", "init", path_str], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("token = \""),
        "the token is not printed"
    );
    let text = std::fs::read_to_string(&path).expect("written");
    let token_line = text
        .lines()
        .find(|l| l.starts_with("token = \""))
        .expect("an admin token is switched on");
    assert!(
        token_line.len() >= "token = \"\"".len() + 32,
        "{token_line}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Not clobbered without --force; another run makes another token.
    let again = bridge(&["config", "init", path_str], &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(bridge(&["config", "init", "--force", path_str], &[])
        .status
        .success());
    assert_ne!(std::fs::read_to_string(&path).expect("read"), text);
    // With the webhook secret it needs, the written file is a valid configuration.
    let check = bridge(&["--config", path_str, "config", "check"], &[SECRET]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        !stderr(&check).contains("admin.token"),
        "{}",
        stderr(&check)
    );
}

/// A throwaway SQLite database for commands that open the store.
fn database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bridge.db").display());
    (dir, url)
}

#[test]
fn empty_and_refused_actions_fail_with_a_message() {
    let (_dir, url) = database();
    let db = ("ZCC_BRIDGE_STORAGE__DATABASE", url.as_str());
    for (args, expected) in [
        (
            &["deliveries", "replay", "--id", "99999"][..],
            "no delivery 99999",
        ),
        (
            &["deliveries", "enable", "nope"][..],
            "no sink \"nope\" is configured",
        ),
        (
            &["deliveries", "replay", "--sink", "nope", "--dead"][..],
            "no sink \"nope\"",
        ),
        (&["deliveries", "show", "7"][..], "no delivery 7"),
        (&["media", "retry"][..], "nothing to retry"),
        (
            &["media", "retry", "recording:nope"][..],
            "nothing to retry",
        ),
    ] {
        let out = bridge(args, &[db]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let bogus = bridge(&["deliveries", "list", "--state", "bogus"], &[db]);
    assert_eq!(bogus.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&bogus).contains("pending, delivered, dead"),
        "{}",
        stderr(&bogus)
    );
}

#[test]
fn lists_have_headers_say_when_empty_and_speak_json_on_request() {
    let (_dir, url) = database();
    let db = ("ZCC_BRIDGE_STORAGE__DATABASE", url.as_str());
    let out = bridge(&["deliveries", "list"], &[db]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SINK"), "{text}");
    assert!(text.contains("no deliveries match"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes into a pipe: {text:?}"
    );

    let json = bridge(&["deliveries", "list", "--json"], &[db]);
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("deliveries list --json is JSON");
    assert_eq!(value["deliveries"], serde_json::json!([]));

    let status = bridge(&["media", "status"], &[db]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.starts_with("PENDING") && text.contains("no dead-lettered files"),
        "{text}"
    );
    let status = bridge(&["media", "status", "--json"], &[db]);
    let value: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(value["counts"]["archived"], 0);

    let rebuild = bridge(&["rebuild", "--json"], &[db]);
    assert!(rebuild.status.success(), "{}", stderr(&rebuild));
    let value: serde_json::Value = serde_json::from_slice(&rebuild.stdout).expect("JSON");
    assert_eq!(value["engagements"], 0);
    assert!(
        !stderr(&rebuild).contains('\r'),
        "no progress drawn off a terminal"
    );

    let check = bridge(&["config", "check", "--json"], &[SECRET]);
    let value: serde_json::Value = serde_json::from_slice(&check.stdout).expect("JSON");
    assert_eq!(
        value["configuration"]["zoom"]["webhook_secret_token"],
        "***"
    );
    assert!(value["warnings"].as_array().is_some_and(|w| !w.is_empty()));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bridge(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("deliveries") && script.contains("json"),
            "{shell}"
        );
    }
}
