//! `loadgen check RUN_JSON --baseline B [--tolerance 10%] [--allow-different]`: compare a
//! run's capacities with a baseline, print the table, append the Markdown to
//! `$GITHUB_STEP_SUMMARY` when it is set, and exit 0 (pass), 1 (a regression) or 2 (not
//! comparable: which difference, on stderr).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::{CheckArgs, ExitStatus};
use loadgen_judge::baseline::Baseline;
use loadgen_judge::comparison::{self, Comparison, Options, Outcome};
use loadgen_report::comparison as render;

/// The variable GitHub Actions names its step-summary file by.
const STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// Runs `loadgen check`.
pub fn execute(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let options = Options {
        tolerance: parse_tolerance(&args.tolerance)?,
        allow_different: args.allow_different,
    };
    let c = compare_files(&args.run_json, &args.baseline, options)?;
    print!("{}", render::render(&c));
    if let Some(path) = std::env::var_os(STEP_SUMMARY).filter(|p| !p.is_empty()) {
        append(Path::new(&path), &render::markdown(&c))
            .with_context(|| format!("cannot write ${STEP_SUMMARY}"))?;
    }
    Ok(match c.outcome() {
        Outcome::Pass => ExitStatus::Done,
        Outcome::Regression => ExitStatus::ChecksFailed,
        Outcome::NotComparable => {
            eprintln!("loadgen: {}", render::verdict_line(&c));
            ExitStatus::NotComparable
        }
    })
}

/// The comparison of the run in `run_json` with `baseline` (either file a baseline or a run).
pub fn compare_files(
    run_json: &Path,
    baseline: &Path,
    options: Options,
) -> anyhow::Result<Comparison> {
    let read = |p: &Path| -> anyhow::Result<Baseline> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        Baseline::from_json(&text).with_context(|| format!("{}", p.display()))
    };
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
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}
