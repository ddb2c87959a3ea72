//! The machine a run happens on (CPUs, kernel, cgroup mode, memory), read once at the start of
//! a run so a report can say where its numbers came from.

use std::path::Path;

use loadgen_model::result::MachineInfo;

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// How cgroups are mounted: `v2` (unified with a cpu controller), `v1` (separate cpu and
/// cpuacct hierarchies, as on these machines), `hybrid` (both), or `none`.
pub fn cgroup_mode(root: &Path) -> &'static str {
    let v1 = root.join("cpu").join("cpu.cfs_quota_us").exists();
    let v2 = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|c| c.split_whitespace().any(|x| x == "cpu"))
        .unwrap_or(false);
    match (v1, v2) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
}

/// The machine's online CPUs, counted from `/proc/stat` (the file the node's CPU use is read
/// from): not this process's affinity, which `taskset` narrows in benchmarks.
pub fn online_cpus() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let n = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// Reads this machine's description; fields that cannot be read are `None`.
pub fn detect() -> MachineInfo {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    MachineInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        cpus: online_cpus(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cgroup_mode: Some(cgroup_mode(Path::new("/sys/fs/cgroup")).to_string()),
        memory_bytes,
        cpu_model: cpu_model(),
    }
}

/// The CPU's model name (the first `model name` of /proc/cpuinfo): what makes two machines of
/// the same size the same kind, for comparing capacities.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mode_reads_the_layout() {
        let dir = std::env::temp_dir().join(format!("loadgen-machine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cpu")).unwrap();
        assert_eq!(cgroup_mode(&dir), "none");
        std::fs::write(dir.join("cpu/cpu.cfs_quota_us"), "-1\n").unwrap();
        assert_eq!(cgroup_mode(&dir), "v1");
        std::fs::write(dir.join("cgroup.controllers"), "cpuset cpu io\n").unwrap();
        assert_eq!(cgroup_mode(&dir), "hybrid");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn detect_reads_this_linux_machine() {
        let m = detect();
        assert!(m.cpus.unwrap() >= 1);
        assert!(m.kernel.is_some());
        assert!(m.memory_bytes.unwrap() > 0);
    }
}
