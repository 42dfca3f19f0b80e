//! Request routing of the test apiserver: every request is recorded, authorised by its client
//! certificate, then answered from [`super::objects`], [`super::streams`] or [`super::exec`].

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::objects::{self, NAMESPACES, POD};
use super::{exec, streams, Peer, Seen, Shared, ADMIN};
use crate::http::{full, TestBody};

/// Answers one request.
pub(super) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    peer: Peer,
) -> Result<Response<TestBody>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut seen = Seen {
        method: req.method().to_string(),
        target,
        user: peer.user.clone(),
        cert_fingerprint: peer.fingerprint.clone(),
        sni: peer.sni.clone(),
        upgrade: None,
    };
    let response = if peer.user != ADMIN {
        let msg = format!("User \"{}\" cannot access this cluster", peer.user);
        json(
            StatusCode::FORBIDDEN,
            objects::status_failure(403, "Forbidden", &msg),
        )
    } else {
        route(req, &shared, &mut seen)
    };
    shared.record(seen);
    Ok(response)
}

/// The path split into segments, without the query.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Value of query parameter `name`, if present.
fn query<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

fn is_true(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true"))
}

/// Whether the client asked for server-side printing (kubectl's human-readable `get`).
fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=Table"))
}

fn route(req: Request<Incoming>, shared: &Shared, seen: &mut Seen) -> Response<TestBody> {
    let path = req.uri().path().to_string();
    let seg = segments(&path);
    let get = req.method() == Method::GET;
    match (req.method().clone(), seg.as_slice()) {
        (Method::GET, ["version"]) => ok(objects::version()),
        (Method::GET, ["api"]) => ok(objects::api_versions()),
        (Method::GET, ["apis"]) => ok(objects::api_groups()),
        (Method::GET, ["api", "v1"]) => ok(objects::resources()),
        (Method::GET, ["api", "v1", "namespaces"]) if wants_table(&req) => {
            ok(objects::namespace_table())
        }
        (Method::GET, ["api", "v1", "namespaces"]) => {
            let items = NAMESPACES.iter().map(|n| objects::namespace(n)).collect();
            ok(objects::list("NamespaceList", items))
        }
        (_, ["api", "v1", "namespaces", ns, rest @ ..]) if NAMESPACES.contains(ns) => {
            namespaced(req, shared, seen, ns, rest, get)
        }
        _ => not_found(&path),
    }
}

fn namespaced(
    req: Request<Incoming>,
    shared: &Shared,
    seen: &mut Seen,
    ns: &str,
    rest: &[&str],
    get: bool,
) -> Response<TestBody> {
    match rest {
        ["pods"] if get && is_true(query(&req, "watch")) => {
            streams::watch(ns, shared.opts.watch_gap)
        }
        ["pods"] if get && wants_table(&req) => ok(objects::pod_table(ns)),
        ["pods"] if get => ok(objects::list("PodList", vec![objects::pod(ns, POD)])),
        ["pods", name] if get && *name == POD => ok(objects::pod(ns, POD)),
        ["pods", name, "log"] if get && *name == POD => {
            let follow = is_true(query(&req, "follow"));
            streams::logs(follow, shared.opts.log_lines, shared.opts.log_interval)
        }
        ["pods", name, "exec"] if *name == POD => exec_upgrade(req, seen),
        _ => not_found(req.uri().path()),
    }
}

/// An exec: a WebSocket upgrade is accepted, anything else (SPDY) refused, so a working exec
/// proves the WebSocket path was taken.
fn exec_upgrade(req: Request<Incoming>, seen: &mut Seen) -> Response<TestBody> {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        seen.upgrade = Some(format!("refused {upgrade}"));
        let msg = "this apiserver speaks exec over WebSocket only";
        return json(
            StatusCode::BAD_REQUEST,
            objects::status_failure(400, "BadRequest", msg),
        );
    }
    let command: Vec<String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(percent_decode)
        .collect();
    match exec::accept(req, command) {
        Ok((response, protocol)) => {
            seen.upgrade = Some(format!("websocket {protocol}"));
            response
        }
        Err(refusal) => {
            seen.upgrade = Some(format!("refused websocket: {refusal}"));
            let status = objects::status_failure(400, "BadRequest", &refusal);
            json(StatusCode::BAD_REQUEST, status)
        }
    }
}

/// Decodes `%XX` escapes and `+` (a query's space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `200` with a JSON body.
fn ok(v: Value) -> Response<TestBody> {
    json(StatusCode::OK, v)
}

/// A JSON response.
pub(super) fn json(status: StatusCode, v: Value) -> Response<TestBody> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn not_found(path: &str) -> Response<TestBody> {
    let msg = format!("the server could not find the requested resource ({path})");
    json(
        StatusCode::NOT_FOUND,
        objects::status_failure(404, "NotFound", &msg),
    )
}
