//! Test support for the service's process tests: starting `polymetrie` and `redis-server` as
//! children on free loopback ports, a small HTTP/1.1 client, and the external-binary policy
//! copied from loadgen (skip loudly when missing; panic under `LOADGEN_REQUIRE_EXTERNAL=1`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bound on any child becoming ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// `name` on PATH or in the Debian server dirs; `None` after a loud skip message, or a panic
/// when `LOADGEN_REQUIRE_EXTERNAL=1` so CI cannot pass by skipping.
pub fn binary_for_test(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("{name} not found (apt-get install -y {package})");
        if std::env::var("LOADGEN_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("LOADGEN_REQUIRE_EXTERNAL=1 but {msg}");
        }
        eprintln!(
            "\n!!! SKIPPING: {msg}. Set LOADGEN_REQUIRE_EXTERNAL=1 to make this a failure. !!!\n"
        );
    }
    found
}

/// A free loopback port (the kernel's choice, released just before use).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a signal with the `kill` program (the test crate forbids unsafe code).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Polls `child` until it exits or `bound` passes.
pub fn wait_exit(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file in the temp dir, removed on drop (token files for `--admin-token-file`).
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, content: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "polymetrie-test-{}-{}-{name}",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&path, content).unwrap();
        TempFile { path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running `polymetrie` child, killed on drop.
pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub pid: u32,
    /// Where stderr goes when started with [`Service::start_logging`].
    log: Option<TempFile>,
}

impl Service {
    /// Starts the service with `args` (plus `--listen 127.0.0.1:0` unless given) and reads the
    /// startup line.
    pub fn start(args: &[&str]) -> Service {
        Self::start_with_env(args, &[])
    }

    /// Like [`Service::start`], with extra environment variables (`POLYMETRIE_*`).
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Service {
        Self::spawn(args, envs, None)
    }

    /// Like [`Service::start`] with `RUST_LOG=trace` and stderr kept for [`Service::log_text`].
    pub fn start_logging(args: &[&str]) -> Service {
        Self::spawn(args, &[], Some(TempFile::new("stderr.log", "")))
    }

    /// Everything the service logged so far (only with [`Service::start_logging`]).
    pub fn log_text(&self) -> String {
        let log = self.log.as_ref().expect("started with start_logging");
        std::fs::read_to_string(&log.path).unwrap()
    }

    fn spawn(args: &[&str], envs: &[(&str, &str)], log: Option<TempFile>) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_polymetrie"));
        if !args.contains(&"--listen") && !envs.iter().any(|(k, _)| *k == "POLYMETRIE_LISTEN") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.envs(envs.iter().copied());
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        match &log {
            Some(f) => {
                cmd.env("RUST_LOG", "trace")
                    .stderr(std::fs::File::create(&f.path).unwrap());
            }
            None => {
                cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
            }
        }
        let mut child = cmd.spawn().expect("spawn polymetrie");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .expect("polymetrie printed no startup line in time");
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad startup line {line:?}: {e}"));
        assert_eq!(v["event"], "listening", "{line}");
        let addr = v["addr"].as_str().unwrap().parse().unwrap();
        let admin = v["admin_addr"].as_str().map(|a| a.parse().unwrap());
        let pid = v["pid"].as_u64().unwrap() as u32;
        assert_eq!(pid, child.id());
        Service {
            child,
            addr,
            admin,
            pid,
            log,
        }
    }

    pub fn sigterm(&self) {
        signal(self.pid, "TERM");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway `redis-server` on a free port, persistence off, killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl Redis {
    /// `None` (after a loud skip) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        let bin = binary_for_test("redis-server", "redis-server")?;
        let dir = std::env::temp_dir().join(format!(
            "polymetrie-test-redis-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = Self::spawn(&bin, port, &dir);
        let r = Redis {
            child,
            port,
            dir,
            bin,
        };
        r.wait_ready();
        Some(r)
    }

    fn spawn(bin: &PathBuf, port: u16, dir: &PathBuf) -> Child {
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server")
    }

    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf).unwrap_or(0) > 0
                    && buf.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server not ready in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (simulating a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server on the same port (empty: persistence is off).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.bin, self.port, &self.dir);
        self.wait_ready();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Client { sender })
    }

    /// Sends one request; `Err` when the connection failed (no status was received).
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        self.send(method, path, &[], body)
            .await
            .map(|r| (r.status, r.body))
    }

    /// Sends one request with extra headers and returns the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, hyper::Error> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .sender
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, Bytes) {
        self.request(Method::GET, path, Bytes::new()).await.unwrap()
    }

    pub async fn post(&mut self, path: &str, body: &str) -> (StatusCode, Bytes) {
        self.request(Method::POST, path, body.to_string())
            .await
            .unwrap()
    }

    pub async fn click(&mut self, site: &str, url: &str) -> Result<StatusCode, hyper::Error> {
        let body = serde_json::json!({ "site": site, "url": url }).to_string();
        self.request(Method::POST, "/api/clicks", body)
            .await
            .map(|(s, _)| s)
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A header's value as text (`None` when absent).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json {:?}: {e}", self.body))
    }
}

/// One request on a fresh connection (for answers that may close it: 4xx with an unread body).
pub async fn send_once(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    Client::connect(addr)
        .await
        .unwrap()
        .send(method, path, headers, body)
        .await
        .unwrap()
}

/// Polls `metric` until `ok(value)` or `bound` passes (then panics naming `what`).
pub async fn wait_metric(
    addr: SocketAddr,
    series: &str,
    bound: Duration,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let v = metric(addr, series).await.unwrap_or(0.0);
        if ok(v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {series} is {v} after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One-shot GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Bytes) {
    Client::connect(addr).await.unwrap().get(path).await
}

/// The store's click total for `site` (GET stats), shared across replicas with Redis.
pub async fn store_clicks(addr: SocketAddr, site: &str) -> u64 {
    let (status, body) = get(addr, &format!("/api/sites/{site}/stats")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["clicks"].as_u64().unwrap()
}

/// The value of one sample line in this replica's /metrics (`None` when absent).
pub async fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = get(addr, "/metrics").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Tally of a load run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub ok: u64,
    pub shed: u64,
    pub other: u64,
    pub errors: u64,
}

/// `connections` concurrent keep-alive connections each sending up to `per_conn` clicks
/// (reconnecting after a failed request; a failed connect ends that connection's loop), bounded by `bound`.
pub async fn click_load(
    addr: SocketAddr,
    site: &str,
    connections: usize,
    per_conn: usize,
    bound: Duration,
) -> Tally {
    let deadline = tokio::time::Instant::now() + bound;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let site = site.to_string();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut client = None;
            for i in 0..per_conn {
                if tokio::time::Instant::now() > deadline {
                    break;
                }
                if client.is_none() {
                    match Client::connect(addr).await {
                        Ok(cl) => client = Some(cl),
                        Err(_) => {
                            // Nobody listens any more (e.g. after SIGTERM): this connection
                            // is done.
                            t.errors += 1;
                            break;
                        }
                    }
                }
                let url = format!("/page/{}", (c * 7 + i) % 13);
                match client.as_mut().unwrap().click(&site, &url).await {
                    Ok(s) if s == StatusCode::NO_CONTENT => t.ok += 1,
                    Ok(s) if s == StatusCode::SERVICE_UNAVAILABLE => t.shed += 1,
                    Ok(_) => t.other += 1,
                    Err(_) => {
                        t.errors += 1;
                        client = None;
                    }
                }
            }
            t
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.unwrap();
        total.ok += t.ok;
        total.shed += t.shed;
        total.other += t.other;
        total.errors += t.errors;
    }
    total
}

/// A click whose request is sent except for the last byte of its body, so the server holds it
/// in flight (headers received, handler waiting for the body) until [`HeldClick::finish`].
pub struct HeldClick {
    stream: TcpStream,
    last: u8,
    received: Vec<u8>,
}

impl HeldClick {
    pub async fn start(addr: SocketAddr, site: &str, url: &str) -> HeldClick {
        use tokio::io::AsyncWriteExt;
        let body = serde_json::json!({ "site": site, "url": url }).to_string();
        let head = format!(
            "POST /api/clicks HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (all_but_last, last) = body.as_bytes().split_at(body.len() - 1);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(all_but_last).await.unwrap();
        HeldClick {
            stream,
            last: last[0],
            received: Vec::new(),
        }
    }

    /// Whether the server has answered (or closed) already, without waiting.
    pub fn answered(&mut self) -> bool {
        let mut buf = [0u8; 512];
        match self.stream.try_read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                self.received.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    /// Sends the last byte and reads the answer until the server closes or `bound` passes.
    pub async fn finish(mut self, bound: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&[self.last]).await.unwrap();
        let deadline = tokio::time::Instant::now() + bound;
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => self.received.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// One request on a fresh connection; `None` when the connection failed before an answer (e.g.
/// accepted just before SIGTERM and closed by the drain) — for polling across a shutdown.
pub async fn try_send_once(addr: SocketAddr, method: Method, path: &str) -> Option<Response> {
    let mut c = Client::connect(addr).await.ok()?;
    c.send(method, path, &[], Bytes::new()).await.ok()
}

/// Flags for [`hold_clicks_through_sigterm`]: a cost and fewer slots than clicks, so that once
/// released the clicks queue and burn their cost during the drain (the drain really waits for
/// work, not just for sockets), with bounds far above what the test needs.
pub const HELD_CLICK_ARGS: &[&str] = &[
    "--admin-listen",
    "127.0.0.1:0",
    "--cost",
    "20ms",
    "--max-inflight",
    "2",
    "--queue-timeout",
    "30s",
    "--body-timeout",
    "30s",
    "--drain-timeout",
    "30s",
];

/// Clicks held in flight through a SIGTERM, on a service started with `--admin-listen`: holds
/// `n` clicks (waiting on the server's own in-progress gauge, not on time), sends SIGTERM,
/// polls the admin `/readyz` until it says 503 while those clicks surely still are in flight
/// (they cannot finish before their last byte), checks the main listener refuses new
/// connections and that the admin listener refuses new work, then releases them. Returns the
/// number of 204s, having checked that the service counted exactly `n - 1` while the last one
/// was still held and that the process exited 0 after the last answer.
pub async fn hold_clicks_through_sigterm(svc: &mut Service, site: &str, n: usize) -> u64 {
    let admin = svc
        .admin
        .expect("the drain is watched through --admin-listen");
    let mut held = Vec::new();
    for i in 0..n {
        held.push(HeldClick::start(svc.addr, site, &format!("/held/{i}")).await);
    }
    // + 1: the scrape that reads the gauge is in progress too.
    wait_metric(
        admin,
        "polymetrie_http_requests_in_progress",
        START_TIMEOUT,
        "held clicks reaching the handler",
        |v| v == (n + 1) as f64,
    )
    .await;
    svc.sigterm();

    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let ready = loop {
        match try_send_once(admin, Method::GET, "/readyz").await {
            Some(r) if r.status == StatusCode::SERVICE_UNAVAILABLE => break r,
            Some(r) => assert_eq!(r.status, StatusCode::OK, "{r:?}"),
            None => {}
        }
        if let Some(st) = svc.child.try_wait().unwrap() {
            panic!("exited ({st}) with {n} clicks in flight instead of draining");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never said 503 after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ready.header("retry-after"), Some("1"), "{ready:?}");
    assert_eq!(ready.json()["error"], "draining");
    for (i, h) in held.iter_mut().enumerate() {
        assert!(
            !h.answered(),
            "held click {i} was answered before it was complete"
        );
    }
    // /readyz turns 503 only once the main listener is closed.
    assert!(
        TcpStream::connect(svc.addr).await.is_err(),
        "main listener still accepting while draining"
    );
    let body = serde_json::json!({ "site": site, "url": "/late" }).to_string();
    let late = send_once(admin, Method::POST, "/api/clicks", &[], body).await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE, "{late:?}");
    assert_eq!(late.header("retry-after"), Some("1"));

    let last = held.pop().unwrap();
    let mut answers = Vec::new();
    for h in held {
        answers.push(tokio::spawn(h.finish(START_TIMEOUT)));
    }
    let mut ok = 0;
    for a in answers {
        let text = a.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 204"), "{text:?}");
        ok += 1;
    }
    // Still draining (the last click is held): the service has counted exactly the 204s.
    let series = format!("polymetrie_clicks_total{{site=\"{site}\"}}");
    assert_eq!(metric(admin, &series).await, Some(ok as f64));
    assert_eq!(
        metric(admin, "polymetrie_http_requests_in_progress").await,
        Some(2.0)
    );
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "exited while a click was in flight"
    );

    let text = last.finish(START_TIMEOUT).await;
    assert!(text.starts_with("HTTP/1.1 204"), "{text:?}");
    ok += 1;
    let st = wait_exit(&mut svc.child, START_TIMEOUT).expect("did not exit after the drain");
    assert!(st.success(), "{st:?}");
    assert!(
        TcpStream::connect(admin).await.is_err(),
        "admin listener outlived the process"
    );
    ok
}
