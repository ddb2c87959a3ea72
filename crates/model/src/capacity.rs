//! Capacity as run.json saves it: what each capacity search searched and which steps were its
//! probes ([`SearchRecord`], written as the run goes), and what the probes show per
//! configuration ([`Capacity`]: the interval, the spread of the repeats, the evidence of the
//! first failure and the derived figures), judged from the saved probes by
//! `check::capacity` — again by `loadgen report`, like every other verdict.

use serde::{Deserialize, Serialize};

use crate::result::finding::CheckName;
use crate::result::topology::TopologyView;
use crate::search::{Ending, ProbeKind, SearchSpec};
use crate::slo::Slo;
use crate::step_id::StepId;

/// One search campaign of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    pub campaign: String,
    #[serde(flatten)]
    pub spec: SearchSpec,
    pub slo: Slo,
    /// Every configuration the campaign was to search, in plan order.
    pub configurations: Vec<Configuration>,
    /// The probes that ran, in order; each is an ordinary step of `steps`.
    pub probes: Vec<ProbeRecord>,
    /// Where the budget stopped the search, when it did.
    #[serde(default)]
    pub budget_stop: Option<BudgetStop>,
}

/// A topology searched, and the key its probes are named by (`r1-cpu1`, `r2-nolimit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    pub key: String,
    pub topology: TopologyView,
}

/// One probe: which step, for which configuration, and why it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub step: StepId,
    pub configuration: String,
    /// 0-based position among the configuration's probes.
    pub index: u32,
    pub kind: ProbeKind,
    /// Which run of the configuration's search it belongs to (`loadgen compare` searches each
    /// configuration more than once; 0, and absent, in a plain run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
}

/// The budget's stop: the probe that would have overrun it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStop {
    pub configuration: String,
    pub next_rate_rps: f64,
    /// Wall-clock time the campaign had taken when it stopped.
    pub spent_s: f64,
}

/// The capacity of one configuration, as its probes show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub campaign: String,
    pub configuration: String,
    pub topology: TopologyView,
    /// The highest rate that passed by majority of its probes, below the lowest that did not.
    pub capacity_rps: Option<f64>,
    /// The lowest rate that did not pass by majority of its probes: the capacity lies in
    /// [`capacity_rps`, `failed_rps`).
    pub failed_rps: Option<f64>,
    /// How far above the capacity a rate still passed in some repeat (0: the repeats agreed).
    pub spread_rps: Option<f64>,
    /// Rates run more than once, with how many of their runs passed.
    pub repeats: Vec<Repeat>,
    pub probes: u32,
    /// Probes invalid because the generator could not keep its schedule: they say nothing
    /// about the target, so the search ran them again (counted in `probes`, not in `repeats`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generator_reruns: u32,
    pub ending: Ending,
    /// Why the lowest failing rate failed.
    pub first_failure: Option<FailureEvidence>,
    /// capacity / replicas.
    pub capacity_per_replica_rps: Option<f64>,
    /// capacity / (replicas × CPU limit); `None` without a limit.
    pub capacity_per_core_rps: Option<f64>,
    /// capacity / (replicas × the capacity of one replica of the same limit and store).
    pub scaling_efficiency: Option<f64>,
    /// CPU-seconds the replicas used per 1,000 counted clicks, over the probes at the capacity.
    pub cpu_s_per_1k_clicks: Option<f64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A rate probed more than once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    pub rate_rps: f64,
    pub runs: u32,
    pub passed: u32,
}

/// What broke at the first failing rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureEvidence {
    pub step: StepId,
    pub rate_rps: f64,
    /// The SLO bounds that did not hold, in words ("counted 94.1 % < 99 %").
    pub broken: Vec<String>,
    /// What the checks named: the crashed target, the generator, shedding, throttling,
    /// saturation, timeouts — most decisive first.
    pub causes: Vec<CheckName>,
}

impl Capacity {
    /// "1 replica, 1 core, memory: 176 req/s (interval 176–185 req/s)" and what follows.
    pub fn sentence(&self) -> String {
        let rate = |r: f64| format!("{r:.0}");
        let mut s = match (self.capacity_rps, self.failed_rps) {
            (Some(c), Some(f)) => format!(
                "capacity {} req/s (passed by majority of its runs; {} req/s failed)",
                rate(c),
                rate(f)
            ),
            (Some(c), None) => format!("capacity ≥ {} req/s (no probed rate failed)", rate(c)),
            (None, Some(f)) => format!("capacity < {} req/s (the lowest probe failed)", rate(f)),
            (None, None) => "not searched".to_string(),
        };
        if let Some(sp) = self.spread_rps.filter(|s| *s > 0.0) {
            s.push_str(&format!(
                "; repeats disagreed up to {} req/s above it",
                rate(sp)
            ));
        }
        match self.ending {
            Ending::Budget => s.push_str("; stopped by the budget before it converged"),
            Ending::Unfinished => s.push_str("; the search did not finish"),
            Ending::ProbeLimit => s.push_str("; stopped at the probe limit"),
            Ending::GeneratorLimited => s.push_str(&format!(
                "; stopped: the generator could not keep its schedule ({} probe(s) invalid for it), \
                 so rates above say nothing about the target",
                self.generator_reruns
            )),
            Ending::Converged | Ending::PassedTop | Ending::FailedFrom => {}
        }
        if let Some(f) = &self.first_failure {
            let causes: Vec<&str> = f.causes.iter().map(CheckName::as_str).collect();
            let why = if causes.is_empty() {
                String::new()
            } else {
                format!(" — {}", causes.join(", "))
            };
            s.push_str(&format!(
                "; first failure at {} req/s: {}{why}",
                rate(f.rate_rps),
                f.broken.join(", ")
            ));
        }
        s
    }
}
