//! The TLS keys of `[target]` (`cacert`, `insecure`, `cert`, `key`, `tls_resume`) for an
//! `https://` target URL: paths made relative to the scenario file, and the whole setup built
//! once by the engine's own [`TlsSpec::config`] (the one check, ARCHITECTURE.md rule 13), so a
//! CA file that does not parse or a key without its certificate is an error at its key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::Expander;
use crate::plan::search::SearchPlan;
use crate::plan::{Step, Target};
use crate::scenario::{ScenarioError, TargetSpec};
use loadgen_engine::target::BaseUrl;
use loadgen_engine::tls::TlsSpec;

impl Expander<'_> {
    /// The TLS settings of the plan's target (the default for a plain-HTTP one, which must
    /// not set any TLS key).
    pub(super) fn tls(&self, target: &Target) -> Result<TlsSpec, ScenarioError> {
        let t = self.sc.target.get_ref();
        // A url target or a cluster's Service can be https (a local one is by `tls = true`,
        // with the run's own CA, not these keys).
        let url = match target {
            Target::Url { base } => Some(base.as_str()),
            Target::Kubernetes(k) => Some(k.service_url.as_str()),
            Target::Local(_) | Target::Command(_) => None,
        };
        let https = url
            .and_then(|u| BaseUrl::parse(u).ok())
            .is_some_and(|b| b.tls);
        let keys = tls_keys(t);
        if !https {
            if let Some((key, span)) = keys.into_iter().next() {
                return self.err(
                    span,
                    &format!("target.{key}"),
                    "only applies to an https:// target url",
                );
            }
            return Ok(TlsSpec::default());
        }
        let dir = self.src.dir();
        let path =
            |p: &Option<Spanned<PathBuf>>| p.as_ref().map(|p| relative_to(&dir, p.get_ref()));
        let spec = TlsSpec {
            cacert: path(&t.cacert),
            insecure: t.insecure.as_ref().is_some_and(|i| *i.get_ref()),
            cert: path(&t.cert),
            key: path(&t.key),
            resume: t.tls_resume.as_ref().is_none_or(|r| *r.get_ref()),
        };
        if let Err(e) = spec.config() {
            let setting = e.setting();
            let span = tls_keys(t)
                .into_iter()
                .find(|(k, _)| *k == setting)
                .map_or_else(|| self.sc.target.span(), |(_, s)| s);
            return self.err(span, &format!("target.{setting}"), e.to_string());
        }
        Ok(spec)
    }
}

impl Expander<'_> {
    /// `tls = true` (in `[defaults]` or a campaign) asks loadgen to serve the service it starts
    /// over HTTPS: the bundled polymetrie, or a `command` that says how (`[service]
    /// tls_args`). A service loadgen does not start is reached as its URL says.
    pub(super) fn served_tls(
        &self,
        target: &Target,
        steps: &[Step],
        searches: &[SearchPlan],
    ) -> Result<(), ScenarioError> {
        let any = steps.iter().any(|s| s.topology.tls)
            || searches
                .iter()
                .flat_map(|s| &s.configurations)
                .any(|c| c.topology.tls);
        if !any {
            return Ok(());
        }
        let why = match target {
            Target::Local(_) => return Ok(()),
            Target::Command(c) if !c.tls_args.is_empty() => return Ok(()),
            Target::Command(_) => {
                "needs [service] tls_args: the arguments that make your service serve HTTPS \
                 with {tls_cert} and {tls_key}, e.g. [\"--certfile\", \"{tls_cert}\", \
                 \"--keyfile\", \"{tls_key}\"]"
            }
            Target::Url { .. } => {
                "only applies to a service loadgen starts (a url target is https:// by its url)"
            }
            Target::Kubernetes(_) => {
                "only applies to a service loadgen starts (a cluster's Service is https:// by \
                 service_url)"
            }
        };
        // The campaign that turned it on, or `[defaults]` when no campaign sets it.
        let set_by = self
            .sc
            .campaigns
            .iter()
            .find(|c| c.get_ref().overrides.tls == Some(true));
        match set_by {
            Some(c) => self.err(c.span(), "campaign.tls", why),
            None => {
                let span = self.sc.campaigns.first().map_or(0..0, |c| c.span());
                self.err(span, "defaults.tls", why)
            }
        }
    }
}

impl Expander<'_> {
    /// A sharded step on a cluster runs its generators as pods, which cannot read files of
    /// this machine: the TLS keys that name files (`cacert`, `cert`, `key`) are refused there
    /// rather than failing in every pod. The system's roots and `insecure` need no file.
    pub(super) fn cluster_tls_files(
        &self,
        target: &Target,
        steps: &[Step],
        searches: &[SearchPlan],
    ) -> Result<(), ScenarioError> {
        let sharded = steps.iter().any(|s| s.generators.count > 1)
            || searches.iter().any(|s| s.settings.generators.count > 1);
        if !matches!(target, Target::Kubernetes(_)) || !sharded {
            return Ok(());
        }
        let t = self.sc.target.get_ref();
        let files = tls_keys(t)
            .into_iter()
            .find(|(k, _)| matches!(*k, "cacert" | "cert" | "key"));
        match files {
            Some((key, span)) => self.err(
                span,
                &format!("target.{key}"),
                "names a file of this machine, which the generator pods of a sharded cluster \
                 step cannot read: run one generator, or trust the system's roots",
            ),
            None => Ok(()),
        }
    }
}

/// The TLS keys set in `[target]`, in file order of the struct, with their spans.
fn tls_keys(t: &TargetSpec) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    if let Some(v) = &t.cacert {
        out.push(("cacert", v.span()));
    }
    if let Some(v) = &t.insecure {
        out.push(("insecure", v.span()));
    }
    if let Some(v) = &t.cert {
        out.push(("cert", v.span()));
    }
    if let Some(v) = &t.key {
        out.push(("key", v.span()));
    }
    if let Some(v) = &t.tls_resume {
        out.push(("tls_resume", v.span()));
    }
    out
}

fn relative_to(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}
