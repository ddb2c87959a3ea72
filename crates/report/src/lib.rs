//! Reports: terminal tables, `steps.csv` and the self-contained `report.html`, all rendered from
//! one [`loadgen_model::result::CampaignResult`]. Every number shown is computed once, in
//! [`row::StepRow`], so the three outputs agree; the verdict comes from [`capacity`].

pub mod capacity;
pub mod chart;
pub mod comparison;
pub mod html;
pub mod interval_chart;
pub mod log;
pub mod paired;
pub mod row;
pub mod searched;
pub mod shards;
pub mod step_summary;
pub mod steps_csv;
pub mod table;

use std::path::{Path, PathBuf};

use loadgen_model::result::CampaignResult;

/// File name of the CSV inside a run directory.
pub const STEPS_CSV: &str = "steps.csv";
/// File name of the HTML report inside a run directory.
pub const REPORT_HTML: &str = "report.html";
/// File name of the saved results inside a run directory (linked from the HTML).
pub use loadgen_model::RUN_JSON;

/// Errors writing report files.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot format steps.csv: {0}")]
    Csv(#[from] csv::Error),
}

/// Where [`write_outputs`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPaths {
    pub steps_csv: PathBuf,
    pub report_html: PathBuf,
}

/// Writes `steps.csv` and `report.html` into `out_dir` (created if missing). `run.json` is the
/// caller's: it is written first, before anything interprets it.
pub fn write_outputs(result: &CampaignResult, out_dir: &Path) -> Result<OutputPaths, ReportError> {
    write_outputs_compared(result, out_dir, None)
}

/// [`write_outputs`], the report with a comparison section when `comparison` is given
/// (`loadgen report --baseline`).
pub fn write_outputs_compared(
    result: &CampaignResult,
    out_dir: &Path,
    comparison: Option<&loadgen_judge::comparison::Comparison>,
) -> Result<OutputPaths, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let paths = OutputPaths {
        steps_csv: out_dir.join(STEPS_CSV),
        report_html: out_dir.join(REPORT_HTML),
    };
    steps_csv::write(result, &paths.steps_csv)?;
    let page = html::render_compared(result, comparison);
    write_file(&paths.report_html, page.as_bytes())?;
    Ok(paths)
}

/// Writes one report file atomically.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    loadgen_model::atomic_file::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
