//! Registration against a scripted server, line by line: capability negotiation, SASL PLAIN
//! and EXTERNAL (over TLS with a client certificate) finished before `CAP END`, a refused login
//! that stops the bot (or not, with `sasl_required: false`), a server without CAP, winning the
//! configured nick back (ISON and MONITOR), and the server's time and account reaching a plugin
//! and the owner check.
// Failing loudly is how these helpers report a broken flow.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hamper_tests::ircd::IrcClient;
use hamper_tests::scripted::{bot_and_peer, bot_command, misbehave_plugins, registered_bot};
use hamper_tests::tls::{cert_der, TestCa, TlsFront};
use hamper_tests::{Sandbox, Session};

const T: Duration = Duration::from_secs(20);

/// Waits for `CAP LS 302` and checks that it was the bot's very first line.
fn expect_cap_ls_first(peer: &mut IrcClient) {
    peer.expect(T, "CAP LS", |l| l == "CAP LS 302");
    assert_eq!(peer.seen.len(), 1, "CAP LS comes first: {:?}", peer.seen);
}

/// Answers PINGs until the bot's PONG for `token`: every line sent before it was handled.
fn barrier(peer: &mut IrcClient, token: &str) {
    peer.send(&format!("PING :{token}"));
    peer.expect(T, "the PONG", |l| l == format!("PONG {token}"));
}

/// The bot with a SASL PLAIN login (and the server password of [`bot_command`]), through the
/// `AUTHENTICATE` payload; returns the payload line.
fn plain_login_up_to_payload(env: &[(&str, &str)]) -> (Sandbox, Session, IrcClient, String) {
    let mut all = vec![
        ("nickname", "hb"),
        ("sasl_username", "hamperbot"),
        ("sasl_password", "sasl s3cret"),
    ];
    all.extend_from_slice(env);
    let (sb, bot, mut peer) = bot_and_peer(&all);
    expect_cap_ls_first(&mut peer);
    peer.expect(T, "USER", |l| l.starts_with("USER hb "));
    peer.send(":srv CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL");
    peer.send(":srv CAP * LS :server-time account-tag away-notify");
    peer.expect(T, "the request", |l| {
        l == "CAP REQ :server-time account-tag multi-prefix sasl"
    });
    peer.send(":srv CAP * ACK :server-time account-tag multi-prefix sasl");
    peer.expect(T, "the mechanism", |l| l == "AUTHENTICATE PLAIN");
    peer.send("AUTHENTICATE +");
    let payload = peer.expect(T, "the payload", |l| l.starts_with("AUTHENTICATE "));
    (sb, bot, peer, payload)
}

#[test]
fn sasl_plain_logs_in_before_cap_end_and_takes_nickservs_place() {
    let (_sb, bot, mut peer, payload) = plain_login_up_to_payload(&[]);
    let encoded = payload.strip_prefix("AUTHENTICATE ").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(decoded, b"\0hamperbot\0sasl s3cret");
    assert!(
        !peer.seen.iter().any(|l| l == "CAP END"),
        "no CAP END before the login ends: {:?}",
        peer.seen
    );
    peer.send(":srv 900 hb hb!u@h hamperbot :You are now logged in as hamperbot");
    peer.send(":srv 903 hb :SASL authentication successful");
    peer.expect(T, "CAP END", |l| l == "CAP END");
    peer.send(":srv 001 hb :Welcome");
    peer.expect(T, "the join, at once", |l| l == "JOIN #keyed sesame-key");
    assert!(
        !peer.seen.iter().any(|l| l.contains("IDENTIFY")),
        "logged in by SASL, so no NickServ IDENTIFY: {:?}",
        peer.seen
    );
    bot.expect_log("SASL login succeeded");
    let (status, log) = bot.terminate_with_log(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    for secret in ["sasl s3cret", encoded] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
    }
}

#[test]
fn a_refused_sasl_login_stops_the_bot_with_the_reason() {
    let (_sb, bot, mut peer, _) = plain_login_up_to_payload(&[]);
    peer.send(":srv 904 hb :SASL authentication failed");
    peer.expect(T, "the bot's QUIT", |l| l.starts_with("QUIT"));
    let (status, log) = bot.wait_with_log(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "a failure exit: {status:?}\n{log}");
    assert!(
        log.contains("904") && log.contains("SASL authentication failed"),
        "the server's reason is logged:\n{log}"
    );
    // What docs/config.md shows, for this server.
    let doc = std::fs::read_to_string(hamper_tests::workspace_root().join("docs/config.md"))
        .expect("read config.md");
    let shown = doc
        .lines()
        .find(|l| l.starts_with("hamper: cannot log in to "))
        .expect("config.md shows a refused login")
        .replace("irc.libera.chat", "127.0.0.1");
    assert!(
        log.lines().any(|l| l == shown),
        "the log ends as config.md shows ({shown}):\n{log}"
    );
    assert!(!peer.seen.iter().any(|l| l == "CAP END"), "{:?}", peer.seen);
}

#[test]
fn with_sasl_not_required_a_refused_login_is_logged_and_nickserv_used() {
    let (_sb, bot, mut peer, _) = plain_login_up_to_payload(&[("sasl_required", "false")]);
    peer.send(":srv 904 hb :SASL authentication failed");
    peer.expect(T, "CAP END", |l| l == "CAP END");
    peer.send(":srv 001 hb :Welcome");
    peer.expect(T, "NickServ, as without SASL", |l| {
        l == "PRIVMSG NickServ :IDENTIFY s3cr3t-pass"
    });
    bot.expect_log("carrying on without it");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_server_without_cap_registers_the_bot_as_before() {
    let (_sb, bot, mut peer) = bot_and_peer(&[("nickname", "hb")]);
    expect_cap_ls_first(&mut peer);
    peer.expect(T, "PASS", |l| l == "PASS s3cr3t-pass");
    peer.expect(T, "USER", |l| l.starts_with("USER hb "));
    peer.send(":srv 421 * CAP :Unknown command");
    peer.send(":srv 001 hb :Welcome");
    peer.expect(T, "identify", |l| {
        l == "PRIVMSG NickServ :IDENTIFY s3cr3t-pass"
    });
    peer.send(":NickServ!s@services NOTICE hb :Password accepted");
    peer.expect(T, "the join", |l| l == "JOIN #keyed sesame-key");
    assert_eq!(
        peer.seen.iter().filter(|l| l.starts_with("CAP ")).count(),
        1,
        "nothing but the CAP LS: {:?}",
        peer.seen
    );
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

/// Registers the bot as `hb_` (`hb` being taken), the server's `005` saying `isupport`, then
/// sends `next`: the first line after the welcome burst, when the bot starts watching.
fn register_as_fallback(peer: &mut IrcClient, isupport: &str, next: &str) {
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send(":srv 433 * hb :Nickname is already in use");
    peer.expect(T, "the fallback", |l| l == "NICK hb_");
    peer.send(":srv 001 hb_ :Welcome");
    peer.send(&format!(
        ":srv 005 hb_ {isupport} :are supported by this server"
    ));
    peer.send(next);
}

/// Sends `reply`, which says the nick is still in use, and checks that the bot leaves it.
fn still_taken(peer: &mut IrcClient, reply: &str) {
    peer.send(reply);
    barrier(peer, "taken");
    assert_eq!(
        peer.seen.iter().filter(|l| *l == "NICK hb").count(),
        1,
        "no NICK but the first while the nick is in use: {:?}",
        peer.seen
    );
}

/// Sends `reply`, which says the nick is free, and answers the bot's `NICK` as a server does.
fn comes_free(peer: &mut IrcClient, reply: &str) {
    peer.send(reply);
    peer.expect(T, "the NICK", |l| l == "NICK hb");
    peer.send(":hb_!u@h NICK :hb");
}

#[test]
fn a_taken_nick_is_won_back_when_ison_says_it_is_free_and_plugins_learn_it() {
    let plugins = misbehave_plugins("behave", "");
    let (_sb, bot, mut peer) = bot_and_peer(&[
        ("nickname", "hb"),
        ("plugins", plugins.as_str()),
        ("RUST_LOG", "info"),
    ]);
    register_as_fallback(
        &mut peer,
        "CASEMAPPING=rfc1459",
        ":NickServ!s@services NOTICE hb_ :You are now identified for hb_.",
    );
    // ISON at once; the nick is still taken.
    peer.expect(T, "ISON", |l| l == "ISON hb");
    still_taken(&mut peer, ":srv 303 hb_ :hb");
    // The next poll (a minute later; the unit tests time that) finds it free.
    comes_free(&mut peer, ":srv 303 hb_ :");
    peer.expect(T, "identifying again", |l| {
        l == "PRIVMSG NickServ :IDENTIFY s3cr3t-pass"
    });
    bot.expect_log("won the configured nick back");
    // The router learnt the nick: `hb: …` is addressed to the bot.
    peer.send(":eve!e@h PRIVMSG #keyed :hb: bad ping");
    peer.expect(T, "the plugin's answer", |l| {
        l == "PRIVMSG #keyed :bad alive"
    });
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_taken_nick_is_won_back_when_monitor_says_it_went_offline() {
    let (_sb, bot, mut peer) = bot_and_peer(&[("nickname", "hb"), ("password", "")]);
    register_as_fallback(
        &mut peer,
        "MONITOR=100 CASEMAPPING=ascii",
        ":srv 422 hb_ :MOTD File is missing",
    );
    peer.expect(T, "MONITOR", |l| l == "MONITOR + hb");
    still_taken(&mut peer, ":srv 730 hb_ :hb!u@elsewhere");
    comes_free(&mut peer, ":srv 731 hb_ :hb");
    peer.expect(T, "the watch ends", |l| l == "MONITOR - hb");
    assert!(
        !peer.seen.iter().any(|l| l.starts_with("ISON")),
        "no polling with MONITOR: {:?}",
        peer.seen
    );
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn server_time_and_account_tags_reach_a_plugin() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[]);
    peer.send("@time=2024-01-02T03:04:05.678Z;account=alice :al!u@h PRIVMSG #keyed :!bad whoami");
    peer.expect(T, "the tagged message's facts", |l| {
        l == "PRIVMSG #keyed :account=alice time=1704164645678"
    });
    // Without tags: no account, and the time the bot received it.
    peer.send(":al!u@h PRIVMSG #keyed :!bad whoami");
    let line = peer.expect(T, "the untagged message's facts", |l| {
        l.starts_with("PRIVMSG #keyed :account=none time=")
    });
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let time: u128 = line.rsplit('=').next().unwrap().parse().unwrap();
    assert!((before..=after).contains(&time), "{line}");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn an_owner_known_by_account_is_followed_whatever_the_nick() {
    let (_sb, bot, mut peer) = registered_bot("behave", "", &[("owners", "[\"$a:boss\"]")]);
    peer.send("@account=other :boss!b@h INVITE hb #spoofed");
    peer.send("@account=boss :someone!s@elsewhere INVITE hb #invited");
    peer.expect(T, "the join after the owner's invite", |l| {
        l == "JOIN #invited"
    });
    assert!(
        !peer.seen.iter().any(|l| l.contains("#spoofed")),
        "{:?}",
        peer.seen
    );
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn sasl_external_presents_the_client_certificate_over_tls() {
    let ca = TestCa::new("hamper test CA (SASL EXTERNAL)");
    let dir = tempfile::tempdir().unwrap();
    let server = ca.server_cert(dir.path());
    let client = ca.client_cert(dir.path(), "hamperbot");
    let front = TlsFront::start(&ca, &server);
    let sb = Sandbox::new();
    let (cert, key, ca_pem) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
        ca.ca_pem().display().to_string(),
    );
    let bot = Session::start(bot_command(
        &sb,
        front.port,
        &[
            ("nickname", "hb"),
            ("password", ""),
            ("ssl", "true"),
            ("ssl_ca", ca_pem.as_str()),
            ("ssl_cert", cert.as_str()),
            ("ssl_key", key.as_str()),
            ("sasl_mechanism", "EXTERNAL"),
        ],
    ));
    let (stream, presented) = front.accept(T);
    assert_eq!(
        presented,
        cert_der(&client.cert),
        "the bot presents ssl_cert"
    );
    let mut peer = IrcClient::from_stream(stream);
    expect_cap_ls_first(&mut peer);
    peer.send(":srv CAP * LS :sasl=EXTERNAL");
    peer.expect(T, "the request", |l| l == "CAP REQ sasl");
    peer.send(":srv CAP * ACK :sasl");
    peer.expect(T, "the mechanism", |l| l == "AUTHENTICATE EXTERNAL");
    peer.send("AUTHENTICATE +");
    peer.expect(T, "the empty response", |l| l == "AUTHENTICATE +");
    peer.send(":srv 903 hb :SASL authentication successful");
    peer.expect(T, "CAP END", |l| l == "CAP END");
    peer.send(":srv 001 hb :Welcome");
    peer.expect(T, "the join", |l| l == "JOIN #keyed sesame-key");
    assert!(bot.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_client_key_that_is_not_the_certificates_is_refused_before_connecting() {
    let ca = TestCa::new("hamper test CA (mismatched key)");
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = ca.client_cert(dir.path(), "one");
    let other = ca.client_cert(other_dir.path(), "other");
    let sb = Sandbox::new();
    let out = sb
        .hamper()
        .arg("check-config")
        .env("server", "irc.example.org")
        .env("ssl", "true")
        .env("ssl_cert", &one.cert)
        .env("ssl_key", &other.key)
        .env("sasl_mechanism", "EXTERNAL")
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ssl_key:") && stderr.contains("cannot sign for the certificate"),
        "{stderr}"
    );
}
