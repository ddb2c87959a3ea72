//! The `loadgen` binary under test (`CARGO_BIN_EXE_loadgen`), as a command to add arguments
//! to, or run to completion.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

/// `loadgen` with stdin closed: nothing under test reads it, and a test must never wait on it.
pub fn loadgen() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    c.stdin(Stdio::null());
    c
}

/// Runs `loadgen ARGS` to its end and returns what it printed and its exit status.
pub fn loadgen_output<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    loadgen().args(args).output().expect("run loadgen")
}

/// Asserts that `out` exited with `code`, showing its stderr when not.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
