//! The in-cluster Job end to end on the real control plane: the campaign overlay exactly as a
//! user applies it (`k8s/overlays/campaign`, with one short scenario added to its ConfigMap)
//! runs `loadgen run` as a Job under its own ServiceAccount. The real RBAC authorizer judges
//! every call against `k8s/loadgen/role.yaml` (granted verbs allowed, others 403), the
//! campaign scales and limits the real Deployment, reaches polymetrie through the Service's
//! cluster DNS name, and `kubectl logs job/loadgen | loadgen report --from-log -` rebuilds its
//! report.

use std::process::Stdio;
use std::time::Duration;

use loadgen_model::result::{CampaignResult, RunStatus};
use tokio::io::AsyncWriteExt;

use super::{arg, loadgen, testbed, Testbed};
use crate::common::{self, serial};

/// What the Role grants and what it does not, as the real authorizer decides it; and one
/// real 403 with the ServiceAccount's own token.
fn check_rbac(bed: &Testbed) {
    for (verb, resource) in [
        ("patch", "deployments.apps/polymetrie"),
        ("watch", "deployments.apps/polymetrie"),
        ("list", "replicasets.apps"),
        ("list", "pods"),
        ("create", "horizontalpodautoscalers.autoscaling"),
        ("create", "leases.coordination.k8s.io"),
        ("update", "leases.coordination.k8s.io/loadgen-polymetrie"),
    ] {
        assert!(
            bed.can_i("loadgen", verb, resource),
            "the Role grants {verb} {resource}"
        );
    }
    for (verb, resource) in [
        ("patch", "deployments.apps/redis"),
        ("delete", "deployments.apps/polymetrie"),
        ("get", "secrets"),
        ("create", "pods"),
        // A sharded step's rules are not the campaign overlay's (k8s/components/shards).
        ("create", "jobs.batch"),
        ("patch", "pods"),
        ("get", "pods/log"),
    ] {
        assert!(
            !bed.can_i("loadgen", verb, resource),
            "the Role does not grant {verb} {resource}"
        );
    }
    let token = bed.kubectl(&["-n", "loadgen", "create", "token", "loadgen"]);
    let server = bed.kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = bed.kubeconfig.with_file_name("pki").join("ca.crt");
    let denied = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig=/dev/null",
            "--server",
            &server,
            "--token",
            token.trim(),
        ])
        .arg(format!("--certificate-authority={}", ca.display()))
        .args(["-n", "loadgen", "get", "secrets"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && stderr.contains("Forbidden"),
        "a 403: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_cluster_job_runs_a_campaign_under_its_own_service_account() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("loadgen");
    bed.kubectl(&[
        "-n",
        "loadgen",
        "create",
        "secret",
        "generic",
        "polymetrie-admin-token",
        "--from-literal=token=testbed-admin-token",
    ]);
    let overlay = common::manifest_dir().join("tests/fixtures/k8s/testbed-job");
    let rendered = bed.kubectl(&["kustomize", &overlay.to_string_lossy()]);
    // The testbed has no Prometheus operator: everything but the ServiceMonitor.
    let docs: Vec<&str> = rendered
        .split("\n---\n")
        .filter(|d| !d.contains("kind: ServiceMonitor"))
        .collect();
    bed.kubectl_in(&["apply", "-f", "-"], Some(&docs.join("\n---\n")));
    check_rbac(&bed);
    let done = bed.wait(Duration::from_secs(240), || {
        let job = ns.get_json(&["job", "loadgen"]);
        let s = &job["status"];
        (s["succeeded"].as_i64() == Some(1) || s["failed"].as_i64() == Some(1)).then_some(job)
    });
    let logs = bed.try_kubectl(&["-n", "loadgen", "logs", "job/loadgen"], None);
    let logs = logs.unwrap_or_else(|e| format!("(no logs: {e})"));
    let job = done.unwrap_or_else(|| panic!("the Job did not end within 240 s:\n{logs}"));
    if job["status"]["succeeded"] != 1 {
        // loadgen exits 1 when a verdict failed or a step was invalid (a lagging generator on
        // this busy machine): the Job then fails with its logs intact, which is what a user
        // reads. Anything else (a crash, exit 2) fails the test.
        let pods = ns.get_json(&["pods", "-l", "job-name=loadgen"]);
        let code =
            &pods["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"];
        assert_eq!(code, 1, "{}\n{logs}", job["status"]);
    }

    let dir = common::tempdir("testbed-job");
    let out = dir.path().join("report");
    let mut report = loadgen(
        &bed,
        &[
            "report".as_ref(),
            "--from-log".as_ref(),
            "-".as_ref(),
            "--out".as_ref(),
            arg(&out),
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    report
        .stdin
        .take()
        .unwrap()
        .write_all(logs.as_bytes())
        .await
        .unwrap();
    let done = report.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success(),
        "loadgen report --from-log -: {stderr}"
    );
    assert!(out.join("report.html").exists() && out.join("steps.csv").exists());
    let run: CampaignResult =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.findings);
    assert_eq!(run.steps.len(), 2);
    for s in &run.steps {
        super::campaign::check_reconciled(s);
        let cpu = s.cpu.as_ref().unwrap();
        assert!(
            cpu.per_replica.iter().all(|p| p.cores_used.is_some()),
            "{cpu:?}"
        );
    }
    assert_eq!(run.steps[1].cpu.as_ref().unwrap().per_replica.len(), 2);
    // The Job put the Deployment back as the manifests have it.
    let d = ns.get_json(&["deployment", "polymetrie"]);
    assert_eq!(d["spec"]["replicas"], 1, "{}", d["spec"]);
    let res = &d["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"]["cpu"], "1", "{res}");
}
