//! `loadgen check RUN_JSON --baseline B [--tolerance 10%] [--allow-different]`: compare a
//! run's capacities with a baseline, print the table, append the Markdown to
//! `$GITHUB_STEP_SUMMARY` when it is set, and exit 0 (pass), 1 (a regression) or 2 (not
//! comparable: which difference, on stderr). Machines are compared by class (CPUs, memory
//! bucket, cgroup mode: `loadgen_judge::machine_class`). With no baseline at `B` yet — the
//! first run of a committed-baseline workflow — it writes the run's `baseline.json` beside
//! its run.json, says that is the file to commit, and passes.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::{CheckArgs, ExitStatus};
use loadgen_judge::baseline::Baseline;
use loadgen_judge::comparison::{self, Comparison, Options, Outcome};
use loadgen_report::comparison as render;

/// The variable GitHub Actions names its step-summary file by.
pub(super) const STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// The file a first run's baseline is written to, beside its run.json (the name the workflow
/// uploads as an artifact).
const BASELINE_JSON: &str = "baseline.json";

/// Runs `loadgen check`.
pub fn execute(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let options = Options {
        tolerance: parse_tolerance(&args.tolerance)?,
        allow_different: args.allow_different,
    };
    if !args.baseline.exists() {
        return first_run(&args.run_json, &args.baseline);
    }
    let c = compare_files(&args.run_json, &args.baseline, options)?;
    print!("{}", render::render(&c));
    summarize(&render::markdown(&c))?;
    Ok(match c.outcome() {
        Outcome::Pass => ExitStatus::Done,
        Outcome::Regression => ExitStatus::ChecksFailed,
        Outcome::NotComparable => {
            eprintln!("loadgen: {}", render::verdict_line(&c));
            ExitStatus::NotComparable
        }
    })
}

/// No baseline at `baseline` yet: nothing to regress from, so the check passes, and the run's
/// own baseline is written beside it, to be committed there.
fn first_run(run_json: &Path, baseline: &Path) -> anyhow::Result<ExitStatus> {
    let run = read(run_json)?;
    let out = run_json
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(BASELINE_JSON);
    let json = serde_json::to_string_pretty(&run)? + "\n";
    loadgen_model::atomic_file::write(&out, json.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let line = format!(
        "no baseline yet: this run's baseline.json is the artifact to commit ({} written; commit \
         it as {})",
        out.display(),
        baseline.display()
    );
    println!("PASS: {line}");
    summarize(&format!("\n**PASS: {line}**\n"))?;
    Ok(ExitStatus::Done)
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY` when it is set.
fn summarize(markdown: &str) -> anyhow::Result<()> {
    if let Some(path) = std::env::var_os(STEP_SUMMARY).filter(|p| !p.is_empty()) {
        append(Path::new(&path), markdown)
            .with_context(|| format!("cannot write ${STEP_SUMMARY}"))?;
    }
    Ok(())
}

/// A baseline file, or a run.json reduced to its baseline.
fn read(p: &Path) -> anyhow::Result<Baseline> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Baseline::from_json(&text).with_context(|| format!("{}", p.display()))
}

/// The comparison of the run in `run_json` with `baseline` (either file a baseline or a run).
pub fn compare_files(
    run_json: &Path,
    baseline: &Path,
    options: Options,
) -> anyhow::Result<Comparison> {
    let (base, run) = (read(baseline)?, read(run_json)?);
    Ok(comparison::compare(&base, &run, options))
}

/// `10%` or a fraction such as `0.1`; anything else is an error naming the flag.
pub fn parse_tolerance(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => t.parse::<f64>().ok().filter(|f| *f < 1.0),
    };
    v.filter(|v| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("--tolerance: expected a percentage such as 10% (or a fraction such as 0.1), got \"{s}\""))
}

/// GitHub collects the summary of every step from the same variable's file: append to it.
pub(super) fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}
