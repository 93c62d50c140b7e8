//! The owner commands end to end, with the real supervisor and plugins: `!restart`, `!disable`,
//! `!enable`, `!join`, `!part`, `!reload` (and SIGHUP), a failed plugin tried again after
//! `failed_retry`, and the "restarting" answer that says how long. In `hamper console` the
//! speaker is `you!you@console` (or whatever `/nick` made it), so `owners: ["you!you@console"]`
//! makes the console's user an owner.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::Duration;

use hamper_tests::ircd::{accept_within, IrcClient};
use hamper_tests::{bin, pid_in, procs, wait_for, Sandbox, Session};

const T: Duration = Duration::from_secs(20);
const OWNER: &str = "owners: [\"you!you@console\"]\n";

/// `hamper console` in a fresh sandbox whose hamper.conf is `config`.
fn console(config: &str) -> (Sandbox, Session) {
    let sb = Sandbox::new();
    sb.write_config(config);
    let mut cmd = sb.hamper();
    cmd.arg("console");
    let s = Session::start(cmd);
    (sb, s)
}

/// A `plugins:` list item running the misbehaving fixture as `name`; `extra` adds lines to it.
fn misbehaving(name: &str, env: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    command: [\"{}\"]\n    env: {{{env}}}\n{extra}",
        bin("hamper-misbehave").display()
    )
}

fn pid_of(s: &mut Session, plugin: &str) -> u32 {
    pid_in(&s.ask("!plugins", &format!("{plugin}: running")))
}

fn gone(pid: u32) {
    wait_for(T, &format!("process {pid} to exit"), || {
        (!procs::alive(pid)).then_some(())
    });
}

#[test]
fn restart_gives_a_plugin_a_new_process_that_answers() {
    let (_sb, mut s) = console(&format!("{OWNER}plugins: [karma, help]\n"));
    s.ask("!karma apple", "No karma for apple");
    let before = pid_of(&mut s, "karma");
    let line = s.ask(
        "!restart karma",
        "<hamper> The karma plugin is running again, pid ",
    );
    let after = pid_in(&line);
    assert_ne!(before, after, "{line}");
    gone(before);
    let status = s.ask("!plugins", "karma: running");
    assert_eq!(pid_in(&status), after, "{status}");
    assert!(
        status.contains(", up ") && status.ends_with("(1 restarts)"),
        "{status}"
    );
    s.ask("!karma apple", "No karma for apple");
    s.ask(
        "!restart",
        "<hamper> Say which plugin: !restart <plugin>; the plugins are karma, help.",
    );
    s.ask(
        "!restart frobnicate",
        "<hamper> There is no plugin named frobnicate; the plugins are karma, help.",
    );
    assert!(s.finish(T).success());
}

#[test]
fn nothing_said_while_an_owner_restarts_a_plugin_is_lost() {
    let sb = Sandbox::new();
    sb.write_config(&format!("{OWNER}plugins: [karma, help]\n"));
    // The whole script at once: the lines after `!restart` reach the bot while the old process
    // is saying goodbye and the new one is starting.
    let out = sb.console(
        &[],
        "!restart karma\n!karma foo\nfoo++\n!karma foo\n!plugins\n",
    );
    hamper_tests::assert_success(&out);
    let lines = hamper_tests::stdout_lines(&out);
    let said: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.contains("running again"))
        .collect();
    assert_eq!(
        said[..2],
        ["<hamper> No karma for foo", "<hamper> foo has 1 point"],
        "{lines:?}"
    );
    let status = said
        .iter()
        .find(|l| l.contains("karma: running"))
        .unwrap_or_else(|| panic!("no status line in {lines:?}"));
    assert!(!status.contains("dropped"), "{status}");
}

#[test]
fn a_disabled_plugin_is_stopped_and_says_so_until_enabled() {
    let (_sb, mut s) = console(&format!("{OWNER}plugins: [karma, help]\n"));
    let before = pid_of(&mut s, "karma");
    s.ask(
        "!disable karma",
        "<hamper> The karma plugin is disabled; !enable karma starts it again.",
    );
    gone(before);
    s.ask(
        "!karma apple",
        "<hamper> Sorry, the karma plugin is disabled.",
    );
    s.ask("!plugins", "<hamper> karma: disabled (0 restarts)");
    s.ask(
        "!disable karma",
        "<hamper> The karma plugin is already disabled.",
    );
    s.ask(
        "!restart karma",
        "<hamper> The karma plugin is disabled; !enable karma starts it.",
    );
    // `!help` leaves out the commands that would not answer.
    let start = s.seen.len();
    s.send("!help");
    s.settle();
    let help = &s.seen[start..];
    assert!(
        help.iter().any(|l| l.contains("!restart <plugin>"))
            && !help.iter().any(|l| l.contains("!karma")),
        "{help:#?}"
    );
    let line = s.ask(
        "!enable karma",
        "<hamper> The karma plugin is enabled and running, pid ",
    );
    assert_ne!(pid_in(&line), before);
    s.send("apple++");
    s.ask("!karma apple", "apple has 1 point");
    s.ask(
        "!enable karma",
        "<hamper> The karma plugin is not disabled; it is running.",
    );
    assert!(s.finish(T).success());
}

#[test]
fn someone_who_is_not_an_owner_is_refused() {
    let (_sb, mut s) = console(&format!("{OWNER}plugins: [karma]\n"));
    let before = pid_of(&mut s, "karma");
    s.send("/nick mallory");
    for command in [
        "!restart karma",
        "!disable karma",
        "!join #x",
        "!part",
        "!reload",
    ] {
        s.ask(command, "<hamper> You don't have permission to do that.");
    }
    s.send("/nick you");
    assert_eq!(pid_of(&mut s, "karma"), before, "nothing was restarted");
    s.settle();
    assert!(
        !s.seen
            .iter()
            .any(|l| l.contains("joins #x") || l.contains("leaves")),
        "{:#?}",
        s.seen
    );
    assert!(s.finish(T).success());
}

#[test]
fn join_and_part_in_the_console() {
    let (_sb, mut s) = console(OWNER);
    s.ask("!join #other", "<hamper> Joining #other.");
    s.expect(T, "the join", |l| l == "*** hamper joins #other");
    s.ask("!join #other", "<hamper> I am already in #other.");
    s.ask(
        "!join other",
        "<hamper> other is not a channel name: a channel starts with #, &, + or ! and has no spaces, commas or control characters.",
    );
    s.ask("!join", "<hamper> Say which channel: !join #channel [key].");
    s.ask("!part #other", "<hamper> Leaving #other.");
    s.expect(T, "the part", |l| l == "*** hamper leaves #other");
    s.ask("!part #other", "<hamper> I am not in #other.");
    s.ask(
        "/msg !part",
        "[you] <hamper> Say which channel: !part #channel (in private there is no channel to leave).",
    );
    s.ask("!part", "<hamper> Leaving #hamper.");
    s.expect(T, "the part", |l| l == "*** hamper leaves #hamper");
    assert!(s.finish(T).success());
}

#[test]
fn reload_starts_stops_and_restarts_what_changed_and_leaves_the_rest_running() {
    let (sb, mut s) = console(&format!("{OWNER}plugins: [karma, help]\n"));
    let karma = pid_of(&mut s, "karma");
    let help = pid_of(&mut s, "help");
    sb.write_config(&format!(
        "{OWNER}plugins: [karma, sed]\nchannels: [\"#added\"]\nnickname: renamed\n"
    ));
    s.ask(
        "!reload",
        "<hamper> Reloaded the config: started sed; stopped help; joining #added. Not applied until hamper restarts: nickname.",
    );
    s.expect(T, "the join", |l| l == "*** hamper joins #added");
    gone(help);
    s.ask_until("!plugins", "sed: running", T);
    assert_eq!(
        pid_of(&mut s, "karma"),
        karma,
        "karma did not change, so it kept running"
    );
    assert!(
        !s.ask("!plugins", "karma: running").contains("help"),
        "help is no longer listed"
    );
    s.send("hello wrold");
    s.ask("s/wrold/world/", "<hamper> you actually meant: hello world");
    s.send("!help");
    s.settle();
    assert!(
        !s.seen.iter().any(|l| l.contains("Available commands")),
        "help was removed, so !help is no command: {:#?}",
        s.seen
    );

    // A changed section restarts its plugin (the section reaches it only in its hello).
    let sed = pid_of(&mut s, "sed");
    sb.write_config(&format!(
        "{OWNER}plugins: [karma, sed]\nchannels: []\nsed: {{only-directed: true}}\n"
    ));
    s.ask(
        "!reload",
        "<hamper> Reloaded the config: restarted sed (changed); leaving #added.",
    );
    gone(sed);
    s.ask_until("!plugins", "sed: running", T);
    s.send("hello wrold");
    s.send("s/wrold/world/");
    s.ask(
        "!s/wrold/world/",
        "<hamper> you actually meant: hello world",
    );
    let corrections = s
        .seen
        .iter()
        .filter(|l| l.contains("actually meant"))
        .count();
    assert_eq!(
        corrections, 2,
        "only-directed: the bare s/// was ignored: {:#?}",
        s.seen
    );
    assert_eq!(pid_of(&mut s, "karma"), karma);
    s.expect_log("config reloaded");
    assert!(s.finish(T).success());
}

#[test]
fn a_bad_config_is_refused_and_the_bot_carries_on_unchanged() {
    let (sb, mut s) = console(&format!("{OWNER}plugins: [karma]\n"));
    let karma = pid_of(&mut s, "karma");
    sb.write_config(&format!(
        "{OWNER}plugins: [karma, sed]\nport: lots\nchannels: [hamper]\n"
    ));
    s.ask(
        "!reload",
        "<hamper> Reload refused, nothing changed: the config has 2 problems (port, channels[0]); the log says what and how to fix it.",
    );
    let log = s.expect_log("reload refused: invalid configuration");
    assert!(log.contains("lots") && log.contains("fix"), "{log}");
    assert_eq!(pid_of(&mut s, "karma"), karma);
    s.send("apple++");
    s.ask("!karma apple", "apple has 1 point");
    s.settle();
    assert!(!s.seen.iter().any(|l| l.contains("sed:")), "{:#?}", s.seen);
    assert!(s.finish(T).success());
}

#[test]
fn sighup_reloads_like_the_command() {
    let (sb, mut s) = console("plugins: [karma]\n");
    let karma = pid_of(&mut s, "karma");
    sb.write_config("plugins: [karma, sed]\n");
    s.signal("HUP", &[]);
    s.expect_log("config reloaded");
    s.ask_until("!plugins", "sed: running", T);
    assert_eq!(pid_of(&mut s, "karma"), karma);
    sb.write_config("plugins: [karma, sed]\nport: lots\n");
    s.signal("HUP", &[]);
    s.expect_log("reload refused: invalid configuration");
    s.ask("!karma apple", "No karma for apple");
    assert!(s.finish(T).success(), "SIGHUP does not stop the bot");
}

/// A shell script in `sb` that runs the misbehaving fixture unless `condition` (a shell test)
/// holds, in which case it exits with 1 first; returns its path.
fn wrapper(sb: &Sandbox, condition: &str, before_exec: &str) -> std::path::PathBuf {
    let path = sb.path().join("wrapper.sh");
    std::fs::write(
        &path,
        format!(
            "if {condition}; then echo 'refusing to start, as the test asks' >&2; exit 1; fi\n{before_exec}\nexec \"{}\"\n",
            bin("hamper-misbehave").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn while_a_plugin_backs_off_the_answer_says_how_long() {
    let sb = Sandbox::new();
    // The first process registers `!bad` and runs; every later one exits at once.
    let script = wrapper(&sb, "[ -e \"$MARK\" ]", "touch \"$MARK\"");
    sb.write_config(&format!(
        "plugins:\n  - karma\n  - name: bad\n    command: [sh, \"{}\"]\n    env: {{MARK: \"{}\", MISBEHAVE: behave}}\n    max_restarts: 50\n",
        script.display(),
        sb.path().join("started").display()
    ));
    let mut cmd = sb.hamper();
    cmd.arg("console");
    let mut s = Session::start(cmd);
    s.ask("!bad ping", "bad alive");
    s.send("!bad boom");
    // Quick crashes in a row wait 0.25, 0.5, 1, 2, 4 s …: soon the wait is longer than a second.
    let line = s.ask_until("!bad ping", "try again in about", T);
    let pattern = regex::Regex::new(
        r"^<hamper> Sorry, the bad plugin is restarting; try again in about \d+ s\.$",
    )
    .unwrap();
    assert!(pattern.is_match(&line), "{line}");
    let status = s.ask_until("!plugins", "bad: restarting, next try in", T);
    assert!(status.contains(" s ("), "{status}");
    assert!(s.finish(T).success());
}

#[test]
fn a_failed_plugin_is_tried_again_and_answers_once_it_can_start() {
    let sb = Sandbox::new();
    let gate = sb.path().join("gate-closed");
    std::fs::write(&gate, "").unwrap();
    let wrapper = wrapper(&sb, "[ -e \"$GATE\" ]", "");
    sb.write_config(&format!(
        "plugins:\n  - karma\n  - name: bad\n    command: [sh, \"{}\"]\n    env: {{GATE: \"{}\", MISBEHAVE: behave}}\n    max_restarts: 2\n    failed_retry: 1\n{}  - name: missing\n    command: [no-such-program-xyz]\n",
        wrapper.display(),
        gate.display(),
        misbehaving("never", "MISBEHAVE: crash-at-start", "    max_restarts: 1\n    failed_retry: off\n"),
    ));
    let mut cmd = sb.hamper();
    cmd.arg("console");
    let mut s = Session::start(cmd);
    let failed = s.ask_until("!plugins", "bad: failed", T);
    assert!(failed.contains("), next try in "), "{failed}");
    let never = s.ask("!plugins", "never: failed");
    assert!(!never.contains("next try"), "failed_retry: off: {never}");
    let missing = s.ask("!plugins", "missing: failed");
    assert!(
        missing.contains("not found on PATH") && !missing.contains("next try"),
        "a missing program is not tried again: {missing}"
    );
    std::fs::remove_file(&gate).unwrap();
    s.ask_until("!bad ping", "bad alive", Duration::from_secs(30));
    s.expect_log("trying the failed plugin again");
    let never = s.ask("!plugins", "never: failed");
    assert!(never.ends_with("(0 restarts)"), "{never}");
    assert!(s.finish(T).success());
}

/// `hamper run` with `config` as its hamper.conf against a scripted server, registered as `hb`
/// and joined to the configured channel `#home`.
fn bot_on_scripted_server(config: &str) -> (Sandbox, Session, IrcClient) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "server: 127.0.0.1\nport: {port}\nnickname: hb\nflood: off\n{config}"
    ));
    let mut cmd = sb.hamper();
    cmd.arg("run");
    let bot = Session::start(cmd);
    let mut peer = IrcClient::from_stream(accept_within(&listener, T, "the bot's connection"));
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send(":srv 001 hb :Welcome");
    peer.expect(T, "the join", |l| l == "JOIN #home");
    peer.send(":hb!b@h JOIN #home");
    (sb, bot, peer)
}

#[test]
fn over_irc_an_owner_by_hostmask_is_obeyed_and_a_spoofer_with_the_nick_is_not() {
    let (_sb, bot, mut peer) = bot_on_scripted_server(
        "owners: [\"boss!b@trusted.example\"]\nchannels: [\"#home\"]\nplugins: [karma]\n",
    );
    let boss = ":boss!b@trusted.example PRIVMSG";
    let spoofer = ":boss!x@elsewhere.example PRIVMSG";
    peer.send(&format!("{spoofer} #home :!join #spoofed"));
    peer.expect(T, "the refusal", |l| {
        l == "PRIVMSG #home :You don't have permission to do that."
    });
    peer.send(&format!("{spoofer} #home :!restart karma"));
    peer.expect(T, "the refusal", |l| {
        l == "PRIVMSG #home :You don't have permission to do that."
    });

    peer.send(&format!("{boss} #home :!join #new"));
    peer.expect(T, "the join", |l| l == "JOIN #new");
    peer.send(":hb!b@h JOIN #new");
    peer.send(&format!("{boss} #new :!part"));
    peer.expect(T, "the answer before leaving", |l| {
        l == "PRIVMSG #new :Leaving #new."
    });
    peer.expect(T, "the part", |l| l == "PART #new");
    peer.send(&format!("{boss} hb :!part"));
    peer.expect(T, "the answer in private", |l| {
        l.starts_with("PRIVMSG boss :Say which channel")
    });
    peer.send(&format!("{boss} #home :!join #bad,#worse"));
    peer.expect(T, "the refusal of a bad name", |l| {
        l.starts_with("PRIVMSG #home :#bad,#worse is not a channel name")
    });
    peer.send(&format!("{boss} #home :!restart karma"));
    peer.expect(T, "the restart", |l| {
        l.starts_with("PRIVMSG #home :The karma plugin is running again, pid ")
    });
    peer.send(&format!("{boss} #home :!karma apple"));
    peer.expect(T, "karma answers", |l| {
        l == "PRIVMSG #home :No karma for apple"
    });
    assert!(
        !peer.seen.iter().any(|l| l.contains("#spoofed")),
        "{:#?}",
        peer.seen
    );
    let (status, log) = bot.terminate_with_log(T);
    assert!(status.success());
    assert!(log.contains("command refused"), "{log}");
}

#[test]
fn over_irc_a_reload_joins_added_channels_and_leaves_removed_ones() {
    let base = "owners: [\"boss!b@trusted.example\"]\nplugins: [karma]\n";
    let (sb, bot, mut peer) =
        bot_on_scripted_server(&format!("{base}channels: [\"#home\", \"#old\"]\n"));
    peer.expect(T, "the second join", |l| l == "JOIN #old");
    peer.send(":hb!b@h JOIN #old");
    let conf = std::fs::read_to_string(sb.path().join("hamper.conf")).unwrap();
    sb.write_config(&conf.replace(
        "channels: [\"#home\", \"#old\"]",
        "channels: [\"#home\", \"#fresh sesame\"]",
    ));
    peer.send(":boss!b@trusted.example PRIVMSG #home :!reload");
    peer.expect(T, "the summary", |l| {
        l == "PRIVMSG #home :Reloaded the config: joining #fresh; leaving #old."
    });
    peer.expect(T, "the part", |l| l == "PART #old");
    peer.expect(T, "the keyed join", |l| l == "JOIN #fresh sesame");
    let (status, log) = bot.terminate_with_log(T);
    assert!(status.success());
    assert!(
        !log.contains("sesame"),
        "a channel key never reaches the log:\n{log}"
    );
}

#[test]
fn a_secret_that_a_reload_pulls_in_is_masked_in_the_log() {
    let sb = Sandbox::new();
    sb.write_config(&format!("{OWNER}plugins: [karma]\n"));
    let secret = "s3cr3t-from-reload";
    let mut cmd = sb.hamper();
    cmd.arg("console").env("LATE_SECRET", secret);
    let mut s = Session::start(cmd);
    s.ask("!karma apple", "No karma for apple");
    // A plugin added by the reload prints the value it was given to its stderr, which the log
    // carries.
    sb.write_config(&format!(
        "{OWNER}plugins:\n  - karma\n  - name: leaky\n    command: [sh, -c, 'echo \"given $GIVEN\" >&2; exec \"$0\"', \"{}\"]\n    env: {{GIVEN: $LATE_SECRET, MISBEHAVE: behave}}\n",
        bin("hamper-misbehave").display()
    ));
    s.ask("!reload", "<hamper> Reloaded the config: started leaky.");
    s.ask_until("!bad ping", "bad alive", T);
    let log = s.expect_log("given ********");
    assert!(!log.contains(secret), "{log}");
    assert!(s.finish(T).success());
}
