//! Bad input for a user's service is one clear line and exit 2, with nothing left running:
//! mistakes the scenario shows are found by `validate` with their position and key; what only
//! starting the service shows (a command that exits before it is ready, a port never ready, an
//! absent metric, a JSON pointer that finds nothing) is found by the run's pre-flight.

use std::time::Duration;

use super::{prometheus_config, write_scenario};
use crate::common::command::{assert_exit, loadgen_output};
use crate::common::{external, run, serial};

/// A local command-service scenario around `service` (the `[service]` table's keys) and
/// `extra` (more tables).
fn scenario(service: &str, extra: &str) -> String {
    format!(
        r#"name = "bad"

[target]
kind = "local"

[service]
{service}

[request]
path = "/"

{extra}

[[campaign]]
name = "c"

[[campaign.step]]
rate = 10
duration = "1s"
"#
    )
}

/// `loadgen validate` of `text`: exit 2 and a stderr line holding every one of `needles`.
fn refused(text: &str, needles: &[&str]) {
    let dir = crate::common::tempdir("badsvc");
    let path = write_scenario(dir.path(), text);
    let out = loadgen_output(["validate".as_ref(), path.as_os_str()]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

#[test]
fn tls_mistakes_name_their_key() {
    // The run's certificate is only for a replica's TLS arguments, not its plain command.
    refused(
        &scenario(r#"command = ["true", "--cert={tls_cert}"]"#, ""),
        &["scenario.toml:7:", "service.command", "{tls_cert}"],
    );
    // `tls = true` on a command that cannot be told how to serve it.
    refused(
        &scenario(r#"command = ["true"]"#, "[defaults]\ntls = true"),
        &["defaults.tls", "tls_args", "{tls_cert}"],
    );
    // A misspelt placeholder in tls_args lists the ones it may hold.
    refused(
        &scenario(
            "command = [\"true\"]\ntls_args = [\"--key={tls_keys}\"]",
            "[defaults]\ntls = true",
        ),
        &["service.tls_args", "{tls_keys}", "{tls_key}"],
    );
    // polymetrie's TLS flags are loadgen's own.
    refused(
        &scenario("cost = \"1ms\"\nsites = [\"s\"]\ntls_args = [\"--x\"]", ""),
        &["service.tls_args", "polymetrie"],
    );
    // A url target is https:// by its url.
    let url = "name = \"bad\"\n[target]\nkind = \"url\"\nurl = \"http://127.0.0.1:9\"\n\
               [request]\npath = \"/\"\n[[campaign]]\nname = \"c\"\ntls = true\n\
               [[campaign.step]]\nrate = 1\nduration = \"1s\"\n";
    refused(url, &["campaign.tls", "https:// by its url"]);
}

#[test]
fn scenario_mistakes_name_their_position_and_key() {
    refused(
        &scenario(r#"command = ["true", "--port={prot}"]"#, ""),
        &[
            "scenario.toml:7:",
            "service.command",
            "{prot}",
            "{metrics_port}",
        ],
    );
    refused(
        &scenario(r#"command = ["no-such-program-loadgen"]"#, ""),
        &[
            "service.command",
            "\"no-such-program-loadgen\" not found on PATH",
        ],
    );
    refused(
        &scenario(r#"command = ["./missing/server"]"#, ""),
        &["service.command", "scenario's folder"],
    );
    refused(
        &scenario("command = [\"true\"]\ncost = \"5ms\"", ""),
        &["service.cost", "bundled polymetrie"],
    );
    refused(
        &scenario(r#"command = ["true"]"#, "[defaults]\nstore = \"redis\""),
        &["defaults.store", "bundled polymetrie"],
    );
    let with_step_store = scenario(r#"command = ["true"]"#, "")
        .replace("rate = 10\n", "rate = 10\nstore = \"redis\"\n");
    refused(&with_step_store, &["campaign.step.store", "[[dependency]]"]);
    refused(
        &scenario(r#"command = ["true", "{dependency.db.port}"]"#, ""),
        &["{dependency.db.port}", "names no [[dependency]]"],
    );
    refused(
        &scenario(
            r#"command = ["true"]"#,
            "[counter]\nmetric = \"x_total\"\nhttp = \"/x\"",
        ),
        &["counter", "exactly one of"],
    );
    refused(
        &scenario(r#"command = ["true"]"#, "[counter]\nmetric = \"x_total\""),
        &["counter.metrics_url", "required key"],
    );
    refused(
        &scenario(
            r#"command = ["true"]"#,
            "[counter]\nmetric = \"1bad\"\nmetrics_url = \"http://127.0.0.1:{port}/m\"",
        ),
        &["counter.metric", "metric name"],
    );
}

#[test]
fn prometheus_keys_for_a_users_service_are_refused_where_they_cannot_apply() {
    let svc = r#"command = ["true"]"#;
    let promql = "[counter]\npromql = \"sum(x_total)\"\n";
    refused(
        &scenario(svc, &format!("{promql}[prometheus]\nmode = \"managed\"")),
        &["prometheus.scrape", "required key", "{metrics_port}"],
    );
    refused(
        &scenario(svc, promql),
        &["counter.promql", "needs [prometheus]", "managed"],
    );
    refused(
        &scenario(
            svc,
            "[prometheus]\nmode = \"url\"\nurl = \"http://127.0.0.1:9\"\nscrape = \"http://127.0.0.1:{port}/metrics\"",
        ),
        &["prometheus.scrape", "mode = \"managed\""],
    );
    refused(
        &scenario(
            svc,
            "[prometheus]\nmode = \"managed\"\nscrape = \"http://127.0.0.1:{prot}/metrics\"",
        ),
        &["prometheus.scrape", "{prot}"],
    );
    refused(
        &scenario(
            svc,
            "[prometheus]\nmode = \"managed\"\nscrape = \"127.0.0.1:{port}/metrics\"",
        ),
        &["prometheus.scrape", "http:// URL"],
    );
}

/// `loadgen run` of `text` in `dir`: exit 2, one line on stderr holding every one of `needles`,
/// and no process carrying `marker` left.
fn run_refused(dir: &std::path::Path, text: &str, marker: &str, needles: &[&str]) {
    let path = write_scenario(dir, text);
    let (out, pid) = run::run(&path, &dir.join("out"), &[], Duration::from_secs(90));
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap_or_default().to_string();
    for n in needles {
        assert!(last.contains(n), "{n:?} not in: {err}");
    }
    run::assert_nothing_left(marker, pid);
}

#[test]
fn a_command_that_exits_before_ready_is_refused_with_its_stderr() {
    let _serial = serial::lock_blocking();
    let dir = run::tempdir("exits");
    let marker = run::marker("exits");
    let service = format!(
        r#"command = ["sh", "-c", "echo boom-{marker} >&2; exit 3", "{marker}"]
ready = {{ path = "/", timeout = "10s" }}"#
    );
    run_refused(
        dir.path(),
        &scenario(&service, ""),
        &marker,
        &[
            "exited before it was ready",
            "exit status: 3",
            &format!("boom-{marker}"),
        ],
    );
}

#[test]
fn a_port_never_ready_is_refused_with_the_last_error() {
    let _serial = serial::lock_blocking();
    let dir = run::tempdir("never");
    let marker = run::marker("never");
    let service = format!(
        r#"command = ["python3", "-c", "import time; time.sleep(60)", "{marker}"]
ready = {{ tcp = true, timeout = "1s" }}
stop_grace = "1s""#
    );
    run_refused(
        dir.path(),
        &scenario(&service, ""),
        &marker,
        &["not ready", "connect 127.0.0.1:"],
    );
}

/// Prometheus as the service, with `counter` as its `[counter]` table.
fn prometheus_with(dir: &std::path::Path, marker: &str, counter: &str) -> String {
    prometheus_config(dir);
    let service = format!(
        r#"command = ["prometheus", "--config.file=prometheus.yml", "--web.listen-address=127.0.0.1:{{port}}",
           "--storage.tsdb.path={{dir}}/data", "--log.level=warn", "--web.page-title={marker}"]
ready = {{ path = "/-/ready", timeout = "30s" }}"#
    );
    scenario(&service, &format!("[counter]\n{counter}"))
}

#[test]
fn an_absent_metric_is_refused_naming_the_url_and_the_closest_names() {
    let _serial = serial::lock_blocking();
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let dir = run::tempdir("nometric");
    let marker = run::marker("nometric");
    let counter = "metric = 'prometheus_http_requestz_total'\nmetrics_url = \"http://127.0.0.1:{port}/metrics\"";
    run_refused(
        dir.path(),
        &prometheus_with(dir.path(), &marker, counter),
        &marker,
        &[
            "metric prometheus_http_requestz_total is not in http://127.0.0.1:",
            "closest names there: prometheus_http_requests_total",
        ],
    );
}

#[test]
fn a_json_pointer_that_finds_nothing_is_refused() {
    let _serial = serial::lock_blocking();
    if external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let dir = run::tempdir("pointer");
    let marker = run::marker("pointer");
    let counter = "http = \"/api/v1/status/buildinfo\"\njson_pointer = \"/data/clicks\"";
    run_refused(
        dir.path(),
        &prometheus_with(dir.path(), &marker, counter),
        &marker,
        &[
            "JSON pointer /data/clicks finds nothing",
            "/api/v1/status/buildinfo",
        ],
    );
}
