//! The Node this stand-in is: registered with this machine's CPUs and memory, its address on
//! the pod bridge and its kubelet port, reported Ready; its status refreshed and its Lease in
//! `kube-node-lease` renewed every 10 s (a quarter of the 40 s lease, as a kubelet does), so
//! the node lifecycle controller never marks it Unknown while the stand-in runs.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::time::{now, now_micro};
use crate::Config;

/// The field manager of everything the stand-in writes.
pub const MANAGER: &str = "testbed-kubelet";
const LEASE_SECONDS: i64 = 40;
const RENEW: Duration = Duration::from_secs(10);

/// This machine as a Node sees it.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub cpus: u32,
    pub memory_bytes: u64,
}

impl Capacity {
    pub fn of_this_machine() -> Capacity {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        Capacity {
            cpus,
            memory_bytes: kb * 1024,
        }
    }
}

fn status(config: &Config, cap: Capacity) -> Value {
    let t = now();
    let cond = |ty: &str, st: &str, reason: &str, msg: &str| {
        json!({ "type": ty, "status": st, "reason": reason, "message": msg,
                "lastHeartbeatTime": t, "lastTransitionTime": t })
    };
    let resources = json!({
        "cpu": cap.cpus.to_string(),
        "memory": format!("{}Ki", cap.memory_bytes / 1024),
        "pods": "110",
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "capacity": resources, "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "stand-in"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "stand-in"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "stand-in"),
            cond("Ready", "True", "KubeletReady", "testbed kubelet stand-in is posting ready status"),
        ],
        "addresses": [
            { "type": "InternalIP", "address": config.host_ip().to_string() },
            { "type": "Hostname", "address": config.node_name },
        ],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": config.port } },
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": kernel.trim(), "osImage": "testbed kubelet stand-in",
            "containerRuntimeVersion": "standin://local-processes",
            "kubeletVersion": "v1.37.2-standin", "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
        },
    })
}

/// Creates or updates the Node and reports it Ready.
pub async fn register(client: &Client, config: &Config, cap: Capacity) -> kube::Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let name = &config.node_name;
    let [a, b, c, _] = config.pod_subnet.octets();
    let body = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": std::env::consts::ARCH,
            "node.kubernetes.io/instance-type": "testbed-kubelet-standin",
        }},
        "spec": { "podCIDR": format!("{a}.{b}.{c}.0/24") },
    });
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    let patch = json!({ "status": status(config, cap) });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

async fn renew_lease(client: &Client, config: &Config, node: &Node) -> kube::Result<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": config.node_name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Node", "name": config.node_name,
            "uid": node.metadata.uid,
        }]},
        "spec": { "holderIdentity": config.node_name, "leaseDurationSeconds": LEASE_SECONDS,
                  "renewTime": now_micro() },
    });
    api.patch(
        &config.node_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// Renews the Lease and the Node's status until `stop`.
pub async fn heartbeat(client: Client, config: Config, cap: Capacity, stop: CancellationToken) {
    loop {
        match register(&client, &config, cap).await {
            Ok(node) => {
                if let Err(e) = renew_lease(&client, &config, &node).await {
                    tracing::warn!("lease: {e}");
                }
            }
            Err(e) => tracing::warn!("node status: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = stop.cancelled() => return,
        }
    }
}
