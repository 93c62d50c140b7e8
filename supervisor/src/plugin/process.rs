//! Spawning, signalling and reaping one plugin process.
//!
//! Each plugin runs in its own process group so that a signal reaches it and anything it
//! started. Its stderr is always drained into the log, tagged with its name, so a chatty or
//! crashing plugin can neither block on a full pipe nor vanish without a trace. Stopping escalates
//! (the caller's goodbye and closed stdin, a grace period, SIGTERM to the group, another grace
//! period, SIGKILL), and the leader is always reaped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::config::PluginSpec;

/// The longest stderr line logged; the rest of a longer line is cut.
const MAX_STDERR_LINE: usize = 4096;

/// Why a plugin could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The configured program does not exist or cannot be executed.
    #[error("plugin `{plugin}`: {problem}; fix: {fix}")]
    BadProgram {
        /// The plugin.
        plugin: String,
        /// What is wrong with the program.
        problem: String,
        /// What to change.
        fix: String,
    },
    /// The built-in plugin's binary is nowhere to be found.
    #[error(
        "plugin `{name}`: plugin binary `hamper-{name}` not found {searched}; fix: {}",
        builtin_fix(name)
    )]
    NotFound {
        /// The plugin, whose binary is `hamper-<name>`.
        name: String,
        /// Where it was looked for.
        searched: String,
    },
    /// The OS refused to start it.
    #[error("failed to start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn builtin_fix(name: &str) -> String {
    format!("build hamper's plugins (`cargo build --workspace`) and keep them next to `hamper`, put `hamper-{name}` on PATH, or set `plugin_dir`; if `{name}` is a program of your own, give its entry the command to run it: {{name: {name}, command: [python3, plugins/{name}.py]}}")
}

impl SpawnError {
    /// Whether retrying cannot help (the program does not exist or cannot be executed).
    pub fn is_permanent(&self) -> bool {
        match self {
            SpawnError::NotFound { .. } | SpawnError::BadProgram { .. } => true,
            SpawnError::Spawn { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
        }
    }

    /// What is wrong and what to change, without naming the plugin: for `check-config`, which
    /// names the entry itself.
    pub fn problem_and_fix(&self) -> (String, String) {
        match self {
            SpawnError::BadProgram { problem, fix, .. } => (problem.clone(), fix.clone()),
            SpawnError::NotFound { name, searched } => (
                format!("plugin binary `hamper-{name}` not found {searched}"),
                builtin_fix(name),
            ),
            SpawnError::Spawn { .. } => (self.to_string(), "see the error".into()),
        }
    }
}

/// How to run one plugin: the program, its arguments and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Program then arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

/// Works out the command line of a plugin: its configured `command`, or the binary
/// `hamper-<name>` in `plugin_dir`, next to the running `hamper`, or on PATH.
pub fn resolve(spec: &PluginSpec, plugin_dir: Option<&Path>) -> Result<Launch, SpawnError> {
    let mut argv = match &spec.command {
        Some(cmd) => {
            check_program(&spec.name, cmd.first().map(String::as_str).unwrap_or(""))?;
            cmd.clone()
        }
        None => vec![find_builtin(&spec.name, plugin_dir)?
            .to_string_lossy()
            .into_owned()],
    };
    argv.extend(spec.args.iter().cloned());
    Ok(Launch {
        argv,
        env: spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// Checks, before anything is spawned, that `program` exists and is executable: under the
/// guard a missing program would otherwise only show as a plugin that exits before its hello.
fn check_program(plugin: &str, program: &str) -> Result<(), SpawnError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |problem: String, fix: String| SpawnError::BadProgram {
        plugin: plugin.to_string(),
        problem,
        fix,
    };
    if program.is_empty() {
        return Err(bad(
            "the command is empty".into(),
            "name the program to run in `command`, e.g. command: [python3, plugins/weather.py]"
                .into(),
        ));
    }
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = program.contains('/') && Path::new(program).exists()
        || !program.contains('/')
            && std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| executable(&dir.join(program)))
            });
    if !found && program.split_whitespace().nth(1).is_some() {
        let words: Vec<&str> = program.split_whitespace().collect();
        return Err(bad(
            format!(
                "program `{program}` not found: a `command` string is one program, spaces and all"
            ),
            format!(
                "write the program and its arguments as a list, command: [{}]",
                words.join(", ")
            ),
        ));
    }
    if program.contains('/') {
        let path = Path::new(program);
        return match path.metadata() {
            Err(e) => Err(bad(
                format!("`{program}` cannot be used: {e}"),
                "correct the path in `command` (a relative path starts in the directory hamper runs in)".into(),
            )),
            Ok(_) if !executable(path) => Err(bad(
                format!("`{program}` is not an executable file"),
                format!("chmod +x {program}, or name its interpreter first in `command`, e.g. [python3, {program}]"),
            )),
            Ok(_) => Ok(()),
        };
    }
    if found {
        Ok(())
    } else {
        Err(bad(
            format!("program `{program}` not found on PATH"),
            "install it, or correct `command` in the plugin's entry under `plugins`".into(),
        ))
    }
}

/// Interpreters whose first argument that is not an option is the script to run.
const INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "pypy", "pypy3", "node", "nodejs", "sh", "bash", "dash", "zsh",
    "ksh", "ruby", "perl", "php", "lua",
];

/// Options after which an interpreter runs code or a module, not a script file.
const CODE_OPTIONS: &[&str] = &["-c", "-m", "-e", "-E", "--eval", "-p", "--print"];

/// Checks the script after an interpreter (`[python3, plugins/seen.py]`): the interpreter
/// exists, so only the plugin's own stderr would say that its script does not. Only an argument
/// that looks like a file (a `/` or an extension) counts, so that an option's value is not
/// taken for a script.
fn check_script(plugin: &str, argv: &[String]) -> Result<(), SpawnError> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let base = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&base) && !INTERPRETERS.contains(&program.as_str()) {
        return Ok(());
    }
    for arg in args {
        if CODE_OPTIONS.contains(&arg.as_str()) {
            return Ok(());
        }
        if arg.starts_with('-') {
            continue;
        }
        let looks_like_a_file = arg.contains('/') || Path::new(arg).extension().is_some();
        if looks_like_a_file && !Path::new(arg).exists() {
            return Err(SpawnError::BadProgram {
                plugin: plugin.to_string(),
                problem: format!("the script `{arg}` given to `{program}` does not exist"),
                fix: "correct its path in `command` (a relative path starts in the directory hamper runs in)".into(),
            });
        }
        return Ok(());
    }
    Ok(())
}

/// Everything that can be known about a plugin's command before starting it, for
/// `hamper check-config`: what [`resolve`] refuses, and a missing script after an interpreter.
/// (At run time such a plugin exits at once and its own stderr says why.)
pub fn check(spec: &PluginSpec, plugin_dir: Option<&Path>) -> Result<(), SpawnError> {
    let launch = resolve(spec, plugin_dir)?;
    check_script(&spec.name, &launch.argv)
}

fn find_builtin(name: &str, plugin_dir: Option<&Path>) -> Result<PathBuf, SpawnError> {
    let binary = format!("hamper-{name}");
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(plugin_dir.map(Path::to_path_buf));
    if let Some(dir) = std::env::var_os("HAMPER_PLUGIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.clone());
        // Test binaries live in target/<profile>/deps; the plugins are one level up.
        if dir.ends_with("deps") {
            dirs.extend(dir.parent().map(Path::to_path_buf));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for dir in &dirs {
        let candidate = dir.join(&binary);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let searched = match plugin_dir {
        Some(dir) => format!(
            "in {} (plugin_dir), next to `hamper`, or on PATH",
            dir.display()
        ),
        None => "next to `hamper` or on PATH".to_string(),
    };
    Err(SpawnError::NotFound {
        name: name.to_string(),
        searched,
    })
}

/// A running plugin process and its pipes.
#[derive(Debug)]
pub struct Process {
    /// The child (the process-group leader).
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// Its stdin.
    pub stdin: ChildStdin,
    /// Its stdout.
    pub stdout: ChildStdout,
}

/// Environment variables a plugin inherits from hamper. Everything else (the database URL, the
/// IRC password, other configuration) stays with the supervisor: a plugin gets its settings in
/// the host's hello, and extra variables only through `env` in its entry.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "NODE_PATH",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| INHERITED.contains(&k.as_str()) || k.starts_with("LC_"))
}

/// How to start the guard that leads a plugin's process group: `program args… -- argv…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// `hamper-guard`, or `hamper` itself.
    pub program: PathBuf,
    /// What comes before `--`: nothing for `hamper-guard`, `__guard` for `hamper`.
    pub args: Vec<String>,
}

impl Guard {
    /// The guard for the `hamper` binary at `hamper`: the small `hamper-guard` beside it when
    /// it is there, else `hamper __guard`.
    pub fn beside(hamper: &Path) -> Guard {
        let small = hamper.with_file_name("hamper-guard");
        if small.is_file() {
            Guard {
                program: small,
                args: Vec::new(),
            }
        } else {
            Guard {
                program: hamper.to_path_buf(),
                args: vec!["__guard".into()],
            }
        }
    }
}

/// Starts a plugin in a new process group, with stderr drained into the log.
///
/// With `guard`, the plugin runs under the guard: a small process that leads the group and
/// kills it if the supervisor dies, even by SIGKILL.
pub fn spawn(name: &str, launch: &Launch, guard: Option<&Guard>) -> Result<Process, SpawnError> {
    let (program, args): (String, Vec<String>) = match guard {
        Some(guard) => {
            let mut args = guard.args.clone();
            args.push("--".to_string());
            args.extend(launch.argv.iter().cloned());
            (guard.program.to_string_lossy().into_owned(), args)
        }
        None => (
            launch.argv.first().cloned().unwrap_or_default(),
            launch.argv.iter().skip(1).cloned().collect(),
        ),
    };
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .env_clear()
        .envs(inherited_env())
        .env("HAMPER_PLUGIN_NAME", name)
        .env(
            "HAMPER_PROTOCOL_VERSION",
            hamper_protocol::PROTOCOL_VERSION.to_string(),
        )
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    let mut child = cmd.spawn().map_err(|source| SpawnError::Spawn {
        program: launch.argv.first().cloned().unwrap_or_default(),
        source,
    })?;
    let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
        child.id(),
        child.stdin.take(),
        child.stdout.take(),
        child.stderr.take(),
    ) else {
        return Err(SpawnError::Spawn {
            program,
            source: std::io::Error::other("the child's pipes were not set up"),
        });
    };
    tokio::spawn(drain_stderr(name.to_string(), pid, stderr));
    Ok(Process {
        child,
        pid,
        stdin,
        stdout,
    })
}

async fn drain_stderr(name: String, pid: u32, mut stderr: impl AsyncRead + Unpin) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                log_stderr(&name, pid, &line, cut);
                line.clear();
                cut = false;
            } else if line.len() < MAX_STDERR_LINE {
                line.push(b);
            } else {
                cut = true;
            }
        }
    }
    if !line.is_empty() {
        log_stderr(&name, pid, &line, cut);
    }
}

fn log_stderr(name: &str, pid: u32, line: &[u8], cut: bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if text.is_empty() {
        return;
    }
    if cut {
        // The cut may fall inside a secret, which the log's masking would no longer know.
        let text = crate::redact::stderr_redactor().redact_cut(text);
        tracing::info!(target: "plugin", plugin = %name, pid, "{text} [line cut]");
    } else {
        tracing::info!(target: "plugin", plugin = %name, pid, "{text}");
    }
}

/// The live (not zombie) processes of a group, read from /proc. Zombies do not count: an orphan
/// that died is re-parented to init, and some inits (in containers) never reap it.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
        })
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // The command name (field 2) may hold spaces and parentheses; the fields after its
            // closing parenthesis are: state, ppid, pgrp, ...
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
            pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
        })
        .collect()
}

/// Whether any process of the group is still running.
fn group_alive(pgid: u32) -> bool {
    if killpg(Pid::from_raw(pgid as i32), None).is_err() {
        return false;
    }
    if std::fs::metadata("/proc/self/stat").is_err() {
        return true;
    }
    !group_pids(pgid).is_empty()
}

fn signal_group(pgid: u32, signal: Signal) {
    // ESRCH only means the group is already gone, which is what we want.
    let _ = killpg(Pid::from_raw(pgid as i32), signal);
}

/// Waits for the leader to exit and for the group to empty, up to `grace`.
async fn wait_gone(child: &mut Child, pgid: u32, grace: Duration) -> Option<ExitStatus> {
    let deadline = tokio::time::Instant::now() + grace;
    let status = tokio::time::timeout_at(deadline, child.wait())
        .await
        .ok()
        .and_then(Result::ok)?;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(status)
}

/// Stops a plugin whose stdin the caller has already closed (after its goodbye): waits `grace`,
/// then SIGTERMs the group, waits `grace`, then SIGKILLs it. Always reaps the leader.
pub async fn terminate(
    plugin: &str,
    child: &mut Child,
    pgid: u32,
    grace: Duration,
) -> Option<ExitStatus> {
    if let Some(status) = wait_gone(child, pgid, grace).await {
        if !group_alive(pgid) {
            return Some(status);
        }
    }
    signal_group(pgid, Signal::SIGTERM);
    if let Some(status) = wait_gone(child, pgid, grace).await {
        if !group_alive(pgid) {
            return Some(status);
        }
    }
    tracing::warn!(
        plugin,
        pgid,
        "plugin did not stop after SIGTERM; sending SIGKILL"
    );
    signal_group(pgid, Signal::SIGKILL);
    let status = child.wait().await.ok();
    // SIGKILL is delivered at once but a process dies only when the kernel next runs it: the
    // rest of the group may still be live for a moment after the leader was reaped.
    if wait_group_empty(pgid, KILL_DEADLINE).await {
        signal_group(pgid, Signal::SIGKILL);
        tracing::warn!(
            plugin,
            pgid,
            "processes of the plugin's group outlived SIGKILL"
        );
    }
    status
}

/// How long processes may take to die after SIGKILL before that is reported.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// Waits until no live process is left in the group; returns whether some still were after
/// `deadline`.
async fn wait_group_empty(pgid: u32, deadline: Duration) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while group_alive(pgid) {
        if tokio::time::Instant::now() >= until {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// After the leader exited by itself: kills whatever it left behind in its group.
/// Returns whether anything was left.
pub fn sweep_group(pgid: u32) -> bool {
    if group_alive(pgid) {
        signal_group(pgid, Signal::SIGKILL);
        true
    } else {
        false
    }
}

/// Kills the whole group at once (a hung plugin).
pub fn kill_group(pgid: u32) {
    signal_group(pgid, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_builtin_says_where_it_looked_and_the_fix() {
        let spec = PluginSpec::named("no-such-plugin-xyz");
        let err = resolve(&spec, Some(Path::new("/nonexistent"))).expect_err("missing");
        let text = err.to_string();
        assert!(text.contains("hamper-no-such-plugin-xyz"), "{text}");
        assert!(text.contains("plugin_dir"), "{text}");
        assert!(err.is_permanent());
    }

    #[test]
    fn a_missing_or_unusable_program_is_a_permanent_error_naming_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("plugin.py");
        std::fs::write(&script, "print()").expect("write");
        let cases = [
            (vec!["no-such-program-xyz".to_string()], "not found on PATH"),
            (vec!["/nonexistent/prog".to_string()], "cannot be used"),
            (vec![script.display().to_string()], "not an executable file"),
            (vec![String::new()], "empty"),
        ];
        for (cmd, problem) in cases {
            let mut spec = PluginSpec::named("weather");
            spec.command = Some(cmd.clone());
            let err = resolve(&spec, None).expect_err("bad program");
            let text = err.to_string();
            assert!(
                text.contains(problem) && text.contains("; fix: "),
                "{cmd:?}: {text}"
            );
            assert!(err.is_permanent());
        }
    }

    #[test]
    fn check_finds_what_an_author_gets_wrong_and_says_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("seen.py");
        std::fs::write(&script, "print()").expect("write");
        let script = script.display().to_string();
        let cases: [(Vec<&str>, Option<&str>, &str); 8] = [
            (
                vec!["python3", "nope.py"],
                Some("the script `nope.py` given to `python3` does not exist"),
                "correct its path",
            ),
            (
                vec!["python3 seen.py"],
                Some("a `command` string is one program"),
                "command: [python3, seen.py]",
            ),
            (
                vec!["pyhton3", &script],
                Some("program `pyhton3` not found on PATH"),
                "install it",
            ),
            (vec![&script], Some("is not an executable file"), "chmod +x"),
            (vec!["python3", "-u", &script], None, ""),
            (vec!["python3", "-m", "some.module"], None, ""),
            (vec!["sh", "-c", "exec ./x.sh"], None, ""),
            (
                vec!["python3", &script, "--config", "missing.yaml"],
                None,
                "",
            ),
        ];
        for (command, problem, fix) in cases {
            let mut spec = PluginSpec::named("seen");
            spec.command = Some(command.iter().map(|s| s.to_string()).collect());
            match (check(&spec, None), problem) {
                (Ok(()), None) => {}
                (Err(err), Some(problem)) => {
                    let (said, fixed) = err.problem_and_fix();
                    assert!(said.contains(problem), "{command:?}: {said}");
                    assert!(fixed.contains(fix), "{command:?}: {fixed}");
                }
                (got, _) => panic!("{command:?}: {got:?}"),
            }
        }
        let err = check(&PluginSpec::named("weather-xyz"), None).expect_err("no such binary");
        let (problem, fix) = err.problem_and_fix();
        assert!(
            problem.contains("`hamper-weather-xyz` not found"),
            "{problem}"
        );
        assert!(fix.contains("{name: weather-xyz, command: ["), "{fix}");
    }

    #[test]
    fn a_configured_command_takes_args_and_env() {
        let mut spec = PluginSpec::named("weather");
        spec.command = Some(vec!["sh".into(), "w.py".into()]);
        spec.args = vec!["--metric".into()];
        spec.env.insert("UNITS".into(), "si".into());
        let launch = resolve(&spec, None).expect("resolve");
        assert_eq!(launch.argv, ["sh", "w.py", "--metric"]);
        assert_eq!(launch.env, [("UNITS".to_string(), "si".to_string())]);
    }

    #[tokio::test]
    async fn terminate_escalates_to_sigkill_and_reaps() {
        let launch = Launch {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "trap '' TERM; while :; do sleep 0.05; done".into(),
            ],
            env: vec![],
        };
        let mut p = spawn("stubborn", &launch, None).expect("spawn");
        drop(p.stdin);
        let started = std::time::Instant::now();
        let status = terminate("stubborn", &mut p.child, p.pid, Duration::from_millis(200)).await;
        assert!(status.is_some(), "leader reaped");
        assert!(!group_alive(p.pid), "group gone");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn sweep_kills_a_leftover_grandchild() {
        let launch = Launch {
            argv: vec!["sh".into(), "-c".into(), "sleep 30 & exit 0".into()],
            env: vec![],
        };
        let mut p = spawn("leaky", &launch, None).expect("spawn");
        p.child.wait().await.expect("wait");
        assert!(sweep_group(p.pid), "the grandchild was still there");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while group_alive(p.pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild survived SIGKILL"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
