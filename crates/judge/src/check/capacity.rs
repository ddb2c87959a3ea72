//! The capacity of each searched configuration, judged from its saved probes: each probe
//! against the SLO ([`super::slo`]), the interval and spread the search module reads from
//! them, the evidence of the first failure, and the derived figures — per replica, per core
//! of limit, scaling efficiency against one replica, CPU-seconds per 1,000 counted clicks.
//! Pure: the same run.json always gives the same capacities.

use super::slo;
use crate::search::{self, Ending, Outcome, Probe};
use loadgen_model::capacity::{Capacity, Configuration, FailureEvidence, Repeat, SearchRecord};
use loadgen_model::result::{CampaignResult, StepResult};

/// Every searched configuration's capacity, searches and configurations in plan order.
pub fn capacities(run: &CampaignResult) -> Vec<Capacity> {
    let mut out = Vec::new();
    for record in &run.searches {
        let found: Vec<Capacity> = record
            .configurations
            .iter()
            .map(|c| configuration(run, record, c))
            .collect();
        out.extend(found.iter().map(|c| with_efficiency(c, &found)));
    }
    out
}

/// The probes of `config`, with their steps and what the search made of each. An interrupted
/// probe says nothing about the rate it was cut short at (the search never saw it); one the
/// generator spoiled stays, as the search saw it, and [`search::interval`] passes over it.
fn probes_of<'r>(
    run: &'r CampaignResult,
    record: &SearchRecord,
    config: &Configuration,
    repeat: Option<u32>,
) -> Vec<(Probe, &'r StepResult)> {
    record
        .probes
        .iter()
        .filter(|p| p.configuration == config.key)
        .filter(|p| repeat.is_none_or(|r| p.repeat == r))
        .filter_map(|p| {
            let step = run.steps.iter().find(|s| s.id() == p.step)?;
            let probe = Probe {
                rate_rps: step.rate_rps,
                outcome: slo::outcome(step, &record.slo),
                kind: p.kind,
            };
            (!step.interrupted).then_some((probe, step))
        })
        .collect()
}

/// The probes of `config`'s last search: a configuration searched more than once (`loadgen
/// compare`) ends as its last search did.
fn last_search(
    run: &CampaignResult,
    record: &SearchRecord,
    config: &Configuration,
    history: &[Probe],
) -> Vec<Probe> {
    let last = record
        .probes
        .iter()
        .filter(|p| p.configuration == config.key)
        .map(|p| p.repeat)
        .max()
        .unwrap_or(0);
    match last {
        0 => history.to_vec(),
        r => probes_of(run, record, config, Some(r))
            .iter()
            .map(|(p, _)| *p)
            .collect(),
    }
}

fn configuration(run: &CampaignResult, record: &SearchRecord, config: &Configuration) -> Capacity {
    let probes = probes_of(run, record, config, None);
    let history: Vec<Probe> = probes.iter().map(|(p, _)| *p).collect();
    let last_search = last_search(run, record, config, &history);
    let iv = search::interval(&history);
    let stopped_here = record
        .budget_stop
        .as_ref()
        .is_some_and(|b| b.configuration == config.key);
    let ending = match search::ending(&record.spec, &last_search) {
        // A configuration the budget reached, or never reached, stopped on it.
        Ending::Unfinished
            if stopped_here || (history.is_empty() && record.budget_stop.is_some()) =>
        {
            Ending::Budget
        }
        e => e,
    };
    let first_failure = iv.failed_rps.and_then(|rate| {
        let (_, step) = probes
            .iter()
            .find(|(p, _)| p.rate_rps == rate && p.outcome.is_failure())?;
        Some(FailureEvidence {
            step: step.id(),
            rate_rps: rate,
            broken: slo::judge(step, &record.slo).broken,
            causes: slo::causes(step),
        })
    });
    let topology = &config.topology;
    let replicas = f64::from(topology.replicas);
    let capacity = iv.passed_rps;
    Capacity {
        campaign: record.campaign.clone(),
        configuration: config.key.clone(),
        topology: topology.clone(),
        capacity_rps: capacity,
        failed_rps: iv.failed_rps,
        spread_rps: iv.spread_rps(),
        repeats: iv
            .repeats
            .iter()
            .map(|&(rate_rps, runs, passed)| Repeat {
                rate_rps,
                runs: runs as u32,
                passed: passed as u32,
            })
            .collect(),
        probes: history.len() as u32,
        generator_reruns: history
            .iter()
            .filter(|p| p.outcome == Outcome::GeneratorInvalid)
            .count() as u32,
        ending,
        first_failure,
        capacity_per_replica_rps: capacity.map(|c| c / replicas),
        capacity_per_core_rps: capacity
            .zip(topology.cpu_limit_cores)
            .map(|(c, cores)| c / (replicas * cores)),
        scaling_efficiency: None,
        cpu_s_per_1k_clicks: capacity.and_then(|c| cpu_per_1k_at(&probes, c)),
    }
}

/// CPU-seconds per 1,000 counted clicks over the passing probes at `rate`: every repeat
/// weighs by its clicks, so one short reading does not skew it.
fn cpu_per_1k_at(probes: &[(Probe, &StepResult)], rate: f64) -> Option<f64> {
    let (mut cpu_s, mut clicks) = (0.0, 0.0);
    for (_, s) in probes
        .iter()
        .filter(|(p, _)| p.passed() && p.rate_rps == rate)
    {
        let cores = s.cpu.as_ref().and_then(|c| c.cores_used);
        let delta = s.counter.as_ref().and_then(|c| c.delta).filter(|d| *d > 0);
        if let (Some(cores), Some(delta)) = (cores, delta) {
            cpu_s += cores * s.duration_s;
            clicks += delta as f64;
        }
    }
    (clicks > 0.0).then(|| cpu_s / clicks * 1000.0)
}

/// `c` with its scaling efficiency: its capacity over its replicas times the capacity of one
/// replica of the same CPU limit and store in the same search (1 for that one replica).
fn with_efficiency(c: &Capacity, all: &[Capacity]) -> Capacity {
    let t = &c.topology;
    let single = all.iter().find(|o| {
        o.topology.replicas == 1
            && o.topology.cpu_limit_cores == t.cpu_limit_cores
            && o.topology.store == t.store
    });
    let efficiency = match (c.capacity_rps, single.and_then(|s| s.capacity_rps)) {
        (Some(n), Some(one)) if one > 0.0 => Some(n / (f64::from(t.replicas) * one)),
        _ => None,
    };
    Capacity {
        scaling_efficiency: efficiency,
        ..c.clone()
    }
}
