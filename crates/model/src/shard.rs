//! Shards: one generator's part of a step's schedule. [`Shard`] `K/N` owns the requests of the
//! full schedule whose index *i* has *i* mod N = K, so the union of the N shards is the
//! one-generator schedule itself (not N copies at R/N with their own jitter), and `{seq}` — the
//! index — is unique across them. [`Sharding`] is what a [`crate::result::StepResult`] keeps of
//! it: in a shard's own result the histograms and start a merge needs ([`ShardPart`]), in a
//! merged step one [`ShardSummary`] per shard. A leaf: the pacer, the results and the checks use
//! it alike.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The mark of a shard's result line in a log (`loadgen attack --log-result`): a generator
/// pod's files vanish with it, its log is what the coordinator reads.
pub const RESULT_MARK: &str = "loadgen-shard-result ";

/// The JSON of the last marked result line in `log` (a prefix before the mark, such as a
/// timestamp, is ignored); `None` when the log has none (the shard never finished).
pub fn result_in_log(log: &str) -> Option<&str> {
    log.lines().rev().find_map(|l| {
        l.find(RESULT_MARK)
            .map(|at| l[at + RESULT_MARK.len()..].trim())
    })
}

/// Why a shard or a start time was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    #[error("shard must be K/N with 0 <= K < N (got {0:?})")]
    Syntax(String),
    #[error("start time must be RFC 3339 (2026-12-01T12:00:00Z) or unix milliseconds (got {0:?})")]
    StartAt(String),
    #[error("no start time in {path} within {waited:?}")]
    NoStartTime { path: String, waited: Duration },
}

/// Shard `index` of `count` (`0/1` is the whole schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole schedule, one generator.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `index < count` and `count >= 1`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::Syntax(format!("{index}/{count}")));
        }
        Ok(Shard { index, count })
    }

    /// Reads `K/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::Syntax(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|_| bad())
    }

    /// Whether request `i` of the full schedule is this shard's.
    pub fn owns(self, i: u64) -> bool {
        i % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the first `total` requests of the full schedule are this shard's.
    pub fn share_of(self, total: u64) -> u64 {
        let (k, n) = (u64::from(self.index), u64::from(self.count));
        if total > k {
            (total - k - 1) / n + 1
        } else {
            0
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Reads a start instant: RFC 3339 (`2026-12-01T12:00:00.250Z`) or unix milliseconds.
pub fn parse_start_at(s: &str) -> Result<SystemTime, ShardError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| ShardError::StartAt(s.to_string()))
}

/// How often a start-time file is read again while it is empty.
const START_FILE_POLL: Duration = Duration::from_millis(100);

/// Waits (up to `bound`) until the file at `path` holds a start time, and reads it: how a
/// generator pod learns its start time from a downward-API file of its own annotation, which
/// the coordinator sets once every shard runs (the file exists but is empty until then).
pub fn wait_for_start_file(
    path: &std::path::Path,
    bound: Duration,
) -> Result<SystemTime, ShardError> {
    let deadline = std::time::Instant::now() + bound;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if !text.trim().is_empty() {
            return parse_start_at(&text);
        }
        if std::time::Instant::now() >= deadline {
            return Err(ShardError::NoStartTime {
                path: path.display().to_string(),
                waited: bound,
            });
        }
        std::thread::sleep(START_FILE_POLL);
    }
}

/// Unix milliseconds of `t` (0 before the epoch, which no clock here shows).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a step's result keeps of its shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sharding {
    /// N: how many generators shared the schedule.
    pub count: u32,
    /// The instant every shard's schedule was to start (unix ms), when one was given: the
    /// timeline's seconds count from it, so the shards' timelines line up.
    pub start_at_unix_ms: Option<u64>,
    /// In a shard's own result: what a merge needs besides the step's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<ShardPart>,
    /// In a merged step: one entry per shard, `0..count`, missing ones included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardSummary>,
}

/// One shard's own result, beyond the step fields: its index, how late it started, and the
/// histograms (all with the step histograms' bounds) a merge adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    pub index: u32,
    /// How much later than the start time its schedule began (it then runs shifted by that
    /// much; the timeline is still keyed by seconds since the start time).
    pub late_ms: Option<f64>,
    /// Schedule time covered, s (shorter than the step when interrupted).
    pub scheduled_s: f64,
    pub service_time_histogram: Option<String>,
    pub schedule_lag_histogram: Option<String>,
    pub connection_wait_histogram: Option<String>,
    /// Per timeline second, the latency histogram of that second (`None`: no answer in it),
    /// so a merged timeline's p99 is a percentile of the union too.
    #[serde(default)]
    pub timeline_histograms: Vec<Option<String>>,
}

/// One shard of a merged step, as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    pub index: u32,
    /// Why there is no result of this shard (it never started, failed, was killed, …);
    /// `None` when it delivered one.
    pub missing: Option<String>,
    pub intended: Option<u64>,
    pub sent: Option<u64>,
    pub ok: Option<u64>,
    pub achieved_rps: Option<f64>,
    pub schedule_lag_p99_ms: Option<f64>,
    pub late_ms: Option<f64>,
    pub cpu_cores_used: Option<f64>,
    pub valid: Option<bool>,
    pub invalid_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Shard::parse("1/4").unwrap().to_string(), "1/4");
    }

    #[test]
    fn shares_add_up_to_the_total() {
        for total in [0, 1, 2, 7, 100, 101] {
            let n = 3;
            let sum: u64 = (0..n)
                .map(|k| Shard::new(k, n).unwrap().share_of(total))
                .sum();
            assert_eq!(sum, total);
            let s = Shard::new(1, n).unwrap();
            assert_eq!(
                s.share_of(total),
                (0..total).filter(|i| s.owns(*i)).count() as u64
            );
        }
    }

    #[test]
    fn the_last_marked_line_of_a_log_is_the_result() {
        let log = format!("starting\n{RESULT_MARK}{{\"a\":1}}\n2026-12-01T00:00:00Z {RESULT_MARK}{{\"a\":2}}\nbye\n");
        assert_eq!(result_in_log(&log), Some("{\"a\":2}"));
        assert_eq!(result_in_log("no result here"), None);
    }

    #[test]
    fn start_at_reads_rfc3339_and_unix_ms() {
        let a = parse_start_at("2026-12-01T12:00:00.250Z").unwrap();
        let b = parse_start_at(&unix_ms(a).to_string()).unwrap();
        assert_eq!(a, b);
        assert!(parse_start_at("tomorrow").is_err());
    }
}
