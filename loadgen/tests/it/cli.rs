//! The CLI contract: `loadgen --help` shows every subcommand with an example and the exit
//! codes; an unknown subcommand or a bad scenario path is a one-line error with exit 2.

use crate::common::{self, command::loadgen_output as loadgen};

#[test]
fn help_shows_an_example_of_every_subcommand_and_the_exit_codes() {
    let _serial = common::serial::lock_blocking();
    let o = loadgen(["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "run", "attack", "merge", "validate", "report", "check", "baseline",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("loadgen {cmd} "))),
            "no example of `{cmd}` in:\n{help}"
        );
    }
    assert!(help.contains("Exit codes: 0"), "{help}");
}

#[test]
fn a_missing_scenario_exits_2_with_one_line() {
    let _serial = common::serial::lock_blocking();
    let o = loadgen(["run", "/nonexistent/scenario.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/scenario.toml"), "{err}");
}

#[test]
fn a_bad_time_scale_exits_2_before_anything_runs() {
    let _serial = common::serial::lock_blocking();
    let smoke = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.toml");
    let o = loadgen(["run", smoke, "--time-scale", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("time-scale") || err.contains("time scale"),
        "{err}"
    );
}
