//! An autoscale step end to end against the fake API server: loadgen applies its HPA after
//! the rollout to the minimum, the fake HPA controller scales the Deployment from the real
//! replicas' CPU (each pod under a real 0.5-core CFS quota, overloaded at 150 req/s), and
//! run.json's scaling timeline shows it happen, second by second; afterwards the HPA is gone
//! and the Deployment is back to its original.

use std::time::Duration;

use loadgen_model::result::{CheckName, Severity, StepResult};

use super::campaign::{check_restored, run_campaign, scenario, start_fake};
use crate::common::{self, serial};

/// Rollout, warm-up, a 12-s step with the HPA's rollouts inside it, settling, restore.
const RUN_BOUND: Duration = Duration::from_secs(240);

fn autoscale_scenario(head: &str) -> String {
    let head = &head[..head.find("[[campaign]]").unwrap()];
    format!(
        "{head}[[campaign]]\nname = \"H\"\n\n[[campaign.step]]\nrate = 150\nduration = \"12s\"\n\
         cpu_limit = 0.5\nautoscale = {{ min = 1, max = 3, cpu_utilization = 50 }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscale_step_records_the_hpa_scaling_the_deployment() {
    let _serial = serial::lock().await;
    // TD4's cost: ~90 clicks/s on half a core, so 150 req/s drives one pod to its limit.
    let Some(fake) = start_fake(Duration::from_micros(5500)).await else {
        return;
    };
    assert!(fake.settled(Duration::from_secs(30)).await, "first rollout");
    let dir = common::tempdir("fake-k8s-hpa");
    let path = dir.path().join("hpa.toml");
    std::fs::write(&path, autoscale_scenario(&scenario(&fake))).unwrap();
    let (code, stderr, run) = run_campaign(&fake, dir.path(), &path, &[], RUN_BOUND).await;
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let step = &run.steps[0];
    assert_eq!(step.name, "hpa1to3at50-cpu0.5-150rps-12s");
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

    // After the run: no HPA of loadgen's, and the original spec.
    assert!(fake.state.lock().unwrap().hpas.is_empty());
    check_restored(&fake);
    fake.shutdown().await;
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
