//! One step of a campaign: deploy its topology, warm up (discarded), read the probes, attack
//! (with the campaign's own engine, or as N shard processes merged), read them again (settled),
//! and assemble the [`StepResult`]. Teardown runs whatever the
//! measurement did.

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::assemble::{self, Readings};
use super::generators::{self, GeneratorError};
use super::timing::{Phase, PhaseClock};
use super::{Event, ReplicaUsage, RunOptions, DEPLOY_BOUND, SCRAPE_BOUND};
use crate::deployer::watch::{Component, ExitWatch};
use crate::deployer::{DeployError, Deployer, Deployment, KubeError};
use crate::plan::counter::Counter;
use crate::plan::{Plan, Step, Target};
use crate::probe;
use crate::probe::prometheus::PrometheusProbe;
use loadgen_engine::load::Load;
use loadgen_engine::progress::{self, LiveStats};
use loadgen_engine::record::StepRecord;
use loadgen_engine::{self as attack, AttackError, AttackSpec};
use loadgen_model::result::{
    AutoscaleView, CheckName, Finding, PrometheusView, Severity, StepResult, TopologyView,
};
use loadgen_model::step_id::StepId;

/// How often the live line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The replicas' CPU is read every this many progress ticks (once a second).
const CPU_EVERY_TICKS: u64 = 4;
/// Where a sharded step's shard results and logs are kept, under the run's directory.
const SHARDS_DIR: &str = "shards";

/// What one step needs from the campaign around it.
pub(super) struct StepContext<'a> {
    pub plan: &'a Plan,
    pub prometheus: Option<&'a PrometheusProbe>,
    pub opts: &'a RunOptions,
    pub stop: &'a CancellationToken,
    pub node_cpus: Option<u32>,
}

/// Why a step could not run at all (what went wrong while it ran is a finding instead).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("deploy: {0}")]
    Deploy(#[source] DeployError),
    #[error("warm-up: {0}")]
    WarmUp(#[source] AttackError),
    #[error("attack: {0}")]
    Attack(#[source] AttackError),
    #[error("autoscale: {0}")]
    Autoscale(#[source] KubeError),
    #[error("autoscale sampling: {0}")]
    Sampling(#[source] tokio::task::JoinError),
    #[error("{0}")]
    Generators(#[from] GeneratorError),
    #[error("a sharded cluster step without the deployer's client")]
    NoClusterClient,
}

/// Deploys, measures and tears down one step. `Err` means the step could not run at all.
pub(super) async fn run(
    cx: &StepContext<'_>,
    step: &Step,
    deployer: &mut Deployer,
) -> Result<StepResult, StepError> {
    let mut clock = PhaseClock::start();
    let deployment = deployer
        .deploy(&step.topology, DEPLOY_BOUND)
        .await
        .map_err(StepError::Deploy)?;
    clock.lap(Phase::Deploy);
    let measured = measure(cx, step, &deployment, &mut clock).await;
    let teardown = deployment.teardown().await;
    clock.lap(Phase::Teardown);
    let (generated, mut readings) = measured?;
    readings.timing = Some(clock.finish(step.warmup, step.load.duration()));
    if let Err(e) = teardown {
        readings.notes.push(Finding {
            check: CheckName::Teardown,
            severity: Severity::Warn,
            message: format!("teardown: {e}"),
            step: Some(step.id()),
        });
    }
    Ok(assemble::with_readings(generated, readings, cx.node_cpus))
}

/// The attack spec of `step` against `deployment`, at the step's load.
fn spec(cx: &StepContext<'_>, step: &Step, deployment: &Deployment) -> AttackSpec {
    AttackSpec {
        url: deployment.base_url.clone(),
        endpoints: deployment.endpoints.clone(),
        balance: cx.plan.balance(),
        // A `tls = true` step trusts the run's own CA (and only it); else the target's keys.
        tls: deployment
            .tls
            .clone()
            .unwrap_or_else(|| cx.plan.tls.clone()),
        http2: cx.plan.http2,
        reach: cx.plan.reach,
        load: step.load.clone(),
        request: step.request.clone(),
        limits: step.limits,
        shard: None,
        start_at: None,
    }
}

async fn measure(
    cx: &StepContext<'_>,
    step: &Step,
    deployment: &Deployment,
    clock: &mut PhaseClock,
) -> Result<(StepResult, Readings), StepError> {
    let id = step.id();
    // A PromQL counter through the managed Prometheus learns its URL once that one runs.
    let counter = &*cx.plan.counter.resolved(
        cx.prometheus
            .and_then(|p| p.managed_server())
            .map(|s| s.url()),
    );
    // From here on, a replica or Redis that exits is noticed as it happens.
    let watch = deployment.watch_exits();
    let spec = spec(cx, step, deployment);
    // Prometheus 2.42 takes up to 5 s (its scrape manager's tick) to scrape new replicas for
    // the first time: the warm-up runs meanwhile instead of after it. What is left of the wait
    // once the warm-up is over counts as deploying.
    let (mut notes, warmed) = tokio::join!(point_prometheus(cx, &id, deployment), async {
        let warmed = warm_up(cx, step, &spec).await;
        (warmed, Instant::now())
    });
    let (warmed, warm_end) = warmed;
    warmed?;
    clock.lap_until(Phase::WarmUp, warm_end);
    clock.lap(Phase::Deploy);
    notes.extend(drift_findings(&id, &deployment.ran_differs, Severity::Warn));
    // Clicks the warm-up left queued in the service must land before the "before" reading,
    // or the step would be credited with them.
    let mut before = probe::snapshot(deployment, counter).await;
    probe::settle(deployment, counter, &mut before, step.limits.timeout).await;
    clock.lap(Phase::Before);
    let started = SystemTime::now();
    let attack_t0 = Instant::now();
    // In a pod the generator has a CFS quota of its own: a throttled generator is not the
    // target's limit, and the verdict must know.
    let own_before = probe::cpu::read_own_cgroup();
    let sampling = CancellationToken::new();
    let scaling = deployment.scale.clone().map(|w| w.start(sampling.clone()));
    let generated = generate_from_start(cx, step, (deployment, counter), &spec, &mut before).await;
    sampling.cancel();
    let scaling = match scaling {
        Some(task) => task
            .await
            .map_err(StepError::Sampling)
            .and_then(|r| r.map_err(StepError::Autoscale)),
        None => Ok(Vec::new()),
    };
    let ((generated, shards_started), scaling) = (generated?, scaling?);
    clock.lap(Phase::Attack);
    // Shards start together a little after they are launched: the window starts with them.
    let started = shards_started.unwrap_or(started);
    let own = own_before
        .zip(probe::cpu::read_own_cgroup())
        .map(|(b, a)| probe::cpu::view(&b, &a, attack_t0.elapsed()));
    let ended = SystemTime::now();
    let mut after = probe::snapshot(deployment, counter).await;
    // Clicks still queued when the load stopped are the service's work for this step: wait
    // (bounded) until the counter stops moving. CPU stays read at the end of the attack.
    probe::settle(deployment, counter, &mut after, step.limits.timeout).await;
    let (read, cpu) = probe::diff(&before, &after);
    // No counter configured: none is recorded, and the verdicts say they rest on the client.
    let read = read.filter(|_| counter.is_some());
    let prometheus = prometheus_view(cx, &id, (started, ended), &mut notes).await;
    if let Some(w) = &deployment.drift {
        notes.extend(drift_findings(&id, &w.changes().await, Severity::Fail));
    }
    let exits = exit_findings(&watch, &id, attack_t0, deployment);
    let target_failed = !exits.is_empty();
    notes.extend(exits);
    clock.lap(Phase::After);
    let readings = Readings {
        topology: Some(topology(cx.plan, step)),
        counter: read,
        cpu,
        prometheus,
        window: Some((started, ended)),
        notes,
        target_failed,
        generator_cgroup: own,
        scaling,
        timing: None,
    };
    Ok((generated, readings))
}

/// [`generate`], with `before`'s CPU read again at the instant a sharded step's shards start:
/// the CPU window starts when the load does, not when the shards were launched.
async fn generate_from_start(
    cx: &StepContext<'_>,
    step: &Step,
    (deployment, counter): (&Deployment, &Counter),
    spec: &AttackSpec,
    before: &mut probe::Snapshot,
) -> Result<(StepResult, Option<SystemTime>), StepError> {
    let (on_start, started_at) = tokio::sync::oneshot::channel();
    let at_start = async {
        let at: SystemTime = started_at.await.ok()?;
        if let Ok(ahead) = at.duration_since(SystemTime::now()) {
            tokio::time::sleep(ahead).await;
        }
        Some(probe::snapshot(deployment, counter).await)
    };
    let (generated, at_start) = tokio::join!(
        generate(cx, step, deployment, spec, Some(on_start)),
        at_start
    );
    if let Some(at) = at_start {
        probe::rebase_cpu(before, at);
    }
    generated
}

/// Warm-up: connections, caches and the lazily-initialised service settle at the step's rate;
/// its numbers are discarded.
async fn warm_up(cx: &StepContext<'_>, step: &Step, spec: &AttackSpec) -> Result<(), StepError> {
    if step.warmup.is_zero() {
        return Ok(());
    }
    let warm = AttackSpec {
        load: Load::constant(step.rate_rps(), step.warmup),
        ..spec.clone()
    };
    attack::run(&warm, cx.stop, None)
        .await
        .map(drop)
        .map_err(StepError::WarmUp)
}

/// The Prometheus view of the step's window, when the run has a Prometheus; what went wrong
/// is added to `notes`.
async fn prometheus_view(
    cx: &StepContext<'_>,
    id: &StepId,
    (started, ended): (SystemTime, SystemTime),
    notes: &mut Vec<Finding>,
) -> Option<PrometheusView> {
    let p = cx.prometheus?;
    let site = cx.plan.counter.site().unwrap_or_default();
    let (view, findings) = p
        .observe(&id.to_string(), started, ended, site, &cx.plan.promql)
        .await;
    notes.extend(findings);
    view
}

/// The generators' view of the attack: the campaign's own engine, or the step's shards (local
/// processes, or a cluster's Indexed Job) merged; with the instant shards started, when they did.
async fn generate(
    cx: &StepContext<'_>,
    step: &Step,
    deployment: &Deployment,
    spec: &AttackSpec,
    on_start: generators::OnStart,
) -> Result<(StepResult, Option<SystemTime>), StepError> {
    let id = step.id();
    if step.generators.count <= 1 {
        let record =
            attack_with_progress(cx, spec, &step.id(), step.load.duration(), deployment).await?;
        return Ok((assemble::generator_view(&record, &id), None));
    }
    let sharded = match &cx.plan.target {
        Target::Kubernetes(k) => {
            let client = deployment
                .cluster
                .clone()
                .ok_or(StepError::NoClusterClient)?
                .0;
            generators::cluster::run(spec, step.generators, k, &id, client, cx.stop, on_start)
                .await?
        }
        Target::Local(_) | Target::Command(_) | Target::Url { .. } => {
            let dir = cx.opts.out_dir.join(SHARDS_DIR);
            let dir = dir.join(&step.campaign).join(&step.name);
            generators::local::run(spec, step.generators, &dir, cx.stop, on_start).await?
        }
    };
    let merged = StepResult {
        campaign: id.campaign().map(str::to_string),
        name: id.name().to_string(),
        ..sharded.step
    };
    Ok((merged, Some(sharded.start_at)))
}

/// Points the managed Prometheus at this step's replicas and waits (bounded) for one scrape;
/// what went wrong is a finding, not an error.
async fn point_prometheus(
    cx: &StepContext<'_>,
    id: &StepId,
    deployment: &Deployment,
) -> Vec<Finding> {
    let Some(p) = cx.prometheus else {
        return Vec::new();
    };
    let urls = deployment.scrape_urls();
    let ready = match p.set_targets(&id.to_string(), &urls).await {
        Ok(()) => p
            .wait_scraped(SCRAPE_BOUND)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match ready {
        Ok(()) => Vec::new(),
        Err(e) => vec![Finding {
            check: CheckName::Prometheus,
            severity: Severity::Warn,
            message: format!("prometheus did not scrape this step's replicas: {e}"),
            step: Some(id.clone()),
        }],
    }
}

/// The attack, with its progress told as events (when the run asked for them): the counters,
/// and once a second the replicas' CPU.
async fn attack_with_progress(
    cx: &StepContext<'_>,
    spec: &AttackSpec,
    step: &StepId,
    total: Duration,
    deployment: &Deployment,
) -> Result<StepRecord, StepError> {
    let live = LiveStats::with_detail();
    let progress = cx.opts.progress.then(|| {
        let (events, step) = (cx.opts.events.clone(), step.clone());
        let groups: Vec<_> = deployment
            .replicas
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i as u32, r.cgroup.as_ref()?.stat_files())))
            .collect();
        let reader = live.clone();
        let mut ticks = 0u64;
        let emit = move |snapshot| {
            events.emit(Event::Progress {
                step: step.clone(),
                live: snapshot,
                detail: reader.detail(),
                total,
            });
            ticks += 1;
            if ticks % CPU_EVERY_TICKS == 0 && !groups.is_empty() {
                let replicas = groups.iter().map(|(i, g)| usage(*i, g)).collect();
                let step = step.clone();
                events.emit(Event::ReplicaCpu { step, replicas });
            }
        };
        tokio::spawn(progress::tick(live.clone(), PROGRESS_EVERY, emit))
    });
    let record = attack::run(spec, cx.stop, Some(&live)).await;
    if let Some(p) = progress {
        p.abort();
        cx.opts.events.emit(Event::AttackEnded {
            step: step.clone(),
            last: live.snapshot(),
            detail: live.detail(),
        });
    }
    record.map_err(StepError::Attack)
}

/// A replica group's counters now, in the event's units.
fn usage(replica: u32, files: &cpu_cgroup::SelfCgroup) -> ReplicaUsage {
    let c = files.read();
    let secs = |us: Option<u64>| us.map(|n| n as f64 / 1e6);
    ReplicaUsage {
        replica,
        cpu_s: secs(c.usage_usec),
        periods: c.nr_periods,
        throttled_periods: c.nr_throttled,
        throttled_s: secs(c.throttled_usec),
    }
}

/// A `drift` finding per line: what the pods ran (warn), or what changed under the step (fail:
/// the step is then invalid).
fn drift_findings(id: &StepId, lines: &[String], severity: Severity) -> Vec<Finding> {
    lines
        .iter()
        .map(|message| Finding {
            check: CheckName::Drift,
            severity,
            message: message.clone(),
            step: Some(id.clone()),
        })
        .collect()
}

/// One `fail` finding per process of the target that exited while the step was measured:
/// which one, how (exit code or signal) and when (seconds into the attack; during the warm-up
/// when before it).
fn exit_findings(
    watch: &ExitWatch,
    id: &StepId,
    attack_t0: Instant,
    deployment: &Deployment,
) -> Vec<Finding> {
    watch
        .exits()
        .into_iter()
        .map(|e| {
            let when = match e.at.checked_duration_since(attack_t0) {
                Some(d) => format!("{:.1} s into the step", d.as_secs_f64()),
                None => "during the warm-up".to_string(),
            };
            let (check, what) = match e.component {
                Component::Replica(i) => (CheckName::ReplicaExited, format!("replica {i}")),
                Component::Dependency(i) => (
                    CheckName::StoreExited,
                    deployment
                        .dependency_pids
                        .get(i as usize)
                        .map_or("a dependency".into(), |(n, _)| format!("dependency {n}")),
                ),
            };
            Finding {
                check,
                severity: Severity::Fail,
                message: format!(
                    "{what} (pid {}) {} {when}: the target crashed, so this step measures a \
                     failure, not the configuration's capacity",
                    e.pid, e.status
                ),
                step: Some(id.clone()),
            }
        })
        .collect()
}

fn topology(plan: &Plan, step: &Step) -> TopologyView {
    topology_view(plan, &step.topology)
}

/// A topology as run.json shows it: the store is `external` for a service loadgen did not
/// start.
pub(super) fn topology_view(plan: &Plan, topology: &crate::plan::Topology) -> TopologyView {
    TopologyView {
        replicas: topology.replicas,
        cpu_limit_cores: topology.cpu_limit_cores,
        store: match plan.target {
            // A cluster's pods use the Redis of its manifests, which check.sh holds to the
            // scenario's store.
            Target::Local(_) | Target::Kubernetes(_) => topology.store.as_str().to_string(),
            // A user's service keeps its state where its own command says.
            Target::Command(_) => "own".into(),
            Target::Url { .. } => "external".into(),
        },
        autoscale: topology.autoscale.map(|a| AutoscaleView {
            min_replicas: a.min_replicas,
            max_replicas: a.max_replicas,
            cpu_utilization_pct: a.cpu_utilization_pct,
        }),
        tls: topology.tls,
    }
}
