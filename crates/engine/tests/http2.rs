//! HTTP/2 against Debian's nginx (`listen … http2`), seen from both ends: over TLS (ALPN h2)
//! and as h2c by prior knowledge on plain TCP, a step's OK count equals nginx's logged 200s,
//! every one logged as HTTP/2.0, and its requests share one connection (streams up to
//! `max_streams`; 120 slow streams at once on one connection), as nginx's own connection
//! numbers show; an HTTPS server that does not offer h2 fails every request as `no_alpn`
//! instead of being spoken HTTP/2 to. Skips loudly without nginx, fails under
//! LOADGEN_REQUIRE_EXTERNAL=1.

use std::time::Duration;

use bytes::Bytes;
use loadgen_engine::load::Load;
use loadgen_engine::record::StepRecord;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::tls::TlsSpec;
use loadgen_engine::{run, AttackSpec, Http2, Limits};
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;
use tokio_util::sync::CancellationToken;

/// Requests of each attack: 100 at 100 req/s, POSTed with a body.
const REQUESTS: u64 = 100;

fn spec(url: String, tls: TlsSpec, max_streams: usize) -> AttackSpec {
    AttackSpec {
        url,
        endpoints: Vec::new(),
        balance: Default::default(),
        tls,
        http2: Some(Http2 { max_streams }),
        reach: Default::default(),
        load: Load::constant(REQUESTS as f64, Duration::from_secs(1)),
        request: RequestTemplate {
            method: hyper::Method::GET,
            path: "/p/{seq}".into(),
            headers: vec![("x-test".into(), "h2".into())],
            body: Bytes::new(),
        },
        limits: Limits {
            timeout: Duration::from_secs(5),
            max_in_flight: 1_000,
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
    assert_eq!(r.intended, REQUESTS);
    assert_eq!(r.intended, r.sent + r.dropped, "intended = sent + dropped");
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    r
}

fn h2_server(tls: Option<&Pki>, http2: bool) -> Option<Nginx> {
    Nginx::start(&nginx::Config {
        tls: tls.map(|p| (p.server_cert.clone(), p.server_key.clone())),
        http2,
        ..nginx::Config::default()
    })
}

/// Every logged request was HTTP/2, and they came on `connections` connections.
fn assert_h2_on(n: &Nginx, ok: u64, connections: usize) {
    assert_eq!(n.count(200, ok as usize), ok as usize, "nginx's own count");
    let lines = n.log_lines();
    assert!(lines.iter().all(|l| l.contains(" HTTP/2.0 ")), "{lines:?}");
    assert_eq!(n.connections().len(), connections, "{lines:?}");
}

#[tokio::test]
async fn http2_over_tls_multiplexes_every_request_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let Some(n) = h2_server(Some(&pki), true) else {
        return;
    };
    let tls = TlsSpec {
        cacert: Some(pki.ca.clone()),
        ..TlsSpec::default()
    };
    let r = attack(&spec(
        format!("https://localhost:{}", n.addr.port()),
        tls,
        100,
    ))
    .await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert_eq!(r.generator.connections_opened, Some(1));
    let hs = r.handshakes.as_ref().unwrap().summary();
    assert_eq!(
        (hs.handshakes, hs.handshake_failures.len()),
        (1, 0),
        "{hs:?}"
    );
    assert_h2_on(&n, r.ok, 1);
}

#[tokio::test]
async fn h2c_by_prior_knowledge_on_plain_tcp() {
    let Some(n) = h2_server(None, true) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}", n.addr.port());
    let post = AttackSpec {
        request: RequestTemplate {
            method: hyper::Method::POST,
            path: "/".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(br#"{"n":{seq}}"#),
        },
        ..spec(url, TlsSpec::default(), 100)
    };
    let r = attack(&post).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert!(r.handshakes.is_none(), "no TLS, no handshakes");
    assert_eq!(r.generator.connections_opened, Some(1));
    assert_h2_on(&n, r.ok, 1);
}

#[tokio::test]
async fn a_server_without_h2_fails_every_request_as_no_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let Some(n) = h2_server(Some(&pki), false) else {
        return;
    };
    let tls = TlsSpec {
        cacert: Some(pki.ca.clone()),
        ..TlsSpec::default()
    };
    let r = attack(&spec(
        format!("https://localhost:{}", n.addr.port()),
        tls,
        100,
    ))
    .await;
    assert_eq!(r.ok, 0);
    assert_eq!(
        r.outcomes.to_counts().tls.get("no_alpn"),
        Some(&r.sent),
        "{:?}",
        r.outcomes
    );
    assert_eq!(n.count(200, 0), 0);
}

/// Slow answers (about 2 s each under nginx's `limit_rate`) overlap: at most `max_streams` of
/// them share a connection, so 20 requests in one second need at least 20 / 5 connections with
/// 5 streams each, and one connection with 100.
#[tokio::test]
async fn streams_per_connection_stop_at_max_streams() {
    let Some(n) = h2_server(None, true) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}", n.addr.port());
    let slow = |max_streams| AttackSpec {
        load: Load::constant(20.0, Duration::from_secs(1)),
        request: RequestTemplate {
            path: "/slow".into(),
            ..spec(url.clone(), TlsSpec::default(), max_streams).request
        },
        ..spec(url.clone(), TlsSpec::default(), max_streams)
    };
    let r = run(&slow(5), &CancellationToken::new(), None)
        .await
        .unwrap();
    assert_eq!((r.intended, r.ok), (20, 20), "{:?}", r.outcomes);
    let opened = r.generator.connections_opened.unwrap();
    assert!(
        (4..20).contains(&opened),
        "{opened} connections for 20 overlapping streams"
    );
    assert_eq!(n.count(200, 20), 20);
    assert_eq!(n.connections().len() as u64, opened, "nginx saw as many");
    let r = run(&slow(100), &CancellationToken::new(), None)
        .await
        .unwrap();
    assert_eq!(
        (r.ok, r.generator.connections_opened),
        (20, Some(1)),
        "{:?}",
        r.outcomes
    );
}

/// 120 slow answers (about 2 s each) asked for within one second all overlap: with
/// `max_streams` 128 (nginx's own `http2_max_concurrent_streams`) every one is a stream of ONE
/// connection, h2 over TLS and h2c alike, and nginx answers each on that connection.
#[tokio::test]
async fn over_a_hundred_concurrent_streams_share_one_connection() {
    const STREAMS: u64 = 120;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    for tls in [false, true] {
        let Some(n) = h2_server(tls.then_some(&pki), true) else {
            return;
        };
        let (url, spec_tls) = if tls {
            let t = TlsSpec {
                cacert: Some(pki.ca.clone()),
                ..TlsSpec::default()
            };
            (format!("https://localhost:{}", n.addr.port()), t)
        } else {
            (
                format!("http://127.0.0.1:{}", n.addr.port()),
                TlsSpec::default(),
            )
        };
        let base = spec(url, spec_tls, 128);
        let slow = AttackSpec {
            load: Load::constant(STREAMS as f64, Duration::from_secs(1)),
            request: RequestTemplate {
                path: "/slow".into(),
                ..base.request.clone()
            },
            ..base
        };
        let r = run(&slow, &CancellationToken::new(), None).await.unwrap();
        assert_eq!(
            (r.intended, r.ok),
            (STREAMS, STREAMS),
            "tls {tls}: {:?}",
            r.outcomes
        );
        assert_eq!(r.generator.connections_opened, Some(1), "tls {tls}");
        // Every answer took longer than the second over which all were sent: at its end all
        // 120 streams were open at once.
        let fastest_ms = r.latency.min() as f64 / 1000.0;
        assert!(
            fastest_ms > 1050.0,
            "tls {tls}: fastest answer {fastest_ms} ms"
        );
        assert_h2_on(&n, STREAMS, 1);
    }
}

/// nginx ends a connection after 5 requests with a GOAWAY while its slow answers are still
/// going: the streams it will not take are sent again on a new connection (nothing of them was
/// processed), so all 20 are answered, on at least 20 / 5 connections, as nginx counts them.
#[tokio::test]
async fn a_goaway_after_the_servers_request_limit_loses_nothing() {
    let Some(n) = Nginx::start(&nginx::Config {
        http2: true,
        max_requests: Some(5),
        ..nginx::Config::default()
    }) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}", n.addr.port());
    let base = spec(url, TlsSpec::default(), 100);
    let slow = AttackSpec {
        load: Load::constant(20.0, Duration::from_secs(1)),
        request: RequestTemplate {
            path: "/slow".into(),
            ..base.request.clone()
        },
        ..base
    };
    let r = run(&slow, &CancellationToken::new(), None).await.unwrap();
    assert_eq!((r.intended, r.ok), (20, 20), "{:?}", r.outcomes);
    let opened = r.generator.connections_opened.unwrap();
    assert!(
        opened >= 4,
        "{opened} connections for 20 requests at 5 each"
    );
    assert_eq!(n.count(200, 20), 20);
    assert_eq!(n.connections().len() as u64, opened);
}
