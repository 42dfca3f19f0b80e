//! One HTTP request at frps: route it by `Host` and path, apply the proxy's policy, forward it
//! to the backend and stream the answer back, with one access-log entry per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::access::{AccessEntry, AccessLog, LoggedBody, RespBody};
use super::auth::BasicAuth;
use super::backend::{BackendError, HttpBackend};
use super::cors::{is_preflight, Preflight};
use super::policy::{is_upgrade, set_forwarded, strip_hop_by_hop, HttpPolicy};
use crate::domains::normalize_host;
use crate::registry::Registry;

/// What every request on one listener shares.
#[derive(Debug)]
pub struct Frontend {
    /// Where the routes live.
    pub registry: Registry,
    /// `http`, or `https` for connections whose TLS frps terminated.
    pub scheme: &'static str,
    /// How long a backend may take to send its response head (`vhostHTTPTimeout`).
    pub timeout: Duration,
    /// The access log.
    pub access: AccessLog,
    /// Where upgraded tunnels are tracked.
    pub tracker: TaskTracker,
}

/// A short plain-text response.
pub fn text(status: StatusCode, msg: &str) -> Response<RespBody> {
    let body = Full::new(Bytes::from(format!("{msg}\n")))
        .map_err(|e| match e {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    resp.headers_mut().insert(header::CONTENT_TYPE, plain);
    resp
}

/// Serves one request; never fails (every problem is an HTTP status).
pub async fn handle(
    front: Arc<Frontend>,
    client: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let started = Instant::now();
    let host = request_host(&req);
    let mut entry = AccessEntry {
        client,
        scheme: front.scheme,
        host: host.clone().unwrap_or_else(|| "-".into()),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        status: 0,
        bytes: 0,
        duration: Duration::ZERO,
        proxy: "-".into(),
    };
    let route = host
        .as_deref()
        .and_then(|h| front.registry.lookup_http(h, req.uri().path()));
    let resp = match route {
        None => text(
            StatusCode::NOT_FOUND,
            "404 not found: no site is served under this name",
        ),
        Some(backend) => {
            entry.proxy = backend.name.to_string();
            let host = host.unwrap_or_default();
            serve(&front, &backend, client, &host, req).await
        }
    };
    entry.status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = LoggedBody::new(body, entry, started, front.access.clone());
    Ok(Response::from_parts(parts, body))
}

/// The host a request is for: its `Host` header (or the authority of an absolute URI).
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    normalize_host(raw)
}

/// The proxy's policy, then the backend.
async fn serve(
    front: &Frontend,
    backend: &Arc<HttpBackend>,
    client: SocketAddr,
    host: &str,
    mut req: Request<Incoming>,
) -> Response<RespBody> {
    if let Some(answer) = gate(front, &backend.policy, host, &req) {
        return answer;
    }
    let policy = &backend.policy;
    let origin = req.headers().get(header::ORIGIN).cloned();
    let upgrade = is_upgrade(req.headers());
    prepare(&mut req, policy, client, front.scheme, host, upgrade);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut resp = match tokio::time::timeout(front.timeout, backend.send(req, client)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return failed(backend, client, &e),
        Err(_) => {
            let msg = "504 gateway timeout: the service did not answer in time";
            return text(StatusCode::GATEWAY_TIMEOUT, msg);
        }
    };
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (true, Some(on_client)) = (switching, client_upgrade) {
        let on_backend = hyper::upgrade::on(&mut resp);
        let proxy = backend.name.to_string();
        front.tracker.spawn(tunnel(on_client, on_backend, proxy));
    }
    strip_hop_by_hop(resp.headers_mut(), switching);
    policy.rewrite_response(resp.headers_mut());
    if let Some(cors) = &policy.cors {
        cors.apply(origin.as_ref(), resp.headers_mut());
    }
    resp.map(|b| b.boxed())
}

/// What frps answers itself, before anything reaches the client: the https redirect, a CORS
/// preflight, a missing or wrong password.
fn gate<B>(
    front: &Frontend,
    policy: &HttpPolicy,
    host: &str,
    req: &Request<B>,
) -> Option<Response<RespBody>> {
    if policy.redirect_https && front.scheme == "http" {
        return Some(redirect(host, req));
    }
    if let (Some(cors), true) = (&policy.cors, is_preflight(req)) {
        return Some(match cors.preflight(req.headers()) {
            Preflight::Allowed(headers) => {
                let mut resp = Response::new(Empty::new().map_err(|e| match e {}).boxed());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp.headers_mut().extend(headers);
                resp
            }
            Preflight::Refused(why) => text(StatusCode::FORBIDDEN, &format!("cors: {why}")),
        });
    }
    let auth = policy.auth.as_ref()?;
    if auth.allows(req.headers().get(header::AUTHORIZATION)) {
        return None;
    }
    let mut resp = text(StatusCode::UNAUTHORIZED, "401 unauthorized");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, BasicAuth::challenge());
    Some(resp)
}

/// 503 when the proxy has too many connections open, 502 for every other backend failure.
fn failed(backend: &HttpBackend, client: SocketAddr, e: &BackendError) -> Response<RespBody> {
    if let BackendError::Busy = e {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 too many connections to this service",
        );
    }
    debug!(proxy = %backend.name, %client, error = %e, "backend failed");
    text(
        StatusCode::BAD_GATEWAY,
        "502 bad gateway: the service is unreachable",
    )
}

/// Turns a client request into the one the backend gets.
fn prepare(
    req: &mut Request<Incoming>,
    policy: &HttpPolicy,
    client: SocketAddr,
    scheme: &str,
    host: &str,
    upgrade: bool,
) {
    // Origin form: the backend gets the path, the host travels in the Host header.
    if let Some(pq) = req.uri().path_and_query().cloned() {
        if req.uri().authority().is_some() {
            if let Ok(uri) = hyper::Uri::builder().path_and_query(pq).build() {
                *req.uri_mut() = uri;
            }
        }
    }
    let original_host = req.headers().get(header::HOST).cloned();
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    if let (false, Ok(h)) = (
        headers.contains_key(header::HOST),
        HeaderValue::from_str(host),
    ) {
        headers.insert(header::HOST, h);
    }
    let shown_host = original_host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or(host)
        .to_string();
    set_forwarded(headers, client.ip(), scheme, &shown_host);
    policy.rewrite_request(headers);
}

/// 308 to the same URL over https.
fn redirect<B>(host: &str, req: &Request<B>) -> Response<RespBody> {
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "308 use https");
    if let Ok(location) = HeaderValue::from_str(&format!("https://{host}{pq}")) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// Copies bytes both ways between an upgraded client connection and its backend, for as long
/// as both ends keep them open.
async fn tunnel(
    on_client: hyper::upgrade::OnUpgrade,
    on_backend: hyper::upgrade::OnUpgrade,
    proxy: String,
) {
    let (client, backend) = match tokio::try_join!(on_client, on_backend) {
        Ok(both) => both,
        Err(e) => return debug!(%proxy, error = %e, "upgrade failed"),
    };
    let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
    match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        Ok((up, down)) => debug!(%proxy, up, down, "upgraded connection closed"),
        Err(e) => debug!(%proxy, error = %e, "upgraded connection reset"),
    }
}
