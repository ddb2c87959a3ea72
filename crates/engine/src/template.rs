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

/// Errors building or expanding a request template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read body file {0}: {1}")]
    BodyFile(String, std::io::Error),
    #[error("bad header {0:?}: expected `Name: value`")]
    HeaderSyntax(String),
    #[error("bad header {0:?}: {1}")]
    Header(String, String),
    #[error("bad request path {0:?}: {1}")]
    Path(String, String),
}

/// A body as written on the command line or in a scenario: `@FILE` reads the file (a relative
/// path is relative to `base_dir`), `@@…` is a literal body starting with `@`, anything else is
/// the body itself. The one reader of body files (ARCHITECTURE.md rule 13).
pub fn load_body(arg: &str, base_dir: &std::path::Path) -> Result<Bytes, TemplateError> {
    if let Some(literal) = arg.strip_prefix("@@") {
        return Ok(Bytes::from(format!("@{literal}")));
    }
    match arg.strip_prefix('@') {
        Some(file) => {
            let p = std::path::Path::new(file.trim());
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            };
            std::fs::read(&full)
                .map(Bytes::from)
                .map_err(|e| TemplateError::BodyFile(full.display().to_string(), e))
        }
        None => Ok(Bytes::copy_from_slice(arg.as_bytes())),
    }
}

/// A header argument `Name: value` (also `Name:value`).
pub fn parse_header(arg: &str) -> Result<(String, String), TemplateError> {
    let (k, v) = arg
        .split_once(':')
        .ok_or_else(|| TemplateError::HeaderSyntax(arg.to_string()))?;
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty() {
        return Err(TemplateError::HeaderSyntax(arg.to_string()));
    }
    Ok((k.to_string(), v.to_string()))
}

/// One piece of a text with placeholders.
#[derive(Debug, Clone)]
enum Piece {
    Lit(Bytes),
    Seq,
    Rand,
}

/// A path or body split at its `{seq}` / `{rand}` placeholders, so expansion is a concatenation
/// (and free when there is no placeholder: the literal is shared, not copied).
#[derive(Debug, Clone)]
pub struct Pattern {
    pieces: Vec<Piece>,
    /// Sum of the literal lengths, to size the buffer once.
    literal_len: usize,
}

impl Pattern {
    /// Splits `text` at its placeholders.
    pub fn parse(text: &Bytes) -> Self {
        let mut pieces = Vec::new();
        let mut lit_start = 0;
        let mut i = 0;
        let b = text.as_ref();
        while i < b.len() {
            let hit = if b[i..].starts_with(b"{seq}") {
                Some((Piece::Seq, 5))
            } else if b[i..].starts_with(b"{rand}") {
                Some((Piece::Rand, 6))
            } else {
                None
            };
            match hit {
                Some((p, len)) => {
                    if i > lit_start {
                        pieces.push(Piece::Lit(text.slice(lit_start..i)));
                    }
                    pieces.push(p);
                    i += len;
                    lit_start = i;
                }
                None => i += 1,
            }
        }
        if lit_start < b.len() {
            pieces.push(Piece::Lit(text.slice(lit_start..)));
        }
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(l) => l.len(),
                _ => 0,
            })
            .sum();
        Self {
            pieces,
            literal_len,
        }
    }

    /// True when the text has a placeholder.
    pub fn is_dynamic(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Lit(_)))
    }

    /// The text for request `seq`; `rand` is the request's random value.
    pub fn expand(&self, seq: u64, rand: u64) -> Bytes {
        match self.pieces.as_slice() {
            [] => Bytes::new(),
            [Piece::Lit(l)] => l.clone(),
            pieces => {
                use std::io::Write as _;
                let mut out = Vec::with_capacity(self.literal_len + 20 * pieces.len());
                for p in pieces {
                    match p {
                        Piece::Lit(l) => out.extend_from_slice(l),
                        Piece::Seq => {
                            let _ = write!(out, "{seq}");
                        }
                        Piece::Rand => {
                            let _ = write!(out, "{rand}");
                        }
                    }
                }
                Bytes::from(out)
            }
        }
    }
}

/// A template checked once and ready to produce requests cheaply: method and headers parsed,
/// path and body split at their placeholders. Header values are not expanded.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub method: Method,
    pub headers: hyper::HeaderMap,
    path: Pattern,
    body: Pattern,
    /// `METHOD ` — the start of the request line.
    head_start: Bytes,
    /// ` HTTP/1.1\r\n` and every header line, `content-length` excepted.
    head_rest: Bytes,
    /// The whole request when neither path nor body has a placeholder: shared, never copied.
    static_wire: Option<Bytes>,
    rand_state: u64,
}

impl RequestTemplate {
    /// Checks the template and prepares it; `host` is the `Host` header value (`ip:port`),
    /// added unless the template sets its own.
    pub fn compile(&self, host: &str) -> Result<CompiledTemplate, TemplateError> {
        use hyper::header::{HeaderName, HeaderValue};
        let mut headers = hyper::HeaderMap::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| TemplateError::Header(format!("{k}: {v}"), e.to_string()))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| TemplateError::Header(format!("{k}: {v}"), e.to_string()))?;
            headers.append(name, value);
        }
        if !headers.contains_key(hyper::header::HOST) {
            let value = HeaderValue::from_str(host)
                .map_err(|e| TemplateError::Header(format!("host: {host}"), e.to_string()))?;
            headers.insert(hyper::header::HOST, value);
        }
        let path_text = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        if !path_text.starts_with('/') {
            return Err(TemplateError::Path(
                path_text.to_string(),
                "must start with /".into(),
            ));
        }
        let path = Pattern::parse(&Bytes::copy_from_slice(path_text.as_bytes()));
        // Expanding once proves every later expansion parses (placeholders expand to digits).
        let _probe = hyper::Uri::from_maybe_shared(path.expand(0, 0))
            .map_err(|e| TemplateError::Path(path_text.to_string(), e.to_string()))?;
        let body = Pattern::parse(&self.body);
        let head_start = Bytes::from(format!("{} ", self.method));
        let mut rest = b" HTTP/1.1\r\n".to_vec();
        for (name, value) in &headers {
            // The engine frames every body itself; a template's own framing would contradict it.
            if name == hyper::header::CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING {
                continue;
            }
            rest.extend_from_slice(name.as_str().as_bytes());
            rest.extend_from_slice(b": ");
            rest.extend_from_slice(value.as_bytes());
            rest.extend_from_slice(b"\r\n");
        }
        let mut t = CompiledTemplate {
            method: self.method.clone(),
            headers,
            static_wire: None,
            head_start,
            head_rest: Bytes::from(rest),
            path,
            body,
            rand_state: 0x9E37_79B9_7F4A_7C15,
        };
        if !t.path.is_dynamic() && !t.body.is_dynamic() {
            t.static_wire = Some(t.render(0, 0));
        }
        Ok(t)
    }
}

impl CompiledTemplate {
    /// The request with sequence number `seq`, as the bytes that go on the wire (HTTP/1.1,
    /// `content-length` framing). Free when the template has no placeholder.
    pub fn wire(&mut self, seq: u64) -> Bytes {
        if let Some(w) = &self.static_wire {
            return w.clone();
        }
        let rand = self.next_rand();
        self.render(seq, rand)
    }

    /// The path and the body of request `seq`, apart (as HTTP/2 sends them); the same
    /// expansion as [`CompiledTemplate::wire`].
    pub fn parts(&mut self, seq: u64) -> (Bytes, Bytes) {
        let rand = if self.path.is_dynamic() || self.body.is_dynamic() {
            self.next_rand()
        } else {
            0
        };
        (self.path.expand(seq, rand), self.body.expand(seq, rand))
    }

    fn render(&self, seq: u64, rand: u64) -> Bytes {
        use std::io::Write as _;
        let (path, body) = (self.path.expand(seq, rand), self.body.expand(seq, rand));
        let mut out = Vec::with_capacity(
            self.head_start.len() + path.len() + self.head_rest.len() + 24 + body.len(),
        );
        out.extend_from_slice(&self.head_start);
        out.extend_from_slice(&path);
        out.extend_from_slice(&self.head_rest);
        // A body-less GET or HEAD carries no length; anything else always does (RFC 9110 8.6).
        if !(body.is_empty() && matches!(self.method, Method::GET | Method::HEAD)) {
            let _ = write!(out, "content-length: {}\r\n", body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    /// splitmix64: cheap, and `{rand}` only needs to spread keys, not to be unpredictable.
    fn next_rand(&mut self) -> u64 {
        self.rand_state = self.rand_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rand_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(path: &str, body: &str) -> RequestTemplate {
        RequestTemplate {
            method: Method::POST,
            path: path.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn placeholders_expand_per_request() {
        let mut c = template("/p/{seq}?r={rand}", r#"{"url":"/x/{seq}"}"#)
            .compile("127.0.0.1:1")
            .unwrap();
        let parse = |w: &Bytes| {
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut req = httparse::Request::new(&mut headers);
            let head = match req.parse(w).unwrap() {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => panic!("incomplete request {w:?}"),
            };
            let path = req.path.unwrap().to_string();
            let host = req
                .headers
                .iter()
                .find(|h| h.name == "host")
                .map(|h| String::from_utf8_lossy(h.value).into_owned());
            (req.method.unwrap().to_string(), path, host, w.slice(head..))
        };
        let (method, path, host, body) = parse(&c.wire(42));
        assert_eq!(method, "POST");
        assert!(path.starts_with("/p/42?r="), "{path}");
        assert_eq!(host.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(&body[..], br#"{"url":"/x/42"}"#);
        let (_, path2, _, _) = parse(&c.wire(43));
        assert_ne!(path, path2, "seq and rand must change");
        // HTTP/2 takes the same expansion apart.
        let (path, body) = c.parts(44);
        assert!(path.starts_with(b"/p/44?r="), "{path:?}");
        assert_eq!(&body[..], br#"{"url":"/x/44"}"#);
        let mut fixed = template("/static", "").compile("h").unwrap();
        assert_eq!(
            fixed.parts(9),
            (Bytes::from_static(b"/static"), Bytes::new())
        );
    }

    #[test]
    fn static_template_shares_its_body() {
        let t = template("/api/clicks", r#"{"site":"demo"}"#);
        let body = Pattern::parse(&t.body);
        assert!(!body.is_dynamic());
        assert_eq!(body.expand(1, 2), t.body);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(parse_header("nocolon").is_err());
        let here = std::path::Path::new(".");
        assert!(load_body("@/nonexistent/definitely/not/here", here).is_err());
        assert_eq!(load_body("@@x", here).unwrap(), Bytes::from("@x"));
        assert_eq!(load_body("x", here).unwrap(), Bytes::from("x"));
        assert!(template("no-slash", "").compile("h").is_err());
        let mut t = template("/", "");
        t.headers = vec![("bad header".into(), "v".into())];
        assert!(t.compile("h").is_err());
    }
}
