//! Autoscale steps (`autoscale = { min, max, cpu_utilization }` on a `[[campaign.step]]`): the
//! step's replica count is the HPA's to choose, so the step may not set one, and the HPA's
//! utilisation is a percentage of the pods' CPU request, so the step must set its CPU limit
//! (loadgen applies request = limit). Only a Kubernetes Deployment has an HPA.

use toml::Spanned;

use super::Expander;
use crate::plan::Autoscale;
use crate::scenario::{AutoscaleTable, ScenarioError, StepSpec, TargetKind};

/// The highest utilisation target accepted, in percent: an HPA may aim above the request (a
/// pod may burst past it without a limit), but loadgen always sets limit = request, so above
/// 100 % the HPA could never scale up; 100 is the useful top.
const MAX_UTILIZATION_PCT: u64 = 100;

impl Expander<'_> {
    /// The step's HPA, when it has `autoscale`; errors name the key.
    pub(super) fn autoscale(
        &self,
        step: &Spanned<StepSpec>,
    ) -> Result<Option<Autoscale>, ScenarioError> {
        let spec = step.get_ref();
        let Some(table) = &spec.autoscale else {
            return Ok(None);
        };
        let key = "campaign.step.autoscale";
        if *self.sc.target.get_ref().kind.get_ref() != TargetKind::Kubernetes {
            return self.err(
                table.span(),
                key,
                "autoscale steps need [target] kind = \"kubernetes\": an HPA scales a \
                 Deployment, and this target has none (a local or url target keeps the \
                 step's fixed replica count)",
            );
        }
        if spec.replicas.is_some() {
            return self.err(
                table.span(),
                "campaign.step.replicas",
                "an autoscale step's replica count is chosen by its HPA between min and max; \
                 expected no replicas key",
            );
        }
        if spec.cpu_limit.and_then(|c| c.0).is_none() {
            return self.err(
                table.span(),
                "campaign.step.cpu_limit",
                "an autoscale step needs a CPU limit (cores): the HPA's cpu_utilization is a \
                 percentage of each pod's CPU request, which loadgen sets equal to the limit",
            );
        }
        self.autoscale_bounds(table).map(Some)
    }

    fn autoscale_bounds(
        &self,
        table: &Spanned<AutoscaleTable>,
    ) -> Result<Autoscale, ScenarioError> {
        let t = table.get_ref();
        let small = |c: &Spanned<crate::scenario::value::Count>, key: &str| {
            c.get_ref().small().ok_or_else(|| {
                self.src.error(
                    c.span(),
                    &format!("campaign.step.autoscale.{key}"),
                    format!("expected at most {} replicas", u32::MAX),
                )
            })
        };
        let (min, max) = (small(&t.min, "min")?, small(&t.max, "max")?);
        if max < min {
            return self.err(
                t.max.span(),
                "campaign.step.autoscale.max",
                format!("expected max ≥ min ({min}), got {max}"),
            );
        }
        let pct = t.cpu_utilization.get_ref().0;
        if pct > MAX_UTILIZATION_PCT {
            return self.err(
                t.cpu_utilization.span(),
                "campaign.step.autoscale.cpu_utilization",
                format!(
                    "expected a percentage of the CPU request from 1 to {MAX_UTILIZATION_PCT} \
                     (the limit equals the request, so a pod never uses more), got {pct}"
                ),
            );
        }
        Ok(Autoscale {
            min_replicas: min,
            max_replicas: max,
            cpu_utilization_pct: pct as u32,
        })
    }
}
