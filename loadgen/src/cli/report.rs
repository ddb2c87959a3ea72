//! `loadgen report`: judge a saved `run.json` again (the checks are pure functions of its
//! measurements) and re-render the terminal tables, `steps.csv` and `report.html`, without
//! re-running anything.

use anyhow::Context as _;

use crate::cli::{ExitStatus, ReportArgs};
use loadgen::check;
use loadgen::report;
use loadgen::result::CampaignResult;

/// Runs `loadgen report`: prints the tables, writes the files beside `run.json` (or to
/// `--out`), and returns [`ExitStatus::ChecksFailed`] when any finding failed.
pub fn execute(args: ReportArgs) -> anyhow::Result<ExitStatus> {
    let path = &args.run_json;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let saved: CampaignResult = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run.json", path.display()))?;
    let result = check::judge_run(saved);
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into()),
    };
    print!("{}", report::table::render(&result));
    copy_run_json(path, &out_dir)?;
    let written = report::write_outputs(&result, &out_dir)?;
    println!(
        "\nwrote {} and {}",
        written.steps_csv.display(),
        written.report_html.display()
    );
    Ok(if result.has_failure() {
        ExitStatus::ChecksFailed
    } else {
        ExitStatus::Done
    })
}

/// Puts a copy of `run.json` in `out_dir` when it is elsewhere, so the report's relative link
/// to it works.
fn copy_run_json(path: &std::path::Path, out_dir: &std::path::Path) -> anyhow::Result<()> {
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
