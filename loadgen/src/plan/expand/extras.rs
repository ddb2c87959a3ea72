//! Thresholds (`[[thresholds]]`) and the Prometheus cross-check (`[prometheus]`, including its
//! PromQL overrides, checked here so `validate` rejects what `run` would).

use super::Expander;
use crate::plan::{PrometheusMode, Step};
use crate::scenario::{PrometheusModeSpec, ScenarioError};
use loadgen_model::threshold::{Metric, Threshold};

/// The cross-check settings of a plan: the mode and the PromQL overrides by query name.
type PrometheusSettings = (
    Option<PrometheusMode>,
    std::collections::BTreeMap<String, String>,
);

impl Expander<'_> {
    pub(super) fn thresholds(&self, steps: &[Step]) -> Result<Vec<Threshold>, ScenarioError> {
        let mut out = Vec::new();
        for t in &self.sc.thresholds {
            let spec = t.get_ref();
            let name = spec.metric.get_ref().trim();
            let Some(metric) = Metric::parse(name) else {
                return self.err(
                    spec.metric.span(),
                    "thresholds.metric",
                    format!("expected one of {}, got \"{name}\"", Metric::names()),
                );
            };
            let (min, max) = (spec.min.map(|n| n.0), spec.max.map(|n| n.0));
            match (min, max) {
                (None, None) => {
                    return self.err(t.span(), "thresholds.min", "required: min, max or both")
                }
                (Some(a), Some(b)) if a > b => {
                    return self.err(
                        t.span(),
                        "thresholds.min",
                        format!("expected min <= max, got min {a} > max {b}"),
                    )
                }
                _ => {}
            }
            let mut globs = Vec::new();
            for g in &spec.steps {
                let p = g.get_ref().trim();
                if !steps.iter().any(|s| s.matches(p)) {
                    return self.err(
                        g.span(),
                        "thresholds.steps",
                        format!(
                            "\"{p}\" matches no step (steps are named campaign/name, e.g. \"{}\")",
                            steps
                                .first()
                                .map(|s| s.id().to_string())
                                .unwrap_or_default()
                        ),
                    );
                }
                globs.push(p.to_string());
            }
            out.push(Threshold {
                metric,
                min,
                max,
                steps: globs,
            });
        }
        Ok(out)
    }

    pub(super) fn prometheus(&self) -> Result<PrometheusSettings, ScenarioError> {
        let Some(p) = &self.sc.prometheus else {
            return Ok((None, Default::default()));
        };
        let spec = p.get_ref();
        let mode = match (spec.mode.get_ref(), &spec.url) {
            (PrometheusModeSpec::Managed, None) => PrometheusMode::Managed,
            (PrometheusModeSpec::Managed, Some(u)) => {
                return self.err(
                    u.span(),
                    "prometheus.url",
                    "only applies to mode = \"url\" (a managed Prometheus gets its own port)",
                )
            }
            (PrometheusModeSpec::Url, None) => {
                return self.err(
                    p.span(),
                    "prometheus.url",
                    "required key is missing (mode = \"url\" needs the server's URL)",
                )
            }
            (PrometheusModeSpec::Url, Some(u)) => PrometheusMode::url(u.get_ref().trim())
                .or_else(|m| self.err(u.span(), "prometheus.url", m))?,
        };
        for (name, template) in &spec.queries {
            let one = std::collections::BTreeMap::from([(name.clone(), template.clone())]);
            crate::promql::validate_overrides(&one).or_else(|e| {
                self.err(
                    p.span(),
                    &format!("prometheus.queries.{name}"),
                    e.to_string(),
                )
            })?;
        }
        Ok((Some(mode), spec.queries.clone()))
    }
}
