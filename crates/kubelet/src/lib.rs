//! The Kubernetes testbed's **kubelet stand-in** (not a kubelet: see `k8s/testbed/README.md`
//! for what it does not do). It registers a [`node`] and keeps its Lease, watches the pods the
//! real scheduler binds to it ([`sync`]) and runs each one ([`pod`]) as local processes: the
//! image names a local program ([`image`]), the pod gets its own network namespace on a bridge
//! ([`network`]), its volumes ([`volume`]) and environment ([`env`], [`fields`]), one CPU group
//! per container with the container's CPU limit as a real CFS quota, readiness [`probe`]s, and a
//! status reported as a kubelet reports it. Its HTTPS port ([`server`]) serves
//! `/metrics/resource` ([`stats`]) to the real metrics-server and container logs to
//! `kubectl logs`.

pub mod config;
pub mod env;
pub mod fields;
pub mod image;
pub mod network;
pub mod node;
pub mod pod;
pub mod probe;
pub mod relay;
pub mod server;
pub mod stats;
pub mod sync;
pub mod time;
pub mod volume;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use cpu_cgroup::CgroupLayout;
use kube::Client;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::image::Images;
use crate::network::Network;
use crate::node::Capacity;
use crate::stats::PodStats;

/// Prefix of the CPU groups of pods' containers (loadgen's own groups start `loadgen-`, so
/// neither sweeps the other's).
pub const CGROUP_PREFIX: &str = "testbed-pod-";

/// What every pod's supervisor shares.
pub struct Runtime {
    pub client: Client,
    pub config: Config,
    pub network: Network,
    pub layout: CgroupLayout,
    pub images: Images,
    pub node: NodeSize,
    pods: Mutex<BTreeMap<String, PodStats>>,
}

/// The node's size as pods' downward API sees it.
#[derive(Debug, Clone, Copy)]
pub struct NodeSize {
    pub cpus: u32,
    pub memory_bytes: u64,
}

impl Runtime {
    /// Publishes (or replaces) a pod's stats under its uid.
    pub fn publish(&self, uid: &str, stats: PodStats) {
        self.pods.lock().unwrap().insert(uid.to_string(), stats);
    }

    /// Forgets a pod that is gone.
    pub fn forget(&self, uid: &str) {
        self.pods.lock().unwrap().remove(uid);
    }

    pub fn pods(&self) -> Vec<PodStats> {
        self.pods.lock().unwrap().values().cloned().collect()
    }

    /// The log file of a container of a pod on this node.
    pub fn log_of(&self, namespace: &str, pod: &str, container: &str) -> Option<PathBuf> {
        let pods = self.pods.lock().unwrap();
        pods.values()
            .filter(|p| p.namespace == namespace && p.name == pod)
            .flat_map(|p| p.containers.iter())
            .find(|c| c.name == container)
            .map(|c| c.log.clone())
    }
}

/// Runs the stand-in until SIGTERM or SIGINT; then stops its pods (leaving their objects, as a
/// kubelet that goes away does) and removes its bridge.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.context("kubeconfig")?;
    let layout = CgroupLayout::detect(&config.cgroup_root)?;
    let network = Network::start(&config.bridge, config.pod_subnet).await?;
    let tls = server::tls(&config.tls_cert, &config.tls_key)?;
    let mut cap = Capacity::of_this_machine();
    if let Some(cpus) = config.cpus {
        cap.cpus = cpus;
    }
    node::register(&client, &config, cap)
        .await
        .context("registering the Node")?;
    let rt = Arc::new(Runtime {
        client: client.clone(),
        images: Images::new(&config.images),
        network,
        layout,
        node: NodeSize {
            cpus: cap.cpus,
            memory_bytes: cap.memory_bytes,
        },
        config: config.clone(),
        pods: Mutex::new(BTreeMap::new()),
    });
    let stop = CancellationToken::new();
    let addr = SocketAddr::from((config.host_ip(), config.port));
    let server = tokio::spawn(server::serve(rt.clone(), addr, tls, stop.clone()));
    let beat = tokio::spawn(node::heartbeat(client, config.clone(), cap, stop.clone()));
    let pods = tokio::spawn(sync::run(rt.clone(), stop.clone()));
    if let Some((listen, target)) = config.api_relay {
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = relay::serve(listen, target, stop).await {
                tracing::error!("API relay on {listen}: {e}");
            }
        });
    }
    tracing::info!("node {} ready; kubelet port {addr}", config.node_name);
    wait_for_signal().await;
    tracing::info!("stopping: pods first");
    stop.cancel();
    let _ = pods.await;
    let _ = beat.await;
    let _ = server.await;
    rt.network.stop().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
