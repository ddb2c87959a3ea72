//! The `loadgen` binary: parse the command line, set up tracing, hand over to the library and
//! map the result to an exit code (0 done, 1 checks failed, 2 could not run).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use loadgen_logline::LogFormat;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOADGEN_LOG")
        .unwrap_or_else(|_| "warn".into());
    cli::log_format::init(args.log_format);
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Json => loadgen_logline::install_json(filter, None),
    }
    match cli::execute(args) {
        Ok(status) => status.into(),
        Err(e) => {
            cli::log_format::could_not_run(&e);
            ExitCode::from(2)
        }
    }
}
