//! One HTTP request at frps: read its target ([`Target`]), route it by host and path, apply
//! the proxy's policy, forward it to the backend and stream the answer back, with one
//! access-log entry per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::access::{AccessEntry, AccessLog, LoggedBody, Pending, RespBody};
use super::backend::{BackendError, HttpBackend, Routed};
use super::body::{Progress, RequestBody, Stall};
use super::gate::{gate, required_auths, AuthThrottle};
use super::io::ConnState;
use super::policy::{
    is_upgrade, request_coding_supported, set_forwarded, strip_hop_by_hop, HttpPolicy,
};
use super::target::{Refusal, Target};
use super::tunnel::{tunnel, TunnelLog, Upgrade};
use crate::budget::Exhausted;
use crate::registry::Registry;

/// A response frps answers itself.
pub type Response = hyper::Response<RespBody>;

/// What every request on one listener shares.
#[derive(Debug)]
pub struct Frontend {
    /// Where the routes live.
    pub registry: Registry,
    /// `http`, or `https` for connections whose TLS frps terminated.
    pub scheme: &'static str,
    /// The port this listener is bound to: a `Host` port the visitor names is passed on in
    /// `X-Forwarded-Host` only when it is this one.
    pub port: u16,
    /// The bound `vhostHTTPSPort`, for `redirectHTTPS`.
    pub https_port: Option<u16>,
    /// Wrong passwords per visitor address, shared by both listeners.
    pub throttle: Arc<AuthThrottle>,
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
    /// The ACME manager, whose http-01 validations are answered before routing.
    pub acme: Option<Arc<crate::acme::Acme>>,
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
    let target = match request_coding_supported(req.headers()) {
        true => Target::of(&req, conn.sni.as_deref()),
        false => Err(Refusal {
            status: StatusCode::NOT_IMPLEMENTED,
            why: "501 not implemented: the only transfer coding accepted is chunked".into(),
        }),
    };
    let (resp, upgrade) = match target {
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
    let acme = front.acme.as_ref();
    if let Some(answer) = acme.and_then(|a| a.http_answer(&target.host, &target.path)) {
        // The body is the key authorization exactly (RFC 8555 8.3).
        let mut resp = text(StatusCode::OK, "");
        *resp.body_mut() = Full::new(Bytes::from(answer))
            .map_err(|e| match e {})
            .boxed();
        return (resp, None);
    }
    let Some(routed) = front
        .registry
        .lookup_http(&target.host, &target.match_path, &target.guards)
    else {
        let why = "404 not found: no site is served under this name";
        return (text(StatusCode::NOT_FOUND, why), None);
    };
    pending.entry().proxy = routed.backend.name.to_string();
    let policy = &routed.backend.policy;
    if target.encoded_slash && !policy.allow_encoded_slashes {
        let why = "400 bad request: the path has an encoded '/' or '\\'";
        return (own(policy, text(StatusCode::BAD_REQUEST, why)), None);
    }
    match serve(front, &routed, conn, target, req).await {
        Served::Backend(resp, up) => (resp, up),
        Served::Own(resp) => (own(policy, resp), None),
    }
}

/// An answer frps gives itself for a routed request, with the proxy's response headers.
fn own(policy: &HttpPolicy, mut resp: Response) -> Response {
    policy.rewrite_own(resp.headers_mut());
    resp
}

/// Who answered a routed request.
enum Served {
    /// The service (and an upgrade, when both sides switched protocols).
    Backend(Response, Option<Upgrade>),
    /// frps itself.
    Own(Response),
}

/// The proxy's policy, then the backend; an upgrade when both sides switch protocols.
async fn serve(
    front: &Frontend,
    routed: &Routed,
    conn: &Conn,
    target: &Target,
    mut req: Request<Incoming>,
) -> Served {
    let backend = &routed.backend;
    let policy = &backend.policy;
    if let Some(answer) = gate(front, routed, target, &req, conn.peer.ip()) {
        return Served::Own(answer);
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
        Err(answer) => return Served::Own(answer),
    };
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let up = match (switching, on_client) {
        (true, Some(on_client)) => Some(Upgrade {
            on_client,
            on_backend: hyper::upgrade::on(&mut resp),
        }),
        (true, None) => {
            let why = "502 bad gateway: the service switched protocols unasked";
            return Served::Own(text(StatusCode::BAD_GATEWAY, why));
        }
        (false, _) => None,
    };
    strip_hop_by_hop(resp.headers_mut(), switching);
    policy.rewrite_response(resp.headers_mut());
    if let Some(cors) = &policy.cors {
        cors.apply(origin.as_ref(), resp.headers_mut());
    }
    Served::Backend(resp.map(|b| b.boxed()), up)
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
    sent.map_err(|e| match () {
        () if progress.visitor_idle() => stalled(Stall::Visitor),
        () if progress.visitor_malformed() => text(
            StatusCode::BAD_REQUEST,
            "400 bad request: the request body is malformed",
        ),
        () => failed(backend, conn.peer, &e),
    })
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
        BackendError::Busy(Exhausted::Proxy) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 too many connections to this service",
        ),
        BackendError::Busy(Exhausted::Client) | BackendError::NoStream => text(
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
    let host = target.forwarded_host(front.port);
    set_forwarded(headers, how.client.ip(), front.scheme, &host);
    policy.rewrite_request(headers, how.authenticated);
    Request::from_parts(parts, RequestBody::new(body, front.body_idle))
}
