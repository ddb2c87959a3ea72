//! The business counter of a plan: what the service itself says it did, to reconcile with what
//! the generator saw. polymetrie's site total is one preset; any service can name a Prometheus
//! metric its replicas export, a JSON value an endpoint returns, or a PromQL query — or none,
//! and then every verdict rests on the client's view alone.

use std::fmt;

use super::template::Template;

/// Where the counter is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Counter {
    /// polymetrie's preset: the site's total from `/api/sites/{site}/stats`, and each replica's
    /// `polymetrie_clicks_total{site}`.
    Site(String),
    /// A metric in the Prometheus text exposition of every replica, summed.
    Metric {
        selector: MetricSelector,
        /// Per replica (placeholders `{port}`, `{metrics_port}`, `{replica}`, `{pod_ip}`).
        url: Template,
    },
    /// A JSON value one GET through the service returns.
    Http { path: String, pointer: String },
    /// An instant PromQL query (its result summed) to the Prometheus at `url`, which scrapes
    /// the service (`[prometheus] mode = "url"`); `None`: the managed Prometheus loadgen
    /// starts for the run, whose port is known only then.
    Promql { query: String, url: Option<String> },
    /// No counter: the counted ratio is not computed.
    None,
}

impl Counter {
    /// The polymetrie site, for the probes that read polymetrie's own series.
    pub fn site(&self) -> Option<&str> {
        match self {
            Counter::Site(s) => Some(s),
            _ => None,
        }
    }

    /// This counter with a managed Prometheus's URL filled in (`managed`: the running one, if
    /// any); every other counter as it is.
    pub fn resolved(&self, managed: Option<&str>) -> std::borrow::Cow<'_, Counter> {
        match (self, managed) {
            (Counter::Promql { query, url: None }, Some(url)) => {
                std::borrow::Cow::Owned(Counter::Promql {
                    query: query.clone(),
                    url: Some(url.to_string()),
                })
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// True when a counter is configured (even if a reading may fail).
    pub fn is_some(&self) -> bool {
        !matches!(self, Counter::None)
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counter::Site(s) => write!(f, "site \"{s}\" (polymetrie)"),
            Counter::Metric { selector, url } => write!(f, "{selector} from {url}"),
            Counter::Http { path, pointer } => write!(f, "GET {path} at {pointer}"),
            Counter::Promql {
                query,
                url: Some(url),
            } => write!(f, "promql {query} at {url}"),
            Counter::Promql { query, url: None } => {
                write!(f, "promql {query} at the managed Prometheus")
            }
            Counter::None => f.write_str("none"),
        }
    }
}

/// `name` or `name{label="value",…}`: the samples of one metric whose labels include these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSelector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl MetricSelector {
    /// Parses a selector; the error says what was expected.
    pub fn parse(text: &str) -> Result<MetricSelector, SelectorError> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(SelectorError::Name(text.into()));
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| SelectorError::Unclosed(text.into()))?;
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| SelectorError::Label(pair.into()))?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| SelectorError::Unquoted(pair.into()))?;
                labels.push((k.trim().to_string(), v.to_string()));
            }
        }
        Ok(MetricSelector {
            name: name.to_string(),
            labels,
        })
    }
}

/// Why a text is not a metric selector; each says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "expected a metric name such as `http_requests_total` or \
         `http_requests_total{{code=\"200\"}}`, got `{0}`"
    )]
    Name(String),
    #[error("expected `}}` at the end of `{0}`")]
    Unclosed(String),
    #[error("expected label=\"value\", got `{0}`")]
    Label(String),
    #[error("expected a quoted label value in `{0}`")]
    Unquoted(String),
}

impl fmt::Display for MetricSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_has_a_name_and_optional_labels() {
        let s = MetricSelector::parse(r#"http_requests_total{handler="/-/healthy", code="200"}"#)
            .unwrap();
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(
            s.labels,
            vec![
                ("handler".to_string(), "/-/healthy".to_string()),
                ("code".to_string(), "200".to_string())
            ]
        );
        assert_eq!(
            s.to_string(),
            r#"http_requests_total{handler="/-/healthy",code="200"}"#
        );
        assert_eq!(MetricSelector::parse("up").unwrap().labels, vec![]);
        for bad in ["", "1x", "a{b}", "a{b=c}", "a{b=\"c\""] {
            assert!(MetricSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
