//! The Redis store against a real `redis-server` started on a free port: exactness under
//! concurrency, two replicas sharing one port (SO_REUSEPORT) and one Redis, the URL cap held
//! by concurrent replicas, clicks held in flight through SIGTERM, SIGTERM under load counting
//! exactly the acknowledged clicks, and the outage / recovery cycle.

mod support;

use std::time::{Duration, Instant};

use hyper::StatusCode;
use support::{click_load, get, metric, send_once, store_clicks, Client, Redis, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_counter_grows_by_exactly_the_acknowledged_clicks() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let svc = Service::start(&[
        "--store",
        &url,
        "--sites",
        "a.com",
        "--max-inflight",
        "4",
        "--queue-timeout",
        "1s",
    ]);
    let t = click_load(svc.addr, "a.com", 48, 50, Duration::from_secs(40)).await;
    eprintln!("{t:?}");
    assert_eq!(t.other + t.errors, 0, "{t:?}");
    // Every request accounted for; how many got through is for benchmarks, that some did keeps
    // the equalities below from being vacuous.
    assert_eq!(t.ok + t.shed, 48 * 50);
    assert!(t.ok > 0, "{t:?}");
    assert_eq!(store_clicks(svc.addr, "a.com").await, t.ok);
    assert_eq!(
        metric(svc.addr, r#"polymetrie_clicks_total{site="a.com"}"#).await,
        Some(t.ok as f64)
    );
    assert_eq!(
        metric(svc.addr, "polymetrie_shed_total").await,
        Some(t.shed as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_port_count_exactly_together() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--store",
        url.as_str(),
        "--sites",
        "a.com",
        "--listen",
        listen.as_str(),
        "--reuse-port",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let r1 = Service::start(&args);
    let r2 = Service::start(&args);
    assert_eq!(r1.addr, r2.addr);
    // Many short connections so the kernel spreads them over both replicas.
    let t = click_load(r1.addr, "a.com", 60, 30, Duration::from_secs(40)).await;
    let mut spread = Vec::new();
    for r in [&r1, &r2] {
        let admin = r.admin.unwrap();
        spread.push(
            metric(admin, r#"polymetrie_clicks_total{site="a.com"}"#)
                .await
                .unwrap_or(0.0) as u64,
        );
    }
    eprintln!("{t:?} per replica {spread:?}");
    assert_eq!(t.other + t.errors + t.shed, 0, "{t:?}");
    assert!(
        spread.iter().all(|&n| n > 0),
        "one replica got nothing: {spread:?}"
    );
    assert_eq!(spread.iter().sum::<u64>(), t.ok);
    // Both replicas read the same shared total.
    assert_eq!(store_clicks(r1.admin.unwrap(), "a.com").await, t.ok);
    assert_eq!(store_clicks(r2.admin.unwrap(), "a.com").await, t.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_past_the_cap_fold_into_other_even_from_concurrent_replicas() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let args = [
        "--store",
        url.as_str(),
        "--sites",
        "a.com",
        "--url-label-cap",
        "5",
        "--top-urls",
        "1000",
    ];
    let (r1, r2) = (Service::start(&args), Service::start(&args));
    // 40 connections per replica race to click 200 distinct URLs: only 5 may get a place.
    let mut tasks = Vec::new();
    for (r, addr) in [(0, r1.addr), (1, r2.addr)] {
        for c in 0..40 {
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await.unwrap();
                let mut ok = 0u64;
                for i in 0..5 {
                    let url = format!("/r{r}/c{c}/{i}");
                    if client.click("a.com", &url).await.unwrap() == StatusCode::NO_CONTENT {
                        ok += 1;
                    }
                }
                ok
            }));
        }
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 400);
    let (_, body) = get(r1.addr, "/api/sites/a.com/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let urls = stats["urls"].as_array().unwrap();
    let own: Vec<&serde_json::Value> = urls.iter().filter(|u| u["url"] != "__other__").collect();
    assert_eq!(own.len(), 5, "{stats}");
    assert!(own.iter().all(|u| u["clicks"] == 1), "{stats}");
    let other = urls.iter().find(|u| u["url"] == "__other__").unwrap();
    assert_eq!(other["clicks"], 395, "{stats}");
    // Each click once in the total, whatever its URL entry.
    assert_eq!(stats["clicks"], 400);
    // The replicas' labels follow the store: the 5 own URLs between them, the rest __other__.
    let mut labelled = 0.0;
    for r in [&r1, &r2] {
        let (_, body) = get(r.addr, "/metrics").await;
        let text = String::from_utf8(body.to_vec()).unwrap();
        labelled += text
            .lines()
            .filter(|l| l.starts_with("polymetrie_url_clicks_total{") && !l.contains("__other__"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>();
    }
    assert_eq!(labelled, 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stores_every_held_click_exactly_once_on_redis() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let mut svc = Service::start(
        &[
            &["--store", url.as_str(), "--sites", "a.com"][..],
            support::HELD_CLICK_ARGS,
        ]
        .concat(),
    );
    let ok = support::hold_clicks_through_sigterm(&mut svc, "a.com", 8).await;
    assert_eq!(ok, 8);
    // After the exit, Redis holds exactly the acknowledged clicks (read through a fresh replica).
    let after = Service::start(&["--store", &url]);
    assert_eq!(store_clicks(after.addr, "a.com").await, ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_stores_exactly_the_acknowledged_clicks() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let mut svc = Service::start(&["--store", &url, "--sites", "a.com", "--cost", "1ms"]);
    let addr = svc.addr;
    let load = tokio::spawn(async move {
        click_load(addr, "a.com", 16, 100_000, Duration::from_secs(30)).await
    });
    // Terminate once the load is clearly running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(addr, r#"polymetrie_clicks_total{site="a.com"}"#)
        .await
        .unwrap_or(0.0)
        < 200.0
    {
        assert!(Instant::now() < deadline, "load did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    svc.sigterm();
    let st = support::wait_exit(&mut svc.child, Duration::from_secs(20)).expect("did not exit");
    assert!(st.success(), "{st:?}");
    let t = load.await.unwrap();
    // Read what Redis holds through a fresh replica.
    let after = Service::start(&["--store", &url]);
    let stored = store_clicks(after.addr, "a.com").await;
    eprintln!("{t:?} stored {stored}");
    // A drained request is answered; a request the drain did not take is not stored. So what
    // Redis holds is exactly what was acknowledged: an abrupt exit would store clicks whose
    // 204 never left (stored > ok) or lose acknowledged ones (stored < ok).
    assert_eq!(stored, t.ok, "{t:?}");
    assert_eq!(t.shed + t.other, 0, "{t:?}");
    // The 200 stored before SIGTERM were all acknowledged, and the drain ended every
    // connection: each of the 16 ended on a refused or closed connection, never on a hang.
    assert!(t.ok >= 200, "{t:?}");
    assert!(t.errors >= 16, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_gives_503_and_recovers_by_itself() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let svc = Service::start(&[
        "--store",
        &url,
        "--sites",
        "a.com",
        "--store-timeout",
        "500ms",
    ]);
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(c.click("a.com", "/").await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(c.get("/readyz").await.0, StatusCode::OK);

    redis.kill();
    for _ in 0..5 {
        assert_eq!(
            c.click("a.com", "/").await.unwrap(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // Every 503 says when to retry.
    let r = send_once(
        svc.addr,
        hyper::Method::POST,
        "/api/clicks",
        &[],
        r#"{"site":"a.com","url":"/"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    let r = send_once(svc.addr, hyper::Method::GET, "/readyz", &[], "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    assert_eq!(c.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(
        get(svc.addr, "/api/sites/a.com/stats").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.get("/readyz").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The restarted Redis is empty; pre-registered sites are registered again by themselves.
    assert_eq!(c.click("a.com", "/").await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(store_clicks(svc.addr, "a.com").await, 1);
    let (_, body) = c.get("/api/sites").await;
    assert!(String::from_utf8_lossy(&body).contains("a.com"));
}

#[tokio::test]
async fn service_starts_unready_while_redis_is_down() {
    if support::binary_for_test("redis-server", "redis-server").is_none() {
        return;
    }
    let port = support::free_port();
    let svc = Service::start(&[
        "--store",
        &format!("redis://127.0.0.1:{port}"),
        "--sites",
        "a.com",
        "--store-timeout",
        "300ms",
    ]);
    assert_eq!(
        get(svc.addr, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let mut c = Client::connect(svc.addr).await.unwrap();
    assert_eq!(
        c.click("a.com", "/").await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}
