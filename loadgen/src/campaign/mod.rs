//! The campaign runner: for each step of a [`Plan`], deploy its topology, warm up, snapshot the
//! probes, attack, snapshot again, and turn the differences into a [`StepResult`]; tear down on
//! every path; save `run.json` (atomically, after every step, before anything interprets it).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::check;
use crate::deployer::{Deployer, Deployment};
use crate::engine::load::Load;
use crate::engine::progress::{progress_line, LiveStats};
use crate::engine::{self as attack, AttackSpec};
use crate::plan::{Plan, PrometheusMode, Step, Target};
use crate::probe;
use crate::probe::prometheus::PrometheusProbe;
use crate::result::{
    CampaignResult, Finding, RunStatus, ScenarioSource, Severity, StepResult, ToolInfo,
    TopologyView, SCHEMA_VERSION,
};

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
}

/// Options of one run that are not part of the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Overrides the scenario's `[prometheus]` section.
    pub prometheus: Option<PrometheusMode>,
    /// Show a live line per step on stderr.
    pub progress: bool,
    pub time_scale: f64,
}

/// Writes `run.json` atomically (temp file + rename), so a reader never sees half a file.
pub fn save(result: &CampaignResult, out_dir: &Path) -> Result<PathBuf, CampaignError> {
    let path = out_dir.join("run.json");
    let tmp = out_dir.join(".run.json.tmp");
    let json = serde_json::to_vec_pretty(result)?;
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(out_dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| CampaignError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn campaign_finding(severity: Severity, check: &str, message: String) -> Finding {
    Finding {
        check: check.into(),
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
        findings: vec![],
    }
}

/// Runs every step of `plan`; returns the result whatever happened to the steps. `stop`
/// (Ctrl-C) ends the current step early, tears down, and marks the run interrupted.
pub async fn run(
    plan: &Plan,
    opts: &RunOptions,
    stop: &CancellationToken,
) -> Result<CampaignResult, CampaignError> {
    let mut result = new_result(&plan.source, plan, opts.time_scale);
    save(&result, &opts.out_dir)?;

    let prometheus = match opts.prometheus.clone().or_else(|| plan.prometheus.clone()) {
        None => None,
        Some(mode) => match start_prometheus(&mode).await {
            Ok(p) => Some(p),
            Err(e) => {
                result.findings.push(campaign_finding(
                    Severity::Warn,
                    "prometheus",
                    format!("prometheus cross-check disabled: {e}"),
                ));
                None
            }
        },
    };

    let mut deployer = Deployer::for_target(&plan.target);
    let node_cpus = result.machine.cpus;
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if stop.is_cancelled() {
            break;
        }
        eprintln!(
            "[{}/{total}] {}/{}: {} rps for {:.1} s, {} replica(s), cpu limit {}",
            i + 1,
            step.campaign,
            step.name,
            step.rate_rps(),
            step.load.duration().as_secs_f64(),
            step.topology.replicas,
            step.topology
                .cpu_limit_cores
                .map(|c| format!("{c} core"))
                .unwrap_or_else(|| "none".into()),
        );
        match run_step(plan, step, &mut deployer, prometheus.as_ref(), opts, stop).await {
            Ok(mut s) => {
                s.checks.extend(check::step_findings(&s, node_cpus));
                eprintln!("    {}", one_line(&s));
                result.steps.push(s);
            }
            Err(cause) => {
                eprintln!("    step failed: {cause}");
                result.findings.push(Finding {
                    check: "step_failed".into(),
                    severity: Severity::Fail,
                    message: format!("step could not run: {cause}"),
                    step: Some(format!("{}/{}", step.campaign, step.name)),
                });
            }
        }
        save(&result, &opts.out_dir)?;
        if i + 1 < total && !step.pause_after.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(step.pause_after) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
    if let Some(p) = prometheus {
        p.shutdown().await;
    }

    result
        .findings
        .extend(check::threshold_findings(&plan.thresholds, &result.steps));
    result.ended_at = Some(now_rfc3339());
    result.status = if stop.is_cancelled() {
        result.error = Some("interrupted (Ctrl-C): steps after the current one did not run".into());
        RunStatus::Interrupted
    } else if result.steps.is_empty() && !plan.steps.is_empty() {
        result.error = Some("no step could run; see findings".into());
        RunStatus::Failed
    } else {
        RunStatus::Completed
    };
    save(&result, &opts.out_dir)?;
    Ok(result)
}

async fn start_prometheus(mode: &PrometheusMode) -> Result<PrometheusProbe, String> {
    match mode {
        PrometheusMode::Managed => PrometheusProbe::managed().await.map_err(|e| e.to_string()),
        PrometheusMode::Url(u) => PrometheusProbe::external(u).map_err(|e| e.to_string()),
    }
}

/// A one-line summary of a finished step for the log.
fn one_line(s: &StepResult) -> String {
    let pct = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{:.1} %", r * 100.0));
    format!(
        "intended {} sent {} ok {} ({}) counted {} p99 {}{}",
        s.intended,
        s.sent,
        s.ok,
        pct(s.success_ratio),
        pct(s.counted_ratio),
        s.latency_ms
            .p99
            .map_or("—".to_string(), |p| format!("{p:.1} ms")),
        if s.valid { "" } else { "  [INVALID]" }
    )
}

/// Redraws the live line of a running step on stderr (a TTY) until aborted.
async fn show_progress(live: LiveStats, total: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        eprint!("\r\x1b[2K    {}", progress_line(&live.snapshot(), total));
    }
}

/// Deploys, measures and tears down one step. Teardown runs whatever the measurement did.
async fn run_step(
    plan: &Plan,
    step: &Step,
    deployer: &mut Deployer,
    prometheus: Option<&PrometheusProbe>,
    opts: &RunOptions,
    stop: &CancellationToken,
) -> Result<StepResult, String> {
    let deployment = deployer
        .deploy(&step.topology, DEPLOY_BOUND)
        .await
        .map_err(|e| format!("deploy: {e}"))?;
    let measured = measure(plan, step, &deployment, prometheus, opts, stop).await;
    let teardown = deployment.teardown().await;
    let mut s = measured?;
    if let Err(e) = teardown {
        s.checks.push(Finding {
            check: "teardown".into(),
            severity: Severity::Warn,
            message: format!("teardown: {e}"),
            step: Some(check::step_id(&s)),
        });
    }
    Ok(s)
}

async fn measure(
    plan: &Plan,
    step: &Step,
    deployment: &Deployment,
    prometheus: Option<&PrometheusProbe>,
    opts: &RunOptions,
    stop: &CancellationToken,
) -> Result<StepResult, String> {
    let step_id = format!("{}/{}", step.campaign, step.name);
    let mut early: Vec<Finding> = vec![];
    if let Some(p) = prometheus {
        let admins: Vec<String> = deployment.admin_addrs();
        let ready = match p.set_targets(&step_id, &admins).await {
            Ok(()) => p
                .wait_scraped(SCRAPE_BOUND)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = ready {
            early.push(Finding {
                check: "prometheus".into(),
                severity: Severity::Warn,
                message: format!("prometheus did not scrape this step's replicas: {e}"),
                step: Some(step_id.clone()),
            });
        }
    }
    let mut spec = AttackSpec {
        url: deployment.base_url.clone(),
        load: Load::constant(step.rate_rps(), step.warmup),
        request: step.request.clone(),
        timeout: step.timeout,
        max_in_flight: step.max_in_flight,
        connections: step.connections,
    };
    if !step.warmup.is_zero() {
        // Warm-up: connections, caches and the JIT-less but lazily-initialised service settle;
        // its numbers are discarded.
        attack::run(&spec, stop, None)
            .await
            .map_err(|e| format!("warm-up: {e}"))?;
    }
    spec.load = step.load.clone();

    // Clicks the warm-up left queued in the service must land before the "before" reading,
    // or the step would be credited with them.
    let mut before = probe::snapshot(deployment, &plan.counter_site).await;
    probe::settle(deployment, &plan.counter_site, &mut before, step.timeout).await;
    let started = SystemTime::now();
    let live = LiveStats::new();
    let progress = opts
        .progress
        .then(|| tokio::spawn(show_progress(live.clone(), step.load.duration())));
    let record = attack::run(&spec, stop, Some(&live)).await;
    if let Some(p) = progress {
        p.abort();
        eprint!("\r\x1b[2K");
    }
    let record = record.map_err(|e| format!("attack: {e}"))?;
    let ended = SystemTime::now();
    let mut after = probe::snapshot(deployment, &plan.counter_site).await;
    // Clicks still queued when the load stopped are the service's work for this step: wait
    // (bounded) until the counter stops moving. CPU stays read at the end of the attack.
    probe::settle(deployment, &plan.counter_site, &mut after, step.timeout).await;

    let mut s = record.to_step_result(&step.name);
    s.campaign = Some(step.campaign.clone());
    s.started_at = Some(humantime::format_rfc3339_millis(started).to_string());
    s.ended_at = Some(humantime::format_rfc3339_millis(ended).to_string());
    s.topology = Some(TopologyView {
        replicas: step.topology.replicas,
        cpu_limit_cores: step.topology.cpu_limit_cores,
        store: match plan.target {
            Target::Local(_) => step.topology.store.as_str().to_string(),
            Target::Url { .. } => "external".into(),
        },
    });
    let (counter, cpu) = probe::diff(&before, &after);
    s.counted_ratio = counter
        .as_ref()
        .and_then(|c| c.delta)
        .filter(|_| s.intended > 0)
        .map(|d| d as f64 / s.intended as f64);
    s.counter = counter;
    s.cpu = cpu;
    s.checks.extend(early);
    if let Some(p) = prometheus {
        let (view, findings) = p
            .observe(&step_id, started, ended, &plan.counter_site, &plan.promql)
            .await;
        s.prometheus = view;
        s.checks.extend(findings);
        s.checks.extend(crate::check::prometheus::cross_check(&s));
    }
    Ok(s)
}
