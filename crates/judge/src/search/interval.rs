//! What the probes of one configuration say about its capacity, read the same way whether the
//! search finished or not: the bracket by majority ([`super::bracket`]), how far above it a
//! rate still passed sometimes, and the rates run more than once. A probe the generator
//! spoiled is no evidence and is left out of all of it.

use super::{bracket, Probe};

/// What the probes of one configuration say about its capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The highest rate whose probes passed by majority, below the lowest rate whose probes
    /// did not: the capacity.
    pub passed_rps: Option<f64>,
    /// The lowest rate whose probes did not pass by majority (a tie does not).
    pub failed_rps: Option<f64>,
    /// The highest rate that passed at least once: above `passed_rps` when repeats disagreed.
    pub highest_pass_rps: Option<f64>,
    /// Rates probed more than once: (rate, runs, passes), by rate.
    pub repeats: Vec<(f64, usize, usize)>,
}

impl Interval {
    /// How far above the capacity a rate still passed sometimes: 0 when every repeat agreed
    /// with the bracket, `None` without a capacity.
    pub fn spread_rps(&self) -> Option<f64> {
        let passed = self.passed_rps?;
        Some((self.highest_pass_rps.unwrap_or(passed) - passed).max(0.0))
    }
}

/// The capacity interval the probes show (the same reading whether the search finished or not).
pub fn interval(history: &[Probe]) -> Interval {
    let evidence: Vec<Probe> = history
        .iter()
        .filter(|p| p.outcome.is_evidence())
        .copied()
        .collect();
    let (passed_rps, failed_rps) = bracket(&evidence);
    let highest_pass_rps = evidence
        .iter()
        .filter(|p| p.passed())
        .map(|p| p.rate_rps)
        .reduce(f64::max);
    let mut rates: Vec<f64> = evidence.iter().map(|p| p.rate_rps).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let repeats = rates
        .into_iter()
        .filter_map(|r| {
            let at: Vec<&Probe> = evidence.iter().filter(|p| p.rate_rps == r).collect();
            let passes = at.iter().filter(|p| p.passed()).count();
            (at.len() > 1).then_some((r, at.len(), passes))
        })
        .collect();
    Interval {
        passed_rps,
        failed_rps,
        highest_pass_rps,
        repeats,
    }
}
