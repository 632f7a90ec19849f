//! [`Histogram`]: a small log-scale histogram of durations.
//!
//! Bucket *i* counts samples in `[2^(i-1), 2^i)` microseconds (bucket 0
//! holds zero). Forty buckets; the last is open-ended and holds everything
//! from 2^38 µs (about 3.2 days) up. Recording is a `leading_zeros` and an increment, cheap enough
//! to run for every timer. Samples are kept in whole microseconds (the
//! fraction is dropped), and percentiles are reported as the upper edge of
//! the bucket that holds them, so they are never optimistic by more than
//! that dropped fraction: a 1.9 µs sample counts as 1 µs.

use std::time::Duration;

const BUCKETS: usize = 40;

/// Counts of durations in power-of-two microsecond buckets.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    /// `buckets[i]`: samples below `2^i` µs and at or above `2^(i-1)` µs.
    buckets: [u64; BUCKETS],
    /// Samples recorded.
    count: u64,
    /// Sum of all samples, in µs, for the mean.
    sum_us: u128,
    /// The largest sample, in µs.
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, value: Duration) {
        let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.buckets[bucket.min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample (to the microsecond), or zero if there are none.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The mean sample, or zero if there are none.
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_micros((self.sum_us / u128::from(n)) as u64),
        }
    }

    /// An upper bound on the `q`-quantile (`q` in 0..=1; outside, it is
    /// clamped): the upper edge of the bucket holding it, capped at the
    /// maximum seen. Zero if there are no samples.
    ///
    /// # Panics
    /// If `q` is NaN (a `0.0 / 0.0` upstream, say), with or without
    /// samples. A `q` outside 0..=1 has an obvious nearest quantile; NaN
    /// has none, and any duration returned for it would read as a
    /// measurement.
    pub fn quantile(&self, q: f64) -> Duration {
        // Checked before anything else: NaN fails every comparison, so
        // `clamp` passes it through and the rank below came out as the
        // first sample, the lowest bucket.
        assert!(
            !q.is_nan(),
            "Histogram::quantile: q is NaN (expected 0..=1)"
        );
        if self.count == 0 {
            return Duration::ZERO;
        }
        // q × count in floating point can land just above a whole number
        // (0.07 × 100 = 7.000000000000001): take a value within rounding
        // error of a whole number as that number, not the next one up.
        let exact = q.clamp(0.0, 1.0) * self.count as f64;
        let nearest = exact.round();
        let rank = if (exact - nearest).abs() <= exact * 1e-12 {
            nearest
        } else {
            exact.ceil()
        };
        let rank = (rank as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i == BUCKETS - 1 {
                    return self.max(); // the open-ended last bucket
                }
                let upper = if i == 0 { 0 } else { (1u64 << i) - 1 };
                return Duration::from_micros(upper.min(self.max_us));
            }
        }
        self.max()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("mean", &self.mean())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles_bound_the_samples() {
        let mut h = Histogram::default();
        for us in [0u64, 1, 3, 900, 1000, 1500, 40_000] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 7);
        assert_eq!(h.max(), Duration::from_micros(40_000));
        // 4th of 7 samples is 900 µs: bucket [512, 1024) → reported 1023.
        assert_eq!(h.quantile(0.5), Duration::from_micros(1023));
        assert_eq!(h.quantile(1.0), Duration::from_micros(40_000));
        assert_eq!(h.quantile(0.0), Duration::ZERO);
        assert_eq!(h.mean(), Duration::from_micros(43_404 / 7));
    }

    /// What the docs promise at the edges: zeros when empty, `q` clamped,
    /// and a sample on a power of two starts the next bucket.
    #[test]
    fn an_empty_histogram_is_zero_and_edges_fall_in_the_next_bucket() {
        let empty = Histogram::default();
        assert_eq!(empty.quantile(0.5), Duration::ZERO);
        assert_eq!(empty.mean(), Duration::ZERO);
        assert_eq!(empty.max(), Duration::ZERO);
        let mut h = Histogram::default();
        for us in [1023u64, 1024, 5000] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(-1.0), Duration::from_micros(1023));
        assert_eq!(h.quantile(0.6), Duration::from_micros(2047));
        assert_eq!(h.quantile(2.0), Duration::from_micros(5000));
    }

    /// A NaN `q` has no place in 0..=1 to be clamped to; it used to fall
    /// through every comparison and report the lowest bucket, an answer
    /// that looks like a measurement. It panics, naming itself, with
    /// samples or without.
    #[test]
    fn a_nan_quantile_panics_instead_of_reporting_the_lowest_bucket() {
        let mut h = Histogram::default();
        for h in [h.clone(), {
            h.record(Duration::from_micros(1));
            h.record(Duration::from_micros(5000));
            h
        }] {
            let panic = std::panic::catch_unwind(|| h.quantile(f64::NAN))
                .expect_err("quantile(NaN) returned a duration");
            let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
            assert!(
                message.contains("Histogram::quantile: q is NaN"),
                "{message}"
            );
        }
    }

    #[test]
    fn huge_samples_land_in_the_last_bucket() {
        let mut h = Histogram::default();
        h.record(Duration::from_secs(u64::MAX));
        assert_eq!(h.count(), 1);
        assert_eq!(h.quantile(0.5), h.max());
    }

    /// 0.07 × 100 is 7.000000000000001 in floating point: a rank taken
    /// with a plain `ceil` was the 8th sample, one bucket too high.
    #[test]
    fn a_quantile_s_rank_is_not_moved_by_float_rounding() {
        let mut h = Histogram::default();
        for _ in 0..7 {
            h.record(Duration::from_micros(1));
        }
        for _ in 0..93 {
            h.record(Duration::from_micros(1000));
        }
        assert_eq!(h.quantile(0.07), Duration::from_micros(1));
        // The 8th sample is 1000 µs: its bucket's edge, capped at the max.
        assert_eq!(h.quantile(0.08), Duration::from_micros(1000));
    }
}
