//! A capacity search run by the campaign: per configuration, ask [`search::decide`] for the
//! next rate, run that probe as an ordinary step, judge it by the SLO, and go on until the
//! search is done, the budget would be overrun, or the run is stopped. A probe whose step the
//! generator made invalid (it could not keep its schedule) is handed to the search as such
//! (`check::slo::outcome`), which runs it again rather than count it against the target. Every
//! probe is saved in run.json as it ends, with its place in the search ([`SearchRecord`]).

use std::time::Instant;

use super::step::{self, StepContext};
use super::{campaign_finding, pause, record_finding, run_one, save, CampaignError, Event, Events};
use crate::deployer::Deployer;
use crate::plan::{SearchConfiguration, SearchPlan};
use loadgen_judge::check;
use loadgen_judge::search::{self, Decision, Ending, Probe};
use loadgen_model::capacity::{BudgetStop, Configuration, ProbeRecord, SearchRecord};
use loadgen_model::result::{CampaignResult, CheckName, Severity};

/// Runs every configuration of `plan` in order, recording into `result`.
pub(super) async fn run(
    cx: &StepContext<'_>,
    plan: &SearchPlan,
    deployer: &mut Deployer,
    result: &mut CampaignResult,
) -> Result<(), CampaignError> {
    result.searches.push(record(cx, plan));
    let at = result.searches.len() - 1;
    let started = Instant::now();
    for config in &plan.configurations {
        let ending = configuration(cx, plan, config, deployer, result, at, started).await?;
        if ending == Some(Ending::Budget) {
            break;
        }
    }
    Ok(())
}

/// What run.json keeps of the search before its first probe.
pub(super) fn record(cx: &StepContext<'_>, plan: &SearchPlan) -> SearchRecord {
    SearchRecord {
        campaign: plan.campaign.clone(),
        spec: plan.spec.clone(),
        slo: plan.slo.clone(),
        configurations: plan
            .configurations
            .iter()
            .map(|c| Configuration {
                key: c.key.clone(),
                topology: step::topology_view(cx.plan, &c.topology),
            })
            .collect(),
        probes: Vec::new(),
        budget_stop: None,
    }
}

/// One configuration's search; its ending, or `None` when the run was stopped or a probe
/// could not run. Bounded: [`search::decide`] ends every search within its worst case.
async fn configuration(
    cx: &StepContext<'_>,
    plan: &SearchPlan,
    config: &SearchConfiguration,
    deployer: &mut Deployer,
    result: &mut CampaignResult,
    at: usize,
    started: Instant,
) -> Result<Option<Ending>, CampaignError> {
    let worst = plan.worst_case_probes();
    let mut history: Vec<Probe> = Vec::new();
    while !cx.stop.is_cancelled() {
        let decision = search::decide(&plan.spec, &history, started.elapsed(), plan.probe_cost());
        let (rate_rps, kind) = match decision {
            Decision::Done(Ending::Budget) => {
                stop_on_budget(plan, config, &history, result, at, started, &cx.opts.events);
                return Ok(Some(Ending::Budget));
            }
            Decision::Done(ending) => {
                cx.opts.events.emit(Event::SearchEnded {
                    campaign: plan.campaign.clone(),
                    configuration: config.key.clone(),
                    ending,
                });
                return Ok(Some(ending));
            }
            Decision::Probe { rate_rps, kind } => (rate_rps, kind),
        };
        let index = history.len() as u32;
        let step = plan.probe(config, index, rate_rps);
        cx.opts.events.emit(Event::ProbeStarted {
            campaign: plan.campaign.clone(),
            configuration: config.key.clone(),
            index,
            worst_case: worst,
            kind,
            step: step.id(),
            rate_rps,
            duration: step.load.duration(),
            replicas: step.topology.replicas,
            cpu_limit_cores: step.topology.cpu_limit_cores,
        });
        if !run_one(cx, &step, deployer, result).await {
            save(result, &cx.opts.out_dir)?;
            return Ok(None);
        }
        let probe = result.steps.last().expect("run_one recorded the probe");
        let verdict = check::slo::judge(probe, &plan.slo);
        // What the step's validity says decides what the search makes of it: a probe the
        // generator spoiled is run again, never counted as the target failing.
        let outcome = check::slo::outcome(probe, &plan.slo);
        if !probe.interrupted {
            history.push(Probe {
                rate_rps,
                outcome,
                kind,
            });
        }
        cx.opts.events.emit(Event::ProbeJudged {
            step: step.id(),
            passed: verdict.passed,
            broken: verdict.broken.clone(),
        });
        result.searches[at].probes.push(ProbeRecord {
            step: step.id(),
            configuration: config.key.clone(),
            index,
            kind,
            repeat: 0,
        });
        save(result, &cx.opts.out_dir)?;
        pause(step.pause_after, cx.stop).await;
    }
    Ok(None)
}

/// Records where the budget stopped the search, as the run's finding and in its record.
fn stop_on_budget(
    plan: &SearchPlan,
    config: &SearchConfiguration,
    history: &[Probe],
    result: &mut CampaignResult,
    at: usize,
    started: Instant,
    events: &Events,
) {
    let next = match search::decide(&plan.spec, history, Default::default(), Default::default()) {
        Decision::Probe { rate_rps, .. } => rate_rps,
        Decision::Done(_) => 0.0,
    };
    let spent = started.elapsed().as_secs_f64();
    let iv = search::interval(history);
    let rate = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{r:.0}"));
    let searched = plan
        .configurations
        .iter()
        .position(|c| c.key == config.key)
        .unwrap_or(0);
    let left: Vec<&str> = plan.configurations[searched + 1..]
        .iter()
        .map(|c| c.key.as_str())
        .collect();
    let mut message = format!(
        "the search of {} stopped by its budget of {:.0} s after {spent:.0} s: {} had run {} \
         probe(s), the next at {next:.0} req/s; it got to passed {} / failed {} req/s",
        plan.campaign,
        plan.spec.budget_s.unwrap_or_default(),
        config.key,
        history.len(),
        rate(iv.passed_rps),
        rate(iv.failed_rps),
    );
    if !left.is_empty() {
        message.push_str(&format!("; not searched: {}", left.join(", ")));
    }
    let f = campaign_finding(Severity::Warn, CheckName::SearchBudget, message);
    record_finding(events, result, f);
    result.searches[at].budget_stop = Some(BudgetStop {
        configuration: config.key.clone(),
        next_rate_rps: next,
        spent_s: spent,
    });
}
