//! The attack against the real `polymetrie` service (a child process on port 0) at a few
//! thousand requests per second: every request is accounted for (intended = sent + dropped,
//! sent = ok + failed, per second too) and the service's own click counter moved by exactly the
//! generator's ok count. How fast requests left and were answered is the benchmarks' business
//! (`bench/engine.sh`), not a timed test's on a shared machine.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use loadgen::campaign::assemble::generator_result;
use loadgen_engine::load::Load;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::{self as attack, AttackSpec, Limits};
use tokio_util::sync::CancellationToken;

use crate::common::{self, polymetrie::Polymetrie};

/// `GET /api/sites/demo/stats` → `clicks`.
async fn clicks(addr: SocketAddr) -> u64 {
    let mut send = common::http::connect(addr).await.unwrap();
    let req = hyper::Request::get("/api/sites/demo/stats")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("stats answered in time")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["clicks"].as_u64().expect("clicks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_thousand_per_second_every_request_accounted_and_every_click_counted() {
    let _serial = common::serial::lock().await;
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "0"]) else {
        return;
    };
    let before = clicks(svc.addr).await;
    let rate = 3000.0;
    let spec = AttackSpec {
        url: format!("http://{}", svc.addr),
        endpoints: Vec::new(),
        balance: Default::default(),
        tls: Default::default(),
        http2: None,
        reach: Default::default(),
        load: Load::constant(rate, Duration::from_secs(3)),
        request: RequestTemplate {
            method: hyper::Method::POST,
            path: "/api/clicks".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(br#"{"site":"demo","url":"/x/{seq}"}"#),
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
    };
    let r = attack::run(&spec, &CancellationToken::new(), None)
        .await
        .unwrap();
    let after = clicks(svc.addr).await;

    assert_eq!(r.intended, 9000, "the schedule is exact");
    assert_eq!(r.intended, r.sent + r.dropped, "intended = sent + dropped");
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    assert!(r.ok > 0, "{:?}", generator_result(&r, "poly").outcomes);
    assert_eq!(
        after - before,
        r.ok,
        "service counter delta == generator ok"
    );
    let s = generator_result(&r, "poly");
    let o = &s.outcomes;
    let failed = o.status.values().sum::<u64>()
        + o.timeout
        + o.connect_refused
        + o.connect_timeout
        + o.reset
        + o.io_other;
    assert_eq!((o.ok, failed, o.dropped), (s.ok, s.failed, s.dropped));
    // Every answer, of any status, and every timeout has a latency; connection errors do not.
    let with_latency = o.ok + o.status.values().sum::<u64>() + o.timeout;
    assert_eq!(s.latency_ms.count, with_latency);
    assert_eq!(s.timeline.len(), 3);
    for (i, p) in s.timeline.iter().enumerate() {
        assert_eq!(
            p.sent + p.dropped,
            3000,
            "second {i}: every due request, sent or dropped"
        );
        assert_eq!(p.sent, p.ok + p.failed, "second {i}");
    }
}
