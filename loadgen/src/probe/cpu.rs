//! The CPU probe: what each replica's cgroup used (`cpuacct.usage`, or `usage_usec` on v2) and
//! how often its CFS quota throttled it (`cpu.stat`), plus the whole machine's busy cores from
//! `/proc/stat` — to tell a throttled replica from an overloaded node. The same counters as
//! the service exports them (`polymetrie_cgroup_cpu_*`) are a second view of a local replica
//! and the only one of a cluster pod.

use std::time::Duration;

use super::ReplicaSnapshot;
use crate::deployer::CgroupCpu;
use loadgen_model::result::{CgroupCpuView, ReplicaCpu};

/// Cumulative CPU time of the whole machine, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCpu {
    /// user + nice + system + irq + softirq + steal, in clock ticks.
    pub busy_ticks: u64,
    /// busy + idle + iowait, in clock ticks.
    pub total_ticks: u64,
    /// Number of `cpuN` lines: the machine's CPUs.
    pub cpus: u32,
}

/// Reads `/proc/stat`; `None` when unreadable.
pub fn read_node() -> Option<NodeCpu> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Parses `/proc/stat` text.
pub fn parse_proc_stat(text: &str) -> Option<NodeCpu> {
    let first = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = first
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // Fields: user nice system idle iowait irq softirq steal (guest is included in user).
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let total = busy + at(3) + at(4);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u32;
    (cpus > 0 && total > 0).then_some(NodeCpu {
        busy_ticks: busy,
        total_ticks: total,
        cpus,
    })
}

/// Busy cores of the machine between two readings (busy share of ticks × CPUs), which needs
/// no knowledge of the tick rate.
pub fn node_cores_used(before: &NodeCpu, after: &NodeCpu) -> Option<f64> {
    let busy = after.busy_ticks.checked_sub(before.busy_ticks)?;
    let total = after.total_ticks.checked_sub(before.total_ticks)?;
    (total > 0).then(|| busy as f64 / total as f64 * f64::from(after.cpus))
}

/// One replica's CPU over `wall` from two cgroup readings (either may be missing) and the
/// HTTP requests it answered in between.
pub fn replica_cpu(
    replica: u32,
    before: Option<&CgroupCpu>,
    after: Option<&CgroupCpu>,
    wall: Duration,
    requests: Option<u64>,
) -> ReplicaCpu {
    let delta = |f: fn(&CgroupCpu) -> Option<u64>| -> Option<u64> {
        f(after?).and_then(|a| a.checked_sub(f(before?)?))
    };
    let usage_ns = delta(|c| c.usage_ns);
    let nr_periods = delta(|c| c.nr_periods);
    let nr_throttled = delta(|c| c.nr_throttled);
    let throttled_ns = delta(|c| c.throttled_ns);
    let wall_s = wall.as_secs_f64();
    ReplicaCpu {
        replica,
        cores_used: usage_ns
            .filter(|_| wall_s > 0.0)
            .map(|ns| ns as f64 / 1e9 / wall_s),
        throttled_ratio: throttled_ratio(nr_throttled, nr_periods),
        nr_periods,
        nr_throttled,
        throttled_s: throttled_ns.map(|ns| ns as f64 / 1e9),
        requests,
        ..ReplicaCpu::default()
    }
}

/// One replica's CPU from both snapshots: from its cgroup files when loadgen reads them, else
/// from what the service exports, else from the resource metrics API (a pod's sample whose
/// window lies in `span`, the step's wall-clock bounds); each view is kept beside the fields.
pub fn replica_views(
    before: &ReplicaSnapshot,
    after: &ReplicaSnapshot,
    wall: Duration,
    span: (std::time::SystemTime, std::time::SystemTime),
    requests: Option<u64>,
) -> ReplicaCpu {
    let service = match (&before.service_cpu, &after.service_cpu) {
        (Some(b), Some(a)) => Some(view(b, a, wall)),
        _ => None,
    };
    let (b, a) = match (&before.cpu, &after.cpu) {
        (Some(b), Some(a)) => (Some(b), Some(a)),
        _ => (before.service_cpu.as_ref(), after.service_cpu.as_ref()),
    };
    let (pod, node) = match &after.pod {
        Some((p, n)) => (Some(p.clone()), n.clone()),
        None => (None, None),
    };
    let metrics_api = after
        .pod_metrics
        .as_ref()
        .and_then(|m| super::metrics_api::within(m, span.0, span.1));
    let mut r = replica_cpu(before.index, b, a, wall, requests);
    if r.cores_used.is_none() {
        r.cores_used = metrics_api.as_ref().map(|m| m.cores_used);
    }
    ReplicaCpu {
        from_service: service,
        from_metrics_api: metrics_api,
        pod,
        node,
        ..r
    }
}

/// One cgroup's CPU over `wall` from two readings.
pub fn view(before: &CgroupCpu, after: &CgroupCpu, wall: Duration) -> CgroupCpuView {
    let r = replica_cpu(0, Some(before), Some(after), wall, None);
    CgroupCpuView {
        cores_used: r.cores_used,
        throttled_ratio: r.throttled_ratio,
        nr_periods: r.nr_periods,
        nr_throttled: r.nr_throttled,
        throttled_s: r.throttled_s,
    }
}

/// The generator's own cgroup counters now (`None` outside a readable cgroup), read as the
/// service reads its own: one reader of a process's cgroup.
pub fn read_own_cgroup() -> Option<CgroupCpu> {
    let s = cpu_cgroup::SelfCgroup::detect()?.read();
    Some(CgroupCpu {
        usage_ns: s.usage_usec.map(|u| u * 1_000),
        nr_periods: s.nr_periods,
        nr_throttled: s.nr_throttled,
        throttled_ns: s.throttled_usec.map(|u| u * 1_000),
    })
}

/// Δnr_throttled / Δnr_periods; `None` without periods (no quota, or no activity).
pub fn throttled_ratio(nr_throttled: Option<u64>, nr_periods: Option<u64>) -> Option<f64> {
    match (nr_throttled, nr_periods) {
        (Some(t), Some(p)) if p > 0 => Some(t as f64 / p as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counts_busy_ticks_and_cpus() {
        let text = "cpu  100 10 50 800 40 5 5 0 0 0\ncpu0 50 5 25 400 20 2 3 0 0 0\n\
                    cpu1 50 5 25 400 20 3 2 0 0 0\nintr 1 2 3\n";
        let n = parse_proc_stat(text).unwrap();
        assert_eq!(n.busy_ticks, 170);
        assert_eq!(n.total_ticks, 1010);
        assert_eq!(n.cpus, 2);
        let later = NodeCpu {
            busy_ticks: 270,
            total_ticks: 1210,
            cpus: 2,
        };
        // 100 busy of 200 ticks on 2 CPUs: one core busy.
        assert_eq!(node_cores_used(&n, &later), Some(1.0));
    }

    #[test]
    fn replica_cpu_from_cgroup_deltas() {
        let before = CgroupCpu {
            usage_ns: Some(1_000_000_000),
            nr_periods: Some(10),
            nr_throttled: Some(2),
            throttled_ns: Some(0),
        };
        let after = CgroupCpu {
            usage_ns: Some(2_000_000_000),
            nr_periods: Some(30),
            nr_throttled: Some(12),
            throttled_ns: Some(500_000_000),
        };
        let r = replica_cpu(
            1,
            Some(&before),
            Some(&after),
            Duration::from_secs(2),
            Some(7),
        );
        assert_eq!(r.cores_used, Some(0.5));
        assert_eq!(r.throttled_ratio, Some(0.5));
        assert_eq!(r.nr_periods, Some(20));
        assert_eq!(r.throttled_s, Some(0.5));
        assert_eq!(r.requests, Some(7));
        let unmeasured = replica_cpu(0, None, Some(&after), Duration::from_secs(2), None);
        assert_eq!(unmeasured.cores_used, None);
        assert_eq!(unmeasured.throttled_ratio, None);
    }
}
