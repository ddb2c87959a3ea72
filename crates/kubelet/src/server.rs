//! The kubelet port, over HTTPS as a kubelet serves it: `/metrics/resource` (scraped by
//! metrics-server), `/containerLogs/{namespace}/{pod}/{container}` (what `kubectl logs` reaches
//! through the API server's node proxy; `tailLines` honoured, `follow` not) and `/healthz`.
//! Requests are not authenticated: the port is on the testbed's own bridge.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::Runtime;

/// The TLS configuration from the PEM files given on the command line.
pub fn tls(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves until `stop`.
pub async fn serve(
    rt: Arc<Runtime>,
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = stop.cancelled() => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let rt = rt.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let rt = rt.clone();
                async move { Ok::<_, Infallible>(route(&rt, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    r
}

fn route(rt: &Runtime, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    if path == "/metrics/resource" {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let pods = rt.pods();
        return text(
            StatusCode::OK,
            crate::stats::resource_metrics(&rt.layout, &pods, now_ms),
        );
    }
    if let Some(rest) = path.strip_prefix("/containerLogs/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [ns, pod, container] = parts[..] {
            let tail = req.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("tailLines="))
                    .and_then(|n| n.parse::<usize>().ok())
            });
            return match rt.log_of(ns, pod, container) {
                Some(log) => {
                    let body = std::fs::read(&log).unwrap_or_default();
                    text(StatusCode::OK, tail_lines(body, tail))
                }
                None => text(
                    StatusCode::NOT_FOUND,
                    format!("no container {container} in pod {ns}/{pod} on this node"),
                ),
            };
        }
    }
    text(StatusCode::NOT_FOUND, "not served by the kubelet stand-in")
}

fn tail_lines(body: Vec<u8>, tail: Option<usize>) -> Vec<u8> {
    let Some(n) = tail else {
        return body;
    };
    let text = String::from_utf8_lossy(&body);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.into_bytes()
}
