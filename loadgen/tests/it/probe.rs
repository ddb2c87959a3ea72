//! Counter and CPU probes on real replicas: the counter delta equals the clicks the service
//! acknowledged, SO_REUSEPORT spreads connections over replicas, a 0.5-core quota holds under a
//! CPU-bound load and shows throttling, and a URL target yields a counter but no CPU.
//! Skips loudly without writable cgroups or the binaries, unless LOADGEN_REQUIRE_EXTERNAL=1.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use loadgen::deployer::{Deployment, LocalDeployer, UrlDeployer};
use loadgen::plan::counter::Counter;
use loadgen::plan::{Store, Topology};
use loadgen::probe::{diff, snapshot};
use tokio::net::TcpStream;

use crate::common::polymetrie::{local_service as service, DEPLOY_BOUND as BOUND, SITE};
use crate::common::{self, external};

/// Bound of one click request in the test client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the test client saw.
#[derive(Debug, Default)]
struct Sent {
    ok: u64,
    other: u64,
}

/// Closed-loop clicks over `connections` keep-alive connections (each one a new TCP
/// connection, which the kernel assigns to a replica), bounded by `total` and `max_time`.
async fn post_clicks(d: &Deployment, total: u64, connections: usize, max_time: Duration) -> Sent {
    // Connection c goes to replica c mod N (each has its own port), as kube-proxy pins one.
    let bases = if d.endpoints.is_empty() {
        vec![d.base_url.clone()]
    } else {
        d.endpoints.clone()
    };
    let remaining = Arc::new(AtomicU64::new(total));
    let ok = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + max_time;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let addr = bases[c % bases.len()]
            .trim_start_matches("http://")
            .to_string();
        let (remaining, ok, other) = (remaining.clone(), ok.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = None;
            let mut seq = 0u64;
            while tokio::time::Instant::now() < deadline
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                seq += 1;
                if sender.is_none() {
                    let Ok(s) = common::http::connect(addr.as_str()).await else {
                        other.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    sender = Some(s);
                }
                let body = format!(r#"{{"site":"{SITE}","url":"/c{c}/p{seq}"}}"#);
                let req = hyper::Request::post("/api/clicks")
                    .header("host", &addr)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let s = sender.as_mut().unwrap();
                let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    let resp = s.send_request(req).await?;
                    let status = resp.status();
                    resp.into_body().collect().await?;
                    Ok::<_, hyper::Error>(status)
                })
                .await;
                match answer {
                    Ok(Ok(status)) if status.as_u16() == 204 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(_)) => {
                        other.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                        sender = None;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Sent {
        ok: ok.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_redis_split_connections_and_the_counter_matches_the_204s() {
    let _serial = common::serial::lock().await;
    let (Some(bin), true, Some(_)) = (
        external::polymetrie(),
        external::cgroups_usable(),
        external::binary("redis-server", "redis-server"),
    ) else {
        return;
    };
    two_replicas_counter_matches(bin, Store::Redis).await;
}

/// With in-memory stores each replica counts its own clicks: the probe sums them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_memory_are_summed_and_match_the_204s() {
    let _serial = common::serial::lock().await;
    let (Some(bin), true) = (external::polymetrie(), external::cgroups_usable()) else {
        return;
    };
    two_replicas_counter_matches(bin, Store::Memory).await;
}

async fn two_replicas_counter_matches(bin: PathBuf, store: Store) {
    let mut deployer = LocalDeployer::new(&service(bin, Duration::from_micros(200)));
    let topology = Topology {
        replicas: 2,
        cpu_limit_cores: None,
        store,
        autoscale: None,
        tls: false,
    };
    let d = deployer.deploy(&topology, BOUND).await.expect("deploy");
    let before = snapshot(&d, &Counter::Site(SITE.into())).await;
    let sent = post_clicks(&d, 300, 24, Duration::from_secs(20)).await;
    let after = snapshot(&d, &Counter::Site(SITE.into())).await;
    d.teardown().await.expect("teardown");

    // Each replica's own view of the site total: shared with Redis, its own in memory.
    let totals: Vec<u64> = after
        .replicas
        .iter()
        .map(|r| r.site_clicks.unwrap())
        .collect();
    match store {
        Store::Redis => assert!(
            totals.iter().all(|&t| Some(t) == after.counter),
            "{totals:?}"
        ),
        Store::Memory => assert_eq!(Some(totals.iter().sum()), after.counter, "{totals:?}"),
    }
    assert_eq!(sent.ok + sent.other, 300, "{sent:?}");
    assert!(sent.ok > 0, "{sent:?}");
    let (counter, cpu) = diff(&before, &after);
    let counter = counter.unwrap();
    assert_eq!(
        counter.delta,
        Some(sent.ok as i64),
        "{counter:?} vs {sent:?}"
    );
    // Per-replica clicks: each replica stored some, and together all of them.
    let per: Vec<u64> = counter.per_replica.iter().map(|c| c.unwrap()).collect();
    assert_eq!(per.len(), 2);
    assert!(
        per.iter().all(|&c| c > 0),
        "both replicas got clicks: {per:?}"
    );
    assert_eq!(per.iter().sum::<u64>(), sent.ok);
    let cpu = cpu.expect("local deployment has CPU readings");
    for r in &cpu.per_replica {
        let requests = r.requests.expect("requests counter read");
        assert!(requests >= per[r.replica as usize], "{r:?}");
        assert!(r.cores_used.unwrap() > 0.0, "{r:?}");
        // No quota: the kernel counts no CFS periods, so no throttling ratio is claimed.
        assert_eq!(r.throttled_ratio, None, "{r:?}");
    }
    assert!(cpu.cores_used.unwrap() > 0.0);
    assert!(cpu.node_cores_used.unwrap() > 0.0);
}

/// One replica burning 5 ms of CPU per click under a 0.5-core quota.
async fn cpu_bound_half_core_replica(bin: PathBuf) -> Deployment {
    let mut deployer = LocalDeployer::new(&service(bin, Duration::from_millis(5)));
    let topology = Topology {
        replicas: 1,
        cpu_limit_cores: Some(0.5),
        store: Store::Memory,
        tls: false,
        autoscale: None,
    };
    deployer.deploy(&topology, BOUND).await.expect("deploy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_core_quota_caps_a_cpu_bound_replica_and_records_throttling() {
    let _serial = common::serial::lock().await;
    let (Some(bin), true) = (external::polymetrie(), external::cgroups_usable()) else {
        return;
    };
    let d = cpu_bound_half_core_replica(bin).await;
    let before = snapshot(&d, &Counter::Site(SITE.into())).await;
    // 0.5 core at 5 ms per click is ~100 clicks/s: 16 concurrent clients keep it saturated.
    let sent = post_clicks(&d, 2_000, 16, Duration::from_secs(3)).await;
    let after = snapshot(&d, &Counter::Site(SITE.into())).await;
    d.teardown().await.expect("teardown");

    let (counter, cpu) = diff(&before, &after);
    assert_eq!(counter.unwrap().delta, Some(sent.ok as i64), "{sent:?}");
    let cpu = cpu.unwrap();
    let r = &cpu.per_replica[0];
    let cores = r.cores_used.expect("cpu read from cpuacct");
    eprintln!("0.5-core quota: {cpu:?}, client {sent:?}");
    assert!(cores <= 0.6, "quota holds: {cores} cores");
    assert!(cores > 0.1, "the replica was loaded: {cores} cores");
    assert!(r.nr_periods.unwrap() > 0, "{r:?}");
    assert!(r.nr_throttled.unwrap() > 0, "throttling recorded: {r:?}");
    assert!(r.throttled_ratio.unwrap() > 0.0, "{r:?}");
    assert!(r.throttled_s.unwrap() > 0.0, "{r:?}");
    assert_eq!(cpu.throttled_ratio, r.throttled_ratio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_target_gives_the_counter_and_no_cpu() {
    let _serial = common::serial::lock().await;
    let Some(bin) = external::polymetrie() else {
        return;
    };
    // A service we did not start, as far as the URL deployer knows.
    let mut local = LocalDeployer::new(&service(bin, Duration::from_micros(100)));
    let topology = Topology {
        replicas: 1,
        cpu_limit_cores: None,
        tls: false,
        store: Store::Memory,
        autoscale: None,
    };
    let running = local.deploy(&topology, BOUND).await.expect("deploy");
    let mut url = UrlDeployer::new(&format!("{}/", running.base_url));
    let d = url.deploy(&topology, BOUND).await.expect("reachable");
    assert!(d.is_external());
    assert_eq!(d.store_name(), "external");
    assert!(d.replicas.is_empty());
    let before = snapshot(&d, &Counter::Site(SITE.into())).await;
    let sent = post_clicks(&d, 20, 2, Duration::from_secs(10)).await;
    let after = snapshot(&d, &Counter::Site(SITE.into())).await;
    d.teardown().await.expect("nothing to tear down");
    running.teardown().await.expect("teardown");

    let (counter, cpu) = diff(&before, &after);
    assert_eq!(counter.unwrap().delta, Some(sent.ok as i64));
    assert_eq!(sent.ok, 20);
    assert!(
        cpu.is_none(),
        "no CPU is attributed to a service we did not start"
    );

    // Nothing listens there any more: the URL deployer says so within its bound.
    let err = url
        .deploy(&topology, Duration::from_secs(2))
        .await
        .expect_err("unreachable");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

/// Clicks still queued in the service when the load stops are counted once it settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_waits_for_clicks_still_queued_when_the_load_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _serial = common::serial::lock().await;
    let (Some(bin), true) = (external::polymetrie(), external::cgroups_usable()) else {
        return;
    };
    let d = cpu_bound_half_core_replica(bin).await;
    let before = snapshot(&d, &Counter::Site(SITE.into())).await;
    // 60 clicks at 5 ms of CPU each under 0.5 core: ~0.6 s of work, written all at once and
    // not waited for.
    const CLICKS: usize = 60;
    let addr = d.base_url.trim_start_matches("http://").to_string();
    let mut conns = Vec::new();
    for i in 0..CLICKS {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        let body = format!(r#"{{"site":"{SITE}","url":"/q{i}"}}"#);
        let req = format!(
            "POST /api/clicks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        c.write_all(req.as_bytes()).await.unwrap();
        conns.push(c);
    }
    let mut after = snapshot(&d, &Counter::Site(SITE.into())).await;
    let early = after.counter.unwrap() - before.counter.unwrap();
    let settled = loadgen::probe::settle(
        &d,
        &Counter::Site(SITE.into()),
        &mut after,
        Duration::from_secs(15),
    )
    .await;
    let (counter, cpu) = diff(&before, &after);
    let mut answered = 0;
    for mut c in conns {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(REQUEST_TIMEOUT, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if buf[..n].starts_with(b"HTTP/1.1 204") {
            answered += 1;
        }
    }
    d.teardown().await.expect("teardown");

    eprintln!("counted right after the load: {early}, after settling: {counter:?}");
    assert!(settled, "counters stopped moving within the bound");
    assert_eq!(answered, CLICKS, "every click was stored (204)");
    assert_eq!(counter.unwrap().delta, Some(CLICKS as i64));
    // CPU stays measured up to the first `after` read, not over the settling time.
    assert!(cpu.unwrap().per_replica[0].cores_used.is_some());
}
