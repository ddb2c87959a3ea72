//! Click load: many keep-alive connections tallying answers, and clicks held open across a
//! SIGTERM.

use super::*;

/// Tally of a load run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub ok: u64,
    pub shed: u64,
    pub other: u64,
    pub errors: u64,
}

/// `connections` concurrent keep-alive connections each sending up to `per_conn` clicks
/// (reconnecting after a failed request; a failed connect ends that connection's loop), bounded by `bound`.
pub async fn click_load(
    addr: SocketAddr,
    site: &str,
    connections: usize,
    per_conn: usize,
    bound: Duration,
) -> Tally {
    let deadline = tokio::time::Instant::now() + bound;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let site = site.to_string();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut client = None;
            for i in 0..per_conn {
                if tokio::time::Instant::now() > deadline {
                    break;
                }
                if client.is_none() {
                    match Client::connect(addr).await {
                        Ok(cl) => client = Some(cl),
                        Err(_) => {
                            // Nobody listens any more (e.g. after SIGTERM): this connection
                            // is done.
                            t.errors += 1;
                            break;
                        }
                    }
                }
                let url = format!("/page/{}", (c * 7 + i) % 13);
                match client.as_mut().unwrap().click(&site, &url).await {
                    Ok(s) if s == StatusCode::NO_CONTENT => t.ok += 1,
                    Ok(s) if s == StatusCode::SERVICE_UNAVAILABLE => t.shed += 1,
                    Ok(_) => t.other += 1,
                    Err(_) => {
                        t.errors += 1;
                        client = None;
                    }
                }
            }
            t
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.unwrap();
        total.ok += t.ok;
        total.shed += t.shed;
        total.other += t.other;
        total.errors += t.errors;
    }
    total
}

/// A click whose request is sent except for the last byte of its body, so the server holds it
/// in flight (headers received, handler waiting for the body) until [`HeldClick::finish`].
pub struct HeldClick {
    stream: TcpStream,
    last: u8,
    received: Vec<u8>,
}

impl HeldClick {
    pub async fn start(addr: SocketAddr, site: &str, url: &str) -> HeldClick {
        use tokio::io::AsyncWriteExt;
        let body = serde_json::json!({ "site": site, "url": url }).to_string();
        let head = format!(
            "POST /api/clicks HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (all_but_last, last) = body.as_bytes().split_at(body.len() - 1);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(all_but_last).await.unwrap();
        HeldClick {
            stream,
            last: last[0],
            received: Vec::new(),
        }
    }

    /// Whether the server has answered (or closed) already, without waiting.
    pub fn answered(&mut self) -> bool {
        let mut buf = [0u8; 512];
        match self.stream.try_read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                self.received.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    /// Sends the last byte and reads the answer until the server closes or `bound` passes.
    pub async fn finish(mut self, bound: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&[self.last]).await.unwrap();
        let deadline = tokio::time::Instant::now() + bound;
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => self.received.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// One request on a fresh connection; `None` when the connection failed before an answer (e.g.
/// accepted just before SIGTERM and closed by the drain) — for polling across a shutdown.
pub async fn try_send_once(addr: SocketAddr, method: Method, path: &str) -> Option<Response> {
    let mut c = Client::connect(addr).await.ok()?;
    c.send(method, path, &[], Bytes::new()).await.ok()
}

/// Flags for [`hold_clicks_through_sigterm`]: a cost and fewer slots than clicks, so that once
/// released the clicks queue and burn their cost during the drain (the drain really waits for
/// work, not just for sockets), with bounds far above what the test needs.
pub const HELD_CLICK_ARGS: &[&str] = &[
    "--admin-listen",
    "127.0.0.1:0",
    "--cost",
    "20ms",
    "--max-inflight",
    "2",
    "--queue-timeout",
    "30s",
    "--body-timeout",
    "30s",
    "--drain-timeout",
    "30s",
];

/// Clicks held in flight through a SIGTERM, on a service started with `--admin-listen`: holds
/// `n` clicks (waiting on the server's own in-progress gauge, not on time), sends SIGTERM,
/// polls the admin `/readyz` until it says 503 while those clicks surely still are in flight
/// (they cannot finish before their last byte), checks the main listener refuses new
/// connections and that the admin listener refuses new work, then releases them. Returns the
/// number of 204s, having checked that the service counted exactly `n - 1` while the last one
/// was still held and that the process exited 0 after the last answer.
pub async fn hold_clicks_through_sigterm(svc: &mut Service, site: &str, n: usize) -> u64 {
    let admin = svc
        .admin
        .expect("the drain is watched through --admin-listen");
    let mut held = Vec::new();
    for i in 0..n {
        held.push(HeldClick::start(svc.addr, site, &format!("/held/{i}")).await);
    }
    // + 1: the scrape that reads the gauge is in progress too.
    wait_metric(
        admin,
        "polymetrie_http_requests_in_progress",
        START_TIMEOUT,
        "held clicks reaching the handler",
        |v| v == (n + 1) as f64,
    )
    .await;
    svc.sigterm();

    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let ready = loop {
        match try_send_once(admin, Method::GET, "/readyz").await {
            Some(r) if r.status == StatusCode::SERVICE_UNAVAILABLE => break r,
            Some(r) => assert_eq!(r.status, StatusCode::OK, "{r:?}"),
            None => {}
        }
        if let Some(st) = svc.child.try_wait().unwrap() {
            panic!("exited ({st}) with {n} clicks in flight instead of draining");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never said 503 after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ready.header("retry-after"), Some("1"), "{ready:?}");
    assert_eq!(ready.json()["error"], "draining");
    for (i, h) in held.iter_mut().enumerate() {
        assert!(
            !h.answered(),
            "held click {i} was answered before it was complete"
        );
    }
    // /readyz turns 503 only once the main listener is closed.
    assert!(
        TcpStream::connect(svc.addr).await.is_err(),
        "main listener still accepting while draining"
    );
    let body = serde_json::json!({ "site": site, "url": "/late" }).to_string();
    let late = send_once(admin, Method::POST, "/api/clicks", &[], body).await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE, "{late:?}");
    assert_eq!(late.header("retry-after"), Some("1"));

    let last = held.pop().unwrap();
    let mut answers = Vec::new();
    for h in held {
        answers.push(tokio::spawn(h.finish(START_TIMEOUT)));
    }
    let mut ok = 0;
    for a in answers {
        let text = a.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 204"), "{text:?}");
        ok += 1;
    }
    // Still draining (the last click is held): the service has counted exactly the 204s.
    let series = format!("polymetrie_clicks_total{{site=\"{site}\"}}");
    assert_eq!(metric(admin, &series).await, Some(ok as f64));
    assert_eq!(
        metric(admin, "polymetrie_http_requests_in_progress").await,
        Some(2.0)
    );
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "exited while a click was in flight"
    );

    let text = last.finish(START_TIMEOUT).await;
    assert!(text.starts_with("HTTP/1.1 204"), "{text:?}");
    ok += 1;
    let st = wait_exit(&mut svc.child, START_TIMEOUT).expect("did not exit after the drain");
    assert!(st.success(), "{st:?}");
    assert!(
        TcpStream::connect(admin).await.is_err(),
        "admin listener outlived the process"
    );
    ok
}
