//! TLS against a real ngircd whose certificate the test's own CA signed: the bot trusts that CA
//! when `ssl_ca` names it or the system store holds it, and refuses the server when nothing it
//! trusts signed it. A bad `ssl_ca` stops `hamper run` before it connects.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use hamper_tests::ircd::{run_bot, IrcClient, Ngircd, BOT};
use hamper_tests::tls::TestCa;
use hamper_tests::{Sandbox, Session};

/// `hamper run` over TLS to `server`'s TLS port.
fn run_bot_tls(sandbox: &Sandbox, server: &Ngircd) -> Command {
    let mut cmd = run_bot(sandbox, server.tls_port.expect("a TLS port"));
    cmd.env("ssl", "true");
    cmd
}

/// The bot joins over TLS and answers; a user on the plain port sees it.
fn assert_joins_and_answers(server: &Ngircd, bot: &Session) {
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.join_and_wait_for("#test", BOT);
    alice.send("PRIVMSG #test :!karma tls");
    alice.expect_privmsg(BOT, "#test", "an answer over TLS", |t| {
        t == "No karma for tls"
    });
    bot.expect_log("tls=true");
}

/// The bot is not on the server at all: WHOIS finds no such nick.
fn assert_not_on_server(server: &Ngircd) {
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.send(&format!("WHOIS {BOT}"));
    let reply = alice.expect(Duration::from_secs(10), "the WHOIS reply", |l| {
        matches!(l.split(' ').nth(1), Some("401" | "311"))
    });
    assert_eq!(
        reply.split(' ').nth(1),
        Some("401"),
        "the bot is on the server: {reply}\n{}",
        server.log()
    );
}

#[test]
fn a_ca_in_the_system_store_is_trusted() {
    let ca = TestCa::new("hamper test CA (system store)");
    let Some(server) = Ngircd::start_tls(&ca) else {
        return;
    };
    let sandbox = Sandbox::new();
    let mut cmd = run_bot_tls(&sandbox, &server);
    // The system store's own override, as rustls-native-certs reads it (like OpenSSL).
    cmd.env("SSL_CERT_FILE", ca.ca_pem());
    let bot = Session::start(cmd);
    assert_joins_and_answers(&server, &bot);
}

#[test]
fn the_ca_named_by_ssl_ca_is_trusted() {
    let ca = TestCa::new("hamper test CA (ssl_ca)");
    let Some(server) = Ngircd::start_tls(&ca) else {
        return;
    };
    let sandbox = Sandbox::new();
    let mut cmd = run_bot_tls(&sandbox, &server);
    cmd.env("ssl_ca", ca.ca_pem());
    let bot = Session::start(cmd);
    assert_joins_and_answers(&server, &bot);
}

#[test]
fn a_server_signed_by_another_ca_than_ssl_ca_is_refused() {
    let ca = TestCa::new("hamper test CA (the server's)");
    let other = TestCa::new("hamper test CA (another)");
    let Some(server) = Ngircd::start_tls(&ca) else {
        return;
    };
    let sandbox = Sandbox::new();
    let mut cmd = run_bot_tls(&sandbox, &server);
    cmd.env("ssl_ca", other.ca_pem());
    let bot = Session::start(cmd);
    // The reason and the fix as docs/config.md shows them.
    bot.expect_log("TLS certificate verification failed: invalid peer certificate: UnknownIssuer; fix: if the server uses its own CA, set ssl_ca to that CA's PEM file (or install it in the system store)");
    assert_not_on_server(&server);
}

#[test]
fn without_ssl_ca_a_server_with_its_own_ca_is_refused() {
    let ca = TestCa::new("hamper test CA (unknown to the bot)");
    let Some(server) = Ngircd::start_tls(&ca) else {
        return;
    };
    let sandbox = Sandbox::new();
    let bot = Session::start(run_bot_tls(&sandbox, &server));
    bot.expect_log("TLS certificate verification failed");
    assert_not_on_server(&server);
}

#[test]
fn a_bad_ssl_ca_stops_hamper_run_before_it_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path().join("ca.der"), b"\x30\x82 not PEM").expect("write");
    for (path, problem) in [
        ("missing.pem", "ssl_ca: cannot read missing.pem"),
        ("ca.der", "ssl_ca: ca.der holds no PEM certificate"),
    ] {
        let mut cmd = run_bot(&sandbox, port);
        cmd.env("ssl", "true").env("ssl_ca", path);
        let out = cmd.output().expect("run hamper");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(problem) && stderr.contains("; fix: "),
            "{stderr}"
        );
        listener.set_nonblocking(true).expect("nonblocking");
        assert!(
            listener.accept().is_err(),
            "hamper connected despite a bad ssl_ca"
        );
    }
}
