//! Step validity: did the generator keep its schedule (and, in a pod, escape its own CFS
//! quota), so that the step says something about the target? The verdict (`valid`,
//! `invalid_reason`), whose doing an invalid step is ([`blame`]: the generator's own, or not),
//! and the findings that explain it (interrupted, dropped, waiting for connections) are pure
//! functions of a saved step.

use std::time::Duration;

use super::finding;
use loadgen_model::result::{CheckName, Finding, Severity, StepResult};

/// A step is invalid when the schedule lag p99 exceeds this: the generator was not sending
/// when it meant to, so latency and rate describe the generator, not the target. 10 ms is ten
/// ticks of tokio's 1 ms timer, far above the lag of a generator that keeps up (see
/// docs/engine.md) and far below the latencies a capacity test looks for.
pub const MAX_LAG_P99: Duration = Duration::from_millis(10);
/// A step is invalid when the generator's engine used this share of the cores it may use.
pub const CPU_SATURATION: f64 = 0.90;

/// A step is invalid when the generator's own cgroup was throttled in more than this share of
/// its CFS periods (a pod's CPU limit): its schedule then depended on its quota, not on it.
pub const GENERATOR_THROTTLED: f64 = 0.01;

/// Whose doing a reason for invalidity is: the capacity search re-runs a probe the generator
/// spoiled, but counts any other invalid probe as a failure (an invalid step never passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The generator itself: schedule lag, its CPU saturated or its cgroup throttled, a shard
    /// that started late. The target may have been fine.
    Generator,
    /// Anything else: requests dropped at the in-flight cap (a slow target fills it), a shard
    /// missing or invalid for a reason only its text keeps.
    Other,
}

/// The verdict on the generator: `Some(reason)` when the step is invalid.
pub fn invalid_reason(step: &StepResult) -> Option<String> {
    let reasons: Vec<String> = reasons(step).into_iter().map(|(_, r)| r).collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Whose doing the step's invalidity is, from the same reasons as [`invalid_reason`]:
/// [`Blame::Generator`] only when every reason is the generator's own; `None` when valid.
pub fn blame(step: &StepResult) -> Option<Blame> {
    let reasons = reasons(step);
    if reasons.is_empty() {
        None
    } else if reasons.iter().all(|(b, _)| *b == Blame::Generator) {
        Some(Blame::Generator)
    } else {
        Some(Blame::Other)
    }
}

/// Every reason the step is invalid, with whose doing it is.
fn reasons(step: &StepResult) -> Vec<(Blame, String)> {
    let mut reasons = Vec::new();
    if step.dropped > 0 {
        let cap = step
            .generator
            .in_flight_cap
            .map_or(String::new(), |c| format!(" {c}"));
        reasons.push((
            Blame::Other,
            format!(
                "generator dropped {} of {} due requests (in-flight cap{cap} reached)",
                step.dropped, step.intended
            ),
        ));
    }
    if let Some(p99) = step.schedule_lag_ms.p99 {
        let bound_ms = MAX_LAG_P99.as_secs_f64() * 1000.0;
        if p99 > bound_ms {
            reasons.push((
                Blame::Generator,
                format!(
                    "schedule lag p99 {p99:.1} ms > {} ms: the generator did not send on time",
                    MAX_LAG_P99.as_millis()
                ),
            ));
        }
    }
    if let (Some(used), Some(avail)) = (
        step.generator.cpu_cores_used,
        step.generator.cpu_cores_available,
    ) {
        if avail > 0.0 && used >= CPU_SATURATION * avail {
            reasons.push((
                Blame::Generator,
                format!(
                    "generator CPU saturated: {used:.2} of {avail:.0} core(s) (>= {:.0} %)",
                    CPU_SATURATION * 100.0
                ),
            ));
        }
    }
    if let Some(g) = step.cpu.as_ref().and_then(|c| c.generator.as_ref()) {
        if let Some(t) = g.throttled_ratio.filter(|t| *t > GENERATOR_THROTTLED) {
            reasons.push((
                Blame::Generator,
                format!(
                    "the generator's own cgroup was throttled in {:.1} % of its CFS periods \
                     (> {:.0} %): give its pod whole cores (requests = limits) or more of them",
                    t * 100.0,
                    GENERATOR_THROTTLED * 100.0
                ),
            ));
        }
    }
    shard_reasons(step, &mut reasons);
    // The target changed under the step without loadgen: it measured another shape.
    for f in &step.checks {
        if f.check == CheckName::Drift && f.severity == Severity::Fail {
            reasons.push((Blame::Other, f.message.clone()));
        }
    }
    reasons
}

/// A shard that started later than the lag bound ran a shifted schedule; a merged step is
/// invalid when any of its shards is, or is missing (each reason kept, by shard).
fn shard_reasons(step: &StepResult, reasons: &mut Vec<(Blame, String)>) {
    let Some(sharding) = &step.sharding else {
        return;
    };
    let bound_ms = MAX_LAG_P99.as_secs_f64() * 1000.0;
    if let Some(late) = sharding.part.as_ref().and_then(|p| p.late_ms) {
        if late > bound_ms {
            reasons.push((
                Blame::Generator,
                format!(
                    "started {late:.1} ms after the shards' start time (> {} ms): its schedule ran shifted",
                    MAX_LAG_P99.as_millis()
                ),
            ));
        }
    }
    for s in &sharding.shards {
        match (&s.missing, &s.invalid_reason) {
            (Some(why), _) => {
                reasons.push((Blame::Other, format!("shard {} missing: {why}", s.index)))
            }
            (None, Some(why)) => {
                reasons.push((Blame::Other, format!("shard {} invalid: {why}", s.index)))
            }
            (None, None) => {}
        }
    }
}

pub(super) fn findings(step: &StepResult, out: &mut Vec<Finding>) {
    if step.interrupted {
        out.push(finding(
            CheckName::Interrupted,
            Severity::Warn,
            step,
            format!(
                "step was cut short; its counts cover {} of {} intended requests",
                step.sent + step.dropped,
                step.intended
            ),
        ));
    }
    if !step.valid {
        let why = step
            .invalid_reason
            .as_deref()
            .unwrap_or("no reason recorded");
        out.push(finding(
            CheckName::Validity,
            Severity::Warn,
            step,
            // Whose doing it was is in the reasons: the generator's (lag, its CPU), the load's
            // (drops), or the target's (it changed under the step, a shard missing).
            format!("step invalid ({why}): these numbers say nothing about the target's capacity"),
        ));
    }
    let wait = &step.connection_wait_ms;
    if let (true, Some(p99)) = (wait.count > 0, wait.p99) {
        out.push(finding(
            CheckName::ConnectionWait,
            Severity::Info,
            step,
            match (step.generator.pool_cap_waits, step.generator.pool_cap) {
                (Some(n), Some(cap)) if n > 0 => format!(
                    "{} requests waited for a connection (p99 {p99:.1} ms): {n} found all {cap} connections of the pool busy (its cap), the others waited for connects to complete; the wait is part of their latency",
                    wait.count
                ),
                _ => format!(
                    "{} requests waited for a connection to the target (p99 {p99:.1} ms): connects were not completing, i.e. the target was slow to accept; the wait is part of their latency",
                    wait.count
                ),
            },
        ));
    }
    if step.dropped > 0 {
        out.push(finding(
            CheckName::Dropped,
            Severity::Warn,
            step,
            format!(
                "{} due requests were dropped by the generator (in-flight cap reached) and never sent",
                step.dropped
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen_model::result::LatencySummary;

    #[test]
    fn drops_lag_and_a_saturated_generator_invalidate() {
        let mut s = super::super::tests::step(3, 2, Some(2));
        s.dropped = 1;
        s.sent = 2;
        s.generator.in_flight_cap = Some(7);
        assert!(invalid_reason(&s)
            .unwrap()
            .contains("dropped 1 of 3 due requests (in-flight cap 7 reached)"));
        s.dropped = 0;
        assert_eq!(invalid_reason(&s), None);
        s.schedule_lag_ms = LatencySummary {
            count: 10,
            p99: Some(10.001),
            ..Default::default()
        };
        assert!(invalid_reason(&s)
            .unwrap()
            .contains("schedule lag p99 10.0 ms > 10 ms"));
        s.schedule_lag_ms.p99 = Some(10.0);
        assert_eq!(invalid_reason(&s), None);
        s.generator.cpu_cores_used = Some(0.95);
        s.generator.cpu_cores_available = Some(1.0);
        assert!(invalid_reason(&s)
            .unwrap()
            .contains("generator CPU saturated"));
        s.generator.cpu_cores_used = None;
        s.cpu = Some(loadgen_model::result::CpuReading {
            generator: Some(loadgen_model::result::CgroupCpuView {
                throttled_ratio: Some(0.2),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(invalid_reason(&s)
            .unwrap()
            .contains("own cgroup was throttled in 20.0 %"));
    }

    #[test]
    fn a_step_the_target_drifted_under_is_invalid_and_a_warning_alone_is_not() {
        let mut s = super::super::tests::step(3, 3, Some(3));
        let drift = |severity, message: &str| Finding {
            check: CheckName::Drift,
            severity,
            message: message.into(),
            step: None,
        };
        s.checks
            .push(drift(Severity::Warn, "pod p runs with cpu limit 500m"));
        assert_eq!(invalid_reason(&s), None);
        s.checks.push(drift(
            Severity::Fail,
            "deployment web changed during the step",
        ));
        assert_eq!(
            invalid_reason(&s).as_deref(),
            Some("deployment web changed during the step")
        );
        assert_eq!(blame(&s), Some(Blame::Other));
    }

    #[test]
    fn lag_alone_is_the_generators_doing_drops_are_not() {
        let mut s = super::super::tests::step(3, 3, Some(3));
        assert_eq!(blame(&s), None);
        s.schedule_lag_ms = LatencySummary {
            count: 10,
            p99: Some(40.0),
            ..Default::default()
        };
        assert_eq!(blame(&s), Some(Blame::Generator));
        s.generator.cpu_cores_used = Some(0.95);
        s.generator.cpu_cores_available = Some(1.0);
        assert_eq!(blame(&s), Some(Blame::Generator));
        // Drops beside the lag: a slow target fills the in-flight cap, so the lag alone does
        // not clear the target.
        s.dropped = 1;
        assert_eq!(blame(&s), Some(Blame::Other));
        s.schedule_lag_ms.p99 = Some(1.0);
        s.generator.cpu_cores_used = None;
        assert_eq!(blame(&s), Some(Blame::Other));
    }
}
