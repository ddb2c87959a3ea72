//! `kind = "kubernetes"` campaigns on the real control plane: `loadgen run` scales and limits
//! the real Deployment of `k8s/base` step by step (the real Deployment and ReplicaSet
//! controllers roll it out, the real scheduler places the pods, the stand-in runs them under
//! real quotas, kube-proxy routes the Service), reads each pod's CPU from its own cgroup
//! metrics, reconciles the clicks with Redis, and puts the Deployment back as it found it —
//! at the end, on SIGTERM, and through `loadgen restore` after a SIGKILL. An HPA on the
//! Deployment refuses the run.

use std::path::Path;
use std::time::Duration;

use loadgen_model::result::{CampaignResult, CheckName, RunStatus, Severity, StepResult};
use serde_json::Value;

use super::{arg, loadgen, testbed, Namespace, Testbed};
use crate::common::{self, serial};

const RUN_BOUND: Duration = Duration::from_secs(240);

pub(super) fn scenario(ns: &Namespace, steps: &str) -> String {
    format!(
        r#"name = "testbed-k8s"
counter_site = "td4"

[target]
kind = "kubernetes"
namespace = "{ns}"
deployment = "polymetrie"
container = "polymetrie"
service_url = "http://{ip}:8080"
metrics_port = 8080
# The Service and pod addresses are the testbed's, on this machine's own bridge.
allow_remote = true

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"td4","url":"/page/{{seq}}"}}'

[defaults]
timeout = "3s"
warmup = "500ms"
store = "redis"
{steps}"#,
        ns = ns.name,
        ip = ns.cluster_ip("polymetrie"),
    )
}

const TWO_STEPS: &str = r#"
[[campaign]]
name = "A"

[[campaign.step]]
name = "r1-cpu1-400rps"
rate = 400
duration = "3s"
replicas = 1
cpu_limit = 1

[[campaign.step]]
name = "r2-nolimit-100rps"
rate = 100
duration = "3s"
replicas = 2
"#;

pub(super) const LONG_STEP: &str = r#"
[[campaign]]
name = "L"

[[campaign.step]]
name = "long"
rate = 20
duration = "60s"
replicas = 2
cpu_limit = 0.5
"#;

/// What a run must leave as it found: the replicas and the pod template.
pub(super) fn spec_of(ns: &Namespace) -> (Value, Value) {
    let d = ns.get_json(&["deployment", "polymetrie"]);
    (d["spec"]["replicas"].clone(), d["spec"]["template"].clone())
}

pub(super) fn annotation_kept(ns: &Namespace) -> bool {
    let d = ns.get_json(&["deployment", "polymetrie"]);
    d["metadata"]["annotations"]
        .get("loadgen.io/original")
        .is_some()
}

pub(super) async fn run(
    bed: &Testbed,
    dir: &Path,
    scenario: &Path,
) -> (Option<i32>, String, CampaignResult) {
    run_with(bed, dir, scenario, &[]).await
}

/// `loadgen run SCENARIO --out DIR/out` with `envs`, bounded: its exit code, its stderr (also
/// printed) and the run.json it wrote.
pub(super) async fn run_with(
    bed: &Testbed,
    dir: &Path,
    scenario: &Path,
    envs: &[(&str, &str)],
) -> (Option<i32>, String, CampaignResult) {
    let out_dir = dir.join("out");
    let args = [
        "run".as_ref(),
        arg(scenario),
        "--out".as_ref(),
        arg(&out_dir),
    ];
    let mut cmd = loadgen(bed, &args);
    cmd.envs(envs.iter().copied());
    let out = tokio::time::timeout(RUN_BOUND, cmd.output())
        .await
        .expect("run bound")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    let text = std::fs::read_to_string(out_dir.join("run.json")).unwrap();
    (
        out.status.code(),
        stderr,
        serde_json::from_str(&text).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_campaign_runs_on_the_real_control_plane() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-campaign");
    ns.deploy_base("5.5ms");
    let before = spec_of(&ns);
    let dir = common::tempdir("testbed-campaign");
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, scenario(&ns, TWO_STEPS)).unwrap();
    let (code, stderr, result) = run(&bed, dir.path(), &path).await;
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    check_result(&result);
    assert_eq!(spec_of(&ns), before, "the Deployment is back as it was");
    assert!(!annotation_kept(&ns));
}

/// Every intended request sent or dropped, every 2xx counted once by the service, and nothing
/// counted that was not sent.
pub(super) fn check_reconciled(s: &StepResult) {
    assert_eq!(s.intended, s.sent + s.dropped, "{}", s.name);
    let delta = s
        .counter
        .as_ref()
        .and_then(|c| c.delta)
        .expect("counter delta") as u64;
    assert!(
        s.ok <= delta && delta <= s.sent,
        "{}: ok {} delta {delta} sent {}",
        s.name,
        s.ok,
        s.sent
    );
}

fn check_result(r: &CampaignResult) {
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.findings);
    assert_eq!(r.steps.len(), 2, "{:?}", r.findings);
    for s in &r.steps {
        check_reconciled(s);
        for p in &s.cpu.as_ref().unwrap().per_replica {
            assert!(
                p.pod
                    .as_deref()
                    .is_some_and(|n| n.starts_with("polymetrie-")),
                "{p:?}"
            );
            assert_eq!(p.node.as_deref(), Some("testbed-node"));
            assert!(
                p.from_service.is_some(),
                "the pod's own cgroup metrics: {p:?}"
            );
        }
    }
    let cpu = r.steps[0].cpu.as_ref().unwrap();
    assert_eq!(cpu.per_replica.len(), 1);
    let p = &cpu.per_replica[0];
    eprintln!("1-core pod at 400 req/s x 5.5 ms: {p:?}");
    let cores = p.cores_used.unwrap();
    assert!(
        cores > 0.3 && cores < 1.15,
        "a saturated 1-core pod: {cores} cores"
    );
    assert!(
        p.nr_throttled.unwrap() > 0 && p.throttled_ratio.unwrap() > 0.0,
        "a 1-core pod asked for 2.2 cores is throttled: {p:?}"
    );
    let free = r.steps[1].cpu.as_ref().unwrap();
    assert_eq!(free.per_replica.len(), 2);
    assert!(
        free.per_replica.iter().all(|q| q.pod != p.pod),
        "the new ReplicaSet's pods"
    );
    for q in &free.per_replica {
        assert_eq!(
            q.throttled_ratio.unwrap_or(0.0),
            0.0,
            "no limit, no throttling: {q:?}"
        );
    }
    let restored = r.findings.iter().find(|f| f.check == CheckName::Restore);
    let restored = restored.expect("a restore finding");
    assert_eq!(restored.severity, Severity::Info, "{}", restored.message);
}

pub(super) fn signal(child: &tokio::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// SIGTERM mid-step restores at once; SIGKILL leaves the original in the annotation, and
/// `loadgen restore` puts it back from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_restores_and_a_killed_run_is_restored_by_loadgen_restore() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-restore");
    ns.deploy_base("1ms");
    let before = spec_of(&ns);
    let dir = common::tempdir("testbed-restore");
    let path = dir.path().join("long.toml");
    std::fs::write(&path, scenario(&ns, LONG_STEP)).unwrap();
    let out_dir = dir.path().join("out");
    let args = ["run".as_ref(), arg(&path), "--out".as_ref(), arg(&out_dir)];
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
        let child = loadgen(&bed, &args).spawn().unwrap();
        let rolled = bed.wait(Duration::from_secs(90), || {
            let d = ns.get_json(&["deployment", "polymetrie"]);
            (d["spec"]["replicas"] == 2
                && d["status"]["updatedReplicas"] == 2
                && d["status"]["readyReplicas"] == 2)
                .then_some(())
        });
        assert!(rolled.is_some(), "the step's rollout");
        signal(&child, sig);
        let out = tokio::time::timeout(RUN_BOUND, child.wait_with_output())
            .await
            .expect("exits after the signal")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if sig == rustix::process::Signal::TERM {
            assert_eq!(out.status.code(), Some(1), "interrupted: {stderr}");
            assert!(stderr.contains("restored the original"), "{stderr}");
            assert!(!annotation_kept(&ns));
            assert_eq!(spec_of(&ns), before);
        } else {
            assert!(
                annotation_kept(&ns),
                "a killed run leaves the original in the annotation"
            );
            assert_eq!(spec_of(&ns).0, 2);
        }
    }
    let restore = loadgen(&bed, &["restore".as_ref(), arg(&path)])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&restore.stdout);
    let stderr = String::from_utf8_lossy(&restore.stderr);
    assert_eq!(restore.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("restored the original kept by a killed run"),
        "{stdout}"
    );
    // The killed run's Lease did not have to be waited out: its process is gone.
    assert!(
        stderr.contains("lease loadgen-polymetrie of loadgen")
            && stderr.contains("no longer runs")
            && stderr.contains("taken over"),
        "{stderr}"
    );
    assert_eq!(spec_of(&ns), before);
    assert!(!annotation_kept(&ns));
}

/// A real HPA on the Deployment refuses the run before anything changes: exit 2, one line
/// naming it, the Deployment's generation untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_the_deployment_refuses_the_run_naming_it() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-hpa-refusal");
    ns.deploy_base("1ms");
    bed.kubectl(&[
        "-n",
        &ns.name,
        "autoscale",
        "deployment",
        "polymetrie",
        "--min=1",
        "--max=4",
        "--cpu-percent=70",
    ]);
    let generation = ns.get_json(&["deployment", "polymetrie"])["metadata"]["generation"].clone();
    let dir = common::tempdir("testbed-hpa-refusal");
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, scenario(&ns, TWO_STEPS)).unwrap();
    let validate = loadgen(&bed, &["validate".as_ref(), arg(&path)])
        .output()
        .await
        .unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "validate is offline and accepts it"
    );
    let run = loadgen(&bed, &["run".as_ref(), arg(&path)])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("horizontalpodautoscaler polymetrie scales deployment polymetrie"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let after = ns.get_json(&["deployment", "polymetrie"])["metadata"]["generation"].clone();
    assert_eq!(after, generation, "nothing was changed");
}
