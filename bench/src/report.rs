//! The results: the JSON shape, the targets checked against them, and the table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::Machine;
use crate::procs::Memory;
use crate::stats::Latency;
use crate::workload::{Burst, Recovery};

/// The counts a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Requests of each kind back to back (scenario 1).
    pub sequential: usize,
    /// Paced requests (scenario 2).
    pub paced: usize,
    /// Milliseconds between paced requests.
    pub paced_interval_ms: u64,
    /// Requests in the burst (scenario 3).
    pub burst: usize,
    /// Requests of the short callgrind run (scenario 5).
    pub callgrind_low: usize,
    /// Requests of the long callgrind run.
    pub callgrind_high: usize,
    /// The bot's output pacing, always off: the bench measures the message path, not the pacing.
    pub flood: &'static str,
}

/// Start-up times, ms from just before the spawn.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// The JOIN read by the server.
    pub join_ms: f64,
    /// Every plugin `running` in `!plugins` (the bot) and `!karma foo` answered.
    pub ready_ms: f64,
}

/// CPU time of every process in the tree, µs per request (scenario 4).
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Per back-to-back `!karma foo`.
    pub karma_us_per_request: f64,
    /// Per back-to-back correction (two lines in, one reply out).
    pub sed_us_per_correction: f64,
    /// Context switches of every thread of every process, per back-to-back `!karma foo`: each
    /// is a thread that went to sleep or was put aside, a measure of the hand-offs a request
    /// takes.
    pub karma_switches_per_request: f64,
    /// The same per correction.
    pub sed_switches_per_correction: f64,
    /// One clock tick divided by the requests: CPU figures are multiples of it, and 0 means
    /// less than it.
    pub resolution_us: f64,
}

/// Everything measured of one responder: the bot or the floor.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// Scenario 7a.
    pub startup: Startup,
    /// Scenario 1, `!karma foo`.
    pub sequential_karma: Latency,
    /// Scenario 1, sed corrections.
    pub sequential_sed: Latency,
    /// Scenario 2.
    pub paced_karma: Latency,
    /// Scenario 3.
    pub burst: Burst,
    /// Scenario 4.
    pub cpu: Cpu,
    /// Scenario 6, after start-up.
    pub memory_idle: Vec<Memory>,
    /// Scenario 6, right after the burst.
    pub memory_after_burst: Vec<Memory>,
    /// Scenario 7b (the bot only).
    pub restart: Option<Recovery>,
    /// How it ended: `exit status 0` or `killed`.
    pub exit: String,
    /// Its log file, when `--keep` kept it.
    pub log: String,
    /// Warnings and errors in the log, at most a few.
    pub log_warnings: Vec<String>,
}

impl Subject {
    /// Pss of every process, KiB.
    pub fn pss_kib(memory: &[Memory]) -> u64 {
        memory.iter().map(|m| m.pss_kib).sum()
    }
}

/// One process kind's instructions in the two callgrind runs.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInstructions {
    /// `supervisor`, `guard(karma)`, `karma`…
    pub process: String,
    /// In the short run.
    pub low: u64,
    /// In the long run.
    pub high: u64,
    /// `(high - low) / (high requests - low requests)`.
    pub per_request: f64,
}

/// Scenario 5.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Instructions {
    /// Both runs done.
    Measured {
        /// `valgrind --version`.
        valgrind: String,
        /// Instructions per `!karma foo`, all processes.
        per_request: f64,
        /// The same by process.
        by_process: Vec<ProcessInstructions>,
    },
    /// Not measured, and why.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Measuring failed.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// A target of issue 8 next to its figure.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The target, in words.
    pub target: String,
    /// The figure, in words.
    pub measured: String,
    /// Whether the figure meets the target.
    pub met: bool,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// With what counts.
    pub counts: Counts,
    /// `hamper run`.
    pub hamper: Subject,
    /// The single-process floor.
    pub floor: Subject,
    /// Scenario 5.
    pub instructions: Instructions,
    /// The targets.
    pub targets: Vec<Target>,
}

/// 16 MiB, the memory budget.
const PSS_BUDGET_KIB: u64 = 16 * 1024;

/// The targets checked against `hamper` (and `floor`, for the paced one).
pub fn targets(hamper: &Subject, floor: &Subject) -> Vec<Target> {
    let at_most = |what: &str, value: f64, limit: f64, show: fn(f64) -> String| Target {
        what: what.into(),
        target: format!("≤ {}", show(limit)),
        measured: show(value),
        met: value <= limit,
    };
    let recovered = hamper.restart.as_ref().and_then(|r| r.answered_ms);
    let pss = Subject::pss_kib(&hamper.memory_after_burst);
    vec![
        at_most(
            "back to back !karma p50",
            hamper.sequential_karma.p50_us,
            150.0,
            us,
        ),
        at_most(
            "back to back !karma p99",
            hamper.sequential_karma.p99_us,
            400.0,
            us,
        ),
        at_most(
            "back to back s/// p50",
            hamper.sequential_sed.p50_us,
            150.0,
            us,
        ),
        at_most(
            "back to back s/// p99",
            hamper.sequential_sed.p99_us,
            400.0,
            us,
        ),
        Target {
            what: "paced !karma p50".into(),
            target: format!("≤ 2 × floor = {}", us(2.0 * floor.paced_karma.p50_us)),
            measured: us(hamper.paced_karma.p50_us),
            met: hamper.paced_karma.p50_us <= 2.0 * floor.paced_karma.p50_us,
        },
        Target {
            what: format!("burst of {} replies/s", thousands(hamper.burst.sent as f64)),
            target: "≥ 30,000/s".into(),
            measured: format!("{}/s", thousands(hamper.burst.replies_per_second)),
            met: hamper.burst.replies_per_second >= 30_000.0,
        },
        Target {
            what: "burst lost".into(),
            target: "0".into(),
            measured: hamper.burst.lost.to_string(),
            met: hamper.burst.lost == 0,
        },
        at_most(
            "CPU per !karma, all processes",
            hamper.cpu.karma_us_per_request,
            60.0,
            us,
        ),
        Target {
            what: "Pss after the burst, all processes".into(),
            target: format!("≤ {}", mib(PSS_BUDGET_KIB)),
            measured: mib(pss),
            met: pss <= PSS_BUDGET_KIB,
        },
        at_most("launch → JOIN", hamper.startup.join_ms, 50.0, ms),
        match recovered {
            Some(v) => at_most("kill -9 karma → answers again", v, 100.0, ms),
            None => Target {
                what: "kill -9 karma → answers again".into(),
                target: "≤ 100 ms".into(),
                measured: "never (within 10 s)".into(),
                met: false,
            },
        },
    ]
}

/// `123 µs`, or `12.3 ms` from 10 ms up.
pub fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{v:.0} µs")
    }
}

/// `12.3 ms`.
pub fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// `12.3 MiB`.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `12,345`, rounded.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    if v <= -0.5 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of cells, padded to column widths (counted in characters).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

impl Report {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let (h, f, m) = (&self.hamper, &self.floor, &self.machine);
        let mut out = String::new();
        let _ = writeln!(out, "hamper-bench: the benchmark of issue 8");
        let _ = writeln!(out, "commit:   {}", m.commit);
        let _ = writeln!(out, "command:  {}", m.command);
        let _ = writeln!(
            out,
            "machine:  {} CPUs, {}, {}, load average {} at the start",
            m.cpus, m.cpu_model, m.kernel, m.load_at_start
        );
        let _ = writeln!(out, "hamper:   {} (flood=off, default log level)", m.hamper);
        let c = &self.counts;
        let _ = writeln!(
            out,
            "counts:   {} back to back of each kind, {} paced every {} ms, burst of {}, callgrind {} and {}\n",
            c.sequential, c.paced, c.paced_interval_ms, c.burst, c.callgrind_low, c.callgrind_high
        );

        let lat = |l: &crate::stats::Latency| {
            let t = if l.timeouts > 0 {
                format!(" ({} timeouts)", l.timeouts)
            } else {
                String::new()
            };
            format!("{} / {} / {}{t}", us(l.p50_us), us(l.p99_us), us(l.max_us))
        };
        let mut rows = vec![row(&["scenario", "hamper", "floor"])];
        let mut both = |what: &str, show: &dyn Fn(&Subject) -> String| {
            rows.push(vec![what.into(), show(h), show(f)]);
        };
        both("1 back to back !karma p50/p99/max", &|s| {
            lat(&s.sequential_karma)
        });
        both("1 back to back s/// p50/p99/max", &|s| {
            lat(&s.sequential_sed)
        });
        both("2 paced !karma p50/p99/max", &|s| lat(&s.paced_karma));
        both("3 burst replies/s, lost", &|s| {
            let b = &s.burst;
            format!(
                "{}/s, {} lost of {}",
                thousands(b.replies_per_second),
                thousands(b.lost as f64),
                thousands(b.sent as f64)
            )
        });
        let cpu = |v: f64, c: &Cpu| {
            if v > 0.0 {
                us(v)
            } else {
                format!("< {}", us(c.resolution_us))
            }
        };
        both("4 CPU per !karma", &|s| {
            cpu(s.cpu.karma_us_per_request, &s.cpu)
        });
        both("4 CPU per s/// correction", &|s| {
            cpu(s.cpu.sed_us_per_correction, &s.cpu)
        });
        both("4 context switches per !karma", &|s| {
            format!("{:.1}", s.cpu.karma_switches_per_request)
        });
        both("4 context switches per s///", &|s| {
            format!("{:.1}", s.cpu.sed_switches_per_correction)
        });
        both("6 Pss idle, all processes", &|s| {
            mib(Subject::pss_kib(&s.memory_idle))
        });
        both("6 Pss after the burst, all processes", &|s| {
            mib(Subject::pss_kib(&s.memory_after_burst))
        });
        both("7 launch → JOIN", &|s| ms(s.startup.join_ms));
        both("7 launch → ready", &|s| ms(s.startup.ready_ms));
        let instructions = match &self.instructions {
            Instructions::Measured { per_request, .. } => thousands(*per_request),
            Instructions::Skipped { reason } => format!("skipped: {reason}"),
            Instructions::Failed { error } => format!("failed: {error}"),
        };
        rows.push(vec![
            "5 instructions per !karma".into(),
            instructions,
            "-".into(),
        ]);
        let restart = h.restart.as_ref().map_or("-".into(), |r| {
            format!(
                "{} ({} restarting replies, {} unanswered)",
                r.answered_ms.map_or("never".into(), ms),
                r.restarting_replies,
                r.unanswered
            )
        });
        rows.push(vec![
            "7 kill -9 karma → answers again".into(),
            restart,
            "-".into(),
        ]);
        // Rows start with their scenario's number; the header stays first.
        rows[1..].sort_by_key(|r| r[0].chars().next());
        out.push_str(&table(&rows));

        let _ = writeln!(out, "\nmemory by process (KiB)");
        let mut rows = vec![row(&[
            "process",
            "pid",
            "Pss idle",
            "Pss burst",
            "RSS burst",
            "peak RSS",
        ])];
        for (who, s) in [("hamper", h), ("floor", f)] {
            for after in &s.memory_after_burst {
                let idle = s.memory_idle.iter().find(|m| m.pid == after.pid);
                let label = if who == "floor" {
                    "floor".to_string()
                } else {
                    after.role.label()
                };
                rows.push(vec![
                    label,
                    after.pid.to_string(),
                    idle.map_or("-".into(), |m| m.pss_kib.to_string()),
                    after.pss_kib.to_string(),
                    after.rss_kib.to_string(),
                    after.hwm_kib.to_string(),
                ]);
            }
            rows.push(vec![
                format!("{who}, total"),
                String::new(),
                Subject::pss_kib(&s.memory_idle).to_string(),
                Subject::pss_kib(&s.memory_after_burst).to_string(),
            ]);
        }
        out.push_str(&table(&rows));

        if let Instructions::Measured { by_process, .. } = &self.instructions {
            let _ = writeln!(
                out,
                "\ninstructions by process (callgrind, {} and {} requests)",
                c.callgrind_low, c.callgrind_high
            );
            let mut rows = vec![row(&["process", "short run", "long run", "per request"])];
            for p in by_process {
                rows.push(vec![
                    p.process.clone(),
                    thousands(p.low as f64),
                    thousands(p.high as f64),
                    thousands(p.per_request),
                ]);
            }
            out.push_str(&table(&rows));
        }

        let _ = writeln!(out, "\ntargets of issue 8");
        let mut rows = vec![row(&["target", "wanted", "measured", ""])];
        for t in &self.targets {
            let met = if t.met { "met" } else { "NOT MET" };
            rows.push(vec![
                t.what.clone(),
                t.target.clone(),
                t.measured.clone(),
                met.into(),
            ]);
        }
        out.push_str(&table(&rows));
        let met = self.targets.iter().filter(|t| t.met).count();
        let _ = writeln!(out, "{met} of {} targets met", self.targets.len());

        if !h.log_warnings.is_empty() {
            let _ = writeln!(out, "\nwarnings in hamper's log [{}]:", h.log);
            for w in &h.log_warnings {
                let _ = writeln!(out, "  {w}");
            }
        }
        let _ = writeln!(out, "\nhamper exit on SIGTERM: {}", h.exit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_words() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-4271.0), "-4,271");
        assert_eq!(thousands(-0.2), "0");
        assert_eq!(us(149.6), "150 µs");
        assert_eq!(us(12_345.0), "12.3 ms");
        assert_eq!(mib(16 * 1024), "16.0 MiB");
    }

    #[test]
    fn tables_pad_by_characters() {
        let t = table(&[row(&["a", "µµ"]), row(&["bbb", "c"])]);
        assert_eq!(t, "a    µµ\nbbb  c\n");
    }
}
