//! The two Role shapes under the **real RBAC authorizer**: the ServiceAccount, Role and
//! RoleBinding that `kubectl kustomize k8s/loadgen` renders are applied into a namespace of the
//! testbed, and `kubectl auth can-i --as system:serviceaccount:<ns>:loadgen` (a
//! SubjectAccessReview the apiserver answers) shows the base Role allowing what an unsharded
//! campaign calls and denying a sharded step's Job and pod rules; with `k8s/components/shards`
//! applied as well, those become allowed and nothing else does.

use std::time::Duration;

use super::{testbed, Testbed};
use crate::common::{self, serial};

const NS: &str = "it-rbac";

/// The ServiceAccount, Roles and RoleBindings of `kubectl kustomize <dir>` (a path under the
/// repository), moved into namespace `ns`.
fn rbac_docs(bed: &Testbed, dir: &str, ns: &str) -> String {
    let path = common::repo_dir().join(dir);
    let rendered = bed.kubectl(&["kustomize", &path.to_string_lossy()]);
    let docs: Vec<String> = rendered
        .split("\n---\n")
        .filter(|d| {
            ["ServiceAccount", "Role", "RoleBinding"]
                .iter()
                .any(|k| d.lines().any(|l| l == format!("kind: {k}")))
        })
        .map(|d| d.replace("namespace: loadgen", &format!("namespace: {ns}")))
        .collect();
    assert!(
        !docs.is_empty(),
        "{dir} renders no RBAC object:\n{rendered}"
    );
    docs.join("\n---\n")
}

/// Every (verb, resource) of `allowed` is allowed and every one of `denied` denied; the first
/// allowed one is waited for (the authorizer sees a new Role through its informer).
fn expect(bed: &Testbed, ns: &str, shape: &str, allowed: &[(&str, &str)], denied: &[(&str, &str)]) {
    let (verb, resource) = allowed[0];
    let seen = bed.wait(Duration::from_secs(20), || {
        bed.can_i(ns, verb, resource).then_some(())
    });
    assert!(seen.is_some(), "{shape}: {verb} {resource} never allowed");
    let wrong_yes: Vec<String> = denied
        .iter()
        .filter(|(v, r)| bed.can_i(ns, v, r))
        .map(|(v, r)| format!("{v} {r}"))
        .collect();
    let wrong_no: Vec<String> = allowed
        .iter()
        .filter(|(v, r)| !bed.can_i(ns, v, r))
        .map(|(v, r)| format!("{v} {r}"))
        .collect();
    assert!(
        wrong_yes.is_empty() && wrong_no.is_empty(),
        "{shape}: allowed but should be denied: {wrong_yes:?}; denied but should be allowed: \
         {wrong_no:?}"
    );
}

/// What an unsharded campaign calls (k8s/loadgen/role.yaml).
const CAMPAIGN: &[(&str, &str)] = &[
    ("patch", "deployments.apps/polymetrie"),
    ("get", "deployments.apps/polymetrie"),
    ("watch", "deployments.apps/polymetrie"),
    ("list", "pods"),
    ("list", "replicasets.apps"),
    ("list", "horizontalpodautoscalers.autoscaling"),
    ("create", "horizontalpodautoscalers.autoscaling"),
    (
        "delete",
        "horizontalpodautoscalers.autoscaling/loadgen-polymetrie",
    ),
    ("get", "pods.metrics.k8s.io"),
    ("create", "leases.coordination.k8s.io"),
    ("update", "leases.coordination.k8s.io/loadgen-polymetrie"),
    ("delete", "leases.coordination.k8s.io/loadgen-polymetrie"),
];

/// What only a sharded step adds (k8s/components/shards/role.yaml).
const SHARDS: &[(&str, &str)] = &[
    ("create", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("patch", "pods"),
    ("get", "pods"),
    ("get", "pods/log"),
];

/// Never granted, by either shape.
const NEVER: &[(&str, &str)] = &[
    ("patch", "deployments.apps/other"),
    ("delete", "deployments.apps/polymetrie"),
    ("create", "deployments.apps"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("delete", "pods"),
    ("patch", "jobs.batch"),
    ("delete", "horizontalpodautoscalers.autoscaling/other"),
    ("update", "leases.coordination.k8s.io/other"),
    ("create", "roles.rbac.authorization.k8s.io"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_base_role_denies_what_only_a_sharded_step_needs_and_the_component_grants_it() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace(NS);

    bed.kubectl_in(
        &["apply", "-f", "-"],
        Some(&rbac_docs(&bed, "k8s/loadgen", &ns.name)),
    );
    let denied: Vec<(&str, &str)> = SHARDS.iter().chain(NEVER).copied().collect();
    expect(&bed, &ns.name, "k8s/loadgen", CAMPAIGN, &denied);

    bed.kubectl_in(
        &["apply", "-f", "-"],
        Some(&rbac_docs(&bed, "k8s/components/shards", &ns.name)),
    );
    let allowed: Vec<(&str, &str)> = SHARDS.iter().chain(CAMPAIGN).copied().collect();
    expect(
        &bed,
        &ns.name,
        "k8s/loadgen + k8s/components/shards",
        &allowed,
        NEVER,
    );
}
