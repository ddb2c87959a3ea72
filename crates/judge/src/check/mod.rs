//! Checks: pure functions that read a saved step's measurements and draw [`Finding`]s —
//! whether the step is valid evidence ([`validity`]), whether the four counts reconcile and why
//! not ([`reconcile`]), CPU throttling, saturation and balance ([`cpu`]), the Prometheus
//! cross-check ([`prometheus`]), the scenario's thresholds ([`threshold`]), and a capacity
//! search's probes against its SLO ([`slo`]) and the capacity they show ([`capacity`]), and how
//! an autoscale step's HPA reacted ([`autoscale`]). They never
//! measure anything (ARCHITECTURE.md rule 4); [`judge`] applies them to a step, and a report applies them
//! again to a saved run.

pub mod autoscale;
pub mod capacity;
pub mod cpu;
pub mod prometheus;
pub mod reconcile;
pub mod slo;
pub mod threshold;
pub mod validity;

use loadgen_model::result::{CampaignResult, CheckName, Finding, Severity, StepResult};

pub(crate) fn finding(
    check: CheckName,
    severity: Severity,
    step: &StepResult,
    message: String,
) -> Finding {
    Finding {
        check,
        severity,
        message,
        step: Some(step.id()),
    }
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// All findings drawn from one step's measurements. `node_cpus` is the machine's CPU count,
/// when known. The step's own `valid` and `invalid_reason` must already be its verdict.
pub fn step_findings(step: &StepResult, node_cpus: Option<u32>) -> Vec<Finding> {
    // The cross-check first: run.json has always listed it right after the Prometheus view.
    let mut out = prometheus::cross_check(step);
    validity::findings(step, &mut out);
    reconcile::findings(step, &mut out);
    reconcile::shedding(step, &mut out);
    cpu::findings(step, node_cpus, &mut out);
    cpu::balance(step, &mut out);
    autoscale::findings(step, &mut out);
    out
}

/// The step with its verdict drawn from its measurements: `valid`, `invalid_reason` and
/// `checks`. Findings recorded while measuring ([`CheckName::is_recorded`]) are kept; every
/// other check is drawn again, so judging a judged step changes nothing.
pub fn judge(step: StepResult, node_cpus: Option<u32>) -> StepResult {
    let invalid_reason = validity::invalid_reason(&step);
    let measured = StepResult {
        valid: invalid_reason.is_none(),
        invalid_reason,
        checks: step
            .checks
            .iter()
            .filter(|f| f.check.is_recorded())
            .cloned()
            .collect(),
        ..step
    };
    let mut checks = measured.checks.clone();
    checks.extend(step_findings(&measured, node_cpus));
    StepResult { checks, ..measured }
}

/// A whole run judged again from its saved measurements: every step through [`judge`], the
/// thresholds saved with it (a run saved before thresholds were kept keeps its threshold
/// findings as saved), and the capacity of each searched configuration.
pub fn judge_run(run: CampaignResult) -> CampaignResult {
    let node_cpus = run.machine.cpus;
    let steps: Vec<StepResult> = run
        .steps
        .iter()
        .cloned()
        .map(|s| judge(s, node_cpus))
        .collect();
    let findings = match &run.thresholds {
        Some(thresholds) => {
            let mut f: Vec<Finding> = run
                .findings
                .iter()
                .filter(|f| f.check != CheckName::Threshold)
                .cloned()
                .collect();
            f.extend(threshold::findings(thresholds, &thresholded(&run, &steps)));
            f
        }
        None => run.findings.clone(),
    };
    let judged = CampaignResult {
        steps,
        findings,
        ..run
    };
    CampaignResult {
        capacities: capacity::capacities(&judged),
        ..judged
    }
}

/// The steps thresholds bound: all but a search's probes, which its SLO judges (a probe past
/// the capacity fails by design).
pub fn thresholded(run: &CampaignResult, steps: &[StepResult]) -> Vec<StepResult> {
    steps
        .iter()
        .filter(|s| !run.is_probe(&s.id()))
        .cloned()
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use loadgen_model::result::*;
    use loadgen_model::threshold::{Metric, Threshold};

    pub(crate) fn step(intended: u64, ok: u64, delta: Option<i64>) -> StepResult {
        StepResult {
            campaign: Some("A".into()),
            name: "s".into(),
            rate_rps: 100.0,
            duration_s: 10.0,
            started_at: None,
            ended_at: None,
            intended,
            sent: intended,
            dropped: 0,
            ok,
            failed: intended - ok,
            outcomes: OutcomeCounts {
                ok,
                timeout: intended - ok,
                ..Default::default()
            },
            achieved_rps: Some(100.0),
            success_ratio: Some(ok as f64 / intended as f64),
            latency_ms: LatencySummary::default(),
            service_time_ms: LatencySummary::default(),
            schedule_lag_ms: LatencySummary::default(),
            connection_wait_ms: LatencySummary::default(),
            timeline: vec![],
            scaling: vec![],
            histogram: None,
            generator: GeneratorHealth::default(),
            topology: None,
            // A counter is configured; `None` is one that could not be read.
            counter: Some(CounterReading {
                before: delta.map(|_| 0),
                after: delta.map(|d| d as u64),
                delta,
                ..CounterReading::default()
            }),
            counted_ratio: delta.map(|d| d as f64 / intended as f64),
            cpu: None,
            prometheus: None,
            valid: true,
            invalid_reason: None,
            interrupted: false,
            target_failed: false,
            checks: vec![],
            sharding: None,
            per_endpoint: Vec::new(),
            tls: None,
            timing: None,
        }
    }

    fn checks_of(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.check.as_str(), f.severity)).collect()
    }

    #[test]
    fn lost_writes_fail() {
        let f = step_findings(&step(100, 90, Some(80)), None);
        assert!(
            checks_of(&f).contains(&("lost_writes", Severity::Fail)),
            "{f:?}"
        );
        assert!(f
            .iter()
            .any(|f| f.message.contains("10 acknowledged clicks were lost")));
    }

    #[test]
    fn timeouts_explain_extra_counts() {
        let f = step_findings(&step(100, 90, Some(95)), None);
        let rec = f.iter().find(|f| f.check == "counter_reconcile").unwrap();
        assert_eq!(rec.severity, Severity::Info);
        assert!(rec.message.contains("5 more clicks"), "{}", rec.message);
    }

    #[test]
    fn unexplained_extra_counts_warn() {
        let mut s = step(100, 90, Some(99));
        s.outcomes.timeout = 2;
        let f = step_findings(&s, None);
        let rec = f.iter().find(|f| f.check == "counter_reconcile").unwrap();
        assert_eq!(rec.severity, Severity::Warn);
    }

    #[test]
    fn unread_counter_is_a_warning_not_zero() {
        let f = step_findings(&step(100, 100, None), None);
        let rec = f.iter().find(|f| f.check == "counter_reconcile").unwrap();
        assert_eq!(rec.severity, Severity::Warn);
        assert!(rec.message.contains("unknown, not zero"));
    }

    #[test]
    fn without_a_counter_the_verdict_says_it_rests_on_the_client() {
        let s = StepResult {
            counter: None,
            ..step(100, 100, None)
        };
        let f = step_findings(&s, None);
        let rec = f.iter().find(|f| f.check == "counter_reconcile").unwrap();
        assert_eq!(rec.severity, Severity::Info);
        assert!(
            rec.message.contains("client's view alone"),
            "{}",
            rec.message
        );
    }

    #[test]
    fn a_counter_that_went_backwards_fails_and_has_no_delta() {
        let mut s = step(100, 100, None);
        s.counter = Some(CounterReading {
            before: Some(500),
            after: Some(20),
            delta: None,
            went_back: true,
            ..CounterReading::default()
        });
        let f = step_findings(&s, None);
        let rec = f.iter().find(|f| f.check == "counter_reconcile").unwrap();
        assert_eq!(rec.severity, Severity::Fail);
        assert!(
            rec.message.contains("went backwards (500 before"),
            "{}",
            rec.message
        );
    }

    #[test]
    fn throttling_and_imbalance_are_named() {
        let mut s = step(100, 100, Some(100));
        s.topology = Some(TopologyView {
            replicas: 2,
            cpu_limit_cores: Some(1.0),
            store: "redis".into(),
            autoscale: None,
            tls: false,
        });
        s.cpu = Some(CpuReading {
            cores_used: Some(1.5),
            throttled_ratio: Some(0.3),
            node_cores_used: Some(1.95),
            window_s: Some(10.0),
            per_replica: vec![
                ReplicaCpu {
                    replica: 0,
                    cores_used: Some(0.97),
                    throttled_ratio: Some(0.4),
                    requests: Some(800),
                    ..Default::default()
                },
                ReplicaCpu {
                    replica: 1,
                    cores_used: Some(0.5),
                    throttled_ratio: Some(0.0),
                    requests: Some(200),
                    ..Default::default()
                },
            ],
            generator: None,
        });
        let f = step_findings(&s, Some(2));
        let c = checks_of(&f);
        assert!(c.contains(&("throttling", Severity::Warn)), "{c:?}");
        assert!(c.contains(&("cpu_limit_saturated", Severity::Info)));
        assert!(c.contains(&("imbalance", Severity::Warn)));
        assert!(c.contains(&("node_saturated", Severity::Warn)));
        assert_eq!(f.iter().filter(|f| f.check == "throttling").count(), 1);
    }

    #[test]
    fn thresholds_fail_warn_and_pass() {
        let steps = vec![step(100, 100, Some(100)), {
            let mut s = step(100, 50, Some(50));
            s.name = "t".into();
            s
        }];
        let t = Threshold {
            metric: Metric::CountedRatio,
            min: Some(0.99),
            max: None,
            steps: vec!["A/*".into()],
        };
        let f = threshold::findings(std::slice::from_ref(&t), &steps);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Fail);
        assert_eq!(
            f[0].step.as_ref().map(ToString::to_string).as_deref(),
            Some("A/t")
        );

        let mut unmeasured = steps.clone();
        unmeasured[0].counted_ratio = None;
        let t2 = Threshold {
            steps: vec!["s".into()],
            ..t
        };
        let f = threshold::findings(&[t2], &unmeasured);
        assert_eq!(checks_of(&f), vec![("threshold", Severity::Fail)]);
        assert!(f[0].message.contains("could not be evaluated"), "{f:?}");
    }
}
