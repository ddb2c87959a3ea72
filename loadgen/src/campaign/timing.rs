//! Where a step's wall time goes, phase by phase ([`StepTiming`] in run.json): what a step
//! costs beyond its warm-up and its load is what makes a capacity search slow, so every step
//! says it.

use std::time::{Duration, Instant};

use loadgen_model::result::StepTiming;

/// Laps of one step, taken as it goes.
pub(super) struct PhaseClock {
    start: Instant,
    last: Instant,
    timing: StepTiming,
}

/// The phases a step's time is split into, in the order they run.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    Deploy,
    WarmUp,
    Before,
    Attack,
    After,
    Teardown,
}

impl PhaseClock {
    pub fn start() -> Self {
        let now = Instant::now();
        PhaseClock {
            start: now,
            last: now,
            timing: StepTiming::default(),
        }
    }

    /// Ends `phase` now: the time since the last lap is its.
    pub fn lap(&mut self, phase: Phase) {
        self.lap_until(phase, Instant::now());
    }

    /// Ends `phase` at `now` (an instant already past, or this one).
    pub fn lap_until(&mut self, phase: Phase, now: Instant) {
        let now = now.max(self.last);
        let d = (now - self.last).as_secs_f64();
        self.last = now;
        let t = &mut self.timing;
        let slot = match phase {
            Phase::Deploy => &mut t.deploy_s,
            Phase::WarmUp => &mut t.warmup_s,
            Phase::Before => &mut t.before_s,
            Phase::Attack => &mut t.attack_s,
            Phase::After => &mut t.after_s,
            Phase::Teardown => &mut t.teardown_s,
        };
        *slot += d;
    }

    /// The step's timing, its overhead counted against what it planned to spend loading
    /// (`warmup` and `duration`).
    pub fn finish(self, warmup: Duration, duration: Duration) -> StepTiming {
        let total_s = self.start.elapsed().as_secs_f64();
        StepTiming {
            total_s,
            overhead_s: (total_s - warmup.as_secs_f64() - duration.as_secs_f64()).max(0.0),
            ..self.timing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_to_the_total_and_the_overhead_leaves_out_the_planned_load() {
        let mut clock = PhaseClock::start();
        std::thread::sleep(Duration::from_millis(30));
        clock.lap(Phase::Deploy);
        std::thread::sleep(Duration::from_millis(20));
        clock.lap(Phase::Attack);
        let t = clock.finish(Duration::ZERO, Duration::from_millis(20));
        assert!(t.deploy_s >= 0.03 && t.attack_s >= 0.02, "{t:?}");
        assert!((t.deploy_s + t.attack_s - t.total_s).abs() < 0.005, "{t:?}");
        assert!((t.overhead_s - (t.total_s - 0.02)).abs() < 1e-9, "{t:?}");
        assert_eq!(t.warmup_s, 0.0);
    }
}
