//! A user's service given by a relative program path and with no counter: the program is found
//! from the scenario's folder while loadgen runs elsewhere, each of two replicas (Python's
//! `http.server`, nobody's code here) gets half of the requests, and with no counter the step
//! has no counted ratio and its verdict says it rests on the client's view alone.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use super::write_scenario;
use crate::common::command::assert_exit_or_lagged;
use crate::common::{run, serial};

#[test]
fn a_relative_program_runs_from_the_scenario_folder_and_no_counter_means_the_client_view() {
    let _serial = serial::lock_blocking();
    let dir = run::tempdir("nocounter");
    let marker = run::marker("nocounter");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let serve = bin.join("serve");
    std::fs::write(
        &serve,
        "#!/bin/bash\n# serve PORT MARKER: a static file server on 127.0.0.1:PORT, named by MARKER\n\
         exec -a \"serve-$2\" python3 -m http.server \"$1\" --bind 127.0.0.1 \\\n\
         --directory \"$(dirname \"$0\")\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&serve, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scenario = format!(
        r#"name = "no-counter"

[target]
kind = "local"

[service]
command = ["./bin/serve", "{{port}}", "{marker}"]
ready = {{ path = "/", timeout = "20s" }}
stop_grace = "2s"

[request]
path = "/"

[defaults]
timeout = "2s"
warmup = "0s"
pause = "0s"

[[thresholds]]
metric = "success_ratio"
min = 0.99

[[campaign]]
name = "c"

[[campaign.step]]
rate = 40
duration = "3s"
replicas = 2
"#
    );
    let path = write_scenario(dir.path(), &scenario);
    let out = dir.path().join("out");
    // loadgen runs in the crate's folder, not the scenario's.
    let (output, pid) = run::run(&path, &out, &[], Duration::from_secs(90));
    assert_exit_or_lagged(&output, 0);
    run::assert_nothing_left(&marker, pid);
    let result = run::read_run(&out);
    let step = &result.steps[0];
    assert_eq!(step.ok, step.intended, "{step:?}");
    assert!(step.counter.is_none() && step.counted_ratio.is_none());
    assert!(
        step.checks
            .iter()
            .any(|f| f.message.contains("client's view alone")),
        "{:?}",
        step.checks
    );
    let shares: Vec<u64> = step.per_endpoint.iter().map(|e| e.ok).collect();
    assert_eq!(shares.len(), 2, "{shares:?}");
    assert!(shares[0].abs_diff(shares[1]) <= 1, "{shares:?}");
}
