//! The campaign runner: for each step of a [`Plan`], run it ([`step`]: deploy, warm up,
//! probe, attack, probe, tear down), assemble its [`StepResult`] ([`assemble`]; a step on N
//! generators from its shards' results, [`merge`]) and save
//! `run.json` (atomically, after every step, before anything interprets it). Capacity searches
//! ([`search`]) follow the listed steps, each probe run and saved the same way. It measures and
//! saves; the verdicts are the checks' ([`loadgen_judge::check`]).

pub mod assemble;
pub mod event;
pub mod generators;
pub mod merge;
pub mod paired;
pub mod preflight;
mod search;
mod step;
mod timing;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::deployer::Deployer;
use crate::plan::{OnTargetFailure, Plan, PrometheusMode};
use crate::probe::prometheus::PrometheusProbe;
use loadgen_judge::check;
use loadgen_model::result::{
    CampaignResult, CheckName, Finding, RunStatus, ScenarioSource, Severity, ToolInfo,
    SCHEMA_VERSION,
};
use step::StepContext;

pub use event::{Event, Events, LoadShape, PlannedStep, ReplicaUsage};

/// How long a topology may take to become ready (processes started, `/readyz` answered).
pub const DEPLOY_BOUND: Duration = Duration::from_secs(30);
/// How long Prometheus may take to scrape a new step's replicas once.
pub const SCRAPE_BOUND: Duration = Duration::from_secs(20);

/// Errors that stop a whole campaign (a failed step is recorded, not an error).
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode run.json: {0}")]
    Encode(#[from] serde_json::Error),
    /// The target cannot be driven at all (a cluster refused, or an HPA scales the Deployment):
    /// nothing was changed or written.
    #[error("{0}")]
    Prepare(crate::deployer::DeployError),
    /// The service does not start, or its counter cannot be read (bad input: exit 2).
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
}

/// Options of one run that are not part of the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Overrides the scenario's `[prometheus]` section.
    pub prometheus: Option<PrometheusMode>,
    /// Emit [`Event::Progress`] readings while each attack runs.
    pub progress: bool,
    pub time_scale: f64,
    /// Where the run's events go (the library prints nothing).
    pub events: Events,
    /// loadgen's own metrics endpoint (`host:port`), for a managed Prometheus to scrape too.
    pub generator_metrics: Option<String>,
}

/// Writes `run.json` atomically, so a reader never sees half a file.
pub fn save(result: &CampaignResult, out_dir: &Path) -> Result<PathBuf, CampaignError> {
    let path = out_dir.join(loadgen_model::RUN_JSON);
    let json = serde_json::to_vec_pretty(result)?;
    loadgen_model::atomic_file::write(&path, &json).map_err(|source| CampaignError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn campaign_finding(severity: Severity, check: CheckName, message: String) -> Finding {
    Finding {
        check,
        severity,
        message,
        step: None,
    }
}

fn component_versions() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let probe = |bin: Option<PathBuf>, arg: &str| -> Option<String> {
        let o = std::process::Command::new(bin?).arg(arg).output().ok()?;
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        text.lines().next().map(|l| l.trim().to_string())
    };
    if let Some(v) = probe(crate::external::polymetrie_binary().ok(), "--version") {
        out.insert("polymetrie".into(), v);
    }
    if let Some(v) = probe(crate::external::find_on_path("redis-server"), "--version") {
        out.insert("redis-server".into(), v);
    }
    if let Some(v) = probe(crate::external::find_on_path("prometheus"), "--version") {
        out.insert("prometheus".into(), v);
    }
    out
}

/// A fresh, empty result for `plan`, status `running`.
pub fn new_result(source: &ScenarioSource, plan: &Plan, time_scale: f64) -> CampaignResult {
    let mut tool = ToolInfo::current();
    tool.components = component_versions();
    CampaignResult {
        schema_version: SCHEMA_VERSION,
        tool,
        scenario: source.clone(),
        started_at: now_rfc3339(),
        ended_at: None,
        machine: crate::machine::detect(),
        status: RunStatus::Running,
        error: None,
        time_scale,
        campaigns: plan.campaigns.clone(),
        steps: vec![],
        findings: plan.warnings.clone(),
        thresholds: Some(plan.thresholds.clone()),
        searches: Vec::new(),
        capacities: Vec::new(),
    }
}

/// Runs every step of `plan`; returns the result whatever happened to the steps. `stop`
/// (Ctrl-C, SIGTERM) ends the current step early, tears down, and marks the run interrupted.
pub async fn run(
    plan: &Plan,
    opts: &RunOptions,
    stop: &CancellationToken,
) -> Result<CampaignResult, CampaignError> {
    let deployer = Deployer::for_target(&plan.target, &plan.tls, &opts.out_dir);
    run_with(plan, opts, stop, deployer).await
}

/// [`run`] with a given deployer (a cluster deployer on a mock client, in tests).
pub async fn run_with(
    plan: &Plan,
    opts: &RunOptions,
    stop: &CancellationToken,
    mut deployer: Deployer,
) -> Result<CampaignResult, CampaignError> {
    let leftovers = prepare(plan, &mut deployer, stop).await?;
    let mut result = new_result(&plan.source, plan, opts.time_scale);
    for note in leftovers {
        let f = campaign_finding(Severity::Warn, CheckName::Restore, note);
        record_finding(&opts.events, &mut result, f);
    }
    if let Some(warning) = deployer.take_gitops_warning() {
        let f = campaign_finding(Severity::Warn, CheckName::Drift, warning);
        record_finding(&opts.events, &mut result, f);
    }
    let steps = run_steps(plan, opts, stop, &mut deployer, &mut result).await;
    // Whatever ended the steps (the last one, an error, Ctrl-C, SIGTERM): a cluster's
    // Deployment gets its original shape back before anything else can fail.
    restore(&mut deployer, &mut result, &opts.events).await;
    steps?;
    let result = finish(result, plan, stop.is_cancelled());
    save(&result, &opts.out_dir)?;
    opts.events.emit(Event::RunEnded {
        status: result.status,
    });
    Ok(result)
}

/// The deployer prepared and the pre-flight passed, or nothing left running; what a killed
/// run had left and the deployer swept, as notes.
async fn prepare(
    plan: &Plan,
    deployer: &mut Deployer,
    stop: &CancellationToken,
) -> Result<Vec<String>, CampaignError> {
    let leftovers = deployer
        .prepare(stop)
        .await
        .map_err(CampaignError::Prepare)?;
    if let Err(e) = preflight::check(plan, deployer, DEPLOY_BOUND).await {
        if let Err(cleanup) = deployer.finish().await {
            tracing::warn!("after the pre-flight: {cleanup}");
        }
        return Err(e.into());
    }
    Ok(leftovers)
}

/// A finding about the whole run: told, then recorded.
fn record_finding(events: &Events, result: &mut CampaignResult, finding: Finding) {
    events.emit(Event::Finding {
        finding: finding.clone(),
    });
    result.findings.push(finding);
}

/// The original shape applied back (a cluster target), recorded as a finding either way.
async fn restore(deployer: &mut Deployer, result: &mut CampaignResult, events: &Events) {
    let (severity, message) = match deployer.finish().await {
        Ok(None) => return,
        Ok(Some(shape)) => (Severity::Info, format!("restored the original: {shape}")),
        Err(e) => (
            Severity::Fail,
            format!("could not restore the original (run `loadgen restore`): {e}"),
        ),
    };
    let f = campaign_finding(severity, CheckName::Restore, message);
    record_finding(events, result, f);
}

/// Every step in order, run.json saved after each.
async fn run_steps(
    plan: &Plan,
    opts: &RunOptions,
    stop: &CancellationToken,
    deployer: &mut Deployer,
    result: &mut CampaignResult,
) -> Result<(), CampaignError> {
    save(result, &opts.out_dir)?;
    opts.events.emit(Event::RunStarted {
        scenario: plan.source.name.clone(),
        out_dir: Some(opts.out_dir.clone()),
        steps: plan.steps.iter().map(planned).collect(),
        searches: plan.searches.len(),
    });
    let prometheus = start_prometheus(plan, opts, result).await;
    let cx = StepContext {
        plan,
        prometheus: prometheus.as_ref(),
        opts,
        stop,
        node_cpus: result.machine.cpus,
    };
    let total = plan.steps.len();
    let mut stopped = false;
    for (i, step) in plan.steps.iter().enumerate() {
        if stop.is_cancelled() {
            break;
        }
        opts.events.emit(Event::StepStarted {
            index: i,
            total,
            step: step.id(),
            rate_rps: step.rate_rps(),
            duration: step.load.duration(),
            replicas: step.topology.replicas,
            cpu_limit_cores: step.topology.cpu_limit_cores,
        });
        let ran = run_one(&cx, step, deployer, result).await;
        save(result, &opts.out_dir)?;
        let failed = ran && result.steps.last().is_some_and(|s| s.target_failed);
        if failed && plan.on_target_failure == OnTargetFailure::Stop {
            let message = format!(
                "stopped after {}: the target failed (on_target_failure = \"stop\")",
                step.id()
            );
            opts.events.emit(Event::Finding {
                finding: Finding {
                    check: CheckName::StepFailed,
                    severity: Severity::Fail,
                    message: message.clone(),
                    step: Some(step.id()),
                },
            });
            result.error = Some(message);
            stopped = true;
            break;
        }
        let more = i + 1 < total || !plan.searches.is_empty();
        if more && !step.pause_after.is_zero() {
            pause(step.pause_after, stop).await;
        }
    }
    for s in plan.searches.iter().filter(|_| !stopped) {
        search::run(&cx, s, deployer, result).await?;
    }
    if let Some(p) = prometheus {
        p.shutdown().await;
    }
    Ok(())
}

fn planned(step: &crate::plan::Step) -> PlannedStep {
    PlannedStep {
        step: step.id(),
        rate_rps: step.rate_rps(),
        duration: step.load.duration(),
        replicas: step.topology.replicas,
        cpu_limit_cores: step.topology.cpu_limit_cores,
    }
}

/// Runs one step and records it: its result, or why it could not run, and whatever a killed
/// loadgen had left that the deployer swept first. True when a result was recorded.
async fn run_one(
    cx: &StepContext<'_>,
    step: &crate::plan::Step,
    deployer: &mut Deployer,
    result: &mut CampaignResult,
) -> bool {
    // Whatever the step's code logs carries the step (a `step` key in JSON logs).
    let span = tracing::info_span!("step", step = %step.id());
    let ran = match step::run(cx, step, deployer).instrument(span).await {
        Ok(s) => {
            cx.opts.events.emit(Event::StepFinished {
                result: Box::new(s.clone()),
            });
            result.steps.push(s);
            true
        }
        Err(cause) => {
            let cause = cause.to_string();
            cx.opts.events.emit(Event::StepFailed {
                step: step.id(),
                cause: cause.clone(),
            });
            result.findings.push(Finding {
                check: CheckName::StepFailed,
                severity: Severity::Fail,
                message: format!("step could not run: {cause}"),
                step: Some(step.id()),
            });
            false
        }
    };
    for swept in deployer.take_swept() {
        let f = campaign_finding(
            Severity::Warn,
            CheckName::OrphansSwept,
            format!("left by an earlier run that was killed, and swept before this step: {swept}"),
        );
        record_finding(&cx.opts.events, result, f);
    }
    ran
}

/// Quiet time between steps, cut short by a stop.
async fn pause(d: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}

/// The run's end: its status, then the verdicts of the whole run (every step, the thresholds
/// saved with it, the capacities) by `check::judge_run` — the one code path `loadgen report`
/// runs again on the saved run.json.
fn finish(result: CampaignResult, plan: &Plan, interrupted: bool) -> CampaignResult {
    let (status, error) = if interrupted {
        (
            RunStatus::Interrupted,
            Some(
                "interrupted (SIGINT or SIGTERM): steps after the current one did not run"
                    .to_string(),
            ),
        )
    } else if result.steps.is_empty() && (!plan.steps.is_empty() || !plan.searches.is_empty()) {
        (
            RunStatus::Failed,
            Some("no step could run; see findings".to_string()),
        )
    } else {
        (RunStatus::Completed, result.error.clone())
    };
    check::judge_run(CampaignResult {
        ended_at: Some(now_rfc3339()),
        status,
        error,
        ..result
    })
}

/// The cross-check's Prometheus, started (managed) or reached (URL); when it cannot be had the
/// run goes on without it and says so.
async fn start_prometheus(
    plan: &Plan,
    opts: &RunOptions,
    result: &mut CampaignResult,
) -> Option<PrometheusProbe> {
    let mode = opts
        .prometheus
        .clone()
        .or_else(|| plan.prometheus.clone())?;
    let started = match &mode {
        PrometheusMode::Managed => {
            PrometheusProbe::managed_scraping(opts.generator_metrics.as_deref())
                .await
                .map_err(|e| e.to_string())
        }
        PrometheusMode::Url(u) => PrometheusProbe::external(u).map_err(|e| e.to_string()),
    };
    match started {
        Ok(p) => {
            if let Some(server) = p.managed_server() {
                let also = match &opts.generator_metrics {
                    Some(g) => format!(" and loadgen's own metrics at {g} (job generator)"),
                    None => String::new(),
                };
                let message = format!(
                    "managed prometheus at {} scrapes the replicas (job loadgen){also}",
                    server.url()
                );
                let f = campaign_finding(Severity::Info, CheckName::Prometheus, message);
                record_finding(&opts.events, result, f);
            }
            Some(p)
        }
        Err(e) => {
            result.findings.push(campaign_finding(
                Severity::Warn,
                CheckName::Prometheus,
                format!("prometheus cross-check disabled: {e}"),
            ));
            None
        }
    }
}
