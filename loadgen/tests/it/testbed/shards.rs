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

/// A sharded `loadgen run` of `steps` under way in namespace `name` (polymetrie deployed), the
/// generator pods running this build's loadgen.
struct Sharded {
    ns: super::Namespace,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    out_dir: std::path::PathBuf,
    child: tokio::process::Child,
}

impl Sharded {
    fn spawn(bed: &super::Testbed, name: &str, steps: &str) -> Sharded {
        let ns = bed.namespace(name);
        ns.deploy_base("1ms");
        let dir = common::tempdir(name);
        let path = dir.path().join("sharded.toml");
        std::fs::write(&path, format!("{}{steps}", scenario(&ns, ""))).unwrap();
        let out_dir = dir.path().join("out");
        let args = ["run".as_ref(), arg(&path), "--out".as_ref(), arg(&out_dir)];
        let child = loadgen(bed, &args)
            .env("LOADGEN_IMAGE", "loadgen:test")
            .spawn()
            .unwrap();
        Sharded {
            ns,
            _dir: dir,
            path,
            out_dir,
            child,
        }
    }
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
    let run = Sharded::spawn(&bed, "it-shards-kill", LONG_SHARDED);
    let (ns, path, child) = (&run.ns, &run.path, run.child);
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
    let restore = loadgen(&bed, &["restore".as_ref(), arg(path)])
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

const TWO_LONG: &str = r#"
[generators]
count = 2

[[campaign]]
name = "F"

[[campaign.step]]
name = "one-fails"
rate = 40
duration = "15s"
replicas = 1
"#;

/// One shard's pod deleted mid-step: that index fails, and the Job controller leaves its
/// sibling running (the Job's backoff is per index), so the merged step keeps shard 0's whole
/// result and names shard 1 as what made it invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shard_does_not_take_its_sibling_with_it() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let run = Sharded::spawn(&bed, "it-shards-fail", TWO_LONG);
    let (ns, out_dir, child) = (&run.ns, &run.out_dir, run.child);
    // Both pods were given their start time: the load is under way a few seconds after it.
    let index1 = "batch.kubernetes.io/job-completion-index=1";
    let started = bed.wait(Duration::from_secs(120), || {
        let pods = ns.get_json(&["pods", "-l", "app.kubernetes.io/component=shard"]);
        let items = pods["items"].as_array()?;
        let at: Vec<u64> = items
            .iter()
            .filter_map(|p| p["metadata"]["annotations"]["loadgen.io/start-at"].as_str())
            .filter_map(|a| a.parse().ok())
            .collect();
        (items.len() == 2 && at.len() == 2).then(|| at[0])
    });
    let start_ms = started.expect("both shard pods got their start time");
    let now_ms = loadgen_model::shard::unix_ms(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(
        start_ms.saturating_sub(now_ms) + 4000,
    ))
    .await;
    bed.kubectl(&[
        "-n",
        &ns.name,
        "delete",
        "pod",
        "-l",
        index1,
        "--wait=false",
    ]);
    let out = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(out_dir.join("run.json")).unwrap();
    let r: loadgen_model::result::CampaignResult = serde_json::from_str(&text).unwrap();
    let step = &r.steps[0];
    let sharding = step.sharding.as_ref().expect("a sharded step");
    assert_eq!(
        sharding.shards.len(),
        2,
        "both shards accounted for: {stderr}"
    );
    let zero = &sharding.shards[0];
    assert!(
        zero.missing.is_none() && zero.invalid_reason.is_none(),
        "shard 0 kept running and reported: {zero:?}\n{stderr}"
    );
    assert_eq!(zero.ok, Some(300), "shard 0's whole share: {zero:?}");
    assert!(!step.valid);
    let why = step.invalid_reason.as_deref().unwrap_or_default();
    assert!(why.contains("shard 1"), "{why}");
    assert!(!why.contains("shard 0"), "{why}");
}
