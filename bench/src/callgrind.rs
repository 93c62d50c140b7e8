//! Counting instructions with valgrind's callgrind: how to run the bot under it, and how to read
//! the files it leaves, one per process.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde::Serialize;

/// valgrind's version, or `None` when it cannot be run.
pub fn version() -> Option<String> {
    let out = Command::new("valgrind").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The words to put before `hamper run`: callgrind on it and on every process it starts, one
/// output file per process in `dir`.
pub fn prefix(dir: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--trace-children=yes".into(),
        format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()),
    ]
}

/// One process's count.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    /// The command callgrind recorded.
    pub cmd: String,
    /// Instructions executed.
    pub instructions: u64,
}

/// The command and the instruction total of one callgrind output file.
pub fn parse(text: &str) -> Option<Count> {
    let cmd = text
        .lines()
        .find_map(|l| l.strip_prefix("cmd:"))
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    let total = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let instructions = total("totals:").or_else(|| total("summary:"))?;
    Some(Count { cmd, instructions })
}

/// Every `callgrind.out.*` file in `dir`.
pub fn counts(dir: &Path) -> anyhow::Result<Vec<Count>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?
    {
        let path = entry?.path();
        let is_output = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("callgrind.out."));
        if is_output {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            out.extend(parse(&text));
        }
    }
    Ok(out)
}

/// What a callgrind `cmd:` names, in the words of [`crate::procs::Role::label`]: `supervisor`,
/// `guard(karma)`, `karma`.
pub fn label(cmd: &str) -> String {
    let args: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    let role = crate::procs::Role::of(0, 1, &args);
    if role == crate::procs::Role::Other && args.get(1).is_some_and(|a| a == "run") {
        "supervisor".into()
    } else {
        role.label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_summaries() {
        let file = "# callgrind format\nversion: 1\ncmd: /t/hamper __guard -- /t/hamper-karma\n\
                    events: Ir\nfn=(1) main\n3 4\nsummary: 1234567\ntotals: 1234567\n";
        let c = parse(file).unwrap();
        assert_eq!(
            (c.cmd.as_str(), c.instructions),
            ("/t/hamper __guard -- /t/hamper-karma", 1234567)
        );
        assert_eq!(parse("cmd: x\nsummary: 42\n").unwrap().instructions, 42);
        assert!(parse("cmd: x\nevents: Ir\n").is_none());
    }

    #[test]
    fn labels() {
        assert_eq!(label("/t/hamper run"), "supervisor");
        assert_eq!(label("/t/hamper __guard -- /t/hamper-sed"), "guard(sed)");
        assert_eq!(label("/t/hamper-guard -- /t/hamper-sed"), "guard(sed)");
        assert_eq!(label("/t/hamper-help"), "help");
    }
}
