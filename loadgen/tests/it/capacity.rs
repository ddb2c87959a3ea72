//! Capacity search and the capacity check: search campaigns validated at their keys, the
//! comparison rules on synthetic run pairs (a clear regression, a drop inside the repeats'
//! noise, an improvement, a configuration only in one run, another scenario), the goldens of
//! `loadgen check` (table and Markdown) and of the report's comparison section, and — with
//! real processes — a search that finds a 1-core polymetrie's knee and a check that catches a
//! doubled cost per click. `UPDATE_GOLDEN=1` rewrites the goldens (check-table.txt,
//! check-summary.md, report-comparison.html).

use std::path::{Path, PathBuf};
use std::process::Output;

use loadgen::baseline::{Baseline, ScenarioRef, StepFigures, BASELINE_VERSION};
use loadgen::capacity::{Capacity, FailureEvidence, Repeat};
use loadgen::comparison::{self, Options, Outcome, Verdict};
use loadgen::result::{CampaignResult, CheckName, MachineInfo, TopologyView};
use loadgen::search::Ending;
use loadgen::step_id::StepId;

use crate::common::{self, command, external, golden::assert_golden};

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
    let line = loadgen::report::comparison::verdict_line(&c);
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
fn report_comparison_section_matches_golden() {
    let text =
        std::fs::read_to_string(common::manifest_dir().join("tests/fixtures/run.json")).unwrap();
    let run: CampaignResult = serde_json::from_str(&text).unwrap();
    let mut now = then();
    now.capacities[0] = capacity("r1-cpu0.5", 1, Some(44.0), Some(46.0), 0.0);
    let c = comparison::compare(&then(), &now, options());
    let page = loadgen::report::html::render_compared(&run, Some(&c));
    let start = page
        .find("<section id=\"comparison\">")
        .expect("a comparison section");
    let end = start + page[start..].find("</section>").unwrap() + "</section>".len();
    assert_golden(
        "report-comparison.html",
        &format!("{}\n", &page[start..end]),
    );
    // Without a baseline the page is what it always was.
    assert!(!loadgen::report::html::render(&run).contains("id=\"comparison\""));
}

// ---------------------------------------------------------------- scenarios

const SEARCH_SCENARIO: &str = r#"name = "cap"
counter_site = "demo"

[target]
kind = "local"

[service]
cost = "5.5ms"
sites = ["demo"]

[request]
method = "POST"
path = "/api/clicks"
body = '{"site":"demo","url":"/p/{seq}"}'

[defaults]
warmup = "1s"
pause = "1s"

[[campaign]]
name = "cap"

[campaign.search]
from = 50
to = 2000
precision = 0.05
step = "10s"
confirm = 3
budget = "30m"

[campaign.slo]
counted_ratio = 0.99
p99_ms = 500

[campaign.matrix]
replicas = [1, 2]
cpu_limit = [1, "none"]
store = ["memory", "redis"]
"#;

fn load(text: &str) -> Result<loadgen::plan::Plan, String> {
    let dir = common::manifest_dir().join("tests/fixtures/scenarios");
    let src = loadgen::scenario::SourceText::new(&dir.join("search.toml"), text.to_string());
    let sc = loadgen::scenario::Scenario::parse(&src).map_err(|e| e.to_string())?;
    loadgen::plan::Plan::from_scenario(&sc, &src).map_err(|e| e.to_string())
}

#[test]
fn a_search_campaign_expands_to_its_configurations_and_worst_case() {
    let plan = load(SEARCH_SCENARIO).unwrap();
    assert!(plan.steps.is_empty());
    let s = &plan.searches[0];
    let keys: Vec<&str> = s.configurations.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "r1-cpu1-memory",
            "r1-cpu1-redis",
            "r1-nolimit-memory",
            "r1-nolimit-redis",
            "r2-cpu1-memory",
            "r2-cpu1-redis",
            "r2-nolimit-memory",
            "r2-nolimit-redis"
        ]
    );
    let probe = s.probe(&s.configurations[0], 3, 210.0);
    assert_eq!(
        probe.id().to_string(),
        "cap/search-r1-cpu1-memory-03-210rps"
    );
    assert_eq!(probe.warmup, std::time::Duration::from_secs(1));
    let worst = s.worst_case_probes();
    assert_eq!(
        s.worst_case(),
        std::time::Duration::from_secs(12 * worst as u64 * 8)
    );
    let mut narrowed = plan.clone();
    narrowed.select_steps("cap/search-r2-*").unwrap();
    assert_eq!(narrowed.searches[0].configurations.len(), 4);
    let mut scaled = plan;
    scaled.scale_time(0.1);
    assert_eq!(scaled.searches[0].spec.step_s, 1.0);
    assert_eq!(scaled.searches[0].spec.budget_s, Some(180.0));
}

#[test]
fn search_mistakes_are_named_at_their_key() {
    let cases: [(&str, &str, &str); 7] = [
        (
            "to = 2000",
            "to = 20",
            "key 'campaign.search.to': expected a rate above from (50), got 20",
        ),
        (
            "precision = 0.05",
            "precision = 0.001",
            "key 'campaign.search.precision'",
        ),
        (
            "confirm = 3",
            "confirm = -1",
            "key 'campaign.search.confirm': expected an integer from 0 to 20",
        ),
        (
            "[campaign.slo]\ncounted_ratio = 0.99\np99_ms = 500\n",
            "",
            "key 'campaign.slo': required key is missing",
        ),
        (
            "counted_ratio = 0.99",
            "counted_ratio = 99",
            "key 'campaign.slo.counted_ratio': expected a share ≤ 1",
        ),
        (
            "replicas = [1, 2]",
            "replicas = [1, 2]\nrate = [100]",
            "key 'campaign.matrix.rate': a search campaign decides its own rates",
        ),
        (
            "step = \"10s\"",
            "step = \"0s\"",
            "key 'campaign.search.step': expected a duration > 0",
        ),
    ];
    for (from, to, needle) in cases {
        let text = SEARCH_SCENARIO.replacen(from, to, 1);
        let err = load(&text).expect_err(needle);
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.contains("search.toml:"), "{err}");
    }
    // An SLO belongs to a search; a list of stores to a search's matrix.
    let listed = SEARCH_SCENARIO
        .replace("[campaign.search]", "[campaign.zz]")
        .replace("[campaign.zz]\nfrom = 50\nto = 2000\nprecision = 0.05\nstep = \"10s\"\nconfirm = 3\nbudget = \"30m\"\n", "");
    let err = load(&listed).unwrap_err();
    assert!(
        err.contains("key 'campaign.slo': only applies to a search campaign"),
        "{err}"
    );
}

#[test]
fn readme_documents_every_search_key() {
    let readme = std::fs::read_to_string(common::repo_dir().join("scenarios/README.md")).unwrap();
    for (header, table) in [
        ("[campaign.search]", "campaign.search"),
        ("[campaign.slo]", "campaign.slo"),
    ] {
        let text = SEARCH_SCENARIO.replacen(header, &format!("{header}\nzz_unknown = 1"), 1);
        let err = load(&text).unwrap_err();
        let list = err
            .split_once("expected ")
            .unwrap_or_else(|| panic!("{err}"))
            .1;
        let list = list
            .strip_prefix("one of ")
            .unwrap_or(list)
            .replace(" or ", ", ");
        for key in list
            .split(", ")
            .map(|k| k.trim_matches(|c| c == '`' || c == ' '))
        {
            let dotted = format!("{table}.{key}");
            assert!(
                readme.contains(&format!("`{dotted}`")),
                "scenarios/README.md lacks `{dotted}`"
            );
        }
    }
}

#[test]
fn ci_toml_validates_with_a_worst_case_of_about_two_minutes() {
    let _serial = common::serial::lock_blocking();
    let ci = common::repo_dir().join("scenarios/ci.toml");
    let out = command::loadgen_output([std::ffi::OsStr::new("validate"), ci.as_os_str()]);
    command::assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("search ci: 2 configuration(s) (r1-cpu0.5, r2-cpu0.5)"),
        "{text}"
    );
    assert!(text.contains("worst case 2m 6s"), "{text}");
}

// ---------------------------------------------------------------- real processes

fn ready() -> bool {
    external::polymetrie().is_some() && external::cgroups_usable()
}

/// A search of one 1-core replica at 5.5 ms per click, short probes so three runs fit in a test.
fn search_scenario(dir: &Path) -> PathBuf {
    let text = r#"name = "knee"
counter_site = "demo"
[target]
kind = "local"
[service]
cost = "5.5ms"
sites = ["demo"]
[request]
method = "POST"
path = "/api/clicks"
headers = { "content-type" = "application/json" }
body = '{"site":"demo","url":"/p/{seq}"}'
[defaults]
timeout = "2s"
warmup = "500ms"
pause = "0s"
[[campaign]]
name = "knee"
search = { from = 50, to = 800, precision = 0.1, step = "3s", confirm = 1, budget = "3m" }
slo = { counted_ratio = 0.99, p99_ms = 500 }
[campaign.matrix]
replicas = [1]
cpu_limit = [1]
"#;
    let path = dir.join("knee.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `polymetrie` that burns `cost` per click whatever the scenario says: a slower build of
/// the service under an unchanged scenario, which is what a CI check is there to catch.
fn slower_polymetrie(dir: &Path, real: &Path, cost: &str) -> PathBuf {
    let path = dir.join("polymetrie-slower");
    let script = format!(
        "#!/bin/bash\nargs=()\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --cost ]; then a={cost}; fi\n  \
         args+=(\"$a\")\n  prev=$a\ndone\nexec {} \"${{args[@]}}\"\n",
        real.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run_search(scenario: &Path, out: &Path, polymetrie: &Path) -> CampaignResult {
    let o = command::loadgen()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .env("POLYMETRIE_BIN", polymetrie)
        .output()
        .unwrap();
    command::assert_exit(&o, 0);
    let text = std::fs::read_to_string(out.join("run.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_search_finds_the_knee_and_the_check_catches_a_doubled_cost() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let real = external::polymetrie_lookup().unwrap();
    let dir = common::tempdir("capacity-real");
    let d = dir.path();
    let scenario = search_scenario(d);
    let base = run_search(&scenario, &d.join("a"), &real);
    let cap = &base.capacities[0];
    let (pass, fail) = (cap.capacity_rps.unwrap(), cap.failed_rps.unwrap());
    eprintln!("5.5 ms: capacity {pass} req/s, fails at {fail} req/s");
    // ~1/5.5 ms = 180 req/s per core; the interval must overlap 150–220.
    assert!(pass <= 220.0 && fail >= 150.0, "{cap:?}");
    assert_eq!(cap.ending, Ending::Converged);
    // Every probe is an ordinary step of run.json, named after its configuration and rate.
    assert_eq!(base.steps.len(), cap.probes as usize);
    assert_eq!(base.steps[0].name, "search-r1-cpu1-00-50rps");
    assert!(d.join("a/report.html").exists());

    let baseline = d.join("baseline.json");
    let made = command::loadgen_output([
        "baseline".as_ref(),
        d.join("a/run.json").as_os_str(),
        "--out".as_ref(),
        baseline.as_os_str(),
    ]);
    command::assert_exit(&made, 0);
    // Runs of one scenario on a machine shared with other work: 25 % keeps their noise from
    // failing the same cost, while a doubled cost halves the capacity.
    let check_run = |run: &Path| {
        command::loadgen()
            .arg("check")
            .arg(run.join("run.json"))
            .arg("--baseline")
            .arg(&baseline)
            .args(["--tolerance", "25%"])
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    };
    run_search(&scenario, &d.join("b"), &real);
    let same = check_run(&d.join("b"));
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{text}");

    run_search(
        &scenario,
        &d.join("c"),
        &slower_polymetrie(d, &real, "11ms"),
    );
    let slower = check_run(&d.join("c"));
    let text = String::from_utf8_lossy(&slower.stdout);
    assert_eq!(slower.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REGRESSION") && text.contains("knee/r1-cpu1"),
        "{text}"
    );
}

#[test]
fn reports_readme_documents_the_search_columns() {
    let readme = std::fs::read_to_string(common::repo_dir().join("reports/README.md")).unwrap();
    for (name, _) in loadgen::report::searched::CSV_COLUMNS {
        assert!(
            readme.contains(&format!("`{name}`")),
            "reports/README.md lacks `{name}`"
        );
    }
}

/// The fixture run with campaign A's 1-replica, 1-core steps recorded as the probes of a
/// search (counted ≥ 99 %): 100 and 180 pass, 250 and 1000 fail.
fn searched_fixture() -> CampaignResult {
    use loadgen::capacity::{Configuration, ProbeRecord, SearchRecord};
    let text =
        std::fs::read_to_string(common::manifest_dir().join("tests/fixtures/run.json")).unwrap();
    let mut run: CampaignResult = serde_json::from_str(&text).unwrap();
    let topology = run.steps[0].topology.clone().unwrap();
    let probes = run
        .steps
        .iter()
        .filter(|s| s.campaign.as_deref() == Some("A") && s.topology.as_ref() == Some(&topology))
        .enumerate()
        .map(|(i, s)| ProbeRecord {
            step: s.id(),
            configuration: "r1-cpu1".into(),
            index: i as u32,
            kind: loadgen::search::ProbeKind::Grow,
        })
        .collect();
    run.searches = vec![SearchRecord {
        campaign: "A".into(),
        spec: loadgen::search::SearchSpec {
            from_rps: 100.0,
            to_rps: 1000.0,
            precision: 0.05,
            step_s: 10.0,
            confirm: 0,
            budget_s: None,
        },
        slo: loadgen::slo::Slo {
            counted_ratio: Some(0.99),
            p99_ms: None,
        },
        configurations: vec![Configuration {
            key: "r1-cpu1".into(),
            topology,
        }],
        probes,
        budget_stop: None,
    }];
    // A threshold on every step, as smoke.toml has: it must leave the probes alone.
    run.thresholds = Some(vec![loadgen::threshold::Threshold {
        metric: loadgen::threshold::Metric::CountedRatio,
        min: Some(0.99),
        max: None,
        steps: vec![],
    }]);
    loadgen::check::judge_run(run)
}

#[test]
fn a_searched_run_is_judged_from_its_probes_and_its_report_leads_with_the_capacity() {
    let run = searched_fixture();
    let cap = &run.capacities[0];
    assert_eq!(
        (cap.capacity_rps, cap.failed_rps),
        (Some(180.0), Some(250.0))
    );
    assert_eq!(cap.capacity_per_replica_rps, Some(180.0));
    assert_eq!(cap.capacity_per_core_rps, Some(180.0));
    assert_eq!(cap.scaling_efficiency, Some(1.0));
    let failure = cap.first_failure.as_ref().unwrap();
    assert_eq!(failure.step.to_string(), "A/a-250-1r");
    assert_eq!(failure.broken, vec!["counted 94.1 % < 99.0 %"]);
    assert!(
        failure.causes.contains(&CheckName::Throttling),
        "{failure:?}"
    );
    // The capacity chart right under the verdict, then the counted-vs-rate chart, then tables.
    let h = loadgen::report::html::render(&run);
    let at = |needle: &str| h.find(needle).unwrap_or_else(|| panic!("no {needle}"));
    assert!(at("id=\"verdict\"") < at("id=\"chart-capacity\""));
    assert!(at("id=\"chart-capacity\"") < at("id=\"chart-ratio\""));
    assert!(at("id=\"chart-ratio\"") < at("class=\"campaign\""));
    assert_eq!(h.matches("id=\"chart-ratio\"").count(), 1);
    // The probes are not held to the thresholds; the table and CSV carry the figures.
    let reasons = run.exit_reasons();
    assert!(
        reasons
            .iter()
            .all(|r| !r.contains("A/a-1000-1r: threshold")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("C/c-500-1r: threshold")),
        "{reasons:?}"
    );
    let table = loadgen::report::table::render(&run);
    assert!(
        table.contains("Capacity: A: 1 replica, 1 core, memory: capacity 180 req/s"),
        "{table}"
    );
    let csv = loadgen::report::steps_csv::render(&run).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("capacity_per_core_rps,scaling_efficiency"),
        "{header}"
    );
}
