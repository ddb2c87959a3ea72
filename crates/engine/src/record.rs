//! The step record: everything the generator saw during one attack — counts per outcome,
//! HdrHistograms of latency from the due time, service time from the actual send and schedule
//! lag, a per-second timeline bucketed by due time, the generator's own CPU. Whether that makes
//! a valid step is judged later, from the saved result (`check::validity`). Memory is flat in
//! run length: three histograms, a handful of open per-second histograms, and one small struct
//! per second.
//!
//! Histogram values are **microseconds** (see [`super::histogram`]).
//!
//! A shard's recorder keys its timeline by seconds since the shards' common start time (a late
//! shard's first requests land in a later second) and keeps each second's histogram, encoded,
//! so a merge can take the percentiles of the union per second too.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::buckets::Buckets;
use super::handshake::{Handshake, HandshakeRecord};
use super::histogram::{new_histogram, new_second_histogram, serialize_histogram, HIST_MAX_US};
use crate::outcome::{Outcome, OutcomeTally};
use loadgen_model::result::{EndpointCounts, GeneratorHealth, TimelinePoint};
use loadgen_model::shard::Shard;

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(HIST_MAX_US)) as u64
}

/// One second of the timeline while it may still change.
#[derive(Debug, Default)]
struct Second {
    sent: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    /// Requests due in this second still in flight; the second closes when it reaches 0.
    in_flight: u64,
    hist: Option<Histogram<u64>>,
    p99_ms: Option<f64>,
    /// The closed second's histogram, encoded (kept for a shard only).
    encoded: Option<String>,
    closed: bool,
}

/// Accumulates one step while it runs. All methods are cheap and allocation-free except when a
/// new second opens (it borrows a histogram from a small pool).
#[derive(Debug)]
pub struct Recorder {
    tally: OutcomeTally,
    sent: u64,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    lag: Histogram<u64>,
    conn_wait: Histogram<u64>,
    /// Latency of answers completed since the last [`Recorder::take_recent_p99`] (live display).
    recent: Histogram<u64>,
    seconds: Vec<Second>,
    /// Offsets of the first and the last send, for the achieved sending rate.
    send_span: Option<(Duration, Duration)>,
    /// Seconds before this index are all closed.
    first_open: usize,
    pool: Vec<Histogram<u64>>,
    /// Added to due times to find their timeline second (a late shard's lateness).
    offset: Duration,
    /// Keep each closed second's histogram (a shard's, for the merge).
    keep_seconds: bool,
    /// The handshakes of a step over TLS (`None` for plain HTTP).
    handshakes: Option<HandshakeRecord>,
    /// Latency, service time and lag in fixed buckets, for a live exposition.
    buckets: LiveBuckets,
}

/// The recorder's fixed-bound histograms (see [`super::buckets`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveBuckets {
    pub latency: Buckets,
    pub service_time: Buckets,
    pub schedule_lag: Buckets,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            tally: OutcomeTally::default(),
            sent: 0,
            latency: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
            conn_wait: new_histogram(),
            recent: new_second_histogram(),
            seconds: Vec::new(),
            send_span: None,
            first_open: 0,
            pool: Vec::new(),
            offset: Duration::ZERO,
            keep_seconds: false,
            handshakes: None,
            buckets: LiveBuckets::default(),
        }
    }

    /// The recorder of a step over TLS records its handshakes in `handshakes`.
    pub fn with_handshakes(self, handshakes: Option<HandshakeRecord>) -> Self {
        Self { handshakes, ..self }
    }

    /// A new connection's handshake (of a TLS step; ignored otherwise).
    pub fn handshake(&mut self, h: Handshake) {
        if let Some(r) = &mut self.handshakes {
            r.add(h);
        }
    }

    /// A shard's recorder: its schedule began `late` after the common start time, and each
    /// second's histogram is kept for the merge.
    pub fn for_shard(late: Duration) -> Self {
        Self {
            offset: late,
            keep_seconds: true,
            ..Self::new()
        }
    }

    fn second_of(&self, due: Duration) -> usize {
        (due + self.offset).as_secs() as usize
    }

    fn second(&mut self, due: Duration) -> &mut Second {
        let i = self.second_of(due);
        if i >= self.seconds.len() {
            self.seconds.resize_with(i + 1, Second::default);
        }
        &mut self.seconds[i]
    }

    /// A due request was not sent (in-flight cap).
    pub fn dropped(&mut self, due: Duration) {
        self.tally.add(Outcome::Dropped);
        self.second(due).dropped += 1;
    }

    /// A due request was handled by the loop `lag` after its due time and then waited
    /// `conn_wait` for a connection before it was sent.
    pub fn sent(&mut self, due: Duration, lag: Duration, conn_wait: Duration) {
        self.sent += 1;
        self.lag.saturating_record(micros(lag).max(1));
        self.buckets.schedule_lag.record(micros(lag));
        if !conn_wait.is_zero() {
            self.conn_wait.saturating_record(micros(conn_wait).max(1));
        }
        let at = due + lag + conn_wait;
        self.send_span = Some(match self.send_span {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
        let s = self.second(due);
        s.sent += 1;
        s.in_flight += 1;
    }

    /// A sent request ended: `latency` from its due time, `service` from its send.
    pub fn done(&mut self, due: Duration, outcome: Outcome, latency: Duration, service: Duration) {
        self.tally.add(outcome);
        let (lat_us, has_latency) = (micros(latency).max(1), outcome.has_latency());
        if has_latency {
            self.latency.saturating_record(lat_us);
            self.service.saturating_record(micros(service).max(1));
            self.recent.saturating_record(lat_us);
            self.buckets.latency.record(micros(latency));
            self.buckets.service_time.record(micros(service));
        }
        let i = self.second_of(due);
        let pool = &mut self.pool;
        let s = &mut self.seconds[i];
        s.in_flight -= 1;
        if outcome == Outcome::Ok {
            s.ok += 1;
        } else {
            s.failed += 1;
        }
        if has_latency {
            let h = s
                .hist
                .get_or_insert_with(|| pool.pop().unwrap_or_else(new_second_histogram));
            h.saturating_record(lat_us);
        }
    }

    /// Closes every second that has ended by `elapsed` and has nothing in flight: its p99 is
    /// read and its histogram returned to the pool. Call it now and then (it is cheap).
    pub fn close_seconds(&mut self, elapsed: Duration) {
        let now_s = (elapsed + self.offset).as_secs() as usize;
        let mut all_closed_so_far = true;
        for i in self.first_open..self.seconds.len().min(now_s) {
            let s = &mut self.seconds[i];
            if !s.closed && s.in_flight == 0 {
                if let Some(mut h) = s.hist.take() {
                    s.p99_ms = Some(h.value_at_quantile(0.99) as f64 / 1000.0);
                    if self.keep_seconds {
                        s.encoded = serialize_histogram(&h).ok();
                    }
                    h.reset();
                    self.pool.push(h);
                }
                s.closed = true;
            }
            if s.closed && all_closed_so_far {
                self.first_open = i + 1;
            } else {
                all_closed_so_far = false;
            }
        }
    }

    /// p99 (ms) of the answers completed since the previous call, then starts a new window.
    pub fn take_recent_p99(&mut self) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let p = self.recent.value_at_quantile(0.99) as f64 / 1000.0;
        self.recent.reset();
        Some(p)
    }

    pub fn sent_count(&self) -> u64 {
        self.sent
    }
    pub fn ok_count(&self) -> u64 {
        self.tally.ok
    }
    pub fn failed_count(&self) -> u64 {
        self.tally.failed()
    }
    pub fn dropped_count(&self) -> u64 {
        self.tally.dropped
    }
    /// The counts per outcome so far, in their saved form.
    pub fn outcome_counts(&self) -> loadgen_model::result::OutcomeCounts {
        self.tally.to_counts()
    }
    /// The fixed-bound histograms so far.
    pub fn live_buckets(&self) -> LiveBuckets {
        self.buckets
    }

    /// Ends the step. Every sent request must have been reported as done by now.
    pub fn finish(mut self, meta: StepMeta) -> StepRecord {
        self.close_seconds(Duration::from_secs(self.seconds.len() as u64 + 1));
        let timeline_histograms = if self.keep_seconds {
            self.seconds.iter_mut().map(|s| s.encoded.take()).collect()
        } else {
            Vec::new()
        };
        let timeline = self
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| TimelinePoint {
                t_s: i as u32,
                sent: s.sent,
                ok: s.ok,
                failed: s.failed,
                dropped: s.dropped,
                p99_ms: s.p99_ms,
            })
            .collect();
        StepRecord {
            rate_rps: meta.rate_rps,
            duration: meta.duration,
            scheduled: meta.scheduled,
            send_span: self.send_span.map(|(a, b)| b.saturating_sub(a)),
            started_at: meta.started_at,
            ended_at: meta.ended_at,
            intended: self.sent + self.tally.dropped,
            sent: self.sent,
            dropped: self.tally.dropped,
            ok: self.tally.ok,
            failed: self.tally.failed(),
            outcomes: self.tally,
            latency: self.latency,
            service_time: self.service,
            schedule_lag: self.lag,
            connection_wait: self.conn_wait,
            timeline,
            generator: meta.generator,
            interrupted: meta.interrupted,
            in_flight_cap: meta.in_flight_cap,
            shard: meta.shard,
            timeline_histograms,
            per_endpoint: meta.per_endpoint,
            handshakes: self.handshakes,
        }
    }
}

/// How a shard ran: which part of the schedule, when it was to start and how late it did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardMeta {
    pub shard: Shard,
    pub start_at: Option<SystemTime>,
    pub late: Duration,
}

/// What the attack knows about a step besides the per-request counts.
#[derive(Debug, Clone)]
pub struct StepMeta {
    /// Nominal (mean) rate of the profile.
    pub rate_rps: f64,
    /// Planned length of the profile.
    pub duration: Duration,
    /// Schedule time actually covered (shorter than `duration` when interrupted).
    pub scheduled: Duration,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub generator: GeneratorHealth,
    pub interrupted: bool,
    /// The in-flight cap the step ran with.
    pub in_flight_cap: usize,
    /// Set when the step ran as a shard or at a given start time.
    pub shard: Option<ShardMeta>,
    /// What each endpoint was sent and answered, when there were several (empty otherwise).
    pub per_endpoint: Vec<EndpointCounts>,
}

/// The generator's view of one step. `intended = sent + dropped` and `sent = ok + failed`.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub rate_rps: f64,
    pub duration: Duration,
    pub scheduled: Duration,
    /// Time from the first send to the last (`None` when fewer than one request was sent).
    pub send_span: Option<Duration>,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub intended: u64,
    pub sent: u64,
    pub dropped: u64,
    pub ok: u64,
    pub failed: u64,
    pub outcomes: OutcomeTally,
    /// Latency from the due time, µs.
    pub latency: Histogram<u64>,
    /// Latency from the actual send, µs.
    pub service_time: Histogram<u64>,
    /// How late the loop handled each due request, µs (the generator's own lateness).
    pub schedule_lag: Histogram<u64>,
    /// Wait for a connection the target had not yet accepted, µs (requests that waited only).
    pub connection_wait: Histogram<u64>,
    pub timeline: Vec<TimelinePoint>,
    pub generator: GeneratorHealth,
    pub interrupted: bool,
    pub in_flight_cap: usize,
    pub shard: Option<ShardMeta>,
    /// A shard's per-second latency histograms, encoded, aligned with `timeline`.
    pub timeline_histograms: Vec<Option<String>>,
    /// Per endpoint, when the load was spread over several (empty otherwise); each endpoint's
    /// `sent = ok + failed`, and their sums are the step's.
    pub per_endpoint: Vec<EndpointCounts>,
    /// The handshakes of a step over TLS (`None` for plain HTTP).
    pub handshakes: Option<HandshakeRecord>,
}

impl StepRecord {
    /// Requests sent per second of schedule covered; `None` when nothing was scheduled.
    pub fn achieved_rps(&self) -> Option<f64> {
        let s = self.scheduled.as_secs_f64();
        (s > 0.0).then(|| self.sent as f64 / s)
    }

    /// The rate at which requests actually left: (sent − 1) / (last send − first send). Unlike
    /// [`StepRecord::achieved_rps`] it does not follow from the schedule by construction, so it
    /// is the measure of rate accuracy.
    pub fn send_rate_rps(&self) -> Option<f64> {
        let span = self.send_span?.as_secs_f64();
        (self.sent >= 2 && span > 0.0).then(|| (self.sent - 1) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> StepMeta {
        StepMeta {
            rate_rps: 10.0,
            duration: Duration::from_secs(2),
            scheduled: Duration::from_secs(2),
            started_at: SystemTime::UNIX_EPOCH,
            ended_at: SystemTime::UNIX_EPOCH,
            generator: GeneratorHealth::default(),
            interrupted: false,
            in_flight_cap: 7,
            shard: None,
            per_endpoint: Vec::new(),
        }
    }

    #[test]
    fn counts_reconcile_and_timeline_buckets_by_due_second() {
        let mut r = Recorder::new();
        let ms = Duration::from_millis;
        r.sent(ms(100), ms(0), Duration::ZERO);
        r.sent(ms(1500), ms(1), Duration::ZERO);
        r.dropped(ms(1600));
        r.done(ms(100), Outcome::Ok, ms(5), ms(5));
        // Completes long after its second ended: still lands in second 1.
        r.done(ms(1500), Outcome::Timeout, ms(3000), ms(2999));
        let rec = r.finish(meta());
        assert_eq!(rec.intended, rec.sent + rec.dropped);
        assert_eq!(rec.sent, rec.ok + rec.failed);
        assert_eq!(rec.timeline.len(), 2);
        assert_eq!(rec.timeline[1].failed, 1);
        assert_eq!(rec.timeline[1].dropped, 1);
        assert!(rec.timeline[1].p99_ms.unwrap() >= 2990.0);
        assert_eq!(rec.dropped, 1);
    }

    #[test]
    fn second_stays_open_while_a_request_due_in_it_is_in_flight() {
        let mut r = Recorder::new();
        let ms = Duration::from_millis;
        r.sent(ms(10), ms(0), Duration::ZERO);
        r.close_seconds(ms(5000));
        assert!(!r.seconds[0].closed);
        r.done(ms(10), Outcome::Ok, ms(4000), ms(4000));
        r.close_seconds(ms(5000));
        assert!(r.seconds[0].closed);
        assert_eq!(r.first_open, 1);
        assert_eq!(r.pool.len(), 1);
    }
}
