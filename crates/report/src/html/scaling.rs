//! The autoscaling section, for runs with autoscale steps: per step, the Deployment's pods
//! (existing and Ready) and the HPA's desired count once a second from the attack's start, the
//! CPU utilisation the HPA acted on, and how fast it reacted — the reaction TD4's team could
//! only guess at from Grafana. Nothing is drawn for a run without autoscale steps.

use std::fmt::Write as _;

use crate::chart::{self, LineChart, Series, Stroke};
use crate::row::{num, rows, StepRow};
use loadgen_model::result::{CampaignResult, ScalePoint, StepResult};
use loadgen_model::scaling::reaction;

use super::figure::figure;
use super::numbers::td;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let scaled: Vec<(StepRow, &StepResult)> = rows(r)
        .into_iter()
        .map(|row| {
            let step = &r.steps[row.index - 1];
            (row, step)
        })
        .filter(|(_, s)| !s.scaling.is_empty())
        .collect();
    if scaled.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"autoscaling\">\n<h2>Autoscaling</h2>\n<p>Per second from the start of \
         each autoscale step's load (its HPA was applied then, on the step's minimum of pods): \
         the pods that exist and those Ready, the HPA's desired count, and the average CPU \
         utilisation of the request it acted on. A missing point was not read.</p>\n",
    );
    for (row, step) in scaled {
        step_figure(h, &row, step);
    }
    h.push_str("</section>\n");
}

fn step_figure(h: &mut String, row: &StepRow, step: &StepResult) {
    let s = &step.scaling;
    let series = |label: &str, colour, stroke, v: fn(&ScalePoint) -> Option<u32>| Series {
        label: label.into(),
        colour,
        stroke,
        points: s
            .iter()
            .filter_map(|p| v(p).map(|y| (f64::from(p.t_s), f64::from(y))))
            .collect(),
    };
    let top = step
        .topology
        .as_ref()
        .and_then(|t| t.autoscale)
        .map(|a| f64::from(a.max_replicas));
    let chart = LineChart {
        title: format!("#{} {} — pods over time", row.index, row.key()),
        x_label: "seconds into the load".into(),
        y_label: "pods".into(),
        series: vec![
            series("desired (HPA)", 3, Stroke::Dashed, |p| p.desired_replicas),
            series("existing", 0, Stroke::Solid, |p| p.replicas),
            series("Ready", 2, Stroke::Solid, |p| p.ready_replicas),
        ],
        log_y: false,
        y_range: top.map(|t| (0.0, t + 0.5)),
        diagonal: false,
        size: (560, 280),
    };
    let r = reaction(s);
    let at = |t: Option<u32>| t.map_or("never".to_string(), |t| format!("{t} s"));
    let caption = format!(
        "The HPA first asked for more pods at {}; more were Ready at {}.",
        at(r.first_scale_up_s),
        at(r.first_ready_up_s)
    );
    let id = format!("chart-scaling-{}", row.index);
    figure(h, &id, chart::line(&chart), &caption, &numbers(s));
}

fn numbers(s: &[ScalePoint]) -> String {
    let mut t = String::from(
        "<table><thead><tr><th>t (s)</th><th>existing</th><th>Ready</th><th>desired</th>\
         <th>CPU (% of request)</th></tr></thead><tbody>\n",
    );
    let count = |v: Option<u32>| v.map(|v| v.to_string());
    for p in s {
        let _ = write!(t, "<tr><td>{}</td>", p.t_s);
        td(&mut t, count(p.replicas));
        td(&mut t, count(p.ready_replicas));
        td(&mut t, count(p.desired_replicas));
        td(&mut t, p.cpu_utilization_pct.map(|v| num(v, 0)));
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>");
    t
}
