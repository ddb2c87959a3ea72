//! What run.json keeps of a capacity search: how it was asked for ([`SearchSpec`]), why each
//! probe ran ([`ProbeKind`]) and how the search ended ([`Ending`]). The decisions themselves
//! (which rate next, what the probes say) are `loadgen-judge`'s `search` module.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Each growth probe offers this many times the rate of the last one.
pub const GROWTH: f64 = 2.0;
/// The narrowest `precision` a scenario may ask for: below it, bisection only splits whole
/// requests per second (and the worst case of a search grows for nothing).
pub const MIN_PRECISION: f64 = 0.01;

/// How one configuration's capacity is searched (the scenario's `search = {…}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSpec {
    /// The first rate probed.
    pub from_rps: f64,
    /// The highest rate probed: a configuration that passes it is "at least `to`".
    pub to_rps: f64,
    /// Bisection stops when failing / passing − 1 ≤ precision.
    pub precision: f64,
    /// How long each probe offers load (warm-up and pause are the campaign's).
    pub step_s: f64,
    /// Repeats of the best passing rate, and of the first failing one, after bisection.
    pub confirm: u32,
    /// Wall-clock time the whole search campaign may take, deploys included; `None`: no
    /// bound but the worst case.
    pub budget_s: Option<f64>,
}

impl SearchSpec {
    pub fn step(&self) -> Duration {
        Duration::from_secs_f64(self.step_s)
    }

    pub fn budget(&self) -> Option<Duration> {
        self.budget_s.map(Duration::from_secs_f64)
    }
}

/// Why a probe was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Growing the rate until the SLO breaks.
    Grow,
    /// Halving the bracket between the best pass and the first failure.
    Bisect,
    /// A repeat of the best passing or the first failing rate (or of a rate whose repeats tied,
    /// to break the tie).
    Confirm,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Grow => "grow",
            ProbeKind::Bisect => "bisect",
            ProbeKind::Confirm => "confirm",
        }
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Bracketed to the precision and confirmed.
    Converged,
    /// Even `to` passed: the capacity is at least `to`.
    PassedTop,
    /// Already `from` failed: the capacity is below `from`.
    FailedFrom,
    /// The next probe would have overrun the budget.
    Budget,
    /// The worst-case number of probes was reached (a guard: the decisions never need more).
    ProbeLimit,
    /// The probes stop before the search decided to (the run was interrupted, or a probe
    /// could not run).
    Unfinished,
    /// The generator could not keep its schedule: a probe invalid for that was re-run as often
    /// as the search allows (at one rate, or in all) and was invalid again, so no rate above
    /// the best pass says anything about the target. Absent from runs saved before it existed,
    /// which read as before.
    GeneratorLimited,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Converged => "converged",
            Ending::PassedTop => "passed_top",
            Ending::FailedFrom => "failed_from",
            Ending::Budget => "budget",
            Ending::ProbeLimit => "probe_limit",
            Ending::Unfinished => "unfinished",
            Ending::GeneratorLimited => "generator_limited",
        }
    }
}
