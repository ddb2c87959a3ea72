//! What changed under a step without loadgen, on the real control plane: a Deployment carrying
//! Argo CD's tracking annotation is warned about before the first step; a LimitRange's default
//! limit, which the real admission plugin puts on an unlimited step's pods, is said (the step
//! measured what the pods ran); a `kubectl scale` in the middle of a step makes that step
//! invalid, naming kubectl as the writer.

use std::time::Duration;

use loadgen_model::result::{CampaignResult, CheckName, Severity};

use super::campaign::scenario;
use super::{arg, loadgen, testbed};
use crate::common::{self, serial};

const STEPS: &str = r#"
[[campaign]]
name = "D"

[[campaign.step]]
name = "unlimited"
rate = 50
duration = "3s"
replicas = 1

[[campaign.step]]
name = "scaled"
rate = 50
duration = "20s"
replicas = 1
cpu_limit = 0.5
"#;

const LIMIT_RANGE: &str = r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: cpu-default
spec:
  limits:
    - type: Container
      default:
        cpu: "2"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_scale_mid_step_invalidates_it_and_what_the_pods_ran_is_said() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-drift");
    ns.deploy_base("1ms");
    let n = ns.name.as_str();
    bed.kubectl_in(&["-n", n, "apply", "-f", "-"], Some(LIMIT_RANGE));
    let tracking = "argocd.argoproj.io/tracking-id=demo:apps/Deployment:ns/polymetrie";
    bed.kubectl(&["-n", n, "annotate", "deployment", "polymetrie", tracking]);
    let dir = common::tempdir("testbed-drift");
    let path = dir.path().join("drift.toml");
    std::fs::write(&path, scenario(&ns, STEPS)).unwrap();
    let out_dir = dir.path().join("out");
    let args = ["run".as_ref(), arg(&path), "--out".as_ref(), arg(&out_dir)];
    let child = loadgen(&bed, &args).spawn().unwrap();
    // The second step's shape rolled out (0.5 core), then a foreign scale while it measures.
    let rolled = bed.wait(Duration::from_secs(120), || {
        let d = ns.get_json(&["deployment", "polymetrie"]);
        let limit = &d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"];
        (limit == "500m"
            && d["status"]["updatedReplicas"] == 1
            && d["status"]["readyReplicas"] == 1)
            .then_some(())
    });
    assert!(rolled.is_some(), "the second step's rollout");
    tokio::time::sleep(Duration::from_secs(5)).await;
    bed.kubectl(&["-n", n, "scale", "deployment", "polymetrie", "--replicas=2"]);
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an invalid step: {stderr}");
    let text = std::fs::read_to_string(out_dir.join("run.json")).unwrap();
    let r: CampaignResult = serde_json::from_str(&text).unwrap();
    let drift = |checks: &[loadgen_model::result::Finding], severity| {
        checks
            .iter()
            .filter(|f| f.check == CheckName::Drift && f.severity == severity)
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
    };
    let gitops = drift(&r.findings, Severity::Warn);
    assert!(
        gitops
            .iter()
            .any(|m| m.contains("argocd.argoproj.io/tracking-id")),
        "{:?}",
        r.findings
    );
    let (unlimited, scaled) = (&r.steps[0], &r.steps[1]);
    let ran = drift(&unlimited.checks, Severity::Warn);
    assert!(
        ran.iter()
            .any(|m| m.contains("limit 2 where the step asked for no limit")),
        "{:?}",
        unlimited.checks
    );
    assert!(unlimited.valid, "{:?}", unlimited.invalid_reason);
    let changed = drift(&scaled.checks, Severity::Fail);
    assert!(
        changed
            .iter()
            .any(|m| m.contains("changed during the step") && m.contains("kubectl")),
        "{:?}",
        scaled.checks
    );
    assert!(!scaled.valid);
    let why = scaled.invalid_reason.as_deref().unwrap_or_default();
    assert!(why.contains("changed during the step"), "{why}");
}
