//! `loadgen validate`: its `--json` contract and its table, against golden files.

use super::*;

#[test]
fn validate_json_has_the_contract_shape() {
    let _serial = common::serial::lock_blocking();
    let text = validate_json(&scenario_file("td4.toml"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["steps"]);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 19);
    for s in steps {
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "campaign",
                "cpu_limit_cores",
                "duration_s",
                "name",
                "rate_rps",
                "replicas"
            ]
        );
    }
    assert_eq!(steps[0]["cpu_limit_cores"], 1.0);
    assert_eq!(steps[8]["cpu_limit_cores"], 1.5);
    assert!(steps[9]["cpu_limit_cores"].is_null(), "no limit is null");
    assert_eq!(steps[18]["duration_s"], 600.0);
    assert_eq!(steps[16]["rate_rps"], 1500.0);
    assert_eq!(steps[6]["replicas"], 2);
}

#[test]
fn validate_json_of_td4_matches_golden() {
    let _serial = common::serial::lock_blocking();
    assert_golden(
        "validate-td4.json",
        &validate_json(&scenario_file("td4.toml")),
    );
}

/// The table as a user sees it, run from the repository root with the relative path a user
/// types (the header names the path as given).
#[test]
fn validate_table_of_td4_matches_golden() {
    let _serial = common::serial::lock_blocking();
    let out = command::loadgen()
        .args(["validate", "scenarios/td4.toml"])
        .current_dir(common::repo_dir())
        .output()
        .unwrap();
    command::assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    // The overcommit warning depends on this machine's CPUs (2 × 1.5 cores overcommit 2 CPUs,
    // not 4): asserted on its own, left out of the golden.
    let (warnings, table): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with("warning "));
    let cpus = loadgen::machine::online_cpus().unwrap();
    let overcommit = warnings
        .iter()
        .any(|w| w.contains("A/r2-cpu1.5-250rps-10s") && w.contains("overcommit"));
    assert_eq!(overcommit, cpus < 3, "{cpus} CPUs: {warnings:?}");
    assert_golden("validate-td4.txt", &(table.join("\n") + "\n"));
}

#[test]
fn plans_this_machine_cannot_run_are_refused_naming_key_and_limit() {
    let _serial = common::serial::lock_blocking();
    let dir = tempfile::tempdir().unwrap();
    let base = |step: &str| {
        format!(
            "name = \"b\"\n[target]\nkind = \"local\"\n[service]\ncost = \"1ms\"\nsites = [\"s\"]\n\
             [request]\npath = \"/\"\n[[campaign]]\nname = \"c\"\n[[campaign.step]]\n{step}\n"
        )
    };
    for (step, key, needle) in [
        (
            "replicas = 100000\nrate = 10\nduration = \"1s\"",
            "campaign.step.replicas",
            "at most 64",
        ),
        (
            "rate = 1e12\nduration = \"1s\"",
            "campaign.step.rate",
            "shards",
        ),
        (
            "cpu_limit = 0.001\nrate = 10\nduration = \"1s\"",
            "campaign.step.cpu_limit",
            "at least 0.01",
        ),
        (
            "cpu_limit = 1000\nrate = 10\nduration = \"1s\"",
            "campaign.step.cpu_limit",
            "this machine's CPUs",
        ),
        (
            "rate = 10\nduration = \"1000000h\"",
            "campaign.step.duration",
            "at most 24h",
        ),
        (
            "rate = 5000000\nduration = \"10h\"",
            "campaign.step.rate",
            "planned requests",
        ),
    ] {
        let path = dir.path().join("b.toml");
        std::fs::write(&path, base(step)).unwrap();
        let out = validate(&[], &path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{step}: {err}");
        assert!(err.contains("b.toml:"), "{step}: names the file: {err}");
        assert!(err.contains(key), "{step}: names {key}: {err}");
        assert!(err.contains(needle), "{step}: says {needle:?}: {err}");
    }
}

#[test]
fn a_remote_url_target_needs_the_explicit_opt_in() {
    let _serial = common::serial::lock_blocking();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    let text = |allow: &str| {
        format!(
            "name = \"r\"\ncounter_site = \"s\"\n[target]\nkind = \"url\"\nurl = \"http://10.0.0.7:8080\"\n{allow}\n\
             [request]\npath = \"/\"\n[[campaign]]\nname = \"c\"\n[[campaign.step]]\nrate = 10\nduration = \"1s\"\n"
        )
    };
    // Validation only: nothing is sent anywhere.
    std::fs::write(&path, text("")).unwrap();
    let out = validate(&[], &path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("target.url") && err.contains("allow_remote"),
        "{err}"
    );
    std::fs::write(&path, text("allow_remote = true")).unwrap();
    let out = validate(&[], &path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = Plan::load(&path).unwrap();
    assert_eq!(plan.reach, loadgen_engine::target::Reach::Remote);
}

#[test]
fn validate_prints_a_table_of_the_plan() {
    let _serial = common::serial::lock_blocking();
    let out = validate(&[], &scenario_file("smoke.toml"));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "campaign",
        "replicas",
        "cpu limit",
        "requests",
        "store",
        "0.5 core",
        "redis",
        "r2-nolimit-100rps-5s",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

/// Every key the parser accepts is documented in scenarios/README.md. The accepted keys are
/// read from the parser itself (its "unknown key, expected one of …" message per table), so a
/// key added to the serde types without documentation fails here.
#[test]
fn readme_documents_every_key() {
    let readme = std::fs::read_to_string(scenario_file("README.md")).unwrap();
    let base = std::fs::read_to_string(fixture("full.toml")).unwrap();
    // (table header to inject an unknown key after, table's dotted name)
    let tables = [
        ("name = \"full\"", ""),
        ("[target]", "target"),
        ("[service]", "service"),
        ("[request]", "request"),
        ("[defaults]", "defaults"),
        ("[[thresholds]]", "thresholds"),
        ("[prometheus]\n", "prometheus"),
        ("[[campaign]]", "campaign"),
        ("[[campaign.step]]", "campaign.step"),
        ("[campaign.matrix]", "campaign.matrix"),
    ];
    let dir = common::manifest_dir().join("tests/fixtures/scenarios");
    for (header, table) in tables {
        let text = base.replacen(
            header,
            &format!("{}\nzz_unknown = 1\n", header.trim_end()),
            1,
        );
        let src = loadgen::scenario::SourceText::new(&dir.join("probe.toml"), text);
        let msg = match loadgen::scenario::Scenario::parse(&src) {
            Ok(_) => panic!("{table}: unknown key accepted"),
            Err(e) => e.to_string(),
        };
        // serde says "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, …".
        let list = msg
            .split_once("unknown key, expected ")
            .unwrap_or_else(|| panic!("{table}: {msg}"))
            .1;
        let list = list.strip_prefix("one of ").unwrap_or(list);
        let list = list.split(" (").next().unwrap().replace(" or ", ", ");
        let keys: Vec<&str> = list
            .split(", ")
            .map(|k| k.trim_matches(|c| c == '`' || c == ' '))
            .collect();
        assert!(!keys.is_empty(), "{table}: {msg}");
        for key in keys {
            let dotted = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            let documented = [
                format!("`{dotted}`"),
                format!("`[{dotted}]`"),
                format!("`[[{dotted}]]`"),
            ];
            assert!(
                documented.iter().any(|d| readme.contains(d.as_str())),
                "scenarios/README.md does not document `{dotted}`"
            );
        }
    }
}
