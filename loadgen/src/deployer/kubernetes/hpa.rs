//! The pre-flight on HorizontalPodAutoscalers: an HPA that targets the Deployment sets
//! `spec.replicas` itself and would fight every fixed-replica step, so such a plan is refused
//! before anything is changed, naming the HPA.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ListParams};

use super::KubeError;

/// The name of an HPA in the namespace that scales Deployment `deployment`, if any.
pub async fn targeting(
    api: &Api<HorizontalPodAutoscaler>,
    deployment: &str,
) -> Result<Option<String>, KubeError> {
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api(
            "list horizontalpodautoscalers for",
            deployment,
        ))?;
    Ok(list.items.iter().find_map(|h| {
        let r = &h.spec.as_ref()?.scale_target_ref;
        (r.kind == "Deployment" && r.name == deployment)
            .then(|| h.metadata.name.clone().unwrap_or_default())
    }))
}
