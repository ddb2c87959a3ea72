//! Findings: one conclusion drawn from a step's (or a run's) measurements ([`Finding`]), how
//! bad it is ([`Severity`]), and the one list of the checks that draw them ([`CheckName`]),
//! serialised as the snake_case strings run.json has always held.

use serde::{Deserialize, Serialize};

use crate::step_id::StepId;

/// How bad a finding is: `info` explains, `warn` casts doubt, `fail` breaks a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Fail,
}

/// The check that drew a finding: a stable identifier, serialised as the snake_case strings
/// run.json has always held. The one list of check names (ARCHITECTURE.md rule 13); a name this build
/// does not know (a run.json from another version) is kept as [`CheckName::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckName {
    Interrupted,
    Validity,
    ConnectionWait,
    Dropped,
    CounterReconcile,
    LostWrites,
    Shedding,
    Timeouts,
    Throttling,
    CpuLimitSaturated,
    NodeSaturated,
    Imbalance,
    Threshold,
    PrometheusCounter,
    PrometheusCpu,
    PrometheusWindow,
    /// Recorded while measuring: the Prometheus view could not be taken.
    Prometheus,
    /// Recorded while measuring: a step could not run at all.
    StepFailed,
    /// Recorded while measuring: a deployment did not tear down cleanly.
    Teardown,
    /// Recorded while measuring: a replica's process exited during the step.
    ReplicaExited,
    /// Recorded while measuring: the store (Redis) exited during the step.
    StoreExited,
    /// From the plan: the steps' CPU limits add up to more CPUs than the machine has.
    Overcommit,
    /// Recorded while deploying: processes and cgroups a killed loadgen left were swept.
    OrphansSwept,
    /// A cluster Deployment's original shape: restored at the end, or left by a killed run.
    Restore,
    /// Recorded while searching: a capacity search stopped because its budget was spent.
    SearchBudget,
    /// How an autoscale step's HPA reacted, and what its per-pod readings cover.
    Autoscale,
    /// Recorded while measuring: the target changed under the step without loadgen (a foreign
    /// scale or edit, a pod deleted, evicted or restarted), or ran other than the step asked
    /// (a LimitRange, a VPA), or a GitOps controller manages it.
    Drift,
    /// A check this build does not know, kept by name.
    Other(String),
}

impl CheckName {
    /// Every known check.
    pub const KNOWN: [CheckName; 27] = [
        CheckName::Interrupted,
        CheckName::Validity,
        CheckName::ConnectionWait,
        CheckName::Dropped,
        CheckName::CounterReconcile,
        CheckName::LostWrites,
        CheckName::Shedding,
        CheckName::Timeouts,
        CheckName::Throttling,
        CheckName::CpuLimitSaturated,
        CheckName::NodeSaturated,
        CheckName::Imbalance,
        CheckName::Threshold,
        CheckName::PrometheusCounter,
        CheckName::PrometheusCpu,
        CheckName::PrometheusWindow,
        CheckName::Prometheus,
        CheckName::StepFailed,
        CheckName::Teardown,
        CheckName::ReplicaExited,
        CheckName::StoreExited,
        CheckName::Overcommit,
        CheckName::OrphansSwept,
        CheckName::Restore,
        CheckName::SearchBudget,
        CheckName::Autoscale,
        CheckName::Drift,
    ];

    /// The name as run.json, the CSV and the report write it.
    pub fn as_str(&self) -> &str {
        match self {
            CheckName::Interrupted => "interrupted",
            CheckName::Validity => "validity",
            CheckName::ConnectionWait => "connection_wait",
            CheckName::Dropped => "dropped",
            CheckName::CounterReconcile => "counter_reconcile",
            CheckName::LostWrites => "lost_writes",
            CheckName::Shedding => "shedding",
            CheckName::Timeouts => "timeouts",
            CheckName::Throttling => "throttling",
            CheckName::CpuLimitSaturated => "cpu_limit_saturated",
            CheckName::NodeSaturated => "node_saturated",
            CheckName::Imbalance => "imbalance",
            CheckName::Threshold => "threshold",
            CheckName::PrometheusCounter => "prometheus_counter",
            CheckName::PrometheusCpu => "prometheus_cpu",
            CheckName::PrometheusWindow => "prometheus_window",
            CheckName::Prometheus => "prometheus",
            CheckName::StepFailed => "step_failed",
            CheckName::Teardown => "teardown",
            CheckName::ReplicaExited => "replica_exited",
            CheckName::StoreExited => "store_exited",
            CheckName::Overcommit => "overcommit",
            CheckName::OrphansSwept => "orphans_swept",
            CheckName::Restore => "restore",
            CheckName::SearchBudget => "search_budget",
            CheckName::Autoscale => "autoscale",
            CheckName::Drift => "drift",
            CheckName::Other(name) => name,
        }
    }

    /// The check of that name (an unknown name is [`CheckName::Other`]).
    pub fn parse(name: &str) -> CheckName {
        CheckName::KNOWN
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or_else(|| CheckName::Other(name.to_string()))
    }

    /// Findings recorded while measuring (they cannot be drawn again from saved numbers, so a
    /// re-judged run keeps them), and those of checks this build does not know; every other
    /// check is drawn again by `check::judge`.
    pub fn is_recorded(&self) -> bool {
        matches!(
            self,
            CheckName::Prometheus
                | CheckName::StepFailed
                | CheckName::Teardown
                | CheckName::ReplicaExited
                | CheckName::StoreExited
                | CheckName::Overcommit
                | CheckName::OrphansSwept
                | CheckName::Restore
                | CheckName::SearchBudget
                | CheckName::Drift
                | CheckName::Other(_)
        )
    }
}

impl Serialize for CheckName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(CheckName::parse(&String::deserialize(d)?))
    }
}

impl PartialEq<&str> for CheckName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One conclusion drawn from the measurements, with the check that drew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub check: CheckName,
    pub severity: Severity,
    pub message: String,
    /// The step it concerns, if any (campaign-level findings have none).
    pub step: Option<StepId>,
}
