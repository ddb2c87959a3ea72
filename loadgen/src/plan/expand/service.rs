//! A user's own service (`[service] command`), its `[[dependency]]`s and the `[counter]`:
//! every placeholder parsed, every program found, every polymetrie-only key refused, each error
//! naming the file, line, column and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::Expander;
use crate::external;
use crate::plan::counter::{Counter, MetricSelector};
use crate::plan::service::{
    Command, CommandService, Dependency, Ready, Scope, READY_TIMEOUT, STOP_GRACE,
};
use crate::plan::template::{Context, Template};
use crate::plan::{PrometheusMode, Target};
use crate::scenario::{BalanceSpec, CounterSpec, ReadySpec, ScenarioError, ScopeSpec, ServiceSpec};
use loadgen_engine::Balance;

impl Expander<'_> {
    /// `[service]` with a `command`: the user's service.
    pub(super) fn command_target(
        &self,
        svc: &Spanned<ServiceSpec>,
        argv: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Target, ScenarioError> {
        let s = svc.get_ref();
        self.no_polymetrie_keys(svc)?;
        self.no_store(svc)?;
        let dependencies = self.dependencies()?;
        let names: Vec<&str> = dependencies.iter().map(|d| d.name.as_str()).collect();
        let command = self.command(
            argv,
            &s.env,
            s.ready.as_ref(),
            s.stop_grace.map(|d| d.0),
            "service",
            Context::Replica,
            &names,
        )?;
        let balance = match s.balance.as_ref().map(|b| *b.get_ref()) {
            Some(BalanceSpec::Connection) => Balance::Connection,
            Some(BalanceSpec::Request) | None => Balance::Request,
        };
        let mut tls_args = Vec::new();
        for arg in s.tls_args.iter().flat_map(|a| a.get_ref()) {
            tls_args.push(self.template(arg, "service.tls_args", Context::TlsArgs, &names)?);
        }
        Ok(Target::Command(CommandService {
            command,
            balance,
            tls_args,
            dependencies,
            scrape: None,
        }))
    }

    /// With a `command`, the keys that configure the bundled polymetrie are mistakes.
    fn no_polymetrie_keys(&self, svc: &Spanned<ServiceSpec>) -> Result<(), ScenarioError> {
        let s = svc.get_ref();
        let set = [
            ("cost", s.cost.is_some()),
            ("store", s.store.is_some()),
            ("sites", !s.sites.is_empty()),
            ("workers", s.workers.is_some()),
            ("max_inflight", s.max_inflight.is_some()),
            ("binary", s.binary.is_some()),
            ("extra_args", !s.extra_args.is_empty()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
            return self.err(
                svc.span(),
                &format!("service.{key}"),
                "only applies to the bundled polymetrie (a [service] without `command`); \
                 configure your own service through its command and env",
            );
        }
        if let Some(site) = &self.sc.counter_site {
            return self.err(
                site.span(),
                "counter_site",
                "is polymetrie's counter preset; with service.command use [counter] \
                 (metric, http or promql)",
            );
        }
        Ok(())
    }

    /// `store` picks polymetrie's counter (memory or a Redis loadgen starts); a user's service
    /// keeps its state where its command says, so a `store` anywhere is a mistake.
    fn no_store(&self, svc: &Spanned<ServiceSpec>) -> Result<(), ScenarioError> {
        let msg = "only applies to the bundled polymetrie; a service.command keeps its state \
                   where its command says (start a store as a [[dependency]])";
        if self.sc.defaults.store.is_some() {
            return self.err(svc.span(), "defaults.store", msg);
        }
        for c in &self.sc.campaigns {
            let spec = c.get_ref();
            if spec.overrides.store.is_some() {
                return self.err(c.span(), "campaign.store", msg);
            }
            for step in spec.steps.iter().flatten() {
                if step.get_ref().store.is_some() {
                    return self.err(step.span(), "campaign.step.store", msg);
                }
            }
            if let Some(m) = spec.matrix.as_ref().filter(|m| m.get_ref().store.is_some()) {
                return self.err(m.span(), "campaign.matrix.store", msg);
            }
        }
        Ok(())
    }

    /// The `[[dependency]]` list, each using only the ports of those declared before it.
    fn dependencies(&self) -> Result<Vec<Dependency>, ScenarioError> {
        let mut out: Vec<Dependency> = Vec::new();
        for d in &self.sc.dependencies {
            let spec = d.get_ref();
            let name = spec.name.get_ref().trim();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return self.err(
                    spec.name.span(),
                    "dependency.name",
                    format!("expected a name of letters, digits, `_` or `-`, got \"{name}\""),
                );
            }
            if out.iter().any(|o| o.name == name) {
                return self.err(
                    spec.name.span(),
                    "dependency.name",
                    format!("\"{name}\" is declared twice"),
                );
            }
            let before: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
            let command = self.command(
                &spec.command,
                &spec.env,
                spec.ready.as_ref(),
                spec.stop_grace.map(|g| g.0),
                "dependency",
                Context::Dependency,
                &before,
            )?;
            let scope = match spec.scope.as_ref().map(|s| *s.get_ref()) {
                Some(ScopeSpec::Campaign) => Scope::Campaign,
                Some(ScopeSpec::Step) | None => Scope::Step,
            };
            out.push(Dependency {
                name: name.to_string(),
                command,
                scope,
            });
        }
        Ok(out)
    }

    /// A command's argv, env and readiness, checked.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &self,
        argv: &Spanned<Vec<Spanned<String>>>,
        env: &BTreeMap<String, Spanned<String>>,
        ready: Option<&Spanned<ReadySpec>>,
        stop_grace: Option<std::time::Duration>,
        table: &str,
        context: Context,
        dependencies: &[&str],
    ) -> Result<Command, ScenarioError> {
        let key = format!("{table}.command");
        if argv.get_ref().is_empty() {
            return self.err(argv.span(), &key, "expected [program, args…], got []");
        }
        let mut parsed = Vec::new();
        for arg in argv.get_ref() {
            parsed.push(self.template(arg, &key, context, dependencies)?);
        }
        self.check_program(&argv.get_ref()[0], &parsed[0], &key)?;
        let mut vars = Vec::new();
        for (name, value) in env {
            let key = format!("{table}.env.{name}");
            vars.push((
                name.clone(),
                self.template(value, &key, context, dependencies)?,
            ));
        }
        Ok(Command {
            argv: parsed,
            env: vars,
            // Absolute: the child starts in it, and a relative program path must not be
            // resolved twice.
            cwd: std::path::absolute(self.src.dir()).unwrap_or_else(|_| self.src.dir()),
            ready: self.ready(ready, table)?,
            stop_grace: stop_grace.unwrap_or(STOP_GRACE),
        })
    }

    fn template(
        &self,
        value: &Spanned<String>,
        key: &str,
        context: Context,
        dependencies: &[&str],
    ) -> Result<Template, ScenarioError> {
        let t = Template::parse(value.get_ref(), context)
            .or_else(|e| self.err(value.span(), key, e))?;
        for p in t.placeholders() {
            use crate::plan::template::Placeholder as P;
            if let P::DependencyPort(n) | P::DependencyDir(n) = p {
                if !dependencies.contains(&n.as_str()) {
                    let known = if dependencies.is_empty() {
                        "none is declared before it".to_string()
                    } else {
                        format!("declared before it: {}", dependencies.join(", "))
                    };
                    return self.err(
                        value.span(),
                        key,
                        format!("{p} names no [[dependency]] ({known})"),
                    );
                }
            }
        }
        Ok(t)
    }

    /// The program must exist: a path (relative to the scenario's folder) or a name on PATH.
    fn check_program(
        &self,
        written: &Spanned<String>,
        program: &Template,
        key: &str,
    ) -> Result<(), ScenarioError> {
        let Some(text) = program.as_literal() else {
            return Ok(()); // a program chosen by a placeholder is found when it starts
        };
        let found = if text.contains('/') {
            let path = resolve(&self.src.dir(), &text);
            is_executable(&path).then_some(path)
        } else {
            external::find_on_path(&text)
        };
        match found {
            Some(_) => Ok(()),
            None => self.err(
                written.span(),
                key,
                format!(
                    "program \"{text}\" not found{}",
                    if text.contains('/') {
                        " or not executable (a relative path is from the scenario's folder)"
                    } else {
                        " on PATH"
                    }
                ),
            ),
        }
    }

    fn ready(
        &self,
        spec: Option<&Spanned<ReadySpec>>,
        table: &str,
    ) -> Result<Ready, ScenarioError> {
        let Some(spec) = spec else {
            return Ok(Ready::Http {
                path: "/".into(),
                timeout: READY_TIMEOUT,
            });
        };
        let r = spec.get_ref();
        let timeout = r.timeout.as_ref().map_or(READY_TIMEOUT, |t| t.get_ref().0);
        let tcp = r.tcp.as_ref().is_some_and(|t| *t.get_ref());
        match (&r.path, tcp) {
            (Some(p), true) => self.err(
                p.span(),
                &format!("{table}.ready"),
                "expected either path (HTTP) or tcp = true, not both",
            ),
            (None, true) => Ok(Ready::Tcp { timeout }),
            (Some(p), false) if !p.get_ref().starts_with('/') => self.err(
                p.span(),
                &format!("{table}.ready.path"),
                format!("expected a path starting with /, got \"{}\"", p.get_ref()),
            ),
            (Some(p), false) => Ok(Ready::Http {
                path: p.get_ref().clone(),
                timeout,
            }),
            (None, false) => Ok(Ready::Http {
                path: "/".into(),
                timeout,
            }),
        }
    }

    /// The business counter: `[counter]`, polymetrie's `counter_site`, or none.
    pub(super) fn counter(
        &self,
        target: &Target,
        prometheus: Option<&PrometheusMode>,
    ) -> Result<Counter, ScenarioError> {
        let Some(c) = &self.sc.counter else {
            return match target {
                Target::Command(_) => Ok(Counter::None),
                Target::Url { .. } if self.sc.counter_site.is_none() => Ok(Counter::None),
                _ => self.counter_site(target).map(Counter::Site),
            };
        };
        if let Some(site) = &self.sc.counter_site {
            return self.err(
                site.span(),
                "counter_site",
                "expected either counter_site (polymetrie's preset) or [counter], not both",
            );
        }
        self.counter_spec(c, prometheus)
    }

    fn counter_spec(
        &self,
        c: &Spanned<CounterSpec>,
        prometheus: Option<&PrometheusMode>,
    ) -> Result<Counter, ScenarioError> {
        let s = c.get_ref();
        let kinds = [s.metric.is_some(), s.http.is_some(), s.promql.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return self.err(
                c.span(),
                "counter",
                "expected exactly one of metric (with metrics_url), http (with json_pointer) \
                 or promql",
            );
        }
        let stray = |key: &str, v: &Option<Spanned<String>>| match v {
            Some(v) => self.err(v.span(), &format!("counter.{key}"), "does not apply here"),
            None => Ok(()),
        };
        if let Some(metric) = &s.metric {
            stray("json_pointer", &s.json_pointer)?;
            let selector = MetricSelector::parse(metric.get_ref())
                .or_else(|e| self.err(metric.span(), "counter.metric", e))?;
            let Some(url) = &s.metrics_url else {
                return self.err(
                    c.span(),
                    "counter.metrics_url",
                    "required key is missing (where each replica's metrics are, e.g. \
                     \"http://127.0.0.1:{metrics_port}/metrics\")",
                );
            };
            let url = Template::parse(url.get_ref(), Context::MetricsUrl)
                .or_else(|e| self.err(url.span(), "counter.metrics_url", e))?;
            return Ok(Counter::Metric { selector, url });
        }
        stray("metrics_url", &s.metrics_url)?;
        if let Some(path) = &s.http {
            if !path.get_ref().starts_with('/') {
                return self.err(
                    path.span(),
                    "counter.http",
                    "expected a path starting with /",
                );
            }
            let Some(pointer) = &s.json_pointer else {
                return self.err(
                    c.span(),
                    "counter.json_pointer",
                    "required key is missing (where the count is in the JSON answer, e.g. \"/clicks\")",
                );
            };
            let p = pointer.get_ref();
            if !(p.is_empty() || p.starts_with('/')) {
                return self.err(
                    pointer.span(),
                    "counter.json_pointer",
                    format!("expected a JSON pointer such as \"/clicks\" (RFC 6901), got \"{p}\""),
                );
            }
            return Ok(Counter::Http {
                path: path.get_ref().clone(),
                pointer: p.clone(),
            });
        }
        stray("json_pointer", &s.json_pointer)?;
        self.promql_counter(s.promql.as_ref().expect("one kind is set"), prometheus)
    }

    /// `[counter] promql`, through the Prometheus of `[prometheus]`.
    fn promql_counter(
        &self,
        q: &Spanned<String>,
        prometheus: Option<&PrometheusMode>,
    ) -> Result<Counter, ScenarioError> {
        let query = q.get_ref().clone();
        match prometheus {
            Some(PrometheusMode::Url(url)) => Ok(Counter::Promql {
                query,
                url: Some(url.clone()),
            }),
            // Which replicas the managed one scrapes is checked with `[prometheus] scrape`.
            Some(PrometheusMode::Managed) => Ok(Counter::Promql { query, url: None }),
            None => self.err(
                q.span(),
                "counter.promql",
                "needs [prometheus]: mode = \"url\" (the Prometheus that already scrapes your \
                 service) or mode = \"managed\" (one loadgen starts to scrape your replicas)",
            ),
        }
    }
}

fn resolve(dir: &Path, program: &str) -> PathBuf {
    let p = Path::new(program);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
