//! One module per subcommand: each turns its parsed arguments into library calls and an
//! [`crate::cli::Outcome`].

pub mod attack;
pub mod report;
pub mod run;
pub mod validate;
