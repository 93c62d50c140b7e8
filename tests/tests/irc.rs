//! The real thing: `hamper run` configured from the environment alone, on a real ngircd, with a
//! real IRC client talking to it.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hamper_tests::ircd::{run_bot, IrcClient, Ngircd, BOT};
use hamper_tests::{Sandbox, Session};

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
    let bot = Session::start(run_bot(&sandbox, server.port));
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
    let bot = Session::start(run_bot(&sandbox, server.port));
    let mut mallory = IrcClient::connect(server.port, "mallory");
    mallory.join_and_wait_for("#test", BOT);

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

/// The server is killed and started again three times on the same port. Each time the bot is
/// back in its channel soon after the server answers again, and answers there. The time each
/// return took is printed (`--no-capture` shows it); the assertion itself allows far more.
#[test]
fn the_bot_comes_back_after_each_of_three_server_restarts() {
    let Some(mut server) = Ngircd::start() else {
        return;
    };
    let sandbox = Sandbox::new();
    let bot = Session::start(run_bot(&sandbox, server.port));
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.join_and_wait_for("#test", BOT);
    drop(alice);
    for round in 1..=3 {
        server.restart();
        let answering = Instant::now();
        let mut bob = IrcClient::connect(server.port, &format!("bob{round}"));
        bob.join_and_wait_for("#test", BOT);
        let back = answering.elapsed();
        eprintln!(
            "restart {round}: the bot was in #test {:.2} s after the server answered again",
            back.as_secs_f64()
        );
        bob.send("PRIVMSG #test :foo++");
        bob.send("PRIVMSG #test :!karma foo");
        let points = if round == 1 {
            "1 point".to_string()
        } else {
            format!("{round} points")
        };
        bob.expect_privmsg(BOT, "#test", "karma after the restart", |t| {
            t == format!("foo has {points}")
        });
    }
    bot.expect_log("irc connection lost; reconnecting");
}
