//! Every endpoint and every bad-input case, against a real `polymetrie` process on port 0
//! with the memory store: registration behind the admin token, URL validation and `Allow` on
//! 405. Limits (body size, slow clients, overload, the URL cap) and the process's lifecycle are
//! in `limits.rs`.

mod support;

use hyper::{Method, StatusCode};
use support::{get, send_once, store_clicks, Client, Service, TempFile};

/// Extra request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not json {body:?}: {e}"))
}

#[tokio::test]
async fn clicks_sites_stats_and_metrics_round_trip() {
    let token = TempFile::new("token", "round-trip-token\n");
    let svc = Service::start(&[
        "--sites",
        "a.com,b.org",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token-file",
        token.arg(),
    ]);
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
    let auth = [("authorization", "Bearer round-trip-token")];
    let r = c
        .send(Method::POST, "/api/sites", &auth, r#"{"site":"new.net"}"#)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.json()["created"], true);
    let r = c
        .send(Method::POST, "/api/sites", &auth, r#"{"site":"new.net"}"#)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["created"], false);
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
    let token = TempFile::new("token", "bad-input-token");
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--body-limit",
        "8192",
        "--admin-token-file",
        token.arg(),
    ]);
    let click = |url: &str| serde_json::json!({ "site": "a.com", "url": url }).to_string();
    let auth: Headers = &[("authorization", "Bearer bad-input-token")];
    let cases: Vec<(Method, &str, Headers, Vec<u8>, StatusCode)> = vec![
        (
            Method::POST,
            "/api/clicks",
            &[],
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            br#"{"site":"a.com"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            br#"{"url":"/x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click("").into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            br#"{"site":"","url":"/x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            br#"{"site":1,"url":"/x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            b"{\"site\":\"a.com\",\"url\":\"/\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        // URLs: at most 2,048 bytes (the issue's 5,000-byte URL included), no control characters.
        (
            Method::POST,
            "/api/clicks",
            &[],
            click(&format!("/{}", "x".repeat(2048))).into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click(&format!("/{}", "x".repeat(4999))).into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click("/a\nb").into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click("/a\u{0}b").into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click("/a\u{7f}").into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click("/a\u{9b}").into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            br#"{"site":"nope.com","url":"/x"}"#.to_vec(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/clicks",
            &[],
            click(&"x".repeat(9000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            "/api/clicks",
            &[],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::PUT,
            "/api/clicks",
            &[],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/api/sites",
            &[],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/sites/a.com/stats",
            &[],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/metrics",
            &[],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/sites",
            auth,
            br#"{"site":""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/sites",
            auth,
            br#"{"site":"has space"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/sites",
            auth,
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/sites/nope.com/stats",
            &[],
            vec![],
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/nothing/here",
            &[],
            vec![],
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, headers, body, want) in &cases {
        // 413 may close the connection: use a fresh one per case.
        let r = send_once(svc.addr, method.clone(), path, headers, body.clone()).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(r.status, *want, "{method} {path} {shown:?} -> {r:?}");
        assert!(r.json()["error"].is_string(), "{method} {path}: {r:?}");
    }
    // None of them counted; the longest valid URL is.
    assert_eq!(store_clicks(svc.addr, "a.com").await, 0);
    let longest = format!("/{}", "x".repeat(2047));
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(
        c.click("a.com", &longest).await.unwrap(),
        StatusCode::NO_CONTENT
    );
    let (_, body) = c.get("/api/sites/a.com/stats").await;
    assert_eq!(json(&body)["urls"][0]["url"], longest);
    assert_eq!(store_clicks(svc.addr, "a.com").await, 1);
}

#[tokio::test]
async fn every_405_names_the_allowed_methods() {
    let svc = Service::start(&["--sites", "a.com"]);
    for (method, path, allow) in [
        (Method::GET, "/api/clicks", "POST"),
        (Method::DELETE, "/api/clicks", "POST"),
        (Method::PUT, "/api/sites", "GET, HEAD, POST"),
        (Method::POST, "/api/sites/a.com/stats", "GET, HEAD"),
        (Method::DELETE, "/metrics", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::PUT, "/readyz", "GET, HEAD"),
    ] {
        let r = send_once(svc.addr, method.clone(), path, &[], "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        // What Allow promises works (HEAD included).
        for m in allow.split(", ").filter(|m| *m != "POST") {
            let r = send_once(svc.addr, m.parse().unwrap(), path, &[], "").await;
            assert_eq!(r.status, StatusCode::OK, "{m} {path}: {r:?}");
        }
    }
}

#[tokio::test]
async fn site_registration_needs_the_admin_token_and_never_logs_it() {
    let token = TempFile::new("token", "  tok-3f9a.b_c~d  \n");
    let svc = Service::start_logging(&["--sites", "a.com", "--admin-token-file", token.arg()]);
    let body = r#"{"site":"x.org"}"#;
    let attempts: [(Headers, StatusCode); 6] = [
        (&[], StatusCode::UNAUTHORIZED),
        (
            &[("authorization", "Basic dG9rLTNmOWE=")],
            StatusCode::UNAUTHORIZED,
        ),
        (&[("authorization", "Bearer")], StatusCode::UNAUTHORIZED),
        (
            &[("authorization", "Bearer tok-3f9a.b_c~")],
            StatusCode::FORBIDDEN,
        ),
        (
            &[("authorization", "Bearer tok-3f9a.b_c~dd")],
            StatusCode::FORBIDDEN,
        ),
        (
            &[("authorization", "Bearer TOK-3F9A.B_C~D")],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (headers, want) in attempts {
        let r = send_once(svc.addr, Method::POST, "/api/sites", headers, body).await;
        assert_eq!(r.status, want, "{headers:?}: {r:?}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(
                r.header("www-authenticate"),
                Some(r#"Bearer realm="polymetrie""#)
            );
        }
        // Refused attempts register nothing: the site stays unknown.
        let r = send_once(
            svc.addr,
            Method::POST,
            "/api/clicks",
            &[],
            r#"{"site":"x.org","url":"/"}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    // The token as written in the file, without its surrounding whitespace; scheme in any case.
    for scheme in ["Bearer", "bearer"] {
        let auth = format!("{scheme} tok-3f9a.b_c~d");
        let r = send_once(
            svc.addr,
            Method::POST,
            "/api/sites",
            &[("authorization", &auth)],
            body,
        )
        .await;
        assert!(r.status.is_success(), "{r:?}");
    }
    let (_, sites) = get(svc.addr, "/api/sites").await;
    assert_eq!(json(&sites)["sites"], serde_json::json!(["a.com", "x.org"]));
    let log = svc.log_text();
    assert!(
        log.contains("admin token"),
        "startup log names the mode: {log}"
    );
    assert!(!log.contains("tok-3f9a"), "the token was logged:\n{log}");
}

#[tokio::test]
async fn without_a_token_file_registration_over_http_is_off_and_reads_stay_public() {
    let svc = Service::start(&["--sites", "a.com"]);
    for headers in [&[][..], &[("authorization", "Bearer guess")][..]] {
        let r = send_once(
            svc.addr,
            Method::POST,
            "/api/sites",
            headers,
            r#"{"site":"x.org"}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains("disabled")
                && msg.contains("--admin-token-file")
                && msg.contains("--sites"),
            "{msg}"
        );
    }
    let (s, body) = get(svc.addr, "/api/sites").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["sites"], serde_json::json!(["a.com"]));
    assert_eq!(
        get(svc.addr, "/api/sites/a.com/stats").await.0,
        StatusCode::OK
    );
    assert_eq!(get(svc.addr, "/metrics").await.0, StatusCode::OK);
}
