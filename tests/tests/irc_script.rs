//! Exact protocol flows against a scripted fake server: registration with a taken nick, the
//! NickServ handshake before joining, keyed channels, PING, hostile lines, QUIT, the server's
//! casemapping, the real prefix in the 512-byte budget, plugins taking turns on a paced wire,
//! that the password and channel key never reach the log even at trace level, and who may use a
//! command that needs a permission, with exact hostmasks (owners, spoofers, an ACL file).
// Failing loudly is how these helpers report a broken flow.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::Duration;

use hamper_tests::ircd::{accept_within, IrcClient};
use hamper_tests::scripted::{bot_and_peer, bot_command, registered_bot, registered_bot_in};
use hamper_tests::{Sandbox, Session};

const T: Duration = Duration::from_secs(20);

#[test]
fn registration_nickserv_keyed_join_ping_hostile_lines_and_quit() {
    let (_sb, bot, mut peer) = bot_and_peer(&[("nickname", "hb")]);
    peer.expect(T, "PASS", |l| l == "PASS s3cr3t-pass");
    peer.expect(T, "NICK", |l| l == "NICK hb");
    peer.expect(T, "USER", |l| l.starts_with("USER hb "));
    peer.send_bytes(b":srv 433 * hb :Nickname is already in use");
    peer.expect(T, "another nick", |l| l == "NICK hb_");
    peer.send_bytes(b":srv 001 hb_ :Welcome to the test network hb_");
    peer.expect(T, "identify", |l| {
        l == "PRIVMSG NickServ :IDENTIFY s3cr3t-pass"
    });
    assert!(
        !peer.seen.iter().any(|l| l.starts_with("JOIN")),
        "no JOIN before NickServ answers"
    );
    peer.send_bytes(b":NickServ!s@services NOTICE hb_ :You are now identified for hb.");
    peer.expect(T, "the keyed join", |l| l == "JOIN #keyed sesame-key");
    peer.send_bytes(b":hb_!b@h JOIN #keyed");

    peer.send_bytes(b"PING :token123");
    peer.expect(T, "PONG", |l| l == "PONG token123");

    // Not UTF-8, an over-long line, a line with no verb, then a real command.
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :\xff\xfe\xfd++");
    let long = format!(":eve!e@h PRIVMSG #keyed :{}", "y".repeat(20_000));
    peer.send_bytes(long.as_bytes());
    peer.send_bytes(b":eve!e@h");
    peer.send_bytes(b"@a=b;c :eve!e@h PRIVMSG #keyed :!karma nobody");
    peer.expect(T, "an answer after hostile lines", |l| {
        l == "PRIVMSG #keyed :No karma for nobody"
    });

    // CTCP ACTION reaches plugins as an action; CTCP VERSION is answered by the bot itself.
    peer.send_bytes(b":eve!e@h PRIVMSG hb_ :\x01VERSION\x01");
    peer.expect(T, "a CTCP VERSION reply", |l| {
        l.starts_with("NOTICE eve :\u{1}VERSION hamper")
    });

    let status = bot.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    peer.expect(T, "QUIT", |l| l.starts_with("QUIT"));
}

#[test]
fn a_plugin_writing_without_pause_cannot_freeze_the_connection() {
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[]);
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!bad flood");
    peer.expect(T, "the flood", |l| l == "PRIVMSG #keyed flood");
    // Far more server lines than the bot's queues hold, while the plugin writes without pause.
    for i in 0..3000 {
        peer.send_bytes(format!(":eve!e@h PRIVMSG #keyed :chatter {i}").as_bytes());
    }
    for token in ["one", "two", "three"] {
        peer.send_bytes(format!("PING :{token}").as_bytes());
        peer.expect(T, "a PONG during the flood", |l| {
            l == format!("PONG {token}")
        });
    }
    let status = bot.terminate(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM still stops the bot: {status:?}");
}

#[test]
fn a_burst_of_ten_thousand_commands_gets_ten_thousand_answers() {
    const BURST: usize = 10_000;
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[("flood", "off")]);
    peer.send_bytes(b":hb!b@h JOIN #keyed");
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :burst++");
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!karma burst");
    peer.expect(T, "karma is up", |l| {
        l == "PRIVMSG #keyed :burst has 1 point"
    });
    // Written from a thread of its own, so that the bot's answers are read meanwhile: a test
    // that only wrote would fill both sockets' buffers and stall itself, not the bot.
    let mut burst = Vec::new();
    for _ in 0..BURST {
        burst.extend_from_slice(b":eve!e@h PRIVMSG #keyed :!karma burst\r\n");
    }
    let writer = peer.writer_handle();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut writer = writer;
        writer.write_all(&burst).expect("write the burst");
    });
    let mut answers = 0;
    while answers < BURST {
        peer.expect(
            Duration::from_secs(120),
            &format!("answer {} of {BURST}", answers + 1),
            |l| l == "PRIVMSG #keyed :burst has 1 point",
        );
        answers += 1;
    }
    sender.join().expect("writer thread");
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(!log.contains("dropping"), "nothing was dropped:\n{log}");
}

#[test]
fn events_a_deaf_plugin_cannot_take_are_counted_and_plugins_says_how_many() {
    let (_sb, bot, mut peer) = registered_bot(
        "deaf",
        ", inbox: 64KiB, ping_interval: 3600",
        &[("flood", "off")],
    );
    // Some 400 KiB of commands for a plugin that never reads: its pipe and its 64 KiB inbox
    // take the first ones, the rest are dropped.
    let padding = "x".repeat(300);
    for i in 0..500 {
        peer.send(&format!(":eve!e@h PRIVMSG #keyed :!bad ping {i} {padding}"));
    }
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!plugins");
    let line = peer.expect(T, "the bad plugin's line", |l| l.contains(":bad: running"));
    let dropped: u64 = line
        .rsplit_once(", ")
        .and_then(|(_, tail)| tail.strip_suffix(" events dropped"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {line}"));
    assert!((1..500).contains(&dropped), "{line}");
    bot.expect_log("plugin inbox full; dropping events");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_silent_server_is_pinged_then_left_for_a_new_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    let bot = Session::start(bot_command(
        &sb,
        port,
        &[
            ("RUST_LOG", "info"),
            ("nickname", "hb"),
            ("password", ""),
            ("channels", "[\"#quiet\"]"),
            ("ping_interval", "0.5"),
            ("ping_timeout", "0.5"),
        ],
    ));
    let mut peer = IrcClient::from_stream(accept_within(&listener, T, "the bot's connection"));
    peer.answer_pings = false;
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send_bytes(b":srv 001 hb :Welcome");
    peer.expect(T, "the join", |l| l == "JOIN #quiet");
    peer.send_bytes(b":hb!b@h JOIN #quiet");
    // From here on the server says nothing, as a frozen server or a dead NAT would.
    peer.expect(T, "a keepalive PING", |l| l.starts_with("PING "));
    bot.expect_log("sending PING");
    let mut peer = IrcClient::from_stream(accept_within(&listener, T, "a new connection"));
    peer.expect(T, "registration on the new connection", |l| l == "NICK hb");
    let log = bot.expect_log("irc connection lost; reconnecting");
    assert!(log.contains("not even an answer to our PING"), "{log}");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_server_password_with_a_space_is_one_parameter() {
    let (_sb, bot, mut peer) = bot_and_peer(&[("nickname", "hb"), ("password", "two words")]);
    peer.expect(T, "PASS", |l| l == "PASS :two words");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn ctcp_is_answered_to_the_sender_only_a_few_at_a_time_and_never_in_a_notice() {
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[("flood", "off")]);
    // To a channel, the answer still goes to the sender, by NOTICE.
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :\x01TIME\x01");
    let time = peer.expect(T, "CTCP TIME", |l| l.starts_with("NOTICE eve :\u{1}TIME "));
    assert!(time.ends_with(" +0000\u{1}"), "{time}");
    peer.send_bytes(b":eve!e@h PRIVMSG hb :\x01CLIENTINFO\x01");
    peer.expect(T, "CTCP CLIENTINFO", |l| {
        l == "NOTICE eve :\u{1}CLIENTINFO ACTION CLIENTINFO PING SOURCE TIME VERSION\u{1}"
    });
    // The budget (three at once) is spent: these go unanswered.
    peer.send_bytes(b":eve!e@h PRIVMSG hb :\x01SOURCE\x01");
    for i in 0..10 {
        peer.send(&format!(":eve!e@h PRIVMSG hb :\x01PING {i}\x01"));
    }
    // A CTCP inside a NOTICE is never answered (that is how CTCP loops are avoided).
    peer.send_bytes(b":mallory!m@h NOTICE hb :\x01VERSION\x01");
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!bad ping");
    peer.expect(T, "the plugin's answer", |l| {
        l == "PRIVMSG #keyed :bad alive"
    });
    let answers: Vec<&String> = peer
        .seen
        .iter()
        .filter(|l| l.starts_with("NOTICE"))
        .collect();
    // Three at once, then one every five seconds: on a loaded machine a fourth may come.
    assert!(
        (3..=4).contains(&answers.len()),
        "three CTCP answers, then (almost) none: {answers:?}"
    );
    assert!(
        answers[2].starts_with("NOTICE eve :\u{1}SOURCE "),
        "{answers:?}"
    );
    assert!(
        !peer.seen.iter().any(|l| l.contains("mallory")),
        "{:?}",
        peer.seen
    );
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn kicked_it_joins_again_and_it_follows_an_invite_from_an_owner_only() {
    let (_sb, bot, mut peer) =
        registered_bot("behave", "", &[("owners", "[\"boss!*@trusted.example\"]")]);
    peer.send_bytes(b":hb!b@h JOIN #keyed");
    peer.send_bytes(b":op!o@h KICK #keyed hb :out");
    peer.expect(
        Duration::from_secs(20),
        "the join again, with the key",
        |l| l == "JOIN #keyed sesame-key",
    );
    // A spoofer with the owner's nick but another host is not followed; the owner is.
    peer.send_bytes(b":boss!x@elsewhere.example INVITE hb #spoofed");
    peer.send_bytes(b":boss!b@trusted.example INVITE hb #invited");
    peer.expect(T, "the join after the owner's invite", |l| {
        l.starts_with("JOIN #invited")
    });
    assert!(
        !peer.seen.iter().any(|l| l.contains("#spoofed")),
        "{:?}",
        peer.seen
    );
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

/// Sends each line from the server and checks the bot's next PRIVMSG is the answer given, so
/// that every answer belongs to the line before it.
fn answers(peer: &mut IrcClient, cases: &[(&str, &str)]) {
    for (line, want) in cases {
        peer.send(line);
        let got = peer.expect(T, want, |l| l.starts_with("PRIVMSG "));
        assert_eq!(&got, want, "the answer to {line}");
    }
}

const REFUSED: &str = "You don't have permission to do that.";

#[test]
fn a_permissioned_command_answers_an_owner_by_hostmask_and_refuses_a_spoofer() {
    let (_sb, bot, mut peer) = registered_bot_in(
        Sandbox::new(),
        "MISBEHAVE: behave, MISBEHAVE_PERMISSION: admin.misbehave",
        "",
        &[("owners", "[\"boss!*@trusted.example\"]"), ("flood", "off")],
    );
    let refused = format!("PRIVMSG #keyed :{REFUSED}");
    answers(
        &mut peer,
        &[
            // The owner's nick from another user@host is not the owner.
            (
                ":boss!x@elsewhere.example PRIVMSG #keyed :!bad ping",
                &refused,
            ),
            (":eve!e@eve.example PRIVMSG #keyed :!bad ping", &refused),
            (
                ":boss!b@trusted.example PRIVMSG #keyed :!bad ping",
                "PRIVMSG #keyed :bad alive",
            ),
            (
                ":boss!b@trusted.example PRIVMSG hb :bad ping",
                "PRIVMSG boss :bad alive",
            ),
            (
                ":boss!x@elsewhere.example PRIVMSG hb :bad ping",
                &format!("PRIVMSG boss :{REFUSED}"),
            ),
        ],
    );
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success());
    assert!(
        log.contains("command refused: the sender does not hold the permission"),
        "{log}"
    );
}

#[test]
fn an_acl_file_in_the_original_format_grants_by_channel_group_and_hostmask() {
    let sb = Sandbox::new();
    let etc = sb.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    // The original's acl.json format, with one bare name as old files have them.
    std::fs::write(
        etc.join("acl.json"),
        r##"{
  "groups": {"@ops": ["op!*@ops.example"]},
  "permissions": {
    "@ops": ["misbehave.*"],
    "#quiet": ["-misbehave.run"],
    "#open": ["*"],
    "eve": ["misbehave.run"]
  }
}
"##,
    )
    .unwrap();
    std::fs::write(etc.join("hamper.conf"), "acl: acl.json\n").unwrap();
    let (_sb, bot, mut peer) = registered_bot_in(
        sb,
        "MISBEHAVE: behave, MISBEHAVE_PERMISSION: misbehave.run",
        "",
        &[
            ("HAMPER_CONFIG", "etc/hamper.conf"),
            ("owners", "[\"boss!*@trusted.example\"]"),
            ("flood", "off"),
        ],
    );
    let refused = |c: &str| format!("PRIVMSG {c} :{REFUSED}");
    answers(
        &mut peer,
        &[
            // @ops by hostmask, in a channel and in private.
            (
                ":op!o@ops.example PRIVMSG #keyed :!bad ping",
                "PRIVMSG #keyed :bad alive",
            ),
            (
                ":op!o@ops.example PRIVMSG hb :bad ping",
                "PRIVMSG op :bad alive",
            ),
            // The nick alone is not @ops.
            (
                ":op!x@elsewhere.example PRIVMSG #keyed :!bad ping",
                &refused("#keyed"),
            ),
            // A deny beats the group's allow.
            (
                ":op!o@ops.example PRIVMSG #quiet :!bad ping",
                &refused("#quiet"),
            ),
            // Everyone in #open.
            (
                ":anyone!a@a.example PRIVMSG #open :!bad ping",
                "PRIVMSG #open :bad alive",
            ),
            // A bare name grants nothing: anyone could be `eve`.
            (
                ":eve!e@eve.example PRIVMSG #keyed :!bad ping",
                &refused("#keyed"),
            ),
            // Owners hold every permission, even where the ACL denies it.
            (
                ":boss!b@trusted.example PRIVMSG #quiet :!bad ping",
                "PRIVMSG #quiet :bad alive",
            ),
        ],
    );
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success());
    assert!(
        log.contains("acl.json).permissions.eve: `eve` is a bare nick"),
        "the bare name is warned about at start:\n{log}"
    );
}

#[test]
fn secrets_never_reach_the_log() {
    let (_sb, bot, mut peer) = bot_and_peer(&[("DATABASE_URL", "sqlite:hamper.db")]);
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send_bytes(b":srv 001 hamper :Welcome");
    peer.send_bytes(b":NickServ!s@services NOTICE hamper :Password accepted");
    peer.expect(T, "the join", |l| l.starts_with("JOIN #keyed"));
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success());
    assert!(
        log.contains("registered"),
        "the trace-level log was captured:\n{log}"
    );
    for secret in ["s3cr3t-pass", "sesame-key"] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
    }
}

#[test]
fn a_reply_that_only_fits_with_the_real_prefix_is_one_line_once_the_prefix_is_known() {
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[("flood", "off")]);
    // With `:hb!u@h` relayed in front, 486 bytes of text fit in 512; before the bot has seen
    // its prefix it must allow for a 63-byte host and a 10-byte user, which leaves 415.
    let text = "y".repeat(430);
    let fits = |l: &str| format!(":hb!u@h {l}\r\n").len() <= 512;
    peer.send(&format!(":eve!e@h PRIVMSG #keyed :!bad echo {text}"));
    let first = peer.expect(T, "the first piece", |l| l.starts_with("PRIVMSG #keyed "));
    let second = peer.expect(T, "the second piece", |l| l.starts_with("PRIVMSG #keyed "));
    let ys = |l: &str| l.rsplit(' ').next().unwrap_or("").matches('y').count();
    assert!(
        ys(&first) < 430 && ys(&first) + ys(&second) == 430,
        "split in two before the prefix is known: {first} / {second}"
    );

    peer.send_bytes(b":hb!u@h JOIN #keyed");
    peer.send(&format!(":eve!e@h PRIVMSG #keyed :!bad echo {text}"));
    let whole = peer.expect(T, "the whole reply", |l| l.starts_with("PRIVMSG #keyed "));
    assert!(
        whole.ends_with(&text),
        "one line once the prefix is known: {whole}"
    );
    assert!(fits(&whole), "{} bytes relayed", whole.len());
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!bad ping");
    peer.expect(T, "the next reply", |l| l == "PRIVMSG #keyed :bad alive");
    let pieces = peer.seen.iter().filter(|l| l.contains("yyyy")).count();
    assert_eq!(pieces, 3, "two pieces, then one line: {:?}", peer.seen);
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn plugins_take_turns_on_a_paced_wire_and_a_flooder_loses_only_its_own_lines() {
    let plugin = |name: &str| {
        format!(
            "{{name: {name}, command: [\"{}\"], env: {{MISBEHAVE: behave, MISBEHAVE_CMD: {name}}}}}",
            hamper_tests::bin("hamper-misbehave").display()
        )
    };
    let plugins = format!("[{}, {}]", plugin("bad"), plugin("calm"));
    let (_sb, bot, mut peer) = bot_and_peer(&[
        ("nickname", "hb"),
        ("password", ""),
        ("plugins", plugins.as_str()),
        ("flood", "{burst: 1, per_second: 10}"),
        ("RUST_LOG", "info"),
    ]);
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send_bytes(b":srv 001 hb :Welcome");
    peer.expect(T, "the join", |l| l.starts_with("JOIN #keyed"));
    peer.send_bytes(b":hb!u@h JOIN #keyed");

    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!bad flood");
    peer.expect(T, "the flood", |l| l == "PRIVMSG #keyed flood");
    // The flooder now has a full share of the queue waiting: 25 s of lines at 10 a second.
    bot.expect_log("send queue share full");
    let before = peer.seen.len();
    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!calm ping");
    peer.expect(T, "the calm plugin's answer", |l| {
        l == "PRIVMSG #keyed :calm alive"
    });
    let floods_between = peer.seen[before..]
        .iter()
        .filter(|l| l.as_str() == "PRIVMSG #keyed flood")
        .count();
    // Taking turns, the answer waits for at most one flood line after it is queued; the rest
    // are the lines that left while the command travelled through the bot (a second at most
    // at this pace, even on a loaded machine).
    assert!(
        floods_between <= 12,
        "{floods_between} flood lines went out before the answer"
    );

    peer.send_bytes(b":eve!e@h PRIVMSG #keyed :!plugins");
    let line = peer.expect(T, "the flooder's line", |l| l.contains(":bad: running"));
    assert!(
        line.contains(" lines not sent (send queue full)"),
        "the flooder's dropped lines are counted: {line}"
    );
    let calm = peer.expect(T, "the calm plugin's line", |l| {
        l.contains(":calm: running")
    });
    assert!(!calm.contains("not sent"), "{calm}");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn names_compare_as_the_server_says_in_its_casemapping() {
    // Under rfc1459 `hb{` is the same nick as `hb[`; under ascii it is someone else.
    let plugins = format!(
        "[{{name: bad, command: [\"{}\"], env: {{MISBEHAVE: behave}}}}]",
        hamper_tests::bin("hamper-misbehave").display()
    );
    for (mapping, same) in [("ascii", false), ("rfc1459", true)] {
        let (_sb, bot, mut peer) = bot_and_peer(&[
            ("nickname", "hb["),
            ("password", ""),
            ("plugins", plugins.as_str()),
            ("RUST_LOG", "info"),
        ]);
        peer.expect(T, "USER", |l| l.starts_with("USER "));
        peer.send_bytes(b":srv 001 hb[ :Welcome");
        peer.send(&format!(
            ":srv 005 hb[ CASEMAPPING={mapping} CHANTYPES=# :are supported by this server"
        ));
        peer.send_bytes(b":srv 376 hb[ :End of MOTD");
        peer.expect(T, "the join", |l| l.starts_with("JOIN #keyed"));
        peer.send_bytes(b":eve!e@h PRIVMSG #keyed :HB{: bad echo folded");
        peer.send_bytes(b":eve!e@h PRIVMSG #keyed :hb[: bad echo exact");
        peer.expect(T, "the answer to the exact nick", |l| {
            l == "PRIVMSG #keyed exact"
        });
        let folded = peer.seen.iter().any(|l| l == "PRIVMSG #keyed folded");
        assert_eq!(folded, same, "{mapping}: {:?}", peer.seen);
        assert!(bot.terminate(Duration::from_secs(30)).success());
    }
}
