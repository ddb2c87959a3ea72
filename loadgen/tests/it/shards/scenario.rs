//! `[generators]` in a scenario: the default count and pin reach every step, a step's own
//! `generators` overrides the count, and a bad value is an error with file:line:col and key.

use loadgen::plan::{Generators, Plan};

use crate::common;

/// A local scenario with `generators` as written (a `[generators]` table or nothing) and two
/// steps, the second with `step2` extra keys.
fn text(generators: &str, step2: &str) -> String {
    format!(
        r#"name = "g"

[target]
kind = "local"

[service]
cost = "0s"
sites = ["s"]

[request]
path = "/"
{generators}
[[campaign]]
name = "c"

[[campaign.step]]
name = "a"
rate = 100
duration = "1s"

[[campaign.step]]
name = "b"
rate = 100
duration = "1s"
{step2}
"#
    )
}

fn load(text: &str) -> (Result<Plan, String>, String) {
    let dir = common::tempdir("generators");
    let path = dir.path().join("g.toml");
    std::fs::write(&path, text).unwrap();
    (
        Plan::load(&path).map_err(|e| e.to_string()),
        path.display().to_string(),
    )
}

#[test]
fn the_scenario_default_and_a_step_override_reach_the_steps() {
    let (plan, _) = load(&text(
        "\n[generators]\ncount = 3\npin = true\n",
        "generators = 1",
    ));
    let steps = plan.unwrap().steps;
    assert_eq!(
        steps[0].generators,
        Generators {
            count: 3,
            pin: true
        }
    );
    assert_eq!(
        steps[1].generators,
        Generators {
            count: 1,
            pin: true
        }
    );
    let (plan, _) = load(&text("", ""));
    assert_eq!(plan.unwrap().steps[0].generators, Generators::ONE);
}

#[test]
fn bad_generator_counts_name_their_position_and_key() {
    let (err, path) = load(&text("\n[generators]\ncount = 65\n", ""));
    let err = err.unwrap_err();
    assert!(
        err.starts_with(&format!("{path}:14:9: key 'generators.count': ")),
        "{err}"
    );
    assert!(err.contains("at most 64 generators"), "{err}");
    let (err, path) = load(&text("", "generators = 100"));
    let err = err.unwrap_err();
    assert!(
        err.starts_with(&format!("{path}:25:14: key 'campaign.step.generators': ")),
        "{err}"
    );
    let (err, _) = load(&text("\n[generators]\ncount = 0\n", ""));
    assert!(err.unwrap_err().contains("expected an integer >= 1"));
    let (err, _) = load(&text("\n[generators]\ncuont = 2\n", ""));
    assert!(err.unwrap_err().contains("cuont"));
}

#[test]
fn validate_shows_the_generators_of_a_sharded_plan_only() {
    let dir = common::tempdir("generators-validate");
    let validate = |text: String| {
        let path = dir.path().join("g.toml");
        std::fs::write(&path, text).unwrap();
        let out =
            common::command::loadgen_output([std::ffi::OsStr::new("validate"), path.as_os_str()]);
        common::command::assert_exit(&out, 0);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sharded = validate(text(
        "\n[generators]\ncount = 3\npin = true\n",
        "generators = 1",
    ));
    let row = |name: &str| {
        sharded
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row {name}: {sharded}"))
            .to_string()
    };
    assert!(sharded.contains("│ generators"), "{sharded}");
    assert!(row("a").contains("3 (pinned)"), "{sharded}");
    assert!(
        row("b").trim_end_matches(['│', ' ']).ends_with('1'),
        "{sharded}"
    );
    // One generator everywhere: the table keeps its usual columns.
    let plain = validate(text("", ""));
    assert!(!plain.contains("│ generators"), "{plain}");
    assert!(plain.contains("│ store  │\n"), "{plain}");
}
