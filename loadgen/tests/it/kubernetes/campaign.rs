//! A `kind = "kubernetes"` campaign end to end against the fake API server: `loadgen run`
//! reaches it through `KUBECONFIG`, each step's rollout runs real polymetrie pods under real
//! CFS quotas, and the run's evidence is the cluster's — counts that reconcile through the
//! Service and a shared Redis, per-pod CPU from each pod's own `polymetrie_cgroup_cpu_*`, a
//! 1-core pod at 1000 req/s throttled — and the Deployment is back to its original afterwards.

use std::time::Duration;

use loadgen_model::result::{CampaignResult, CheckName, RunStatus, Severity};

use super::fake_api::{self, kubelet::NODE, FakeApi};
use crate::common::polymetrie::local_service;
use crate::common::{self, external, serial};

/// The whole run: two rollouts, two 2-s steps with warm-up, settling, restore.
const RUN_BOUND: Duration = Duration::from_secs(240);

pub(super) fn scenario(fake: &FakeApi) -> String {
    format!(
        r#"name = "fake-k8s"
counter_site = "td4"

[target]
kind = "kubernetes"
namespace = "{ns}"
deployment = "{dep}"
container = "{container}"
service_url = "http://{service}"
metrics_port = {metrics}

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"td4","url":"/page/{{seq}}"}}'

[defaults]
timeout = "3s"
warmup = "500ms"
store = "redis"

[[campaign]]
name = "A"

[[campaign.step]]
name = "r1-cpu1-1000rps"
rate = 1000
duration = "2s"
replicas = 1
cpu_limit = 1

[[campaign.step]]
name = "r2-nolimit-100rps"
rate = 100
duration = "2s"
replicas = 2
"#,
        ns = fake_api::NAMESPACE,
        dep = fake_api::DEPLOYMENT,
        container = fake_api::CONTAINER,
        service = fake.service_addr,
        metrics = fake.metrics_port,
    )
}

/// The fake API server with a `td4` polymetrie Deployment costing `cost` per click, or `None`
/// (after the skip-or-fail policy) without polymetrie, redis-server or usable cgroups.
pub(super) async fn start_fake(cost: Duration) -> Option<FakeApi> {
    let (Some(bin), Some(redis), true) = (
        external::polymetrie(),
        external::binary("redis-server", "redis-server"),
        external::cgroups_usable(),
    ) else {
        return None;
    };
    let mut service = local_service(bin, cost);
    service.sites = vec!["td4".into()];
    Some(FakeApi::start(service, &redis, fake_api::manifest_deployment()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_campaign_runs_end_to_end_against_the_fake_api_server() {
    let _serial = serial::lock().await;
    // TD4's cost: ~180 clicks/s per core, so 1000 req/s asks 5 cores of a 1-core pod.
    let Some(fake) = start_fake(Duration::from_micros(5500)).await else {
        return;
    };
    assert!(
        fake.settled(Duration::from_secs(30)).await,
        "the fake's first rollout"
    );
    let dir = common::tempdir("fake-k8s");
    let path = dir.path().join("fake-k8s.toml");
    std::fs::write(&path, scenario(&fake)).unwrap();
    let (code, stderr, result) = run_campaign(&fake, dir.path(), &path, &[], RUN_BOUND).await;
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    check_result(&result);
    check_restored(&fake);
    check_calls(&fake);
    fake.shutdown().await;
}

/// A one-step scenario long enough to be stopped in the middle: 2 replicas, 0.5 core, 60 s.
fn long_scenario(fake: &FakeApi) -> String {
    let s = scenario(fake);
    let head = &s[..s.find("[[campaign]]").unwrap()];
    format!(
        "{head}[[campaign]]\nname = \"L\"\n\n[[campaign.step]]\nname = \"long\"\nrate = 20\n\
         duration = \"60s\"\nreplicas = 2\ncpu_limit = 0.5\n"
    )
}

/// Waits (bounded) until the fake's Deployment satisfies `f`.
async fn wait_for(fake: &FakeApi, f: impl Fn(&serde_json::Value) -> bool) -> bool {
    let mut rx = fake.state.lock().unwrap().subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if f(&fake.deployment()) {
            return true;
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// `loadgen run SCENARIO --out DIR/out` against `fake` with `envs` set, bounded by `bound`:
/// its exit code, its stderr (also printed) and the run.json it wrote.
pub(super) async fn run_campaign(
    fake: &FakeApi,
    dir: &std::path::Path,
    scenario: &std::path::Path,
    envs: &[(&str, &str)],
    bound: Duration,
) -> (Option<i32>, String, CampaignResult) {
    let out_dir = dir.join("out");
    let args = [
        "run".as_ref(),
        scenario.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ];
    let mut cmd = loadgen(&args, &fake.kubeconfig(dir));
    cmd.envs(envs.iter().copied());
    let out = tokio::time::timeout(bound, cmd.output())
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

pub(super) fn loadgen(
    args: &[&std::ffi::OsStr],
    kubeconfig: &std::path::Path,
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    c.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("LOADGEN_ALLOW_REMOTE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    c
}

fn signal(child: &tokio::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// SIGTERM mid-step restores at once; SIGKILL leaves the annotation, and `loadgen restore`
/// puts the original back from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_restores_and_a_killed_run_is_restored_by_loadgen_restore() {
    let _serial = serial::lock().await;
    let Some(fake) = start_fake(Duration::from_millis(1)).await else {
        return;
    };
    let dir = common::tempdir("fake-k8s-stop");
    let path = dir.path().join("long.toml");
    std::fs::write(&path, long_scenario(&fake)).unwrap();
    let kubeconfig = fake.kubeconfig(dir.path());
    let changed =
        |d: &serde_json::Value| d["spec"]["replicas"] == 2 && d["status"]["updatedReplicas"] == 2;
    let out_dir = dir.path().join("out");
    let run_args = [
        "run".as_ref(),
        path.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ];
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
        let child = loadgen(&run_args, &kubeconfig).spawn().unwrap();
        assert!(
            wait_for(&fake, changed).await,
            "the step's rollout: {}",
            fake.deployment()
        );
        signal(&child, sig);
        let out = tokio::time::timeout(RUN_BOUND, child.wait_with_output())
            .await
            .expect("exits after the signal")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let dep = fake.deployment();
        let kept = dep["metadata"]["annotations"]
            .get("loadgen.io/original")
            .is_some();
        if sig == rustix::process::Signal::TERM {
            assert_eq!(out.status.code(), Some(1), "interrupted: {stderr}");
            assert!(stderr.contains("restored the original"), "{stderr}");
            assert!(!kept, "{dep}");
            check_restored(&fake);
        } else {
            assert!(
                kept,
                "a killed run leaves the original in the annotation: {dep}"
            );
            assert_eq!(dep["spec"]["replicas"], 2);
        }
    }
    let restore = loadgen(&["restore".as_ref(), path.as_os_str()], &kubeconfig)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&restore.stdout);
    assert_eq!(
        restore.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert!(
        stdout.contains("restored the original kept by a killed run"),
        "{stdout}"
    );
    check_restored(&fake);
    fake.shutdown().await;
}

fn check_result(r: &CampaignResult) {
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.findings);
    assert_eq!(r.steps.len(), 2, "{:?}", r.findings);
    for s in &r.steps {
        assert_eq!(s.intended, s.sent + s.dropped, "{}", s.name);
        let delta = s
            .counter
            .as_ref()
            .and_then(|c| c.delta)
            .expect("counter delta") as u64;
        // Every 2xx was counted once, and nothing was counted that was not sent.
        assert!(
            s.ok <= delta && delta <= s.sent,
            "{}: ok {} delta {delta} sent {}",
            s.name,
            s.ok,
            s.sent
        );
        for p in &s.cpu.as_ref().unwrap().per_replica {
            assert!(
                p.pod
                    .as_deref()
                    .is_some_and(|n| n.starts_with("polymetrie-")),
                "{p:?}"
            );
            assert_eq!(p.node.as_deref(), Some(NODE));
            assert!(
                p.from_service.is_some(),
                "the pod's own cgroup metrics: {p:?}"
            );
        }
    }
    let limited = &r.steps[0];
    let cpu = limited.cpu.as_ref().unwrap();
    assert_eq!(cpu.per_replica.len(), 1);
    let p = &cpu.per_replica[0];
    eprintln!("1-core pod at 1000 req/s: {p:?}");
    let cores = p.cores_used.unwrap();
    assert!(
        cores > 0.3 && cores < 1.15,
        "a saturated 1-core pod: {cores} cores"
    );
    // How many periods end throttled depends on how much of the shared 2-core machine the pod
    // gets besides the generator; that its quota throttled it at all is what must hold.
    let throttled = p.throttled_ratio.unwrap();
    assert!(
        p.nr_throttled.unwrap() > 0 && throttled > 0.0,
        "a 1-core pod at 1000 req/s is throttled: {p:?}"
    );
    assert_eq!(
        cpu.node_cores_used, None,
        "the generator's node is not the pods'"
    );
    let free = r.steps[1].cpu.as_ref().unwrap();
    assert_eq!(free.per_replica.len(), 2);
    assert_ne!(free.per_replica[0].pod, p.pod, "the new ReplicaSet's pods");
    for q in &free.per_replica {
        assert_eq!(
            q.throttled_ratio.unwrap_or(0.0),
            0.0,
            "no limit, no throttling: {q:?}"
        );
    }
    let restored = r
        .findings
        .iter()
        .find(|f| f.check == CheckName::Restore)
        .expect("a restore finding");
    assert_eq!(restored.severity, Severity::Info, "{}", restored.message);
}

pub(super) fn check_restored(fake: &FakeApi) {
    let dep = fake.deployment();
    assert_eq!(dep["spec"]["replicas"], 1, "{dep}");
    let res = &dep["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"]["cpu"], "1", "{res}");
    assert_eq!(res["requests"]["cpu"], "500m", "{res}");
    assert_eq!(res["limits"]["memory"], "128Mi", "untouched: {res}");
    assert!(
        dep["metadata"]["annotations"]
            .get("loadgen.io/original")
            .is_none(),
        "{dep}"
    );
}

/// The calls of a campaign with an unlimited step: the limit kubectl wrote was deleted by a
/// strategic patch, and rollouts were waited for with a watch.
fn check_calls(fake: &FakeApi) {
    let calls = fake.state.lock().unwrap().calls.clone();
    assert!(
        calls.iter().any(|c| c.contains("strategic-merge-patch")),
        "the unlimited step removed kubectl's limit: {calls:#?}"
    );
    assert!(calls.iter().any(|c| c.contains("watch=true")), "{calls:#?}");
}

/// An HPA on the Deployment refuses the run before anything changes: exit 2, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_the_deployment_refuses_the_run_naming_it() {
    let _serial = serial::lock().await;
    let Some(fake) = start_fake(Duration::from_millis(1)).await else {
        return;
    };
    fake.state.lock().unwrap().hpas.push(serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "polymetrie", "namespace": fake_api::NAMESPACE },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": fake_api::DEPLOYMENT },
                  "minReplicas": 1, "maxReplicas": 4 } }));
    let dir = common::tempdir("fake-k8s-hpa");
    let path = dir.path().join("fake-k8s.toml");
    std::fs::write(&path, scenario(&fake)).unwrap();
    let out = loadgen(
        &["validate".as_ref(), path.as_os_str()],
        &fake.kubeconfig(dir.path()),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "validate is offline and accepts it"
    );
    let run = loadgen(
        &["run".as_ref(), path.as_os_str()],
        &fake.kubeconfig(dir.path()),
    )
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
    let calls = fake.state.lock().unwrap().calls.clone();
    assert!(calls.iter().all(|c| !c.starts_with("PATCH")), "{calls:#?}");
    fake.shutdown().await;
}
