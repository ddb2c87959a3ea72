//! How one attack spreads its requests over its endpoints (the base URLs of a service's
//! replicas, each on its own port), as the front end of a real deployment would:
//!
//! - [`Balance::Request`] (the default), like an Ingress controller or any L7 proxy: round
//!   robin per request. The k-th request this engine accepts (sends, or queues for a
//!   connection; not one dropped at the in-flight cap) goes to endpoint k mod N, so each
//!   endpoint gets within one of an even share. Each endpoint has its own [`Pool`] and its own
//!   queue of requests waiting for a connection *there*: a slow replica makes its own requests
//!   wait, not the ones due at the others (a proxy's upstreams do not share a queue either).
//! - [`Balance::Connection`], like kube-proxy: a connection is pinned to one endpoint. There is
//!   one pool; each *new* connection is opened to the next endpoint in turn, and a request
//!   takes any idle connection, so the share follows the connections.
//!
//! The connection budgets of a spec (the free count from the rate, the cap, a fixed count) are
//! the step's totals, as with one target: under request balance each endpoint's pool gets an
//! even share of the cap or the fixed count (at least one each), and the free count of its
//! share of the rate (`pool::free_count(rate / N)`, so at least 16 each: a replica absorbs a
//! hiccup as a lone target would). Splitting keeps what `--connections` / `--max-connections`
//! mean to the service as a whole, whatever its replica count; connects in progress are bounded
//! per endpoint ([`super::pool::MAX_CONNECTING`] protects each target's own accept queue). The
//! in-flight cap stays global: it is the generator's own limit. With one endpoint there is one
//! pool, exactly the single-target one, and nothing here adds work per request beyond an index
//! that stays 0.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::client::Sender;
use super::limits::Limits;
use super::pool::{free_count, Conn, Policy, Pool, Queued};
use loadgen_model::result::{EndpointCounts, GeneratorHealth};

// `Balance` itself is defined at the crate root (`loadgen_engine::Balance`), where the
// scenario's `[service] balance` already names it; its behaviour is this module's.
pub use super::Balance;

impl Balance {
    /// The name `--balance` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::Request => "request",
            Balance::Connection => "connection",
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A balance name that is neither `request` nor `connection`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected request or connection, got {0:?}")]
pub struct BalanceError(pub String);

impl FromStr for Balance {
    type Err = BalanceError;

    fn from_str(s: &str) -> Result<Balance, BalanceError> {
        match s {
            "request" => Ok(Balance::Request),
            "connection" => Ok(Balance::Connection),
            _ => Err(BalanceError(s.to_string())),
        }
    }
}

/// A step's connection budget as a whole, from its spec: its limits (the timeout is not the
/// pools' business) and the rate the free count follows.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub limits: Limits,
    pub peak_rate_rps: f64,
}

/// Part `i` of `total` split evenly over `parts` (the first ones get the remainder), at least 1.
fn share(total: usize, parts: usize, i: usize) -> usize {
    (total / parts + usize::from(i < total % parts)).max(1)
}

/// The pools of a step over `endpoints` under `balance` (see the module doc for the split).
pub fn pools(balance: Balance, endpoints: usize, b: Budget) -> Vec<Pool> {
    let cap = b.limits.max_connections.unwrap_or(b.limits.max_in_flight);
    if endpoints <= 1 || balance == Balance::Connection {
        let policy = match b.limits.connections {
            Some(n) => Policy::Fixed(n),
            None => Policy::Capped {
                free: free_count(b.peak_rate_rps),
                cap,
            },
        };
        return vec![Pool::over(policy, 0, endpoints)];
    }
    let free = free_count(b.peak_rate_rps / endpoints as f64);
    (0..endpoints)
        .map(|i| {
            let policy = match b.limits.connections {
                Some(n) => Policy::Fixed(share(n, endpoints, i)),
                None => Policy::Capped {
                    free,
                    cap: share(cap, endpoints, i),
                },
            };
            Pool::over(policy, i, 1)
        })
        .collect()
}

/// The pools of one attack, the round robin over them, and the per-endpoint counts.
pub struct Spread {
    pools: Vec<Pool>,
    /// The pool of the next accepted request (request balance; always 0 with one pool).
    next: usize,
    /// Requests waiting for a connection, over all pools (they count as in flight).
    queued: usize,
    /// Connections alive at once over all pools, at most (tracked only with several pools).
    peak: usize,
    /// One per endpoint when there are several; empty with one (nothing counted per request).
    counts: Vec<EndpointCounts>,
}

impl Spread {
    /// `urls` names the endpoints (indexes as the pools use them).
    pub fn new(pools: Vec<Pool>, urls: &[String]) -> Spread {
        let counts = if urls.len() > 1 {
            urls.iter()
                .map(|u| EndpointCounts {
                    url: u.clone(),
                    ..EndpointCounts::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        Spread {
            pools,
            next: 0,
            queued: 0,
            peak: 0,
            counts,
        }
    }

    /// How many pools there are.
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The pool the next accepted request goes to: round robin (one pool: always 0).
    pub fn next_pool(&mut self) -> usize {
        let i = self.next;
        self.next += 1;
        if self.next == self.pools.len() {
            self.next = 0;
        }
        i
    }

    /// True when the count of connections is fixed (the same for every pool).
    pub fn is_fixed(&self) -> bool {
        self.pools[0].is_fixed()
    }

    /// A connection of pool `i` and its endpoint, as [`Pool::take`].
    pub fn take(&mut self, i: usize, waited: Duration) -> Option<(usize, Conn)> {
        let got = self.pools[i].take(waited)?;
        if got.1 .1.is_some() && self.pools.len() > 1 {
            // Only when a connection opens, and only with several pools.
            let alive = self.pools.iter().map(Pool::alive).sum();
            self.peak = self.peak.max(alive);
        }
        Some(got)
    }

    /// Queues a request at pool `i` (counted as a cap wait when the cap is why).
    pub fn queue(&mut self, i: usize, q: Queued) {
        let pool = &mut self.pools[i];
        pool.note_wait();
        pool.queue.push_back(q);
        self.queued += 1;
    }

    /// The request at the head of pool `i`'s queue.
    pub fn head(&self, i: usize) -> Option<&Queued> {
        self.pools[i].queue.front()
    }

    /// Takes the request at the head of pool `i`'s queue.
    pub fn dequeue(&mut self, i: usize) -> Option<Queued> {
        let q = self.pools[i].queue.pop_front()?;
        self.queued -= 1;
        Some(q)
    }

    /// Requests waiting for a connection, all pools.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Empties every queue (the end of a step), in pool order.
    pub fn drain_queued(&mut self) -> Vec<Queued> {
        self.queued = 0;
        self.pools
            .iter_mut()
            .flat_map(|p| p.queue.drain(..))
            .collect()
    }

    /// When the head of pool `i`'s queue, waiting since `since`, may open a connection.
    pub fn grow_at(&self, i: usize, since: Instant) -> Option<Instant> {
        self.pools[i].grow_at(since)
    }

    /// A request was sent to `endpoint`.
    pub fn sent(&mut self, endpoint: usize) {
        if let Some(c) = self.counts.get_mut(endpoint) {
            c.sent += 1;
        }
    }

    /// A request sent to `endpoint` ended, ok or not.
    pub fn done(&mut self, endpoint: usize, ok: bool) {
        if let Some(c) = self.counts.get_mut(endpoint) {
            if ok {
                c.ok += 1;
            } else {
                c.failed += 1;
            }
        }
    }

    /// Takes back what an exchange on `endpoint` left, into the pool that endpoint belongs to.
    pub fn give_back(&mut self, endpoint: usize, conn: Option<Sender>, opened: bool, now: Instant) {
        if opened {
            if let Some(c) = self.counts.get_mut(endpoint) {
                c.connections_opened += 1;
            }
        }
        // One pool (one endpoint, or connection balance) holds every endpoint's connections.
        let i = if self.pools.len() == 1 { 0 } else { endpoint };
        self.pools[i].give_back(endpoint, conn, opened, now);
    }

    /// Closes idle connections in every pool.
    pub fn close_idle(&mut self, now: Instant) {
        for p in &mut self.pools {
            p.close_idle(now);
        }
    }

    /// Connections alive now and opened so far, over all pools (for a live exposition).
    pub fn connections(&self) -> (u64, u64) {
        let alive = self.pools.iter().map(|p| p.alive() as u64).sum();
        (alive, self.pools.iter().map(|p| p.opened).sum())
    }

    /// The pool's part of the generator's health, summed over the pools (one pool: its own).
    pub fn report(&self, g: &mut GeneratorHealth) {
        let sum = |f: fn(&Pool) -> u64| self.pools.iter().map(f).sum::<u64>();
        let fixed = self.is_fixed();
        let peak = if self.pools.len() == 1 {
            self.pools[0].peak
        } else {
            self.peak
        };
        g.connections_opened = Some(sum(|p| p.opened));
        g.connections_peak = Some(peak as u64);
        g.pool_free = (!fixed).then(|| sum(|p| p.policy().free() as u64));
        g.connections_grown = (!fixed).then(|| sum(|p| p.grown));
        g.connections_closed_idle = Some(sum(|p| p.closed_idle));
        g.pool_cap = Some(sum(|p| p.policy().cap() as u64));
        g.pool_fixed = Some(fixed);
        g.pool_cap_waits = Some(sum(|p| p.cap_waits));
    }

    /// The per-endpoint counts (empty with one endpoint).
    pub fn into_counts(self) -> Vec<EndpointCounts> {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(connections: Option<usize>, max_connections: Option<usize>) -> Budget {
        Budget {
            limits: Limits {
                timeout: Duration::from_secs(1),
                connections,
                max_connections,
                max_in_flight: 10_000,
                io: crate::io::IoMode::Auto,
            },
            peak_rate_rps: 3000.0,
        }
    }

    #[test]
    fn request_balance_splits_the_budget_and_connection_balance_keeps_one_pool() {
        let caps = |ps: &[Pool]| ps.iter().map(|p| p.policy()).collect::<Vec<_>>();
        let ps = pools(Balance::Request, 3, budget(Some(4), None));
        assert_eq!(
            caps(&ps),
            [Policy::Fixed(2), Policy::Fixed(1), Policy::Fixed(1)]
        );
        // Fewer connections than endpoints: each endpoint still gets one.
        let ps = pools(Balance::Request, 3, budget(Some(2), None));
        assert_eq!(caps(&ps), [Policy::Fixed(1); 3]);
        let ps = pools(Balance::Request, 3, budget(None, Some(30)));
        assert_eq!(caps(&ps), [Policy::Capped { free: 100, cap: 10 }; 3]);
        let ps = pools(Balance::Connection, 3, budget(Some(3), None));
        assert_eq!(caps(&ps), [Policy::Fixed(3)]);
        // One endpoint: the single-target pool whatever the balance.
        let ps = pools(Balance::Request, 1, budget(None, None));
        assert_eq!(
            caps(&ps),
            [Policy::Capped {
                free: 300,
                cap: 10_000
            }]
        );
    }

    #[test]
    fn new_connections_of_a_shared_pool_go_to_the_endpoints_in_turn() {
        let mut s = Spread::new(
            pools(Balance::Connection, 3, budget(Some(5), None)),
            &["a".into(), "b".into(), "c".into()],
        );
        let eps: Vec<usize> = (0..5)
            .map(|_| s.take(0, Duration::ZERO).unwrap().0)
            .collect();
        assert_eq!(eps, [0, 1, 2, 0, 1]);
        assert!(s.take(0, Duration::from_secs(1)).is_none(), "fixed at 5");
        s.give_back(2, None, true, Instant::now());
        let counts = s.into_counts();
        assert_eq!(counts[2].connections_opened, 1);
        assert_eq!(counts[0].connections_opened, 0);
    }

    #[test]
    fn requests_go_round_robin_over_the_pools_and_queues_are_counted() {
        let mut s = Spread::new(
            pools(Balance::Request, 3, budget(None, None)),
            &["a".into(), "b".into(), "c".into()],
        );
        let order: Vec<usize> = (0..7).map(|_| s.next_pool()).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0]);
        s.queue(1, (7, Duration::ZERO, Duration::ZERO));
        s.queue(2, (8, Duration::ZERO, Duration::ZERO));
        assert_eq!(s.queued(), 2);
        assert_eq!(s.dequeue(1).map(|q| q.0), Some(7));
        assert_eq!(s.drain_queued().len(), 1);
        assert_eq!(s.queued(), 0);
        let mut one = Spread::new(pools(Balance::Request, 1, budget(None, None)), &[]);
        assert_eq!((one.next_pool(), one.next_pool()), (0, 0));
        assert!(one.into_counts().is_empty(), "nothing counted per endpoint");
    }
}
