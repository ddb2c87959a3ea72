//! The generator Job of a sharded step against a scripted `tower-test` API server: the Indexed
//! Job body (index from `JOB_COMPLETION_INDEX`, no token, no retry), the wait until every pod
//! runs before one start time is given to all, each shard's result gathered from its marked log
//! line, an OOMKilled pod and one that never started kept as missing with that reason, and the
//! Job deleted after the step.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hyper::{Request, Response};
use kube::api::Api;
use kube::client::Body;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower_test::mock::{self, Handle};

use crate::deployer::kubernetes::job::{self, GeneratorJob, ShardPod, START_AT_ANNOTATION};
use loadgen_model::shard::RESULT_MARK;

/// The scripted cluster: the pod lists successive list calls see (the last one repeats), the
/// logs by pod, and every call made.
#[derive(Default)]
struct Script {
    lists: VecDeque<Vec<Value>>,
    logs: Vec<(String, String)>,
    calls: Vec<(String, String, Option<Value>)>,
}

type Shared = Arc<Mutex<Script>>;

fn generator_job(count: u32) -> GeneratorJob {
    GeneratorJob {
        namespace: "ns".into(),
        name: "loadgen-shards-c-s-0000".into(),
        deployment: "web".into(),
        run_bound: std::time::Duration::from_secs(40),
        image: "loadgen:1".into(),
        count,
        args: vec![
            "attack".into(),
            "http://svc:8080/api/clicks".into(),
            "--json".into(),
        ],
    }
}

/// Pod `k` of the job in `phase`; `terminated` is its container's end (reason, exit code).
fn pod(k: u32, phase: &str, terminated: Option<(&str, i32)>) -> Value {
    let state = match terminated {
        Some((reason, code)) => json!({ "terminated": { "reason": reason, "exitCode": code } }),
        None => json!({ "running": {} }),
    };
    json!({
        "metadata": { "name": format!("shard-{k}"), "namespace": "ns",
            "labels": { "job-name": "loadgen-shards-c-s-0000" },
            "annotations": { job::INDEX_ANNOTATION: k.to_string() } },
        "status": { "phase": phase,
            "containerStatuses": [{ "name": job::CONTAINER, "ready": phase == "Running",
                "restartCount": 0, "image": "loadgen:1", "imageID": "", "state": state }] }
    })
}

fn client(script: Shared) -> kube::Client {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(serve(handle, script));
    kube::Client::new(service, "ns")
}

async fn serve(mut handle: Handle<Request<Body>, Response<Body>>, script: Shared) {
    while let Some((req, send)) = handle.next_request().await {
        let (method, uri) = (req.method().to_string(), req.uri().to_string());
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let mut s = script.lock().unwrap();
        s.calls.push((
            method.clone(),
            uri.clone(),
            serde_json::from_slice(&bytes).ok(),
        ));
        let path = uri.split('?').next().unwrap_or_default().to_string();
        let (code, body) = match method.as_str() {
            "POST" => (201, bytes.to_vec()),
            "DELETE" => (
                200,
                br#"{"kind":"Status","apiVersion":"v1","status":"Success"}"#.to_vec(),
            ),
            "PATCH" => (200, serde_json::to_vec(&pod(0, "Running", None)).unwrap()),
            _ if path.ends_with("/log") => {
                let name = path.trim_end_matches("/log").rsplit('/').next().unwrap();
                let log = s
                    .logs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, l)| l.clone());
                (200, log.unwrap_or_default().into_bytes())
            }
            _ => {
                let items = if s.lists.len() > 1 {
                    s.lists.pop_front().unwrap()
                } else {
                    s.lists.front().cloned().unwrap_or_default()
                };
                let list = json!({ "apiVersion": "v1", "kind": "PodList",
                    "metadata": { "resourceVersion": "1" }, "items": items });
                (200, serde_json::to_vec(&list).unwrap())
            }
        };
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(body))
                .unwrap(),
        );
    }
}

#[test]
fn the_job_body_is_an_indexed_job_of_token_less_pods_that_never_retry() {
    let job = serde_json::to_value(job::body(&generator_job(3)).unwrap()).unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (&spec["parallelism"], &spec["completions"]),
        (&json!(3), &json!(3))
    );
    // A failed shard is not retried and does not fail the Job (which would kill its siblings).
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    assert_eq!(spec["maxFailedIndexes"], 3);
    assert_eq!(spec.get("backoffLimit"), None);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "loadgen:1");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--shard"), "$(JOB_COMPLETION_INDEX)/3");
    assert_eq!(after("--start-at-file"), "/etc/loadgen/start/at");
    // A pod whose coordinator died gives up once every pod could have run and been told.
    assert_eq!(after("--start-wait"), "140s");
    assert!(args.contains(&"--log-result"));
    // Found by the next run or `loadgen restore` by these labels, and ended whatever happens:
    // 120 s to start, 20 s of lead, the step's 40 s.
    assert_eq!(job["metadata"]["labels"]["loadgen.io/deployment"], "web");
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "loadgen"
    );
    assert_eq!(spec["activeDeadlineSeconds"], 181);
    assert_eq!(spec["ttlSecondsAfterFinished"], 600);
    assert_eq!(
        pod["volumes"][0]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
        format!("metadata.annotations['{START_AT_ANNOTATION}']")
    );
    assert_eq!(
        c["resources"]["requests"], c["resources"]["limits"],
        "never throttled"
    );
}

#[tokio::test]
async fn pods_get_one_start_time_once_all_run_and_results_come_from_their_logs() {
    let script: Shared = Arc::default();
    {
        let mut s = script.lock().unwrap();
        let pending: Vec<Value> = (0..3).map(|k| pod(k, "Pending", None)).collect();
        let running: Vec<Value> = (0..3).map(|k| pod(k, "Running", None)).collect();
        let ended = vec![
            pod(0, "Succeeded", Some(("Completed", 0))),
            pod(1, "Failed", Some(("Error", 1))),
            pod(2, "Failed", Some(("OOMKilled", 137))),
        ];
        s.lists = [pending.clone(), pending, running, ended].into();
        s.logs = vec![
            (
                "shard-0".into(),
                format!("starting\n{RESULT_MARK}{{\"shard\":0}}\n"),
            ),
            // An invalid shard exits 1 having printed its result: measured, not missing.
            ("shard-1".into(), format!("{RESULT_MARK}{{\"shard\":1}}\n")),
        ];
    }
    let c = client(script.clone());
    let (jobs, pods) = (Api::namespaced(c.clone(), "ns"), Api::namespaced(c, "ns"));
    let stop = CancellationToken::new();
    let job = generator_job(3);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let bound = std::time::Duration::from_secs(5);
    let (out, start) = job::run(&jobs, &pods, &job, bound, &stop, Some(tx))
        .await
        .unwrap();
    // The step heard the start time the pods were given, before they ran.
    assert_eq!(rx.await.unwrap(), start);
    assert_eq!(out[0], ShardPod::Result("{\"shard\":0}".into()));
    assert_eq!(out[1], ShardPod::Result("{\"shard\":1}".into()));
    assert_eq!(
        out[2],
        ShardPod::Missing("pod shard-2 was OOMKilled".into())
    );
    let calls = script.lock().unwrap().calls.clone();
    let kinds: Vec<&str> = calls.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(kinds[0], "POST", "{kinds:?}");
    assert_eq!(
        *kinds.last().unwrap(),
        "DELETE",
        "the job is deleted after the step"
    );
    assert!(calls.last().unwrap().2.as_ref().unwrap()["propagationPolicy"] == "Background");
    // The start time goes out only after the list in which every pod runs (the third), and
    // it is one instant for all.
    let first_patch = kinds.iter().position(|m| *m == "PATCH").unwrap();
    let lists_before = kinds[..first_patch].iter().filter(|m| **m == "GET").count();
    assert_eq!(lists_before, 3, "{kinds:?}");
    let starts: Vec<&Value> = calls
        .iter()
        .filter(|(m, _, _)| m == "PATCH")
        .map(|(_, _, b)| &b.as_ref().unwrap()["metadata"]["annotations"][START_AT_ANNOTATION])
        .collect();
    assert_eq!(starts.len(), 3);
    assert!(starts.iter().all(|s| *s == starts[0]));
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_never_starts_is_missing_and_the_job_still_deleted() {
    let script: Shared = Arc::default();
    script.lock().unwrap().lists = [vec![pod(0, "Running", None), pod(1, "Pending", None)]].into();
    let c = client(script.clone());
    let (jobs, pods) = (Api::namespaced(c.clone(), "ns"), Api::namespaced(c, "ns"));
    let stop = CancellationToken::new();
    // Time is paused: the bounds (two minutes for the pods to run, then the step's) pass at
    // once, as on a cluster that never schedules pod 1 and never lets pod 0 finish.
    let (out, _) = job::run(
        &jobs,
        &pods,
        &generator_job(2),
        std::time::Duration::from_secs(5),
        &stop,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        out[1],
        ShardPod::Missing("pod shard-1 never started (Pending)".into())
    );
    assert!(matches!(&out[0], ShardPod::Missing(w) if w.contains("still running")));
    let calls = script.lock().unwrap().calls.clone();
    assert_eq!(calls.last().unwrap().0, "DELETE");
}
