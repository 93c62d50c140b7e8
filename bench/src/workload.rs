//! The fake user: what alice says in #bench, and how the answers are timed.
//!
//! The same functions drive the bot and the floor, so their figures differ only by what is on
//! the other end of the socket. A round trip is timed from just before the request is written
//! to the moment its reply has been read, in the task that does both.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::server::Conn;
use crate::stats::Latency;

/// Asks for foo's score.
pub const KARMA: &str = ":alice!a@h PRIVMSG #bench :!karma foo";
/// Gives foo a point, so that [`KARMA`] has a score to read.
pub const SEED: &str = ":alice!a@h PRIVMSG #bench :foo++";
/// The line the correction fixes.
pub const TYPO: &str = ":alice!a@h PRIVMSG #bench :hello wrold";
/// The correction; the sed plugin answers `alice actually meant: hello world`.
pub const FIX: &str = ":alice!a@h PRIVMSG #bench :s/wrold/world/";
/// Asks the supervisor for the state of every plugin.
pub const PLUGINS: &str = ":alice!a@h PRIVMSG #bench :!plugins";

/// How long one request may wait for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Round trips of [`warm_up`].
const WARMUP: usize = 50;
/// A series gives up after this many unanswered requests: the bot has stopped answering.
const MAX_TIMEOUTS: usize = 5;

/// `foo has N points`: a score read from the database.
pub fn is_score(text: &str) -> bool {
    text.starts_with("foo has ")
}

/// The correction of [`TYPO`].
pub fn is_correction(text: &str) -> bool {
    text.contains("hello world")
}

/// The supervisor's answer while the karma plugin restarts.
pub fn is_restarting(text: &str) -> bool {
    text.starts_with("Sorry, the karma plugin is restarting")
}

/// What is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `!karma foo`, answered by the karma plugin from the database.
    Karma,
    /// `hello wrold` then `s/wrold/world/`, answered by the sed plugin from its history. The
    /// time runs from the correction; the typo, written just before, is part of the work.
    Sed,
}

impl Request {
    /// One round trip; `None` when no reply came within `within`.
    pub async fn ask(self, conn: &mut Conn, within: Duration) -> anyhow::Result<Option<Duration>> {
        match self {
            Request::Karma => ask(conn, KARMA, is_score, within).await,
            Request::Sed => {
                conn.send(TYPO).await?;
                ask(conn, FIX, is_correction, within).await
            }
        }
    }
}

/// Writes `line` and waits for a reply satisfying `want`; other replies are skipped.
pub async fn ask(
    conn: &mut Conn,
    line: &str,
    want: fn(&str) -> bool,
    within: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let deadline = started + within;
    conn.send(line).await?;
    while let Some(text) = conn.next_reply(deadline).await? {
        if want(&text) {
            return Ok(Some(started.elapsed()));
        }
    }
    Ok(None)
}

/// Reads and drops whatever the bot says until it has been quiet for `quiet` (at most 30 s).
pub async fn drain(conn: &mut Conn, quiet: Duration) -> anyhow::Result<usize> {
    let end = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while Instant::now() < end {
        let until = (Instant::now() + quiet).min(end);
        if conn.next_line(until).await?.is_none() {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// A few round trips that are not counted: caches, allocators and the database are warm by
/// the time a series starts.
pub async fn warm_up(conn: &mut Conn, request: Request) -> anyhow::Result<()> {
    for _ in 0..WARMUP {
        request.ask(conn, REPLY_TIMEOUT).await?;
    }
    Ok(())
}

/// Asks [`KARMA`] every 200 ms until a score comes back, then waits for the bot to fall quiet,
/// so that the next measurement starts from an idle bot with no stale reply in the socket.
pub async fn settle(conn: &mut Conn, within: Duration) -> anyhow::Result<()> {
    let every = Duration::from_millis(200);
    if until_answer(conn, KARMA, is_score, every, within)
        .await?
        .is_none()
    {
        bail!("no score within {within:?}");
    }
    drain(conn, every).await?;
    Ok(())
}

/// `n` requests back to back, each written as soon as the previous reply is read.
pub async fn sequential(conn: &mut Conn, request: Request, n: usize) -> anyhow::Result<Latency> {
    series(conn, request, n, None).await
}

/// `n` requests, one every `interval` (so that every process is idle in between).
pub async fn paced(
    conn: &mut Conn,
    request: Request,
    n: usize,
    interval: Duration,
) -> anyhow::Result<Latency> {
    series(conn, request, n, Some(interval)).await
}

async fn series(
    conn: &mut Conn,
    request: Request,
    n: usize,
    interval: Option<Duration>,
) -> anyhow::Result<Latency> {
    let mut samples = Vec::with_capacity(n);
    let mut timeouts = 0;
    let start = Instant::now();
    for i in 0..n {
        if let Some(interval) = interval {
            let at = start + interval * u32::try_from(i)?;
            tokio::time::sleep_until(at.into()).await;
        }
        match request.ask(conn, REPLY_TIMEOUT).await? {
            Some(took) => samples.push(took),
            None => {
                timeouts += 1;
                if timeouts >= MAX_TIMEOUTS {
                    bail!(
                        "{timeouts} of {} {request:?} requests got no reply within {REPLY_TIMEOUT:?}",
                        i + 1
                    );
                }
            }
        }
    }
    Ok(Latency::of(&mut samples, timeouts))
}

/// Scenario 3: many requests written at once.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    /// Requests written.
    pub sent: usize,
    /// Score replies read.
    pub replies: usize,
    /// `sent - replies`.
    pub lost: usize,
    /// Other lines the bot wrote meanwhile.
    pub other_lines: usize,
    /// From the start of the write to the last reply, seconds.
    pub seconds: f64,
    /// How long the write itself took, seconds.
    pub write_seconds: f64,
    /// `replies / seconds`.
    pub replies_per_second: f64,
}

/// How long the bot may be silent before the burst counts as over.
pub const BURST_QUIET: Duration = Duration::from_secs(5);

/// Writes `n` [`KARMA`] requests in one write and counts the scores that come back until none
/// has come for [`BURST_QUIET`] (and at most for five minutes).
pub async fn burst(conn: &mut Conn, n: usize) -> anyhow::Result<Burst> {
    let mut bytes = Vec::with_capacity(n * (KARMA.len() + 2));
    for _ in 0..n {
        bytes.extend_from_slice(KARMA.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    let flood = conn
        .flood(&bytes, is_score, BURST_QUIET, Duration::from_secs(300))
        .await?;
    let since = |t: Option<Instant>| t.map_or(0.0, |t| (t - flood.started).as_secs_f64());
    let seconds = since(flood.last);
    Ok(Burst {
        sent: n,
        replies: flood.matched,
        lost: n.saturating_sub(flood.matched),
        other_lines: flood.other,
        seconds,
        write_seconds: since(flood.written),
        replies_per_second: if seconds > 0.0 {
            flood.matched as f64 / seconds
        } else {
            0.0
        },
    })
}

/// Polls `!plugins` every few milliseconds until every plugin in `names` is `running`.
pub async fn until_plugins_run(
    conn: &mut Conn,
    names: &[&str],
    within: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        conn.send(PLUGINS).await?;
        let until = (Instant::now() + Duration::from_millis(500)).min(deadline);
        let mut running = Vec::new();
        let mut seen = 0;
        while seen < names.len() {
            let Some(text) = conn.next_reply(until).await? else {
                break;
            };
            for name in names {
                if let Some(state) = text.strip_prefix(name).and_then(|t| t.strip_prefix(": ")) {
                    seen += 1;
                    if state.starts_with("running") {
                        running.push(*name);
                    }
                }
            }
        }
        if running.len() == names.len() {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("`!plugins` did not show {names:?} all running within {within:?}")
}

/// Asks `line` every `every` until a reply satisfies `want`; returns when it was read.
pub async fn until_answer(
    conn: &mut Conn,
    line: &str,
    want: fn(&str) -> bool,
    every: Duration,
    within: Duration,
) -> anyhow::Result<Option<Instant>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        conn.send(line).await?;
        let until = (Instant::now() + every).min(deadline);
        while let Some(text) = conn.next_reply(until).await? {
            if want(&text) {
                return Ok(Some(Instant::now()));
            }
        }
    }
    Ok(None)
}

/// Scenario 7b: the karma plugin killed with SIGKILL.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    /// How long the plugin process had run before the kill, seconds (the restart policy
    /// restarts at once only after a healthy run of 10 s).
    pub plugin_age_seconds: Option<f64>,
    /// From the kill to the first score read, ms; `None` if none came within the limit.
    pub answered_ms: Option<f64>,
    /// `!karma foo` requests written meanwhile (one every [`RECOVERY_POLL`] without reply).
    pub requests: usize,
    /// Of those, answered "Sorry, the karma plugin is restarting…".
    pub restarting_replies: usize,
    /// Of those, never answered (delivered to the dead process, or dropped with its inbox).
    pub unanswered: usize,
}

/// How often [`recover`] asks again while the bot does not answer.
pub const RECOVERY_POLL: Duration = Duration::from_millis(2);

/// Kills with `kill`, then asks [`KARMA`] every [`RECOVERY_POLL`] until a score comes back
/// (at most `within`), then reads what the bot still had to say.
pub async fn recover(
    conn: &mut Conn,
    kill: impl FnOnce() -> anyhow::Result<()>,
    plugin_age_seconds: Option<f64>,
    within: Duration,
) -> anyhow::Result<Recovery> {
    let killed = Instant::now();
    kill()?;
    let deadline = killed + within;
    let mut r = Recovery {
        plugin_age_seconds,
        answered_ms: None,
        requests: 0,
        restarting_replies: 0,
        unanswered: 0,
    };
    let mut scores = 0;
    'poll: while Instant::now() < deadline {
        conn.send(KARMA).await?;
        r.requests += 1;
        let until = (Instant::now() + RECOVERY_POLL).min(deadline);
        while let Some(text) = conn.next_reply(until).await? {
            if is_score(&text) {
                scores += 1;
                r.answered_ms = Some(killed.elapsed().as_secs_f64() * 1e3);
                break 'poll;
            }
            if is_restarting(&text) {
                r.restarting_replies += 1;
            }
        }
        tokio::time::sleep_until(until.into()).await;
    }
    let late = Instant::now() + Duration::from_millis(500);
    while let Some(text) = conn.next_reply(late).await? {
        if is_score(&text) {
            scores += 1;
        } else if is_restarting(&text) {
            r.restarting_replies += 1;
        }
    }
    r.unanswered = r.requests.saturating_sub(scores + r.restarting_replies);
    Ok(r)
}
