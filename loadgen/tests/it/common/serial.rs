//! The serial lock: one lock for the tests that must not overlap, now that every module runs
//! in one process (cargo ran the old test binaries one after another, so tests of different
//! files never met).
//!
//! Take it first thing in every test that starts a process (the `loadgen` binary,
//! `polymetrie`, `redis-server`, `prometheus`, `chromium`), creates a cgroup, or measures rates,
//! latency or CPU under load: the deployer tests count every child of this process and every
//! cgroup named after its pid, the campaign and probe tests load both cores, and the rate and
//! latency bounds of the attack tests assume nobody else does. Pure tests (parsers, renderers,
//! the pacer) do not take it. The lock does not poison: a failed test releases it.

use tokio::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Holds the lock until the guard drops (in an async test: `lock().await`).
pub async fn lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Holds the lock until the guard drops, for tests that are not async.
pub fn lock_blocking() -> MutexGuard<'static, ()> {
    SERIAL.blocking_lock()
}
