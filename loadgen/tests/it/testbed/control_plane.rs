//! The testbed itself: a real v1.37 control plane, a Node registered by the kubelet stand-in,
//! and pods that really run — an image with no local program refused with a reason that says
//! so, a CPU limit that is a real CFS quota, exit codes and phases as a kubelet reports them,
//! logs through the API server, and deletion that stops the process.

use std::time::Duration;

use serde_json::{json, Value};

use super::testbed;
use crate::common::serial;

fn pod(name: &str, image: &str, args: &[&str], cpu: Option<&str>) -> String {
    let mut c = json!({ "name": "main", "image": image, "args": args });
    if let Some(cpu) = cpu {
        c["resources"] = json!({ "limits": { "cpu": cpu }, "requests": { "cpu": cpu } });
    }
    json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name },
            "spec": { "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                      "automountServiceAccountToken": false, "containers": [c] } })
    .to_string()
}

fn container_state(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]["state"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbed_is_a_real_v1_37_control_plane_whose_pods_run() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let version: Value = serde_json::from_str(&bed.kubectl(&["version", "-o", "json"])).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );
    let node = bed.get_json(&["node", "testbed-node"]);
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{node}");
    assert_eq!(node["status"]["addresses"][0]["address"], "10.244.0.1");

    let ns = bed.namespace("it-control-plane");
    let n = ns.name.as_str();
    bed.kubectl_in(
        &["-n", n, "apply", "-f", "-"],
        Some(&pod("nginx", "nginx:1.27", &[], None)),
    );
    bed.kubectl_in(
        &["-n", n, "apply", "-f", "-"],
        Some(&pod("ok", "loadgen", &["--version"], None)),
    );
    bed.kubectl_in(
        &["-n", n, "apply", "-f", "-"],
        Some(&pod(
            "bad",
            "loadgen",
            &["validate", "/no/such/scenario.toml"],
            None,
        )),
    );
    let bound = Duration::from_secs(60);
    let refused = bed.wait(bound, || {
        let p = ns.get_json(&["pod", "nginx"]);
        let w = &container_state(&p)["waiting"];
        (w["reason"] == "ErrImageNeverPull").then(|| w["message"].to_string())
    });
    let refused = refused.expect("an image with no local program is refused");
    assert!(refused.contains("kubelet stand-in"), "{refused}");

    let ended = |name: &str, phase: &str| {
        bed.wait(bound, || {
            let p = ns.get_json(&["pod", name]);
            (p["status"]["phase"] == phase).then_some(p)
        })
        .unwrap_or_else(|| panic!("pod {name} never {phase}: {}", ns.get_json(&["pod", name])))
    };
    let ok = ended("ok", "Succeeded");
    let t = &container_state(&ok)["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    let ip = ok["status"]["podIP"].as_str().unwrap_or_default();
    assert!(
        ip.starts_with("10.244.0."),
        "a pod address on the bridge: {ip}"
    );
    let logs = bed.kubectl(&["-n", n, "logs", "ok"]);
    assert!(
        logs.contains("loadgen"),
        "logs through the API server: {logs:?}"
    );
    let bad = ended("bad", "Failed");
    let t = &container_state(&bad)["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(2), Some("Error"))
    );
}

/// A container's `limits.cpu` is the CFS quota of the group its process runs in; deleting the
/// pod stops the process within the grace period and removes the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_limit_is_a_real_quota_and_deletion_stops_the_process() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-quota");
    let n = ns.name.as_str();
    let spec = pod(
        "redis",
        "redis",
        &["--port", "6379", "--save", ""],
        Some("250m"),
    );
    bed.kubectl_in(&["-n", n, "apply", "-f", "-"], Some(&spec));
    let running = bed.wait(Duration::from_secs(60), || {
        let p = ns.get_json(&["pod", "redis"]);
        (p["status"]["phase"] == "Running").then_some(p)
    });
    let p = running.expect("redis runs");
    let uid: String = p["metadata"]["uid"].as_str().unwrap().replace('-', "");
    let group = format!("/sys/fs/cgroup/cpu/testbed-pod-{}-c0", &uid[..12]);
    let quota = std::fs::read_to_string(format!("{group}/cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "25000", "250m of a 100 ms period: {group}");
    let procs = std::fs::read_to_string(format!("{group}/cgroup.procs")).unwrap();
    let pid: u32 = procs
        .lines()
        .next()
        .expect("a process in the group")
        .parse()
        .unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.ends_with("redis-server") || exe.to_string_lossy().contains("redis"),
        "{exe:?}"
    );
    bed.kubectl(&[
        "-n",
        n,
        "delete",
        "pod",
        "redis",
        "--wait=true",
        "--timeout=30s",
    ]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the pod's process is gone with it"
    );
    assert!(!std::path::Path::new(&group).exists(), "and its cpu group");
}
