//! Progress of a running attack: [`LiveStats`], a cheap shared snapshot (atomics, published by
//! the engine about ten times a second, never per request) that the `attack` command's progress
//! line and the campaign runner can both read, and [`progress_line`] to render it. A reader that
//! asks for it ([`LiveStats::with_detail`]) also gets a [`LiveDetail`] once a second: counts per
//! outcome, connections and fixed-bound histograms, what a metrics exposition serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::record::LiveBuckets;
use loadgen_model::result::OutcomeCounts;

/// Sentinel for "no p99 yet" in the atomic.
const NONE: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Inner {
    elapsed_us: AtomicU64,
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicU64,
    recent_p99_us: AtomicU64,
    /// Bumped after each publish, so a reader can tell whether the engine has started.
    generation: AtomicU64,
    connections_open: AtomicU64,
    /// Whether the engine should build a [`LiveDetail`] (it costs a copy of the tallies).
    wants_detail: bool,
    detail: Mutex<Option<Arc<LiveDetail>>>,
}

/// The rarer, larger part of a reading: what a metrics exposition needs beyond the counters.
/// Every count is cumulative since the attack began.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveDetail {
    pub outcomes: OutcomeCounts,
    pub buckets: LiveBuckets,
    pub connections_opened: u64,
}

/// Shared live counters of one attack. Cloning shares the same counters.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    inner: Arc<Inner>,
}

/// One reading of [`LiveStats`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LiveSnapshot {
    pub elapsed: Duration,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub in_flight: u64,
    /// p99 latency from due time of the answers of roughly the last second, in ms.
    pub recent_p99_ms: Option<f64>,
    /// How many times the engine has published (0: not started).
    pub generation: u64,
    /// Connections alive at the reading.
    pub connections_open: u64,
}

impl LiveStats {
    pub fn new() -> Self {
        let s = Self::default();
        s.inner.recent_p99_us.store(NONE, Ordering::Relaxed);
        s
    }

    /// Live stats whose engine also publishes a [`LiveDetail`] once a second and at the end.
    pub fn with_detail() -> Self {
        let s = Self {
            inner: Arc::new(Inner {
                wants_detail: true,
                ..Inner::default()
            }),
        };
        s.inner.recent_p99_us.store(NONE, Ordering::Relaxed);
        s
    }

    /// True when the reader asked for [`LiveDetail`].
    pub fn wants_detail(&self) -> bool {
        self.inner.wants_detail
    }

    /// Called by the engine.
    pub fn publish_detail(&self, d: LiveDetail) {
        *self.inner.detail.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(d));
    }

    /// The latest detail (`None` before the first, or when not asked for).
    pub fn detail(&self) -> Option<Arc<LiveDetail>> {
        self.inner
            .detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Called by the engine.
    pub fn publish(&self, s: &LiveSnapshot) {
        let i = &self.inner;
        i.elapsed_us
            .store(s.elapsed.as_micros() as u64, Ordering::Relaxed);
        i.sent.store(s.sent, Ordering::Relaxed);
        i.ok.store(s.ok, Ordering::Relaxed);
        i.failed.store(s.failed, Ordering::Relaxed);
        i.dropped.store(s.dropped, Ordering::Relaxed);
        i.in_flight.store(s.in_flight, Ordering::Relaxed);
        i.connections_open
            .store(s.connections_open, Ordering::Relaxed);
        if let Some(p) = s.recent_p99_ms {
            i.recent_p99_us
                .store((p * 1000.0) as u64, Ordering::Relaxed);
        }
        i.generation.fetch_add(1, Ordering::Release);
    }

    /// The latest published values (each field is exact; fields may be from adjacent
    /// publications).
    pub fn snapshot(&self) -> LiveSnapshot {
        let i = &self.inner;
        let generation = i.generation.load(Ordering::Acquire);
        let p99 = i.recent_p99_us.load(Ordering::Relaxed);
        LiveSnapshot {
            elapsed: Duration::from_micros(i.elapsed_us.load(Ordering::Relaxed)),
            sent: i.sent.load(Ordering::Relaxed),
            ok: i.ok.load(Ordering::Relaxed),
            failed: i.failed.load(Ordering::Relaxed),
            dropped: i.dropped.load(Ordering::Relaxed),
            in_flight: i.in_flight.load(Ordering::Relaxed),
            recent_p99_ms: (p99 != NONE).then(|| p99 as f64 / 1000.0),
            generation,
            connections_open: i.connections_open.load(Ordering::Relaxed),
        }
    }
}

/// One line: elapsed, achieved rate, ok, errors, drops, in flight, recent p99.
pub fn progress_line(s: &LiveSnapshot, total: Duration) -> String {
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.sent as f64 / secs
    } else {
        0.0
    };
    let p99 = s
        .recent_p99_ms
        .map_or_else(|| "-".to_string(), |p| format!("{p:.2} ms"));
    format!(
        "{secs:6.1}/{:.0}s  {rate:8.0} req/s  ok {}  err {}  dropped {}  in-flight {}  p99 {p99}",
        total.as_secs_f64(),
        s.ok,
        s.failed,
        s.dropped,
        s.in_flight
    )
}

/// Hands a reading of `live` to `show` every `every` until the task is aborted: the one
/// ticker behind the campaign's progress events and `loadgen attack`'s spinner.
pub async fn tick(live: LiveStats, every: Duration, mut show: impl FnMut(LiveSnapshot)) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        show(live.snapshot());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_snapshot() {
        let l = LiveStats::new();
        assert_eq!(l.snapshot().recent_p99_ms, None);
        let s = LiveSnapshot {
            elapsed: Duration::from_secs(2),
            sent: 10,
            ok: 9,
            failed: 1,
            recent_p99_ms: Some(1.5),
            ..Default::default()
        };
        l.clone().publish(&s);
        let r = l.snapshot();
        assert_eq!(r.sent, 10);
        assert_eq!(r.recent_p99_ms, Some(1.5));
        assert_eq!(r.generation, 1);
        assert!(progress_line(&r, Duration::from_secs(10)).contains("5 req/s"));
    }
}
