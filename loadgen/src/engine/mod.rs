//! The attack: one open-model step against one loopback target. It owns the schedule loop —
//! ask the [`Pacer`] what is due, send it (or count it dropped at the in-flight cap), record
//! every outcome into a [`Recorder`] — and the keep-alive connection pool.
//!
//! The loop runs on its own OS thread with a current-thread tokio runtime: no cross-thread
//! wake-ups on the hot path, the campaign runner's own tasks cannot delay the schedule, and the
//! thread's CPU time *is* the generator's cost. There is no timer per request: the loop wakes on
//! every completed answer and on one timer for the next due time, reads the clock, and sends
//! everything that is due (catching up after a late wake-up; the lateness is the schedule lag).

pub mod client;
pub mod load;
pub mod outcome;
pub mod pacer;
pub mod progress;
pub mod record;
pub mod template;
pub mod timer;
pub mod usage;

use std::collections::VecDeque;
use std::future::{poll_fn, Future as _};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::engine::load::Load;
use crate::engine::outcome::Outcome;
use crate::engine::pacer::{Pacer, PacerError};
use crate::engine::progress::{LiveSnapshot, LiveStats};
use crate::engine::record::{Recorder, StepMeta, StepRecord};
use crate::engine::template::{CompiledTemplate, RequestTemplate, TemplateError};
use crate::engine::timer::Timer;
use crate::engine::usage::{affinity_cores, ThreadMeter};
use crate::result::GeneratorHealth;
use client::{ConnectPermit, Finished, Sender, Tracked};

/// How often the loop publishes [`LiveStats`] and closes finished timeline seconds.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Extra wait past the request timeout before requests still in flight are forced to count as
/// timeouts (each exchange carries its own deadline, so this only guards a starved runtime).
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// The loop wakes at most this often for due requests (2 000 wake-ups a second at most), so a
/// request leaves at most this late (plus the kernel's wake-up latency) without a timer per
/// request; answers arriving in between also wake it. tokio's own timer would be 1 ms. Every
/// sleep costs a context switch, so a finer granule trades generator CPU for lag: see
/// docs/engine.md.
const TIMER_GRANULE: Duration = Duration::from_micros(500);
/// Connection attempts in progress at once. Opening on demand without a bound turns a short
/// hiccup of the target into thousands of simultaneous connects, overflowing its accept queue
/// (SYNs dropped, retried after 1 s); beyond this, due requests wait for a connection instead
/// and the wait shows as schedule lag.
const MAX_CONNECTING: usize = 64;
/// How often requests in flight are checked against their deadline: a request times out
/// between its timeout and this much later.
const SWEEP_EVERY: Duration = Duration::from_millis(10);
/// Bound on the reachability check before the step starts.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One step to run.
#[derive(Debug, Clone)]
pub struct AttackSpec {
    /// Base URL of the target, scheme and authority only: `http://127.0.0.1:PORT` (a trailing
    /// `/` is accepted). The request path comes from `request.path`. Only plain `http` to a
    /// loopback address (127.0.0.0/8, ::1, or a name resolving only to those) is accepted.
    pub url: String,
    pub load: Load,
    pub request: RequestTemplate,
    /// Per-request deadline, from the send to the last byte of the answer (connect included),
    /// enforced within 10 ms.
    pub timeout: Duration,
    /// Due requests beyond this many in flight (sent or queued for a connection) are dropped.
    pub max_in_flight: usize,
    /// `Some(n)`: at most n keep-alive connections; due requests wait (and their schedule lag
    /// shows it) when all are busy. `None`: open connections on demand, one per concurrent
    /// request, reused while idle.
    pub connections: Option<usize>,
}

/// Why an attack could not run. Failed requests are never an `AttackError`; they are counted.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("bad target url {0:?}: {1}")]
    BadUrl(String, String),
    #[error("target {0} is not loopback: load goes only to 127.0.0.0/8, ::1 or localhost")]
    NotLoopback(String),
    #[error("target {0} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("bad load: {0}")]
    Load(#[from] PacerError),
    #[error("bad request: {0}")]
    Template(#[from] TemplateError),
    #[error("bad attack settings: {0}")]
    Settings(String),
    #[error("attack engine failed: {0}")]
    Engine(String),
}

/// Where requests go: the resolved address and the `Host` header value.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

/// Splits a full URL given on the command line (`http://127.0.0.1:8080/api/clicks?x=1`) into
/// the base URL and the path-and-query (`/` when absent).
pub fn split_url(url: &str) -> Result<(String, String), AttackError> {
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| {
        AttackError::BadUrl(url.into(), e.to_string())
    })?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| AttackError::BadUrl(url.into(), "missing http:// scheme".into()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| AttackError::BadUrl(url.into(), "missing host".into()))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.is_empty() { "/" } else { path };
    Ok((format!("{scheme}://{authority}"), path.to_string()))
}

/// Resolves a base URL to a loopback socket address; anything else is refused.
pub fn resolve_target(url: &str) -> Result<Target, AttackError> {
    let bad = |why: &str| AttackError::BadUrl(url.into(), why.into());
    let uri: hyper::Uri =
        url.trim_end_matches('/')
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| {
                AttackError::BadUrl(url.into(), e.to_string())
            })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported (loopback targets are plain http)",
            ))
        }
        Some(s) => return Err(bad(&format!("unsupported scheme {s}"))),
        None => return Err(bad("missing http:// scheme")),
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad(
            "the base url carries no path (the path comes from the request)",
        ));
    }
    let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(AttackError::NotLoopback(authority.to_string()));
    }
    // Prefer IPv4 for `localhost`: the usual test servers bind 127.0.0.1.
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .copied()
        .unwrap_or(addrs[0]);
    Ok(Target {
        addr,
        host: authority.as_str().to_string(),
    })
}

/// Everything checked before the engine starts.
struct Prepared {
    target: Target,
    pacer: Pacer,
    template: CompiledTemplate,
    rate_rps: f64,
    duration: Duration,
    timeout: Duration,
    max_in_flight: usize,
    connections: Option<usize>,
}

fn prepare(spec: &AttackSpec) -> Result<Prepared, AttackError> {
    let target = resolve_target(&spec.url)?;
    let pacer = Pacer::new(&spec.load)?;
    let template = spec.request.compile(&target.host)?;
    if spec.timeout.is_zero() {
        return Err(AttackError::Settings("timeout must be > 0".into()));
    }
    if spec.max_in_flight == 0 {
        return Err(AttackError::Settings("max_in_flight must be >= 1".into()));
    }
    if spec.connections == Some(0) {
        return Err(AttackError::Settings("connections must be >= 1".into()));
    }
    Ok(Prepared {
        target,
        rate_rps: spec.load.nominal_rate_rps(),
        duration: pacer.duration(),
        pacer,
        template,
        timeout: spec.timeout,
        max_in_flight: spec.max_in_flight,
        connections: spec.connections,
    })
}

/// Real-time round-robin priority of the engine thread (the lowest, 1). Where the generator
/// shares a machine with the service (here: 2 cores), CPU-bound replicas otherwise keep the
/// engine waiting on the run queue — measured at ~1.3 ms a wake-up and 60–90 ms at p99 even at
/// nice -10 — and steps turn invalid for the generator's sake rather than tell anything about
/// the target. The engine sleeps between events and uses a few percent of a core at TD4 rates;
/// the kernel's RT throttling (`sched_rt_runtime_us`) still bounds it. Without CAP_SYS_NICE
/// the thread keeps its default and the schedule lag says what happened.
const ENGINE_RT_PRIORITY: i32 = 1;

#[allow(unsafe_code)]
fn raise_priority() {
    let param = libc::sched_param {
        sched_priority: ENGINE_RT_PRIORITY,
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0 names
    // the calling thread, and the call has no other memory effects.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        tracing::debug!(
            "engine thread keeps its default scheduling: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Runs one step and returns the generator's record of it.
///
/// `stop` cancelled → no further request is scheduled, requests in flight are waited for (each
/// up to its timeout) and the record is marked interrupted. `live`, when given, is updated about
/// ten times a second. Errors mean the step could not run at all (bad spec, non-loopback or
/// unreachable target); failed requests are data in the record.
pub async fn run(
    spec: &AttackSpec,
    stop: &CancellationToken,
    live: Option<&LiveStats>,
) -> Result<StepRecord, AttackError> {
    let prepared = prepare(spec)?;
    let addr = prepared.target.addr;
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(AttackError::Unreachable(addr.to_string(), e.to_string())),
        Err(_) => {
            return Err(AttackError::Unreachable(
                addr.to_string(),
                format!("no connection within {PROBE_TIMEOUT:?}"),
            ))
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = stop.clone();
    let live = live.cloned();
    std::thread::Builder::new()
        .name("loadgen-attack".into())
        .spawn(move || {
            raise_priority();
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AttackError::Engine(format!("cannot build runtime: {e}")))
                .and_then(|rt| {
                    // Spawned rather than run by `block_on` itself: a task woken from its own
                    // thread is queued locally, while waking the `block_on` future writes to
                    // the reactor's eventfd — a syscall for every answer.
                    rt.block_on(async { tokio::spawn(engine(prepared, stop, live)).await })
                        .map_err(|e| AttackError::Engine(format!("engine task failed: {e}")))
                });
            let _ = tx.send(result);
        })
        .map_err(|e| AttackError::Engine(format!("cannot start thread: {e}")))?;
    rx.await
        .map_err(|_| AttackError::Engine("engine thread panicked".into()))?
}

/// The keep-alive pool and the requests waiting for a connection.
struct Pool {
    connections: Option<usize>,
    idle: Vec<Sender>,
    /// Connections existing or being opened (idle + held by requests in flight).
    alive: usize,
    /// Connection attempts in progress (see [`MAX_CONNECTING`]).
    connecting: Arc<AtomicUsize>,
    opened: u64,
    /// Due requests waiting for a connection, in due order, with how late the loop handled
    /// them: in flight from the schedule's view. With a fixed connection count the wait is the
    /// generator's own limit and shows as schedule lag; opening on demand, it is time the target
    /// took to complete connects and shows as connection wait.
    queue: VecDeque<(u64, Duration, Duration)>,
}

impl Pool {
    /// A connection for the next request: an idle one, or a permit to open one. `None` when
    /// the request has to wait (fixed count reached, or too many connects in progress).
    fn take(&mut self) -> Option<(Option<Sender>, Option<ConnectPermit>)> {
        if let Some(c) = self.idle.pop() {
            return Some((Some(c), None));
        }
        if self.connections.is_some_and(|n| self.alive >= n) {
            return None;
        }
        let permit = ConnectPermit::try_take(&self.connecting, MAX_CONNECTING)?;
        self.alive += 1;
        Some((None, Some(permit)))
    }

    /// Takes back what an exchange left: its connection when reusable.
    fn give_back(&mut self, conn: Option<Sender>, opened: bool) {
        if opened {
            self.opened += 1;
        }
        match conn {
            Some(c) => self.idle.push(c),
            None => self.alive = self.alive.saturating_sub(1),
        }
    }
}

async fn engine(p: Prepared, stop: CancellationToken, live: Option<LiveStats>) -> StepRecord {
    let meter = ThreadMeter::start();
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let Prepared {
        target,
        mut pacer,
        mut template,
        rate_rps,
        duration,
        timeout,
        max_in_flight,
        connections,
    } = p;
    let addr = target.addr;
    let mut rec = Recorder::new();
    let mut pool = Pool {
        connections,
        idle: Vec::new(),
        alive: 0,
        connecting: Arc::new(AtomicUsize::new(0)),
        opened: 0,
        queue: VecDeque::new(),
    };
    // The requests in flight, polled by this task only (no task per request). The element type
    // is inferred from the one place that pushes, so the futures are stored unboxed.
    let mut running = FuturesUnordered::new();
    let fixed_connections = connections.is_some();
    let mut peak: usize = 0;

    // Sends request `seq` now on the given connection (or a new one).
    macro_rules! send {
        ($seq:expr, $due:expr, $handled_lag:expr, $conn:expr) => {{
            let (seq, due): (u64, Duration) = ($seq, $due);
            let (idle, permit) = $conn;
            let now = Instant::now();
            let late = now.saturating_duration_since(t0 + due);
            match $handled_lag {
                Some(lag) if !fixed_connections => rec.sent(due, lag, late.saturating_sub(lag)),
                _ => rec.sent(due, late, Duration::ZERO),
            }
            running.push(Tracked::new(
                seq,
                due,
                now,
                // A hair later than the connect's own timer, so a connect that is too slow is
                // classified as a connect timeout by it.
                now + timeout + SWEEP_EVERY,
                client::exchange(addr, idle, permit, template.request(seq), timeout),
            ));
        }};
    }

    let take = |pacer: &mut Pacer| {
        let seq = pacer.next_seq();
        pacer.next_due().map(|d| (seq, d))
    };
    let mut next = take(&mut pacer);
    let mut interrupted = false;
    // Schedule time covered; set when scheduling ends.
    let mut scheduled: Option<Duration> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut next_publish = t0;
    let mut next_sweep = t0 + SWEEP_EVERY;
    let mut publishes: u64 = 0;
    let mut recent_p99 = None;

    let mut timer = Timer::new();
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);

    enum Ev<T> {
        Cancel,
        Done(T),
        Tick,
    }

    loop {
        // Requests waiting for a connection go first, in due order.
        while !pool.queue.is_empty() {
            let Some(conn) = pool.take() else { break };
            let (seq, due, lag) = pool.queue.pop_front().expect("queue is not empty");
            send!(seq, due, Some(lag), conn);
        }

        let now = Instant::now();
        let elapsed = now.saturating_duration_since(t0);

        // Send everything that is due by now.
        if scheduled.is_none() {
            while let Some((seq, due)) = next {
                if due > elapsed {
                    break;
                }
                if running.len() + pool.queue.len() >= max_in_flight {
                    rec.dropped(due);
                } else if !pool.queue.is_empty() {
                    pool.queue
                        .push_back((seq, due, elapsed.saturating_sub(due)));
                } else if let Some(conn) = pool.take() {
                    send!(seq, due, None, conn);
                } else {
                    pool.queue
                        .push_back((seq, due, elapsed.saturating_sub(due)));
                }
                next = take(&mut pacer);
            }
            peak = peak.max(running.len() + pool.queue.len());
            if next.is_none() {
                scheduled = Some(duration);
            }
        }
        if scheduled.is_some() && drain_deadline.is_none() {
            drain_deadline = Some(now + timeout + DRAIN_MARGIN);
        }

        if now >= next_publish {
            rec.close_seconds(elapsed);
            publishes += 1;
            if publishes % 10 == 0 {
                recent_p99 = rec.take_recent_p99().or(recent_p99);
            }
            if let Some(l) = &live {
                l.publish(&LiveSnapshot {
                    elapsed,
                    sent: rec.sent_count(),
                    ok: rec.ok_count(),
                    failed: rec.failed_count(),
                    dropped: rec.dropped_count(),
                    in_flight: (running.len() + pool.queue.len()) as u64,
                    recent_p99_ms: recent_p99,
                    generation: 0,
                });
            }
            next_publish += PUBLISH_EVERY;
            if next_publish < now {
                next_publish = now + PUBLISH_EVERY;
            }
        }

        if now >= next_sweep {
            for t in Pin::new(&mut running).iter_pin_mut() {
                t.expire(now);
            }
            next_sweep = now + SWEEP_EVERY;
        }

        if let Some(deadline) = drain_deadline {
            if running.is_empty() && pool.queue.is_empty() {
                break;
            }
            if now >= deadline {
                // Sent requests still pending: timeouts at the time they were given up.
                for t in Pin::new(&running).iter_pin_ref() {
                    let (_, due, sent_at) = t.facts();
                    rec.done(
                        due,
                        Outcome::Timeout,
                        now.saturating_duration_since(t0 + due),
                        now.saturating_duration_since(sent_at),
                    );
                }
                // Queued ones were never sent: dropped.
                for (_, due, _) in pool.queue.drain(..) {
                    rec.dropped(due);
                }
                break;
            }
        }

        // One timer: the next due time (no sooner than one granule from now, so a high rate
        // wakes the loop every granule rather than every request), the next publication, or
        // the drain deadline.
        let mut wake = match (drain_deadline, next) {
            (Some(d), _) => d.min(next_publish),
            (None, Some((_, due))) => (t0 + due).max(now + TIMER_GRANULE).min(next_publish),
            (None, None) => next_publish,
        };
        if !running.is_empty() {
            wake = wake.min(next_sweep);
        }
        if timer.deadline().is_none_or(|d| wake < d) {
            timer.arm(wake);
        }

        let ev = poll_fn(|cx| {
            if scheduled.is_none() && cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ev::Cancel);
            }
            if let Poll::Ready(Some(done)) = running.poll_next_unpin(cx) {
                return Poll::Ready(Ev::Done(done));
            }
            if timer.poll_fired(cx).is_ready() {
                return Poll::Ready(Ev::Tick);
            }
            Poll::Pending
        })
        .await;

        match ev {
            Ev::Cancel => {
                interrupted = true;
                scheduled = Some(elapsed.min(duration));
                next = None;
            }
            Ev::Tick => {}
            Ev::Done(done) => {
                let Finished {
                    due,
                    sent_at,
                    output: x,
                    ..
                } = done;
                rec.done(
                    due,
                    x.outcome,
                    x.done_at.saturating_duration_since(t0 + due),
                    x.done_at.saturating_duration_since(sent_at),
                );
                pool.give_back(x.conn, x.opened);
            }
        }
    }

    let elapsed = t0.elapsed();
    rec.close_seconds(elapsed + Duration::from_secs(3600));
    if let Some(l) = &live {
        l.publish(&LiveSnapshot {
            elapsed,
            sent: rec.sent_count(),
            ok: rec.ok_count(),
            failed: rec.failed_count(),
            dropped: rec.dropped_count(),
            in_flight: 0,
            recent_p99_ms: rec.take_recent_p99().or(recent_p99),
            generation: 0,
        });
    }
    let (cpu, wall) = meter.read();
    // The engine is one thread: it can use at most one core, whatever the affinity allows.
    let available = affinity_cores().map(|n| f64::from(n.min(1)));
    let generator = GeneratorHealth {
        cpu_user_s: cpu.map(|c| c.user_s),
        cpu_system_s: cpu.map(|c| c.system_s),
        cpu_cores_used: cpu
            .filter(|_| !wall.is_zero())
            .map(|c| c.total_s() / wall.as_secs_f64()),
        cpu_cores_available: available,
        max_in_flight: Some(peak as u64),
        connections_opened: Some(pool.opened),
    };
    rec.finish(StepMeta {
        rate_rps,
        duration,
        scheduled: scheduled.unwrap_or(duration),
        started_at,
        ended_at: SystemTime::now(),
        generator,
        interrupted,
        in_flight_cap: max_in_flight,
    })
}
