//! Search campaigns in scenarios: expansion, the mistakes named at their keys, the keys and
//! columns documented, and `validate` on `scenarios/ci.toml`.

use crate::common::{self, command};

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
fn ci_toml_validates_and_states_its_worst_case_and_budget() {
    let _serial = common::serial::lock_blocking();
    let ci = common::repo_dir().join("scenarios/ci.toml");
    let out = command::loadgen_output([std::ffi::OsStr::new("validate"), ci.as_os_str()]);
    command::assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("search ci: 1 configuration(s) (r1-cpu0.25), from 1000 to 40000 req/s"),
        "{text}"
    );
    // 28 probes of 2.7 s each (2 s of load, 500 ms of warm-up, 200 ms of pause): two rounds of
    // bisection and repeats and the generator's re-runs, inside the 4-minute budget.
    assert!(
        text.contains("at most 28 probes per configuration: worst case 1m 15s"),
        "{text}"
    );
    assert!(text.contains("budget 4m"), "{text}");
    assert!(!text.contains("may stop it earlier"), "{text}");
}

#[test]
fn reports_readme_documents_the_search_columns() {
    let readme = std::fs::read_to_string(common::repo_dir().join("reports/README.md")).unwrap();
    for (name, _) in loadgen_report::searched::CSV_COLUMNS {
        assert!(
            readme.contains(&format!("`{name}`")),
            "reports/README.md lacks `{name}`"
        );
    }
}
