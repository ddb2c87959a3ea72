//! Exactness on the memory store: thousands of concurrent clicks over many connections, some
//! of them shed, and the counter grows by exactly the number of 2xx answers.

mod support;

use std::time::Duration;

use support::{click_load, metric, store_clicks, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_counter_grows_by_exactly_the_acknowledged_clicks() {
    // A tiny cost and few slots with a short queue make part of the load shed, so the test
    // also proves that a 503 is never counted.
    let svc = Service::start(&[
        "--sites",
        "a.com,b.org",
        "--cost",
        "200us",
        "--max-inflight",
        "4",
        "--queue-timeout",
        "25ms",
    ]);
    let (a, b) = tokio::join!(
        click_load(svc.addr, "a.com", 48, 60, Duration::from_secs(40)),
        click_load(svc.addr, "b.org", 16, 60, Duration::from_secs(40)),
    );
    eprintln!("a.com {a:?}\nb.org {b:?}");
    assert_eq!(a.other + b.other + a.errors + b.errors, 0, "{a:?} {b:?}");
    // Every request accounted for, per site: answered 204 or 503, nothing lost or else.
    assert_eq!(a.ok + a.shed, 48 * 60, "{a:?}");
    assert_eq!(b.ok + b.shed, 16 * 60, "{b:?}");
    // How many got through depends on the machine (that is for benchmarks); that some did
    // keeps the counts below from being vacuous.
    assert!(a.ok > 0 && b.ok > 0, "{a:?} {b:?}");
    assert_eq!(store_clicks(svc.addr, "a.com").await, a.ok);
    assert_eq!(store_clicks(svc.addr, "b.org").await, b.ok);
    assert_eq!(
        metric(svc.addr, r#"polymetrie_clicks_total{site="a.com"}"#).await,
        Some(a.ok as f64)
    );
    assert_eq!(
        metric(svc.addr, r#"polymetrie_clicks_total{site="b.org"}"#).await,
        Some(b.ok as f64)
    );
    assert_eq!(
        metric(svc.addr, "polymetrie_shed_total").await,
        Some((a.shed + b.shed) as f64)
    );
    // The service's own request counters tell the same story.
    let answered = |status: u16| {
        format!("polymetrie_http_requests_total{{route=\"/api/clicks\",status=\"{status}\"}}")
    };
    assert_eq!(
        metric(svc.addr, &answered(204)).await,
        Some((a.ok + b.ok) as f64)
    );
    assert_eq!(
        metric(svc.addr, &answered(503)).await.unwrap_or(0.0),
        (a.shed + b.shed) as f64
    );
}
