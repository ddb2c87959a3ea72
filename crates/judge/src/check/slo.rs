//! A probe against its search's SLO: whether a saved step meets every bound — as evidence, so
//! an invalid, interrupted or crashed step never passes, and an unmeasured value is a failure,
//! not a pass — what the search makes of it ([`outcome`]: a pass, a failure of the target, or a
//! step the generator spoiled and that is run again), and, when it fails, what the other checks
//! named as the cause.

use super::pct;
use super::threshold::metric_value;
use super::validity::{self, Blame};
use crate::search::Outcome;
use loadgen_model::result::{CheckName, StepResult};
use loadgen_model::slo::Slo;
use loadgen_model::threshold::Metric;

/// The checks that explain a failing probe, most decisive first: a crashed target or a
/// generator that could not keep up say the step measured something else; then what the
/// service did (shed, throttled, saturated, timed out, lost writes).
pub const CAUSES: [CheckName; 11] = [
    CheckName::ReplicaExited,
    CheckName::StoreExited,
    CheckName::Drift,
    CheckName::Validity,
    CheckName::Dropped,
    CheckName::Shedding,
    CheckName::Throttling,
    CheckName::CpuLimitSaturated,
    CheckName::NodeSaturated,
    CheckName::Timeouts,
    CheckName::LostWrites,
];

/// A probe's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct SloVerdict {
    pub passed: bool,
    /// What did not hold, in words; empty when it passed.
    pub broken: Vec<String>,
}

/// Judges a saved step by `slo`.
pub fn judge(step: &StepResult, slo: &Slo) -> SloVerdict {
    let mut broken = Vec::new();
    if step.target_failed {
        broken.push("the target crashed".to_string());
    }
    if !step.valid {
        broken.push("the generator did not keep its schedule (invalid step)".to_string());
    }
    if step.interrupted {
        broken.push("interrupted".to_string());
    }
    for (metric, min, max) in slo.bounds() {
        let value = metric_value(step, metric);
        match (value, min, max) {
            (None, _, _) => broken.push(format!("{} not measured", words(metric))),
            (Some(v), Some(m), _) if v < m => broken.push(format!(
                "{} {} < {}",
                words(metric),
                shown(metric, v),
                shown(metric, m)
            )),
            (Some(v), _, Some(m)) if v > m => broken.push(format!(
                "{} {} > {}",
                words(metric),
                shown(metric, v),
                shown(metric, m)
            )),
            _ => {}
        }
    }
    SloVerdict {
        passed: broken.is_empty(),
        broken,
    }
}

/// What the capacity search makes of a saved probe (the campaign deciding the next rate and a
/// report judging the saved run read it alike). A crashed target failed whatever else went
/// wrong; a step invalid only through the generator's own doing says nothing about the target;
/// any other invalid step fails, as it never passes the SLO.
pub fn outcome(step: &StepResult, slo: &Slo) -> Outcome {
    if step.target_failed {
        return Outcome::Failed;
    }
    if !step.valid {
        return match validity::blame(step) {
            Some(Blame::Generator) => Outcome::GeneratorInvalid,
            Some(Blame::Other) | None => Outcome::Invalid,
        };
    }
    if judge(step, slo).passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    }
}

/// The checks among the step's findings that explain a failure, in [`CAUSES`] order.
pub fn causes(step: &StepResult) -> Vec<CheckName> {
    CAUSES
        .into_iter()
        .filter(|c| step.checks.iter().any(|f| &f.check == c))
        .collect()
}

fn words(metric: Metric) -> &'static str {
    match metric {
        Metric::CountedRatio => "counted",
        Metric::P99Ms => "p99",
        other => other.as_str(),
    }
}

fn shown(metric: Metric, v: f64) -> String {
    match metric {
        Metric::CountedRatio | Metric::SuccessRatio | Metric::AchievedRatio => pct(v),
        _ => format!("{v:.0} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen_model::result::{Finding, Severity};

    fn slo() -> Slo {
        Slo {
            counted_ratio: Some(0.99),
            p99_ms: Some(500.0),
            success_ratio: None,
        }
    }

    #[test]
    fn a_step_within_both_bounds_passes() {
        let mut s = super::super::tests::step(1000, 1000, Some(995));
        s.latency_ms.p99 = Some(20.0);
        assert!(judge(&s, &slo()).passed);
    }

    #[test]
    fn each_broken_bound_is_named_and_unmeasured_is_a_failure() {
        let mut s = super::super::tests::step(1000, 900, Some(900));
        s.latency_ms.p99 = Some(812.0);
        let v = judge(&s, &slo());
        assert!(!v.passed);
        assert_eq!(
            v.broken,
            vec!["counted 90.0 % < 99.0 %", "p99 812 ms > 500 ms"]
        );
        s.latency_ms.p99 = None;
        s.counted_ratio = Some(1.0);
        assert_eq!(judge(&s, &slo()).broken, vec!["p99 not measured"]);
    }

    #[test]
    fn an_invalid_step_never_passes_and_its_cause_comes_first() {
        let mut s = super::super::tests::step(1000, 1000, Some(1000));
        s.latency_ms.p99 = Some(5.0);
        s.valid = false;
        s.checks = vec![
            Finding {
                check: CheckName::Throttling,
                severity: Severity::Warn,
                message: String::new(),
                step: None,
            },
            Finding {
                check: CheckName::Validity,
                severity: Severity::Warn,
                message: String::new(),
                step: None,
            },
        ];
        assert!(!judge(&s, &slo()).passed);
        assert_eq!(causes(&s), vec![CheckName::Validity, CheckName::Throttling]);
    }

    #[test]
    fn the_search_reruns_a_lagging_generator_and_fails_anything_else_invalid() {
        let mut s = super::super::tests::step(1000, 1000, Some(1000));
        s.latency_ms.p99 = Some(5.0);
        assert_eq!(outcome(&s, &slo()), Outcome::Passed);
        s.latency_ms.p99 = Some(900.0);
        assert_eq!(outcome(&s, &slo()), Outcome::Failed);
        // The generator lagged: its p99 describes the generator, the probe is run again.
        s.schedule_lag_ms.p99 = Some(60.0);
        s.valid = false;
        assert_eq!(outcome(&s, &slo()), Outcome::GeneratorInvalid);
        // Drops at the in-flight cap come with a slow target: a failure.
        s.dropped = 10;
        assert_eq!(outcome(&s, &slo()), Outcome::Invalid);
        // A crash is the target's failure, whatever the generator did.
        s.target_failed = true;
        assert_eq!(outcome(&s, &slo()), Outcome::Failed);
    }
}
