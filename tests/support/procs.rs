//! Looking at processes through /proc: who is in a process group, who is still alive.

/// The state and process group of `pid`, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is alive (a zombie is not).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// The process group of `pid`, while it lives.
pub fn group_of(pid: u32) -> Option<u32> {
    stat(pid).map(|(_, _, pgrp)| pgrp)
}

/// The live processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| matches!(stat(*pid), Some((s, _, g)) if g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// The live children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| matches!(stat(*p), Some((s, ppid, _)) if ppid == pid && s != 'Z' && s != 'X'))
        .collect()
}

/// The live descendants of `pid` (children, grandchildren, …).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in children(p) {
            out.push(c);
            frontier.push(c);
        }
    }
    out
}
