//! A sharded step on the real control plane: with `[generators] count = 2` the coordinator
//! (`loadgen run`) creates an **Indexed Job** that the real Job controller runs as two pods on
//! the stand-in (this build's `loadgen` as the generator image), gives them one start time
//! through their annotation, gathers their results from their logs (through the API server's
//! node proxy to the stand-in), merges them into the step and deletes the Job; the step
//! reconciles with the service's counter exactly, its pod's CPU is read over the load (from the
//! shards' common start, not from before the Job's pods were scheduled and started, 20 s
//! earlier at least), and nothing of the Job is left. A killed sharded run's Job is bounded by
//! its own deadline and deleted by `loadgen restore`.

use std::time::Duration;

use loadgen_model::result::RunStatus;

use super::campaign::{run_with, scenario, signal};
use super::{arg, loadgen, testbed};
use crate::common::{self, serial};

const STEP: &str = r#"
[generators]
count = 2

[[campaign]]
name = "S"

[[campaign.step]]
name = "two"
rate = 100
duration = "2s"
replicas = 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_generator_step_runs_as_a_real_indexed_job_and_reconciles() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-shards");
    ns.deploy_base("1ms");
    let dir = common::tempdir("testbed-shards");
    let path = dir.path().join("shards.toml");
    let s = scenario(&ns, "");
    std::fs::write(&path, format!("{s}{STEP}")).unwrap();
    // The generator pods' image: the stand-in runs this build's loadgen for it.
    let envs = [("LOADGEN_IMAGE", "loadgen:test")];
    let (code, stderr, r) = run_with(&bed, dir.path(), &path, &envs).await;
    assert_eq!(r.status, RunStatus::Completed, "{stderr}");
    let step = &r.steps[0];
    assert!(step.valid, "{:?}\n{stderr}", step.invalid_reason);
    assert_eq!((step.intended, step.sent, step.ok), (200, 200, 200));
    let delta = step.counter.as_ref().and_then(|c| c.delta);
    assert_eq!(delta, Some(200), "service counter delta == merged ok");
    let sharding = step.sharding.as_ref().expect("a sharded step");
    let ok: Vec<Option<u64>> = sharding.shards.iter().map(|s| s.ok).collect();
    assert_eq!(ok, [Some(100), Some(100)]);
    let window = step
        .cpu
        .as_ref()
        .and_then(|c| c.window_s)
        .expect("cpu window");
    assert!(
        (2.0..12.0).contains(&window),
        "the cpu window ({window:.1} s) must start with the shards, not before their Job"
    );
    let jobs = ns.get_json(&["jobs"]);
    assert_eq!(
        jobs["items"].as_array().map(Vec::len),
        Some(0),
        "the Job was deleted: {jobs}"
    );
    common::command::assert_exit_unless_lagged(code, &stderr, 0);
}

const LONG_SHARDED: &str = r#"
[generators]
count = 2

[[campaign]]
name = "K"

[[campaign.step]]
name = "long"
rate = 20
duration = "60s"
replicas = 1
"#;

/// A sharded run killed mid-step leaves its generator Job: labelled for the Deployment, bounded
/// by its own deadline and TTL, and deleted by `loadgen restore` (under the Lease), which says
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sharded_runs_job_is_bounded_and_deleted_by_restore() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-shards-kill");
    ns.deploy_base("1ms");
    let dir = common::tempdir("testbed-shards-kill");
    let path = dir.path().join("long.toml");
    std::fs::write(&path, format!("{}{LONG_SHARDED}", scenario(&ns, ""))).unwrap();
    let out_dir = dir.path().join("out");
    let args = ["run".as_ref(), arg(&path), "--out".as_ref(), arg(&out_dir)];
    let child = loadgen(&bed, &args)
        .env("LOADGEN_IMAGE", "loadgen:test")
        .spawn()
        .unwrap();
    let selector = "app.kubernetes.io/managed-by=loadgen,loadgen.io/deployment=polymetrie";
    let job = bed.wait(Duration::from_secs(90), || {
        let jobs = ns.get_json(&["jobs", "-l", selector]);
        jobs["items"].as_array()?.first().cloned()
    });
    let job = job.expect("the sharded step's generator job");
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    // 120 s to start, 20 s of lead, the step's 60 s, its 3 s timeout and 30 s to exit.
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 234, "{job}");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
    signal(&child, rustix::process::Signal::KILL);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await;
    let restore = loadgen(&bed, &["restore".as_ref(), arg(&path)])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&restore.stderr);
    assert_eq!(restore.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("generator job {name} was left by a run")),
        "{stderr}"
    );
    let gone = bed.wait(Duration::from_secs(30), || {
        let jobs = ns.get_json(&["jobs"]);
        (jobs["items"].as_array()?.is_empty()).then_some(())
    });
    assert!(gone.is_some(), "the job is deleted");
}
