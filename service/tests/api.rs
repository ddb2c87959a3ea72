//! Every endpoint and every bad-input case, against a real `polymetrie` process on port 0
//! with the memory store.

mod support;

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use support::{get, metric, store_clicks, Client, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not json {body:?}: {e}"))
}

#[tokio::test]
async fn clicks_sites_stats_and_metrics_round_trip() {
    let svc = Service::start(&["--sites", "a.com,b.org", "--admin-listen", "127.0.0.1:0"]);
    let mut c = Client::connect(svc.addr).await.unwrap();

    let (s, body) = c.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["status"], "ok");
    assert_eq!(c.get("/readyz").await.0, StatusCode::OK);

    let (s, body) = c.get("/api/sites").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["sites"], serde_json::json!(["a.com", "b.org"]));

    for url in ["/x", "/x", "/y"] {
        assert_eq!(c.click("a.com", url).await.unwrap(), StatusCode::NO_CONTENT);
    }
    let (s, body) = c.get("/api/sites/a.com/stats").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        json(&body),
        serde_json::json!({"site":"a.com","clicks":3,"urls":[{"url":"/x","clicks":2},{"url":"/y","clicks":1}]})
    );
    assert_eq!(store_clicks(svc.addr, "b.org").await, 0);

    // A new site: 201, then 200 on re-registration; it is listed, countable and in metrics.
    let (s, body) = c.post("/api/sites", r#"{"site":"new.net"}"#).await;
    assert_eq!(s, StatusCode::CREATED, "{body:?}");
    assert_eq!(json(&body)["created"], true);
    let (s, body) = c.post("/api/sites", r#"{"site":"new.net"}"#).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["created"], false);
    assert_eq!(
        c.click("new.net", "/").await.unwrap(),
        StatusCode::NO_CONTENT
    );
    let (_, body) = c.get("/api/sites").await;
    assert_eq!(
        json(&body)["sites"],
        serde_json::json!(["a.com", "b.org", "new.net"])
    );

    // The admin listener serves the same routes and the same replica's state.
    let admin = svc.admin.expect("admin address in the startup line");
    assert_ne!(admin, svc.addr);
    assert_eq!(store_clicks(admin, "a.com").await, 3);
    let (s, body) = get(admin, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    for needle in [
        r#"polymetrie_clicks_total{site="a.com"} 3"#,
        r#"polymetrie_clicks_total{site="new.net"} 1"#,
        r#"polymetrie_clicks_total{site="b.org"} 0"#,
        r#"polymetrie_url_clicks_total{site="a.com",url="/x"} 2"#,
        r#"polymetrie_http_requests_total{route="/api/clicks",status="204"} 4"#,
        "polymetrie_http_request_duration_seconds_bucket",
        "polymetrie_shed_total 0",
        "process_cpu_seconds_total ",
        "# EOF",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[tokio::test]
async fn bad_input_gets_the_documented_status() {
    let svc = Service::start(&["--sites", "a.com", "--body-limit", "1024"]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    let cases: &[(Method, &str, Vec<u8>, StatusCode)] = &[
        (
            Method::POST,
            "/api/clicks",
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            br#"{"site":"a.com"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            br#"{"url":"/x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            br#"{"site":"a.com","url":""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            br#"{"site":1,"url":"/x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            b"{\"site\":\"a.com\",\"url\":\"/\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            br#"{"site":"nope.com","url":"/x"}"#.to_vec(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/clicks",
            format!(r#"{{"site":"a.com","url":"{}"}}"#, "x".repeat(2000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            "/api/clicks",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::PUT,
            "/api/clicks",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/api/sites",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/sites/a.com/stats",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/metrics",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/sites",
            br#"{"site":""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/sites",
            br#"{"site":"has space"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/sites",
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/sites/nope.com/stats",
            vec![],
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/nothing/here", vec![], StatusCode::NOT_FOUND),
    ];
    for (method, path, body, want) in cases {
        // 413 may close the connection: use a fresh one per case.
        let mut c1 = Client::connect(svc.addr).await.unwrap();
        let (got, resp) = c1
            .request(method.clone(), path, body.clone())
            .await
            .unwrap();
        assert_eq!(
            got,
            *want,
            "{method} {path} {:?} -> {resp:?}",
            String::from_utf8_lossy(body)
        );
    }
    // None of them counted.
    assert_eq!(store_clicks(svc.addr, "a.com").await, 0);
    assert_eq!(c.get("/healthz").await.0, StatusCode::OK);
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
async fn url_labels_are_capped_in_metrics_but_not_in_stats() {
    let svc = Service::start(&["--sites", "a.com", "--url-label-cap", "3"]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    for i in 0..10 {
        let url = format!("/u{i}");
        assert_eq!(
            c.click("a.com", &url).await.unwrap(),
            StatusCode::NO_CONTENT
        );
    }
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
    assert_eq!(store_clicks(svc.addr, "a.com").await, 10);
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
    for args in [
        vec!["--listen", addr.as_str()],
        vec!["--listen", "127.0.0.1:0", "--store", "bogus://x"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_polymetrie"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            out.stdout.is_empty(),
            "no startup line expected: {:?}",
            out.stdout
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot bind") || err.contains("unknown store"),
            "{args:?}: {err}"
        );
    }
}
