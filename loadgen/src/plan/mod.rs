//! The expanded plan: every step of every campaign of a scenario, with its topology and load
//! fully resolved and validated. Downstream code (deployers, the attack, checks) takes a
//! [`Step`] and never reads TOML or the environment (ARCHITECTURE.md rule 3). The expansion itself, and
//! every check a scenario must pass, is [`expand`].

pub mod counter;
mod expand;
pub mod search;
pub mod service;
pub mod template;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::scenario::OnTargetFailure;
use crate::scenario::{Scenario, ScenarioError, SourceText};
use loadgen_engine::load::Load;
use loadgen_engine::target::Reach;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::Limits;
use loadgen_model::result::ScenarioSource;
use loadgen_model::step_id::StepId;
pub use loadgen_model::threshold::{Metric, Threshold};
pub use search::{SearchConfiguration, SearchPlan};

/// Where the click counter lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Each replica counts in its own memory; the probe sums replicas.
    Memory,
    /// Replicas share one Redis, started by the deployer.
    Redis,
}

impl Store {
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Redis => "redis",
        }
    }
}

/// The deployed shape of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub replicas: u32,
    /// CFS quota in cores (`None`: unlimited).
    pub cpu_limit_cores: Option<f64>,
    pub store: Store,
    /// An HPA scales the step between its bounds; `replicas` is then its `min`, the count the
    /// step starts from.
    pub autoscale: Option<Autoscale>,
    /// The replicas serve HTTPS with the run's own certificate (`tls = true`): loadgen makes
    /// a CA and a certificate for the loopback address once per run and the step's load and
    /// probes trust that CA.
    pub tls: bool,
}

/// The HorizontalPodAutoscaler of an autoscale step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscale {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// The average CPU utilisation the HPA aims at, in percent of each pod's CPU request.
    pub cpu_utilization_pct: u32,
}

/// How loadgen starts the bundled service for local targets.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalService {
    /// Explicit `polymetrie` binary; `None`: next to `loadgen`, else built by cargo.
    pub binary: Option<PathBuf>,
    /// CPU burnt per click (`--cost`).
    pub cost: Duration,
    /// Member sites registered at start (`--sites`).
    pub sites: Vec<String>,
    pub workers: Option<u32>,
    pub max_inflight: Option<u32>,
    /// Extra command-line flags passed through verbatim.
    pub extra_args: Vec<String>,
    /// Serve HTTP/2 too (`--http2`): the scenario's `[target] http2`.
    pub http2: bool,
}

/// What the campaign runs against.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Replicas of `polymetrie` started on this machine per step topology.
    Local(LocalService),
    /// Replicas of the user's own service (`[service] command`), with its dependencies.
    Command(service::CommandService),
    /// An already running service; topology fields are informational only.
    Url {
        /// Base URL (scheme, host, port), loopback only.
        base: String,
    },
    /// A Deployment on a cluster whose replicas and CPU each step sets.
    Kubernetes(KubernetesTarget),
}

/// `[target] kind = "kubernetes"`: which Deployment and container each step changes, where the
/// load goes, and where each pod's metrics are.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesTarget {
    pub namespace: String,
    pub deployment: String,
    pub container: String,
    /// Base URL of the Service (`http://host:port`), checked against the plan's reach.
    pub service_url: String,
    /// Port of each pod's `/metrics`, reached at the pod's IP.
    pub metrics_port: u16,
    /// The bound on each step's rollout.
    /// The bound on each step's rollout ([`ROLLOUT_TIMEOUT`] unless the scenario says).
    pub rollout_timeout: std::time::Duration,
}

/// How long one step's rollout may take unless `[target] rollout_timeout` says: new pods
/// scheduled, images present, readiness probes passed. The loadgen Job's deadline allows 60 s
/// per step for it (docs/kubernetes.md).
pub const ROLLOUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One step: deploy `topology`, warm up, then offer `load`.
#[derive(Debug, Clone)]
pub struct Step {
    pub campaign: String,
    pub name: String,
    pub topology: Topology,
    pub load: Load,
    pub request: RequestTemplate,
    /// The per-request timeout, the in-flight cap and the connection pool's size: the
    /// engine's own struct, handed to the attack whole.
    pub limits: Limits,
    /// Load at the step's rate before measuring, discarded.
    pub warmup: Duration,
    /// Quiet time after the step, before the next deploys.
    pub pause_after: Duration,
    /// How many generators share the step's schedule, each one shard of it.
    pub generators: Generators,
}

/// The generators of a step: `count` shards of its schedule (1: the campaign's own engine),
/// each a loadgen process (locally) or a pod of an Indexed Job (on a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generators {
    pub count: u32,
    /// Locally: pin generator k to CPU k (mod the CPUs), so shards do not share a core.
    pub pin: bool,
}

impl Generators {
    /// One generator: the campaign's own engine, in process.
    pub const ONE: Generators = Generators {
        count: 1,
        pin: false,
    };
}

/// Prometheus cross-check configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum PrometheusMode {
    /// loadgen starts a local `prometheus` scraping every replica.
    Managed,
    /// An existing server.
    Url(String),
}

impl PrometheusMode {
    /// An existing server's URL: `http://` or `https://`, a trailing `/` dropped. The one
    /// parser of a Prometheus URL, for scenarios and `--prometheus` alike.
    pub fn url(v: &str) -> Result<PrometheusMode, PrometheusModeError> {
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            return Err(PrometheusModeError::NotHttp(v.into()));
        }
        Ok(PrometheusMode::Url(v.trim_end_matches('/').to_string()))
    }

    /// `managed` or a URL, as `--prometheus` takes it.
    pub fn from_arg(v: &str) -> Result<PrometheusMode, PrometheusModeError> {
        if v == "managed" {
            Ok(PrometheusMode::Managed)
        } else {
            PrometheusMode::url(v).map_err(|_| PrometheusModeError::NotManagedOrHttp(v.into()))
        }
    }
}

/// A Prometheus server that is not an HTTP URL (or, for `--prometheus`, `managed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrometheusModeError {
    #[error("expected an http:// or https:// URL, got \"{0}\"")]
    NotHttp(String),
    #[error("expected `managed` or an http:// or https:// URL, got \"{0}\"")]
    NotManagedOrHttp(String),
}

impl Plan {
    /// How the generator spreads a step's requests over local replicas' own ports: the user's
    /// `service.balance`, per request for polymetrie (one endpoint elsewhere).
    pub fn balance(&self) -> loadgen_engine::Balance {
        match &self.target {
            Target::Command(c) => c.balance,
            _ => loadgen_engine::Balance::Request,
        }
    }
}

/// The whole expanded scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: ScenarioSource,
    pub target: Target,
    /// Where load may go: loopback only unless the scenario (`target.allow_remote`) or
    /// `LOADGEN_ALLOW_REMOTE=1` allowed a remote target.
    pub reach: Reach,
    /// TLS settings of an `https://` target (the default otherwise).
    pub tls: loadgen_engine::tls::TlsSpec,
    /// `Some`: the steps speak HTTP/2 (`[target] http2`, `max_streams`).
    pub http2: Option<loadgen_engine::Http2>,
    /// The business counter.
    pub counter: counter::Counter,
    /// What the run does after a step whose target failed.
    pub on_target_failure: OnTargetFailure,
    /// What the plan itself warns about (e.g. CPU limits that overcommit the machine): saved
    /// as the run's first findings and printed by `validate`.
    pub warnings: Vec<loadgen_model::result::Finding>,
    pub campaigns: Vec<loadgen_model::result::CampaignInfo>,
    pub steps: Vec<Step>,
    /// Capacity searches, run after the steps, in file order: their steps are decided as the
    /// run goes.
    pub searches: Vec<SearchPlan>,
    pub thresholds: Vec<Threshold>,
    pub prometheus: Option<PrometheusMode>,
    /// PromQL overrides by query name (see the prometheus probe).
    pub promql: std::collections::BTreeMap<String, String>,
}

/// What this machine and this tool can run, checked for every step at expansion (each error
/// names the key and the limit).
pub mod limits {
    use std::time::Duration;

    /// Local replicas of one step: far more than a machine of this kind can carry.
    pub const MAX_LOCAL_REPLICAS: u32 = 64;
    /// The smallest CPU limit: the kernel's minimum CFS quota is 1 ms per 100 ms period.
    pub const MIN_CPU_LIMIT: f64 = 0.01;
    /// The highest rate one step may ask of one generator process; beyond it, split the step
    /// over generator shards.
    pub const MAX_RATE_RPS: f64 = 1e7;
    /// The longest step.
    pub const MAX_STEP_DURATION: Duration = Duration::from_secs(24 * 3600);
    /// The most requests one step may plan (its counters and timeline stay small below it).
    pub const MAX_STEP_REQUESTS: u64 = 1_000_000_000;
    /// The most generators (shards) of one step.
    pub const MAX_GENERATORS: u32 = 64;
}

/// Settings used when neither the campaign nor `[defaults]` gives one.
pub mod builtin {
    use std::time::Duration;

    /// Per-request timeout: long enough for a healthy service, short enough that overload
    /// shows as timeouts within a step instead of hiding in a minute-long wait.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// Same default as `loadgen attack --max-in-flight`.
    pub const MAX_IN_FLIGHT: usize = 10_000;
    /// Seed of the first step's Poisson arrivals; step *i* (0-based, plan order) uses seed + i.
    pub const SEED: u64 = 1;
}

impl Step {
    /// The full id `campaign/name`, unique in a plan.
    pub fn id(&self) -> StepId {
        StepId::new(Some(&self.campaign), &self.name)
    }

    /// The step's rate: the mean over its load profile (the rate itself when constant). Not
    /// rounded through a request count, unlike [`Load::nominal_rate_rps`].
    pub fn rate_rps(&self) -> f64 {
        let d = self.load.duration().as_secs_f64();
        if d == 0.0 {
            return self.load.stages.last().map(|s| s.to_rps).unwrap_or(0.0);
        }
        let total: f64 = self
            .load
            .stages
            .iter()
            .map(|s| (s.from_rps + s.to_rps) / 2.0 * s.duration.as_secs_f64())
            .sum();
        total / d
    }

    /// Requests the step's load asks for (the integral of its rate).
    pub fn requests(&self) -> u64 {
        self.load.planned_requests()
    }

    /// Whether a `--steps`/threshold glob selects this step (on `campaign/name` or `name`).
    pub fn matches(&self, pattern: &str) -> bool {
        self.id().matches(pattern)
    }
}

impl Plan {
    /// Reads, checks and expands a scenario file. Every error names the file, line, column and
    /// key.
    pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
        let (scenario, src) = Scenario::read(path)?;
        Plan::from_scenario(&scenario, &src)
    }

    /// Expands a parsed scenario (`src` gives positions for errors and the source record).
    pub fn from_scenario(sc: &Scenario, src: &SourceText) -> Result<Plan, ScenarioError> {
        expand::plan(sc, src)
    }

    /// Multiplies every duration (steps, warm-up, pause) by `f`, keeping rates: a quick replay
    /// of the same shape. Timeouts are left alone: they are about the service, not the plan.
    ///
    /// # Panics
    /// When `f` is not a finite number > 0; check user input with [`check_time_scale`].
    pub fn scale_time(&mut self, f: f64) {
        assert!(f.is_finite() && f > 0.0, "time scale must be > 0, got {f}");
        for step in &mut self.steps {
            for stage in &mut step.load.stages {
                stage.duration = stage.duration.mul_f64(f);
            }
            step.warmup = step.warmup.mul_f64(f);
            step.pause_after = step.pause_after.mul_f64(f);
        }
        for search in &mut self.searches {
            search.scale_time(f);
        }
    }

    /// Keeps only the steps matching `filter`: comma-separated globs on `campaign/name` or
    /// `name` (`*` matches anything). Campaigns left without steps are dropped. Errors when
    /// nothing matches.
    pub fn select_steps(&mut self, filter: &str) -> Result<(), ScenarioError> {
        let patterns: Vec<&str> = filter
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let kept: Vec<Step> = self
            .steps
            .iter()
            .filter(|s| patterns.iter().any(|p| s.matches(p)))
            .cloned()
            .collect();
        let mut searches = self.searches.clone();
        for search in &mut searches {
            let all = std::mem::take(&mut search.configurations);
            search.configurations = all
                .into_iter()
                .filter(|c| patterns.iter().any(|p| search.selects(c, p)))
                .collect();
        }
        searches.retain(|s| !s.configurations.is_empty());
        if kept.is_empty() && searches.is_empty() {
            return Err(ScenarioError::NoStepMatches {
                filter: filter.to_string(),
                example: self
                    .steps
                    .first()
                    .map(|s| s.id().to_string())
                    .or_else(|| {
                        let s = self.searches.first()?;
                        Some(format!(
                            "{}/search-{}",
                            s.campaign,
                            s.configurations.first()?.key
                        ))
                    })
                    .unwrap_or_default(),
            });
        }
        self.steps = kept;
        self.searches = searches;
        let (steps, searches) = (&self.steps, &self.searches);
        self.campaigns.retain(|c| {
            steps.iter().any(|s| s.campaign == c.name)
                || searches.iter().any(|s| s.campaign == c.name)
        });
        Ok(())
    }

    /// Planned time of the whole plan: warm-ups, steps and pauses (deploys not included), the
    /// searches at their worst case.
    pub fn planned_duration(&self) -> Duration {
        let steps: Duration = self
            .steps
            .iter()
            .map(|s| s.warmup + s.load.duration() + s.pause_after)
            .sum();
        steps
            + self
                .searches
                .iter()
                .map(SearchPlan::worst_case)
                .sum::<Duration>()
    }
}

/// Checks a `--time-scale` value before [`Plan::scale_time`].
pub fn check_time_scale(f: f64) -> Result<f64, ScenarioError> {
    if f.is_finite() && f > 0.0 {
        Ok(f)
    } else {
        Err(ScenarioError::TimeScale(f))
    }
}
