//! The fake's HorizontalPodAutoscalers: the REST calls on one HPA by name (server-side apply
//! creates or replaces it, get, delete) and a **fake HPA controller** — not Kubernetes' — that
//! every [`SYNC`] reads each Ready pod's CPU from the service's own cgroup counter
//! (`polymetrie_cgroup_cpu_usage_seconds_total` at the pod's IP, the real CFS accounting of the
//! real replica), computes the utilisation of the CPU request, and sets `desiredReplicas` and
//! `spec.replicas` by the HPA's rule: `ceil(current × utilisation / target)` within
//! [min, max], unchanged within a 10 % tolerance.
//!
//! Not modelled: the 15 s sync period (1 s here, so a test sees a reaction in seconds), the
//! scale-down stabilisation window (5 min), scale-up rate policies, readiness delays,
//! metrics-server's own scrape lag, and any metric but CPU.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::Shared;
use loadgen::deployer::kubernetes::spec::millicores;
use loadgen::probe::counter::{metric_sum, CGROUP_USAGE_METRIC};

/// How often the fake controller acts (a real one: 15 s).
pub const SYNC: Duration = Duration::from_secs(1);
/// Within this ratio of the target nothing changes (the real controller's default).
const TOLERANCE: f64 = 0.1;

/// One REST call on the HPA `name`: its status code and body.
pub fn call(state: &Shared, method: &str, name: &str, body: &[u8]) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    let at = s.hpas.iter().position(|h| h["metadata"]["name"] == name);
    let not_found = || {
        (
            404,
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404,
            "message": format!("horizontalpodautoscalers.autoscaling \"{name}\" not found") }),
        )
    };
    match (method, at) {
        ("PATCH", _) => {
            let Ok(mut h) = serde_json::from_slice::<Value>(body) else {
                return (
                    400,
                    json!({ "kind": "Status", "code": 400, "message": "body" }),
                );
            };
            // A new HPA's status until the controller's first sync.
            h["status"] = match at {
                Some(i) => s.hpas[i]["status"].clone(),
                None => json!({ "currentReplicas": 0, "desiredReplicas": 0 }),
            };
            match at {
                Some(i) => s.hpas[i] = h.clone(),
                None => s.hpas.push(h.clone()),
            }
            (200, h)
        }
        ("GET", Some(i)) => (200, s.hpas[i].clone()),
        ("DELETE", Some(i)) => {
            s.hpas.remove(i);
            (
                200,
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" }),
            )
        }
        _ => not_found(),
    }
}

/// The fake controller: runs until `stop`.
pub async fn controller(state: Shared, metrics_port: u16, stop: CancellationToken) {
    // Per pod name: (CPU seconds, when read), the previous sync's reading.
    let mut last: HashMap<String, (f64, Instant)> = HashMap::new();
    let mut tick = tokio::time::interval(SYNC);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let Some((pods, request)) = scaled_pods(&state) else {
            last.clear();
            continue;
        };
        let mut utilisations = Vec::new();
        for (name, ip) in &pods {
            let url = format!("http://{ip}:{metrics_port}/metrics");
            let Ok((200, text)) = loadgen::http::get(&url, Duration::from_millis(500)).await else {
                continue;
            };
            let Some(cpu_s) = metric_sum(&text, CGROUP_USAGE_METRIC, None) else {
                continue;
            };
            let now = Instant::now();
            if let Some((before, at)) = last.insert(name.clone(), (cpu_s, now)) {
                let dt = now.duration_since(at).as_secs_f64();
                utilisations.push((cpu_s - before) / dt / request * 100.0);
            }
        }
        last.retain(|name, _| pods.iter().any(|(n, _)| n == name));
        sync(&state, pods.len() as u32, &utilisations);
    }
}

/// The Ready, non-terminating pods (name, IP) and the CPU request in cores, while an HPA
/// scales the Deployment.
fn scaled_pods(state: &Shared) -> Option<(Vec<(String, String)>, f64)> {
    let s = state.lock().unwrap();
    let name = s.dep["metadata"]["name"].clone();
    s.hpas
        .iter()
        .find(|h| h["spec"]["scaleTargetRef"]["name"] == name)?;
    let q = s.dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        .as_str()?;
    let request = millicores(q)? as f64 / 1000.0;
    let pods = s
        .pods
        .iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect();
    Some((pods, request))
}

/// One decision: status written; `spec.replicas` changed (as through the scale subresource)
/// when the HPA wants another count.
fn sync(state: &Shared, current: u32, utilisations: &[f64]) {
    let mut s = state.lock().unwrap();
    let name = s.dep["metadata"]["name"].clone();
    let replicas = s.dep["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
    let Some(h) = s
        .hpas
        .iter_mut()
        .find(|h| h["spec"]["scaleTargetRef"]["name"] == name)
    else {
        return;
    };
    let (min, max) = (
        h["spec"]["minReplicas"].as_u64().unwrap_or(1) as u32,
        h["spec"]["maxReplicas"].as_u64().unwrap_or(1) as u32,
    );
    let target = h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
        .as_f64()
        .unwrap_or(80.0);
    if utilisations.is_empty() || current == 0 {
        return;
    }
    let mean = utilisations.iter().sum::<f64>() / utilisations.len() as f64;
    let ratio = mean / target;
    let desired = if (ratio - 1.0).abs() <= TOLERANCE {
        replicas
    } else {
        ((current as f64 * ratio).ceil() as u32).clamp(min, max)
    };
    h["status"] = json!({ "currentReplicas": current, "desiredReplicas": desired,
        "currentMetrics": [{ "type": "Resource", "resource": { "name": "cpu",
            "current": { "averageUtilization": mean.round() as i64 } } }] });
    if desired != replicas {
        s.patch(false, &json!({ "spec": { "replicas": desired } }));
    }
}
