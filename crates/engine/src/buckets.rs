//! Fixed-bound histograms for a live metrics exposition: counts per upper bound, the count and
//! the exact sum, kept beside the step's HdrHistograms so a Prometheus scrape can read
//! `_bucket`, `_count` and `_sum` without walking an HdrHistogram on the engine's thread.
//! The bounds are chosen for load-test latencies (½ ms to 30 s); percentiles of a step still
//! come from its HdrHistograms only.

/// Upper bounds of the buckets, in seconds (the `le` labels; `+Inf` is implied).
pub const BOUNDS_S: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// [`BOUNDS_S`] in microseconds, the unit the recorder has at hand.
const BOUNDS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Observations per bucket (not cumulative; [`Buckets::cumulative`] adds them up), the
/// count and the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buckets {
    /// Index i counts values in (BOUNDS[i-1], BOUNDS[i]]; the last, values above every bound.
    per_bucket: [u64; 16],
    count: u64,
    sum_us: u64,
}

impl Buckets {
    /// Counts one value in microseconds (a handful of comparisons: it runs per request).
    pub fn record(&mut self, us: u64) {
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.per_bucket[i] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Cumulative counts for each bound of [`BOUNDS_S`] (the `+Inf` bucket is [`Buckets::count`]).
    pub fn cumulative(&self) -> [u64; 15] {
        let mut out = [0; 15];
        let mut acc = 0;
        for (o, n) in out.iter_mut().zip(self.per_bucket) {
            acc += n;
            *o = acc;
        }
        out
    }

    /// Observations in each bucket alone: (upper bound in seconds, count), the last bound
    /// `+Inf` (what an encoder that adds them up itself wants).
    pub fn per_bucket(&self) -> [(f64, u64); 16] {
        let mut out = [(f64::INFINITY, 0); 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (
                BOUNDS_S.get(i).copied().unwrap_or(f64::INFINITY),
                self.per_bucket[i],
            );
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the values, in seconds.
    pub fn sum_s(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }

    /// Adds `other`'s observations (a finished step's into a run's total).
    pub fn add(&mut self, other: &Buckets) {
        for (a, b) in self.per_bucket.iter_mut().zip(other.per_bucket) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_a_bound_counts_in_that_bound_and_sums_are_exact() {
        let mut b = Buckets::default();
        for us in [1, 500, 501, 30_000_000, 30_000_001] {
            b.record(us);
        }
        let c = b.cumulative();
        assert_eq!(c[0], 2, "1 µs and 500 µs are ≤ 0.5 ms");
        assert_eq!(c[1], 3, "501 µs is ≤ 1 ms");
        assert_eq!(c[14], 4, "30 s is ≤ 30 s, 30.000001 s is not");
        assert_eq!(b.count(), 5);
        let per = b.per_bucket();
        assert_eq!(
            (per[0], per[1], per[14]),
            ((0.0005, 2), (0.001, 1), (30.0, 1))
        );
        assert_eq!(per[15], (f64::INFINITY, 1));
        assert!((b.sum_s() - 60.001003).abs() < 1e-9, "{}", b.sum_s());
        let mut total = Buckets::default();
        total.add(&b);
        total.add(&b);
        assert_eq!(total.cumulative()[1], 6);
        assert_eq!(total.count(), 10);
    }

    #[test]
    fn bounds_in_seconds_and_microseconds_agree() {
        for (s, us) in BOUNDS_S.iter().zip(BOUNDS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }
}
