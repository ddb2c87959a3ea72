//! The shards of one schedule partition it exactly: for constant, ramped and seeded Poisson
//! loads, the union of the N sharded pacers' (seq, due) pairs is the one-generator schedule,
//! each request in exactly one shard, with its global index as `{seq}`.

use std::time::Duration;

use loadgen_engine::load::{Arrival, Load, Stage};
use loadgen_engine::pacer::Pacer;
use loadgen_model::shard::Shard;

/// Every (seq, due) a pacer yields, bounded so a pacer that never ends fails instead of hanging.
fn schedule(load: &Load, shard: Shard) -> Vec<(u64, Duration)> {
    let mut p = Pacer::sharded(load, shard).unwrap();
    let mut v = Vec::new();
    loop {
        let seq = p.next_seq();
        let Some(due) = p.next_due() else { break };
        v.push((seq, due));
        assert!(v.len() < 1_000_000, "pacer does not end");
    }
    v
}

fn assert_partition(load: &Load, n: u32) {
    let whole = schedule(load, Shard::WHOLE);
    assert!(whole.len() > 100, "a schedule worth splitting");
    let mut union = Vec::new();
    for k in 0..n {
        let shard = Shard::new(k, n).unwrap();
        let part = schedule(load, shard);
        assert!(
            part.iter().all(|(seq, _)| shard.owns(*seq)),
            "shard {shard}"
        );
        assert_eq!(
            part.len() as u64,
            Pacer::sharded(load, shard)
                .unwrap()
                .due_by(Duration::from_secs(3600)),
            "due_by counts the shard's own requests"
        );
        union.extend(part);
    }
    union.sort_by_key(|(seq, _)| *seq);
    // Same indices, same due times to the nanosecond: not N copies at R/N.
    assert_eq!(union, whole, "{n} shards");
}

#[test]
fn shards_of_a_constant_schedule_partition_it() {
    let load = Load::constant(1000.0, Duration::from_secs(2));
    for n in [1, 2, 3, 7] {
        assert_partition(&load, n);
    }
    // A share differs by at most one request: 2000 over 3 is 667 + 667 + 666.
    let sizes: Vec<usize> = (0..3)
        .map(|k| schedule(&load, Shard::new(k, 3).unwrap()).len())
        .collect();
    assert_eq!(sizes, [667, 667, 666]);
}

#[test]
fn shards_of_a_ramp_partition_it() {
    let load = Load {
        stages: vec![Stage {
            duration: Duration::from_secs(10),
            from_rps: 10.0,
            to_rps: 300.0,
        }],
        arrival: Arrival::Uniform,
    };
    assert_partition(&load, 3);
    assert_partition(&load, 4);
}

#[test]
fn shards_of_a_seeded_poisson_schedule_partition_it() {
    let load = Load {
        stages: vec![Stage {
            duration: Duration::from_secs(5),
            from_rps: 500.0,
            to_rps: 500.0,
        }],
        arrival: Arrival::Poisson { seed: 11 },
    };
    assert_partition(&load, 3);
    // Each shard keeps the jitter of the one schedule: shard 1's first arrival is the whole
    // schedule's second, not an arrival of its own drawn at R/3.
    let whole = schedule(&load, Shard::WHOLE);
    assert_eq!(schedule(&load, Shard::new(1, 3).unwrap())[0], whole[1]);
}
