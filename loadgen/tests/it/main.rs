//! The one integration-test binary of `loadgen`: a module per area, all sharing `common` (the
//! skip-or-fail policy for external programs, the `polymetrie` child, the `loadgen` command,
//! temp dirs, golden files and the serial lock). Fixtures and golden files stay under
//! `loadgen/tests/fixtures` and `loadgen/tests/golden`.
//!
//! Run one area with `cargo test -p loadgen --test it -- report::`.

mod common;

mod any_service;
mod attack;
mod attack_cli;
mod attack_http2;
mod attack_io;
mod attack_polymetrie;
mod attack_tls;
mod campaign;
mod campaign_served_tls;
mod campaign_tls;
mod capacity;
mod cli;
mod dashboards;
mod deployer;
mod from_log;
mod kubernetes;
mod logs;
mod pacer;
mod pool;
mod probe;
mod prometheus;
mod reliability;
mod report;
mod report_chromium;
mod scenario;
mod shards;
mod testbed;
mod watch;
