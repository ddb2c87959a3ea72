//! The cross-check: does Prometheus' view of a step agree with loadgen's direct readings (the
//! service's counter delta, the cgroup CPU)? Pure: it reads a finished [`StepResult`].
//!
//! Tolerances, and why they are not tighter:
//! - counter: 10 % (or [`COUNTER_SLACK`] clicks, for tiny steps). The local reading is taken at
//!   the window's edges; the value at `start` is interpolated between two scrapes, and clicks
//!   of the warm-up just before `start` fall on either side of it. With `increase()` (external
//!   Prometheus, Kubernetes) both edges are extrapolated by up to half a scrape interval.
//! - CPU: 20 % (or [`CPU_SLACK_CORES`]). `rate()` extrapolates at both edges too, the process
//!   counts CPU in 10 ms ticks, and `process_cpu_seconds_total` is the process while the cgroup
//!   also counts its children and is read at slightly different instants.
//! - A step shorter than [`MIN_SCRAPES`] scrape intervals holds too few samples for either:
//!   that is a `warn` of its own, whatever the numbers say.

use loadgen_model::result::{CheckName, Finding, Severity, StepResult};
use loadgen_model::step_id::StepId;

/// Counter agreement tolerance, relative to the direct delta.
pub const COUNTER_TOLERANCE: f64 = 0.10;
/// Absolute slack on the counter, in clicks (a 10 % band is meaningless on 5 clicks).
pub const COUNTER_SLACK: f64 = 2.0;
/// CPU agreement tolerance, relative to the cgroup reading.
pub const CPU_TOLERANCE: f64 = 0.20;
/// Absolute slack on CPU, in cores (an idle replica's 0.01 core is all tick noise).
pub const CPU_SLACK_CORES: f64 = 0.02;
/// Fewest scrape intervals a step must span for its Prometheus view to mean anything.
pub const MIN_SCRAPES: f64 = 4.0;

/// Compares `step.prometheus` with `step.counter.delta` and `step.cpu.cores_used`. Nothing
/// when the step has no Prometheus view (not asked for, or `observe` already said why).
pub fn cross_check(step: &StepResult) -> Vec<Finding> {
    let Some(view) = &step.prometheus else {
        return Vec::new();
    };
    let finding = |check: CheckName, severity, message| Finding {
        check,
        severity,
        message,
        step: Some(step.id()),
    };
    let mut out = Vec::new();
    if let Some(interval) = view.scrape_interval_s.filter(|i| *i > 0.0) {
        if view.window_s < MIN_SCRAPES * interval {
            out.push(finding(
                CheckName::PrometheusWindow,
                Severity::Warn,
                format!(
                    "step lasted {:.1} s, fewer than {MIN_SCRAPES} scrape intervals of {interval} s: \
                     prometheus' numbers for it rest on too few samples",
                    view.window_s
                ),
            ));
        }
    }
    let direct_delta = step.counter.as_ref().and_then(|c| c.delta);
    if let Some(prom) = view.counter_increase {
        out.push(match direct_delta {
            None => finding(
                CheckName::PrometheusCounter,
                Severity::Info,
                format!("prometheus counted {prom:.0} clicks; no direct counter delta to compare"),
            ),
            Some(d) => compare(
                "clicks counted",
                prom,
                d as f64,
                COUNTER_TOLERANCE,
                COUNTER_SLACK,
                "counter delta",
            )
            .into_finding(CheckName::PrometheusCounter, step.id()),
        });
    }
    let direct_cpu = step.cpu.as_ref().and_then(|c| c.cores_used);
    if let Some(prom) = view.cpu_cores_used {
        out.push(match direct_cpu {
            None => finding(
                CheckName::PrometheusCpu,
                Severity::Info,
                format!("prometheus saw {prom:.3} cores; no cgroup reading to compare"),
            ),
            Some(c) => compare(
                "cores used",
                prom,
                c,
                CPU_TOLERANCE,
                CPU_SLACK_CORES,
                "cgroup reading",
            )
            .into_finding(CheckName::PrometheusCpu, step.id()),
        });
    }
    out
}

/// The result of comparing a Prometheus number with its direct counterpart.
struct Comparison {
    agrees: bool,
    message: String,
}

impl Comparison {
    fn into_finding(self, check: CheckName, step: StepId) -> Finding {
        Finding {
            check,
            severity: if self.agrees {
                Severity::Info
            } else {
                Severity::Warn
            },
            message: self.message,
            step: Some(step),
        }
    }
}

fn compare(
    what: &str,
    prom: f64,
    direct: f64,
    tolerance: f64,
    slack: f64,
    direct_name: &str,
) -> Comparison {
    let diff = prom - direct;
    let allowed = (tolerance * direct.abs()).max(slack);
    let agrees = diff.abs() <= allowed;
    let rel = if direct != 0.0 {
        format!("{:+.1} %", 100.0 * diff / direct)
    } else {
        format!("{diff:+.3}")
    };
    let verdict = if agrees {
        "agrees with"
    } else {
        "disagrees with"
    };
    Comparison {
        agrees,
        message: format!(
            "prometheus {what} {prom:.3} {verdict} the {direct_name} {direct:.3} ({rel}; \
             tolerance {:.0} % or {slack})",
            tolerance * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_uses_the_larger_of_relative_and_absolute_band() {
        assert!(compare("x", 109.0, 100.0, 0.10, 2.0, "d").agrees);
        assert!(!compare("x", 111.0, 100.0, 0.10, 2.0, "d").agrees);
        assert!(compare("x", 5.0, 3.0, 0.10, 2.0, "d").agrees);
        assert!(!compare("x", 6.0, 3.0, 0.10, 2.0, "d").agrees);
    }
}
