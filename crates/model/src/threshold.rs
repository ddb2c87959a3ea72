//! Thresholds: a bound on one [`Metric`] over a set of steps, as a scenario states it and
//! run.json saves it. The metric names live here once; `check::threshold` reads their values
//! from a saved step.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::step_id::StepId;

/// A metric a threshold may bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    CountedRatio,
    SuccessRatio,
    AchievedRatio,
    P50Ms,
    P90Ms,
    P99Ms,
    P999Ms,
    MaxMs,
    Dropped,
}

impl Metric {
    /// Every metric, in the order the docs list them.
    pub const ALL: [Metric; 9] = [
        Metric::CountedRatio,
        Metric::SuccessRatio,
        Metric::AchievedRatio,
        Metric::P50Ms,
        Metric::P90Ms,
        Metric::P99Ms,
        Metric::P999Ms,
        Metric::MaxMs,
        Metric::Dropped,
    ];

    /// The name a scenario writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::CountedRatio => "counted_ratio",
            Metric::SuccessRatio => "success_ratio",
            Metric::AchievedRatio => "achieved_ratio",
            Metric::P50Ms => "p50_ms",
            Metric::P90Ms => "p90_ms",
            Metric::P99Ms => "p99_ms",
            Metric::P999Ms => "p999_ms",
            Metric::MaxMs => "max_ms",
            Metric::Dropped => "dropped",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The accepted names, comma-separated (for error messages).
    pub fn names() -> String {
        Metric::ALL.map(Metric::as_str).join(", ")
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Metric::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown metric \"{name}\", expected one of {}",
                Metric::names()
            ))
        })
    }
}

/// A threshold from the scenario: a metric bound on a set of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: Metric,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Step globs it applies to; empty: every step.
    pub steps: Vec<String>,
}

impl Threshold {
    /// Whether this threshold applies to the step `id` (no step globs: every step).
    pub fn applies_to(&self, id: &StepId) -> bool {
        self.steps.is_empty() || self.steps.iter().any(|p| id.matches(p))
    }

    /// The bound in words: `in [a, b]`, `≥ a`, `≤ b`.
    pub fn bound(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("in [{a}, {b}]"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => "(no bound)".into(),
        }
    }

    /// Whether `v` breaks the bound.
    pub fn is_broken_by(&self, v: f64) -> bool {
        self.min.is_some_and(|m| v < m) || self.max.is_some_and(|m| v > m)
    }
}
