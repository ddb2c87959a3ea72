//! The search's decisions replayed on recorded outcomes: a clean knee, growth to `to`, a
//! failing `from`, and repeats that move the bracket (here); noise — a hiccup, a generator
//! that lags — in [`noise`]; the budget, the probe limit and the worst case in [`bounds`].

use std::time::Duration;

use super::*;

mod bounds;
mod noise;

pub(super) fn spec(from: f64, to: f64, precision: f64, confirm: u32) -> SearchSpec {
    SearchSpec {
        from_rps: from,
        to_rps: to,
        precision,
        step_s: 10.0,
        confirm,
        budget_s: None,
    }
}

pub(super) const PROBE: Duration = Duration::from_secs(12);

/// Runs the search against `outcome(rate, nth probe at that rate)`, charging [`PROBE`] per
/// probe; returns the probes and how it ended.
pub(super) fn replay_outcomes(
    spec: &SearchSpec,
    outcome: impl Fn(f64, usize) -> Outcome,
) -> (Vec<Probe>, Ending) {
    let mut history: Vec<Probe> = Vec::new();
    for _ in 0..1000 {
        let spent = PROBE * history.len() as u32;
        match decide(spec, &history, spent, PROBE) {
            Decision::Done(e) => {
                // A saved run reads the same ending back (the budget is the campaign's to
                // record: the probes alone read as unfinished).
                if e != Ending::Budget {
                    assert_eq!(ending(spec, &history), e, "{history:?}");
                }
                return (history, e);
            }
            Decision::Probe { rate_rps, kind } => {
                let nth = history.iter().filter(|p| p.rate_rps == rate_rps).count();
                history.push(Probe {
                    rate_rps,
                    outcome: outcome(rate_rps, nth),
                    kind,
                });
            }
        }
    }
    panic!("the search did not end: {history:?}");
}

/// [`replay_outcomes`] with every probe valid: `passed(rate, nth)`.
pub(super) fn replay(
    spec: &SearchSpec,
    passed: impl Fn(f64, usize) -> bool,
) -> (Vec<Probe>, Ending) {
    replay_outcomes(spec, |r, nth| pass_or_fail(passed(r, nth)))
}

pub(super) fn pass_or_fail(passed: bool) -> Outcome {
    if passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    }
}

pub(super) fn rates(h: &[Probe]) -> Vec<f64> {
    h.iter().map(|p| p.rate_rps).collect()
}

#[test]
fn a_monotone_knee_is_grown_to_bisected_and_confirmed() {
    let s = spec(50.0, 2000.0, 0.05, 3);
    let (h, end) = replay(&s, |r, _| r <= 181.0);
    assert_eq!(end, Ending::Converged);
    // 50, 100, 200 (fails), then bisection between 100 and 200.
    assert_eq!(rates(&h)[..3], [50.0, 100.0, 200.0]);
    assert!(h[..3].iter().all(|p| p.kind == ProbeKind::Grow));
    assert_eq!(h[3].kind, ProbeKind::Bisect);
    assert_eq!(h[3].rate_rps, 141.0);
    let iv = interval(&h);
    let (pass, fail) = (iv.passed_rps.unwrap(), iv.failed_rps.unwrap());
    assert!(pass <= 181.0 && fail > 181.0, "{iv:?}");
    assert!(fail / pass - 1.0 <= 0.05, "{iv:?}");
    // Each end of the bracket was run 1 + 3 times, the repeats last.
    assert_eq!(iv.repeats, vec![(pass, 4, 4), (fail, 4, 0)]);
    assert!(h[h.len() - 6..]
        .iter()
        .all(|p| p.kind == ProbeKind::Confirm));
    assert_eq!(iv.spread_rps(), Some(0.0));
    // What it cost before noise was handled, and still does: growth 3 (50, 100, 200),
    // bisections 4 (141, 168, 183, 175), repeats 6.
    assert_eq!(h.len(), 13, "{h:?}");
    assert!(h.len() <= worst_case_probes(&s));
}

#[test]
fn growth_stops_at_to_and_repeats_the_top() {
    let s = spec(50.0, 300.0, 0.05, 2);
    let (h, end) = replay(&s, |_, _| true);
    assert_eq!(end, Ending::PassedTop);
    assert_eq!(rates(&h), vec![50.0, 100.0, 200.0, 300.0, 300.0, 300.0]);
    let iv = interval(&h);
    assert_eq!((iv.passed_rps, iv.failed_rps), (Some(300.0), None));
}

#[test]
fn a_failing_from_is_repeated_and_leaves_no_capacity() {
    let s = spec(50.0, 2000.0, 0.05, 2);
    let (h, end) = replay(&s, |_, _| false);
    assert_eq!(end, Ending::FailedFrom);
    assert_eq!(rates(&h), vec![50.0, 50.0, 50.0]);
    let iv = interval(&h);
    assert_eq!((iv.passed_rps, iv.failed_rps), (None, Some(50.0)));
    assert_eq!(iv.spread_rps(), None);
}

#[test]
fn a_failing_repeat_of_the_best_pass_reopens_the_bracket_below_it() {
    // What a clean-clone CI run met: 200 req/s passed on the way up (a lucky probe: the knee is
    // near 185), every bisection above it failed, and its repeat failed. Without a new
    // bisection the capacity would fall to 100, the last growth rate, and a regression to
    // 150 would not show; reopened, the bracket below 200 is bisected again.
    let s = spec(50.0, 2000.0, 0.05, 1);
    let (h, end) = replay(&s, |r, nth| r <= 185.0 || (r == 200.0 && nth == 0));
    assert_eq!(end, Ending::Converged);
    let flip = h
        .iter()
        .position(|p| p.kind == ProbeKind::Confirm && !p.passed())
        .unwrap();
    assert_eq!(h[flip].rate_rps, 200.0);
    // 1 pass, 1 failure: a tie, broken by one more run before anything moves.
    assert_eq!(h[flip + 1].rate_rps, 200.0);
    assert_eq!(h[flip + 1].kind, ProbeKind::Confirm);
    let after: Vec<&Probe> = h[flip + 2..].iter().collect();
    assert!(
        after
            .iter()
            .any(|p| p.kind == ProbeKind::Bisect && p.rate_rps > 100.0 && p.rate_rps < 200.0),
        "{h:?}"
    );
    let iv = interval(&h);
    let (pass, fail) = (iv.passed_rps.unwrap(), iv.failed_rps.unwrap());
    assert!(pass <= 185.0 && fail > 185.0, "{iv:?}");
    assert!(fail / pass - 1.0 <= 0.05, "{iv:?}");
    // The new ends are repeated; the lucky pass stays visible as spread.
    assert!(
        iv.repeats.iter().any(|(r, n, _)| *r == pass && *n == 2),
        "{iv:?}"
    );
    assert!(iv.repeats.contains(&(200.0, 3, 1)), "{iv:?}");
    assert_eq!(iv.highest_pass_rps, Some(200.0));
    assert_eq!(iv.spread_rps(), Some(200.0 - pass));
    assert!(h.len() <= worst_case_probes(&s), "{} probes", h.len());
}

#[test]
fn a_second_turned_majority_only_shows_in_the_interval() {
    // Every rate passes its first probe up to 400 and fails every later one: the first best
    // pass to turn reopens the bracket, the second (the new best pass) does not.
    let s = spec(50.0, 2000.0, 0.05, 2);
    let (h, end) = replay(&s, |r, nth| r <= 400.0 && nth == 0);
    assert_eq!(end, Ending::Converged);
    // The first failing repeat at each rate that had passed.
    let mut flips: Vec<usize> = (0..h.len())
        .filter(|&i| {
            h[i].kind == ProbeKind::Confirm
                && !h[i].passed()
                && h[..i]
                    .iter()
                    .any(|q| q.rate_rps == h[i].rate_rps && q.passed())
        })
        .collect();
    flips.dedup_by_key(|i| h[*i].rate_rps.to_bits());
    assert!(flips.len() >= 2, "{h:?}");
    let bisections_after = |i: usize| {
        h[i + 1..]
            .iter()
            .filter(|p| p.kind == ProbeKind::Bisect)
            .count()
    };
    assert!(bisections_after(flips[0]) > 0, "{h:?}");
    assert_eq!(bisections_after(flips[1]), 0, "{h:?}");
    // The second best pass failed by majority: the capacity is read below it.
    let iv = interval(&h);
    assert!(iv.passed_rps.unwrap() < h[flips[1]].rate_rps, "{iv:?}");
    assert!(iv.spread_rps().unwrap() > 0.0, "{iv:?}");
    assert!(h.len() <= worst_case_probes(&s), "{} probes", h.len());
}

#[test]
fn a_failing_repeat_at_the_top_reopens_below_it() {
    let s = spec(50.0, 300.0, 0.05, 1);
    let (h, end) = replay(&s, |r, nth| r < 260.0 || (r == 300.0 && nth == 0));
    assert_eq!(end, Ending::Converged);
    let iv = interval(&h);
    let (pass, fail) = (iv.passed_rps.unwrap(), iv.failed_rps.unwrap());
    assert!(
        pass < 260.0 && fail >= 260.0 && fail / pass - 1.0 <= 0.05,
        "{iv:?}"
    );
    assert!(h.len() <= worst_case_probes(&s));
}
