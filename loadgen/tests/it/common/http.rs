//! A bare HTTP/1.1 connection for tests that talk to a service themselves (clicks, stats,
//! `/metrics`) rather than through the attack engine.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, ToSocketAddrs};

/// One keep-alive connection's request side.
pub type Sender = SendRequest<Full<Bytes>>;

/// Connects and handshakes; the connection is driven by a spawned task until it closes.
pub async fn connect(addr: impl ToSocketAddrs) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}
