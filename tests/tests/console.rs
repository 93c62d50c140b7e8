//! `hamper console` end to end: the real supervisor and the real plugin binaries on a SQLite
//! file, driven by scripts as a person at a terminal would type them.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use hamper_tests::{assert_success, stdout_lines, Sandbox};

fn transcript(sandbox: &Sandbox, args: &[&str], script: &str) -> Vec<String> {
    let out = sandbox.console(args, script);
    assert_success(&out);
    stdout_lines(&out)
}

#[test]
fn with_no_config_it_runs_karma_help_and_sed_on_sqlite() {
    let sb = Sandbox::new();
    let lines = transcript(
        &sb,
        &[],
        "hello world\nfoo++\n!karma foo\ns/world/there/\n!karma --top\n",
    );
    assert_eq!(
        lines,
        [
            "<hamper> foo has 1 point",
            "<hamper> you actually meant: hello there",
            "<hamper> foo\u{f}: 1"
        ]
        .map(str::to_string),
    );
    assert!(
        sb.path().join("hamper.db").is_file(),
        "the SQLite file is in the working directory"
    );
}

/// `--top` and `--bottom` lines keep the original's `\x0f` (IRC "reset formatting") after the
/// name, so formatting codes inside a name cannot bleed into the score.
#[test]
fn karma_conversation_from_the_reference() {
    let sb = Sandbox::new();
    let script = "\
(foo bar)++ and c++ is great
i like (foo bar)++ a lot
x+++--
say foo++.
bar ++
!karma foo bar
score c
!score c
hamper: karma c
!karma x+++
!karma nobody
you++
/nick alice
Alice++ bob++
/nick bob
alice-- alice--
!karma alice
!karma --bottom
!karma
";
    let lines = transcript(&sb, &[], script);
    assert_eq!(
        lines,
        [
            "<hamper> foo bar has 2 points",
            "<hamper> c has 1 point",
            "<hamper> c has 1 point",
            "<hamper> x+++ has -1 point",
            "<hamper> No karma for nobody",
            "<hamper> Nice try, no modifying your own karma",
            "<hamper> Nice try, no modifying your own karma",
            "<hamper> alice has -2 points",
            "<hamper> alice\u{f}: -2",
            "<hamper> x+++\u{f}: -1",
            "<hamper> bob\u{f}: 1",
            "<hamper> c\u{f}: 1",
            "<hamper> foo bar\u{f}: 2",
            "<hamper> bob has 1 point",
        ]
        .map(str::to_string),
        "`score c` undirected is not a command; `you++` by you and `Alice++` by alice are refused, alice's `bob++` counts"
    );
}

#[test]
fn help_lists_in_private_and_explains_in_channel() {
    let sb = Sandbox::new();
    let lines = transcript(
        &sb,
        &[],
        "!help\n!help karma\n!help sed\n!help frobnicate\n",
    );
    assert_eq!(lines[0], "[you] <hamper> Available commands");
    for needle in ["!help", "!karma", "!plugins", "sed"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("[you] <hamper> ") && l.contains(needle)),
            "{needle} in the private list: {lines:#?}"
        );
    }
    let channel: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("<hamper> "))
        .collect();
    assert!(channel.iter().any(|l| l.contains("karma")), "{lines:#?}");
    assert!(
        channel.iter().any(|l| l.contains("s/find/replace/")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("<hamper> Unknown command")
    );
}

#[test]
fn sed_in_the_console() {
    let sb = Sandbox::new();
    let script = "\
s/a/b/
apple banana apple banana
s/apple/orange/g s/banana/grape/
/nick bob
I like tea
s/TEA/coffee/i
s/like/love/m
s/(unclosed/x/
s/nothing-here/x/
/me waves
s/waves/smiles/
";
    let lines = transcript(&sb, &[], script);
    assert_eq!(
        lines,
        [
            "<hamper> Who are you?! How did you get in my house?!",
            "<hamper> you actually meant: orange grape orange banana",
            "<hamper> bob actually meant: I like coffee",
            "<hamper> bob actually meant: I love tea",
            "<hamper> Do you even lift?",
            "<hamper> Sorry, I couldn't match 'nothing-here'.",
            "<hamper> bob actually meant: smiles",
        ]
        .map(str::to_string)
    );
}

#[test]
fn console_commands_and_private_messages() {
    let sb = Sandbox::new();
    let lines = transcript(
        &sb,
        &["--nick", "carol", "--channel", "#test"],
        "foo++\n/msg karma foo\n/msg !karma foo\n/frob\n\n//karma foo\n",
    );
    assert_eq!(
        lines,
        [
            "[carol] <hamper> foo has 1 point",
            "[carol] <hamper> foo has 1 point",
        ]
        .map(str::to_string)
    );
}

#[test]
fn counts_survive_a_restart() {
    let sb = Sandbox::new();
    transcript(&sb, &[], "foo++\nfoo++\n");
    let lines = transcript(&sb, &[], "!karma foo\n");
    assert_eq!(lines, ["<hamper> foo has 2 points"]);
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let sb = Sandbox::new();
    let lines = hamper_tests::acknowledged_karma_after_kill9(&sb, None, "counted");
    assert_eq!(lines, ["<hamper> counted has 25 points"]);
}

#[test]
fn a_line_that_is_not_utf8_is_still_a_line() {
    let sb = Sandbox::new();
    let mut cmd = sb.hamper();
    cmd.arg("console");
    let out = hamper_tests::run_with_input(cmd, b"caf\xe9++\n!karma caf\xef\xbf\xbd\n".as_slice());
    assert_success(&out);
    assert_eq!(stdout_lines(&out), ["<hamper> caf\u{fffd} has 1 point"]);
}

#[test]
fn end_of_input_exits_cleanly_even_with_no_input() {
    let sb = Sandbox::new();
    let out = sb.console(&[], "");
    assert_success(&out);
    assert!(out.stdout.is_empty());
}

#[test]
fn one_plugin_alone_under_the_console_with_a_protocol_trace() {
    let sb = Sandbox::new();
    let mut cmd = sb.hamper();
    cmd.args(["plugin", "karma", "--trace"]);
    let out = hamper_tests::run_with_input(cmd, "foo++\n!karma foo\n!help\n");
    assert_success(&out);
    assert_eq!(
        stdout_lines(&out),
        ["<hamper> foo has 1 point"],
        "no help plugin runs"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[karma] <- {\"type\":\"hello\""), "{err}");
    assert!(err.contains("[karma] -> {\"type\":\"command\""), "{err}");
    assert!(err.contains("\"method\":\"kv.incr\""), "{err}");
}

#[test]
fn plugin_binaries_started_by_hand_print_a_hint() {
    // A terminal is needed for the hint; `script` gives the binary one.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        hamper_tests::skip_or_fail("`script` (util-linux) is needed to give the plugin a terminal");
        return;
    }
    for name in ["karma", "help", "sed"] {
        let binary = hamper_tests::bin(&format!("hamper-{name}"));
        let out = std::process::Command::new("script")
            .args(["-qec", &binary.display().to_string(), "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run script");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("hamper plugin {name}")),
            "{name}: {text}"
        );
    }
}

#[test]
fn run_without_a_server_names_the_key_and_the_fix() {
    let sb = Sandbox::new();
    let out = sb.hamper().arg("run").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server: is not set") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn check_config_masks_secrets_and_reports_every_bad_key() {
    let sb = Sandbox::new();
    sb.write_config(
        "nickname: bot\nserver: irc.example.org\npassword: hunter2\nchannels: [\"#c sesame\"]\n",
    );
    let out = sb
        .hamper()
        .arg("check-config")
        .env("DATABASE_URL", "postgres://u:dbsecret@db.example/x")
        .output()
        .expect("run");
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in ["hunter2", "sesame", "dbsecret"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("server: irc.example.org"), "{text}");

    sb.write_config("port: many\nchannels: hamper\nplugins: [karma, {command: [x]}]\n");
    let out = sb.hamper().arg("check-config").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["port:", "channels[0]:", "plugins[1].name:"] {
        assert!(err.contains(key), "{key} not named in:\n{err}");
    }
}

#[test]
fn json_logs_are_one_object_a_line_and_name_the_plugin() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "log_format: json\nlog_level: info\nplugins:\n  - karma\n  - name: bad\n    command: [\"{}\"]\n    env: {{MISBEHAVE: crash-at-start}}\n    max_restarts: 1\n",
        hamper_tests::bin("hamper-misbehave").display()
    ));
    let mut cmd = sb.hamper();
    // RUST_LOG would win over log_level; this test is about log_level.
    cmd.env_remove("RUST_LOG").arg("console");
    let out = hamper_tests::run_with_input(cmd, "foo++\n!karma foo\n");
    assert_success(&out);
    assert_eq!(stdout_lines(&out), ["<hamper> foo has 1 point"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 5, "{lines:?}");
    for line in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(line.get(key).is_some(), "no {key}: {line}");
        }
    }
    let plugin_said = lines.iter().any(|l| {
        l["fields"]["plugin"] == "bad" && l["fields"]["message"] == "crashing at start, as asked"
    });
    assert!(
        plugin_said,
        "the plugin's own stderr line, with its name: {lines:?}"
    );
    let runner_line = lines
        .iter()
        .any(|l| l["span"]["plugin"] == "karma" && l["fields"]["message"] == "plugin running");
    assert!(runner_line, "a runner line in karma's span: {lines:?}");
}

#[test]
fn a_bad_log_setting_is_named_with_its_fix() {
    let sb = Sandbox::new();
    sb.write_config("log_format: xml\nlog_level: \"info,[\"\n");
    let out = sb.console(&[], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log_format: `xml` is not a log format"),
        "{err}"
    );
    assert!(err.contains("log_format: json"), "{err}");
    assert!(err.contains("log_level:"), "{err}");
}

#[test]
fn echo_prints_after_everything_before_it_is_answered() {
    let sb = Sandbox::new();
    let lines = transcript(
        &sb,
        &[],
        "foo++\n!karma foo\n/echo -- one --\n!karma foo\n/echo -- two --\n",
    );
    assert_eq!(
        lines,
        [
            "<hamper> foo has 1 point",
            "-- one --",
            "<hamper> foo has 1 point",
            "-- two --"
        ]
    );
}
