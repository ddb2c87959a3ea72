//! Assembly of a [`StepResult`]: pure functions turn the generator's [`StepRecord`] (or the
//! merge of its shards') and the probes' readings into the saved measurements, and hand them to
//! [`check::judge`] for the verdict. Nothing patches a result afterwards (ARCHITECTURE.md rule 12).

use std::time::SystemTime;

use hdrhistogram::Histogram;
use loadgen_engine::histogram::{serialize_histogram, summarize};
use loadgen_engine::record::{ShardMeta, StepRecord};
use loadgen_judge::check;
use loadgen_model::result::{
    CounterReading, CpuReading, EndpointCounts, Finding, GeneratorHealth, OutcomeCounts,
    PrometheusView, StepResult, TimelinePoint, TlsSummary, TopologyView,
};
use loadgen_model::shard::{unix_ms, ShardPart, Sharding};
use loadgen_model::step_id::StepId;

/// What the probes read around a step (each `None` when not measured).
#[derive(Debug, Clone, Default)]
pub struct Readings {
    pub topology: Option<TopologyView>,
    pub counter: Option<CounterReading>,
    pub cpu: Option<CpuReading>,
    pub prometheus: Option<PrometheusView>,
    /// The measured window's wall-clock edges, when the campaign took them around the attack
    /// (the record's own start and end otherwise).
    pub window: Option<(SystemTime, SystemTime)>,
    /// Findings recorded while measuring (a Prometheus view that could not be taken, a
    /// replica that exited, …).
    pub notes: Vec<Finding>,
    /// A process of the target exited during the step.
    pub target_failed: bool,
    /// The generator's own cgroup over the attack.
    pub generator_cgroup: Option<loadgen_model::result::CgroupCpuView>,
    /// An autoscale step's samples of replicas and HPA decisions.
    pub scaling: Vec<loadgen_model::result::ScalePoint>,
    /// Where the step's wall time went.
    pub timing: Option<loadgen_model::result::StepTiming>,
}

/// The step `id` as measured: the record, the readings, then the verdict. `node_cpus` is the
/// machine's CPU count, when known.
pub fn step_result(
    record: &StepRecord,
    id: &StepId,
    readings: Readings,
    node_cpus: Option<u32>,
) -> StepResult {
    with_readings(generator_view(record, id), readings, node_cpus)
}

/// What a step's generators measured, from one generator's record or from the shards'
/// results added up: the one input of [`generator_step`].
pub struct GeneratorPart<'a> {
    pub campaign: Option<String>,
    pub name: String,
    pub rate_rps: f64,
    pub duration_s: f64,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub intended: u64,
    pub sent: u64,
    pub dropped: u64,
    pub ok: u64,
    pub failed: u64,
    pub outcomes: OutcomeCounts,
    pub achieved_rps: Option<f64>,
    pub latency: &'a Histogram<u64>,
    pub service_time: &'a Histogram<u64>,
    pub schedule_lag: &'a Histogram<u64>,
    pub connection_wait: &'a Histogram<u64>,
    pub timeline: Vec<TimelinePoint>,
    pub generator: GeneratorHealth,
    pub interrupted: bool,
    pub sharding: Option<Sharding>,
    pub per_endpoint: Vec<EndpointCounts>,
    pub tls: Option<TlsSummary>,
}

/// The one assembly of a step's generator view (one generator's, or merged shards'): its
/// counts, percentiles from its histograms, timeline and health, not yet judged and without
/// readings.
pub fn generator_step(p: GeneratorPart<'_>) -> StepResult {
    StepResult {
        campaign: p.campaign,
        name: p.name,
        rate_rps: p.rate_rps,
        duration_s: p.duration_s,
        started_at: p.started_at,
        ended_at: p.ended_at,
        intended: p.intended,
        sent: p.sent,
        dropped: p.dropped,
        ok: p.ok,
        failed: p.failed,
        outcomes: p.outcomes,
        achieved_rps: p.achieved_rps,
        success_ratio: (p.intended > 0).then(|| p.ok as f64 / p.intended as f64),
        latency_ms: summarize(p.latency),
        service_time_ms: summarize(p.service_time),
        timing: None,
        schedule_lag_ms: summarize(p.schedule_lag),
        connection_wait_ms: summarize(p.connection_wait),
        timeline: p.timeline,
        // An autoscale step's samples are the probes' (readings), not the generator's.
        scaling: Vec::new(),
        histogram: serialize_histogram(p.latency).ok(),
        generator: p.generator,
        topology: None,
        counter: None,
        counted_ratio: None,
        cpu: None,
        prometheus: None,
        // The verdict is check::judge's; these are overwritten there from the measurements.
        valid: true,
        invalid_reason: None,
        interrupted: p.interrupted,
        target_failed: false,
        checks: Vec::new(),
        sharding: p.sharding,
        per_endpoint: p.per_endpoint,
        tls: p.tls,
    }
}

/// The generator's part of a step (its record: counts, histograms, timeline, its own health,
/// and a shard's part), not yet judged and without readings.
pub fn generator_view(record: &StepRecord, id: &StepId) -> StepResult {
    let rfc3339 = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    generator_step(GeneratorPart {
        campaign: id.campaign().map(str::to_string),
        name: id.name().to_string(),
        rate_rps: record.rate_rps,
        duration_s: record.duration.as_secs_f64(),
        started_at: Some(rfc3339(record.started_at)),
        ended_at: Some(rfc3339(record.ended_at)),
        intended: record.intended,
        sent: record.sent,
        dropped: record.dropped,
        ok: record.ok,
        failed: record.failed,
        outcomes: record.outcomes.to_counts(),
        achieved_rps: record.achieved_rps(),
        latency: &record.latency,
        service_time: &record.service_time,
        schedule_lag: &record.schedule_lag,
        connection_wait: &record.connection_wait,
        timeline: record.timeline.clone(),
        generator: record.generator.clone(),
        interrupted: record.interrupted,
        sharding: record.shard.as_ref().map(|s| sharding(record, s)),
        per_endpoint: record.per_endpoint.clone(),
        tls: record.handshakes.as_ref().map(|h| h.summary()),
    })
}

/// What a shard's result keeps for the merge.
fn sharding(record: &StepRecord, s: &ShardMeta) -> Sharding {
    Sharding {
        count: s.shard.count,
        start_at_unix_ms: s.start_at.map(unix_ms),
        part: Some(ShardPart {
            index: s.shard.index,
            late_ms: s.start_at.map(|_| s.late.as_secs_f64() * 1000.0),
            scheduled_s: record.scheduled.as_secs_f64(),
            service_time_histogram: serialize_histogram(&record.service_time).ok(),
            schedule_lag_histogram: serialize_histogram(&record.schedule_lag).ok(),
            connection_wait_histogram: serialize_histogram(&record.connection_wait).ok(),
            timeline_histograms: record.timeline_histograms.clone(),
        }),
        shards: Vec::new(),
    }
}

/// A generator's view of step `id` with the probes' readings around it, judged.
pub fn with_readings(
    generator: StepResult,
    readings: Readings,
    node_cpus: Option<u32>,
) -> StepResult {
    let rfc3339 = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let counted_ratio = readings
        .counter
        .as_ref()
        .and_then(|c| c.delta)
        .filter(|_| generator.intended > 0)
        .map(|d| d as f64 / generator.intended as f64);
    let (started_at, ended_at) = match readings.window {
        Some((start, end)) => (Some(rfc3339(start)), Some(rfc3339(end))),
        None => (generator.started_at.clone(), generator.ended_at.clone()),
    };
    let measured = StepResult {
        started_at,
        ended_at,
        topology: readings.topology,
        counter: readings.counter,
        counted_ratio,
        cpu: readings.cpu.map(|cpu| CpuReading {
            generator: readings.generator_cgroup,
            ..cpu
        }),
        prometheus: readings.prometheus,
        scaling: readings.scaling,
        target_failed: readings.target_failed,
        checks: readings.notes,
        timing: readings.timing,
        ..generator
    };
    check::judge(measured, node_cpus)
}

/// An ad-hoc step (`loadgen attack`): the generator's view only, with its validity verdict
/// (there is no counter or CPU to draw other findings from).
pub fn generator_result(record: &StepRecord, name: &str) -> StepResult {
    generator_judged(generator_view(record, &StepId::new(None, name)))
}

/// A generator's view (one generator's, or merged shards') judged on its own, as `loadgen
/// attack` and `loadgen merge` print it.
pub fn generator_judged(view: StepResult) -> StepResult {
    let judged = with_readings(view, Readings::default(), None);
    StepResult {
        checks: Vec::new(),
        ..judged
    }
}
