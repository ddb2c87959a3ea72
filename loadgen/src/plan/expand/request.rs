//! `[request]`: method, path, headers and body of every request, checked here so that a bad
//! header or an unreadable body file is an error at its key, not a failure mid-run.

use super::Expander;
use crate::scenario::{RequestSpec, ScenarioError};
use loadgen_engine::template::{self, RequestTemplate};

impl Expander<'_> {
    pub(super) fn request(&self) -> Result<RequestTemplate, ScenarioError> {
        let r = self.sc.request.get_ref();
        let method = match &r.method {
            None => hyper::Method::GET,
            Some(m) => hyper::Method::from_bytes(m.get_ref().trim().as_bytes()).or_else(|_| {
                self.err(
                    m.span(),
                    "request.method",
                    format!(
                        "expected an HTTP method such as \"POST\", got \"{}\"",
                        m.get_ref()
                    ),
                )
            })?,
        };
        let path = r.path.get_ref().trim();
        if !path.starts_with('/') {
            return self.err(
                r.path.span(),
                "request.path",
                format!("expected a path starting with '/', got \"{path}\""),
            );
        }
        let body = match &r.body {
            None => bytes::Bytes::new(),
            Some(b) => template::load_body(b.get_ref(), &self.src.dir()).or_else(|e| {
                self.err(
                    b.span(),
                    "request.body",
                    format!("{e} (relative to the scenario file)"),
                )
            })?,
        };
        Ok(RequestTemplate {
            method,
            path: path.to_string(),
            headers: self.headers(r)?,
            body,
        })
    }

    fn headers(&self, r: &RequestSpec) -> Result<Vec<(String, String)>, ScenarioError> {
        let mut headers = Vec::new();
        for (k, v) in &r.headers {
            let key = format!("request.headers.{k}");
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return self.err(
                    v.span(),
                    &key,
                    format!("expected a valid header name, got \"{k}\""),
                );
            }
            if hyper::header::HeaderValue::from_str(v.get_ref()).is_err() {
                return self.err(
                    v.span(),
                    &key,
                    "expected a header value of visible ASCII characters",
                );
            }
            headers.push((k.clone(), v.get_ref().clone()));
        }
        Ok(headers)
    }
}
