//! The target of a scenario (`[target]`, `[service]`): a local service loadgen starts, or a
//! running one at a URL, where load may go (loopback unless `allow_remote`), and the site whose
//! counter is the business counter. A Deployment on a cluster is [`super::kubernetes`]'s.

use super::Expander;
use crate::plan::{LocalService, Target};
use crate::scenario::value::Count;
use crate::scenario::{ScenarioError, ServiceSpec, TargetKind};
use loadgen_engine::target::{BaseUrl, Reach};
use loadgen_engine::Http2;

/// Streams per HTTP/2 connection when `max_streams` is not given (as `--max-streams`).
const DEFAULT_MAX_STREAMS: usize = 100;

impl Expander<'_> {
    pub(super) fn target(&self) -> Result<(Target, Reach), ScenarioError> {
        let t = self.sc.target.get_ref();
        let allowed = t.allow_remote.as_ref().is_some_and(|a| *a.get_ref());
        let reach = Reach::from_opt_in(allowed);
        if *t.kind.get_ref() != TargetKind::Kubernetes {
            self.no_cluster_keys()?;
        }
        let target = match t.kind.get_ref() {
            TargetKind::Kubernetes => self.kubernetes_target(reach),
            TargetKind::Url => self.url_target(reach),
            TargetKind::Local => {
                if let Some(a) = t.allow_remote.as_ref().filter(|a| *a.get_ref()) {
                    return self.err(
                        a.span(),
                        "target.allow_remote",
                        "only applies to kind = \"url\" (a local target is on this machine)",
                    );
                }
                self.local_target()
            }
        }?;
        Ok((target, reach))
    }

    /// `[target] http2` and `max_streams`: HTTP/2 for every step (the bundled polymetrie is
    /// then started with `--http2`: h2c, or h2 by ALPN in a `tls = true` step).
    pub(super) fn http2(&self, target: &mut Target) -> Result<Option<Http2>, ScenarioError> {
        let t = self.sc.target.get_ref();
        let on = t.http2.as_ref().is_some_and(|h| *h.get_ref());
        if let Some(m) = &t.max_streams {
            if !on {
                return self.err(
                    m.span(),
                    "target.max_streams",
                    "only applies with http2 = true",
                );
            }
        }
        if !on {
            return Ok(None);
        }
        if let Target::Local(service) = target {
            service.http2 = true;
        }
        let max_streams = match &t.max_streams {
            None => DEFAULT_MAX_STREAMS,
            Some(m) => usize::try_from(*m.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .map_or_else(
                    || self.err(m.span(), "target.max_streams", "expected an integer >= 1"),
                    Ok,
                )?,
        };
        Ok(Some(Http2 { max_streams }))
    }

    fn url_target(&self, reach: Reach) -> Result<Target, ScenarioError> {
        let Some(url) = &self.sc.target.get_ref().url else {
            return self.err(
                self.sc.target.span(),
                "target.url",
                "required key is missing (kind = \"url\" needs the base URL of the running service)",
            );
        };
        if let Some(svc) = &self.sc.service {
            return self.err(
                svc.span(),
                "service",
                "[service] only applies to kind = \"local\" (a url target is already running)",
            );
        }
        let base = BaseUrl::parse(url.get_ref().trim())
            .and_then(|b| b.check_reach(reach).map(|()| b))
            .or_else(|e| self.err(url.span(), "target.url", e.to_string()))?;
        Ok(Target::Url {
            base: base.as_url(),
        })
    }

    fn local_target(&self) -> Result<Target, ScenarioError> {
        if let Some(url) = &self.sc.target.get_ref().url {
            return self.err(
                url.span(),
                "target.url",
                "only applies to kind = \"url\" (a local target is started by loadgen)",
            );
        }
        let Some(svc) = &self.sc.service else {
            return self.err(
                self.sc.target.span(),
                "service",
                "required table [service] is missing (kind = \"local\" needs service.command for \
                 your own service, or service.cost and service.sites for the bundled polymetrie)",
            );
        };
        let s: &ServiceSpec = svc.get_ref();
        if let Some(argv) = &s.command {
            return self.command_target(svc, argv);
        }
        if let Some(a) = &s.tls_args {
            return self.err(
                a.span(),
                "service.tls_args",
                "only applies with service.command (the bundled polymetrie's TLS flags are \
                 loadgen's own; `tls = true` is enough)",
            );
        }
        if let Some(d) = self.sc.dependencies.first() {
            return self.err(
                d.span(),
                "dependency",
                "[[dependency]] is for a service.command (polymetrie's Redis is its `store`)",
            );
        }
        let Some(cost) = s.cost else {
            return self.err(
                svc.span(),
                "service.cost",
                "required key is missing (CPU time per click of the bundled polymetrie, e.g. \
                 \"5.5ms\"; or service.command to run your own service)",
            );
        };
        let small = |c: Option<Count>, key: &str| -> Result<Option<u32>, ScenarioError> {
            c.map(|c| {
                c.small().ok_or_else(|| {
                    self.src
                        .error(svc.span(), key, format!("expected at most {}", u32::MAX))
                })
            })
            .transpose()
        };
        let binary = s.binary.as_ref().map(|b| {
            if b.is_absolute() {
                b.clone()
            } else {
                self.src.dir().join(b)
            }
        });
        Ok(Target::Local(LocalService {
            binary,
            cost: cost.0,
            sites: self.sites(s, svc.span())?,
            workers: small(s.workers, "service.workers")?,
            max_inflight: small(s.max_inflight, "service.max_inflight")?,
            extra_args: s.extra_args.clone(),
            http2: false,
        }))
    }

    fn sites(
        &self,
        s: &ServiceSpec,
        span: std::ops::Range<usize>,
    ) -> Result<Vec<String>, ScenarioError> {
        if s.sites.is_empty() {
            return self.err(
                span,
                "service.sites",
                "required key is missing (sites to register, e.g. [\"td4\"])",
            );
        }
        let mut sites = Vec::new();
        for site in &s.sites {
            let v = site.get_ref().trim();
            if v.is_empty() {
                return self.err(
                    site.span(),
                    "service.sites",
                    "expected a non-empty site name",
                );
            }
            sites.push(v.to_string());
        }
        Ok(sites)
    }

    pub(super) fn counter_site(&self, target: &Target) -> Result<String, ScenarioError> {
        match (&self.sc.counter_site, target) {
            (Some(site), Target::Local(svc)) => {
                let v = site.get_ref().trim();
                if !svc.sites.iter().any(|s| s == v) {
                    return self.err(
                        site.span(),
                        "counter_site",
                        format!(
                            "expected one of service.sites ({}), got \"{v}\"",
                            svc.sites.join(", ")
                        ),
                    );
                }
                Ok(v.to_string())
            }
            (Some(site), Target::Url { .. } | Target::Kubernetes(_) | Target::Command(_)) => {
                let v = site.get_ref().trim();
                if v.is_empty() {
                    return self.err(
                        site.span(),
                        "counter_site",
                        "expected a non-empty site name",
                    );
                }
                Ok(v.to_string())
            }
            (None, Target::Local(svc)) => Ok(svc.sites[0].clone()),
            (None, Target::Url { .. } | Target::Kubernetes(_) | Target::Command(_)) => self.err(
                self.sc.target.span(),
                "counter_site",
                "required key is missing (a cluster's polymetrie needs the site whose counter \
                 to read; any other service names its counter in [counter])",
            ),
        }
    }
}
