//! Assembly of a [`StepResult`]: one pure function turns the generator's [`StepRecord`] and
//! the probes' readings into the saved measurements, and hands them to [`check::judge`] for the
//! verdict. Nothing patches a result afterwards (house rule 12).

use std::time::SystemTime;

use crate::check;
use crate::engine::histogram::{serialize_histogram, summarize};
use crate::engine::record::StepRecord;
use crate::result::{
    CounterReading, CpuReading, Finding, PrometheusView, StepResult, TopologyView,
};
use crate::step_id::StepId;

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
    pub generator_cgroup: Option<crate::result::CgroupCpuView>,
    /// An autoscale step's samples of replicas and HPA decisions.
    pub scaling: Vec<crate::result::ScalePoint>,
}

/// The step `id` as measured: the record, the readings, then the verdict. `node_cpus` is the
/// machine's CPU count, when known.
pub fn step_result(
    record: &StepRecord,
    id: &StepId,
    readings: Readings,
    node_cpus: Option<u32>,
) -> StepResult {
    let rfc3339 = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let (start, end) = readings
        .window
        .unwrap_or((record.started_at, record.ended_at));
    let counted_ratio = readings
        .counter
        .as_ref()
        .and_then(|c| c.delta)
        .filter(|_| record.intended > 0)
        .map(|d| d as f64 / record.intended as f64);
    let measured = StepResult {
        campaign: id.campaign().map(str::to_string),
        name: id.name().to_string(),
        rate_rps: record.rate_rps,
        duration_s: record.duration.as_secs_f64(),
        started_at: Some(rfc3339(start)),
        ended_at: Some(rfc3339(end)),
        intended: record.intended,
        sent: record.sent,
        dropped: record.dropped,
        ok: record.ok,
        failed: record.failed,
        outcomes: record.outcomes.to_counts(),
        achieved_rps: record.achieved_rps(),
        success_ratio: (record.intended > 0).then(|| record.ok as f64 / record.intended as f64),
        latency_ms: summarize(&record.latency),
        service_time_ms: summarize(&record.service_time),
        schedule_lag_ms: summarize(&record.schedule_lag),
        connection_wait_ms: summarize(&record.connection_wait),
        timeline: record.timeline.clone(),
        scaling: readings.scaling,
        histogram: serialize_histogram(&record.latency).ok(),
        generator: record.generator.clone(),
        topology: readings.topology,
        counter: readings.counter,
        counted_ratio,
        cpu: readings.cpu.map(|cpu| CpuReading {
            generator: readings.generator_cgroup,
            ..cpu
        }),
        prometheus: readings.prometheus,
        // The verdict is check::judge's; these are overwritten there from the measurements.
        valid: true,
        invalid_reason: None,
        interrupted: record.interrupted,
        target_failed: readings.target_failed,
        checks: readings.notes,
    };
    check::judge(measured, node_cpus)
}

/// An ad-hoc step (`loadgen attack`): the generator's view only, with its validity verdict
/// (there is no counter or CPU to draw other findings from).
pub fn generator_result(record: &StepRecord, name: &str) -> StepResult {
    let judged = step_result(record, &StepId::new(None, name), Readings::default(), None);
    StepResult {
        checks: Vec::new(),
        ..judged
    }
}
