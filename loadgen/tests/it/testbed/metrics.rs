//! The real metrics-server, and through it `kubectl top` and the HPA, sees the real CPU of the
//! testbed's pods: polymetrie under load through its Service (routed by the real kube-proxy)
//! shows the CPU its clicks cost.

use std::time::Duration;

use super::{loadgen, testbed};
use crate::common::serial;

/// A CPU quantity from the metrics API (`637858382n`, `12m`, `1`) in cores.
fn cores(q: &str) -> f64 {
    let (num, scale) = match q.char_indices().last() {
        Some((i, 'n')) => (&q[..i], 1e-9),
        Some((i, 'u')) => (&q[..i], 1e-6),
        Some((i, 'm')) => (&q[..i], 1e-3),
        _ => (q, 1.0),
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * scale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_server_reports_the_real_cpu_of_pods_under_load() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-metrics");
    ns.deploy_base("5.5ms");
    let url = format!("http://{}:8080/api/clicks", ns.cluster_ip("polymetrie"));
    // 100 clicks/s at 5.5 ms of CPU each: about 0.55 core, for 40 s (metrics-server needs two
    // scrapes 10 s apart once the load runs).
    let attack = loadgen(
        &bed,
        &[
            "attack".as_ref(),
            url.as_ref(),
            "--rate".as_ref(),
            "100".as_ref(),
            "--duration".as_ref(),
            "40s".as_ref(),
            "--method".as_ref(),
            "POST".as_ref(),
            "--header".as_ref(),
            "content-type: application/json".as_ref(),
            "--body".as_ref(),
            r#"{"site":"td4","url":"/p/{seq}"}"#.as_ref(),
        ],
    )
    .env("LOADGEN_ALLOW_REMOTE", "1")
    .spawn()
    .unwrap();
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", ns.name);
    let seen = bed.wait(Duration::from_secs(45), || {
        let list: serde_json::Value =
            serde_json::from_str(&bed.try_kubectl(&["get", "--raw", &path], None).ok()?).ok()?;
        let pod = list["items"].as_array()?.iter().find(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("polymetrie-"))
        })?;
        let used = cores(pod["containers"][0]["usage"]["cpu"].as_str()?);
        (used > 0.25).then_some(used)
    });
    let out = attack.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let used = seen.expect("metrics-server shows polymetrie's CPU under load");
    eprintln!("metrics.k8s.io: polymetrie at 100 clicks/s x 5.5 ms uses {used:.3} cores");
    assert!(used < 1.2, "at most what the 1-core limit allows: {used}");
    let node: serde_json::Value = serde_json::from_str(&bed.kubectl(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/nodes/testbed-node",
    ]))
    .unwrap();
    let node_cpu = cores(node["usage"]["cpu"].as_str().unwrap_or(""));
    assert!(
        node_cpu > used * 0.9,
        "the node runs at least the pod: {node}"
    );
}
