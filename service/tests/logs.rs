//! `--log-format json` on a real `polymetrie` process: every line it writes on stderr — at
//! `RUST_LOG=trace`, through a click, bad requests and a SIGTERM drain — is one JSON object
//! with the stable keys (docs/logs.md) and the replica's name, and its startup line (in its log
//! line form) is still read by the test kit's parser (`Service::start_logging` reads it).

mod support;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use hyper::{Method, StatusCode};
use support::{send_once, wait_exit, Client, Service};

/// Bound on the drain after SIGTERM (nothing is in flight by then).
const EXIT_BOUND: Duration = Duration::from_secs(15);
const REPLICA: &str = "polymetrie-logs-7c9d";

#[tokio::test]
async fn every_stderr_line_is_a_json_object_with_the_stable_keys_and_the_replica() {
    let mut svc = Service::start_logging(&[
        "--sites",
        "a.com",
        "--log-format",
        "json",
        "--replica-name",
        REPLICA,
    ]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(
        c.click("a.com", "/p/1").await.unwrap(),
        StatusCode::NO_CONTENT
    );
    drop(c);
    let bad = send_once(svc.addr, Method::POST, "/api/clicks", &[], "{\"site\":").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed_request(svc.addr), Some(400));

    svc.sigterm();
    let status = wait_exit(&mut svc.child, EXIT_BOUND).expect("exited after SIGTERM");
    assert!(status.success(), "{status:?}");

    let log = svc.log_text();
    let lines: Vec<serde_json::Map<String, serde_json::Value>> = log.lines().map(parse).collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    for want in [
        "polymetrie listening",
        "SIGTERM: draining",
        "polymetrie stopped",
    ] {
        assert!(messages.contains(&want), "no {want:?} in\n{log}");
    }
    // The malformed request is logged at debug with its error as a field.
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "debug" && l.contains_key("error")),
        "no debug line with an error field in\n{log}"
    );
}

/// One stderr line: a JSON object with `time` (RFC 3339), `level`, `message`, `target` and
/// the replica, no field nested under "fields".
fn parse(line: &str) -> serde_json::Map<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str(line) else {
        panic!("not one JSON object: {line:?}");
    };
    let text = |k: &str| {
        m.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    humantime::parse_rfc3339(text("time")).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        ["error", "warn", "info", "debug", "trace"].contains(&text("level")),
        "{line}"
    );
    text("message");
    assert!(!text("target").is_empty(), "{line}");
    assert_eq!(text("replica"), REPLICA, "{line}");
    assert!(!m.contains_key("fields"), "{line}");
    m
}

/// Sends bytes that are not HTTP and returns the status the service answered, if any.
fn malformed_request(addr: std::net::SocketAddr) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}
