//! The keep-alive connection pool of one attack and the due requests waiting for a connection.
//! With a fixed count (`--connections N`) at most N connections exist; opening on demand, one
//! is opened per concurrent request, at most [`MAX_CONNECTING`] at a time.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use super::client::{ConnectPermit, Sender};

/// Connection attempts in progress at once. Opening on demand without a bound turns a short
/// hiccup of the target into thousands of simultaneous connects, overflowing its accept queue
/// (SYNs dropped, retried after 1 s); beyond this, due requests wait for a connection instead
/// and the wait shows as schedule lag.
pub const MAX_CONNECTING: usize = 64;

/// A due request waiting for a connection: its sequence number, due time, and how late the
/// loop handled it.
pub type Queued = (u64, Duration, Duration);

/// What a request is sent on: an idle connection, or a permit to open one.
pub type Conn = (Option<Sender>, Option<ConnectPermit>);

pub struct Pool {
    connections: Option<usize>,
    idle: Vec<Sender>,
    /// Connections existing or being opened (idle + held by requests in flight).
    alive: usize,
    /// Connection attempts in progress (see [`MAX_CONNECTING`]).
    connecting: Arc<AtomicUsize>,
    /// Connections opened so far.
    pub opened: u64,
    /// Due requests waiting for a connection, in due order: in flight from the schedule's
    /// view. With a fixed connection count the wait is the generator's own limit and shows as
    /// schedule lag; opening on demand, it is time the target took to complete connects and
    /// shows as connection wait.
    pub queue: VecDeque<Queued>,
}

impl Pool {
    /// An empty pool: `Some(n)` for at most n connections, `None` to open them on demand.
    pub fn new(connections: Option<usize>) -> Pool {
        Pool {
            connections,
            idle: Vec::new(),
            alive: 0,
            connecting: Arc::new(AtomicUsize::new(0)),
            opened: 0,
            queue: VecDeque::new(),
        }
    }

    /// True when the count of connections is fixed.
    pub fn is_fixed(&self) -> bool {
        self.connections.is_some()
    }

    /// A connection for the next request: an idle one, or a permit to open one. `None` when
    /// the request has to wait (fixed count reached, or too many connects in progress).
    pub fn take(&mut self) -> Option<Conn> {
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
    pub fn give_back(&mut self, conn: Option<Sender>, opened: bool) {
        if opened {
            self.opened += 1;
        }
        match conn {
            Some(c) => self.idle.push(c),
            None => self.alive = self.alive.saturating_sub(1),
        }
    }
}
