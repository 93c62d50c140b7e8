//! The guard: a tiny `hamper __guard -- program args…` process that leads each plugin's group.
//!
//! If the supervisor is killed with SIGKILL it cannot stop its plugins, and a plugin that ignores
//! its closed stdin (or something it started) would live on. The guard notices that its parent
//! is gone (it is re-parented) and kills the whole group, grandchildren included, within a
//! fraction of a second. It ignores SIGTERM and SIGINT itself, so that the supervisor's
//! escalation reaches the plugin and the guard exits with the plugin's own status.

use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, getppid, Pid};

use crate::plugin::process::group_pids;

/// How often the guard checks that its parent is alive.
const POLL: Duration = Duration::from_millis(200);

/// Runs `argv` under the guard and returns its exit code (128 + signal if it was killed).
pub fn run_guard(argv: &[String]) -> ExitCode {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("hamper __guard: no program given");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hamper __guard: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(guard(program, args))
}

async fn guard(program: &str, args: &[String]) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let parent = getppid();
    // Registering handlers replaces the default action (exit) for these signals.
    let _term = signal(SignalKind::terminate());
    let _int = signal(SignalKind::interrupt());
    let _hup = signal(SignalKind::hangup());
    let mut child = match tokio::process::Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(err) => {
            report(&format!("failed to start `{program}`: {err}"));
            return ExitCode::from(127);
        }
    };
    let mut ticks = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            status = child.wait() => {
                use std::os::unix::process::ExitStatusExt;
                // Whatever the plugin left in its group dies with it. The supervisor would sweep
                // the group too, but it may be the reason the plugin exited (killed, closing the
                // plugin's stdin), and then nobody else would.
                let me = std::process::id();
                let left: Vec<u32> = group_pids(me).into_iter().filter(|p| *p != me).collect();
                if !left.is_empty() {
                    for pid in &left {
                        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
                    }
                    report(&format!("plugin left processes behind in its group ({left:?}); killed them"));
                }
                return match status {
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
                        (None, Some(sig)) => {
                            report(&format!("plugin killed by signal {sig}"));
                            ExitCode::from((128 + sig).clamp(0, 255) as u8)
                        }
                        _ => ExitCode::FAILURE,
                    },
                    Err(err) => {
                        report(&format!("failed to wait for the plugin: {err}"));
                        ExitCode::FAILURE
                    }
                };
            }
            _ = ticks.tick() => {
                if getppid() != parent {
                    let _ = killpg(getpgrp(), Signal::SIGKILL);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
}

/// Writes to stderr, ignoring failure: the supervisor reading it may be gone, and `eprintln!`
/// would panic then.
fn report(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
