//! A tiny HTTP/1.1 server for engine tests (port 0, loopback), whose answers a test chooses with
//! a handler, and which counts connections: open now, the most open at once, accepted and
//! closed — the target's own view of what a generator's pool did.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Connections as the server saw them.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicUsize,
    peak: AtomicUsize,
    accepted: AtomicUsize,
    closed: AtomicUsize,
}

impl ConnStats {
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Serves `handler` on 127.0.0.1:0 until the test's runtime ends.
pub async fn serve<H, F>(handler: H) -> (SocketAddr, Arc<ConnStats>)
where
    H: Fn(Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ConnStats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            s.accepted.fetch_add(1, Ordering::SeqCst);
            let now = s.open.fetch_add(1, Ordering::SeqCst) + 1;
            s.peak.fetch_max(now, Ordering::SeqCst);
            let (h, s) = (handler.clone(), s.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let f = h(req);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
                s.open.fetch_sub(1, Ordering::SeqCst);
                s.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, stats)
}

/// An empty answer with `status`.
pub fn answer(status: u16) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r
}
