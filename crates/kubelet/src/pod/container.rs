//! One container of a pod: its program, environment, mounts and CPU group, how it is started
//! inside the pod's namespaces, and the state the pod's status reports for it.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use cpu_cgroup::Cgroup;
use k8s_openapi::api::core::v1::Container;
use tokio::sync::mpsc;

use crate::image::Executable;
use crate::network::host_program;
use crate::probe::Prober;
use crate::time::now;
use crate::volume::Mount;

/// (Both scripts find their own tools on the host's `PATH`, and give the program the container's.)
///
/// Joins the CPU groups, then execs the rest: the pid `spawn` returns is the program's, in its
/// group before its first instruction.
const JOIN: &str = r#"saved=$PATH; PATH=/usr/sbin:/usr/bin:/sbin:/bin
n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done
shift
PATH=$saved exec "$@""#;

/// Binds the pod's `/etc/hosts` and the volumes, then execs the program. It runs in the pod's
/// network namespace (`nsenter --net`) and a mount namespace of its own (`unshare --mount`,
/// a slave of the host's, so nothing mounted here leaks out). Not `ip netns exec`: it remounts
/// `/sys`, which would hide the cgroup files a service reads its own CPU from.
///
/// The program is opened (fd 3) before any mount and executed through that descriptor: a
/// volume on `/tmp` would otherwise hide a program whose path is under `/tmp` (a checkout
/// there). Its `argv[0]` is then `/proc/self/fd/3`; `/proc/<pid>/exe` still names the program.
const MOUNT: &str = r#"saved=$PATH; PATH=/usr/sbin:/usr/bin:/sbin:/bin
exec 3<"$1" || exit 96
shift
m=$1; shift
while [ "$m" -gt 0 ]; do
  if [ -f "$1" ]; then mkdir -p "$(dirname "$2")" && { [ -e "$2" ] || : > "$2"; }
  else mkdir -p "$2"; fi || exit 96
  mount --bind "$1" "$2" || exit 96
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2" || exit 96; fi
  shift 3; m=$((m-1))
done
shift
PATH=$saved exec /proc/self/fd/3 "$@""#;

/// A container's state as the pod status shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting { reason: String, message: String },
    Running { started: String },
    Terminated(Terminated),
}

/// How a run of the container ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub started: String,
    pub finished: String,
}

/// A container's exit, tagged with the run it ends (a late exit of an earlier run is ignored).
#[derive(Debug)]
pub struct Exit {
    pub index: usize,
    pub run: u64,
    pub status: std::io::Result<ExitStatus>,
}

/// One container and everything the stand-in keeps about it.
pub struct ContainerRun {
    pub spec: Container,
    pub exe: Executable,
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub cgroup: Cgroup,
    pub log: PathBuf,
    pub pid: Option<u32>,
    pub state: State,
    pub last: Option<Terminated>,
    pub restarts: i32,
    pub ready: bool,
    pub prober: Option<Prober>,
    /// Which run the current process is (bumped on every start).
    pub run: u64,
    /// When the container (first) started, seconds since the epoch, for `/metrics/resource`.
    pub first_start: Option<f64>,
}

impl ContainerRun {
    /// Starts the program in network namespace `netns`; its exit reaches `exits`.
    pub fn start(&mut self, index: usize, netns: &str, exits: mpsc::UnboundedSender<Exit>) {
        match self.spawn(netns) {
            Ok(child) => {
                self.run += 1;
                self.pid = child.id();
                self.write_pid_file();
                self.state = State::Running { started: now() };
                self.first_start.get_or_insert_with(epoch_seconds);
                let run = self.run;
                tokio::spawn(async move {
                    let mut child = child;
                    let status = child.wait().await;
                    let _ = exits.send(Exit { index, run, status });
                });
            }
            Err(e) => {
                self.state = State::Waiting {
                    reason: "RunContainerError".into(),
                    message: e,
                };
            }
        }
    }

    /// `<log>.pid`: the pid and the program, so `k8s/testbed/down` can stop a pod's process
    /// by pid (checking `/proc/<pid>/exe` still is that program) if the stand-in was killed.
    fn write_pid_file(&self) {
        if let Some(pid) = self.pid {
            let path = self.log.with_extension("pid");
            let text = format!("{pid}\n{}\n", self.exe.program.display());
            if let Err(e) = std::fs::write(&path, text) {
                tracing::warn!("{}: {e}", path.display());
            }
        }
    }

    fn spawn(&self, netns: &str) -> Result<tokio::process::Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let procs = self.cgroup.procs_files();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", JOIN, "standin-join"])
            .arg(procs.len().to_string())
            .args(&procs)
            .arg("--")
            .arg(host_program("nsenter"))
            .arg(format!("--net=/run/netns/{netns}"))
            .arg("--")
            .arg(host_program("unshare"))
            .args(["--mount", "--propagation", "slave", "--"])
            .args(["/bin/sh", "-c", MOUNT, "standin-mount"])
            .arg(&self.exe.program);
        let hosts = Mount {
            source: PathBuf::from("/etc/netns").join(netns).join("hosts"),
            target: PathBuf::from("/etc/hosts"),
            read_only: true,
        };
        let mounts = mount_order(std::iter::once(&hosts).chain(&self.mounts).collect());
        cmd.arg(mounts.len().to_string());
        for m in mounts {
            cmd.arg(&m.source)
                .arg(&m.target)
                .arg(if m.read_only { "ro" } else { "rw" });
        }
        cmd.arg("--").args(&self.exe.args);
        cmd.env_clear()
            .envs(&self.env)
            .current_dir(self.spec.working_dir.as_deref().unwrap_or("/"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            // Its own process group: a SIGKILL after the grace reaches whatever it forked.
            .process_group(0)
            .kill_on_drop(false);
        cmd.spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.program.display()))
    }

    /// Records an exit: the state becomes `Terminated` with the kubelet's reasons.
    pub fn exited(&mut self, status: &std::io::Result<ExitStatus>) -> Terminated {
        let started = match &self.state {
            State::Running { started } => started.clone(),
            _ => now(),
        };
        let (exit_code, signal) = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => (c, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                (None, None) => (-1, None),
            },
            Err(_) => (-1, None),
        };
        let reason = match exit_code {
            0 => "Completed",
            97 | 96 => "StartError",
            _ => "Error",
        };
        let t = Terminated {
            exit_code,
            signal,
            reason: reason.into(),
            started,
            finished: now(),
        };
        self.pid = None;
        self.ready = false;
        self.state = State::Terminated(t.clone());
        t
    }
}

fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The mounts in an order where none hides the source of a later one: a mount whose target
/// holds another's source (an `emptyDir` on `/tmp` over a state folder under `/tmp`) goes last.
fn mount_order(mut mounts: Vec<&Mount>) -> Vec<&Mount> {
    let sources: Vec<std::path::PathBuf> = mounts.iter().map(|m| m.source.clone()).collect();
    mounts.sort_by_key(|m| sources.iter().any(|s| s.starts_with(&m.target)));
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(source: &str, target: &str) -> Mount {
        Mount {
            source: source.into(),
            target: target.into(),
            read_only: false,
        }
    }

    #[test]
    fn a_mount_over_a_sources_folder_comes_after_it() {
        let tmp = mount("/tmp/state/pod/volumes/tmp", "/tmp");
        let token = mount("/tmp/state/pod/volumes/token", "/var/run/secrets");
        let data = mount("/srv/data", "/data");
        let order = mount_order(vec![&tmp, &token, &data]);
        let targets: Vec<_> = order.iter().map(|m| m.target.to_str().unwrap()).collect();
        assert_eq!(targets, ["/var/run/secrets", "/data", "/tmp"]);
    }
}
