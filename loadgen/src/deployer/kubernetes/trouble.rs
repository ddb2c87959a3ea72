//! Why a rollout cannot succeed, read from what the cluster says about it: the Deployment's
//! `ReplicaFailure` condition (a ReplicaSet the API refused: quota, admission), a pod the
//! scheduler cannot place (`Unschedulable`: insufficient CPU, no matching node), a container
//! that cannot start or keeps crashing (image errors, `CrashLoopBackOff`, `OOMKilled`). A step
//! ends on these at once, with the cluster's own words, instead of waiting out its bound.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use super::pods::selector;

/// How long a pod may stay unschedulable before the rollout is failed: the scheduler retries
/// when resources free up (an old pod terminating), and a cluster autoscaler may add a node;
/// neither shows within a few seconds, a full node does.
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(5);
/// How often pods are looked at while a rollout is waited for.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Container states that do not get better by waiting.
const BROKEN: [&str; 8] = [
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What is wrong with one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The scheduler cannot place it (may clear: see [`UNSCHEDULABLE_GRACE`]).
    Unschedulable(String),
    /// A container cannot start or keeps failing.
    Broken(String),
}

/// The trouble of `pod`, if any (a pod being deleted has none: it is on its way out).
pub fn of_pod(pod: &Pod) -> Option<Trouble> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        let msg = c.message.clone().unwrap_or_default();
        return Some(Trouble::Unschedulable(format!(
            "pod {name} cannot be scheduled: {msg}"
        )));
    }
    for c in status.container_statuses.iter().flatten() {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        let Some(w) = waiting.filter(|w| BROKEN.contains(&w.reason.as_deref().unwrap_or("")))
        else {
            continue;
        };
        let mut why = format!(
            "pod {name}: container {} {}",
            c.name,
            w.reason.as_deref().unwrap_or("")
        );
        if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
            why.push_str(&format!(": {m}"));
        }
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        if let Some(t) = last {
            why.push_str(&format!(
                " (last exit {}{})",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            ));
        }
        return Some(Trouble::Broken(why));
    }
    None
}

/// The Deployment's `ReplicaFailure` condition, when true.
pub fn replica_failure(dep: &Deployment) -> Option<String> {
    let status = dep.status.as_ref()?;
    let c = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
    Some(format!(
        "{}: {}",
        c.reason.as_deref().unwrap_or("ReplicaFailure"),
        c.message.as_deref().unwrap_or("")
    ))
}

/// Watches the Deployment's pods until one shows a trouble that waiting cannot cure; returns
/// why. Runs until dropped otherwise (the rollout wait races it).
pub async fn watch(deployments: &Api<Deployment>, pods: &Api<Pod>, name: &str) -> String {
    let mut unschedulable_since: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let Ok(dep) = deployments.get(name).await else {
            continue;
        };
        if let Some(why) = replica_failure(&dep) {
            return why;
        }
        let Ok(sel) = selector(&dep) else {
            continue;
        };
        let Ok(list) = pods.list(&ListParams::default().labels(&sel)).await else {
            continue;
        };
        let mut still = HashMap::new();
        for pod in &list.items {
            match of_pod(pod) {
                Some(Trouble::Broken(why)) => return why,
                Some(Trouble::Unschedulable(why)) => {
                    let key = pod.metadata.name.clone().unwrap_or_default();
                    let since = *unschedulable_since.get(&key).unwrap_or(&Instant::now());
                    if since.elapsed() >= UNSCHEDULABLE_GRACE {
                        return why;
                    }
                    still.insert(key, since);
                }
                None => {}
            }
        }
        unschedulable_since = still;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "web-1" }, "status": status }))
            .unwrap()
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let p = pod(
            json!({ "conditions": [{ "type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient cpu." }] }),
        );
        assert_eq!(
            of_pod(&p),
            Some(Trouble::Unschedulable(
                "pod web-1 cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu."
                    .into()
            ))
        );
    }

    #[test]
    fn a_crash_loop_names_the_container_and_its_last_exit() {
        let p = pod(
            json!({ "containerStatuses": [{ "name": "app", "image": "x", "imageID": "",
            "ready": false, "restartCount": 2,
            "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 20s" } },
            "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled" } } }] }),
        );
        assert_eq!(
            of_pod(&p),
            Some(Trouble::Broken(
                "pod web-1: container app CrashLoopBackOff: back-off 20s (last exit 137, OOMKilled)"
                    .into()
            ))
        );
    }

    #[test]
    fn starting_and_deleted_pods_are_fine() {
        let creating = pod(json!({ "containerStatuses": [{ "name": "app", "image": "x",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ContainerCreating" } } }] }));
        assert_eq!(of_pod(&creating), None);
        let mut gone = pod(
            json!({ "conditions": [{ "type": "PodScheduled", "status": "False",
            "reason": "Unschedulable" }] }),
        );
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(of_pod(&gone), None);
    }

    #[test]
    fn a_refused_replica_set_is_a_failure() {
        let d: Deployment = serde_json::from_value(json!({ "metadata": { "name": "web" },
            "status": { "conditions": [{ "type": "ReplicaFailure", "status": "True",
                "reason": "FailedCreate", "message": "pods \"web-1\" is forbidden: exceeded quota" }] } }))
        .unwrap();
        assert_eq!(
            replica_failure(&d).as_deref(),
            Some("FailedCreate: pods \"web-1\" is forbidden: exceeded quota")
        );
    }
}
