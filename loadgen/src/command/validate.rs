//! `loadgen validate`: not implemented yet.

/// Runs `loadgen validate`.
pub fn execute(_args: crate::cli::ValidateArgs) -> anyhow::Result<crate::cli::Outcome> {
    anyhow::bail!("loadgen validate is not implemented yet")
}
