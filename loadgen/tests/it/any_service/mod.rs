//! A user's own service, end to end: a third-party server (Debian's Prometheus, which nobody
//! here wrote) as the service under test with its own request counter ([`third_party`]), the
//! Flask example with PostgreSQL and Redis as dependencies ([`flask`]), and every bad input a
//! newcomer can write, each one line and exit 2 with nothing left running ([`bad_input`]).

mod bad_input;
mod flask;
mod no_counter;
mod promql;
mod third_party;

use std::path::{Path, PathBuf};

/// Writes `text` as `scenario.toml` in `dir` and returns its path.
fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An empty Prometheus configuration next to the scenario (the third-party service needs one).
fn prometheus_config(dir: &Path) -> PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, "global:\n  scrape_interval: 1m\n").unwrap();
    path
}
