//! What `loadgen compare` keeps (`compare.json`): two services' capacities measured on one
//! machine in one run, their probes interleaved, and the verdict on each configuration's
//! capacity ratio with its bootstrap interval. Each side's probes are also a whole run of its
//! own (`base/run.json`, `head/run.json`), from which `loadgen-judge`'s `compare` module draws
//! everything here again.

use serde::{Deserialize, Serialize};

use crate::result::topology::TopologyView;

/// Bumped when a field changes meaning.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;
/// The file `loadgen compare` writes into its output folder.
pub const COMPARE_JSON: &str = "compare.json";

/// One `loadgen compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    pub schema_version: u32,
    pub base: SideInfo,
    pub head: SideInfo,
    /// The rule the verdicts follow, with its parameters.
    pub rule: Rule,
    /// How many times each configuration's search ran on each side.
    pub repeats: u32,
    pub configurations: Vec<ConfigurationComparison>,
    /// Every probe in the order it ran: the interleaving (base, head, head, base, …).
    pub order: Vec<OrderedProbe>,
    pub verdict: Verdict,
    /// Why the services could not be compared (verdict `not_comparable`), or what stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub wall_s: f64,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideInfo {
    /// The scenario file as given.
    pub scenario: String,
    /// Its folder of results, relative to compare.json's (`base`, `head`).
    pub run_dir: String,
    /// What the side's service is (its binary or command), as the plan resolved it.
    pub service: String,
}

/// The stated rule: the capacity of a side is the rate that best separates its passing probes
/// from its failing ones; the ratio head ÷ base gets a percentile bootstrap interval (each
/// probed rate's outcomes redrawn, each side on its own); a regression is a ratio below
/// `1 − tolerance` whose whole interval is below `1 − tolerance / 2` (ARCHITECTURE.md,
/// "Same-machine A/B").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub tolerance: f64,
    /// Two-sided coverage of the interval, e.g. 0.95.
    pub level: f64,
    pub resamples: u32,
    pub seed: u64,
}

impl Rule {
    /// The edges the whole interval must clear, `(1 − tolerance / 2, 1 + tolerance / 2)`: below
    /// the first for a regression, above the second for an improvement.
    pub fn interval_edges(&self) -> (f64, f64) {
        (1.0 - self.tolerance / 2.0, 1.0 + self.tolerance / 2.0)
    }
}

/// A configuration's capacity on both sides and what their ratio says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationComparison {
    pub campaign: String,
    pub configuration: String,
    pub topology: TopologyView,
    pub base: SideCapacity,
    pub head: SideCapacity,
    /// head ÷ base capacity; `None` when a side's capacity was not bracketed.
    pub ratio: Option<f64>,
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    pub verdict: Verdict,
    /// The verdict in words, with the numbers it rests on.
    pub reason: String,
}

/// One side's capacity of one configuration, from all its probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideCapacity {
    /// The knee: the geometric middle of the best split's two rates.
    pub capacity_rps: Option<f64>,
    /// The highest rate the best split puts on the passing side.
    pub passed_rps: Option<f64>,
    /// The lowest rate the best split puts on the failing side.
    pub failed_rps: Option<f64>,
    /// Probes on the wrong side of the split (a pass above it, a failure below it).
    pub misfits: u32,
    /// Every rate probed, with its runs and passes: the side's capacity curve.
    pub curve: Vec<CurvePoint>,
    /// Probes the generator spoiled (re-run, not counted above).
    pub generator_reruns: u32,
    /// Why the capacity is missing, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// The probes at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub rate_rps: f64,
    pub runs: u32,
    pub passed: u32,
}

/// A probe in the order the comparison ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderedProbe {
    pub side: Side,
    pub step: String,
    pub rate_rps: f64,
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Base,
    Head,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Head => "head",
        }
    }
}

/// What a comparison says, per configuration and as a whole (the worst of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Head's capacity is higher beyond the tolerance, and its whole interval above
    /// `1 + tolerance / 2`.
    Improved,
    /// Within the tolerance, or a difference the interval does not show as real.
    Unchanged,
    /// Head's capacity is lower beyond the tolerance, and its whole interval below
    /// `1 − tolerance / 2`.
    Regressed,
    /// A capacity was not measured (not bracketed, the run stopped, the scenarios differ).
    NotComparable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Regressed => "regressed",
            Verdict::NotComparable => "not comparable",
        }
    }
}
