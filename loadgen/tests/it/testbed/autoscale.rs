//! An autoscale step on the real control plane: loadgen applies its HPA after the rollout to
//! the minimum, the **real HPA controller** scales the Deployment from the CPU the **real
//! metrics-server** scraped from the stand-in (each pod under a real 0.5-core CFS quota,
//! overloaded at 150 req/s), and run.json's scaling timeline shows it happen second by second;
//! afterwards loadgen's HPA is gone and the Deployment is back as it was.

use loadgen_model::result::{CheckName, Severity, StepResult};

use super::campaign::{run, scenario, spec_of};
use super::testbed;
use crate::common::{self, serial};

/// The HPA controller syncs every 5 s (the testbed's setting) from metrics-server, which needs
/// two 10-s scrapes of the loaded pod: 45 s holds its first decision and the new pod's start.
const STEP: &str = r#"
[[campaign]]
name = "H"

[[campaign.step]]
rate = 150
duration = "45s"
cpu_limit = 0.5
autoscale = { min = 1, max = 3, cpu_utilization = 50 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscale_step_records_the_real_hpa_scaling_the_deployment() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-autoscale");
    // TD4's cost: ~90 clicks/s on half a core, so 150 req/s drives one pod to its limit.
    ns.deploy_base("5.5ms");
    let before = spec_of(&ns);
    let dir = common::tempdir("testbed-autoscale");
    let path = dir.path().join("hpa.toml");
    std::fs::write(&path, scenario(&ns, STEP)).unwrap();
    let (code, stderr, run) = run(&bed, dir.path(), &path).await;
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let step = &run.steps[0];
    assert_eq!(step.name, "hpa1to3at50-cpu0.5-150rps-45s");
    let a = step
        .topology
        .as_ref()
        .unwrap()
        .autoscale
        .expect("autoscale in run.json");
    assert_eq!(
        (a.min_replicas, a.max_replicas, a.cpu_utilization_pct),
        (1, 3, 50)
    );
    assert_eq!(step.intended, step.sent + step.dropped);

    let asked_at = check_scaling(step);

    // The report draws it: pods and the HPA's decision per second, with the numbers.
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("<section id=\"autoscaling\">"),
        "no autoscaling section"
    );
    assert!(html.contains("id=\"chart-scaling-1\""));
    assert!(html.contains(&format!(
        "The HPA first asked for more pods at {asked_at} s"
    )));

    // After the run: no HPA left, and the original spec.
    let hpas = ns.get_json(&["hpa"]);
    assert_eq!(hpas["items"].as_array().map(Vec::len), Some(0), "{hpas}");
    assert_eq!(spec_of(&ns), before);
}

/// The step's scaling samples and the reaction finding; returns when the HPA first asked for
/// more pods.
fn check_scaling(step: &StepResult) -> u32 {
    // Once a second through the attack, starting from the minimum.
    let s = &step.scaling;
    for p in s {
        eprintln!("{p:?}");
    }
    assert!(s.len() >= 10, "{s:#?}");
    assert!(s.windows(2).all(|w| w[0].t_s < w[1].t_s), "{s:#?}");
    assert_eq!(s[0].ready_replicas, Some(1), "{s:#?}");
    // The HPA saw the overload and asked for more; the extra pods came up within the step.
    let asked = s
        .iter()
        .find(|p| p.desired_replicas.is_some_and(|d| d >= 2));
    let asked = asked.unwrap_or_else(|| panic!("the HPA never asked for more: {s:#?}"));
    assert!(
        asked.cpu_utilization_pct.is_some_and(|u| u > 50.0),
        "{asked:?}"
    );
    let ready = s.iter().find(|p| p.ready_replicas.is_some_and(|r| r >= 2));
    let ready = ready.unwrap_or_else(|| panic!("no second pod was Ready: {s:#?}"));
    assert!(ready.t_s >= asked.t_s, "{s:#?}");
    assert!(s.iter().all(|p| p.desired_replicas.is_none_or(|d| d <= 3)));
    let reaction = step
        .checks
        .iter()
        .find(|f| f.check == CheckName::Autoscale && f.severity == Severity::Info)
        .expect("the reaction finding");
    assert!(
        reaction
            .message
            .contains(&format!("asked for more at {} s", asked.t_s)),
        "{}",
        reaction.message
    );

    asked.t_s
}
