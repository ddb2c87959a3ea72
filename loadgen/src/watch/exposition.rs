//! The exposition of [`super::metrics::RunMetrics`]: what a scrape writes, read from the state
//! once under its lock. Every metric's name, type and help text is here and only here.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::metrics::{sum_opt, RunMetrics, State, Totals};
use crate::campaign::ReplicaUsage;
use loadgen_engine::buckets::Buckets;

/// The collector a scrape runs: reads the state once, under its lock.
#[derive(Debug)]
pub(super) struct Scrape(pub(super) Arc<RunMetrics>);

type Labels = Vec<(String, String)>;

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock();
        let mut total = s.done.clone();
        total.add(&s.current);
        counters(&mut enc, &s, &total)?;
        histogram(&mut enc, "loadgen_request_latency_seconds", "Latency of answered (and timed-out) requests from their due time: includes any wait the schedule caused", &total.buckets.latency)?;
        histogram(
            &mut enc,
            "loadgen_request_service_time_seconds",
            "Time from a request's send to its answer",
            &total.buckets.service_time,
        )?;
        histogram(
            &mut enc,
            "loadgen_schedule_lag_seconds",
            "How late the generator sent each request after its due time (its own lateness)",
            &total.buckets.schedule_lag,
        )?;
        gauges(&mut enc, &s)?;
        replicas(&mut enc, &s)
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A family of one metric type with one series per label set.
fn family<T>(
    enc: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    series: impl IntoIterator<Item = (Labels, T)>,
    mut one: impl FnMut(prometheus_client::encoding::MetricEncoder<'_>, T) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (l, v) in series {
        one(m.encode_family(&l)?, v)?;
    }
    Ok(())
}

fn counters(enc: &mut DescriptorEncoder, s: &State, t: &Totals) -> std::fmt::Result {
    counter(
        enc,
        "loadgen_requests_intended",
        "Requests the schedule made due (sent + dropped)",
        t.intended,
    )?;
    counter(enc, "loadgen_requests_sent", "Requests sent", t.sent)?;
    counter(
        enc,
        "loadgen_requests_dropped",
        "Requests due but never sent: the in-flight cap was reached",
        t.dropped,
    )?;
    let by_outcome = t
        .outcomes
        .iter()
        .map(|(k, v)| (labels([("outcome", k)]), *v));
    family(enc, ("loadgen_responses", "Sent requests by outcome: ok (2xx), http_<code>, timeout, connect_refused, connect_timeout, reset, io_other, tls_<reason>", MetricType::Counter), by_outcome, |mut m, v| {
        m.encode_counter::<NoLabelSet, _, u64>(&v, None)
    })?;
    counter(
        enc,
        "loadgen_connections_opened",
        "Connections the generator opened",
        t.connections_opened,
    )?;
    let findings = s
        .findings
        .iter()
        .map(|((c, sev), n)| (labels([("check", c), ("severity", sev)]), *n));
    family(
        enc,
        (
            "loadgen_findings",
            "Findings recorded about the run as it went, by check and severity",
            MetricType::Counter,
        ),
        findings,
        |mut m, v| m.encode_counter::<NoLabelSet, _, u64>(&v, None),
    )?;
    let finished = s
        .steps_finished
        .iter()
        .map(|(k, n)| (labels([("verdict", k)]), *n));
    family(enc, ("loadgen_steps_finished", "Steps (and probes) that ended, by verdict: valid, invalid (not a measurement of capacity), failed (could not run)", MetricType::Counter), finished, |mut m, v| {
        m.encode_counter::<NoLabelSet, _, u64>(&v, None)
    })
}

fn histogram(enc: &mut DescriptorEncoder, name: &str, help: &str, b: &Buckets) -> std::fmt::Result {
    // The encoder adds the buckets up into the cumulative `le` series itself.
    let buckets = b.per_bucket();
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(b.sum_s(), b.count(), &buckets, None)
}

fn gauges(enc: &mut DescriptorEncoder, s: &State) -> std::fmt::Result {
    let version = env!("CARGO_PKG_VERSION");
    let info = labels([
        ("scenario", s.scenario.as_deref().unwrap_or("")),
        ("version", version),
    ]);
    family(
        enc,
        (
            "loadgen_run_info",
            "The run: its scenario and loadgen's version (always 1)",
            MetricType::Gauge,
        ),
        [(info, 1i64)],
        |mut m, v| m.encode_gauge(&v),
    )?;
    if let Some(n) = s.in_flight {
        gauge(
            enc,
            "loadgen_requests_in_flight",
            "Requests sent and not answered yet (with those waiting for a connection)",
            n as f64,
        )?;
    }
    if let Some(n) = s.connections_open {
        gauge(
            enc,
            "loadgen_connections_open",
            "Connections the generator holds open",
            n as f64,
        )?;
    }
    if let Some(n) = s.steps_planned {
        gauge(
            enc,
            "loadgen_steps_planned",
            "Steps the plan lists (a search's probes come on top)",
            n as f64,
        )?;
    }
    gauge(
        enc,
        "loadgen_step_running",
        "1 while a step's load runs, 0 between loads",
        if s.running { 1.0 } else { 0.0 },
    )?;
    if let Some(c) = &s.step {
        let id = c.step.to_string();
        let info = labels([("campaign", c.step.campaign().unwrap_or("")), ("step", &id)]);
        family(
            enc,
            (
                "loadgen_step_info",
                "The current (or last) step (always 1; one series at a time)",
                MetricType::Gauge,
            ),
            [(info, 1i64)],
            |mut m, v| m.encode_gauge(&v),
        )?;
        gauge(
            enc,
            "loadgen_step_index",
            "0-based index of the current step in the run (a change marks a step boundary)",
            c.index as f64,
        )?;
        gauge(
            enc,
            "loadgen_step_target_rate_requests_per_second",
            "The arrival rate the current step offers",
            c.rate_rps,
        )?;
        if let Some(cpu) = c.cpu_limit_cores {
            gauge(
                enc,
                "loadgen_step_cpu_limit_cores",
                "CPU limit of each replica in the current step (absent when unlimited)",
                cpu,
            )?;
        }
        let mut states: Vec<(Labels, i64)> =
            vec![(labels([("state", "planned")]), i64::from(c.replicas))];
        states.extend(
            s.scaled
                .iter()
                .map(|(k, n)| (labels([("state", k)]), i64::from(*n))),
        );
        family(enc, ("loadgen_target_replicas", "Replicas of the target: planned by the step, and ready/desired as an autoscale step last saw them", MetricType::Gauge), states, |mut m, v| m.encode_gauge(&v))?;
    }
    let last = [
        (
            "loadgen_step_counted_ratio",
            "Of the last finished step: the service's counter increase / intended requests",
            s.counted_ratio,
        ),
        (
            "loadgen_step_success_ratio",
            "Of the last finished step: ok / intended requests",
            s.success_ratio,
        ),
        (
            "loadgen_business_reading",
            "The service's own business counter at its last reading (after the last finished step)",
            s.business_counter.map(|c| c as f64),
        ),
    ];
    for (name, help, v) in last {
        if let Some(v) = v {
            gauge(enc, name, help, v)?;
        }
    }
    Ok(())
}

/// Reads one counter of a replica's usage.
type Read = fn(&ReplicaUsage) -> Option<f64>;

/// Per-replica CPU counters: what the replica groups of earlier steps used, plus the current
/// groups' reading.
fn replicas(enc: &mut DescriptorEncoder, s: &State) -> std::fmt::Result {
    let ids: std::collections::BTreeSet<u32> = s
        .replicas
        .keys()
        .chain(s.replicas_done.keys())
        .copied()
        .collect();
    let value = |i: u32, f: Read| -> Option<f64> {
        sum_opt(
            s.replicas_done.get(&i).and_then(f),
            s.replicas.get(&i).and_then(f),
        )
    };
    let families: [(&str, &str, Read); 4] = [
        (
            "loadgen_replica_cpu_seconds",
            "CPU time each replica's cgroup used, read about once a second during the load",
            |r| r.cpu_s,
        ),
        (
            "loadgen_replica_cpu_periods",
            "CFS enforcement periods of each replica's cgroup",
            |r| r.periods.map(|p| p as f64),
        ),
        (
            "loadgen_replica_cpu_throttled_periods",
            "CFS periods in which each replica's cgroup was throttled",
            |r| r.throttled_periods.map(|p| p as f64),
        ),
        (
            "loadgen_replica_cpu_throttled_seconds",
            "Time each replica's cgroup spent throttled",
            |r| r.throttled_s,
        ),
    ];
    for (name, help, f) in families {
        let series: Vec<(Labels, f64)> = ids
            .iter()
            .filter_map(|&i| Some((labels([("replica", &i.to_string())]), value(i, f)?)))
            .collect();
        if series.is_empty() {
            continue;
        }
        family(
            enc,
            (name, help, MetricType::Counter),
            series,
            |mut m, v| m.encode_counter::<NoLabelSet, _, u64>(&v, None),
        )?;
    }
    Ok(())
}
