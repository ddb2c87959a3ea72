//! The merge of shard results, pure: shards recorded from disjoint sample sets merge into
//! exactly the step one generator recording their union would give (histograms, counts,
//! timeline), a shard that started a second late lines up by the common start time and makes
//! the step invalid, and a missing shard is named.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use loadgen::campaign::assemble;
use loadgen::campaign::merge::{merge, MergeError, ShardInput};
use loadgen_engine::histogram::deserialize_histogram;
use loadgen_engine::outcome::Outcome;
use loadgen_engine::record::{Recorder, ShardMeta, StepMeta};
use loadgen_model::result::{GeneratorHealth, StepResult};
use loadgen_model::shard::Shard;
use loadgen_report::row::StepRow;
use loadgen_report::shards;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One request: due offset, lag, latency from due, and outcome.
type Sample = (Duration, Duration, Duration, Outcome);

fn meta(shard: Option<ShardMeta>) -> StepMeta {
    StepMeta {
        rate_rps: 300.0,
        duration: Duration::from_secs(3),
        scheduled: Duration::from_secs(3),
        started_at: SystemTime::UNIX_EPOCH,
        ended_at: SystemTime::UNIX_EPOCH + Duration::from_secs(3),
        generator: GeneratorHealth::default(),
        interrupted: false,
        in_flight_cap: 100,
        shard,
        per_endpoint: Vec::new(),
    }
}

/// The judged result of a generator that saw `samples`: a shard's when `shard` is given.
fn recorded(samples: &[Sample], shard: Option<(Shard, Duration)>) -> StepResult {
    let mut r = match shard {
        Some((_, late)) => Recorder::for_shard(late),
        None => Recorder::new(),
    };
    for &(due, lag, latency, outcome) in samples {
        if outcome == Outcome::Dropped {
            r.dropped(due);
            continue;
        }
        r.sent(due, lag, Duration::ZERO);
        r.done(due, outcome, latency, latency.saturating_sub(lag));
    }
    let shard = shard.map(|(shard, late)| ShardMeta {
        shard,
        start_at: Some(SystemTime::UNIX_EPOCH),
        late,
    });
    assemble::generator_result(&r.finish(meta(shard)), "attack")
}

/// 900 requests over 3 s with latencies spread over four decades, a few 503s and timeouts.
fn samples() -> Vec<Sample> {
    let mut rng = StdRng::seed_from_u64(5);
    (0..900u64)
        .map(|i| {
            let due = Duration::from_micros(i * 3_333);
            let latency = Duration::from_micros(rng.random_range(200..2_000_000));
            let lag = Duration::from_micros(rng.random_range(1..3_000));
            let outcome = match i % 50 {
                7 => Outcome::Status(503),
                9 => Outcome::Timeout,
                _ => Outcome::Ok,
            };
            (due, lag, latency, outcome)
        })
        .collect()
}

fn shards_of(all: &[Sample], n: u32) -> Vec<ShardInput> {
    (0..n)
        .map(|k| {
            let mine: Vec<Sample> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u32 % n == k)
                .map(|(_, s)| *s)
                .collect();
            let shard = Shard::new(k, n).unwrap();
            ShardInput::Result(Box::new(recorded(&mine, Some((shard, Duration::ZERO)))))
        })
        .collect()
}

fn hist(encoded: &Option<String>) -> Histogram<u64> {
    deserialize_histogram(encoded.as_ref().unwrap()).unwrap()
}

#[test]
fn merged_shard_histograms_equal_the_histogram_of_their_union() {
    let all = samples();
    let whole = recorded(&all, None);
    let merged = assemble::generator_judged(merge(3, &shards_of(&all, 3)).unwrap());
    let (a, b) = (hist(&merged.histogram), hist(&whole.histogram));
    assert_eq!((a.len(), a.min(), a.max()), (b.len(), b.min(), b.max()));
    for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "q={q}");
    }
    assert_eq!(merged.latency_ms, whole.latency_ms);
    assert_eq!(merged.service_time_ms, whole.service_time_ms);
    assert_eq!(merged.schedule_lag_ms, whole.schedule_lag_ms);
    assert_eq!(
        (merged.intended, merged.sent, merged.ok, merged.failed),
        (whole.intended, whole.sent, whole.ok, whole.failed)
    );
    assert_eq!(merged.intended, merged.sent + merged.dropped);
    assert_eq!(merged.outcomes, whole.outcomes);
    assert_eq!(
        merged.timeline, whole.timeline,
        "p99 per second of the union too"
    );
    assert!(merged.valid, "{:?}", merged.invalid_reason);
    let shards = &merged.sharding.as_ref().unwrap().shards;
    assert_eq!(
        shards.iter().map(|s| s.sent).collect::<Vec<_>>(),
        [Some(300); 3]
    );
}

#[test]
fn a_shard_starting_one_second_later_lines_up_by_the_start_time_and_invalidates() {
    let ms = Duration::from_millis;
    let ok = |due| (ms(due), ms(1), ms(5), Outcome::Ok);
    let on_time = recorded(
        &[ok(100), ok(1500)],
        Some((Shard::new(0, 2).unwrap(), ms(0))),
    );
    let late = recorded(
        &[ok(100), ok(1500)],
        Some((Shard::new(1, 2).unwrap(), ms(1000))),
    );
    assert!(!late.valid, "a shard a second late is invalid on its own");
    let shards = [on_time, late].map(|s| ShardInput::Result(Box::new(s)));
    let merged = assemble::generator_judged(merge(2, &shards).unwrap());
    let sent: Vec<(u32, u64)> = merged.timeline.iter().map(|p| (p.t_s, p.sent)).collect();
    // The late shard's 0.1 s request is in second 1 of the common timeline, its 1.5 s in 2.
    assert_eq!(sent, [(0, 1), (1, 2), (2, 1)]);
    let why = merged.invalid_reason.unwrap();
    assert!(
        why.contains("shard 1 invalid: started 1000.0 ms after"),
        "{why}"
    );
    assert_eq!(merged.sharding.unwrap().shards[1].late_ms, Some(1000.0));
}

#[test]
fn a_missing_shard_makes_the_merged_step_invalid_and_is_named() {
    let all = samples();
    let mut shards = shards_of(&all, 3);
    shards[2] = ShardInput::Missing {
        index: 2,
        why: "killed by signal 9".into(),
    };
    let merged = assemble::generator_judged(merge(3, &shards).unwrap());
    assert_eq!(merged.intended, merged.sent + merged.dropped);
    assert_eq!(merged.intended, 600);
    let why = merged.invalid_reason.clone().unwrap();
    assert!(why.contains("shard 2 missing: killed by signal 9"), "{why}");
    // Shards that did not run alike: the report lists each.
    let notes = shards::notes(&StepRow::new(1, &merged));
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[1].starts_with("attack: shard 0: achieved "),
        "{notes:?}"
    );
    assert_eq!(notes[3], "attack: shard 2: missing — killed by signal 9");
    // Leaving a shard out altogether says the same.
    let merged = assemble::generator_judged(merge(3, &shards[..2]).unwrap());
    assert!(merged.invalid_reason.unwrap().contains("shard 2 missing"));
}

#[test]
fn inputs_that_are_not_shards_of_one_step_are_refused() {
    let all = samples();
    let shards = shards_of(&all, 3);
    let twice = [shards[0].clone(), shards[0].clone()];
    assert!(matches!(merge(3, &twice), Err(MergeError::Duplicate(0))));
    let plain = [ShardInput::Result(Box::new(recorded(&all, None)))];
    assert!(matches!(merge(1, &plain), Err(MergeError::NotAShard(0))));
    assert!(matches!(merge(2, &shards), Err(MergeError::Count { .. })));
    let mut other = shards_of(&all, 3);
    if let ShardInput::Result(s) = &mut other[1] {
        s.rate_rps = 301.0;
    }
    assert!(matches!(
        merge(3, &other),
        Err(MergeError::Schedule { index: 1, .. })
    ));
}
