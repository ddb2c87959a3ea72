//! `--regression` against a real `polymetrie` process on port 0: off by default (no extra
//! work counted), each kind does its work on every stored click and only there (a refused
//! click does none), the environment variable turns it on like the flag, a bad value is
//! refused at startup, and with Redis the extra round trips reach the server (its own
//! `INFO commandstats`). Observed through counters, never through timing.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hyper::StatusCode;
use support::{metric, Client, Redis, Service};

const WORK: &str = "polymetrie_regression_work_total";

/// Sends `n` good clicks and one for an unknown site; returns the work counted after them.
async fn clicks_then_work(svc: &Service, n: usize) -> Option<f64> {
    let mut c = Client::connect(svc.addr).await.unwrap();
    for i in 0..n {
        let status = c.click("a.com", &format!("/p{i}")).await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let refused = c.click("unknown.org", "/x").await.unwrap();
    assert_eq!(refused, StatusCode::NOT_FOUND);
    metric(svc.addr, WORK).await
}

#[tokio::test]
async fn off_by_default_no_extra_work_is_done() {
    let svc = Service::start(&["--sites", "a.com"]);
    assert_eq!(clicks_then_work(&svc, 3).await, Some(0.0));
}

#[tokio::test]
async fn json_revalidate_re_parses_every_stored_click_n_times() {
    let svc = Service::start(&["--sites", "a.com", "--regression", "json-revalidate:25"]);
    assert_eq!(clicks_then_work(&svc, 4).await, Some(100.0));
    // The clicks themselves are counted as ever.
    assert_eq!(support::store_clicks(svc.addr, "a.com").await, 4);
}

#[tokio::test]
async fn store_roundtrips_ask_the_store_n_more_times_per_click() {
    let svc = Service::start_with_env(
        &["--sites", "a.com"],
        &[("POLYMETRIE_REGRESSION", "store-roundtrips:3")],
    );
    assert_eq!(clicks_then_work(&svc, 5).await, Some(15.0));
}

#[test]
fn a_bad_regression_is_refused_at_startup() {
    for bad in ["json-revalidate:0", "sleep:5"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_polymetrie"))
            .args(["--listen", "127.0.0.1:0", "--regression", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("regression"), "{err}");
    }
}

/// How many times Redis on `port` ran `command` (its `INFO commandstats`; 0 when never).
fn redis_calls(port: u16, command: &str) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"INFO commandstats\r\n").unwrap();
    // A bulk string: "$<len>\r\n<text>\r\n".
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let text = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "redis closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n") {
            let len: usize = head.trim_start_matches('$').parse().unwrap();
            if rest.len() >= len {
                break rest.to_string();
            }
        }
    };
    let key = format!("cmdstat_{command}:calls=");
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn store_roundtrips_reach_redis_past_the_cache_of_known_sites() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    // Without it, a known site costs the click path no SISMEMBER (it is cached): only the
    // unknown site is looked up.
    let plain = Service::start(&["--store", &url, "--sites", "a.com"]);
    let before = redis_calls(redis.port, "sismember");
    assert_eq!(clicks_then_work(&plain, 5).await, Some(0.0));
    assert_eq!(redis_calls(redis.port, "sismember") - before, 1);
    drop(plain);
    let slowed = Service::start(&[
        "--store",
        &url,
        "--sites",
        "a.com",
        "--regression",
        "store-roundtrips:3",
    ]);
    let before = redis_calls(redis.port, "sismember");
    assert_eq!(clicks_then_work(&slowed, 5).await, Some(15.0));
    assert_eq!(redis_calls(redis.port, "sismember") - before, 15 + 1);
}
