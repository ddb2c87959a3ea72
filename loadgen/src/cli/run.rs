//! `loadgen run SCENARIO`: load and expand the scenario, run the campaign with Ctrl-C handling
//! (first: finish the current step's teardown and save a partial run; second: exit at once),
//! then render the tables, `steps.csv` and `report.html` from the saved result.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{ExitStatus, RunArgs};
use loadgen::campaign::{self, RunOptions};
use loadgen::plan::{Plan, PrometheusMode};
use loadgen::result::{RunStatus, Severity};

/// Default output directory: `reports/<scenario>-<utc>/`.
fn default_out(plan: &Plan) -> PathBuf {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    PathBuf::from("reports").join(format!("{}-{stamp}", plan.source.name))
}

fn parse_prometheus(arg: &str) -> anyhow::Result<PrometheusMode> {
    if arg == "managed" {
        return Ok(PrometheusMode::Managed);
    }
    if arg.starts_with("http://") || arg.starts_with("https://") {
        return Ok(PrometheusMode::Url(arg.trim_end_matches('/').to_string()));
    }
    anyhow::bail!("--prometheus: expected `managed` or an http(s):// URL, got `{arg}`")
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
    loadgen::probe::prometheus::query::validate_overrides(&plan.promql)
        .with_context(|| format!("{}: [prometheus.queries]", args.scenario.display()))?;
    let prometheus = args
        .prometheus
        .as_deref()
        .map(parse_prometheus)
        .transpose()?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&plan));
    let opts = RunOptions {
        out_dir: out_dir.clone(),
        prometheus,
        progress: std::io::stderr().is_terminal(),
        time_scale: args.time_scale,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let stop = CancellationToken::new();
        let signals = tokio::spawn(watch_signals(stop.clone()));
        let result = campaign::run(&plan, &opts, &stop).await;
        signals.abort();
        result
    })?;

    loadgen::report::write_outputs(&result, &out_dir)
        .with_context(|| format!("cannot write the report into {}", out_dir.display()))?;
    println!("{}", loadgen::report::table::render(&result));
    eprintln!("results: {}", out_dir.join("run.json").display());
    eprintln!("report:  {}", out_dir.join("report.html").display());

    match result.status {
        RunStatus::Failed => anyhow::bail!(
            "{}",
            result.error.as_deref().unwrap_or("the campaign failed")
        ),
        RunStatus::Interrupted | RunStatus::Running => Ok(ExitStatus::ChecksFailed),
        RunStatus::Completed => {
            let failed = result
                .findings
                .iter()
                .chain(result.steps.iter().flat_map(|s| &s.checks))
                .any(|f| f.severity == Severity::Fail);
            Ok(if failed {
                ExitStatus::ChecksFailed
            } else {
                ExitStatus::Done
            })
        }
    }
}

/// First Ctrl-C or SIGTERM (a Kubernetes Job being stopped): cancel — the runner ends the
/// current step, tears down and saves. A second one exits at once (house rule 6).
async fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "\ninterrupted: stopping the current step and tearing down (Ctrl-C again to exit at once)"
    );
    stop.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("second interrupt: exiting without teardown");
    std::process::exit(130);
}
