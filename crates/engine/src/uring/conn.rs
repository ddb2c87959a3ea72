//! An HTTP/1.1 connection of the io_uring backend and one exchange on it. A request is one
//! send linked to one receive, queued together and submitted with the rest of the tick's
//! sends; a successful send posts no completion (`CQE_SKIP_SUCCESS`), so an answer that fits
//! the buffer costs one completion and no syscall of its own. A larger answer queues a further
//! receive per buffer-full. The answer is parsed and framed by the client's one
//! [`read_answer`]; connects (bounded by a linked timeout) and closes are ring operations too.
//!
//! Receives are single-shot into the connection's own buffer, not multishot into a provided
//! buffer ring: a request/response connection has at most one answer in flight, so a multishot
//! receive would save only the re-arming of a receive the send's link already queues for free,
//! and shared buffers would add a copy or a pool to manage.

// Raw pointers handed to the kernel (see `ring.rs`): each `unsafe` block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use io_uring::{opcode, squeue, types};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};

use super::ring::{Keep, Op, Ring, IGNORED};
use crate::client::{read_answer, ConnectPermit, Exchange, Sender, Wire, READ_CHUNK, STALE_AFTER};
use crate::outcome::Outcome;

/// `IORING_RECVSEND_POLL_FIRST` (where [`Ring::poll_first`] says the kernel takes it): the
/// receive queued with its request's send is armed at once instead of first trying a receive
/// that can only say `EAGAIN` — the answer cannot be there before the request left.
const RECV_POLL_FIRST: u16 = 1;

/// One keep-alive connection: its socket (closed through the ring when dropped) and buffer.
pub struct Connection {
    fd: Option<OwnedFd>,
    ring: Ring,
    /// Empty while a receive holds the buffer (its slot in the ring keeps it).
    buf: BytesMut,
    /// The receive queued with the request's send, awaited by the first read of the answer.
    pending: Option<Op>,
    last_used: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("uring::Connection")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The receive's cancel goes first, then the close, in queue order.
        drop(self.pending.take());
        if let Some(fd) = self.fd.take() {
            self.ring.close(fd);
        }
    }
}

impl Connection {
    fn raw(&self) -> i32 {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The connection, unless the peer closed it while idle (or sent something unasked):
    /// checked with a non-blocking 1-byte peek, only after [`STALE_AFTER`] idle, as epoll's.
    fn still_open(self) -> Option<Connection> {
        if self.last_used.elapsed() < STALE_AFTER {
            return Some(self);
        }
        let fd = self.fd.as_ref()?;
        let mut probe = [0u8; 1];
        match rustix::net::recv(fd, &mut probe, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            Err(rustix::io::Errno::AGAIN) => Some(self),
            _ => None,
        }
    }

    /// Queues a receive into the buffer's spare room, after `send` when given (linked: a
    /// failed send cancels it).
    fn receive(&mut self, send: Option<(squeue::Entry, Bytes)>) -> Op {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let spare = buf.spare_capacity_mut();
        let (ptr, len) = (spare.as_mut_ptr().cast::<u8>(), spare.len() as u32);
        let recv = opcode::Recv::new(types::Fd(self.raw()), ptr, len)
            .ioprio(if send.is_some() && self.ring.poll_first() {
                RECV_POLL_FIRST
            } else {
                0
            })
            .build();
        // SAFETY: the receive writes at most `len` bytes at `ptr`, the spare room of `buf`'s
        // heap allocation; `buf` is moved into the slot (the allocation does not move) and
        // given back only when the receive has completed. The send reads the request's bytes,
        // kept in the same slot: the linked receive completes only after the send did.
        unsafe {
            match send {
                Some((send, req)) => {
                    self.ring
                        .push(&mut [send, recv], 1, Keep::Recv(buf, Some(req)))
                }
                None => self.ring.push(&mut [recv], 0, Keep::Recv(buf, None)),
            }
        }
    }

    /// Queues `req`'s send and the answer's first receive.
    fn send(&mut self, req: Bytes) {
        let send = opcode::Send::new(types::Fd(self.raw()), req.as_ptr(), req.len() as u32)
            // A short send is retried by the kernel; only a failure posts a completion.
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build()
            .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
            .user_data(IGNORED);
        self.buf.clear();
        self.pending = Some(self.receive(Some((send, req))));
    }
}

impl Wire for Connection {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    async fn read_more(&mut self) -> Result<usize, Outcome> {
        let op = match self.pending.take() {
            Some(op) => op,
            None => self.receive(None),
        };
        let (res, keep) = op.await;
        let before = match keep {
            Keep::Recv(buf, _) => {
                self.buf = buf;
                self.buf.len()
            }
            _ => return Err(Outcome::IoOther),
        };
        if res < 0 {
            return Err(match -res {
                // The linked send failed (its completion is not awaited): the peer is gone.
                libc::ECANCELED => Outcome::Reset,
                e => Outcome::from_io_error(&io::Error::from_raw_os_error(e)),
            });
        }
        let n = (res as usize).min(self.buf.capacity() - before);
        // SAFETY: the kernel wrote `n` bytes (its result, never more than the spare room it
        // was given, which began at `before`) into the buffer's spare room.
        unsafe { self.buf.set_len(before + n) };
        Ok(n)
    }
}

/// A socket address in the form `connect(2)` reads, and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all zeroes is a valid `sockaddr_storage` (plain integers and arrays).
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger and at least as aligned as any sockaddr.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Opens a connection through the ring, bounded by `timeout` (a linked timeout: past it the
/// connect is cancelled and counted a connect timeout).
async fn connect(ring: &Ring, addr: SocketAddr, timeout: Duration) -> Result<Connection, Outcome> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)
        .map_err(|e| Outcome::from_connect_error(&e.into()))?;
    // A request is one small write; Nagle would hold it.
    let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
    // Owned by a connection from here on, so a connect abandoned before its submission is
    // followed by a close in the ring's queue, never by a close(2) that would free the fd
    // number under the queued connect.
    let mut conn = Connection {
        fd: Some(fd),
        ring: ring.clone(),
        buf: BytesMut::with_capacity(READ_CHUNK),
        pending: None,
        last_used: Instant::now(),
    };
    let (ss, len) = sockaddr(addr);
    let keep = Box::new((ss, types::Timespec::from(timeout)));
    let connect = opcode::Connect::new(types::Fd(conn.raw()), (&raw const keep.0).cast(), len)
        .build()
        .flags(squeue::Flags::IO_LINK);
    let limit = opcode::LinkTimeout::new(&raw const keep.1)
        .build()
        .user_data(IGNORED);
    // SAFETY: the address and the timespec are in the box the slot keeps until the connect
    // completes (the kernel copies both at submission anyway).
    let op = unsafe { ring.push(&mut [connect, limit], 0, Keep::Connect(keep)) };
    let (res, _) = op.await;
    conn.last_used = Instant::now();
    match -res {
        0 => Ok(conn),
        libc::ECANCELED | libc::ETIME | libc::ETIMEDOUT => Err(Outcome::ConnectTimeout),
        e => Err(Outcome::from_connect_error(&io::Error::from_raw_os_error(
            e,
        ))),
    }
}

/// Sends `req` and reads the whole answer, as the epoll client's `exchange` does: on `idle`
/// when given and still open, else on a new connection opened under `permit`. `head` marks a
/// HEAD request; the connect is bounded by `timeout`, the rest by the owner's deadline.
pub async fn exchange(
    ring: Ring,
    addr: SocketAddr,
    idle: Option<Sender>,
    permit: Option<ConnectPermit>,
    req: Bytes,
    timeout: Duration,
    head: bool,
) -> Exchange {
    let finish = Exchange::finished;
    let idle = match idle {
        Some(Sender::Uring(c)) => Some(c),
        _ => None,
    };
    let (mut conn, opened) = match idle.and_then(Connection::still_open) {
        Some(c) => (c, false),
        None => {
            // Rare: boxed to keep every request's future small.
            let got = Box::pin(connect(&ring, addr, timeout)).await;
            drop(permit);
            match got {
                Ok(c) => (c, true),
                Err(o) => return finish(o, None, false, None),
            }
        }
    };
    conn.send(req);
    match read_answer(&mut conn, head).await {
        Ok((status, reusable)) => {
            conn.last_used = Instant::now();
            let keep = reusable.then_some(Sender::Uring(conn));
            finish(Outcome::from_status(status), keep, opened, None)
        }
        // The connection is in an unknown state after a failure: drop it.
        Err(o) => finish(o, None, opened, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::{Read, Write};
    use std::task::{Context, Poll, Waker};

    /// Runs `fut` on `ring` as the engine's loop would: poll, and park in the ring between.
    fn drive<F: Future>(ring: &Ring, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        let bound = Instant::now() + Duration::from_secs(10);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            assert!(Instant::now() < bound, "the exchange did not finish");
            ring.park(Instant::now() + Duration::from_millis(20));
        }
    }

    /// Serves one canned answer per request on one connection (std thread, port 0).
    fn canned(answers: Vec<&'static [u8]>) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            for a in answers {
                let mut req = [0u8; 1024];
                if s.read(&mut req).unwrap_or(0) == 0 {
                    return;
                }
                s.write_all(a).unwrap();
            }
            let mut rest = [0u8; 64];
            let _ = s.read(&mut rest);
        });
        addr
    }

    /// Each answer's outcome and whether the connection was kept, as the epoll client's test.
    fn run(answers: Vec<&'static [u8]>) -> Option<Vec<(Outcome, bool)>> {
        let Ok(ring) = Ring::new() else {
            eprintln!("!!! io_uring refused here: the io_uring client is not tested !!!");
            return None;
        };
        let n = answers.len();
        let addr = canned(answers);
        let (mut conn, mut out) = (None, Vec::new());
        for _ in 0..n {
            let req = Bytes::from_static(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
            let x = drive(
                &ring,
                exchange(
                    ring.clone(),
                    addr,
                    conn.take(),
                    None,
                    req,
                    Duration::from_secs(5),
                    false,
                ),
            );
            out.push((x.outcome, x.conn.is_some()));
            conn = x.conn;
            if conn.is_none() {
                break;
            }
        }
        Some(out)
    }

    #[test]
    fn answers_are_framed_by_the_one_client_parser_and_the_connection_is_reused() {
        let Some(got) = run(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\ntrailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ]) else {
            return;
        };
        let expected = vec![
            (Outcome::Ok, true),
            (Outcome::Status(503), true),
            (Outcome::Ok, true),
            (Outcome::Ok, false),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        if let Some(got) = run(vec![b"NOT HTTP AT ALL\r\n\r\n"]) {
            assert_eq!(got, vec![(Outcome::IoOther, false)]);
        }
    }

    #[test]
    fn a_refused_connect_is_counted_as_such() {
        let Ok(ring) = Ring::new() else { return };
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let req = Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n");
        let x = drive(
            &ring,
            exchange(
                ring.clone(),
                dead,
                None,
                None,
                req,
                Duration::from_secs(5),
                false,
            ),
        );
        assert_eq!((x.outcome, x.opened), (Outcome::ConnectRefused, false));
    }
}
