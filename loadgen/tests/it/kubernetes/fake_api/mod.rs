//! **The fake API server** — a test double, not Kubernetes: a small HTTP server on loopback
//! speaking the subset of the Kubernetes REST API the deployer uses ([`http`]), one
//! Deployment's field management ([`fields`]), and a "kubelet" ([`kubelet`]) that runs each
//! rollout as real polymetrie replicas through loadgen's local deployer under real CFS quotas,
//! with pod IPs in 127.0.0.0/8, a loopback address as the Service and one Redis for all; a fake HPA
//! controller ([`hpa`]) that scales it from those replicas' real CPU; and a sharded step's
//! Indexed Job runs its pods as `loadgen attack` processes ([`jobs`]).
//! `loadgen run` reaches it through a generated `KUBECONFIG`, exactly as it would a cluster.
//!
//! What it does not model is listed in docs/kubernetes.md ("The fake API server").

pub mod fields;
pub mod hpa;
pub mod http;
pub mod jobs;
pub mod kubelet;
pub mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use loadgen::deployer::redis::RedisServer;
use loadgen::plan::LocalService;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use http::Shared;
use state::State;

/// The namespace, Deployment and container the fake serves (those of `k8s/`).
pub const NAMESPACE: &str = "loadgen";
pub const DEPLOYMENT: &str = "polymetrie";
pub const CONTAINER: &str = "polymetrie";

/// A running fake; [`FakeApi::shutdown`] stops its pods, Redis and server.
pub struct FakeApi {
    pub addr: SocketAddr,
    /// The Service's address (`http://…` is the scenario's `service_url`).
    pub service_addr: SocketAddr,
    pub metrics_port: u16,
    pub state: Shared,
    stop: CancellationToken,
    kubelet: tokio::task::JoinHandle<()>,
    redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

/// The Deployment as `kubectl apply -k k8s/overlays/campaign` would leave it, in short: one
/// replica, CPU request 500m and limit 1 (both written by kubectl).
pub fn manifest_deployment() -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": DEPLOYMENT, "namespace": NAMESPACE,
            "labels": { "app.kubernetes.io/name": "polymetrie" } },
        "spec": { "replicas": 1,
            "selector": { "matchLabels": { "app.kubernetes.io/name": "polymetrie" } },
            "template": { "metadata": { "labels": { "app.kubernetes.io/name": "polymetrie" } },
                "spec": { "containers": [{ "name": CONTAINER, "image": "polymetrie:0.1.0",
                    "resources": { "requests": { "cpu": "500m", "memory": "128Mi" },
                                   "limits": { "cpu": "1", "memory": "128Mi" } } }] } } },
        "status": {} })
}

/// A free loopback port (bound by the kernel's choice, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl FakeApi {
    /// Starts the server, its Redis and its kubelet (which rolls the Deployment out at once).
    pub async fn start(service: LocalService, redis_binary: &Path, deployment: Value) -> FakeApi {
        let dir = tempfile::Builder::new()
            .prefix("loadgen-fake-api-")
            .tempdir()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let redis = RedisServer::start(redis_binary, dir.path(), None, deadline)
            .await
            .expect("the fake's redis-server");
        let (state, changes) = State::new(deployment);
        let state: Shared = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, state.clone(), stop.clone()));
        let service_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let metrics_port = free_port();
        let kubelet = kubelet::Kubelet {
            state: state.clone(),
            changes,
            service,
            service_addr,
            metrics_port,
            store_url: redis.url(),
            stop: stop.clone(),
        };
        let kubelet = tokio::spawn(kubelet.run());
        tokio::spawn(hpa::controller(state.clone(), metrics_port, stop.clone()));
        FakeApi {
            addr,
            service_addr,
            metrics_port,
            state,
            stop,
            kubelet,
            redis: Some(redis),
            _dir: dir,
        }
    }

    /// A kubeconfig naming this server (plain http, no credentials), namespace `loadgen`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: \
             http://{}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  \
             context:\n    cluster: fake\n    user: fake\n    namespace: {NAMESPACE}\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The Deployment as stored now.
    pub fn deployment(&self) -> Value {
        self.state.lock().unwrap().dep.clone()
    }

    /// Waits (bounded) until the kubelet has rolled out the current generation.
    pub async fn settled(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        let mut rx = self.state.lock().unwrap().subscribe();
        loop {
            {
                let s = self.state.lock().unwrap();
                let d = &s.dep;
                let n = d["spec"]["replicas"].as_i64();
                if d["status"]["observedGeneration"].as_i64() == Some(s.generation())
                    && d["status"]["updatedReplicas"].as_i64() == n
                    && s.pods.len() as i64 == n.unwrap_or(-1)
                {
                    return true;
                }
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// Stops the kubelet (its pods are torn down), Redis and the server.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let _ = (&mut self.kubelet).await;
        if let Some(r) = self.redis.take() {
            r.stop().await;
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Shared, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
            _ = stop.cancelled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| http::handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
