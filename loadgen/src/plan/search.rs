//! A search campaign of the plan: the configurations whose capacity it searches, its search
//! settings and SLO, and the settings every probe shares. Its steps are not known in advance —
//! [`loadgen_judge::search::decide`] picks each rate as the run goes — so the plan holds what makes a
//! probe a [`Step`] ([`SearchPlan::probe`]) and what bounds the search's time.

use std::time::Duration;

use super::{Step, Topology};
use loadgen_engine::load::{Arrival, Load, Stage};
use loadgen_judge::search::{self, SearchSpec};
use loadgen_model::slo::Slo;
use loadgen_model::step_id::StepId;

/// One search campaign.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    pub campaign: String,
    pub spec: SearchSpec,
    pub slo: Slo,
    /// Searched one after the other, in this order (replicas, then CPU limit, then store).
    pub configurations: Vec<SearchConfiguration>,
    /// The campaign's settings (request, timeout, in-flight cap, connections, warm-up, pause,
    /// arrival) in a step whose load and topology each probe replaces.
    pub settings: Step,
}

/// A topology the search measures, and the key its probes are named by.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfiguration {
    /// `r1-cpu1`, `r2-nolimit`, with `-redis`/`-memory` when the campaign searches both stores.
    pub key: String,
    pub topology: Topology,
}

impl SearchPlan {
    /// The `index`-th probe of `config`, at `rate_rps`.
    pub fn probe(&self, config: &SearchConfiguration, index: u32, rate_rps: f64) -> Step {
        let arrival = match self.settings.load.arrival {
            // Each probe its own arrival pattern, repeatable run to run.
            Arrival::Poisson { seed } => Arrival::Poisson {
                seed: seed + u64::from(index),
            },
            Arrival::Uniform => Arrival::Uniform,
        };
        Step {
            campaign: self.campaign.clone(),
            name: probe_name(&config.key, index, rate_rps),
            topology: config.topology.clone(),
            load: Load {
                stages: vec![Stage {
                    duration: self.spec.step(),
                    from_rps: rate_rps,
                    to_rps: rate_rps,
                }],
                arrival,
            },
            ..self.settings.clone()
        }
    }

    /// Planned time of one probe: warm-up, load and the pause after it (deploys not included).
    pub fn probe_cost(&self) -> Duration {
        self.settings.warmup + self.spec.step() + self.settings.pause_after
    }

    /// The most probes one configuration can take.
    pub fn worst_case_probes(&self) -> usize {
        search::worst_case_probes(&self.spec)
    }

    /// Planned time of the whole search if every configuration takes its worst case (deploys
    /// not included; the budget, when set, stops it earlier).
    pub fn worst_case(&self) -> Duration {
        self.probe_cost() * (self.worst_case_probes() * self.configurations.len()) as u32
    }

    /// Whether a `--steps` glob selects `config`: on `campaign/search-<key>` or
    /// `search-<key>`, as its probes' names begin.
    pub fn selects(&self, config: &SearchConfiguration, pattern: &str) -> bool {
        StepId::new(Some(&self.campaign), &format!("search-{}", config.key)).matches(pattern)
    }

    /// Multiplies the probes' length, warm-up, pause and the budget by `f`.
    pub(super) fn scale_time(&mut self, f: f64) {
        self.spec.step_s *= f;
        self.spec.budget_s = self.spec.budget_s.map(|b| b * f);
        self.settings.warmup = self.settings.warmup.mul_f64(f);
        self.settings.pause_after = self.settings.pause_after.mul_f64(f);
    }
}

/// `search-r1-cpu1-03-210rps`: the configuration, the probe's place in its search (two digits,
/// so names sort in order) and its rate.
pub fn probe_name(key: &str, index: u32, rate_rps: f64) -> String {
    format!("search-{key}-{index:02}-{rate_rps:.0}rps")
}
