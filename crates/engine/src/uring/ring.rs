//! The engine thread's one io_uring and the operations in flight on it. Requests' futures push
//! submissions ([`Ring::push`]) and await their completions ([`Op`]); nothing enters the kernel
//! until the event loop has nothing left to do and [`Ring::park`]s: one `io_uring_enter` then
//! submits everything the loop queued since the last one (every send of a tick together) and
//! waits for the first completion or the loop's next wake-up — the ring's own timeout is the
//! schedule timer, so a tick costs at most one kernel entry.
//!
//! Buffers and sockets an operation uses are owned by its slot here, not by the future that
//! started it: a request dropped mid-flight (its deadline passed) leaves them to the slot,
//! which frees them only when the kernel says the operation is over (it is cancelled on drop).
//!
//! The ring is set up with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1+):
//! completions are then run only when this thread enters the kernel to wait, not by interrupts
//! in between. It is used by one thread only; its state is behind an `Arc<Mutex>` all the
//! same (never contended: a lock is an uncontended atomic pair), because the pool's
//! connections are one type for both backends and the epoll loop runs as a `Send` task.

// io_uring hands the kernel raw pointers into memory it will read or write later: pushing an
// entry is `unsafe` in the `io-uring` crate, and a completed receive's bytes are made part of
// the buffer with `set_len`. Every such place below and in `conn.rs` says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

/// Submission queue entries (the completion queue is twice as large): a tick of a high rate
/// sends a few dozen requests, each one send and one receive; a full queue is submitted early.
const ENTRIES: u32 = 4096;
/// `user_data` of an entry whose completion nobody waits for (a send or close that only
/// reports failures, a cancel, a link timeout).
pub(super) const IGNORED: u64 = u64::MAX;

/// What an operation keeps alive until the kernel is done with it (held, not read: the kernel
/// reads it).
#[derive(Default)]
pub(super) enum Keep {
    #[default]
    Nothing,
    /// A receive's buffer (written by the kernel) and, for the receive linked to a send, the
    /// request the send reads.
    Recv(BytesMut, #[allow(dead_code)] Option<Bytes>),
    /// A connect's address and the timespec of its linked timeout.
    Connect(#[allow(dead_code)] Box<(libc::sockaddr_storage, types::Timespec)>),
}

enum State {
    Free,
    Waiting(Option<Waker>),
    Done(i32),
    /// Its future is gone: free the slot (and what it keeps) when the completion comes.
    Orphan,
}

struct Slot {
    state: State,
    keep: Keep,
}

struct Inner {
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The first error entering the kernel (the loop then stops waiting on the ring).
    failed: Option<io::Error>,
    /// The kernel takes `IORING_RECVSEND_POLL_FIRST` on a receive.
    poll_first: bool,
}

/// The engine thread's ring (cheap to clone: every request's future holds one).
#[derive(Clone)]
pub struct Ring(Arc<Mutex<Inner>>);

/// Why io_uring cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("io_uring_setup refused: {0}")]
    Setup(String),
    #[error("the kernel's io_uring lacks {0}")]
    Missing(&'static str),
}

impl Ring {
    /// Sets up the ring and checks the kernel has every operation and feature the backend
    /// uses; `Err` says why not (seccomp or `kernel.io_uring_disabled` refuse the setup with
    /// `EPERM`, an old kernel lacks an opcode).
    pub fn new() -> Result<Ring, Refused> {
        let ring = IoUring::builder()
            .setup_cqsize(ENTRIES * 2)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(ENTRIES)
            // Before 6.1 the two flags are unknown (EINVAL): a plain ring works the same, its
            // completions only run at other times.
            .or_else(|e| match e.raw_os_error() {
                Some(libc::EINVAL) => IoUring::builder().setup_cqsize(ENTRIES * 2).build(ENTRIES),
                _ => Err(e),
            })
            .map_err(|e| Refused::Setup(e.to_string()))?;
        let p = ring.params();
        if !p.is_feature_ext_arg() {
            return Err(Refused::Missing(
                "a timeout on the wait (IORING_FEAT_EXT_ARG)",
            ));
        }
        if !p.is_feature_skip_cqe_on_success() {
            return Err(Refused::Missing("IOSQE_CQE_SKIP_SUCCESS"));
        }
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| Refused::Setup(format!("probe: {e}")))?;
        let needed = [
            (opcode::Send::CODE, "IORING_OP_SEND"),
            (opcode::Recv::CODE, "IORING_OP_RECV"),
            (opcode::Connect::CODE, "IORING_OP_CONNECT"),
            (opcode::Close::CODE, "IORING_OP_CLOSE"),
            (opcode::LinkTimeout::CODE, "IORING_OP_LINK_TIMEOUT"),
            (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        ];
        if let Some((_, name)) = needed.iter().find(|(c, _)| !probe.is_supported(*c)) {
            return Err(Refused::Missing(name));
        }
        // No feature bit announces 5.19's POLL_FIRST (an older kernel may refuse the flag);
        // 6.10's bundle feature implies it, so only kernels that have that one use it.
        let poll_first = p.is_feature_recvsend_bundle();
        Ok(Ring(Arc::new(Mutex::new(Inner {
            poll_first,
            ring,
            slots: Vec::new(),
            free: Vec::new(),
            failed: None,
        }))))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it ends the engine thread anyway: the state is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `entries` (a linked chain, in order) for the next kernel entry; the completion
    /// of `entries[awaited]` is awaited with the returned [`Op`] and `keep` is held until then.
    /// The others must carry [`IGNORED`] user data: they complete unseen.
    ///
    /// # Safety
    /// Every pointer in the entries must stay valid until the operation completes: into
    /// `keep`, into memory owned by the ring's caller for at least that long, or (timespecs,
    /// addresses) copied by the kernel at submission.
    pub(super) unsafe fn push(
        &self,
        entries: &mut [squeue::Entry],
        awaited: usize,
        keep: Keep,
    ) -> Op {
        let mut inner = self.lock();
        let id = inner.slot(keep);
        entries[awaited] = entries[awaited].clone().user_data(u64::from(id));
        // SAFETY: the caller vouches for the pointers (see above); the slot keeps `keep`.
        unsafe { inner.push_all(entries) };
        Op {
            ring: self.clone(),
            id: Some(id),
        }
    }

    /// Queues a fire-and-forget close of `fd` (its completion is skipped on success).
    pub(super) fn close(&self, fd: OwnedFd) {
        use std::os::fd::IntoRawFd;
        let raw = fd.into_raw_fd();
        let e = opcode::Close::new(types::Fd(raw))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(IGNORED);
        // SAFETY: a close reads no memory of ours; the fd is given up to it (`into_raw_fd`).
        unsafe { self.lock().push_all(&mut [e]) };
    }

    /// Submits what is queued and waits until a completion arrives or `until` — one kernel
    /// entry — then hands the completions to their operations (waking their futures).
    pub fn park(&self, until: Instant) {
        let wakers = {
            let mut inner = self.lock();
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() && inner.ring.completion().is_empty() {
                let ts = types::Timespec::from(wait);
                let args = types::SubmitArgs::new().timespec(&ts);
                match inner.ring.submitter().submit_with_args(1, &args) {
                    Ok(_) => {}
                    Err(e) if is_wait_over(&e) => {}
                    Err(e) => inner.failed = inner.failed.take().or(Some(e)),
                }
            } else if !inner.ring.submission().is_empty() {
                // (Entering with nothing to submit would be a syscall for nothing.)
                if let Err(e) = inner.ring.submit() {
                    if !is_wait_over(&e) {
                        inner.failed = inner.failed.take().or(Some(e));
                    }
                }
            }
            inner.reap()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// True when a receive may be armed without trying it first (`IORING_RECVSEND_POLL_FIRST`).
    pub(super) fn poll_first(&self) -> bool {
        self.lock().poll_first
    }

    /// The error that stopped the ring from entering the kernel, if any.
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.as_ref().map(ToString::to_string)
    }
}

fn is_wait_over(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

impl Inner {
    fn slot(&mut self, keep: Keep) -> u32 {
        let slot = Slot {
            state: State::Waiting(None),
            keep,
        };
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// # Safety
    /// As [`Ring::push`].
    unsafe fn push_all(&mut self, entries: &mut [squeue::Entry]) {
        // A linked chain must go in one submission: make room for all of it first.
        let room = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if room < entries.len() {
            if let Err(e) = self.ring.submit() {
                self.failed = self.failed.take().or(Some(e));
            }
        }
        let mut sq = self.ring.submission();
        for e in entries.iter() {
            // SAFETY: the caller vouches for the entry's pointers; room was made above (a
            // queue still full after a submit means the kernel is broken: the entry is lost
            // and its operation times out, counted).
            let _ = unsafe { sq.push(e) };
        }
    }

    /// Moves completions to their slots; returns the futures to wake.
    fn reap(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let done: Vec<cqueue::Entry> = self.ring.completion().collect();
        for c in done {
            let id = c.user_data();
            if id == IGNORED {
                continue;
            }
            let Some(slot) = self.slots.get_mut(id as usize) else {
                continue;
            };
            match std::mem::replace(&mut slot.state, State::Done(c.result())) {
                State::Waiting(w) => wakers.extend(w),
                State::Orphan => {
                    slot.state = State::Free;
                    slot.keep = Keep::Nothing;
                    self.free.push(id as u32);
                }
                // A slot completes once; anything else is a stray completion: keep the state.
                other => slot.state = other,
            }
        }
        wakers
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closes queued by the last connections dropped: submitted, or their sockets would
        // stay open after the step. The kernel cancels whatever else is in flight.
        let _ = self.ring.submit();
    }
}

/// One operation in flight: resolves to its result (`-errno` on failure) and what it kept.
pub(super) struct Op {
    ring: Ring,
    id: Option<u32>,
}

impl Op {
    /// Ready with the result and what the slot kept, once the kernel has completed it.
    pub(super) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<(i32, Keep)> {
        let Some(id) = self.id else {
            return Poll::Ready((-libc::ECANCELED, Keep::Nothing));
        };
        let mut inner = self.ring.lock();
        let slot = &mut inner.slots[id as usize];
        match &mut slot.state {
            State::Done(res) => {
                let res = *res;
                slot.state = State::Free;
                let keep = std::mem::take(&mut slot.keep);
                inner.free.push(id);
                self.id = None;
                Poll::Ready((res, keep))
            }
            State::Waiting(w) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Free | State::Orphan => Poll::Ready((-libc::ECANCELED, Keep::Nothing)),
        }
    }
}

impl std::future::Future for Op {
    type Output = (i32, Keep);
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(i32, Keep)> {
        self.get_mut().poll_done(cx)
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut inner = self.ring.lock();
        let slot = &mut inner.slots[id as usize];
        match slot.state {
            State::Done(_) => {
                slot.state = State::Free;
                slot.keep = Keep::Nothing;
                inner.free.push(id);
            }
            _ => {
                slot.state = State::Orphan;
                let e = opcode::AsyncCancel::new(u64::from(id))
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(IGNORED);
                // SAFETY: a cancel reads no memory of ours; the slot keeps the operation's.
                unsafe { inner.push_all(&mut [e]) };
            }
        }
    }
}
