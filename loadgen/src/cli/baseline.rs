//! `loadgen baseline RUN_JSON --out FILE`: keep what `loadgen check` needs of a run (its
//! scenario hash, machine, capacities and step figures) in a small file to commit.

use anyhow::Context as _;

use crate::cli::{BaselineArgs, ExitStatus};
use loadgen_judge::baseline::Baseline;

/// Runs `loadgen baseline`.
pub fn execute(args: BaselineArgs) -> anyhow::Result<ExitStatus> {
    let text = std::fs::read_to_string(&args.run_json)
        .with_context(|| format!("cannot read {}", args.run_json.display()))?;
    let run = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run.json", args.run_json.display()))?;
    let baseline = Baseline::of(&run);
    let json = serde_json::to_string_pretty(&baseline)? + "\n";
    loadgen_model::atomic_file::write(&args.out, json.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "baseline: {} ({} configuration(s), {} step(s), {} bytes)",
        args.out.display(),
        baseline.capacities.len(),
        baseline.steps.len(),
        json.len()
    );
    Ok(ExitStatus::Done)
}
