//! A request in flight as the event loop holds it: its exchange future with the schedule facts
//! beside it (readable while it is pending) and a deadline the loop enforces by a sweep instead
//! of a timer per request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::client::Exchange;
use crate::outcome::Outcome;

pin_project_lite::pin_project! {
    /// A request in flight: its exchange, the schedule facts (readable while it is pending, so
    /// requests still in flight at a hard stop are counted in the right second) and its
    /// deadline. The deadline is enforced by the owner calling [`Tracked::expire`] — one sweep
    /// over the requests in flight now and then — instead of a tokio timer per request: a
    /// timer registration per request costs a wheel insertion and often a reactor wake-up.
    pub struct Tracked<F> {
        pub seq: u64,
        // The endpoint it was sent to (an index into the step's endpoints).
        pub endpoint: usize,
        // Due offset from the start of the step.
        pub due: Duration,
        pub sent_at: Instant,
        deadline: Instant,
        expired: bool,
        waker: Option<Waker>,
        #[pin]
        fut: F,
    }
}

impl<F> Tracked<F> {
    pub fn new(
        seq: u64,
        endpoint: usize,
        due: Duration,
        sent_at: Instant,
        deadline: Instant,
        fut: F,
    ) -> Self {
        Self {
            seq,
            endpoint,
            due,
            sent_at,
            deadline,
            expired: false,
            waker: None,
            fut,
        }
    }

    /// The schedule facts of a pinned, pending future: sequence, endpoint, due, send time.
    pub fn facts(self: Pin<&Self>) -> (u64, usize, Duration, Instant) {
        let p = self.project_ref();
        (*p.seq, *p.endpoint, *p.due, *p.sent_at)
    }

    /// Marks the request timed out when its deadline has passed by `now`, and wakes it so it
    /// completes (as [`Outcome::Timeout`], dropping its connection) at its next poll.
    pub fn expire(self: Pin<&mut Self>, now: Instant) {
        let p = self.project();
        if !*p.expired && now >= *p.deadline {
            *p.expired = true;
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    }
}

/// A finished request with its schedule facts.
#[derive(Debug)]
pub struct Finished<T> {
    pub seq: u64,
    pub endpoint: usize,
    pub due: Duration,
    pub sent_at: Instant,
    pub output: T,
}

impl<F: Future<Output = Exchange>> Future for Tracked<F> {
    type Output = Finished<Exchange>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let p = self.project();
        let output = if *p.expired {
            Exchange {
                outcome: Outcome::Timeout,
                done_at: Instant::now(),
                conn: None,
                opened: false,
                handshake: None,
            }
        } else {
            match p.fut.poll(cx) {
                Poll::Ready(x) => x,
                Poll::Pending => {
                    // The set's per-request waker is stable: cloned once per request.
                    if !p.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *p.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        Poll::Ready(Finished {
            seq: *p.seq,
            endpoint: *p.endpoint,
            due: *p.due,
            sent_at: *p.sent_at,
            output,
        })
    }
}
