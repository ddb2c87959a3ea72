//! The fake's controller and kubelet in one task: when the Deployment's generation passes the
//! one it last rolled out, it rolls the new spec out with **real** polymetrie replicas started
//! by loadgen's local deployer — `spec.replicas` of them, each under a real CFS quota of the
//! container's `limits.cpu` (none without one) — that share the Service's loopback address
//! (SO_REUSEPORT) and a Redis, each with its metrics on its own pod IP in 127.0.0.0/8.
//!
//! The status moves as a Deployment's does: first `observedGeneration` = the new generation
//! with nothing updated, then, once the new pods are Ready, every count equal to the replicas;
//! the old pods are marked terminating before that and removed once their processes are gone.
//! Every rollout replaces every pod, even a scale-only one (a real Deployment scales its
//! ReplicaSet in place).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use loadgen::deployer::kubernetes::spec::millicores;
use loadgen::deployer::{Deployment, LocalDeployer, Pinning};
use loadgen::plan::{LocalService, Store, Topology};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::http::Shared;
use super::state::REVISION;

/// How long the fake gives a rollout's replicas to become ready.
const READY_BOUND: Duration = Duration::from_secs(20);
/// The node every fake pod runs on.
pub const NODE: &str = "fake-node";

/// What the kubelet runs pods with.
pub struct Kubelet {
    pub state: Shared,
    pub changes: watch::Receiver<u64>,
    pub service: LocalService,
    /// The Service's address, shared by every pod.
    pub service_addr: SocketAddr,
    /// Every pod's metrics port (at its own IP).
    pub metrics_port: u16,
    pub store_url: String,
    pub stop: CancellationToken,
}

impl Kubelet {
    /// Runs until `stop`; then tears the last pods down.
    pub async fn run(mut self) {
        let mut running: Option<Deployment> = None;
        let mut rolled_out = 0;
        let mut seq: u8 = 0;
        loop {
            let generation = self.state.lock().unwrap().generation();
            if generation > rolled_out {
                seq = seq.wrapping_add(1).max(1);
                running = self.roll_out(generation, seq, running).await;
                rolled_out = generation;
                continue;
            }
            tokio::select! {
                _ = self.changes.changed() => {}
                _ = self.stop.cancelled() => break,
            }
        }
        if let Some(d) = running {
            let _ = d.teardown().await;
        }
    }

    /// One rollout of `generation`; returns what now runs (the old pods when it failed).
    async fn roll_out(
        &self,
        generation: i64,
        seq: u8,
        old: Option<Deployment>,
    ) -> Option<Deployment> {
        let (topology, hash, labels) = {
            let mut s = self.state.lock().unwrap();
            let replicas = s.dep["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
            let old_count = s.pods.len() as i64;
            s.dep["status"] = json!({ "observedGeneration": generation, "replicas": old_count,
                "updatedReplicas": 0, "availableReplicas": old_count,
                "readyReplicas": old_count, "unavailableReplicas": replicas });
            s.touch();
            let hash = template_hash(&s.dep["spec"]["template"]);
            let labels = s.dep["spec"]["selector"]["matchLabels"].clone();
            let st = &mut *s;
            ensure_replica_set(&mut st.replica_sets, &st.dep, &hash);
            (topology_of(&s.dep), hash, labels)
        };
        let admin: Vec<SocketAddr> = (0..topology.replicas)
            .map(|k| SocketAddr::from((pod_ip(seq, k), self.metrics_port)))
            .collect();
        let pinning = Pinning {
            service: self.service_addr,
            admin,
            store_url: Some(self.store_url.clone()),
        };
        let mut deployer = LocalDeployer::new(&self.service).pinned(pinning);
        let started = deployer.deploy(&topology, READY_BOUND).await;
        let new = match started {
            Ok(d) => d,
            Err(e) => {
                let mut s = self.state.lock().unwrap();
                s.dep["status"]["conditions"] = json!([{ "type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded", "message": format!("fake kubelet: {e}") }]);
                s.touch();
                return old;
            }
        };
        {
            let mut s = self.state.lock().unwrap();
            for p in &mut s.pods {
                p["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
            }
            for k in 0..topology.replicas {
                let p = pod(&hash, generation, k, pod_ip(seq, k), &labels);
                s.pods.push(p);
            }
            let n = topology.replicas;
            s.dep["status"] = json!({ "observedGeneration": generation, "replicas": n,
                "updatedReplicas": n, "availableReplicas": n, "readyReplicas": n,
                "unavailableReplicas": 0 });
            s.touch();
        }
        if let Some(d) = old {
            let _ = d.teardown().await;
        }
        let mut s = self.state.lock().unwrap();
        s.pods
            .retain(|p| p["metadata"].get("deletionTimestamp").is_none());
        s.touch();
        Some(new)
    }
}

/// 127.0.SEQ.(k+2): a distinct loopback address per pod and rollout, so a new pod's metrics
/// listener never meets an old one's on the same address.
fn pod_ip(seq: u8, k: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, seq, (k + 2) as u8)
}

/// The step's topology as the kubelet reads the spec: replicas, and the container's CFS quota.
fn topology_of(dep: &Value) -> Topology {
    let limit = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]
        .as_str()
        // An unreadable quantity is a 0-core limit, which the local deployer refuses.
        .map(|q| millicores(q).unwrap_or(0) as f64 / 1000.0);
    Topology {
        replicas: dep["spec"]["replicas"].as_u64().unwrap_or(1) as u32,
        cpu_limit_cores: limit,
        store: Store::Redis,
        autoscale: None,
    }
}

fn template_hash(template: &Value) -> String {
    let digest = sha2::Sha256::digest(template.to_string().as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn ensure_replica_set(sets: &mut Vec<Value>, dep: &Value, hash: &str) {
    if sets
        .iter()
        .any(|r| r["metadata"]["labels"]["pod-template-hash"] == hash)
    {
        return;
    }
    let mut labels = dep["spec"]["selector"]["matchLabels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let name = dep["metadata"]["name"].as_str().unwrap_or_default();
    sets.push(json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": { "name": format!("{name}-{hash}"), "namespace": dep["metadata"]["namespace"],
            "labels": labels,
            "annotations": { REVISION: dep["metadata"]["annotations"][REVISION] },
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": dep["metadata"]["uid"], "controller": true }] } }));
}

fn pod(hash: &str, generation: i64, k: u32, ip: Ipv4Addr, labels: &Value) -> Value {
    let mut labels = labels.clone();
    labels["pod-template-hash"] = json!(hash);
    json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("polymetrie-{hash}-g{generation}-{k}"), "labels": labels },
        "spec": { "nodeName": NODE, "containers": [{ "name": "polymetrie" }] },
        "status": { "phase": "Running", "podIP": ip.to_string(),
            "conditions": [{ "type": "Ready", "status": "True" }] } })
}
