//! run.json inside a log: `loadgen run --print-run-json` prints the saved result between two
//! marker lines, so a Kubernetes Job's result survives its pod in `kubectl logs`; [`unwrap`]
//! finds it again in such a log (whatever the lines around it, a timestamp prefix
//! included) for `loadgen report --from-log`.

use loadgen_model::result::CampaignResult;

/// The line before run.json.
pub const BEGIN: &str = "--- loadgen run.json begin ---";
/// The line after run.json.
pub const END: &str = "--- loadgen run.json end ---";

/// Why no run could be read from a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no `{BEGIN}` line in the log (was the run started with --print-run-json?)")]
    NoBegin,
    #[error("the log ends before the `{END}` line (the run was cut off while printing)")]
    NoEnd,
    #[error("the run.json between the markers is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

/// run.json between the markers, ready to print.
pub fn wrap(result: &CampaignResult) -> Result<String, serde_json::Error> {
    Ok(format!(
        "{BEGIN}\n{}\n{END}",
        serde_json::to_string_pretty(result)?
    ))
}

/// The run.json of the last marked block in `log`. A prefix before a marker on its line (as
/// `kubectl logs --timestamps` adds) is cut from every line of the block alike.
pub fn unwrap(log: &str) -> Result<CampaignResult, LogError> {
    let lines: Vec<&str> = log.lines().collect();
    let (begin, prefix) = lines
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| l.find(BEGIN).map(|at| (i, at)))
        .ok_or(LogError::NoBegin)?;
    let end = lines[begin + 1..]
        .iter()
        .position(|l| l.contains(END))
        .map(|p| begin + 1 + p)
        .ok_or(LogError::NoEnd)?;
    let json: String = lines[begin + 1..end]
        .iter()
        .map(|l| l.get(prefix..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(serde_json::from_str(&json)?)
}
