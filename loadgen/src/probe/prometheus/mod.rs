//! The Prometheus probe: a step seen through Prometheus over its exact `[start, end]` window —
//! clicks counted, CPU used, per replica — from a Prometheus loadgen starts itself
//! ([`PrometheusProbe::managed`]) or one that already watches the service
//! ([`PrometheusProbe::external`], e.g. in a cluster). [`loadgen_judge::check::prometheus::cross_check`] then compares that
//! view with loadgen's direct readings. Prometheus being unreachable, slow or missing a series
//! never fails a step: the view (or the affected field) is `None` with a `warn` finding naming
//! the cause. See `docs/prometheus.md`.

pub mod response;
pub mod server;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_http_query::{reqwest, Client};

use crate::promql as query;
use loadgen_model::result::{CheckName, Finding, PrometheusReplica, PrometheusView, Severity};
use loadgen_model::step_id::StepId;

use response::{Edges, ScrapeStatus};
pub use server::ManagedPrometheus;

/// Bound on one query or API call, on the wire and in Prometheus' own evaluation.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on waiting, after a step, for Prometheus to scrape every replica once more (so the
/// counter's last sample holds the step's last click).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A sensible bound for [`PrometheusProbe::wait_scraped`] after replicas start: Prometheus
/// re-reads the targets file within a second and scrapes within another, far more on a loaded
/// machine.
pub const SCRAPED_TIMEOUT: Duration = Duration::from_secs(20);
/// How many scrape intervals before `start` a counter read at the edges looks for a sample.
pub const LOOKBEHIND_SCRAPES: u32 = 3;

/// Errors setting up or waiting on Prometheus (queries never return these: see `observe`).
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("starting the managed prometheus failed: {0}")]
    Start(String),
    #[error("bad prometheus url `{0}`: {1}")]
    Url(String, String),
    #[error("writing the prometheus targets file failed: {0}")]
    Targets(String),
    #[error("prometheus at {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("prometheus did not scrape every target within {bound:?}: {pending}")]
    NotScraped { bound: Duration, pending: String },
}

/// The targets set by the last [`PrometheusProbe::set_targets`].
#[derive(Debug, Clone)]
struct CurrentTargets {
    step: String,
    count: usize,
    since_s: f64,
}

/// A Prometheus to read steps from: a client, plus the local server when loadgen manages it.
pub struct PrometheusProbe {
    client: Client,
    url: String,
    managed: Option<ManagedPrometheus>,
    current: Mutex<Option<CurrentTargets>>,
}

impl std::fmt::Debug for PrometheusProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusProbe")
            .field("url", &self.url)
            .field("managed", &self.managed)
            .finish_non_exhaustive()
    }
}

/// One query's outcome: its rendered text and the data, or why there is none.
type Answer = (
    String,
    Result<prometheus_http_query::response::Data, Failure>,
);

/// Why a query gave nothing, and whether Prometheus itself is out of reach (then the
/// remaining queries are not even tried).
#[derive(Debug, Clone)]
struct Failure {
    cause: String,
    unreachable: bool,
}

impl PrometheusProbe {
    /// Starts a local Prometheus (see [`server`]) and a client for it.
    pub async fn managed() -> Result<Self, PrometheusError> {
        Self::managed_scraping(None).await
    }

    /// [`PrometheusProbe::managed`], also scraping loadgen's own metrics at `generator`
    /// (`host:port`) as job `generator`.
    pub async fn managed_scraping(generator: Option<&str>) -> Result<Self, PrometheusError> {
        let server = ManagedPrometheus::start_scraping(generator).await?;
        let mut probe = Self::external(server.url())?;
        probe.managed = Some(server);
        Ok(probe)
    }

    /// A client for an existing Prometheus at `url` (e.g. `http://prometheus:9090`).
    pub fn external(url: &str) -> Result<Self, PrometheusError> {
        // No proxy: Prometheus is local or in-cluster, and a proxy from the environment would
        // turn "unreachable" into a confusing proxy error.
        let http = http_client().map_err(|e| PrometheusError::Url(url.into(), e.to_string()))?;
        let client =
            Client::from(http, url).map_err(|e| PrometheusError::Url(url.into(), e.to_string()))?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_string(),
            managed: None,
            current: Mutex::new(None),
        })
    }

    /// The base URL queried.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The managed server, if loadgen started one (its pid and directory, for checks).
    pub fn managed_server(&self) -> Option<&ManagedPrometheus> {
        self.managed.as_ref()
    }

    /// Points the managed Prometheus at this step's replicas (each one's `http://host:port/path`
    /// to scrape); the previous step's targets are dropped. An external Prometheus finds
    /// targets itself: no-op.
    pub async fn set_targets(&self, step: &str, urls: &[String]) -> Result<(), PrometheusError> {
        let Some(server) = &self.managed else {
            return Ok(());
        };
        server.set_targets(step, urls)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(CurrentTargets {
            step: step.into(),
            count: urls.len(),
            since_s: unix_s(SystemTime::now()),
        });
        Ok(())
    }

    /// Waits (at most `bound`) until every current target has been scraped since it was set and
    /// is up. External: only checks that Prometheus answers.
    pub async fn wait_scraped(&self, bound: Duration) -> Result<(), PrometheusError> {
        let deadline = Instant::now() + bound;
        let current = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(current) = current.filter(|_| self.managed.is_some()) else {
            return match tokio::time::timeout(bound, self.client.is_server_ready()).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err(self.unreachable("not ready".into())),
                Ok(Err(e)) => Err(self.unreachable(describe(&e).cause)),
                Err(_) => Err(self.unreachable(format!("no answer within {bound:?}"))),
            };
        };
        if current.count == 0 {
            return Ok(());
        }
        loop {
            let last = match self
                .scrape_status(Some(&current.step), current.since_s)
                .await
            {
                Ok(s) if s.done() && s.targets == current.count => return Ok(()),
                Ok(s) if s.targets < current.count => format!(
                    "{} of {} targets discovered; {}",
                    s.targets,
                    current.count,
                    s.pending.join(", ")
                ),
                Ok(s) => s.pending.join(", "),
                Err(f) => f.cause,
            };
            if Instant::now() >= deadline {
                return Err(PrometheusError::NotScraped {
                    bound,
                    pending: last,
                });
            }
            tokio::time::sleep(server::POLL).await;
        }
    }

    /// The step seen through Prometheus over `[start, end]`. Never fails: whatever could not be
    /// read is `None`, with a `warn` finding saying why (the whole view is `None` when
    /// Prometheus is unreachable). Call it after the step's load has drained and before its
    /// replicas are torn down, so Prometheus can scrape their final counters.
    pub async fn observe(
        &self,
        step: &str,
        start: SystemTime,
        end: SystemTime,
        site: &str,
        overrides: &BTreeMap<String, String>,
    ) -> (Option<PrometheusView>, Vec<Finding>) {
        let warn = |message: String| warning(step, message);
        let (start_s, end_s) = (unix_s(start), unix_s(end));
        if end_s <= start_s {
            return (
                None,
                vec![warn(format!(
                    "prometheus view skipped: the step's window is empty ({start_s:.3} .. {end_s:.3})"
                ))],
            );
        }
        let templates = match query::resolve(overrides) {
            Ok(t) => t,
            Err(e) => return (None, vec![warn(format!("prometheus view skipped: {e}"))]),
        };
        let mut findings = Vec::new();
        let scrape_interval_s = match self.scrape_interval(step, end_s, &mut findings).await {
            Ok(i) => i,
            Err(unreachable) => return (None, vec![unreachable]),
        };
        let eval_s = unix_s(SystemTime::now()).max(end_s);
        let interval = scrape_interval_s.unwrap_or(server::SCRAPE_INTERVAL.as_secs_f64());
        let params = query::QueryParams {
            site: site.into(),
            step: step.into(),
            start_s,
            end_s,
            eval_s,
            lookbehind: Duration::from_secs_f64(interval * f64::from(LOOKBEHIND_SCRAPES)),
        };
        let answers = match self
            .query_all(step, &templates, &params, &mut findings)
            .await
        {
            Ok(a) => a,
            Err(unreachable) => return (None, vec![unreachable]),
        };
        let edges = Edges {
            start_s,
            eval_s,
            scrape_interval_s: interval,
        };
        let mut view = PrometheusView {
            window_s: end_s - start_s,
            scrape_interval_s,
            ..PrometheusView::default()
        };
        fill_view(&mut view, step, &answers, edges, &mut findings);
        (Some(view), findings)
    }

    /// The scrape interval to judge the step by, after waiting for the step's last scrape.
    /// `Err` is the finding of an unreachable Prometheus; other trouble is a finding pushed to
    /// `findings` and an unknown interval.
    async fn scrape_interval(
        &self,
        step: &str,
        end_s: f64,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<f64>, Finding> {
        let settled = match self.settle(step, end_s).await {
            Ok(s) => s.scrape_interval_s,
            Err(f) if f.unreachable => return Err(self.unreachable_finding(step, &f.cause)),
            Err(f) => {
                findings.push(warning(
                    step,
                    if self.managed.is_some() {
                        format!(
                            "prometheus had not scraped every replica of the step after it ended \
                             ({}); its counter may miss the last clicks",
                            f.cause
                        )
                    } else {
                        format!(
                            "prometheus' target list could not be read ({}); scrape interval unknown",
                            f.cause
                        )
                    },
                ));
                None
            }
        };
        Ok(match &self.managed {
            Some(_) => Some(server::SCRAPE_INTERVAL.as_secs_f64()),
            None => settled,
        })
    }

    /// Every query rendered and evaluated at `params.eval_s`. `Err` is the finding of an
    /// unreachable Prometheus (the view is then void); a query that cannot be rendered is a
    /// finding and skipped.
    async fn query_all(
        &self,
        step: &str,
        templates: &BTreeMap<String, String>,
        params: &query::QueryParams,
        findings: &mut Vec<Finding>,
    ) -> Result<BTreeMap<String, Answer>, Finding> {
        let mut answers: BTreeMap<String, Answer> = BTreeMap::new();
        for (name, template) in templates {
            let text = match query::render(name, template, params) {
                Ok(t) => t,
                Err(e) => {
                    findings.push(warning(step, format!("prometheus query skipped: {e}")));
                    continue;
                }
            };
            let result = self.instant(&text, params.eval_s).await;
            if let Err(f) = &result {
                if f.unreachable {
                    return Err(self.unreachable_finding(step, &f.cause));
                }
            }
            answers.insert(name.clone(), (text, result));
        }
        Ok(answers)
    }

    fn unreachable_finding(&self, step: &str, cause: &str) -> Finding {
        warning(
            step,
            format!(
                "prometheus view missing: {} is unreachable ({cause})",
                self.url
            ),
        )
    }

    /// Stops the managed Prometheus and removes its directory; nothing for an external one.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.managed.take() {
            server.shutdown().await;
        }
    }

    /// After a step: wait (bounded) until every replica of `step` has been scraped since now,
    /// so the last sample holds the final counters. External: one look at the targets, for
    /// the scrape interval and reachability.
    async fn settle(&self, step: &str, end_s: f64) -> Result<ScrapeStatus, Failure> {
        if self.managed.is_none() {
            return self.scrape_status(None, 0.0).await;
        }
        let since = unix_s(SystemTime::now()).max(end_s);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let status = self.scrape_status(Some(step), since).await?;
            // No target of this step left (already replaced): its data is what it is.
            if status.targets == 0 || status.done() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Failure {
                    cause: status.pending.join(", "),
                    unreachable: false,
                });
            }
            tokio::time::sleep(server::POLL).await;
        }
    }

    async fn scrape_status(
        &self,
        step: Option<&str>,
        since_s: f64,
    ) -> Result<ScrapeStatus, Failure> {
        match tokio::time::timeout(QUERY_TIMEOUT, self.client.targets(None)).await {
            Ok(Ok(t)) => Ok(response::scrape_status(&t, step, since_s)),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(timed_out()),
        }
    }

    async fn instant(
        &self,
        text: &str,
        eval_s: f64,
    ) -> Result<prometheus_http_query::response::Data, Failure> {
        let request = self
            .client
            .query(text)
            .query("time", format!("{eval_s:.3}"))
            .timeout(QUERY_TIMEOUT.as_millis() as i64)
            .get();
        match tokio::time::timeout(QUERY_TIMEOUT, request).await {
            Ok(Ok(r)) => Ok(r.into_inner().0),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(timed_out()),
        }
    }

    fn unreachable(&self, cause: String) -> PrometheusError {
        PrometheusError::Unreachable {
            url: self.url.clone(),
            cause,
        }
    }
}

/// A `warn` finding of the Prometheus view of `step`.
fn warning(step: &str, message: String) -> Finding {
    Finding {
        check: CheckName::Prometheus,
        severity: Severity::Warn,
        message,
        step: Some(StepId::parse(step)),
    }
}

/// The view's numbers from the answers: totals and per replica, each `None` (with a finding)
/// when its query gave nothing usable.
fn fill_view(
    view: &mut PrometheusView,
    step: &str,
    answers: &BTreeMap<String, Answer>,
    edges: Edges,
    findings: &mut Vec<Finding>,
) {
    view.queries = answers
        .iter()
        .map(|(k, (text, _))| (k.clone(), text.clone()))
        .collect();
    let mut read = |name: &str| -> Option<BTreeMap<String, f64>> {
        let (_, result) = answers.get(name)?;
        let outcome = match result {
            Ok(data) => response::per_replica(data, edges).map_err(|e| e.to_string()),
            Err(f) => Err(f.cause.clone()),
        };
        match outcome {
            Ok(m) => Some(m),
            Err(cause) => {
                findings.push(warning(
                    step,
                    format!("prometheus `{name}` has no value for this step: {cause}"),
                ));
                None
            }
        }
    };
    view.counter_increase = read(query::COUNTER_INCREASE).map(|m| m.values().sum());
    view.cpu_cores_used = read(query::CPU_CORES).map(|m| m.values().sum());
    view.throttled_ratio = read(query::THROTTLED_RATIO).map(|m| m.values().sum());
    let counters = read(query::COUNTER_PER_REPLICA).unwrap_or_default();
    let cpus = read(query::CPU_PER_REPLICA).unwrap_or_default();
    view.per_replica = merge_replicas(&counters, &cpus);
}

/// Per-replica rows from the two per-replica readings, in replica order (numeric when the
/// keys are numbers).
fn merge_replicas(
    counters: &BTreeMap<String, f64>,
    cpus: &BTreeMap<String, f64>,
) -> Vec<PrometheusReplica> {
    let mut keys: Vec<&String> = counters.keys().chain(cpus.keys()).collect();
    keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), (*k).clone()));
    keys.dedup();
    keys.into_iter()
        .map(|k| PrometheusReplica {
            instance: k.clone(),
            cpu_cores_used: cpus.get(k).copied(),
            counter_increase: counters.get(k).copied(),
        })
        .collect()
}

fn timed_out() -> Failure {
    Failure {
        cause: format!("no answer within {QUERY_TIMEOUT:?}"),
        unreachable: true,
    }
}

fn describe(e: &prometheus_http_query::Error) -> Failure {
    use prometheus_http_query::Error;
    match e {
        Error::Client(c) => {
            let inner = c.inner();
            let unreachable = inner.is_some_and(|r| r.is_connect() || r.is_timeout());
            let detail = inner
                .map(|r| {
                    let mut s = r.to_string();
                    let mut src = std::error::Error::source(r);
                    while let Some(x) = src {
                        s = format!("{s}: {x}");
                        src = x.source();
                    }
                    s
                })
                .unwrap_or_default();
            Failure {
                cause: format!("{c}: {detail}").trim_end_matches(": ").to_string(),
                unreachable,
            }
        }
        Error::Prometheus(p) => Failure {
            cause: format!("prometheus rejected the query: {p}"),
            unreachable: false,
        },
        other => Failure {
            cause: other.to_string(),
            unreachable: false,
        },
    }
}

fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(QUERY_TIMEOUT)
        .timeout(QUERY_TIMEOUT)
        .build()
}

/// True when `url` answers 2xx within [`QUERY_TIMEOUT`].
pub(crate) async fn http_get_ok(url: &str) -> bool {
    let Ok(client) = http_client() else {
        return false;
    };
    matches!(
        tokio::time::timeout(QUERY_TIMEOUT, client.get(url).send()).await,
        Ok(Ok(r)) if r.status().is_success()
    )
}

/// Unix seconds, with sub-second precision.
pub fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
