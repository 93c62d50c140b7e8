//! When to restart a plugin that stopped, as a pure function of its crash history.
//!
//! A plugin that ran healthily for a while and then crashed restarts at once. Crashes in quick
//! succession back off exponentially up to a cap, and too many crashes within a window mark the
//! plugin failed, so one bad plugin cannot spin the host. Failed is not forever: a failed plugin
//! is tried again after `failed_retry`, with a fresh crash budget, so a plugin that needed
//! something that has since come back (a file, a service) recovers without anyone restarting the
//! bot. Kept free of clocks and sleeps so it is tested as a table; the IRC reconnect loop uses
//! the same [`Backoff`].

use std::time::{Duration, Instant};

/// One run of a plugin that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// When the process started.
    pub started: Instant,
    /// When it ended.
    pub ended: Instant,
}

/// Exponential backoff with a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `n` (1-based): `initial`, doubled each time, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The restart rules for one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Backoff for crashes in quick succession.
    pub backoff: Backoff,
    /// A run at least this long counts as healthy; a crash after it restarts at once.
    pub healthy_after: Duration,
    /// This many crashes within `window` mark the plugin failed.
    pub max_crashes: u32,
    /// The window for `max_crashes`.
    pub window: Duration,
    /// How long a failed plugin waits before it is tried again; `None` leaves it failed.
    pub failed_retry: Option<Duration>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(30),
            },
            healthy_after: Duration::from_secs(10),
            max_crashes: 5,
            window: Duration::from_secs(60),
            failed_retry: Some(Duration::from_secs(300)),
        }
    }
}

/// What to do after a plugin stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay.
    RestartAfter(Duration),
    /// Give up for now: too many crashes in the window. The plugin is tried again, with a fresh
    /// history, after `retry_after`, or never when it is `None`.
    Fail {
        /// When to try again.
        retry_after: Option<Duration>,
    },
}

impl RestartPolicy {
    /// Decides, given every run that ended (oldest first, the latest last) and the time now.
    pub fn next_delay(&self, history: &[Run], now: Instant) -> Decision {
        let recent = history
            .iter()
            .filter(|r| now.saturating_duration_since(r.ended) < self.window)
            .count();
        if recent as u32 >= self.max_crashes {
            return Decision::Fail {
                retry_after: self.failed_retry,
            };
        }
        let quick = history
            .iter()
            .rev()
            .take_while(|r| r.ended.saturating_duration_since(r.started) < self.healthy_after)
            .count() as u32;
        if quick == 0 {
            Decision::RestartAfter(Duration::ZERO)
        } else {
            Decision::RestartAfter(self.backoff.delay(quick))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
            healthy_after: Duration::from_secs(10),
            max_crashes: 4,
            window: Duration::from_secs(60),
            failed_retry: Some(Duration::from_secs(300)),
        }
    }

    /// Builds a history from (start, length) pairs in seconds after `t0`.
    fn history(t0: Instant, runs: &[(u64, u64)]) -> Vec<Run> {
        runs.iter()
            .map(|(start, len)| Run {
                started: t0 + Duration::from_secs(*start),
                ended: t0 + Duration::from_secs(start + len),
            })
            .collect()
    }

    #[test]
    fn decisions_table() {
        let t0 = Instant::now();
        let secs = |s| Decision::RestartAfter(Duration::from_secs(s));
        let fail = Decision::Fail {
            retry_after: Some(Duration::from_secs(300)),
        };
        // (runs as (start, length), now, expected)
        type Case<'a> = (&'a [(u64, u64)], u64, Decision);
        let cases: &[Case] = &[
            (&[(0, 100)], 100, Decision::RestartAfter(Duration::ZERO)),
            (&[(0, 0)], 0, secs(1)),
            (&[(0, 0), (1, 0)], 1, secs(2)),
            (&[(0, 0), (1, 0), (3, 0)], 3, secs(4)),
            (&[(0, 0), (1, 0), (3, 0), (7, 0)], 7, fail),
            // The same crashes spread beyond the window do not fail the plugin.
            (&[(0, 0), (100, 0), (200, 0), (300, 0)], 300, secs(8)),
            // A healthy run resets the backoff.
            (
                &[(0, 0), (1, 0), (3, 50)],
                53,
                Decision::RestartAfter(Duration::ZERO),
            ),
            (&[(0, 0), (1, 50), (100, 1)], 101, secs(1)),
        ];
        for (runs, now, want) in cases {
            let got = policy().next_delay(&history(t0, runs), t0 + Duration::from_secs(*now));
            assert_eq!(got, *want, "runs {runs:?} at {now}");
        }
    }

    /// A failed plugin is tried again after `failed_retry` with a fresh history (the runner
    /// clears it), so the retry gets the whole crash budget again; without `failed_retry` it
    /// stays failed.
    #[test]
    fn failed_is_retried_with_a_fresh_budget_unless_retry_is_off() {
        let t0 = Instant::now();
        let crashes = history(t0, &[(0, 0), (1, 0), (3, 0), (7, 0)]);
        let now = t0 + Duration::from_secs(7);
        let off = RestartPolicy {
            failed_retry: None,
            ..policy()
        };
        assert_eq!(
            off.next_delay(&crashes, now),
            Decision::Fail { retry_after: None }
        );
        let Decision::Fail {
            retry_after: Some(wait),
        } = policy().next_delay(&crashes, now)
        else {
            panic!("four quick crashes fail the plugin");
        };
        // The retry crashes at once: a fresh history restarts it after the first backoff step,
        // and it fails again only after as many crashes as the first time.
        let retry = now + wait;
        let again = [Run {
            started: retry,
            ended: retry,
        }];
        assert_eq!(
            policy().next_delay(&again, retry),
            Decision::RestartAfter(Duration::from_secs(1))
        );
        let four = history(retry, &[(0, 0), (1, 0), (3, 0), (7, 0)]);
        assert!(matches!(
            policy().next_delay(&four, retry + Duration::from_secs(7)),
            Decision::Fail { .. }
        ));
    }

    #[test]
    fn backoff_caps_and_never_overflows() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(40), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }
}
