//! The service's limits and lifecycle, against a real `polymetrie` process on port 0: bodies
//! over the size limit, slow headers and half-sent bodies cut off, overload shed with 503 (and
//! `Retry-After`) and counted exactly, the URL cap, SIGTERM draining, configuration from the
//! environment, and a taken port or a bad flag exiting 2.

mod support;

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use support::{get, metric, send_once, store_clicks, wait_metric, Client, Service, TempFile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Extra request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not json {body:?}: {e}"))
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let svc = Service::start(&["--sites", "a.com", "--body-limit", "64"]);
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    let chunk = "x".repeat(100);
    let req = format!(
        "POST /api/clicks HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let resp = read_until_close_or(&mut s, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
}

/// Reads what the server sends until it closes or `bound` passes.
async fn read_until_close_or(s: &mut TcpStream, bound: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 408") {
                    // Keep reading only for the close; a complete response is enough here.
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the server closed the connection within `bound`.
async fn closed_within(s: &mut TcpStream, bound: Duration) -> (bool, String) {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (false, String::from_utf8_lossy(&out).into_owned()),
        }
    }
}

#[tokio::test]
async fn slow_headers_and_half_sent_bodies_are_cut_off() {
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--header-timeout",
        "300ms",
        "--body-timeout",
        "300ms",
    ]);
    // Slowloris: headers that never finish.
    let start = Instant::now();
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    s.write_all(b"POST /api/clicks HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (closed, _) = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "slow headers were not cut");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );

    // Half-sent body: 408 then close.
    let start = Instant::now();
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    s.write_all(b"POST /api/clicks HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"site\":")
        .await
        .unwrap();
    let (closed, resp) = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "half-sent body was not cut: {resp}");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(start.elapsed() >= Duration::from_millis(250));

    // The service is still fine and counted nothing.
    assert_eq!(store_clicks(svc.addr, "a.com").await, 0);
}

#[tokio::test]
async fn overload_is_shed_with_503_and_counted_exactly() {
    // One slot, 30 ms of CPU per click, 20 ms queue: most of 40 simultaneous clicks are shed.
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--cost",
        "30ms",
        "--max-inflight",
        "1",
        "--queue-timeout",
        "20ms",
    ]);
    let t = support::click_load(svc.addr, "a.com", 40, 1, Duration::from_secs(30)).await;
    assert_eq!(t.ok + t.shed, 40, "{t:?}");
    assert_eq!(t.other + t.errors, 0, "{t:?}");
    assert!(t.shed > 0 && t.ok > 0, "{t:?}");
    assert_eq!(store_clicks(svc.addr, "a.com").await, t.ok);
    assert_eq!(
        metric(svc.addr, "polymetrie_shed_total").await,
        Some(t.shed as f64)
    );
    assert_eq!(
        metric(svc.addr, r#"polymetrie_clicks_total{site="a.com"}"#).await,
        Some(t.ok as f64)
    );
}

#[tokio::test]
async fn a_shed_click_gets_503_with_retry_after() {
    // One slot held by a slow click; the next one cannot wait 10 ms for it.
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--cost",
        "500ms",
        "--max-inflight",
        "1",
        "--queue-timeout",
        "10ms",
    ]);
    let addr = svc.addr;
    let slow = tokio::spawn(async move {
        Client::connect(addr)
            .await
            .unwrap()
            .click("a.com", "/slow")
            .await
    });
    wait_metric(
        addr,
        "polymetrie_inflight_clicks",
        Duration::from_secs(15),
        "slow click in its slot",
        |v| v == 1.0,
    )
    .await;
    let body = r#"{"site":"a.com","url":"/shed"}"#;
    let r = send_once(addr, Method::POST, "/api/clicks", &[], body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(slow.await.unwrap().unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(store_clicks(addr, "a.com").await, 1);
    assert_eq!(metric(addr, "polymetrie_shed_total").await, Some(1.0));
}

#[tokio::test]
async fn urls_past_the_cap_fold_into_other_in_the_store_and_the_metrics() {
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--url-label-cap",
        "3",
        "--top-urls",
        "100",
    ]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    for i in 0..10 {
        let url = format!("/u{i}");
        assert_eq!(
            c.click("a.com", &url).await.unwrap(),
            StatusCode::NO_CONTENT
        );
    }
    // A URL that got its place keeps counting under its own name.
    assert_eq!(
        c.click("a.com", "/u1").await.unwrap(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        metric(
            svc.addr,
            r#"polymetrie_url_clicks_total{site="a.com",url="__other__"}"#
        )
        .await,
        Some(7.0)
    );
    let (_, body) = c.get("/metrics").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(
        text.matches("polymetrie_url_clicks_total{").count(),
        4,
        "{text}"
    );
    // The store keeps the same three URLs and the overflow; every click is in the total once.
    let (_, body) = c.get("/api/sites/a.com/stats").await;
    assert_eq!(
        json(&body),
        serde_json::json!({"site":"a.com","clicks":11,"urls":[
            {"url":"__other__","clicks":7},
            {"url":"/u1","clicks":2},
            {"url":"/u0","clicks":1},
            {"url":"/u2","clicks":1},
        ]})
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut svc = Service::start(&["--sites", "a.com"]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(c.click("a.com", "/").await.unwrap(), StatusCode::NO_CONTENT);
    svc.sigterm();
    let st = support::wait_exit(&mut svc.child, Duration::from_secs(15)).expect("did not exit");
    assert!(st.success(), "{st:?}");
    assert!(
        TcpStream::connect(svc.addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn environment_variables_configure_the_service() {
    let svc = Service::start_with_env(
        &[],
        &[
            ("POLYMETRIE_LISTEN", "127.0.0.1:0"),
            ("POLYMETRIE_ADMIN_LISTEN", "127.0.0.1:0"),
            ("POLYMETRIE_SITES", "env.one, env.two,"),
            ("POLYMETRIE_BODY_LIMIT", "32"),
        ],
    );
    assert!(svc.admin.is_some());
    let (_, body) = get(svc.addr, "/api/sites").await;
    assert_eq!(
        json(&body)["sites"],
        serde_json::json!(["env.one", "env.two"])
    );
    let mut c = Client::connect(svc.addr).await.unwrap();
    let long = format!(r#"{{"site":"env.one","url":"/{}"}}"#, "x".repeat(64));
    let (s, _) = c.request(Method::POST, "/api/clicks", long).await.unwrap();
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn a_taken_port_or_a_bad_flag_exits_2_with_a_one_line_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let empty = TempFile::new("empty-token", " \n");
    let spaced = TempFile::new("spaced-token", "two words\n");
    let missing = format!("{}.missing", empty.arg());
    let cases: [(Vec<&str>, Headers, &str); 6] = [
        (vec!["--listen", addr.as_str()], &[], "cannot bind"),
        (vec!["--store", "bogus://x"], &[], "unknown store"),
        (
            vec!["--admin-token-file", &missing],
            &[],
            "cannot read the admin token file",
        ),
        (
            vec![],
            &[("POLYMETRIE_ADMIN_TOKEN_FILE", &missing)],
            "cannot read the admin token file",
        ),
        (vec!["--admin-token-file", empty.arg()], &[], "is empty"),
        (
            vec!["--admin-token-file", spaced.arg()],
            &[],
            "printable ASCII",
        ),
    ];
    for (args, envs, cause) in cases {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_polymetrie"));
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let out = cmd.args(&args).envs(envs.iter().copied()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}");
        assert!(
            out.stdout.is_empty(),
            "no startup line expected: {:?}",
            out.stdout
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // The cause is the first line; clap adds a usage hint after its own parse errors.
        assert!(err.lines().next().unwrap().contains(cause), "{err}");
        if !cause.contains("unknown store") {
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
        assert!(!err.contains("two words"), "the token was echoed: {err}");
    }
}
