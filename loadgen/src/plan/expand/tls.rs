//! The TLS keys of `[target]` (`cacert`, `insecure`, `cert`, `key`, `tls_resume`) for an
//! `https://` target URL: paths made relative to the scenario file, and the whole setup built
//! once by the engine's own [`TlsSpec::config`] (the one check, ARCHITECTURE.md rule 13), so a
//! CA file that does not parse or a key without its certificate is an error at its key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::Expander;
use crate::plan::Target;
use crate::scenario::{ScenarioError, TargetSpec};
use loadgen_engine::target::BaseUrl;
use loadgen_engine::tls::TlsSpec;

impl Expander<'_> {
    /// The TLS settings of the plan's target (the default for a plain-HTTP one, which must
    /// not set any TLS key).
    pub(super) fn tls(&self, target: &Target) -> Result<TlsSpec, ScenarioError> {
        let t = self.sc.target.get_ref();
        // Only a url target can be https (a kubernetes Service URL is refused as one).
        let url = match target {
            Target::Url { base } => Some(base.as_str()),
            Target::Kubernetes(_) | Target::Local(_) | Target::Command(_) => None,
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
