//! The offered load of one step: a sequence of rate stages (constant or ramping) and how arrivals
//! are spread within them. Pure data; the [`crate::pacer`] turns it into due times.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One stage of a load profile: the rate goes linearly from `from_rps` to `to_rps` over
/// `duration` (equal rates make a constant stage, a zero-length stage an instant step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub duration: Duration,
    pub from_rps: f64,
    pub to_rps: f64,
}

/// How arrivals are placed: evenly spaced (`t0 + i/rate`), or a Poisson process with the same
/// mean rate (seeded, so a run can be repeated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrival {
    Uniform,
    Poisson { seed: u64 },
}

/// The offered load of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub stages: Vec<Stage>,
    pub arrival: Arrival,
}

impl Load {
    /// A constant rate for a fixed duration, evenly spaced: the TD4 shape.
    pub fn constant(rate_rps: f64, duration: Duration) -> Self {
        Self {
            stages: vec![Stage {
                duration,
                from_rps: rate_rps,
                to_rps: rate_rps,
            }],
            arrival: Arrival::Uniform,
        }
    }

    /// Total length of the profile.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Requests the profile asks for in total (the integral of the rate), rounded down.
    pub fn planned_requests(&self) -> u64 {
        let total: f64 = self
            .stages
            .iter()
            .map(|s| (s.from_rps + s.to_rps) / 2.0 * s.duration.as_secs_f64())
            .sum();
        total.floor() as u64
    }

    /// The highest rate anywhere in the profile (a ramp's end, say).
    pub fn peak_rate_rps(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.from_rps.max(s.to_rps))
            .fold(0.0, f64::max)
    }

    /// The nominal rate reported for the step: the mean rate over the whole profile.
    pub fn nominal_rate_rps(&self) -> f64 {
        let d = self.duration().as_secs_f64();
        if d == 0.0 {
            return self.stages.last().map(|s| s.to_rps).unwrap_or(0.0);
        }
        self.planned_requests() as f64 / d
    }
}
