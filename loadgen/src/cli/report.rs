//! `loadgen report`: judge a saved `run.json` again (the checks are pure functions of its
//! measurements) and re-render the terminal tables, `steps.csv` and `report.html`, without
//! re-running anything. The run comes from a file, or from a log (`--from-log`: `kubectl logs`
//! of a Job that ran `loadgen run --print-run-json`). With `--baseline`, the report gains a
//! comparison section (capacity then and now per configuration).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{ExitStatus, ReportArgs};
use loadgen_judge::baseline::Baseline;
use loadgen_judge::check;
use loadgen_model::result::CampaignResult;
use loadgen_report as report;

/// Runs `loadgen report`: prints the tables, writes the files beside `run.json` (or to
/// `--out`), and exits 1 when the run has a reason to (see `CampaignResult::exit_reasons`).
pub fn execute(args: ReportArgs) -> anyhow::Result<ExitStatus> {
    let (saved, source) = load(&args)?;
    let result = check::judge_run(saved);
    let out_dir = match (&args.out, &source) {
        (Some(d), _) => d.clone(),
        (None, Some(path)) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into()),
        (None, None) => anyhow::bail!("--from-log needs --out DIR (where to write the report)"),
    };
    print!("{}", report::table::render(&result));
    match &source {
        Some(path) => copy_run_json(path, &out_dir)?,
        None => {
            loadgen::campaign::save(&result, &out_dir)
                .with_context(|| format!("cannot write run.json into {}", out_dir.display()))?;
        }
    }
    let comparison = match &args.baseline {
        Some(path) => Some(compared(&result, path, &args.tolerance)?),
        None => None,
    };
    if let Some(c) = &comparison {
        print!("\n{}", report::comparison::render(c));
    }
    let written = report::write_outputs_compared(&result, &out_dir, comparison.as_ref())?;
    println!(
        "\nwrote {} and {}",
        written.steps_csv.display(),
        written.report_html.display()
    );
    Ok(super::exit_status_of(&result))
}

/// The run compared with the baseline at `path`, as `loadgen check` compares them.
fn compared(
    result: &CampaignResult,
    path: &Path,
    tolerance: &str,
) -> anyhow::Result<loadgen_judge::comparison::Comparison> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = Baseline::from_json(&text).with_context(|| format!("{}", path.display()))?;
    let options = loadgen_judge::comparison::Options {
        tolerance: super::check::parse_tolerance(tolerance)?,
        allow_different: true,
    };
    Ok(loadgen_judge::comparison::compare(
        &base,
        &Baseline::of(result),
        options,
    ))
}

/// The saved run, and the file it came from (`None` when it came from a log).
fn load(args: &ReportArgs) -> anyhow::Result<(CampaignResult, Option<PathBuf>)> {
    if let Some(log) = &args.from_log {
        let text = if log.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the log from stdin")?;
            s
        } else {
            std::fs::read_to_string(log)
                .with_context(|| format!("cannot read {}", log.display()))?
        };
        let run = report::log::unwrap(&text)
            .with_context(|| format!("{}: no run in the log", log.display()))?;
        return Ok((run, None));
    }
    let path = args
        .run_json
        .as_ref()
        .context("a run.json (or --from-log FILE) is required")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let run = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run.json", path.display()))?;
    Ok((run, Some(path.clone())))
}

/// Puts a copy of `run.json` in `out_dir` when it is elsewhere, so the report's relative link
/// to it works.
fn copy_run_json(path: &Path, out_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let target = out_dir.join(report::RUN_JSON);
    let same = match (path.canonicalize(), target.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        std::fs::copy(path, &target)
            .with_context(|| format!("cannot copy {} to {}", path.display(), target.display()))?;
    }
    Ok(())
}
