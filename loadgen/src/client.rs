//! The HTTP/1.1 client: one request/response exchange on a keep-alive connection (hyper 1.x
//! `client::conn::http1` over a tokio `TcpStream`), opening a connection when none is idle.
//! Every exchange is bounded by one deadline covering connect, send and the whole body, and
//! ends in an [`Outcome`] — never an error. Pooling (which idle connection to hand out, how
//! many may exist) belongs to the attack; this module only knows one connection at a time.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::outcome::Outcome;

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
pub struct ConnectPermit(Rc<Cell<usize>>);

impl ConnectPermit {
    /// Takes a permit from `count` when fewer than `max` are out.
    pub fn try_take(count: &Rc<Cell<usize>>, max: usize) -> Option<Self> {
        (count.get() < max).then(|| {
            count.set(count.get() + 1);
            Self(count.clone())
        })
    }
}

impl Drop for ConnectPermit {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
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
    let deadline = tokio::time::Instant::now() + timeout;
    let finish = |outcome, conn, opened| Exchange {
        outcome,
        done_at: Instant::now(),
        conn,
        opened,
    };
    let mut sender = None;
    if let Some(mut s) = idle {
        match tokio::time::timeout_at(deadline, s.ready()).await {
            Ok(Ok(())) => sender = Some(s),
            Ok(Err(_)) => {}
            Err(_) => return finish(Outcome::Timeout, None, false),
        }
    }
    let (mut sender, opened) = match sender {
        Some(s) => (s, false),
        None => {
            // Boxed: connecting is rare, and keeping its state out of line keeps every
            // request's future small.
            let opened = tokio::time::timeout_at(deadline, Box::pin(connect(addr))).await;
            drop(permit);
            match opened {
                Ok(Ok(s)) => (s, true),
                Ok(Err(o)) => return finish(o, None, false),
                Err(_) => return finish(Outcome::ConnectTimeout, None, false),
            }
        }
    };
    match tokio::time::timeout_at(deadline, send(&mut sender, req)).await {
        Ok(Ok(status)) => finish(Outcome::from_status(status), Some(sender), opened),
        // The connection is in an unknown state after a failure or a timeout: drop it.
        Ok(Err(o)) => finish(o, None, opened),
        Err(_) => finish(Outcome::Timeout, None, opened),
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
    /// A future carrying the schedule facts of its request, readable while it is pending (so
    /// requests still in flight at a hard stop are counted in the right second).
    pub struct Tracked<F> {
        pub seq: u64,
        // Due offset from the start of the step.
        pub due: Duration,
        pub sent_at: Instant,
        #[pin]
        fut: F,
    }
}

impl<F> Tracked<F> {
    pub fn new(seq: u64, due: Duration, sent_at: Instant, fut: F) -> Self {
        Self {
            seq,
            due,
            sent_at,
            fut,
        }
    }

    /// The schedule facts of a pinned, pending future.
    pub fn facts(self: Pin<&Self>) -> (u64, Duration, Instant) {
        let p = self.project_ref();
        (*p.seq, *p.due, *p.sent_at)
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

impl<F: Future> Future for Tracked<F> {
    type Output = Finished<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let p = self.project();
        p.fut.poll(cx).map(|output| Finished {
            seq: *p.seq,
            due: *p.due,
            sent_at: *p.sent_at,
            output,
        })
    }
}
