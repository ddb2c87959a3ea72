//! `loadgen compare BASE.toml HEAD.toml [--out DIR] [--repeats N] [--tolerance 5%]`: the
//! same-machine A/B of two services' capacities (`campaign::paired`), judged by
//! `loadgen_judge::compare`'s stated rule. Writes `compare.json`, `summary.md` and
//! `report.html` into DIR, each side's run into `DIR/base` and `DIR/head`, appends the summary
//! to `$GITHUB_STEP_SUMMARY` when it is set, and exits 0 (no regression), 1 (a regression: the
//! configuration, the ratio and its interval on stderr) or 2 (could not compare).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::cli::{check, signal, CompareArgs, ExitStatus};
use loadgen::campaign::paired::{self, PairedOptions};
use loadgen::campaign::Events;
use loadgen::plan::{Plan, Target};
use loadgen_judge::compare as judge;
use loadgen_model::compare::{
    CompareResult, SideInfo, Verdict, COMPARE_JSON, COMPARE_SCHEMA_VERSION,
};

/// Runs `loadgen compare`.
pub fn execute(args: CompareArgs) -> anyhow::Result<ExitStatus> {
    let tolerance = check::parse_tolerance(&args.tolerance)?;
    loadgen::plan::check_time_scale(args.time_scale)?;
    let mut plans = [Plan::load(&args.base)?, Plan::load(&args.head)?];
    for p in plans.iter_mut().filter(|_| args.time_scale != 1.0) {
        p.scale_time(args.time_scale);
    }
    if let Some(why) = paired::incomparable(&plans[0], &plans[1]).or_else(|| same_service(&plans)) {
        anyhow::bail!(
            "cannot compare {} with {}: {why}",
            args.base.display(),
            args.head.display()
        );
    }
    say_left_out(&plans);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports/compare"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let opts = PairedOptions {
        out_dir: out.clone(),
        repeats: args.repeats,
        time_scale: args.time_scale,
        events: [side_events("base"), side_events("head")],
    };
    let started_at = now();
    let t0 = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stop = CancellationToken::new();
    let paired = runtime.block_on(async {
        let signals = tokio::spawn(signal::watch(
            stop.clone(),
            "interrupted: stopping the current probe, tearing down and saving",
        ));
        let r = paired::run([&plans[0], &plans[1]], &opts, &stop).await;
        signals.abort();
        r
    })?;
    for (run, side) in [(&paired.base, "base"), (&paired.head, "head")] {
        loadgen_report::write_outputs(run, &out.join(side))
            .with_context(|| format!("cannot write the {side} report"))?;
    }
    let rule = judge::rule(tolerance);
    let configurations = judge::configurations(&paired.base, &paired.head, &rule);
    let mut verdict = judge::overall(&configurations);
    let error = stop
        .is_cancelled()
        .then(|| "interrupted before every probe ran".to_string());
    if error.is_some() {
        verdict = Verdict::NotComparable;
    }
    let result = CompareResult {
        schema_version: COMPARE_SCHEMA_VERSION,
        base: side_info(&args.base, "base", &plans[0]),
        head: side_info(&args.head, "head", &plans[1]),
        rule,
        repeats: args.repeats.max(1),
        configurations,
        order: paired.order,
        verdict,
        error,
        started_at,
        ended_at: Some(now()),
        wall_s: t0.elapsed().as_secs_f64(),
    };
    write(&result, &out)?;
    Ok(status(&result))
}

/// What the comparison leaves out of either scenario, each line once, before anything runs.
fn say_left_out(plans: &[Plan; 2]) {
    let mut lines = paired::left_out(&plans[0]);
    for line in paired::left_out(&plans[1]) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    for line in lines {
        let text = format!("compare: {line}");
        super::log_format::say(
            loadgen_logline::Level::Info,
            "left_out",
            &text,
            serde_json::json!({}),
        );
    }
}

/// Writes compare.json, summary.md and report.html, and the job summary when there is one.
fn write(result: &CompareResult, out: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(result)?;
    loadgen_model::atomic_file::write(&out.join(COMPARE_JSON), &json)
        .with_context(|| format!("cannot write {}", out.join(COMPARE_JSON).display()))?;
    let summary = loadgen_report::paired::markdown(result);
    std::fs::write(out.join("summary.md"), &summary)?;
    std::fs::write(
        out.join("report.html"),
        loadgen_report::html::render_paired(result),
    )?;
    if let Some(path) = std::env::var_os(check::STEP_SUMMARY) {
        check::append(Path::new(&path), &format!("{summary}\n"))
            .with_context(|| format!("cannot append to ${}", check::STEP_SUMMARY))?;
    }
    println!("{summary}");
    super::log_format::path_line("comparison", "comparison: ", &out.join(COMPARE_JSON));
    super::log_format::path_line("report", "report:     ", &out.join("report.html"));
    Ok(())
}

/// The exit status, with the verdict's line on stderr.
fn status(result: &CompareResult) -> ExitStatus {
    let line = loadgen_report::paired::verdict_line(result);
    let level = match result.verdict {
        Verdict::Unchanged | Verdict::Improved => loadgen_logline::Level::Info,
        Verdict::Regressed | Verdict::NotComparable => loadgen_logline::Level::Error,
    };
    let fields = serde_json::json!({ "verdict": result.verdict });
    super::log_format::say(level, "verdict", &line, fields);
    match result.verdict {
        Verdict::Unchanged | Verdict::Improved => ExitStatus::Done,
        Verdict::Regressed => ExitStatus::ChecksFailed,
        Verdict::NotComparable => ExitStatus::NotComparable,
    }
}

/// A side's progress on the terminal, each line marked with the side.
fn side_events(side: &'static str) -> Events {
    if super::log_format::json() {
        let side = serde_json::Map::from_iter([("side".to_string(), side.into())]);
        return super::event_log::json_lines_with(side);
    }
    Events::new(move |e| {
        if let Some(text) = super::events::render(e) {
            if !text.starts_with('\r') {
                eprint!("{side:>4} {text}");
            }
        }
    })
}

fn side_info(scenario: &Path, dir: &str, plan: &Plan) -> SideInfo {
    let service = match &plan.target {
        Target::Url { base } => base.clone(),
        Target::Kubernetes(k) => format!("{}/{}", k.namespace, k.deployment),
        _ => identity(plan).unwrap_or_default(),
    };
    SideInfo {
        scenario: scenario.display().to_string(),
        run_dir: dir.into(),
        service,
    }
}

/// What starts a side's replicas: the resolved program and its arguments, or a command's
/// argv, environment and folder (a relative program is relative to the folder); `None` for a
/// service loadgen does not start.
fn identity(p: &Plan) -> Option<String> {
    match &p.target {
        Target::Local(l) => {
            let binary = l
                .binary
                .clone()
                .or_else(|| loadgen::external::polymetrie_binary().ok())?;
            let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
            Some(format!("{} {:?}", binary.display(), l.extra_args))
        }
        Target::Command(c) => Some(format!(
            "{:?} {:?} in {}",
            c.command.argv,
            c.command.env,
            c.command.cwd.display()
        )),
        _ => None,
    }
}

/// Two sides that would start the very same program compare a build with itself: a scenario
/// without `[service] binary` (one written before comparisons) starts the polymetrie next to
/// loadgen on both. An A/A comparison copies the build, as two checkouts have two.
fn same_service(plans: &[Plan; 2]) -> Option<String> {
    let (a, b) = (identity(&plans[0])?, identity(&plans[1])?);
    (a == b).then(|| {
        format!(
            "both sides start the same service ({a}): give each scenario its own build \
             (`[service] binary` or `command`, relative to the scenario's folder)"
        )
    })
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
