//! The run.json contract of loadgen: everything a run saves, and nothing that runs. A
//! [`result::CampaignResult`] holds one [`result::StepResult`] per step, with its
//! [`result::Finding`]s; [`capacity`] and [`search`] are what a capacity search keeps; [`scaling`]
//! an autoscale step's timeline; [`slo`] and [`threshold`] the bounds a run is judged against;
//! [`step_id`] names a step; [`shard`] one generator's share of a schedule and what a merged
//! step keeps of its shards; [`atomic_file`] writes a file whole or not at all.
//!
//! This crate depends on serde and nothing heavier (no tokio, hyper, kube or plotters), so every
//! layer above it — the generator, the verdicts, the renderers, the app — shares one data model
//! (ARCHITECTURE.md, "Crates").

pub mod atomic_file;
pub mod capacity;
pub mod compare;
pub mod result;
pub mod scaling;
pub mod search;
pub mod shard;
pub mod slo;
pub mod step_id;
pub mod threshold;

/// The file name of a run's saved results, in its output folder.
pub const RUN_JSON: &str = "run.json";
