//! The one reader of a group's CPU counters, for both hierarchies: cgroup v1 (`cpuacct.usage`
//! in ns, and `cpu.stat`'s `nr_periods`, `nr_throttled`, `throttled_time` in ns) and v2
//! (`cpu.stat`'s `usage_usec`, `nr_periods`, `nr_throttled`, `throttled_usec`). A counter the
//! kernel does not keep, or a file that cannot be read, is `None`: never a made-up 0.

use std::fs;
use std::path::Path;

/// Raw CPU counters of one group at one instant, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupCpu {
    /// CPU time used by every task of the group, in nanoseconds.
    pub usage_ns: Option<u64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_ns: Option<u64>,
}

/// A v1 group: `cpu.stat` from the `cpu` hierarchy, usage from the `cpuacct` one (the two may
/// be the same directory where the controllers are mounted together).
pub fn read_v1(cpu_dir: &Path, cpuacct_dir: &Path) -> CgroupCpu {
    let stat = read(&cpu_dir.join("cpu.stat"));
    CgroupCpu {
        usage_ns: read(&cpuacct_dir.join("cpuacct.usage")).trim().parse().ok(),
        nr_periods: field(&stat, "nr_periods"),
        nr_throttled: field(&stat, "nr_throttled"),
        throttled_ns: field(&stat, "throttled_time"),
    }
}

/// A v2 group's `cpu.stat`.
pub fn read_v2(dir: &Path) -> CgroupCpu {
    parse_v2(&read(&dir.join("cpu.stat")))
}

/// The text of a v2 `cpu.stat`.
pub fn parse_v2(text: &str) -> CgroupCpu {
    CgroupCpu {
        usage_ns: field(text, "usage_usec").map(|u| u * 1_000),
        nr_periods: field(text, "nr_periods"),
        nr_throttled: field(text, "nr_throttled"),
        throttled_ns: field(text, "throttled_usec").map(|u| u * 1_000),
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_by_key() {
        let stat = "nr_periods 12\nnr_throttled 3\nthrottled_time 4500000\n";
        assert_eq!(field(stat, "nr_periods"), Some(12));
        assert_eq!(field(stat, "nr_throttled"), Some(3));
        assert_eq!(field(stat, "throttled_time"), Some(4_500_000));
        assert_eq!(field(stat, "usage_usec"), None);
    }

    #[test]
    fn v2_microseconds_become_nanoseconds_and_absent_keys_stay_absent() {
        let s = parse_v2("usage_usec 10\nnr_periods 4\nthrottled_usec 3\n");
        assert_eq!(s.usage_ns, Some(10_000));
        assert_eq!(s.nr_periods, Some(4));
        assert_eq!(s.nr_throttled, None);
        assert_eq!(s.throttled_ns, Some(3_000));
    }
}
