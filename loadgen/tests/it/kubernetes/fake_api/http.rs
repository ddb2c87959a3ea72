//! The fake's HTTP side: the subset of the Kubernetes REST API the deployer calls, on
//! loopback — Deployments get, server-side apply, strategic-merge patch and watch (one
//! object, by `fieldSelector=metadata.name=…`), ReplicaSets and Pods list by label selector,
//! HPAs list, and one HPA's apply, get and delete ([`super::hpa`]). Anything else is a 404 Status, so a call the fake does not know fails loudly.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::state::{selects, State};

pub type Shared = Arc<Mutex<State>>;
type Body = BoxBody<Bytes, Infallible>;

/// The longest watch the fake keeps open (the client asks for less).
const MAX_WATCH: Duration = Duration::from_secs(300);

pub async fn handle(state: Shared, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = query(uri.query().unwrap_or_default());
    let param = |k: &str| query.iter().find(|(qk, _)| qk == k).map(|(_, v)| v.clone());
    state
        .lock()
        .unwrap()
        .calls
        .push(format!("{method} {uri} {content_type}"));
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let selector = param("labelSelector").unwrap_or_default();
    if let Some(reply) = hpas(&state, method.as_str(), &segs, &body)
        .or_else(|| listed(&state, method.as_str(), &segs, &selector))
    {
        return Ok(reply);
    }
    let reply = match (method.as_str(), segs.as_slice()) {
        ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments"])
            if param("watch").as_deref() == Some("true") =>
        {
            watch(state.clone(), &param)
        }
        ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            with_deployment(&state, name, |_| {})
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            match serde_json::from_slice::<Value>(&body) {
                Ok(patch) => {
                    let apply = content_type == "application/apply-patch+yaml";
                    with_deployment(&state, name, |s| s.patch(apply, &patch))
                }
                Err(e) => status(400, &format!("body: {e}")),
            }
        }
        _ => match super::jobs::route(
            &mut state.lock().unwrap().jobs,
            method.as_str(),
            &segs,
            &body,
        ) {
            Some(super::jobs::Reply::Json(code, v)) => json_reply(code, &v),
            Some(super::jobs::Reply::Text(text)) => Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(text)).boxed())
                .unwrap(),
            None => status(
                404,
                &format!("the fake API server does not serve {method} {uri}"),
            ),
        },
    };
    Ok(reply)
}

/// The HPA routes: the namespace's list, and one HPA's apply, get and delete.
fn hpas(state: &Shared, method: &str, segs: &[&str], body: &[u8]) -> Option<Response<Body>> {
    match (method, segs) {
        ("GET", ["apis", "autoscaling", "v2", "namespaces", _, "horizontalpodautoscalers"]) => {
            let items = state.lock().unwrap().hpas.clone();
            let kind = "HorizontalPodAutoscalerList";
            Some(json_reply(200, &list(kind, "autoscaling/v2", items)))
        }
        (
            "PATCH" | "GET" | "DELETE",
            ["apis", "autoscaling", "v2", "namespaces", _, "horizontalpodautoscalers", name],
        ) => {
            let (code, v) = super::hpa::call(state, method, name, body);
            Some(json_reply(code, &v))
        }
        _ => None,
    }
}

/// ReplicaSets and Pods (the Deployment's and the generator Jobs') listed by label selector.
fn listed(state: &Shared, method: &str, segs: &[&str], sel: &str) -> Option<Response<Body>> {
    let mut s = state.lock().unwrap();
    let (kind, version, items): (&str, &str, Vec<Value>) = match (method, segs) {
        ("GET", ["apis", "apps", "v1", "namespaces", _, "replicasets"]) => {
            ("ReplicaSetList", "apps/v1", s.replica_sets.clone())
        }
        ("GET", ["api", "v1", "namespaces", _, "pods"]) => {
            let generators = s.jobs.pods();
            let pods = s.pods.iter().cloned().chain(generators).collect();
            ("PodList", "v1", pods)
        }
        _ => return None,
    };
    let items = items.into_iter().filter(|o| selects(sel, o)).collect();
    Some(json_reply(200, &list(kind, version, items)))
}

fn with_deployment(state: &Shared, name: &str, f: impl FnOnce(&mut State)) -> Response<Body> {
    let mut s = state.lock().unwrap();
    if s.dep["metadata"]["name"] != name {
        return status(404, &format!("deployments.apps \"{name}\" not found"));
    }
    f(&mut s);
    json_reply(200, &s.dep)
}

/// A watch of the one Deployment: a `MODIFIED` event whenever its resourceVersion passes the
/// one asked for, until `timeoutSeconds`.
fn watch(state: Shared, param: &dyn Fn(&str) -> Option<String>) -> Response<Body> {
    let since: u64 = param("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = param("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(MAX_WATCH, Duration::from_secs)
        .min(MAX_WATCH);
    let deadline = tokio::time::Instant::now() + timeout;
    let rx = state.lock().unwrap().subscribe();
    let events = futures_util::stream::unfold((rx, since), move |(mut rx, since)| {
        let state = state.clone();
        async move {
            loop {
                let (rv, dep) = {
                    let s = state.lock().unwrap();
                    (s.resource_version(), s.dep.clone())
                };
                if rv > since {
                    let line = json!({ "type": "MODIFIED", "object": dep }).to_string() + "\n";
                    let frame: Result<Frame<Bytes>, Infallible> =
                        Ok(Frame::data(Bytes::from(line)));
                    return Some((frame, (rx, rv)));
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return None },
                    _ = tokio::time::sleep_until(deadline) => return None,
                }
            }
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(events).boxed())
        .unwrap()
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({ "kind": kind, "apiVersion": api_version, "metadata": { "resourceVersion": "1" },
            "items": items })
}

fn json_reply(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, message: &str) -> Response<Body> {
    json_reply(
        code,
        &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "message": message, "code": code }),
    )
}

/// `a=b&c=d`, percent-decoded.
fn query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
