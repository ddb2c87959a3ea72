//! The search's decisions replayed on recorded outcomes: a clean knee, a knee with a noisy
//! failure below it, a failing repeat reopening the bracket (once), the budget, and the worst
//! case being a true bound.

use std::time::Duration;

use super::*;

fn spec(from: f64, to: f64, precision: f64, confirm: u32) -> SearchSpec {
    SearchSpec {
        from_rps: from,
        to_rps: to,
        precision,
        step_s: 10.0,
        confirm,
        budget_s: None,
    }
}

const PROBE: Duration = Duration::from_secs(12);

/// Runs the search against `outcome(rate, nth probe at that rate)`, charging [`PROBE`] per
/// probe; returns the probes and how it ended.
fn replay(spec: &SearchSpec, outcome: impl Fn(f64, usize) -> bool) -> (Vec<Probe>, Ending) {
    let mut history: Vec<Probe> = Vec::new();
    for _ in 0..1000 {
        let spent = PROBE * history.len() as u32;
        match decide(spec, &history, spent, PROBE) {
            Decision::Done(e) => return (history, e),
            Decision::Probe { rate_rps, kind } => {
                let nth = history.iter().filter(|p| p.rate_rps == rate_rps).count();
                history.push(Probe {
                    rate_rps,
                    passed: outcome(rate_rps, nth),
                    kind,
                });
            }
        }
    }
    panic!("the search did not end: {history:?}");
}

fn rates(h: &[Probe]) -> Vec<f64> {
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
fn a_non_monotone_outcome_brackets_the_first_failure_and_shows_the_spread() {
    // 100 req/s fails once (a hiccup) although the knee is near 180: the growth stops there,
    // and the repeats of 100 pass, which the spread shows instead of hiding.
    let s = spec(50.0, 2000.0, 0.05, 2);
    let (h, end) = replay(&s, |r, nth| r <= 181.0 && !(r == 100.0 && nth == 0));
    assert_eq!(end, Ending::Converged);
    let iv = interval(&h);
    assert_eq!(iv.failed_rps, Some(100.0));
    let pass = iv.passed_rps.unwrap();
    assert!((96.0..100.0).contains(&pass), "{iv:?}");
    assert_eq!(iv.highest_pass_rps, Some(100.0));
    assert_eq!(iv.spread_rps(), Some(100.0 - pass));
    assert!(iv.repeats.contains(&(100.0, 3, 2)), "{iv:?}");
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
        .position(|p| p.kind == ProbeKind::Confirm && !p.passed)
        .unwrap();
    assert_eq!(h[flip].rate_rps, 200.0);
    let after: Vec<&Probe> = h[flip + 1..].iter().collect();
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
    assert_eq!(iv.highest_pass_rps, Some(200.0));
    assert_eq!(iv.spread_rps(), Some(200.0 - pass));
    assert!(h.len() <= worst_case_probes(&s), "{} probes", h.len());
}

#[test]
fn a_second_failing_repeat_only_widens_the_spread() {
    // Every rate passes its first probe up to 400 and fails every later one: the first flip
    // reopens the bracket, the second (at the new best pass) does not.
    let s = spec(50.0, 2000.0, 0.05, 2);
    let (h, end) = replay(&s, |r, nth| r <= 400.0 && nth == 0);
    assert_eq!(end, Ending::Converged);
    let flips: Vec<usize> = (0..h.len())
        .filter(|&i| {
            h[i].kind == ProbeKind::Confirm
                && !h[i].passed
                && h[..i]
                    .iter()
                    .any(|q| q.rate_rps == h[i].rate_rps && q.passed)
        })
        .collect();
    assert!(flips.len() >= 2, "{h:?}");
    let bisections_after = |i: usize| {
        h[i + 1..]
            .iter()
            .filter(|p| p.kind == ProbeKind::Bisect)
            .count()
    };
    assert!(bisections_after(flips[0]) > 0, "{h:?}");
    assert_eq!(bisections_after(flips[1]), 0, "{h:?}");
    let iv = interval(&h);
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

#[test]
fn the_budget_stops_before_a_probe_that_would_overrun_it() {
    let mut s = spec(50.0, 2000.0, 0.05, 3);
    // Room for five probes of 12 s, not six.
    s.budget_s = Some(5.0 * 12.0 + 11.0);
    let (h, end) = replay(&s, |r, _| r <= 181.0);
    assert_eq!(end, Ending::Budget);
    assert_eq!(h.len(), 5);
    // Where it got: a bracket, not yet confirmed.
    let iv = interval(&h);
    assert!(iv.passed_rps.is_some() && iv.failed_rps.is_some(), "{iv:?}");
    assert_eq!(ending(&s, &h), Ending::Unfinished);
}

#[test]
fn the_worst_case_bounds_every_outcome_sequence() {
    let s = spec(50.0, 2000.0, 0.05, 3);
    let worst = worst_case_probes(&s);
    let mut longest = 0;
    // Every knee from 40 to 2100 req/s: clean, with each rate's nth probe failing (a noisy
    // repeat, or a lucky first probe), and with a lucky first probe up to twice the knee.
    for knee in (40..2100).map(f64::from) {
        for nth_fails in [None, Some(1), Some(2), Some(3)] {
            let (h, end) = replay(&s, |r, nth| r <= knee && Some(nth) != nth_fails);
            assert_ne!(end, Ending::ProbeLimit, "knee {knee}: {h:?}");
            longest = longest.max(h.len());
        }
        for lucky in [1.1, 1.5, 2.0] {
            let (h, end) = replay(&s, |r, nth| r <= knee || (nth == 0 && r <= knee * lucky));
            assert_ne!(end, Ending::ProbeLimit, "knee {knee} × {lucky}: {h:?}");
            longest = longest.max(h.len());
        }
    }
    assert!(longest <= worst, "{longest} > {worst}");
    // The bound is close: some sequence needs nearly all of it.
    assert!(
        longest + 2 >= worst,
        "{longest} probes at most, bound {worst}"
    );
}

#[test]
fn worst_case_of_a_short_range() {
    // 50, 100, 200 (fails); 3 bisections of [100, 200] to 10 % (141, 119, 109: all fail); the
    // repeat of 100 fails too, which reopens [50, 100]: 4 bisections (71, 60, 55, 52 — [50, 55]
    // is 10 %, 52 splits it once more); one repeat of the new best pass; 100 already ran twice.
    let s = spec(50.0, 200.0, 0.1, 1);
    assert_eq!(worst_case_probes(&s), 3 + 3 + 1 + 4 + 1);
    let (h, _) = replay(&s, |r, nth| {
        r < 52.0 || (r == 100.0 && nth == 0) || r == 50.0
    });
    assert_eq!(h.len(), 12, "{h:?}");
}
