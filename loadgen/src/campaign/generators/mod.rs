//! A step's generators when there are several: N shards of its schedule, each a `loadgen
//! attack --shard K/N` process started with one `--start-at` ([`local`]) or a pod of the step's
//! Indexed Job on a cluster ([`cluster`]), their results merged into the step
//! ([`super::merge`]); [`args`] is the one translation of the step's attack into their flags.

pub mod args;
pub mod cluster;
pub mod local;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::deployer::KubeError;
use loadgen_model::result::StepResult;
use loadgen_model::shard::{Shard, ShardError};

/// How far ahead the shards are told to start: time for N processes to start, check their
/// target and wait, on a busy 2-core machine.
pub const START_LEAD: Duration = Duration::from_millis(1500);

/// Told the shards' common start time as soon as it is set (before they run), so the step can
/// read the target's CPU from that instant rather than from before the shards were launched.
pub type OnStart = Option<tokio::sync::oneshot::Sender<SystemTime>>;

/// Tells `on_start` the start time, if anyone listens.
fn announce(on_start: OnStart, at: SystemTime) {
    if let Some(tx) = on_start {
        // The step may have stopped listening (it ended early): nothing to tell then.
        let _ = tx.send(at);
    }
}

/// The generators' view of a step run as shards: the merged result (not yet judged, without
/// readings) and the instant its schedule started.
#[derive(Debug, Clone)]
pub struct Sharded {
    pub step: StepResult,
    pub start_at: SystemTime,
}

/// Why a step's shards could not run or be merged (a shard that ran and failed is not an
/// error: it is a missing shard of the merge, with why).
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    #[error("cannot find loadgen itself: {0}")]
    OwnBinary(#[source] std::io::Error),
    #[error("cannot create {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Shard(#[from] ShardError),
    #[error("{0}")]
    Args(#[from] args::ArgsError),
    #[error("cannot start shard {shard}: {source}")]
    Spawn {
        shard: Shard,
        #[source]
        source: std::io::Error,
    },
    #[error("merging shards: {0}")]
    Merge(#[from] super::merge::MergeError),
    // Boxed: a KubeError is large, and every Result of a shard run would carry its size.
    #[error("generator job {job}: {source}")]
    Job {
        job: String,
        #[source]
        source: Box<KubeError>,
    },
    #[error("generator job: {0}")]
    Image(#[source] Box<KubeError>),
}
