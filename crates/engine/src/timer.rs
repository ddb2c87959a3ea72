//! The schedule timer: one re-armable one-shot timer with sub-millisecond precision for the
//! attack loop. tokio's timer wheel has 1 ms granularity, which at 20k req/s would release
//! requests in bursts of 20 and add up to 1 ms of schedule lag to every one of them; a Linux
//! `timerfd` (an hrtimer) registered with the runtime's reactor wakes the loop when asked. Where
//! `timerfd` is unavailable it falls back to tokio's sleep.

use std::future::Future as _;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use tokio::io::unix::AsyncFd;

enum Kind {
    Fd(AsyncFd<OwnedFd>),
    Sleep(Pin<Box<tokio::time::Sleep>>),
}

/// A one-shot timer; [`Timer::arm`] replaces the deadline. Must be used inside a tokio runtime
/// with I/O and time enabled.
pub struct Timer {
    kind: Kind,
    deadline: Option<Instant>,
}

impl Timer {
    /// A timerfd-backed timer, or tokio's sleep when the timerfd cannot be had.
    // `AsyncFd::new` is deprecated for types whose fd can be closed behind the reactor's back;
    // here the AsyncFd owns the only handle (an `OwnedFd`), so that cannot happen, and the
    // replacement (`register`) is `unsafe`, which this workspace denies.
    #[allow(deprecated)]
    pub fn new() -> Self {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()
        .and_then(|fd| AsyncFd::new(fd).ok());
        let kind = match fd {
            Some(fd) => Kind::Fd(fd),
            None => Kind::Sleep(Box::pin(tokio::time::sleep(Duration::ZERO))),
        };
        Self {
            kind,
            deadline: None,
        }
    }

    /// True when backed by a timerfd (sub-millisecond wake-ups).
    pub fn is_precise(&self) -> bool {
        matches!(self.kind, Kind::Fd(_))
    }

    /// The armed deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fires once at `deadline` (at once if it has passed).
    pub fn arm(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        match &mut self.kind {
            Kind::Fd(fd) => {
                // A zero it_value would disarm the timer: 1 ns means "now".
                let d = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                let spec = Itimerspec {
                    it_interval: Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                    it_value: Timespec {
                        tv_sec: d.as_secs() as _,
                        tv_nsec: d.subsec_nanos() as _,
                    },
                };
                // Re-arming also resets the expiration count, so the fd never needs a read.
                if timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_err() {
                    self.kind = Kind::Sleep(Box::pin(tokio::time::sleep_until(
                        tokio::time::Instant::from_std(deadline),
                    )));
                }
            }
            Kind::Sleep(s) => s.as_mut().reset(tokio::time::Instant::from_std(deadline)),
        }
    }

    /// Ready once the armed deadline has passed; then disarmed until the next [`Timer::arm`].
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let fired = match &mut self.kind {
            Kind::Fd(fd) => match fd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    guard.clear_ready();
                    // Readiness may be left over from an earlier deadline: trust the clock.
                    Instant::now() >= deadline
                }
                Poll::Ready(Err(_)) => Instant::now() >= deadline,
                Poll::Pending => false,
            },
            Kind::Sleep(s) => s.as_mut().poll(cx).is_ready(),
        };
        if fired {
            self.deadline = None;
            Poll::Ready(())
        } else if Instant::now() >= deadline {
            // Readiness was cleared above without a wake-up registered for later: fire now
            // rather than risk sleeping through the deadline.
            self.deadline = None;
            Poll::Ready(())
        } else {
            if let Kind::Fd(fd) = &mut self.kind {
                // Register interest again after clearing stale readiness.
                if let Poll::Ready(Ok(mut g)) = fd.poll_read_ready(cx) {
                    g.clear_ready();
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        }
    }
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_the_deadline_with_sub_millisecond_precision() {
        let mut t = Timer::new();
        assert!(t.is_precise(), "timerfd is available on Linux");
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_micros(300);
            t.arm(deadline);
            std::future::poll_fn(|cx| t.poll_fired(cx)).await;
            let late = Instant::now().saturating_duration_since(deadline);
            assert!(Instant::now() >= deadline);
            worst = worst.max(late);
        }
        // Generous bound for a loaded machine; tokio's wheel alone would be ~1 ms late.
        assert!(worst < Duration::from_millis(50), "worst {worst:?}");
        // Re-arming to an earlier deadline replaces the later one.
        t.arm(Instant::now() + Duration::from_secs(3600));
        let soon = Instant::now() + Duration::from_millis(1);
        t.arm(soon);
        tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| t.poll_fired(cx)),
        )
        .await
        .expect("earlier deadline fires");
        assert_eq!(t.deadline(), None);
    }
}
