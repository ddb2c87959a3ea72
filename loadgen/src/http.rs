//! A minimal HTTP/1.1 GET over one fresh loopback connection, for probes and readiness checks:
//! bounded in time, never retried here (callers poll with their own bound). An `https://` URL
//! goes over TLS with the engine's own client (rustls on ring), trusting a given CA file (the
//! run's, for a `tls = true` step) or the system's roots.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use loadgen_engine::tls::TlsSpec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest body a probe reads (a `/metrics` page with capped URL labels is far smaller).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why a probe GET got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad url {0}")]
    Url(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("tls: {0}")]
    Tls(String),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("body: {0}")]
    Body(String),
}

/// GETs `url` (`http://host:port/path`, or `https://` trusting the system's roots) within
/// `timeout`; returns the status and body text.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, String), HttpError> {
    get_with(url, timeout, None).await
}

/// [`get`], an `https://` URL with the TLS settings `tls` when given (a CA file, `insecure`, a
/// client certificate: a target's own keys, or the run's CA).
pub async fn get_with(
    url: &str,
    timeout: Duration,
    tls: Option<&TlsSpec>,
) -> Result<(u16, String), HttpError> {
    match tokio::time::timeout(timeout, get_unbounded(url, tls)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
}

async fn get_unbounded(url: &str, tls: Option<&TlsSpec>) -> Result<(u16, String), HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.into()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| HttpError::Url(url.into()))?
        .clone();
    let https = uri.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    // A bracketed IPv6 host connects and is named without its brackets.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(HttpError::Connect)?;
    let _ = stream.set_nodelay(true);
    if !https {
        return exchange(stream, &uri, url).await;
    }
    let default = TlsSpec::default();
    let client = tls
        .unwrap_or(&default)
        .client(host, false)
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    let (stream, _) = client
        .handshake(stream)
        .await
        .map_err(|e| HttpError::Tls(format!("handshake failed: {}", e.name())))?;
    exchange(stream, &uri, url).await
}

/// One GET on a connected stream (plain or TLS).
async fn exchange<S>(stream: S, uri: &Uri, url: &str) -> Result<(u16, String), HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let authority = uri.authority().ok_or_else(|| HttpError::Url(url.into()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the response is read and `sender` is dropped.
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|_| HttpError::Url(url.into()))?;
    let response = sender.send_request(request).await;
    let result = async {
        let response = response?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge
                } else {
                    HttpError::Body(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
    .await;
    drop(sender);
    driver.abort();
    result
}
