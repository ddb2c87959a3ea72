//! The watchers' HTTP server: HTTP/1.1 on one listener, GET and HEAD only (anything else is
//! 405: nothing here changes a run), each path answered by a handler function from the state
//! it reads. Bounded: at most [`MAX_CONNECTIONS`] connections at once (more are closed at
//! accept), headers within [`HEADER_TIMEOUT`], and every connection ends when the server is
//! dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Connections served at once; a browser tab or a Prometheus needs one or two.
pub const MAX_CONNECTIONS: usize = 32;
/// Bound on a client sending its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a path answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    pub fn not_found() -> Reply {
        Reply {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from_static(b"not found\n"),
        }
    }
}

/// Answers a request's path (without its query).
pub type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// The server could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ServeError {
    addr: String,
    source: std::io::Error,
}

/// A listening server; dropping it stops it and every connection.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Listens on `addr` (`HOST:PORT`; port 0 picks a free one) and serves `handler`.
    pub async fn start(addr: &str, handler: Handler) -> Result<Server, ServeError> {
        let error = |source| ServeError {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(error)?;
        let bound = listener.local_addr().map_err(error)?;
        let task = tokio::spawn(accept(listener, handler));
        Ok(Server { addr: bound, task })
    }

    /// The address it listens on (the port chosen, when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The connections live in the accept task's JoinSet: they end with it.
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, handler: Handler) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // A transient accept error (out of descriptors): try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            continue; // dropping the stream closes it
        }
        let handler = handler.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = respond(&handler, &req);
                async move { Ok::<_, Infallible>(reply) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(handler: &Handler, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    let reply = if req.method() == Method::GET || head {
        handler(req.uri().path())
    } else {
        Reply {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from_static(b"read-only: GET or HEAD\n"),
        }
    };
    let body = if head { Bytes::new() } else { reply.body };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let h = response.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(reply.content_type),
    );
    // Every answer is the state of the moment.
    h.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-store"),
    );
    if reply.status == 405 {
        h.insert(
            "allow",
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
    }
    response
}
