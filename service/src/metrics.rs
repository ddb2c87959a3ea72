//! The service's Prometheus metrics (OpenMetrics text via `prometheus-client`): clicks per
//! site and per URL (URL label values capped per site by the store's [`UrlCap`], overflow
//! under `__other__`, because one series per URL was the original's scaling problem), HTTP
//! requests by route and status, requests in progress, request duration, shedding, queued and
//! in-flight clicks, the extra work a deliberate `--regression` did, the process's CPU and
//! memory, and its cgroup's CPU and CFS throttling (`polymetrie_cgroup_cpu_*`, see the
//! `cpu-cgroup` crate).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use crate::url_cap::OTHER_URL;
use crate::url_cap::{UrlCap, UrlEntry};
use cpu_cgroup::SelfCgroup;

/// Longest URL kept as a label value; longer ones count under [`OTHER_URL`] (the store keeps
/// them: a label is dearer than a sorted-set member).
const MAX_URL_LABEL_LEN: usize = 256;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UrlLabels {
    site: String,
    url: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Cached counter handles for one site, so a click costs no label allocation once warm.
#[derive(Debug)]
struct SiteHandles {
    clicks: Counter,
    urls: HashMap<String, Counter>,
    other: Option<Counter>,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The `route` label values; their duration histograms are resolved once at startup so a
/// request does not pay a family lookup for them.
pub const ROUTES: [&str; 7] = [
    "/api/clicks",
    "/api/sites",
    "/api/sites/{site}/stats",
    "/metrics",
    "/healthz",
    "/readyz",
    "other",
];

/// Every metric the service exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    clicks: Family<SiteLabels, Counter>,
    url_clicks: Family<UrlLabels, Counter>,
    requests: Family<HttpLabels, Counter>,
    durations: HistogramFamily,
    route_durations: Vec<(&'static str, Histogram)>,
    shed: Counter,
    regression_work: Counter,
    tls_handshake_failures: Counter,
    inflight: Gauge,
    queued: Gauge,
    in_progress: Gauge,
    sites: Mutex<HashMap<String, SiteHandles>>,
    url_cap: UrlCap,
}

/// Holds a gauge up by one while alive: the request or click it counts may be dropped half-way
/// (client gone), and the gauge must come down all the same.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub fn hold(g: &Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `metric`, registered under `name` with `help` (the registry keeps a clone: they share
/// their values).
fn registered<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Each route's histogram, made once: the hot path observes without a family lookup.
fn route_durations(durations: &HistogramFamily) -> Vec<(&'static str, Histogram)> {
    ROUTES
        .iter()
        .map(|&route| {
            (
                route,
                durations.get_or_create(&RouteLabels { route }).clone(),
            )
        })
        .collect()
}

impl Metrics {
    pub fn new(url_cap: UrlCap) -> Self {
        let mut registry = Registry::default();
        let clicks = registered(
            &mut registry,
            "polymetrie_clicks",
            "Clicks this replica stored, by site",
            Family::<SiteLabels, Counter>::default(),
        );
        let url_clicks = registered(
            &mut registry,
            "polymetrie_url_clicks",
            "Clicks this replica stored, by site and URL (URL values capped per site; overflow under url=\"__other__\")",
            Family::<UrlLabels, Counter>::default(),
        );
        let requests = registered(
            &mut registry,
            "polymetrie_http_requests",
            "HTTP requests answered, by route and status",
            Family::<HttpLabels, Counter>::default(),
        );
        let durations: HistogramFamily = registered(
            &mut registry,
            "polymetrie_http_request_duration_seconds",
            "Time from request headers to response, by route",
            Family::new_with_constructor(duration_histogram),
        );
        let shed = registered(
            &mut registry,
            "polymetrie_shed",
            "Clicks refused with 503 because no in-flight slot freed up within the queue timeout",
            Counter::default(),
        );
        let regression_work = registered(
            &mut registry,
            "polymetrie_regression_work",
            "Units of extra work --regression did on clicks (JSON re-validations or store round trips); 0 without it",
            Counter::default(),
        );
        let tls_handshake_failures = registered(
            &mut registry,
            "polymetrie_tls_handshake_failures",
            "TLS handshakes on the main listener that failed or timed out (untrusted certificate, no common protocol, a client gone or silent); 0 without --tls-cert",
            Counter::default(),
        );
        let inflight = registered(
            &mut registry,
            "polymetrie_inflight_clicks",
            "Clicks currently holding an in-flight slot",
            Gauge::default(),
        );
        let queued = registered(
            &mut registry,
            "polymetrie_queued_clicks",
            "Clicks waiting for an in-flight slot",
            Gauge::default(),
        );
        let in_progress = registered(
            &mut registry,
            "polymetrie_http_requests_in_progress",
            "Requests whose headers were received and that are not answered yet (a scrape counts itself)",
            Gauge::default(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        registry.register_collector(Box::new(CgroupCollector(SelfCgroup::detect())));
        let route_durations = route_durations(&durations);
        Self {
            registry,
            clicks,
            url_clicks,
            requests,
            durations,
            route_durations,
            shed,
            regression_work,
            tls_handshake_failures,
            inflight,
            queued,
            in_progress,
            sites: Mutex::new(HashMap::new()),
            url_cap,
        }
    }

    /// Makes `polymetrie_clicks_total{site}` exist (at 0) before the first click, so
    /// `increase()` over a window that starts before that click sees it.
    pub fn site(&self, site: &str) {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        self.site_handles(&mut sites, site);
    }

    fn site_handles(&self, sites: &mut HashMap<String, SiteHandles>, site: &str) {
        if !sites.contains_key(site) {
            let clicks = self
                .clicks
                .get_or_create(&SiteLabels {
                    site: site.to_string(),
                })
                .clone();
            sites.insert(
                site.to_string(),
                SiteHandles {
                    clicks,
                    urls: HashMap::new(),
                    other: None,
                },
            );
        }
    }

    /// Counts one stored click for `site`, labelled with the store's entry for it (`url`, or
    /// `__other__` when the store folded it): labels are then always a subset of the store's
    /// URLs, further capped per replica and by length.
    pub fn click(&self, site: &str, url: &str) {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        self.site_handles(&mut sites, site);
        let Some(h) = sites.get_mut(site) else {
            return;
        };
        h.clicks.inc();
        if let Some(c) = h.urls.get(url) {
            c.inc();
            return;
        }
        let entry = if url.len() <= MAX_URL_LABEL_LEN {
            // `h.urls` never holds the overflow label, so its length is the distinct count.
            self.url_cap.entry(url, false, h.urls.len())
        } else {
            UrlEntry::Other
        };
        if entry == UrlEntry::Own {
            let c = self
                .url_clicks
                .get_or_create(&UrlLabels {
                    site: site.to_string(),
                    url: url.to_string(),
                })
                .clone();
            c.inc();
            h.urls.insert(url.to_string(), c);
            return;
        }
        let other = h.other.get_or_insert_with(|| {
            self.url_clicks
                .get_or_create(&UrlLabels {
                    site: site.to_string(),
                    url: OTHER_URL.to_string(),
                })
                .clone()
        });
        other.inc();
    }

    /// Counts extra work a `--regression` did.
    pub fn regression_work(&self, units: u64) {
        self.regression_work.inc_by(units);
    }

    /// Records one answered request.
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels { route, status })
            .inc();
        let secs = elapsed.as_secs_f64();
        match self.route_durations.iter().find(|(r, _)| *r == route) {
            Some((_, h)) => h.observe(secs),
            None => self
                .durations
                .get_or_create(&RouteLabels { route })
                .observe(secs),
        }
    }

    /// Counts a TLS handshake that did not complete.
    pub fn tls_handshake_failure(&self) {
        self.tls_handshake_failures.inc();
    }

    pub fn shed(&self) {
        self.shed.inc();
    }

    /// Counts a click holding an in-flight slot until the guard is dropped.
    pub fn inflight(&self) -> GaugeGuard {
        GaugeGuard::hold(&self.inflight)
    }

    /// The queued-clicks gauge, for admission to hold while a click waits.
    pub fn queued(&self) -> Gauge {
        self.queued.clone()
    }

    /// Counts a request being handled until the guard is dropped.
    pub fn in_progress(&self) -> GaugeGuard {
        GaugeGuard::hold(&self.in_progress)
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `process_cpu_seconds_total` and `process_resident_memory_bytes`, read on each scrape
/// (prometheus-client has no process collector).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = process_cpu_seconds() {
            let c = ConstCounter::new(cpu);
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
        }
        if let Some(rss) = resident_memory_bytes() {
            let g = ConstGauge::new(rss as i64);
            let m = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                None,
                g.metric_type(),
            )?;
            g.encode(m)?;
        }
        Ok(())
    }
}

/// The cgroup counters of the group this process runs in, read on each scrape. Absent when the
/// process is in no readable cgroup, and each counter absent when the kernel does not keep it
/// (v2 without the cpu controller has no periods): not measured is not zero.
#[derive(Debug)]
struct CgroupCollector(Option<SelfCgroup>);

/// `(name, help, value, value is µs)` of each exported cgroup counter.
const CGROUP_COUNTERS: [(&str, &str, usize, bool); 4] = [
    (
        "polymetrie_cgroup_cpu_usage_seconds",
        "CPU time used by this process's cgroup (cpu.stat usage_usec, v1 cpuacct.usage)",
        0,
        true,
    ),
    (
        "polymetrie_cgroup_cpu_periods",
        "CFS enforcement periods of this process's cgroup (cpu.stat nr_periods)",
        1,
        false,
    ),
    (
        "polymetrie_cgroup_cpu_throttled_periods",
        "CFS periods in which this process's cgroup was throttled (cpu.stat nr_throttled)",
        2,
        false,
    ),
    (
        "polymetrie_cgroup_cpu_throttled_seconds",
        "Time this process's cgroup spent throttled (cpu.stat throttled_usec, v1 throttled_time)",
        3,
        true,
    ),
];

impl Collector for CgroupCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(group) = &self.0 else {
            return Ok(());
        };
        let s = group.read();
        let values = [s.usage_usec, s.nr_periods, s.nr_throttled, s.throttled_usec];
        for (name, help, i, usec) in CGROUP_COUNTERS {
            let Some(v) = values[i] else { continue };
            if usec {
                let c = ConstCounter::new(v as f64 / 1e6);
                c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
            } else {
                let c = ConstCounter::new(v);
                c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// utime + stime of this process from `/proc/self/stat`, in seconds (USER_HZ = 100 on Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu_seconds(&stat)
}

fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may contain spaces and ')' — fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at indices 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_spaces_and_parens_in_the_command_name() {
        let stat = "1234 (my (weird) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1";
        assert_eq!(parse_stat_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn the_processs_cgroup_cpu_is_exported_when_it_has_one() {
        let text = Metrics::new(UrlCap::new(2)).encode();
        let Some(group) = SelfCgroup::detect() else {
            assert!(!text.contains("polymetrie_cgroup_cpu"), "{text}");
            return;
        };
        assert!(
            text.contains("# TYPE polymetrie_cgroup_cpu_usage_seconds counter"),
            "{text}"
        );
        assert!(
            text.contains("polymetrie_cgroup_cpu_usage_seconds_total "),
            "{text}"
        );
        if group.read().nr_periods.is_some() {
            assert!(
                text.contains("polymetrie_cgroup_cpu_throttled_periods_total "),
                "{text}"
            );
        }
    }

    #[test]
    fn url_labels_are_capped_per_site_with_an_overflow_bucket() {
        let m = Metrics::new(UrlCap::new(2));
        for url in ["/a", "/b", "/c", "/d", "/a", OTHER_URL] {
            m.click("s.com", url);
        }
        m.click("t.com", "/x");
        let text = m.encode();
        assert!(
            text.contains(r#"polymetrie_url_clicks_total{site="s.com",url="/a"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"polymetrie_url_clicks_total{site="s.com",url="__other__"} 3"#));
        assert!(!text.contains(r#"url="/c""#));
        assert!(text.contains(r#"polymetrie_url_clicks_total{site="t.com",url="/x"} 1"#));
        assert!(text.contains(r#"polymetrie_clicks_total{site="s.com"} 6"#));
        let long = format!("/{}", "x".repeat(MAX_URL_LABEL_LEN));
        m.click("t.com", &long);
        assert!(m
            .encode()
            .contains(r#"polymetrie_url_clicks_total{site="t.com",url="__other__"} 1"#));
        assert!(text.contains("process_cpu_seconds_total"));
        m.site("quiet.org");
        assert!(m
            .encode()
            .contains(r#"polymetrie_clicks_total{site="quiet.org"} 0"#));
    }
}
