//! The local deployer: N real `polymetrie` replicas on this machine, each on its own port (the
//! generator spreads requests over them as a front end does), each in its own cgroup with the
//! step's CFS quota, and a Redis when the counter is shared: a `[[dependency]]` of scope
//! `step` like any user's (started, watched, stopped and swept by the same code), which
//! loadgen declares itself.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::command::{dependency_group, start_dependency};
use super::groups::{begin, replica_cgroup};
use super::pki::Pki;
use super::replica::{self, Launch};
use super::workdir::WorkDir;
use super::{DeployError, Deployment};
use crate::external;
use crate::plan::service::{Command, Ready, READY_TIMEOUT};
use crate::plan::template::{Context, Template, Values};
use crate::plan::{LocalService, Store, Topology};
use cpu_cgroup::{self as cgroup, CgroupLayout, CGROUP_ROOT};

/// The name of polymetrie's Redis among the deployment's dependencies.
pub const REDIS: &str = "redis";
/// How long Redis gets to exit after SIGTERM (it saves nothing: persistence is off).
const REDIS_STOP_GRACE: Duration = Duration::from_secs(3);

/// Starts local topologies of the bundled service.
#[derive(Debug)]
pub struct LocalDeployer {
    service: LocalService,
    cgroup_root: PathBuf,
    binary: Option<PathBuf>,
    /// The run's certificates, made on the first `tls = true` step.
    pki: Option<Pki>,
    /// Lines about what [`cgroup::remove_stale`] swept, until the run takes them.
    pub(super) swept: Vec<String>,
}

impl LocalDeployer {
    /// A deployer using the machine's cgroups under `/sys/fs/cgroup`.
    pub fn new(service: &LocalService) -> Self {
        Self::with_cgroup_root(service, CGROUP_ROOT)
    }

    /// A deployer using cgroups under `root` instead (a root that is not a usable cgroup file
    /// system makes limited steps fail and unlimited ones run unaccounted).
    pub fn with_cgroup_root(service: &LocalService, root: impl Into<PathBuf>) -> Self {
        Self {
            service: service.clone(),
            cgroup_root: root.into(),
            binary: service.binary.clone(),
            pki: None,
            swept: Vec::new(),
        }
    }

    /// The `polymetrie` binary, resolved once (may build it with cargo: not part of `bound`).
    async fn binary(&mut self) -> Result<PathBuf, DeployError> {
        if let Some(b) = &self.binary {
            return Ok(b.clone());
        }
        let found = tokio::task::spawn_blocking(external::polymetrie_binary)
            .await
            .map_err(|e| DeployError::Spawn {
                what: "polymetrie lookup".into(),
                source: std::io::Error::other(e.to_string()),
            })??;
        self.binary = Some(found.clone());
        Ok(found)
    }

    /// Starts `topology` and returns once every replica answers `/readyz`, within `bound`
    /// (after the binary is found). On any failure everything started so far is torn down
    /// before the error is returned.
    pub async fn deploy(
        &mut self,
        topology: &Topology,
        bound: Duration,
    ) -> Result<Deployment, DeployError> {
        let (seq, layout) = begin(&self.cgroup_root, topology, &mut self.swept)?;
        self.swept.extend(super::workdir::remove_stale());
        let redis_binary = match topology.store {
            Store::Redis => Some(external::require("redis-server", "redis-server")?),
            Store::Memory => None,
        };
        let binary = self.binary().await?;
        if topology.tls {
            Pki::ensure(&mut self.pki)?;
        }
        let tls = self.pki.as_ref().filter(|_| topology.tls);
        let deadline = Instant::now() + bound;
        let workdir = WorkDir::create(&format!("deploy{seq}")).map_err(DeployError::WorkDir)?;

        let mut deployment = Deployment {
            store: Some(topology.store),
            cpu_limit_cores: topology.cpu_limit_cores,
            cgroup_mode: layout.as_ref().map(CgroupLayout::mode),
            tls: tls.map(|p| p.trust()),
            workdir: Some(workdir),
            ..Deployment::external(String::new())
        };
        let result = self
            .start_all(
                &mut deployment,
                topology,
                layout.as_ref(),
                redis_binary,
                &binary,
                seq,
                deadline,
                tls,
            )
            .await;
        deployment.kept_if(result).await
    }

    /// The `--store` of the replicas: a Redis started for the step (in an accounting group),
    /// or memory.
    async fn start_store(
        &self,
        deployment: &mut Deployment,
        layout: Option<&CgroupLayout>,
        redis_binary: Option<PathBuf>,
        dir: &std::path::Path,
        seq: u32,
    ) -> Result<String, DeployError> {
        let Some(binary) = redis_binary else {
            return Ok("memory".into());
        };
        let command = redis_command(&binary, dir);
        let group = || dependency_group(layout, &format!("{seq}-dep-{REDIS}"));
        let redis =
            start_dependency(REDIS, &command, &dir.join(REDIS), Values::default(), group).await?;
        let url = format!("redis://127.0.0.1:{}", redis.port);
        deployment
            .dependency_pids
            .push((REDIS.into(), redis.process.pid()));
        deployment.dependencies.push(redis);
        Ok(url)
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_all(
        &self,
        deployment: &mut Deployment,
        topology: &Topology,
        layout: Option<&CgroupLayout>,
        redis_binary: Option<PathBuf>,
        binary: &std::path::Path,
        seq: u32,
        deadline: Instant,
        tls: Option<&Pki>,
    ) -> Result<(), DeployError> {
        let dir = deployment
            .workdir
            .as_ref()
            .map(|w| w.path().to_path_buf())
            .unwrap_or_else(std::env::temp_dir);
        let group_name = |suffix: &str| {
            format!(
                "{}{}-{seq}-{suffix}",
                cgroup::NAME_PREFIX,
                std::process::id()
            )
        };
        let store_arg = self
            .start_store(deployment, layout, redis_binary, &dir, seq)
            .await?;
        // Each replica has its own port and the generator spreads requests over them, as a front
        // end does.
        for index in 0..topology.replicas {
            let cgroup = layout
                .map(|l| replica_cgroup(l, &group_name(&format!("r{index}")), topology))
                .transpose()?;
            let launch = Launch {
                index,
                binary,
                service: &self.service,
                listen: "127.0.0.1:0".to_string(),
                admin_listen: "127.0.0.1:0".to_string(),
                store_arg: store_arg.clone(),
                cgroup,
                log_dir: &dir,
                tls: tls.map(Pki::server_files),
            };
            let replica = replica::start(launch, deadline).await?;
            place(deployment, replica);
        }
        for replica in &mut deployment.replicas {
            replica.wait_ready(deadline).await?;
        }
        Ok(())
    }
}

/// Debian's `redis-server` on the dependency's free loopback port, persistence off (a step
/// starts from an empty store), its files in its own folder; ready when it accepts a
/// connection (it loads nothing first).
fn redis_command(binary: &std::path::Path, dir: &std::path::Path) -> Command {
    let arg = |a: &str| Template::parse(a, Context::Dependency).expect("a valid template");
    let mut argv = vec![Template::literal(&binary.to_string_lossy())];
    argv.extend(
        [
            "--port",
            "{port}",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            "{dir}",
        ]
        .map(arg),
    );
    Command {
        argv,
        env: Vec::new(),
        cwd: dir.to_path_buf(),
        ready: Ready::Tcp {
            timeout: READY_TIMEOUT,
        },
        stop_grace: REDIS_STOP_GRACE,
    }
}

/// Records a started replica: its own endpoint, and the first one's as the base URL
/// (`https://` when the replicas serve the run's certificate).
fn place(deployment: &mut Deployment, replica: super::Replica) {
    let addr = replica.addr.clone();
    let scheme = deployment.scheme();
    if replica.index == 0 {
        deployment.base_url = format!("{scheme}://{addr}");
    }
    deployment.endpoints.push(format!("{scheme}://{addr}"));
    deployment.replicas.push(replica);
}
