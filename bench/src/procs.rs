//! The bot's processes as /proc shows them: who is in the tree, what each one is, the CPU time
//! it has used and the memory it holds.

use serde::Serialize;

/// Clock ticks per second in /proc/PID/stat. The kernel reports these fields in USER_HZ, which
/// is 100 on every Linux architecture as part of its user-space ABI, whatever the kernel's HZ.
pub const TICKS_PER_SECOND: u64 = 100;

/// The fields of /proc/PID/stat the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `Z`…
    pub state: char,
    /// The parent.
    pub ppid: u32,
    /// User plus system CPU time, in ticks.
    pub cpu_ticks: u64,
    /// When the process started, in ticks since boot.
    pub start_ticks: u64,
}

/// Parses the text of /proc/PID/stat. The command name may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(num(1)?).ok()?,
        cpu_ticks: num(11)? + num(12)?,
        start_ticks: num(19)?,
    })
}

/// /proc/PID/stat of a live process (a zombie is not live).
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).filter(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether `pid` is alive.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some()
}

/// The arguments of `pid`.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `root` and its live descendants, parents before children.
pub fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| Some((pid, stat(pid)?.ppid)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&parent) = out.get(i) {
        out.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    out.retain(|&pid| alive(pid));
    out
}

/// What a process of the bot's tree is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", content = "plugin", rename_all = "snake_case")]
pub enum Role {
    /// `hamper run` itself.
    Supervisor,
    /// `hamper-guard -- …/hamper-NAME` (or `hamper __guard -- …`), leading plugin NAME's group.
    Guard(String),
    /// `…/hamper-NAME`, the plugin itself.
    Plugin(String),
    /// Anything else (a plugin's own child).
    Other,
}

impl Role {
    /// Classifies a process by its arguments; `root` is the supervisor's pid.
    pub fn of(pid: u32, root: u32, args: &[String]) -> Role {
        let plugin_name = |arg: Option<&String>| {
            let base = arg?.rsplit('/').next()?;
            base.strip_prefix("hamper-").map(str::to_string)
        };
        let small_guard = args
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some("hamper-guard"));
        if pid == root {
            Role::Supervisor
        } else if small_guard || args.get(1).is_some_and(|a| a == "__guard") {
            Role::Guard(plugin_name(args.last()).unwrap_or_default())
        } else if let Some(name) = plugin_name(args.first()) {
            Role::Plugin(name)
        } else {
            Role::Other
        }
    }

    /// A short label for tables: `supervisor`, `guard(karma)`, `karma`.
    pub fn label(&self) -> String {
        match self {
            Role::Supervisor => "supervisor".into(),
            Role::Guard(name) => format!("guard({name})"),
            Role::Plugin(name) => name.clone(),
            Role::Other => "other".into(),
        }
    }
}

/// The pid of plugin `name` in the tree of `root`.
pub fn plugin_pid(root: u32, name: &str) -> Option<u32> {
    tree(root)
        .into_iter()
        .find(|&pid| Role::of(pid, root, &cmdline(pid)) == Role::Plugin(name.to_string()))
}

/// CPU ticks used so far by every process in `pids` that is still alive.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&p| stat(p))
        .map(|s| s.cpu_ticks)
        .sum()
}

/// Context switches so far (voluntary and not) of every thread of every process in `pids`
/// that is still alive. A thread that has exited no longer counts.
pub fn context_switches(pids: &[u32]) -> u64 {
    let thread_switches = |path: std::path::PathBuf| {
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
            .iter()
            .filter_map(|key| count_field(&status, key))
            .sum::<u64>()
    };
    pids.iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
        .flat_map(|tasks| tasks.flatten().map(|t| thread_switches(t.path())))
        .sum()
}

/// One process's memory.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// The process id.
    pub pid: u32,
    /// What it is in the bot.
    pub role: Role,
    /// Proportional set size (shared pages divided among their users), KiB.
    pub pss_kib: u64,
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub hwm_kib: u64,
}

/// The number after `key:` in a /proc file of `key:   value [kB]` lines.
pub fn count_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The memory of every process in the tree of `root`.
pub fn memory(root: u32) -> Vec<Memory> {
    tree(root)
        .into_iter()
        .filter_map(|pid| {
            let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            Some(Memory {
                pid,
                role: Role::of(pid, root, &cmdline(pid)),
                pss_kib: count_field(&rollup, "Pss")?,
                rss_kib: count_field(&status, "VmRSS")?,
                hwm_kib: count_field(&status, "VmHWM")?,
            })
        })
        .collect()
}

/// Seconds since boot, from /proc/uptime.
pub fn uptime_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// How long `pid` has been running, in seconds.
pub fn age_seconds(pid: u32) -> Option<f64> {
    let started = stat(pid)?.start_ticks as f64 / TICKS_PER_SECOND as f64;
    Some(uptime_seconds()? - started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_counts_fields_after_the_last_parenthesis() {
        let text = "4242 (hamper (x) y) S 4241 4242 4242 0 -1 4194560 1405 0 0 0 \
                    37 12 0 0 20 0 5 0 98765 123 456";
        let s = parse_stat(text).unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'S',
                ppid: 4241,
                cpu_ticks: 49,
                start_ticks: 98765
            }
        );
        assert_eq!(parse_stat("4242 (cut short) S 1"), None);
    }

    #[test]
    fn roles_from_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table = [
            (1, args(&["/t/hamper", "run"]), Role::Supervisor),
            (
                2,
                args(&["/t/hamper", "__guard", "--", "/t/hamper-karma"]),
                Role::Guard("karma".into()),
            ),
            (3, args(&["/t/hamper-sed"]), Role::Plugin("sed".into())),
            (4, args(&["python3", "x.py"]), Role::Other),
        ];
        for (pid, a, want) in table {
            assert_eq!(Role::of(pid, 1, &a), want, "{a:?}");
        }
        assert_eq!(Role::Guard("help".into()).label(), "guard(help)");
    }

    #[test]
    fn count_fields() {
        let status = "Name:\thamper\nVmHWM:\t   10240 kB\nVmRSS:\t    8000 kB\n";
        assert_eq!(count_field(status, "VmHWM"), Some(10240));
        assert_eq!(count_field(status, "VmRSS"), Some(8000));
        assert_eq!(count_field(status, "Pss"), None);
        let rollup = "55d0-7ffc ---p 00000000 00:00 0 [rollup]\nRss: 9000 kB\nPss:  4321 kB\nPss_Anon: 1 kB\n";
        assert_eq!(count_field(rollup, "Pss"), Some(4321));
        let switches = "voluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(count_field(switches, "voluntary_ctxt_switches"), Some(7));
        assert_eq!(count_field(switches, "nonvoluntary_ctxt_switches"), Some(3));
    }
}
