//! The HTTP/1.1 client: one request/response exchange on a keep-alive connection (hyper 1.x
//! `client::conn::http1` over a tokio `TcpStream`), opening a connection when none is idle.
//! Every exchange is bounded by one deadline covering connect, send and the whole body, and
//! ends in an [`Outcome`] — never an error. Pooling (which idle connection to hand out, how
//! many may exist) belongs to the attack; this module only knows one connection at a time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::engine::outcome::Outcome;

/// The sending half of one keep-alive connection.
pub type Sender = http1::SendRequest<Full<Bytes>>;

/// What one exchange produced.
#[derive(Debug)]
pub struct Exchange {
    pub outcome: Outcome,
    /// When the answer (or the failure) was complete.
    pub done_at: Instant,
    /// The connection, when it can carry another request.
    pub conn: Option<Sender>,
    /// True when this exchange opened a new connection.
    pub opened: bool,
}

/// Opens a connection: TCP with `TCP_NODELAY` (a request is one small write; Nagle would hold
/// it), the HTTP/1.1 handshake, and the connection's I/O driven by its own task until the
/// sender is dropped or the peer closes.
pub async fn connect(addr: SocketAddr) -> Result<Sender, Outcome> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Outcome::from_connect_error(&e))?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| Outcome::from_hyper_error(&e))?;
    tokio::spawn(async move {
        // An error here is already reported to the exchange that was using the connection.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One of a bounded number of connection attempts allowed at once: the count it holds is
/// released when the permit is dropped (the connect finished, failed or was abandoned).
#[derive(Debug)]
pub struct ConnectPermit(Arc<AtomicUsize>);

impl ConnectPermit {
    /// Takes a permit from `count` when fewer than `max` are out. (Atomic only so the engine
    /// future is `Send` and can run as a task; it is only ever touched from one thread.)
    pub fn try_take(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        (count.load(Ordering::Relaxed) < max).then(|| {
            count.fetch_add(1, Ordering::Relaxed);
            Self(count.clone())
        })
    }
}

impl Drop for ConnectPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends `req` and reads the whole answer, on `idle` when given, else on a new connection
/// opened under `permit`. An idle keep-alive connection the server closed in between is
/// replaced, not counted as a failure: nothing was sent on it. The exchange ends by `timeout`
/// after the call, whatever happens.
pub async fn exchange(
    addr: SocketAddr,
    idle: Option<Sender>,
    permit: Option<ConnectPermit>,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Exchange {
    let finish = |outcome, conn, opened| Exchange {
        outcome,
        done_at: Instant::now(),
        conn,
        opened,
    };
    let mut sender = None;
    if let Some(mut s) = idle {
        if s.ready().await.is_ok() {
            sender = Some(s);
        }
    }
    let (mut sender, opened) = match sender {
        Some(s) => (s, false),
        None => {
            // Connecting is rare: its state is boxed to keep every request's future small, and
            // it has its own timer so a slow connect is told apart from a slow answer.
            let deadline = tokio::time::Instant::now() + timeout;
            let opened = tokio::time::timeout_at(deadline, Box::pin(connect(addr))).await;
            drop(permit);
            match opened {
                Ok(Ok(s)) => (s, true),
                Ok(Err(o)) => return finish(o, None, false),
                Err(_) => return finish(Outcome::ConnectTimeout, None, false),
            }
        }
    };
    match send(&mut sender, req).await {
        Ok(status) => finish(Outcome::from_status(status), Some(sender), opened),
        // The connection is in an unknown state after a failure: drop it.
        Err(o) => finish(o, None, opened),
    }
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<u16, Outcome> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Outcome::from_hyper_error(&e))?;
    let status = resp.status().as_u16();
    // The body must be read to the end before the connection can carry the next request.
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| Outcome::from_hyper_error(&e))?;
    }
    Ok(status)
}

pin_project_lite::pin_project! {
    /// A request in flight: its exchange, the schedule facts (readable while it is pending, so
    /// requests still in flight at a hard stop are counted in the right second) and its
    /// deadline. The deadline is enforced by the owner calling [`Tracked::expire`] — one sweep
    /// over the requests in flight now and then — instead of a tokio timer per request: a
    /// timer registration per request costs a wheel insertion and often a reactor wake-up.
    pub struct Tracked<F> {
        pub seq: u64,
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
    pub fn new(seq: u64, due: Duration, sent_at: Instant, deadline: Instant, fut: F) -> Self {
        Self {
            seq,
            due,
            sent_at,
            deadline,
            expired: false,
            waker: None,
            fut,
        }
    }

    /// The schedule facts of a pinned, pending future.
    pub fn facts(self: Pin<&Self>) -> (u64, Duration, Instant) {
        let p = self.project_ref();
        (*p.seq, *p.due, *p.sent_at)
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
            due: *p.due,
            sent_at: *p.sent_at,
            output,
        })
    }
}
