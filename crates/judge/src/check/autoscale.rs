//! An autoscale step's reaction, read from its once-a-second samples: when the HPA first asked
//! for more pods than the step began with, when they were Ready, and the most it asked for and
//! got, against its bounds. Also the limit of the step's per-pod evidence: CPU and per-pod
//! counts are read from the pods Ready when the step began, not from pods the HPA added.

use super::finding;
use loadgen_model::result::{CheckName, Finding, Severity, StepResult};
use loadgen_model::scaling::reaction;

/// The autoscale findings of `step` (none for a step without samples).
pub fn findings(step: &StepResult, out: &mut Vec<Finding>) {
    let Some(a) = step.topology.as_ref().and_then(|t| t.autoscale) else {
        return;
    };
    if step.scaling.is_empty() {
        out.push(finding(
            CheckName::Autoscale,
            Severity::Warn,
            step,
            "no sample of the Deployment or its HPA was taken: how the autoscaler reacted is \
             unknown"
                .into(),
        ));
        return;
    }
    let r = reaction(&step.scaling);
    let at =
        |t: Option<u32>| t.map_or("never within the step".to_string(), |t| format!("at {t} s"));
    let count = |v: Option<u32>| v.map_or("unknown".to_string(), |v| v.to_string());
    let message = format!(
        "HPA {}–{} pods at {} % CPU: began with {} Ready; asked for more {}, more were Ready {}; \
         peak desired {}, peak Ready {}",
        a.min_replicas,
        a.max_replicas,
        a.cpu_utilization_pct,
        count(r.started_with),
        at(r.first_scale_up_s),
        at(r.first_ready_up_s),
        count(r.peak_desired),
        count(r.peak_ready),
    );
    out.push(finding(CheckName::Autoscale, Severity::Info, step, message));
    if let (Some(peak), Some(start)) = (r.peak_ready, r.started_with) {
        if peak > start {
            out.push(finding(
                CheckName::Autoscale,
                Severity::Warn,
                step,
                format!(
                    "per-pod CPU and counts cover the {start} pod(s) Ready when the step began; \
                     the {} the HPA added are in the counter and the load, not in the per-pod \
                     readings",
                    peak - start
                ),
            ));
        }
    }
}
