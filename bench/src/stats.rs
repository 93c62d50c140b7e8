//! Latency summaries: percentiles by nearest rank, in microseconds.

use std::time::Duration;

use serde::Serialize;

/// A series of round trips, summarised.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Round trips that got their reply.
    pub count: usize,
    /// Requests whose reply did not come in time (not in the percentiles).
    pub timeouts: usize,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Slowest, µs.
    pub max_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
}

impl Latency {
    /// Summarises `samples` (reordered in place).
    pub fn of(samples: &mut [Duration], timeouts: usize) -> Latency {
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let total: Duration = samples.iter().sum();
        let mean = if samples.is_empty() {
            0.0
        } else {
            us(total) / samples.len() as f64
        };
        Latency {
            count: samples.len(),
            timeouts,
            p50_us: percentile(samples, 50.0).map_or(0.0, us),
            p99_us: percentile(samples, 99.0).map_or(0.0, us),
            max_us: samples.last().copied().map_or(0.0, us),
            mean_us: mean,
        }
    }
}

/// The nearest-rank percentile `p` (0 to 100) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        let table: &[(&[u64], f64, Option<u64>)] = &[
            (&[], 50.0, None),
            (&[7], 50.0, Some(7)),
            (&[7], 99.0, Some(7)),
            (&[1, 2], 50.0, Some(1)),
            (&[1, 2, 3, 4], 50.0, Some(2)),
            (&[1, 2, 3, 4], 99.0, Some(4)),
            (&hundred, 50.0, Some(50)),
            (&hundred, 99.0, Some(99)),
            (&hundred, 100.0, Some(100)),
            (&hundred, 0.0, Some(1)),
        ];
        for (samples, p, want) in table {
            let got = percentile(&ms(samples), *p).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "p{p} of {samples:?}");
        }
    }

    #[test]
    fn summary_sorts_and_averages() {
        let mut samples = ms(&[3, 1, 2]);
        let l = Latency::of(&mut samples, 1);
        assert_eq!((l.count, l.timeouts), (3, 1));
        assert_eq!((l.p50_us, l.max_us, l.mean_us), (2000.0, 3000.0, 2000.0));
    }
}
