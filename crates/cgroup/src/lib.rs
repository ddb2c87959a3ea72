//! CPU cgroups, the one place that knows their files: [`group`] creates a group with a real CFS
//! quota (what the kubelet sets for `resources.limits.cpu`) for loadgen's local replicas and
//! removes it; [`own`] finds the group a process runs in (polymetrie exports its own counters,
//! loadgen reads the generator's); [`stat`] reads any group's CPU use and throttling, for cgroup
//! v1 and v2 alike.

pub mod group;
pub mod own;
pub mod stat;

pub use group::{
    remove_stale, Cgroup, CgroupError, CgroupLayout, CFS_PERIOD_US, NAME_PREFIX, V2_PARENT,
};
pub use own::{CpuStat, SelfCgroup};
pub use stat::CgroupCpu;

/// Where cgroup hierarchies are mounted on Linux.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
