//! `loadgen compare` with real processes: two "checkouts", each with its own copy of the
//! polymetrie build next to its scenario. The same build twice passes; the head whose click
//! handler re-validates each click's JSON 100 more times (`--regression`, genuine extra CPU
//! on the click path) is caught, the configuration, ratio and interval named; scenarios whose
//! SLO differ, or that would start the very same binary, are refused before anything runs. A
//! search's budget is said to be left out, and is.

use std::path::{Path, PathBuf};

use loadgen_model::compare::{CompareResult, Side, Verdict};
use loadgen_model::result::CampaignResult;

use crate::common::{self, command, external};

fn ready() -> bool {
    external::polymetrie().is_some() && external::cgroups_usable()
}

/// A checkout `name` under `root`: its own polymetrie, and its scenario of the real handler
/// (`cost = 0`) at 0.1 core, with `extra` lines in its `[service]`.
fn checkout(root: &Path, name: &str, extra: &str, slo: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let build = external::polymetrie_lookup().unwrap();
    std::fs::copy(build, dir.join("polymetrie")).unwrap();
    let text = format!(
        r#"name = "ab"
counter_site = "ab"
[target]
kind = "local"
[service]
binary = "./polymetrie"
cost = "0s"
sites = ["ab"]
{extra}
[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"ab","url":"/p/{{seq}}"}}'
[defaults]
timeout = "1s"
warmup = "200ms"
pause = "100ms"
[[campaign]]
name = "ab"
search = {{ from = 200, to = 20000, precision = 0.05, step = "1s", confirm = 2, budget = "1s" }}
slo = {slo}
[campaign.matrix]
replicas = [1]
cpu_limit = [0.1]
"#
    );
    let path = dir.join("ci.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const SLO: &str = "{ counted_ratio = 0.99, p99_ms = 250 }";

fn compare(base: &Path, head: &Path, out: &Path) -> std::process::Output {
    let o = command::loadgen()
        .arg("compare")
        .arg(base)
        .arg(head)
        .arg("--out")
        .arg(out)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    // The probes' log, so a failure below shows what each side did.
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// Two comparisons of about 90 s each.
#[test]
fn the_same_build_passes_and_a_slower_click_handler_is_caught() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = common::tempdir("compare");
    let d = dir.path();
    let base = checkout(d, "base", "", SLO);
    let same = checkout(d, "same", "", SLO);
    let o = compare(&base, &same, &d.join("aa"));
    command::assert_exit(&o, 0);
    // The budget (shorter than one probe) is said to be left out, and is: a budget stopping
    // one side first would leave the two searches unequal.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("compare: campaign ab: the search's budget of 1 s is not applied"),
        "{stderr}"
    );
    // The gate passes the same build: it is not called regressed. Whether it is called
    // exactly unchanged is a matter of the rule's false-alarm rate, which one real comparison
    // cannot measure: loadgen-judge's compare::tests count it over hundreds of simulated A/A
    // comparisons, either way (a CI run once called this one improved).
    let aa: CompareResult = read(&d.join("aa/compare.json"));
    assert_ne!(aa.verdict, Verdict::Regressed, "{:?}", aa.configurations);
    assert_ne!(
        aa.verdict,
        Verdict::NotComparable,
        "{:?}",
        aa.configurations
    );
    let c = &aa.configurations[0];
    let ratio = c.ratio.unwrap();
    assert!(c.ratio_low.unwrap() <= ratio && ratio <= c.ratio_high.unwrap());
    // Interleaved: base, head, then head, base.
    let sides: Vec<Side> = aa.order.iter().take(4).map(|p| p.side).collect();
    assert_eq!(sides, [Side::Base, Side::Head, Side::Head, Side::Base]);
    // Each side is a whole run of its own, every probe of it in the order.
    for side in ["base", "head"] {
        let run: CampaignResult = read(&d.join("aa").join(side).join("run.json"));
        assert_eq!(run.searches[0].probes.len(), run.steps.len());
        assert!(run.searches[0].budget_stop.is_none() && run.steps.len() > 2);
        assert!(
            run.searches[0].probes.iter().any(|p| p.repeat == 1),
            "two searches"
        );
        assert!(d.join("aa").join(side).join("report.html").exists());
    }
    assert_eq!(aa.order.len(), {
        let b: CampaignResult = read(&d.join("aa/base/run.json"));
        let h: CampaignResult = read(&d.join("aa/head/run.json"));
        b.steps.len() + h.steps.len()
    });
    let summary = std::fs::read_to_string(d.join("aa/summary.md")).unwrap();
    assert!(summary.contains("| ab r1-cpu0.1 |"), "{summary}");
    // Both capacity curves, rate by rate, from the rate the search started at.
    for side in ["base", "head"] {
        let curve = format!("- ab r1-cpu0.1 {side}: 200: 1/");
        assert!(summary.contains(&curve), "{summary}");
    }

    let slower = checkout(
        d,
        "slower",
        r#"extra_args = ["--regression", "json-revalidate:100"]"#,
        SLO,
    );
    let o = compare(&base, &slower, &d.join("ab"));
    command::assert_exit(&o, 1);
    let ab: CompareResult = read(&d.join("ab/compare.json"));
    assert_eq!(ab.verdict, Verdict::Regressed);
    let c = &ab.configurations[0];
    assert!(
        c.ratio_high.unwrap() < 1.0 && c.ratio.unwrap() < 0.9,
        "{c:?}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("REGRESSION: ab r1-cpu0.1 — head/base 0."),
        "{stderr}"
    );
    assert!(stderr.contains("99 % interval"), "{stderr}");
}

#[test]
fn scenarios_that_differ_beyond_the_service_or_share_one_binary_are_refused() {
    let dir = common::tempdir("compare-refused");
    let d = dir.path();
    if external::polymetrie().is_none() {
        return;
    }
    let base = checkout(d, "base", "", SLO);
    let stricter = checkout(d, "stricter", "", "{ counted_ratio = 0.99, p99_ms = 100 }");
    let o = compare(&base, &stricter, &d.join("x"));
    command::assert_exit(&o, 2);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("campaign ab: the two scenarios' slo differ"),
        "{stderr}"
    );
    let o = compare(&base, &base, &d.join("y"));
    command::assert_exit(&o, 2);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("both sides start the same service"),
        "{stderr}"
    );
    assert!(!d.join("x/compare.json").exists() && !d.join("y/base").exists());
}
