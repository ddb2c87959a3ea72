//! A child process we started (a replica or Redis): graceful stop (SIGTERM, bounded wait, then
//! SIGKILL), always reaped, and killed on drop as a last resort so a panicking runner leaves no
//! process behind.

use std::process::{Child, ExitStatus};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

/// How often a stopping child is polled for exit.
const EXIT_POLL: Duration = Duration::from_millis(10);
/// How long to wait for a child to be reaped after SIGKILL (it cannot ignore it).
const KILL_REAP_BOUND: Duration = Duration::from_secs(2);

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Exited on its own or after SIGTERM within the grace period.
    Exited(ExitStatus),
    /// Needed SIGKILL.
    Killed,
    /// Could not be reaped even after SIGKILL (should not happen).
    Unreaped,
}

/// An owned child process.
#[derive(Debug)]
pub struct ChildProcess {
    child: Option<Child>,
    /// Set once reaped after exiting on its own (not by our SIGKILL).
    status: Option<ExitStatus>,
    pid: u32,
    what: String,
}

impl ChildProcess {
    /// Takes ownership of a spawned child; `what` names it in messages.
    pub fn new(child: Child, what: impl Into<String>) -> Self {
        Self {
            pid: child.id(),
            child: Some(child),
            status: None,
            what: what.into(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// The exit status if the child has exited (reaping it), `None` while it runs.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return self.status;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.status = Some(status);
                Some(status)
            }
            _ => None,
        }
    }

    /// True until the child has been reaped.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exited().is_none()
    }

    /// Asks the child to stop (SIGTERM) without waiting.
    pub fn terminate(&self) {
        if self.child.is_some() {
            signal(self.pid, Signal::TERM);
        }
    }

    /// Waits up to `grace` for the child to exit, then SIGKILLs and reaps it.
    pub async fn wait_or_kill(&mut self, grace: Duration) -> Stopped {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            if self.child.is_none() {
                return self.status.map_or(Stopped::Killed, Stopped::Exited);
            }
            if let Some(status) = self.try_exited() {
                return Stopped::Exited(status);
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        self.kill_and_reap()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL: the graceful stop.
    pub async fn stop(&mut self, grace: Duration) -> Stopped {
        self.terminate();
        self.wait_or_kill(grace).await
    }

    /// SIGKILL and reap synchronously (bounded): for drop and error paths.
    pub fn kill_and_reap(&mut self) -> Stopped {
        let Some(child) = self.child.as_mut() else {
            return self.status.map_or(Stopped::Killed, Stopped::Exited);
        };
        let _ = child.kill();
        let deadline = std::time::Instant::now() + KILL_REAP_BOUND;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                    return Stopped::Killed;
                }
                Ok(None) if std::time::Instant::now() >= deadline => return Stopped::Unreaped,
                Ok(None) => std::thread::sleep(EXIT_POLL),
            }
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Stopped::Unreaped = self.kill_and_reap() {
                tracing::warn!("{} (pid {}) could not be reaped", self.what, self.pid);
            }
        }
    }
}

fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // ESRCH (already gone) is fine: the child is reaped by the wait that follows.
        let _ = kill_process(pid, sig);
    }
}
