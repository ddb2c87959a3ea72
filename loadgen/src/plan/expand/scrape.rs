//! What a managed Prometheus scrapes on a user's service: `[prometheus] scrape`, one URL per
//! replica with placeholders, or else the `metric` counter's own URL. Refused, with its key,
//! where it cannot apply: a Prometheus of the user's finds its own targets, and polymetrie's
//! replicas are scraped at their admin port.

use super::Expander;
use crate::plan::counter::Counter;
use crate::plan::template::{Context, Template};
use crate::plan::{PrometheusMode, Target};
use crate::scenario::ScenarioError;

impl Expander<'_> {
    /// `target` with the scrape URL of its replicas set when a managed Prometheus runs.
    pub(super) fn scrape(
        &self,
        target: Target,
        prometheus: Option<&PrometheusMode>,
        counter: &Counter,
    ) -> Result<Target, ScenarioError> {
        let section = self.sc.prometheus.as_ref();
        let key = section.and_then(|p| p.get_ref().scrape.as_ref());
        let managed = matches!(prometheus, Some(PrometheusMode::Managed));
        if let Some(k) = key {
            if !managed {
                return self.err(
                    k.span(),
                    "prometheus.scrape",
                    "only applies to mode = \"managed\" (a Prometheus of yours finds its own \
                     targets)",
                );
            }
            if !matches!(target, Target::Command(_)) {
                return self.err(
                    k.span(),
                    "prometheus.scrape",
                    "only applies to a [service] command (polymetrie's replicas are scraped at \
                     their admin port)",
                );
            }
        }
        let mut svc = match target {
            Target::Command(svc) if managed => svc,
            other => {
                if managed && matches!(counter, Counter::Promql { url: None, .. }) {
                    let span = self.sc.counter.as_ref().map_or(0..0, |c| c.span());
                    return self.err(
                        span,
                        "counter.promql",
                        "through a managed Prometheus needs a [service] command: its replicas \
                         are what that Prometheus scrapes",
                    );
                }
                return Ok(other);
            }
        };
        let scrape = match (key, counter) {
            (Some(k), _) => {
                let text = k.get_ref().trim();
                if !text.starts_with("http://") {
                    return self.err(
                        k.span(),
                        "prometheus.scrape",
                        format!("expected an http:// URL, got \"{text}\""),
                    );
                }
                Template::parse(text, Context::MetricsUrl)
                    .or_else(|e| self.err(k.span(), "prometheus.scrape", e))?
            }
            (None, Counter::Metric { url, .. }) => url.clone(),
            (None, _) => {
                let span = section.map_or(0..0, |p| p.span());
                return self.err(
                    span,
                    "prometheus.scrape",
                    "required key is missing: a managed Prometheus must know where each \
                     replica exports its metrics, e.g. \"http://127.0.0.1:{metrics_port}/metrics\"",
                );
            }
        };
        svc.scrape = Some(scrape);
        Ok(Target::Command(svc))
    }
}
