//! Watching an autoscale step scale: its HPA is applied as the attack starts (so second 0 is
//! the load's start on the minimum of pods, warmed up without an HPA), then once a second
//! through the attack the Deployment's
//! `status.replicas` and `readyReplicas` and the HPA's `desiredReplicas` and current CPU
//! utilisation, read with two GETs. A read that fails or is slower than the period leaves its
//! fields `None` for that second (never 0), and the sampling goes on.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment as K8sDeployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::hpa;
use crate::plan::Autoscale;
use loadgen_model::result::ScalePoint;

/// How often the scaling state is sampled: the timeline's resolution.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What to read for one autoscale step.
#[derive(Clone)]
pub struct ScaleWatch {
    pub(super) deployments: Api<K8sDeployment>,
    pub(super) hpas: Api<HorizontalPodAutoscaler>,
    pub(super) namespace: String,
    pub(super) deployment: String,
    pub(super) autoscale: Autoscale,
}

impl std::fmt::Debug for ScaleWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaleWatch")
            .field("deployment", &self.deployment)
            .field("autoscale", &self.autoscale)
            .finish_non_exhaustive()
    }
}

impl ScaleWatch {
    /// Applies the step's HPA, then samples every [`SAMPLE_EVERY`] until `until` is
    /// cancelled; the task returns the samples in time order, or why the HPA could not be
    /// applied.
    pub fn start(
        self,
        until: CancellationToken,
    ) -> JoinHandle<Result<Vec<ScalePoint>, super::KubeError>> {
        tokio::spawn(async move {
            let t0 = Instant::now();
            hpa::apply(
                &self.hpas,
                &self.namespace,
                &self.deployment,
                &self.autoscale,
            )
            .await?;
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut points = Vec::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = until.cancelled() => return Ok(points),
                }
                let t_s = t0.elapsed().as_secs_f64().round() as u32;
                points.push(self.sample(t_s).await);
            }
        })
    }

    /// One sample, each read bounded by the period.
    pub async fn sample(&self, t_s: u32) -> ScalePoint {
        let hpa_name = hpa::name(&self.deployment);
        let (dep, hpa) = tokio::join!(
            tokio::time::timeout(SAMPLE_EVERY, self.deployments.get(&self.deployment)),
            tokio::time::timeout(SAMPLE_EVERY, self.hpas.get(&hpa_name))
        );
        let status = dep.ok().and_then(Result::ok).and_then(|d| d.status);
        let hpa = hpa.ok().and_then(Result::ok).and_then(|h| h.status);
        let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        ScalePoint {
            t_s,
            replicas: status.as_ref().and_then(|s| count(s.replicas)),
            // The API omits readyReplicas when none are ready.
            ready_replicas: status
                .as_ref()
                .map(|s| count(s.ready_replicas).unwrap_or(0)),
            // 0 is what an HPA the controller has not synced yet says (its minimum is ≥ 1):
            // not a decision.
            desired_replicas: hpa
                .as_ref()
                .and_then(|h| count(Some(h.desired_replicas)))
                .filter(|d| *d > 0),
            cpu_utilization_pct: hpa.as_ref().and_then(cpu_utilization),
        }
    }
}

/// The CPU utilisation an HPA's status reports (percent of the request), when it has one.
fn cpu_utilization(
    s: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus,
) -> Option<f64> {
    s.current_metrics.as_ref()?.iter().find_map(|m| {
        let r = m.resource.as_ref()?;
        (r.name == "cpu")
            .then_some(r.current.average_utilization)
            .flatten()
            .map(f64::from)
    })
}
