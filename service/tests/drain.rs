//! The graceful shutdown, observed from outside: clicks held in flight across SIGTERM all get
//! their 204 and are counted, `/readyz` says 503 while they are in flight, no new connection
//! or new work is taken, and the process exits 0 — on the memory store (the Redis variant is
//! in `redis.rs`).

mod support;

use support::Service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_held_clicks_finish_with_204_while_readyz_says_503() {
    // A cost and fewer slots than clicks: once released, the clicks queue and burn their cost
    // during the drain, so the drain really waits for work, not just for sockets.
    let mut svc = Service::start(&[&["--sites", "a.com"][..], support::HELD_CLICK_ARGS].concat());
    let ok = support::hold_clicks_through_sigterm(&mut svc, "a.com", 6).await;
    assert_eq!(ok, 6);
}
