//! The part of a Deployment loadgen changes — `spec.replicas` and one container's CPU request
//! and limit — read from a live object, written as a server-side-apply body (field manager
//! [`FIELD_MANAGER`]), and kept as the original in the [`ORIGINAL_ANNOTATION`] so that a run
//! killed before it could restore is restored by the next one (or `loadgen restore`).

use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::KubeError;
use crate::plan::Topology;

/// The field manager of every apply loadgen sends.
pub const FIELD_MANAGER: &str = "loadgen";
/// Where the original shape is kept while a run changes the Deployment.
pub const ORIGINAL_ANNOTATION: &str = "loadgen.io/original";

/// One container's CPU as written in its `resources` (quantities as the API returns them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCpu {
    pub request: Option<String>,
    pub limit: Option<String>,
}

/// The replicas and one container's CPU: what a step sets and what is restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub container: String,
    pub replicas: i32,
    pub cpu: ContainerCpu,
    /// The Deployment's `managedFields` before the run (loadgen's own entries left out): who
    /// owned each field, handed back at restore so that the next `kubectl apply` of the
    /// manifests, or the next run, finds the owners it left. Empty for a step's shape (and in
    /// an annotation written before loadgen kept it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Value>,
}

impl Shape {
    /// The shape of a live Deployment; an error when it has no such container.
    pub fn of(dep: &Deployment, container: &str) -> Result<Shape, KubeError> {
        let spec = dep.spec.as_ref();
        let pod = spec.and_then(|s| s.template.spec.as_ref());
        let containers = pod.map(|p| p.containers.as_slice()).unwrap_or_default();
        let Some(c) = containers.iter().find(|c| c.name == container) else {
            return Err(KubeError::NoContainer {
                deployment: dep.metadata.name.clone().unwrap_or_default(),
                container: container.to_string(),
                found: containers.iter().map(|c| c.name.clone()).collect(),
            });
        };
        let res = c.resources.as_ref();
        let cpu_of = |m: Option<&std::collections::BTreeMap<String, _>>| {
            m.and_then(|m| m.get("cpu"))
                .map(|q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| q.0.clone())
        };
        Ok(Shape {
            container: container.to_string(),
            // The API server defaults spec.replicas to 1.
            replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
            cpu: ContainerCpu {
                request: cpu_of(res.and_then(|r| r.requests.as_ref())),
                limit: cpu_of(res.and_then(|r| r.limits.as_ref())),
            },
            owners: Vec::new(),
        })
    }

    /// The same shape with the owners of `live`'s fields (loadgen's own entries left out).
    pub fn owned_as(mut self, live: &Deployment) -> Shape {
        self.owners = others(live);
        self
    }

    /// A step's shape: its replicas, and CPU request = limit (Guaranteed QoS when memory is
    /// too) or, without a limit, the original request and no limit.
    pub fn for_step(topology: &Topology, original: &Shape) -> Shape {
        let cpu = match topology.cpu_limit_cores {
            Some(cores) => {
                let q = quantity(cores);
                ContainerCpu {
                    request: Some(q.clone()),
                    limit: Some(q),
                }
            }
            None => ContainerCpu {
                request: original.cpu.request.clone(),
                limit: None,
            },
        };
        Shape {
            container: original.container.clone(),
            replicas: i32::try_from(topology.replicas).unwrap_or(i32::MAX),
            cpu,
            owners: Vec::new(),
        }
    }

    /// Equal as the API server means it: quantities compared by value (`1000m` = `1`).
    pub fn same_as(&self, other: &Shape) -> bool {
        let q = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => millicores(a).is_some() && millicores(a) == millicores(b),
            (None, None) => true,
            _ => false,
        };
        self.container == other.container
            && self.replicas == other.replicas
            && q(&self.cpu.request, &other.cpu.request)
            && q(&self.cpu.limit, &other.cpu.limit)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        write!(
            f,
            "{} replica(s), container {} cpu request {} limit {}",
            self.replicas,
            self.container,
            q(&self.cpu.request),
            q(&self.cpu.limit)
        )
    }
}

/// The server-side-apply body setting `shape` on Deployment `name`, with the original kept in
/// the annotation (`None` drops it: loadgen owns it, so leaving it out removes it). Fields the
/// shape leaves out are released by loadgen; [`leftover_cpu`] removes those another manager
/// still holds.
pub fn apply_body(name: &str, shape: &Shape, original: Option<&Shape>) -> Value {
    let mut resources = serde_json::Map::new();
    for (key, value) in [
        ("requests", &shape.cpu.request),
        ("limits", &shape.cpu.limit),
    ] {
        if let Some(v) = value {
            resources.insert(key.into(), json!({ "cpu": v }));
        }
    }
    let mut metadata = json!({ "name": name });
    if let Some(o) = original {
        // Serialising a plain struct of strings cannot fail.
        let text = serde_json::to_string(o).unwrap_or_default();
        metadata["annotations"] = json!({ ORIGINAL_ANNOTATION: text });
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": shape.replicas,
            "template": { "spec": { "containers": [
                { "name": shape.container, "resources": Value::Object(resources) }
            ] } }
        }
    })
}

/// The merge patch that records only the original (before the first step: nothing else
/// changes). A merge patch, not an apply: an apply carrying only the annotation would release
/// every field a killed run's apply left owned by loadgen alone, and the API server would drop
/// them (replicas back to 1, the CPU limit gone).
pub fn annotation_body(original: &Shape) -> Value {
    let text = serde_json::to_string(original).unwrap_or_default();
    json!({ "metadata": { "annotations": { ORIGINAL_ANNOTATION: text } } })
}

/// Every `managedFields` entry of `live` but loadgen's own, as JSON.
fn others(live: &Deployment) -> Vec<Value> {
    live.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER))
        .filter_map(|m| serde_json::to_value(m).ok())
        .collect()
}

/// The `managedFields` to hand back at restore: the entries kept before the run, and those of
/// other managers that appeared during it (a controller's, someone's `kubectl`), none of
/// loadgen's.
pub fn handed_back(kept: &[Value], live: &Deployment) -> Vec<Value> {
    let key = |m: &Value| {
        (
            m["manager"].clone(),
            m["operation"].clone(),
            m["subresource"].clone(),
        )
    };
    let mut out = kept.to_vec();
    for m in others(live) {
        if !kept.iter().any(|k| key(k) == key(&m)) {
            out.push(m);
        }
    }
    out
}

/// The original a killed run left in the annotation, if any.
pub fn kept_original(dep: &Deployment) -> Result<Option<Shape>, KubeError> {
    let Some(text) = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ORIGINAL_ANNOTATION))
    else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| KubeError::Annotation(format!("{ORIGINAL_ANNOTATION}: {e}: {text}")))
}

/// A strategic-merge patch deleting the CPU fields `shape` has none of but the live object
/// still has. Server-side apply only removes a field its manager owned alone; a limit another
/// manager wrote (`kubectl apply` of the manifests) stays, and an unlimited step must not run
/// limited.
pub fn leftover_cpu(live: &Deployment, shape: &Shape) -> Result<Option<Value>, KubeError> {
    let now = Shape::of(live, &shape.container)?;
    let mut remove = serde_json::Map::new();
    for (key, want, have) in [
        ("requests", &shape.cpu.request, &now.cpu.request),
        ("limits", &shape.cpu.limit, &now.cpu.limit),
    ] {
        if want.is_none() && have.is_some() {
            remove.insert(key.into(), json!({ "cpu": null }));
        }
    }
    Ok((!remove.is_empty()).then(|| {
        json!({ "spec": { "template": { "spec": { "containers": [
            { "name": shape.container, "resources": Value::Object(remove) }
        ] } } } })
    }))
}

/// `cores` as a Kubernetes quantity, in whole millicores (the API's finest CPU unit): `1`,
/// `1500m`.
pub fn quantity(cores: f64) -> String {
    let m = (cores * 1000.0).round() as i64;
    if m % 1000 == 0 {
        format!("{}", m / 1000)
    } else {
        format!("{m}m")
    }
}

/// A CPU quantity in millicores (`1`, `0.5`, `1500m`, `250000u`); `None` when it is not one.
pub fn millicores(q: &str) -> Option<i64> {
    let q = q.trim();
    let (num, scale) = if let Some(n) = q.strip_suffix('m') {
        (n, 1.0)
    } else if let Some(n) = q.strip_suffix('u') {
        (n, 1e-3)
    } else if let Some(n) = q.strip_suffix('n') {
        (n, 1e-6)
    } else {
        (q, 1000.0)
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    Some((v * scale).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_whole_millicores() {
        assert_eq!(quantity(1.0), "1");
        assert_eq!(quantity(1.5), "1500m");
        assert_eq!(quantity(0.25), "250m");
        assert_eq!(millicores("1500m"), Some(1500));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("500000u"), Some(500));
        assert_eq!(millicores("lots"), None);
    }

    #[test]
    fn shapes_compare_quantities_by_value() {
        let a = Shape {
            container: "c".into(),
            replicas: 2,
            cpu: ContainerCpu {
                request: Some("1000m".into()),
                limit: None,
            },
            owners: Vec::new(),
        };
        let mut b = a.clone();
        b.cpu.request = Some("1".into());
        assert!(a.same_as(&b));
        b.cpu.limit = Some("1".into());
        assert!(!a.same_as(&b));
    }
}
