//! What a comparison says it leaves out of a scenario, read from real scenario files.

use super::left_out;
use crate::plan::Plan;

/// A url scenario with one search campaign and the lines `extra` after it.
fn plan(extra: &str, budget: &str) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let text = format!(
        r#"name = "s"
[target]
kind = "url"
url = "http://127.0.0.1:9"
[request]
path = "/"
[[campaign]]
name = "knee"
search = {{ from = 100, to = 800, precision = 0.1, step = "2s", confirm = 1{budget} }}
slo = {{ success_ratio = 0.99 }}
{extra}"#
    );
    std::fs::write(&path, text).unwrap();
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_plain_search_leaves_nothing_out() {
    assert_eq!(left_out(&plan("", "")), Vec::<String>::new());
}

#[test]
fn prometheus_budget_and_fixed_steps_are_each_named() {
    let extra = r#"[prometheus]
mode = "managed"
[[campaign]]
name = "fixed"
[[campaign.step]]
rate = 50
duration = "5s"
[[campaign.step]]
rate = 60
duration = "5s"
"#;
    let p = plan(extra, r#", budget = "30s""#);
    let worst = p.searches[0].worst_case_probes();
    let said = left_out(&p);
    assert_eq!(said.len(), 3, "{said:#?}");
    assert!(said[0].contains("Prometheus is not queried"), "{}", said[0]);
    assert!(
        said[1].contains("campaign knee: the search's budget of 30 s is not applied")
            && said[1].contains(&format!("worst case, {worst} probes per configuration")),
        "{}",
        said[1]
    );
    assert!(said[2].starts_with("the 2 fixed-rate steps"), "{}", said[2]);
}
