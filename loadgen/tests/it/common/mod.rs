//! What the test modules share now that they are one binary: the skip-or-fail policy for
//! external programs ([`external`]), the `polymetrie` child ([`polymetrie`]), the `loadgen`
//! command ([`command`]), golden files ([`golden`]), the serial lock ([`serial`]), a small HTTP
//! client ([`http`]), what `/proc` and the cgroup file system show ([`procs`]), `loadgen run` as
//! a child with its replicas and what a killed run leaves ([`run`]), and where files are: the
//! crate, the repository, self-cleaning temp dirs.

pub mod attack;
pub mod cdp;
pub mod command;
pub mod external;
pub mod golden;
pub mod http;
pub mod polymetrie;
pub mod procs;
pub mod run;
pub mod serial;
pub mod server;

use std::path::PathBuf;

/// The loadgen crate's directory; fixtures and goldens are under its `tests/`.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root: `scenarios/`, `reports/`.
pub fn repo_dir() -> PathBuf {
    manifest_dir().join("..")
}

/// A fresh directory named `loadgen-<tag>-…` under the system temp dir, removed with all it
/// holds when the value is dropped (a failing test included).
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("loadgen-{tag}-"))
        .tempdir()
        .expect("create a temp dir")
}

/// A loopback port nobody listens on: bound by the kernel's choice, then released.
pub fn unused_port() -> u16 {
    loadgen_testkit::port::free_port()
}
