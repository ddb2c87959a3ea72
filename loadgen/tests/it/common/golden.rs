//! Golden files under `loadgen/tests/golden/`: output is compared with its file byte for byte;
//! `UPDATE_GOLDEN=1` rewrites the files instead (review the diff before committing it).

use std::path::Path;

use super::manifest_dir;

/// True when goldens are being rewritten rather than checked.
pub fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1")
}

/// The text of `tests/golden/<name>`, unless it is missing or being rewritten: for tests that
/// must reconcile run-dependent parts of their output with it before [`assert_golden`].
pub fn expected(name: &str) -> Option<String> {
    if updating() {
        return None;
    }
    std::fs::read_to_string(manifest_dir().join("tests/golden").join(name)).ok()
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites the file under `UPDATE_GOLDEN=1`.
/// On a difference the actual output is left in `target/<name>.actual` and the first
/// differing line is named.
pub fn assert_golden(name: &str, actual: &str) {
    let path = manifest_dir().join("tests/golden").join(name);
    if updating() {
        std::fs::write(&path, actual).expect("write golden");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing golden {}: {e}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    if expected != actual {
        let out = manifest_dir()
            .join("../target")
            .join(format!("{name}.actual"));
        let _ = std::fs::write(&out, actual);
        panic!(
            "{name} differs from its golden file at line {}; actual output written to {}; \
             rerun with UPDATE_GOLDEN=1 if the change is intended",
            first_differing_line(&expected, actual),
            out.display()
        );
    }
}

/// Asserts that two files hold the same bytes, naming the first differing line when not.
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (want, got) = (read(expected), read(actual));
    if want != got {
        let (want, got) = (
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
        );
        let line = first_differing_line(&want, &got);
        panic!(
            "{} differs from {} at line {line}:\n  expected: {:?}\n  actual:   {:?}",
            actual.display(),
            expected.display(),
            want.lines().nth(line - 1).unwrap_or(""),
            got.lines().nth(line - 1).unwrap_or("")
        );
    }
}

/// The 1-based number of the first line where `a` and `b` differ (one past the shorter text
/// when one is a prefix of the other).
fn first_differing_line(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .map(|i| i + 1)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()) + 1)
}
