//! CPU evidence: CFS throttling and limit saturation per replica, a saturated node, and how
//! evenly requests were spread over replicas. Pure functions of a saved step.

use super::{finding, pct};
use loadgen_model::result::{CheckName, Finding, Severity, StepResult};

/// Share of CFS periods throttled above which a replica's limit is named as a cause.
pub const THROTTLED_WARN_RATIO: f64 = 0.05;
/// A replica using at least this share of its CPU limit is saturated.
pub const LIMIT_SATURATION_RATIO: f64 = 0.9;
/// Busiest/least busy replica request ratio above which the spread is called uneven.
pub const IMBALANCE_RATIO: f64 = 1.5;
/// The node's busy cores at or above this share of its CPUs: generator and service compete.
pub const NODE_SATURATION_RATIO: f64 = 0.9;

pub(super) fn findings(step: &StepResult, node_cpus: Option<u32>, out: &mut Vec<Finding>) {
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
                    CheckName::Throttling,
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
                    CheckName::CpuLimitSaturated,
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
                CheckName::NodeSaturated,
                Severity::Warn,
                step,
                format!(
                    "the machine was busy on {node:.2} of its {cpus} CPUs: service and generator competed for CPU, so adding replicas cannot add capacity here"
                ),
            ));
        }
    }
}

pub(super) fn balance(step: &StepResult, out: &mut Vec<Finding>) {
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
            CheckName::Imbalance,
            Severity::Warn,
            step,
            format!("requests were spread unevenly over replicas ({list}): a per-connection balancer (kube-proxy, SO_REUSEPORT, balance = \"connection\") places connections, not requests, so few keep-alive connections land unevenly"),
        ));
    }
}
