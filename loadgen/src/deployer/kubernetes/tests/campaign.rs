//! The original restored on every exit path of a whole campaign run: after steps that could
//! not roll out (an error), and after a SIGINT/SIGTERM (the stop token) cut a rollout wait.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::mock::{status, Cluster, Shared};
use super::{deployer, original, target};
use crate::campaign::{self, RunOptions};
use crate::deployer::Deployer;
use crate::plan::{KubernetesTarget, Plan, Target};
use crate::scenario::{Scenario, SourceText};
use loadgen_model::result::{CheckName, RunStatus, Severity};

const SCENARIO: &str = r#"name = "k"
counter_site = "s"

[target]
kind = "kubernetes"
namespace = "ns"
deployment = "web"
container = "app"
service_url = "http://127.0.0.1:9"
metrics_port = 9100

[request]
path = "/"

[[campaign]]
name = "c"

[[campaign.step]]
rate = 10
duration = "1s"
replicas = 2
cpu_limit = 1

[[campaign.step]]
rate = 10
duration = "1s"
replicas = 3
"#;

fn plan(dir: &std::path::Path) -> Plan {
    let src = SourceText::new(&dir.join("k.toml"), SCENARIO.to_string());
    let mut plan = Plan::from_scenario(&Scenario::parse(&src).unwrap(), &src).unwrap();
    // The scenario's Service URL is replaced by the tests' listener (a step waits for it).
    assert!(matches!(plan.target, Target::Kubernetes(ref k)
        if KubernetesTarget { service_url: target().service_url, ..k.clone() } == target()));
    plan.target = Target::Kubernetes(target());
    plan
}

async fn run(cluster: &Shared, stop: &CancellationToken) -> loadgen_model::result::CampaignResult {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: dir.path().to_path_buf(),
        prometheus: None,
        progress: false,
        time_scale: 1.0,
        events: campaign::Events::quiet(),
        generator_metrics: None,
    };
    let d = Deployer::Kubernetes(Box::new(deployer(cluster)));
    campaign::run_with(&plan(dir.path()), &opts, stop, d)
        .await
        .unwrap()
}

fn assert_restored(cluster: &Shared) {
    let c = cluster.lock().unwrap();
    assert_eq!(c.dep["spec"]["replicas"], 1);
    let res = &c.container()["resources"];
    assert_eq!(res["limits"]["cpu"], "1");
    assert_eq!(res["requests"]["cpu"], "500m");
    let ann = &c.dep["metadata"]["annotations"];
    assert!(ann
        .get(crate::deployer::kubernetes::spec::ORIGINAL_ANNOTATION)
        .is_none());
    let last = c.applies().pop().unwrap();
    assert_eq!(last["spec"]["replicas"], original().replicas);
}

#[tokio::test]
async fn steps_that_cannot_roll_out_still_end_with_the_original_restored() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        let mut stalled = status(9, 1, 1, 1, 0);
        stalled["conditions"] = json!([{ "type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "quota exceeded" }]);
        c.dep["status"] = stalled;
    }
    let result = run(&cluster, &CancellationToken::new()).await;
    assert_eq!(result.status, RunStatus::Failed, "{:?}", result.findings);
    let failed: Vec<_> = result
        .findings
        .iter()
        .filter(|f| f.check == CheckName::StepFailed)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].message.contains("quota exceeded"),
        "{}",
        failed[0].message
    );
    let restored = result
        .findings
        .iter()
        .find(|f| f.check == CheckName::Restore)
        .unwrap();
    assert_eq!(restored.severity, Severity::Info, "{}", restored.message);
    assert_restored(&cluster);
}

#[tokio::test]
async fn a_signal_during_a_rollout_ends_the_run_with_the_original_restored() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    let stop = CancellationToken::new();
    // No rollout progresses: the watch is held open, and holding it is the "signal".
    cluster.lock().unwrap().on_hold = Some(stop.clone());
    let result = run(&cluster, &stop).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert!(result
        .findings
        .iter()
        .any(|f| f.check == CheckName::StepFailed && f.message.contains("interrupted")));
    assert_restored(&cluster);
    // The second step never started.
    let c = cluster.lock().unwrap();
    assert!(c.applies().iter().all(|a| a["spec"]["replicas"] != 3));
}
