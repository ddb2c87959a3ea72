//! The interval of a capacity ratio: a percentile bootstrap that keeps the search's design.
//! Each resample keeps every probed rate and its number of runs, and draws each run's outcome
//! again from what that rate showed, smoothed by half a pass and half a failure
//! (`(passed + ½) / (runs + 1)`): a rate run once is not taken as certain, a rate that passed
//! three times out of three still fails now and then. The side's knee is found again
//! ([`super::knee`]) and the capacity drawn log-uniformly between the best split's two rates —
//! bisection only says the knee is somewhere in that gap. The interval is the middle `level` of
//! the ratios head ÷ base. (Resampling whole probes instead would drop the few probes a search
//! puts at its knee and jump a doubling away: intervals of ±25 % on a clean knee.) The
//! generator is seeded: the same probes always give the same interval.

use super::knee::{knee, tally, Knee, Point, Tally};

/// A ratio and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioInterval {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

/// head ÷ base with its `level` percentile interval over `resamples` resamples; `None` when a
/// side has no probe.
pub fn ratio_interval(
    base: &[Point],
    head: &[Point],
    resamples: u32,
    level: f64,
    seed: u64,
) -> Option<RatioInterval> {
    let ratio = knee(head)?.value() / knee(base)?.value();
    let mut rng = SplitMix64(seed);
    let (base, head) = (tally(base), tally(head));
    let mut ratios: Vec<f64> = (0..resamples.max(1))
        .filter_map(|_| {
            let b = draw(&base, &mut rng)?;
            let h = draw(&head, &mut rng)?;
            Some(h / b)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    Some(RatioInterval {
        ratio,
        low: percentile(&ratios, tail),
        high: percentile(&ratios, 1.0 - tail),
    })
}

/// One resample's capacity of a side whose probes are `rates`.
fn draw(rates: &[Tally], rng: &mut SplitMix64) -> Option<f64> {
    let mut points: Vec<Point> = Vec::new();
    for t in rates {
        let p = f64::from(t.passed) / f64::from(t.runs);
        points.extend((0..t.runs).map(|_| (t.rate, rng.unit() < p)));
    }
    Some(match knee(&points)? {
        Knee::Between { passed, failed, .. } => {
            (passed.ln() + rng.unit() * (failed.ln() - passed.ln())).exp()
        }
        k => k.value(),
    })
}

/// The `q` quantile of sorted `v` (nearest rank).
fn percentile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// A small, seeded generator (SplitMix64): the resampling needs reproducibility, not a crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
