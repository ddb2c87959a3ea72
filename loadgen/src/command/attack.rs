//! `loadgen attack`: not implemented yet.

/// Runs `loadgen attack`.
pub fn execute(_args: crate::cli::AttackArgs) -> anyhow::Result<crate::cli::Outcome> {
    anyhow::bail!("loadgen attack is not implemented yet")
}
