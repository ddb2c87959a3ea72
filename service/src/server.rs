//! The network shell: binding listeners (optionally with SO_REUSEPORT), accepting
//! connections, serving HTTP/1.1 with a header-read timeout — on the main listener also, as
//! [`Wire`] says, TLS and HTTP/2 (over TLS by ALPN, or cleartext h2c) — and the graceful
//! shutdown that stops accepting on the main listener, lets in-flight requests finish within a
//! bound while the admin listener still answers probes, then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, Phase};
use crate::tls::ALPN_H2;

/// Pause after an accept error (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

/// Once the drain is over, how long probe connections accepted during it may take to finish
/// (each serves one small request); past it the process exits regardless.
const PROBE_GRACE: Duration = Duration::from_millis(500);

/// Streams one HTTP/2 connection may have open at once. hyper's default today, set here so
/// that a load test's figure does not move with a hyper upgrade: far above `--max-inflight`,
/// so a multiplexing client is limited by admission (503 after `--queue-timeout`) like an
/// HTTP/1.1 one, not by a stream refusal it would count as an error.
const H2_MAX_CONCURRENT_STREAMS: u32 = 200;

/// What the main listener speaks. The admin listener always speaks plain HTTP/1.1, whatever
/// this is: loadgen probes `/readyz` and `/metrics` there over plain HTTP.
#[derive(Clone)]
pub enum Wire {
    /// Cleartext HTTP/1.1 only: the path measured at `--cost 0`, served exactly as before TLS
    /// and HTTP/2 existed.
    Http1,
    /// Cleartext HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port, told apart by the
    /// HTTP/2 preface (`--http2` without TLS).
    Http1OrH2c,
    /// TLS; the ALPN protocol negotiated picks HTTP/2 (`h2`, offered only with `--http2`) or
    /// HTTP/1.1.
    Tls(TlsAcceptor),
}

impl Wire {
    /// The main listener's wire for a TLS configuration (if any) and `--http2`.
    pub fn new(tls: Option<Arc<rustls::ServerConfig>>, http2: bool) -> Self {
        match (tls, http2) {
            (Some(config), _) => Self::Tls(TlsAcceptor::from(config)),
            (None, true) => Self::Http1OrH2c,
            (None, false) => Self::Http1,
        }
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Http1 => "Http1",
            Self::Http1OrH2c => "Http1OrH2c",
            Self::Tls(_) => "Tls",
        })
    }
}

/// The bound listeners. At SIGTERM `main` (possibly shared with SO_REUSEPORT) closes at once,
/// so the kernel sends new connections to sibling replicas; `admin` (one per replica) keeps
/// accepting during the drain so the drain can be watched — `/readyz` answers 503, `/metrics`
/// shows the work still in progress — and closes when the drain is over.
#[derive(Debug)]
pub struct Listeners {
    pub main: TcpListener,
    pub admin: Option<TcpListener>,
}

/// Binds a TCP listener; with `reuse_port`, several processes may bind the same address and
/// the kernel spreads new connections over them.
pub fn bind(addr: SocketAddr, reuse_port: bool, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// The stop signal. Connections check an atomic flag on every poll instead of polling the
/// token's future (two mutex locks per poll, measurable in a request's CPU at --cost 0); the
/// token's future is polled once per connection only to register the task's waker.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the graceful shutdown (idempotent).
    pub fn trigger(&self) {
        // The flag is set before the wake-up so a woken connection always sees it.
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Serves `listeners` until `shutdown` is cancelled, then drains. Returns `true` when every
/// connection finished within the drain timeout.
pub async fn serve(
    listeners: Listeners,
    wire: Wire,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) -> bool {
    // Connections accepted before the shutdown (the drain waits for them) and those the admin
    // listener accepts during it (probes: the drain does not wait for them, or a scraper
    // polling in a loop could hold it open until the timeout).
    let work = TaskTracker::new();
    let probes = TaskTracker::new();
    let admin_stop = CancellationToken::new();
    let main_loop = tokio::spawn(accept_loop(
        listeners.main,
        Acceptor {
            wire,
            app: app.clone(),
            limits,
            shutdown: shutdown.clone(),
            work: work.clone(),
            probes: None,
        },
        shutdown.token.clone(),
    ));
    let admin_loop = listeners.admin.map(|l| {
        tokio::spawn(accept_loop(
            l,
            Acceptor {
                wire: Wire::Http1,
                app: app.clone(),
                limits,
                shutdown: shutdown.clone(),
                work: work.clone(),
                probes: Some(probes.clone()),
            },
            admin_stop.clone(),
        ))
    });
    shutdown.token.cancelled().await;
    // The main listener is dropped when its loop ends, and only then does /readyz turn 503:
    // whoever sees the 503 knows no new connection reaches this replica's main listener.
    let _ = main_loop.await;
    app.start_draining();
    work.close();
    let drained = tokio::time::timeout(limits.drain_timeout, work.wait())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            remaining = work.len(),
            "drain timeout reached; closing remaining connections"
        );
    }
    admin_stop.cancel();
    if let Some(l) = admin_loop {
        let _ = l.await;
    }
    probes.close();
    let _ = tokio::time::timeout(PROBE_GRACE, probes.wait()).await;
    drained
}

/// What an accept loop needs to start a connection.
struct Acceptor {
    wire: Wire,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
    work: TaskTracker,
    /// `Some` on the admin listener: where connections accepted during the drain go.
    probes: Option<TaskTracker>,
}

async fn accept_loop(listener: TcpListener, acceptor: Acceptor, stop: CancellationToken) {
    let Acceptor {
        wire,
        app,
        limits,
        shutdown,
        work,
        probes,
    } = acceptor;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => match &probes {
                Some(probes) if shutdown.is_triggered() => {
                    probes.spawn(draining_connection(stream, app.clone(), limits));
                }
                // Only the task is started here: a TLS handshake or the wait for an h2c preface
                // happens in it, so one slow client never holds up the accepts.
                _ => match &wire {
                    Wire::Http1 => {
                        work.spawn(connection(stream, app.clone(), limits, shutdown.clone()));
                    }
                    Wire::Http1OrH2c => {
                        work.spawn(h2c_connection(
                            stream,
                            app.clone(),
                            limits,
                            shutdown.clone(),
                        ));
                    }
                    Wire::Tls(tls) => {
                        work.spawn(tls_connection(
                            stream,
                            tls.clone(),
                            app.clone(),
                            limits,
                            shutdown.clone(),
                        ));
                    }
                },
            },
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// A connection accepted during the drain: one request, answered in [`Phase::Draining`],
/// then closed (no keep-alive, so it cannot outlive the drain by much).
async fn draining_connection(stream: TcpStream, app: Arc<App>, limits: ConnectionLimits) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req, Phase::Draining).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "probe connection ended with an error");
    }
}

/// An HTTP/1.1 server connection with the header-read timeout, for cleartext and TLS alike.
fn http1_builder(limits: ConnectionLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
}

/// An HTTP/2 server connection. Each stream's request is handled in its own task (hyper's
/// HTTP/2 needs an executor); the connection still ends only once every stream is answered, so
/// the drain still waits for them.
fn http2_builder() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    builder
}

/// Polls `conn` to its end; once `shutdown` is triggered, calls `graceful` on it (finish the
/// requests in progress, their clicks included, then close; for HTTP/2 that is a GOAWAY).
async fn until_closed<C, E>(
    conn: C,
    shutdown: &Shutdown,
    graceful: impl Fn(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    let cancelled = shutdown.token.cancelled();
    tokio::pin!(cancelled);
    let mut registered = false;
    let mut draining = false;
    std::future::poll_fn(|cx| {
        if !draining {
            // Registers this task's waker with the token once; later wake-ups of a shutdown
            // are seen through the flag.
            let woke = !registered && cancelled.as_mut().poll(cx).is_ready();
            registered = true;
            if woke || shutdown.is_triggered() {
                draining = true;
                graceful(conn.as_mut());
            }
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// A cleartext HTTP/1.1 connection ([`Wire::Http1`], and the admin listener before a shutdown).
async fn connection(
    stream: TcpStream,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req, Phase::Serving).await) }
    });
    let conn = http1_builder(limits).serve_connection(TokioIo::new(stream), service);
    let result = until_closed(conn, &shutdown, |c| c.graceful_shutdown()).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A cleartext connection speaking HTTP/1.1 or HTTP/2 with prior knowledge ([`Wire::Http1OrH2c`]).
async fn h2c_connection(
    stream: TcpStream,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    // hyper-util waits for the first bytes to tell the protocols apart, with no bound of its
    // own: a client that connects and stays silent is cut after --header-timeout, as on the
    // HTTP/1.1-only path (and at once at a shutdown: it has no request in progress).
    let mut first = [0u8; 1];
    let first_byte = tokio::time::timeout(limits.header_timeout, stream.peek(&mut first));
    tokio::select! {
        biased;
        _ = shutdown.token.cancelled() => return,
        r = first_byte => match r {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        },
    }
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req, Phase::Serving).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let result = until_closed(conn, &shutdown, |c| c.graceful_shutdown()).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A TLS connection ([`Wire::Tls`]): the handshake, then HTTP/2 when ALPN chose `h2`, else
/// HTTP/1.1.
async fn tls_connection(
    stream: TcpStream,
    tls: TlsAcceptor,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    // Bounded like request headers, so a client that stalls mid-handshake cannot hold a task;
    // abandoned at a shutdown, since no request is in progress yet.
    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream));
    let stream = tokio::select! {
        biased;
        _ = shutdown.token.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                app.metrics.tls_handshake_failure();
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                app.metrics.tls_handshake_failure();
                tracing::debug!(timeout = ?limits.header_timeout, "TLS handshake timed out");
                return;
            }
        },
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req, Phase::Serving).await) }
    });
    let io = TokioIo::new(stream);
    let result = if h2 {
        let conn = http2_builder().serve_connection(io, service);
        until_closed(conn, &shutdown, |c| c.graceful_shutdown()).await
    } else {
        let conn = http1_builder(limits).serve_connection(io, service);
        until_closed(conn, &shutdown, |c| c.graceful_shutdown()).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "TLS connection ended with an error");
    }
}
