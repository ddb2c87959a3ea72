//! The deployed shape a step ran on, as run.json records it: replicas, CPU limit, store, and
//! an autoscale step's HPA. A leaf, shared by step results and capacity records.

use serde::{Deserialize, Serialize};

use crate::scaling::AutoscaleView;

/// The deployed shape a step ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyView {
    pub replicas: u32,
    pub cpu_limit_cores: Option<f64>,
    /// `memory`, `redis`, or `external` for a service loadgen did not start.
    pub store: String,
    /// The HPA of an autoscale step (`replicas` is then its minimum, the count it began at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleView>,
    /// The replicas served HTTPS with a certificate loadgen made for the run (`tls = true`);
    /// absent for plain HTTP, and for a service loadgen did not start (its URL says).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}
