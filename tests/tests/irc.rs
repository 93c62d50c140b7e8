//! The real thing: `hamper run` configured from the environment alone, on a real ngircd, with a
//! real IRC client talking to it.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use hamper_tests::ircd::{IrcClient, Ngircd};
use hamper_tests::{Sandbox, Session};

const BOT: &str = "hamperbot";

fn start_bot(sandbox: &Sandbox, port: u16) -> Session {
    let mut cmd = sandbox.hamper();
    cmd.arg("run")
        .env("nickname", BOT)
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("channels", "[\"#test\"]")
        .env("plugins", "[karma,help,sed]");
    Session::start(cmd)
}

fn join_and_wait_for_bot(client: &mut IrcClient) {
    client.send("JOIN #test");
    // The bot is either there already (listed in NAMES) or joins later.
    client.expect(Duration::from_secs(20), "the bot to be in #test", |l| {
        let joins = l.starts_with(&format!(":{BOT}!")) && l.contains(" JOIN ");
        let listed = l.split(' ').nth(1) == Some("353")
            && l.split_once(" :").is_some_and(|(_, names)| {
                names
                    .split(' ')
                    .any(|n| n.trim_start_matches(['@', '+']) == BOT)
            });
        joins || listed
    });
}

#[test]
fn the_bot_joins_from_environment_config_and_answers_in_channel_and_private() {
    let Some(server) = Ngircd::start() else {
        return;
    };
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.send("JOIN #test");
    alice.expect(Duration::from_secs(10), "alice's own join", |l| {
        l.starts_with(":alice!") && l.contains("JOIN")
    });
    let sandbox = Sandbox::new();
    let bot = start_bot(&sandbox, server.port);
    alice.expect(Duration::from_secs(30), "the bot to join #test", |l| {
        l.starts_with(&format!(":{BOT}!")) && l.contains(" JOIN ")
    });

    alice.send("PRIVMSG #test :!help");
    alice.expect_privmsg(BOT, "alice", "help in private", |t| {
        t == "Available commands"
    });
    alice.expect_privmsg(BOT, "alice", "the karma command in the list", |t| {
        t.starts_with("!karma")
    });

    alice.send("PRIVMSG #test :foo++ foo++");
    alice.send("PRIVMSG #test :!karma foo");
    alice.expect_privmsg(BOT, "#test", "karma", |t| t == "foo has 2 points");

    alice.send(&format!("PRIVMSG #test :{BOT}: score foo"));
    alice.expect_privmsg(BOT, "#test", "addressed karma", |t| t == "foo has 2 points");

    alice.send(&format!("PRIVMSG {BOT} :karma foo"));
    alice.expect_privmsg(BOT, "alice", "karma in private", |t| {
        t == "foo has 2 points"
    });

    alice.send("PRIVMSG #test :hello world");
    alice.send("PRIVMSG #test :s/world/there/");
    alice.expect_privmsg(BOT, "#test", "sed", |t| {
        t == "alice actually meant: hello there"
    });

    alice.send("PRIVMSG #test :\u{1}ACTION waves\u{1}");
    alice.send("PRIVMSG #test :s/waves/smiles/");
    alice.expect_privmsg(BOT, "#test", "sed on an action", |t| {
        t == "alice actually meant: smiles"
    });

    let status = bot.terminate(Duration::from_secs(30));
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    alice.expect(Duration::from_secs(10), "the bot's QUIT", |l| {
        l.starts_with(&format!(":{BOT}!")) && l.contains(" QUIT ")
    });
}

#[test]
fn hostile_text_never_becomes_a_second_command() {
    let Some(server) = Ngircd::start() else {
        return;
    };
    let sandbox = Sandbox::new();
    let bot = start_bot(&sandbox, server.port);
    let mut mallory = IrcClient::connect(server.port, "mallory");
    join_and_wait_for_bot(&mut mallory);

    // sed expands `\r\n` in a replacement into a real line break; the bot must not obey it.
    mallory.send("PRIVMSG #test :hello world");
    mallory.send("PRIVMSG #test :s/world/x\\r\\nPRIVMSG #test :injected\\r\\nQUIT :pwned/");
    mallory.send("PRIVMSG #test :!karma nobody");
    let line = mallory.expect(
        Duration::from_secs(20),
        "the bot's answer after the attempt",
        |l| l.contains("No karma for nobody"),
    );
    assert!(line.starts_with(&format!(":{BOT}!")));
    for seen in &mallory.seen {
        let from_bot = seen.starts_with(&format!(":{BOT}!"));
        let verb = seen.split(' ').nth(1).unwrap_or("");
        let text = seen.split_once(" :").map_or("", |(_, t)| t);
        assert!(
            !(from_bot && (verb == "QUIT" || text == "injected")),
            "the bot sent an injected command: {seen}"
        );
    }
    // Control characters and bidi overrides from a user do not disturb the bot.
    mallory.send("PRIVMSG #test :\u{7f}\u{3}4 caf\u{e9}++ \u{202e}x++ \u{1}");
    mallory.send("PRIVMSG #test :!karma caf\u{e9}");
    mallory.expect_privmsg(BOT, "#test", "karma after odd text", |t| {
        t.contains("1 point")
    });
    drop(bot);
}

#[test]
fn the_bot_reconnects_when_the_server_comes_back() {
    let Some(first) = Ngircd::start() else {
        return;
    };
    let port = first.port;
    let sandbox = Sandbox::new();
    let bot = start_bot(&sandbox, port);
    let mut alice = IrcClient::connect(port, "alice");
    join_and_wait_for_bot(&mut alice);
    drop(alice);
    drop(first);
    let second = Ngircd::start_on(port);
    let mut bob = IrcClient::connect(second.port, "bob");
    join_and_wait_for_bot(&mut bob);
    bob.send("PRIVMSG #test :!karma bob");
    bob.expect_privmsg(BOT, "#test", "an answer after reconnecting", |t| {
        t == "No karma for bob"
    });
    bot.expect_log("irc connection lost; reconnecting");
}
