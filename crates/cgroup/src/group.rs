//! Cgroups for local replicas: one group per replica, with a real CFS quota when the step has a
//! CPU limit (as the kubelet sets `resources.limits.cpu`) and accounting only otherwise, so CPU
//! used and throttling are always read from the group the replica runs in. cgroup v1 (separate
//! `cpu` and `cpuacct` hierarchies, as on these machines) and v2 (`cpu.max`) are supported; on
//! v2 the groups live in one parent, [`V2_PARENT`], never at the root systemd owns.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::stat::{self, CgroupCpu};

/// CFS period written to every limited group, in microseconds (the kernel's and kubelet's
/// default).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The kernel rejects quotas below 1 ms.
const MIN_QUOTA_US: u64 = 1_000;
/// How long `rmdir` is retried: it fails with EBUSY until the last task has left the group.
const RMDIR_BOUND: Duration = Duration::from_secs(2);
const RMDIR_POLL: Duration = Duration::from_millis(10);
/// Prefix of every group we create; the rest is `<loadgen pid>-<deploy seq>-r<replica>`.
pub const NAME_PREFIX: &str = "loadgen-";
/// On cgroup v2 every group is made in this one parent below the root, not at the root itself:
/// systemd owns the root's `cgroup.subtree_control` and rewrites it on a daemon-reload, or when
/// a unit with a CPU setting starts or stops, turning `cpu` off there when no unit of its own
/// needs it. That takes `cpu.max` away from every group at the root: the replica runs unlimited
/// while its step says 0.5 core (shown by vm/cgroup-v2, docs/cgroup-v2.md). The kernel refuses
/// to turn a controller off in a group whose child still enables it for its own children
/// (EBUSY), so this parent, with `+cpu` in its own `cgroup.subtree_control`, keeps `cpu` on at
/// the root and the quotas below it in force.
pub const V2_PARENT: &str = "loadgen";
/// Tries at making a v2 group: another loadgen removes the parent when its last group goes,
/// which may fall between our making the parent and our group's mkdir.
const V2_CREATE_TRIES: usize = 3;

/// `statfs` magic numbers of the cgroup file systems: a plain directory is not a cgroup.
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Errors creating or removing a cgroup (messages name the path).
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no usable cpu cgroup controller under {root}: {reason}")]
    Unavailable { root: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which cgroup layout a root offers for CPU control and accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Separate (or co-mounted) `cpu` and `cpuacct` hierarchies.
    V1 { cpu: PathBuf, cpuacct: PathBuf },
    /// Unified hierarchy with the `cpu` controller available.
    V2 { root: PathBuf },
}

impl CgroupLayout {
    /// Finds a usable CPU cgroup layout under `root` (normally [`CGROUP_ROOT`]): v2 when
    /// `cgroup.controllers` lists `cpu`, else v1 `cpu` + `cpuacct` hierarchies. Each candidate
    /// must be a real cgroup file system, so a plain directory is never mistaken for one.
    pub fn detect(root: &Path) -> Result<Self, CgroupError> {
        let unavailable = |reason: String| CgroupError::Unavailable {
            root: root.to_path_buf(),
            reason,
        };
        let controllers = root.join("cgroup.controllers");
        if let Ok(list) = fs::read_to_string(&controllers) {
            if list.split_whitespace().any(|c| c == "cpu") && is_cgroup_fs(root) {
                return Ok(CgroupLayout::V2 {
                    root: root.to_path_buf(),
                });
            }
        }
        let cpu = root.join("cpu");
        let cpuacct = root.join("cpuacct");
        for (dir, file) in [(&cpu, "cpu.cfs_quota_us"), (&cpuacct, "cpuacct.usage")] {
            if !is_cgroup_fs(dir) {
                return Err(unavailable(format!(
                    "{} is not a mounted cgroup hierarchy",
                    dir.display()
                )));
            }
            if !dir.join(file).exists() {
                return Err(unavailable(format!("{} has no {file}", dir.display())));
            }
        }
        Ok(CgroupLayout::V1 { cpu, cpuacct })
    }

    /// `v1` or `v2`, for the machine description.
    pub fn mode(&self) -> &'static str {
        match self {
            CgroupLayout::V1 { .. } => "v1",
            CgroupLayout::V2 { .. } => "v2",
        }
    }

    /// The directories a group named `name` occupies (one per distinct hierarchy).
    fn dirs_for(&self, name: &str) -> Vec<PathBuf> {
        match self {
            CgroupLayout::V1 { cpu, cpuacct } => {
                let mut dirs = vec![cpu.join(name)];
                // On machines that co-mount `cpu,cpuacct` both names are the same directory.
                if !same_dir(cpu, cpuacct) {
                    dirs.push(cpuacct.join(name));
                }
                dirs
            }
            CgroupLayout::V2 { root } => vec![root.join(V2_PARENT).join(name)],
        }
    }

    /// The folders groups are made in, to sweep groups left by a killed loadgen: on v2 the
    /// root too, where a loadgen older than [`V2_PARENT`] made them.
    fn roots(&self) -> Vec<PathBuf> {
        match self {
            CgroupLayout::V1 { cpu, cpuacct } if same_dir(cpu, cpuacct) => vec![cpu.clone()],
            CgroupLayout::V1 { cpu, cpuacct } => vec![cpu.clone(), cpuacct.clone()],
            CgroupLayout::V2 { root } => vec![root.join(V2_PARENT), root.clone()],
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn is_cgroup_fs(path: &Path) -> bool {
    match rustix::fs::statfs(path) {
        Ok(st) => {
            // `f_type`'s integer type differs between architectures.
            #[allow(clippy::useless_conversion)]
            let magic = i64::from(st.f_type);
            magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC
        }
        Err(_) => false,
    }
}

/// Exit code of the launcher shell when it cannot join the group (nothing else was run).
pub const JOIN_FAILED_EXIT: i32 = 97;
/// Joins every `cgroup.procs` given as arguments (count first), then execs the program: the
/// pid stays the same, so the program is in its group before its first instruction.
const LAUNCHER: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done
exec "$@""#;

/// One replica's group. Removed by [`Cgroup::remove`], or on drop as a last resort.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    layout: CgroupLayout,
    dirs: Vec<PathBuf>,
    limit_cores: Option<f64>,
    removed: bool,
}

impl Cgroup {
    /// Creates the group and, when `limit_cores` is set, its CFS quota. Fails (and removes
    /// what it created) when the kernel does not accept the group or the quota.
    pub fn create(
        layout: &CgroupLayout,
        name: &str,
        limit_cores: Option<f64>,
    ) -> Result<Self, CgroupError> {
        let mut group = Cgroup {
            name: name.to_string(),
            layout: layout.clone(),
            dirs: Vec::new(),
            limit_cores,
            removed: false,
        };
        for dir in layout.dirs_for(name) {
            make_group_dir(layout, &dir)?;
            group.dirs.push(dir.clone());
            // The kernel populates a new group with its interface files; their absence means
            // the directory is not in a cgroup file system, and nothing would be enforced.
            if !dir.join("cgroup.procs").exists() {
                return Err(CgroupError::Invalid {
                    path: dir,
                    reason: "created directory has no cgroup.procs: not a cgroup".into(),
                });
            }
        }
        group.apply_limit()?;
        Ok(group)
    }

    fn apply_limit(&self) -> Result<(), CgroupError> {
        let Some(limit) = self.limit_cores else {
            return Ok(());
        };
        if !(limit.is_finite() && limit > 0.0) {
            return Err(CgroupError::Invalid {
                path: self.dirs[0].clone(),
                reason: format!("cpu limit must be > 0 cores, got {limit}"),
            });
        }
        let quota = ((limit * CFS_PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US);
        match &self.layout {
            CgroupLayout::V1 { .. } => {
                let dir = &self.dirs[0];
                write_checked(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                write_checked(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            CgroupLayout::V2 { .. } => {
                let dir = &self.dirs[0];
                write_checked(&dir.join("cpu.max"), &format!("{quota} {CFS_PERIOD_US}"))?;
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's directories (one per hierarchy).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The CFS quota in cores, when the group is limited.
    pub fn limit_cores(&self) -> Option<f64> {
        self.limit_cores
    }

    /// The `cgroup.procs` files a new process must write its pid into, in every hierarchy.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// A command that runs `program` inside this group from its first instruction (a shell
    /// joins the group, then execs `program`; the pid is the one `spawn` returns). Add the
    /// program's arguments to it. Exits with [`JOIN_FAILED_EXIT`] when the join fails.
    pub fn command(&self, program: &Path) -> Command {
        let procs = self.procs_files();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(LAUNCHER)
            .arg("loadgen-launch")
            .arg(procs.len().to_string())
            .args(&procs)
            .arg(program);
        cmd
    }

    /// True when `pid` is a member of the group in every hierarchy.
    pub fn contains(&self, pid: u32) -> bool {
        let pid = pid.to_string();
        self.procs_files().iter().all(|f| {
            fs::read_to_string(f)
                .map(|s| s.lines().any(|l| l.trim() == pid))
                .unwrap_or(false)
        })
    }

    /// The group's counter files as a read-only handle that may outlive a borrow of the
    /// group (a reader on another task); reading after the group is removed gives `None`s.
    pub fn stat_files(&self) -> crate::own::SelfCgroup {
        match &self.layout {
            CgroupLayout::V1 { .. } => crate::own::SelfCgroup::V1 {
                cpu: self.dirs[0].clone(),
                cpuacct: self.dirs.last().unwrap_or(&self.dirs[0]).clone(),
            },
            CgroupLayout::V2 { .. } => crate::own::SelfCgroup::V2 {
                dir: self.dirs[0].clone(),
            },
        }
    }

    /// Current CPU counters; fields that cannot be read are `None`.
    pub fn read_cpu(&self) -> CgroupCpu {
        match &self.layout {
            CgroupLayout::V1 { .. } => {
                let cpu_dir = &self.dirs[0];
                stat::read_v1(cpu_dir, self.dirs.last().unwrap_or(cpu_dir))
            }
            CgroupLayout::V2 { .. } => stat::read_v2(&self.dirs[0]),
        }
    }

    /// Removes the group's directories, retrying while tasks are still leaving (bounded).
    /// Call after every member process has been reaped.
    pub fn remove(&mut self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in &self.dirs {
            if let Err(e) = rmdir_bounded(dir) {
                first_err.get_or_insert(e);
            }
        }
        if let CgroupLayout::V2 { root } = &self.layout {
            // Once empty the parent goes too, leaving the root to systemd; while another
            // loadgen's groups are in it, the kernel refuses (EBUSY) and it stays, as it must.
            let _ = fs::remove_dir(root.join(V2_PARENT));
        }
        self.removed = true;
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = self.remove() {
                tracing::warn!("cgroup {} left behind: {e}", self.name);
            }
        }
    }
}

fn rmdir_bounded(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + RMDIR_BOUND;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(io_err(dir)(e)),
            // EBUSY until the last task has left; this is a bounded poll, not a sync sleep.
            Err(_) => std::thread::sleep(RMDIR_POLL),
        }
    }
}

/// Removes groups left by loadgen processes that no longer exist (killed with SIGKILL, when no
/// teardown could run): their orphaned replicas or Redis are killed first. Groups of a live
/// loadgen are never touched. Returns one line per group swept, for the run to report.
pub fn remove_stale(layout: &CgroupLayout) -> Vec<String> {
    let mut swept = Vec::new();
    for root in layout.roots() {
        let Ok(entries) = fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = name
                .strip_prefix(NAME_PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            // Every task in the group was started by that dead loadgen.
            let procs = fs::read_to_string(entry.path().join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect();
            for &pid in &pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            let removed = match rmdir_bounded(&entry.path()) {
                Ok(()) => "removed".to_string(),
                Err(e) => {
                    tracing::warn!("stale cgroup left: {e}");
                    format!("not removed ({e})")
                }
            };
            // Both hierarchies (cpu, cpuacct) hold the same group on v1: report it once.
            let line = format!(
                "cgroup {name} of loadgen pid {owner}, which no longer runs: {} process(es) \
                 killed {pids:?}, group {removed}",
                pids.len()
            );
            if !swept
                .iter()
                .any(|l: &String| l.starts_with(&format!("cgroup {name} ")))
            {
                swept.push(line);
            }
        }
    }
    swept
}

/// Makes one group's directory; on v2 its parent first (again when another loadgen removed it
/// meanwhile: bounded by [`V2_CREATE_TRIES`]).
fn make_group_dir(layout: &CgroupLayout, dir: &Path) -> Result<(), CgroupError> {
    let CgroupLayout::V2 { root } = layout else {
        return fs::create_dir(dir).map_err(io_err(dir));
    };
    let mut tries = 1;
    loop {
        match ensure_v2_parent(root).and_then(|()| fs::create_dir(dir).map_err(io_err(dir))) {
            Err(CgroupError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && tries < V2_CREATE_TRIES =>
            {
                tries += 1;
            }
            made => return made,
        }
    }
}

/// [`V2_PARENT`] under `root`, with `cpu` enabled for the root's children and for its own.
fn ensure_v2_parent(root: &Path) -> Result<(), CgroupError> {
    enable_v2_cpu(root)?;
    let parent = root.join(V2_PARENT);
    match fs::create_dir(&parent) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err(&parent)(e)),
        _ => {}
    }
    enable_v2_cpu(&parent)
}

/// v2 only lets a child use `cpu.max` when the parent delegates the controller.
fn enable_v2_cpu(root: &Path) -> Result<(), CgroupError> {
    let control = root.join("cgroup.subtree_control");
    let current = fs::read_to_string(&control).map_err(io_err(&control))?;
    if current.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    fs::write(&control, "+cpu").map_err(io_err(&control))
}

/// Writes a control file and reads it back: a value the kernel did not take must not pass.
fn write_checked(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err(path))?;
    let back = fs::read_to_string(path).map_err(io_err(path))?;
    if back.trim() != value {
        return Err(CgroupError::Invalid {
            path: path.to_path_buf(),
            reason: format!("wrote {value:?}, kernel reports {:?}", back.trim()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_groups_live_in_the_parent_and_a_sweep_looks_there_and_at_the_root() {
        let root = PathBuf::from("/sys/fs/cgroup");
        let layout = CgroupLayout::V2 { root: root.clone() };
        assert_eq!(
            layout.dirs_for("loadgen-1-0-r0"),
            vec![root.join("loadgen/loadgen-1-0-r0")]
        );
        assert_eq!(layout.roots(), vec![root.join("loadgen"), root]);
    }

    /// Plain files stand in for the kernel's: what matters is that both levels get `+cpu`, the
    /// root for the parent and the parent for the groups (whose `+cpu` is what keeps systemd
    /// from turning `cpu` off at the root).
    #[test]
    fn the_v2_parent_enables_cpu_at_the_root_and_for_its_groups() {
        let root = std::env::temp_dir().join(format!("loadgen-cg-v2-{}", std::process::id()));
        fs::create_dir_all(root.join(V2_PARENT)).unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        fs::write(root.join(V2_PARENT).join("cgroup.subtree_control"), "").unwrap();
        ensure_v2_parent(&root).unwrap();
        let control = |dir: &Path| fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap();
        assert_eq!(control(&root), "+cpu");
        assert_eq!(control(&root.join(V2_PARENT)), "+cpu");
        // Already on (as the kernel then lists it): nothing is written again.
        fs::write(root.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        ensure_v2_parent(&root).unwrap();
        assert_eq!(control(&root), "cpu memory pids\n");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_plain_directory_is_not_a_cgroup_root() {
        let dir = std::env::temp_dir().join(format!("loadgen-cg-detect-{}", std::process::id()));
        fs::create_dir_all(dir.join("cpu")).unwrap();
        fs::create_dir_all(dir.join("cpuacct")).unwrap();
        fs::write(dir.join("cpu/cpu.cfs_quota_us"), "-1").unwrap();
        fs::write(dir.join("cpuacct/cpuacct.usage"), "0").unwrap();
        let err = CgroupLayout::detect(&dir).unwrap_err();
        assert!(err.to_string().contains("not a mounted cgroup"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
