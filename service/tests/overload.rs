//! Bad input under overload: while one slot is saturated by good clicks at a high cost, a flood
//! of malformed, oversized, bad-URL and unauthorised requests is answered with its 4xx without
//! waiting behind the queued good clicks, and everything is accounted for afterwards.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use support::{metric, send_once, store_clicks, wait_metric, Client, Service, Tally, TempFile};

/// Good clicks kept waiting for the single slot before the flood starts.
const QUEUED_BEFORE_FLOOD: f64 = 10.0;
/// A bad request that waited in the click queue would see about as many good clicks finish as
/// were queued ahead of it (the queue is FIFO); one answered at once sees at most a couple.
const MAX_GOOD_DURING_ONE_BAD: u64 = 8;
/// Hang bound on any single request (not a speed requirement).
const HANG_BOUND: Duration = Duration::from_secs(30);

/// `connections` keep-alive connections clicking until `stop`, each at most `MAX_PER_CONN`
/// clicks within `HANG_BOUND`; `done` counts the 204s as they arrive.
async fn good_load(
    addr: std::net::SocketAddr,
    connections: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> (u64, Tally) {
    const MAX_PER_CONN: usize = 500;
    let deadline = tokio::time::Instant::now() + HANG_BOUND;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await.unwrap();
            let (mut sent, mut t) = (0u64, Tally::default());
            for i in 0..MAX_PER_CONN {
                if stop.load(Ordering::Relaxed) || tokio::time::Instant::now() > deadline {
                    break;
                }
                sent += 1;
                match client
                    .click("a.com", &format!("/good/{}", (c + i) % 5))
                    .await
                {
                    Ok(StatusCode::NO_CONTENT) => {
                        t.ok += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(StatusCode::SERVICE_UNAVAILABLE) => t.shed += 1,
                    Ok(_) => t.other += 1,
                    Err(_) => {
                        t.errors += 1;
                        break;
                    }
                }
            }
            (sent, t)
        }));
    }
    let (mut sent, mut total) = (0, Tally::default());
    for task in tasks {
        let (s, t) = task.await.unwrap();
        sent += s;
        total.ok += t.ok;
        total.shed += t.shed;
        total.other += t.other;
        total.errors += t.errors;
    }
    (sent, total)
}

struct Bad {
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    want: StatusCode,
    route: &'static str,
}

fn bad(method: Method, path: &'static str, body: String, want: StatusCode) -> Bad {
    let route = if path == "/api/sites" {
        "/api/sites"
    } else {
        "/api/clicks"
    };
    Bad {
        method,
        path,
        headers: vec![],
        body,
        want,
        route,
    }
}

fn bad_requests() -> Vec<Bad> {
    let click = |url: &str| serde_json::json!({ "site": "a.com", "url": url }).to_string();
    let mut wrong_token = bad(
        Method::POST,
        "/api/sites",
        r#"{"site":"evil.com"}"#.into(),
        StatusCode::FORBIDDEN,
    );
    wrong_token.headers = vec![("authorization", "Bearer not-the-token")];
    vec![
        bad(
            Method::POST,
            "/api/clicks",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            r#"{"site":"a.com"}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            r#"{"site":1,"url":"/"}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            click(&format!("/{}", "x".repeat(2048))),
            StatusCode::BAD_REQUEST,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            click("/a\nb"),
            StatusCode::BAD_REQUEST,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            serde_json::json!({ "site": "nope.com", "url": "/" }).to_string(),
            StatusCode::NOT_FOUND,
        ),
        bad(
            Method::POST,
            "/api/clicks",
            click(&"x".repeat(5000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        bad(
            Method::GET,
            "/api/clicks",
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        bad(
            Method::POST,
            "/api/sites",
            r#"{"site":"evil.com"}"#.into(),
            StatusCode::UNAUTHORIZED,
        ),
        wrong_token,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_at_once_while_good_clicks_queue() {
    let token = TempFile::new("token", "flood-token\n");
    let svc = Service::start(&[
        "--sites",
        "a.com",
        "--cost",
        "20ms",
        "--max-inflight",
        "1",
        "--queue-timeout",
        "60s",
        "--body-limit",
        "4096",
        "--admin-token-file",
        token.arg(),
    ]);
    let addr = svc.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let good_done = Arc::new(AtomicU64::new(0));
    let good = tokio::spawn(good_load(addr, 16, stop.clone(), good_done.clone()));
    wait_metric(
        addr,
        "polymetrie_queued_clicks",
        HANG_BOUND,
        "good clicks queueing",
        |v| v >= QUEUED_BEFORE_FLOOD,
    )
    .await;

    // The flood: every kind of bad request, several rounds, from four clients at once.
    const FLOODERS: usize = 4;
    const ROUNDS: usize = 5;
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        let good_done = good_done.clone();
        flooders.push(tokio::spawn(async move {
            let mut answered = BTreeMap::<(&str, u16), u64>::new();
            for _ in 0..ROUNDS {
                for b in bad_requests() {
                    let before = good_done.load(Ordering::Relaxed);
                    let r = tokio::time::timeout(
                        HANG_BOUND,
                        send_once(addr, b.method.clone(), b.path, &b.headers, b.body.clone()),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("{} {} hung", b.method, b.path));
                    let during = good_done.load(Ordering::Relaxed) - before;
                    assert_eq!(r.status, b.want, "{} {}: {r:?}", b.method, b.path);
                    assert!(
                        during < MAX_GOOD_DURING_ONE_BAD,
                        "{} {} waited behind the good clicks: {during} of them finished first",
                        b.method,
                        b.path
                    );
                    *answered.entry((b.route, r.status.as_u16())).or_default() += 1;
                }
            }
            answered
        }));
    }
    let mut answered = BTreeMap::<(&str, u16), u64>::new();
    for f in flooders {
        for (k, n) in f.await.unwrap() {
            *answered.entry(k).or_default() += n;
        }
    }
    // The overload lasted through the whole flood: good clicks are still queueing now.
    assert!(
        !good.is_finished(),
        "the good load ended before the flood did"
    );
    let still_queued = metric(addr, "polymetrie_queued_clicks").await.unwrap();
    assert!(still_queued >= 1.0, "no good click queued after the flood");

    stop.store(true, Ordering::Relaxed);
    let (sent, t) = good.await.unwrap();
    eprintln!("good: sent {sent} {t:?}; bad: {answered:?}");
    // Every good click accounted for: none shed (the queue timeout is far), none failed.
    assert_eq!(t.ok, sent, "{t:?}");
    assert_eq!(store_clicks(addr, "a.com").await, t.ok);
    assert_eq!(
        metric(addr, r#"polymetrie_clicks_total{site="a.com"}"#).await,
        Some(t.ok as f64)
    );
    // Every bad answer is in the service's own request counters, and nothing else is.
    assert_eq!(
        metric(
            addr,
            r#"polymetrie_http_requests_total{route="/api/clicks",status="204"}"#
        )
        .await,
        Some(t.ok as f64)
    );
    for ((route, status), n) in &answered {
        let series =
            format!("polymetrie_http_requests_total{{route=\"{route}\",status=\"{status}\"}}");
        assert_eq!(metric(addr, &series).await, Some(*n as f64), "{series}");
    }
    let total_bad: u64 = answered.values().sum();
    assert_eq!(total_bad, (FLOODERS * ROUNDS * bad_requests().len()) as u64);
    // The registration attempts registered nothing.
    let (_, body) = support::get(addr, "/api/sites").await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["sites"],
        serde_json::json!(["a.com"])
    );
}
