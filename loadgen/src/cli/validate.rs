//! `loadgen validate SCENARIO [--json]`: parse and expand a scenario, print the plan (a table
//! per step, or the JSON contract `{"steps":[…]}`), and fail with the scenario error — one line
//! naming file, line, column and key — when it is wrong (exit 2).

use std::io::Write;

use crate::cli::{ExitStatus, ValidateArgs};
use loadgen::plan::view::{render, PlanView};
use loadgen::plan::Plan;

/// Runs `loadgen validate`.
pub fn execute(args: ValidateArgs) -> anyhow::Result<ExitStatus> {
    let plan = Plan::load(&args.scenario)?;
    let text = if args.json {
        serde_json::to_string_pretty(&PlanView::of(&plan))? + "\n"
    } else {
        render(&plan)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitStatus::Done),
    }
}
