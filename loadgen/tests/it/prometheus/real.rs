//! The real thing: Debian's `prometheus`, managed by the probe, scraping itself and a real
//! polymetrie while clicks are posted, read back over the step's window.

use super::*;

#[tokio::test]
async fn managed_prometheus_scrapes_itself_and_leaves_nothing_behind() {
    let _serial = common::serial::lock().await;
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let probe = PrometheusProbe::managed().await.unwrap();
    let server = probe.managed_server().unwrap();
    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    assert!(procs::exists(pid) && dir.exists());
    // Prometheus' own /metrics has process_cpu_seconds_total but no clicks: the CPU is read,
    // the counter is missing and said so (never 0).
    let own = format!("{}/metrics", probe.url());
    probe.set_targets("self", &[own]).await.unwrap();
    probe.wait_scraped(Duration::from_secs(20)).await.unwrap();
    let start = SystemTime::now();
    // The step itself: time must pass, and Prometheus must spend CPU in it. Idle, it can use
    // less than one 10 ms tick in 3 s (a clean-clone CI run read exactly 0.0), so it answers
    // queries for the whole window.
    let busy = keep_busy(probe.url(), Duration::from_secs(3)).await;
    let end = SystemTime::now();
    assert!(busy > 0, "prometheus answered no query while kept busy");
    let (view, findings) = probe
        .observe("self", start, end, "demo", &BTreeMap::new())
        .await;
    let view = view.expect("prometheus answered");
    assert!(view.cpu_cores_used.is_some_and(|c| c > 0.0), "{view:?}");
    assert_eq!(view.counter_increase, None, "{view:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("counter_increase") && f.message.contains("no series")),
        "{findings:?}"
    );
    assert_eq!(view.per_replica.len(), 1, "{view:?}");
    assert_eq!(view.per_replica[0].instance, "0");
    assert_eq!(view.scrape_interval_s, Some(1.0));
    assert!(view.queries["cpu_cores"].contains(r#"step="self""#));
    // A step shorter than 4 scrapes is flagged by the cross-check.
    let short = cross_check(&step_with(Some(view), None, None));
    assert!(
        short.iter().any(|f| f.check == CheckName::PrometheusWindow),
        "{short:?}"
    );
    probe.shutdown().await;
    assert!(
        !procs::exists(pid),
        "prometheus (pid {pid}) still running after shutdown"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Asks the Prometheus at `url` for `up` over one keep-alive connection for `duration`
/// (bounded in time and count); returns how many queries it answered with 200.
async fn keep_busy(url: &str, duration: Duration) -> u64 {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut sender) = http::connect(addr).await else {
        return 0;
    };
    let t0 = Instant::now();
    let mut answered = 0;
    for _ in 0..200_000 {
        if t0.elapsed() >= duration {
            break;
        }
        match http::get(
            &mut sender,
            addr,
            "/api/v1/query?query=up",
            Duration::from_secs(2),
        )
        .await
        {
            Some((status, _)) if status == hyper::StatusCode::OK => answered += 1,
            _ => break,
        }
    }
    if let Some(left) = duration.checked_sub(t0.elapsed()) {
        tokio::time::sleep(left).await;
    }
    answered
}

/// CPU seconds (user + system) of a process, from `/proc/PID/stat` (USER_HZ = 100 on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The service's own counter, read directly from its admin `/metrics`.
async fn direct_clicks(admin: &str) -> u64 {
    let mut sender = http::connect(admin).await.unwrap();
    let (_, body) = http::get(&mut sender, admin, "/metrics", Duration::from_secs(5))
        .await
        .expect("the service's /metrics answered");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(r#"polymetrie_clicks_total{site="demo"} "#))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0) // absent until the first click
}

/// Posts clicks at `rate` per second for `duration` (bounded in count and time); returns the
/// number of 204 answers.
async fn post_clicks(sender: &mut http::Sender, addr: &str, rate: f64, duration: Duration) -> u64 {
    let t0 = tokio::time::Instant::now();
    let count = (rate * duration.as_secs_f64()) as u64;
    let mut ok = 0;
    for i in 0..count {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / rate)).await;
        let req = hyper::Request::post(format!("http://{addr}/api/clicks"))
            .header("host", addr)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"site":"demo","url":"/x"}"#,
            )))
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req)).await;
        if let Ok(Ok(r)) = answer {
            if r.status() == hyper::StatusCode::NO_CONTENT {
                ok += 1;
            }
        }
    }
    ok
}

#[tokio::test]
async fn real_prometheus_counts_a_real_polymetrie_within_ten_percent() {
    let _serial = common::serial::lock().await;
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    // Some CPU per click, so that the CPU comparison is not all tick noise.
    let args = [
        "--admin-listen",
        "127.0.0.1:0",
        "--sites",
        "demo",
        "--cost",
        "3ms",
    ];
    let Some(service) = Polymetrie::start(&args) else {
        return;
    };
    let (addr, admin) = (
        service.addr.to_string(),
        service.admin_addr.expect("admin address").to_string(),
    );
    let probe = PrometheusProbe::managed().await.unwrap();
    let pid = probe.managed_server().unwrap().pid();
    probe
        .set_targets("step-1", &[format!("http://{admin}/metrics")])
        .await
        .unwrap();
    probe.wait_scraped(Duration::from_secs(20)).await.unwrap();
    let mut sender = http::connect(addr.as_str()).await.unwrap();
    // A warm-up right before the window, as in a campaign: its clicks must not be counted.
    // Short, so that the series (absent until the first click) is often born between the last
    // scrape before the window and the window's start: the hard case for an edge reading.
    let warmup = post_clicks(&mut sender, &addr, 40.0, Duration::from_millis(500)).await;
    let (before, cpu_before) = (direct_clicks(&admin).await, cpu_seconds(service.pid));
    let start = SystemTime::now();
    let ok = post_clicks(&mut sender, &addr, 40.0, Duration::from_secs(7)).await;
    let end = SystemTime::now();
    let cpu_after = cpu_seconds(service.pid);
    let after = direct_clicks(&admin).await;
    let wall = end.duration_since(start).unwrap().as_secs_f64();
    let direct_cores = (cpu_after - cpu_before) / wall;
    let (view, findings) = probe
        .observe("step-1", start, end, "demo", &BTreeMap::new())
        .await;
    let view = view.expect("prometheus answered");
    let edge = view.counter_increase.expect("counter read");
    let overrides = BTreeMap::from([(
        "counter_increase".to_string(),
        query::COUNTER_INCREASE_EXTRAPOLATED.to_string(),
    )]);
    let (extrapolated, _) = probe
        .observe("step-1", start, end, "demo", &overrides)
        .await;
    let increase = extrapolated.and_then(|v| v.counter_increase);
    eprintln!(
        "warm-up 204s {warmup}, window 204s {ok}, direct delta {}; edge reading {edge:.1} \
         ({:+.1} %), increase() {increase:?}; cpu {:?} cores, /proc {direct_cores:.3}; \
         findings {findings:?}",
        after - before,
        100.0 * (edge - ok as f64) / ok as f64,
        view.cpu_cores_used
    );
    assert!(ok > 200, "the service answered only {ok} of 280 clicks");
    assert!(
        (edge - ok as f64).abs() <= 0.10 * ok as f64,
        "prometheus counted {edge}, the service answered {ok} clicks with 204"
    );
    assert!(view.cpu_cores_used.is_some_and(|c| c > 0.0), "{view:?}");
    assert_eq!(view.per_replica.len(), 1, "{view:?}");
    assert!(view.per_replica[0].counter_increase.is_some());
    assert_eq!(
        view.throttled_ratio, None,
        "process metrics know no throttling"
    );
    // The cross-check on real readings: both agree within the stated tolerances.
    let step = step_with(
        Some(view),
        Some((after - before) as i64),
        Some(direct_cores),
    );
    let checks = cross_check(&step);
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(
        checks.iter().all(|f| f.severity == Severity::Info),
        "{checks:?}"
    );
    probe.shutdown().await;
    assert!(
        !procs::exists(pid),
        "prometheus (pid {pid}) still running after shutdown"
    );
}

/// Running: exists and is not a zombie (killed but not yet reaped).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap_or(0)..].starts_with(") Z"))
        .unwrap_or(false)
}

#[tokio::test]
async fn dropping_the_probe_still_kills_prometheus_and_cleans_up() {
    let _serial = common::serial::lock().await;
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let probe = PrometheusProbe::managed().await.unwrap();
    let server = probe.managed_server().unwrap();
    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    drop(probe);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!running(pid), "prometheus (pid {pid}) survived the drop");
}

#[tokio::test]
async fn a_prometheus_that_never_answers_times_out_into_none_and_a_finding() {
    // The kernel accepts connections into the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let probe = PrometheusProbe::external(&url).unwrap();
    let t0 = Instant::now();
    let (view, findings) = observe_last_6s(&probe).await;
    assert!(view.is_none(), "{view:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].message.contains("unreachable") && findings[0].message.contains(&url),
        "{}",
        findings[0].message
    );
    // One timeout, not one per query.
    let bound = loadgen::probe::prometheus::QUERY_TIMEOUT * 2;
    assert!(t0.elapsed() < bound, "took {:?}", t0.elapsed());
    drop(silent);
}
