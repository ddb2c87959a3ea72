//! `loadgen merge SHARD.json… [--out F]`: one exact step from its shards' results
//! ([`loadgen::campaign::merge`]), judged like any step. Exit codes: 0 the merged step is valid;
//! 1 it is invalid (a shard invalid, late or missing; the reasons are in it and on stderr);
//! 2 the files cannot be read or are not the shards of one step.

use anyhow::Context as _;

use crate::cli::{ExitStatus, MergeArgs};
use loadgen::campaign::assemble;
use loadgen::campaign::merge::{self, ShardInput};
use loadgen_engine::pool::GROW_AFTER;
use loadgen_model::result::StepResult;
use loadgen_model::shard;
use loadgen_report::step_summary;

/// Runs `loadgen merge`.
pub fn execute(args: MergeArgs) -> anyhow::Result<ExitStatus> {
    let mut inputs = Vec::new();
    for path in &args.shards {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        inputs.push(ShardInput::Result(Box::new(
            read_shard(&text)
                .with_context(|| format!("{} is not a shard's result", path.display()))?,
        )));
    }
    let count = match &inputs[0] {
        ShardInput::Result(s) => s.sharding.as_ref().map_or(1, |h| h.count),
        ShardInput::Missing { .. } => 1,
    };
    let step = assemble::generator_judged(merge::merge(count, &inputs)?);
    let json = serde_json::to_string(&step)?;
    match &args.out {
        Some(out) => loadgen_model::atomic_file::write(out, format!("{json}\n").as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => println!("{json}"),
    }
    let shards = format!("{count} shards");
    eprint!("{}", step_summary::render(&step, &shards, GROW_AFTER));
    Ok(if step.valid && !step.interrupted {
        ExitStatus::Done
    } else {
        ExitStatus::ChecksFailed
    })
}

/// A shard's StepResult: the file itself (`--json` output), or the marked line of a log.
fn read_shard(text: &str) -> anyhow::Result<StepResult> {
    match serde_json::from_str(text) {
        Ok(step) => Ok(step),
        Err(e) => match shard::result_in_log(text) {
            Some(line) => Ok(serde_json::from_str(line)?),
            None => Err(e.into()),
        },
    }
}
