//! The pacer as a pure function of elapsed time: constant rates, ramps, instant steps and seeded
//! Poisson arrivals, checked against their analytic due times with injected (not real) time.

use std::time::Duration;

use loadgen_engine::load::{Arrival, Load, Stage};
use loadgen_engine::pacer::{Pacer, PacerError};

fn stage(secs: f64, from: f64, to: f64) -> Stage {
    Stage {
        duration: Duration::from_secs_f64(secs),
        from_rps: from,
        to_rps: to,
    }
}

fn all_dues(load: &Load) -> Vec<f64> {
    let mut p = Pacer::new(load).unwrap();
    let mut v = Vec::new();
    while let Some(d) = p.next_due() {
        v.push(d.as_secs_f64());
        assert!(v.len() < 10_000_000, "pacer does not end");
    }
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn constant_rate_is_evenly_spaced_from_zero() {
    let load = Load::constant(1000.0, Duration::from_secs(2));
    let d = all_dues(&load);
    assert_eq!(d.len(), 2000);
    for (i, t) in d.iter().enumerate() {
        assert!(close(*t, i as f64 / 1000.0), "request {i} due at {t}");
    }
    let p = Pacer::new(&load).unwrap();
    assert_eq!(p.due_by(Duration::ZERO), 1);
    assert_eq!(p.due_by(Duration::from_micros(999_500)), 1000);
    assert_eq!(p.due_by(Duration::from_secs(2)), 2000);
    assert_eq!(p.due_by(Duration::from_secs(60)), 2000);
}

#[test]
fn fractional_totals_keep_every_due_time_inside_the_duration() {
    // 2.5 req/s for 1 s: due at 0, 0.4, 0.8 — the next one (1.2 s) is past the end.
    let d = all_dues(&Load::constant(2.5, Duration::from_secs(1)));
    assert_eq!(d.len(), 3);
    assert!(close(d[2], 0.8));
}

#[test]
fn ramp_follows_the_integral_of_a_linear_rate() {
    // 0 → 100 req/s over 10 s: N(t) = 5 t², 500 requests, request i due at sqrt(i / 5).
    let load = Load {
        stages: vec![stage(10.0, 0.0, 100.0)],
        arrival: Arrival::Uniform,
    };
    let d = all_dues(&load);
    assert_eq!(d.len(), 500);
    for (i, t) in d.iter().enumerate() {
        assert!(close(*t, (i as f64 / 5.0).sqrt()), "request {i} due at {t}");
    }
    let p = Pacer::new(&load).unwrap();
    // By t = 5 s, N = 125: requests 0..=125 are due.
    assert_eq!(p.due_by(Duration::from_secs(5)), 126);
    assert!(close(p.expected_count(Duration::from_secs(5)), 125.0));
    // A ramp down mirrors it: 100 → 0 over 10 s also gives 500 requests, dense first.
    let down = all_dues(&Load {
        stages: vec![stage(10.0, 100.0, 0.0)],
        arrival: Arrival::Uniform,
    });
    assert_eq!(down.len(), 500);
    assert!(down[1] - down[0] < down[499] - down[498]);
}

#[test]
fn instant_step_changes_the_spacing_at_the_boundary() {
    let load = Load {
        stages: vec![
            stage(1.0, 10.0, 10.0),
            stage(0.0, 10.0, 100.0),
            stage(1.0, 100.0, 100.0),
        ],
        arrival: Arrival::Uniform,
    };
    let d = all_dues(&load);
    assert_eq!(d.len(), 110);
    assert!(close(d[9], 0.9));
    assert!(close(d[10], 1.0));
    assert!(close(d[11], 1.01));
    assert!(close(d[109], 1.99));
    let p = Pacer::new(&load).unwrap();
    for (i, t) in d.iter().enumerate() {
        // Consistency of the two views: request i is due by t_i, and exactly i+1 are.
        assert_eq!(
            p.due_by(Duration::from_secs_f64(*t + 1e-9)),
            i as u64 + 1,
            "at {t}"
        );
    }
}

#[test]
fn poisson_arrivals_have_the_right_mean_and_spread_and_repeat_with_the_seed() {
    let load = Load {
        stages: vec![stage(10.0, 1000.0, 1000.0)],
        arrival: Arrival::Poisson { seed: 7 },
    };
    let d = all_dues(&load);
    // Count ~ Poisson(10000): sd 100; 5 sd is a bound a correct pacer never crosses.
    assert!(
        (d.len() as f64 - 10_000.0).abs() < 500.0,
        "{} arrivals",
        d.len()
    );
    let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    assert!((mean - 0.001).abs() < 0.00005, "mean gap {mean}");
    // Exponential gaps: coefficient of variation 1 (evenly spaced would be 0).
    let cv = var.sqrt() / mean;
    assert!((cv - 1.0).abs() < 0.05, "cv {cv}");
    assert!(
        d.windows(2).all(|w| w[1] >= w[0]),
        "due times must not go back"
    );
    assert_eq!(d, all_dues(&load), "same seed, same arrivals");
    let other = all_dues(&Load {
        arrival: Arrival::Poisson { seed: 8 },
        ..load.clone()
    });
    assert_ne!(d, other);
    let p = Pacer::new(&load).unwrap();
    assert_eq!(p.due_by(Duration::from_secs(20)), d.len() as u64);
}

#[test]
fn poisson_on_a_ramp_follows_the_rate() {
    // 0 → 2000 req/s over 10 s: 10000 expected, 2500 in the first half, 7500 in the second.
    let load = Load {
        stages: vec![stage(10.0, 0.0, 2000.0)],
        arrival: Arrival::Poisson { seed: 3 },
    };
    let d = all_dues(&load);
    let first_half = d.iter().filter(|t| **t < 5.0).count() as f64;
    assert!((first_half - 2500.0).abs() < 250.0, "{first_half}");
    assert!((d.len() as f64 - 10_000.0).abs() < 500.0);
}

#[test]
fn profiles_that_cannot_be_paced_are_errors() {
    let bad = |stages| {
        Pacer::new(&Load {
            stages,
            arrival: Arrival::Uniform,
        })
        .unwrap_err()
    };
    assert_eq!(bad(vec![]), PacerError::Empty);
    assert!(matches!(
        bad(vec![stage(1.0, -1.0, 5.0)]),
        PacerError::BadRate(0, _, _)
    ));
    assert!(matches!(
        bad(vec![stage(1.0, f64::NAN, 5.0)]),
        PacerError::BadRate(..)
    ));
    assert_eq!(bad(vec![stage(0.0, 5.0, 5.0)]), PacerError::NoRequests);
    assert_eq!(bad(vec![stage(3.0, 0.0, 0.0)]), PacerError::NoRequests);
}

#[test]
fn high_rates_stay_exact_over_long_runs() {
    // 20k req/s for an hour: the last due time is still exact to the nanosecond scale.
    let load = Load::constant(20_000.0, Duration::from_secs(3600));
    let mut p = Pacer::new(&load).unwrap();
    assert_eq!(p.due_by(Duration::from_secs(3600)), 72_000_000);
    let p2 = Pacer::new(&load).unwrap();
    assert_eq!(p2.due_by(Duration::from_secs_f64(1800.0)), 36_000_001);
    assert_eq!(p.next_due(), Some(Duration::ZERO));
}
