//! The schedule loop of one attack. It runs as one task on the engine's own thread: ask the
//! [`Pacer`] what is due, send it on a pooled connection (or queue it for one, or count it
//! dropped at the in-flight cap; which endpoint's connection is [`Spread`]'s round robin), and
//! record every answer into the [`Recorder`]. There is no
//! timer per request: the loop wakes on every completed answer and on one timer for the next
//! due time, reads the clock, and sends everything that is due (catching up after a late
//! wake-up; the lateness is the schedule lag). Requests in flight are polled by this task only
//! and checked against their deadlines by a sweep every [`SWEEP_EVERY`]. The loop is the same
//! for every I/O backend: what differs is the exchange it sends with and how it waits
//! ([`super::wait`]: tokio's reactor for epoll, the ring for io_uring).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;

use super::balance::Spread;
use super::client::{self, Exchange};
use super::handshake::HandshakeRecord;
use super::outcome::Outcome;
use super::pacer::Pacer;
use super::pool::Conn;
use super::progress::LiveStats;
use super::publish::Publisher;
use super::record::{Recorder, ShardMeta, StepMeta, StepRecord};
use super::timer::Timer;
use super::tracked::{Finished, Tracked};
use super::uring::{self, Ring};
use super::usage::{affinity_cores, ThreadMeter};
use super::wait::{EpollWait, Event, UringWait, Wait};
use super::Prepared;
use loadgen_model::result::GeneratorHealth;

/// Extra wait past the request timeout before requests still in flight are forced to count as
/// timeouts (each exchange carries its own deadline, so this only guards a starved runtime).
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// The loop wakes at most this often for due requests (2 000 wake-ups a second at most), so a
/// request leaves at most this late (plus the kernel's wake-up latency) without a timer per
/// request; answers arriving in between also wake it. tokio's own timer would be 1 ms. Every
/// sleep costs a context switch, so a finer granule trades generator CPU for lag: see
/// docs/engine.md.
const TIMER_GRANULE: Duration = Duration::from_micros(500);
/// How often requests in flight are checked against their deadline: a request times out
/// between its timeout and this much later.
pub(super) const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// The loop's state. `F` is the (unnamed, unboxed) future of one exchange and `M` makes one
/// for a request: the futures are stored in place, with no allocation per request.
struct Loop<F, M> {
    t0: Instant,
    rec: Recorder,
    spread: Spread,
    running: FuturesUnordered<Tracked<F>>,
    exchange: M,
    timeout: Duration,
    max_in_flight: usize,
    peak: usize,
    /// The next request of the schedule, `None` once scheduling has ended.
    next: Option<(u64, Duration)>,
    /// Schedule time covered; set when scheduling ends.
    scheduled: Option<Duration>,
    interrupted: bool,
    drain_deadline: Option<Instant>,
    next_sweep: Instant,
    publish: Publisher,
}

/// What every loop starts from, whichever protocol it speaks.
struct Begin {
    t0: Instant,
    rec: Recorder,
    spread: Spread,
    timeout: Duration,
    max_in_flight: usize,
    live: Option<LiveStats>,
}

/// How a loop ends: what its record needs beside the counts.
struct End {
    meter: ThreadMeter,
    started_at: SystemTime,
    rate_rps: f64,
    duration: Duration,
    rt_priority: bool,
    shard: Option<ShardMeta>,
    /// The I/O backend that ran, and why not io_uring.
    io: (&'static str, Option<String>),
}

/// What a step's loop sends with, once its record is begun.
struct Parts {
    addrs: Vec<std::net::SocketAddr>,
    tls: Option<std::sync::Arc<crate::tls::TlsClient>>,
    muxes: Option<Vec<std::sync::Arc<crate::http2::Mux>>>,
    pacer: Pacer,
    template: crate::template::CompiledTemplate,
    timeout: Duration,
    head: bool,
}

/// Waits for the step's start time (a shard's), then begins its record: what every backend's
/// loop starts from. `io` is the backend and why not io_uring, for the record.
async fn start(
    p: Prepared,
    stop: &CancellationToken,
    live: Option<LiveStats>,
    rt_priority: bool,
    io: (&'static str, Option<String>),
) -> (Begin, End, Parts) {
    let shard = match p.shard {
        Some((shard, start_at)) => Some(ShardMeta {
            shard,
            start_at,
            late: wait_for_start(start_at, stop).await,
        }),
        None => None,
    };
    let meter = ThreadMeter::start();
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let head = p.template.method == hyper::Method::HEAD;
    let handshakes = p
        .tls
        .as_ref()
        .map(|t| HandshakeRecord::new(t.view().clone()));
    let rec = match &shard {
        Some(s) => Recorder::for_shard(s.late),
        None => Recorder::new(),
    };
    let begin = Begin {
        t0,
        rec: rec.with_handshakes(handshakes),
        spread: p.spread,
        timeout: p.timeout,
        max_in_flight: p.max_in_flight,
        live,
    };
    let end = End {
        meter,
        started_at,
        rate_rps: p.rate_rps,
        duration: p.duration,
        rt_priority,
        shard,
        io,
    };
    let parts = Parts {
        addrs: p.addrs,
        tls: p.tls,
        muxes: p.muxes,
        pacer: p.pacer,
        template: p.template,
        timeout: p.timeout,
        head,
    };
    (begin, end, parts)
}

/// Runs one prepared step on epoll to its end and returns the generator's record of it;
/// `why_not_uring` is why `--io auto` did not take io_uring (`None`: epoll was asked for).
pub(super) async fn run(
    p: Prepared,
    stop: CancellationToken,
    live: Option<LiveStats>,
    rt_priority: bool,
    why_not_uring: Option<String>,
) -> StepRecord {
    let (begin, end, parts) = start(p, &stop, live, rt_priority, ("epoll", why_not_uring)).await;
    let Parts {
        addrs,
        tls,
        muxes,
        mut pacer,
        mut template,
        timeout,
        head,
    } = parts;
    let mut wait = EpollWait::new(&stop);
    // One loop per protocol, each with its own unboxed exchange future: an HTTP/1.1 step's
    // loop is exactly the one it was before HTTP/2 existed.
    if let Some(muxes) = muxes {
        let exchange = move |seq: u64, endpoint: usize, (idle, permit): Conn| {
            let (path, body) = template.parts(seq);
            let mux = muxes[endpoint].clone();
            let req = mux.request(&template.method, &template.headers, &path);
            client::exchange_h2(mux, idle, permit, req, body, timeout)
        };
        return go(begin, exchange, &mut pacer, &mut wait, end).await;
    }
    let exchange = move |seq: u64, endpoint: usize, (idle, permit): Conn| {
        client::exchange(
            addrs[endpoint],
            idle,
            permit,
            // Every request of a TLS step carries the client: an idle connection found closed
            // is replaced inside the exchange. A plain step's is `None`, and costs nothing.
            tls.clone(),
            template.wire(seq),
            timeout,
            head,
        )
    };
    go(begin, exchange, &mut pacer, &mut wait, end).await
}

/// Runs one prepared plain HTTP/1.1 step on `ring` (the same loop, pool and record; the
/// requests' I/O and the loop's wait on the ring) and returns the generator's record of it.
pub(super) async fn run_uring(
    p: Prepared,
    stop: CancellationToken,
    live: Option<LiveStats>,
    rt_priority: bool,
    ring: Ring,
) -> StepRecord {
    let (begin, end, parts) = start(p, &stop, live, rt_priority, ("uring", None)).await;
    let Parts {
        addrs,
        mut pacer,
        mut template,
        timeout,
        head,
        ..
    } = parts;
    let mut wait = UringWait::new(ring.clone(), stop);
    let exchange = move |seq: u64, endpoint: usize, (idle, permit): Conn| {
        let req = template.wire(seq);
        uring::exchange(
            ring.clone(),
            addrs[endpoint],
            idle,
            permit,
            req,
            timeout,
            head,
        )
    };
    go(begin, exchange, &mut pacer, &mut wait, end).await
}

/// Drives a loop sending with `exchange` to the schedule's end, then records it.
async fn go<F, M, W>(b: Begin, exchange: M, pacer: &mut Pacer, wait: &mut W, end: End) -> StepRecord
where
    F: Future<Output = Exchange>,
    M: FnMut(u64, usize, Conn) -> F,
    W: Wait,
{
    let mut l = Loop {
        t0: b.t0,
        rec: b.rec,
        spread: b.spread,
        running: FuturesUnordered::new(),
        exchange,
        timeout: b.timeout,
        max_in_flight: b.max_in_flight,
        peak: 0,
        next: next_due(pacer),
        scheduled: None,
        interrupted: false,
        drain_deadline: None,
        next_sweep: b.t0 + SWEEP_EVERY,
        publish: Publisher::new(b.live, b.t0),
    };
    l.drive(pacer, end.duration, wait).await;
    l.finish(end)
}

/// Sleeps until `start_at` (the precise timer, so shards start within a timer granule of one
/// another) and returns how late the schedule then starts: zero when on time, the whole
/// overshoot when `start_at` had already passed. A stop ends the wait (the loop then stops at
/// once, interrupted).
async fn wait_for_start(start_at: Option<SystemTime>, stop: &CancellationToken) -> Duration {
    let Some(at) = start_at else {
        return Duration::ZERO;
    };
    if let Ok(ahead) = at.duration_since(SystemTime::now()) {
        let mut timer = Timer::new();
        timer.arm(Instant::now() + ahead);
        tokio::select! {
            () = poll_fn(|cx| timer.poll_fired(cx)) => {}
            () = stop.cancelled() => return Duration::ZERO,
        }
    }
    SystemTime::now()
        .duration_since(at)
        .unwrap_or(Duration::ZERO)
}

fn next_due(pacer: &mut Pacer) -> Option<(u64, Duration)> {
    let seq = pacer.next_seq();
    pacer.next_due().map(|d| (seq, d))
}

impl<F, M> Loop<F, M>
where
    F: Future<Output = Exchange>,
    M: FnMut(u64, usize, Conn) -> F,
{
    async fn drive<W: Wait>(&mut self, pacer: &mut Pacer, duration: Duration, wait: &mut W) {
        loop {
            self.send_queued();
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(self.t0);
            if self.scheduled.is_none() {
                self.send_due(pacer, elapsed, duration);
            }
            if self.scheduled.is_some() && self.drain_deadline.is_none() {
                self.drain_deadline = Some(now + self.timeout + DRAIN_MARGIN);
            }
            if self.publish.due(now) {
                let in_flight = self.in_flight();
                let conns = self.spread.connections();
                self.publish
                    .publish(&mut self.rec, now, elapsed, in_flight, conns);
            }
            if now >= self.next_sweep {
                for t in Pin::new(&mut self.running).iter_pin_mut() {
                    t.expire(now);
                }
                self.spread.close_idle(now);
                self.next_sweep = now + SWEEP_EVERY;
            }
            if self.drained(now) {
                break;
            }
            let wake = self.next_wake(now);
            let scheduling = self.scheduled.is_none();
            match wait.next(&mut self.running, wake, scheduling).await {
                Event::Cancel => {
                    self.interrupted = true;
                    self.scheduled = Some(elapsed.min(duration));
                    self.next = None;
                }
                Event::Tick => {}
                Event::Done(done) => self.on_done(done),
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.running.len() + self.spread.queued()
    }

    /// Sends request `seq` now on `conn`, a connection to `endpoint`. `handled_lag` is how
    /// late the loop handled it when it had to wait for a connection (opening on demand, the
    /// rest of the wait is the target's: connection wait, not schedule lag).
    fn send(
        &mut self,
        seq: u64,
        due: Duration,
        handled_lag: Option<Duration>,
        (endpoint, conn): (usize, Conn),
    ) {
        let now = Instant::now();
        let late = now.saturating_duration_since(self.t0 + due);
        match handled_lag {
            Some(lag) if !self.spread.is_fixed() => {
                self.rec.sent(due, lag, late.saturating_sub(lag))
            }
            _ => self.rec.sent(due, late, Duration::ZERO),
        }
        self.spread.sent(endpoint);
        self.running.push(Tracked::new(
            seq,
            endpoint,
            due,
            now,
            // A hair later than the connect's own timer, so a connect that is too slow is
            // classified as a connect timeout by it.
            now + self.timeout + SWEEP_EVERY,
            (self.exchange)(seq, endpoint, conn),
        ));
    }

    /// When the request at the head of pool `i`'s queue began waiting for a connection.
    fn head_queued_at(&self, i: usize) -> Option<Instant> {
        let &(_, due, lag) = self.spread.head(i)?;
        Some(self.t0 + due + lag)
    }

    /// Requests waiting for a connection go first, in due order at each pool.
    fn send_queued(&mut self) {
        for i in 0..self.spread.len() {
            while let Some(since) = self.head_queued_at(i) {
                let waited = Instant::now().saturating_duration_since(since);
                let Some(conn) = self.spread.take(i, waited) else {
                    break;
                };
                let Some((seq, due, lag)) = self.spread.dequeue(i) else {
                    break;
                };
                self.send(seq, due, Some(lag), conn);
            }
        }
    }

    /// Sends (or queues, or drops at the cap) everything due by `elapsed`.
    fn send_due(&mut self, pacer: &mut Pacer, elapsed: Duration, duration: Duration) {
        while let Some((seq, due)) = self.next {
            if due > elapsed {
                break;
            }
            if self.in_flight() >= self.max_in_flight {
                self.rec.dropped(due);
            } else {
                // The endpoint's turn is taken by every request not dropped, sent or queued.
                let i = self.spread.next_pool();
                if let Some(conn) = self
                    .spread
                    .head(i)
                    .is_none()
                    .then(|| self.spread.take(i, Duration::ZERO))
                    .flatten()
                {
                    self.send(seq, due, None, conn);
                } else {
                    // Behind others, or no connection to be had: wait in due order.
                    self.spread
                        .queue(i, (seq, due, elapsed.saturating_sub(due)));
                }
            }
            self.next = next_due(pacer);
        }
        self.peak = self.peak.max(self.in_flight());
        if self.next.is_none() {
            self.scheduled = Some(duration);
        }
    }

    /// True when the step is over: nothing left in flight after scheduling ended, or the drain
    /// deadline passed (then what is still pending is counted: sent ones as timeouts, queued
    /// ones as dropped — never discarded).
    fn drained(&mut self, now: Instant) -> bool {
        let Some(deadline) = self.drain_deadline else {
            return false;
        };
        if self.running.is_empty() && self.spread.queued() == 0 {
            return true;
        }
        if now < deadline {
            return false;
        }
        for t in Pin::new(&self.running).iter_pin_ref() {
            let (_, endpoint, due, sent_at) = t.facts();
            self.spread.done(endpoint, false);
            self.rec.done(
                due,
                Outcome::Timeout,
                now.saturating_duration_since(self.t0 + due),
                now.saturating_duration_since(sent_at),
            );
        }
        for (_, due, _) in self.spread.drain_queued() {
            self.rec.dropped(due);
        }
        true
    }

    /// One timer: the next due time (no sooner than one granule from now, so a high rate
    /// wakes the loop every granule rather than every request), the next publication, the
    /// next deadline sweep, or the drain deadline.
    fn next_wake(&self, now: Instant) -> Instant {
        let publish = self.publish.next;
        let mut wake = match (self.drain_deadline, self.next) {
            (Some(d), _) => d.min(publish),
            (None, Some((_, due))) => (self.t0 + due).max(now + TIMER_GRANULE).min(publish),
            (None, None) => publish,
        };
        if !self.running.is_empty() {
            wake = wake.min(self.next_sweep);
        }
        // A request past the free count may open a connection once it has waited long enough.
        for i in 0..self.spread.len() {
            if let Some(grow) = self
                .head_queued_at(i)
                .and_then(|at| self.spread.grow_at(i, at))
            {
                wake = wake.min(grow.max(now + TIMER_GRANULE));
            }
        }
        wake
    }

    fn on_done(&mut self, done: Finished<Exchange>) {
        let Finished {
            endpoint,
            due,
            sent_at,
            output: x,
            ..
        } = done;
        self.spread.done(endpoint, x.outcome == Outcome::Ok);
        if let Some(h) = x.handshake {
            self.rec.handshake(h);
        }
        self.rec.done(
            due,
            x.outcome,
            x.done_at.saturating_duration_since(self.t0 + due),
            x.done_at.saturating_duration_since(sent_at),
        );
        self.spread.give_back(endpoint, x.conn, x.opened, x.done_at);
    }

    fn finish(mut self, end: End) -> StepRecord {
        let End {
            meter,
            started_at,
            rate_rps,
            duration,
            rt_priority,
            shard,
            io: (backend, why_not_uring),
        } = end;
        let elapsed = self.t0.elapsed();
        self.rec.close_seconds(elapsed + Duration::from_secs(3600));
        self.publish
            .last(&mut self.rec, elapsed, self.spread.connections());
        let (cpu, wall) = meter.read();
        // The engine is one thread: it can use at most one core, whatever the affinity allows.
        let available = affinity_cores().map(|n| f64::from(n.min(1)));
        let mut generator = GeneratorHealth {
            cpu_user_s: cpu.map(|c| c.user_s),
            cpu_system_s: cpu.map(|c| c.system_s),
            cpu_cores_used: cpu
                .filter(|_| !wall.is_zero())
                .map(|c| c.total_s() / wall.as_secs_f64()),
            cpu_cores_available: available,
            max_in_flight: Some(self.peak as u64),
            in_flight_cap: Some(self.max_in_flight as u64),
            realtime_priority: Some(rt_priority),
            io_backend: Some(backend.to_owned()),
            io_fallback_reason: why_not_uring,
            ..GeneratorHealth::default()
        };
        self.spread.report(&mut generator);
        self.rec.finish(StepMeta {
            rate_rps,
            duration,
            scheduled: self.scheduled.unwrap_or(duration),
            started_at,
            ended_at: SystemTime::now(),
            generator,
            interrupted: self.interrupted,
            in_flight_cap: self.max_in_flight,
            shard,
            per_endpoint: self.spread.into_counts(),
        })
    }
}
