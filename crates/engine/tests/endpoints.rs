//! One attack spread over several endpoints, seen from both ends: three tiny keep-alive HTTP/1.1
//! servers on 127.0.0.1:0 count the requests and connections they get, and the engine's
//! per-endpoint counts must equal them exactly. Request balance gives each an even share (±1),
//! connection balance pins each connection of a fixed pool to one endpoint, one endpoint in the
//! list is the URL alone, a non-loopback endpoint is refused like a non-loopback URL, and a dead
//! endpoint's share fails as connect refused, counted and never lost. Nothing asserts speed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use loadgen_engine::io::IoMode;
use loadgen_engine::load::Load;
use loadgen_engine::record::StepRecord;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::{run, AttackSpec, Balance, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What one test server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    /// Connections that carried at least one request (the engine's reachability probe connects
    /// and closes without one: it is not a connection of the pool).
    connections: AtomicU64,
    /// The `Host` headers received, each once.
    hosts: Mutex<Vec<String>>,
}

impl Seen {
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A keep-alive responder on 127.0.0.1:0 answering every request `200 ok`, counting. Its
/// tasks end with the test's runtime.
async fn server() -> (SocketAddr, Arc<Seen>) {
    slow_server(Duration::ZERO).await
}

/// [`server`], answering each request `delay` after it arrived.
async fn slow_server(delay: Duration) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, s.clone(), delay));
        }
    });
    (addr, seen)
}

/// Answers each complete request head (GET, no body) on one connection until it closes.
async fn serve(mut stream: TcpStream, seen: Arc<Seen>, delay: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut answered = 0u64;
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if let Some(host) = head.lines().find_map(|l| l.strip_prefix("host: ")) {
                let mut hosts = seen.hosts.lock().unwrap();
                if !hosts.iter().any(|h| h == host) {
                    hosts.push(host.to_string());
                }
            }
            buf.drain(..end + 4);
            if answered == 0 {
                seen.connections.fetch_add(1, Ordering::Relaxed);
            }
            answered += 1;
            seen.requests.fetch_add(1, Ordering::Relaxed);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// GET / at 300 req/s for 1 s (300 requests due) over `endpoints`, `url` naming the Host.
fn spec(url: &str, endpoints: &[String], balance: Balance) -> AttackSpec {
    AttackSpec {
        url: url.into(),
        endpoints: endpoints.to_vec(),
        balance,
        tls: Default::default(),
        http2: None,
        reach: Default::default(),
        load: Load::constant(300.0, Duration::from_secs(1)),
        request: RequestTemplate {
            method: hyper::Method::GET,
            path: "/".into(),
            headers: vec![],
            body: Bytes::new(),
        },
        limits: Limits {
            timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            connections: None,
            max_connections: None,
            io: loadgen_engine::io::IoMode::Auto,
        },
        shard: None,
        start_at: None,
    }
}

async fn attack(s: &AttackSpec) -> StepRecord {
    let r = run(s, &CancellationToken::new(), None).await.unwrap();
    assert_eq!(r.intended, r.sent + r.dropped, "intended = sent + dropped");
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    assert_eq!(r.intended, 300);
    r
}

async fn three_servers(delay: Duration) -> (Vec<String>, Vec<Arc<Seen>>) {
    let mut urls = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (addr, s) = slow_server(delay).await;
        urls.push(format!("http://{addr}"));
        seen.push(s);
    }
    (urls, seen)
}

/// Each endpoint's counts add up, and their sums are the step's.
fn assert_endpoints_reconcile(r: &StepRecord) {
    for e in &r.per_endpoint {
        assert_eq!(e.sent, e.ok + e.failed, "{e:?}");
    }
    let sum = |f: fn(&loadgen_model::result::EndpointCounts) -> u64| {
        r.per_endpoint.iter().map(f).sum::<u64>()
    };
    assert_eq!(
        (sum(|e| e.sent), sum(|e| e.ok), sum(|e| e.failed)),
        (r.sent, r.ok, r.failed)
    );
}

#[tokio::test]
async fn request_balance_gives_each_endpoint_an_even_share_counted_at_both_ends() {
    let (urls, seen) = three_servers(Duration::ZERO).await;
    // The URL is only the authority of the Host header: it is never resolved or loaded.
    let r = attack(&spec("http://shop.test:8080", &urls, Balance::Request)).await;
    assert_endpoints_reconcile(&r);
    let share = r.sent as f64 / 3.0;
    for (i, s) in seen.iter().enumerate() {
        let got = s.requests();
        assert!(
            (got as f64 - share).abs() <= 1.0,
            "endpoint {i}: {got} of {}",
            r.sent
        );
        let e = &r.per_endpoint[i];
        assert_eq!(e.url, urls[i]);
        assert_eq!((e.sent, e.ok), (got, got), "endpoint {i}: {e:?}");
        assert!(e.connections_opened >= 1);
        assert_eq!(*s.hosts.lock().unwrap(), ["shop.test:8080"]);
    }
    let total: u64 = seen.iter().map(|s| s.requests()).sum();
    assert_eq!(r.ok, total);
}

#[tokio::test]
async fn connection_balance_pins_one_connection_of_a_fixed_pool_to_each_endpoint() {
    // 8 ms answers every 3.3 ms: three requests are in flight at once, so the pool opens all
    // three connections (fast answers would all reuse one, the most recently used).
    let (urls, seen) = three_servers(Duration::from_millis(8)).await;
    let mut s = spec(&urls[0], &urls, Balance::Connection);
    s.limits.connections = Some(3);
    let r = attack(&s).await;
    assert_endpoints_reconcile(&r);
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.connections(), 1, "endpoint {i}");
        assert_eq!(r.per_endpoint[i].connections_opened, 1);
        assert_eq!(r.per_endpoint[i].sent, s.requests(), "endpoint {i}");
    }
    assert_eq!(r.generator.connections_opened, Some(3));
    let total: u64 = seen.iter().map(|s| s.requests()).sum();
    assert_eq!((total, r.ok), (r.sent, r.sent));
}

#[tokio::test]
async fn one_endpoint_in_the_list_behaves_as_the_url_alone() {
    let (addr, seen) = server().await;
    let url = format!("http://{addr}");
    let alone = attack(&spec(&url, &[], Balance::Request)).await;
    let listed = attack(&spec(&url, std::slice::from_ref(&url), Balance::Request)).await;
    for r in [&alone, &listed] {
        assert!(r.per_endpoint.is_empty(), "nothing per endpoint with one");
        assert_eq!((r.sent, r.ok), (300, 300));
        let g = &r.generator;
        assert_eq!(
            (g.pool_free, g.pool_cap, g.pool_fixed),
            (Some(30), Some(10_000), Some(false))
        );
    }
    assert_eq!(seen.requests(), 600);
}

#[tokio::test]
async fn a_non_loopback_endpoint_is_refused_with_the_error_of_a_non_loopback_url() {
    let (addr, _seen) = server().await;
    let live = format!("http://{addr}");
    let remote = "http://10.1.2.3:80".to_string();
    let as_url = run(
        &spec(&remote, &[], Balance::Request),
        &CancellationToken::new(),
        None,
    )
    .await
    .unwrap_err();
    let as_endpoint = run(
        &spec(&live, &[live.clone(), remote], Balance::Request),
        &CancellationToken::new(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        as_url,
        loadgen_engine::AttackError::NotLoopback(_)
    ));
    assert_eq!(as_endpoint.to_string(), as_url.to_string());
}

#[tokio::test]
async fn a_dead_endpoint_fails_its_share_as_connect_refused_and_loses_nothing() {
    // Epoll, then `auto`: io_uring where the kernel allows it (a refused connect is then the
    // ring's connect's ECONNREFUSED), the record says which ran.
    for io in [IoMode::Epoll, IoMode::Auto] {
        dead_endpoint_on(io).await;
    }
}

async fn dead_endpoint_on(io: IoMode) {
    let (urls, seen) = three_servers(Duration::ZERO).await;
    // A port nothing listens on: bound, then closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let endpoints = vec![urls[0].clone(), dead.clone(), urls[2].clone()];
    let mut s = spec(&urls[0], &endpoints, Balance::Request);
    s.limits.io = io;
    let r = attack(&s).await;
    eprintln!("{io}: ran on {:?}", r.generator.io_backend);
    assert!(r.generator.io_backend.is_some());
    assert_endpoints_reconcile(&r);
    let d = &r.per_endpoint[1];
    assert_eq!(d.url, dead);
    assert!((d.sent as f64 - r.sent as f64 / 3.0).abs() <= 1.0, "{d:?}");
    assert_eq!((d.ok, d.failed, d.connections_opened), (0, d.sent, 0));
    assert_eq!(r.outcomes.connect_refused, d.failed, "{:?}", r.outcomes);
    assert_eq!(seen[1].requests(), 0, "the unused server got nothing");
    for i in [0, 2] {
        assert_eq!(r.per_endpoint[i].ok, seen[i].requests(), "endpoint {i}");
    }
    assert_eq!(r.ok, seen[0].requests() + seen[2].requests());
    assert_eq!(r.dropped, 0);
}
