//! The expanded plan: every step of every campaign of a scenario, with its topology and load
//! fully resolved. Downstream code (deployers, the attack, checks) takes a [`Step`] and never
//! reads TOML or the environment (house rule 3).

use std::path::PathBuf;
use std::time::Duration;

use crate::load::Load;
use crate::result::ScenarioSource;
use crate::template::RequestTemplate;

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
}

/// What the campaign runs against.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Replicas of `polymetrie` started on this machine per step topology.
    Local(LocalService),
    /// An already running service; topology fields are informational only.
    Url {
        /// Base URL (scheme, host, port), loopback only.
        base: String,
    },
}

/// One step: deploy `topology`, warm up, then offer `load`.
#[derive(Debug, Clone)]
pub struct Step {
    pub campaign: String,
    pub name: String,
    pub topology: Topology,
    pub load: Load,
    pub request: RequestTemplate,
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// Fixed connection count (`None`: opened on demand).
    pub connections: Option<usize>,
    /// Load at the step's rate before measuring, discarded.
    pub warmup: Duration,
    /// Quiet time after the step, before the next deploys.
    pub pause_after: Duration,
}

/// A threshold from the scenario: a metric bound on a set of steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// `counted_ratio`, `success_ratio`, `p99_ms`, …
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Step names it applies to; empty: every step.
    pub steps: Vec<String>,
}

/// Prometheus cross-check configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum PrometheusMode {
    /// loadgen starts a local `prometheus` scraping every replica.
    Managed,
    /// An existing server.
    Url(String),
}

/// The whole expanded scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: ScenarioSource,
    pub target: Target,
    /// The site whose counter is the business counter.
    pub counter_site: String,
    pub campaigns: Vec<crate::result::CampaignInfo>,
    pub steps: Vec<Step>,
    pub thresholds: Vec<Threshold>,
    pub prometheus: Option<PrometheusMode>,
    /// PromQL overrides by query name (see the prometheus probe).
    pub promql: std::collections::BTreeMap<String, String>,
}
