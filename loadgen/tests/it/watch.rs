//! Watching a real run while it lasts: `loadgen run --metrics-addr --live --prometheus managed`
//! against local polymetrie replicas, its live page open in headless Chromium (driven over the
//! DevTools pipe), its metrics scraped by the test and by the managed Prometheus. The page's
//! numbers must change during the run and match run.json at the end; the exposition must pass
//! `promtool check metrics`, grow during the run and add up to run.json. Leaves
//! `target/live-page.png`, a screenshot of the page at the end.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::common::cdp::Browser;
use crate::common::run::{self, Running};
use crate::common::{external, http, serial, tempdir};

/// Bound on one HTTP poll of loadgen's servers or the managed Prometheus.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on the whole run (two 4 s steps, deploys, a managed Prometheus) on a loaded box.
const RUN_BOUND: Duration = Duration::from_secs(120);

fn addr_of(line: &str, prefix: &str) -> SocketAddr {
    let rest = line.split(prefix).nth(1).expect("address after the prefix");
    let url = rest.split_whitespace().next().unwrap_or_default();
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    authority
        .parse()
        .unwrap_or_else(|e| panic!("{authority}: {e}"))
}

/// The value of one unlabelled series in an exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http::get_blocking(addr, "/metrics", HTTP_TIMEOUT).expect("a scrape");
    assert_eq!(status, 200, "{body}");
    body
}

/// `promtool check metrics` on `text` (skips loudly without promtool, fails under the policy).
fn promtool_clean(text: &str) {
    let Some(promtool) = external::binary("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

/// `loadgen_requests_sent_total` of job `generator` in the managed Prometheus, when it has one.
fn prometheus_sent(prometheus: SocketAddr) -> Option<f64> {
    let q = "/api/v1/query?query=loadgen_requests_sent_total%7Bjob%3D%22generator%22%7D";
    let (status, body) = http::get_blocking(prometheus, q, HTTP_TIMEOUT)?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    (status == 200).then_some(())?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// The finished steps as the page's table shows them.
const ROWS: &str = "Array.from(document.querySelectorAll('#finished tbody tr')).map(tr => \
    [tr.dataset.step, +tr.querySelector('.intended').textContent, \
     +tr.querySelector('.sent').textContent, +tr.querySelector('.ok').textContent])";

#[test]
fn a_run_is_watched_live_in_chromium_and_scraped_by_prometheus() {
    let _serial = serial::lock_blocking();
    let (Some(chromium), Some(_), Some(_)) = (
        external::binary("chromium", "chromium"),
        external::binary("prometheus", "prometheus"),
        external::polymetrie(),
    ) else {
        return;
    };
    if !external::cgroups_usable() {
        return;
    }
    let dir = tempdir("watch");
    let site = run::marker("watch");
    let scenario = run::scenario_with(
        dir.path(),
        &site,
        "1ms",
        "",
        "[[campaign]]\nname = \"w\"\n\n[[campaign.step]]\nrate = 150\nduration = \"4s\"\nreplicas = 1\ncpu_limit = 0.5\n\n\
         [[campaign.step]]\nrate = 200\nduration = \"4s\"\nreplicas = 2\n",
    );
    let out = dir.path().join("out");
    let extra = [
        "--metrics-addr",
        "127.0.0.1:0",
        "--live",
        "127.0.0.1:0",
        "--live-linger",
        "60s",
        "--prometheus",
        "managed",
    ];
    let running = Running::spawn(run::run_command(&scenario, &out, &extra));
    let metrics = addr_of(
        &running.wait_for_stderr("metrics: ", RUN_BOUND),
        "metrics: ",
    );
    let live = addr_of(&running.wait_for_stderr("live: ", RUN_BOUND), "live: ");
    let profile = tempdir("watch-profile");
    let mut page = Browser::open(&chromium, &format!("http://{live}/"), profile.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    while page.eval("!!document.getElementById('cur-sent')") != true {
        assert!(Instant::now() < deadline, "the live page did not load");
        std::thread::sleep(Duration::from_millis(100));
    }
    let prometheus = addr_of(
        &running.wait_for_stderr("managed prometheus at ", RUN_BOUND),
        "managed prometheus at ",
    );

    // While it runs: the page's current numbers and the scraped counter both move.
    let (mut shown, mut scraped, mut in_prometheus) = (Vec::new(), Vec::new(), None);
    let deadline = Instant::now() + RUN_BOUND;
    while !running.stderr().contains("live: the page stays") {
        assert!(
            Instant::now() < deadline,
            "the run did not end:\n{}",
            running.stderr()
        );
        let sent = page.eval("document.getElementById('cur-sent').textContent");
        if let Some(n) = sent.as_str().and_then(|s| s.parse::<u64>().ok()) {
            if shown.last() != Some(&n) {
                shown.push(n);
            }
        }
        let text = scrape(metrics);
        if series(&text, "loadgen_step_running") == Some(1.0) {
            scraped.extend(series(&text, "loadgen_requests_sent_total"));
        }
        in_prometheus = in_prometheus.or_else(|| prometheus_sent(prometheus).filter(|v| *v > 0.0));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        shown.len() >= 3,
        "the page's sent count did not change during the run: {shown:?}"
    );
    assert!(
        scraped.windows(2).any(|w| w[1] > w[0]) && scraped.windows(2).all(|w| w[1] >= w[0]),
        "the scraped counter did not grow (or went back) during the run: {scraped:?}"
    );
    assert!(
        in_prometheus.is_some(),
        "the managed Prometheus never had loadgen's own metrics"
    );

    // At the end: the page, the exposition and run.json agree.
    let result = run::read_run(&out);
    assert_eq!(result.steps.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let status = page.eval("document.getElementById('status').textContent");
        let rows = page.eval(ROWS);
        let links = page.eval("document.querySelectorAll('#files a').length");
        if status == "completed" && rows.as_array().map(Vec::len) == Some(2) && links == 2 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not show the end: {status} {rows}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (row, step) in rows.as_array().unwrap().iter().zip(&result.steps) {
        let want = serde_json::json!([step.id().to_string(), step.intended, step.sent, step.ok]);
        assert_eq!(row, &want, "the page's row differs from run.json");
    }
    let charts = page.eval("document.querySelectorAll('#rates polyline').length");
    assert!(
        charts.as_u64().unwrap_or(0) >= 1,
        "no rate line drawn: {charts}"
    );
    // An artifact to look at (docs/images/live-page.png is one of these).
    let png = page.screenshot(1240, 1100);
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let _ = std::fs::write(crate::common::repo_dir().join("target/live-page.png"), png);
    let text = scrape(metrics);
    promtool_clean(&text);
    let sum = |f: fn(&loadgen_model::result::StepResult) -> u64| {
        result.steps.iter().map(f).sum::<u64>() as f64
    };
    assert_eq!(
        series(&text, "loadgen_requests_sent_total"),
        Some(sum(|s| s.sent)),
        "{text}"
    );
    assert_eq!(
        series(&text, "loadgen_responses_total{outcome=\"ok\"}"),
        Some(sum(|s| s.ok))
    );
    assert_eq!(
        series(&text, "loadgen_request_latency_seconds_count"),
        Some(sum(|s| s.latency_ms.count))
    );
    let (status, report) = http::get_blocking(live, "/report.html", HTTP_TIMEOUT).unwrap();
    assert!(
        status == 200 && report.contains("<html"),
        "report not served: {status}"
    );
    let (status, _) = http::get_blocking(live, "/../run.json", HTTP_TIMEOUT).unwrap();
    assert_eq!(status, 404, "only the run's own files, by fixed name");

    // Ctrl-C ends the linger; nothing is left behind.
    running.signal(Signal::INT);
    let pid = running.pid;
    let output = running.finish(Duration::from_secs(30));
    assert!(matches!(output.status.code(), Some(0 | 1)), "{output:?}");
    run::assert_nothing_left(&site, pid);
}

/// `loadgen attack` feeds the same watchers: its scraped counters equal its own result.
#[test]
fn an_attack_serves_its_metrics_and_they_equal_its_result() {
    let _serial = serial::lock_blocking();
    let Some(service) = crate::common::polymetrie::Polymetrie::start(&[]) else {
        return;
    };
    let url = format!("http://{}/healthz", service.addr);
    let mut cmd = crate::common::command::loadgen();
    cmd.args([
        "attack",
        &url,
        "--rate",
        "200",
        "--duration",
        "2s",
        "--json",
    ])
    .args(["--metrics-addr", "127.0.0.1:0", "--live", "127.0.0.1:0"])
    .args(["--live-linger", "60s"]);
    let running = Running::spawn(cmd);
    let metrics = addr_of(
        &running.wait_for_stderr("metrics: ", RUN_BOUND),
        "metrics: ",
    );
    running.wait_for_stderr("live: the page stays", RUN_BOUND);
    let text = scrape(metrics);
    running.signal(Signal::INT);
    let output = running.finish(Duration::from_secs(30));
    let step: loadgen_model::result::StepResult =
        serde_json::from_slice(&output.stdout).expect("the attack's JSON result");
    assert!(step.sent > 0, "{step:?}");
    assert_eq!(
        series(&text, "loadgen_requests_sent_total"),
        Some(step.sent as f64),
        "{text}"
    );
    assert_eq!(
        series(&text, "loadgen_responses_total{outcome=\"ok\"}"),
        Some(step.ok as f64)
    );
    assert_eq!(series(&text, "loadgen_step_running"), Some(0.0));
    assert_eq!(series(&text, "loadgen_steps_planned"), Some(1.0));
}
