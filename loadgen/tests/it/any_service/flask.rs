//! The TD's own stack as the service: the Flask example under gunicorn, with PostgreSQL and
//! Redis started by loadgen as campaign-scope dependencies, two replicas on their own ports —
//! the click total in Redis (read through the service) grows by exactly the generator's OK
//! count, and both replicas served load. Then the same stack over HTTPS: `tls = true` with
//! `[service] tls_args` makes gunicorn serve the run's certificate, and readiness, load and the
//! counter all go over TLS trusting the run's CA.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use super::write_scenario;
use crate::common::command::assert_exit_or_lagged;
use crate::common::external::available;
use crate::common::{external, repo_dir, run, serial};

/// The scenario; `tls` adds gunicorn's TLS flags and serves every step over HTTPS.
fn scenario(flask: &Path, marker: &str, tls: bool) -> String {
    let f = flask.display();
    let tls = if tls { "tls = true" } else { "# plain HTTP" };
    format!(
        r#"name = "flask-e2e"

[target]
kind = "local"

[[dependency]]
name = "postgres"
command = ["{f}/start-postgres", "{{dir}}/data", "{{port}}"]
ready = {{ tcp = true, timeout = "60s" }}
scope = "campaign"

[[dependency]]
name = "redis"
command = ["redis-server", "--port", "{{port}}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "{{dir}}"]
ready = {{ tcp = true, timeout = "20s" }}
scope = "campaign"

[service]
command = ["{f}/.venv/bin/gunicorn", "-c", "{f}/gunicorn.conf.py", "--bind", "127.0.0.1:{{port}}",
           "--workers", "2", "--chdir", "{f}", "--name", "{marker}", "app:app"]
ready = {{ path = "/readyz", timeout = "60s" }}
stop_grace = "5s"
tls_args = ["--certfile", "{{tls_cert}}", "--keyfile", "{{tls_key}}"]

[service.env]
DATABASE_URL = "postgresql://postgres@127.0.0.1:{{dependency.postgres.port}}/postgres"
REDIS_URL = "redis://127.0.0.1:{{dependency.redis.port}}/0"
SITES = "td4"
PROMETHEUS_MULTIPROC_DIR = "{{dir}}/prometheus"
METRICS_PORT = "{{metrics_port}}"

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"td4","url":"/page/{{seq}}"}}'

[counter]
http = "/api/sites/td4/stats"
json_pointer = "/clicks"

[defaults]
timeout = "5s"
warmup = "1s"
pause = "0s"
{tls}

[[campaign]]
name = "c"

[[campaign.step]]
name = "two"
rate = 60
duration = "4s"
replicas = 2
"#
    )
}

#[test]
fn the_flask_example_with_postgres_and_redis_reconciles_exactly() {
    let Some(step) = flask_step(false) else {
        return;
    };
    assert!(
        step.tls.is_none(),
        "a plain step shook hands: {:?}",
        step.tls
    );
}

#[test]
fn the_flask_example_over_the_runs_own_tls_reconciles_exactly() {
    let Some(step) = flask_step(true) else {
        return;
    };
    let topology = step.topology.as_ref().expect("a topology");
    assert!(topology.tls, "the step is not marked TLS: {topology:?}");
    let tls = step.tls.as_ref().expect("the step's handshakes");
    assert!(
        tls.handshakes >= 2 && tls.handshake_failures.is_empty() && !tls.insecure,
        "two replicas, each at least one verified handshake: {tls:?}"
    );
    // The run's CA was trusted, and went with the run.
    assert!(tls.roots.ends_with("ca.pem"), "{}", tls.roots);
    assert!(
        !Path::new(&tls.roots).exists(),
        "{} outlived the run",
        tls.roots
    );
}

/// Runs the Flask scenario (over TLS when `tls`) and checks what holds either way: every
/// request answered, the counter read through the service equal to them, both replicas busy.
/// Returns the step; `None` after a loud skip (no venv, PostgreSQL or redis-server).
fn flask_step(tls: bool) -> Option<loadgen_model::result::StepResult> {
    let _serial = serial::lock_blocking();
    let flask = repo_dir().join("examples/flask");
    let venv = flask.join(".venv/bin/gunicorn");
    let have_venv = if venv.exists() {
        Ok(())
    } else {
        Err(format!(
            "{} is missing (examples/flask/test makes it)",
            venv.display()
        ))
    };
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .map(|_| ())
        .map_err(|_| "PostgreSQL is not installed (apt-get install postgresql)".to_string());
    if available(have_venv).is_none()
        || available(postgres).is_none()
        || external::binary("redis-server", "redis-server").is_none()
    {
        return None;
    }
    let dir = run::tempdir("flask");
    // PostgreSQL runs as its own user, who must reach its data folder under this one.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let marker = run::marker("flask");
    let path = write_scenario(dir.path(), &scenario(&flask, &marker, tls));
    let out = dir.path().join("out");
    let (output, pid) = run::run(&path, &out, &[], Duration::from_secs(180));
    assert_exit_or_lagged(&output, 0);
    run::assert_nothing_left(&marker, pid);
    // PostgreSQL and Redis carry no marker; their folders in the run's output name them.
    let deps = out.join("service").display().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !run::cmdlines_containing(&deps).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "dependencies left running: {:?}",
            run::cmdlines_containing(&deps)
        );
        std::thread::sleep(run::POLL);
    }

    let result = run::read_run(&out);
    let step = &result.steps[0];
    assert!(
        step.ok > 0 && step.ok == step.intended,
        "ok {} of {}",
        step.ok,
        step.intended
    );
    let counter = step.counter.as_ref().expect("the counter was read");
    assert_eq!(counter.delta, Some(step.ok as i64), "{counter:?}");
    let cpu = step.cpu.as_ref().expect("replicas ran in cgroups");
    assert_eq!(cpu.per_replica.len(), 2);
    assert!(
        cpu.per_replica
            .iter()
            .all(|r| r.cores_used.is_some_and(|c| c > 0.0)),
        "both replicas served load: {:?}",
        cpu.per_replica
    );
    Some(step.clone())
}
