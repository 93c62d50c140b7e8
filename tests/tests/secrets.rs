//! Secrets never reach stderr, by value: a value pulled in with `$VAR` under an innocent key, a
//! channel key and a database password stay masked in `hamper run`'s and `hamper console`'s
//! stderr, in the text and the JSON log alike, even when a plugin prints them to its stderr
//! (which the log forwards), when a line is cut inside one, and in an error message.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use hamper_tests::ircd::{IrcClient, Ngircd, BOT};
use hamper_tests::{bin, Sandbox, Session};

/// The plugin's setting, under a key no one would think secret.
const NOTE: &str = "n0t3-s3cr3t-value-9981";
/// A channel key, pulled in whole with the channel.
const CHANNEL_KEY: &str = "vault-key-7731";

/// A config whose secrets come from `$VAR`s: a channel with its key, and the section of a
/// plugin (the misbehaving fixture, as `leaky`) that prints its settings to stderr.
fn config(extra: &str) -> String {
    format!(
        "channels: [\"#test\", $SECRET_CHANNEL]\nplugins:\n  - karma\n  - name: leaky\n    command: [\"{}\"]\n    env: {{MISBEHAVE: behave, MISBEHAVE_CMD: leaky}}\nleaky:\n  note: $LEAKY_NOTE\n{extra}",
        bin("hamper-misbehave").display()
    )
}

fn secret_env(cmd: &mut std::process::Command) {
    cmd.env("LEAKY_NOTE", NOTE)
        .env("SECRET_CHANNEL", format!("#vault {CHANNEL_KEY}"));
}

/// Asserts that `log` shows none of the secrets, not even the start of one where a line was
/// cut, and that the plugin's leak did reach it, masked.
fn assert_masked(log: &str) {
    for secret in [NOTE, CHANNEL_KEY, "pgpw-5531"] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    assert!(
        !log.contains(&format!("xxx{}", &NOTE[..3])),
        "the start of a secret shows where a line was cut:\n{log}"
    );
    assert!(
        log.contains("a value: ********"),
        "the leak is logged:\n{log}"
    );
    assert!(
        log.contains("[line cut]"),
        "the long line is logged:\n{log}"
    );
}

#[test]
fn hamper_run_masks_secrets_a_plugin_prints_to_stderr() {
    let Some(server) = Ngircd::start() else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(""));
    let mut cmd = sandbox.hamper();
    cmd.arg("run")
        .env("nickname", BOT)
        .env("server", "127.0.0.1")
        .env("port", server.port.to_string());
    secret_env(&mut cmd);
    let bot = Session::start(cmd);
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.join_and_wait_for("#test", BOT);
    alice.send("PRIVMSG #test :!leaky leak");
    alice.expect_privmsg(BOT, "#test", "the leak", |t| t == "leaked");
    bot.expect_log("[line cut]");
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("registered"),
        "the log is there at all:\n{log}"
    );
    assert_masked(&log);
}

#[test]
fn hamper_console_masks_secrets_in_the_json_log() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config("log_format: json\n"));
    let mut cmd = sandbox.hamper();
    cmd.arg("console")
        // A database that is down: its URL, with the password, is in a warning.
        .env("DATABASE_URL", "postgres://bot:pgpw-5531@127.0.0.1:1/karma");
    secret_env(&mut cmd);
    let mut s = Session::start(cmd);
    s.ask("!leaky leak", "leaked");
    s.expect_log("[line cut]");
    let log = s.expect_log("database unavailable at start");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    assert_masked(&log);
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn an_error_quoting_a_secret_masks_it() {
    let sandbox = Sandbox::new();
    sandbox.write_config("server: irc.example.org\nport: $IRC_PORT\n");
    for command in ["run", "check-config", "console"] {
        let out = sandbox
            .hamper()
            .arg(command)
            .env("IRC_PORT", "port-s3cret-4417")
            .output()
            .expect("run hamper");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("port: `********` is not a port number"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{command}: {stderr}");
    }
}

#[test]
fn trace_masks_secrets_in_the_protocol_lines() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(""));
    let mut cmd = sandbox.hamper();
    cmd.args(["plugin", "leaky", "--trace"]);
    secret_env(&mut cmd);
    let out = hamper_tests::run_with_input(cmd, "!leaky ping\n");
    hamper_tests::assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#""config":{"note":"********"}"#),
        "the hello is traced, masked:\n{stderr}"
    );
    assert!(!stderr.contains(NOTE), "{stderr}");
}
