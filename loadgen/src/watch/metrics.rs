//! loadgen's own metrics while a run lasts, in the Prometheus text exposition: a subscriber of
//! the campaign's event stream ([`RunMetrics::sink`]) keeps the run's totals, and a scrape
//! ([`RunMetrics::encode`]) writes them. Counters and histograms are cumulative over the whole
//! run (each attack's last reading is folded into the total when it ends), so `rate()` works
//! across steps; gauges describe the current step. Names follow Prometheus conventions (base
//! units in the name, `_total` on counters); a value that was not measured is absent, not 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

use super::exposition::Scrape;

use crate::campaign::{Event, Events, ReplicaUsage};
use loadgen_engine::progress::{LiveDetail, LiveSnapshot};
use loadgen_engine::record::LiveBuckets;
use loadgen_model::result::{OutcomeCounts, Severity, StepResult};
use loadgen_model::step_id::StepId;

/// The run's metrics, shared by the event sink and the scrape handler.
#[derive(Debug, Default)]
pub struct RunMetrics {
    state: Mutex<State>,
}

/// What an attack has counted (a finished attack's, the run's total, or the current one's).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Totals {
    pub(super) intended: u64,
    pub(super) sent: u64,
    pub(super) dropped: u64,
    pub(super) outcomes: BTreeMap<String, u64>,
    pub(super) buckets: LiveBuckets,
    pub(super) connections_opened: u64,
}

impl Totals {
    /// A reading of the engine; the outcomes and histograms come with the detail (once a
    /// second), the counters with every reading.
    fn of(live: &LiveSnapshot, detail: Option<&LiveDetail>) -> Totals {
        Totals {
            intended: live.sent + live.dropped,
            sent: live.sent,
            dropped: live.dropped,
            outcomes: detail
                .map(|d| outcome_labels(&d.outcomes))
                .unwrap_or_default(),
            buckets: detail.map(|d| d.buckets).unwrap_or_default(),
            connections_opened: detail.map_or(0, |d| d.connections_opened),
        }
    }

    /// A step the engine did not report live (a sharded step): its saved counts only.
    fn of_result(r: &StepResult) -> Totals {
        Totals {
            intended: r.intended,
            sent: r.sent,
            dropped: r.dropped,
            outcomes: outcome_labels(&r.outcomes),
            buckets: LiveBuckets::default(),
            connections_opened: r.generator.connections_opened.unwrap_or(0),
        }
    }

    pub(super) fn add(&mut self, o: &Totals) {
        self.intended += o.intended;
        self.sent += o.sent;
        self.dropped += o.dropped;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.buckets.latency.add(&o.buckets.latency);
        self.buckets.service_time.add(&o.buckets.service_time);
        self.buckets.schedule_lag.add(&o.buckets.schedule_lag);
        self.connections_opened += o.connections_opened;
    }
}

/// The `outcome` label of each sent request's fate: `ok`, `http_<code>`, `timeout`, …,
/// `tls_<reason>` (dropped requests have their own counter).
fn outcome_labels(c: &OutcomeCounts) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::from([
        ("ok".to_string(), c.ok),
        ("timeout".to_string(), c.timeout),
        ("connect_refused".to_string(), c.connect_refused),
        ("connect_timeout".to_string(), c.connect_timeout),
        ("reset".to_string(), c.reset),
        ("io_other".to_string(), c.io_other),
    ]);
    out.extend(c.status.iter().map(|(k, v)| (format!("http_{k}"), *v)));
    out.extend(c.tls.iter().map(|(k, v)| (format!("tls_{k}"), *v)));
    out
}

/// The current (or last) step, as its start announced it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CurrentStep {
    pub(super) step: StepId,
    pub(super) index: usize,
    pub(super) rate_rps: f64,
    pub(super) replicas: u32,
    pub(super) cpu_limit_cores: Option<f64>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) scenario: Option<String>,
    pub(super) steps_planned: Option<usize>,
    /// Finished attacks, folded.
    pub(super) done: Totals,
    /// The attack in progress, its latest reading.
    pub(super) current: Totals,
    pub(super) in_flight: Option<u64>,
    pub(super) connections_open: Option<u64>,
    /// The step whose attack was folded into `done` (a sharded step is folded from its result).
    pub(super) folded: Option<StepId>,
    pub(super) step: Option<CurrentStep>,
    pub(super) running: bool,
    pub(super) replicas: BTreeMap<u32, ReplicaUsage>,
    /// Replica CPU of groups that are gone, so each counter keeps growing across steps.
    pub(super) replicas_done: BTreeMap<u32, ReplicaUsage>,
    pub(super) counted_ratio: Option<f64>,
    pub(super) success_ratio: Option<f64>,
    pub(super) business_counter: Option<u64>,
    pub(super) findings: BTreeMap<(String, String), u64>,
    pub(super) steps_finished: BTreeMap<&'static str, u64>,
    /// Ready and desired replicas of the last autoscale sample.
    pub(super) scaled: BTreeMap<&'static str, u32>,
}

impl RunMetrics {
    pub fn new() -> Arc<RunMetrics> {
        Arc::new(RunMetrics::default())
    }

    /// The sink that keeps these metrics up to date.
    pub fn sink(self: &Arc<Self>) -> Events {
        let me = self.clone();
        Events::new(move |e| me.lock().apply(e))
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exposition (Prometheus text format 0.0.4).
    pub fn encode(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(self.clone())));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

impl State {
    fn apply(&mut self, e: &Event) {
        match e {
            Event::RunStarted {
                scenario, steps, ..
            } => {
                self.scenario = Some(scenario.clone());
                self.steps_planned = Some(steps.len());
            }
            Event::StepStarted { .. } | Event::ProbeStarted { .. } => {
                let Some(shape) = e.load_shape() else { return };
                let index = match e {
                    Event::StepStarted { index, .. } => *index,
                    // Probes follow the listed steps: the run's step count goes on.
                    _ => self.step.as_ref().map_or(0, |s| s.index + 1),
                };
                self.start(CurrentStep {
                    step: shape.step.clone(),
                    index,
                    rate_rps: shape.rate_rps,
                    replicas: shape.replicas,
                    cpu_limit_cores: shape.cpu_limit_cores,
                });
            }
            Event::Progress { live, detail, .. } => self.progress(live, detail.as_deref()),
            Event::ReplicaCpu { replicas, .. } => {
                for r in replicas {
                    self.replicas.insert(r.replica, *r);
                }
            }
            Event::AttackEnded {
                step, last, detail, ..
            } => {
                self.progress(last, detail.as_deref());
                self.done.add(&std::mem::take(&mut self.current));
                self.folded = Some(step.clone());
                self.running = false;
                self.in_flight = Some(0);
            }
            Event::StepFinished { result } => self.finished(result),
            Event::StepFailed { .. } => {
                self.running = false;
                *self.steps_finished.entry("failed").or_default() += 1;
            }
            Event::Finding { finding } => {
                let key = (
                    finding.check.as_str().to_string(),
                    severity(finding.severity),
                );
                *self.findings.entry(key).or_default() += 1;
            }
            Event::ProbeJudged { .. } | Event::SearchEnded { .. } | Event::RunEnded { .. } => {}
        }
    }

    fn start(&mut self, step: CurrentStep) {
        // Replica groups are made anew per step: keep what the old ones used.
        for (i, r) in std::mem::take(&mut self.replicas) {
            let d = self.replicas_done.entry(i).or_insert(ReplicaUsage {
                replica: i,
                cpu_s: None,
                periods: None,
                throttled_periods: None,
                throttled_s: None,
            });
            d.cpu_s = sum_opt(d.cpu_s, r.cpu_s);
            d.periods = sum_opt(d.periods, r.periods);
            d.throttled_periods = sum_opt(d.throttled_periods, r.throttled_periods);
            d.throttled_s = sum_opt(d.throttled_s, r.throttled_s);
        }
        self.step = Some(step);
        self.running = true;
        self.folded = None;
        self.scaled.clear();
    }

    fn progress(&mut self, live: &LiveSnapshot, detail: Option<&LiveDetail>) {
        let mut t = Totals::of(live, detail);
        if detail.is_none() {
            // Keep the last detail's outcomes and histograms until the next one comes.
            t.outcomes = std::mem::take(&mut self.current.outcomes);
            t.buckets = self.current.buckets;
            t.connections_opened = self.current.connections_opened;
        }
        self.current = t;
        self.in_flight = Some(live.in_flight);
        self.connections_open = Some(live.connections_open);
    }

    fn finished(&mut self, r: &StepResult) {
        let id = r.id();
        if self.folded.as_ref() != Some(&id) {
            // Not reported live (a sharded step, or a run without progress): its saved counts.
            self.current = Totals::default();
            self.done.add(&Totals::of_result(r));
        }
        self.folded = Some(id);
        self.running = false;
        self.counted_ratio = r.counted_ratio;
        self.success_ratio = r.success_ratio;
        self.business_counter = r.counter.as_ref().and_then(|c| c.after);
        let verdict = if r.valid { "valid" } else { "invalid" };
        *self.steps_finished.entry(verdict).or_default() += 1;
        if let Some(p) = r.scaling.last() {
            if let Some(n) = p.ready_replicas {
                self.scaled.insert("ready", n);
            }
            if let Some(n) = p.desired_replicas {
                self.scaled.insert("desired", n);
            }
        }
    }
}

pub(super) fn sum_opt<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

fn severity(s: Severity) -> String {
    match s {
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Fail => "fail",
    }
    .to_string()
}
