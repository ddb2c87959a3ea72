//! `loadgen validate SCENARIO [--json]`: parse and expand a scenario, print the plan (a table
//! per step, or the JSON contract `{"steps":[…]}`), and fail with the scenario error — one line
//! naming file, line, column and key — when it is wrong (exit 2).

use std::io::Write;

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

use crate::cli::{ExitStatus, ValidateArgs};
use loadgen::plan::{Plan, Step, Target};

/// One step in `--json` output: exactly the keys of the DESIGN.md contract.
#[derive(Debug, Serialize)]
pub struct StepView {
    pub campaign: String,
    pub name: String,
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
    pub rate_rps: f64,
    pub duration_s: f64,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub steps: Vec<StepView>,
}

impl PlanView {
    pub fn of(plan: &Plan) -> Self {
        Self {
            steps: plan
                .steps
                .iter()
                .map(|s| StepView {
                    campaign: s.campaign.clone(),
                    name: s.name.clone(),
                    replicas: s.topology.replicas,
                    cpu_limit_cores: s.topology.cpu_limit_cores,
                    rate_rps: s.rate_rps(),
                    duration_s: s.load.duration().as_secs_f64(),
                })
                .collect(),
        }
    }
}

/// Runs `loadgen validate`.
pub fn execute(args: ValidateArgs) -> anyhow::Result<ExitStatus> {
    let plan = Plan::load(&args.scenario)?;
    let text = if args.json {
        serde_json::to_string_pretty(&PlanView::of(&plan))? + "\n"
    } else {
        render(&plan)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitStatus::Done),
    }
}

/// The human summary: a header, one row per step, thresholds.
pub fn render(plan: &Plan) -> String {
    let target = match &plan.target {
        Target::Local(svc) => format!(
            "local polymetrie, cost {}ms per click, sites {}",
            svc.cost.as_secs_f64() * 1000.0,
            svc.sites.join(",")
        ),
        Target::Url { base } => format!("running service at {base} (topology informational)"),
        Target::Kubernetes(k) => format!(
            "Deployment {}/{} (container {}), load through {}, pod metrics on port {}",
            k.namespace, k.deployment, k.container, k.service_url, k.metrics_port
        ),
    };
    let mut out = format!(
        "scenario {} ({}, sha256 {})\ntarget: {target}; counter site {}\n{} steps in {} campaigns, planned time {} (deploys not included)\n",
        plan.source.name,
        plan.source.path,
        &plan.source.sha256[..12],
        plan.counter_site,
        plan.steps.len(),
        plan.campaigns.len(),
        humantime::format_duration(std::time::Duration::from_secs(
            plan.planned_duration().as_secs()
        )),
    );
    let mut b = Builder::default();
    b.push_record([
        "campaign",
        "step",
        "replicas",
        "cpu limit",
        "rate",
        "duration",
        "requests",
        "store",
    ]);
    for s in &plan.steps {
        b.push_record(row(s));
    }
    let mut table = b.build();
    table
        .with(Style::sharp())
        .modify(Columns::new(2..7), Alignment::right());
    out.push_str(&table.to_string());
    out.push('\n');
    for t in &plan.thresholds {
        let bound = t.bound();
        let on = if t.steps.is_empty() {
            "every step".to_string()
        } else {
            t.steps.join(", ")
        };
        out.push_str(&format!("threshold: {} {bound} on {on}\n", t.metric));
    }
    for w in &plan.warnings {
        let at = w.step.as_ref().map_or(String::new(), |s| format!(" ({s})"));
        out.push_str(&format!("warning{at}: {}\n", w.message));
    }
    out
}

fn row(s: &Step) -> [String; 8] {
    let stage = &s.load.stages;
    let rate = match (stage.first(), stage.len()) {
        (Some(st), 1) if st.from_rps != st.to_rps => {
            format!("{}→{} req/s", st.from_rps, st.to_rps)
        }
        _ => format!("{} req/s", s.rate_rps()),
    };
    [
        s.campaign.clone(),
        s.name.clone(),
        s.topology.replicas.to_string(),
        s.topology
            .cpu_limit_cores
            .map(|c| format!("{c} core"))
            .unwrap_or_else(|| "none".into()),
        rate,
        humantime::format_duration(s.load.duration()).to_string(),
        s.requests().to_string(),
        s.topology.store.as_str().to_string(),
    ]
}
