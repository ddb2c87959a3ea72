//! The capacity search: which rate to probe next, decided from the outcomes so far. It is a
//! pure function of the probes of one configuration ([`decide`]): grow geometrically from
//! `from` until the SLO breaks (or `to` is reached), bisect the bracket geometrically until it is
//! no wider than `precision`, then repeat the best passing and the first failing rate `confirm`
//! times each. The campaign runner drives it, one ordinary step per probe; [`interval`] reads
//! the capacity and its noise back from the same probes, so a saved run can be judged again.
//!
//! Noise must not fool it, in three ways:
//! - A probe the generator spoiled ([`Outcome::GeneratorInvalid`]: it could not keep its
//!   schedule) says nothing about the target: it is left out of every verdict, so the same
//!   probe is decided again — a re-run. Re-runs are bounded ([`RERUNS_PER_RATE`],
//!   [`RERUNS_PER_SEARCH`]); past them the configuration ends [`Ending::GeneratorLimited`].
//! - A rate's verdict is the majority of its probes, a tie counting as a failure until it is
//!   broken: a repeat that ties an end of the bracket is run once more first. So one failure
//!   that its repeats contradict does not cap the capacity, and one lucky pass does not hold it.
//! - A repeat that moves an end of the bracket (its majority turned) starts a new round, once
//!   ([`REOPENS`]): the search bisects again below a best pass that flipped, so a noisy knee
//!   does not leave a whole doubling unsearched, or grows and bisects again above a failure
//!   its repeats overturned, so a hiccup early in the search does not cap it.
//!
//! Rates are whole requests per second: probe names carry them, and a bracket whose geometric
//! middle rounds onto one of its ends is as narrow as it can get.

use std::time::Duration;

pub use loadgen_model::search::{Ending, ProbeKind, SearchSpec, GROWTH, MIN_PRECISION};

mod interval;
mod worst_case;

pub use interval::{interval, Interval};
pub use worst_case::worst_case_probes;

#[cfg(test)]
mod tests;

/// What one probe says about the target (`check::slo::outcome` reads it from a saved step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Valid, and every bound of the SLO held.
    Passed,
    /// The target broke the SLO, or crashed.
    Failed,
    /// Invalid through the generator's own doing (schedule lag, its CPU saturated or
    /// throttled): no evidence either way, so it is run again.
    GeneratorInvalid,
    /// Invalid for another reason (drops at the in-flight cap, a missing shard): a failure, as
    /// an invalid step never passes.
    Invalid,
}

impl Outcome {
    pub fn passed(self) -> bool {
        self == Outcome::Passed
    }

    /// Whether it counts against its rate.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Invalid)
    }

    /// Whether it says anything about the target at all.
    pub fn is_evidence(self) -> bool {
        self != Outcome::GeneratorInvalid
    }
}

/// One probe's outcome, as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub rate_rps: f64,
    pub outcome: Outcome,
    pub kind: ProbeKind,
}

impl Probe {
    /// The step met the SLO (valid, and every bound held).
    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Probe { rate_rps: f64, kind: ProbeKind },
    Done(Ending),
}

/// How many times one rate is re-run after the generator spoiled it: a generator that cannot
/// hold a rate three times over will not hold it on a fourth try.
pub const RERUNS_PER_RATE: usize = 2;
/// How many re-runs one configuration's search gets in all: a generator that keeps lagging at
/// different rates is on a machine too busy to measure on, and the worst case stays bounded.
pub const RERUNS_PER_SEARCH: usize = 4;

/// How many times a repeat that moves an end of the bracket starts a new round of narrowing:
/// below a best pass whose majority turned to failure, above a failure whose majority turned
/// to passes. A further move only shows in the interval (as spread, or a capacity read from
/// the majority), so a target that is noisy at its knee cannot keep the search going.
pub const REOPENS: usize = 1;

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

/// How the probes so far end: what [`decide`] says after the last one, or
/// [`Ending::Unfinished`] when it would have gone on (the run stopped it).
pub fn ending(spec: &SearchSpec, history: &[Probe]) -> Ending {
    match plan_next(spec, history) {
        Decision::Done(e) => e,
        Decision::Probe { .. } if history.len() >= worst_case_probes(spec) => Ending::ProbeLimit,
        Decision::Probe { .. } => Ending::Unfinished,
    }
}

/// The next probe with neither budget nor probe limit in the way. A probe the generator
/// spoiled is left out, so the decision before it is made again: that is the re-run.
fn plan_next(spec: &SearchSpec, history: &[Probe]) -> Decision {
    if generator_limited(history) {
        return Decision::Done(Ending::GeneratorLimited);
    }
    let evidence: Vec<Probe> = history
        .iter()
        .filter(|p| p.outcome.is_evidence())
        .copied()
        .collect();
    plan_evidence(spec, &evidence)
}

/// Whether the last probe was spoiled by the generator once too often: the third time at its
/// rate, or the fifth in the search.
fn generator_limited(history: &[Probe]) -> bool {
    let spoiled = |p: &&Probe| p.outcome == Outcome::GeneratorInvalid;
    let Some(last) = history.last().filter(spoiled) else {
        return false;
    };
    let at_rate = history
        .iter()
        .filter(spoiled)
        .filter(|p| p.rate_rps == last.rate_rps)
        .count();
    at_rate > RERUNS_PER_RATE || history.iter().filter(spoiled).count() > RERUNS_PER_SEARCH
}

/// The next probe from the probes that are evidence.
fn plan_evidence(spec: &SearchSpec, history: &[Probe]) -> Decision {
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

/// The round of the search in progress: it begins at the start, or just after a repeat moved
/// an end of the bracket; its repeats go to the bracket as it stood when they began.
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
    for _ in 0..REOPENS {
        let Some(first) = round.first_repeat else {
            break;
        };
        // A repeat after which the majority puts an end elsewhere, no end being tied (a tie
        // is broken first: it is not yet a majority either way).
        let moved = (first..history.len()).find(|&i| {
            let seen = &history[..=i];
            !tied_end(seen, round.bracket) && bracket(seen) != round.bracket
        });
        let Some(at) = moved else {
            break;
        };
        round = round_at(at + 1);
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

/// A tie at an end of the bracket is broken first, then each end gets the repeats still owed
/// to it; then the search ends.
fn confirm(spec: &SearchSpec, history: &[Probe], (pass, fail): Bracket) -> Decision {
    let owed = 1 + spec.confirm as usize;
    let ends = [pass, fail].into_iter().flatten();
    let next = ends
        .clone()
        .find(|&r| tally(history, r).tied())
        .or_else(|| ends.clone().find(|&r| tally(history, r).runs < owed));
    if let Some(rate) = next {
        return probe(rate, ProbeKind::Confirm);
    }
    Decision::Done(match (pass, fail) {
        (_, None) => Ending::PassedTop,
        (None, Some(_)) => Ending::FailedFrom,
        (Some(_), Some(_)) => Ending::Converged,
    })
}

/// The probes at one rate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tally {
    runs: usize,
    passes: usize,
}

impl Tally {
    /// The majority passed: the rate holds.
    fn held(self) -> bool {
        2 * self.passes > self.runs
    }

    fn tied(self) -> bool {
        self.runs > 0 && 2 * self.passes == self.runs
    }
}

fn tally(history: &[Probe], rate: f64) -> Tally {
    let at = history.iter().filter(|p| p.rate_rps == rate);
    Tally {
        runs: at.clone().count(),
        passes: at.filter(|p| p.passed()).count(),
    }
}

fn tied_end(history: &[Probe], (pass, fail): Bracket) -> bool {
    [pass, fail]
        .into_iter()
        .flatten()
        .any(|r| tally(history, r).tied())
}

/// (highest rate below the lowest failing one whose majority passed, lowest rate whose
/// majority did not pass — a tie included, until it is broken).
type Bracket = (Option<f64>, Option<f64>);

/// The bracket of probes that are all evidence.
fn bracket(history: &[Probe]) -> Bracket {
    let mut rates: Vec<f64> = history.iter().map(|p| p.rate_rps).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let fail = rates.iter().copied().find(|&r| !tally(history, r).held());
    let pass = rates.iter().copied().rfind(|&r| fail.is_none_or(|f| r < f));
    (pass, fail)
}
