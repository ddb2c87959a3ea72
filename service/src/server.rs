//! The network shell: binding listeners (optionally with SO_REUSEPORT), accepting
//! connections, serving HTTP/1.1 with a header-read timeout, and the graceful shutdown that
//! stops accepting, lets in-flight requests finish within a bound, then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
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

use crate::app::App;

/// Pause after an accept error (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

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
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) -> bool {
    let tracker = TaskTracker::new();
    let mut accept_loops = Vec::new();
    for listener in listeners {
        accept_loops.push(tokio::spawn(accept_loop(
            listener,
            app.clone(),
            limits,
            shutdown.clone(),
            tracker.clone(),
        )));
    }
    shutdown.token.cancelled().await;
    app.start_draining();
    // Listeners are dropped when their loops end: no new connection is accepted after this.
    for l in accept_loops {
        let _ = l.await;
    }
    tracker.close();
    let drained = tokio::time::timeout(limits.drain_timeout, tracker.wait())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            remaining = tracker.len(),
            "drain timeout reached; closing remaining connections"
        );
    }
    drained
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.token.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                tracker.spawn(connection(stream, app.clone(), limits, shutdown.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    app: Arc<App>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let cancelled = shutdown.token.cancelled();
    tokio::pin!(cancelled);
    let mut registered = false;
    let mut draining = false;
    let result = std::future::poll_fn(|cx| {
        if !draining {
            // Registers this task's waker with the token once; later wake-ups of a shutdown
            // are seen through the flag.
            let woke = !registered && cancelled.as_mut().poll(cx).is_ready();
            registered = true;
            if woke || shutdown.is_triggered() {
                draining = true;
                // Finishes the request in progress (its click included), then closes.
                conn.as_mut().graceful_shutdown();
            }
        }
        conn.as_mut().poll(cx)
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
