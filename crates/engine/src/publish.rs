//! Live progress of a running loop: its counters published to [`LiveStats`] every
//! [`PUBLISH_EVERY`] (with the timeline seconds that have ended closed first), the outcome
//! detail once a second, and a last time at the end — never per request. Shared by every
//! backend's loop.

use std::time::{Duration, Instant};

use super::progress::{LiveDetail, LiveSnapshot, LiveStats};
use super::record::Recorder;

/// How often the loop publishes [`LiveStats`] and closes finished timeline seconds.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Publishes the loop's counters to [`LiveStats`] every [`PUBLISH_EVERY`] (and closes the
/// timeline seconds that have ended), and once more at the end.
pub(super) struct Publisher {
    live: Option<LiveStats>,
    pub(super) next: Instant,
    count: u64,
    recent_p99: Option<f64>,
}

impl Publisher {
    pub(super) fn new(live: Option<LiveStats>, t0: Instant) -> Publisher {
        Publisher {
            live,
            next: t0,
            count: 0,
            recent_p99: None,
        }
    }

    pub(super) fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    pub(super) fn publish(
        &mut self,
        rec: &mut Recorder,
        now: Instant,
        elapsed: Duration,
        in_flight: usize,
        conns: (u64, u64),
    ) {
        rec.close_seconds(elapsed);
        self.count += 1;
        // Once a second: the recent p99 window, and the detail (a copy of the tallies).
        let second = self.count % 10 == 0;
        if second {
            self.recent_p99 = rec.take_recent_p99().or(self.recent_p99);
        }
        self.send(rec, elapsed, in_flight, conns, second);
        self.next += PUBLISH_EVERY;
        if self.next < now {
            self.next = now + PUBLISH_EVERY;
        }
    }

    pub(super) fn last(&mut self, rec: &mut Recorder, elapsed: Duration, conns: (u64, u64)) {
        self.recent_p99 = rec.take_recent_p99().or(self.recent_p99);
        self.send(rec, elapsed, 0, conns, true);
    }

    fn send(
        &self,
        rec: &Recorder,
        elapsed: Duration,
        in_flight: usize,
        (open, opened): (u64, u64),
        with_detail: bool,
    ) {
        let Some(l) = &self.live else { return };
        // The detail first: a reader that sees the new counters finds a detail at least as new.
        if with_detail && l.wants_detail() {
            l.publish_detail(LiveDetail {
                outcomes: rec.outcome_counts(),
                buckets: rec.live_buckets(),
                connections_opened: opened,
            });
        }
        l.publish(&LiveSnapshot {
            elapsed,
            sent: rec.sent_count(),
            ok: rec.ok_count(),
            failed: rec.failed_count(),
            dropped: rec.dropped_count(),
            in_flight: in_flight as u64,
            recent_p99_ms: self.recent_p99,
            generation: 0,
            connections_open: open,
        });
    }
}
