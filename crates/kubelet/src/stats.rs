//! What `/metrics/resource` serves, in the format metrics-server decodes: the node's CPU and
//! working set, and per container its group's CPU time (cumulative, from `cpuacct.usage` or v2
//! `cpu.stat`), its working set (the resident memory of the group's processes) and its start
//! time. A value that cannot be read is left out, never sent as 0 (metrics-server drops a pod
//! with a 0, and 0 would be a lie).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpu_cgroup::{stat, CgroupLayout};

/// One container as the stats see it.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub name: String,
    /// Its group's directories (one per hierarchy; the last one is `cpuacct` on v1).
    pub dirs: Vec<PathBuf>,
    /// Seconds since the epoch.
    pub start: f64,
    pub log: PathBuf,
}

/// One pod as the stats see it.
#[derive(Debug, Clone)]
pub struct PodStats {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<ContainerStats>,
    /// False once the pod Succeeded or Failed (logs stay readable, metrics stop).
    pub running: bool,
}

fn cpu_seconds(layout: &CgroupLayout, dirs: &[PathBuf]) -> Option<f64> {
    let first = dirs.first()?;
    let cpu = match layout {
        CgroupLayout::V1 { .. } => stat::read_v1(first, dirs.last().unwrap_or(first)),
        CgroupLayout::V2 { .. } => stat::read_v2(first),
    };
    cpu.usage_ns.map(|ns| ns as f64 / 1e9)
}

/// Resident bytes of every process in the group (`statm`'s resident pages).
fn working_set(dirs: &[PathBuf]) -> Option<u64> {
    let procs = std::fs::read_to_string(dirs.last()?.join("cgroup.procs")).ok()?;
    let page = rustix::param::page_size() as u64;
    let total: u64 = procs
        .lines()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{}/statm", pid.trim())).ok())
        .filter_map(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page)
        .sum();
    (total > 0).then_some(total)
}

/// The node's busy CPU seconds, from `/proc/stat` (user + nice + system + irq + softirq + steal).
fn node_cpu_seconds(proc_stat: &str) -> Option<f64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<u64>();
    // USER_HZ is 100 on every Linux ABI the stand-in runs on.
    Some(busy as f64 / 100.0)
}

/// The node's working set: MemTotal − MemAvailable.
fn node_memory(meminfo: &str) -> Option<u64> {
    let kb = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((kb("MemTotal:")? - kb("MemAvailable:")?) * 1024)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The exposition for the pods given, stamped `now_ms`.
pub fn resource_metrics(layout: &CgroupLayout, pods: &[PodStats], now_ms: u128) -> String {
    let mut out = String::new();
    let node_cpu = node_cpu_seconds(&read(Path::new("/proc/stat")));
    let node_mem = node_memory(&read(Path::new("/proc/meminfo")));
    out.push_str("# TYPE node_cpu_usage_seconds_total counter\n");
    if let Some(v) = node_cpu {
        let _ = writeln!(out, "node_cpu_usage_seconds_total {v} {now_ms}");
    }
    out.push_str("# TYPE node_memory_working_set_bytes gauge\n");
    if let Some(v) = node_mem {
        let _ = writeln!(out, "node_memory_working_set_bytes {v} {now_ms}");
    }
    let running: Vec<(&PodStats, &ContainerStats)> = pods
        .iter()
        .filter(|p| p.running)
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .collect();
    let labels = |p: &PodStats, c: &ContainerStats| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            c.name, p.namespace, p.name
        )
    };
    out.push_str("# TYPE container_cpu_usage_seconds_total counter\n");
    for (p, c) in &running {
        if let Some(v) = cpu_seconds(layout, &c.dirs) {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{{}}} {v} {now_ms}",
                labels(p, c)
            );
        }
    }
    out.push_str("# TYPE container_memory_working_set_bytes gauge\n");
    for (p, c) in &running {
        if let Some(v) = working_set(&c.dirs) {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{{{}}} {v} {now_ms}",
                labels(p, c)
            );
        }
    }
    out.push_str("# TYPE container_start_time_seconds gauge\n");
    for (p, c) in &running {
        if c.start > 0.0 {
            let _ = writeln!(
                out,
                "container_start_time_seconds{{{}}} {} {now_ms}",
                labels(p, c),
                c.start
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_counters_from_proc() {
        let stat = "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(node_cpu_seconds(stat), Some(1.61));
        let meminfo = "MemTotal:       1000 kB\nMemFree: 10 kB\nMemAvailable:    400 kB\n";
        assert_eq!(node_memory(meminfo), Some(600 * 1024));
    }
}
