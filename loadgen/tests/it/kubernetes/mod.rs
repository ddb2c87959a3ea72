//! `kind = "kubernetes"`: the scenario keys checked offline (every cluster scenario under
//! `k8s/loadgen/scenarios/` validates), and a whole campaign against the **fake API server**
//! ([`fake_api`]) — a loopback HTTP server speaking the few Kubernetes REST calls the deployer
//! makes, whose "kubelet" runs real polymetrie replicas through the local deployer and whose
//! fake HPA controller scales them from their real CPU ([`autoscale`]).
//!
//! Run with `cargo test -p loadgen --test it -- kubernetes::`.

mod autoscale;
mod campaign;
mod fake_api;
mod scenario;
mod service_cgroup;
mod shards;
