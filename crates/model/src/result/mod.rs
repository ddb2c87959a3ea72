//! The saved results: [`StepResult`] (one step, the same object in `attack --json` and in
//! `run.json`) and [`CampaignResult`] (the whole `run.json`). These types are the JSON contract of
//! ARCHITECTURE.md ("Contracts"): units are in the field names, and a value that was not measured is `None` (`null`),
//! never 0. What the checks conclude from them is a [`Finding`] (in [`finding`]); the deployed
//! shape a step ran on is a [`TopologyView`] (in [`topology`]). Both are leaves, so the capacity
//! records run.json keeps ([`crate::capacity`]) can use them without a circle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod finding;
pub mod tls;
pub mod topology;

use crate::capacity::{Capacity, SearchRecord};
pub use crate::scaling::{AutoscaleView, ScalePoint};
use crate::step_id::StepId;
use crate::threshold::Threshold;
pub use finding::{CheckName, Finding, Severity};
pub use tls::TlsSummary;
pub use topology::TopologyView;

/// Version of the `run.json` layout; bump when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Counts per outcome class of a step. `ok + failed = sent`, `sent + dropped = intended`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers by exact status code (e.g. `"503": 12`).
    pub status: BTreeMap<String, u64>,
    /// No complete answer within the request timeout (includes requests still in flight when
    /// the step's grace period ran out).
    pub timeout: u64,
    pub connect_refused: u64,
    pub connect_timeout: u64,
    /// Connection reset or closed by the peer mid-request.
    pub reset: u64,
    /// Any other I/O or protocol error.
    pub io_other: u64,
    /// Due but never sent: the in-flight cap was reached.
    pub dropped: u64,
    /// Requests failed by TLS (a handshake that failed, an alert mid-exchange), by reason.
    /// Absent when none, so plain-HTTP results read and write as before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tls: BTreeMap<String, u64>,
}

/// Percentiles of one HdrHistogram, in milliseconds; all `None` when it holds no sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// One second of a step, as the generator saw it (requests bucketed by due time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub t_s: u32,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub p99_ms: Option<f64>,
}

/// What the generator process itself used during the attack: the evidence that it kept up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    pub cpu_user_s: Option<f64>,
    pub cpu_system_s: Option<f64>,
    /// (user + system) / wall time, in cores.
    pub cpu_cores_used: Option<f64>,
    /// Cores the generator may use (affinity), to judge saturation.
    pub cpu_cores_available: Option<f64>,
    pub max_in_flight: Option<u64>,
    pub connections_opened: Option<u64>,
    /// Most connections open at once.
    #[serde(default)]
    pub connections_peak: Option<u64>,
    /// Connections closed after being idle (the pool follows the current load).
    #[serde(default)]
    pub connections_closed_idle: Option<u64>,
    /// The pool's cap: the fixed count (`--connections`) or the default cap from the rate.
    #[serde(default)]
    pub pool_cap: Option<u64>,
    /// True for a fixed pool (`--connections N`), false for the capped default.
    #[serde(default)]
    pub pool_fixed: Option<bool>,
    /// The default pool's free count: connections opened without waiting (from the rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_free: Option<u64>,
    /// Connections the default pool opened beyond its free count, each after a request had
    /// waited its grace time (5 ms) for one to come free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_grown: Option<u64>,
    /// Requests that waited because every connection was busy and the cap reached (their wait
    /// is in their latency, from the due time).
    #[serde(default)]
    pub pool_cap_waits: Option<u64>,
    /// The in-flight cap the step ran with (due requests beyond it are dropped).
    #[serde(default)]
    pub in_flight_cap: Option<u64>,
    /// Whether the engine thread ran at real-time priority (it needs CAP_SYS_NICE, which a
    /// pod usually lacks; without it the schedule lag shows what that cost).
    #[serde(default)]
    pub realtime_priority: Option<bool>,
    /// The engine's I/O backend: `"uring"` or `"epoll"` (absent in runs before it was chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_backend: Option<String>,
    /// Why the step ran on epoll when `--io auto` would have taken io_uring: the ring refused
    /// (and how), or the step is TLS or HTTP/2. Absent when io_uring ran or epoll was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_fallback_reason: Option<String>,
}

/// What one endpoint (a replica's own base URL) of a step was sent and answered, as the
/// generator counted it: kept only when a step spread its load over more than one endpoint.
/// `sent = ok + failed` for each; the step's `dropped` requests never reached an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCounts {
    /// The endpoint's base URL, as given.
    pub url: String,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Connections the generator opened to it (successful connects only).
    pub connections_opened: u64,
}

/// The service's own business counter around the step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterReading {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub delta: Option<i64>,
    /// The counter went backwards over the step (a replica restarted, a store was reset):
    /// there is no delta, and the step says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub went_back: bool,
    /// Clicks stored per replica during the step (how the load was spread), when known.
    pub per_replica: Vec<Option<u64>>,
}

/// CPU of one replica over the step, read from its cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaCpu {
    pub replica: u32,
    pub cores_used: Option<f64>,
    /// nr_throttled / nr_periods over the step.
    pub throttled_ratio: Option<f64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_s: Option<f64>,
    /// HTTP requests this replica answered during the step (all routes).
    pub requests: Option<u64>,
    /// The same CPU as the service read it from its own cgroup (`polymetrie_cgroup_cpu_*` in
    /// its `/metrics`): the only view of a cluster pod (the fields above then come from it), a
    /// second one of a local replica. Absent when the service does not export it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_service: Option<CgroupCpuView>,
    /// The pod's CPU as the Kubernetes resource metrics API (`metrics.k8s.io`, metrics-server)
    /// reported it for a window inside the step: a view of any pod, whatever it runs. The
    /// fields above come from it when no cgroup counters are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_metrics_api: Option<MetricsApiCpu>,
    /// The pod this replica was, on a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The node that pod ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// CPU over the step from one cgroup's counters read by the process inside it: a service's
/// (its `polymetrie_cgroup_cpu_*`) or the generator's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupCpuView {
    pub cores_used: Option<f64>,
    pub throttled_ratio: Option<f64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_s: Option<f64>,
}

/// A pod's CPU from one `metrics.k8s.io` PodMetrics sample: the mean over its window, which
/// lies inside the step (a rate, not counters: no throttling is known from it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsApiCpu {
    /// Cores used, summed over the pod's containers, over the window.
    pub cores_used: f64,
    /// The window the sample averages (metrics-server's scrape interval).
    pub window_s: f64,
    /// When the window ended, in seconds after the step's start.
    pub ended_s: f64,
}

/// CPU over the step, summed and per replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuReading {
    pub cores_used: Option<f64>,
    pub throttled_ratio: Option<f64>,
    pub per_replica: Vec<ReplicaCpu>,
    /// The whole machine's busy cores over the step (from /proc/stat), when read.
    pub node_cores_used: Option<f64>,
    /// The generator's own cgroup over the attack (in a pod: its container, whose CFS quota
    /// may throttle it); absent outside a readable cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<CgroupCpuView>,
    /// The wall time the counters above span, in seconds: from the attack's start (a sharded
    /// step's: its shards' common start, not their launch) to the reading after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
}

/// The same step seen through Prometheus, over the step's exact window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrometheusView {
    pub counter_increase: Option<f64>,
    pub cpu_cores_used: Option<f64>,
    pub per_replica: Vec<PrometheusReplica>,
    pub throttled_ratio: Option<f64>,
    pub window_s: f64,
    pub scrape_interval_s: Option<f64>,
    /// The PromQL actually evaluated, for the report's appendix.
    pub queries: BTreeMap<String, String>,
}

/// One replica (Prometheus `instance`) as Prometheus saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrometheusReplica {
    pub instance: String,
    pub cpu_cores_used: Option<f64>,
    pub counter_increase: Option<f64>,
}

/// One step's result: the measurements (assembled once, by `campaign::assemble`) and the
/// verdict drawn from them (`valid`, `invalid_reason`, `checks`, by `check::judge`, which a
/// report can run again on a saved step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub campaign: Option<String>,
    pub name: String,
    pub rate_rps: f64,
    pub duration_s: f64,
    /// RFC 3339 UTC wall-clock start and end of the measured window.
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub intended: u64,
    pub sent: u64,
    pub dropped: u64,
    pub ok: u64,
    pub failed: u64,
    pub outcomes: OutcomeCounts,
    /// Requests sent per second of the scheduled duration.
    pub achieved_rps: Option<f64>,
    /// ok / intended.
    pub success_ratio: Option<f64>,
    /// Latency from the due time (no coordinated omission).
    pub latency_ms: LatencySummary,
    /// Latency from the actual send.
    pub service_time_ms: LatencySummary,
    /// How late the generator handled each due request (its own lateness: the step's validity
    /// rests on it).
    pub schedule_lag_ms: LatencySummary,
    /// How long due requests waited for a connection to the target (connects in progress were
    /// not completing: the target's accept queue, not the generator). Part of `latency_ms`.
    #[serde(default)]
    pub connection_wait_ms: LatencySummary,
    pub timeline: Vec<TimelinePoint>,
    /// An autoscale step's replicas and HPA decisions, once a second (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling: Vec<ScalePoint>,
    /// Latency-from-due histogram, HdrHistogram V2 (deflate) serialised, base64: mergeable.
    pub histogram: Option<String>,
    pub generator: GeneratorHealth,
    pub topology: Option<TopologyView>,
    pub counter: Option<CounterReading>,
    /// counter delta / intended: the TD4 "success rate".
    pub counted_ratio: Option<f64>,
    pub cpu: Option<CpuReading>,
    pub prometheus: Option<PrometheusView>,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    /// The step was cut short (Ctrl-C, target died, deadline); its counts cover what ran.
    pub interrupted: bool,
    /// A process of the target (a replica, its store) exited during the step: the numbers
    /// describe a crash, not a capacity. Kept in run.json and the tables, left out of the
    /// capacity verdict like an invalid step (see the `replica_exited` / `store_exited`
    /// findings for which process, how and when).
    #[serde(default)]
    pub target_failed: bool,
    pub checks: Vec<Finding>,
    /// The step ran as shards: a shard's own part, or a merged step's shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<crate::shard::Sharding>,
    /// Per endpoint, when the step's load was spread over more than one (empty otherwise, and
    /// then absent from the JSON, so older run.json files read the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_endpoint: Vec<EndpointCounts>,
    /// The handshakes of a step over HTTPS (absent for plain HTTP and in older run.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    /// Where the step's wall time went, phase by phase (absent for an ad-hoc attack and in
    /// older run.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<StepTiming>,
}

/// A campaign step's wall time by phase, in seconds. `overhead_s` is what the step cost beyond
/// its warm-up and its load: deploying, readiness, the readings and their settling, the
/// Prometheus window and the teardown. The pause after a step is its own setting, not counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// Starting the replicas (and what they need) until every one answered its readiness check.
    pub deploy_s: f64,
    pub warmup_s: f64,
    /// Reading the counters and CPU before the load, waiting for the warm-up's work to land.
    pub before_s: f64,
    /// The load itself, as run (a sharded step: from launching its shards to their results).
    pub attack_s: f64,
    /// Reading everything after the load: the counters settling, Prometheus, drift, exits.
    pub after_s: f64,
    pub teardown_s: f64,
    /// Wall time from the deploy's start to the teardown's end.
    pub total_s: f64,
    /// `total_s` less the warm-up and the step's planned duration.
    pub overhead_s: f64,
}

impl StepResult {
    /// `campaign/name` (or the bare name of an ad-hoc attack).
    pub fn id(&self) -> StepId {
        StepId::new(self.campaign.as_deref(), &self.name)
    }

    /// True when any finding of the step is a `fail`.
    pub fn has_failure(&self) -> bool {
        self.checks.iter().any(|f| f.severity == Severity::Fail)
    }

    /// Whether the step can stand as evidence of capacity: valid, whole, and its target alive.
    pub fn is_evidence(&self) -> bool {
        self.valid && !self.interrupted && !self.target_failed
    }

    /// CPU-seconds the replicas used per 1,000 clicks the service counted; `None` when the CPU
    /// or the counter was not read, or nothing was counted.
    pub fn cpu_s_per_1k_clicks(&self) -> Option<f64> {
        let cores = self.cpu.as_ref()?.cores_used?;
        let counted = self.counter.as_ref()?.delta.filter(|d| *d > 0)?;
        Some(cores * self.duration_s / counted as f64 * 1000.0)
    }
}

/// The scenario a run came from, saved whole so a report needs nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSource {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub text: String,
}

/// The machine a run happened on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub kernel: Option<String>,
    /// `v1`, `v2`, `hybrid` or `none`.
    pub cgroup_mode: Option<String>,
    pub memory_bytes: Option<u64>,
    /// The CPU's model name (absent in runs saved before it was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
}

/// How a campaign run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Written while the run is in progress; a run.json still saying this was cut off without a
    /// chance to finish (the process was killed).
    Running,
    Completed,
    Interrupted,
    Failed,
}

/// One campaign of a scenario, as listed in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInfo {
    pub name: String,
    pub description: Option<String>,
}

/// The whole `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignResult {
    pub schema_version: u32,
    pub tool: ToolInfo,
    pub scenario: ScenarioSource,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub machine: MachineInfo,
    pub status: RunStatus,
    /// Why the run stopped early, when it did.
    pub error: Option<String>,
    pub time_scale: f64,
    pub campaigns: Vec<CampaignInfo>,
    pub steps: Vec<StepResult>,
    /// Campaign-level findings (verdicts, thresholds); step findings live in each step.
    pub findings: Vec<Finding>,
    /// The scenario's thresholds, so a saved run can be judged again (`None` in runs saved
    /// before they were kept: their threshold findings are kept as saved).
    #[serde(default)]
    pub thresholds: Option<Vec<Threshold>>,
    /// The capacity searches: what each searched and which steps were its probes (absent in
    /// runs without a search).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<SearchRecord>,
    /// The capacity of each searched configuration, judged from its probes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacities: Vec<Capacity>,
}

impl CampaignResult {
    /// True when any finding, of the run or of a step, is a `fail`.
    pub fn has_failure(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Fail)
            || self.steps.iter().any(StepResult::has_failure)
    }

    /// Why a finished run exits 1, one line each; empty when every step was valid and every
    /// threshold held (the exit-code contract of ARCHITECTURE.md and README.md).
    pub fn exit_reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.status {
            RunStatus::Interrupted => out.push("the run was interrupted".to_string()),
            RunStatus::Running => out.push("the run did not finish".to_string()),
            RunStatus::Failed | RunStatus::Completed => {}
        }
        for s in &self.steps {
            // A probe past the capacity may fail any way at all: that is what the search
            // looks for, and its capacity says so.
            if self.is_probe(&s.id()) {
                continue;
            }
            if s.target_failed {
                out.push(format!(
                    "step {}: the target failed during the step",
                    s.id()
                ));
            } else if !s.valid {
                let why = s.invalid_reason.as_deref().unwrap_or("no reason recorded");
                out.push(format!(
                    "step {}: invalid (the generator did not keep its schedule: {why})",
                    s.id()
                ));
            }
        }
        let fails = self
            .findings
            .iter()
            .chain(self.steps.iter().flat_map(|s| &s.checks))
            .filter(|f| f.severity == Severity::Fail);
        for f in fails {
            let at = f.step.as_ref().map_or(String::new(), |s| format!("{s}: "));
            out.push(format!("{at}{}: {}", f.check, f.message));
        }
        for f in self
            .findings
            .iter()
            .filter(|f| f.check == CheckName::SearchBudget)
        {
            out.push(format!("{}: {}", f.check, f.message));
        }
        out
    }

    /// Whether the step `id` is a probe of a capacity search.
    pub fn is_probe(&self, id: &StepId) -> bool {
        self.searches
            .iter()
            .any(|s| s.probes.iter().any(|p| &p.step == id))
    }
}

/// Versions of what produced the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    /// Versions of external binaries used (polymetrie, redis-server, prometheus).
    pub components: BTreeMap<String, String>,
}

impl ToolInfo {
    /// This build of loadgen, with no components recorded yet.
    pub fn current() -> Self {
        Self {
            name: "loadgen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            components: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod io_backend_tests {
    use super::GeneratorHealth;

    #[test]
    fn a_run_from_before_the_io_backend_reads_as_unknown_and_unknown_is_not_written() {
        let old: GeneratorHealth = serde_json::from_str(r#"{"cpu_user_s": 1.5}"#).unwrap();
        assert_eq!((old.io_backend, old.io_fallback_reason), (None, None));
        let text = serde_json::to_string(&GeneratorHealth::default()).unwrap();
        assert!(
            !text.contains("io_backend") && !text.contains("io_fallback"),
            "{text}"
        );
    }
}
