//! Starting the measured processes and making sure none outlives the benchmark.
//!
//! A [`Launched`] process has its stdout and stderr in a log file (so a chatty bot never blocks
//! on a pipe), is killed if it is dropped, and remembers the descendants it was seen with, so
//! that [`Launched::stop`] and `Drop` can kill exactly those pids if the bot leaves any behind.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::procs;

/// A child process of the benchmark.
pub struct Launched {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// Just before it was spawned.
    pub started: Instant,
    /// Pids with their start times, so that a pid the system has since reused is left alone.
    known: Vec<(u32, u64)>,
}

impl Launched {
    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Launched> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("failed to open the log file {}", log.display()))?;
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to start `{program}`"))?;
        let pid = child
            .id()
            .context("the child exited before its pid could be read")?;
        Ok(Launched {
            child,
            pid,
            log: log.to_path_buf(),
            started,
            known: Vec::new(),
        })
    }

    /// Records the process's current descendants, so that cleanup can find them later even if
    /// they are re-parented.
    pub fn remember_tree(&mut self) {
        for pid in procs::tree(self.pid) {
            let Some(stat) = procs::stat(pid) else {
                continue;
            };
            if pid != self.pid && !self.known.iter().any(|&(p, _)| p == pid) {
                self.known.push((pid, stat.start_ticks));
            }
        }
    }

    /// Whether the process has exited (and is reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the process: SIGTERM, up to `grace` for it to exit, then SIGKILL; always reaps
    /// it, then kills any remembered descendant still alive. Returns the exit status, or
    /// `None` when it had to be killed.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.remember_tree();
        let mut status = None;
        if let Ok(Some(s)) = self.child.try_wait() {
            status = Some(s);
        } else {
            let _ = kill(pid_of(self.pid), Signal::SIGTERM);
            match tokio::time::timeout(grace, self.child.wait()).await {
                Ok(Ok(s)) => status = Some(s),
                _ => {
                    let _ = self.child.start_kill();
                    let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.leftovers().next().is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill_leftovers();
        status
    }

    /// Remembered descendants that are still alive (the child itself is reaped through
    /// `child`).
    fn leftovers(&self) -> impl Iterator<Item = u32> + '_ {
        self.known.iter().filter_map(|&(pid, start)| {
            procs::stat(pid)
                .filter(|s| s.start_ticks == start)
                .map(|_| pid)
        })
    }

    fn kill_leftovers(&self) {
        for pid in self.leftovers().collect::<Vec<_>>() {
            let _ = kill(pid_of(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        // kill_on_drop takes care of the child itself; the plugins under it would notice its
        // death through their guards, but the benchmark does not wait for that.
        self.kill_leftovers();
    }
}

/// A nix pid from a /proc pid. Pids on Linux are at most 2^22, far inside `i32`.
fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: u32) -> anyhow::Result<()> {
    kill(pid_of(pid), Signal::SIGKILL).with_context(|| format!("failed to kill -9 {pid}"))
}

/// `hamper run` (or `prefix… hamper run`, for valgrind) configured from the environment alone,
/// in `dir` so that no `hamper.conf` is picked up, against the scripted server on `port`.
pub fn hamper_command(hamper: &Path, prefix: &[String], dir: &Path, port: u16) -> Command {
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(hamper);
            cmd
        }
        None => Command::new(hamper),
    };
    cmd.arg("run")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("nickname", "benchbot")
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("channels", r##"["#bench"]"##)
        .env("plugins", "[karma,help,sed]")
        .env("flood", "off")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("bench.db").display()),
        );
    cmd
}
