//! Expansion: a parsed [`Scenario`] becomes a [`Plan`], and every check a scenario must pass
//! happens here, once, with the file, line, column and key of what is wrong — `loadgen
//! validate` and `loadgen run` accept exactly the same scenarios. The target and counter site
//! are in [`target`] (a cluster's Deployment in [`kubernetes`]), the request in [`request`],
//! thresholds and the Prometheus settings in [`extras`]; campaigns and steps (explicit or
//! matrix) are here.

mod autoscale;
mod bounds;
mod extras;
mod generators;
mod kubernetes;
mod request;
mod scrape;
mod search;
mod service;
mod target;
mod tls;

use std::collections::HashMap;
use std::time::Duration;

use toml::Spanned;

use super::{builtin, Autoscale, Plan, SearchPlan, Step, Store, Topology};
use crate::scenario::value::{Count, CpuLimit, PositiveDur};
use crate::scenario::{
    ArrivalSpec, CampaignSpec, Overrides, Scenario, ScenarioError, SourceText, StepSpec, StoreSpec,
};
use loadgen_engine::load::{Arrival, Load, Stage};
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::Limits;
use loadgen_model::result::{CampaignInfo, ScenarioSource};

/// Expands a parsed scenario (`src` gives positions for errors and the source record).
pub(super) fn plan(sc: &Scenario, src: &SourceText) -> Result<Plan, ScenarioError> {
    Expander { sc, src }.plan()
}

struct Expander<'a> {
    sc: &'a Scenario,
    src: &'a SourceText,
}

impl Expander<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        msg: impl std::fmt::Display,
    ) -> Result<T, ScenarioError> {
        Err(self.src.error(span, key, msg.to_string()))
    }

    fn plan(&self) -> Result<Plan, ScenarioError> {
        let sc = self.sc;
        let name = sc.name.get_ref().trim();
        if name.is_empty() {
            return self.err(sc.name.span(), "name", "expected a non-empty scenario name");
        }
        let (mut target, reach) = self.target()?;
        let tls = self.tls(&target)?;
        let http2 = self.http2(&mut target)?;
        self.check_generators()?;
        let service_store = sc
            .service
            .as_ref()
            .and_then(|s| s.get_ref().store)
            .unwrap_or(StoreSpec::Memory);
        let request = self.request()?;
        let (campaigns, steps, searches) = self.campaigns(&request, service_store)?;
        self.served_tls(&target, &steps, &searches)?;
        self.cluster_tls_files(&target, &steps, &searches)?;
        let thresholds = self.thresholds(&steps)?;
        let mut warnings = self.overcommit(&target, &steps);
        warnings.extend(self.overcommit(&target, &search::configuration_steps(&searches)));
        let (prometheus, mut promql) = self.prometheus()?;
        let counter = self.counter(&target, prometheus.as_ref())?;
        let target = self.scrape(target, prometheus.as_ref(), &counter)?;
        if let super::Target::Kubernetes(k) = &target {
            promql = kubernetes::cluster_queries(k, promql);
        }
        Ok(Plan {
            source: ScenarioSource {
                name: name.to_string(),
                path: self.src.path.display().to_string(),
                sha256: sha256_hex(self.src.text.as_bytes()),
                text: self.src.text.clone(),
            },
            target,
            reach,
            tls,
            http2,
            counter,
            on_target_failure: sc.on_target_failure.unwrap_or_default(),
            warnings,
            campaigns,
            steps,
            searches,
            thresholds,
            prometheus,
            promql,
        })
    }

    fn campaigns(
        &self,
        request: &RequestTemplate,
        service_store: StoreSpec,
    ) -> Result<Campaigns, ScenarioError> {
        if self.sc.campaigns.is_empty() {
            let end = self.src.text.len();
            return self.err(end..end, "campaign", "required: at least one [[campaign]]");
        }
        let mut infos = Vec::new();
        let mut steps = Vec::new();
        let mut searches = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for c in &self.sc.campaigns {
            let spec = c.get_ref();
            let name = spec.name.get_ref().trim().to_string();
            check_name(&name).or_else(|m| self.err(spec.name.span(), "campaign.name", m))?;
            if let Some(first) = seen.get(&name) {
                let (line, _) = self.src.line_col(*first);
                return self.err(
                    spec.name.span(),
                    "campaign.name",
                    format!("duplicate campaign name \"{name}\" (first at line {line})"),
                );
            }
            seen.insert(name.clone(), spec.name.span().start);
            let settings = spec.overrides.over(&self.sc.defaults);
            infos.push(CampaignInfo {
                name: name.clone(),
                description: spec.description.clone(),
            });
            if spec.search.is_some() {
                let index = steps.len() + searches.len();
                let cx = (request, service_store, index);
                searches.push(self.search_campaign(c, &name, &settings, cx)?);
                continue;
            }
            self.no_search_keys(spec)?;
            let raw = self.campaign_steps(c, &name)?;
            let mut names: HashMap<String, usize> = HashMap::new();
            for r in raw {
                if let Some(first) = names.get(&r.name) {
                    let (line, _) = self.src.line_col(*first);
                    return self.err(
                        r.span,
                        "campaign.step.name",
                        format!(
                            "duplicate step name \"{}\" in campaign \"{name}\" (first at line {line}); give the steps distinct names",
                            r.name
                        ),
                    );
                }
                names.insert(r.name.clone(), r.span.start);
                self.bounds(&r)?;
                let index = steps.len();
                let step = self.step(r, &name, &settings, request, service_store, index);
                self.check_limits(c, &step.limits)?;
                steps.push(step);
            }
        }
        Ok((infos, steps, searches))
    }

    /// One step with the campaign's settings (over `[defaults]`) applied. `index` is its place
    /// in the plan (it offsets the Poisson seed so steps do not share arrival patterns).
    pub(super) fn step(
        &self,
        r: RawStep,
        campaign: &str,
        settings: &Overrides,
        request: &RequestTemplate,
        service_store: StoreSpec,
        index: usize,
    ) -> Step {
        let store = r.store.or(settings.store).unwrap_or(service_store);
        let seed = settings.seed.unwrap_or(builtin::SEED) + index as u64;
        let arrival = match settings.arrival.unwrap_or(ArrivalSpec::Uniform) {
            ArrivalSpec::Uniform => Arrival::Uniform,
            ArrivalSpec::Poisson => Arrival::Poisson { seed },
        };
        Step {
            campaign: campaign.to_string(),
            name: r.name,
            topology: Topology {
                replicas: r.replicas,
                cpu_limit_cores: r.cpu_limit,
                store: match store {
                    StoreSpec::Memory => Store::Memory,
                    StoreSpec::Redis => Store::Redis,
                },
                autoscale: r.autoscale,
                tls: settings.tls.unwrap_or(false),
            },
            load: Load {
                stages: vec![Stage {
                    duration: r.duration,
                    from_rps: r.ramp_from.unwrap_or(r.rate),
                    to_rps: r.rate,
                }],
                arrival,
            },
            request: request.clone(),
            limits: Limits {
                timeout: settings.timeout.map(|d| d.0).unwrap_or(builtin::TIMEOUT),
                max_in_flight: settings
                    .max_in_flight
                    .map(|c| c.0 as usize)
                    .unwrap_or(builtin::MAX_IN_FLIGHT),
                connections: settings.connections.map(|c| c.0 as usize),
                max_connections: settings.max_connections.map(|c| c.0 as usize),
                io: settings.io.unwrap_or_default(),
            },
            warmup: settings.warmup.map(|d| d.0).unwrap_or_default(),
            pause_after: settings.pause.map(|d| d.0).unwrap_or_default(),
            generators: self.generators(r.generators),
        }
    }

    /// The engine's range check of a step's limits, as an error on the campaign that set them
    /// (over `[defaults]`, whose key it names).
    pub(super) fn check_limits(
        &self,
        c: &Spanned<CampaignSpec>,
        limits: &Limits,
    ) -> Result<(), ScenarioError> {
        limits.check().or_else(|e| {
            let key = format!("defaults.{}", e.setting);
            self.err(c.span(), &key, format!("expected {}", e.expected))
        })
    }

    /// The steps of one campaign in file order (explicit) or matrix order.
    fn campaign_steps(
        &self,
        c: &Spanned<CampaignSpec>,
        campaign: &str,
    ) -> Result<Vec<RawStep>, ScenarioError> {
        let spec = c.get_ref();
        match (&spec.steps, &spec.matrix) {
            (Some(_), Some(m)) => self.err(
                m.span(),
                "campaign.matrix",
                format!("campaign \"{campaign}\" has both [[campaign.step]] and [campaign.matrix]; expected one of them"),
            ),
            (None, None) => self.err(
                spec.name.span(),
                "campaign.step",
                format!("campaign \"{campaign}\" has no steps; expected [[campaign.step]] entries or a [campaign.matrix]"),
            ),
            (Some(steps), None) => {
                if steps.is_empty() {
                    return self.err(
                        spec.name.span(),
                        "campaign.step",
                        format!("campaign \"{campaign}\" has an empty step list"),
                    );
                }
                steps.iter().map(|s| self.explicit_step(s)).collect()
            }
            (None, Some(m)) => self.matrix_steps(m),
        }
    }

    fn explicit_step(&self, s: &Spanned<StepSpec>) -> Result<RawStep, ScenarioError> {
        let spec = s.get_ref();
        let duration = spec.duration.get_ref().0;
        let secs = duration.as_secs_f64();
        let ramp_from = spec.ramp_from.map(|r| r.0);
        let rate = match (&spec.rate, &spec.requests) {
            (Some(r), _) => r.get_ref().0,
            (None, Some(n)) => {
                if ramp_from.is_some() {
                    return self.err(
                        s.span(),
                        "campaign.step.rate",
                        "required key is missing (a ramp needs its end rate)",
                    );
                }
                n.get_ref().0 as f64 / secs
            }
            (None, None) => {
                return self.err(
                    s.span(),
                    "campaign.step.rate",
                    "required key is missing (give rate, or requests with duration)",
                )
            }
        };
        if let (Some(r), Some(n)) = (&spec.rate, &spec.requests) {
            let expected = (ramp_from.unwrap_or(rate) + rate) / 2.0 * secs;
            let got = n.get_ref().0;
            // Within one request: the plan floors the integral, a person may round it.
            if (expected - got as f64).abs() >= 1.0 {
                let formula = match ramp_from {
                    Some(f) => format!("({f} + {}) / 2 × {secs}s", r.get_ref().0),
                    None => format!("{} × {secs}s", r.get_ref().0),
                };
                return self.err(
                    n.span(),
                    "campaign.step.requests",
                    format!(
                        "expected rate × duration = {formula} = {expected} requests, got {got}"
                    ),
                );
            }
        }
        let autoscale = self.autoscale(s)?;
        let replicas = match autoscale {
            Some(a) => a.min_replicas,
            None => self.replicas(spec.replicas, s.span())?,
        };
        let cpu_limit = spec.cpu_limit.unwrap_or(CpuLimit(None)).0;
        let name = self.step_name(spec, || {
            let generated = generated_step_name(replicas, cpu_limit, ramp_from, rate, duration);
            match autoscale {
                Some(a) => autoscale_step_name(&a, &generated),
                None => generated,
            }
        })?;
        let span = spec.name.as_ref().map(|n| n.span()).unwrap_or(s.span());
        Ok(RawStep {
            name,
            span,
            rate,
            ramp_from,
            duration,
            replicas,
            cpu_limit,
            store: spec.store,
            autoscale,
            table: "campaign.step",
            generators: spec
                .generators
                .as_ref()
                .map(|g| self.generator_count(g, "campaign.step.generators"))
                .transpose()?,
        })
    }

    /// A step's explicit name (trimmed and checked), or the one `generated` makes.
    fn step_name(
        &self,
        spec: &StepSpec,
        generated: impl FnOnce() -> String,
    ) -> Result<String, ScenarioError> {
        match &spec.name {
            Some(n) => {
                let v = n.get_ref().trim().to_string();
                check_name(&v).or_else(|m| self.err(n.span(), "campaign.step.name", m))?;
                Ok(v)
            }
            None => Ok(generated()),
        }
    }

    pub(super) fn replicas(
        &self,
        c: Option<Count>,
        span: std::ops::Range<usize>,
    ) -> Result<u32, ScenarioError> {
        match c {
            None => Ok(1),
            Some(c) => c.small().ok_or_else(|| {
                self.src.error(
                    span,
                    "replicas",
                    format!("expected at most {} replicas", u32::MAX),
                )
            }),
        }
    }

    /// Nested loops, outermost first: replicas, cpu_limit, rate, duration — each list in the
    /// order written.
    fn matrix_steps(
        &self,
        m: &Spanned<crate::scenario::MatrixSpec>,
    ) -> Result<Vec<RawStep>, ScenarioError> {
        let spec = m.get_ref();
        let missing = |key: &str| {
            self.src.error(
                m.span(),
                key,
                "required key is missing (the rates of the steps)",
            )
        };
        let rates = spec
            .rate
            .as_ref()
            .ok_or_else(|| missing("campaign.matrix.rate"))?;
        let durations = spec
            .duration
            .as_ref()
            .ok_or_else(|| missing("campaign.matrix.duration"))?;
        for (key, empty) in [
            ("campaign.matrix.replicas", spec.replicas.is_empty()),
            ("campaign.matrix.cpu_limit", spec.cpu_limit.is_empty()),
            ("campaign.matrix.rate", rates.get_ref().is_empty()),
            ("campaign.matrix.duration", durations.get_ref().is_empty()),
        ] {
            if empty {
                return self.err(m.span(), key, "expected a non-empty list");
            }
        }
        let store = match spec.store.as_ref().map(|s| (s.span(), s.get_ref().list())) {
            Some((span, list)) if list.len() != 1 => {
                return self.err(
                    span,
                    "campaign.matrix.store",
                    "expected one store: a list of stores only applies to a search campaign \
                     (generated step names do not carry the store)",
                )
            }
            Some((_, list)) => list.first().copied(),
            None => None,
        };
        let mut out = Vec::new();
        for &replicas in &spec.replicas {
            let replicas = self.replicas(Some(replicas), m.span())?;
            for cpu in &spec.cpu_limit {
                for rate in rates.get_ref() {
                    for PositiveDur(duration) in durations.get_ref() {
                        out.push(RawStep {
                            name: generated_step_name(replicas, cpu.0, None, rate.0, *duration),
                            span: m.span(),
                            rate: rate.0,
                            ramp_from: None,
                            duration: *duration,
                            replicas,
                            cpu_limit: cpu.0,
                            store,
                            autoscale: None,
                            table: "campaign.matrix",
                            generators: None,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The campaigns of a plan: their list, the listed steps, the searches.
type Campaigns = (Vec<CampaignInfo>, Vec<Step>, Vec<SearchPlan>);

/// One step before defaults are applied.
pub(super) struct RawStep {
    name: String,
    /// Where to point errors about this step (its `name`, else its table).
    span: std::ops::Range<usize>,
    rate: f64,
    ramp_from: Option<f64>,
    duration: Duration,
    replicas: u32,
    cpu_limit: Option<f64>,
    store: Option<StoreSpec>,
    autoscale: Option<Autoscale>,
    /// The table it came from, for keys in errors: `campaign.step` or `campaign.matrix`.
    table: &'static str,
    /// The step's own generator count (`None`: `[generators] count`).
    generators: Option<u32>,
}

/// A campaign or step name that cannot be one.
#[derive(Debug, thiserror::Error)]
enum NameError {
    #[error("expected a non-empty name")]
    Empty,
    #[error(
        "expected a name without '/', ',', '*' or spaces (it is used in ids and --steps \
         filters), got \"{name}\" (contains {c:?})"
    )]
    Char { name: String, c: char },
}

/// Campaign and step names end up in ids (`campaign/name`), file names and CSV cells.
fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ',' || *c == '*' || c.is_whitespace() || c.is_control())
    {
        return Err(NameError::Char {
            name: name.into(),
            c,
        });
    }
    Ok(())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A step name generated from its numbers, e.g. `r1-cpu1-1000rps-10s`,
/// `r2-nolimit-100to500rps-1m`.
pub fn generated_step_name(
    replicas: u32,
    cpu_limit_cores: Option<f64>,
    ramp_from: Option<f64>,
    rate_rps: f64,
    duration: Duration,
) -> String {
    let cpu = match cpu_limit_cores {
        Some(c) => format!("cpu{c}"),
        None => "nolimit".to_string(),
    };
    let rate = match ramp_from {
        Some(f) => format!("{f}to{rate_rps}rps"),
        None => format!("{rate_rps}rps"),
    };
    let dur = humantime::format_duration(duration)
        .to_string()
        .replace(' ', "");
    format!("r{replicas}-{cpu}-{rate}-{dur}")
}

/// An autoscale step's generated name: `r1-cpu1-…` becomes `hpa1to4at50-cpu1-…`, since its
/// replica count is the HPA's range, not one number.
fn autoscale_step_name(a: &Autoscale, generated: &str) -> String {
    let rest = generated
        .split_once('-')
        .map_or(generated, |(_, rest)| rest);
    format!(
        "hpa{}to{}at{}-{rest}",
        a.min_replicas, a.max_replicas, a.cpu_utilization_pct
    )
}
