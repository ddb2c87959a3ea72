//! A small HTTP/1.1 client for the service's tests, and readers of its stats and /metrics.

use super::*;

/// One HTTP/1.1 keep-alive connection.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Client { sender })
    }

    /// Sends one request; `Err` when the connection failed (no status was received).
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        self.send(method, path, &[], body)
            .await
            .map(|r| (r.status, r.body))
    }

    /// Sends one request with extra headers and returns the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, hyper::Error> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .sender
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, Bytes) {
        self.request(Method::GET, path, Bytes::new()).await.unwrap()
    }

    pub async fn post(&mut self, path: &str, body: &str) -> (StatusCode, Bytes) {
        self.request(Method::POST, path, body.to_string())
            .await
            .unwrap()
    }

    pub async fn click(&mut self, site: &str, url: &str) -> Result<StatusCode, hyper::Error> {
        let body = serde_json::json!({ "site": site, "url": url }).to_string();
        self.request(Method::POST, "/api/clicks", body)
            .await
            .map(|(s, _)| s)
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A header's value as text (`None` when absent).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json {:?}: {e}", self.body))
    }
}

/// One request on a fresh connection (for answers that may close it: 4xx with an unread body).
pub async fn send_once(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    Client::connect(addr)
        .await
        .unwrap()
        .send(method, path, headers, body)
        .await
        .unwrap()
}

/// Polls `metric` until `ok(value)` or `bound` passes (then panics naming `what`).
pub async fn wait_metric(
    addr: SocketAddr,
    series: &str,
    bound: Duration,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let v = metric(addr, series).await.unwrap_or(0.0);
        if ok(v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {series} is {v} after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One-shot GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Bytes) {
    Client::connect(addr).await.unwrap().get(path).await
}

/// The store's click total for `site` (GET stats), shared across replicas with Redis.
pub async fn store_clicks(addr: SocketAddr, site: &str) -> u64 {
    let (status, body) = get(addr, &format!("/api/sites/{site}/stats")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["clicks"].as_u64().unwrap()
}

/// The value of one sample line in this replica's /metrics (`None` when absent).
pub async fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = get(addr, "/metrics").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
