//! The skip-or-fail policy for what tests need from outside the crate — the `polymetrie`
//! binary, Debian's `redis-server`, `prometheus` and `chromium`, writable cgroups. A test
//! without one prints a loud `!!! SKIPPING … !!!` message and returns; under
//! `LOADGEN_REQUIRE_EXTERNAL=1` (as `.ci/run` sets) it fails instead, so CI cannot pass by
//! skipping. Where programs are found is the library's business (`loadgen::external`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cpu_cgroup::{Cgroup, CgroupLayout, CGROUP_ROOT, NAME_PREFIX};
use loadgen::external;

pub use loadgen_testkit::policy::{available, binary};

/// Where `polymetrie` is, without the policy (for passing it on to a child). Looked up once
/// per test run: the lookup may build it with cargo.
pub fn polymetrie_lookup() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| external::polymetrie_binary().map_err(|e| e.to_string()))
        .clone()
}

/// The `polymetrie` binary, under the policy of [`available`].
pub fn polymetrie() -> Option<PathBuf> {
    available(polymetrie_lookup())
}

/// Whether real cgroups can be created here, judged by creating a trial group as the deployer
/// does (once per test run), under the policy of [`available`].
pub fn cgroups_usable() -> bool {
    static TRIAL: OnceLock<Result<(), String>> = OnceLock::new();
    let trial = TRIAL.get_or_init(|| {
        CgroupLayout::detect(Path::new(CGROUP_ROOT))
            .and_then(|layout| {
                let name = format!("{NAME_PREFIX}{}-writable-check", std::process::id());
                Cgroup::create(&layout, &name, Some(0.5)).map(drop)
            })
            .map_err(|e| format!("cgroups are not writable: {e}"))
    });
    available(trial.clone()).is_some()
}
