//! The Baseline: what `loadgen check` compares a run against — the scenario and machine that
//! make two runs comparable, each searched configuration's capacity, and a few figures per
//! step — kept from a judged run so a file small enough to commit holds all of it
//! (`loadgen baseline RUN_JSON --out FILE`). A whole run.json serves as a baseline too.

use serde::{Deserialize, Serialize};

use crate::check;
use loadgen_model::capacity::Capacity;
use loadgen_model::result::{CampaignResult, MachineInfo};
use loadgen_model::step_id::StepId;

/// Version of the baseline file's layout; bump when a field changes meaning.
pub const BASELINE_VERSION: u32 = 1;

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("neither a baseline (baseline_version) nor a run.json (schema_version)")]
    Unknown,
    #[error("baseline_version {0} is newer than this loadgen reads ({BASELINE_VERSION})")]
    Version(u32),
}

/// What a check needs of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub baseline_version: u32,
    pub scenario: ScenarioRef,
    pub machine: MachineInfo,
    pub time_scale: f64,
    /// The loadgen that ran it.
    pub tool_version: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    pub capacities: Vec<Capacity>,
    pub steps: Vec<StepFigures>,
}

/// The scenario by name and hash: the same hash means the same file, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// The figures a check compares per step, when the step ids of two runs match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFigures {
    pub id: StepId,
    pub rate_rps: f64,
    /// Valid, whole, its target alive: only then are its figures compared.
    pub evidence: bool,
    pub counted_ratio: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cpu_s_per_1k_clicks: Option<f64>,
}

impl Baseline {
    /// The baseline of a run, judged again first so its capacities are this build's reading.
    pub fn of(run: &CampaignResult) -> Baseline {
        let run = check::judge_run(run.clone());
        Baseline {
            baseline_version: BASELINE_VERSION,
            scenario: ScenarioRef {
                name: run.scenario.name.clone(),
                path: run.scenario.path.clone(),
                sha256: run.scenario.sha256.clone(),
            },
            machine: MachineInfo {
                // A CI runner gets a new hostname every run: it says nothing about the machine.
                hostname: None,
                ..run.machine.clone()
            },
            time_scale: run.time_scale,
            tool_version: run.tool.version.clone(),
            started_at: run.started_at.clone(),
            capacities: run.capacities.clone(),
            steps: run
                .steps
                .iter()
                .map(|s| StepFigures {
                    id: s.id(),
                    rate_rps: s.rate_rps,
                    evidence: s.is_evidence(),
                    counted_ratio: s.counted_ratio,
                    p99_ms: s.latency_ms.p99,
                    cpu_s_per_1k_clicks: s.cpu_s_per_1k_clicks(),
                })
                .collect(),
        }
    }

    /// A baseline file, or a whole run.json reduced to its baseline.
    pub fn from_json(text: &str) -> Result<Baseline, BaselineError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(v) = value.get("baseline_version").and_then(|v| v.as_u64()) {
            if v > u64::from(BASELINE_VERSION) {
                return Err(BaselineError::Version(v as u32));
            }
            return Ok(serde_json::from_value(value)?);
        }
        if value.get("schema_version").is_some() {
            let run: CampaignResult = serde_json::from_value(value)?;
            return Ok(Baseline::of(&run));
        }
        Err(BaselineError::Unknown)
    }
}
