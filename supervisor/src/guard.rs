//! The guard: a tiny `hamper __guard -- program args…` process that leads each plugin's group.
//!
//! If the supervisor is killed with SIGKILL it cannot stop its plugins, and a plugin that ignores
//! its closed stdin (or something it started) would live on. The guard notices that its parent
//! is gone (it is re-parented) and kills the whole group, grandchildren included, within a
//! fraction of a second. It ignores SIGTERM and SIGINT itself, so that the supervisor's
//! escalation reaches the plugin and the guard exits with the plugin's own status.

use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, getppid, Pid};

use crate::plugin::process::group_pids;

/// How often the guard checks that its parent is alive.
const POLL: Duration = Duration::from_millis(200);
/// The watcher thread only loops over two system calls.
const WATCHER_STACK: usize = 64 * 1024;

/// Runs `argv` under the guard and returns its exit code (128 + signal if it was killed).
///
/// No async runtime: one thread blocks in `wait` for the plugin, so its exit is seen at once,
/// and a second, small one polls the parent. A guard per plugin then costs little memory.
pub fn run_guard(argv: &[String]) -> ExitCode {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("hamper __guard: no program given");
        return ExitCode::from(2);
    };
    let parent = getppid();
    // A handler (unlike SIG_IGN, which a child would inherit) keeps the guard alive through the
    // supervisor's SIGTERM to the group, while the plugin gets the default actions back at exec.
    let caught = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(err) = signal_hook::flag::register(signal, caught.clone()) {
            report(&format!(
                "hamper __guard: cannot handle signal {signal}: {err}"
            ));
            return ExitCode::FAILURE;
        }
    }
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(err) => {
            report(&format!("failed to start `{program}`: {err}"));
            return ExitCode::from(127);
        }
    };
    let watcher = std::thread::Builder::new()
        .name("guard-watch".into())
        .stack_size(WATCHER_STACK)
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if getppid() != parent {
                let _ = killpg(getpgrp(), Signal::SIGKILL);
                std::process::exit(1);
            }
        });
    if let Err(err) = watcher {
        report(&format!("hamper __guard: cannot start its watcher: {err}"));
        let _ = child.kill();
        let _ = child.wait();
        return ExitCode::FAILURE;
    }
    let status = child.wait();
    sweep_leftovers();
    match status {
        Ok(status) => exit_code(status),
        Err(err) => {
            report(&format!("failed to wait for the plugin: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// Whatever the plugin left in its group dies with it. The supervisor would sweep the group too,
/// but it may be the reason the plugin exited (killed, closing the plugin's stdin), and then
/// nobody else would.
fn sweep_leftovers() {
    let me = std::process::id();
    let left: Vec<u32> = group_pids(me).into_iter().filter(|p| *p != me).collect();
    if !left.is_empty() {
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        report(&format!(
            "plugin left processes behind in its group ({left:?}); killed them"
        ));
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
        (None, Some(sig)) => {
            report(&format!("plugin killed by signal {sig}"));
            ExitCode::from((128 + sig).clamp(0, 255) as u8)
        }
        _ => ExitCode::FAILURE,
    }
}

/// Writes to stderr, ignoring failure: the supervisor reading it may be gone, and `eprintln!`
/// would panic then.
fn report(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
