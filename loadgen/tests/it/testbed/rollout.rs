//! A rollout that cannot succeed ends its step at once with the cluster's reason, not after its
//! bound: on the real scheduler, a step asking each pod for more CPU than the node has leaves
//! the new pod Unschedulable ("Insufficient cpu"), and the step fails within seconds although
//! `rollout_timeout` allows minutes; the Deployment is restored.

use std::time::{Duration, Instant};

use loadgen_model::result::CheckName;

use super::campaign::{run, scenario, spec_of};
use super::testbed;
use crate::common::{self, serial};

const STEPS: &str = r#"
[[campaign]]
name = "U"

[[campaign.step]]
name = "r1-cpu64"
rate = 10
duration = "2s"
replicas = 1
cpu_limit = 64
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_step_fails_at_once_saying_why() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-rollout");
    ns.deploy_base("1ms");
    let before = spec_of(&ns);
    let dir = common::tempdir("testbed-rollout");
    let path = dir.path().join("unschedulable.toml");
    let text = scenario(&ns, STEPS).replace(
        "allow_remote = true",
        "allow_remote = true\nrollout_timeout = \"3m\"",
    );
    std::fs::write(&path, text).unwrap();
    let t0 = Instant::now();
    let (code, stderr, r) = run(&bed, dir.path(), &path).await;
    let took = t0.elapsed();
    // Its only step could not run: exit 2 ("no step could run"), with a valid run.json.
    assert_eq!(code, Some(2), "{stderr}");
    let failed = r
        .findings
        .iter()
        .chain(r.steps.iter().flat_map(|s| s.checks.iter()))
        .find(|f| f.check == CheckName::StepFailed)
        .unwrap_or_else(|| panic!("a step_failed finding: {:?}", r.findings));
    assert!(
        failed.message.contains("cannot be scheduled")
            && failed.message.contains("Insufficient cpu"),
        "{}",
        failed.message
    );
    assert!(
        took < Duration::from_secs(60),
        "ended in {took:?}, not after the 3-min bound"
    );
    assert_eq!(spec_of(&ns), before, "restored");
}
