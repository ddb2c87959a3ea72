//! loadgen, the app: it replays load-test campaigns against a service and cross-checks what the
//! generator saw against the service's own counter and CPU. The modules are the stages of the
//! data flow in ARCHITECTURE.md, top down; imports only point down this list: [`watch`]
//! (subscribers of the campaign's events: metrics and the live page) → [`campaign`]
//! (drives the deployers, the generator and the probes for each step) → [`probe`] (counter, CPU,
//! Prometheus) → [`deployer`] (local replicas under CFS quotas, a URL, a Kubernetes Deployment)
//! → [`plan`] (every step expanded and validated) → [`scenario`] (TOML). [`promql`], [`http`],
//! [`external`] and [`machine`] are leaves every stage may use.
//!
//! The layers below the app are crates of their own: `loadgen-model` (the run.json contract),
//! `loadgen-judge` (pure verdicts), `loadgen-engine` (the generator), `loadgen-report`
//! (tables, CSV, HTML) and `cpu-cgroup`. The command line is the binary's own (`src/cli/`).

pub mod campaign;
pub mod deployer;
pub mod external;
pub mod http;
pub mod machine;
pub mod plan;
pub mod probe;
pub mod promql;
pub mod scenario;
pub mod watch;
