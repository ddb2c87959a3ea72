//! loadgen: an open-model HTTP load generator that replays load-test campaigns against a
//! service, cross-checks what it saw against the service's own counter and CPU, and reports how
//! much load each configuration takes and why not more.
//!
//! The modules are the stages of DESIGN.md's data flow, in order; data flows down this list and
//! never back up: [`scenario`] (TOML) → [`plan`] (every step expanded and validated) →
//! [`campaign`] (drives [`deployer`], [`engine`] and [`probe`] for each step) → [`result`] (what
//! is saved in run.json) → [`check`] (findings, pure) → [`report`] (tables, CSV, HTML).
//! [`step_id`], [`shard`], [`threshold`], [`http`], [`machine`], [`external`] and [`scaling`] (an
//! autoscale step's record) are small leaves every stage may use; so are the capacity search's decisions ([`search`]), its [`slo`] and the
//! [`capacity`] records run.json keeps of it. After the checks, a run is reduced to its
//! [`baseline`] and compared with another ([`comparison`]) for `loadgen check`. The command
//! line is the binary's own (`src/cli/`), not part of this library.

pub mod campaign;
pub mod deployer;
pub mod external;
pub mod http;
pub mod machine;
pub mod plan;
pub mod probe;
pub mod promql;
pub mod scenario;
