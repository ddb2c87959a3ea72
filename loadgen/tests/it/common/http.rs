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

/// One blocking `GET path` over a fresh connection (`Connection: close`), bounded by `timeout`
/// per connect, write and read: `(status, body)`, or `None` when nothing usable came back. For
/// synchronous tests that poll a service they did not start (a replica of `loadgen run`).
pub fn get_blocking(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// `clicks` of `site` from `GET /api/sites/{site}/stats` at `addr`, `None` when unreadable.
pub fn site_clicks_blocking(
    addr: std::net::SocketAddr,
    site: &str,
    timeout: std::time::Duration,
) -> Option<u64> {
    let (status, body) = get_blocking(addr, &format!("/api/sites/{site}/stats"), timeout)?;
    if status != 200 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok()?["clicks"].as_u64()
}

/// `GET path` on `sender`'s connection to `addr`, bounded by `timeout`: the status and the whole
/// body, or `None` when no answer came back in time.
pub async fn get(
    sender: &mut Sender,
    addr: &str,
    path: &str,
    timeout: std::time::Duration,
) -> Option<(hyper::StatusCode, Bytes)> {
    use http_body_util::BodyExt;
    let req = hyper::Request::get(format!("http://{addr}{path}"))
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let exchange = async {
        let resp = sender.send_request(req).await.ok()?;
        let status = resp.status();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}
