//! Support for hamper's end-to-end tests: finding the real binaries, running `hamper console`
//! with a script, starting servers, and waiting on observable events instead of sleeping.
// Test support fails loudly by design: a panic here is a test failure with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod ircd;
pub mod markdown;
pub mod pg;
pub mod procs;
pub mod scripted;
pub mod tls;

/// The folder holding the workspace's binaries (`target/debug` or `target/release`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of a workspace binary, failing with the fix when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first with `cargo build --workspace` (the README's test command does)",
        path.display()
    );
    path
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `../shared` beside the project root, where the conformance vectors live.
pub fn shared_dir() -> PathBuf {
    workspace_root()
        .parent()
        .expect("parent of the workspace")
        .join("shared")
}

/// Whether this run is CI, where a missing server is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports a missing prerequisite: a failure in CI, a visible skip elsewhere. Returns normally
/// only when the test should be skipped.
pub fn skip_or_fail(what: &str) {
    if in_ci() {
        panic!("{what} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIP: {what}");
    // Test runners capture a passing test's output; the terminal, when there is one, shows
    // the skip anyway.
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        use std::io::Write;
        let _ = writeln!(tty, "SKIP: {what}");
    }
}

/// A fresh working directory with a `hamper` command builder that runs in it.
pub struct Sandbox {
    /// The temporary folder, removed on drop.
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A new empty folder.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `hamper.conf` in the folder.
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.path().join("hamper.conf"), yaml).expect("write config");
    }

    /// A `hamper` command in the folder, with a clean environment (no config variables leak in
    /// from the developer's shell) and plugins found next to `hamper`.
    pub fn hamper(&self) -> Command {
        let mut cmd = Command::new(bin("hamper"));
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("HOME", self.path());
        cmd
    }

    /// Runs `hamper console` (plus `args`) with `script` on stdin; returns the output.
    pub fn console(&self, args: &[&str], script: &str) -> Output {
        let mut cmd = self.hamper();
        cmd.arg("console").args(args);
        run_with_input(cmd, script)
    }
}

/// Runs `cmd` with `input` on stdin and waits (at most two minutes) for it to exit.
pub fn run_with_input(mut cmd: Command, input: impl AsRef<[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.as_ref().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("command did not exit within 120s");
        }
    };
    let _ = writer.join();
    out
}

/// The lines of a process's stdout.
pub fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Asserts the process exited 0, showing its stderr when not.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `hamper console` (or `hamper plugin`) kept running, driven line by line.
pub struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// Every stdout line so far.
    pub seen: Vec<String>,
}

impl Session {
    /// Starts `cmd` with piped stdio.
    pub fn start(mut cmd: Command) -> Session {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hamper");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let errs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let errs2 = errs.clone();
        let stderr_reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                errs2.lock().expect("lock").push(line);
            }
        });
        Session {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr: errs,
            stderr_reader: Some(stderr_reader),
            seen: Vec::new(),
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to console");
        stdin.flush().expect("flush");
    }

    /// Waits for an output line satisfying `pred`.
    pub fn expect(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}\nstdout so far:\n{}\nstderr:\n{}",
                    self.seen.join("\n"),
                    self.stderr_text()
                ),
            }
        }
    }

    /// Sends `line` and waits for an output line containing `needle`.
    pub fn ask(&mut self, line: &str, needle: &str) -> String {
        self.send(line);
        self.expect(Duration::from_secs(20), needle, |l| l.contains(needle))
    }

    /// Sends `line` again and again (every 200 ms) until an answer contains `needle`.
    pub fn ask_until(&mut self, line: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.send(line);
            let until = Instant::now() + Duration::from_millis(300);
            while let Ok(l) = self
                .lines
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                self.seen.push(l.clone());
                if l.contains(needle) {
                    // Answers to the earlier tries may still be on their way; a later `ask`
                    // must not take one of them for its own.
                    self.settle();
                    return l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no answer containing {needle:?} to {line:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.seen.join("\n"),
                self.stderr_text()
            );
        }
    }

    /// Waits until every line sent so far has been answered, reading the answers into `seen`:
    /// the console prints an `/echo` marker only after the lines before it are answered.
    pub fn settle(&mut self) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("-- settled {n} --");
        self.send(&format!("/echo {marker}"));
        self.expect(Duration::from_secs(30), "the /echo marker", |l| l == marker);
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    /// Waits until the log (stderr) holds `needle` and returns it all. The log is a pipe of its
    /// own, read by a thread of its own: a line logged before an answer on stdout may still be
    /// on its way when the answer is read, so a test waits for it instead of asserting at once.
    pub fn expect_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.stderr_text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the log never said {needle:?}; it says:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes stdin and waits for exit (at most `timeout`).
    pub fn finish(mut self, timeout: Duration) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "hamper did not exit within {timeout:?} after end of input\nstderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the supervisor with SIGKILL and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The pid in a `!plugins` line such as `bad: running, pid 123 (0 restarts)`.
pub fn pid_in(line: &str) -> u32 {
    let after = line
        .split("pid ")
        .nth(1)
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    after
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {line:?}"))
}

impl Session {
    /// Sends `signal` (`TERM`, `INT`, …) to the supervisor and to `others`, in one `kill`, and
    /// does not wait. One of `others` that is already gone is no failure (kill signals the rest).
    pub fn signal(&self, signal: &str, others: &[u32]) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .args(others.iter().map(u32::to_string))
            .status()
            .expect("run kill");
        assert!(
            status.success() || !others.is_empty(),
            "kill -{signal} of the bot failed"
        );
    }

    /// Waits (at most `timeout`) for the exit status, and returns it with the whole log.
    pub fn wait_with_log(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let reader = self.stderr_reader.take();
                return (status, self.read_log_to_end(reader));
            }
            assert!(
                Instant::now() < deadline,
                "hamper did not exit within {timeout:?}\nstderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read_log_to_end(&self, reader: Option<std::thread::JoinHandle<()>>) -> String {
        if let Some(reader) = reader {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !reader.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "something still holds the bot's stderr open after it exited"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.stderr_text()
    }

    /// Sends SIGTERM, waits (at most `timeout`) for the exit status, and returns it with the
    /// whole log, read to its end.
    pub fn terminate_with_log(self, timeout: Duration) -> (std::process::ExitStatus, String) {
        self.signal("TERM", &[]);
        self.wait_with_log(timeout)
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hamper did not exit within {timeout:?} after SIGTERM\nstderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Gives `name` 25 karma in a console on `db` (the default SQLite file when `None`), waiting
/// for the bot to acknowledge each point, then kills the bot with SIGKILL. Returns what a fresh
/// console then says about `name`: every acknowledged point must be there.
pub fn acknowledged_karma_after_kill9(sb: &Sandbox, db: Option<&str>, name: &str) -> Vec<String> {
    let with_db = |cmd: &mut Command| {
        cmd.arg("console");
        if let Some(db) = db {
            cmd.env("DATABASE_URL", db);
        }
    };
    let mut cmd = sb.hamper();
    with_db(&mut cmd);
    let mut s = Session::start(cmd);
    for i in 1..=25 {
        s.send(&format!("{name}++"));
        let points = if i == 1 {
            "1 point".to_string()
        } else {
            format!("{i} points")
        };
        s.ask(&format!("!karma {name}"), &format!("{name} has {points}"));
    }
    s.kill9();
    let mut cmd = sb.hamper();
    with_db(&mut cmd);
    let out = run_with_input(cmd, format!("!karma {name}\n"));
    assert_success(&out);
    stdout_lines(&out)
}
