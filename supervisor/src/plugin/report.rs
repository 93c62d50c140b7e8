//! What people are told about a plugin's state: the apology when its command cannot be
//! delivered, and its line in `!plugins`.
//!
//! One place, so that the router (which answers while a plugin is down) and the runner (which
//! answers for the commands a stopping plugin left behind) say the same thing, and so that the
//! wording is tested as a table against a fixed clock.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{Counters, State, Status};

/// A duration as people read it, to the second: `16 s`, `4 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", mins, "min")
    } else if mins > 0 {
        pair(mins, "min", s, "s")
    } else {
        format!("{s} s")
    }
}

/// How long until `at`, rounded up to the second, so that "in about 16 s" is never too early.
fn until(at: Instant, now: Instant) -> Duration {
    let left = at.saturating_duration_since(now);
    let whole = Duration::from_secs(left.as_secs());
    if left > whole {
        whole + Duration::from_secs(1)
    } else {
        whole
    }
}

/// What to tell the sender of a command for the plugin `name` that cannot take it now, or
/// `None` when it can (running, or starting: the command waits for its handshake).
pub fn unavailable(name: &str, status: &Status, prefix: &str, now: Instant) -> Option<String> {
    match &status.state {
        State::Running | State::Starting => None,
        State::Restarting => Some(restarting(name, status.next_start, now)),
        State::Disabled => Some(format!("Sorry, the {name} plugin is disabled.")),
        State::Failed(_) | State::Stopped => Some(format!(
            "Sorry, the {name} plugin is not running ({prefix}plugins says why)."
        )),
    }
}

/// The apology while the plugin waits to restart: how long, when that is known and more than a
/// second, else "in a moment".
pub fn restarting(name: &str, next_start: Option<Instant>, now: Instant) -> String {
    match next_start.map(|at| until(at, now)) {
        Some(wait) if wait > Duration::from_secs(1) => format!(
            "Sorry, the {name} plugin is restarting; try again in about {}.",
            human(wait)
        ),
        _ => format!("Sorry, the {name} plugin is restarting; try again in a moment."),
    }
}

/// The plugin's line in `!plugins`: its state and what goes with it, its restarts, and the
/// events and lines it lost, if any.
pub fn status_line(name: &str, status: &Status, counters: &Counters, now: Instant) -> String {
    let next_try = status
        .next_start
        .map(|at| format!(", next try in {}", human(until(at, now))))
        .unwrap_or_default();
    let state = match &status.state {
        State::Running => {
            let pid = status.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
            let up = status
                .since
                .map(|t| format!(", up {}", human(now.saturating_duration_since(t))))
                .unwrap_or_default();
            format!("running{pid}{up}")
        }
        State::Starting => {
            let pid = status.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
            format!("starting{pid}")
        }
        State::Restarting => format!("restarting{next_try}"),
        State::Failed(reason) => format!("failed ({reason}){next_try}"),
        other => other.as_str().to_string(),
    };
    let restarts = counters.restarts.load(Ordering::Relaxed);
    let mut lost = match counters.dropped.load(Ordering::Relaxed) {
        0 => String::new(),
        n => format!(", {n} events dropped"),
    };
    match counters.unsent.load(Ordering::Relaxed) {
        0 => {}
        n => lost.push_str(&format!(", {n} lines not sent (send queue full)")),
    }
    format!("{name}: {state} ({restarts} restarts){lost}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State) -> Status {
        Status {
            state,
            pid: None,
            generation: 1,
            hello: None,
            since: None,
            next_start: None,
        }
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let cases = [
            (0, "0 s"),
            (16, "16 s"),
            (60, "1 min"),
            (252, "4 min 12 s"),
            (3600, "1 h"),
            (7500, "2 h 5 min"),
            (86_400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    #[test]
    fn the_restarting_apology_says_how_long_when_it_is_more_than_a_second() {
        let now = Instant::now();
        let after = |ms| Some(now + Duration::from_millis(ms));
        let cases = [
            (None, "try again in a moment."),
            (after(250), "try again in a moment."),
            (after(1000), "try again in a moment."),
            (after(1001), "try again in about 2 s."),
            (after(15_200), "try again in about 16 s."),
            (after(90_000), "try again in about 1 min 30 s."),
        ];
        for (at, want) in cases {
            let text = restarting("karma", at, now);
            assert_eq!(
                text,
                format!("Sorry, the karma plugin is restarting; {want}"),
                "{at:?}"
            );
        }
    }

    #[test]
    fn each_state_has_its_apology() {
        let now = Instant::now();
        let cases = [
            (State::Running, None),
            (State::Starting, None),
            (
                State::Disabled,
                Some("Sorry, the karma plugin is disabled."),
            ),
            (
                State::Failed("x".into()),
                Some("Sorry, the karma plugin is not running (.plugins says why)."),
            ),
            (
                State::Restarting,
                Some("Sorry, the karma plugin is restarting; try again in a moment."),
            ),
        ];
        for (state, want) in cases {
            let got = unavailable("karma", &status(state.clone()), ".", now);
            assert_eq!(got.as_deref(), want, "{state:?}");
        }
    }

    #[test]
    fn status_lines() {
        let now = Instant::now();
        let mut running = status(State::Running);
        running.pid = Some(42);
        running.since = Some(now - Duration::from_secs(252));
        let mut failed = status(State::Failed("stopped 5 times within 60s".into()));
        failed.next_start = Some(now + Duration::from_millis(251_500));
        let mut permanent = status(State::Failed("program not found".into()));
        permanent.next_start = None;
        let mut restarting = status(State::Restarting);
        restarting.next_start = Some(now + Duration::from_secs(16));
        let cases = [
            (running, 0, 0, 0, "karma: running, pid 42, up 4 min 12 s (0 restarts)"),
            (
                failed,
                4,
                7,
                2,
                "karma: failed (stopped 5 times within 60s), next try in 4 min 12 s (4 restarts), 7 events dropped, 2 lines not sent (send queue full)",
            ),
            (permanent, 0, 0, 0, "karma: failed (program not found) (0 restarts)"),
            (restarting, 3, 0, 0, "karma: restarting, next try in 16 s (3 restarts)"),
            (status(State::Disabled), 1, 0, 0, "karma: disabled (1 restarts)"),
        ];
        for (status, restarts, dropped, unsent, want) in cases {
            let counters = Counters::default();
            counters.restarts.store(restarts, Ordering::Relaxed);
            counters.dropped.store(dropped, Ordering::Relaxed);
            counters.unsent.store(unsent, Ordering::Relaxed);
            assert_eq!(status_line("karma", &status, &counters, now), want);
        }
    }
}
