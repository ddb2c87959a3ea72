//! Checks: pure functions that read a step's measurements and draw [`Finding`]s — whether the
//! four counts reconcile (intended, sent, answered OK, counted by the service) and why not,
//! whether the step is valid evidence, throttling, CPU saturation, replica imbalance, and the
//! scenario's thresholds. They never measure anything themselves (house rule 4).

pub mod prometheus;

use crate::plan::{glob_match, Threshold};
use crate::result::{Finding, Severity, StepResult};

/// Share of CFS periods throttled above which a replica's limit is named as a cause.
pub const THROTTLED_WARN_RATIO: f64 = 0.05;
/// A replica using at least this share of its CPU limit is saturated.
pub const LIMIT_SATURATION_RATIO: f64 = 0.9;
/// Busiest/least busy replica request ratio above which the spread is called uneven.
pub const IMBALANCE_RATIO: f64 = 1.5;
/// The node's busy cores at or above this share of its CPUs: generator and service compete.
pub const NODE_SATURATION_RATIO: f64 = 0.9;

fn finding(check: &str, severity: Severity, step: &StepResult, message: String) -> Finding {
    Finding {
        check: check.into(),
        severity,
        message,
        step: Some(step_id(step)),
    }
}

/// `campaign/name`, the id findings and thresholds use.
pub fn step_id(step: &StepResult) -> String {
    match &step.campaign {
        Some(c) => format!("{c}/{}", step.name),
        None => step.name.clone(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// All per-step checks. `node_cpus` is the machine's CPU count, when known.
pub fn step_findings(step: &StepResult, node_cpus: Option<u32>) -> Vec<Finding> {
    let mut out = Vec::new();
    validity(step, &mut out);
    reconcile(step, &mut out);
    shedding(step, &mut out);
    cpu(step, node_cpus, &mut out);
    balance(step, &mut out);
    out
}

fn validity(step: &StepResult, out: &mut Vec<Finding>) {
    if step.interrupted {
        out.push(finding(
            "interrupted",
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
            "validity",
            Severity::Warn,
            step,
            format!("generator did not keep the schedule ({why}): these numbers say nothing about the target's capacity"),
        ));
    }
    let wait = &step.connection_wait_ms;
    if let (true, Some(p99)) = (wait.count > 0, wait.p99) {
        out.push(finding(
            "connection_wait",
            Severity::Info,
            step,
            format!(
                "{} requests waited for a connection to the target (p99 {p99:.1} ms): connects were not completing, i.e. the target was slow to accept; the wait is part of their latency",
                wait.count
            ),
        ));
    }
    if step.dropped > 0 {
        out.push(finding(
            "dropped",
            Severity::Warn,
            step,
            format!(
                "{} due requests were dropped by the generator (in-flight cap reached) and never sent",
                step.dropped
            ),
        ));
    }
}

/// Explains the gaps between intended, sent, ok and the service's counter delta.
fn reconcile(step: &StepResult, out: &mut Vec<Finding>) {
    let Some(delta) = step.counter.as_ref().and_then(|c| c.delta) else {
        out.push(finding(
            "counter_reconcile",
            Severity::Warn,
            step,
            "the service's counter was not read: the counted ratio is unknown, not zero".into(),
        ));
        return;
    };
    let ok = step.ok as i64;
    let timeouts = step.outcomes.timeout as i64;
    let not_ok = (step.intended as i64) - ok;
    if delta == ok {
        out.push(finding(
            "counter_reconcile",
            Severity::Info,
            step,
            format!(
                "counter delta {delta} equals the generator's OK count; {not_ok} of {} intended requests were not counted",
                step.intended
            ),
        ));
    } else if delta > ok {
        let extra = delta - ok;
        let (sev, why) = if extra <= timeouts {
            (
                Severity::Info,
                format!("consistent with client timeouts ({timeouts}) whose clicks the service still stored after the generator gave up"),
            )
        } else {
            (
                Severity::Warn,
                format!("more than the {timeouts} client timeouts explain: something else wrote to the counter during the step, or a 5xx was stored"),
            )
        };
        out.push(finding(
            "counter_reconcile",
            sev,
            step,
            format!("the service counted {extra} more clicks than it acknowledged with 2xx; {why}"),
        ));
    } else {
        out.push(finding(
            "lost_writes",
            Severity::Fail,
            step,
            format!(
                "the service acknowledged {ok} clicks with 2xx but its counter grew by only {delta}: {} acknowledged clicks were lost",
                ok - delta
            ),
        ));
    }
}

fn shedding(step: &StepResult, out: &mut Vec<Finding>) {
    let shed = step.outcomes.status.get("503").copied().unwrap_or(0);
    if shed > 0 && step.sent > 0 {
        out.push(finding(
            "shedding",
            Severity::Info,
            step,
            format!(
                "the service refused {shed} requests with 503 ({} of those sent): it was past capacity and shed load instead of queueing it",
                pct(shed as f64 / step.sent as f64)
            ),
        ));
    }
    let timeouts = step.outcomes.timeout;
    if timeouts > 0 && step.sent > 0 {
        out.push(finding(
            "timeouts",
            Severity::Info,
            step,
            format!(
                "{timeouts} requests got no answer within the timeout ({} of those sent)",
                pct(timeouts as f64 / step.sent as f64)
            ),
        ));
    }
}

fn cpu(step: &StepResult, node_cpus: Option<u32>, out: &mut Vec<Finding>) {
    let Some(cpu) = &step.cpu else { return };
    let limit = step.topology.as_ref().and_then(|t| t.cpu_limit_cores);
    for r in &cpu.per_replica {
        if let Some(t) = r.throttled_ratio {
            if t >= THROTTLED_WARN_RATIO {
                let time = r
                    .throttled_s
                    .map(|s| format!(", {s:.2} s throttled in all"))
                    .unwrap_or_default();
                out.push(finding(
                    "throttling",
                    Severity::Warn,
                    step,
                    format!(
                        "replica {} was throttled by its CFS quota in {} of periods{time}: the CPU limit, not the code, capped it",
                        r.replica,
                        pct(t)
                    ),
                ));
            }
        }
        if let (Some(used), Some(limit)) = (r.cores_used, limit) {
            if used >= LIMIT_SATURATION_RATIO * limit {
                out.push(finding(
                    "cpu_limit_saturated",
                    Severity::Info,
                    step,
                    format!(
                        "replica {} used {used:.2} of its {limit} core limit: CPU-bound at the limit",
                        r.replica
                    ),
                ));
            }
        }
    }
    if let (Some(node), Some(cpus)) = (cpu.node_cores_used, node_cpus) {
        if node >= NODE_SATURATION_RATIO * cpus as f64 {
            out.push(finding(
                "node_saturated",
                Severity::Warn,
                step,
                format!(
                    "the machine was busy on {node:.2} of its {cpus} CPUs: service and generator competed for CPU, so adding replicas cannot add capacity here"
                ),
            ));
        }
    }
}

fn balance(step: &StepResult, out: &mut Vec<Finding>) {
    let Some(cpu) = &step.cpu else { return };
    let served: Vec<u64> = cpu.per_replica.iter().filter_map(|r| r.requests).collect();
    if served.len() < 2 || served.len() != cpu.per_replica.len() {
        return;
    }
    let (min, max) = (
        *served.iter().min().unwrap_or(&0),
        *served.iter().max().unwrap_or(&0),
    );
    let uneven = if min == 0 {
        max > 0
    } else {
        max as f64 / min as f64 > IMBALANCE_RATIO
    };
    if uneven {
        let list = served
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" / ");
        out.push(finding(
            "imbalance",
            Severity::Warn,
            step,
            format!("requests were spread unevenly over replicas ({list}): SO_REUSEPORT hashes connections, not requests, so few keep-alive connections land unevenly"),
        ));
    }
}

/// The value a threshold's metric names, for one step (`None`: unmeasured).
pub fn metric_value(step: &StepResult, metric: &str) -> Option<f64> {
    match metric {
        "counted_ratio" => step.counted_ratio,
        "success_ratio" => step.success_ratio,
        "p50_ms" => step.latency_ms.p50,
        "p90_ms" => step.latency_ms.p90,
        "p99_ms" => step.latency_ms.p99,
        "p999_ms" => step.latency_ms.p999,
        "max_ms" => step.latency_ms.max,
        "achieved_ratio" => step.achieved_rps.map(|a| a / step.rate_rps),
        "dropped" => Some(step.dropped as f64),
        _ => None,
    }
}

/// Glob match with `*` only, on `campaign/name` or the bare name.
pub fn matches_step(pattern: &str, step: &StepResult) -> bool {
    glob_match(pattern, &step_id(step)) || glob_match(pattern, &step.name)
}

/// Threshold findings over the steps that ran: a `fail` for each broken bound, a `warn` when
/// the metric was not measured (an unmeasured value neither passes nor silently fails).
pub fn threshold_findings(thresholds: &[Threshold], steps: &[StepResult]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in thresholds {
        for step in steps
            .iter()
            .filter(|s| t.steps.is_empty() || t.steps.iter().any(|p| matches_step(p, s)))
        {
            let bound = describe_bound(t);
            match metric_value(step, &t.metric) {
                None => out.push(finding(
                    "threshold",
                    Severity::Warn,
                    step,
                    format!("threshold {} {bound} not checked: not measured", t.metric),
                )),
                Some(v) => {
                    let broken = t.min.is_some_and(|m| v < m) || t.max.is_some_and(|m| v > m);
                    if broken {
                        out.push(finding(
                            "threshold",
                            Severity::Fail,
                            step,
                            format!("threshold broken: {} = {v:.4}, expected {bound}", t.metric),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn describe_bound(t: &Threshold) -> String {
    match (t.min, t.max) {
        (Some(a), Some(b)) => format!("in [{a}, {b}]"),
        (Some(a), None) => format!("≥ {a}"),
        (None, Some(b)) => format!("≤ {b}"),
        (None, None) => "(no bound)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::*;

    fn step(intended: u64, ok: u64, delta: Option<i64>) -> StepResult {
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
            histogram: None,
            generator: GeneratorHealth::default(),
            topology: None,
            counter: delta.map(|d| CounterReading {
                before: Some(0),
                after: Some(d as u64),
                delta: Some(d),
                per_replica: vec![],
            }),
            counted_ratio: delta.map(|d| d as f64 / intended as f64),
            cpu: None,
            prometheus: None,
            valid: true,
            invalid_reason: None,
            interrupted: false,
            checks: vec![],
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
    fn throttling_and_imbalance_are_named() {
        let mut s = step(100, 100, Some(100));
        s.topology = Some(TopologyView {
            replicas: 2,
            cpu_limit_cores: Some(1.0),
            store: "redis".into(),
        });
        s.cpu = Some(CpuReading {
            cores_used: Some(1.5),
            throttled_ratio: Some(0.3),
            node_cores_used: Some(1.95),
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
            metric: "counted_ratio".into(),
            min: Some(0.99),
            max: None,
            steps: vec!["A/*".into()],
        };
        let f = threshold_findings(std::slice::from_ref(&t), &steps);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Fail);
        assert_eq!(f[0].step.as_deref(), Some("A/t"));

        let mut unmeasured = steps.clone();
        unmeasured[0].counted_ratio = None;
        let t2 = Threshold {
            steps: vec!["s".into()],
            ..t
        };
        let f = threshold_findings(&[t2], &unmeasured);
        assert_eq!(checks_of(&f), vec![("threshold", Severity::Warn)]);
    }
}
