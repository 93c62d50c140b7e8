//! Output pacing: the token bucket that keeps the bot from being killed for flooding.
//!
//! Servers disconnect a client that sends too much too fast, so lines leave through a token
//! bucket configured by `flood`: `burst` lines back to back after a quiet spell, then
//! `per_second`. When a token is there the line goes out at once; a timer is armed only when the
//! bucket is empty, so the common case (a reply after a quiet spell) costs no wait at all.
//! `flood: off` disables the bucket for a private server or a benchmark.

use tokio::time::{Duration, Instant};

use crate::config::Flood;

/// A token bucket over [`Flood`].
#[derive(Debug, Clone)]
pub struct Pacer {
    flood: Flood,
    /// Tokens in the bucket, fractional between refills.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl Pacer {
    /// A full bucket at `now`.
    pub fn new(flood: Flood, now: Instant) -> Pacer {
        let tokens = match flood {
            Flood::Off => 0.0,
            Flood::Bucket { burst, .. } => f64::from(burst),
        };
        Pacer {
            flood,
            tokens,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Flood::Bucket { burst, per_second } = self.flood {
            let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
            self.updated = now;
        }
    }

    /// Takes a token for one line if there is one at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.flood == Flood::Off {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there, if [`Pacer::take`] just said no.
    pub fn next_token(&self) -> Instant {
        match self.flood {
            Flood::Off => self.updated,
            Flood::Bucket { per_second, .. } => {
                let missing = (1.0 - self.tokens).max(0.0);
                self.updated + Duration::from_secs_f64(missing / per_second)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(burst: u32, per_second: f64) -> Flood {
        Flood::Bucket { burst, per_second }
    }

    #[test]
    fn a_burst_goes_at_once_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(bucket(5, 2.0), t0);
        for i in 0..5 {
            assert!(p.take(t0), "line {i} of the burst");
        }
        assert!(!p.take(t0), "the sixth waits");
        assert_eq!(p.next_token(), t0 + Duration::from_millis(500));
        assert!(!p.take(t0 + Duration::from_millis(499)));
        assert!(p.take(t0 + Duration::from_millis(500)));
        assert!(!p.take(t0 + Duration::from_millis(500)));
        assert!(p.take(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn a_quiet_spell_refills_the_burst_but_no_more() {
        let t0 = Instant::now();
        let mut p = Pacer::new(bucket(3, 2.0), t0);
        for _ in 0..3 {
            assert!(p.take(t0));
        }
        let later = t0 + Duration::from_secs(60);
        for i in 0..3 {
            assert!(p.take(later), "refilled token {i}");
        }
        assert!(!p.take(later), "the bucket holds at most the burst");
    }

    #[test]
    fn off_never_waits() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Flood::Off, t0);
        for _ in 0..10_000 {
            assert!(p.take(t0));
        }
    }
}
