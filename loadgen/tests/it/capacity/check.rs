//! The comparison rules on synthetic run pairs, and `loadgen check` (exit codes, table and
//! Markdown goldens) and the report's comparison section on them.

use std::path::{Path, PathBuf};
use std::process::Output;

use loadgen_judge::baseline::{Baseline, ScenarioRef, StepFigures, BASELINE_VERSION};
use loadgen_judge::comparison::{self, Options, Outcome, Verdict};
use loadgen_judge::search::Ending;
use loadgen_model::capacity::{Capacity, FailureEvidence, Repeat};
use loadgen_model::result::{CampaignResult, CheckName, MachineInfo, TopologyView};
use loadgen_model::step_id::StepId;

use crate::common::{self, command, golden::assert_golden};

// ---------------------------------------------------------------- synthetic runs

fn capacity(
    key: &str,
    replicas: u32,
    pass: Option<f64>,
    fail: Option<f64>,
    spread: f64,
) -> Capacity {
    Capacity {
        campaign: "ci".into(),
        configuration: key.into(),
        topology: TopologyView {
            replicas,
            cpu_limit_cores: Some(0.5),
            store: "memory".into(),
            autoscale: None,
            tls: false,
        },
        capacity_rps: pass,
        failed_rps: fail,
        spread_rps: pass.map(|_| spread),
        repeats: vec![Repeat {
            rate_rps: pass.unwrap_or(40.0),
            runs: 3,
            passed: 3,
        }],
        probes: 11,
        generator_reruns: 0,
        ending: Ending::Converged,
        first_failure: fail.map(|f| FailureEvidence {
            step: StepId::new(Some("ci"), &format!("search-{key}-05-{f}rps")),
            rate_rps: f,
            broken: vec!["p99 390 ms > 250 ms".into()],
            causes: vec![CheckName::Throttling],
        }),
        capacity_per_replica_rps: pass.map(|p| p / f64::from(replicas)),
        capacity_per_core_rps: pass.map(|p| p / (0.5 * f64::from(replicas))),
        scaling_efficiency: None,
        cpu_s_per_1k_clicks: Some(5.3),
    }
}

fn baseline(sha: &str, capacities: Vec<Capacity>) -> Baseline {
    Baseline {
        baseline_version: BASELINE_VERSION,
        scenario: ScenarioRef {
            name: "ci".into(),
            path: "scenarios/ci.toml".into(),
            sha256: sha.into(),
        },
        machine: MachineInfo {
            hostname: None,
            cpus: Some(2),
            kernel: Some("6.1.0".into()),
            cgroup_mode: Some("v1".into()),
            memory_bytes: Some(8 << 30),
            cpu_model: Some("Test CPU @ 2.0GHz".into()),
        },
        time_scale: 1.0,
        tool_version: "0.1.0".into(),
        started_at: "2026-12-01T12:00:00.000Z".into(),
        capacities,
        steps: vec![StepFigures {
            id: StepId::new(Some("ci"), "search-r1-cpu0.5-00-40rps"),
            rate_rps: 40.0,
            evidence: true,
            counted_ratio: Some(1.0),
            p99_ms: Some(20.0),
            cpu_s_per_1k_clicks: Some(5.2),
        }],
    }
}

const SHA: &str = "4736e779d6910000000000000000000000000000000000000000000000000000";

fn options() -> Options {
    Options {
        tolerance: 0.10,
        allow_different: false,
    }
}

fn then() -> Baseline {
    baseline(
        SHA,
        vec![
            capacity("r1-cpu0.5", 1, Some(87.0), Some(91.0), 0.0),
            capacity("r2-cpu0.5", 2, Some(134.0), Some(140.0), 6.0),
        ],
    )
}

#[test]
fn a_clear_drop_is_a_regression_naming_the_configuration() {
    let now = baseline(
        SHA,
        vec![
            capacity("r1-cpu0.5", 1, Some(44.0), Some(46.0), 0.0),
            capacity("r2-cpu0.5", 2, Some(131.0), Some(140.0), 0.0),
        ],
    );
    let c = comparison::compare(&then(), &now, options());
    assert_eq!(c.outcome(), Outcome::Regression);
    let v: Vec<Verdict> = c.capacities.iter().map(|r| r.verdict).collect();
    assert_eq!(v, vec![Verdict::Regression, Verdict::WithinTolerance]);
    let line = loadgen_report::comparison::verdict_line(&c);
    assert!(line.contains("ci/r1-cpu0.5 87 → 44 req/s"), "{line}");
}

#[test]
fn a_drop_beyond_the_tolerance_but_inside_the_repeats_spread_is_noise() {
    // 134 → 118 is −12 %, but the repeats of both runs passed up to 10 req/s above their
    // capacity: 16 req/s is within that spread.
    let mut now = then();
    now.capacities[1] = capacity("r2-cpu0.5", 2, Some(118.0), Some(124.0), 10.0);
    let c = comparison::compare(&then(), &now, options());
    assert_eq!(c.capacities[1].verdict, Verdict::WithinNoise);
    assert_eq!(c.outcome(), Outcome::Pass);
}

#[test]
fn a_rise_is_an_improvement_and_passes() {
    let mut now = then();
    now.capacities[0] = capacity("r1-cpu0.5", 1, Some(120.0), Some(126.0), 0.0);
    let c = comparison::compare(&then(), &now, options());
    assert_eq!(c.capacities[0].verdict, Verdict::Improvement);
    assert_eq!(c.outcome(), Outcome::Pass);
}

#[test]
fn a_configuration_only_in_one_run_is_listed_not_failed() {
    let mut now = then();
    now.capacities.remove(1);
    now.capacities
        .push(capacity("r4-cpu0.5", 4, Some(200.0), Some(210.0), 0.0));
    let c = comparison::compare(&then(), &now, options());
    let v: Vec<Verdict> = c.capacities.iter().map(|r| r.verdict).collect();
    assert_eq!(
        v,
        vec![
            Verdict::WithinTolerance,
            Verdict::OnlyInBaseline,
            Verdict::OnlyInRun
        ]
    );
    assert_eq!(c.outcome(), Outcome::Pass);
}

#[test]
fn a_capacity_now_below_the_lowest_probe_is_a_regression() {
    let mut now = then();
    now.capacities[0] = capacity("r1-cpu0.5", 1, None, Some(40.0), 0.0);
    let c = comparison::compare(&then(), &now, options());
    assert_eq!(c.capacities[0].verdict, Verdict::Regression);
}

#[test]
fn another_scenario_or_machine_is_not_comparable_unless_allowed() {
    let mut other = then();
    other.scenario.sha256 = "ffff".repeat(16);
    other.machine.cpus = Some(4);
    let c = comparison::compare(&then(), &other, options());
    assert_eq!(c.outcome(), Outcome::NotComparable);
    assert!(
        c.differences[0].contains("different scenario"),
        "{:?}",
        c.differences
    );
    assert!(c.differences[1].contains("CPUs 2 in the baseline, 4 in this run"));
    let allowed = comparison::compare(
        &then(),
        &other,
        Options {
            allow_different: true,
            ..options()
        },
    );
    assert_eq!(allowed.outcome(), Outcome::Pass);
    // The hostname is not the machine: a CI runner gets a new one every run.
    let mut renamed = then();
    renamed.machine.hostname = Some("runner-123".into());
    assert!(comparison::differences(&then(), &renamed).is_empty());
}

// ---------------------------------------------------------------- the binary and goldens

fn write_json(dir: &Path, name: &str, b: &Baseline) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(b).unwrap()).unwrap();
    path
}

/// `loadgen check RUN --baseline BASE ARGS` with `$GITHUB_STEP_SUMMARY` at `summary`.
fn check(run: &Path, base: &Path, summary: &Path, args: &[&str]) -> Output {
    command::loadgen()
        .arg("check")
        .arg(run)
        .arg("--baseline")
        .arg(base)
        .args(args)
        .env("GITHUB_STEP_SUMMARY", summary)
        .output()
        .unwrap()
}

#[test]
fn check_prints_its_table_writes_markdown_and_exits_by_outcome() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("check-golden");
    let base = write_json(dir.path(), "base.json", &then());
    let mut regressed = then();
    regressed.capacities[0] = capacity("r1-cpu0.5", 1, Some(44.0), Some(46.0), 0.0);
    regressed.steps[0].p99_ms = Some(31.0);
    let run = write_json(dir.path(), "run.json", &regressed);
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step's summary\n").unwrap();
    let out = check(&run, &base, &summary, &[]);
    command::assert_exit(&out, 1);
    assert_golden("check-table.txt", &String::from_utf8_lossy(&out.stdout));
    let md = std::fs::read_to_string(&summary).unwrap();
    // Appended, as GitHub collects every step's summary in the one file.
    let md = md
        .strip_prefix("earlier step's summary\n")
        .expect("appended");
    assert_golden("check-summary.md", md);

    let same = check(&base, &base, &summary, &[]);
    command::assert_exit(&same, 0);

    let mut other = then();
    other.scenario.sha256 = "ffff".repeat(16);
    let other = write_json(dir.path(), "other.json", &other);
    let out = check(&other, &base, &summary, &[]);
    command::assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("different scenario") && err.contains("--allow-different"),
        "{err}"
    );
    command::assert_exit(&check(&other, &base, &summary, &["--allow-different"]), 0);
    let bad = check(&run, &base, &summary, &["--tolerance", "ten"]);
    command::assert_exit(&bad, 2);
}

#[test]
fn check_without_a_baseline_yet_passes_and_writes_the_one_to_commit() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("check-first-run");
    let run = write_json(dir.path(), "run.json", &then());
    let missing = dir.path().join("committed").join("ci.baseline.json");
    let summary = dir.path().join("summary.md");
    let out = check(&run, &missing, &summary, &[]);
    command::assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no baseline yet: this run's baseline.json is the artifact to commit"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(dir.path().join("baseline.json")).unwrap();
    assert_eq!(Baseline::from_json(&written).unwrap(), then());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("no baseline yet"), "{md}");
    // Committed where the check looks, the next run compares with it.
    std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("baseline.json"), &missing).unwrap();
    command::assert_exit(&check(&run, &missing, &summary, &[]), 0);
}

#[test]
fn check_compares_machines_by_class_and_records_allow_different() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("check-class");
    let base = write_json(dir.path(), "base.json", &then());
    let summary = dir.path().join("summary.md");
    // Another runner of the same label: another CPU model and a little less memory.
    let mut runner = then();
    runner.machine.cpu_model = Some("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz".into());
    runner.machine.memory_bytes = runner.machine.memory_bytes.map(|m| m - (200 << 20));
    let runner = write_json(dir.path(), "runner.json", &runner);
    command::assert_exit(&check(&runner, &base, &summary, &[]), 0);
    // Another class: cgroup v2. Not comparable, unless allowed, and then the verdict says so.
    let mut v2 = then();
    v2.machine.cgroup_mode = Some("v2".into());
    let v2 = write_json(dir.path(), "v2.json", &v2);
    let out = check(&v2, &base, &summary, &[]);
    command::assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cgroup mode v1 in the baseline, v2"), "{err}");
    let out = check(&v2, &base, &summary, &["--allow-different"]);
    command::assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("(compared anyway with --allow-different: different machine class"),
        "{stdout}"
    );
}

#[test]
fn report_comparison_section_matches_golden() {
    let text =
        std::fs::read_to_string(common::manifest_dir().join("tests/fixtures/run.json")).unwrap();
    let run: CampaignResult = serde_json::from_str(&text).unwrap();
    let mut now = then();
    now.capacities[0] = capacity("r1-cpu0.5", 1, Some(44.0), Some(46.0), 0.0);
    let c = comparison::compare(&then(), &now, options());
    let page = loadgen_report::html::render_compared(&run, Some(&c));
    let start = page
        .find("<section id=\"comparison\">")
        .expect("a comparison section");
    let end = start + page[start..].find("</section>").unwrap() + "</section>".len();
    assert_golden(
        "report-comparison.html",
        &format!("{}\n", &page[start..end]),
    );
    // Without a baseline the page is what it always was.
    assert!(!loadgen_report::html::render(&run).contains("id=\"comparison\""));
}

#[test]
fn report_with_a_baseline_adds_the_comparison_to_the_page() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("report-baseline");
    let base = write_json(dir.path(), "base.json", &then());
    let fixture = common::manifest_dir().join("tests/fixtures/run.json");
    let out = command::loadgen()
        .arg("report")
        .arg(&fixture)
        .arg("--out")
        .arg(dir.path().join("r"))
        .arg("--baseline")
        .arg(&base)
        .output()
        .unwrap();
    // The fixture has fail findings of its own: exit 1, as without a baseline.
    command::assert_exit(&out, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("only in baseline"), "{stdout}");
    let page = std::fs::read_to_string(dir.path().join("r/report.html")).unwrap();
    assert!(page.contains("<section id=\"comparison\">"));
}
