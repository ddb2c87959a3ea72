//! Threshold findings: each threshold of the scenario against each step it applies to — a
//! `fail` for a broken bound, and a `fail` too for a metric that was not measured: a gate that
//! could not be evaluated has not held (an unmeasured value neither passes nor silently fails).

use super::finding;
use loadgen_model::result::{CheckName, Finding, Severity, StepResult};
use loadgen_model::threshold::{Metric, Threshold};

/// The value a threshold's metric names, for one step (`None`: unmeasured).
pub fn metric_value(step: &StepResult, metric: Metric) -> Option<f64> {
    match metric {
        Metric::CountedRatio => step.counted_ratio,
        Metric::SuccessRatio => step.success_ratio,
        Metric::P50Ms => step.latency_ms.p50,
        Metric::P90Ms => step.latency_ms.p90,
        Metric::P99Ms => step.latency_ms.p99,
        Metric::P999Ms => step.latency_ms.p999,
        Metric::MaxMs => step.latency_ms.max,
        Metric::AchievedRatio => step.achieved_rps.map(|a| a / step.rate_rps),
        Metric::Dropped => Some(step.dropped as f64),
    }
}

/// Threshold findings over the steps that ran.
pub fn findings(thresholds: &[Threshold], steps: &[StepResult]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in thresholds {
        for step in steps.iter().filter(|s| t.applies_to(&s.id())) {
            let bound = t.bound();
            match metric_value(step, t.metric) {
                None => out.push(finding(
                    CheckName::Threshold,
                    Severity::Fail,
                    step,
                    format!(
                        "threshold {} {bound} could not be evaluated: not measured",
                        t.metric
                    ),
                )),
                Some(v) if t.is_broken_by(v) => out.push(finding(
                    CheckName::Threshold,
                    Severity::Fail,
                    step,
                    format!("threshold broken: {} = {v:.4}, expected {bound}", t.metric),
                )),
                Some(_) => {}
            }
        }
    }
    out
}
