//! `loadgen run SCENARIO`: load and expand the scenario, run the campaign with Ctrl-C handling
//! (first: finish the current step's teardown and save a partial run; second: exit at once),
//! then render the tables, `steps.csv` and `report.html` from the saved result.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::watch::Watchers;
use crate::cli::{signal, ExitStatus, RunArgs};
use loadgen::campaign::{self, RunOptions};
use loadgen::plan::{Plan, PrometheusMode};
use loadgen_model::result::RunStatus;

/// Default output directory: `reports/<scenario>-<utc>/`.
fn default_out(plan: &Plan) -> PathBuf {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    PathBuf::from("reports").join(format!("{}-{stamp}", plan.source.name))
}

/// Runs `loadgen run`.
pub fn execute(args: RunArgs) -> anyhow::Result<ExitStatus> {
    let mut plan = Plan::load(&args.scenario)?;
    loadgen::plan::check_time_scale(args.time_scale)?;
    if args.time_scale != 1.0 {
        plan.scale_time(args.time_scale);
    }
    if let Some(filter) = &args.steps {
        plan.select_steps(filter)?;
    }
    let prometheus = args
        .prometheus
        .as_deref()
        .map(|p| PrometheusMode::from_arg(p).map_err(|e| anyhow::anyhow!("--prometheus: {e}")))
        .transpose()?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&plan));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let watchers = runtime.block_on(Watchers::start(&args.watch))?;
    let json_log = super::log_format::json();
    let draw_progress = std::io::stderr().is_terminal() && !json_log;
    let opts = RunOptions {
        out_dir: out_dir.clone(),
        prometheus,
        // A log gets progress too (thinned to a line a second by the JSON sink).
        progress: draw_progress || json_log || watchers.wants_progress(),
        time_scale: args.time_scale,
        events: watchers.events(super::event_log::sink(draw_progress)),
        generator_metrics: watchers.metrics_target(),
    };
    let stop = CancellationToken::new();
    let result = runtime.block_on(async {
        let signals = tokio::spawn(signal::watch(
            stop.clone(),
            "interrupted: stopping the current step, tearing down and saving",
        ));
        let result = campaign::run(&plan, &opts, &stop).await;
        signals.abort();
        result
    })?;

    loadgen_report::write_outputs(&result, &out_dir)
        .with_context(|| format!("cannot write the report into {}", out_dir.display()))?;
    println!("{}", loadgen_report::table::render(&result));
    if args.print_run_json {
        // The pod's files vanish with it: `loadgen report --from-log` reads this back.
        println!("{}", loadgen_report::log::wrap(&result)?);
    }
    super::log_format::path_line("results", "results: ", &out_dir.join("run.json"));
    super::log_format::path_line("report", "report:  ", &out_dir.join("report.html"));
    watchers.after_run(&runtime, stop.is_cancelled());
    if result.status == RunStatus::Failed {
        anyhow::bail!(
            "{}",
            result.error.as_deref().unwrap_or("the campaign failed")
        );
    }
    Ok(super::exit_status_of(&result))
}
