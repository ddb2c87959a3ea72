//! The comparison of a run with its baseline, as `loadgen check` makes it: whether the two are
//! comparable at all (the same scenario file, the same machine class — [`MachineClass`] —, the
//! same time scale; `allow_different` compares anyway, and the differences stay recorded),
//! then per configuration — paired by campaign and topology — whether the capacity regressed,
//! and per step with the same id how counted ratio, p99 and CPU per 1,000 clicks moved.
//!
//! A regression is a capacity drop larger than the tolerance *and* larger than the spread the
//! repeats of both runs showed: a drop inside that noise is reported as such, never failed.
//! Step figures are single measurements, too noisy to gate on: they are shown, beside the
//! capacities they explain, and flagged when worse than the tolerance. Pure.

use crate::baseline::{Baseline, StepFigures};
use crate::machine_class::MachineClass;
use loadgen_model::capacity::Capacity;
use loadgen_model::step_id::StepId;

/// How a comparison is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The largest relative drop that is not a regression (0.10 = 10 %).
    pub tolerance: f64,
    /// Compare even when the scenario, the machine class or the time scale differs (the
    /// differences are still listed, and the verdict names them).
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
    /// What differs between the runs that makes them not comparable, in words; kept when
    /// `allow_different` compared them anyway, so the verdict says across what.
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

/// What makes the runs not comparable: another scenario file, another machine class, or
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
    out.extend(MachineClass::of(&baseline.machine).differences(&MachineClass::of(&run.machine)));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline committed before machine classes (scenarios/ci.baseline.json, version 1).
    fn committed() -> Baseline {
        Baseline::from_json(include_str!("../../../scenarios/ci.baseline.json")).unwrap()
    }

    fn options(allow_different: bool) -> Options {
        Options {
            tolerance: 0.10,
            allow_different,
        }
    }

    #[test]
    fn an_old_baseline_file_still_reads_and_compares() {
        let base = committed();
        let c = compare(&base, &base, options(false));
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.outcome(), Outcome::Pass);
    }

    #[test]
    fn another_cpu_model_or_hostname_of_the_same_class_is_comparable() {
        let base = committed();
        let mut run = base.clone();
        run.machine.cpu_model = Some("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz".into());
        run.machine.hostname = Some("fv-az123-456".into());
        run.machine.memory_bytes = base.machine.memory_bytes.map(|m| m - (300 << 20));
        let c = compare(&base, &run, options(false));
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.outcome(), Outcome::Pass);
    }

    #[test]
    fn another_class_is_not_comparable_unless_allowed_and_then_recorded() {
        let base = committed();
        let mut run = base.clone();
        run.machine.cpus = Some(4);
        run.machine.cgroup_mode = Some("v2".into());
        let c = compare(&base, &run, options(false));
        assert_eq!(c.outcome(), Outcome::NotComparable);
        assert_eq!(c.differences.len(), 2, "{:?}", c.differences);
        let allowed = compare(&base, &run, options(true));
        assert_eq!(allowed.outcome(), Outcome::Pass);
        assert_eq!(allowed.differences, c.differences);
    }
}
