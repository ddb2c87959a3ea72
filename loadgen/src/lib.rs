//! loadgen: an open-model HTTP load generator that replays load-test campaigns against a
//! service, cross-checks what it saw against the service's own counter and CPU, and reports how
//! much load each configuration takes and why not more.
//!
//! Data flow (DESIGN.md): scenario → plan → per step: deploy, probe, attack, probe → run.json →
//! checks → tables, CSV, HTML.

pub mod attack;
pub mod campaign;
pub mod check;
pub mod cli;
pub mod client;
pub mod command;
pub mod deployer;
pub mod external;
pub mod load;
pub mod machine;
pub mod outcome;
pub mod pacer;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod record;
pub mod report;
pub mod result;
pub mod scenario;
pub mod template;
pub mod timer;
pub mod usage;
