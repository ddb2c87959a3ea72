//! The limits of a search: the budget stops it before a probe that would overrun it, the probe
//! limit stops it at the worst case, and the worst case bounds every sequence of outcomes —
//! noisy repeats, lucky first probes, hiccups and a lagging generator included.

use super::*;
use crate::search::worst_case::worst_case_evidence;

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
fn the_budget_counts_re_runs_like_any_probe() {
    let mut s = spec(50.0, 2000.0, 0.05, 3);
    s.budget_s = Some(5.0 * 12.0 + 11.0);
    let (h, end) = replay_outcomes(&s, |r, nth| match (r, nth) {
        (100.0, 0) => Outcome::GeneratorInvalid,
        _ => pass_or_fail(r <= 181.0),
    });
    assert_eq!(end, Ending::Budget);
    assert_eq!(rates(&h), vec![50.0, 100.0, 100.0, 200.0, 141.0]);
}

#[test]
fn the_probe_limit_stops_a_search_at_its_worst_case() {
    // A history as long as the worst case (which the decisions never make) stops the search.
    let s = spec(50.0, 2000.0, 0.05, 2);
    let worst = worst_case_probes(&s);
    let h = vec![
        Probe {
            rate_rps: 50.0,
            outcome: Outcome::Passed,
            kind: ProbeKind::Grow,
        };
        worst
    ];
    assert_eq!(
        decide(&s, &h, Duration::ZERO, PROBE),
        Decision::Done(Ending::ProbeLimit)
    );
    assert_eq!(ending(&s, &h), Ending::ProbeLimit);
    assert!(matches!(
        decide(&s, &h[..worst - 1], Duration::ZERO, PROBE),
        Decision::Probe { .. }
    ));
}

/// Every outcome pattern the bound is tried on, for a knee: clean, one nth probe failing at
/// every rate, a lucky first probe above the knee, a hiccup (the first probe at one rate
/// failing below the knee) and the generator spoiling the first probe at a rate.
fn patterns(knee: f64) -> Vec<Box<dyn Fn(f64, usize) -> Outcome>> {
    let mut out: Vec<Box<dyn Fn(f64, usize) -> Outcome>> = Vec::new();
    for nth_fails in [None, Some(1), Some(2), Some(3)] {
        out.push(Box::new(move |r, nth| {
            pass_or_fail(r <= knee && Some(nth) != nth_fails)
        }));
    }
    for lucky in [1.1, 1.5, 2.0] {
        out.push(Box::new(move |r, nth| {
            pass_or_fail(r <= knee || (nth == 0 && r <= knee * lucky))
        }));
    }
    for below in [0.3, 0.6, 0.9, 0.97] {
        // The first probe at or above `below × knee` that is below the knee fails once.
        out.push(Box::new(move |r, nth| {
            let hiccup = nth == 0 && r >= below * knee && r < (below + 0.03) * knee;
            pass_or_fail(r <= knee && !hiccup)
        }));
    }
    // A hiccup, then the best pass failing its repeats (both kinds of move).
    out.push(Box::new(move |r, nth| {
        let hiccup = nth == 0 && r >= 0.4 * knee && r < 0.6 * knee;
        pass_or_fail((r <= knee && !hiccup) && !(nth >= 1 && r > 0.9 * knee))
    }));
    for spoiled in [0.5, 1.0, 1.5] {
        out.push(Box::new(move |r, nth| {
            if nth == 0 && r >= spoiled * knee * 0.9 && r <= spoiled * knee * 1.1 {
                Outcome::GeneratorInvalid
            } else {
                pass_or_fail(r <= knee)
            }
        }));
    }
    out
}

#[test]
fn the_worst_case_bounds_every_outcome_sequence() {
    for confirm in [0, 1, 2, 3] {
        let s = spec(50.0, 2000.0, 0.05, confirm);
        let worst = worst_case_probes(&s);
        let mut longest = 0;
        for knee in (40..2100).map(f64::from) {
            for outcome in patterns(knee) {
                let (h, end) = replay_outcomes(&s, outcome);
                assert_ne!(end, Ending::ProbeLimit, "knee {knee}: {h:?}");
                let evidence = h.iter().filter(|p| p.outcome.is_evidence()).count();
                assert!(evidence <= worst_case_evidence(&s), "knee {knee}: {h:?}");
                longest = longest.max(h.len());
            }
        }
        assert!(longest <= worst, "{longest} > {worst}");
        // The bound is not loose beyond use: some sequence needs half of it or more (it
        // assumes every round bisects the widest doubling and breaks ties at both ends, and
        // the generator spoils as many probes as it may).
        assert!(
            2 * longest >= worst,
            "confirm {confirm}: {longest} probes at most, bound {worst}"
        );
    }
}

#[test]
fn worst_case_of_a_short_range() {
    // 50, 100, 200 (3 growth rates); 4 bisections at most in one doubling to 10 % (71, 60,
    // 55, 52 in [50, 100]: [50, 55] is just over 10 %); 1 repeat per end and a tie-break
    // each, per round, in two rounds; then the generator's re-runs.
    let s = spec(50.0, 200.0, 0.1, 1);
    assert_eq!(worst_case_evidence(&s), 3 + 2 * (4 + 2 * (1 + 1)));
    assert_eq!(
        worst_case_probes(&s),
        worst_case_evidence(&s) + RERUNS_PER_SEARCH + 1
    );
    // Without repeats nothing turns: growth to the knee and its doubling's bisections (50,
    // 100 failing, then the 4 below it).
    assert_eq!(worst_case_evidence(&spec(50.0, 200.0, 0.1, 0)), 2 + 4);
}
