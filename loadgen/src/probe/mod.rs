//! Probes: readings taken before and after each step (business counter, CPU and throttling,
//! Prometheus) whose differences become a step's evidence.
pub mod prometheus;
