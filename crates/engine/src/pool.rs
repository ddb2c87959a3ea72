//! The keep-alive connection pool of one attack and the due requests waiting for a connection.
//!
//! Two policies:
//! - **Fixed** (`--connections N`): exactly up to N connections; a due request that finds all
//!   busy waits, and the wait is the generator's own limit (it shows as schedule lag).
//! - **Capped** (the default): a connection is opened when a due request finds none idle —
//!   freely up to a **free count** from the rate ([`free_count`]: the connections the rate
//!   needs at 100 ms per answer, 16 to 512), and beyond it, up to the cap (the in-flight cap
//!   unless `--max-connections N` says less), only for a request that has already waited
//!   [`GROW_AFTER`] for one to come free. At most [`MAX_CONNECTING`] connects run at a time;
//!   the most recently used connection is reused first and one idle for [`IDLE_CLOSE`] is
//!   closed, so sockets and memory follow the current load, not the peak. A request waiting
//!   for a connection keeps its place in due order and its latency keeps counting from its due
//!   time (connection wait, nothing hidden); it is dropped only at the in-flight cap.
//!
//! Why a grace wait and not a tighter cap: opening a connection for every request that finds
//! all busy turns a hiccup of a fast target into a connection storm (thousands opened in
//! seconds, the target slowed by them, more opened); a hard cap of rate × 100 ms (tried) ends
//! that but holds requests back when the target is really overloaded, so they reach it after
//! the step and it is never offered the open-model load (TD4 replayed with it: a 1-core replica
//! at 250 req/s counted 100 % instead of 92.6 %). Beyond the free count a request waits at most
//! [`GROW_AFTER`]: a hiccup shorter than that is absorbed by the connections coming free, and a
//! target that is truly slow still gets every request, at most that much later.
//!
//! A pool serves one endpoint, or (connection balance, see [`super::balance`]) opens each new
//! connection to the next of several endpoints in turn; every connection remembers its endpoint,
//! so a request knows where it went.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{ConnectPermit, Sender};

/// Connection attempts in progress at once. Opening on demand without a bound turns a short
/// hiccup of the target into thousands of simultaneous connects, overflowing its accept queue
/// (SYNs dropped, retried after 1 s); beyond this, due requests wait for a connection instead.
pub const MAX_CONNECTING: usize = 64;
/// A connection idle this long is closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(1);
/// Beyond the free count, a request opens a new connection only after waiting this long for
/// one to come free.
pub const GROW_AFTER: Duration = Duration::from_millis(5);
/// The free count's bounds and the answer time it allows for.
const FREE_MIN: usize = 16;
const FREE_MAX: usize = 512;
const FREE_ANSWER_TIME_S: f64 = 0.1;

/// Connections a rate may open without waiting: what `rate_rps` needs when each answer takes
/// 100 ms, within 16…512.
pub fn free_count(rate_rps: f64) -> usize {
    let n = (rate_rps * FREE_ANSWER_TIME_S).ceil();
    if n.is_finite() && n > 0.0 {
        (n as usize).clamp(FREE_MIN, FREE_MAX)
    } else {
        FREE_MIN
    }
}

/// A due request waiting for a connection: its sequence number, due time, and how late the
/// loop handled it.
pub type Queued = (u64, Duration, Duration);

/// What a request is sent on: an idle connection, or a permit to open one.
pub type Conn = (Option<Sender>, Option<ConnectPermit>);

/// How the pool may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Exactly up to N connections, kept open (`--connections N`).
    Fixed(usize),
    /// Opened on demand, freely up to `free` and after a [`GROW_AFTER`] wait up to `cap`; idle
    /// ones closed.
    Capped { free: usize, cap: usize },
}

impl Policy {
    pub fn cap(self) -> usize {
        match self {
            Policy::Fixed(n) | Policy::Capped { cap: n, .. } => n,
        }
    }

    /// Connections opened without a wait (all of them for a fixed pool).
    pub fn free(self) -> usize {
        match self {
            Policy::Fixed(n) => n,
            Policy::Capped { free, cap } => free.min(cap),
        }
    }
}

pub struct Pool {
    policy: Policy,
    /// Idle connections with the time they became idle and their endpoint; the most recently
    /// used last.
    idle: Vec<(Sender, Instant, usize)>,
    /// New connections go to endpoints `first .. first + spread`, in turn from `next_open`.
    first: usize,
    spread: usize,
    next_open: usize,
    /// Connections existing or being opened (idle + held by requests in flight).
    alive: usize,
    /// Connection attempts in progress (see [`MAX_CONNECTING`]).
    connecting: Arc<AtomicUsize>,
    /// Connections opened so far.
    pub opened: u64,
    /// Connections closed for being idle.
    pub closed_idle: u64,
    /// Most connections alive at once.
    pub peak: usize,
    /// Requests that had to wait because every connection was busy and the cap reached.
    pub cap_waits: u64,
    /// Connections opened beyond the free count, each after a request waited [`GROW_AFTER`].
    pub grown: u64,
    /// Due requests waiting for a connection, in due order: in flight from the schedule's
    /// view. With a fixed count the wait is the generator's own limit and shows as schedule
    /// lag; capped, it is part of the request's latency and shows as connection wait.
    pub queue: VecDeque<Queued>,
}

impl Pool {
    /// A pool of connections to endpoint 0 (the only one).
    pub fn new(policy: Policy) -> Pool {
        Pool::over(policy, 0, 1)
    }

    /// A pool whose new connections go to endpoints `first .. first + spread`, round robin.
    pub fn over(policy: Policy, first: usize, spread: usize) -> Pool {
        Pool {
            policy,
            idle: Vec::new(),
            first,
            spread: spread.max(1),
            next_open: 0,
            alive: 0,
            connecting: Arc::new(AtomicUsize::new(0)),
            opened: 0,
            closed_idle: 0,
            peak: 0,
            cap_waits: 0,
            grown: 0,
            queue: VecDeque::new(),
        }
    }

    /// True when the count of connections is fixed.
    pub fn is_fixed(&self) -> bool {
        matches!(self.policy, Policy::Fixed(_))
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// A connection for a request that has waited `waited` for one: the most recently used
    /// idle one (so the oldest age out), or a permit to open one — below the free count at
    /// once, beyond it only after [`GROW_AFTER`]. `None` when the request has to wait (cap or
    /// free count reached, or too many connects in progress). With the connection, its
    /// endpoint: the idle one's own, or the next in turn for a new one.
    pub fn take(&mut self, waited: Duration) -> Option<(usize, Conn)> {
        if let Some((c, _, endpoint)) = self.idle.pop() {
            return Some((endpoint, (Some(c), None)));
        }
        let grow = self.alive >= self.policy.free();
        if self.alive >= self.policy.cap() || (grow && waited < GROW_AFTER) {
            return None;
        }
        let permit = ConnectPermit::try_take(&self.connecting, MAX_CONNECTING)?;
        self.alive += 1;
        self.grown += u64::from(grow);
        self.peak = self.peak.max(self.alive);
        let endpoint = self.first + self.next_open;
        // Only on a connect, never per request: a pool of one endpoint stays at 0.
        self.next_open += 1;
        if self.next_open == self.spread {
            self.next_open = 0;
        }
        Some((endpoint, (None, Some(permit))))
    }

    /// Connections existing or being opened.
    pub fn alive(&self) -> usize {
        self.alive
    }

    /// When a request queued at `since` may open a connection beyond the free count, if the
    /// pool could grow then; `None` when no wait would let it (a fixed pool, or the cap).
    pub fn grow_at(&self, since: Instant) -> Option<Instant> {
        let growing = self.alive >= self.policy.free() && self.alive < self.policy.cap();
        (growing && self.idle.is_empty()).then(|| since + GROW_AFTER)
    }

    /// Called for a request about to be queued: counts it as a cap wait when the cap (not a
    /// connect in progress) is what makes it wait.
    pub fn note_wait(&mut self) {
        if self.alive >= self.policy.cap() {
            self.cap_waits += 1;
        }
    }

    /// Takes back what an exchange on `endpoint` left: its connection when reusable.
    pub fn give_back(&mut self, endpoint: usize, conn: Option<Sender>, opened: bool, now: Instant) {
        if opened {
            self.opened += 1;
        }
        match conn {
            Some(c) => self.idle.push((c, now, endpoint)),
            None => self.alive = self.alive.saturating_sub(1),
        }
    }

    /// Closes connections idle for [`IDLE_CLOSE`] (capped policy only: a fixed pool keeps its
    /// connections). Cheap: the oldest idle ones are at the front.
    pub fn close_idle(&mut self, now: Instant) {
        if self.is_fixed() {
            return;
        }
        let stale = self
            .idle
            .iter()
            .take_while(|(_, since, _)| now.saturating_duration_since(*since) >= IDLE_CLOSE)
            .count();
        if stale > 0 {
            // Dropping a sender ends its connection task, which closes the socket.
            self.idle.drain(..stale);
            self.alive = self.alive.saturating_sub(stale);
            self.closed_idle += stale as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn the_pool_never_exceeds_its_cap_and_counts_cap_waits() {
        let mut p = Pool::new(Policy::Capped { free: 3, cap: 3 });
        let taken: Vec<_> = (0..5).filter_map(|_| p.take(GROW_AFTER)).collect();
        assert_eq!(taken.len(), 3, "only the cap's worth of permits");
        assert_eq!(p.peak, 3);
        p.note_wait();
        assert_eq!(p.cap_waits, 1);
        // A failed exchange gives its slot back; a new permit can then be had.
        drop(taken);
        p.give_back(0, None, false, Instant::now());
        assert!(p.take(NOW).is_some());
        assert!(p.take(GROW_AFTER).is_none());
    }

    #[test]
    fn beyond_the_free_count_only_a_request_that_waited_opens_a_connection() {
        let mut p = Pool::new(Policy::Capped { free: 2, cap: 4 });
        let mut held: Vec<_> = (0..4).filter_map(|_| p.take(NOW)).collect();
        assert_eq!(held.len(), 2, "the free count opens at once");
        assert!(
            p.take(GROW_AFTER / 2).is_none(),
            "not before the grace wait"
        );
        let since = Instant::now();
        assert_eq!(p.grow_at(since), Some(since + GROW_AFTER));
        held.extend(p.take(GROW_AFTER));
        held.extend(p.take(GROW_AFTER * 3));
        assert_eq!((held.len(), p.grown, p.peak), (4, 2, 4));
        assert!(p.take(Duration::from_secs(10)).is_none(), "the cap holds");
        assert_eq!(p.grow_at(since), None, "no wait lets it grow at the cap");
    }

    #[test]
    fn the_free_count_follows_the_rate_within_its_bounds() {
        assert_eq!(free_count(50.0), 16);
        assert_eq!(free_count(1000.0), 100);
        assert_eq!(free_count(20_000.0), 512);
        assert_eq!(free_count(f64::NAN), 16);
    }

    #[test]
    fn a_fixed_pool_opens_its_count_at_once_and_never_grows() {
        let mut p = Pool::new(Policy::Fixed(2));
        assert!(p.take(NOW).is_some() && p.take(NOW).is_some());
        assert!(p.take(Duration::from_secs(1)).is_none());
        assert_eq!(p.grow_at(Instant::now()), None);
        assert_eq!(p.grown, 0);
    }
}
