//! One HTTP request at frps: read its target ([`Target`]), route it by host and path, apply
//! the proxy's policy, forward it to the backend and stream the answer back, with one
//! access-log entry per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::access::{AccessEntry, AccessLog, LoggedBody, Pending, RespBody};
use super::auth::BasicAuth;
use super::backend::{BackendError, HttpBackend, Routed};
use super::body::{Progress, RequestBody, Stall};
use super::cors::{is_preflight, Preflight};
use super::io::ConnState;
use super::policy::{is_upgrade, set_forwarded, strip_hop_by_hop, HttpPolicy};
use super::target::Target;
use super::tunnel::{tunnel, TunnelLog, Upgrade};
use crate::registry::Registry;

/// A response frps answers itself.
type Response = hyper::Response<RespBody>;

/// What every request on one listener shares.
#[derive(Debug)]
pub struct Frontend {
    /// Where the routes live.
    pub registry: Registry,
    /// `http`, or `https` for connections whose TLS frps terminated.
    pub scheme: &'static str,
    /// How long a backend may take to send its response head once the request is sent
    /// (`vhostHTTPTimeout`).
    pub timeout: Duration,
    /// How long a request body may make no progress.
    pub body_idle: Duration,
    /// How long an upgraded connection may carry no bytes.
    pub upgrade_idle: Duration,
    /// The access log.
    pub access: AccessLog,
    /// Where upgraded tunnels are tracked.
    pub tracker: TaskTracker,
}

/// One visitor connection, as its requests see it.
#[derive(Debug)]
pub struct Conn {
    /// The visitor's address.
    pub peer: SocketAddr,
    /// Shared with the connection's socket.
    pub state: Arc<ConnState>,
    /// The TLS name, when frps terminated TLS: requests must be for that host.
    pub sni: Option<String>,
}

/// A short plain-text response.
pub fn text(status: StatusCode, msg: &str) -> Response {
    let body = Full::new(Bytes::from(format!("{msg}\n")))
        .map_err(|e| match e {})
        .boxed();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = status;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    resp.headers_mut().insert(header::CONTENT_TYPE, plain);
    resp
}

/// Serves one request; never fails (every problem is an HTTP status).
pub async fn handle(
    front: Arc<Frontend>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<hyper::Response<LoggedBody>, Infallible> {
    let started = Instant::now();
    conn.state.requests.fetch_add(1, Ordering::Relaxed);
    let entry = AccessEntry {
        client: conn.peer,
        scheme: front.scheme,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        ..AccessEntry::placeholder()
    };
    let mut pending = Pending::new(entry, started, front.access.clone());
    let (resp, upgrade) = match Target::of(&req, conn.sni.as_deref()) {
        Err(refused) => (text(refused.status, &refused.why), None),
        Ok(target) => {
            let e = pending.entry();
            (e.host, e.path) = (target.host.clone(), target.path.clone());
            route(&front, &conn, &target, req, &mut pending).await
        }
    };
    let mut entry = pending.take();
    entry.status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let log = front.access.clone();
    let body = match upgrade {
        Some(up) => {
            let state = Arc::clone(&conn.state);
            let end = TunnelLog {
                entry,
                started,
                log: log.clone(),
                conn: state,
            };
            front.tracker.spawn(tunnel(up, front.upgrade_idle, end));
            LoggedBody::unlogged(body, log)
        }
        None => LoggedBody::new(body, entry, started, log),
    };
    Ok(hyper::Response::from_parts(parts, body))
}

/// The proxy for the target, then its policy and backend.
async fn route(
    front: &Frontend,
    conn: &Conn,
    target: &Target,
    req: Request<Incoming>,
    pending: &mut Pending,
) -> (Response, Option<Upgrade>) {
    let Some(routed) = front
        .registry
        .lookup_http(&target.host, &target.match_path, &target.guards)
    else {
        let why = "404 not found: no site is served under this name";
        return (text(StatusCode::NOT_FOUND, why), None);
    };
    pending.entry().proxy = routed.backend.name.to_string();
    if target.encoded_slash && !routed.backend.policy.allow_encoded_slashes {
        let why = "400 bad request: the path has an encoded '/' or '\\'";
        return (text(StatusCode::BAD_REQUEST, why), None);
    }
    serve(front, &routed, conn, target, req).await
}

/// The proxy's policy, then the backend; an upgrade when both sides switch protocols.
async fn serve(
    front: &Frontend,
    routed: &Routed,
    conn: &Conn,
    target: &Target,
    mut req: Request<Incoming>,
) -> (Response, Option<Upgrade>) {
    let backend = &routed.backend;
    let policy = &backend.policy;
    if let Some(answer) = gate(front, routed, target, &req) {
        return (answer, None);
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let upgrade = is_upgrade(req.headers());
    let on_client = upgrade.then(|| hyper::upgrade::on(&mut req));
    let authenticated = required_auths(routed).next().is_some();
    let forward = Forward {
        client: conn.peer,
        upgrade,
        authenticated,
    };
    let req = prepare(req, policy, front, target, &forward);
    let mut resp = match exchange(front, backend, conn, req).await {
        Ok(resp) => resp,
        Err(answer) => return (answer, None),
    };
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let up = match (switching, on_client) {
        (true, Some(on_client)) => Some(Upgrade {
            on_client,
            on_backend: hyper::upgrade::on(&mut resp),
        }),
        (true, None) => {
            let why = "502 bad gateway: the service switched protocols unasked";
            return (text(StatusCode::BAD_GATEWAY, why), None);
        }
        (false, _) => None,
    };
    strip_hop_by_hop(resp.headers_mut(), switching);
    policy.rewrite_response(resp.headers_mut());
    if let Some(cors) = &policy.cors {
        cors.apply(origin.as_ref(), resp.headers_mut());
    }
    (resp.map(|b| b.boxed()), up)
}

/// The passwords a request must pass: its proxy's, and those of the proxies a case-folding
/// service could serve its path from (the stricter policy wins).
fn required_auths(routed: &Routed) -> impl Iterator<Item = &BasicAuth> {
    std::iter::once(&routed.backend)
        .chain(&routed.guards)
        .filter_map(|b| b.policy.auth.as_ref())
}

/// Sends the request and waits for the response head, within the clocks of [`Progress`].
async fn exchange(
    front: &Frontend,
    backend: &Arc<HttpBackend>,
    conn: &Conn,
    req: Request<RequestBody>,
) -> Result<hyper::Response<Incoming>, Response> {
    let progress: Arc<Progress> = req.body().progress();
    // When the deadline wins, the send is dropped on purpose: that abandons the exchange and
    // hyper closes its backend connection (nothing is resumed later).
    let sent = tokio::select! {
        r = backend.send(req, conn.peer) => r,
        stall = progress.deadline(front.timeout, front.body_idle) => {
            debug!(proxy = %backend.name, client = %conn.peer, ?stall, "exchange given up");
            return Err(stalled(stall));
        }
    };
    sent.map_err(|e| match progress.visitor_idle() {
        true => stalled(Stall::Visitor),
        false => failed(backend, conn.peer, &e),
    })
}

/// What frps answers itself, before anything reaches the client: the https redirect, a CORS
/// preflight, a missing or wrong password.
fn gate<B>(
    front: &Frontend,
    routed: &Routed,
    target: &Target,
    req: &Request<B>,
) -> Option<Response> {
    let policy = &routed.backend.policy;
    if policy.redirect_https && front.scheme == "http" {
        return Some(redirect(target));
    }
    if let (Some(cors), true) = (&policy.cors, is_preflight(req)) {
        return Some(match cors.preflight(req.headers()) {
            Preflight::Allowed(headers) => {
                let body = Empty::new().map_err(|e| match e {}).boxed();
                let mut resp = hyper::Response::new(body);
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp.headers_mut().extend(headers);
                resp
            }
            Preflight::Refused(why) => text(StatusCode::FORBIDDEN, &format!("cors: {why}")),
        });
    }
    let mut auths = required_auths(routed).peekable();
    auths.peek()?;
    let given = req.headers().get(header::AUTHORIZATION);
    if auths.all(|auth| auth.allows(given)) {
        return None;
    }
    let mut resp = text(StatusCode::UNAUTHORIZED, "401 unauthorized");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, BasicAuth::challenge());
    Some(resp)
}

/// The answer for an exchange given up.
fn stalled(stall: Stall) -> Response {
    match stall {
        Stall::Visitor => text(
            StatusCode::REQUEST_TIMEOUT,
            "408 request timeout: the request body stopped arriving",
        ),
        Stall::Backend => text(
            StatusCode::GATEWAY_TIMEOUT,
            "504 gateway timeout: the service stopped reading the request",
        ),
        Stall::NoResponse => text(
            StatusCode::GATEWAY_TIMEOUT,
            "504 gateway timeout: the service did not answer in time",
        ),
    }
}

/// 503 when the proxy has too many connections open or its client no free stream, 502 for
/// every other backend failure.
fn failed(backend: &HttpBackend, client: SocketAddr, e: &BackendError) -> Response {
    debug!(proxy = %backend.name, %client, error = %e, "backend failed");
    match e {
        BackendError::Busy => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 too many connections to this service",
        ),
        BackendError::OpenTimeout => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 the service's client has no free stream",
        ),
        BackendError::Gone(_) | BackendError::Http(_) => text(
            StatusCode::BAD_GATEWAY,
            "502 bad gateway: the service is unreachable",
        ),
    }
}

/// How a request is forwarded, beyond its target and the proxy's policy.
struct Forward {
    /// The visitor's address.
    client: SocketAddr,
    /// Whether it asks to switch protocols.
    upgrade: bool,
    /// Whether frps checked its credentials (they are not forwarded).
    authenticated: bool,
}

/// Turns a visitor's request into the one the backend gets: the canonical origin-form
/// target, `Host` from an absolute-form target, proxy headers, the proxy's rewrites.
fn prepare(
    req: Request<Incoming>,
    policy: &HttpPolicy,
    front: &Frontend,
    target: &Target,
    how: &Forward,
) -> Request<RequestBody> {
    let (mut parts, body) = req.into_parts();
    parts.uri = target.uri.clone();
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, how.upgrade);
    if let (true, Ok(h)) = (target.absolute, HeaderValue::from_str(&target.shown)) {
        headers.insert(header::HOST, h);
    }
    set_forwarded(headers, how.client.ip(), front.scheme, &target.shown);
    policy.rewrite_request(headers, how.authenticated);
    Request::from_parts(parts, RequestBody::new(body, front.body_idle))
}

/// 308 to the same URL over https.
fn redirect(target: &Target) -> Response {
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "308 use https");
    let location = format!("https://{}{}", target.host, target.uri);
    if let Ok(location) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}
