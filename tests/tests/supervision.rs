//! Misbehaving plugins, with real processes: the other plugins keep answering and the bad one
//! is restarted or marked failed.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use hamper_tests::{bin, pid_in, procs, wait_for, Sandbox, Session};

/// A `plugins:` list item running the misbehaving fixture as `name`, with `env` (YAML mapping
/// entries such as `MISBEHAVE: stubborn`).
fn misbehaving(name: &str, env: &str) -> String {
    format!(
        "  - name: {name}\n    command: [\"{}\"]\n    env: {{{env}}}\n",
        bin("hamper-misbehave").display()
    )
}

/// `hamper console` in a fresh sandbox with `config` as its hamper.conf and `env` set.
fn console_with(config: &str, env: &[(&str, &str)]) -> (Sandbox, Session) {
    let sandbox = Sandbox::new();
    sandbox.write_config(config);
    let mut cmd = sandbox.hamper();
    cmd.arg("console").envs(env.iter().copied());
    let session = Session::start(cmd);
    (sandbox, session)
}

/// A sandbox whose config runs karma beside one misbehaving plugin `bad`; `extra` adds lines to
/// its entry.
fn with_misbehaving(mode: &str, extra: &str) -> (Sandbox, Session) {
    let entry = misbehaving("bad", &format!("MISBEHAVE: \"{mode}\""));
    console_with(&format!("plugins:\n  - karma\n{entry}{extra}"), &[])
}

fn karma_still_answers(s: &mut Session, name: &str) {
    s.send(&format!("{name}++"));
    s.ask(&format!("!karma {name}"), &format!("{name} has 1 point"));
}

#[test]
fn a_plugin_that_crashes_at_start_is_marked_failed_and_the_rest_carry_on() {
    let (_sb, mut s) = with_misbehaving(
        "crash-at-start",
        "    max_restarts: 3\n    restart_window: 60\n",
    );
    let line = s.ask_until("!plugins", "bad: failed", Duration::from_secs(20));
    assert!(line.contains("stopped 3 times"), "{line}");
    assert!(
        line.ends_with("(2 restarts)"),
        "a crashing plugin is retried: {line}"
    );
    karma_still_answers(&mut s, "apple");
    // The plugin's stderr reaches the log.
    s.expect_log("crashing at start, as asked");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_plugin_that_crashes_mid_run_is_restarted() {
    let (_sb, mut s) = with_misbehaving("behave", "");
    s.ask("!bad ping", "bad alive");
    let before = pid_in(&s.ask("!plugins", "bad: running"));
    s.send("!bad boom");
    let after_line = s.ask_until("!plugins", "(1 restarts)", Duration::from_secs(20));
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    let after = pid_in(&s.ask("!plugins", "bad: running"));
    assert_ne!(before, after, "a new process: {after_line}");
    karma_still_answers(&mut s, "banana");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn pipelined_requests_are_answered_in_the_order_sent() {
    let (_sb, mut s) = with_misbehaving("behave", "");
    let line = s.ask_until("!bad pipeline 1000", "pipeline n=", Duration::from_secs(60));
    assert!(
        line.contains("pipeline n=1000 out_of_order=0 stale=0 errors=0"),
        "every answer in order, every get saw the set before it: {line}"
    );
    karma_still_answers(&mut s, "cherry");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn answers_to_a_stopped_process_never_reach_its_successor() {
    let (_sb, mut s) = with_misbehaving("behave", "");
    s.ask("!bad ping", "bad alive");
    s.send("!bad abandon 200");
    s.ask_until("!plugins", "(1 restarts)", Duration::from_secs(20));
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    s.ask("!bad strays", "strays 0 first=hello");
    // The first process did leave requests open.
    s.expect_log("exiting with 3 with 200 requests open");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_command_whose_plugin_crashes_or_hangs_while_answering_gets_an_answer() {
    let (_sb, mut s) =
        with_misbehaving("behave", "    ping_interval: 0.3\n    ping_timeout: 0.7\n");
    s.ask("!bad ping", "bad alive");
    s.ask(
        "!bad boom",
        "<hamper> Sorry, the bad plugin stopped while answering; it is being restarted.",
    );
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    s.ask(
        "!bad hang",
        "<hamper> Sorry, the bad plugin stopped while answering; it is being restarted.",
    );
    s.expect_log("did not answer a ping");
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_command_waiting_for_a_plugin_that_cannot_start_again_gets_an_answer() {
    let sb = Sandbox::new();
    let mark = sb.path().join("started-once");
    sb.write_config(&format!(
        "plugins:\n  - karma\n{}    handshake_timeout: 1\n    max_restarts: 5\n",
        misbehaving(
            "bad",
            &format!(
                "MISBEHAVE: hello-once, MISBEHAVE_MARK: \"{}\"",
                mark.display()
            )
        )
    ));
    let mut cmd = sb.hamper();
    cmd.arg("console");
    let mut s = Session::start(cmd);
    s.ask("!bad ping", "bad alive");
    s.send("!bad boom");
    // The restarted process is starting, and never finishes: the command waits for it, and
    // gets an answer when the handshake times out.
    s.ask_until(
        "!bad ping",
        "<hamper> Sorry, the bad plugin could not start; it is being restarted.",
        Duration::from_secs(20),
    );
    s.expect_log("started again: no hello this time");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_failed_plugins_commands_get_an_answer_not_silence() {
    let (_sb, mut s) = with_misbehaving("behave", "    max_restarts: 1\n");
    s.ask("!bad ping", "bad alive");
    s.send("!bad boom");
    s.ask_until("!plugins", "bad: failed", Duration::from_secs(20));
    s.ask(
        "!bad ping",
        "Sorry, the bad plugin is not running (!plugins says why).",
    );
    karma_still_answers(&mut s, "kiwi");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn plugins_do_not_inherit_the_bots_secrets() {
    let config = format!(
        "plugins:\n{}",
        misbehaving("bad", "MISBEHAVE: behave, EXTRA: given")
    );
    let (_sb, mut s) = console_with(
        &config,
        &[
            ("DATABASE_URL", "sqlite:secret.db"),
            ("password", "hunter2"),
        ],
    );
    s.ask("!bad env DATABASE_URL", "DATABASE_URL=unset");
    s.ask("!bad env password", "password=unset");
    s.ask("!bad env EXTRA", "EXTRA=given");
    s.ask("!bad env HAMPER_PLUGIN_NAME", "HAMPER_PLUGIN_NAME=bad");
    let path = s.ask("!bad env PATH", "PATH=");
    assert!(
        path.len() > "<hamper> PATH=".len(),
        "PATH is passed on: {path}"
    );
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn the_plugin_listed_first_wins_a_command_however_slow_it_starts() {
    let config = format!(
        "plugins:\n{}{}",
        misbehaving("slow", "MISBEHAVE: slow-hello"),
        misbehaving("fast", "MISBEHAVE: behave")
    );
    let (_sb, mut s) = console_with(&config, &[]);
    s.ask("!bad env HAMPER_PLUGIN_NAME", "HAMPER_PLUGIN_NAME=slow");
    let log = s.expect_log("command already claimed by another plugin");
    assert!(
        log.contains("owner=slow"),
        "the refusal names both plugins:\n{log}"
    );
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn an_sdk_plugin_whose_start_fails_exits_and_is_marked_failed() {
    let (_sb, mut s) = console_with("plugins: [karma, sed]\nsed:\n  only-directed: maybe\n", &[]);
    // Nothing is typed while waiting: a plugin stuck after its failed start would only notice
    // the next line the host sends it, and the console's own lines would hide the bug.
    wait_for(Duration::from_secs(30), "sed to be marked failed", || {
        s.stderr_text().contains("too many crashes").then_some(())
    });
    s.ask("!plugins", "sed: failed");
    // The reason reaches the log.
    s.expect_log("only-directed");
    karma_still_answers(&mut s, "lime");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn garbage_lines_are_counted_and_a_flood_counts_as_a_crash() {
    let (_sb, mut s) = with_misbehaving("behave", "");
    s.ask("!bad spew 3", "spewed 3");
    s.ask("!bad ping", "bad alive");
    s.expect_log("malformed line from plugin");
    s.send("!bad spew 40");
    s.ask_until("!plugins", "(1 restarts)", Duration::from_secs(20));
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    s.expect_log("malformed lines within");
    karma_still_answers(&mut s, "cherry");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_one_mebibyte_line_is_refused_without_harm() {
    let (_sb, mut s) = with_misbehaving("behave", "");
    s.ask("!bad huge", "huge done");
    assert!(
        s.seen.iter().all(|l| l.len() < 1000),
        "the huge line was not sent"
    );
    s.ask("!bad ping", "bad alive");
    assert!(s.ask("!plugins", "bad:").contains("(0 restarts)"));
    karma_still_answers(&mut s, "durian");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_plugin_that_never_reads_is_found_hung_and_restarted() {
    let (_sb, mut s) = with_misbehaving(
        "deaf",
        "    ping_interval: 0.3\n    ping_timeout: 0.7\n    inbox: 64KiB\n",
    );
    for i in 0..20 {
        s.send(&format!("!bad ping {i}"));
    }
    karma_still_answers(&mut s, "elder");
    s.ask_until("!plugins", "(1 restarts)", Duration::from_secs(20));
    s.expect_log("did not answer a ping");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_plugin_that_ignores_sigterm_is_killed_at_shutdown() {
    let (_sb, mut s) = with_misbehaving("stubborn", "");
    s.ask("!bad ping", "bad alive");
    let pgid = pid_in(&s.ask("!plugins", "bad: running"));
    assert!(!procs::group_members(pgid).is_empty());
    let status = s.finish(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        procs::group_members(pgid).is_empty(),
        "nothing of the stubborn plugin is left"
    );
}

#[test]
fn a_grandchild_holding_stdout_is_killed_with_its_plugin() {
    let (_sb, mut s) = with_misbehaving("grandchild", "");
    s.ask("!bad ping", "bad alive");
    let pgid = pid_in(&s.ask("!plugins", "bad: running"));
    wait_for(Duration::from_secs(10), "the grandchild to start", || {
        (procs::group_members(pgid).len() >= 3).then_some(())
    });
    s.send("!bad boom");
    s.ask_until("!plugins", "(1 restarts)", Duration::from_secs(20));
    wait_for(Duration::from_secs(5), "the old group to be gone", || {
        procs::group_members(pgid).is_empty().then_some(())
    });
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(20));
    s.expect_log("left processes behind");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_protocol_version_mismatch_fails_that_plugin_only() {
    let (_sb, mut s) = with_misbehaving("bad-version", "");
    let line = s.ask_until("!plugins", "bad: failed", Duration::from_secs(20));
    assert_eq!(
        line,
        "<hamper> bad: failed (it speaks protocol version 99, this hamper speaks version 1; \
         use a plugin built for version 1) (0 restarts)",
        "failed at once, with the reason, and never restarted"
    );
    karma_still_answers(&mut s, "fig");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_plugin_without_a_hello_is_restarted_then_failed() {
    let (_sb, mut s) = with_misbehaving(
        "no-hello",
        "    handshake_timeout: 0.3\n    max_restarts: 2\n",
    );
    let line = s.ask_until("!plugins", "bad: failed", Duration::from_secs(30));
    assert!(line.contains("no hello"), "{line}");
    assert!(
        line.contains("flush after every line (print(..., flush=True) in Python"),
        "the likely cause is named: {line}"
    );
    karma_still_answers(&mut s, "grape");
    assert!(s.finish(Duration::from_secs(20)).success());
}

#[test]
fn a_second_signal_during_shutdown_exits_at_once_and_the_guards_stop_the_plugins() {
    let (_sb, mut s) = with_misbehaving("stubborn", "");
    s.ask("!bad ping", "bad alive");
    let pgid = pid_in(&s.ask("!plugins", "bad: running"));
    // The stubborn plugin ignores its goodbye and SIGTERM: a normal shutdown waits 2 s, then
    // 2 s more, then kills it.
    s.signal("TERM", &[]);
    s.expect_log("SIGTERM received; shutting down");
    s.signal("INT", &[]);
    let (status, log) = s.wait_with_log(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("second signal during shutdown"), "{log}");
    assert!(
        !log.contains("did not stop after SIGTERM"),
        "the shutdown did not wait for the stubborn plugin:\n{log}"
    );
    wait_for(
        Duration::from_secs(5),
        "the stubborn plugin's group to be gone",
        || procs::group_members(pgid).is_empty().then_some(()),
    );
}

#[test]
fn sigterm_to_every_process_of_the_bot_at_once_restarts_nothing() {
    // As Heroku stops a dyno: every process gets SIGTERM at the same moment, plugins too.
    for round in 0..5 {
        let sb = Sandbox::new();
        let mut cmd = sb.hamper();
        cmd.arg("console");
        let mut s = Session::start(cmd);
        s.ask("!plugins", "sed: running");
        let everyone = procs::descendants(s.pid());
        assert!(everyone.len() >= 6, "guards and plugins: {everyone:?}");
        s.signal("TERM", &everyone);
        let (status, log) = s.wait_with_log(Duration::from_secs(20));
        assert!(status.success(), "round {round}: {status:?}\n{log}");
        assert!(
            !log.contains("restarting"),
            "round {round}: a plugin stopped by the dyno's SIGTERM was restarted:\n{log}"
        );
    }
}

#[test]
fn kill_9_of_the_supervisor_leaves_no_plugin_behind() {
    let config = format!(
        "plugins:\n  - karma\n  - help\n{}{}",
        misbehaving("stubborn", "MISBEHAVE: stubborn, MISBEHAVE_CMD: stubborn"),
        misbehaving("leaky", "MISBEHAVE: grandchild, MISBEHAVE_CMD: leaky")
    );
    let (_sb, mut s) = console_with(&config, &[]);
    s.ask("!stubborn ping", "stubborn alive");
    s.ask("!leaky ping", "leaky alive");
    s.send("!plugins");
    let mut groups = Vec::new();
    for name in ["karma", "help", "stubborn", "leaky"] {
        let line = s.expect(Duration::from_secs(10), name, |l| {
            l.starts_with(&format!("<hamper> {name}: running"))
        });
        groups.push(pid_in(&line));
    }
    let supervisor = s.pid();
    let all: Vec<u32> = procs::descendants(supervisor);
    assert!(
        all.len() >= 8,
        "guards, plugins and the grandchild: {all:?}"
    );
    s.kill9();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<String> = all
            .iter()
            .copied()
            .filter(|p| procs::alive(*p))
            .map(|p| {
                format!(
                    "{p} {}",
                    std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .unwrap_or_default()
                        .replace('\0', " ")
                )
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still alive 3s after kill -9: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in groups {
        assert!(procs::group_members(g).is_empty(), "group {g} is empty");
    }
}

#[test]
fn a_malformed_line_is_explained_and_names_its_plugin_at_the_default_log_level() {
    // A plugin in plain sh that, asked `!oops`, writes what authors write by mistake.
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("oops.sh"),
        r##"printf '%s\n' '{"type":"hello","protocol_version":1,"commands":[{"name":"oops"}]}'
while IFS= read -r line; do
    case $line in
    '{"type":"command"'*)
        printf '%s\n' "{'type': 'reply', 'channel': None, 'nick': 'you', 'text': 'hi'}"
        printf '%s\n' '{"type":"replay","channel":null,"nick":"you","text":"hi"}'
        printf '%s\n' '{"type":"reply","channel":"#hamper","nick":"you","text":"done"}' ;;
    '{"type":"ping","id":'*)
        id=${line#*\"id\":}; printf '{"type":"pong","id":%s}\n' "${id%%[!0-9]*}" ;;
    esac
done
"##,
    )
    .expect("write oops.sh");
    sb.write_config("plugins:\n  - {name: oops, command: [sh, oops.sh]}\n");
    let mut cmd = sb.hamper();
    cmd.env_remove("RUST_LOG").arg("console");
    let out = hamper_tests::run_with_input(cmd, "!oops\n");
    hamper_tests::assert_success(&out);
    assert_eq!(hamper_tests::stdout_lines(&out), ["<hamper> done"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    for warning in &warnings {
        assert!(
            warning.contains("plugin=oops"),
            "names the plugin: {warning}"
        );
    }
    assert!(
        warnings[0].contains("not JSON but a Python repr") && warnings[0].contains("json.dumps"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains(r#"`type` "replay" is not a message type of this protocol; use one of: hello, reply, say"#),
        "{}",
        warnings[1]
    );
}
