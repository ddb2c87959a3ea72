//! The user's own service on this machine: N replicas of `[service] command`, each on its own
//! port (and a second, metrics port) chosen free by loadgen, in its own cgroup with the step's
//! CFS quota, its stdout and stderr in its own folder of the run's output; and its
//! `[[dependency]]` processes, fresh per step or once per run. A replica or dependency is ready
//! when its port answers (HTTP 2xx on the ready path, or a TCP connect), is stopped with SIGTERM
//! then SIGKILL after its grace, and an exit mid-step is seen by the exit watch.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use super::groups::{begin, replica_cgroup};
use super::pki::Pki;
use super::process::ChildProcess;
use super::workdir::log_tail;
use super::{DeployError, Deployment, Replica};
use crate::http;
use crate::plan::service::{program_path, Command, CommandService, Ready, Scope};
use crate::plan::template::Values;
use crate::plan::{Store, Topology};
use cpu_cgroup::{self as cgroup, CgroupLayout, CGROUP_ROOT};
use loadgen_engine::tls::TlsSpec;

/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(20);
/// Bound of one readiness request.
const READY_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Lines of a process's stderr quoted in errors.
const STDERR_TAIL_LINES: usize = 5;

/// Attempts at starting a dependency whose port another process took between loadgen choosing
/// it and the dependency binding it (seen as "Address already in use" in its stderr).
const START_ATTEMPTS: u32 = 3;
/// What a process prints when its port was taken: `strerror(EADDRINUSE)`.
const ADDR_IN_USE: &str = "Address already in use";

/// A dependency process that runs.
#[derive(Debug)]
pub struct Running {
    pub name: String,
    pub port: u16,
    pub dir: PathBuf,
    // Declared before `cgroup`: on drop the process is killed before its group is removed.
    pub process: ChildProcess,
    pub stop_grace: Duration,
    /// An accounting-only group (no quota): a dependency orphaned by a killed loadgen is found
    /// and stopped by the next run's sweep, as its replicas are.
    pub cgroup: Option<cgroup::Cgroup>,
}

impl Running {
    /// SIGTERM, SIGKILL after its grace, then its group removed; what could not be cleaned up.
    pub async fn stop(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let super::process::Stopped::Unreaped = self.process.stop(self.stop_grace).await {
            problems.push(format!(
                "dependency {} (pid {}) could not be reaped",
                self.name,
                self.process.pid()
            ));
        }
        if let Some(group) = self.cgroup.as_mut() {
            if let Err(e) = group.remove() {
                problems.push(format!("cgroup {}: {e}", group.name()));
            }
        }
        problems
    }
}

/// An accounting-only group named `loadgen-<pid>-<suffix>` for a dependency, or none (it then
/// runs outside any group: it still works, but an orphan of a killed run is not swept).
pub(super) fn dependency_group(
    layout: Option<&CgroupLayout>,
    suffix: &str,
) -> Option<cgroup::Cgroup> {
    let name = format!("{}{}-{suffix}", cgroup::NAME_PREFIX, std::process::id());
    let layout = layout?;
    cgroup::Cgroup::create(layout, &name, None)
        .map_err(|e| tracing::warn!("{suffix} runs outside a cgroup: {e}"))
        .ok()
}

/// Starts local topologies of a user's service.
#[derive(Debug)]
pub struct CommandDeployer {
    service: CommandService,
    cgroup_root: PathBuf,
    /// Where replica and dependency folders go: `<run output>/service`.
    out_dir: PathBuf,
    /// Dependencies of `scope = "campaign"`, started by [`CommandDeployer::prepare`].
    campaign: Vec<Running>,
    /// The run's certificates, made on the first `tls = true` step.
    pki: Option<Pki>,
    pub(super) swept: Vec<String>,
}

impl CommandDeployer {
    pub fn new(service: &CommandService, out_dir: &Path) -> Self {
        Self {
            service: service.clone(),
            cgroup_root: PathBuf::from(CGROUP_ROOT),
            out_dir: out_dir.join("service"),
            campaign: Vec::new(),
            pki: None,
            swept: Vec::new(),
        }
    }

    /// Starts the campaign-scope dependencies, each ready before the next starts.
    pub async fn prepare(&mut self) -> Result<(), DeployError> {
        let deps: Vec<_> = self
            .service
            .dependencies
            .iter()
            .filter(|d| d.scope == Scope::Campaign)
            .cloned()
            .collect();
        // The layout only names where accounting groups go; a machine without one still runs
        // the dependencies.
        let layout = if deps.is_empty() {
            None
        } else {
            CgroupLayout::detect(&self.cgroup_root).ok()
        };
        for d in deps {
            let dir = self.out_dir.join("campaign").join(&d.name);
            let values = self.values_so_far(&[]);
            let group = || dependency_group(layout.as_ref(), &format!("campaign-{}", d.name));
            let running = start_dependency(&d.name, &d.command, &dir, values, group).await?;
            self.campaign.push(running);
        }
        Ok(())
    }

    /// Stops the campaign-scope dependencies (the run is over).
    pub async fn finish(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        while let Some(d) = self.campaign.pop() {
            problems.extend(d.stop().await);
        }
        problems
    }

    /// The dependencies' ports and folders known so far: the campaign's, then `step`'s.
    fn values_so_far(&self, step: &[Running]) -> Values {
        Values {
            dependencies: self
                .campaign
                .iter()
                .chain(step)
                .map(|r| (r.name.clone(), r.port, r.dir.clone()))
                .collect(),
            ..Values::default()
        }
    }

    /// Starts `topology` and returns once every dependency and replica is ready. On any
    /// failure everything started so far is stopped before the error is returned.
    pub async fn deploy(
        &mut self,
        topology: &Topology,
        bound: Duration,
    ) -> Result<Deployment, DeployError> {
        let (seq, layout) = begin(&self.cgroup_root, topology, &mut self.swept)?;
        let dir = self.out_dir.join(format!("deploy{seq}"));
        std::fs::create_dir_all(&dir).map_err(DeployError::WorkDir)?;
        let mut deployment = Deployment::external(String::new());
        deployment.store = Some(Store::Memory);
        deployment.cpu_limit_cores = topology.cpu_limit_cores;
        deployment.cgroup_mode = layout.as_ref().map(CgroupLayout::mode);
        deployment.grace = self.service.command.stop_grace;
        if topology.tls {
            deployment.tls = Some(Pki::ensure(&mut self.pki)?.trust());
        }
        deployment.dependency_pids = self
            .campaign
            .iter()
            .map(|r| (r.name.clone(), r.process.pid()))
            .collect();
        let started = self
            .start_all(&mut deployment, topology, layout.as_ref(), &dir, seq, bound)
            .await;
        deployment.kept_if(started).await
    }

    async fn start_all(
        &self,
        deployment: &mut Deployment,
        topology: &Topology,
        layout: Option<&CgroupLayout>,
        dir: &Path,
        seq: u32,
        bound: Duration,
    ) -> Result<(), DeployError> {
        for d in self
            .service
            .dependencies
            .iter()
            .filter(|d| d.scope == Scope::Step)
        {
            let values = self.values_so_far(&deployment.dependencies);
            let group = || dependency_group(layout, &format!("{seq}-dep-{}", d.name));
            let running =
                start_dependency(&d.name, &d.command, &dir.join(&d.name), values, group).await?;
            deployment
                .dependency_pids
                .push((running.name.clone(), running.process.pid()));
            deployment.dependencies.push(running);
        }
        let deadline = Instant::now() + bound.max(self.service.command.ready.timeout());
        // A TLS step: the command with its `tls_args`, and the run's files for them.
        let tls = self.pki.as_ref().filter(|_| topology.tls);
        let with_tls;
        let command = match tls {
            Some(_) => {
                with_tls = self.service.command.with_args(&self.service.tls_args);
                &with_tls
            }
            None => &self.service.command,
        };
        for index in 0..topology.replicas {
            let group = format!(
                "{}{}-{seq}-r{index}",
                cgroup::NAME_PREFIX,
                std::process::id()
            );
            let cgroup = layout
                .map(|l| replica_cgroup(l, &group, topology))
                .transpose()?;
            let values = Values {
                port: Some(free_port()?),
                metrics_port: Some(free_port()?),
                replica: Some(index),
                dir: Some(dir.join(format!("replica-{index}"))),
                tls: tls.map(Pki::server_files),
                ..self.values_so_far(&deployment.dependencies)
            };
            let replica = self.start_replica(command, index, values, cgroup)?;
            let scheme = deployment.scheme();
            deployment
                .endpoints
                .push(format!("{scheme}://{}", replica.addr));
            deployment.replicas.push(replica);
        }
        deployment.base_url = deployment.endpoints[0].clone();
        self.wait_replicas(deployment, deadline).await
    }

    /// Waits until every replica of `deployment` is ready (over the run's TLS in a `tls = true`
    /// step) and in its cgroup.
    async fn wait_replicas(
        &self,
        deployment: &mut Deployment,
        deadline: Instant,
    ) -> Result<(), DeployError> {
        for r in &mut deployment.replicas {
            let port = r.port().unwrap_or(0);
            let what = format!("replica {}", r.index);
            let ready = &self.service.command.ready;
            let probe = Probe {
                port,
                tls: deployment.tls.as_ref(),
            };
            wait_ready(
                ready,
                probe,
                &mut r.process,
                r.log.as_deref(),
                &what,
                deadline,
            )
            .await
            .map_err(|e| e.for_replica(r.index))?;
            // The launcher joins the group before it execs the program: once the program
            // answers, it must be in its group, or its CPU would be measured elsewhere.
            if let Some(group) = &r.cgroup {
                if !group.contains(r.pid) {
                    return Err(DeployError::Cgroup(format!(
                        "{what} (pid {}) is not in cgroup {}",
                        r.pid,
                        group.name()
                    )));
                }
            }
        }
        Ok(())
    }

    fn start_replica(
        &self,
        command: &Command,
        index: u32,
        values: Values,
        cgroup: Option<cgroup::Cgroup>,
    ) -> Result<Replica, DeployError> {
        let what = format!("replica {index}");
        let dir = values.dir.clone().unwrap_or_default();
        let port = values.port.unwrap_or(0);
        let metrics_port = values.metrics_port;
        let scrape_url = self.service.scrape.as_ref().map(|t| t.render(&values));
        let (process, stderr) = spawn(command, &values, cgroup.as_ref(), &dir, &what)?;
        Ok(Replica {
            index,
            pid: process.pid(),
            addr: format!("127.0.0.1:{port}"),
            admin_url: String::new(),
            metrics_port,
            scrape_url,
            process,
            cgroup,
            log: Some(stderr),
        })
    }
}

/// Starts one dependency in `dir` on a free port, in a group from `group` when one can be made,
/// and waits until it is ready. A port taken before the dependency bound it is retried on
/// another, at most [`START_ATTEMPTS`] times.
pub(super) async fn start_dependency(
    name: &str,
    command: &Command,
    dir: &Path,
    values: Values,
    group: impl Fn() -> Option<cgroup::Cgroup>,
) -> Result<Running, DeployError> {
    let what = format!("dependency {name}");
    let mut attempt = 1;
    loop {
        let port = free_port()?;
        let values = Values {
            port: Some(port),
            dir: Some(dir.to_path_buf()),
            ..values.clone()
        };
        let cgroup = group();
        let (mut process, stderr) = spawn(command, &values, cgroup.as_ref(), dir, &what)?;
        let deadline = Instant::now() + command.ready.timeout();
        match wait_ready(
            &command.ready,
            Probe { port, tls: None },
            &mut process,
            Some(&stderr),
            &what,
            deadline,
        )
        .await
        {
            Ok(()) => {
                return Ok(Running {
                    name: name.to_string(),
                    port,
                    dir: dir.to_path_buf(),
                    process,
                    stop_grace: command.stop_grace,
                    cgroup,
                })
            }
            Err(NotReady::Exited { stderr, .. })
                if stderr.contains(ADDR_IN_USE) && attempt < START_ATTEMPTS =>
            {
                tracing::debug!("{what}: port {port} was taken, trying another");
                attempt += 1;
            }
            Err(e) => return Err(e.for_dependency(name)),
        }
    }
}

/// Spawns `command` with `values` filled in, in `cgroup` when given (it joins before its first
/// instruction), stdout and stderr into `dir`; returns the process and its stderr file.
fn spawn(
    command: &Command,
    values: &Values,
    group: Option<&cgroup::Cgroup>,
    dir: &Path,
    what: &str,
) -> Result<(ChildProcess, PathBuf), DeployError> {
    let spawn_err = |source| DeployError::Spawn {
        what: what.to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(spawn_err)?;
    let argv: Vec<String> = command.argv.iter().map(|t| t.render(values)).collect();
    let program = program_path(&command.cwd, &argv[0]);
    let mut cmd = match group {
        Some(g) => g.command(&program),
        None => std::process::Command::new(&program),
    };
    let stdout = dir.join("stdout.log");
    let stderr = dir.join("stderr.log");
    let file = |p: &Path| std::fs::File::create(p).map_err(spawn_err);
    cmd.args(&argv[1..])
        .envs(command.env.iter().map(|(k, v)| (k, v.render(values))))
        .current_dir(&command.cwd)
        .stdin(Stdio::null())
        .stdout(file(&stdout)?)
        .stderr(file(&stderr)?);
    let child = cmd.spawn().map_err(|source| DeployError::Spawn {
        what: format!("{what} ({})", program.display()),
        source,
    })?;
    Ok((ChildProcess::new(child, what.to_string()), stderr))
}

/// Why a process was not ready.
#[derive(Debug)]
enum NotReady {
    Exited { status: String, stderr: String },
    Timeout { last: String },
}

impl NotReady {
    fn for_replica(self, index: u32) -> DeployError {
        match self {
            NotReady::Exited { status, stderr } => DeployError::ReplicaExited {
                index,
                status,
                stderr,
            },
            NotReady::Timeout { last } => DeployError::NotReady {
                index,
                reason: last,
            },
        }
    }

    fn for_dependency(self, name: &str) -> DeployError {
        let reason = match self {
            NotReady::Exited { status, stderr } => {
                format!("exited before it was ready ({status}); stderr: {stderr}")
            }
            NotReady::Timeout { last } => format!("not ready within its timeout: {last}"),
        };
        DeployError::Dependency {
            name: name.to_string(),
            reason,
        }
    }
}

/// Where a readiness check goes: the process's port, over TLS with `tls` (the run's CA) when it
/// serves the run's certificate.
#[derive(Debug, Clone, Copy)]
struct Probe<'a> {
    port: u16,
    tls: Option<&'a TlsSpec>,
}

/// Polls `ready` on the probe's port until it holds, the process exits, or `deadline`.
async fn wait_ready(
    ready: &Ready,
    Probe { port, tls }: Probe<'_>,
    process: &mut ChildProcess,
    stderr: Option<&Path>,
    what: &str,
    deadline: Instant,
) -> Result<(), NotReady> {
    loop {
        let last = match ready {
            Ready::Http { path, .. } => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                let url = format!("{scheme}://127.0.0.1:{port}{path}");
                match http::get_with(&url, READY_REQUEST_TIMEOUT, tls).await {
                    Ok((s, _)) if (200..300).contains(&s) => return Ok(()),
                    Ok((s, _)) => format!("GET {url} answered {s}"),
                    Err(e) => format!("GET {url}: {e}"),
                }
            }
            Ready::Tcp { .. } => match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(_) => return Ok(()),
                Err(e) => format!("connect 127.0.0.1:{port}: {e}"),
            },
        };
        if let Some(status) = process.try_exited() {
            if status.code() == Some(cpu_cgroup::group::JOIN_FAILED_EXIT) {
                return Err(NotReady::Exited {
                    status: format!("{status}: could not join its cgroup"),
                    stderr: String::new(),
                });
            }
            let stderr = stderr
                .map(|p| log_tail(p, STDERR_TAIL_LINES))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "(empty)".into());
            return Err(NotReady::Exited {
                status: status.to_string(),
                stderr,
            });
        }
        if Instant::now() >= deadline {
            tracing::debug!("{what} not ready: {last}");
            return Err(NotReady::Timeout { last });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// A port free on loopback now (the process binds it a moment later: another process could
/// take it in between, which then shows as a replica that is not ready, with why).
pub fn free_port() -> Result<u16, DeployError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| DeployError::Spawn {
        what: "a free port".into(),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| DeployError::Spawn {
            what: "a free port".into(),
            source,
        })
}
