//! The downward API: a pod's own fields (`fieldRef`) and its containers' resources
//! (`resourceFieldRef`) as strings, and Kubernetes quantities as numbers.

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `path` (`metadata.name`, `metadata.labels['k']`, `status.podIP`, …).
pub fn field_value(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    let v = match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        _ => {
            if let Some(k) = keyed("metadata.labels['") {
                m.labels
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else if let Some(k) = keyed("metadata.annotations['") {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(&k).cloned())
                    .unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldRef {path:?}"));
            }
        }
    };
    Ok(v)
}

/// A `resourceFieldRef`: the limit (the node's capacity without one) or request, divided by
/// the divisor and rounded up, as the kubelet does.
pub fn resource_value(
    c: &Container,
    r: &ResourceFieldSelector,
    node_cpus: u32,
    node_memory: u64,
) -> Result<String, String> {
    let res = c.resources.as_ref();
    let (kind, name) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported resourceFieldRef {:?}", r.resource))?;
    let map = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("unsupported resourceFieldRef {:?}", r.resource)),
    };
    let set = map.and_then(|m| m.get(name)).map(|q| quantity(&q.0));
    let value = match (name, set) {
        (_, Some(v)) => v.ok_or_else(|| format!("{}: not a quantity", r.resource))?,
        ("cpu", None) if kind == "limits" => f64::from(node_cpus),
        ("memory", None) if kind == "limits" => node_memory as f64,
        ("cpu" | "memory", None) => 0.0,
        _ => return Err(format!("unsupported resourceFieldRef {:?}", r.resource)),
    };
    let divisor = match &r.divisor {
        Some(Quantity(d)) => quantity(d).filter(|d| *d > 0.0).ok_or("bad divisor")?,
        None => 1.0,
    };
    Ok(format!(
        "{}",
        (value / divisor)
            .ceil()
            .max(if kind == "limits" { 1.0 } else { 0.0 })
    ))
}

/// A Kubernetes quantity (`500m`, `1`, `1.5`, `256Mi`, `1G`, `1e3`) as a number.
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suffix, mult) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The container's CPU limit in cores, the quota its group gets.
pub fn cpu_limit(c: &Container) -> Option<f64> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get("cpu")?;
    quantity(&q.0).filter(|v| *v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("256Mi"), Some(268435456.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("x"), None);
    }

    #[test]
    fn fields_of_the_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "labels": {"app": "a"}},
            "spec": {"nodeName": "node", "containers": []}
        }))
        .unwrap();
        assert_eq!(field_value(&pod, "metadata.name", "", "").unwrap(), "p");
        assert_eq!(
            field_value(&pod, "metadata.labels['app']", "", "").unwrap(),
            "a"
        );
        assert_eq!(
            field_value(&pod, "status.podIP", "10.0.0.2", "").unwrap(),
            "10.0.0.2"
        );
        assert!(field_value(&pod, "spec.bogus", "", "").is_err());
    }
}
