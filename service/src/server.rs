//! The network shell: binding listeners (optionally with SO_REUSEPORT), accepting
//! connections, serving HTTP/1.1 with a header-read timeout, and the graceful shutdown that
//! stops accepting on the main listener, lets in-flight requests finish within a bound while
//! the admin listener still answers probes, then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, Phase};

/// Pause after an accept error (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

/// Once the drain is over, how long probe connections accepted during it may take to finish
/// (each serves one small request); past it the process exits regardless.
const PROBE_GRACE: Duration = Duration::from_millis(500);

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
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
    work: TaskTracker,
    /// `Some` on the admin listener: where connections accepted during the drain go.
    probes: Option<TaskTracker>,
}

async fn accept_loop(listener: TcpListener, acceptor: Acceptor, stop: CancellationToken) {
    let Acceptor {
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
                _ => {
                    work.spawn(connection(stream, app.clone(), limits, shutdown.clone()));
                }
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

/// An HTTP/1.1 server connection with the header-read timeout.
fn http1_builder(limits: ConnectionLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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

/// A cleartext HTTP/1.1 connection (the main listener, and the admin listener before a
/// shutdown).
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
