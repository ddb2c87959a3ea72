//! The throttled-share panels on the samples that once showed 112 %: a replica born inside the
//! window, throttled periods and periods from one reading each second. Backfilled into a real
//! Prometheus (`promtool tsdb create-blocks-from openmetrics`), so the panels' own expressions
//! are evaluated by the engine Grafana would ask. The control: the `rate()` ratio the panels
//! used before overshoots 100 % on the same samples, so this data does exercise the artifact.

use std::path::Path;
use std::process::Command;

use super::prometheus::{TestPrometheus, NAMESPACE};
use super::queries::{self, Series};
use crate::common::{self, external};

/// A replica's periods and throttled periods, one reading a second from its birth (a real run
/// of the dashboards test: the 0.05-core step's replica).
const PERIODS: [u64; 6] = [12, 25, 33, 45, 53, 55];
const THROTTLED: [u64; 6] = [10, 22, 30, 42, 50, 50];
/// Where in the second the panels are evaluated, after the readings: the phase of the run
/// that showed 112 %.
const PHASE_S: f64 = 0.4186;

/// `(dashboard, panel, job, throttled metric, periods metric, label)` of each throttled panel.
const PANELS: [(&str, &str, &str, &str, &str, &str); 2] = [
    (
        "polymetrie.json",
        "Throttled periods per pod",
        "polymetrie",
        "polymetrie_cgroup_cpu_throttled_periods_total",
        "polymetrie_cgroup_cpu_periods_total",
        "pod",
    ),
    (
        "loadgen-campaign.json",
        "Throttled periods per replica",
        "loadgen",
        "loadgen_replica_cpu_throttled_periods_total",
        "loadgen_replica_cpu_periods_total",
        "replica",
    ),
];

/// The OpenMetrics text of both panels' series, readings from `born` (Unix seconds).
fn openmetrics(born: u64) -> String {
    let mut text = String::new();
    for (_, _, job, throttled, periods, label) in PANELS {
        for (metric, values) in [(throttled, THROTTLED), (periods, PERIODS)] {
            let family = metric.trim_end_matches("_total");
            text.push_str(&format!("# TYPE {family} counter\n"));
            for (i, v) in values.iter().enumerate() {
                text.push_str(&format!(
                    "{metric}{{namespace=\"{NAMESPACE}\",job=\"{job}\",{label}=\"r1\"}} {v} {}\n",
                    born + i as u64
                ));
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Writes the blocks of `text` into `data` with promtool; false (loudly) without it.
fn backfill(dir: &Path, text: &str) -> bool {
    let Some(promtool) = external::binary("promtool", "prometheus") else {
        return false;
    };
    let input = dir.join("samples.om");
    std::fs::write(&input, text).unwrap();
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.join("data"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn values(series: &[Series]) -> Vec<f64> {
    series.iter().flat_map(|s| s.values.clone()).collect()
}

#[test]
fn a_new_replicas_first_window_never_shows_more_than_100_percent() {
    let Some(binary) = external::binary("prometheus", "prometheus") else {
        return;
    };
    let dir = common::tempdir("dashboards-throttle");
    // An hour back: inside the retention, and whole seconds like a scrape's timestamps.
    let born = super::unix_now() as u64 - 3600;
    if !backfill(dir.path(), &openmetrics(born)) {
        return;
    }
    let prom = TestPrometheus::start(&binary, dir.path());
    // From before the birth to past the last reading, once a second at the failing phase.
    let (start, end) = (born as f64 - 3.0 + PHASE_S, born as f64 + 7.0 + PHASE_S);
    for (name, panel, job, throttled, periods, label) in PANELS {
        let vars = super::variables(job, start, end);
        let step = vars.interval;
        let q = queries::queries(name, &queries::load(name))
            .into_iter()
            .find(|q| q.panel == panel)
            .unwrap_or_else(|| panic!("{name} has no panel {panel:?}"));
        let shown = values(
            &prom
                .range(&queries::substitute(&q.expr, &vars), start, end, step)
                .unwrap(),
        );
        assert!(!shown.is_empty(), "{}: no value at all", q.name());
        assert!(
            shown.iter().all(|v| (0.0..=1.0).contains(v)),
            "{}: {shown:?}",
            q.name()
        );

        let sel = format!("{{namespace=~\"{NAMESPACE}\", job=~\"{job}\"}}");
        let rate_ratio = format!(
            "sum by ({label}) (rate({throttled}{sel}[{w}s])) / (sum by ({label}) (rate({periods}{sel}[{w}s])) > 0)",
            w = vars.rate_interval.as_secs()
        );
        let control = values(&prom.range(&rate_ratio, start, end, step).unwrap());
        assert!(
            control.iter().any(|v| *v > 1.05),
            "the rate() ratio no longer overshoots on these samples ({control:?}): the data no \
             longer tests what it should"
        );
    }
}
