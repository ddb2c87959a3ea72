//! A counter read through PromQL: a running service (a real Prometheus, loaded on its own
//! `/-/healthy` and scraping itself every second) is also the Prometheus the counter is asked;
//! the query's increase over the step reconciles with the generator's OK count exactly, because
//! the counter is read only once two readings straddle a scrape.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::write_scenario;
use crate::common::command::assert_exit_or_lagged;
use crate::common::{external, run, serial, unused_port};

/// A Prometheus we started, killed by its pid when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, port: u16) -> Server {
    let config = dir.join("self.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while crate::common::http::get_blocking(addr, "/-/ready", Duration::from_secs(1))
        .map(|(s, _)| s)
        != Some(200)
    {
        assert!(Instant::now() < deadline, "prometheus not ready");
        std::thread::sleep(run::POLL);
    }
    server
}

#[test]
fn a_promql_counter_reconciles_with_the_generator_once_a_scrape_has_caught_up() {
    let _serial = serial::lock_blocking();
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let dir = run::tempdir("promql");
    let port = unused_port();
    let _server = start(dir.path(), port);
    let scenario = format!(
        r#"name = "promql-e2e"

[target]
kind = "url"
url = "http://127.0.0.1:{port}"

[prometheus]
mode = "url"
url = "http://127.0.0.1:{port}"

[request]
path = "/-/healthy"

# `or vector(0)`: before the first request the labelled series does not exist yet.
[counter]
promql = 'sum(prometheus_http_requests_total{{handler="/-/healthy",code="200"}}) or vector(0)'

[defaults]
timeout = "2s"
warmup = "0s"
pause = "0s"

[[campaign]]
name = "c"

[[campaign.step]]
rate = 50
duration = "3s"
"#
    );
    let path = write_scenario(dir.path(), &scenario);
    let out = dir.path().join("out");
    let (output, _) = run::run(&path, &out, &[], Duration::from_secs(120));
    assert_exit_or_lagged(&output, 0);
    let result = run::read_run(&out);
    let step = &result.steps[0];
    assert!(step.ok > 0 && step.ok == step.intended, "{}", step.ok);
    let counter = step.counter.as_ref().expect("read through promql");
    assert_eq!(counter.delta, Some(step.ok as i64), "{counter:?}");
}

/// Two steps (1 then 2 replicas of Debian's Prometheus as the service) with the run's own
/// managed Prometheus scraping each replica at `[prometheus] scrape`: the counter through it
/// reconciles exactly in both steps, so the second step's "before" reading did not carry the
/// first step's replicas (their series went stale when the targets were replaced).
#[test]
fn a_promql_counter_through_the_managed_prometheus_reads_the_users_own_replicas() {
    let _serial = serial::lock_blocking();
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let dir = run::tempdir("promql-managed");
    super::prometheus_config(dir.path());
    let scenario = r#"name = "promql-managed"

[target]
kind = "local"

[service]
command = ["prometheus", "--config.file=prometheus.yml", "--web.listen-address=127.0.0.1:{port}",
           "--storage.tsdb.path={dir}/data", "--log.level=warn"]
ready = { path = "/-/ready", timeout = "30s" }

[prometheus]
mode = "managed"
scrape = "http://127.0.0.1:{port}/metrics"

[request]
path = "/-/healthy"

[counter]
promql = 'sum(prometheus_http_requests_total{handler="/-/healthy",code="200"}) or vector(0)'

[defaults]
timeout = "2s"
warmup = "0s"
pause = "0s"

[[campaign]]
name = "c"

[[campaign.step]]
name = "one"
rate = 40
duration = "3s"

[[campaign.step]]
name = "two"
rate = 40
duration = "3s"
replicas = 2
"#;
    let path = write_scenario(dir.path(), scenario);
    let out = dir.path().join("out");
    let (output, _) = run::run(&path, &out, &[], Duration::from_secs(180));
    assert_exit_or_lagged(&output, 0);
    let result = run::read_run(&out);
    assert_eq!(result.steps.len(), 2);
    for step in &result.steps {
        assert!(step.ok > 0 && step.ok == step.intended, "{}", step.ok);
        let counter = step
            .counter
            .as_ref()
            .expect("read through the managed prometheus");
        assert_eq!(
            counter.delta,
            Some(step.ok as i64),
            "{}: {counter:?}",
            step.name
        );
    }
}
