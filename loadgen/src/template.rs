//! Request templates: method, path, headers and body of the requests an attack sends, with
//! `{seq}` (the request's sequence number) and `{rand}` placeholders so URLs can be spread.

use bytes::Bytes;
use hyper::Method;

/// What every request of a step looks like; placeholders are expanded per request.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub method: Method,
    /// Path and query, e.g. `/api/clicks`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}
