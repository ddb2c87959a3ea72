//! Verdicts over a saved loadgen run, as pure functions of the data model: [`check`] draws each
//! step's findings (validity, reconciliation, CPU, thresholds, the Prometheus cross-check, a
//! probe against its SLO, the capacity the probes show) and `check::judge` applies them all;
//! [`search`] decides a capacity search's next probe from the probes so far; [`baseline`] keeps
//! what `loadgen check` needs of a run, [`machine_class`] says which machines it may be compared
//! across, and [`comparison`] compares two of them.
//!
//! The same code judges a run at its end and again in `loadgen report`; the capacity search's
//! next-probe decision is the only judgement made while a run is going (ARCHITECTURE.md,
//! "Verdicts once").

pub mod baseline;
pub mod check;
pub mod compare;
pub mod comparison;
pub mod machine_class;
pub mod search;
