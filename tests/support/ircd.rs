//! A real IRC server (ngircd) for the tests, and a plain blocking IRC client to talk to the bot.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running ngircd on a free loopback port, stopped on drop.
pub struct Ngircd {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// Where ngircd is installed, if it is.
pub fn ngircd_path() -> Option<PathBuf> {
    [
        "/usr/sbin/ngircd",
        "/usr/bin/ngircd",
        "/usr/local/sbin/ngircd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

impl Ngircd {
    /// Starts ngircd, or returns `None` (after [`crate::skip_or_fail`]) when it is not installed.
    pub fn start() -> Option<Ngircd> {
        if ngircd_path().is_none() {
            crate::skip_or_fail("ngircd is not installed (apt-get install ngircd; .ci/run does)");
            return None;
        }
        Some(Ngircd::start_on(crate::free_port()))
    }

    /// Starts ngircd on `port` (it must be installed).
    pub fn start_on(port: u16) -> Ngircd {
        let path = ngircd_path().expect("ngircd is installed");
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("ngircd.conf");
        std::fs::write(
            &conf,
            format!(
                "[Global]\nName = irc.hamper.test\nInfo = hamper test server\nListen = 127.0.0.1\nPorts = {port}\nMotdPhrase = \"hamper test\"\n\
                 [Limits]\nMaxNickLength = 30\nMaxConnectionsIP = 0\nPingTimeout = 120\nPongTimeout = 20\n\
                 [Options]\nPAM = no\nDNS = no\nIdent = no\nRequireAuthPing = no\n"
            ),
        )
        .expect("write ngircd.conf");
        let child = Command::new(path)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ngircd");
        let server = Ngircd {
            child,
            port,
            _dir: dir,
        };
        crate::wait_for(Duration::from_secs(10), "ngircd to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        server
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Accepts the bot's next connection, or panics after `timeout` saying what was awaited.
pub fn accept_within(listener: &std::net::TcpListener, timeout: Duration, what: &str) -> TcpStream {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking stream");
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection within {timeout:?}: {what}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept failed while waiting for {what}: {e}"),
        }
    }
}

/// A line-based IRC client for tests.
pub struct IrcClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Every line received so far, for failure messages.
    pub seen: Vec<String>,
    /// Whether `expect` answers a PING it reads (true unless a test plays a silent server).
    pub answer_pings: bool,
}

impl IrcClient {
    /// Wraps a connected stream (either end: a test can play the server too).
    pub fn from_stream(stream: TcpStream) -> IrcClient {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        IrcClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            seen: Vec::new(),
            answer_pings: true,
        }
    }

    /// Connects and registers as `nick`, waiting for the welcome.
    pub fn connect(port: u16, nick: &str) -> IrcClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to ngircd");
        let mut client = IrcClient::from_stream(stream);
        client.send(&format!("NICK {nick}"));
        client.send(&format!("USER {nick} 0 * :test client"));
        client.expect(Duration::from_secs(10), "the welcome (001)", |l| {
            l.split(' ').nth(1) == Some("001")
        });
        client
    }

    /// Another handle on the socket, for writing from a thread of its own.
    pub fn writer_handle(&self) -> TcpStream {
        self.writer.try_clone().expect("clone the socket")
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(line.as_bytes());
    }

    /// Sends one line of raw bytes (which need not be UTF-8).
    pub fn send_bytes(&mut self, line: &[u8]) {
        self.writer.write_all(line).expect("send");
        self.writer.write_all(b"\r\n").expect("send");
    }

    /// Reads lines until one satisfies `pred` (answering PINGs), or panics after `timeout`.
    pub fn expect(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; saw:\n{}",
                self.seen.join("\n")
            );
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!(
                    "the other end closed the connection while waiting for {what}; saw:\n{}",
                    self.seen.join("\n")
                ),
                Ok(_) => {
                    let line = line.trim_end_matches(['\r', '\n']).to_string();
                    if let Some(token) = line.strip_prefix("PING ").filter(|_| self.answer_pings) {
                        self.send(&format!("PONG {token}"));
                    }
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
                Err(e) => panic!("read failed while waiting for {what}: {e}"),
            }
        }
    }

    /// Waits for a PRIVMSG from `from` to `to` whose text satisfies `pred`; returns the text.
    pub fn expect_privmsg(
        &mut self,
        from: &str,
        to: &str,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let prefix = format!(":{from}!");
        let line = self.expect(Duration::from_secs(20), what, |l| {
            l.starts_with(&prefix)
                && l.split(' ').nth(1) == Some("PRIVMSG")
                && l.split(' ')
                    .nth(2)
                    .is_some_and(|t| t.eq_ignore_ascii_case(to))
                && l.split_once(" :").is_some_and(|(_, text)| pred(text))
        });
        line.split_once(" :")
            .map(|(_, t)| t.to_string())
            .unwrap_or_default()
    }
}
