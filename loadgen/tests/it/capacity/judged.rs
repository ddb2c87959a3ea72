//! A run whose steps are a search's probes, judged from its saved steps: the capacity, its
//! derived figures and first failure, a probe the generator spoiled read as no evidence, and a
//! report that leads with them.

use loadgen_model::result::{CampaignResult, CheckName};

use crate::common;

/// The fixture run with campaign A's 1-replica, 1-core steps recorded as the probes of a
/// search (counted ≥ 99 %): 100 and 180 pass, 250 and 1000 fail.
fn searched_fixture() -> CampaignResult {
    use loadgen_model::capacity::{Configuration, ProbeRecord, SearchRecord};
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
            kind: loadgen_judge::search::ProbeKind::Grow,
            repeat: 0,
        })
        .collect();
    run.searches = vec![SearchRecord {
        campaign: "A".into(),
        spec: loadgen_judge::search::SearchSpec {
            from_rps: 100.0,
            to_rps: 1000.0,
            precision: 0.05,
            step_s: 10.0,
            confirm: 0,
            budget_s: None,
        },
        slo: loadgen_model::slo::Slo {
            counted_ratio: Some(0.99),
            p99_ms: None,
            success_ratio: None,
        },
        configurations: vec![Configuration {
            key: "r1-cpu1".into(),
            topology,
        }],
        probes,
        budget_stop: None,
    }];
    // A threshold on every step, as smoke.toml has: it must leave the probes alone.
    run.thresholds = Some(vec![loadgen_model::threshold::Threshold {
        metric: loadgen_model::threshold::Metric::CountedRatio,
        min: Some(0.99),
        max: None,
        steps: vec![],
    }]);
    loadgen_judge::check::judge_run(run)
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
    let h = loadgen_report::html::render(&run);
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
    let table = loadgen_report::table::render(&run);
    assert!(
        table.contains("Capacity: A: 1 replica, 1 core, memory: capacity 180 req/s"),
        "{table}"
    );
    let csv = loadgen_report::steps_csv::render(&run).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("capacity_per_core_rps,scaling_efficiency"),
        "{header}"
    );
}

#[test]
fn a_probe_the_generator_spoiled_is_no_failure_when_the_run_is_judged_again() {
    // The 250 req/s probe saved with a lagging generator (and nothing else wrong with it): the
    // saved run reads it as no evidence, so the first failure is 1000 req/s, as the search
    // decided while it ran.
    let mut run = searched_fixture();
    let at = run
        .steps
        .iter()
        .position(|s| s.id() == "A/a-250-1r")
        .unwrap();
    run.steps[at].schedule_lag_ms.p99 = Some(60.0);
    let run = loadgen_judge::check::judge_run(run);
    assert!(!run.steps[at].valid);
    let cap = &run.capacities[0];
    assert_eq!(
        (cap.capacity_rps, cap.failed_rps),
        (Some(180.0), Some(1000.0))
    );
    assert_eq!(cap.generator_reruns, 1);
    assert_eq!(cap.probes, 4);
    assert_eq!(
        cap.first_failure.as_ref().unwrap().step.to_string(),
        "A/a-1000-1r"
    );
}

#[test]
fn a_search_stopped_by_its_budget_says_where_it_got_and_exits_1() {
    use loadgen_model::capacity::BudgetStop;
    use loadgen_model::result::{Finding, Severity};
    let mut run = searched_fixture();
    run.searches[0].budget_stop = Some(BudgetStop {
        configuration: "r1-cpu1".into(),
        next_rate_rps: 215.0,
        spent_s: 290.0,
    });
    // The bracket 180–250 is wider than the precision: the search had more to do.
    run.findings.push(Finding {
        check: CheckName::SearchBudget,
        severity: Severity::Warn,
        message: "the search of A stopped by its budget".into(),
        step: None,
    });
    let run = loadgen_judge::check::judge_run(run);
    let cap = &run.capacities[0];
    assert_eq!(cap.ending, loadgen_judge::search::Ending::Budget);
    assert!(
        cap.sentence().contains("stopped by the budget"),
        "{}",
        cap.sentence()
    );
    assert!(run
        .exit_reasons()
        .iter()
        .any(|r| r.starts_with("search_budget: the search of A stopped")));
}
