//! A bare hyper "hello world" server: the baseline `bench/service.sh` compares polymetrie
//! against. Same runtime (multi-thread tokio), same HTTP/1.1 builder and the same per-connection
//! setup as polymetrie; it reads the request body (so a POST benchmark drives both through the
//! same work on the wire) and answers 200 "Hello, World!". Prints the same startup line.
//!
//! `cargo run --release -p polymetrie --example hello -- 127.0.0.1:0`

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into())
        .parse()
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        r#"{{"event":"listening","addr":"{local}","admin_addr":null,"pid":{}}}"#,
        std::process::id()
    )?;
    out.flush()?;
    drop(out);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
