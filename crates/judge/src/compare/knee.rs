//! One side's capacity from its probes, pass or fail at each rate: the rate that best
//! separates the passing probes from the failing ones. Of every split of the probed rates into
//! "held" below and "broke" above, the one with the fewest probes on the wrong side wins (a
//! pass above it, a failure below it); the capacity is the geometric middle of its two rates.
//! Splits tied for fewest give the geometric mean of their middles, so a noisy knee lands in
//! the middle of its noise instead of at one end of it.
//!
//! A search's probes are exactly such evidence: growth below and above the knee, bisection at
//! it, repeats at both ends. Unlike the search's own majority bracket this needs no rate run
//! more than once, and it reads pooled repeats of a search as well as one.

/// A probe as evidence: the rate and whether it held the SLO.
pub type Point = (f64, bool);

/// Where the best split falls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knee {
    /// Between two probed rates: the best split's highest held rate, lowest broken one, and
    /// the estimate between them.
    Between {
        passed: f64,
        failed: f64,
        capacity: f64,
        misfits: u32,
    },
    /// Every rate held: the capacity is at least the highest.
    AtLeast(f64),
    /// Every rate broke: the capacity is below the lowest.
    Below(f64),
}

impl Knee {
    /// A number for resampling: a censored knee counts as its bound, which only narrows
    /// differences (never makes one up).
    pub fn value(self) -> f64 {
        match self {
            Knee::Between { capacity, .. } => capacity,
            Knee::AtLeast(r) | Knee::Below(r) => r,
        }
    }
}

/// The knee of `points`; `None` without a single probe.
pub fn knee(points: &[Point]) -> Option<Knee> {
    let rates = tally(points);
    if rates.is_empty() {
        return None;
    }
    // loss(k): failures among the first k rates + passes among the rest.
    let mut loss: u32 = rates.iter().map(|r| r.passed).sum();
    let mut best = (loss, vec![0usize]);
    for (k, r) in rates.iter().enumerate() {
        loss = loss - r.passed + (r.runs - r.passed);
        let k = k + 1;
        if loss < best.0 {
            best = (loss, vec![k]);
        } else if loss == best.0 {
            best.1.push(k);
        }
    }
    let (misfits, splits) = best;
    let m = rates.len();
    let inner: Vec<usize> = splits.iter().copied().filter(|&k| k > 0 && k < m).collect();
    Some(match inner.as_slice() {
        [] if splits.contains(&m) => Knee::AtLeast(rates[m - 1].rate),
        [] => Knee::Below(rates[0].rate),
        ks => {
            let log_mid = |k: usize| (rates[k - 1].rate.ln() + rates[k].rate.ln()) / 2.0;
            let capacity = (ks.iter().map(|&k| log_mid(k)).sum::<f64>() / ks.len() as f64).exp();
            let (first, last) = (ks[0], ks[ks.len() - 1]);
            Knee::Between {
                passed: rates[first - 1].rate,
                failed: rates[last].rate,
                capacity,
                misfits,
            }
        }
    })
}

/// Runs and passes at one rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    pub rate: f64,
    pub runs: u32,
    pub passed: u32,
}

/// The probes grouped by rate, lowest first.
pub fn tally(points: &[Point]) -> Vec<Tally> {
    let mut sorted: Vec<Point> = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Tally> = Vec::new();
    for (rate, passed) in sorted {
        match out.last_mut() {
            Some(t) if t.rate == rate => {
                t.runs += 1;
                t.passed += u32::from(passed);
            }
            _ => out.push(Tally {
                rate,
                runs: 1,
                passed: u32::from(passed),
            }),
        }
    }
    out
}
