//! HTTP/2 for the engine (`--http2`): many requests at once on one connection, each its own
//! stream. The pool stays the one of HTTP/1.1, but what it hands out is a [`Slot`]: the right
//! to one stream on a connection of the endpoint's [`Mux`], which opens a connection (TCP, TLS
//! with ALPN `h2`, or h2c by prior knowledge on plain TCP) only when every live one already has
//! `max_streams` slots. The pool's caps therefore bound streams in flight, and its "opened"
//! count stays the TCP connections actually opened. Each connection is driven by its own task
//! on the engine's runtime; it ends when its last slot is dropped or the peer closes it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use h2::client::SendRequest;
use hyper::http::{Request, Uri};
use tokio::net::TcpStream;

use crate::handshake::Handshake;
use crate::outcome::Outcome;
use crate::tls::{TlsClient, TlsFailure};

/// One HTTP/2 connection and the slots handed out on it.
struct Conn {
    send: SendRequest<Bytes>,
    slots: AtomicUsize,
    closed: Arc<AtomicBool>,
}

/// The right to one stream at a time on a connection (what the pool holds for HTTP/2).
pub struct Slot {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conn.slots.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slot {
    /// False once the connection under it has ended.
    pub fn still_open(&self) -> bool {
        !self.conn.closed.load(Ordering::Relaxed)
    }
}

/// The HTTP/2 connections of one endpoint.
pub struct Mux {
    addr: SocketAddr,
    tls: Option<Arc<TlsClient>>,
    max_streams: usize,
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Held while a connection is opened, so requests that find every connection full wait
    /// for the one being opened instead of each opening its own.
    opening: tokio::sync::Mutex<()>,
    /// `https://host:port` or `http://host:port`, the `:scheme` and `:authority` of requests.
    base: String,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What getting a slot came to: the slot, whether a connection was opened for it, and that
/// connection's TLS handshake.
pub struct Got {
    pub slot: Result<Slot, Outcome>,
    pub opened: bool,
    pub handshake: Option<Handshake>,
}

impl Mux {
    /// The connections to `addr` (`base` gives the scheme and authority of every request).
    pub fn new(
        addr: SocketAddr,
        tls: Option<Arc<TlsClient>>,
        max_streams: usize,
        base: String,
    ) -> Mux {
        Mux {
            addr,
            tls,
            max_streams: max_streams.max(1),
            conns: Mutex::new(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            base,
        }
    }

    /// A slot on a live connection with room, dropping the ended and the unused ones.
    fn free_slot(&self) -> Option<Slot> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        // An ended connection is forgotten; so is one without slots (no request and no idle
        // slot in the pool uses it), which closes it as its last handle goes.
        conns.retain(|c| !c.closed.load(Ordering::Relaxed) && c.slots.load(Ordering::Relaxed) > 0);
        let c = conns
            .iter()
            .find(|c| c.slots.load(Ordering::Relaxed) < self.max_streams)?;
        c.slots.fetch_add(1, Ordering::Relaxed);
        Some(Slot { conn: c.clone() })
    }

    /// A slot: on a connection with room, else on a new one (bounded by `deadline`).
    pub async fn slot(&self, deadline: tokio::time::Instant) -> Got {
        let none = |slot| Got {
            slot,
            opened: false,
            handshake: None,
        };
        if let Some(s) = self.free_slot() {
            return none(Ok(s));
        }
        let Ok(_opening) = tokio::time::timeout_at(deadline, self.opening.lock()).await else {
            return none(Err(Outcome::ConnectTimeout));
        };
        if let Some(s) = self.free_slot() {
            return none(Ok(s));
        }
        let (conn, handshake) = self.open(deadline).await;
        let conn = match conn {
            Ok(c) => c,
            Err(o) => {
                return Got {
                    slot: Err(o),
                    opened: false,
                    handshake,
                }
            }
        };
        // The opener's own slot.
        conn.slots.store(1, Ordering::Relaxed);
        let conn = Arc::new(conn);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn.clone());
        Got {
            slot: Ok(Slot { conn }),
            opened: true,
            handshake,
        }
    }

    /// Opens one connection: TCP, TLS when the step is https (ALPN must pick `h2`), the HTTP/2
    /// preface and settings, and its driver task.
    async fn open(
        &self,
        deadline: tokio::time::Instant,
    ) -> (Result<Conn, Outcome>, Option<Handshake>) {
        let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return (Err(Outcome::from_connect_error(&e)), None),
            Err(_) => return (Err(Outcome::ConnectTimeout), None),
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return (start(tcp, deadline).await, None);
        };
        let begun = Instant::now();
        let done = match tokio::time::timeout_at(deadline, tls.handshake(tcp)).await {
            Ok(r) => r,
            Err(_) => Err(TlsFailure::Timeout),
        };
        match done {
            Ok((s, resumed)) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                let took = begun.elapsed();
                (
                    start(s, deadline).await,
                    Some(Handshake::Done { took, resumed }),
                )
            }
            Ok(_) => (
                Err(Outcome::Tls(TlsFailure::NoAlpn)),
                Some(Handshake::Failed(TlsFailure::NoAlpn)),
            ),
            Err(f) => (Err(Outcome::Tls(f)), Some(Handshake::Failed(f))),
        }
    }

    /// The request of `path` with `body`, as HTTP/2 wants it (`:authority` from the URI).
    pub fn request(
        &self,
        method: &hyper::Method,
        headers: &hyper::HeaderMap,
        path: &[u8],
    ) -> Option<Request<()>> {
        let uri: Uri = format!("{}{}", self.base, String::from_utf8_lossy(path))
            .parse()
            .ok()?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(())
            .ok()?;
        for (k, v) in headers {
            // Connection-specific headers are not HTTP/2; the Host is the :authority.
            if k == hyper::header::HOST
                || k == hyper::header::CONNECTION
                || k == hyper::header::TRANSFER_ENCODING
                || k == hyper::header::CONTENT_LENGTH
            {
                continue;
            }
            req.headers_mut().append(k.clone(), v.clone());
        }
        Some(req)
    }
}

/// The HTTP/2 handshake on an open stream and its driver task, which marks the connection
/// closed when it ends.
async fn start<T>(io: T, deadline: tokio::time::Instant) -> Result<Conn, Outcome>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, driver) = match tokio::time::timeout_at(deadline, h2::client::handshake(io)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(outcome_of(&e)),
        Err(_) => return Err(Outcome::ConnectTimeout),
    };
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    // Owned by the engine's runtime: it ends with the connection (every slot dropped, or the
    // peer's close), and with the runtime at the step's end at the latest.
    tokio::spawn(async move {
        let _ = driver.await;
        flag.store(true, Ordering::Relaxed);
    });
    Ok(Conn {
        send,
        slots: AtomicUsize::new(0),
        closed,
    })
}

/// What one request on a slot came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A complete answer with this status.
    Answered(u16),
    /// The stream failed after the server may have seen it.
    Failed(Outcome),
    /// The connection would not take the stream (it is closing: GOAWAY after the server's
    /// request limit, or gone) or the server refused it unprocessed (REFUSED_STREAM, RFC 9113
    /// 8.7): nothing of it was processed, so it may go again on another connection.
    Refused(Outcome),
}

/// One request on `slot`. A refusal marks the slot's connection closed, so no other request
/// is handed a slot on it.
pub async fn exchange(slot: &Slot, req: Request<()>, body: Bytes) -> Sent {
    let refused = |e: &h2::Error| {
        slot.conn.closed.store(true, Ordering::Relaxed);
        Sent::Refused(outcome_of(e))
    };
    let mut send = match slot.conn.send.clone().ready().await {
        Ok(s) => s,
        Err(e) => return refused(&e),
    };
    let (answer, mut stream) = match send.send_request(req, body.is_empty()) {
        Ok(pair) => pair,
        Err(e) => return refused(&e),
    };
    if !body.is_empty() {
        if let Err(e) = stream.send_data(body, true) {
            return Sent::Failed(outcome_of(&e));
        }
    }
    let answer = match answer.await {
        Ok(a) => a,
        Err(e) if e.reason() == Some(h2::Reason::REFUSED_STREAM) => return refused(&e),
        Err(e) => return Sent::Failed(outcome_of(&e)),
    };
    let status = answer.status().as_u16();
    let mut body = answer.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Sent::Failed(outcome_of(&e)),
        };
        // Reading is consuming: the window opens again so a large answer keeps flowing.
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Sent::Answered(status)
}

/// The outcome of an HTTP/2 error: its I/O or TLS error, a reset stream or a GOAWAY as a
/// reset, anything else a protocol error.
fn outcome_of(e: &h2::Error) -> Outcome {
    if let Some(io) = e.get_io() {
        return Outcome::from_io_error(io);
    }
    if e.is_reset() || e.is_go_away() {
        return Outcome::Reset;
    }
    Outcome::IoOther
}
