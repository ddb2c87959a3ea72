//! The pods bound to this node, watched: a new one gets a supervisor task, a deletion
//! (`deletionTimestamp` set, or the object gone) is passed to its supervisor with the grace
//! period, and a pod the stand-in never ran that is already being deleted is removed at once.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::pod::{supervise, Stop};
use crate::Runtime;

/// Watches until `stop`, then shuts every pod down (their objects stay).
pub async fn run(rt: Arc<Runtime>, stop: CancellationToken) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::all(rt.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", rt.config.node_name));
    let mut events = std::pin::pin!(watcher::watcher(api, cfg).default_backoff());
    let mut pods: HashMap<String, PodChannels> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let event = tokio::select! {
            e = events.try_next() => e,
            _ = stop.cancelled() => break,
        };
        match event {
            Ok(Some(Event::Apply(pod) | Event::InitApply(pod))) => {
                on_pod(&rt, pod, &mut pods, &mut tasks);
            }
            Ok(Some(Event::Delete(pod))) => {
                let uid = pod.metadata.uid.unwrap_or_default();
                if let Some(ch) = pods.remove(&uid) {
                    let _ = ch.stop.send(Some(Stop::Delete(0)));
                }
            }
            Ok(Some(Event::Init | Event::InitDone)) => {}
            Ok(None) => break,
            Err(e) => tracing::warn!("watching pods: {e}"),
        }
    }
    for ch in pods.values() {
        let _ = ch.stop.send(Some(Stop::Shutdown));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// What the watch tells a pod's supervisor: stop (and how), and the object as it changes.
struct PodChannels {
    stop: watch::Sender<Option<Stop>>,
    updates: watch::Sender<Pod>,
}

fn on_pod(
    rt: &Arc<Runtime>,
    pod: Pod,
    pods: &mut HashMap<String, PodChannels>,
    tasks: &mut JoinSet<()>,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
    if let Some(ch) = pods.get(&uid) {
        if deleting {
            let _ = ch.stop.send(Some(Stop::Delete(grace)));
        } else {
            let _ = ch.updates.send(pod);
        }
        return;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if deleting {
        // Never run here (or ran before a restart of the stand-in): nothing to stop.
        tasks.spawn(remove(rt.clone(), pod));
        return;
    }
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return;
    }
    let (stop, stop_rx) = watch::channel(None);
    let (updates, updates_rx) = watch::channel(pod.clone());
    pods.insert(uid, PodChannels { stop, updates });
    tasks.spawn(supervise(rt.clone(), pod, stop_rx, updates_rx));
}

async fn remove(rt: Arc<Runtime>, pod: Pod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(rt.client.clone(), &ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api.delete(&name, &dp).await {
        tracing::debug!("removing pod {ns}/{name}: {e}");
    }
}
