//! A user's own service as the plan holds it: the command each replica runs, its environment,
//! when it is ready, how it is stopped and how load is spread over the replicas, and the
//! dependencies loadgen starts for it (a database, a cache), each fresh per step or once per
//! run. Everything here is checked at expansion; the deployer only fills in placeholders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::template::Template;
use loadgen_engine::Balance;

/// The default readiness bound of a replica or dependency.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The default time between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How to tell a process is ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    /// HTTP GET on `http://127.0.0.1:{port}{path}` until a 2xx.
    Http { path: String, timeout: Duration },
    /// A TCP connect to `127.0.0.1:{port}`.
    Tcp { timeout: Duration },
}

impl Ready {
    pub fn timeout(&self) -> Duration {
        match self {
            Ready::Http { timeout, .. } | Ready::Tcp { timeout } => *timeout,
        }
    }
}

/// A process loadgen starts: argv (the program first) and environment, with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub argv: Vec<Template>,
    pub env: Vec<(String, Template)>,
    /// Where it runs, and what a relative program path is relative to: the scenario's folder.
    pub cwd: PathBuf,
    pub ready: Ready,
    pub stop_grace: Duration,
}

impl Command {
    /// The same command with `args` appended (a TLS step's `tls_args`).
    pub fn with_args(&self, args: &[Template]) -> Command {
        let mut c = self.clone();
        c.argv.extend(args.iter().cloned());
        c
    }
}

/// `scope` of a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Started fresh for every step and stopped with it.
    Step,
    /// Started once before the first step and stopped after the run.
    Campaign,
}

/// A `[[dependency]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub command: Command,
    pub scope: Scope,
}

/// A local target that runs the user's `[service] command`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandService {
    pub command: Command,
    pub balance: Balance,
    /// Appended to the command's argv in a `tls = true` step (`[service] tls_args`); empty:
    /// the service cannot be asked to serve HTTPS.
    pub tls_args: Vec<Template>,
    /// In declaration order: each may use the ports of those before it.
    pub dependencies: Vec<Dependency>,
    /// The exposition a managed Prometheus scrapes on each replica (`[prometheus] scrape`, or
    /// the `metric` counter's URL); `None` without a managed Prometheus.
    pub scrape: Option<Template>,
}

/// The program of a command as it is started: a path is resolved from the scenario's folder
/// (`cwd`), a bare name from PATH.
pub fn program_path(cwd: &Path, program: &str) -> PathBuf {
    let p = Path::new(program);
    if p.is_absolute() || !program.contains('/') {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}
