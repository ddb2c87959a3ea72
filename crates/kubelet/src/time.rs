//! Timestamps as the Kubernetes API writes them (RFC 3339, UTC, whole seconds; microseconds for
//! a Lease's `MicroTime`).

use k8s_openapi::jiff::{Timestamp, Unit};

/// Now, as a `metav1.Time`.
pub fn now() -> String {
    Timestamp::now()
        .round(Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| Timestamp::now().to_string())
}

/// Now, as a `metav1.MicroTime`.
pub fn now_micro() -> String {
    let t = Timestamp::now();
    t.round(Unit::Microsecond)
        .map(|t| format!("{t:.6}"))
        .unwrap_or_else(|_| t.to_string())
}
