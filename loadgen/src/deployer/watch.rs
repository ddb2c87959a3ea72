//! Exit watch: notices, as it happens, that a process of a deployment (a replica, Redis) has
//! exited during a step — from the kernel's own exit notification (a pidfd becomes readable
//! when its process exits), not by polling a port — and records when and how (exit code or
//! signal), without reaping it (teardown still owns and reaps the child).

use std::os::fd::AsFd as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::process::{pidfd_open, waitid, Pid, PidfdFlags, WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Replica(u32),
    /// A dependency (polymetrie's Redis is one), by its place in the deployment's
    /// `dependency_pids`.
    Dependency(u32),
}

/// One process that exited while watched.
#[derive(Debug, Clone, PartialEq)]
pub struct Exited {
    pub component: Component,
    pub pid: u32,
    /// When the exit was noticed.
    pub at: Instant,
    /// `exit code N` or `killed by signal N (SIGNAME)`.
    pub status: String,
}

/// A running watch over a set of processes; dropping it stops watching.
#[derive(Debug)]
pub struct ExitWatch {
    exits: Arc<Mutex<Vec<Exited>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Processes that could not be watched (no pidfd: kernel older than 5.3), with why.
    pub unwatched: Vec<(Component, String)>,
}

impl ExitWatch {
    /// Starts watching `(component, pid)` pairs. Must be called within a tokio runtime.
    pub fn start(watched: &[(Component, u32)]) -> ExitWatch {
        let exits = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let mut unwatched = Vec::new();
        for &(component, pid) in watched {
            match open(pid) {
                Ok(fd) => {
                    let exits = exits.clone();
                    tasks.push(tokio::spawn(async move {
                        if let Some(e) = wait_exit(fd, component, pid).await {
                            exits.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                        }
                    }));
                }
                Err(e) => unwatched.push((component, e.to_string())),
            }
        }
        ExitWatch {
            exits,
            tasks,
            unwatched,
        }
    }

    /// The exits noticed so far, in the order they were noticed.
    pub fn exits(&self) -> Vec<Exited> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[allow(unsafe_code)]
fn open(pid: u32) -> std::io::Result<AsyncFd<std::os::fd::OwnedFd>> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("bad pid {pid}")))?;
    let fd = pidfd_open(pid, PidfdFlags::NONBLOCK)?;
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open (and is not reused
    // for another file) for as long as it is registered, and is deregistered before it closes.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(std::io::Error::from)
}

async fn wait_exit(
    fd: AsyncFd<std::os::fd::OwnedFd>,
    component: Component,
    pid: u32,
) -> Option<Exited> {
    // A pidfd polls readable once its process has exited (and stays so).
    let _ready = fd.readable().await.ok()?;
    let at = Instant::now();
    // WNOWAIT: read the status but leave the child waitable for teardown to reap.
    let status = waitid(
        WaitId::PidFd(fd.get_ref().as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
    );
    let status = match status {
        Ok(Some(s)) => describe(s.exit_status(), s.terminating_signal()),
        Ok(None) => "exited".to_string(),
        Err(e) => format!("exited (status unreadable: {e})"),
    };
    Some(Exited {
        component,
        pid,
        at,
        status,
    })
}

/// `exit code N` or `killed by signal N (SIGNAME)`.
pub fn describe(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        (Some(code), None) => format!("exit code {code}"),
        (None, None) => "exited".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notices_a_child_killed_by_a_signal_without_reaping_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut quick = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let watch = ExitWatch::start(&[
            (Component::Replica(0), child.id()),
            (Component::Dependency(0), quick.id()),
        ]);
        assert!(watch.unwatched.is_empty(), "{:?}", watch.unwatched);
        child.kill().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while watch.exits().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let exits = watch.exits();
        let of = |c| {
            exits
                .iter()
                .find(|e| e.component == c)
                .map(|e| e.status.clone())
        };
        assert_eq!(
            of(Component::Replica(0)).as_deref(),
            Some("killed by signal 9 (SIGKILL)")
        );
        assert_eq!(of(Component::Dependency(0)).as_deref(), Some("exit code 3"));
        // Still ours to reap: the watch used WNOWAIT.
        assert!(child.wait().unwrap().code().is_none());
        assert_eq!(quick.wait().unwrap().code(), Some(3));
    }
}
