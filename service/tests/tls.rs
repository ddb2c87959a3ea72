//! HTTPS and HTTP/2 (issue 25), against a real `polymetrie` process on port 0 with a PKI made
//! on the spot: clicks over HTTPS counted exactly and a client trusting another CA refused
//! without a click; TLS 1.3 resumption; ALPN `h2` only with `--http2`; 150 streams at once on one
//! h2c connection; no h2c without `--http2`; bad TLS files exiting 2 with a line naming the flag;
//! SIGTERM with an idle TLS keep-alive or HTTP/2 connection exiting 0 without waiting for the
//! drain timeout.

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use loadgen_testkit::pki::Pki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use support::{metric, store_clicks, wait_metric, Client, Service};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const H2: &[u8] = b"h2";
const HTTP1: &[u8] = b"http/1.1";

/// A fresh directory holding a test PKI, removed on drop.
struct Certs {
    dir: PathBuf,
    pki: Pki,
}

impl Certs {
    fn new() -> Certs {
        let dir = std::env::temp_dir().join(format!(
            "polymetrie-test-tls-{}-{}",
            std::process::id(),
            support::free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki::generate(&dir);
        Certs { dir, pki }
    }

    /// The flags serving this PKI's server certificate.
    fn args(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            self.pki.server_cert.to_str().unwrap(),
            "--tls-key",
            self.pki.server_key.to_str().unwrap(),
        ]
    }

    /// A file in the directory, for bad inputs.
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client trusting only `ca`, offering `alpn`; on ring, like the service.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config.clone()).connect(name, tcp).await
}

fn negotiated(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

fn click_request<B>(uri: &str, site: &str, body: impl FnOnce(Bytes) -> B) -> Request<B> {
    let json = serde_json::json!({ "site": site, "url": "/tls" }).to_string();
    Request::post(uri)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("content-length", json.len())
        .body(body(Bytes::from(json)))
        .unwrap()
}

/// HTTP/1.1 over an established TLS stream.
async fn http1_over(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Polls `child` until it exits or `bound` passes, without blocking the runtime (HTTP/2 client
/// connections must keep answering the server's pings meanwhile).
/// One click for site `a.com` as an HTTP/2 stream over `tls`; the answer, and the task driving
/// the connection (it ends when the connection does).
async fn h2_click(
    tls: TlsStream<TcpStream>,
) -> (
    hyper::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(click_request(
            "https://localhost/api/clicks",
            "a.com",
            Full::new,
        ))
        .await
        .unwrap();
    (resp, conn)
}

async fn exit_within(svc: &mut Service, bound: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Some(st) = svc.child.try_wait().unwrap() {
            return Some(st);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn https_clicks_are_counted_and_a_client_trusting_another_ca_is_refused() {
    let certs = Certs::new();
    let args = [
        &certs.args()[..],
        &["--sites", "a.com", "--admin-listen", "127.0.0.1:0"],
    ]
    .concat();
    let svc = Service::start(&args);
    let admin = svc.admin.unwrap();

    // One keep-alive TLS connection, addressed by IP (the certificate has an IP SAN too).
    let config = client_config(&certs.pki.ca, &[HTTP1]);
    let tcp = TcpStream::connect(svc.addr).await.unwrap();
    let ip = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(config).connect(ip, tcp).await.unwrap();
    assert_eq!(negotiated(&tls).as_deref(), Some(HTTP1));
    let mut sender = http1_over(tls).await;
    const N: u64 = 25;
    for _ in 0..N {
        sender.ready().await.unwrap();
        let resp = sender
            .send_request(click_request("/api/clicks", "a.com", Full::new))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(resp.version(), Version::HTTP_11);
    }
    // The admin listener stays plain HTTP with TLS on the main one.
    assert_eq!(store_clicks(admin, "a.com").await, N);
    assert_eq!(
        metric(admin, r#"polymetrie_clicks_total{site="a.com"}"#).await,
        Some(N as f64)
    );
    assert_eq!(
        metric(admin, "polymetrie_tls_handshake_failures_total").await,
        Some(0.0)
    );

    // A client trusting another CA fails the handshake: nothing reaches the service.
    let wrong = client_config(&certs.pki.other_ca, &[HTTP1]);
    let err = tls_connect(svc.addr, &wrong).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // Plain HTTP to the TLS port gets no answer either.
    let plain = Client::connect(svc.addr)
        .await
        .unwrap()
        .click("a.com", "/plain")
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP answered on the TLS port: {plain:?}"
    );
    wait_metric(
        admin,
        "polymetrie_tls_handshake_failures_total",
        Duration::from_secs(10),
        "the refused handshakes",
        |v| v == 2.0,
    )
    .await;
    assert_eq!(store_clicks(admin, "a.com").await, N);
}

#[tokio::test]
async fn tls13_sessions_resume_with_tickets() {
    let certs = Certs::new();
    let svc = Service::start(&certs.args());
    let config = client_config(&certs.pki.ca, &[HTTP1]);
    for round in 0..3 {
        let tls = tls_connect(svc.addr, &config).await.unwrap();
        let (_, conn) = tls.get_ref();
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let expected = match round {
            0 => rustls::HandshakeKind::Full,
            _ => rustls::HandshakeKind::Resumed,
        };
        assert_eq!(conn.handshake_kind(), Some(expected), "round {round}");
        // A round trip, so the client has read the tickets the server sent after the handshake.
        let mut sender = http1_over(tls).await;
        let req = Request::get("/healthz")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn alpn_picks_h2_only_with_http2() {
    let certs = Certs::new();
    let both: &[&[u8]] = &[H2, HTTP1];
    let config = client_config(&certs.pki.ca, both);

    let with = Service::start(&[&certs.args()[..], &["--http2", "--sites", "a.com"]].concat());
    let tls = tls_connect(with.addr, &config).await.unwrap();
    assert_eq!(negotiated(&tls).as_deref(), Some(H2));
    let (resp, _conn) = h2_click(tls).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.version(), Version::HTTP_2);
    // A client offering only HTTP/1.1 still gets it from an --http2 server.
    let tls = tls_connect(with.addr, &client_config(&certs.pki.ca, &[HTTP1])).await;
    assert_eq!(negotiated(&tls.unwrap()).as_deref(), Some(HTTP1));

    let without = Service::start(&certs.args());
    let tls = tls_connect(without.addr, &config).await.unwrap();
    assert_eq!(negotiated(&tls).as_deref(), Some(HTTP1));
    // A client that speaks nothing but h2 finds no common protocol.
    let h2_only = client_config(&certs.pki.ca, &[H2]);
    let err = tls_connect(without.addr, &h2_only).await.unwrap_err();
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
}

/// A request body sent in two parts: all but its last byte at once, the last byte once
/// `release` fires — so the server holds the request in flight until the test lets it go.
struct HeldBody {
    first: Option<Bytes>,
    release: Option<tokio::sync::oneshot::Receiver<()>>,
    last: Option<Bytes>,
}

impl HeldBody {
    fn new(body: Bytes) -> (HeldBody, tokio::sync::oneshot::Sender<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let held = HeldBody {
            first: Some(body.slice(..body.len() - 1)),
            release: Some(rx),
            last: Some(body.slice(body.len() - 1..)),
        };
        (held, tx)
    }
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if let Some(release) = this.release.as_mut() {
            // A dropped sender releases too: the test must never hang on its own mistake.
            let _ = std::task::ready!(Pin::new(release).poll(cx));
            this.release = None;
        }
        Poll::Ready(this.last.take().map(|last| Ok(Frame::data(last))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_serves_150_streams_at_once_on_one_connection() {
    const STREAMS: usize = 150;
    let svc = Service::start(&[
        "--http2",
        "--sites",
        "a.com",
        "--admin-listen",
        "127.0.0.1:0",
        "--body-timeout",
        "60s",
    ]);
    let admin = svc.admin.unwrap();
    let tcp = TcpStream::connect(svc.addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut releases = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..STREAMS {
        let req = click_request("http://localhost/api/clicks", "a.com", |b| b);
        let (held, release) = HeldBody::new(req.body().clone());
        releases.push(release);
        let req = req.map(|_| held);
        let mut sender = sender.clone();
        answers.push(tokio::spawn(async move {
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.version(), Version::HTTP_2);
            resp.status()
        }));
    }
    // Every stream is open and in the handler at once (the scrape counts itself): the server
    // lets one connection carry them all.
    wait_metric(
        admin,
        "polymetrie_http_requests_in_progress",
        Duration::from_secs(30),
        "150 streams in flight on one connection",
        |v| v >= (STREAMS + 1) as f64,
    )
    .await;
    for release in releases {
        release.send(()).unwrap();
    }
    for answer in answers {
        assert_eq!(answer.await.unwrap(), StatusCode::NO_CONTENT);
    }
    assert_eq!(store_clicks(admin, "a.com").await, STREAMS as u64);
    // The same port still speaks HTTP/1.1.
    assert_eq!(store_clicks(svc.addr, "a.com").await, STREAMS as u64);
}

#[tokio::test]
async fn a_plain_listener_without_http2_does_not_speak_h2c() {
    let svc = Service::start(&["--sites", "a.com"]);
    let tcp = TcpStream::connect(svc.addr).await.unwrap();
    let attempt = async {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let req = click_request("http://localhost/api/clicks", "a.com", Full::new);
        sender.send_request(req).await.map(|r| r.status())
    };
    let result = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("an h2c attempt must fail, not hang");
    assert!(result.is_err(), "h2c answered without --http2: {result:?}");
    // HTTP/1.1 on the same port as ever, and the h2c attempt counted nothing.
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(c.click("a.com", "/").await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(store_clicks(svc.addr, "a.com").await, 1);
}

#[tokio::test]
async fn silent_clients_are_cut_after_the_header_timeout_on_h2c_and_tls() {
    use tokio::io::AsyncReadExt;
    let certs = Certs::new();
    let quick = ["--header-timeout", "1s", "--admin-listen", "127.0.0.1:0"];
    let h2c = Service::start(&[&["--http2"][..], &quick].concat());
    let tls = Service::start(&[&certs.args()[..], &quick].concat());
    for svc in [&h2c, &tls] {
        // Connected, then nothing sent: not a byte of preface or handshake.
        let mut tcp = TcpStream::connect(svc.addr).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("a silent connection was not cut");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let failures = metric(
        tls.admin.unwrap(),
        "polymetrie_tls_handshake_failures_total",
    )
    .await;
    assert_eq!(failures, Some(1.0), "the timed-out handshake is counted");
}

/// Runs the service with `args` and `envs`, checks it exits 2 without a startup line, and
/// returns its stderr.
fn refused(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_polymetrie"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}");
    assert!(
        out.stdout.is_empty(),
        "no startup line expected: {:?}",
        out.stdout
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The service's own cause: exactly one line, holding every one of `needles` (the flag, the
/// file, what is wrong with it).
fn assert_one_line(err: &str, needles: &[&str]) {
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} missing in {err}");
    }
}

#[test]
fn bad_tls_flags_and_files_exit_2_with_a_line_naming_the_flag() {
    let certs = Certs::new();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (cert, key) = (path(&certs.pki.server_cert), path(&certs.pki.server_key));
    let other_key = path(&certs.pki.client_key);
    let junk = path(&certs.file("junk.pem", "not a certificate\n"));
    let bad_der = path(&certs.file(
        "bad-der.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ));
    let bad_key = path(&certs.file(
        "bad.key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ));
    let missing = path(&certs.dir.join("missing.pem"));

    // clap: each of the pair requires the other (its usage lines follow the cause).
    assert!(refused(&["--tls-cert", &cert], &[]).contains("--tls-key"));
    assert!(refused(&["--tls-key", &key], &[]).contains("--tls-cert"));

    let tls = |c: &str, k: &str| refused(&["--tls-cert", c, "--tls-key", k], &[]);
    assert_one_line(
        &tls(&junk, &key),
        &["--tls-cert", &junk, "no PEM certificate"],
    );
    assert_one_line(
        &tls(&bad_der, &key),
        &["--tls-cert", &bad_der, "usable certificate"],
    );
    assert_one_line(&tls(&missing, &key), &["cannot read --tls-cert", &missing]);
    assert_one_line(&tls(&cert, &missing), &["cannot read --tls-key", &missing]);
    assert_one_line(
        &tls(&cert, &cert),
        &["--tls-key", &cert, "no PEM private key"],
    );
    assert_one_line(
        &tls(&cert, &bad_key),
        &["--tls-key", &bad_key, "usable private key"],
    );
    // Through the environment too; a well-formed key of another certificate.
    let err = refused(
        &[],
        &[
            ("POLYMETRIE_TLS_CERT", &cert),
            ("POLYMETRIE_TLS_KEY", &other_key),
        ],
    );
    assert_one_line(&err, &["--tls-key", &other_key, "does not match", &cert]);
}

/// A TLS service with `extra` flags whose drain (30 s) and header timeout (60 s) are both far
/// longer than any test waits, and one TLS connection to it offering `alpn`.
async fn draining_tls_service(
    extra: &[&str],
    alpn: &[&[u8]],
) -> (Certs, Service, TlsStream<TcpStream>) {
    let certs = Certs::new();
    let base = [
        "--sites",
        "a.com",
        "--drain-timeout",
        "30s",
        "--header-timeout",
        "60s",
    ];
    let args = [&certs.args()[..], extra, &base].concat();
    let svc = Service::start(&args);
    let tls = tls_connect(svc.addr, &client_config(&certs.pki.ca, alpn))
        .await
        .unwrap();
    (certs, svc, tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_idle_tls_keep_alive_connection_exits_0_at_once() {
    let (_certs, mut svc, tls) = draining_tls_service(&[], &[HTTP1]).await;
    let mut sender = http1_over(tls).await;
    let resp = sender
        .send_request(click_request("/api/clicks", "a.com", Full::new))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The connection is now idle and kept alive; the drain closes it instead of waiting 30 s
    // (and the 60 s header timeout cannot be what closes it).
    svc.sigterm();
    let st = exit_within(&mut svc, Duration::from_secs(15))
        .await
        .expect("did not exit well within the drain timeout");
    assert!(st.success(), "{st:?}");
    assert!(
        sender.ready().await.is_err(),
        "the connection was not closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_goaway_on_an_idle_h2_connection_and_exits_0() {
    let (_certs, mut svc, tls) = draining_tls_service(&["--http2"], &[H2, HTTP1]).await;
    assert_eq!(negotiated(&tls).as_deref(), Some(H2));
    let (resp, conn) = h2_click(tls).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let _ = resp.into_body().collect().await;
    svc.sigterm();
    let st = exit_within(&mut svc, Duration::from_secs(15))
        .await
        .expect("did not exit well within the drain timeout");
    assert!(st.success(), "{st:?}");
    // The client's connection ended (GOAWAY, then close), not left hanging.
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the h2 connection did not end")
        .unwrap()
        .ok();
}
