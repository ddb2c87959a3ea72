//! The capacity search: which rate to probe next, decided from the outcomes so far. It is a
//! pure function of the probes of one configuration ([`decide`]): grow geometrically from
//! `from` until the SLO breaks (or `to` is reached), bisect the bracket geometrically until it is
//! no wider than `precision`, then repeat the best passing and the first failing rate `confirm`
//! times each. A repeat that fails at the best passing rate reopens the bracket once: the search
//! bisects again below the rate that flipped, so a knee that is noisy does not leave a whole
//! doubling unsearched (where a regression could hide), then repeats the new ends. The campaign runner drives it, one ordinary step per probe; [`interval`] reads
//! the capacity and its noise back from the same probes, so a saved run can be judged again.
//!
//! Rates are whole requests per second: probe names carry them, and a bracket whose geometric
//! middle rounds onto one of its ends is as narrow as it can get.

use std::time::Duration;

pub use loadgen_model::search::{Ending, ProbeKind, SearchSpec, GROWTH, MIN_PRECISION};

#[cfg(test)]
mod tests;

/// One probe's outcome, as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub rate_rps: f64,
    /// The step met the SLO (valid, and every bound held).
    pub passed: bool,
    pub kind: ProbeKind,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Probe { rate_rps: f64, kind: ProbeKind },
    Done(Ending),
}

/// The next probe of a configuration whose probes so far are `history` (in the order run).
/// `spent` is the search campaign's wall-clock time so far and `probe_cost` the time one more
/// probe is planned to take: the budget is checked before a probe, never cut into one.
pub fn decide(
    spec: &SearchSpec,
    history: &[Probe],
    spent: Duration,
    probe_cost: Duration,
) -> Decision {
    let (rate_rps, kind) = match plan_next(spec, history) {
        Decision::Probe { rate_rps, kind } => (rate_rps, kind),
        done => return done,
    };
    if history.len() >= worst_case_probes(spec) {
        return Decision::Done(Ending::ProbeLimit);
    }
    if spec.budget().is_some_and(|b| spent + probe_cost > b) {
        return Decision::Done(Ending::Budget);
    }
    Decision::Probe { rate_rps, kind }
}

/// How many times a repeat that fails at the best passing rate reopens the bracket: the search
/// bisects again between the highest rate whose every probe passed and the rate that flipped,
/// then repeats the new ends. A further disagreement only widens the spread, so a target that
/// is noisy at its knee cannot keep the search going.
pub const REOPENS: usize = 1;

/// The next probe with neither budget nor probe limit in the way.
fn plan_next(spec: &SearchSpec, history: &[Probe]) -> Decision {
    if history.is_empty() {
        return probe(spec.from_rps.round(), ProbeKind::Grow);
    }
    let round = current_round(history);
    if round.first_repeat.is_none() {
        if let Some(next) = narrow(spec, history, round.bracket) {
            return next;
        }
    }
    confirm(spec, history, round.bracket)
}

/// The round of the search in progress: it begins at the start, or just after a repeat
/// reopened the bracket; its repeats go to the bracket as it stood when they began.
struct Round {
    /// Where the round's first repeat is, if it has begun repeating.
    first_repeat: Option<usize>,
    /// The bracket of every probe before that repeat (of them all, before it).
    bracket: Bracket,
}

fn current_round(history: &[Probe]) -> Round {
    let round_at = |start: usize| {
        let first_repeat = history[start..]
            .iter()
            .position(|p| p.kind == ProbeKind::Confirm)
            .map(|i| start + i);
        let bracket = bracket(&history[..first_repeat.unwrap_or(history.len())]);
        Round {
            first_repeat,
            bracket,
        }
    };
    let mut round = round_at(0);
    let mut reopened = 0;
    while reopened < REOPENS {
        // A repeat of the round's best passing rate that fails reopens it.
        let Some(first) = round.first_repeat else {
            break;
        };
        let flip = history[first..]
            .iter()
            .position(|p| !p.passed && Some(p.rate_rps) == round.bracket.0);
        let Some(at) = flip.map(|i| first + i) else {
            break;
        };
        round = round_at(at + 1);
        reopened += 1;
    }
    round
}

fn probe(rate_rps: f64, kind: ProbeKind) -> Decision {
    Decision::Probe { rate_rps, kind }
}

/// The next growth or bisection probe, or `None` once the bracket is as narrow as asked.
fn narrow(spec: &SearchSpec, history: &[Probe], (pass, fail): Bracket) -> Option<Decision> {
    match (pass, fail) {
        (_, None) => {
            let top = history.iter().map(|p| p.rate_rps).fold(0.0, f64::max);
            let to = spec.to_rps.round();
            (top < to).then(|| probe((top * GROWTH).round().min(to), ProbeKind::Grow))
        }
        (None, Some(_)) => None,
        (Some(p), Some(f)) => {
            let mid = (p * f).sqrt().round();
            let wide = f / p - 1.0 > spec.precision;
            (wide && mid > p && mid < f).then(|| probe(mid, ProbeKind::Bisect))
        }
    }
}

/// The repeats still owed to the bracket's ends, then the end of the search.
fn confirm(spec: &SearchSpec, history: &[Probe], (pass, fail): Bracket) -> Decision {
    let runs = |rate: f64| history.iter().filter(|p| p.rate_rps == rate).count();
    let owed = 1 + spec.confirm as usize;
    for rate in [pass, fail].into_iter().flatten() {
        if runs(rate) < owed {
            return probe(rate, ProbeKind::Confirm);
        }
    }
    Decision::Done(match (pass, fail) {
        (_, None) => Ending::PassedTop,
        (None, Some(_)) => Ending::FailedFrom,
        (Some(_), Some(_)) => Ending::Converged,
    })
}

/// (highest rate below the first failure whose probes all passed, lowest rate that failed).
type Bracket = (Option<f64>, Option<f64>);

fn bracket(history: &[Probe]) -> Bracket {
    let fail = history
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.rate_rps)
        .reduce(f64::min);
    let all_passed = |rate: f64| history.iter().all(|p| p.rate_rps != rate || p.passed);
    let pass = history
        .iter()
        .map(|p| p.rate_rps)
        .filter(|r| fail.is_none_or(|f| *r < f) && all_passed(*r))
        .reduce(f64::max);
    (pass, fail)
}

/// What the probes of one configuration say about its capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The highest rate that passed every one of its probes, below the lowest failure: the
    /// capacity.
    pub passed_rps: Option<f64>,
    /// The lowest rate that failed (any probe).
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
    let (passed_rps, failed_rps) = bracket(history);
    let highest_pass_rps = history
        .iter()
        .filter(|p| p.passed)
        .map(|p| p.rate_rps)
        .reduce(f64::max);
    let mut rates: Vec<f64> = history.iter().map(|p| p.rate_rps).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let repeats = rates
        .into_iter()
        .filter_map(|r| {
            let at: Vec<&Probe> = history.iter().filter(|p| p.rate_rps == r).collect();
            let passes = at.iter().filter(|p| p.passed).count();
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

/// How the probes so far end: what [`decide`] says after the last one, or
/// [`Ending::Unfinished`] when it would have gone on (the run stopped it).
pub fn ending(spec: &SearchSpec, history: &[Probe]) -> Ending {
    match plan_next(spec, history) {
        Decision::Done(e) => e,
        Decision::Probe { .. } if history.len() >= worst_case_probes(spec) => Ending::ProbeLimit,
        Decision::Probe { .. } => Ending::Unfinished,
    }
}

/// The most probes one configuration's search can take, over every possible sequence of
/// outcomes: each end of the last bracket is owed its repeats whatever they say, and a
/// reopened bracket costs its bisections on top (its repeats replace the ones it ended).
pub fn worst_case_probes(spec: &SearchSpec) -> usize {
    let from = spec.from_rps.round();
    let to = spec.to_rps.round();
    let repeats = spec.confirm as usize;
    // The growth rates, as the search offers them.
    let mut grow = vec![from];
    while let Some(&last) = grow.last().filter(|r| **r < to) {
        grow.push((last * GROWTH).round().min(to));
    }
    let halve = |i: usize| match i.checked_sub(1) {
        Some(j) => bisections(spec.precision, grow[j], grow[i]),
        None => 0,
    };
    // A flip at the best passing rate reopens the bracket below it: at most the doubling that
    // ends there, or the one above it when the best pass came from bisecting that one.
    let reopened = |i: usize| {
        if repeats == 0 || REOPENS == 0 {
            0
        } else {
            halve(i).max(i.checked_sub(1).map_or(0, halve))
        }
    };
    // Passing everything: every growth rate, then the repeats of the top.
    let top = grow.len() - 1;
    let mut worst = grow.len() + 2 * repeats + reopened(top);
    for (i, _) in grow.iter().enumerate() {
        let run = i + 1;
        let worst_here = match i {
            // Already `from` failed: only its repeats follow.
            0 => run + repeats,
            _ => run + halve(i) + 2 * repeats + reopened(i),
        };
        worst = worst.max(worst_here);
    }
    worst
}

/// The most bisection probes between `pass` and `fail`, over every outcome.
fn bisections(precision: f64, pass: f64, fail: f64) -> usize {
    let mid = (pass * fail).sqrt().round();
    if fail / pass - 1.0 <= precision || mid <= pass || mid >= fail {
        return 0;
    }
    1 + bisections(precision, mid, fail).max(bisections(precision, pass, mid))
}
