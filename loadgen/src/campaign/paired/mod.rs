//! A paired run (`loadgen compare`): the capacity searches of two plans — the same campaigns,
//! two services — run in one process on one machine, their probes interleaved base, head,
//! head, base, … so that whatever drifts on the machine meanwhile (a neighbour, the CPU's
//! clock, the page cache) falls on both sides alike. Each configuration is searched `repeats`
//! times per side; a repeat starts near the knee its side found so far
//! (`compare::warm_start`). Each side is an ordinary run of its own — its own deployer, its
//! own folder, its run.json saved after every probe — so each can be reported and judged
//! again like any run; the comparison is drawn from the two ([`loadgen_judge::compare`]).

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::step::StepContext;
use super::{campaign_finding, finish, pause, prepare, record_finding, restore, run_one, save};
use super::{new_result, search, CampaignError, Events, RunOptions};
use crate::deployer::Deployer;
use crate::plan::{Plan, SearchConfiguration, SearchPlan};
use loadgen_judge::check;
use loadgen_judge::compare::{warm_start, Point};
use loadgen_judge::search::{self as decide, Decision, Probe};
use loadgen_model::capacity::ProbeRecord;
use loadgen_model::compare::{OrderedProbe, Side};
use loadgen_model::result::{CampaignResult, CheckName, Severity};

/// Options of a paired run.
#[derive(Debug, Clone)]
pub struct PairedOptions {
    /// Where each side's run goes: `<out>/base`, `<out>/head`.
    pub out_dir: PathBuf,
    /// Searches of each configuration, per side.
    pub repeats: u32,
    pub time_scale: f64,
    /// Each side's events, in that order.
    pub events: [Events; 2],
}

/// The two runs, and the order their probes ran in.
#[derive(Debug)]
pub struct Paired {
    pub base: CampaignResult,
    pub head: CampaignResult,
    pub order: Vec<OrderedProbe>,
}

/// One side while it runs.
struct Runner<'a> {
    side: Side,
    plan: &'a Plan,
    opts: RunOptions,
    deployer: Deployer,
    result: CampaignResult,
    /// Probes run of the configuration in progress, every repeat (their names' indexes).
    index: u32,
}

/// Runs both plans' searches interleaved. `plans` are (base, head); the caller has checked
/// that their searches are the same.
pub async fn run(
    plans: [&Plan; 2],
    opts: &PairedOptions,
    stop: &CancellationToken,
) -> Result<Paired, CampaignError> {
    let mut sides = Vec::new();
    for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
        sides.push(start(side, plans[i], opts, i).await?);
    }
    let mut order = Vec::new();
    let outcome = run_searches(&mut sides, opts.repeats, stop, &mut order).await;
    let mut done = Vec::new();
    for mut s in sides {
        restore(&mut s.deployer, &mut s.result, &s.opts.events).await;
        let result = finish(s.result, s.plan, stop.is_cancelled());
        save(&result, &s.opts.out_dir)?;
        done.push(result);
    }
    outcome?;
    let head = done.pop().expect("two sides");
    let base = done.pop().expect("two sides");
    Ok(Paired { base, head, order })
}

/// What of a plan a comparison leaves out, one line each, for the caller to say before the
/// probes start: a scenario's Prometheus (each side is judged by its own counter and CPU, as a
/// CI runner has no Prometheus), a search's `budget` (a budget stopping one side before the
/// other would leave the two searches unequal: each is bounded by the search's worst case
/// instead) and the fixed-rate steps (only the search campaigns are compared).
pub fn left_out(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if plan.prometheus.is_some() {
        out.push(
            "the scenario's Prometheus is not queried: each side is judged by its own counter \
             and CPU"
                .to_string(),
        );
    }
    for s in plan.searches.iter() {
        let Some(budget) = s.spec.budget_s else {
            continue;
        };
        out.push(format!(
            "campaign {}: the search's budget of {budget:.0} s is not applied: each side's \
             search is bounded by its worst case, {} probes per configuration ({:.0} s per \
             side and repeat)",
            s.campaign,
            s.worst_case_probes(),
            s.worst_case().as_secs_f64(),
        ));
    }
    if !plan.steps.is_empty() {
        out.push(format!(
            "the {} fixed-rate steps are not run: compare runs the search campaigns only",
            plan.steps.len()
        ));
    }
    out
}

/// Why two plans' searches cannot be compared probe for probe: the first difference, named.
/// Only the service may differ; the campaigns, configurations, search, SLO, request, limits,
/// warm-up and pause must be the same.
pub fn incomparable(base: &Plan, head: &Plan) -> Option<String> {
    if base.searches.is_empty() {
        return Some("the scenarios have no search campaign (`campaign.search`) to compare".into());
    }
    let names = |p: &Plan| {
        p.searches
            .iter()
            .map(|s| s.campaign.clone())
            .collect::<Vec<_>>()
    };
    if names(base) != names(head) {
        return Some(format!(
            "the search campaigns differ: base {:?}, head {:?}",
            names(base),
            names(head)
        ));
    }
    for (b, h) in base.searches.iter().zip(&head.searches) {
        // RequestTemplate has no PartialEq; its Debug shows every field.
        let (bs, hs) = (&b.settings, &h.settings);
        let differs = [
            ("search", b.spec != h.spec),
            ("slo", b.slo != h.slo),
            ("configurations", b.configurations != h.configurations),
            (
                "request",
                format!("{:?}", bs.request) != format!("{:?}", hs.request),
            ),
            ("limits", bs.limits != hs.limits),
            ("warmup", bs.warmup != hs.warmup),
            ("pause", bs.pause_after != hs.pause_after),
            (
                "arrival",
                format!("{:?}", bs.load) != format!("{:?}", hs.load),
            ),
        ];
        if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
            return Some(format!(
                "campaign {}: the two scenarios' {what} differ; only the service may",
                b.campaign
            ));
        }
    }
    None
}

/// A side prepared: its deployer, its pre-flight, its empty result saved.
async fn start<'a>(
    side: Side,
    plan: &'a Plan,
    opts: &PairedOptions,
    i: usize,
) -> Result<Runner<'a>, CampaignError> {
    let out_dir = opts.out_dir.join(side.as_str());
    std::fs::create_dir_all(&out_dir).map_err(|source| CampaignError::Write {
        path: out_dir.clone(),
        source,
    })?;
    let run_opts = RunOptions {
        out_dir: out_dir.clone(),
        prometheus: None,
        progress: false,
        time_scale: opts.time_scale,
        events: opts.events[i].clone(),
        generator_metrics: None,
    };
    let mut deployer = Deployer::for_target(&plan.target, &plan.tls, &out_dir);
    let leftovers = prepare(plan, &mut deployer, &CancellationToken::new()).await?;
    let mut result = new_result(&plan.source, plan, opts.time_scale);
    for note in leftovers {
        let f = campaign_finding(Severity::Warn, CheckName::Restore, note);
        record_finding(&run_opts.events, &mut result, f);
    }
    save(&result, &out_dir)?;
    Ok(Runner {
        side,
        plan,
        opts: run_opts,
        deployer,
        result,
        index: 0,
    })
}

/// Every search, configuration and repeat, both sides in turn; a turn alternates which side
/// goes first, so the order is A B B A A B …
async fn run_searches(
    sides: &mut [Runner<'_>],
    repeats: u32,
    stop: &CancellationToken,
    order: &mut Vec<OrderedProbe>,
) -> Result<(), CampaignError> {
    let mut turn = 0usize;
    for at in 0..sides[0].plan.searches.len() {
        for s in sides.iter_mut() {
            let record = search::record(&context(s, stop), &s.plan.searches[at]);
            s.result.searches.push(record);
        }
        for c in 0..sides[0].plan.searches[at].configurations.len() {
            sides.iter_mut().for_each(|s| s.index = 0);
            for repeat in 0..repeats.max(1) {
                let mut pair = PairState::new(sides, at, c);
                while !stop.is_cancelled() {
                    let first = turn % 2;
                    turn += 1;
                    let mut ran = false;
                    for i in [first, 1 - first] {
                        ran |= pair
                            .next(&mut sides[i], i, (at, c, repeat), stop, order)
                            .await?;
                    }
                    if !ran {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn context<'a>(s: &'a Runner<'a>, stop: &'a CancellationToken) -> StepContext<'a> {
    step_context(s.plan, &s.opts, stop, s.result.machine.cpus)
}

/// A side's step context: no Prometheus (a comparison reads each side's own counter and CPU).
fn step_context<'a>(
    plan: &'a Plan,
    opts: &'a RunOptions,
    stop: &'a CancellationToken,
    node_cpus: Option<u32>,
) -> StepContext<'a> {
    StepContext {
        plan,
        prometheus: None,
        opts,
        stop,
        node_cpus,
    }
}

/// Both sides' searches of one configuration, one repeat.
struct PairState {
    history: [Vec<Probe>; 2],
    spec: [loadgen_model::search::SearchSpec; 2],
    done: [bool; 2],
}

impl PairState {
    /// A repeat starts from where its side's earlier repeats put the knee.
    fn new(sides: &[Runner<'_>], at: usize, c: usize) -> PairState {
        let spec = |i: usize| {
            let s: &Runner = &sides[i];
            let plan = &s.plan.searches[at];
            warm_start(&plan.spec, &points(&s.result, at, &plan.configurations[c]))
        };
        PairState {
            history: [Vec::new(), Vec::new()],
            spec: [spec(0), spec(1)],
            done: [false, false],
        }
    }

    /// Side `i`'s next probe, if its search goes on; false when it is done.
    async fn next(
        &mut self,
        s: &mut Runner<'_>,
        i: usize,
        (at, c, repeat): (usize, usize, u32),
        stop: &CancellationToken,
        order: &mut Vec<OrderedProbe>,
    ) -> Result<bool, CampaignError> {
        if self.done[i] {
            return Ok(false);
        }
        let decision = decide::decide(
            &self.spec[i],
            &self.history[i],
            Duration::ZERO,
            Duration::ZERO,
        );
        let Decision::Probe { rate_rps, kind } = decision else {
            self.done[i] = true;
            return Ok(false);
        };
        let plan: &SearchPlan = &s.plan.searches[at];
        let config: &SearchConfiguration = &plan.configurations[c];
        let step = plan.probe(config, s.index, rate_rps);
        s.index += 1;
        let cx = step_context(s.plan, &s.opts, stop, s.result.machine.cpus);
        let ran = run_one(&cx, &step, &mut s.deployer, &mut s.result).await;
        if !ran {
            // The step could not run at all (its finding says why): this side's search of
            // the configuration ends here, and the comparison says it is not comparable.
            self.done[i] = true;
            save(&s.result, &s.opts.out_dir)?;
            return Ok(false);
        }
        let probe = s.result.steps.last().expect("run_one recorded the probe");
        let outcome = check::slo::outcome(probe, &plan.slo);
        let passed = (!probe.interrupted).then(|| outcome.passed());
        if !probe.interrupted {
            self.history[i].push(Probe {
                rate_rps,
                outcome,
                kind,
            });
        }
        order.push(OrderedProbe {
            side: s.side,
            step: step.id().to_string(),
            rate_rps,
            passed,
        });
        s.result.searches[at].probes.push(ProbeRecord {
            step: step.id(),
            configuration: config.key.clone(),
            index: s.index - 1,
            kind,
            repeat,
        });
        save(&s.result, &s.opts.out_dir)?;
        pause(step.pause_after, stop).await;
        Ok(true)
    }
}

/// A side's probes of a configuration so far, as evidence, for the next repeat's start.
fn points(run: &CampaignResult, at: usize, config: &SearchConfiguration) -> Vec<Point> {
    let record = &run.searches[at];
    let Some(configuration) = record.configurations.iter().find(|c| c.key == config.key) else {
        return Vec::new();
    };
    loadgen_judge::compare::points(run, record, configuration).points
}

#[cfg(test)]
mod tests;
