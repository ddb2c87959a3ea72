//! The Indexed Job of a sharded step's generators on a cluster. The coordinator (the loadgen
//! Job, the only pod with API rights) creates one Job per step — `completionMode: Indexed`,
//! parallelism = completions = N, `backoffLimitPerIndex: 0` (a failed shard is neither retried
//! nor the end of its siblings), `restartPolicy: Never`, each pod's shard
//! from `JOB_COMPLETION_INDEX`, no service-account token — waits until every pod runs, then
//! gives them one start time far enough ahead (an annotation each pod reads back through a
//! downward-API file), waits for them to end, gathers each shard's result from its log (the
//! final marked line, [`loadgen_model::shard::RESULT_MARK`]) and deletes the Job, pods included, after
//! the step whatever happened. A pod that failed, was OOMKilled or never started is a missing
//! shard, with that reason.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::KubeError;
use loadgen_model::shard::{result_in_log, unix_ms};

/// The pod annotation that carries the shards' start time (unix ms), set by the coordinator.
pub const START_AT_ANNOTATION: &str = "loadgen.io/start-at";
/// Where a generator pod reads that annotation (a downward-API volume).
pub const START_AT_DIR: &str = "/etc/loadgen/start";
/// The file in [`START_AT_DIR`].
pub const START_AT_FILE: &str = "at";
/// The annotation the Job controller puts on each pod of an Indexed Job.
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// How long every generator pod may take to run: scheduled, image pulled, started.
pub const POD_START_BOUND: Duration = Duration::from_secs(120);
/// How far ahead the start time is set: time for the kubelet to write the annotation into
/// every pod's downward-API file.
pub const START_LEAD: Duration = Duration::from_secs(20);
/// How often the Job's pods are listed again while waiting.
const POLL: Duration = Duration::from_millis(500);
/// The generator container's name.
pub const CONTAINER: &str = "generator";
/// Whole cores per generator pod, requests = limits (never throttled): the engine is one thread.
const GENERATOR_CPU: &str = "1";
const GENERATOR_MEMORY: &str = "512Mi";

/// The label naming the Deployment a generator Job loads: a killed run's Jobs are found by it
/// (and deleted by the next run's prepare, or `loadgen restore`).
pub const DEPLOYMENT_LABEL: &str = "loadgen.io/deployment";
/// How long a finished Job (and its pods' logs) stays for a human to read, after the
/// coordinator gathered them (it deletes the Job at once; this bounds a killed run's).
pub const TTL_AFTER_FINISHED_S: i64 = 600;

/// One step's Indexed Job.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorJob {
    pub namespace: String,
    /// Unique per run and step ([`crate::campaign::generators::cluster::job_name`]).
    pub name: String,
    /// The Deployment under load (the Job's [`DEPLOYMENT_LABEL`]).
    pub deployment: String,
    /// The pods' schedule, timeout and exit margin: with the start bounds, the Job's
    /// `activeDeadlineSeconds`.
    pub run_bound: Duration,
    /// The loadgen image (the coordinator's own).
    pub image: String,
    pub count: u32,
    /// `loadgen attack …` for the step, without `--shard` and the start: the body adds them.
    pub args: Vec<String>,
}

/// What became of one shard's pod.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardPod {
    /// It ended and its log holds a marked result: the JSON.
    Result(String),
    /// No result, and why (failed, OOMKilled, never started, no result in its log).
    Missing(String),
}

/// The Job's body: pods that run `loadgen attack --shard $(JOB_COMPLETION_INDEX)/N`, wait for
/// their start time in the downward-API file, print their result as a marked log line, and
/// hold no API token.
pub fn body(job: &GeneratorJob) -> Result<Job, KubeError> {
    let mut args = job.args.clone();
    args.extend([
        "--shard".to_string(),
        format!("$(JOB_COMPLETION_INDEX)/{}", job.count),
        "--start-at-file".to_string(),
        format!("{START_AT_DIR}/{START_AT_FILE}"),
        // The coordinator sets the start once every pod runs: never later than this.
        "--start-wait".to_string(),
        format!("{}s", (POD_START_BOUND + START_LEAD).as_secs()),
        "--log-result".to_string(),
    ]);
    let labels = json!({
        "app.kubernetes.io/name": "loadgen", "app.kubernetes.io/component": "shard",
        "app.kubernetes.io/managed-by": "loadgen", DEPLOYMENT_LABEL: job.deployment
    });
    // Whatever happens to the coordinator, the Job ends: its pods are stopped at this
    // deadline, and the finished Job is collected after its TTL.
    let deadline = (POD_START_BOUND + START_LEAD + job.run_bound).as_secs() + 1;
    let value = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": job.name, "namespace": job.namespace, "labels": labels },
        "spec": {
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "completionMode": "Indexed",
            "completions": job.count,
            "parallelism": job.count,
            // Per index, not per Job: a shard that fails (OOMKilled, evicted, deleted) is not
            // retried, and — unlike `backoffLimit: 0` — does not fail the Job, whose controller
            // would then kill the sibling shards still running and lose their results.
            "backoffLimitPerIndex": 0,
            "maxFailedIndexes": job.count,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    // Only the coordinator talks to the API.
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": { "type": "RuntimeDefault" }
                    },
                    "containers": [{
                        "name": CONTAINER,
                        "image": job.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": args,
                        "env": [{ "name": "LOADGEN_ALLOW_REMOTE", "value": "1" }],
                        "resources": {
                            "requests": { "cpu": GENERATOR_CPU, "memory": GENERATOR_MEMORY },
                            "limits": { "cpu": GENERATOR_CPU, "memory": GENERATOR_MEMORY }
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] }
                        },
                        "volumeMounts": [{ "name": "start", "mountPath": START_AT_DIR, "readOnly": true }]
                    }],
                    "volumes": [{ "name": "start", "downwardAPI": { "items": [{
                        "path": START_AT_FILE,
                        "fieldRef": { "fieldPath": format!("metadata.annotations['{START_AT_ANNOTATION}']") }
                    }] } }]
                }
            }
        }
    });
    serde_json::from_value(value).map_err(|e| KubeError::Annotation(format!("job body: {e}")))
}

/// Runs one step's Job: create, wait for every pod to run (each missing one by its reason),
/// set the start time, wait for them to end within `run_bound` after it, gather the results,
/// and delete the Job on every path. Returns each shard's pod's outcome, index by index, and
/// the start time given (also sent to `on_start` as soon as the pods have it).
pub async fn run(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    job: &GeneratorJob,
    run_bound: Duration,
    stop: &CancellationToken,
    on_start: Option<tokio::sync::oneshot::Sender<SystemTime>>,
) -> Result<(Vec<ShardPod>, SystemTime), KubeError> {
    jobs.create(&PostParams::default(), &body(job)?)
        .await
        .map_err(KubeError::api("create", &job.name))?;
    let ran = drive(pods, job, run_bound, stop, on_start).await;
    let deleted = jobs
        .delete(&job.name, &DeleteParams::background())
        .await
        .map(|_| ())
        .map_err(KubeError::api("delete", &job.name));
    let ran = ran?;
    deleted?;
    Ok(ran)
}

async fn drive(
    pods: &Api<Pod>,
    job: &GeneratorJob,
    run_bound: Duration,
    stop: &CancellationToken,
    on_start: Option<tokio::sync::oneshot::Sender<SystemTime>>,
) -> Result<(Vec<ShardPod>, SystemTime), KubeError> {
    let started = wait_pods(pods, job, POD_START_BOUND, stop, |p| phase(p) != "Pending").await?;
    let start_at = SystemTime::now() + START_LEAD;
    let at = unix_ms(start_at).to_string();
    for pod in started.values().filter(|p| phase(p) == "Running") {
        let name = pod_name(pod);
        let patch = json!({ "metadata": { "annotations": { START_AT_ANNOTATION: at } } });
        pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(KubeError::api("annotate", &name))?;
    }
    if let Some(tx) = on_start {
        let _ = tx.send(start_at);
    }
    let bound = START_LEAD + run_bound;
    let finished = wait_pods(pods, job, bound, stop, ended).await?;
    let mut out = Vec::new();
    for k in 0..job.count {
        out.push(match finished.get(&k).or(started.get(&k)) {
            None => ShardPod::Missing(format!("never started within {POD_START_BOUND:?}")),
            Some(pod) => outcome(pods, pod, bound).await,
        });
    }
    Ok((out, start_at))
}

/// Lists the Job's pods until every index has one for which `done` holds, or `bound` passes
/// (then what there is), by index. A stop ends the wait early.
async fn wait_pods(
    pods: &Api<Pod>,
    job: &GeneratorJob,
    bound: Duration,
    stop: &CancellationToken,
    done: impl Fn(&Pod) -> bool,
) -> Result<BTreeMap<u32, Pod>, KubeError> {
    let deadline = Instant::now() + bound;
    let lp = ListParams::default().labels(&format!("job-name={}", job.name));
    loop {
        let list = pods
            .list(&lp)
            .await
            .map_err(KubeError::api("list the pods of", &job.name))?;
        let by_index: BTreeMap<u32, Pod> = list
            .items
            .into_iter()
            .filter_map(|p| index(&p).map(|i| (i, p)))
            .collect();
        let all = (0..job.count).all(|k| by_index.get(&k).is_some_and(&done));
        if all || Instant::now() >= deadline || stop.is_cancelled() {
            return Ok(by_index);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = stop.cancelled() => {}
        }
    }
}

fn index(p: &Pod) -> Option<u32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(INDEX_ANNOTATION)?
        .parse()
        .ok()
}

fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn ended(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

/// Why the generator container ended, from its terminated state: `OOMKilled`, `Error`, with its
/// exit code.
fn termination(p: &Pod) -> Option<String> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    let t = statuses
        .iter()
        .find(|c| c.name == CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some(format!(
        "{} (exit code {})",
        t.reason.as_deref().unwrap_or("terminated"),
        t.exit_code
    ))
}

/// A pod's shard: its marked result when it succeeded (or failed having printed one: exit 1
/// is an invalid but measured shard), else why not.
async fn outcome(pods: &Api<Pod>, pod: &Pod, bound: Duration) -> ShardPod {
    let name = pod_name(pod);
    let why_ended = termination(pod);
    match phase(pod) {
        "Pending" => return ShardPod::Missing(format!("pod {name} never started (Pending)")),
        "Running" => return ShardPod::Missing(format!("pod {name} still running after {bound:?}")),
        _ => {}
    }
    if why_ended
        .as_deref()
        .is_some_and(|w| w.starts_with("OOMKilled"))
    {
        return ShardPod::Missing(format!("pod {name} was OOMKilled"));
    }
    let lp = LogParams {
        container: Some(CONTAINER.to_string()),
        ..LogParams::default()
    };
    match pods.logs(&name, &lp).await {
        Ok(log) => match result_in_log(&log) {
            Some(json) => ShardPod::Result(json.to_string()),
            None => ShardPod::Missing(format!(
                "pod {name} {} without a result in its log",
                why_ended.map_or_else(|| "ended".to_string(), |w| format!("failed: {w},"))
            )),
        },
        Err(e) => ShardPod::Missing(format!("pod {name}: cannot read its log: {e}")),
    }
}

/// Deletes the generator Jobs (pods included) that loadgen left for `deployment`: a killed run's.
/// One line each for the run's report. A Role without the shards' rules cannot list Jobs, and
/// then had none to leave: nothing to do.
pub async fn sweep(jobs: &Api<Job>, deployment: &str) -> Result<Vec<String>, KubeError> {
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/managed-by=loadgen,{DEPLOYMENT_LABEL}={deployment}"
    ));
    let list = match jobs.list(&lp).await {
        Ok(list) => list,
        Err(kube::Error::Api(e)) if e.code == 403 => return Ok(Vec::new()),
        Err(e) => return Err(KubeError::api("list the generator jobs of", deployment)(e)),
    };
    let mut notes = Vec::new();
    for job in list.items {
        let name = job.metadata.name.unwrap_or_default();
        jobs.delete(&name, &DeleteParams::background())
            .await
            .map_err(KubeError::api("delete", &name))?;
        notes.push(format!(
            "generator job {name} was left by a run that could not delete it (killed): deleted"
        ));
    }
    Ok(notes)
}

/// Where the coordinator finds the image for the generator pods: this variable, else its own
/// pod's (named by `POD_NAME`, from the downward API in k8s/loadgen/job.yaml).
pub const IMAGE_ENV: &str = "LOADGEN_IMAGE";
/// The coordinator's own pod name.
pub const POD_NAME_ENV: &str = "POD_NAME";

/// The image of the generator pods: [`IMAGE_ENV`], else the coordinator's own container's.
pub async fn own_image(client: &kube::Client, ns: &str) -> Result<String, KubeError> {
    if let Ok(image) = std::env::var(IMAGE_ENV) {
        return Ok(image);
    }
    let own = std::env::var(POD_NAME_ENV).map_err(|_| {
        KubeError::GeneratorImage(format!(
            "cannot tell the generator pods' image: set {IMAGE_ENV}, or {POD_NAME_ENV} \
             (downward API) for this pod's own"
        ))
    })?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = pods
        .get(&own)
        .await
        .map_err(KubeError::api("get pod", &own))?;
    pod.spec
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image)
        .ok_or_else(|| KubeError::GeneratorImage(format!("pod {own} has no container image")))
}
