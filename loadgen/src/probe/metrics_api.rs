//! CPU of **any** pod from the Kubernetes resource metrics API (`metrics.k8s.io` PodMetrics,
//! as metrics-server serves it): the view that needs nothing from the service. A sample is the
//! mean CPU over a window (metrics-server's scrape interval) ending at its timestamp; a step's
//! view is the latest sample whose whole window lies inside the step, stated with that window
//! (`MetricsApiCpu`), or nothing — a sample that straddles the step's start or end would mix
//! in the load before or after it. Short steps (under about two windows) get none.

use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;
use loadgen_model::result::MetricsApiCpu;
use serde_json::Value;

/// One PodMetrics sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetricsSample {
    /// The end of its window.
    pub at: SystemTime,
    pub window: Duration,
    /// Cores, summed over the pod's containers.
    pub cores: f64,
}

/// A CPU quantity as the metrics API writes it (`637858382n`, `250u`, `12m`, `1`) in cores.
pub fn cores(q: &str) -> Option<f64> {
    let (num, scale) = match q.as_bytes().last()? {
        b'n' => (&q[..q.len() - 1], 1e-9),
        b'u' => (&q[..q.len() - 1], 1e-6),
        b'm' => (&q[..q.len() - 1], 1e-3),
        _ => (q, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * scale)
}

/// A PodMetrics object; `None` when a field is missing or malformed (never a made-up 0).
pub fn parse(v: &Value) -> Option<PodMetricsSample> {
    let at: Timestamp = v["timestamp"].as_str()?.parse().ok()?;
    let at = SystemTime::from(at);
    let window = humantime::parse_duration(v["window"].as_str()?).ok()?;
    let containers = v["containers"].as_array()?;
    if containers.is_empty() {
        return None;
    }
    let cores = containers
        .iter()
        .map(|c| cores(c["usage"]["cpu"].as_str()?))
        .sum::<Option<f64>>()?;
    Some(PodMetricsSample { at, window, cores })
}

/// Reads the pod's current sample; `None` when the API has none (yet) or refuses.
pub async fn read(client: &kube::Client, namespace: &str, pod: &str) -> Option<PodMetricsSample> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{pod}");
    let req = hyper::Request::get(path).body(Vec::new()).ok()?;
    match client.request::<Value>(req).await {
        Ok(v) => parse(&v),
        Err(e) => {
            tracing::debug!("metrics.k8s.io for pod {namespace}/{pod}: {e}");
            None
        }
    }
}

/// The step's view from `sample` when its window lies inside `[start, end]`.
pub fn within(
    sample: &PodMetricsSample,
    start: SystemTime,
    end: SystemTime,
) -> Option<MetricsApiCpu> {
    let window_start = sample.at.checked_sub(sample.window)?;
    if window_start < start || sample.at > end {
        return None;
    }
    Some(MetricsApiCpu {
        cores_used: sample.cores,
        window_s: sample.window.as_secs_f64(),
        ended_s: sample.at.duration_since(start).ok()?.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_in_cores() {
        assert_eq!(cores("637858382n"), Some(0.637858382));
        assert_eq!(cores("250u"), Some(0.00025));
        assert_eq!(cores("12m"), Some(0.012));
        assert_eq!(cores("2"), Some(2.0));
        assert_eq!(cores("x"), None);
        assert_eq!(cores(""), None);
    }

    #[test]
    fn a_sample_sums_its_containers_and_refuses_gaps() {
        let v = json!({ "timestamp": "2026-12-06T19:53:43Z", "window": "9.994s",
            "containers": [ { "name": "a", "usage": { "cpu": "500m", "memory": "1Ki" } },
                            { "name": "b", "usage": { "cpu": "100000000n", "memory": "1Ki" } } ] });
        let s = parse(&v).unwrap();
        assert!((s.cores - 0.6).abs() < 1e-9);
        assert_eq!(s.window, Duration::from_millis(9994));
        let mut gap = v.clone();
        gap["containers"][1]["usage"] = json!({});
        assert_eq!(
            parse(&gap),
            None,
            "a container without CPU is no sample, not 0"
        );
    }

    #[test]
    fn only_a_window_inside_the_step_counts() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let sample = |end_s: u64| PodMetricsSample {
            at: t0 + Duration::from_secs(end_s),
            window: Duration::from_secs(10),
            cores: 0.5,
        };
        let end = t0 + Duration::from_secs(30);
        let v = within(&sample(25), t0, end).unwrap();
        assert_eq!((v.cores_used, v.window_s, v.ended_s), (0.5, 10.0, 25.0));
        assert_eq!(within(&sample(8), t0, end), None, "straddles the start");
        assert_eq!(within(&sample(31), t0, end), None, "ends after the step");
    }
}
