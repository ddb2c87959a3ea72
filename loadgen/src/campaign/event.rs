//! What a campaign tells while it runs, as typed events to one sink: the library prints
//! nothing. The CLI renders them on the terminal; a live page, a metrics endpoint or JSON logs
//! subscribe to the same stream. Every event is also reflected in what run.json saves (a
//! finding, a step, the status), so a consumer that misses one loses no measurement.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loadgen_engine::progress::{LiveDetail, LiveSnapshot};
use loadgen_model::result::{Finding, RunStatus, StepResult};
use loadgen_model::search::{Ending, ProbeKind};
use loadgen_model::step_id::StepId;

/// A step of the plan as the run announces it before the first one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub step: StepId,
    pub rate_rps: f64,
    pub duration: Duration,
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
}

/// One replica's cgroup counters, cumulative since its group was made (a new deployment
/// starts them again from 0). A counter the kernel does not keep is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaUsage {
    pub replica: u32,
    pub cpu_s: Option<f64>,
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_s: Option<f64>,
}

/// One thing that happened in a campaign.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run is about to start its steps: the scenario, where its files go (none for an
    /// ad-hoc attack), the listed steps, and how many capacity searches follow them (their
    /// probes are not known yet).
    RunStarted {
        scenario: String,
        out_dir: Option<PathBuf>,
        steps: Vec<PlannedStep>,
        searches: usize,
    },
    /// A step is about to deploy and run (`index` counts from 0 over the listed steps).
    StepStarted {
        index: usize,
        total: usize,
        step: StepId,
        rate_rps: f64,
        duration: Duration,
        replicas: u32,
        cpu_limit_cores: Option<f64>,
    },
    /// A reading of the attack in progress (only when the run asked for progress): the
    /// counters about four times a second, the detail once a second.
    Progress {
        step: StepId,
        live: LiveSnapshot,
        detail: Option<Arc<LiveDetail>>,
        total: Duration,
    },
    /// The replicas' CPU while the attack runs, about once a second (only when the run asked
    /// for progress, and only for replicas in cgroups loadgen made).
    ReplicaCpu {
        step: StepId,
        replicas: Vec<ReplicaUsage>,
    },
    /// The attack of the current step is over (only when the run asked for progress): its
    /// last reading, with every request accounted for.
    AttackEnded {
        step: StepId,
        last: LiveSnapshot,
        detail: Option<Arc<LiveDetail>>,
    },
    /// A step ran and its result was saved.
    StepFinished { result: Box<StepResult> },
    /// A step could not run (its finding says why, too).
    StepFailed { step: StepId, cause: String },
    /// A finding about the run as a whole, as it is recorded (orphans swept, the restore, a
    /// search stopped by its budget, a stop after a target failure).
    Finding { finding: Finding },
    /// A capacity search is about to run a probe.
    ProbeStarted {
        campaign: String,
        configuration: String,
        /// 0-based, and the most probes the search can take.
        index: u32,
        worst_case: usize,
        kind: ProbeKind,
        step: StepId,
        rate_rps: f64,
        duration: Duration,
        replicas: u32,
        cpu_limit_cores: Option<f64>,
    },
    /// A probe's SLO verdict, as the search decides on it.
    ProbeJudged {
        step: StepId,
        passed: bool,
        /// Each bound that broke, described.
        broken: Vec<String>,
    },
    /// A configuration's search is over.
    SearchEnded {
        campaign: String,
        configuration: String,
        ending: Ending,
    },
    /// The run is over and run.json holds its final state.
    RunEnded { status: RunStatus },
}

/// The load a step or a probe is about to offer, from its start event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadShape<'a> {
    pub step: &'a StepId,
    /// A capacity search's probe (not one of the listed steps).
    pub probe: bool,
    pub rate_rps: f64,
    pub duration: Duration,
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
}

impl Event {
    /// The shape of a step's or a probe's load, when this event starts one.
    pub fn load_shape(&self) -> Option<LoadShape<'_>> {
        let (step, probe, rate_rps, duration, replicas, cpu_limit_cores) = match self {
            Event::StepStarted {
                step,
                rate_rps,
                duration,
                replicas,
                cpu_limit_cores,
                ..
            } => (step, false, rate_rps, duration, replicas, cpu_limit_cores),
            Event::ProbeStarted {
                step,
                rate_rps,
                duration,
                replicas,
                cpu_limit_cores,
                ..
            } => (step, true, rate_rps, duration, replicas, cpu_limit_cores),
            _ => return None,
        };
        Some(LoadShape {
            step,
            probe,
            rate_rps: *rate_rps,
            duration: *duration,
            replicas: *replicas,
            cpu_limit_cores: *cpu_limit_cores,
        })
    }
}

/// Where events go: a cheap, shareable handle on one function.
#[derive(Clone)]
pub struct Events(Arc<dyn Fn(&Event) + Send + Sync>);

impl Events {
    pub fn new(sink: impl Fn(&Event) + Send + Sync + 'static) -> Events {
        Events(Arc::new(sink))
    }

    /// A sink that drops every event (tests, and runs nobody watches).
    pub fn quiet() -> Events {
        Events::new(|_| {})
    }

    pub fn emit(&self, event: Event) {
        (self.0)(&event)
    }

    /// One sink that hands each event to every one of `sinks`, in order.
    pub fn fan_out(sinks: Vec<Events>) -> Events {
        Events::new(move |e| sinks.iter().for_each(|s| (s.0)(e)))
    }
}

impl Default for Events {
    fn default() -> Events {
        Events::quiet()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Events(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_emitted_event_reaches_the_sink_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let events = Events::new(move |e| sink.lock().unwrap().push(format!("{e:?}")));
        events.clone().emit(Event::RunEnded {
            status: RunStatus::Completed,
        });
        events.emit(Event::AttackEnded {
            step: StepId::parse("a/b"),
            last: LiveSnapshot::default(),
            detail: None,
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].starts_with("RunEnded"), "{seen:?}");
        assert!(seen[1].contains("AttackEnded"), "{seen:?}");
    }

    #[test]
    fn a_fan_out_hands_each_event_to_every_sink() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = |tag: &'static str| {
            let seen = seen.clone();
            Events::new(move |e| seen.lock().unwrap().push(format!("{tag}:{e:?}")))
        };
        let both = Events::fan_out(vec![sink("a"), sink("b")]);
        both.emit(Event::RunEnded {
            status: RunStatus::Completed,
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("a:RunEnded") && seen[1].starts_with("b:RunEnded"));
    }
}
