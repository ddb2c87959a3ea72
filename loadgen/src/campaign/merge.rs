//! The merge of a step's shards into one step, exactly: histograms added (percentiles of the
//! union, never averaged), counts summed, timelines aligned by their second since the common
//! start time, each shard's achieved rate, lag, lateness and verdict kept beside the sums. A
//! shard without a result is kept as missing, with why; the verdict on the merged step (invalid
//! when a shard is invalid, late or missing) is `check::validity`'s, from what this keeps.
//! Pure: the shards' saved results in, a generator's view of the step out (not yet judged).

use std::collections::BTreeMap;

use loadgen_engine::histogram::{
    merge_histograms, merge_second_histograms, serialize_histogram, summarize, HistogramError,
};
use loadgen_model::result::{
    EndpointCounts, GeneratorHealth, OutcomeCounts, StepResult, TimelinePoint, TlsSummary,
};
use loadgen_model::shard::{ShardPart, ShardSummary, Sharding};

use super::assemble::{generator_step, GeneratorPart};

/// One shard as the merge receives it.
#[derive(Debug, Clone)]
pub enum ShardInput {
    /// The shard's own result (`loadgen attack --shard K/N --json`).
    Result(Box<StepResult>),
    /// No result: the shard never started, failed, or was killed (`why` says which).
    Missing { index: u32, why: String },
}

/// Why shards cannot be merged: they are not the shards of one step.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("input {0} is not a shard's result (no shard part: run `loadgen attack --shard K/N --json`)")]
    NotAShard(usize),
    #[error("input {input} is a shard of {got}, the others of {expected}")]
    Count {
        input: usize,
        expected: u32,
        got: u32,
    },
    #[error("shard {index} is out of 0..{count}")]
    OutOfRange { index: u32, count: u32 },
    #[error("shard {0} is given twice")]
    Duplicate(u32),
    #[error("shard {index} ran another schedule: {what}")]
    Schedule { index: u32, what: String },
    #[error("shard {index} has no {which} histogram")]
    NoHistogram { index: u32, which: &'static str },
    #[error("no shard has a result: nothing to merge")]
    NoResult,
    #[error("shard histograms: {0}")]
    Histogram(#[from] HistogramError),
}

/// A shard with a result, and its part.
struct Present<'a> {
    step: &'a StepResult,
    part: &'a ShardPart,
}

/// The step the `count` shards in `inputs` measured together; an index with no input is
/// missing ("no result"). Errors when the inputs are not shards of one schedule.
pub fn merge(count: u32, inputs: &[ShardInput]) -> Result<StepResult, MergeError> {
    let mut slots: Vec<Option<Result<Present<'_>, String>>> = (0..count).map(|_| None).collect();
    for (i, input) in inputs.iter().enumerate() {
        let (index, slot) = match input {
            ShardInput::Missing { index, why } => (*index, Err(why.clone())),
            ShardInput::Result(step) => {
                let (index, present) = present(i, count, step)?;
                (index, Ok(present))
            }
        };
        let cell = slots
            .get_mut(index as usize)
            .ok_or(MergeError::OutOfRange { index, count })?;
        if cell.is_some() {
            return Err(MergeError::Duplicate(index));
        }
        *cell = Some(slot);
    }
    let present: Vec<&Present<'_>> = slots.iter().flatten().flatten().collect();
    let first = present.first().ok_or(MergeError::NoResult)?;
    for p in &present {
        same_schedule(first, p)?;
    }
    let shards = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| summary(i as u32, slot.as_ref()))
        .collect();
    let sharding = Sharding {
        count,
        start_at_unix_ms: first.sharding().start_at_unix_ms,
        part: None,
        shards,
    };
    merged(&present, sharding)
}

impl Present<'_> {
    fn sharding(&self) -> &Sharding {
        self.step.sharding.as_ref().expect("checked by present()")
    }
}

/// Input `i` as a shard of `count`, or why it is not one.
fn present(i: usize, count: u32, step: &StepResult) -> Result<(u32, Present<'_>), MergeError> {
    let sharding = step.sharding.as_ref().ok_or(MergeError::NotAShard(i))?;
    let part = sharding.part.as_ref().ok_or(MergeError::NotAShard(i))?;
    if sharding.count != count {
        return Err(MergeError::Count {
            input: i,
            expected: count,
            got: sharding.count,
        });
    }
    Ok((part.index, Present { step, part }))
}

/// Shards of one step share its rate, length and start time.
fn same_schedule(a: &Present<'_>, b: &Present<'_>) -> Result<(), MergeError> {
    let what = if (a.step.rate_rps - b.step.rate_rps).abs() > 1e-9 {
        format!("{} req/s, not {}", b.step.rate_rps, a.step.rate_rps)
    } else if (a.step.duration_s - b.step.duration_s).abs() > 1e-9 {
        format!("{} s, not {}", b.step.duration_s, a.step.duration_s)
    } else if a.sharding().start_at_unix_ms != b.sharding().start_at_unix_ms {
        format!(
            "start time {:?}, not {:?} (unix ms)",
            b.sharding().start_at_unix_ms,
            a.sharding().start_at_unix_ms
        )
    } else {
        return Ok(());
    };
    Err(MergeError::Schedule {
        index: b.part.index,
        what,
    })
}

/// What the report shows of shard `index`.
fn summary(index: u32, slot: Option<&Result<Present<'_>, String>>) -> ShardSummary {
    let p = match slot {
        None => {
            return ShardSummary {
                index,
                missing: Some("no result".into()),
                ..ShardSummary::default()
            }
        }
        Some(Err(why)) => {
            return ShardSummary {
                index,
                missing: Some(why.clone()),
                ..ShardSummary::default()
            }
        }
        Some(Ok(p)) => p,
    };
    let s = p.step;
    ShardSummary {
        index,
        missing: None,
        intended: Some(s.intended),
        sent: Some(s.sent),
        ok: Some(s.ok),
        achieved_rps: s.achieved_rps,
        schedule_lag_p99_ms: s.schedule_lag_ms.p99,
        late_ms: p.part.late_ms,
        cpu_cores_used: s.generator.cpu_cores_used,
        valid: Some(s.valid),
        invalid_reason: (!s.valid).then(|| {
            s.invalid_reason
                .clone()
                .unwrap_or_else(|| "no reason recorded".into())
        }),
    }
}

/// The sums, the added histograms and the aligned timeline of the shards with a result.
fn merged(present: &[&Present<'_>], sharding: Sharding) -> Result<StepResult, MergeError> {
    let first = present[0].step;
    let sum = |f: fn(&StepResult) -> u64| present.iter().map(|p| f(p.step)).sum::<u64>();
    let (intended, sent, ok) = (sum(|s| s.intended), sum(|s| s.sent), sum(|s| s.ok));
    let latency = added(present, "latency", |p| p.step.histogram.as_ref())?;
    let service = added(present, "service time", |p| {
        p.part.service_time_histogram.as_ref()
    })?;
    let lag = added(present, "schedule lag", |p| {
        p.part.schedule_lag_histogram.as_ref()
    })?;
    let wait = added(present, "connection wait", |p| {
        p.part.connection_wait_histogram.as_ref()
    })?;
    let scheduled_s = present
        .iter()
        .map(|p| p.part.scheduled_s)
        .fold(0.0, f64::max);
    Ok(generator_step(GeneratorPart {
        campaign: first.campaign.clone(),
        name: first.name.clone(),
        rate_rps: first.rate_rps,
        duration_s: first.duration_s,
        // The same RFC 3339 UTC form everywhere: the earliest start and the latest end.
        started_at: present
            .iter()
            .filter_map(|p| p.step.started_at.clone())
            .min(),
        ended_at: present.iter().filter_map(|p| p.step.ended_at.clone()).max(),
        intended,
        sent,
        dropped: sum(|s| s.dropped),
        ok,
        failed: sum(|s| s.failed),
        outcomes: outcomes(present),
        achieved_rps: (scheduled_s > 0.0).then(|| sent as f64 / scheduled_s),
        latency: &latency,
        service_time: &service,
        schedule_lag: &lag,
        connection_wait: &wait,
        timeline: timeline(present)?,
        generator: generator(present),
        interrupted: present.iter().any(|p| p.step.interrupted),
        sharding: Some(sharding),
        per_endpoint: endpoint_sums(present.iter().map(|p| p.step.per_endpoint.as_slice())),
        tls: tls_sums(present)?,
    }))
}

/// One histogram of every shard, added.
fn added<'a>(
    present: &[&Present<'a>],
    which: &'static str,
    get: impl Fn(&Present<'a>) -> Option<&'a String>,
) -> Result<hdrhistogram::Histogram<u64>, MergeError> {
    let encoded = present
        .iter()
        .map(|p| {
            get(p).cloned().ok_or(MergeError::NoHistogram {
                index: p.part.index,
                which,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_histograms(&encoded)?)
}

/// Counts per outcome, summed (status codes by code).
fn outcomes(present: &[&Present<'_>]) -> OutcomeCounts {
    let mut out = OutcomeCounts::default();
    for p in present {
        let o = &p.step.outcomes;
        out.ok += o.ok;
        out.timeout += o.timeout;
        out.connect_refused += o.connect_refused;
        out.connect_timeout += o.connect_timeout;
        out.reset += o.reset;
        out.io_other += o.io_other;
        out.dropped += o.dropped;
        for (code, n) in &o.status {
            *out.status.entry(code.clone()).or_default() += n;
        }
        for (reason, n) in &o.tls {
            *out.tls.entry(reason.clone()).or_default() += n;
        }
    }
    out
}

/// One second of the merged timeline while the shards are added.
struct SecondSum {
    point: TimelinePoint,
    /// The per-second histograms of the shards that answered in it.
    hists: Vec<String>,
    /// Those shards' own p99 of it.
    p99s: Vec<Option<f64>>,
}

impl SecondSum {
    fn new(t_s: u32) -> SecondSum {
        SecondSum {
            point: TimelinePoint {
                t_s,
                sent: 0,
                ok: 0,
                failed: 0,
                dropped: 0,
                p99_ms: None,
            },
            hists: Vec::new(),
            p99s: Vec::new(),
        }
    }

    /// The second, its p99 read from the union of the shards' histograms of it.
    fn finish(mut self) -> Result<TimelinePoint, MergeError> {
        self.point.p99_ms = match (self.p99s.as_slice(), self.hists.len() == self.p99s.len()) {
            ([], _) => None,
            ([only], _) => *only,
            (_, true) => {
                let h = merge_second_histograms(&self.hists)?;
                Some(h.value_at_quantile(0.99) as f64 / 1000.0)
            }
            // Shards without their second's histogram: a p99 of the union cannot be had.
            (_, false) => None,
        };
        Ok(self.point)
    }
}

/// The timelines added second by second (every shard's seconds count from the same start
/// time), dense from second 0 (a late shard's lead-in may be empty).
fn timeline(present: &[&Present<'_>]) -> Result<Vec<TimelinePoint>, MergeError> {
    let mut seconds: BTreeMap<u32, SecondSum> = BTreeMap::new();
    for p in present {
        for (j, point) in p.step.timeline.iter().enumerate() {
            let acc = seconds
                .entry(point.t_s)
                .or_insert_with(|| SecondSum::new(point.t_s));
            acc.point.sent += point.sent;
            acc.point.ok += point.ok;
            acc.point.failed += point.failed;
            acc.point.dropped += point.dropped;
            if point.p99_ms.is_some() {
                acc.p99s.push(point.p99_ms);
                if let Some(Some(h)) = p.part.timeline_histograms.get(j) {
                    acc.hists.push(h.clone());
                }
            }
        }
    }
    let dense = seconds.keys().last().map_or(0, |last| last + 1);
    (0..dense)
        .map(|t_s| {
            seconds
                .remove(&t_s)
                .unwrap_or_else(|| SecondSum::new(t_s))
                .finish()
        })
        .collect()
}

/// Per-endpoint counts summed by url, exactly (each url once, in the order first seen): the
/// shards of one step spread their parts over the same endpoints.
fn endpoint_sums<'a>(shards: impl Iterator<Item = &'a [EndpointCounts]>) -> Vec<EndpointCounts> {
    let mut out: Vec<EndpointCounts> = Vec::new();
    for e in shards.flatten() {
        match out.iter_mut().find(|o| o.url == e.url) {
            Some(o) => {
                o.sent += e.sent;
                o.ok += e.ok;
                o.failed += e.failed;
                o.connections_opened += e.connections_opened;
            }
            None => out.push(e.clone()),
        }
    }
    out
}

/// The shards' handshakes added: counts summed by reason, times from the added histograms;
/// `None` when no shard went over TLS. `insecure` when any shard's was: it is never hidden.
fn tls_sums(present: &[&Present<'_>]) -> Result<Option<TlsSummary>, MergeError> {
    let parts: Vec<&TlsSummary> = present.iter().filter_map(|p| p.step.tls.as_ref()).collect();
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let mut out = TlsSummary {
        insecure: parts.iter().any(|t| t.insecure),
        resumption: first.resumption,
        client_cert: first.client_cert,
        roots: first.roots.clone(),
        ..TlsSummary::default()
    };
    for t in &parts {
        out.handshakes += t.handshakes;
        out.resumed += t.resumed;
        for (reason, n) in &t.handshake_failures {
            *out.handshake_failures.entry(reason.clone()).or_default() += n;
        }
    }
    let encoded: Option<Vec<String>> = parts
        .iter()
        .map(|t| t.handshake_histogram.clone())
        .collect();
    if let Some(encoded) = encoded {
        let h = merge_histograms(&encoded)?;
        out.handshake_ms = summarize(&h);
        out.handshake_histogram = serialize_histogram(&h).ok();
    }
    Ok(Some(out))
}

/// The generators together: CPU and connections summed (unknown when any shard's is), flags
/// kept when every shard agrees.
fn generator(present: &[&Present<'_>]) -> GeneratorHealth {
    let g: Vec<&GeneratorHealth> = present.iter().map(|p| &p.step.generator).collect();
    let f =
        |get: fn(&GeneratorHealth) -> Option<f64>| g.iter().map(|h| get(h)).sum::<Option<f64>>();
    let n =
        |get: fn(&GeneratorHealth) -> Option<u64>| g.iter().map(|h| get(h)).sum::<Option<u64>>();
    let same = |get: fn(&GeneratorHealth) -> Option<bool>| {
        let first = get(g[0]);
        g.iter().all(|h| get(h) == first).then_some(first).flatten()
    };
    GeneratorHealth {
        cpu_user_s: f(|h| h.cpu_user_s),
        cpu_system_s: f(|h| h.cpu_system_s),
        cpu_cores_used: f(|h| h.cpu_cores_used),
        cpu_cores_available: f(|h| h.cpu_cores_available),
        max_in_flight: n(|h| h.max_in_flight),
        connections_opened: n(|h| h.connections_opened),
        connections_peak: n(|h| h.connections_peak),
        connections_closed_idle: n(|h| h.connections_closed_idle),
        pool_cap: n(|h| h.pool_cap),
        pool_fixed: same(|h| h.pool_fixed),
        pool_free: n(|h| h.pool_free),
        connections_grown: n(|h| h.connections_grown),
        pool_cap_waits: n(|h| h.pool_cap_waits),
        in_flight_cap: n(|h| h.in_flight_cap),
        realtime_priority: same(|h| h.realtime_priority),
        // The shards' own, when they agree (each chose on its own machine).
        io_backend: g
            .iter()
            .all(|h| h.io_backend == g[0].io_backend)
            .then(|| g[0].io_backend.clone())
            .flatten(),
        io_fallback_reason: g
            .iter()
            .all(|h| h.io_fallback_reason == g[0].io_fallback_reason)
            .then(|| g[0].io_fallback_reason.clone())
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(url: &str, sent: u64, ok: u64, opened: u64) -> EndpointCounts {
        EndpointCounts {
            url: url.into(),
            sent,
            ok,
            failed: sent - ok,
            connections_opened: opened,
        }
    }

    #[test]
    fn per_endpoint_counts_are_summed_by_url_exactly() {
        let a = [
            counts("http://127.0.0.1:1", 10, 9, 2),
            counts("http://127.0.0.1:2", 11, 11, 1),
        ];
        // Another order, and an endpoint only this shard reached.
        let b = [
            counts("http://127.0.0.1:2", 7, 5, 3),
            counts("http://127.0.0.1:1", 8, 8, 1),
            counts("http://127.0.0.1:3", 1, 0, 0),
        ];
        let none: [EndpointCounts; 0] = [];
        let sums = endpoint_sums([&a[..], &b[..], &none[..]].into_iter());
        assert_eq!(
            sums,
            [
                counts("http://127.0.0.1:1", 18, 17, 3),
                counts("http://127.0.0.1:2", 18, 16, 4),
                counts("http://127.0.0.1:3", 1, 0, 0),
            ]
        );
        assert!(
            endpoint_sums([&none[..]].into_iter()).is_empty(),
            "one endpoint: none"
        );
    }
}
