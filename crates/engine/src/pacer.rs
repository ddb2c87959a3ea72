//! The pacer: when each request of a [`Load`] is due, as an offset from the start of the step.
//! A pure function of the profile (and, for Poisson arrivals, of the seed): no clock, no timers.
//! The attack asks for the next due time and sends everything whose time has come, so a late
//! wake-up catches up instead of sliding the schedule.
//!
//! Request *i* is due when the integral of the rate reaches *i* (`t = i/rate` for a constant
//! rate; the inverse of the quadratic integral for a linear ramp). Poisson arrivals use the same
//! integral as a time change: arrival *k* is due when it reaches the sum of *k* Exp(1) draws, which
//! gives a non-homogeneous Poisson process with the profile as its intensity.
//!
//! A sharded pacer ([`Pacer::sharded`]) walks the same full schedule and yields only its
//! shard's requests (index mod N = K), with their global index as sequence number: the N
//! shards partition the one-generator schedule exactly, Poisson draws included.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::load::{Arrival, Load};
use loadgen_model::shard::Shard;

/// Why a load profile cannot be paced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PacerError {
    #[error("load profile has no stages")]
    Empty,
    #[error("stage {0}: rates must be finite and >= 0 (got {1} -> {2})")]
    BadRate(usize, f64, f64),
    #[error("load profile asks for no request at all (rate x duration is 0)")]
    NoRequests,
}

/// One stage with the cumulative count and time at its start, precomputed.
#[derive(Debug, Clone)]
struct Segment {
    start_s: f64,
    duration_s: f64,
    from: f64,
    to: f64,
    /// Requests due before this stage (integral of the rate up to its start).
    count_before: f64,
    /// Requests due within it.
    count: f64,
}

impl Segment {
    /// Time offset within the stage at which the integral reaches `n` (0 ≤ n ≤ count).
    fn inverse(&self, n: f64) -> f64 {
        // N(t) = from·t + k·t², k = (to − from) / (2·D). The stable root of k·t² + from·t − n = 0
        // is t = 2n / (from + sqrt(from² + 4kn)); it degenerates to n/from when k = 0.
        let k = (self.to - self.from) / (2.0 * self.duration_s);
        let disc = (self.from * self.from + 4.0 * k * n).max(0.0);
        let denom = self.from + disc.sqrt();
        if denom <= 0.0 {
            0.0
        } else {
            (2.0 * n / denom).min(self.duration_s)
        }
    }

    /// Integral of the rate from the stage start to offset `t`.
    fn integral(&self, t: f64) -> f64 {
        let k = (self.to - self.from) / (2.0 * self.duration_s);
        self.from * t + k * t * t
    }
}

/// Due times of one load profile, in request order.
#[derive(Debug, Clone)]
pub struct Pacer {
    segments: Vec<Segment>,
    total_count: f64,
    total_s: f64,
    /// Index of the next request.
    next: u64,
    /// Stage the next request falls in (due times only grow, so the search only moves forward).
    cursor: usize,
    /// Poisson state: the operational time (cumulative count) of the next arrival.
    poisson: Option<(StdRng, f64)>,
    seed: Option<u64>,
    /// The part of the schedule this pacer yields.
    shard: Shard,
}

impl Pacer {
    /// Builds the pacer of the whole schedule; rejects profiles that cannot produce a single
    /// request.
    pub fn new(load: &Load) -> Result<Self, PacerError> {
        Self::sharded(load, Shard::WHOLE)
    }

    /// The pacer of one shard of the schedule: the requests whose index i has
    /// i mod N = K, each with its global index as sequence number.
    pub fn sharded(load: &Load, shard: Shard) -> Result<Self, PacerError> {
        if load.stages.is_empty() {
            return Err(PacerError::Empty);
        }
        let mut segments = Vec::with_capacity(load.stages.len());
        let (mut start_s, mut count_before) = (0.0, 0.0);
        for (i, st) in load.stages.iter().enumerate() {
            let ok = |r: f64| r.is_finite() && r >= 0.0;
            if !ok(st.from_rps) || !ok(st.to_rps) {
                return Err(PacerError::BadRate(i, st.from_rps, st.to_rps));
            }
            let duration_s = st.duration.as_secs_f64();
            if duration_s == 0.0 {
                // An instant step: no requests of its own, the next stage's rate applies.
                continue;
            }
            let count = (st.from_rps + st.to_rps) / 2.0 * duration_s;
            segments.push(Segment {
                start_s,
                duration_s,
                from: st.from_rps,
                to: st.to_rps,
                count_before,
                count,
            });
            start_s += duration_s;
            count_before += count;
        }
        if count_before <= 0.0 {
            return Err(PacerError::NoRequests);
        }
        let poisson = match load.arrival {
            Arrival::Uniform => None,
            Arrival::Poisson { seed } => {
                let mut rng = StdRng::seed_from_u64(seed);
                let first = exp1(&mut rng);
                Some((rng, first))
            }
        };
        let mut pacer = Self {
            segments,
            total_count: count_before,
            total_s: start_s,
            next: 0,
            cursor: 0,
            poisson,
            seed: match load.arrival {
                Arrival::Uniform => None,
                Arrival::Poisson { seed } => Some(seed),
            },
            shard,
        };
        pacer.skip(u64::from(shard.index));
        Ok(pacer)
    }

    /// The shard this pacer yields.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Passes over `n` requests of the full schedule (another shard's).
    fn skip(&mut self, n: u64) {
        match &mut self.poisson {
            None => self.next += n,
            // Every arrival draws, so a shard sees the same arrival times as one generator.
            Some((rng, op)) => {
                for _ in 0..n {
                    *op += exp1(rng);
                }
                self.next += n;
            }
        }
    }

    /// Length of the profile.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.total_s)
    }

    /// Expected number of requests over the whole profile (the integral of the rate).
    pub fn expected_total(&self) -> f64 {
        self.total_count
    }

    /// Expected number of requests due in `[0, t)`: the integral of the rate up to `t`.
    pub fn expected_count(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        if t >= self.total_s {
            return self.total_count;
        }
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.start_s <= t)
            .unwrap_or(&self.segments[0]);
        seg.count_before + seg.integral(t - seg.start_s)
    }

    /// Sequence number of the next request [`Pacer::next_due`] will return.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The due offset of the next request without consuming it; `None` past the profile's end.
    pub fn peek(&mut self) -> Option<Duration> {
        let n = match &self.poisson {
            None => self.next as f64,
            Some((_, op)) => *op,
        };
        // Requests whose integral reaches the total fall at or after the end: not part of it.
        if n >= self.total_count - 1e-9 {
            return None;
        }
        while self.cursor + 1 < self.segments.len()
            && n >= self.segments[self.cursor + 1].count_before
        {
            self.cursor += 1;
        }
        let seg = &self.segments[self.cursor];
        let within = (n - seg.count_before).clamp(0.0, seg.count);
        Some(Duration::from_secs_f64(seg.start_s + seg.inverse(within)))
    }

    /// The due offset of the next request, advancing to the one after (the shard's next).
    pub fn next_due(&mut self) -> Option<Duration> {
        let due = self.peek()?;
        self.skip(u64::from(self.shard.count));
        Some(due)
    }

    /// How many requests are due by `elapsed` (due time ≤ elapsed), counted from the start of
    /// the profile and independent of how far this pacer has been consumed: what the attack
    /// should have sent by then if it kept the schedule perfectly (this shard's part of it).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let mut fresh = self.restarted();
        if fresh.poisson.is_some() {
            let mut n = 0;
            while fresh.next_due().is_some_and(|d| d <= elapsed) {
                n += 1;
            }
            return n;
        }
        let total = self.total_requests_uniform();
        let whole = if elapsed.as_secs_f64() >= self.total_s {
            total
        } else {
            (self.expected_count(elapsed).floor() as u64 + 1).min(total)
        };
        self.shard.share_of(whole)
    }

    /// The same profile from its first request (and, for Poisson, its first draw).
    fn restarted(&self) -> Self {
        let mut p = self.clone();
        p.next = 0;
        p.cursor = 0;
        if let Some(seed) = self.seed {
            let mut rng = StdRng::seed_from_u64(seed);
            let first = exp1(&mut rng);
            p.poisson = Some((rng, first));
        }
        p.skip(u64::from(self.shard.index));
        p
    }

    /// Number of requests of a uniform profile: due times strictly before the end.
    fn total_requests_uniform(&self) -> u64 {
        let t = self.total_count - 1e-9;
        if t <= 0.0 {
            0
        } else {
            t.ceil() as u64
        }
    }
}

/// One Exp(1) draw by inversion; `1 - u` keeps the argument of `ln` in (0, 1].
fn exp1(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Stage;

    #[test]
    fn inverse_of_integral_round_trips_on_a_ramp() {
        let s = Segment {
            start_s: 0.0,
            duration_s: 10.0,
            from: 100.0,
            to: 300.0,
            count_before: 0.0,
            count: 2000.0,
        };
        for n in [0.0, 1.0, 500.0, 1999.0, 2000.0] {
            let t = s.inverse(n);
            assert!((s.integral(t) - n).abs() < 1e-6, "n={n} t={t}");
        }
    }

    #[test]
    fn zero_duration_stage_is_skipped() {
        let load = Load {
            stages: vec![
                Stage {
                    duration: Duration::ZERO,
                    from_rps: 5.0,
                    to_rps: 5.0,
                },
                Stage {
                    duration: Duration::from_secs(1),
                    from_rps: 10.0,
                    to_rps: 10.0,
                },
            ],
            arrival: Arrival::Uniform,
        };
        let p = Pacer::new(&load).unwrap();
        assert_eq!(p.segments.len(), 1);
    }
}
