//! Search campaigns (`campaign.search`, `campaign.slo`): the search settings and the SLO
//! checked, the configurations drawn from the matrix (replicas × cpu_limit × store), and the
//! keys that belong to one kind of campaign refused on the other — each error at its key.

use toml::Spanned;

use super::{Expander, RawStep};
use crate::plan::{limits, SearchConfiguration, SearchPlan, Step, Store, Topology};
use crate::scenario::value::CpuLimit;
use crate::scenario::{
    CampaignSpec, MatrixSpec, Overrides, ScenarioError, SearchTable, SloTable, StoreSpec,
};
use loadgen_engine::template::RequestTemplate;
use loadgen_judge::search::{SearchSpec, MIN_PRECISION};
use loadgen_model::slo::Slo;

/// Default `precision`: the bracket is narrowed to 5 %.
pub const DEFAULT_PRECISION: f64 = 0.05;
/// Default `confirm`: each end of the bracket is run three times in all.
pub const DEFAULT_CONFIRM: u32 = 2;
/// The most repeats a search may ask for: beyond it the time goes to repeats, not to the search.
pub const MAX_CONFIRM: i64 = 20;

/// What every step of the campaign shares: the request, the store a step names none of, and
/// the step's place in the plan (for its Poisson seed).
pub(super) type Shared<'r> = (&'r RequestTemplate, StoreSpec, usize);

impl Expander<'_> {
    /// A search campaign expanded: `c` has a `search` table.
    pub(super) fn search_campaign(
        &self,
        c: &Spanned<CampaignSpec>,
        name: &str,
        settings: &Overrides,
        (request, service_store, index): Shared<'_>,
    ) -> Result<SearchPlan, ScenarioError> {
        let spec = c.get_ref();
        let Some(table) = &spec.search else {
            unreachable!("search_campaign is called for campaigns with a search");
        };
        if let Some(steps) = spec.steps.as_ref().and_then(|s| s.first()) {
            return self.err(
                steps.span(),
                "campaign.step",
                "a search campaign decides its own rates: give its topologies in \
                 [campaign.matrix] (replicas, cpu_limit, store), not as steps",
            );
        }
        let search = self.search_spec(table)?;
        let slo = match &spec.slo {
            Some(slo) => self.slo(slo)?,
            None => {
                return self.err(
                    table.span(),
                    "campaign.slo",
                    "required key is missing (a search needs the SLO each probe must meet, \
                     e.g. slo = { counted_ratio = 0.99, p99_ms = 500 })",
                )
            }
        };
        let configurations = self.configurations(spec.matrix.as_ref(), settings)?;
        let first = &configurations[0].topology;
        let raw = RawStep {
            name: "search".into(),
            span: table.span(),
            rate: search.from_rps,
            ramp_from: None,
            duration: search.step(),
            replicas: first.replicas,
            cpu_limit: first.cpu_limit_cores,
            store: None,
            autoscale: None,
            table: "campaign.matrix",
            generators: None,
        };
        let settings = self.step(raw, name, settings, request, service_store, index);
        self.check_limits(c, &settings.limits)?;
        Ok(SearchPlan {
            campaign: name.to_string(),
            spec: search,
            slo,
            configurations,
            settings,
        })
    }

    /// `slo` and a search matrix's missing rates belong to search campaigns only.
    pub(super) fn no_search_keys(&self, spec: &CampaignSpec) -> Result<(), ScenarioError> {
        match &spec.slo {
            Some(slo) => self.err(
                slo.span(),
                "campaign.slo",
                "only applies to a search campaign (one with campaign.search); thresholds bound \
                 the steps of other campaigns",
            ),
            None => Ok(()),
        }
    }

    fn search_spec(&self, t: &Spanned<SearchTable>) -> Result<SearchSpec, ScenarioError> {
        let s = t.get_ref();
        let (from, to) = (s.from.get_ref().0, s.to.get_ref().0);
        if to <= from {
            return self.err(
                s.to.span(),
                "campaign.search.to",
                format!("expected a rate above from ({from}), got {to}"),
            );
        }
        if to > limits::MAX_RATE_RPS {
            return self.err(
                s.to.span(),
                "campaign.search.to",
                format!(
                    "expected at most {:e} req/s per generator, got {to}",
                    limits::MAX_RATE_RPS
                ),
            );
        }
        let precision = s
            .precision
            .as_ref()
            .map_or(DEFAULT_PRECISION, |p| p.get_ref().0);
        if !(MIN_PRECISION..=1.0).contains(&precision) {
            let span = s.precision.as_ref().map_or(t.span(), Spanned::span);
            return self.err(
                span,
                "campaign.search.precision",
                format!(
                    "expected a share between {MIN_PRECISION} and 1 (0.05 = 5 %), got {precision}"
                ),
            );
        }
        let confirm = match &s.confirm {
            None => DEFAULT_CONFIRM,
            Some(c) if (0..=MAX_CONFIRM).contains(c.get_ref()) => *c.get_ref() as u32,
            Some(c) => {
                return self.err(
                    c.span(),
                    "campaign.search.confirm",
                    format!(
                        "expected an integer from 0 to {MAX_CONFIRM}, got {}",
                        c.get_ref()
                    ),
                )
            }
        };
        let step = s.step.get_ref().0;
        self.probe_bounds(s, to, step)?;
        Ok(SearchSpec {
            from_rps: from,
            to_rps: to,
            precision,
            step_s: step.as_secs_f64(),
            confirm,
            budget_s: s.budget.as_ref().map(|b| b.get_ref().0.as_secs_f64()),
        })
    }

    /// The longest and the largest probe against the plan's limits.
    fn probe_bounds(
        &self,
        s: &SearchTable,
        to: f64,
        step: std::time::Duration,
    ) -> Result<(), ScenarioError> {
        if step > limits::MAX_STEP_DURATION {
            return self.err(
                s.step.span(),
                "campaign.search.step",
                format!(
                    "expected at most 24h per probe, got {}",
                    humantime::format_duration(step)
                ),
            );
        }
        let requests = to * step.as_secs_f64();
        if requests > limits::MAX_STEP_REQUESTS as f64 {
            return self.err(
                s.step.span(),
                "campaign.search.step",
                format!(
                    "expected at most {} planned requests in one probe, got {requests:.0} \
                     (to × step); shorten the step",
                    limits::MAX_STEP_REQUESTS
                ),
            );
        }
        Ok(())
    }

    fn slo(&self, t: &Spanned<SloTable>) -> Result<Slo, ScenarioError> {
        let s = t.get_ref();
        if s.counted_ratio.is_none() && s.p99_ms.is_none() && s.success_ratio.is_none() {
            return self.err(
                t.span(),
                "campaign.slo.counted_ratio",
                "required: counted_ratio, success_ratio, p99_ms or several",
            );
        }
        for (key, share) in [
            ("counted_ratio", &s.counted_ratio),
            ("success_ratio", &s.success_ratio),
        ] {
            if let Some(c) = share.as_ref().filter(|c| c.get_ref().0 > 1.0) {
                return self.err(
                    c.span(),
                    &format!("campaign.slo.{key}"),
                    format!("expected a share ≤ 1 (0.99 = 99 %), got {}", c.get_ref().0),
                );
            }
        }
        Ok(Slo {
            counted_ratio: s.counted_ratio.as_ref().map(|c| c.get_ref().0),
            p99_ms: s.p99_ms.as_ref().map(|p| p.get_ref().0),
            success_ratio: s.success_ratio.as_ref().map(|c| c.get_ref().0),
        })
    }

    /// The topologies to search: the matrix's replicas × cpu_limit × store (one replica
    /// without a limit when there is no matrix), each within the machine's bounds.
    fn configurations(
        &self,
        m: Option<&Spanned<MatrixSpec>>,
        settings: &Overrides,
    ) -> Result<Vec<SearchConfiguration>, ScenarioError> {
        let service = self.sc.service.as_ref().and_then(|s| s.get_ref().store);
        let fallback = settings.store.or(service).unwrap_or(StoreSpec::Memory);
        let tls = settings.tls.unwrap_or(false);
        let Some(m) = m else {
            return Ok(vec![configuration(1, None, fallback, false, tls)]);
        };
        let spec = m.get_ref();
        for (key, given) in [
            (
                "campaign.matrix.rate",
                spec.rate.as_ref().map(Spanned::span),
            ),
            (
                "campaign.matrix.duration",
                spec.duration.as_ref().map(Spanned::span),
            ),
        ] {
            if let Some(span) = given {
                return self.err(
                    span,
                    key,
                    "a search campaign decides its own rates and probe length \
                     (campaign.search from/to/step): remove this key",
                );
            }
        }
        let stores = spec
            .store
            .as_ref()
            .map_or(vec![fallback], |s| s.get_ref().list());
        if stores.is_empty() || spec.replicas.is_empty() || spec.cpu_limit.is_empty() {
            return self.err(m.span(), "campaign.matrix", "expected non-empty lists");
        }
        let mut out = Vec::new();
        for &replicas in &spec.replicas {
            let replicas = self.replicas(Some(replicas), m.span())?;
            for &CpuLimit(cpu) in &spec.cpu_limit {
                for &store in &stores {
                    self.bounds(&RawStep {
                        name: String::new(),
                        span: m.span(),
                        rate: 1.0,
                        ramp_from: None,
                        duration: std::time::Duration::from_secs(1),
                        replicas,
                        cpu_limit: cpu,
                        store: Some(store),
                        autoscale: None,
                        table: "campaign.matrix",
                        generators: None,
                    })?;
                    out.push(configuration(replicas, cpu, store, stores.len() > 1, tls));
                }
            }
        }
        Ok(out)
    }
}

/// A configuration and its key: `r2-cpu0.5`, `r1-nolimit-redis`.
fn configuration(
    replicas: u32,
    cpu_limit_cores: Option<f64>,
    store: StoreSpec,
    store_in_key: bool,
    tls: bool,
) -> SearchConfiguration {
    let store = match store {
        StoreSpec::Memory => Store::Memory,
        StoreSpec::Redis => Store::Redis,
    };
    let cpu = cpu_limit_cores.map_or("nolimit".to_string(), |c| format!("cpu{c}"));
    let mut key = format!("r{replicas}-{cpu}");
    if store_in_key {
        key.push_str(&format!("-{}", store.as_str()));
    }
    SearchConfiguration {
        key,
        topology: Topology {
            replicas,
            cpu_limit_cores,
            store,
            autoscale: None,
            tls,
        },
    }
}

/// One stand-in step per searched configuration (named `search-<key>`), for the plan-wide
/// checks that look at every topology (the overcommit warning).
pub(super) fn configuration_steps(searches: &[SearchPlan]) -> Vec<Step> {
    searches
        .iter()
        .flat_map(|s| {
            s.configurations.iter().map(|c| Step {
                name: format!("search-{}", c.key),
                topology: c.topology.clone(),
                ..s.settings.clone()
            })
        })
        .collect()
}
