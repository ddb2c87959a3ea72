//! The skip-or-fail policy: a test that lacks an external program (Debian's `redis-server`,
//! `prometheus`, `chromium`, PostgreSQL, writable cgroups) prints a loud `!!! SKIPPING … !!!`
//! and returns; under `LOADGEN_REQUIRE_EXTERNAL=1` (as `.ci/run` sets) it fails instead, so CI
//! cannot pass by skipping. Where programs are found is the library's business
//! (`loadgen::external`).

use std::fmt::Display;
use std::path::PathBuf;

pub use loadgen::external::REQUIRE_ENV;
use loadgen::external::{self, required_by_env};

/// The value, or `None` after a loud skip message; panics instead when
/// `LOADGEN_REQUIRE_EXTERNAL=1`.
pub fn available<T, E: Display>(lookup: Result<T, E>) -> Option<T> {
    match lookup {
        Ok(v) => Some(v),
        Err(e) if required_by_env() => panic!("{REQUIRE_ENV}=1 but {e}"),
        Err(e) => {
            eprintln!("\n!!! SKIPPING: {e}. Set {REQUIRE_ENV}=1 to make this a failure. !!!\n");
            None
        }
    }
}

/// The program `name` (from the Debian package `package`), under the policy of [`available`].
pub fn binary(name: &str, package: &str) -> Option<PathBuf> {
    available(external::require(name, package))
}
