//! A plan as `loadgen validate` shows it: the `--json` document (exactly the keys of the
//! validate contract, ARCHITECTURE.md "Contracts", plus any search's configurations and worst
//! case) and the human summary (a header, one row per step, thresholds). Pure: it returns text.

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

use super::{Plan, SearchPlan, Step, Target};

/// One step in `--json` output: exactly the keys of the validate contract (ARCHITECTURE.md, "Contracts").
#[derive(Debug, Serialize)]
pub struct StepView {
    pub campaign: String,
    pub name: String,
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
    pub rate_rps: f64,
    pub duration_s: f64,
}

/// One search campaign in `--json` output: what it searches and its worst case.
#[derive(Debug, Serialize)]
pub struct SearchView {
    pub campaign: String,
    pub configurations: Vec<ConfigurationView>,
    #[serde(flatten)]
    pub spec: loadgen_judge::search::SearchSpec,
    pub slo: loadgen_model::slo::Slo,
    pub worst_case_probes: usize,
    /// Warm-ups, probes and pauses of every configuration at its worst case, deploys not
    /// included.
    pub worst_case_s: f64,
}

#[derive(Debug, Serialize)]
pub struct ConfigurationView {
    pub key: String,
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
    pub store: String,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub steps: Vec<StepView>,
    /// Only in plans with a capacity search.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<SearchView>,
}

impl SearchView {
    pub fn of(s: &SearchPlan) -> Self {
        Self {
            campaign: s.campaign.clone(),
            configurations: s
                .configurations
                .iter()
                .map(|c| ConfigurationView {
                    key: c.key.clone(),
                    replicas: c.topology.replicas,
                    cpu_limit_cores: c.topology.cpu_limit_cores,
                    store: c.topology.store.as_str().to_string(),
                })
                .collect(),
            spec: s.spec.clone(),
            slo: s.slo.clone(),
            worst_case_probes: s.worst_case_probes(),
            worst_case_s: s.worst_case().as_secs_f64(),
        }
    }
}

impl PlanView {
    pub fn of(plan: &Plan) -> Self {
        Self {
            searches: plan.searches.iter().map(SearchView::of).collect(),
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

/// The human summary: a header, one row per step, thresholds.
pub fn render(plan: &Plan) -> String {
    let target = match &plan.target {
        Target::Local(svc) => format!(
            "local polymetrie, cost {}ms per click, sites {}",
            svc.cost.as_secs_f64() * 1000.0,
            svc.sites.join(",")
        ),
        Target::Command(c) => format!(
            "local command `{}`, {} dependenc{}, balance per {}",
            c.command
                .argv
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            c.dependencies.len(),
            if c.dependencies.len() == 1 {
                "y"
            } else {
                "ies"
            },
            match c.balance {
                loadgen_engine::Balance::Request => "request",
                loadgen_engine::Balance::Connection => "connection",
            }
        ),
        Target::Url { base } => format!("running service at {base} (topology informational)"),
        Target::Kubernetes(k) => format!(
            "Deployment {}/{} (container {}), load through {}, pod metrics on port {}",
            k.namespace, k.deployment, k.container, k.service_url, k.metrics_port
        ),
    };
    let mut out = format!(
        "scenario {} ({}, sha256 {})\ntarget: {target}; {}\n{} steps in {} campaigns, planned time {} (deploys not included)\n",
        plan.source.name,
        plan.source.path,
        &plan.source.sha256[..12],
        match &plan.counter {
            crate::plan::counter::Counter::Site(site) => format!("counter site {site}"),
            crate::plan::counter::Counter::None => {
                "no counter: verdicts rest on the client's view".to_string()
            }
            other => format!("counter {other}"),
        },
        plan.steps.len(),
        plan.campaigns.len(),
        humantime::format_duration(std::time::Duration::from_secs(
            plan.planned_duration().as_secs()
        )),
    );
    // A plan of searches only has no step to list.
    if !plan.steps.is_empty() {
        out.push_str(&steps_table(plan));
        out.push('\n');
    }
    for s in &plan.searches {
        out.push_str(&search_lines(s));
    }
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

/// One row per step; a `generators` column only when a step is split over several, a `tls`
/// column only when a step is served over the run's own TLS.
fn steps_table(plan: &Plan) -> String {
    let mut b = Builder::default();
    let header = [
        "campaign",
        "step",
        "replicas",
        "cpu limit",
        "rate",
        "duration",
        "requests",
        "store",
    ];
    // Only a plan that splits a step over several generators shows how many.
    let sharded = plan.steps.iter().any(|s| s.generators.count > 1);
    let tls = plan.steps.iter().any(|s| s.topology.tls);
    let with_generators = |mut cells: Vec<String>, generators: String, https: String| {
        if sharded {
            cells.push(generators);
        }
        if tls {
            cells.push(https);
        }
        cells
    };
    b.push_record(with_generators(
        header.map(String::from).to_vec(),
        "generators".into(),
        "tls".into(),
    ));
    for s in &plan.steps {
        let g = &s.generators;
        let generators = match (g.count, g.pin) {
            (n, true) if n > 1 => format!("{n} (pinned)"),
            (n, _) => n.to_string(),
        };
        let mut cells = row(s).to_vec();
        if matches!(plan.target, Target::Command(_)) {
            // A user's service keeps its state where its own command says.
            cells[7] = "own".into();
        }
        let https = if s.topology.tls { "yes" } else { "no" };
        b.push_record(with_generators(cells, generators, https.into()));
    }
    let mut table = b.build();
    table
        .with(Style::sharp())
        .modify(Columns::new(2..7), Alignment::right());
    table.to_string()
}

/// What a search campaign will do, and the longest it can take.
fn search_lines(s: &SearchPlan) -> String {
    let secs = |d: std::time::Duration| {
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    };
    let keys: Vec<&str> = s.configurations.iter().map(|c| c.key.as_str()).collect();
    let spec = &s.spec;
    let mut out = format!(
        "search {}: {} configuration(s) ({}), from {} to {} req/s, grown ×2 then bisected to {} %, \
         probes of {} (+ {} warm-up, {} pause), each end of the bracket run {} more time(s)\n",
        s.campaign,
        keys.len(),
        keys.join(", "),
        spec.from_rps,
        spec.to_rps,
        spec.precision * 100.0,
        humantime::format_duration(spec.step()),
        humantime::format_duration(s.settings.warmup),
        humantime::format_duration(s.settings.pause_after),
        spec.confirm,
    );
    out.push_str(&format!(
        "  slo: {}; at most {} probes per configuration: worst case {} (deploys not included)",
        s.slo.describe(),
        s.worst_case_probes(),
        secs(s.worst_case()),
    ));
    match spec.budget() {
        Some(b) if b < s.worst_case() => out.push_str(&format!(
            "; its budget of {} may stop it earlier\n",
            secs(b)
        )),
        Some(b) => out.push_str(&format!("; budget {}\n", secs(b))),
        None => out.push('\n'),
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
        match s.topology.autoscale {
            // The HPA's range and target: the count is its decision, not the plan's.
            Some(a) => format!(
                "{}–{} (HPA {} %)",
                a.min_replicas, a.max_replicas, a.cpu_utilization_pct
            ),
            None => s.topology.replicas.to_string(),
        },
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
