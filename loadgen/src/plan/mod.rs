//! The expanded plan: every step of every campaign of a scenario, with its topology and load
//! fully resolved. Downstream code (deployers, the attack, checks) takes a [`Step`] and never
//! reads TOML or the environment (house rule 3).

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::load::Load;
use crate::engine::template::RequestTemplate;
use crate::result::ScenarioSource;

/// Where the click counter lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Each replica counts in its own memory; the probe sums replicas.
    Memory,
    /// Replicas share one Redis, started by the deployer.
    Redis,
}

impl Store {
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Redis => "redis",
        }
    }
}

/// The deployed shape of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub replicas: u32,
    /// CFS quota in cores (`None`: unlimited).
    pub cpu_limit_cores: Option<f64>,
    pub store: Store,
}

/// How loadgen starts the bundled service for local targets.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalService {
    /// Explicit `polymetrie` binary; `None`: next to `loadgen`, else built by cargo.
    pub binary: Option<PathBuf>,
    /// CPU burnt per click (`--cost`).
    pub cost: Duration,
    /// Member sites registered at start (`--sites`).
    pub sites: Vec<String>,
    pub workers: Option<u32>,
    pub max_inflight: Option<u32>,
    /// Extra command-line flags passed through verbatim.
    pub extra_args: Vec<String>,
}

/// What the campaign runs against.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Replicas of `polymetrie` started on this machine per step topology.
    Local(LocalService),
    /// An already running service; topology fields are informational only.
    Url {
        /// Base URL (scheme, host, port), loopback only.
        base: String,
    },
}

/// One step: deploy `topology`, warm up, then offer `load`.
#[derive(Debug, Clone)]
pub struct Step {
    pub campaign: String,
    pub name: String,
    pub topology: Topology,
    pub load: Load,
    pub request: RequestTemplate,
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// Fixed connection count (`None`: opened on demand).
    pub connections: Option<usize>,
    /// Load at the step's rate before measuring, discarded.
    pub warmup: Duration,
    /// Quiet time after the step, before the next deploys.
    pub pause_after: Duration,
}

/// A threshold from the scenario: a metric bound on a set of steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// `counted_ratio`, `success_ratio`, `p99_ms`, …
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Step names it applies to; empty: every step.
    pub steps: Vec<String>,
}

/// Prometheus cross-check configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum PrometheusMode {
    /// loadgen starts a local `prometheus` scraping every replica.
    Managed,
    /// An existing server.
    Url(String),
}

/// The whole expanded scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: ScenarioSource,
    pub target: Target,
    /// The site whose counter is the business counter.
    pub counter_site: String,
    pub campaigns: Vec<crate::result::CampaignInfo>,
    pub steps: Vec<Step>,
    pub thresholds: Vec<Threshold>,
    pub prometheus: Option<PrometheusMode>,
    /// PromQL overrides by query name (see the prometheus probe).
    pub promql: std::collections::BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Expansion: scenario file → plan.
// ---------------------------------------------------------------------------------------------

use std::collections::HashMap;
use std::path::Path;

use toml::Spanned;

use crate::engine::load::{Arrival, Stage};
use crate::scenario::value::{Count, CpuLimit, PositiveDur};
use crate::scenario::{
    ArrivalSpec, CampaignSpec, PrometheusModeSpec, Scenario, ScenarioError, SourceText, StepSpec,
    StoreSpec, TargetKind,
};

/// Settings used when neither the campaign nor `[defaults]` gives one.
pub mod builtin {
    use std::time::Duration;

    /// Per-request timeout: long enough for a healthy service, short enough that overload
    /// shows as timeouts within a step instead of hiding in a minute-long wait.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// Same default as `loadgen attack --max-in-flight`.
    pub const MAX_IN_FLIGHT: usize = 10_000;
    /// Seed of the first step's Poisson arrivals; step *i* (0-based, plan order) uses seed + i.
    pub const SEED: u64 = 1;
}

/// Metrics a threshold may name (the ones `check::metric_value` knows).
pub const THRESHOLD_METRICS: [&str; 9] = [
    "counted_ratio",
    "success_ratio",
    "achieved_ratio",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "dropped",
];

impl Step {
    /// The full id `campaign/name`, unique in a plan.
    pub fn id(&self) -> String {
        format!("{}/{}", self.campaign, self.name)
    }

    /// The step's rate: the mean over its load profile (the rate itself when constant). Not
    /// rounded through a request count, unlike [`Load::nominal_rate_rps`].
    pub fn rate_rps(&self) -> f64 {
        let d = self.load.duration().as_secs_f64();
        if d == 0.0 {
            return self.load.stages.last().map(|s| s.to_rps).unwrap_or(0.0);
        }
        let total: f64 = self
            .load
            .stages
            .iter()
            .map(|s| (s.from_rps + s.to_rps) / 2.0 * s.duration.as_secs_f64())
            .sum();
        total / d
    }

    /// Requests the step's load asks for (the integral of its rate).
    pub fn requests(&self) -> u64 {
        self.load.planned_requests()
    }

    /// Whether a `--steps`/threshold glob selects this step (on `campaign/name` or `name`).
    pub fn matches(&self, pattern: &str) -> bool {
        glob_match(pattern, &self.id()) || glob_match(pattern, &self.name)
    }
}

impl Threshold {
    /// Whether this threshold applies to `step` (no step globs: every step).
    pub fn applies_to(&self, step: &Step) -> bool {
        self.steps.is_empty() || self.steps.iter().any(|p| step.matches(p))
    }
}

/// Glob match where `*` matches any run of characters (including `/`) and everything else
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
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

impl Plan {
    /// Reads, checks and expands a scenario file. Every error names the file, line, column and
    /// key.
    pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
        let (scenario, src) = Scenario::read(path)?;
        Plan::from_scenario(&scenario, &src)
    }

    /// Expands a parsed scenario (`src` gives positions for errors and the source record).
    pub fn from_scenario(sc: &Scenario, src: &SourceText) -> Result<Plan, ScenarioError> {
        Expander { sc, src }.plan()
    }

    /// Multiplies every duration (steps, warm-up, pause) by `f`, keeping rates: a quick replay
    /// of the same shape. Timeouts are left alone: they are about the service, not the plan.
    ///
    /// # Panics
    /// When `f` is not a finite number > 0; check user input with [`check_time_scale`].
    pub fn scale_time(&mut self, f: f64) {
        assert!(f.is_finite() && f > 0.0, "time scale must be > 0, got {f}");
        for step in &mut self.steps {
            for stage in &mut step.load.stages {
                stage.duration = stage.duration.mul_f64(f);
            }
            step.warmup = step.warmup.mul_f64(f);
            step.pause_after = step.pause_after.mul_f64(f);
        }
    }

    /// Keeps only the steps matching `filter`: comma-separated globs on `campaign/name` or
    /// `name` (`*` matches anything). Campaigns left without steps are dropped. Errors when
    /// nothing matches.
    pub fn select_steps(&mut self, filter: &str) -> Result<(), ScenarioError> {
        let patterns: Vec<&str> = filter
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let kept: Vec<Step> = self
            .steps
            .iter()
            .filter(|s| patterns.iter().any(|p| s.matches(p)))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(ScenarioError::NoStepMatches {
                filter: filter.to_string(),
                example: self.steps.first().map(Step::id).unwrap_or_default(),
            });
        }
        self.steps = kept;
        let steps = &self.steps;
        self.campaigns
            .retain(|c| steps.iter().any(|s| s.campaign == c.name));
        Ok(())
    }

    /// Planned time of the whole plan: warm-ups, steps and pauses (deploys not included).
    pub fn planned_duration(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| s.warmup + s.load.duration() + s.pause_after)
            .sum()
    }
}

/// Checks a `--time-scale` value before [`Plan::scale_time`].
pub fn check_time_scale(f: f64) -> Result<f64, ScenarioError> {
    if f.is_finite() && f > 0.0 {
        Ok(f)
    } else {
        Err(ScenarioError::TimeScale(f))
    }
}

/// Whether `base` is an `http://` URL whose host is a loopback address.
fn check_loopback_url(base: &str) -> Result<String, String> {
    let rest = if let Some(r) = base.strip_prefix("http://") {
        r
    } else if base.starts_with("https://") {
        return Err(format!(
            "expected an http:// URL (TLS is not supported), got \"{base}\""
        ));
    } else {
        return Err(format!(
            "expected an http:// URL such as \"http://127.0.0.1:8080\", got \"{base}\""
        ));
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!("expected a URL without user info, got \"{base}\""));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !loopback {
        return Err(format!(
            "expected a loopback URL (127.0.0.0/8, ::1 or localhost: load goes only to this \
             machine), got host \"{host}\""
        ));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return Err(format!(
                "expected a port number in \"{base}\", got \"{port}\""
            ));
        }
    }
    let path = &rest[authority.len()..];
    if !(path.is_empty() || path == "/") {
        return Err(format!(
            "expected a base URL without a path (the path goes in [request].path), got \"{base}\""
        ));
    }
    Ok(format!("http://{authority}"))
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
        msg: impl Into<String>,
    ) -> Result<T, ScenarioError> {
        Err(self.src.error(span, key, msg))
    }

    fn plan(&self) -> Result<Plan, ScenarioError> {
        let sc = self.sc;
        let name = sc.name.get_ref().trim();
        if name.is_empty() {
            return self.err(sc.name.span(), "name", "expected a non-empty scenario name");
        }
        let target = self.target()?;
        let counter_site = self.counter_site(&target)?;
        let service_store = sc
            .service
            .as_ref()
            .and_then(|s| s.get_ref().store)
            .unwrap_or(StoreSpec::Memory);
        let request = self.request()?;
        let (campaigns, steps) = self.campaigns(&request, service_store)?;
        let thresholds = self.thresholds(&steps)?;
        let (prometheus, promql) = self.prometheus()?;
        Ok(Plan {
            source: ScenarioSource {
                name: name.to_string(),
                path: self.src.path.display().to_string(),
                sha256: sha256_hex(self.src.text.as_bytes()),
                text: self.src.text.clone(),
            },
            target,
            counter_site,
            campaigns,
            steps,
            thresholds,
            prometheus,
            promql,
        })
    }

    fn target(&self) -> Result<Target, ScenarioError> {
        let t = self.sc.target.get_ref();
        match t.kind.get_ref() {
            TargetKind::Kubernetes => self.err(
                t.kind.span(),
                "target.kind",
                "kind \"kubernetes\" is not supported yet (use \"local\" or \"url\")",
            ),
            TargetKind::Url => {
                let Some(url) = &t.url else {
                    return self.err(
                        self.sc.target.span(),
                        "target.url",
                        "required key is missing (kind = \"url\" needs the base URL of the running service)",
                    );
                };
                if let Some(svc) = &self.sc.service {
                    return self.err(
                        svc.span(),
                        "service",
                        "[service] only applies to kind = \"local\" (a url target is already running)",
                    );
                }
                let base = check_loopback_url(url.get_ref().trim())
                    .or_else(|m| self.err(url.span(), "target.url", m))?;
                Ok(Target::Url { base })
            }
            TargetKind::Local => {
                if let Some(url) = &t.url {
                    return self.err(
                        url.span(),
                        "target.url",
                        "only applies to kind = \"url\" (a local target is started by loadgen)",
                    );
                }
                let Some(svc) = &self.sc.service else {
                    return self.err(
                        self.sc.target.span(),
                        "service",
                        "required table [service] is missing (kind = \"local\" needs at least service.cost and service.sites)",
                    );
                };
                let s = svc.get_ref();
                let Some(cost) = s.cost else {
                    return self.err(
                        svc.span(),
                        "service.cost",
                        "required key is missing (CPU time per click, e.g. \"5.5ms\")",
                    );
                };
                if s.sites.is_empty() {
                    return self.err(
                        svc.span(),
                        "service.sites",
                        "required key is missing (sites to register, e.g. [\"td4\"])",
                    );
                }
                let mut sites = Vec::new();
                for site in &s.sites {
                    let v = site.get_ref().trim();
                    if v.is_empty() {
                        return self.err(
                            site.span(),
                            "service.sites",
                            "expected a non-empty site name",
                        );
                    }
                    sites.push(v.to_string());
                }
                let small = |c: Option<Count>, key: &str| -> Result<Option<u32>, ScenarioError> {
                    match c {
                        None => Ok(None),
                        Some(c) => c.small().map(Some).ok_or_else(|| {
                            self.src.error(
                                svc.span(),
                                key,
                                format!("expected at most {}", u32::MAX),
                            )
                        }),
                    }
                };
                let binary = s.binary.as_ref().map(|b| {
                    if b.is_absolute() {
                        b.clone()
                    } else {
                        self.src.dir().join(b)
                    }
                });
                Ok(Target::Local(LocalService {
                    binary,
                    cost: cost.0,
                    sites,
                    workers: small(s.workers, "service.workers")?,
                    max_inflight: small(s.max_inflight, "service.max_inflight")?,
                    extra_args: s.extra_args.clone(),
                }))
            }
        }
    }

    fn counter_site(&self, target: &Target) -> Result<String, ScenarioError> {
        match (&self.sc.counter_site, target) {
            (Some(site), Target::Local(svc)) => {
                let v = site.get_ref().trim();
                if !svc.sites.iter().any(|s| s == v) {
                    return self.err(
                        site.span(),
                        "counter_site",
                        format!(
                            "expected one of service.sites ({}), got \"{v}\"",
                            svc.sites.join(", ")
                        ),
                    );
                }
                Ok(v.to_string())
            }
            (Some(site), Target::Url { .. }) => {
                let v = site.get_ref().trim();
                if v.is_empty() {
                    return self.err(
                        site.span(),
                        "counter_site",
                        "expected a non-empty site name",
                    );
                }
                Ok(v.to_string())
            }
            (None, Target::Local(svc)) => Ok(svc.sites[0].clone()),
            (None, Target::Url { .. }) => self.err(
                self.sc.target.span(),
                "counter_site",
                "required key is missing (kind = \"url\" needs the site whose counter to read)",
            ),
        }
    }

    fn request(&self) -> Result<RequestTemplate, ScenarioError> {
        let r = self.sc.request.get_ref();
        let method = match &r.method {
            None => hyper::Method::GET,
            Some(m) => hyper::Method::from_bytes(m.get_ref().trim().as_bytes()).or_else(|_| {
                self.err(
                    m.span(),
                    "request.method",
                    format!(
                        "expected an HTTP method such as \"POST\", got \"{}\"",
                        m.get_ref()
                    ),
                )
            })?,
        };
        let path = r.path.get_ref().trim();
        if !path.starts_with('/') {
            return self.err(
                r.path.span(),
                "request.path",
                format!("expected a path starting with '/', got \"{path}\""),
            );
        }
        let mut headers = Vec::new();
        for (k, v) in &r.headers {
            let key = format!("request.headers.{k}");
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return self.err(
                    v.span(),
                    &key,
                    format!("expected a valid header name, got \"{k}\""),
                );
            }
            if hyper::header::HeaderValue::from_str(v.get_ref()).is_err() {
                return self.err(
                    v.span(),
                    &key,
                    "expected a header value of visible ASCII characters",
                );
            }
            headers.push((k.clone(), v.get_ref().clone()));
        }
        let body = match &r.body {
            None => bytes::Bytes::new(),
            Some(b) => {
                let text = b.get_ref();
                if let Some(literal) = text.strip_prefix("@@") {
                    bytes::Bytes::from(format!("@{literal}"))
                } else if let Some(file) = text.strip_prefix('@') {
                    let p = Path::new(file.trim());
                    let full = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        self.src.dir().join(p)
                    };
                    match std::fs::read(&full) {
                        Ok(data) => bytes::Bytes::from(data),
                        Err(e) => {
                            return self.err(
                                b.span(),
                                "request.body",
                                format!(
                                    "cannot read body file {} (relative to the scenario file): {e}",
                                    full.display()
                                ),
                            )
                        }
                    }
                } else {
                    bytes::Bytes::from(text.clone())
                }
            }
        };
        Ok(RequestTemplate {
            method,
            path: path.to_string(),
            headers,
            body,
        })
    }

    fn campaigns(
        &self,
        request: &RequestTemplate,
        service_store: StoreSpec,
    ) -> Result<(Vec<crate::result::CampaignInfo>, Vec<Step>), ScenarioError> {
        if self.sc.campaigns.is_empty() {
            let end = self.src.text.len();
            return self.err(end..end, "campaign", "required: at least one [[campaign]]");
        }
        let mut infos = Vec::new();
        let mut steps = Vec::new();
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
            let settings = spec.overrides().over(&self.sc.defaults);
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
                let store = r.store.or(settings.store).unwrap_or(service_store);
                let seed = settings.seed.unwrap_or(builtin::SEED) + steps.len() as u64;
                let arrival = match settings.arrival.unwrap_or(ArrivalSpec::Uniform) {
                    ArrivalSpec::Uniform => Arrival::Uniform,
                    ArrivalSpec::Poisson => Arrival::Poisson { seed },
                };
                steps.push(Step {
                    campaign: name.clone(),
                    name: r.name,
                    topology: Topology {
                        replicas: r.replicas,
                        cpu_limit_cores: r.cpu_limit,
                        store: match store {
                            StoreSpec::Memory => Store::Memory,
                            StoreSpec::Redis => Store::Redis,
                        },
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
                    timeout: settings.timeout.map(|d| d.0).unwrap_or(builtin::TIMEOUT),
                    max_in_flight: settings
                        .max_in_flight
                        .map(|c| c.0 as usize)
                        .unwrap_or(builtin::MAX_IN_FLIGHT),
                    connections: settings.connections.map(|c| c.0 as usize),
                    warmup: settings.warmup.map(|d| d.0).unwrap_or_default(),
                    pause_after: settings.pause.map(|d| d.0).unwrap_or_default(),
                });
            }
            infos.push(crate::result::CampaignInfo {
                name,
                description: spec.description.clone(),
            });
        }
        Ok((infos, steps))
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
        let replicas = self.replicas(spec.replicas, s.span())?;
        let cpu_limit = spec.cpu_limit.unwrap_or(CpuLimit(None)).0;
        let name = match &spec.name {
            Some(n) => {
                let v = n.get_ref().trim().to_string();
                check_name(&v).or_else(|m| self.err(n.span(), "campaign.step.name", m))?;
                v
            }
            None => generated_step_name(replicas, cpu_limit, ramp_from, rate, duration),
        };
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
        })
    }

    fn replicas(
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
        for (key, empty) in [
            ("campaign.matrix.replicas", spec.replicas.is_empty()),
            ("campaign.matrix.cpu_limit", spec.cpu_limit.is_empty()),
            ("campaign.matrix.rate", spec.rate.get_ref().is_empty()),
            (
                "campaign.matrix.duration",
                spec.duration.get_ref().is_empty(),
            ),
        ] {
            if empty {
                return self.err(m.span(), key, "expected a non-empty list");
            }
        }
        let mut out = Vec::new();
        for &replicas in &spec.replicas {
            let replicas = self.replicas(Some(replicas), m.span())?;
            for cpu in &spec.cpu_limit {
                for rate in spec.rate.get_ref() {
                    for PositiveDur(duration) in spec.duration.get_ref() {
                        out.push(RawStep {
                            name: generated_step_name(replicas, cpu.0, None, rate.0, *duration),
                            span: m.span(),
                            rate: rate.0,
                            ramp_from: None,
                            duration: *duration,
                            replicas,
                            cpu_limit: cpu.0,
                            store: spec.store,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn thresholds(&self, steps: &[Step]) -> Result<Vec<Threshold>, ScenarioError> {
        let mut out = Vec::new();
        for t in &self.sc.thresholds {
            let spec = t.get_ref();
            let metric = spec.metric.get_ref().trim();
            if !THRESHOLD_METRICS.contains(&metric) {
                return self.err(
                    spec.metric.span(),
                    "thresholds.metric",
                    format!(
                        "expected one of {}, got \"{metric}\"",
                        THRESHOLD_METRICS.join(", ")
                    ),
                );
            }
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
                            steps.first().map(Step::id).unwrap_or_default()
                        ),
                    );
                }
                globs.push(p.to_string());
            }
            out.push(Threshold {
                metric: metric.to_string(),
                min,
                max,
                steps: globs,
            });
        }
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn prometheus(
        &self,
    ) -> Result<
        (
            Option<PrometheusMode>,
            std::collections::BTreeMap<String, String>,
        ),
        ScenarioError,
    > {
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
            (PrometheusModeSpec::Url, Some(u)) => {
                let v = u.get_ref().trim();
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return self.err(
                        u.span(),
                        "prometheus.url",
                        format!("expected an http:// or https:// URL, got \"{v}\""),
                    );
                }
                PrometheusMode::Url(v.trim_end_matches('/').to_string())
            }
        };
        Ok((Some(mode), spec.queries.clone()))
    }
}

/// One step before defaults are applied.
struct RawStep {
    name: String,
    /// Where to point errors about this step (its `name`, else its table).
    span: std::ops::Range<usize>,
    rate: f64,
    ramp_from: Option<f64>,
    duration: Duration,
    replicas: u32,
    cpu_limit: Option<f64>,
    store: Option<StoreSpec>,
}

/// Campaign and step names end up in ids (`campaign/name`), file names and CSV cells.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("expected a non-empty name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ',' || *c == '*' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "expected a name without '/', ',', '*' or spaces (it is used in ids and --steps filters), got \"{name}\" (contains {c:?})"
        ));
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
