//! The temporary directory of one deployment: replica and Redis logs, Redis's working dir.
//! Removed at teardown, or on drop as a last resort.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// An owned temporary directory, unique per process and call.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    removed: bool,
}

impl WorkDir {
    /// Creates `$TMPDIR/loadgen-<pid>-<n>-<label>`.
    pub fn create(label: &str) -> io::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("loadgen-{}-{n}-{label}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self {
            path,
            removed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and everything in it.
    pub fn remove(&mut self) -> io::Result<()> {
        self.removed = true;
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove();
        }
    }
}

/// Removes the temporary directories (`loadgen-<pid>-…`, `loadgen-prometheus-<pid>-…`) of
/// loadgen processes that no longer run (killed, so their own teardown never ran); one line per
/// directory removed, for the run to report. Directories of a live loadgen are never touched.
pub fn remove_stale() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("loadgen-") else {
            continue;
        };
        let rest = rest.strip_prefix("prometheus-").unwrap_or(rest);
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            swept.push(format!(
                "temporary directory {} of loadgen pid {owner}, which no longer runs, removed",
                entry.path().display()
            ));
        }
    }
    swept
}

/// The last `max_lines` lines of a log file, for error messages (empty when unreadable).
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(max_lines)..].join(" | ")
}
