//! The one signal handler of every long command (`run`, `attack`): the first SIGINT or
//! SIGTERM (Ctrl-C, or a Kubernetes Job being stopped) cancels the token — the command ends
//! the current step, tears down and saves what it measured — and a second one exits at once
//! with status 130 (ARCHITECTURE.md rule 6).

use loadgen_logline::Level;
use tokio_util::sync::CancellationToken;

/// Exit status of a second signal: 128 + SIGINT, what shells report for Ctrl-C.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

/// Watches SIGINT and SIGTERM for the life of the task. `first` is printed when the first
/// signal arrives, telling the user what happens now.
pub async fn watch(stop: CancellationToken, first: &'static str) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers: Ctrl-C ends loadgen without saving");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let text = format!("\n{first} (a second Ctrl-C exits at once)");
    super::log_format::say(Level::Warn, "interrupted", &text, serde_json::json!({}));
    stop.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let text = "second interrupt: exiting without teardown";
    super::log_format::say(
        Level::Error,
        "second_interrupt",
        text,
        serde_json::json!({}),
    );
    std::process::exit(SECOND_SIGNAL_EXIT);
}
