//! The service level objective a capacity search holds each probe to (`slo = {…}` of a search
//! campaign): a share of intended requests the service must count and a p99 bound. As a
//! scenario states it and run.json saves it; `check::slo` judges a saved step by it.

use serde::{Deserialize, Serialize};

use crate::threshold::Metric;

/// The bounds a probe must meet; at least one is set (the plan checks it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Lowest counter delta / intended (the TD4 "success").
    pub counted_ratio: Option<f64>,
    /// Highest p99 latency from the due time, milliseconds.
    pub p99_ms: Option<f64>,
    /// Lowest 2xx answers / intended: the client's view, for a service without a counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_ratio: Option<f64>,
}

impl Slo {
    /// The bounds as thresholds on every step, so the SLO shares the metrics' one reading
    /// of a saved step (`check::threshold`).
    pub fn bounds(&self) -> Vec<(Metric, Option<f64>, Option<f64>)> {
        let mut out = Vec::new();
        if let Some(min) = self.counted_ratio {
            out.push((Metric::CountedRatio, Some(min), None));
        }
        if let Some(max) = self.p99_ms {
            out.push((Metric::P99Ms, None, Some(max)));
        }
        if let Some(min) = self.success_ratio {
            out.push((Metric::SuccessRatio, Some(min), None));
        }
        out
    }

    /// "counted ≥ 99 %, p99 ≤ 500 ms".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.counted_ratio {
            parts.push(format!("counted ≥ {} %", trim(c * 100.0)));
        }
        if let Some(p) = self.p99_ms {
            parts.push(format!("p99 ≤ {} ms", trim(p)));
        }
        if let Some(c) = self.success_ratio {
            parts.push(format!("answered 2xx ≥ {} %", trim(c * 100.0)));
        }
        parts.join(", ")
    }
}

/// A bound as written, without float noise ("99", "99.5").
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
