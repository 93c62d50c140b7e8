//! A real IRC server (ngircd) for the tests, and a plain blocking IRC client to talk to the bot.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TestCa;
use crate::Sandbox;

/// A running ngircd on a free loopback port (and a TLS port when asked), stopped on drop.
pub struct Ngircd {
    child: Child,
    /// Its plain-text port.
    pub port: u16,
    /// Its TLS port, when it has one.
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
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
        if !Ngircd::installed() {
            return None;
        }
        Some(Ngircd::launch(crate::free_port(), None))
    }

    /// Starts ngircd with a TLS port too, its certificate signed by `ca`; `None` (after
    /// [`crate::skip_or_fail`]) when ngircd is not installed or was built without TLS.
    pub fn start_tls(ca: &TestCa) -> Option<Ngircd> {
        if !Ngircd::installed() {
            return None;
        }
        let version = Command::new(ngircd_path()?)
            .arg("--version")
            .output()
            .expect("run ngircd --version");
        let version = String::from_utf8_lossy(&version.stdout);
        if !version.contains("+SSL") && !version.contains("+GNUTLS") {
            crate::skip_or_fail(&format!(
                "this ngircd was built without TLS ({}); install a build with +SSL",
                version.lines().next().unwrap_or("")
            ));
            return None;
        }
        Some(Ngircd::launch(
            crate::free_port(),
            Some((crate::free_port(), ca)),
        ))
    }

    fn installed() -> bool {
        if ngircd_path().is_none() {
            crate::skip_or_fail("ngircd is not installed (apt-get install ngircd; .ci/run does)");
            return false;
        }
        true
    }

    fn launch(port: u16, tls: Option<(u16, &TestCa)>) -> Ngircd {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conf = format!(
            "[Global]\nName = irc.hamper.test\nInfo = hamper test server\nListen = 127.0.0.1\nPorts = {port}\nMotdPhrase = \"hamper test\"\n\
             [Limits]\nMaxNickLength = 30\nMaxConnectionsIP = 0\nPingTimeout = 120\nPongTimeout = 20\n\
             [Options]\nPAM = no\nDNS = no\nIdent = no\nRequireAuthPing = no\n"
        );
        if let Some((tls_port, ca)) = tls {
            let cert = ca.server_cert(dir.path());
            conf.push_str(&format!(
                "[SSL]\nCertFile = {}\nKeyFile = {}\nPorts = {tls_port}\n",
                cert.cert.display(),
                cert.key.display()
            ));
        }
        std::fs::write(dir.path().join("ngircd.conf"), conf).expect("write ngircd.conf");
        let child = Ngircd::spawn(dir.path());
        let server = Ngircd {
            child,
            port,
            tls_port: tls.map(|(p, _)| p),
            dir,
        };
        server.wait_until_listening();
        server
    }

    fn spawn(dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("ngircd.log"))
            .expect("open ngircd.log");
        Command::new(ngircd_path().expect("ngircd is installed"))
            .arg("-n")
            .arg("-f")
            .arg(dir.join("ngircd.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("start ngircd")
    }

    fn wait_until_listening(&self) {
        for port in std::iter::once(self.port).chain(self.tls_port) {
            crate::wait_for(Duration::from_secs(20), "ngircd to listen", || {
                TcpStream::connect(("127.0.0.1", port)).ok()
            });
        }
    }

    /// Kills ngircd (SIGKILL, as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again, killed first if it still runs, from the same config on the same ports;
    /// returns once it accepts connections again.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Ngircd::spawn(self.dir.path());
        self.wait_until_listening();
    }

    /// What ngircd logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `hamper run` in `sandbox`, configured from the environment alone for the server at
/// 127.0.0.1:`port`: nick [`BOT`], channel `#test`, the built-in plugins.
pub fn run_bot(sandbox: &Sandbox, port: u16) -> Command {
    let mut cmd = sandbox.hamper();
    cmd.arg("run")
        .env("nickname", BOT)
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("channels", "[\"#test\"]")
        .env("plugins", "[karma,help,sed]");
    cmd
}

/// The bot's nick in [`run_bot`].
pub const BOT: &str = "hamperbot";

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

    /// Joins `channel` and waits until `nick` is in it: listed in the NAMES reply to the join
    /// (there already) or seen joining later. Returns how long that took.
    pub fn join_and_wait_for(&mut self, channel: &str, nick: &str) -> Duration {
        let started = Instant::now();
        self.send(&format!("JOIN {channel}"));
        let what = format!("{nick} to be in {channel}");
        self.expect(Duration::from_secs(20), &what, |l| {
            let joins = l.starts_with(&format!(":{nick}!")) && l.contains(" JOIN ");
            let listed = l.split(' ').nth(1) == Some("353")
                && l.split_once(" :").is_some_and(|(_, names)| {
                    names
                        .split(' ')
                        .any(|n| n.trim_start_matches(['@', '+']) == nick)
                });
            joins || listed
        });
        started.elapsed()
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
