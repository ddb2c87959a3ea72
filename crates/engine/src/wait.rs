//! How the event loop waits for its next event — a request done, its wake-up time, or a stop —
//! on each I/O backend. Epoll: tokio's reactor with a `timerfd` ([`Timer`]) as the schedule
//! timer. io_uring: the ring itself ([`Ring::park`]), whose wait carries the timeout, so a tick
//! costs one kernel entry that also submits the tick's sends. Everything else about the loop is
//! the same code for both.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::timer::Timer;
use crate::uring::Ring;

/// What woke the loop.
pub(crate) enum Event<T> {
    Cancel,
    Done(T),
    Tick,
}

/// A backend's wait.
pub(crate) trait Wait {
    /// The next of: a request of `running` done, `wake` reached, the stop (only while
    /// `scheduling`).
    async fn next<T: Future>(
        &mut self,
        running: &mut FuturesUnordered<T>,
        wake: Instant,
        scheduling: bool,
    ) -> Event<T::Output>;
}

/// Epoll: the task sleeps in tokio's reactor until an answer, the timer or the stop wakes it.
pub(crate) struct EpollWait {
    timer: Timer,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl EpollWait {
    pub(crate) fn new(stop: &CancellationToken) -> Self {
        Self {
            timer: Timer::new(),
            cancelled: Box::pin(stop.clone().cancelled_owned()),
        }
    }
}

impl Wait for EpollWait {
    async fn next<T: Future>(
        &mut self,
        running: &mut FuturesUnordered<T>,
        wake: Instant,
        scheduling: bool,
    ) -> Event<T::Output> {
        // Re-armed only to an earlier time: an answer-driven wake-up leaves the timer be.
        if self.timer.deadline().is_none_or(|d| wake < d) {
            self.timer.arm(wake);
        }
        let (timer, cancelled) = (&mut self.timer, &mut self.cancelled);
        poll_fn(|cx| {
            if scheduling && cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Cancel);
            }
            if let Poll::Ready(Some(done)) = running.poll_next_unpin(cx) {
                return Poll::Ready(Event::Done(done));
            }
            if timer.poll_fired(cx).is_ready() {
                return Poll::Ready(Event::Tick);
            }
            Poll::Pending
        })
        .await
    }
}

/// Set when a future of the loop was woken: the requests' futures are polled with it, and a
/// wake-up while polling (the set yields after a budget of polls) means "poll again" rather
/// than "wait in the kernel".
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// io_uring: the requests' futures are polled here, and the thread sleeps in the ring, never
/// in tokio's reactor. A stop is seen at the next wake-up (at most the loop's publication
/// period, 100 ms, away).
pub(crate) struct UringWait {
    ring: Ring,
    stop: CancellationToken,
    woken: Arc<Woken>,
    waker: Waker,
}

impl UringWait {
    pub(crate) fn new(ring: Ring, stop: CancellationToken) -> Self {
        let woken = Arc::new(Woken::default());
        Self {
            ring,
            stop,
            waker: Waker::from(woken.clone()),
            woken,
        }
    }
}

impl Wait for UringWait {
    async fn next<T: Future>(
        &mut self,
        running: &mut FuturesUnordered<T>,
        wake: Instant,
        scheduling: bool,
    ) -> Event<T::Output> {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            if scheduling && self.stop.is_cancelled() {
                return Event::Cancel;
            }
            self.woken.0.store(false, Ordering::Relaxed);
            if let Poll::Ready(Some(done)) = running.poll_next_unpin(&mut cx) {
                return Event::Done(done);
            }
            if Instant::now() >= wake {
                return Event::Tick;
            }
            if !self.woken.0.load(Ordering::Relaxed) {
                self.ring.park(wake);
            }
        }
    }
}
