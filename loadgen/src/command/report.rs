//! `loadgen report`: not implemented yet.

/// Runs `loadgen report`.
pub fn execute(_args: crate::cli::ReportArgs) -> anyhow::Result<crate::cli::Outcome> {
    anyhow::bail!("loadgen report is not implemented yet")
}
