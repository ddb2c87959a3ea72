//! The service's own cgroup CPU counters, read on each scrape and exported as
//! `polymetrie_cgroup_cpu_*`: CPU used and CFS throttling exactly as the kernel accounts them
//! for the cgroup the service runs in — a pod's container in a cluster (which needs no RBAC,
//! unlike the kubelet's cAdvisor), a replica's group under loadgen's local deployer.
//!
//! The group is found in `/proc/self/cgroup`: on cgroup v2 the `0::PATH` line and
//! `PATH/cpu.stat` (`usage_usec`, `nr_periods`, `nr_throttled`, `throttled_usec`); on v1 the
//! `cpu` and `cpuacct` lines and their `cpu.stat` (`nr_periods`, `nr_throttled`,
//! `throttled_time` in ns) and `cpuacct.usage` (ns). Inside a container with its own cgroup
//! namespace the path is `/`; without one the host's path does not exist under the container's
//! mount, whose root is then the container's own group.

use std::fs;
use std::path::{Path, PathBuf};

use crate::stat::{self, CgroupCpu};

use crate::CGROUP_ROOT;

/// One reading; a counter the kernel does not provide here is `None` (not exported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStat {
    pub usage_usec: Option<u64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_usec: Option<u64>,
}

/// The files of the group this process runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfCgroup {
    V2 { dir: PathBuf },
    V1 { cpu: PathBuf, cpuacct: PathBuf },
}

impl SelfCgroup {
    /// This process's group, or `None` outside cgroups (or without a readable cpu.stat).
    pub fn detect() -> Option<SelfCgroup> {
        let text = fs::read_to_string("/proc/self/cgroup").ok()?;
        SelfCgroup::locate(&text, Path::new(CGROUP_ROOT))
    }

    /// The group `proc_cgroup` (the text of `/proc/self/cgroup`) names, under mount `root`.
    /// v1 is preferred when it has the cpu controllers: that is where a CFS quota is set.
    pub fn locate(proc_cgroup: &str, root: &Path) -> Option<SelfCgroup> {
        let mut cpu = None;
        let mut cpuacct = None;
        let mut unified = None;
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                unified = Some(path);
            }
            for c in controllers.split(',') {
                match c {
                    "cpu" => cpu = Some((controllers, path)),
                    "cpuacct" => cpuacct = Some((controllers, path)),
                    _ => {}
                }
            }
        }
        if let (Some(c), Some(a)) = (cpu, cpuacct) {
            let cpu = group_dir(root, &[c.0, "cpu"], c.1, "cpu.stat")?;
            let cpuacct = group_dir(root, &[a.0, "cpuacct"], a.1, "cpuacct.usage")?;
            return Some(SelfCgroup::V1 { cpu, cpuacct });
        }
        let dir = group_dir(root, &[""], unified?, "cpu.stat")?;
        Some(SelfCgroup::V2 { dir })
    }

    /// The current counters; unreadable ones are `None`.
    pub fn read(&self) -> CpuStat {
        match self {
            SelfCgroup::V2 { dir } => stat::read_v2(dir).into(),
            SelfCgroup::V1 { cpu, cpuacct } => stat::read_v1(cpu, cpuacct).into(),
        }
    }
}

/// The counters in microseconds, as polymetrie exports them.
impl From<CgroupCpu> for CpuStat {
    fn from(c: CgroupCpu) -> CpuStat {
        CpuStat {
            usage_usec: c.usage_ns.map(|ns| ns / 1_000),
            nr_periods: c.nr_periods,
            nr_throttled: c.nr_throttled,
            throttled_usec: c.throttled_ns.map(|ns| ns / 1_000),
        }
    }
}

/// The group's directory: `root/MOUNT/PATH` for the first mount name that holds `file`, else
/// the mount's root itself (a container without a cgroup namespace sees the host's path).
fn group_dir(root: &Path, mounts: &[&str], path: &str, file: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    for m in mounts {
        let base = if m.is_empty() {
            root.to_path_buf()
        } else {
            root.join(m)
        };
        for dir in [base.join(rel), base.clone()] {
            if dir.join(file).is_file() {
                return Some(dir);
            }
        }
    }
    None
}

/// cgroup v2 `cpu.stat`, in microseconds.
pub fn parse_cpu_stat_v2(text: &str) -> CpuStat {
    stat::parse_v2(text).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (path, text) in files {
            let p = d.0.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        d
    }

    /// A self-removing directory (the service crate has no tempfile dependency).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let n = N.fetch_add(1, Ordering::Relaxed);
                let p =
                    std::env::temp_dir().join(format!("polymetrie-cg-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn v2_cpu_stat_is_read_from_the_unified_group() {
        let stat = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n\
                    nr_periods 40\nnr_throttled 10\nthrottled_usec 250000\n";
        let d = tree(&[("kubepods/pod1/c1/cpu.stat", stat)]);
        let g = SelfCgroup::locate("0::/kubepods/pod1/c1\n", &d.0).unwrap();
        assert_eq!(
            g.read(),
            CpuStat {
                usage_usec: Some(1_500_000),
                nr_periods: Some(40),
                nr_throttled: Some(10),
                throttled_usec: Some(250_000),
            }
        );
    }

    #[test]
    fn v1_reads_cpuacct_usage_and_cpu_stat_in_nanoseconds() {
        let d = tree(&[
            (
                "cpu/loadgen-1-0-r0/cpu.stat",
                "nr_periods 7\nnr_throttled 3\nthrottled_time 4000000\n",
            ),
            ("cpuacct/loadgen-1-0-r0/cpuacct.usage", "2500000000\n"),
        ]);
        let proc = "12:memory:/x\n4:cpu:/loadgen-1-0-r0\n5:cpuacct:/loadgen-1-0-r0\n0::/other\n";
        let g = SelfCgroup::locate(proc, &d.0).unwrap();
        assert!(matches!(g, SelfCgroup::V1 { .. }));
        let s = g.read();
        assert_eq!(s.usage_usec, Some(2_500_000));
        assert_eq!(s.nr_throttled, Some(3));
        assert_eq!(s.throttled_usec, Some(4_000));
    }

    #[test]
    fn a_comounted_v1_hierarchy_and_a_container_root_are_found() {
        let d = tree(&[
            (
                "cpu,cpuacct/cpu.stat",
                "nr_periods 1\nnr_throttled 0\nthrottled_time 0\n",
            ),
            ("cpu,cpuacct/cpuacct.usage", "1000\n"),
        ]);
        // The host's path (no cgroup namespace) is not under the container's mount.
        let g = SelfCgroup::locate("3:cpu,cpuacct:/docker/abc\n", &d.0).unwrap();
        assert_eq!(g.read().usage_usec, Some(1));
        assert_eq!(SelfCgroup::locate("1:name=systemd:/\n", &d.0), None);
    }

    #[test]
    fn v2_without_the_cpu_controller_has_usage_only() {
        let s = parse_cpu_stat_v2("usage_usec 10\nuser_usec 5\nsystem_usec 5\n");
        assert_eq!(s.usage_usec, Some(10));
        assert_eq!(s.nr_periods, None);
    }
}
