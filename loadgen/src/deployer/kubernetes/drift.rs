//! What changed under a step that loadgen did not change, and what the pods ran. Before the
//! first step: a Deployment a GitOps controller manages (Argo CD, Flux) would have loadgen's
//! changes reverted mid-campaign — said, with what to do. When a step's pods are Ready: the CPU
//! request and limit each pod actually runs with (a LimitRange default or a VPA may have
//! changed the template's) — said when they differ from the step's. After the attack: a new
//! generation of the Deployment (someone scaled or edited it: the manager is named), a step pod
//! deleted, evicted or replaced, a container restarted — each makes the step invalid, since it
//! measured another shape than the one it reports.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::spec::{millicores, FIELD_MANAGER};
use super::KubeError;

/// Managers and labels of the GitOps controllers users meet: Argo CD's application controller
/// and Flux's kustomize and helm controllers.
const GITOPS_MANAGERS: [&str; 4] = [
    "argocd-controller",
    "argocd-application-controller",
    "kustomize-controller",
    "helm-controller",
];
const GITOPS_MARKS: [&str; 4] = [
    "argocd.argoproj.io/tracking-id",
    "argocd.argoproj.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
];

/// A warning when `dep` is managed by a GitOps controller (its tracking annotation or label,
/// or a field manager of its), with what to do; `None` otherwise.
pub fn gitops(dep: &Deployment) -> Option<String> {
    let meta = &dep.metadata;
    let marks = meta
        .annotations
        .iter()
        .flatten()
        .chain(meta.labels.iter().flatten())
        .map(|(k, _)| k.as_str())
        .filter(|k| GITOPS_MARKS.contains(k));
    let managers = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .filter(|m| GITOPS_MANAGERS.contains(m));
    let seen: Vec<&str> = marks.chain(managers).collect();
    if seen.is_empty() {
        return None;
    }
    Some(format!(
        "deployment {} is managed by a GitOps controller ({}): it may revert the campaign's \
         replicas and CPU mid-step, and such a step is then invalid; pause its self-heal / \
         reconciliation for the run (Argo CD: syncPolicy.automated.selfHeal = false; Flux: \
         `flux suspend`), or run the campaign on a copy in another namespace",
        meta.name.as_deref().unwrap_or_default(),
        seen.join(", ")
    ))
}

/// One step pod as it was when the step began.
#[derive(Debug, Clone, PartialEq)]
struct PodState {
    uid: String,
    restarts: i32,
}

/// A step's view of its Deployment and pods when they were Ready, to compare after the attack.
#[derive(Clone)]
pub struct DriftWatch {
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    deployment: String,
    /// The step's pods' label selector (with the ReplicaSet's hash).
    labels: String,
    generation: i64,
    pods_then: BTreeMap<String, PodState>,
    /// An autoscale step's HPA changes the replicas, and so the generation, by design.
    autoscale: bool,
}

impl std::fmt::Debug for DriftWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftWatch")
            .field("deployment", &self.deployment)
            .field("generation", &self.generation)
            .field("pods_then", &self.pods_then)
            .finish_non_exhaustive()
    }
}

/// What the step's pods run, against the step's CPU limit (`None`: unlimited) — one line per
/// pod whose container's limit differs — and the watch for drift after the attack.
pub struct Ran {
    pub watch: DriftWatch,
    pub differs: Vec<String>,
}

/// Records the step's pods (`labels`) and the Deployment's generation once they are Ready, and
/// compares each pod's `container` CPU limit with `limit_cores`.
pub async fn begin(
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    (deployment, container): (&str, &str),
    labels: String,
    generation: i64,
    (limit_cores, autoscale): (Option<f64>, bool),
) -> Result<Ran, KubeError> {
    let list = pods
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(KubeError::api("list pods", &labels))?;
    let mut pods_then = BTreeMap::new();
    let mut differs = Vec::new();
    let want = limit_cores.map(|c| (c * 1000.0).round() as i64);
    for p in list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let name = p.metadata.name.clone().unwrap_or_default();
        let (request, limit) = cpu_of(p, container);
        if limit.as_deref().and_then(millicores) != want {
            differs.push(format!(
                "pod {name} runs with cpu request {} and limit {} where the step asked for {} \
                 (a LimitRange default, a VPA or an admission webhook changed the template's): \
                 the step measured what the pod ran",
                request.as_deref().unwrap_or("none"),
                limit.as_deref().unwrap_or("none"),
                want.map_or("no limit".to_string(), |m| format!("{m}m")),
            ));
        }
        let state = PodState {
            uid: p.metadata.uid.clone().unwrap_or_default(),
            restarts: restarts(p),
        };
        pods_then.insert(name, state);
    }
    let watch = DriftWatch {
        deployments,
        pods,
        deployment: deployment.to_string(),
        labels,
        generation,
        pods_then,
        autoscale,
    };
    Ok(Ran { watch, differs })
}

impl DriftWatch {
    /// What changed since [`begin`] that loadgen did not change, one line each (empty: nothing).
    /// A read that fails is itself a line: a step whose shape cannot be confirmed says so.
    pub async fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.deployments.get(&self.deployment).await {
            Ok(dep) => out.extend(self.new_generation(&dep)),
            Err(e) => out.push(format!(
                "deployment {}: cannot read it: {e}",
                self.deployment
            )),
        }
        match self
            .pods
            .list(&ListParams::default().labels(&self.labels))
            .await
        {
            Ok(list) => out.extend(self.pod_changes(&list.items)),
            Err(e) => out.push(format!("pods {}: cannot list them: {e}", self.labels)),
        }
        out
    }

    fn new_generation(&self, dep: &Deployment) -> Option<String> {
        let now = dep.metadata.generation.unwrap_or(0);
        if self.autoscale || now == self.generation {
            return None;
        }
        Some(format!(
            "deployment {} changed during the step (generation {} → {now}){}",
            self.deployment,
            self.generation,
            last_writer(dep).map_or(String::new(), |w| format!(", last written by {w}"))
        ))
    }

    fn pod_changes(&self, now: &[Pod]) -> Vec<String> {
        let by_name: BTreeMap<&str, &Pod> = now
            .iter()
            .filter_map(|p| Some((p.metadata.name.as_deref()?, p)))
            .collect();
        let mut out = Vec::new();
        for (name, then) in &self.pods_then {
            let Some(p) = by_name.get(name.as_str()) else {
                if !self.autoscale {
                    out.push(format!("pod {name} was deleted during the step"));
                }
                continue;
            };
            if p.metadata.uid.as_deref() != Some(then.uid.as_str()) {
                out.push(format!("pod {name} was replaced during the step"));
            } else if let Some(reason) = evicted(p) {
                out.push(format!("pod {name} was evicted during the step: {reason}"));
            } else if p.metadata.deletion_timestamp.is_some() && !self.autoscale {
                out.push(format!("pod {name} was being deleted during the step"));
            }
            let restarts = restarts(p);
            if restarts > then.restarts {
                out.push(format!(
                    "pod {name}: a container restarted {} time(s) during the step{}",
                    restarts - then.restarts,
                    last_termination(p).map_or(String::new(), |t| format!(" (last: {t})"))
                ));
            }
        }
        out
    }
}

/// The container's CPU request and limit as the pod runs them (quantities as written).
fn cpu_of(p: &Pod, container: &str) -> (Option<String>, Option<String>) {
    let Some(c) = p
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
    else {
        return (None, None);
    };
    let get = |m: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| { m.and_then(|m| m.get("cpu")).map(|q| q.0.clone()) };
    let r = c.resources.as_ref();
    (
        get(r.and_then(|r| r.requests.as_ref())),
        get(r.and_then(|r| r.limits.as_ref())),
    )
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

fn evicted(p: &Pod) -> Option<String> {
    let s = p.status.as_ref()?;
    (s.reason.as_deref() == Some("Evicted")).then(|| s.message.clone().unwrap_or_default())
}

fn last_termination(p: &Pod) -> Option<String> {
    let cs = p.status.as_ref()?.container_statuses.as_ref()?;
    cs.iter().find_map(|c| {
        let t = c.last_state.as_ref()?.terminated.as_ref()?;
        Some(format!(
            "{} (exit code {})",
            t.reason.as_deref().unwrap_or("terminated"),
            t.exit_code
        ))
    })
}

/// The manager that wrote the Deployment last, other than loadgen: its name, operation and
/// subresource (`kubectl` `Update` of `scale`), from `managedFields`.
fn last_writer(dep: &Deployment) -> Option<String> {
    let fields = dep.metadata.managed_fields.as_ref()?;
    // The status is the controllers' report, not a change of the spec.
    let latest = fields
        .iter()
        .filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER))
        .filter(|m| m.subresource.as_deref() != Some("status"))
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))?;
    let mut who = format!(
        "{} ({}",
        latest.manager.as_deref().unwrap_or("an unnamed manager"),
        latest.operation.as_deref().unwrap_or("a write")
    );
    if let Some(sub) = latest.subresource.as_deref().filter(|s| !s.is_empty()) {
        who.push_str(&format!(" of /{sub}"));
    }
    if let Some(t) = &latest.time {
        who.push_str(&format!(" at {}", t.0));
    }
    who.push(')');
    Some(who)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(meta: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({ "metadata": meta })).unwrap()
    }

    #[test]
    fn a_gitops_managed_deployment_is_named_with_what_to_do() {
        let argo = dep(json!({ "name": "web",
            "annotations": { "argocd.argoproj.io/tracking-id": "app:apps/Deployment:ns/web" } }));
        let w = gitops(&argo).expect("argo cd");
        assert!(
            w.contains("argocd.argoproj.io/tracking-id") && w.contains("selfHeal"),
            "{w}"
        );
        let flux = dep(json!({ "name": "web", "managedFields": [
            { "manager": "kustomize-controller", "operation": "Apply" }] }));
        assert!(gitops(&flux).is_some_and(|w| w.contains("kustomize-controller")));
        let plain = dep(
            json!({ "name": "web", "labels": { "app.kubernetes.io/instance": "web" },
            "managedFields": [{ "manager": "kubectl-client-side-apply", "operation": "Update" }] }),
        );
        assert_eq!(gitops(&plain), None);
    }

    #[test]
    fn the_last_writer_is_the_newest_manager_but_loadgen() {
        let d = dep(json!({ "name": "web", "managedFields": [
            { "manager": "kubectl-client-side-apply", "operation": "Update",
              "time": "2026-12-06T10:00:00Z" },
            { "manager": "kubectl", "operation": "Update", "subresource": "scale",
              "time": "2026-12-06T10:05:00Z" },
            { "manager": "loadgen", "operation": "Apply", "time": "2026-12-06T10:06:00Z" },
            { "manager": "kube-controller-manager", "operation": "Update",
              "subresource": "status", "time": "2026-12-06T10:07:00Z" }] }));
        let w = last_writer(&d).unwrap();
        assert!(
            w.starts_with("kubectl (Update of /scale at 2026-12-06T10:05:00"),
            "{w}"
        );
    }
}
