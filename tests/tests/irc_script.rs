//! Exact protocol flows against a scripted fake server: registration with a taken nick, the
//! NickServ handshake before joining, keyed channels, PING, hostile lines, QUIT, and that the
//! password and channel key never reach the log even at trace level.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hamper_tests::{Sandbox, Session};

struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    seen: Vec<String>,
}

impl Peer {
    fn send(&mut self, line: &[u8]) {
        self.writer.write_all(line).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
    }

    fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the bot sent:\n{}",
                self.seen.join("\n")
            );
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!(
                    "the bot hung up while we waited for {what}; it sent:\n{}",
                    self.seen.join("\n")
                ),
                Ok(_) => {
                    let line = line.trim_end_matches(['\r', '\n']).to_string();
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

#[test]
fn registration_nickserv_keyed_join_ping_hostile_lines_and_quit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    let mut cmd = sb.hamper();
    cmd.arg("run")
        .env("RUST_LOG", "trace")
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("nickname", "hb")
        .env("password", "s3cr3t-pass")
        .env("channels", "[\"#keyed sesame-key\"]")
        .env("plugins", "[karma]");
    let bot = Session::start(cmd);
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut peer = Peer {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        seen: Vec::new(),
    };

    peer.expect("PASS", |l| l == "PASS s3cr3t-pass");
    peer.expect("NICK", |l| l == "NICK hb");
    peer.expect("USER", |l| l.starts_with("USER hb "));
    peer.send(b":srv 433 * hb :Nickname is already in use");
    peer.expect("another nick", |l| l == "NICK hb_");
    peer.send(b":srv 001 hb_ :Welcome to the test network hb_");
    peer.expect("identify", |l| {
        l == "PRIVMSG NickServ :IDENTIFY s3cr3t-pass"
    });
    assert!(
        !peer.seen.iter().any(|l| l.starts_with("JOIN")),
        "no JOIN before NickServ answers"
    );
    peer.send(b":NickServ!s@services NOTICE hb_ :You are now identified for hb.");
    peer.expect("the keyed join", |l| l == "JOIN #keyed sesame-key");
    peer.send(b":hb_!b@h JOIN #keyed");

    peer.send(b"PING :token123");
    peer.expect("PONG", |l| l == "PONG token123");

    // Not UTF-8, an over-long line, a line with no verb, then a real command.
    peer.send(b":eve!e@h PRIVMSG #keyed :\xff\xfe\xfd++");
    let long = format!(":eve!e@h PRIVMSG #keyed :{}", "y".repeat(20_000));
    peer.send(long.as_bytes());
    peer.send(b":eve!e@h");
    peer.send(b"@a=b;c :eve!e@h PRIVMSG #keyed :!karma nobody");
    peer.expect("an answer after hostile lines", |l| {
        l == "PRIVMSG #keyed :No karma for nobody"
    });

    // CTCP ACTION reaches plugins as an action; CTCP VERSION is answered by the bot itself.
    peer.send(b":eve!e@h PRIVMSG hb_ :\x01VERSION\x01");
    peer.expect("a CTCP VERSION reply", |l| {
        l.starts_with("NOTICE eve :\u{1}VERSION hamper")
    });

    let status = bot.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    peer.expect("QUIT", |l| l.starts_with("QUIT"));
}

#[test]
fn secrets_never_reach_the_log() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    let mut cmd = sb.hamper();
    cmd.arg("run")
        .env("RUST_LOG", "trace")
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("password", "s3cr3t-pass")
        .env("channels", "[\"#keyed sesame-key\"]")
        .env("DATABASE_URL", "sqlite:hamper.db")
        .env("plugins", "[karma]");
    let bot = Session::start(cmd);
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut peer = Peer {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        seen: Vec::new(),
    };
    peer.expect("USER", |l| l.starts_with("USER "));
    peer.send(b":srv 001 hamper :Welcome");
    peer.send(b":NickServ!s@services NOTICE hamper :Password accepted");
    peer.expect("the join", |l| l.starts_with("JOIN #keyed"));
    let log = bot.stderr_text();
    let status = bot.terminate(Duration::from_secs(30));
    assert!(status.success());
    assert!(
        log.contains("registered"),
        "the trace-level log was captured:\n{log}"
    );
    for secret in ["s3cr3t-pass", "sesame-key"] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
    }
}
