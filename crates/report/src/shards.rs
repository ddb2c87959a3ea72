//! What the reports say of a step run on several generators: how many shards it had and — only
//! when they did not run alike (a shard missing or invalid, late, or with another achieved rate
//! or lag) — each shard's achieved rate, schedule lag and lateness. A merged step otherwise
//! reads like any other; an unsharded one gets no line at all.

use crate::row::StepRow;
use loadgen_model::shard::ShardSummary;

/// Achieved rates within this share of one another are alike (shards' shares of a schedule
/// differ by at most one request).
const RATE_ALIKE: f64 = 0.01;
/// Schedule-lag p99s within this many ms of one another are alike.
const LAG_ALIKE_MS: f64 = 1.0;

/// The notes of a merged step: its shard count, then one line per shard when they differ.
pub fn notes(row: &StepRow) -> Vec<String> {
    let Some(sharding) = row.sharding.as_ref().filter(|s| !s.shards.is_empty()) else {
        return Vec::new();
    };
    let mut out = vec![format!(
        "{}: {} generators (shards of one schedule), merged",
        row.name, sharding.count
    )];
    if differ(&sharding.shards) {
        out.extend(sharding.shards.iter().map(|s| line(&row.name, s)));
    }
    out
}

/// Whether the shards did not run alike.
fn differ(shards: &[ShardSummary]) -> bool {
    let spread = |get: fn(&ShardSummary) -> Option<f64>| {
        let v: Vec<f64> = shards.iter().filter_map(get).collect();
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(*x), hi.max(*x))
            });
        (!v.is_empty()).then_some((lo, hi))
    };
    let rates = spread(|s| s.achieved_rps).is_some_and(|(lo, hi)| hi - lo > RATE_ALIKE * hi);
    let lags = spread(|s| s.schedule_lag_p99_ms).is_some_and(|(lo, hi)| hi - lo > LAG_ALIKE_MS);
    let broken = shards
        .iter()
        .any(|s| s.missing.is_some() || s.valid == Some(false));
    rates || lags || broken
}

/// One shard's line: achieved rate, lag p99, lateness, or why it is missing.
fn line(step: &str, s: &ShardSummary) -> String {
    if let Some(why) = &s.missing {
        return format!("{step}: shard {}: missing — {why}", s.index);
    }
    let num = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
    let late = s
        .late_ms
        .filter(|l| *l > 0.0)
        .map_or(String::new(), |l| format!(", started {l:.1} ms late"));
    let verdict = if s.valid == Some(false) {
        ", invalid"
    } else {
        ""
    };
    format!(
        "{step}: shard {}: achieved {}, schedule lag p99 {}{late}{verdict}",
        s.index,
        num(s.achieved_rps, " req/s"),
        num(s.schedule_lag_p99_ms, " ms"),
    )
}
