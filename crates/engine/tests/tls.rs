//! HTTPS against a real server: Debian's nginx as a child with a CA and certificates this test
//! makes (loadgen-testkit's `pki` and `nginx`), seen from both ends. An attack's OK count equals
//! the lines nginx logged; a wrong CA fails every request as `unknown_ca` (nginx logs none);
//! `insecure` works and is recorded; sessions resume across connections opened one after
//! another (nginx sees the same resumptions) and never with resumption off; a client
//! certificate is accepted under `ssl_verify_client on` and its absence refused. Each test
//! skips loudly without nginx and fails under LOADGEN_REQUIRE_EXTERNAL=1. Nothing asserts
//! speed; every load is a few dozen requests.

use std::time::Duration;

use bytes::Bytes;
use loadgen_engine::load::Load;
use loadgen_engine::record::StepRecord;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::tls::TlsSpec;
use loadgen_engine::{run, AttackSpec, Limits};
use loadgen_model::result::TlsSummary;
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;
use tokio_util::sync::CancellationToken;

/// Requests of each attack: 40 at 40 req/s.
const REQUESTS: u64 = 40;

/// GET / on `url` at 40 req/s for 1 s with `tls`.
fn spec(url: String, tls: TlsSpec) -> AttackSpec {
    AttackSpec {
        url,
        endpoints: Vec::new(),
        balance: Default::default(),
        tls,
        http2: None,
        reach: Default::default(),
        load: Load::constant(REQUESTS as f64, Duration::from_secs(1)),
        request: RequestTemplate {
            method: hyper::Method::GET,
            path: "/".into(),
            headers: vec![],
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

/// Runs `s` and checks the accounting that must hold whatever happened.
async fn attack(s: &AttackSpec) -> (StepRecord, TlsSummary) {
    let r = run(s, &CancellationToken::new(), None).await.unwrap();
    assert_eq!(r.intended, REQUESTS);
    assert_eq!(r.intended, r.sent + r.dropped, "intended = sent + dropped");
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    let tls = r
        .handshakes
        .as_ref()
        .expect("an https step records its handshakes")
        .summary();
    (r, tls)
}

/// A PKI in a temp dir (kept alive by the returned guard).
fn pki() -> (tempfile::TempDir, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    (dir, pki)
}

fn https_server(pki: &Pki, extra: nginx::Config) -> Option<Nginx> {
    Nginx::start(&nginx::Config {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        ..extra
    })
}

fn trusting(ca: &std::path::Path) -> TlsSpec {
    TlsSpec {
        cacert: Some(ca.to_path_buf()),
        ..TlsSpec::default()
    }
}

#[tokio::test]
async fn an_https_attack_counts_exactly_what_nginx_logged() {
    let (_d, pki) = pki();
    let Some(n) = https_server(&pki, nginx::Config::default()) else {
        return;
    };
    let url = format!("https://localhost:{}", n.addr.port());
    let (r, tls) = attack(&spec(url, trusting(&pki.ca))).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert_eq!(
        n.count(200, r.ok as usize),
        r.ok as usize,
        "nginx's own count"
    );
    assert!(tls.handshakes >= 1, "{tls:?}");
    assert!(tls.handshake_failures.is_empty(), "{tls:?}");
    assert_eq!(tls.handshake_ms.count, tls.handshakes);
    assert!(!tls.insecure);
    assert_eq!(tls.roots, pki.ca.display().to_string());
    // Every request nginx logged went over TLS.
    assert!(
        n.log_lines().iter().all(|l| l.contains(" TLSv1.")),
        "{:?}",
        n.log_lines()
    );
}

#[tokio::test]
async fn a_wrong_ca_fails_every_request_as_a_tls_failure_and_nothing_reaches_nginx() {
    let (_d, pki) = pki();
    let Some(n) = https_server(&pki, nginx::Config::default()) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}", n.addr.port());
    let (r, tls) = attack(&spec(url, trusting(&pki.other_ca))).await;
    assert_eq!(r.ok, 0);
    assert_eq!(r.failed, r.sent, "every request sent failed");
    let counts = r.outcomes.to_counts();
    assert_eq!(counts.tls.get("unknown_ca"), Some(&r.sent), "{counts:?}");
    assert_eq!(tls.handshake_failures.get("unknown_ca"), Some(&r.sent));
    assert_eq!(tls.handshakes, 0);
    assert_eq!(n.count(200, 0), 0, "nginx answered nothing");
}

#[tokio::test]
async fn insecure_skips_verification_and_says_so() {
    let (_d, pki) = pki();
    let Some(n) = https_server(&pki, nginx::Config::default()) else {
        return;
    };
    let insecure = TlsSpec {
        insecure: true,
        ..TlsSpec::default()
    };
    let url = format!("https://localhost:{}", n.addr.port());
    let (r, tls) = attack(&spec(url, insecure)).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert_eq!(n.count(200, r.ok as usize), r.ok as usize);
    assert!(tls.insecure, "recorded in the result");
    assert_eq!(tls.roots, "none (insecure)");
}

#[tokio::test]
async fn sessions_resume_across_connections_and_never_with_resumption_off() {
    let (_d, pki) = pki();
    let close = nginx::Config {
        close_after_each: true,
        ..nginx::Config::default()
    };
    let Some(n) = https_server(&pki, close.clone()) else {
        return;
    };
    let url = format!("https://localhost:{}", n.addr.port());
    // One connection at a time, each closed by nginx after its answer: 40 handshakes in turn.
    let one_at_a_time = |tls| {
        let mut s = spec(url.clone(), tls);
        s.limits.connections = Some(1);
        s
    };
    let (r, tls) = attack(&one_at_a_time(trusting(&pki.ca))).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert_eq!(
        tls.handshakes, REQUESTS,
        "one handshake per request: {tls:?}"
    );
    assert!(tls.resumed > 0, "sessions resumed: {tls:?}");
    assert!(tls.resumed < tls.handshakes, "the first handshake is full");
    assert_eq!(n.count(200, REQUESTS as usize), REQUESTS as usize);
    assert_eq!(
        n.resumed() as u64,
        tls.resumed,
        "nginx saw the same resumptions"
    );

    let Some(n) = https_server(&pki, close) else {
        return;
    };
    let url = format!("https://localhost:{}", n.addr.port());
    let off = TlsSpec {
        resume: false,
        ..trusting(&pki.ca)
    };
    let mut one_connection = spec(url, off);
    one_connection.limits.connections = Some(1);
    let (r, tls) = attack(&one_connection).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert_eq!((tls.handshakes, tls.resumed), (REQUESTS, 0), "{tls:?}");
    assert!(!tls.resumption);
    assert_eq!(n.count(200, REQUESTS as usize), REQUESTS as usize);
    assert_eq!(n.resumed(), 0);
}

#[tokio::test]
async fn a_client_certificate_is_accepted_and_its_absence_refused() {
    let (_d, pki) = pki();
    let Some(n) = https_server(
        &pki,
        nginx::Config {
            client_ca: Some(pki.ca.clone()),
            ..nginx::Config::default()
        },
    ) else {
        return;
    };
    let url = format!("https://localhost:{}", n.addr.port());
    let mtls = TlsSpec {
        cert: Some(pki.client_cert.clone()),
        key: Some(pki.client_key.clone()),
        ..trusting(&pki.ca)
    };
    let (r, tls) = attack(&spec(url.clone(), mtls)).await;
    assert_eq!(r.ok, REQUESTS, "{:?}", r.outcomes);
    assert!(tls.client_cert);
    assert_eq!(n.count(200, REQUESTS as usize), REQUESTS as usize);

    // Without one, nginx finishes the handshake and answers 400 ("No required SSL
    // certificate was sent"): every request is refused, none is OK.
    let (r, _) = attack(&spec(url, trusting(&pki.ca))).await;
    assert_eq!(r.ok, 0);
    assert_eq!(
        r.outcomes.to_counts().status.get("400"),
        Some(&r.sent),
        "{:?}",
        r.outcomes
    );
    assert_eq!(n.count(400, 2 * REQUESTS as usize), r.sent as usize);
}

#[test]
fn bad_tls_files_are_refused_before_the_step_naming_the_setting() {
    let (d, pki) = pki();
    let garbage = d.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = d.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (tls, setting) in [
        (trusting(&garbage), "cacert"),
        (trusting(&empty), "cacert"),
        (trusting(&d.path().join("absent.pem")), "cacert"),
        (
            TlsSpec {
                key: Some(pki.client_key.clone()),
                ..TlsSpec::default()
            },
            "key",
        ),
        (
            TlsSpec {
                cert: Some(pki.client_cert.clone()),
                key: Some(pki.server_key.clone()),
                ..TlsSpec::default()
            },
            "cert",
        ),
    ] {
        let e = tls.config().expect_err(&format!("{tls:?}"));
        assert_eq!(e.setting(), setting, "{e}");
    }
    // TLS settings on a plain URL are refused too.
    let plain = loadgen_engine::target::BaseUrl::parse("http://127.0.0.1:1").unwrap();
    let e = loadgen_engine::tls_client(&plain, &trusting(&pki.ca), false).unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
}
