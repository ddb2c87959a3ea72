//! `loadgen run`: not implemented yet.

/// Runs `loadgen run`.
pub fn execute(_args: crate::cli::RunArgs) -> anyhow::Result<crate::cli::Outcome> {
    anyhow::bail!("loadgen run is not implemented yet")
}
