//! `kind = "kubernetes"` offline: the scenario keys checked (every cluster scenario under
//! `k8s/loadgen/scenarios/` validates), and polymetrie's own cgroup counters — the CPU view of a
//! cluster pod — agreeing with the cgroup files. Everything that talks to a cluster runs on the
//! real control plane of `k8s/testbed` (`testbed::`).
//!
//! Run with `cargo test -p loadgen --test it -- kubernetes::`.

mod scenario;
mod service_cgroup;
