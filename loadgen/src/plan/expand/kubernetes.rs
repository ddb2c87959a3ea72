//! The Kubernetes target (`[target] kind = "kubernetes"`): the Deployment, its container, the
//! Service the load goes to and the pods' metrics port, all checked offline — names by the
//! API server's own rules (RFC 1123), the Service URL by the one target-URL rule — so
//! `validate` refuses what the API server or the attack would refuse later.

use super::Expander;
use crate::plan::{KubernetesTarget, Target};
use crate::scenario::ScenarioError;
use loadgen_engine::target::{BaseUrl, Reach};

/// The longest namespace or container name (an RFC 1123 label).
const MAX_LABEL: usize = 63;
/// The longest Deployment name (an RFC 1123 subdomain).
const MAX_SUBDOMAIN: usize = 253;

impl Expander<'_> {
    pub(super) fn kubernetes_target(&self, reach: Reach) -> Result<Target, ScenarioError> {
        let t = self.sc.target.get_ref();
        if let Some(url) = &t.url {
            return self.err(
                url.span(),
                "target.url",
                "only applies to kind = \"url\" (a kubernetes target names its Service in service_url)",
            );
        }
        if let Some(svc) = &self.sc.service {
            return self.err(
                svc.span(),
                "service",
                "[service] only applies to kind = \"local\" (the Deployment's pods are already configured)",
            );
        }
        let namespace = self.name_key(&t.namespace, "namespace", false)?;
        let deployment = self.name_key(&t.deployment, "deployment", true)?;
        let container = self.name_key(&t.container, "container", false)?;
        let Some(url) = &t.service_url else {
            return self.missing(
                "service_url",
                "the Service the load goes to, e.g. \"http://polymetrie.loadgen.svc.cluster.local:8080\"",
            );
        };
        let service_url = BaseUrl::parse(url.get_ref().trim())
            .and_then(|b| b.check_reach(reach).map(|()| b))
            .or_else(|e| self.err(url.span(), "target.service_url", e.to_string()))?;
        let service_url = service_url.as_url();
        let Some(port) = &t.metrics_port else {
            return self.missing("metrics_port", "the port of each pod's /metrics, e.g. 8080");
        };
        let metrics_port = u16::try_from(*port.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .map_or_else(
                || {
                    self.err(
                        port.span(),
                        "target.metrics_port",
                        format!("expected a port number 1–65535, got {}", port.get_ref()),
                    )
                },
                Ok,
            )?;
        let rollout_timeout = t
            .rollout_timeout
            .as_ref()
            .map_or(crate::plan::ROLLOUT_TIMEOUT, |d| d.get_ref().0);
        Ok(Target::Kubernetes(KubernetesTarget {
            namespace,
            deployment,
            container,
            service_url,
            metrics_port,
            rollout_timeout,
        }))
    }

    fn missing<T>(&self, key: &str, what: &str) -> Result<T, ScenarioError> {
        self.err(
            self.sc.target.span(),
            &format!("target.{key}"),
            format!("required key is missing (kind = \"kubernetes\" needs {what})"),
        )
    }

    /// A required object name: an RFC 1123 label, or a subdomain (dots allowed) when
    /// `subdomain`.
    fn name_key(
        &self,
        value: &Option<toml::Spanned<String>>,
        key: &str,
        subdomain: bool,
    ) -> Result<String, ScenarioError> {
        let Some(v) = value else {
            return self.missing(key, &format!("the {key}'s name"));
        };
        let name = v.get_ref().trim();
        check_object_name(name, subdomain)
            .or_else(|m| self.err(v.span(), &format!("target.{key}"), m))?;
        Ok(name.to_string())
    }

    /// `namespace`, `deployment`, `container`, `service_url`, `metrics_port` and
    /// `rollout_timeout` only mean
    /// something for a cluster: elsewhere they are mistakes, not settings to ignore.
    pub(super) fn no_cluster_keys(&self) -> Result<(), ScenarioError> {
        let t = self.sc.target.get_ref();
        let strings = [
            ("namespace", &t.namespace),
            ("deployment", &t.deployment),
            ("container", &t.container),
            ("service_url", &t.service_url),
        ];
        let span = strings
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|v| (*k, v.span())))
            .or_else(|| t.metrics_port.as_ref().map(|p| ("metrics_port", p.span())))
            .or_else(|| {
                t.rollout_timeout
                    .as_ref()
                    .map(|p| ("rollout_timeout", p.span()))
            });
        match span {
            Some((key, span)) => self.err(
                span,
                &format!("target.{key}"),
                "only applies to kind = \"kubernetes\"",
            ),
            None => Ok(()),
        }
    }
}

/// The PromQL a cluster's Prometheus is asked (cAdvisor's per-container series, for the
/// target's container), with the scenario's own overrides laid over them.
pub fn cluster_queries(
    target: &KubernetesTarget,
    overrides: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let container = format!("container=\"{}\"", target.container);
    let mut out: std::collections::BTreeMap<String, String> = crate::promql::kubernetes_defaults()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("container=\"polymetrie\"", &container),
            )
        })
        .collect();
    out.extend(overrides);
    out
}

/// An RFC 1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63), or with `subdomain` dot-
/// separated labels of at most 253 in all — what the API server accepts as these names.
pub fn check_object_name(name: &str, subdomain: bool) -> Result<(), ObjectNameError> {
    let max = if subdomain { MAX_SUBDOMAIN } else { MAX_LABEL };
    let kind = if subdomain {
        "a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.')"
    } else {
        "a lowercase RFC 1123 label (a-z, 0-9, '-')"
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = name.len() <= max
        && if subdomain {
            name.split('.').all(label_ok)
        } else {
            label_ok(name)
        };
    if ok {
        Ok(())
    } else {
        Err(ObjectNameError {
            kind,
            max,
            name: name.into(),
        })
    }
}

/// A Kubernetes object name the API server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {kind} of at most {max} characters, got \"{name}\"")]
pub struct ObjectNameError {
    /// What the name must be: an RFC 1123 label or subdomain, with its characters.
    kind: &'static str,
    max: usize,
    name: String,
}

#[cfg(test)]
mod tests {
    use super::check_object_name;

    #[test]
    fn object_names_follow_rfc_1123() {
        assert!(check_object_name("polymetrie", false).is_ok());
        assert!(check_object_name("a-1", false).is_ok());
        assert!(check_object_name("web.v2", true).is_ok());
        for bad in ["", "Poly", "-a", "a-", "a_b", "web.v2"] {
            assert!(check_object_name(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_object_name(&"a".repeat(64), false).is_err());
        assert!(check_object_name("a..b", true).is_err());
    }
}
