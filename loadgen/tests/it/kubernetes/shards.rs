//! A sharded step on the fake API server: with `[generators] count = 2` the coordinator
//! (`loadgen run`, the only API client) creates an Indexed Job, waits until both pods run, gives
//! them one start time through their annotation, gathers their results from their logs, merges
//! them into the step and deletes the Job — and the step reconciles with the service's counter
//! exactly, with nothing of the Job left.

use std::time::Duration;

use loadgen_model::result::RunStatus;

use super::campaign::{run_campaign, scenario, start_fake};
use crate::common::{self, serial};

/// One rollout, the pods' start lead (20 s), a 2-s step, settling and restore.
const RUN_BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_generator_step_runs_as_an_indexed_job_and_reconciles() {
    let _serial = serial::lock().await;
    let Some(fake) = start_fake(Duration::ZERO).await else {
        return;
    };
    assert!(
        fake.settled(Duration::from_secs(30)).await,
        "the fake's first rollout"
    );
    let dir = common::tempdir("fake-k8s-shards");
    let s = scenario(&fake);
    let head = &s[..s.find("[[campaign]]").unwrap()];
    let text = format!(
        "{head}[generators]\ncount = 2\n\n[[campaign]]\nname = \"S\"\n\n[[campaign.step]]\n\
         name = \"two\"\nrate = 100\nduration = \"2s\"\nreplicas = 1\n"
    );
    let path = dir.path().join("shards.toml");
    std::fs::write(&path, text).unwrap();
    // The generator pods' image; the fake runs this build's loadgen whatever it says.
    let envs = [("LOADGEN_IMAGE", "loadgen:test")];
    let (code, stderr, r) = run_campaign(&fake, dir.path(), &path, &envs, RUN_BOUND).await;
    assert_eq!(r.status, RunStatus::Completed, "{stderr}");
    let step = &r.steps[0];
    assert!(step.valid, "{:?}\n{stderr}", step.invalid_reason);
    assert_eq!((step.intended, step.sent, step.ok), (200, 200, 200));
    let delta = step.counter.as_ref().and_then(|c| c.delta);
    assert_eq!(delta, Some(200), "service counter delta == merged ok");
    let sharding = step.sharding.as_ref().expect("a sharded step");
    let ok: Vec<Option<u64>> = sharding.shards.iter().map(|s| s.ok).collect();
    assert_eq!(ok, [Some(100), Some(100)]);
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.jobs.created.len(), 1, "one Job for the step");
        assert_eq!(state.jobs.live(), 0, "the Job and its pods were deleted");
        let calls = &state.calls;
        let has = |needle: &str| calls.iter().any(|c| c.contains(needle));
        assert!(
            has("POST /apis/batch/v1/namespaces/loadgen/jobs"),
            "{calls:#?}"
        );
        assert!(has("/log?&container=generator"), "{calls:#?}");
        assert!(
            has("DELETE /apis/batch/v1/namespaces/loadgen/jobs/"),
            "{calls:#?}"
        );
    }
    common::command::assert_exit_unless_lagged(code, &stderr, 0);
    fake.shutdown().await;
}
