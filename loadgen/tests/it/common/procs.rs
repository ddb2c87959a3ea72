//! What `/proc` and the cgroup file system show of the processes and groups a test started,
//! to prove that nothing is left behind.

use std::path::{Path, PathBuf};

use loadgen::deployer::cgroup::{CGROUP_ROOT, NAME_PREFIX};

/// True while a process with this pid exists (a zombie counts: it has not been reaped).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The groups of the loadgen process `pid` (`loadgen-<pid>-…`) in every hierarchy that exists
/// (cgroup v1 `cpu` and `cpuacct`, or the v2 root).
pub fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{NAME_PREFIX}{pid}-");
    ["cpu", "cpuacct", ""]
        .iter()
        .filter_map(|h| std::fs::read_dir(Path::new(CGROUP_ROOT).join(h)).ok())
        .flat_map(|dir| dir.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}
