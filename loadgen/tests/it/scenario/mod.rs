//! Scenario files → plan: every class of bad scenario is reported with file, line, column and
//! key (and `loadgen validate` exits 2 on it), td4.toml expands to the 19 steps of the original,
//! smoke.toml stays short, `validate` keeps its table and `--json` its contract (golden files),
//! and the runner's helpers `scale_time` / `select_steps` behave.
//!
//! Golden files: `UPDATE_GOLDEN=1 cargo test -p loadgen --test it -- scenario::` rewrites
//! `tests/golden/validate-td4.json` and `tests/golden/validate-td4.txt` from the current output.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use loadgen::plan::{Plan, PrometheusMode, Store, Target};
use loadgen::scenario::ScenarioError;
use loadgen_engine::load::Arrival;

use crate::common::{self, command, golden::assert_golden};

fn fixture(name: &str) -> PathBuf {
    common::manifest_dir()
        .join("tests/fixtures/scenarios")
        .join(name)
}

fn scenario_file(name: &str) -> PathBuf {
    common::repo_dir().join("scenarios").join(name)
}

fn load_error(path: &Path) -> String {
    match Plan::load(path) {
        Ok(_) => panic!("{} should be rejected", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Asserts the error names the file, `line:col` and key, and says `needle`.
fn assert_error(name: &str, line_col: &str, key: &str, needle: &str) {
    let path = fixture(name);
    let msg = load_error(&path);
    let prefix = format!("{}:{line_col}: key '{key}': ", path.display());
    assert!(
        msg.starts_with(&prefix),
        "{name}: expected prefix {prefix:?}\n got {msg:?}"
    );
    assert!(
        msg.contains(needle),
        "{name}: expected {needle:?} in {msg:?}"
    );
    assert!(
        !msg.contains('\n'),
        "{name}: error must be one line: {msg:?}"
    );
}

/// `loadgen validate [FLAGS…] PATH`.
fn validate(flags: &[&str], path: &Path) -> Output {
    command::loadgen()
        .arg("validate")
        .args(flags)
        .arg(path)
        .output()
        .unwrap()
}

fn validate_json(path: &Path) -> String {
    let out = validate(&["--json"], path);
    command::assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn syntax_error_names_position_and_key() {
    assert_error("bad-syntax.toml", "19:8", "rate", "expected");
}

#[test]
fn unknown_key_is_rejected_with_the_allowed_keys() {
    assert_error(
        "bad-unknown-key.toml",
        "21:1",
        "campaign.step.rat",
        "unknown key, expected one of `name`, `rate`",
    );
}

#[test]
fn top_level_key_written_inside_a_table_gets_a_hint() {
    assert_error(
        "bad-counter-site-in-request.toml",
        "13:1",
        "request.counter_site",
        "top-level key",
    );
}

#[test]
fn wrong_type_is_rejected() {
    assert_error(
        "bad-wrong-type.toml",
        "19:8",
        "campaign.step.rate",
        "invalid type: string \"fast\", expected a number > 0",
    );
}

#[test]
fn negative_and_zero_rates_are_rejected() {
    assert_error(
        "bad-negative-rate.toml",
        "19:8",
        "campaign.step.rate",
        "expected a number > 0, got -5",
    );
    assert_error(
        "bad-zero-rate.toml",
        "19:8",
        "campaign.step.rate",
        "expected a number > 0, got 0",
    );
}

#[test]
fn zero_duration_is_rejected() {
    assert_error(
        "bad-zero-duration.toml",
        "20:12",
        "campaign.step.duration",
        "expected a duration > 0, got \"0s\"",
    );
}

#[test]
fn zero_replicas_are_rejected() {
    assert_error(
        "bad-replicas-zero.toml",
        "21:12",
        "campaign.step.replicas",
        "expected an integer >= 1, got 0",
    );
}

#[test]
fn cpu_limit_must_be_positive() {
    assert_error(
        "bad-cpu-limit-zero.toml",
        "21:13",
        "campaign.step.cpu_limit",
        "expected a number of cores > 0 or \"none\", got 0",
    );
    assert_error(
        "bad-cpu-limit-negative.toml",
        "21:13",
        "campaign.step.cpu_limit",
        "got -1.5",
    );
    assert_error(
        "bad-matrix-cpu-limit.toml",
        "19:22",
        "campaign.matrix.cpu_limit",
        "got 0",
    );
}

#[test]
fn missing_required_key_points_at_its_table() {
    assert_error(
        "bad-missing-key.toml",
        "18:1",
        "campaign.step.duration",
        "required key is missing",
    );
}

#[test]
fn duplicate_step_names_are_rejected() {
    assert_error(
        "bad-duplicate-step.toml",
        "24:8",
        "campaign.step.name",
        "duplicate step name \"twice\" in campaign \"c\" (first at line 19)",
    );
    // Two unnamed steps with the same numbers generate the same name.
    assert_error(
        "bad-duplicate-generated-name.toml",
        "22:1",
        "campaign.step.name",
        "duplicate step name \"r1-nolimit-10rps-1s\"",
    );
}

#[test]
fn requests_must_match_rate_times_duration() {
    assert_error(
        "bad-requests-mismatch.toml",
        "21:12",
        "campaign.step.requests",
        "expected rate × duration = 10 × 1s = 10 requests, got 11",
    );
}

#[test]
fn url_target_must_be_loopback() {
    assert_error(
        "bad-url-not-loopback.toml",
        "6:7",
        "target.url",
        "expected a loopback URL",
    );
}

#[test]
fn kubernetes_target_refuses_a_service_table() {
    assert_error(
        "bad-kubernetes.toml",
        "7:1",
        "service",
        "only applies to kind = \"local\"",
    );
}

#[test]
fn unreadable_body_file_is_reported_at_the_body_key() {
    assert_error(
        "bad-body-file.toml",
        "14:8",
        "request.body",
        "cannot read body file",
    );
}

#[test]
fn unknown_store_lists_the_choices() {
    assert_error(
        "bad-store.toml",
        "21:9",
        "campaign.step.store",
        "expected `memory` or `redis`, got \"mysql\"",
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // "café crème" has two 2-byte characters before the mistake on the same line.
    assert_error(
        "bad-utf8-column.toml",
        "14:50",
        "request.headers.x-count",
        "expected a string",
    );
}

#[test]
fn campaign_structure_mistakes_are_rejected() {
    assert_error(
        "bad-duplicate-campaign.toml",
        "23:8",
        "campaign.name",
        "duplicate campaign name \"c\" (first at line 16)",
    );
    assert_error(
        "bad-step-and-matrix.toml",
        "18:1",
        "campaign.matrix",
        "has both [[campaign.step]] and [campaign.matrix]",
    );
    assert_error(
        "bad-campaign-without-steps.toml",
        "16:8",
        "campaign.step",
        "has no steps",
    );
}

#[test]
fn threshold_mistakes_are_rejected() {
    assert_error(
        "bad-threshold-glob.toml",
        "18:17",
        "thresholds.steps",
        "\"d/*\" matches no step",
    );
    assert_error(
        "bad-threshold-metric.toml",
        "16:10",
        "thresholds.metric",
        "expected one of counted_ratio",
    );
}

#[test]
fn ramp_requests_are_checked_against_the_ramp() {
    assert_error(
        "bad-ramp-requests.toml",
        "22:12",
        "campaign.step.requests",
        "(0 + 10) / 2 × 10s = 50 requests, got 100",
    );
}

#[test]
fn url_target_is_http_or_https_on_loopback() {
    let tls = Plan::load(&fixture("url-target-https.toml")).unwrap();
    assert_eq!(
        tls.target,
        Target::Url {
            base: "https://127.0.0.1:8443".into()
        }
    );
    let plan = Plan::load(&fixture("url-target.toml")).unwrap();
    assert_eq!(
        plan.target,
        Target::Url {
            base: "http://127.0.0.1:18080".into()
        }
    );
    assert_eq!(plan.counter.site(), Some("s"));
}

#[test]
fn missing_scenario_file_is_an_error_naming_it() {
    let path = fixture("does-not-exist.toml");
    let msg = load_error(&path);
    assert!(
        msg.starts_with(&format!("{}: cannot read scenario", path.display())),
        "{msg}"
    );
}

#[test]
fn validate_exits_2_with_a_one_line_error() {
    let _serial = common::serial::lock_blocking();
    for name in [
        "bad-syntax.toml",
        "bad-unknown-key.toml",
        "bad-wrong-type.toml",
        "bad-negative-rate.toml",
        "bad-zero-duration.toml",
        "bad-replicas-zero.toml",
        "bad-cpu-limit-zero.toml",
        "bad-missing-key.toml",
        "bad-duplicate-step.toml",
        "bad-requests-mismatch.toml",
        "bad-url-not-loopback.toml",
        "bad-body-file.toml",
    ] {
        let path = fixture(name);
        let out = validate(&[], &path);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line on stderr, got {stderr:?}");
        assert!(
            lines[0].contains(&format!("{}:", path.display())) && lines[0].contains(": key '"),
            "{name}: {stderr}"
        );
    }
}

mod plans;
mod tls;
mod validate_output;
