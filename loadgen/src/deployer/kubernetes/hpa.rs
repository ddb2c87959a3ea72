//! HorizontalPodAutoscalers. Before the first step, an HPA of someone else's that targets the
//! Deployment is refused, naming it: it sets `spec.replicas` itself and would fight every
//! step (a fixed-replica step's count, and an autoscale step's own HPA). An autoscale step
//! applies loadgen's own HPA ([`name`], labelled [`MANAGED_BY`]), which is deleted before the
//! next step deploys, at restore, and — when a killed run left it — before the first step.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, ListParams, Patch};
use serde_json::{json, Value};

use super::spec::FIELD_MANAGER;
use super::KubeError;
use crate::plan::Autoscale;

/// The label marking an HPA as loadgen's (and the value it carries).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", FIELD_MANAGER);

/// The name of loadgen's HPA for `deployment`.
pub fn name(deployment: &str) -> String {
    format!("loadgen-{deployment}")
}

fn ours(h: &HorizontalPodAutoscaler) -> bool {
    h.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

fn scales(h: &HorizontalPodAutoscaler, deployment: &str) -> bool {
    h.spec.as_ref().is_some_and(|s| {
        let r = &s.scale_target_ref;
        r.kind == "Deployment" && r.name == deployment
    })
}

/// The HPAs in the namespace that scale Deployment `deployment`: (someone else's, loadgen's
/// own left by a killed run).
pub async fn targeting(
    api: &Api<HorizontalPodAutoscaler>,
    deployment: &str,
) -> Result<(Option<String>, Option<String>), KubeError> {
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api(
            "list horizontalpodautoscalers for",
            deployment,
        ))?;
    let named = |want_ours: bool| {
        list.items
            .iter()
            .filter(|h| scales(h, deployment) && ours(h) == want_ours)
            .find_map(|h| h.metadata.name.clone())
    };
    Ok((named(false), named(true)))
}

/// The server-side-apply body of loadgen's HPA for an autoscale step (autoscaling/v2, CPU
/// utilisation of the pods' request; the behaviour is the cluster's default, which is what a
/// step measures).
pub fn apply_body(namespace: &str, deployment: &str, a: &Autoscale) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name(deployment),
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
        },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment },
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": a.cpu_utilization_pct },
                },
            }],
        },
    })
}

/// Applies loadgen's HPA for an autoscale step (created or updated).
pub async fn apply(
    api: &Api<HorizontalPodAutoscaler>,
    namespace: &str,
    deployment: &str,
    a: &Autoscale,
) -> Result<(), KubeError> {
    let hpa = name(deployment);
    let body = apply_body(namespace, deployment, a);
    api.patch(&hpa, &super::apply_params(), &Patch::Apply(&body))
        .await
        .map_err(KubeError::api("apply horizontalpodautoscaler", &hpa))?;
    Ok(())
}

/// Deletes loadgen's HPA; `false` when there was none.
pub async fn delete(
    api: &Api<HorizontalPodAutoscaler>,
    deployment: &str,
) -> Result<bool, KubeError> {
    let hpa = name(deployment);
    match api.delete(&hpa, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(KubeError::Api {
            what: "delete horizontalpodautoscaler",
            name: hpa,
            source: e,
        }),
    }
}
