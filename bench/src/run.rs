//! One benchmark run: the bot, then the floor, then the bot under callgrind, in that order, each
//! against its own scripted server, and every process stopped before the next starts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::callgrind;
use crate::launch::{self, Launched};
use crate::machine::Machine;
use crate::procs;
use crate::report::{
    self, Counts, Cpu, Instructions, ProcessInstructions, Report, Startup, Subject,
};
use crate::server::{Conn, Listener};
use crate::workload::{self, Request, KARMA};

/// What the command line chose.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Smaller counts, for a look in about 40 s: 200 back to back, 10 paced, a burst of
    /// 2,000, callgrind with 20 and 120 requests.
    #[arg(long)]
    pub quick: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// The `hamper` binary to measure [default: `hamper` next to this binary].
    #[arg(long, value_name = "PATH")]
    pub hamper: Option<PathBuf>,
    /// Back-to-back requests of each kind [default: 2000, 200 with --quick].
    #[arg(long)]
    pub requests: Option<usize>,
    /// Paced requests [default: 40, 10 with --quick].
    #[arg(long)]
    pub paced: Option<usize>,
    /// Milliseconds between paced requests.
    #[arg(long, default_value_t = 500)]
    pub paced_interval_ms: u64,
    /// Requests written at once in the burst [default: 10000, 2000 with --quick].
    #[arg(long)]
    pub burst: Option<usize>,
    /// Skip the callgrind instruction count.
    #[arg(long)]
    pub no_valgrind: bool,
    /// Keep the temporary folder (logs, databases, callgrind files) and say where it is.
    #[arg(long)]
    pub keep: bool,
}

impl Options {
    fn counts(&self) -> Counts {
        let pick = |given: Option<usize>, full: usize, quick: usize| {
            given.unwrap_or(if self.quick { quick } else { full })
        };
        Counts {
            sequential: pick(self.requests, 2000, 200),
            paced: pick(self.paced, 40, 10),
            paced_interval_ms: self.paced_interval_ms,
            burst: pick(self.burst, 10_000, 2000),
            callgrind_low: if self.quick { 20 } else { 200 },
            callgrind_high: if self.quick { 120 } else { 1200 },
            flood: "off",
        }
    }
}

/// How long a bot has to connect, join and answer.
const UP: Duration = Duration::from_secs(30);
/// The same under callgrind, which runs everything some fifty times slower.
const UP_UNDER_VALGRIND: Duration = Duration::from_secs(180);
/// The plugins `plugins='[karma,help,sed]'` starts.
const PLUGINS: [&str; 3] = ["karma", "help", "sed"];

/// Runs every scenario and returns the report. Progress goes to stderr.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let counts = opts.counts();
    let hamper = locate_hamper(opts)?;
    let machine = Machine::read(&hamper);
    let dir = tempfile::Builder::new()
        .prefix("hamper-bench.")
        .tempdir()
        .context("failed to create a temporary folder")?;
    let result = async {
        let bot = measure_bot(&hamper, &subdir(dir.path(), "hamper")?, &counts).await?;
        let floor = measure_floor(&subdir(dir.path(), "floor")?, &counts).await?;
        let instructions = if opts.no_valgrind {
            Instructions::Skipped {
                reason: "--no-valgrind".into(),
            }
        } else {
            count_instructions(&hamper, dir.path(), &counts).await
        };
        anyhow::Ok((bot, floor, instructions))
    }
    .await;
    if opts.keep || result.is_err() {
        let kept = dir.keep();
        eprintln!(
            "hamper-bench: logs and databases kept in {}",
            kept.display()
        );
    }
    let (mut hamper, mut floor, instructions) = result?;
    if !opts.keep {
        for subject in [&mut hamper, &mut floor] {
            subject.log = "removed; --keep keeps it".into();
        }
    }
    let targets = report::targets(&hamper, &floor);
    Ok(Report {
        machine,
        counts,
        hamper,
        floor,
        instructions,
        targets,
    })
}

fn subdir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

/// `--hamper`, or `hamper` next to this binary (both `cargo build --release --workspace`
/// outputs live in `target/release`).
fn locate_hamper(opts: &Options) -> anyhow::Result<PathBuf> {
    let path = match &opts.hamper {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("failed to find this binary's own path")?
            .with_file_name("hamper"),
    };
    if !path.is_file() {
        bail!(
            "`{}` does not exist; build it with `cargo build --release --workspace` or pass --hamper PATH",
            path.display()
        );
    }
    if path.components().any(|c| c.as_os_str() == "debug") {
        eprintln!(
            "hamper-bench: warning: {} looks like a debug build; the figures mean little",
            path.display()
        );
    }
    Ok(path)
}

/// Waits for `proc` to connect, giving up at once if it exits first.
async fn accept_from(
    listener: &Listener,
    proc: &mut Launched,
    within: Duration,
) -> anyhow::Result<Conn> {
    let deadline = Instant::now() + within;
    loop {
        if proc.exited() {
            bail!("it exited before connecting");
        }
        match listener.accept(Duration::from_millis(50)).await {
            Ok(conn) => return Ok(conn),
            Err(_) if Instant::now() < deadline => continue,
            Err(_) => bail!("it did not connect within {within:?}"),
        }
    }
}

/// The connection to a started responder, registered and joined, with every plugin in `plugins`
/// running (`!plugins`, the bot only) and `!karma foo` answered. Returns it with the start-up
/// times.
async fn come_up(
    listener: &Listener,
    proc: &mut Launched,
    plugins: &[&str],
    within: Duration,
) -> anyhow::Result<(Conn, Startup)> {
    let mut conn = accept_from(listener, proc, within).await?;
    let joined = conn.register(within).await?;
    if !plugins.is_empty() {
        workload::until_plugins_run(&mut conn, plugins, within).await?;
    }
    let answered = workload::until_answer(
        &mut conn,
        KARMA,
        |t| workload::is_score(t) || t == "No karma for foo",
        Duration::from_millis(50),
        within,
    )
    .await?
    .context("`!karma foo` got no answer")?;
    let startup = Startup {
        join_ms: ms_between(proc.started, joined),
        ready_ms: ms_between(proc.started, answered),
    };
    Ok((conn, startup))
}

/// [`come_up`] for `hamper run`, then `foo++` so that `!karma foo` has a score to read.
async fn bring_up(
    listener: &Listener,
    bot: &mut Launched,
    within: Duration,
) -> anyhow::Result<(Conn, Startup)> {
    let up = async {
        let (mut conn, startup) = come_up(listener, bot, &PLUGINS, within).await?;
        conn.send(workload::SEED).await?;
        workload::settle(&mut conn, within)
            .await
            .context("`!karma foo` never showed the point given by `foo++`")?;
        anyhow::Ok((conn, startup))
    };
    let result = up.await;
    result.map_err(|err| with_log(err, "hamper did not come up", bot))
}

/// `err` under `what`, followed by the end of `proc`'s log, which usually says why.
fn with_log(err: anyhow::Error, what: &str, proc: &Launched) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: {err:#}\nthe end of its log ({}):\n{}",
        proc.log.display(),
        proc.log_tail(20)
    )
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    (to - from).as_secs_f64() * 1e3
}

/// Scenarios 1 to 4 and 6, the same for the bot and the floor.
async fn measure(
    conn: &mut Conn,
    proc: &mut Launched,
    counts: &Counts,
    startup: Startup,
) -> anyhow::Result<Subject> {
    proc.remember_tree();
    let memory_idle = procs::memory(proc.pid);
    let pids = procs::tree(proc.pid);
    let n = counts.sequential.max(1) as f64;
    let usage = || (procs::cpu_ticks(&pids), procs::context_switches(&pids));
    let per_request = |before: (u64, u64), after: (u64, u64)| {
        let seconds = after.0.saturating_sub(before.0) as f64 / procs::TICKS_PER_SECOND as f64;
        (
            seconds * 1e6 / n,
            after.1.saturating_sub(before.1) as f64 / n,
        )
    };

    eprintln!("  back to back: {} × !karma foo", counts.sequential);
    workload::warm_up(conn, Request::Karma).await?;
    let before = usage();
    let sequential_karma = workload::sequential(conn, Request::Karma, counts.sequential).await?;
    let (karma_cpu, karma_switches) = per_request(before, usage());

    eprintln!("  back to back: {} × s/wrold/world/", counts.sequential);
    workload::warm_up(conn, Request::Sed).await?;
    let before = usage();
    let sequential_sed = workload::sequential(conn, Request::Sed, counts.sequential).await?;
    let (sed_cpu, sed_switches) = per_request(before, usage());

    eprintln!(
        "  paced: {} × !karma foo, one every {} ms",
        counts.paced, counts.paced_interval_ms
    );
    let interval = Duration::from_millis(counts.paced_interval_ms);
    tokio::time::sleep(interval).await;
    let paced_karma = workload::paced(conn, Request::Karma, counts.paced, interval).await?;

    eprintln!("  burst: {} × !karma foo in one write", counts.burst);
    let burst = workload::burst(conn, counts.burst).await?;
    let memory_after_burst = procs::memory(proc.pid);
    workload::settle(conn, UP)
        .await
        .context("no answer to `!karma foo` after the burst")?;

    Ok(Subject {
        startup,
        sequential_karma,
        sequential_sed,
        paced_karma,
        burst,
        cpu: Cpu {
            karma_us_per_request: karma_cpu,
            sed_us_per_correction: sed_cpu,
            karma_switches_per_request: karma_switches,
            sed_switches_per_correction: sed_switches,
            resolution_us: 1e6 / procs::TICKS_PER_SECOND as f64 / n,
        },
        memory_idle,
        memory_after_burst,
        restart: None,
        exit: String::new(),
        log: proc.log.display().to_string(),
        log_warnings: Vec::new(),
    })
}

/// `hamper run` under every scenario but the instruction count.
async fn measure_bot(hamper: &Path, dir: &Path, counts: &Counts) -> anyhow::Result<Subject> {
    eprintln!("hamper-bench: measuring {}", hamper.display());
    let listener = Listener::bind().await?;
    let cmd = launch::hamper_command(hamper, &[], dir, listener.port());
    let mut bot = Launched::spawn(cmd, &dir.join("hamper.log"))?;
    let result = async {
        let (mut conn, startup) = bring_up(&listener, &mut bot, UP).await?;
        let mut subject = measure(&mut conn, &mut bot, counts, startup).await?;

        eprintln!("  kill -9 of the karma plugin");
        let karma =
            procs::plugin_pid(bot.pid, "karma").context("no karma plugin process under hamper")?;
        let age = procs::age_seconds(karma);
        let recovery = workload::recover(
            &mut conn,
            || launch::kill9(karma),
            age,
            Duration::from_secs(10),
        )
        .await?;
        bot.remember_tree();
        subject.restart = Some(recovery);
        anyhow::Ok((subject, conn))
    }
    .await;
    let (result, status) = stop_connected(&mut bot, result, Duration::from_secs(20)).await;
    let mut subject = result?;
    subject.exit = status.map_or("killed after 20 s".into(), |s| s.to_string());
    subject.log_warnings = warnings(&bot.log);
    Ok(subject)
}

/// The floor under the scenarios the bot and the floor share.
async fn measure_floor(dir: &Path, counts: &Counts) -> anyhow::Result<Subject> {
    eprintln!("hamper-bench: measuring the floor");
    let listener = Listener::bind().await?;
    let mut cmd = tokio::process::Command::new(
        std::env::current_exe().context("failed to find this binary's own path")?,
    );
    cmd.arg("floor")
        .arg("--port")
        .arg(listener.port().to_string())
        .arg("--db")
        .arg(dir.join("floor.db"));
    let mut floor = Launched::spawn(cmd, &dir.join("floor.log"))?;
    let result = async {
        let (mut conn, startup) = come_up(&listener, &mut floor, &[], UP).await?;
        measure(&mut conn, &mut floor, counts, startup).await
    }
    .await
    .map_err(|err| with_log(err, "the floor failed", &floor));
    let status = floor.stop(Duration::from_secs(5)).await;
    let mut subject = result?;
    subject.exit = status.map_or("killed".into(), |s| s.to_string());
    Ok(subject)
}

/// Stops the bot with SIGTERM while its connection, if it got one, is still served, so that it
/// shuts down as it would on a real network (QUIT, then the server closes).
async fn stop_connected<T>(
    bot: &mut Launched,
    result: anyhow::Result<(T, Conn)>,
    grace: Duration,
) -> (anyhow::Result<T>, Option<std::process::ExitStatus>) {
    let (result, server) = match result {
        Ok((value, conn)) => (Ok(value), Some(tokio::spawn(conn.close_on_quit(grace)))),
        Err(err) => (Err(err), None),
    };
    let status = bot.stop(grace).await;
    if let Some(server) = server {
        server.abort();
        let _ = server.await;
    }
    (result, status)
}

/// The distinct WARN and ERROR lines of a log, at most a few. Lines that differ only in their
/// timestamp and numbers (`dropped=100`, `dropped=200`) count as one, shown as last logged.
fn warnings(log: &Path) -> Vec<String> {
    const MAX: usize = 8;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut more = 0;
    for line in text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
    {
        let message = line.split_once(' ').map_or(line, |(_, rest)| rest).trim();
        let shape: String = message.chars().filter(|c| !c.is_ascii_digit()).collect();
        if let Some(seen) = out.iter_mut().find(|(s, _)| *s == shape) {
            seen.1 = message.to_string();
        } else if out.len() < MAX {
            out.push((shape, message.to_string()));
        } else {
            more += 1;
        }
    }
    let mut lines: Vec<String> = out.into_iter().map(|(_, m)| m).collect();
    if more > 0 {
        lines.push(format!("… and {more} more lines of other kinds"));
    }
    lines
}

/// Scenario 5: two runs under callgrind, the difference per request.
async fn count_instructions(hamper: &Path, dir: &Path, counts: &Counts) -> Instructions {
    let Some(valgrind) = callgrind::version() else {
        eprintln!(
            "hamper-bench: SKIP instructions: valgrind is not installed (apt-get install valgrind)"
        );
        return Instructions::Skipped {
            reason: "valgrind is not installed".into(),
        };
    };
    let (low, high) = (counts.callgrind_low, counts.callgrind_high);
    let result = async {
        let short = callgrind_run(hamper, &subdir(dir, "callgrind-short")?, low).await?;
        let long = callgrind_run(hamper, &subdir(dir, "callgrind-long")?, high).await?;
        anyhow::Ok((short, long))
    }
    .await;
    let (short, long) = match result {
        Ok(runs) => runs,
        Err(err) => {
            eprintln!("hamper-bench: instruction count failed: {err:#}");
            return Instructions::Failed {
                error: format!("{err:#}"),
            };
        }
    };
    let extra = (high - low).max(1) as f64;
    let mut labels: Vec<String> = short.iter().chain(&long).map(|(l, _)| l.clone()).collect();
    labels.sort();
    labels.dedup();
    let sum = |runs: &[(String, u64)], label: &str| {
        runs.iter()
            .filter(|(l, _)| l == label)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let by_process: Vec<ProcessInstructions> = labels
        .iter()
        .map(|label| {
            let (low, high) = (sum(&short, label), sum(&long, label));
            ProcessInstructions {
                process: label.clone(),
                low,
                high,
                per_request: (high as f64 - low as f64) / extra,
            }
        })
        .collect();
    Instructions::Measured {
        valgrind,
        per_request: by_process.iter().map(|p| p.per_request).sum(),
        by_process,
    }
}

/// `hamper run` under callgrind answering `n` requests, stopped with SIGTERM so that every
/// process writes its counts. Returns the instructions by process label.
async fn callgrind_run(hamper: &Path, dir: &Path, n: usize) -> anyhow::Result<Vec<(String, u64)>> {
    eprintln!("hamper-bench: hamper under callgrind, {n} requests");
    let listener = Listener::bind().await?;
    let cmd = launch::hamper_command(hamper, &callgrind::prefix(dir), dir, listener.port());
    let mut bot = Launched::spawn(cmd, &dir.join("hamper.log"))?;
    let result = async {
        let (mut conn, _) = bring_up(&listener, &mut bot, UP_UNDER_VALGRIND).await?;
        bot.remember_tree();
        for _ in 0..n {
            Request::Karma
                .ask(&mut conn, Duration::from_secs(30))
                .await?
                .context("a request got no answer within 30 s under callgrind")?;
        }
        anyhow::Ok(((), conn))
    }
    .await;
    let (result, status) = stop_connected(&mut bot, result, Duration::from_secs(120)).await;
    result?;
    match status {
        Some(s) if s.success() => {}
        other => bail!(
            "hamper under callgrind did not exit cleanly on SIGTERM ({other:?}), so its counts are incomplete"
        ),
    }
    let counts = callgrind::counts(dir)?;
    if counts.len() < 1 + 2 * PLUGINS.len() {
        bail!(
            "callgrind wrote {} output files, expected {} (the supervisor, and a guard and a plugin each)",
            counts.len(),
            1 + 2 * PLUGINS.len()
        );
    }
    Ok(counts
        .into_iter()
        .map(|c| (callgrind::label(&c.cmd), c.instructions))
        .collect())
}
