//! The comparison of a run with its baseline, as `loadgen check` makes it: whether the two are
//! comparable at all (the same scenario file, the same kind of machine, the same time scale),
//! then per configuration — paired by campaign and topology — whether the capacity regressed,
//! and per step with the same id how counted ratio, p99 and CPU per 1,000 clicks moved.
//!
//! A regression is a capacity drop larger than the tolerance *and* larger than the spread the
//! repeats of both runs showed: a drop inside that noise is reported as such, never failed.
//! Step figures are single measurements, too noisy to gate on: they are shown, beside the
//! capacities they explain, and flagged when worse than the tolerance. Pure.

use crate::baseline::{Baseline, StepFigures};
use loadgen_model::capacity::Capacity;
use loadgen_model::result::MachineInfo;
use loadgen_model::step_id::StepId;

/// How two runs may differ before their capacities say nothing about each other.
pub const MEMORY_TOLERANCE: f64 = 0.10;

/// How a comparison is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The largest relative drop that is not a regression (0.10 = 10 %).
    pub tolerance: f64,
    /// Compare even when the scenario or machine differs.
    pub allow_different: bool,
}

/// What the comparison concludes, as the exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No capacity regressed (exit 0).
    Pass,
    /// At least one capacity regressed (exit 1).
    Regression,
    /// The runs cannot be compared (exit 2).
    NotComparable,
}

/// One configuration's capacity then and now.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityRow {
    pub campaign: String,
    pub configuration: String,
    pub baseline: Option<Capacity>,
    pub run: Option<Capacity>,
    /// (now − then) / then.
    pub change: Option<f64>,
    pub verdict: Verdict,
}

/// The verdict on one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped by more than the tolerance and more than the repeats' spread.
    Regression,
    /// Dropped by more than the tolerance, but within the spread the repeats showed.
    WithinNoise,
    /// Moved by no more than the tolerance.
    WithinTolerance,
    /// Rose by more than the tolerance and the spread.
    Improvement,
    /// Not searched, or no capacity on either side (both below `from`).
    Unmeasured,
    OnlyInBaseline,
    OnlyInRun,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::WithinNoise => "within noise",
            Verdict::WithinTolerance => "ok",
            Verdict::Improvement => "improved",
            Verdict::Unmeasured => "not measured",
            Verdict::OnlyInBaseline => "only in baseline",
            Verdict::OnlyInRun => "only in run",
        }
    }
}

/// One figure of a step then and now.
#[derive(Debug, Clone, PartialEq)]
pub struct StepChange {
    pub id: StepId,
    pub figure: &'static str,
    pub baseline: f64,
    pub run: f64,
    /// (now − then) / then.
    pub change: f64,
    /// Worse than the tolerance (shown, not gated on).
    pub worse: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub options: Options,
    /// What differs between the runs that makes them not comparable, in words.
    pub differences: Vec<String>,
    pub capacities: Vec<CapacityRow>,
    pub steps: Vec<StepChange>,
    /// Steps whose ids matched, with figures on both sides.
    pub steps_paired: usize,
}

impl Comparison {
    pub fn outcome(&self) -> Outcome {
        let differs = !self.differences.is_empty() && !self.options.allow_different;
        let paired = self
            .capacities
            .iter()
            .any(|c| c.baseline.is_some() && c.run.is_some());
        if differs || (!paired && self.steps_paired == 0) {
            Outcome::NotComparable
        } else if self.regressions().next().is_some() {
            Outcome::Regression
        } else {
            Outcome::Pass
        }
    }

    pub fn regressions(&self) -> impl Iterator<Item = &CapacityRow> {
        self.capacities
            .iter()
            .filter(|c| c.verdict == Verdict::Regression)
    }
}

/// Compares `run` with `baseline`.
pub fn compare(baseline: &Baseline, run: &Baseline, options: Options) -> Comparison {
    let (steps, steps_paired) = step_changes(baseline, run, options.tolerance);
    Comparison {
        options,
        differences: differences(baseline, run),
        capacities: capacity_rows(baseline, run, options.tolerance),
        steps,
        steps_paired,
    }
}

/// What makes the runs not comparable: another scenario file, another kind of machine, or
/// another time scale (shorter probes pass higher rates).
pub fn differences(baseline: &Baseline, run: &Baseline) -> Vec<String> {
    let mut out = Vec::new();
    let (b, r) = (&baseline.scenario, &run.scenario);
    if b.sha256 != r.sha256 {
        out.push(format!(
            "different scenario: the baseline ran {} (sha256 {}), this run {} (sha256 {})",
            b.path,
            short(&b.sha256),
            r.path,
            short(&r.sha256)
        ));
    }
    out.extend(machine_differences(&baseline.machine, &run.machine));
    if baseline.time_scale != run.time_scale {
        out.push(format!(
            "different time scale: the baseline ran at {}, this run at {}",
            baseline.time_scale, run.time_scale
        ));
    }
    out
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The machine facts that bear on capacity: CPUs, their model, memory (within
/// [`MEMORY_TOLERANCE`]) and the cgroup mode that enforces the limits. A fact one side did not
/// record is not held against it; the hostname is not compared (CI runners get new ones).
fn machine_differences(b: &MachineInfo, r: &MachineInfo) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, then: Option<String>, now: Option<String>| {
        if let (Some(then), Some(now)) = (then, now) {
            if then != now {
                out.push(format!(
                    "different machine: {what} {then} in the baseline, {now} in this run"
                ));
            }
        }
    };
    differ(
        "CPUs",
        b.cpus.map(|c| c.to_string()),
        r.cpus.map(|c| c.to_string()),
    );
    differ("CPU model", b.cpu_model.clone(), r.cpu_model.clone());
    differ("cgroup mode", b.cgroup_mode.clone(), r.cgroup_mode.clone());
    if let (Some(then), Some(now)) = (b.memory_bytes, r.memory_bytes) {
        let gib = |v: u64| format!("{:.1} GiB", v as f64 / 1073741824.0);
        if (now as f64 - then as f64).abs() > MEMORY_TOLERANCE * then as f64 {
            out.push(format!(
                "different machine: memory {} in the baseline, {} in this run",
                gib(then),
                gib(now)
            ));
        }
    }
    out
}

/// Configurations of both runs, baseline order first, paired by campaign and topology.
fn capacity_rows(baseline: &Baseline, run: &Baseline, tolerance: f64) -> Vec<CapacityRow> {
    let same = |a: &Capacity, b: &Capacity| a.campaign == b.campaign && a.topology == b.topology;
    let mut rows: Vec<CapacityRow> = baseline
        .capacities
        .iter()
        .map(|b| {
            let r = run.capacities.iter().find(|r| same(b, r));
            row(Some(b), r, tolerance)
        })
        .collect();
    for r in &run.capacities {
        if !baseline.capacities.iter().any(|b| same(b, r)) {
            rows.push(row(None, Some(r), tolerance));
        }
    }
    rows
}

fn row(b: Option<&Capacity>, r: Option<&Capacity>, tolerance: f64) -> CapacityRow {
    let any = b.or(r).expect("a row has at least one side");
    let (change, verdict) = match (b, r) {
        (Some(b), Some(r)) => verdict(b, r, tolerance),
        (Some(_), None) => (None, Verdict::OnlyInBaseline),
        (None, _) => (None, Verdict::OnlyInRun),
    };
    CapacityRow {
        campaign: any.campaign.clone(),
        configuration: any.configuration.clone(),
        baseline: b.cloned(),
        run: r.cloned(),
        change,
        verdict,
    }
}

/// The rule: a drop beyond the tolerance that the repeats' spread of both runs cannot explain
/// is a regression. A capacity now below the lowest probe, where there was one, has dropped
/// past anything the baseline's spread allows.
fn verdict(b: &Capacity, r: &Capacity, tolerance: f64) -> (Option<f64>, Verdict) {
    let noise = b.spread_rps.unwrap_or(0.0) + r.spread_rps.unwrap_or(0.0);
    match (b.capacity_rps, r.capacity_rps) {
        (Some(then), Some(now)) if then > 0.0 => {
            let change = (now - then) / then;
            let v = if change < -tolerance {
                if then - now > noise {
                    Verdict::Regression
                } else {
                    Verdict::WithinNoise
                }
            } else if change > tolerance && now - then > noise {
                Verdict::Improvement
            } else {
                Verdict::WithinTolerance
            };
            (Some(change), v)
        }
        (Some(_), None) if r.failed_rps.is_some() => (Some(-1.0), Verdict::Regression),
        (None, Some(_)) if b.failed_rps.is_some() => (None, Verdict::Improvement),
        _ => (None, Verdict::Unmeasured),
    }
}

/// A step figure: its name, how to read it, and whether higher is worse.
type Figure = (&'static str, fn(&StepFigures) -> Option<f64>, bool);

const FIGURES: [Figure; 3] = [
    ("counted ratio", |s| s.counted_ratio, false),
    ("p99 (ms)", |s| s.p99_ms, true),
    ("CPU-s per 1k clicks", |s| s.cpu_s_per_1k_clicks, true),
];

/// Figures of steps whose ids match, valid on both sides; and how many steps paired.
fn step_changes(baseline: &Baseline, run: &Baseline, tolerance: f64) -> (Vec<StepChange>, usize) {
    let mut out = Vec::new();
    let mut paired = 0;
    for b in baseline.steps.iter().filter(|s| s.evidence) {
        let Some(r) = run.steps.iter().find(|r| r.id == b.id && r.evidence) else {
            continue;
        };
        paired += 1;
        for (figure, value, higher_is_worse) in FIGURES {
            let (Some(then), Some(now)) = (value(b), value(r)) else {
                continue;
            };
            if then == 0.0 {
                continue;
            }
            let change = (now - then) / then;
            let worse = if higher_is_worse {
                change > tolerance
            } else {
                change < -tolerance
            };
            out.push(StepChange {
                id: b.id.clone(),
                figure,
                baseline: then,
                run: now,
                change,
                worse,
            });
        }
    }
    (out, paired)
}
