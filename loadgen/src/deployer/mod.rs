//! Deployers: bring up the topology of a step (local replicas, a URL that is already running,
//! or a Deployment on a cluster) and tear it down on every exit path — for a cluster, restore
//! the Deployment's original shape once the run ends ([`Deployer::finish`]).
//!
//! A [`Deployment`] owns everything it started (replica processes, their cgroups, Redis, a
//! temporary directory). [`Deployment::teardown`] stops them gracefully; if a deployment is
//! dropped without teardown (a panic, an early return), each handle kills and removes what it
//! owns synchronously, so no process or cgroup of ours outlives the runner.
//!
//! ```text
//! let mut deployer = Deployer::for_target(&plan.target, &plan.tls, &out_dir);
//! let d = deployer.deploy(&step.topology, READY_BOUND).await?;   // Err: the step cannot run
//! let before = probe::snapshot(&d, &plan.counter).await;
//! /* attack d.endpoints (or d.base_url) */
//! let after = probe::snapshot(&d, &plan.counter).await;
//! let (counter, cpu) = probe::diff(&before, &after);
//! d.teardown().await?;                                            // Err: something was left
//! ```

pub mod command;
mod groups;
pub mod kubernetes;
pub mod local;
pub mod pki;
pub mod process;
pub mod replica;
pub mod url;
pub mod watch;
pub mod workdir;

use std::time::Duration;

pub use command::CommandDeployer;
pub use cpu_cgroup::{Cgroup, CgroupCpu, CgroupLayout};
pub use kubernetes::{KubeError, KubernetesDeployer, PodTarget, ScaleWatch};
pub use local::LocalDeployer;
pub use replica::Replica;
pub use url::UrlDeployer;

use crate::external::ExternalError;
use crate::plan::{Store, Target, Topology};
use loadgen_model::result::TopologyView;

/// A readiness bound that suits this machine: a replica is ready in well under a second, Redis
/// in ~40 ms, but a loaded 2-core machine can stretch both.
pub const READY_BOUND: Duration = Duration::from_secs(30);
/// How long replicas get to drain in-flight requests after SIGTERM before SIGKILL.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Why a deployment could not be brought up (or fully torn down).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    #[error(transparent)]
    External(#[from] ExternalError),
    #[error(
        "step needs a cpu limit of {limit} cores but cpu cgroups are not usable ({reason}); \
         refusing to run it unlimited (run as root on a machine with writable cgroups)"
    )]
    CgroupUnavailable { limit: f64, reason: String },
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("could not start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("replica {index} exited before it was ready ({status}); stderr: {stderr}")]
    ReplicaExited {
        index: u32,
        status: String,
        stderr: String,
    },
    #[error("replica {index} not ready within the readiness bound: {reason}")]
    NotReady { index: u32, reason: String },
    #[error("replica {index} printed an unexpected first line: {line}")]
    BadListeningLine { index: u32, line: String },
    #[error("dependency {name}: {reason}")]
    Dependency { name: String, reason: String },
    #[error("target {base} is unreachable: {reason}")]
    Unreachable { base: String, reason: String },
    #[error("temporary directory: {0}")]
    WorkDir(std::io::Error),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("teardown incomplete: {}", .0.join("; "))]
    Teardown(Vec<String>),
    #[error(transparent)]
    Kubernetes(#[from] KubeError),
}

/// A deployed topology: where to send load, and the replicas we own (none for a URL target).
#[derive(Debug)]
pub struct Deployment {
    /// Where load goes: replica 0's `http://127.0.0.1:PORT` (the authority of the `Host`
    /// header), the Service of a cluster, the URL of a running service; no trailing slash.
    pub base_url: String,
    /// Each local replica's own base URL, for the generator to spread requests over (empty:
    /// `base_url` is the only endpoint).
    pub endpoints: Vec<String>,
    /// Our replicas, in start order (index 0 first); empty for a URL or cluster target.
    pub replicas: Vec<Replica>,
    /// A cluster step's pods (the new ReplicaSet's, Ready), by name; empty elsewhere.
    pub pods: Vec<PodTarget>,
    /// Where the counter lives; `None` for a service we did not start.
    pub store: Option<Store>,
    /// The CFS quota of each replica, when limited.
    pub cpu_limit_cores: Option<f64>,
    /// `v1`/`v2` when replicas run in cgroups, `None` when CPU is not accounted.
    pub cgroup_mode: Option<&'static str>,
    /// An autoscale step's view of its Deployment and HPA, to sample while it runs.
    pub scale: Option<ScaleWatch>,
    /// A cluster step's API client: the generator Job of a sharded step is created with the
    /// deployer's own client, never a second one.
    pub cluster: Option<kubernetes::ClusterClient>,
    /// Between SIGTERM and SIGKILL for the replicas.
    pub grace: Duration,
    /// A user's service's dependencies started for this step (stopped after the replicas).
    pub dependencies: Vec<command::Running>,
    /// `(name, pid)` of every dependency running during the step (this step's and the
    /// run's), watched for an exit.
    pub dependency_pids: Vec<(String, u32)>,
    /// A cluster step's Deployment and pods as they were Ready, to find what changed under the
    /// step without loadgen.
    pub drift: Option<kubernetes::drift::DriftWatch>,
    /// A cluster step's pods whose CPU limit differs from the step's, one line each.
    pub ran_differs: Vec<String>,
    /// How the load and the probes speak TLS to an `https://` deployment: the run's own CA for
    /// a `tls = true` step (the replicas' URLs are then `https://`), the target's TLS keys for
    /// an https url or Service; `None` for plain HTTP.
    pub tls: Option<loadgen_engine::tls::TlsSpec>,
    // Field order is drop order: replicas first, then dependencies, then the directory of logs.
    pub(crate) workdir: Option<workdir::WorkDir>,
}

impl Deployment {
    /// Starts watching every process of this deployment for an exit (nothing to watch for a
    /// service we did not start).
    pub fn watch_exits(&self) -> watch::ExitWatch {
        let mut watched: Vec<(watch::Component, u32)> = self
            .replicas
            .iter()
            .map(|r| (watch::Component::Replica(r.index), r.pid))
            .collect();
        for (i, (_, pid)) in self.dependency_pids.iter().enumerate() {
            watched.push((watch::Component::Dependency(i as u32), *pid));
        }
        watch::ExitWatch::start(&watched)
    }

    /// A cluster step: load through the Service at `base_url`, metrics from each pod.
    pub(crate) fn cluster(
        base_url: String,
        pods: Vec<PodTarget>,
        cpu_limit_cores: Option<f64>,
    ) -> Self {
        Self {
            pods,
            cpu_limit_cores,
            ..Self::external(base_url)
        }
    }

    /// `https` when the replicas serve the run's certificate, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A deployment of a service we did not start.
    pub(crate) fn external(base_url: String) -> Self {
        Self {
            base_url,
            endpoints: Vec::new(),
            replicas: Vec::new(),
            pods: Vec::new(),
            store: None,
            cpu_limit_cores: None,
            cgroup_mode: None,
            scale: None,
            cluster: None,
            grace: DRAIN_GRACE,
            dependencies: Vec::new(),
            dependency_pids: Vec::new(),
            drift: None,
            ran_differs: Vec::new(),
            tls: None,
            workdir: None,
        }
    }

    /// True for a URL or cluster target (nothing of ours runs here).
    pub fn is_external(&self) -> bool {
        self.store.is_none()
    }

    /// `memory`, `redis` or `external`, as in [`TopologyView::store`].
    pub fn store_name(&self) -> &'static str {
        self.store.map_or("external", Store::as_str)
    }

    /// The shape that actually ran, for the step result.
    pub fn topology_view(&self) -> TopologyView {
        TopologyView {
            replicas: self.replicas.len() as u32,
            cpu_limit_cores: self.cpu_limit_cores,
            store: self.store_name().into(),
            autoscale: None,
            // Served with the run's certificate: only replicas loadgen started speak TLS
            // because of loadgen (a url or cluster target is https by its own URL).
            tls: self.tls.is_some() && !self.replicas.is_empty(),
        }
    }

    /// Admin base URLs of the replicas (`http://127.0.0.1:P`; `/metrics` lives there).
    pub fn admin_urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter(|r| !r.admin_url.is_empty())
            .map(|r| r.admin_url.clone())
            .collect()
    }

    /// What a managed Prometheus scrapes on each replica, in replica order: polymetrie's admin
    /// `/metrics`, or a user's service's `[prometheus] scrape` filled in.
    pub fn scrape_urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter_map(|r| r.scrape_url.clone())
            .collect()
    }

    /// The shared Redis, when the store is Redis: `redis://127.0.0.1:P`.
    pub fn redis_url(&self) -> Option<String> {
        self.redis()
            .map(|r| format!("redis://127.0.0.1:{}", r.port))
    }

    /// The pid of the shared Redis, when the store is Redis.
    pub fn redis_pid(&self) -> Option<u32> {
        self.redis().map(|r| r.process.pid())
    }

    /// polymetrie's Redis, when the store is Redis (a user's service's dependency of the same
    /// name is not a store).
    fn redis(&self) -> Option<&command::Running> {
        if self.store != Some(Store::Redis) {
            return None;
        }
        self.dependencies.iter().find(|d| d.name == local::REDIS)
    }

    /// The deployment when it came up (`started` is Ok); otherwise everything it started so
    /// far is torn down and the start's error returned.
    pub(crate) async fn kept_if(
        self,
        started: Result<(), DeployError>,
    ) -> Result<Self, DeployError> {
        match started {
            Ok(()) => Ok(self),
            Err(e) => {
                if let Err(cleanup) = self.teardown().await {
                    tracing::warn!("after failed deploy: {cleanup}");
                }
                Err(e)
            }
        }
    }

    /// Stops everything we started: SIGTERM to every replica (they drain in parallel), SIGKILL
    /// after the grace ([`DRAIN_GRACE`], or a user's service's own), reap, remove cgroups, stop Redis, remove the temporary directory.
    /// Everything is attempted even when a part fails; the error lists what was left.
    pub async fn teardown(mut self) -> Result<(), DeployError> {
        let mut problems = Vec::new();
        for r in &self.replicas {
            r.terminate();
        }
        // One grace period for all: SIGTERM went out to every replica at once.
        let drain_deadline = tokio::time::Instant::now() + self.grace;
        for r in &mut self.replicas {
            let grace = drain_deadline.saturating_duration_since(tokio::time::Instant::now());
            problems.extend(r.finish(grace).await);
        }
        // Last started, first stopped: a dependency may use the ones before it.
        while let Some(d) = self.dependencies.pop() {
            problems.extend(d.stop().await);
        }
        if let Some(mut dir) = self.workdir.take() {
            if let Err(e) = dir.remove() {
                problems.push(format!("{}: {e}", dir.path().display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DeployError::Teardown(problems))
        }
    }
}

/// Same as [`Deployment::teardown`].
pub async fn teardown(deployment: Deployment) -> Result<(), DeployError> {
    deployment.teardown().await
}

/// The deployer for a plan's target.
#[derive(Debug)]
pub enum Deployer {
    Local(LocalDeployer),
    Command(CommandDeployer),
    Url(UrlDeployer),
    Kubernetes(Box<KubernetesDeployer>),
}

impl Deployer {
    /// The deployer for `target`; a user's service keeps its replicas' folders (logs,
    /// `{dir}`) under `out_dir`.
    pub fn for_target(
        target: &Target,
        tls: &loadgen_engine::tls::TlsSpec,
        out_dir: &std::path::Path,
    ) -> Self {
        match target {
            Target::Local(service) => Deployer::Local(LocalDeployer::new(service)),
            Target::Command(service) => Deployer::Command(CommandDeployer::new(service, out_dir)),
            Target::Url { base } => Deployer::Url(UrlDeployer::new(base).with_tls(tls)),
            Target::Kubernetes(k) => {
                Deployer::Kubernetes(Box::new(KubernetesDeployer::new(k).with_tls(tls)))
            }
        }
    }

    /// Before the first step (a cluster: the HPA pre-flight, the original kept). `stop` ends
    /// a wait in progress. Returns lines the run reports (what a killed run left).
    pub async fn prepare(
        &mut self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<Vec<String>, DeployError> {
        match self {
            Deployer::Kubernetes(d) => Ok(d.prepare(stop.clone()).await?),
            Deployer::Command(d) => d.prepare().await.map(|()| Vec::new()),
            Deployer::Local(_) | Deployer::Url(_) => Ok(Vec::new()),
        }
    }

    /// After the last step, whatever ended the run: a cluster's Deployment gets its original
    /// shape back (returned, for the log). Nothing to do elsewhere: each step tore down.
    pub async fn finish(&mut self) -> Result<Option<String>, DeployError> {
        match self {
            Deployer::Kubernetes(d) => Ok(d.restore().await?.map(|s| s.to_string())),
            Deployer::Command(d) => {
                let problems = d.finish().await;
                if problems.is_empty() {
                    Ok(None)
                } else {
                    Err(DeployError::Teardown(problems))
                }
            }
            Deployer::Local(_) | Deployer::Url(_) => Ok(None),
        }
    }

    /// What the deployer swept since the last call: groups and processes a killed loadgen left
    /// behind, one line each (the run reports them).
    pub fn take_swept(&mut self) -> Vec<String> {
        match self {
            Deployer::Local(d) => std::mem::take(&mut d.swept),
            Deployer::Command(d) => std::mem::take(&mut d.swept),
            Deployer::Url(_) | Deployer::Kubernetes(_) => Vec::new(),
        }
    }

    /// Said once, before the first step: a GitOps controller manages the cluster Deployment.
    pub fn take_gitops_warning(&mut self) -> Option<String> {
        match self {
            Deployer::Kubernetes(d) => d.gitops.take(),
            _ => None,
        }
    }

    /// Brings up `topology`, ready within `bound`.
    pub async fn deploy(
        &mut self,
        topology: &Topology,
        bound: Duration,
    ) -> Result<Deployment, DeployError> {
        match self {
            Deployer::Local(d) => d.deploy(topology, bound).await,
            Deployer::Command(d) => d.deploy(topology, bound).await,
            Deployer::Url(d) => d.deploy(topology, bound).await,
            // A rollout has its own bound (kubernetes::ROLLOUT_BOUND): pods are scheduled,
            // pulled and probed, far slower than a local process.
            Deployer::Kubernetes(d) => Ok(d.deploy(topology).await?),
        }
    }
}
