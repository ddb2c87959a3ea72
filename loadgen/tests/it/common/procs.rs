//! What `/proc` and the cgroup file system show of the processes and groups a test started,
//! to prove that nothing is left behind.

use std::path::{Path, PathBuf};

use cpu_cgroup::{CGROUP_ROOT, NAME_PREFIX, V2_PARENT};

/// True while a process with this pid exists (a zombie counts: it has not been reaped).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The groups of the loadgen process `pid` (`loadgen-<pid>-…`) in every hierarchy that exists
/// (cgroup v1 `cpu` and `cpuacct`, or v2: loadgen's parent group and the root).
pub fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{NAME_PREFIX}{pid}-");
    // v1 hierarchies, then v2's parent of loadgen's groups and (older loadgens) its root.
    ["cpu", "cpuacct", V2_PARENT, ""]
        .iter()
        .filter_map(|h| std::fs::read_dir(Path::new(CGROUP_ROOT).join(h)).ok())
        .flat_map(|dir| dir.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the command name: `(state, ppid)`. The name is in
/// parentheses and may itself hold spaces or parentheses, so the rest starts after the last `)`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True while `pid` runs: it exists and is not a zombie (dead, waiting to be reaped).
pub fn alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// The short command name (`/proc/<pid>/comm`): the program's file name, at most 15 bytes.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// The command line, NULs as spaces (empty for a zombie or a process that is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Every process whose parent is `parent`, found by the ppid in each `/proc/<pid>/stat` (a
/// child that has exec'd shows its new name in [`comm`]).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(stat(pid), Some((_, ppid)) if ppid == parent))
        .collect()
}

/// The children of `parent` running the program `name` (by [`comm`]).
pub fn children_named(parent: u32, name: &str) -> Vec<u32> {
    children(parent)
        .into_iter()
        .filter(|&pid| comm(pid).as_deref() == Some(name))
        .collect()
}

/// The loopback TCP ports `pid` listens on: its socket inodes (`/proc/<pid>/fd`) matched with
/// the `LISTEN` rows of its network namespace's `/proc/<pid>/net/tcp`.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            (f.len() > 9 && f[3] == LISTEN && inodes.iter().any(|i| i == f[9]))
                .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
                .flatten()
        })
        .collect()
}

/// The cgroup paths `pid` is in, one per hierarchy line of `/proc/<pid>/cgroup`.
pub fn cgroup_paths(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2).map(str::to_string))
        .collect()
}
