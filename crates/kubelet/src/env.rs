//! A container's environment as a kubelet builds it: `KUBERNETES_SERVICE_*`, each `env` entry in
//! order (literal values with `$(VAR)` references expanded, `fieldRef`, `resourceFieldRef`,
//! `configMapKeyRef`, `secretKeyRef`) and `envFrom`. Service links (`enableServiceLinks`) are
//! not injected.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Pod, Secret};
use kube::{Api, Client};

use crate::fields::{field_value, resource_value};

/// What a value may refer to besides the pod itself.
pub struct EnvContext<'a> {
    pub client: &'a Client,
    pub pod: &'a Pod,
    pub pod_ip: String,
    pub host_ip: String,
    pub api_endpoint: Option<&'a str>,
    pub node_cpus: u32,
    pub node_memory: u64,
}

/// `$(NAME)` → the value of an earlier variable; `$$(NAME)` → `$(NAME)`; an unknown name stays
/// as written (the kubelet's rules).
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The environment of `c`, in the order a kubelet sets it (later entries win).
pub async fn build(
    ctx: &EnvContext<'_>,
    c: &Container,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    vars.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    vars.insert(
        "HOSTNAME".into(),
        ctx.pod.metadata.name.clone().unwrap_or_default(),
    );
    if let Some((host, port)) = ctx.api_endpoint.and_then(|e| e.rsplit_once(':')) {
        vars.insert("KUBERNETES_SERVICE_HOST".into(), host.into());
        vars.insert("KUBERNETES_SERVICE_PORT".into(), port.into());
        vars.insert("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.into());
    }
    let ns = ctx.pod.metadata.namespace.clone().unwrap_or_default();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            if let Some(cm) = get_opt::<ConfigMap>(ctx.client, &ns, &r.name, optional).await? {
                for (k, v) in cm.data.unwrap_or_default() {
                    vars.insert(format!("{prefix}{k}"), v);
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            if let Some(s) = get_opt::<Secret>(ctx.client, &ns, &r.name, optional).await? {
                for (k, v) in s.data.unwrap_or_default() {
                    vars.insert(format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into());
                }
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            Some(src) => match source_value(ctx, c, src, &ns).await? {
                Some(v) => v,
                None => continue,
            },
            None => expand(e.value.as_deref().unwrap_or(""), &vars),
        };
        vars.insert(e.name.clone(), value);
    }
    Ok(vars)
}

async fn source_value(
    ctx: &EnvContext<'_>,
    c: &Container,
    src: &EnvVarSource,
    ns: &str,
) -> Result<Option<String>, String> {
    if let Some(f) = &src.field_ref {
        return field_value(ctx.pod, &f.field_path, &ctx.pod_ip, &ctx.host_ip).map(Some);
    }
    if let Some(r) = &src.resource_field_ref {
        return resource_value(c, r, ctx.node_cpus, ctx.node_memory).map(Some);
    }
    if let Some(r) = &src.config_map_key_ref {
        let optional = r.optional.unwrap_or(false);
        let Some(cm) = get_opt::<ConfigMap>(ctx.client, ns, &r.name, optional).await? else {
            return Ok(None);
        };
        return match cm.data.unwrap_or_default().remove(&r.key) {
            Some(v) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(format!("configmap {}: no key {:?}", r.name, r.key)),
        };
    }
    if let Some(r) = &src.secret_key_ref {
        let optional = r.optional.unwrap_or(false);
        let Some(s) = get_opt::<Secret>(ctx.client, ns, &r.name, optional).await? else {
            return Ok(None);
        };
        return match s.data.unwrap_or_default().remove(&r.key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into())),
            None if optional => Ok(None),
            None => Err(format!("secret {}: no key {:?}", r.name, r.key)),
        };
    }
    Err("an env valueFrom with no source the stand-in knows".into())
}

/// A namespaced object, `None` when it is absent and optional; an absent required one is an
/// error the pod waits on (as `CreateContainerConfigError` does).
pub async fn get_opt<K>(
    client: &Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<Option<K>, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(k)) => Ok(Some(k)),
        Ok(None) if optional => Ok(None),
        Ok(None) => Err(format!(
            "{} {ns}/{name} not found",
            K::kind(&Default::default())
        )),
        Err(e) => Err(format!("reading {ns}/{name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_like_the_kubelets() {
        let vars: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("cost $5", &vars), "cost $5");
    }
}
