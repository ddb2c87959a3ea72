//! A step's generators when there are several: N shards of its schedule, each a `loadgen
//! attack --shard K/N` process started with one `--start-at` ([`local`]) or a pod of the step's
//! Indexed Job on a cluster ([`cluster`]), their results merged into the step
//! ([`super::merge`]); [`args`] is the one translation of the step's attack into their flags.

pub mod args;
pub mod cluster;
pub mod local;

use std::time::{Duration, SystemTime};

use loadgen_model::result::StepResult;

/// How far ahead the shards are told to start: time for N processes to start, check their
/// target and wait, on a busy 2-core machine.
pub const START_LEAD: Duration = Duration::from_millis(1500);

/// The generators' view of a step run as shards: the merged result (not yet judged, without
/// readings) and the instant its schedule started.
#[derive(Debug, Clone)]
pub struct Sharded {
    pub step: StepResult,
    pub start_at: SystemTime,
}
