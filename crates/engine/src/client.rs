//! The HTTP/1.1 client: one request/response exchange on a keep-alive connection, written
//! straight to the connection's [`Stream`] (a tokio `TcpStream`, or TLS over one) and read back
//! with `httparse` — no connection task, no channel, no wake-up between the socket and the
//! request's future (hyper's client dispatch costs a channel send and a task wake per request;
//! this is the generator's hot path). Every exchange is bounded by one deadline covering
//! connect, TLS handshake, send and the whole body, and ends in an [`Outcome`] — never an
//! error. Bodies are framed by `content-length`, `chunked` or the end of the connection, as
//! RFC 9112 6.3 says; an answer the connection cannot carry past (`Connection: close`,
//! HTTP/1.0, read-to-end, bytes after it) leaves it closed. Pooling (which idle connection to
//! hand out, how many may exist) belongs to [`super::pool`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::handshake::Handshake;
use crate::http2::{self, Mux, Slot};
use crate::outcome::Outcome;
use crate::stream::Stream;
use crate::tls::{TlsClient, TlsFailure};

/// Headers an answer may have before it is called malformed.
const MAX_HEADERS: usize = 64;
/// Bytes a response head may take before it is called malformed.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Read buffer of a connection (grows for larger answers).
pub(crate) const READ_CHUNK: usize = 8 * 1024;
/// An idle connection older than this is checked for a close by the peer before it carries a
/// request (a hot one is not: the check is a syscall, and a server closes idle connections
/// after seconds, not microseconds).
pub(crate) const STALE_AFTER: Duration = Duration::from_millis(200);

/// One keep-alive connection and what has been read from it but not yet used.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    buf: BytesMut,
    last_used: Instant,
    /// The last read took less than it could: the socket had no more data at that moment.
    drained: bool,
}

/// What the pool holds: an HTTP/1.1 connection, or a stream slot on an HTTP/2 one.
#[derive(Debug)]
pub enum Sender {
    Http1(Connection),
    Http2(Slot),
    /// An HTTP/1.1 connection of the io_uring backend.
    Uring(crate::uring::Connection),
}

/// What one exchange produced.
#[derive(Debug)]
pub struct Exchange {
    pub outcome: Outcome,
    /// When the answer (or the failure) was complete.
    pub done_at: Instant,
    /// The connection (or HTTP/2 slot), when it can carry another request.
    pub conn: Option<Sender>,
    /// True when this exchange opened a new connection.
    pub opened: bool,
    /// The TLS handshake of the connection this exchange opened (or failed to).
    pub handshake: Option<Handshake>,
}

impl Exchange {
    /// An exchange complete now.
    pub(crate) fn finished(
        outcome: Outcome,
        conn: Option<Sender>,
        opened: bool,
        handshake: Option<Handshake>,
    ) -> Exchange {
        Exchange {
            outcome,
            done_at: Instant::now(),
            conn,
            opened,
            handshake,
        }
    }
}

/// A connection attempt's result and, over TLS, its handshake's.
struct Opened {
    conn: Result<Connection, Outcome>,
    handshake: Option<Handshake>,
}

/// Opens a connection by `deadline`: TCP with `TCP_NODELAY` (a request is one small write;
/// Nagle would hold it), then the TLS handshake when `tls` is given, timed on its own. A TCP
/// connect past the deadline is a connect timeout; a handshake past it, a TLS timeout.
async fn open(addr: SocketAddr, tls: Option<&TlsClient>, deadline: tokio::time::Instant) -> Opened {
    let failed = |o| Opened {
        conn: Err(o),
        handshake: None,
    };
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(Outcome::from_connect_error(&e)),
        Err(_) => return failed(Outcome::ConnectTimeout),
    };
    let _ = tcp.set_nodelay(true);
    let (stream, handshake) = match tls {
        None => (Stream::Plain(tcp), None),
        Some(tls) => {
            let start = Instant::now();
            let done = match tokio::time::timeout_at(deadline, tls.handshake(tcp)).await {
                Ok(r) => r,
                Err(_) => Err(TlsFailure::Timeout),
            };
            match done {
                Ok((s, resumed)) => {
                    let took = start.elapsed();
                    (
                        Stream::Tls(Box::new(s)),
                        Some(Handshake::Done { took, resumed }),
                    )
                }
                Err(f) => {
                    return Opened {
                        conn: Err(Outcome::Tls(f)),
                        handshake: Some(Handshake::Failed(f)),
                    }
                }
            }
        }
    };
    Opened {
        conn: Ok(Connection {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            last_used: Instant::now(),
            drained: false,
        }),
        handshake,
    }
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

/// Sends `req` (the whole request, as [`super::template::CompiledTemplate::wire`] makes it)
/// and reads the whole answer, on `idle` when given, else on a new connection opened under
/// `permit` (over TLS when `tls` is given). An idle connection the server closed in between is
/// replaced, not counted as a failure: nothing was sent on it. `head` marks a HEAD request (its
/// answer has no body). The connect and handshake are bounded by `timeout`; the rest by the
/// owner's deadline ([`super::tracked::Tracked`]).
pub async fn exchange(
    addr: SocketAddr,
    idle: Option<Sender>,
    permit: Option<ConnectPermit>,
    tls: Option<Arc<TlsClient>>,
    req: Bytes,
    timeout: Duration,
    head: bool,
) -> Exchange {
    let finish = Exchange::finished;
    let idle = match idle {
        Some(Sender::Http1(c)) => Some(c),
        _ => None,
    };
    let (mut conn, opened, handshake) = match idle.and_then(still_open) {
        Some(c) => (c, false, None),
        None => {
            // Connecting is rare: its state is boxed to keep every request's future small, and
            // it has its own timer so a slow connect is told apart from a slow answer.
            let deadline = tokio::time::Instant::now() + timeout;
            let opened = Box::pin(open(addr, tls.as_deref(), deadline)).await;
            drop(permit);
            match opened.conn {
                Ok(c) => (c, true, opened.handshake),
                Err(o) => return finish(o, None, false, opened.handshake),
            }
        }
    };
    match round_trip(&mut conn, &req, head).await {
        Ok((status, reusable)) => {
            conn.last_used = Instant::now();
            let keep = reusable.then_some(Sender::Http1(conn));
            finish(Outcome::from_status(status), keep, opened, handshake)
        }
        // The connection is in an unknown state after a failure: drop it.
        Err(o) => finish(o, None, opened, handshake),
    }
}

/// One request as an HTTP/2 stream: on the idle slot when it is still open, else on a slot
/// from `mux` taken under `permit` (a connection opened only when every one is full; the
/// connect, handshake and preface bounded by `timeout`). `req` is `None` only for a path that
/// is no URI (the template's check makes that impossible): a protocol error, counted.
pub async fn exchange_h2(
    mux: Arc<Mux>,
    idle: Option<Sender>,
    permit: Option<ConnectPermit>,
    req: Option<hyper::http::Request<()>>,
    body: Bytes,
    timeout: Duration,
) -> Exchange {
    let finish = Exchange::finished;
    let mut idle = match idle {
        Some(Sender::Http2(s)) if s.still_open() => Some(s),
        _ => None,
    };
    let Some(req) = req else {
        return finish(Outcome::IoOther, idle.map(Sender::Http2), false, None);
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut opened, mut handshake, mut permit) = (false, None, permit);
    // A stream an existing connection refused unprocessed goes once more, on another one (a
    // connection this request opened is not left for a second: `opened` counts one).
    for attempt in 0..2 {
        let slot = match idle.take() {
            Some(s) => s,
            None => {
                let got = Box::pin(mux.slot(deadline)).await;
                drop(permit.take());
                opened = got.opened;
                handshake = got.handshake;
                match got.slot {
                    Ok(s) => s,
                    Err(o) => return finish(o, None, opened, handshake),
                }
            }
        };
        match http2::exchange(&slot, req.clone(), body.clone()).await {
            http2::Sent::Answered(status) => {
                let keep = Some(Sender::Http2(slot));
                return finish(Outcome::from_status(status), keep, opened, handshake);
            }
            http2::Sent::Refused(o) if attempt == 1 || opened => {
                return finish(o, None, opened, handshake)
            }
            http2::Sent::Refused(_) => {}
            // A failed stream gives its slot up; the connection serves its other slots on.
            http2::Sent::Failed(o) => return finish(o, None, opened, handshake),
        }
    }
    unreachable_outcome(opened, handshake)
}

/// The end of a loop that always returns: kept as a counted protocol error, never a panic.
pub(crate) fn unreachable_outcome(opened: bool, handshake: Option<Handshake>) -> Exchange {
    Exchange {
        outcome: Outcome::IoOther,
        done_at: Instant::now(),
        conn: None,
        opened,
        handshake,
    }
}

/// The connection, unless the peer has closed it while idle (or sent something unasked):
/// checked only on connections idle for [`STALE_AFTER`].
fn still_open(mut c: Connection) -> Option<Connection> {
    if c.last_used.elapsed() < STALE_AFTER || c.stream.still_open() {
        return Some(c);
    }
    None
}

/// A connection an answer is read from: its buffer, and a way to read more into it. The
/// answer's framing ([`read_answer`]) is written once for every backend's connection.
pub(crate) trait Wire {
    fn buf(&mut self) -> &mut BytesMut;
    /// Reads more bytes onto the end of the buffer: how many, 0 at the end of the connection.
    async fn read_more(&mut self) -> Result<usize, Outcome>;
}

impl Wire for Connection {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    async fn read_more(&mut self) -> Result<usize, Outcome> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let spare = self.buf.capacity() - self.buf.len();
        match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => {
                self.drained = n < spare;
                Ok(n)
            }
            Err(e) => Err(Outcome::from_io_error(&e)),
        }
    }
}

/// Writes the request and reads one whole answer: its status, and whether the connection
/// can carry another request.
async fn round_trip(c: &mut Connection, req: &[u8], head: bool) -> Result<(u16, bool), Outcome> {
    c.stream
        .send(req)
        .await
        .map_err(|e| Outcome::from_io_error(&e))?;
    c.buf.clear();
    let (status, reusable) = read_answer(c, head).await?;
    if reusable && c.drained {
        // The socket was empty after the answer's last read, so the next answer will arrive
        // as a new readiness edge: forget the stale readiness now, or the next request's first
        // read would be a syscall that only says EAGAIN (a third of the kernel work per
        // request). tokio clears it only if no newer event came in since.
        c.stream.forget_readiness();
    }
    Ok((status, reusable))
}

/// Reads one whole answer after what the buffer already holds: its status, and whether the
/// connection can carry another request.
pub(crate) async fn read_answer<W: Wire>(c: &mut W, head: bool) -> Result<(u16, bool), Outcome> {
    let (status, framing, keep_alive) = loop {
        if let Some(parsed) = parse_head(c.buf(), head)? {
            break parsed;
        }
        if c.buf().len() > MAX_HEAD_BYTES {
            return Err(Outcome::IoOther);
        }
        fill(c).await?;
    };
    let complete = match framing {
        Framing::None => true,
        Framing::Length(n) => {
            while (c.buf().len() as u64) < n {
                fill(c).await?;
            }
            c.buf().advance(n as usize);
            true
        }
        Framing::Chunked => {
            read_chunked(c).await?;
            true
        }
        Framing::ToEnd => {
            c.buf().clear();
            while c.read_more().await? > 0 {
                c.buf().clear();
            }
            false
        }
    };
    // Bytes after the answer were never asked for (no pipelining): the connection is unusable.
    Ok((status, complete && keep_alive && c.buf().is_empty()))
}

/// Reads more bytes; the end of the connection before the answer is complete is a reset.
async fn fill<W: Wire>(c: &mut W) -> Result<(), Outcome> {
    match c.read_more().await? {
        0 => Err(Outcome::Reset),
        _ => Ok(()),
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    ToEnd,
}

/// Parses a complete response head at the start of `buf` and consumes it (skipping interim
/// 1xx answers); `None` when more bytes are needed.
fn parse_head(buf: &mut BytesMut, head: bool) -> Result<Option<(u16, Framing, bool)>, Outcome> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Outcome::IoOther),
        };
        let status = resp.code.unwrap_or(0);
        let http10 = resp.version == Some(0);
        let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
                length = Some(v.ok_or(Outcome::IoOther)?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = has_token(h.value, "chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close |= has_token(h.value, "close");
                keep |= has_token(h.value, "keep-alive");
            }
        }
        // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told not to.
        let keep_alive = if http10 { keep && !close } else { !close };
        buf.advance(n);
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let framing = if head || status == 204 || status == 304 {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::ToEnd
        };
        return Ok(Some((status, framing, keep_alive)));
    }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Reads and discards a chunked body, trailers included.
async fn read_chunked<W: Wire>(c: &mut W) -> Result<(), Outcome> {
    loop {
        let (size, used) = loop {
            match httparse::parse_chunk_size(c.buf()) {
                Ok(httparse::Status::Complete((used, size))) => break (size, used),
                Ok(httparse::Status::Partial) => fill(c).await?,
                Err(_) => return Err(Outcome::IoOther),
            }
        };
        c.buf().advance(used);
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                match find_crlf(c.buf()) {
                    Some(0) => {
                        c.buf().advance(2);
                        return Ok(());
                    }
                    Some(i) => c.buf().advance(i + 2),
                    None => fill(c).await?,
                }
            }
        }
        let need = size.checked_add(2).ok_or(Outcome::IoOther)?;
        while (c.buf().len() as u64) < need {
            fill(c).await?;
        }
        c.buf().advance(need as usize);
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Serves one canned answer per request on one connection, after reading the request.
    async fn canned(answers: Vec<&'static [u8]>) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for a in answers {
                let mut req = [0u8; 1024];
                if s.read(&mut req).await.unwrap_or(0) == 0 {
                    return;
                }
                s.write_all(a).await.unwrap();
            }
            // Leave the connection open until the client is done.
            let mut rest = [0u8; 64];
            let _ = s.read(&mut rest).await;
        });
        addr
    }

    async fn run(answers: Vec<&'static [u8]>) -> Vec<(Outcome, bool)> {
        let n = answers.len();
        let addr = canned(answers).await;
        let mut conn = None;
        let mut out = Vec::new();
        for _ in 0..n {
            let x = exchange(
                addr,
                conn.take(),
                None,
                None,
                Bytes::from_static(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n"),
                Duration::from_secs(5),
                false,
            )
            .await;
            out.push((x.outcome, x.conn.is_some()));
            conn = x.conn;
            if conn.is_none() {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn bodies_are_framed_by_length_and_by_chunks_and_the_connection_is_reused() {
        let got = run(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\ntrailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ])
        .await;
        assert_eq!(
            got,
            vec![
                (Outcome::Ok, true),
                (Outcome::Status(503), true),
                (Outcome::Ok, true),
                (Outcome::Ok, false),
            ]
        );
    }

    #[tokio::test]
    async fn http10_closes_unless_kept_alive_and_read_to_end_closes() {
        let got = run(vec![
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        assert_eq!(got, vec![(Outcome::Ok, true), (Outcome::Ok, false)]);
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_and_an_early_close_a_reset() {
        assert_eq!(
            run(vec![b"NOT HTTP AT ALL\r\n\r\n"]).await,
            vec![(Outcome::IoOther, false)]
        );
        // The server answers half a head and the test server then closes.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-le").await.unwrap();
        });
        let x = exchange(
            addr,
            None,
            None,
            None,
            Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            Duration::from_secs(5),
            false,
        )
        .await;
        assert_eq!(
            (x.outcome, x.conn.is_some(), x.opened),
            (Outcome::Reset, false, true)
        );
    }

    #[test]
    fn tokens_are_matched_in_lists_whatever_the_case() {
        assert!(has_token(b"keep-alive, Close", "close"));
        assert!(has_token(b"gzip, chunked", "chunked"));
        assert!(!has_token(b"closed", "close"));
    }
}
