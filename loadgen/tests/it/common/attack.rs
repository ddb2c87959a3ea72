//! Attack helpers shared by the engine tests: a plain spec against a test server, and the
//! accounting every step must satisfy (intended = sent + dropped, sent = ok + failed, failures
//! by kind summing up).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use loadgen::campaign::assemble::generator_result;
use loadgen_engine::io::IoMode;
use loadgen_engine::load::Load;
use loadgen_engine::record::StepRecord;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::{AttackSpec, Limits};

/// The I/O backends an engine test runs on: epoll, and io_uring where this process may set up
/// a ring (else a loud skip of that half, a failure under `LOADGEN_REQUIRE_EXTERNAL=1`).
pub fn backends() -> Vec<IoMode> {
    let uring = loadgen_engine::uring::Ring::new()
        .map(drop)
        .map_err(|e| format!("io_uring is refused here ({e}): only the epoll backend is tested"));
    let mut b = vec![IoMode::Epoll];
    if loadgen_testkit::policy::available(uring).is_some() {
        b.push(IoMode::Uring);
    }
    b
}

/// [`spec`] on the I/O backend `io`.
pub fn spec_on(io: IoMode, addr: SocketAddr, path: &str, rate: f64, secs: f64) -> AttackSpec {
    let mut s = spec(addr, path, rate, secs);
    s.limits.io = io;
    s
}

/// Checks the step ran on the backend it asked for, and says which in a failing assertion.
pub fn assert_ran_on(r: &StepRecord, io: IoMode) {
    assert_eq!(
        r.generator.io_backend.as_deref(),
        Some(io.name()),
        "backend"
    );
    assert_eq!(
        r.generator.io_fallback_reason, None,
        "asked for, not fallen back to"
    );
}

/// GET `path` on `addr` at `rate` for `secs`: 5 s timeout, a high in-flight cap, the default
/// connection policy.
pub fn spec(addr: SocketAddr, path: &str, rate: f64, secs: f64) -> AttackSpec {
    AttackSpec {
        url: format!("http://{addr}"),
        endpoints: Vec::new(),
        balance: Default::default(),
        tls: Default::default(),
        http2: None,
        reach: Default::default(),
        load: Load::constant(rate, Duration::from_secs_f64(secs)),
        request: RequestTemplate {
            method: hyper::Method::GET,
            path: path.into(),
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

/// Every request of the step accounted for, by count and by kind.
pub fn assert_reconciles(r: &StepRecord) {
    assert_eq!(r.intended, r.sent + r.dropped, "intended = sent + dropped");
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    let s = generator_result(r, "t");
    let o = &s.outcomes;
    let failed = o.status.values().sum::<u64>()
        + o.timeout
        + o.connect_refused
        + o.connect_timeout
        + o.reset
        + o.io_other;
    assert_eq!(failed, s.failed, "outcome classes add up to failed");
    assert_eq!(o.ok, s.ok);
    assert_eq!(o.dropped, s.dropped);
    let t = &s.timeline;
    assert_eq!(t.iter().map(|p| p.sent).sum::<u64>(), s.sent);
    assert_eq!(t.iter().map(|p| p.ok).sum::<u64>(), s.ok);
    assert_eq!(t.iter().map(|p| p.failed).sum::<u64>(), s.failed);
    assert_eq!(t.iter().map(|p| p.dropped).sum::<u64>(), s.dropped);
}
