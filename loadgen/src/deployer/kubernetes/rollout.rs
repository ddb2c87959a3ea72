//! Waiting for a rollout: the condition that a patched Deployment has rolled out, and a bounded
//! wait on it (a get, then a watch from that object's `resourceVersion`, so no change between
//! the two is missed).
//!
//! Right after a patch the status still describes the *previous* rollout, complete and
//! healthy; only `status.observedGeneration` ≥ the generation the patch produced says the
//! controller has seen the new spec. The counts must then all equal the step's replicas:
//! `replicas` (no old pod left), `updatedReplicas` (all of the new template), and
//! `availableReplicas`, with none unavailable.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, WatchEvent, WatchParams};

use super::{trouble, KubeError};

/// The longest a watch request may stay open before the wait re-reads the object (the API
/// server's own cap on `timeoutSeconds` is of this order).
const WATCH_CHUNK: Duration = Duration::from_secs(60);
/// The pause before reading again after a watch that ended without an event, so a server that
/// closes watches at once is not polled in a busy loop.
const WATCH_RETRY: Duration = Duration::from_millis(250);

/// What is still pending in `dep`'s rollout to `replicas` after the patch that produced
/// `generation`; `Ok` when it is complete. A Deployment that gave up
/// (`ProgressDeadlineExceeded`) is an error at once: waiting longer cannot help.
pub fn progress(dep: &Deployment, generation: i64, replicas: i32) -> Result<(), Pending> {
    let status = dep.status.clone().unwrap_or_default();
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(c) = stalled {
        return Err(Pending::Failed(c.message.clone().unwrap_or_default()));
    }
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Err(Pending::Waiting(format!(
            "the controller has not seen generation {generation} yet (observedGeneration {observed})"
        )));
    }
    let spec_replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let counts = [
        ("spec.replicas", Some(spec_replicas)),
        ("replicas", status.replicas),
        ("updatedReplicas", status.updated_replicas),
        ("availableReplicas", status.available_replicas),
    ];
    let off: Vec<String> = counts
        .iter()
        .filter(|(_, v)| v.unwrap_or(0) != replicas)
        .map(|(k, v)| format!("{k} {}", v.unwrap_or(0)))
        .collect();
    let unavailable = status.unavailable_replicas.unwrap_or(0);
    if off.is_empty() && unavailable == 0 {
        return Ok(());
    }
    let mut what = off;
    if unavailable != 0 {
        what.push(format!("unavailableReplicas {unavailable}"));
    }
    Err(Pending::Waiting(format!(
        "expected {replicas} everywhere, got {}",
        what.join(", ")
    )))
}

/// Why a rollout is not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Still going: what is not there yet.
    Waiting(String),
    /// The controller gave up.
    Failed(String),
}

/// Waits until Deployment `name` has rolled out `generation` to `replicas`, within `bound`;
/// fails at once, with the cluster's reason, when its pods show it cannot (see [`trouble`]).
pub async fn wait(
    api: &Api<Deployment>,
    pods: &Api<Pod>,
    name: &str,
    generation: i64,
    replicas: i32,
    bound: Duration,
) -> Result<Deployment, KubeError> {
    let mut last = "nothing read yet".to_string();
    let waited = tokio::time::timeout(bound, async {
        tokio::select! {
            r = watch_rollout(api, name, generation, replicas, &mut last) => r,
            why = trouble::watch(api, pods, name) => Err(KubeError::RolloutFailed {
                deployment: name.to_string(),
                why,
            }),
        }
    })
    .await;
    match waited {
        Ok(result) => result,
        Err(_) => Err(KubeError::RolloutTimeout {
            deployment: name.to_string(),
            replicas,
            bound,
            state: last,
        }),
    }
}

/// The wait itself: a get, then a watch from that object's `resourceVersion`, until complete.
async fn watch_rollout(
    api: &Api<Deployment>,
    name: &str,
    generation: i64,
    replicas: i32,
    last: &mut String,
) -> Result<Deployment, KubeError> {
    {
        loop {
            let dep = api.get(name).await.map_err(KubeError::api("get", name))?;
            if check(&dep, generation, replicas, last)? {
                return Ok(dep);
            }
            let rv = dep.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(WATCH_CHUNK.as_secs() as u32);
            let mut events = api
                .watch(&wp, &rv)
                .await
                .map_err(KubeError::api("watch", name))?
                .boxed();
            let mut seen = 0;
            while let Some(event) = events
                .try_next()
                .await
                .map_err(KubeError::api("watch", name))?
            {
                seen += 1;
                match event {
                    WatchEvent::Added(d) | WatchEvent::Modified(d) => {
                        if check(&d, generation, replicas, last)? {
                            return Ok(d);
                        }
                    }
                    WatchEvent::Deleted(_) => return Err(KubeError::Deleted(name.to_string())),
                    WatchEvent::Bookmark(_) => {}
                    // 410 Gone: the resourceVersion is too old; read the object afresh.
                    WatchEvent::Error(e) if e.code == 410 => break,
                    WatchEvent::Error(e) => {
                        return Err(KubeError::Watch(format!("{}: {}", e.code, e.message)))
                    }
                }
            }
            if seen == 0 {
                tokio::time::sleep(WATCH_RETRY).await;
            }
        }
    }
}

/// True when complete; records what is pending in `last`; an error when the rollout failed.
fn check(
    dep: &Deployment,
    generation: i64,
    replicas: i32,
    last: &mut String,
) -> Result<bool, KubeError> {
    match progress(dep, generation, replicas) {
        Ok(()) => Ok(true),
        Err(Pending::Waiting(w)) => {
            *last = w;
            Ok(false)
        }
        Err(Pending::Failed(why)) => Err(KubeError::RolloutFailed {
            deployment: dep.metadata.name.clone().unwrap_or_default(),
            why,
        }),
    }
}
