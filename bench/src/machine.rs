//! Where and what was measured: the machine, the command line and the commit.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The facts a figure is meaningless without.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the benchmark.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// /proc/loadavg when the run started: other work on the machine skews every figure.
    pub load_at_start: String,
    /// The benchmark's command line.
    pub command: String,
    /// `git rev-parse HEAD` of the source tree the benchmark was built in, with `+dirty` when
    /// tracked files differ from it.
    pub commit: String,
    /// The `hamper` binary measured.
    pub hamper: String,
}

impl Machine {
    /// Reads it all; what cannot be read is `unknown`.
    pub fn read(hamper: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_else(|_| "unknown".into());
        let load_at_start = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            load_at_start,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            commit: commit(),
            hamper: hamper.display().to_string(),
        }
    }
}

fn commit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+dirty")
    } else {
        head
    }
}
