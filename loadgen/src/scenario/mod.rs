//! The scenario file as written: serde types mirroring the TOML layout documented in
//! `scenarios/README.md`, with unknown keys rejected and every checked value kept with its
//! position ([`toml::Spanned`]) so semantic errors found later still point at file:line:col.
//! Turning a [`Scenario`] into steps is [`crate::plan::Plan`]'s job.

mod campaign;
mod error;
pub mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use campaign::CampaignSpec;
pub use error::{ScenarioError, SourceText};
use value::{Count, CpuLimit, Dur, NonNegative, Number, Positive, PositiveDur};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub target: Spanned<TargetSpec>,
    pub service: Option<Spanned<ServiceSpec>>,
    pub request: Spanned<RequestSpec>,
    /// The site whose counter is the business counter (default: the first of `service.sites`):
    /// the polymetrie preset of `[counter]`.
    pub counter_site: Option<Spanned<String>>,
    /// The business counter of any service: a Prometheus metric, a JSON value, or a PromQL
    /// query.
    pub counter: Option<Spanned<CounterSpec>>,
    /// Processes a user's service needs (a database, a cache), started by loadgen.
    #[serde(default, rename = "dependency")]
    pub dependencies: Vec<Spanned<DependencySpec>>,
    /// What a run does after a step whose target failed (a replica or the store exited).
    pub on_target_failure: Option<OnTargetFailure>,
    #[serde(default)]
    pub defaults: Overrides,
    #[serde(default)]
    pub thresholds: Vec<Spanned<ThresholdSpec>>,
    pub prometheus: Option<Spanned<PrometheusSpec>>,
    /// How many generator processes share each step's schedule (shards), by default.
    pub generators: Option<Spanned<GeneratorsSpec>>,
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<Spanned<CampaignSpec>>,
}

/// `[generators]`: `count` generator processes (shards of one schedule) per step, `pin`ned one
/// per CPU when asked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorsSpec {
    pub count: Option<Spanned<Count>>,
    pub pin: Option<Spanned<bool>>,
}

/// `on_target_failure`: go on with the next step on a fresh deployment, or stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTargetFailure {
    #[default]
    Continue,
    Stop,
}

/// `kind` of `[target]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Local,
    Url,
    Kubernetes,
}

/// `[target]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub kind: Spanned<TargetKind>,
    /// Base URL of a running service (`kind = "url"` only).
    pub url: Option<Spanned<String>>,
    /// Allow a target that is not on loopback (the in-cluster Job); default false.
    pub allow_remote: Option<Spanned<bool>>,
    /// The Deployment's namespace (`kind = "kubernetes"` only).
    pub namespace: Option<Spanned<String>>,
    /// The Deployment whose replicas and CPU each step sets (`kind = "kubernetes"` only).
    pub deployment: Option<Spanned<String>>,
    /// The container of that Deployment whose CPU request and limit each step sets.
    pub container: Option<Spanned<String>>,
    /// Base URL of the Service the load goes to (`kind = "kubernetes"` only).
    pub service_url: Option<Spanned<String>>,
    /// The port of each pod's `/metrics` (`kind = "kubernetes"` only).
    pub metrics_port: Option<Spanned<i64>>,
    /// How long one step's rollout may take before the step fails (`kind = "kubernetes"`
    /// only; default 60s). A rollout that cannot succeed (pods unschedulable, crash-looping,
    /// an image that cannot be pulled, a ReplicaSet the API refused) fails at once, with why.
    pub rollout_timeout: Option<Spanned<PositiveDur>>,
    /// An `https` target: trust only the CA certificates (PEM) in this file, relative to the
    /// scenario file (default: the system's roots).
    pub cacert: Option<Spanned<PathBuf>>,
    /// An `https` target: do not verify its certificate (recorded in every step's result).
    pub insecure: Option<Spanned<bool>>,
    /// An `https` target: client certificate chain (PEM) for mTLS; needs `key`.
    pub cert: Option<Spanned<PathBuf>>,
    /// An `https` target: the client certificate's private key (PEM).
    pub key: Option<Spanned<PathBuf>>,
    /// An `https` target: resume TLS sessions (default true).
    pub tls_resume: Option<Spanned<bool>>,
    /// Speak HTTP/2 to the target (ALPN h2 over https, prior knowledge over http).
    pub http2: Option<Spanned<bool>>,
    /// With `http2`: streams one connection carries at once (default 100).
    pub max_streams: Option<Spanned<i64>>,
}

/// Store names in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreSpec {
    Memory,
    Redis,
}

/// Arrival process names in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalSpec {
    Uniform,
    Poisson,
}

/// `[service]`: how a local target starts `polymetrie`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// CPU burnt per click, e.g. `"5.5ms"`.
    pub cost: Option<Dur>,
    /// Store of steps that don't name one (below `[defaults].store`).
    pub store: Option<StoreSpec>,
    #[serde(default)]
    pub sites: Vec<Spanned<String>>,
    pub workers: Option<Count>,
    pub max_inflight: Option<Count>,
    /// Path to a `polymetrie` binary, relative to the scenario file.
    pub binary: Option<PathBuf>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// The user's own service: its argv (no shell; placeholders `{port}`, `{metrics_port}`,
    /// `{replica}`, `{dir}`, `{dependency.NAME.port}`); without it, the bundled polymetrie.
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Environment of each replica (values take the same placeholders).
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// When a replica is ready: `{ path = "/", timeout = "20s" }` (HTTP 2xx) or
    /// `{ tcp = true, timeout = "20s" }`.
    pub ready: Option<Spanned<ReadySpec>>,
    /// Between SIGTERM and SIGKILL when a replica is stopped.
    pub stop_grace: Option<Dur>,
    /// How the generator spreads requests over the replicas' own ports.
    pub balance: Option<Spanned<BalanceSpec>>,
    /// Arguments appended to `command` in a `tls = true` step, which make the service serve
    /// HTTPS with the run's certificate: `{tls_cert}` and `{tls_key}` are its PEM files.
    pub tls_args: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `balance` of `[service]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BalanceSpec {
    /// Round robin per request, as an Ingress controller or L7 proxy does.
    Request,
    /// Each connection pinned to one replica, as kube-proxy does.
    Connection,
}

/// `ready = { … }` of a service or dependency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// HTTP GET on the process's port until a 2xx.
    pub path: Option<Spanned<String>>,
    /// A TCP connect to the process's port is enough (a non-HTTP dependency).
    pub tcp: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<PositiveDur>>,
}

/// `[[dependency]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    pub name: Spanned<String>,
    pub command: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub ready: Option<Spanned<ReadySpec>>,
    pub scope: Option<Spanned<ScopeSpec>>,
    pub stop_grace: Option<Dur>,
}

/// `scope` of a dependency: fresh for every step, or one for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeSpec {
    Step,
    Campaign,
}

/// `[counter]`: exactly one of `metric` (with `metrics_url`), `http` (with `json_pointer`) or
/// `promql`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    /// `name` or `name{label="value",…}`, summed over every matching sample of every replica.
    pub metric: Option<Spanned<String>>,
    pub metrics_url: Option<Spanned<String>>,
    /// A path GET through the service.
    pub http: Option<Spanned<String>>,
    /// Where the count is in that JSON answer (RFC 6901), e.g. `/clicks`.
    pub json_pointer: Option<Spanned<String>>,
    /// An instant query through `[prometheus]`.
    pub promql: Option<Spanned<String>>,
}

/// `[request]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Option<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Literal body, or `@file` relative to the scenario file (`@@…` for a literal `@…`).
    pub body: Option<Spanned<String>>,
}

/// Settings a campaign may override and `[defaults]` sets for all. The one declaration of
/// these keys: a `[[campaign]]` table hands them to this struct's deserializer (see
/// `scenario/campaign.rs`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub timeout: Option<Dur>,
    pub max_in_flight: Option<Count>,
    pub connections: Option<Count>,
    pub max_connections: Option<Count>,
    pub warmup: Option<Dur>,
    pub pause: Option<Dur>,
    pub store: Option<StoreSpec>,
    pub arrival: Option<ArrivalSpec>,
    pub seed: Option<u64>,
    /// Serve the local service over HTTPS with a certificate loadgen makes for the run.
    pub tls: Option<bool>,
    /// The engine's I/O backend (`auto` by default: io_uring where it works, else epoll).
    pub io: Option<loadgen_engine::io::IoMode>,
}

impl Overrides {
    /// `self` where set, else `base`.
    pub fn over(&self, base: &Overrides) -> Overrides {
        Overrides {
            timeout: self.timeout.or(base.timeout),
            max_in_flight: self.max_in_flight.or(base.max_in_flight),
            connections: self.connections.or(base.connections),
            max_connections: self.max_connections.or(base.max_connections),
            warmup: self.warmup.or(base.warmup),
            pause: self.pause.or(base.pause),
            store: self.store.or(base.store),
            arrival: self.arrival.or(base.arrival),
            seed: self.seed.or(base.seed),
            tls: self.tls.or(base.tls),
            io: self.io.or(base.io),
        }
    }
}

/// `[[thresholds]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub metric: Spanned<String>,
    pub min: Option<Number>,
    pub max: Option<Number>,
    #[serde(default)]
    pub steps: Vec<Spanned<String>>,
}

/// `mode` of `[prometheus]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrometheusModeSpec {
    Managed,
    Url,
}

/// `[prometheus]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    pub mode: Spanned<PrometheusModeSpec>,
    pub url: Option<Spanned<String>>,
    /// What a managed Prometheus scrapes on each replica of a user's service (a URL with
    /// `{port}`, `{metrics_port}`, `{replica}`).
    pub scrape: Option<Spanned<String>>,
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
}

/// `campaign.search = { from, to, precision, step, confirm, budget }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchTable {
    pub from: Spanned<Positive>,
    pub to: Spanned<Positive>,
    pub precision: Option<Spanned<Positive>>,
    pub step: Spanned<PositiveDur>,
    pub confirm: Option<Spanned<i64>>,
    pub budget: Option<Spanned<PositiveDur>>,
}

/// `campaign.slo = { counted_ratio, p99_ms }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloTable {
    pub counted_ratio: Option<Spanned<Positive>>,
    pub p99_ms: Option<Spanned<Positive>>,
    /// The client's view (2xx / intended), for a service without a counter.
    pub success_ratio: Option<Spanned<Positive>>,
}

/// `[[campaign.step]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Option<Spanned<String>>,
    /// Requests per second; may be left out when `requests` is given.
    pub rate: Option<Spanned<Positive>>,
    pub duration: Spanned<PositiveDur>,
    pub replicas: Option<Count>,
    pub cpu_limit: Option<CpuLimit>,
    pub store: Option<StoreSpec>,
    pub requests: Option<Spanned<Count>>,
    pub ramp_from: Option<NonNegative>,
    /// This step's generator count, over `[generators] count`.
    pub generators: Option<Spanned<Count>>,
    /// An HPA for the step instead of a fixed replica count (kind = "kubernetes" only).
    pub autoscale: Option<Spanned<AutoscaleTable>>,
}

/// `autoscale = { min = 1, max = 4, cpu_utilization = 50 }` on a step: the HPA loadgen applies
/// for it, with its average CPU utilisation target in percent of the pods' CPU request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleTable {
    pub min: Spanned<Count>,
    pub max: Spanned<Count>,
    pub cpu_utilization: Spanned<Count>,
}

/// `[campaign.matrix]`: the cross product replicas × cpu_limit × rate × duration (a search
/// campaign's matrix has no rates or durations: replicas × cpu_limit × store).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    #[serde(default = "one_replica")]
    pub replicas: Vec<Count>,
    #[serde(default = "no_limit")]
    pub cpu_limit: Vec<CpuLimit>,
    pub rate: Option<Spanned<Vec<Positive>>>,
    pub duration: Option<Spanned<Vec<PositiveDur>>>,
    pub store: Option<Spanned<Stores>>,
}

/// One store, or (in a search campaign's matrix) a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stores {
    One(StoreSpec),
    Many(Vec<StoreSpec>),
}

impl<'de> Deserialize<'de> for Stores {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{value::StrDeserializer, IntoDeserializer, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Stores;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`memory`, `redis` or a list of them")
            }
            // The one store by its own parser, so a misspelt name lists the choices.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Stores, E> {
                let d: StrDeserializer<E> = v.into_deserializer();
                StoreSpec::deserialize(d).map(Stores::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stores, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<StoreSpec>()? {
                    out.push(s);
                }
                Ok(Stores::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Stores {
    pub fn list(&self) -> Vec<StoreSpec> {
        match self {
            Stores::One(s) => vec![*s],
            Stores::Many(v) => v.clone(),
        }
    }
}

fn one_replica() -> Vec<Count> {
    vec![Count(1)]
}

fn no_limit() -> Vec<CpuLimit> {
    vec![CpuLimit(None)]
}

impl Scenario {
    /// Reads and parses a scenario file (no expansion).
    pub fn read(path: &Path) -> Result<(Scenario, SourceText), ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let src = SourceText::new(path, text);
        let scenario = Scenario::parse(&src)?;
        Ok((scenario, src))
    }

    /// Parses scenario text; errors carry `src`'s path and positions.
    pub fn parse(src: &SourceText) -> Result<Scenario, ScenarioError> {
        toml::from_str(&src.text).map_err(|e| src.from_toml(&e))
    }
}
