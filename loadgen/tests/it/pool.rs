//! The connection pool under load, seen from both ends (the generator's record and the test
//! server's own connection counts): a `--max-connections` cap holds when the target is slower
//! than the rate's latency budget (requests wait for a connection instead of opening more),
//! the default pool grows past its free count only for requests that waited its grace time, so
//! a slow target still gets the open-model load on time, idle connections are closed, a fixed `--connections N` is exact, and a
//! target that closes connections after a few requests is followed. Every request is
//! accounted for; nothing here asserts speed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen_engine::{self as attack};
use tokio_util::sync::CancellationToken;

use crate::common::attack::{assert_ran_on, assert_reconciles, backends, spec, spec_on};
use crate::common::serial;
use crate::common::server::{answer, serve};

/// A target answering every request after 300 ms: 200 req/s need 60 connections.
async fn slow_target() -> (std::net::SocketAddr, Arc<crate::common::server::ConnStats>) {
    serve(|_req| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        answer(204)
    })
    .await
}

/// Runs `s` (400 requests due) and checks every one was answered OK and accounted for.
async fn all_of_400(s: &attack::AttackSpec) -> loadgen_engine::record::StepRecord {
    let r = attack::run(s, &CancellationToken::new(), None)
        .await
        .unwrap();
    assert_reconciles(&r);
    assert_eq!(
        (r.intended, r.ok, r.dropped),
        (400, 400, 0),
        "{:?}",
        r.outcomes
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_makes_requests_wait_at_the_cap_instead_of_opening_more() {
    let _serial = serial::lock().await;
    // 300 ms per answer at 200 req/s needs 60 connections; the cap is 20.
    let (addr, conns) = slow_target().await;
    let cap = 20;
    let mut s = spec(addr, "/", 200.0, 2.0);
    s.limits.max_connections = Some(cap);
    let r = all_of_400(&s).await;
    let g = &r.generator;
    assert_eq!(g.pool_cap, Some(cap as u64));
    assert_eq!(g.pool_fixed, Some(false));
    assert!(g.connections_peak.unwrap() <= cap as u64, "{g:?}");
    assert!(conns.peak() <= cap, "server saw {} at once", conns.peak());
    assert!(g.pool_cap_waits.unwrap() > 0, "{g:?}");
    // The wait is in the latency (from the due time), not hidden: the last requests waited.
    assert!(
        r.latency.max() > 1_000_000,
        "max latency {} µs",
        r.latency.max()
    );
    assert!(!r.connection_wait.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_slow_target_still_gets_every_request_about_on_time() {
    let _serial = serial::lock().await;
    // 300 ms per answer at 200 req/s needs 60 connections; the free count is 20 (rate × 100
    // ms), so the other ~40 are opened each by a request that waited the grace time (5 ms) for one.
    let (addr, conns) = slow_target().await;
    let s = spec(addr, "/", 200.0, 2.0);
    let r = all_of_400(&s).await;
    let g = &r.generator;
    assert_eq!(
        (g.pool_fixed, g.pool_free),
        (Some(false), Some(20)),
        "{g:?}"
    );
    let grown = g.connections_grown.unwrap();
    assert!(grown > 0, "{g:?}");
    assert!(g.connections_peak.unwrap() > 20, "{g:?}");
    assert!(conns.peak() > 20, "server saw {} at once", conns.peak());
    // Held back at most the grace wait (and a connect), not until a connection came free
    // (300 ms): the open-model load reached the target on time.
    let wait_p99 = r.connection_wait.value_at_quantile(0.99);
    assert!(
        wait_p99 >= 5_000,
        "requests beyond the free count waited: {wait_p99} µs"
    );
    assert!(wait_p99 < 150_000, "connection wait p99 {wait_p99} µs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_idle_for_a_second_are_closed() {
    let _serial = serial::lock().await;
    for io in backends() {
        idle_closed_on(io).await;
    }
}

async fn idle_closed_on(io: attack::io::IoMode) {
    // Slow for the first 400 ms (many connections needed), instant afterwards (one or two do).
    let t0 = Instant::now();
    let (addr, conns) = serve(move |_req| async move {
        if t0.elapsed() < Duration::from_millis(400) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answer(204)
    })
    .await;
    let r = attack::run(
        &spec_on(io, addr, "/", 200.0, 3.0),
        &CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert_ran_on(&r, io);
    assert_reconciles(&r);
    assert_eq!(r.ok, 600);
    let g = &r.generator;
    let closed = g.connections_closed_idle.unwrap();
    assert!(g.connections_peak.unwrap() >= 10, "{g:?}");
    assert!(closed >= 5, "idle connections closed: {g:?}");
    // The server saw them closed while the step was still running (the rest close at its end).
    assert!(
        conns.closed() as u64 >= closed,
        "server closed {}",
        conns.closed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_connection_count_is_exact() {
    let _serial = serial::lock().await;
    for io in backends() {
        fixed_count_on(io).await;
    }
}

async fn fixed_count_on(io: attack::io::IoMode) {
    let (addr, conns) = serve(|_req| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer(204)
    })
    .await;
    let mut s = spec_on(io, addr, "/", 200.0, 1.0);
    s.limits.connections = Some(3);
    let r = attack::run(&s, &CancellationToken::new(), None)
        .await
        .unwrap();
    assert_ran_on(&r, io);
    assert_reconciles(&r);
    assert_eq!(r.ok, 200);
    assert_eq!(r.generator.connections_opened, Some(3));
    assert_eq!(r.generator.pool_fixed, Some(true));
    // Three pooled connections, and the reachability check's one before the step.
    assert_eq!((conns.accepted(), conns.peak()), (3 + 1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_closing_connections_after_five_requests_is_followed() {
    let _serial = serial::lock().await;
    for io in backends() {
        closing_after_five_on(io).await;
    }
}

async fn closing_after_five_on(io: attack::io::IoMode) {
    let served = Arc::new(AtomicU64::new(0));
    let n = served.clone();
    let (addr, conns) = serve(move |_req| {
        let n = n.clone();
        async move {
            let mut r = answer(204);
            // Every connection is told to close after its fifth answer (keepalive_requests 5).
            if n.fetch_add(1, Ordering::SeqCst) % 5 == 4 {
                r.headers_mut()
                    .insert(hyper::header::CONNECTION, "close".parse().unwrap());
            }
            r
        }
    })
    .await;
    let mut s = spec_on(io, addr, "/", 300.0, 1.0);
    s.limits.connections = Some(1);
    let r = attack::run(&s, &CancellationToken::new(), None)
        .await
        .unwrap();
    assert_ran_on(&r, io);
    assert_reconciles(&r);
    assert_eq!((r.ok, r.failed), (300, 0), "{:?}", r.outcomes);
    assert_eq!(served.load(Ordering::SeqCst), 300);
    // One connection at a time, a new one after every fifth answer.
    assert!(
        r.generator.connections_opened.unwrap() >= 60,
        "{:?}",
        r.generator
    );
    assert!(conns.accepted() >= 60);
}
