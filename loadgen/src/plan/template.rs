//! Placeholders in a user's command line, environment and URLs (`{port}`, `{metrics_port}`,
//! `{replica}`, `{dir}`, `{pod_ip}`, `{dependency.NAME.port}`, `{dependency.NAME.dir}`, and
//! `{tls_cert}`, `{tls_key}` in the arguments that turn a service's TLS on),
//! parsed once at expansion so a misspelt one is a scenario error with its position, and
//! filled in by the deployer and the probes from the [`Values`] they know. `{{` and `}}` are
//! literal braces.

use std::fmt;
use std::path::{Path, PathBuf};

/// One placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// The replica's (or dependency's) traffic port, chosen free by loadgen.
    Port,
    /// A second free port per replica, for its metrics.
    MetricsPort,
    /// The replica's index, from 0.
    Replica,
    /// The replica's (or dependency's) own folder in the run's output.
    Dir,
    /// A cluster pod's IP address.
    PodIp,
    /// The port of the dependency named so.
    DependencyPort(String),
    /// The folder of the dependency named so.
    DependencyDir(String),
    /// The server certificate chain (PEM) loadgen made for the run (`tls = true` steps).
    TlsCert,
    /// That certificate's private key (PEM).
    TlsKey,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Placeholder> {
        Some(match name {
            "port" => Placeholder::Port,
            "metrics_port" => Placeholder::MetricsPort,
            "replica" => Placeholder::Replica,
            "dir" => Placeholder::Dir,
            "pod_ip" => Placeholder::PodIp,
            "tls_cert" => Placeholder::TlsCert,
            "tls_key" => Placeholder::TlsKey,
            _ => {
                let rest = name.strip_prefix("dependency.")?;
                let (dep, field) = rest.rsplit_once('.')?;
                match field {
                    "port" => Placeholder::DependencyPort(dep.to_string()),
                    "dir" => Placeholder::DependencyDir(dep.to_string()),
                    _ => return None,
                }
            }
        })
    }

    /// Its kind, for the allowed lists (a dependency placeholder without its name).
    fn kind(&self) -> &'static str {
        match self {
            Placeholder::Port => "port",
            Placeholder::MetricsPort => "metrics_port",
            Placeholder::Replica => "replica",
            Placeholder::Dir => "dir",
            Placeholder::PodIp => "pod_ip",
            Placeholder::DependencyPort(_) => "dependency.NAME.port",
            Placeholder::DependencyDir(_) => "dependency.NAME.dir",
            Placeholder::TlsCert => "tls_cert",
            Placeholder::TlsKey => "tls_key",
        }
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::DependencyPort(d) => write!(f, "{{dependency.{d}.port}}"),
            Placeholder::DependencyDir(d) => write!(f, "{{dependency.{d}.dir}}"),
            other => write!(f, "{{{}}}", other.kind()),
        }
    }
}

/// Where a template is used, which decides the placeholders it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A replica's argv or env.
    Replica,
    /// The arguments a replica gets in a `tls = true` step (`[service] tls_args`): a
    /// replica's placeholders and the run's certificate and key.
    TlsArgs,
    /// A dependency's argv or env.
    Dependency,
    /// The counter's metrics URL, read per replica (or per pod).
    MetricsUrl,
}

impl Context {
    fn allows(self, p: &Placeholder) -> bool {
        use Placeholder as P;
        match self {
            Context::Replica => !matches!(p, P::PodIp | P::TlsCert | P::TlsKey),
            Context::TlsArgs => !matches!(p, P::PodIp),
            Context::Dependency => matches!(
                p,
                P::Port | P::Dir | P::DependencyPort(_) | P::DependencyDir(_)
            ),
            Context::MetricsUrl => matches!(p, P::Port | P::MetricsPort | P::Replica | P::PodIp),
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Context::Replica => {
                "{port}, {metrics_port}, {replica}, {dir}, {dependency.NAME.port}, {dependency.NAME.dir}"
            }
            Context::TlsArgs => {
                "{tls_cert}, {tls_key}, {port}, {metrics_port}, {replica}, {dir}, \
                 {dependency.NAME.port}, {dependency.NAME.dir}"
            }
            Context::Dependency => "{port}, {dir}, {dependency.NAME.port}, {dependency.NAME.dir}",
            Context::MetricsUrl => "{port}, {metrics_port}, {replica}, {pod_ip}",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Placeholder),
}

/// A string with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a text is not a template; each names the text and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a lone `}}` in \"{0}\" (write `}}}}` for a literal brace)")]
    LoneClose(String),
    #[error("an unclosed `{{` in \"{0}\" (write `{{{{` for a literal brace)")]
    Unclosed(String),
    #[error("unknown placeholder {{{name}}} in \"{text}\"; expected one of {allowed}")]
    Unknown {
        name: String,
        text: String,
        /// The placeholders the context allows.
        allowed: &'static str,
    },
}

/// What the placeholders stand for where a template is filled in; a placeholder whose value is
/// unknown there is left as written (expansion allows only those that will be known).
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub port: Option<u16>,
    pub metrics_port: Option<u16>,
    pub replica: Option<u32>,
    pub dir: Option<PathBuf>,
    pub pod_ip: Option<String>,
    /// `(name, port, dir)` of each dependency started so far.
    pub dependencies: Vec<(String, u16, PathBuf)>,
    /// The run's server certificate and key, in a `tls = true` step.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Template {
    /// Parses `text` for use in `context`; the error names the placeholder and what is allowed.
    pub fn parse(text: &str, context: Context) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text_part = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            text_part.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                text_part.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(TemplateError::LoneClose(text.into()));
            }
            let Some(end) = tail.find('}') else {
                return Err(TemplateError::Unclosed(text.into()));
            };
            let name = &tail[1..end];
            let slot = Placeholder::parse(name)
                .filter(|p| context.allows(p))
                .ok_or_else(|| TemplateError::Unknown {
                    name: name.into(),
                    text: text.into(),
                    allowed: context.allowed(),
                })?;
            if !text_part.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text_part)));
            }
            parts.push(Part::Slot(slot));
            rest = &tail[end + 1..];
        }
        text_part.push_str(rest);
        if !text_part.is_empty() {
            parts.push(Part::Text(text_part));
        }
        Ok(Template { parts })
    }

    /// A template of plain text.
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// The placeholders it holds, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|p| match p {
            Part::Slot(s) => Some(s),
            Part::Text(_) => None,
        })
    }

    /// The text when it holds no placeholder.
    pub fn as_literal(&self) -> Option<String> {
        self.placeholders()
            .next()
            .is_none()
            .then(|| self.render(&Values::default()))
    }

    /// The text with every known value filled in.
    pub fn render(&self, v: &Values) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Slot(p) => match value(p, v) {
                    Some(s) => out.push_str(&s),
                    None => out.push_str(&p.to_string()),
                },
            }
        }
        out
    }
}

fn value(p: &Placeholder, v: &Values) -> Option<String> {
    let dep = |name: &str| v.dependencies.iter().find(|(n, _, _)| n == name);
    let dir = |d: &Path| d.display().to_string();
    match p {
        Placeholder::Port => v.port.map(|x| x.to_string()),
        Placeholder::MetricsPort => v.metrics_port.map(|x| x.to_string()),
        Placeholder::Replica => v.replica.map(|x| x.to_string()),
        Placeholder::Dir => v.dir.as_deref().map(dir),
        Placeholder::PodIp => v.pod_ip.clone(),
        Placeholder::DependencyPort(n) => dep(n).map(|(_, port, _)| port.to_string()),
        Placeholder::DependencyDir(n) => dep(n).map(|(_, _, d)| dir(d)),
        Placeholder::TlsCert => v.tls.as_ref().map(|(c, _)| dir(c)),
        Placeholder::TlsKey => v.tls.as_ref().map(|(_, k)| dir(k)),
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(&t.replace('{', "{{").replace('}', "}}"))?,
                Part::Slot(p) => write!(f, "{p}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let t = Template::parse(
            "--bind=127.0.0.1:{port} --db=:{dependency.pg.port} {{x}} r{replica}",
            Context::Replica,
        )
        .unwrap();
        let v = Values {
            port: Some(8080),
            replica: Some(1),
            dependencies: vec![("pg".into(), 5432, PathBuf::from("/d"))],
            ..Values::default()
        };
        assert_eq!(t.render(&v), "--bind=127.0.0.1:8080 --db=:5432 {x} r1");
        assert_eq!(t.placeholders().count(), 3);
        assert_eq!(
            t.to_string(),
            "--bind=127.0.0.1:{port} --db=:{dependency.pg.port} {{x}} r{replica}"
        );
    }

    #[test]
    fn an_unknown_or_misplaced_placeholder_is_an_error_naming_it() {
        let e = Template::parse("{prot}", Context::Replica)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{prot}") && e.contains("{metrics_port}"), "{e}");
        let e = Template::parse("{replica}", Context::Dependency)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{replica}"), "{e}");
        assert!(Template::parse("{pod_ip}", Context::MetricsUrl).is_ok());
        assert!(Template::parse("{port", Context::Replica).is_err());
        assert!(Template::parse("a}b", Context::Replica).is_err());
    }

    #[test]
    fn a_literal_has_no_placeholder() {
        assert_eq!(
            Template::parse("plain", Context::Replica)
                .unwrap()
                .as_literal(),
            Some("plain".into())
        );
        assert_eq!(
            Template::parse("{dir}/x", Context::Replica)
                .unwrap()
                .as_literal(),
            None
        );
    }
}
