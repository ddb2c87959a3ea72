//! The rule on synthetic probe sets: the knee, the verdicts, and the rule's error rates over
//! many simulated A/A and A/B comparisons driven by the real search decisions.

use super::*;
use crate::search::{decide, Decision, Probe, ProbeKind};
use std::time::Duration;

#[test]
fn a_clean_knee_is_the_geometric_middle_of_the_last_pass_and_the_first_failure() {
    let k = knee(&[
        (400.0, true),
        (800.0, true),
        (1600.0, false),
        (1000.0, false),
    ])
    .unwrap();
    let Knee::Between {
        passed,
        failed,
        capacity,
        misfits,
    } = k
    else {
        panic!("{k:?}")
    };
    assert_eq!((passed, failed, misfits), (800.0, 1000.0, 0));
    assert!((capacity - (800.0f64 * 1000.0).sqrt()).abs() < 1e-9);
}

#[test]
fn a_noisy_knee_lands_between_its_noise_and_censored_knees_say_which_way() {
    // A failure at 900 between passes at 800 and 1000: the two best splits (one misfit each)
    // are 800|900 and 1000|1100; the capacity is between them, not at either end.
    let pts = [
        (800.0, true),
        (900.0, false),
        (1000.0, true),
        (1100.0, false),
    ];
    let Some(Knee::Between {
        capacity, misfits, ..
    }) = knee(&pts)
    else {
        panic!()
    };
    assert_eq!(misfits, 1);
    assert!(capacity > 900.0 && capacity < 1000.0, "{capacity}");
    assert_eq!(
        knee(&[(100.0, true), (200.0, true)]),
        Some(Knee::AtLeast(200.0))
    );
    assert_eq!(
        knee(&[(100.0, false), (200.0, false)]),
        Some(Knee::Below(100.0))
    );
    assert_eq!(knee(&[]), None);
}

#[test]
fn the_rule_needs_both_a_material_difference_and_an_interval_clear_of_half_the_tolerance() {
    let r = rule(0.05);
    let at = |ratio, low, high| judge(RatioInterval { ratio, low, high }, &r);
    assert_eq!(at(0.80, 0.74, 0.86).0, Verdict::Regressed);
    assert_eq!(at(1.25, 1.15, 1.30).0, Verdict::Improved);
    // (ratio, low, high), the verdict, and what its reason must say.
    let cases = [
        (
            (0.97, 0.93, 0.99),
            Verdict::Unchanged,
            &["within the 5 % tolerance"][..],
        ),
        (
            (0.90, 0.78, 1.02),
            Verdict::Unchanged,
            &["reaches 0.975", "head/base 0.900 (-10.0 %)"],
        ),
        // Below 1 but not below 1 − tolerance / 2: no difference that matters is shown.
        ((0.90, 0.80, 0.98), Verdict::Unchanged, &[]),
        (
            (0.90, 0.80, 0.97),
            Verdict::Regressed,
            &["interval is below 0.975"],
        ),
        ((1.10, 1.02, 1.20), Verdict::Unchanged, &["reaches 1.025"]),
    ];
    for ((ratio, low, high), verdict, says) in cases {
        let (v, why) = at(ratio, low, high);
        assert_eq!(v, verdict, "{why}");
        for phrase in says {
            assert!(why.contains(phrase), "{why}");
        }
    }
    assert_eq!(at(1.10, 1.03, 1.20).0, Verdict::Improved);
}

#[test]
fn a_repeat_starts_a_third_below_the_knee_found_so_far() {
    let s = spec();
    let warm = warm_start(&s, &[(800.0, true), (1600.0, false), (1200.0, true)]);
    let knee = (1200.0f64 * 1600.0).sqrt();
    assert_eq!(warm.from_rps, (knee / 1.5).round());
    assert_eq!(warm_start(&s, &[(800.0, true)]).from_rps, s.from_rps);
}

fn spec() -> SearchSpec {
    SearchSpec {
        from_rps: 400.0,
        to_rps: 40_000.0,
        precision: 0.05,
        step_s: 2.0,
        confirm: 2,
        budget_s: None,
    }
}

/// A target whose probe at `rate` passes with a probability falling smoothly through ½ at
/// `capacity` (a logistic in log-rate; `noise` ≈ the relative spread of one probe's knee).
struct Target {
    capacity: f64,
    noise: f64,
}

impl Target {
    fn passes(&self, rate: f64, rng: &mut u64) -> bool {
        let z = (rate.ln() - self.capacity.ln()) / self.noise;
        uniform(rng) < 1.0 / (1.0 + z.exp())
    }
}

fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// One side's probes over `repeats` searches, each repeat warm-started as `loadgen compare`
/// does.
fn searched(target: &Target, repeats: usize, rng: &mut u64) -> Vec<Point> {
    let mut all: Vec<Point> = Vec::new();
    for _ in 0..repeats {
        let spec = warm_start(&spec(), &all);
        let mut history: Vec<Probe> = Vec::new();
        while let Decision::Probe { rate_rps, kind } =
            decide(&spec, &history, Duration::ZERO, Duration::ZERO)
        {
            let passed = target.passes(rate_rps, rng);
            let outcome = if passed {
                Outcome::Passed
            } else {
                Outcome::Failed
            };
            history.push(Probe {
                rate_rps,
                outcome,
                kind,
            });
            all.push((rate_rps, passed));
        }
        assert!(history.iter().any(|p| p.kind == ProbeKind::Confirm));
    }
    all
}

/// Of `n` simulated comparisons of base and head at capacities 1000 and `1000 × ratio`, with
/// knee noise `noise`, how many ended regressed and how many improved.
fn verdicts(ratio: f64, noise: f64, n: u64) -> (usize, usize) {
    let r = rule(TOLERANCE);
    let (mut regressed, mut improved) = (0, 0);
    for seed in 0..n {
        let mut rng = seed.wrapping_mul(7919).wrapping_add(1);
        let mut side = |capacity| searched(&Target { capacity, noise }, 2, &mut rng);
        let base = side(1000.0);
        let head = side(1000.0 * ratio);
        let ri = ratio_interval(&base, &head, 400, r.level, seed).unwrap();
        match judge(ri, &r).0 {
            Verdict::Regressed => regressed += 1,
            Verdict::Improved => improved += 1,
            _ => {}
        }
    }
    (regressed, improved)
}

// A false alarm either way is one: a same build called improved is as wrong a claim as one
// called regressed (a real CI run once called an A/A comparison improved).
#[test]
fn same_capacities_rarely_raise_a_false_alarm_either_way() {
    let (regressed, improved) = verdicts(1.0, 0.02, 400);
    eprintln!("2 % noise, 400 A/A: {regressed} regressed, {improved} improved");
    assert_eq!((regressed, improved), (0, 0), "2 % noise, 400 A/A");
    let (regressed, improved) = verdicts(1.0, 0.05, 400);
    eprintln!("5 % noise, 400 A/A: {regressed} regressed, {improved} improved");
    // The rule's stated rate: at most 1.5 % (docs/ci.md); 17 of 400 with the interval's edge
    // at 1 instead of half the tolerance.
    assert!(
        regressed + improved <= 6,
        "5 % noise: {regressed} regressed and {improved} improved in 400 A/A comparisons"
    );
}

#[test]
fn a_twenty_percent_loss_is_caught_and_a_ten_percent_loss_often() {
    let caught_20 = verdicts(0.8, 0.02, 100).0;
    let caught_10 = verdicts(0.9, 0.02, 100).0;
    let noisy_20 = verdicts(0.8, 0.05, 100).0;
    let noisy_10 = verdicts(0.9, 0.05, 100).0;
    eprintln!(
        "caught in 100: 2 % noise: 20 % loss {caught_20}, 10 % {caught_10}; \
         5 % noise: 20 % loss {noisy_20}, 10 % {noisy_10}"
    );
    assert!(caught_20 >= 95, "20 % loss caught {caught_20} times in 100");
    assert!(caught_10 >= 50, "10 % loss caught {caught_10} times in 100");
    assert!(
        noisy_20 >= 80,
        "5 % noise: 20 % loss caught {noisy_20} times in 100"
    );
}
