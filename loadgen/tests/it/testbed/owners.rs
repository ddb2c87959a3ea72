//! A run leaves the Deployment as it found it — its spec **and its field owners** — on the
//! real API server's server-side apply: the manifests applied with `kubectl apply
//! --server-side` at 2 replicas, two campaigns in a row (the second must not release, and so
//! reset, fields the first left owned by loadgen), and the manifests applied again afterwards
//! without a conflict.

use serde_json::Value;

use super::campaign::{run, scenario};
use super::{testbed, Namespace};
use crate::common::{self, serial};

const STEP: &str = r#"
[[campaign]]
name = "O"

[[campaign.step]]
name = "r1-cpu0.5"
rate = 20
duration = "2s"
replicas = 1
cpu_limit = 0.5
"#;

/// One managedFields entry: manager, operation, subresource and the fields it owns.
type Owner = (String, String, String, String);

/// The spec and, per manager, what it owns (timestamps aside).
fn state(ns: &Namespace) -> (Value, Value, Vec<Owner>) {
    let d = ns.get_json(&["deployment", "polymetrie", "--show-managed-fields"]);
    let mut owners: Vec<Owner> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            (
                s("manager"),
                s("operation"),
                s("subresource"),
                m["fieldsV1"].to_string(),
            )
        })
        // The controller's status writes change with every rollout; they are not ours to keep.
        .filter(|o| o.2 != "status")
        .collect();
    owners.sort();
    (
        d["spec"]["replicas"].clone(),
        d["spec"]["template"].clone(),
        owners,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_in_a_row_leave_spec_and_field_owners_as_they_were() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-owners");
    // Two replicas: a run that released spec.replicas would leave 1 (the API's default).
    let manifests = ns
        .base_manifests("1ms")
        .replacen("replicas: 1", "replicas: 2", 1);
    assert!(manifests.contains("name: polymetrie"));
    let apply = ["apply", "--server-side", "-f", "-"];
    bed.kubectl_in(&apply, Some(&manifests));
    ns.wait_base();
    let before = state(&ns);
    assert_eq!(before.0, 2, "the manifests' replicas");
    assert!(
        before.2.iter().any(|o| o.0 == "kubectl" && o.1 == "Apply"),
        "{:?}",
        before.2
    );
    let dir = common::tempdir("testbed-owners");
    let path = dir.path().join("owners.toml");
    std::fs::write(&path, scenario(&ns, STEP)).unwrap();
    for n in 1..=2 {
        let (code, stderr, _) = run(&bed, dir.path(), &path).await;
        assert!(matches!(code, Some(0 | 1)), "run {n}: {stderr}");
        let after = state(&ns);
        assert_eq!(after.0, before.0, "run {n}: replicas");
        assert_eq!(after.1, before.1, "run {n}: pod template");
        assert_eq!(after.2, before.2, "run {n}: field owners");
    }
    // The manifests apply again as they did, without a conflict over loadgen's fields.
    let again = bed.try_kubectl(&apply, Some(&manifests));
    assert!(
        again.is_ok(),
        "kubectl apply --server-side after the runs: {again:?}"
    );
    assert_eq!(state(&ns), before);
}
