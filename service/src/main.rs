//! `polymetrie` binary: parse flags, set up logging on stderr (`--log-format text|json`), build
//! the runtime, run.

use clap::Parser;
use loadgen_logline::{Level, LogFormat};
use polymetrie::Config;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (format, replica) = (config.log_format, config.replica());
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter)
            .init(),
        LogFormat::Json => loadgen_logline::install_json(filter, replica.clone()),
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = config.workers {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            fatal(format, replica, &format!("cannot start the runtime: {e}"));
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(polymetrie::run(config));
    // Do not wait for blocking threads still burning a shed request's cost.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            fatal(format, replica, &e.to_string());
            std::process::ExitCode::from(2)
        }
    }
}

/// Why the service could not run, as the last line of its log: the one plain line it always
/// was, or an error line a pipeline reads like the others. Written directly, not through
/// tracing, so that no RUST_LOG filter can hide why a replica exited 2.
fn fatal(format: LogFormat, replica: Option<String>, cause: &str) {
    match format {
        LogFormat::Text => eprintln!("polymetrie: {cause}"),
        LogFormat::Json => {
            let line = polymetrie::log_line(Level::Error, cause, Default::default(), replica);
            eprintln!("{line}");
        }
    }
}
