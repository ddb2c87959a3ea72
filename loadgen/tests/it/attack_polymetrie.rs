//! The attack against the real `polymetrie` service (a child process on port 0): at a few
//! thousand requests per second the sending rate is within 1 % of the target, every request is
//! accounted for, and the service's own click counter moved by exactly the generator's ok count.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use loadgen::campaign::assemble::generator_result;
use loadgen::engine::load::Load;
use loadgen::engine::template::RequestTemplate;
use loadgen::engine::{self as attack, AttackSpec};
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
async fn a_few_thousand_per_second_on_time_and_every_click_counted() {
    let _serial = common::serial::lock().await;
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "0"]) else {
        return;
    };
    let before = clicks(svc.addr).await;
    let rate = 3000.0;
    let spec = AttackSpec {
        url: format!("http://{}", svc.addr),
        reach: Default::default(),
        load: Load::constant(rate, Duration::from_secs(3)),
        request: RequestTemplate {
            method: hyper::Method::POST,
            path: "/api/clicks".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(br#"{"site":"demo","url":"/x/{seq}"}"#),
        },
        timeout: Duration::from_secs(5),
        max_in_flight: 10_000,
        connections: None,
        max_connections: None,
    };
    let r = attack::run(&spec, &CancellationToken::new(), None)
        .await
        .unwrap();
    let after = clicks(svc.addr).await;

    assert_eq!(r.intended, 9000);
    assert_eq!(r.intended, r.sent + r.dropped);
    assert_eq!(r.sent, r.ok + r.failed);
    assert_eq!(
        r.dropped,
        0,
        "{:?}",
        generator_result(&r, "poly").invalid_reason
    );
    let failures = generator_result(&r, "poly").outcomes;
    assert_eq!(r.ok, 9000, "failures: {failures:?}");
    assert_eq!(
        after - before,
        r.ok,
        "service counter delta == generator ok"
    );
    let sent_rate = r.send_rate_rps().unwrap();
    assert!(
        (sent_rate / rate - 1.0).abs() < 0.01,
        "requests left at {sent_rate:.1} req/s for a target of {rate}"
    );
    assert!((r.achieved_rps().unwrap() / rate - 1.0).abs() < 0.01);
    let s = generator_result(&r, "poly");
    assert_eq!(s.latency_ms.count, 9000);
    assert_eq!(s.timeline.len(), 3);
    assert!(s.timeline.iter().all(|p| p.sent == 3000 && p.ok == 3000));
}
