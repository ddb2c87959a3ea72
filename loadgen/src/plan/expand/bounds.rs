//! Bounds: what a step may ask of this machine and this tool (see [`crate::plan::limits`]),
//! checked at expansion so `validate` refuses a plan that could only fail later — 100,000
//! local replicas, a CPU limit below the kernel's minimum quota, 10^12 req/s, a step of a
//! million hours — and the plan's warning when CPU limits add up to more than the machine has
//! (a legitimate overcommit, as TD4's 2 × 1.5 cores on 2 CPUs, but one the report must name).

use super::{Expander, RawStep};
use crate::plan::{limits, Step, Target};
use crate::scenario::{ScenarioError, TargetKind};
use loadgen_model::result::{CheckName, Finding, Severity};

impl Expander<'_> {
    pub(super) fn bounds(&self, r: &RawStep) -> Result<(), ScenarioError> {
        let key = |k: &str| format!("{}.{k}", r.table);
        let local = *self.sc.target.get_ref().kind.get_ref() == TargetKind::Local;
        if r.rate > limits::MAX_RATE_RPS || r.ramp_from.is_some_and(|f| f > limits::MAX_RATE_RPS) {
            return self.err(
                r.span.clone(),
                &key("rate"),
                format!(
                    "expected at most {:e} req/s per generator, got {}; split the step over \
                     generator shards for more",
                    limits::MAX_RATE_RPS,
                    r.rate
                ),
            );
        }
        if r.duration > limits::MAX_STEP_DURATION {
            return self.err(
                r.span.clone(),
                &key("duration"),
                format!(
                    "expected at most 24h per step, got {}",
                    humantime::format_duration(r.duration)
                ),
            );
        }
        let requests = (r.ramp_from.unwrap_or(r.rate) + r.rate) / 2.0 * r.duration.as_secs_f64();
        if requests > limits::MAX_STEP_REQUESTS as f64 {
            return self.err(
                r.span.clone(),
                &key("rate"),
                format!(
                    "expected at most {} planned requests in one step, got {requests:.0} \
                     (rate × duration); split it into shorter steps",
                    limits::MAX_STEP_REQUESTS
                ),
            );
        }
        if let Some(c) = r.cpu_limit {
            if c < limits::MIN_CPU_LIMIT {
                return self.err(
                    r.span.clone(),
                    &key("cpu_limit"),
                    format!(
                        "expected at least {} core (the kernel's minimum CFS quota is 1 ms per \
                         100 ms period), got {c}",
                        limits::MIN_CPU_LIMIT
                    ),
                );
            }
            if let Some(cpus) = local.then(machine_cpus).flatten() {
                if c > f64::from(cpus) {
                    return self.err(
                        r.span.clone(),
                        &key("cpu_limit"),
                        format!(
                            "expected at most {cpus} cores (this machine's CPUs) per replica, got {c}"
                        ),
                    );
                }
            }
        }
        if local && r.replicas > limits::MAX_LOCAL_REPLICAS {
            return self.err(
                r.span.clone(),
                &key("replicas"),
                format!(
                    "expected at most {} local replicas, got {}",
                    limits::MAX_LOCAL_REPLICAS,
                    r.replicas
                ),
            );
        }
        Ok(())
    }

    /// One warning per local step whose replicas' CPU limits add up to more than the machine's
    /// CPUs: the limits cannot all be reached at once, so the step measures the machine too.
    pub(super) fn overcommit(&self, target: &Target, steps: &[Step]) -> Vec<Finding> {
        let (Target::Local(_) | Target::Command(_), Some(cpus)) = (target, machine_cpus()) else {
            return Vec::new();
        };
        steps
            .iter()
            .filter_map(|s| {
                let total = s.topology.cpu_limit_cores? * f64::from(s.topology.replicas);
                (total > f64::from(cpus)).then(|| Finding {
                    check: CheckName::Overcommit,
                    severity: Severity::Warn,
                    message: format!(
                        "{} replicas × {} cores = {total} cores of CPU limits on a {cpus}-CPU \
                         machine: the limits overcommit it, so the replicas compete for the \
                         machine before any of them reaches its limit",
                        s.topology.replicas,
                        s.topology.cpu_limit_cores.unwrap_or_default()
                    ),
                    step: Some(s.id()),
                })
            })
            .collect()
    }
}

fn machine_cpus() -> Option<u32> {
    crate::machine::online_cpus()
}
