//! Debian's Prometheus as the service: two replicas under a 0.5-core CFS quota each, each on
//! its own port, its own `prometheus_http_requests_total{handler="/-/healthy"}` read from every
//! replica and summed — the counter delta reconciles with the generator's OK count exactly, the
//! generator spread the requests evenly (its own per-endpoint counts equal each replica's own
//! counter), and each replica's CPU was read from its own cgroup.

use std::time::Duration;

use super::{prometheus_config, write_scenario};
use crate::common::command::assert_exit_or_lagged;
use crate::common::{external, run, serial};

const SCENARIO: &str = r#"
name = "third-party-e2e"

[target]
kind = "local"

[service]
command = ["prometheus", "--config.file=prometheus.yml", "--web.listen-address=127.0.0.1:{port}",
           "--storage.tsdb.path={dir}/data", "--log.level=warn", "--web.page-title={marker}"]
ready = { path = "/-/ready", timeout = "30s" }

[request]
method = "GET"
path = "/-/healthy"

[counter]
metric = 'prometheus_http_requests_total{handler="/-/healthy",code="200"}'
metrics_url = "http://127.0.0.1:{port}/metrics"

[defaults]
timeout = "2s"
warmup = "500ms"
pause = "0s"

[[campaign]]
name = "c"

[[campaign.step]]
name = "two-halves"
rate = 150
duration = "4s"
replicas = 2
cpu_limit = 0.5
"#;

#[test]
fn a_third_party_server_in_two_half_core_replicas_reconciles_with_its_own_counter() {
    let _serial = serial::lock_blocking();
    let (Some(_), true) = (
        external::binary("prometheus", "prometheus"),
        external::cgroups_usable(),
    ) else {
        return;
    };
    let dir = run::tempdir("thirdparty");
    let marker = run::marker("tp");
    prometheus_config(dir.path());
    let scenario = write_scenario(dir.path(), &SCENARIO.replace("{marker}", &marker));
    let out = dir.path().join("out");
    let (output, pid) = run::run(&scenario, &out, &[], Duration::from_secs(120));
    assert_exit_or_lagged(&output, 0);
    run::assert_nothing_left(&marker, pid);

    let result = run::read_run(&out);
    let step = &result.steps[0];
    let counter = step.counter.as_ref().expect("the counter was read");
    assert!(step.ok > 0 && step.ok == step.intended, "{}", step.ok);
    assert_eq!(counter.delta, Some(step.ok as i64), "{counter:?}");
    assert_eq!(counter.per_replica.len(), 2, "{counter:?}");
    let cpu = step.cpu.as_ref().expect("replicas ran in cgroups");
    assert_eq!(cpu.per_replica.len(), 2);
    for r in &cpu.per_replica {
        let cores = r.cores_used.expect("read from the replica's own cgroup");
        assert!(cores > 0.0 && cores < 0.6, "{r:?}");
        assert!(r.nr_periods.is_some(), "a quota was set: {r:?}");
    }
    // Each replica's own counter saw about half of the requests: the generator spread them.
    let even = step.ok as f64 / 2.0;
    for n in counter.per_replica.iter().map(|v| v.expect("read") as f64) {
        assert!((n - even).abs() <= even * 0.1, "{:?}", counter.per_replica);
    }
    // The generator counted the same split as the replicas' own counters, endpoint by endpoint.
    assert_eq!(step.per_endpoint.len(), 2, "{:?}", step.per_endpoint);
    for (e, own) in step.per_endpoint.iter().zip(&counter.per_replica) {
        assert_eq!(
            Some(e.ok),
            *own,
            "{:?} vs {:?}",
            step.per_endpoint,
            counter.per_replica
        );
    }
    assert!(
        out.join("service")
            .join("deploy1")
            .join("replica-1")
            .join("stderr.log")
            .exists(),
        "each replica's log is in its own folder of the run's output"
    );
}
