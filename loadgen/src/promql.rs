//! Every PromQL expression loadgen evaluates, in one place, by name; a scenario may replace any
//! of them (`[prometheus.queries] counter_increase = "…"`) to watch another service or a
//! cluster. Templates use placeholders substituted at evaluation time:
//!
//! | placeholder | value |
//! |---|---|
//! | `{site}` | the site the load posts to (escaped for a PromQL double-quoted string) |
//! | `{step}` | the step name, which is also the `step` label on every local target (escaped) |
//! | `{window}` | the step's `[start, end]` as a PromQL duration in milliseconds, e.g. `6500ms` |
//! | `{window_s}` | the same window in seconds, e.g. `6.500` |
//! | `{start}` / `{end}` | the window's edges as Unix seconds, for the `@` modifier |
//! | `{span}` | from a few scrapes before `start` to the evaluation time (after `end`), as a duration |
//!
//! Every query is an *instant* query evaluated once Prometheus has scraped every target after
//! the step's `end`; templates pin the window with `@ {end}` (`rate(x[{window}] @ {end})` covers
//! exactly `[start, end]`).
//!
//! A query that returns an instant vector is taken as it is (summed, or per `replica` / `pod` /
//! `instance` label). A query that returns a *range vector* (a bare selector with `[{span}]`) is
//! read by loadgen at the window's edges instead: value at `start` (linear interpolation between
//! the samples around it; 0 for a series born after `start`, i.e. a new replica or a label
//! that appeared with its first click) subtracted from the last value before the evaluation
//! time. That is what the local `counter_increase` does, for the reason below.
//!
//! ## Why the counter is read at the edges and not with `increase()`
//!
//! `increase(c[w])` takes the first and last samples *inside* the window and extrapolates their
//! difference towards the window's edges: all the way to an edge when the first/last sample is
//! within 1.1 average scrape intervals of it, else by half an interval; and, for a counter, never
//! further back than the point where it would have been zero — so a series that appears inside
//! the window (a replica started for this step, whose counter starts at 0; or `site="…"`, which
//! only appears with its first click) is not extrapolated below zero. The guess is right for a
//! flat rate. But what it covers is `[start, end]` only: clicks still in flight at `end` and
//! stored just after it — many of them at a saturated step — are in the direct counter delta
//! (read after the drain) and not in `increase()`.
//!
//! The edge reading is exact at `end`: the load has stopped, and [`observe`] waits for a scrape
//! after the drain, so the last sample is the final count. At `start` it interpolates between
//! the scrapes around it (warm-up clicks just before `start` land on either side). Measured
//! here (`cargo test -p loadgen --test it -- prometheus::real_ --nocapture`, 280 clicks at 40/s over
//! 7 s, warm-up of 0 / 0.3 / 0.3 / 0.5 / 1 s at the same rate just before the window): edge
//! reading −1.1 / −0.3 / −0.1 / −0.4 / +0.2 %, `increase()` −0.3 / −0.3 / −0.3 / 0.0 / −0.3 %.
//! Both are well inside the 10 % tolerance on a flat load; the edge reading is the default
//! because it also holds when the last answers come after `end`. `increase()` stays available
//! as [`COUNTER_INCREASE_EXTRAPOLATED`] and is the Kubernetes default, where scrape intervals
//! are long, the `step` label does not exist and observe cannot wait for a scrape per pod.
//!
//! [`observe`]: crate::probe::prometheus::PrometheusProbe::observe
//!
//! ## Kubernetes
//!
//! On a cluster the local `process_cpu_seconds_total` queries are replaced with cAdvisor's
//! series; [`kubernetes_defaults`] lists them (`container_cpu_usage_seconds_total` for CPU,
//! `container_cpu_cfs_throttled_periods_total / container_cpu_cfs_periods_total` for the
//! throttled ratio). They are documented and tested for substitution only: no cluster exists
//! here.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clicks stored during the step, summed over replicas.
pub const COUNTER_INCREASE: &str = "counter_increase";
/// Clicks stored during the step, per replica.
pub const COUNTER_PER_REPLICA: &str = "counter_per_replica";
/// CPU cores used during the step, summed over replicas.
pub const CPU_CORES: &str = "cpu_cores";
/// CPU cores used during the step, per replica.
pub const CPU_PER_REPLICA: &str = "cpu_per_replica";
/// Throttled CFS periods / all periods during the step (cgroup limits only).
pub const THROTTLED_RATIO: &str = "throttled_ratio";

/// Every query name a scenario may override.
pub const QUERY_NAMES: [&str; 5] = [
    COUNTER_INCREASE,
    COUNTER_PER_REPLICA,
    CPU_CORES,
    CPU_PER_REPLICA,
    THROTTLED_RATIO,
];

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 7] = ["site", "step", "window", "window_s", "start", "end", "span"];

/// `increase()`-based counter reading, extrapolated at the window edges (see the module doc).
pub const COUNTER_INCREASE_EXTRAPOLATED: &str =
    r#"sum(increase(polymetrie_clicks_total{site="{site}",step="{step}"}[{window}] @ {end}))"#;

/// Local defaults: `polymetrie` replicas scraped by the managed Prometheus, each target
/// labelled `step` and `replica`. `throttled_ratio` has no local default: a process's own
/// metrics know nothing of CFS throttling (the cgroup probe reads it directly), so it stays
/// `null`.
pub fn local_defaults() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            COUNTER_INCREASE,
            r#"polymetrie_clicks_total{site="{site}",step="{step}"}[{span}]"#,
        ),
        (
            COUNTER_PER_REPLICA,
            r#"polymetrie_clicks_total{site="{site}",step="{step}"}[{span}]"#,
        ),
        (
            CPU_CORES,
            r#"sum(rate(process_cpu_seconds_total{step="{step}"}[{window}] @ {end}))"#,
        ),
        (
            CPU_PER_REPLICA,
            r#"sum by (replica) (rate(process_cpu_seconds_total{step="{step}"}[{window}] @ {end}))"#,
        ),
    ])
}

/// Kubernetes variants (cAdvisor via the kubelet; `polymetrie` pods found by a ServiceMonitor).
/// `{step}` is unused there: a cluster campaign's steps are told apart by time alone.
pub fn kubernetes_defaults() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            COUNTER_INCREASE,
            r#"sum(increase(polymetrie_clicks_total{site="{site}"}[{window}] @ {end}))"#,
        ),
        (
            COUNTER_PER_REPLICA,
            r#"sum by (pod) (increase(polymetrie_clicks_total{site="{site}"}[{window}] @ {end}))"#,
        ),
        (
            CPU_CORES,
            r#"sum(rate(container_cpu_usage_seconds_total{container="polymetrie"}[{window}] @ {end}))"#,
        ),
        (
            CPU_PER_REPLICA,
            r#"sum by (pod) (rate(container_cpu_usage_seconds_total{container="polymetrie"}[{window}] @ {end}))"#,
        ),
        (
            THROTTLED_RATIO,
            r#"sum(increase(container_cpu_cfs_throttled_periods_total{container="polymetrie"}[{window}] @ {end})) / sum(increase(container_cpu_cfs_periods_total{container="polymetrie"}[{window}] @ {end}))"#,
        ),
    ])
}

/// Errors in a query template or an override.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown prometheus query name `{0}` (known: {known})", known = QUERY_NAMES.join(", "))]
    UnknownName(String),
    #[error("query `{name}` uses unknown placeholder `{{{placeholder}}}` (known: {known})", known = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder { name: String, placeholder: String },
}

/// What the placeholders stand for in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParams {
    pub site: String,
    pub step: String,
    /// Unix seconds of the window's start.
    pub start_s: f64,
    /// Unix seconds of the window's end.
    pub end_s: f64,
    /// Unix seconds at which the queries are evaluated (at or after `end_s`).
    pub eval_s: f64,
    /// How far before `start` a `{span}` reaches, to hold a sample before the window.
    pub lookbehind: Duration,
}

impl QueryParams {
    /// The window's length.
    pub fn window(&self) -> Duration {
        Duration::from_secs_f64((self.end_s - self.start_s).max(0.0))
    }

    /// From `lookbehind` before the start to the evaluation time.
    pub fn span(&self) -> Duration {
        Duration::from_secs_f64((self.eval_s - self.start_s).max(0.0)) + self.lookbehind
    }
}

/// Checks override names and placeholders, so a scenario can be rejected before it runs.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), QueryError> {
    for (name, template) in overrides {
        if !QUERY_NAMES.contains(&name.as_str()) {
            return Err(QueryError::UnknownName(name.clone()));
        }
        check_placeholders(name, template)?;
    }
    Ok(())
}

/// The templates to evaluate: the local defaults with the overrides laid over them. An empty
/// override disables that query (its field stays `null`).
pub fn resolve(
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, QueryError> {
    validate_overrides(overrides)?;
    let mut set: BTreeMap<String, String> = local_defaults()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (name, template) in overrides {
        if template.trim().is_empty() {
            set.remove(name);
        } else {
            set.insert(name.clone(), template.clone());
        }
    }
    Ok(set)
}

/// Substitutes the placeholders of `template`. Braces that are not a known placeholder are
/// PromQL's own (label matchers) and are left alone; a `{word}` that is not a known placeholder
/// is an error, because it cannot be valid PromQL either.
pub fn render(name: &str, template: &str, p: &QueryParams) -> Result<String, QueryError> {
    check_placeholders(name, template)?;
    let window = p.window();
    Ok(template
        .replace("{site}", &escape_label(&p.site))
        .replace("{step}", &escape_label(&p.step))
        .replace("{window}", &promql_duration(window))
        .replace("{window_s}", &format!("{:.3}", window.as_secs_f64()))
        .replace("{start}", &format!("{:.3}", p.start_s))
        .replace("{end}", &format!("{:.3}", p.end_s))
        .replace("{span}", &promql_duration(p.span())))
}

/// A window as a PromQL duration. Milliseconds keep sub-second step lengths exact; a zero
/// window would be a syntax error, so it is at least `1ms`.
pub fn promql_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Escapes a value for a PromQL double-quoted string.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn check_placeholders(name: &str, template: &str) -> Result<(), QueryError> {
    for (open, _) in template.match_indices('{') {
        let after = &template[open + 1..];
        let word_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..word_len];
        if !word.is_empty() && after[word_len..].starts_with('}') && !PLACEHOLDERS.contains(&word) {
            return Err(QueryError::UnknownPlaceholder {
                name: name.into(),
                placeholder: word.into(),
            });
        }
    }
    Ok(())
}
