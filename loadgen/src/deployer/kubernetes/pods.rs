//! The pods of a step: the Ready, non-terminating pods of the Deployment's *new* ReplicaSet —
//! the one whose `deployment.kubernetes.io/revision` is the Deployment's own — found by its
//! `pod-template-hash` label. Pods of an older ReplicaSet that are still terminating (or, in a
//! scale-only step, never were replaced) are never counted or probed as the step's.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use super::KubeError;

/// The label the Deployment controller puts on a ReplicaSet and its pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision annotation the controller keeps equal on a Deployment and its new ReplicaSet.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// How often the pod list is read again while the step's pods are not all Ready.
const PODS_POLL: Duration = Duration::from_millis(250);

/// One pod of a step: where its metrics are and where it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    pub name: String,
    pub namespace: String,
    /// The node the pod ran on (`spec.nodeName`).
    pub node: Option<String>,
    pub ip: String,
    /// `http://IP:metrics_port` (`/metrics` lives there).
    pub metrics_url: String,
}

/// The Deployment's label selector as a query (`matchLabels` only: what a Deployment made by
/// these manifests has; `matchExpressions` is refused rather than ignored).
pub fn selector(dep: &Deployment) -> Result<String, KubeError> {
    let sel = dep.spec.as_ref().map(|s| &s.selector);
    if sel.is_some_and(|s| s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())) {
        return Err(KubeError::Selector(
            "spec.selector.matchExpressions is not supported (use matchLabels)".into(),
        ));
    }
    let labels = sel.and_then(|s| s.match_labels.as_ref());
    let q: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if q.is_empty() {
        return Err(KubeError::Selector(
            "spec.selector has no matchLabels".into(),
        ));
    }
    Ok(q.join(","))
}

/// The `pod-template-hash` of `dep`'s new ReplicaSet: owned by it, at its revision.
pub async fn new_replica_set_hash(
    api: &Api<ReplicaSet>,
    dep: &Deployment,
) -> Result<String, KubeError> {
    let name = dep.metadata.name.clone().unwrap_or_default();
    let revision = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION));
    let uid = dep.metadata.uid.as_deref();
    let list = api
        .list(&ListParams::default().labels(&selector(dep)?))
        .await
        .map_err(KubeError::api("list replicasets of", &name))?;
    let owned = |rs: &ReplicaSet| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Deployment" && Some(o.uid.as_str()) == uid)
    };
    list.items
        .iter()
        .filter(|rs| owned(rs))
        .find(|rs| {
            revision.is_some()
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    == revision
        })
        .and_then(|rs| rs.metadata.labels.as_ref()?.get(POD_TEMPLATE_HASH).cloned())
        .ok_or_else(|| KubeError::NoReplicaSet {
            deployment: name,
            revision: revision.cloned().unwrap_or_else(|| "none".into()),
        })
}

/// The step's pods among `pods`: of the ReplicaSet `hash`, not terminating, Ready, with an IP.
pub fn step_pods(pods: &[Pod], hash: &str, metrics_port: u16) -> Vec<PodTarget> {
    let mut out: Vec<PodTarget> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH))
                == Some(&hash.to_string())
        })
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| is_ready(p))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some(PodTarget {
                name: p.metadata.name.clone().unwrap_or_default(),
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                metrics_url: format!("http://{}:{metrics_port}", url_host(&ip)),
                ip,
            })
        })
        .collect();
    // A stable order: replica i is the same pod in the before and after snapshots.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn url_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Lists the pods until `replicas` of them are the step's, or `deadline`.
pub async fn wait_step_pods(
    api: &Api<Pod>,
    selector: &str,
    hash: &str,
    replicas: usize,
    metrics_port: u16,
    deadline: Instant,
) -> Result<Vec<PodTarget>, KubeError> {
    let labels = format!("{selector},{POD_TEMPLATE_HASH}={hash}");
    loop {
        let list = api
            .list(&ListParams::default().labels(&labels))
            .await
            .map_err(KubeError::api("list pods", &labels))?;
        let found = step_pods(&list.items, hash, metrics_port);
        if found.len() == replicas {
            return Ok(found);
        }
        if Instant::now() + PODS_POLL > deadline {
            return Err(KubeError::Pods {
                selector: labels,
                expected: replicas,
                found: found.len(),
            });
        }
        tokio::time::sleep(PODS_POLL).await;
    }
}

/// Waits until the Service accepts a connection. Pods are Ready before their endpoints reach
/// the proxy (EndpointSlice controller, then kube-proxy's next sync); a Service with no ready
/// endpoint refuses connections meanwhile, and a step started then would measure that instead
/// of the service.
pub async fn wait_routed(service_url: &str, deadline: Instant) -> Result<(), KubeError> {
    let not_routed = |last: String| KubeError::NotRouted {
        url: service_url.to_string(),
        last,
    };
    let uri: hyper::Uri = service_url
        .parse()
        .map_err(|e| not_routed(format!("not a url: {e}")))?;
    let host = uri.host().unwrap_or_default().to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await;
        let last = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 1 s".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(not_routed(last));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
