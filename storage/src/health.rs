//! Failing fast while the database is down, and noticing when it is back.
//!
//! While a PostgreSQL server is down, every call would wait [`crate::ACQUIRE_TIMEOUT`] for a
//! connection before failing, and a plugin that handles one event at a time would answer its
//! users seconds late, once per call. So the first call that finds the server unreachable marks
//! the database down; from then on calls answer `unavailable` at once without touching the pool,
//! and one background probe tries to reach the server every [`PROBE_INTERVAL`] (each attempt
//! bounded by [`PROBE_TIMEOUT`]) until it answers, which lets calls through again. The probe
//! stops when the storage is closed or dropped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long the probe waits between attempts while the database is down.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one attempt of the probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database is known to be down, and the switch that stops its probe.
pub(crate) struct Health {
    down: AtomicBool,
    stop: CancellationToken,
}

/// What one attempt of the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The database answered: stop probing.
    Up,
    /// It did not: try again after [`PROBE_INTERVAL`].
    Down,
    /// The storage is gone: stop probing.
    Gone,
}

impl Health {
    pub(crate) fn new() -> Health {
        Health {
            down: AtomicBool::new(false),
            stop: CancellationToken::new(),
        }
    }

    /// Whether calls should be refused at once.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Marks the database down; true if it was up, so that the caller starts the one probe.
    pub(crate) fn mark_down(&self) -> bool {
        !self.down.swap(true, Ordering::AcqRel)
    }

    /// Lets calls through again.
    pub(crate) fn mark_up(&self) {
        self.down.store(false, Ordering::Release);
    }

    /// The token that stops the probe; cancelled by [`Health::stop`].
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the probe, if one runs, for good.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }
}

/// Runs `attempt` at once and then every [`PROBE_INTERVAL`] until it finds the database up or
/// the storage gone, or until `stop` is cancelled. Each attempt is cut off after
/// [`PROBE_TIMEOUT`], which counts as down.
pub(crate) async fn probe_until_up<F, Fut>(stop: CancellationToken, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe>,
{
    loop {
        let found = tokio::select! {
            _ = stop.cancelled() => return,
            found = tokio::time::timeout(PROBE_TIMEOUT, attempt()) => found.unwrap_or(Probe::Down),
        };
        if found != Probe::Down {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;
    use tokio::time::Instant;

    /// Runs the probe over `answers` (one per attempt, then `Down` for ever) until it ends, and
    /// returns the attempts made and the time it ran.
    async fn run(answers: Vec<Probe>, stop: CancellationToken) -> (u32, Duration) {
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&attempts);
        let started = Instant::now();
        probe_until_up(stop, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) as usize;
            let answer = answers.get(n).copied().unwrap_or(Probe::Down);
            async move { answer }
        })
        .await;
        (attempts.load(Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn probes_once_a_second_until_up() {
        let stop = CancellationToken::new();
        let (attempts, took) = run(vec![Probe::Down, Probe::Down, Probe::Up], stop).await;
        assert_eq!(attempts, 3);
        assert_eq!(took, 2 * PROBE_INTERVAL);
        let (attempts, took) = run(vec![Probe::Up], CancellationToken::new()).await;
        assert_eq!(
            (attempts, took),
            (1, Duration::ZERO),
            "the first attempt is at once"
        );
        let (attempts, _) = run(vec![Probe::Down, Probe::Gone], CancellationToken::new()).await;
        assert_eq!(attempts, 2, "a storage that is gone ends the probe");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_counts_as_down() {
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&attempts);
        let started = Instant::now();
        probe_until_up(CancellationToken::new(), move || {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Probe::Up
            }
        })
        .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed(), PROBE_TIMEOUT + PROBE_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_ends_the_probe() {
        let stop = CancellationToken::new();
        let probe = tokio::spawn(run(Vec::new(), stop.clone()));
        tokio::time::sleep(PROBE_INTERVAL * 5 / 2).await;
        stop.cancel();
        let (attempts, took) = tokio::time::timeout(Duration::from_secs(1), probe)
            .await
            .expect("the probe stopped")
            .expect("the probe did not panic");
        assert_eq!(attempts, 3, "attempts at 0 s, 1 s and 2 s");
        assert_eq!(took, PROBE_INTERVAL * 5 / 2);
    }

    #[test]
    fn only_the_first_mark_starts_a_probe() {
        let health = Health::new();
        assert!(!health.is_down());
        assert!(health.mark_down());
        assert!(
            !health.mark_down(),
            "a second failure starts no second probe"
        );
        assert!(health.is_down());
        health.mark_up();
        assert!(!health.is_down());
        assert!(health.mark_down());
    }
}
