//! External programs loadgen relies on (`polymetrie`, `redis-server`, `prometheus`, `chromium`):
//! where to find them, and which Debian package to install when one is missing. Tests skip
//! loudly without one, and fail instead when [`REQUIRE_ENV`] is set (as `.ci/run` does); that
//! policy lives with the tests (`loadgen/tests/it/common/external.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable that turns a missing external binary from a skip into a failure.
pub const REQUIRE_ENV: &str = "LOADGEN_REQUIRE_EXTERNAL";

/// Errors finding an external program.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("{0} not found on PATH (install it, e.g. apt-get install -y {1})")]
    NotFound(String, String),
    #[error(
        "polymetrie binary not found next to loadgen and `cargo build -p polymetrie` failed: {0}"
    )]
    Polymetrie(String),
}

/// Finds `name` on `PATH` (or under `/usr/sbin`, `/usr/bin`, where Debian puts servers).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds a required binary, naming the Debian package that provides it when it is missing.
pub fn require(name: &str, package: &str) -> Result<PathBuf, ExternalError> {
    find_on_path(name).ok_or_else(|| ExternalError::NotFound(name.into(), package.into()))
}

/// True when missing externals must fail tests rather than skip them.
pub fn required_by_env() -> bool {
    std::env::var(REQUIRE_ENV)
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// The `polymetrie` binary: `$POLYMETRIE_BIN`, else next to the running executable (or one
/// directory up, for test binaries in `target/*/deps`), else built with cargo from this
/// workspace.
pub fn polymetrie_binary() -> Result<PathBuf, ExternalError> {
    if let Some(p) = std::env::var_os("POLYMETRIE_BIN") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("polymetrie");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    build_polymetrie()
}

fn build_polymetrie() -> Result<PathBuf, ExternalError> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "polymetrie",
            "--message-format=json",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .map_err(|e| ExternalError::Polymetrie(e.to_string()))?;
    if !out.status.success() {
        return Err(ExternalError::Polymetrie(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    // The executable path is in cargo's JSON messages; no guessing of target dirs.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable")?.as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == "polymetrie"))
        .ok_or_else(|| ExternalError::Polymetrie("cargo reported no polymetrie executable".into()))
}
