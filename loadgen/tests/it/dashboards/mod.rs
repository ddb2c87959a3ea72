//! The Grafana dashboards of `k8s/dashboards/` proven on a real run: a real Prometheus
//! ([`prometheus`]) scrapes `loadgen run --metrics-addr` and the run's own polymetrie replicas
//! (found as loadgen's children, labelled as a cluster would label pods), then every panel
//! target, every Prometheus annotation and every variable query of both dashboards
//! ([`queries`]) is evaluated over the run: each must find a series with a finite sample, and
//! its values must fit the panel's unit. A misspelt metric must fail the same way (the negative
//! control), so an empty panel cannot pass unnoticed. [`throttle`] holds the throttled-share
//! panels to at most 100 % on the backfilled samples of a replica born inside the window.
//!
//! The run: three short local steps (one replica unlimited, two under a CPU limit, then one
//! throttled so hard that its requests time out), bounded in time and count, load on loopback,
//! with `--prometheus managed` beside it (its start is the one finding a clean run reports live).

mod prometheus;
mod queries;
mod throttle;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{self, external, procs, run, serial};
use prometheus::TestPrometheus;
use queries::{Query, Series, Variables, DASHBOARDS};

/// Bound on the whole run (three steps of 5 to 10 s on a loaded 2-core machine, with deploys).
const RUN_BOUND: Duration = Duration::from_secs(180);
/// Bound on loadgen saying where its metrics are.
const METRICS_LINE_BOUND: Duration = Duration::from_secs(60);
/// How often the run's replicas are looked for while it runs.
const DISCOVERY_POLL: Duration = Duration::from_millis(100);
/// The site the load clicks on; `quiet` is registered but never clicked.
const SITE: &str = "demo";

/// The scenario: 40 clicks/s at 2 ms each, small enough for any CI machine.
fn scenario(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"name = "dashboards"
counter_site = "{SITE}"

[target]
kind = "local"

[service]
cost = "2ms"
store = "memory"
sites = ["{SITE}", "quiet"]

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"{SITE}","url":"/page/{{seq}}"}}'

[defaults]
timeout = "2s"
max_in_flight = 1000
warmup = "500ms"
pause = "1s"

[[campaign]]
name = "load"

[[campaign.step]]
rate = 40
duration = "5s"
replicas = 1

[[campaign.step]]
rate = 40
duration = "5s"
replicas = 2
cpu_limit = 0.25

# Failed requests for the outcome panel: 40 clicks/s of 2 ms need 0.08 cores, twice this
# replica's limit, so answers queue far beyond the timeout (and the replica is throttled).
# 10 s: the test's Prometheus first scrapes a new replica 1 to 6 s after it is listed (its
# discovery sends updates every 5 s; measured here), and the throttled share needs it scraped
# over a whole `$__rate_interval` (4 s) besides.
[[campaign]]
name = "failing"
timeout = "50ms"

[[campaign.step]]
rate = 40
duration = "10s"
replicas = 1
cpu_limit = 0.05
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `127.0.0.1:PORT` from loadgen's `metrics: http://127.0.0.1:PORT/metrics` line.
fn metrics_authority(line: &str) -> String {
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let rest = url.trim_start_matches("http://");
    rest.split('/').next().unwrap().to_string()
}

/// The run's replicas now: one scrape target per polymetrie child of `loadgen` (its lowest
/// listening port: the main and the admin listener serve the same /metrics), pod-named by pid.
fn replicas(loadgen: u32) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = procs::children_named(loadgen, "polymetrie")
        .into_iter()
        .filter_map(|pid| {
            let port = procs::listening_ports(pid).into_iter().min()?;
            Some((format!("127.0.0.1:{port}"), format!("polymetrie-{pid}")))
        })
        .collect();
    out.sort();
    out
}

/// Runs the scenario with `--metrics-addr`, keeping Prometheus' targets up to date; returns the
/// run's time range (Unix seconds) and what loadgen printed on stderr.
fn run_scraped(prom: &TestPrometheus, dir: &Path) -> (f64, f64, String) {
    let out = dir.join("out");
    let start = unix_now();
    // The managed Prometheus records a finding as the run starts (where it scrapes): the one
    // finding a clean run reports live, for the findings panel.
    let args = ["--metrics-addr", "127.0.0.1:0", "--prometheus", "managed"];
    let cmd = run::run_command(&scenario(dir), &out, &args);
    let running = run::Running::spawn(cmd);
    let line = running.wait_for_stderr("metrics: http://", METRICS_LINE_BOUND);
    prom.set_targets(
        "loadgen",
        &[(metrics_authority(&line), "loadgen-test".to_string())],
    );
    let deadline = Instant::now() + RUN_BOUND;
    let mut known = Vec::new();
    while !running.exited() && Instant::now() < deadline {
        let now = replicas(running.pid);
        if now != known {
            prom.set_targets("polymetrie", &now);
            known = now;
        }
        std::thread::sleep(DISCOVERY_POLL);
    }
    let output = running.finish(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // 1: the failing campaign's steps are invalid or miss a threshold; anything else is broken.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "loadgen run: {:?}\n{stderr}",
        output.status
    );
    (start, unix_now(), stderr)
}

/// Grafana's variables for `job` over `[start, end]`: `$__rate_interval` as Grafana computes it
/// for a 1 s scrape and a 1 s step (4 scrapes), `$__interval` the step, `$__range` the run.
fn variables(job: &str, start: f64, end: f64) -> Variables {
    Variables {
        job: job.to_string(),
        rate_interval: 4 * prometheus::SCRAPE_INTERVAL,
        interval: prometheus::SCRAPE_INTERVAL,
        range: Duration::from_secs_f64(end - start),
    }
}

/// Every query of every dashboard over `[start, end]`: the failures, each naming its query.
fn check_all(prom: &TestPrometheus, start: f64, end: f64) -> (usize, Vec<String>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut failures = Vec::new();
    let mut n = 0;
    for (name, job) in DASHBOARDS {
        let doc = queries::load(name);
        let vars = variables(job, start, end);
        for (var, metric, label) in queries::variable_queries(&doc) {
            n += 1;
            let expr = queries::substitute(&format!("count by ({label}) ({metric})"), &vars);
            let want = if var == "job" {
                job
            } else {
                prometheus::NAMESPACE
            };
            match prom.range(&expr, start, end, vars.interval) {
                Ok(s) if s.iter().any(|s| s.labels.contains(&format!("\"{want}\""))) => {}
                other => failures.push(format!(
                    "{name} / variable {var}: {expr} did not offer {want:?}: {other:?}"
                )),
            }
        }
        for q in queries::queries(name, &doc) {
            n += 1;
            if let Some(why) = evaluate(prom, &q, &vars, (start, end), cpus) {
                failures.push(why);
            }
        }
    }
    (n, failures)
}

/// A panel query and what it must show of this run: `(dashboard, panel, refId, what, test)`.
type Expectation = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    fn(&[Series]) -> bool,
);

fn max(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(f64::MIN, f64::max)
}

/// Beyond "some data": what the scenario did, as the panels must show it.
fn expectations() -> Vec<Expectation> {
    let campaign = "loadgen-campaign.json";
    vec![
        (
            campaign,
            "Requests per second: intended, sent, OK, counted",
            "A",
            "intended near the steps' 40/s",
            |s| (30.0..=60.0).contains(&max(s)),
        ),
        (
            campaign,
            "Failed requests by outcome",
            "A",
            "the throttled step's timeouts",
            |s| {
                s.iter()
                    .any(|x| x.labels.contains("\"timeout\"") && x.values.iter().any(|v| *v > 0.0))
            },
        ),
        (
            campaign,
            "Throttled periods per replica",
            "A",
            "the throttled step near 100 %",
            |s| max(s) > 0.5,
        ),
        (
            campaign,
            "Replicas: planned, ready, desired",
            "A",
            "2 planned replicas in step 2",
            |s| max(s) == 2.0,
        ),
        (
            campaign,
            "annotation Step boundaries",
            "Anno",
            "the boundaries of steps 2 and 3",
            |s| s.len() >= 2,
        ),
        (
            "polymetrie.json",
            "Clicks per site",
            "A",
            "every site, the one never clicked too",
            |s| {
                ["demo", "quiet"]
                    .iter()
                    .all(|site| s.iter().any(|x| x.labels.contains(&format!("\"{site}\""))))
            },
        ),
        (
            "polymetrie.json",
            "Throttled periods per pod",
            "A",
            "the throttled step near 100 %",
            |s| max(s) > 0.5,
        ),
    ]
}

/// The expectations this run's answers do not meet.
fn shows_what_happened(prom: &TestPrometheus, start: f64, end: f64) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, panel, ref_id, what, test) in expectations() {
        let job = DASHBOARDS.iter().find(|(d, _)| *d == name).unwrap().1;
        let q = queries::queries(name, &queries::load(name))
            .into_iter()
            .find(|q| q.panel == panel && q.ref_id == ref_id)
            .unwrap_or_else(|| panic!("{name} has no query {panel:?} / {ref_id}"));
        let vars = variables(job, start, end);
        let expr = queries::substitute(&q.expr, &vars);
        match prom.range(&expr, start, end, vars.interval) {
            Ok(s) if test(&s) => {}
            other => failures.push(format!("{}: does not show {what}: {other:?}", q.name())),
        }
    }
    failures
}

/// How many times the test's Prometheus scraped each target over the run (its labels, then the
/// count): what the panels of a short-lived replica had to go on.
fn scrapes_per_target(prom: &TestPrometheus, start: f64, end: f64) -> String {
    let expr = format!("count_over_time(up[{}s])", (end - start).ceil() as u64 + 1);
    match prom.range(&expr, end, end, prometheus::SCRAPE_INTERVAL) {
        Ok(series) => series
            .iter()
            .map(|s| format!("{} {:?}", s.labels, s.values))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("unknown ({e})"),
    }
}

/// Why `q` shows nothing or the wrong thing over `range`, naming it; `None` when it is right.
fn evaluate(
    prom: &TestPrometheus,
    q: &Query,
    vars: &Variables,
    (start, end): (f64, f64),
    cpus: f64,
) -> Option<String> {
    let expr = queries::substitute(&q.expr, vars);
    let why = match prom.range(&expr, start, end, vars.interval) {
        Ok(series) => queries::judge(q, &series, cpus),
        Err(e) => Some(format!("rejected: {e}")),
    };
    why.map(|w| format!("{}: {w}", q.name()))
}

#[test]
fn every_dashboard_query_shows_data_of_a_real_run() {
    let _serial = serial::lock_blocking();
    let Some(binary) = external::binary("prometheus", "prometheus") else {
        return;
    };
    if external::polymetrie().is_none() || !external::cgroups_usable() {
        return;
    }
    let dir = common::tempdir("dashboards");
    let prom = TestPrometheus::start(&binary, dir.path());
    let (start, end, stderr) = run_scraped(&prom, dir.path());
    let (queries, mut failures) = check_all(&prom, start, end);
    failures.extend(shows_what_happened(&prom, start, end));
    let n = queries + expectations().len();
    eprintln!(
        "{queries} dashboard queries and {} expectations over {:.1} s of a real run, {} failed",
        expectations().len(),
        end - start,
        failures.len()
    );
    // The failures come last: a CI log keeps a long message's tail.
    assert!(
        failures.is_empty(),
        "loadgen's stderr:\n{stderr}\nscrapes per target: {}\n{} of {n} dashboard checks failed (no data, or not what the run did):\n  {}",
        scrapes_per_target(&prom, start, end),
        failures.len(),
        failures.join("\n  ")
    );

    // The negative control: a misspelt metric finds nothing, and the failure names the query.
    let doc = queries::load("loadgen-campaign.json");
    let mut q = queries::queries("loadgen-campaign.json", &doc)
        .into_iter()
        .find(|q| q.expr.contains("loadgen_requests_sent_total"))
        .expect("a panel reads loadgen_requests_sent_total");
    q.expr = q
        .expr
        .replace("loadgen_requests_sent_total", "loadgen_request_sent_total");
    let vars = variables("loadgen", start, end);
    let why = evaluate(&prom, &q, &vars, (start, end), 2.0).expect("a misspelt metric is caught");
    assert!(
        why.contains("no data")
            && why.contains(&q.panel)
            && why.contains("loadgen_request_sent_total"),
        "{why}"
    );
}
