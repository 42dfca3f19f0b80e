//! The admin HTTP server: accept loop, TLS, and what every request passes through before the
//! program's [`Handler`] sees it.
//!
//! Order per request: the health probes (no credentials: they say nothing but "up"), the
//! per-address login backoff (`429`), basic auth (`401` with a browser login prompt), the
//! cross-site check for state-changing methods (`403`), `/metrics`, the body limit (`413`),
//! then the handler. Every answer carries headers that keep browsers from sniffing, framing
//! or caching it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use frp_runtime::per_source::Admission;
use futures_util::StreamExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::api::{ApiError, ApiRequest, ApiResponse, Body, Handler};
use crate::auth::{Backoff, Checker, Failure};
use crate::config::WebServerSettings;
use crate::guard::{cross_site, names_an_address};

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// Of those, from one IPv4 address or IPv6 /64, so one source holding idle connections cannot
/// take the probes down with the API.
const MAX_CONNECTIONS_PER_IP: usize = 32;
/// How long a request head may take, and a connection may idle between requests.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open requests may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(2);
/// The `Content-Type` of `/metrics` (OpenMetrics text, which Prometheus reads).
const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The page policy: only this origin's scripts, styles and images; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

type ResBody = UnsyncBoxBody<Bytes, Infallible>;

/// A bound admin server; [`run`](AdminServer::run) it.
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebServerSettings,
    checker: Option<Checker>,
    backoff: Backoff,
    handler: Arc<dyn Handler>,
    metrics: Option<Registry>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Binds `settings.addr`. `metrics` is served on `/metrics` when `settings.prometheus`
    /// is on; the process's own figures (memory, open files) are added to it. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(
        settings: WebServerSettings,
        handler: Arc<dyn Handler>,
        metrics: Option<Registry>,
    ) -> anyhow::Result<Self> {
        let std = std::net::TcpListener::bind(settings.addr)
            .with_context(|| format!("binding webServer {}", settings.addr))?;
        std.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std)?;
        let metrics = match (settings.prometheus, metrics) {
            (true, registry) => {
                let mut registry = registry.unwrap_or_default();
                registry.register_collector(Box::new(crate::process::ProcessCollector));
                Some(registry)
            }
            (false, _) => None,
        };
        let checker = settings.credentials.as_ref().map(Checker::new);
        let inner = Arc::new(Inner {
            settings,
            checker,
            backoff: Backoff::default(),
            handler,
            metrics,
        });
        Ok(Self { listener, inner })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// If the socket's address cannot be read.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled; open requests get a moment to finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let addr = self.listener.local_addr().ok();
        let tls = self.inner.settings.tls.is_some();
        info!(?addr, tls, "admin api listening");
        let tasks = TaskTracker::new();
        let admission = Admission::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP);
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let Ok(slot) = admission.admit(peer.ip()) else {
                        debug!(%peer, "too many admin connections; closing");
                        continue;
                    };
                    let inner = Arc::clone(&self.inner);
                    let stop = shutdown.clone();
                    tasks.spawn(async move {
                        let _slot = slot;
                        connection(inner, tcp, peer, stop).await;
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accepting admin connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tasks.close();
        let _ = tokio::time::timeout(DRAIN, tasks.wait()).await;
    }
}

/// Serves one connection, over TLS when configured.
async fn connection(inner: Arc<Inner>, tcp: TcpStream, peer: SocketAddr, stop: CancellationToken) {
    let _ = tcp.set_nodelay(true);
    match inner.settings.tls.clone() {
        None => serve(inner, tcp, peer, stop).await,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve(inner, tls, peer, stop).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "admin tls handshake failed"),
                Err(_) => debug!(%peer, "admin tls handshake timed out"),
            }
        }
    }
}

async fn serve<I>(inner: Arc<Inner>, io: I, peer: SocketAddr, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let inner = Arc::clone(&inner);
        async move { Ok::<_, Infallible>(respond(&inner, req, peer).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "admin connection ended with an error");
    }
}

/// Everything one request passes through; see the module docs for the order.
async fn respond(inner: &Inner, req: Request<Incoming>, peer: SocketAddr) -> Response<ResBody> {
    let answer = match probe(inner, &req) {
        Some(answer) => answer,
        None => match guard(inner, &req, peer) {
            Err(refusal) => refusal,
            Ok(()) => dispatch(inner, req, peer).await,
        },
    };
    finish(answer)
}

/// `/healthz` and `/readyz`, which need no credentials.
fn probe(inner: &Inner, req: &Request<Incoming>) -> Option<ApiResponse> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    match req.uri().path() {
        "/healthz" => Some(ApiResponse::ok(&serde_json::json!({ "status": "ok" }))),
        "/readyz" => Some(match inner.handler.ready() {
            Ok(()) => ApiResponse::ok(&serde_json::json!({ "status": "ready" })),
            Err(reason) => ApiResponse::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "not ready", "error": reason }),
            ),
        }),
        _ => None,
    }
}

/// Login backoff, credentials and the cross-site check.
fn guard(inner: &Inner, req: &Request<Incoming>, peer: SocketAddr) -> Result<(), ApiResponse> {
    if let Some(checker) = &inner.checker {
        let now = Instant::now();
        if let Some(wait) = inner.backoff.wait(peer.ip(), now) {
            return Err(too_many(wait));
        }
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !checker.accepts(header) {
            return Err(match inner.backoff.failed(peer.ip(), now) {
                Failure::Counted => unauthorized(),
                Failure::Blocked(wait) => {
                    warn!(%peer, retry_after = ?wait, "repeated failed admin logins; backing off");
                    too_many(wait)
                }
                Failure::Extended(wait) => too_many(wait),
            });
        }
        inner.backoff.succeeded(peer.ip());
    } else if !names_an_address(req) {
        // Without credentials a page on a name that resolves to 127.0.0.1 (DNS rebinding)
        // would be same-origin with the API: only requests to an address are answered.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        let why = format!(
            "Host {:?} is not an IP address or localhost: without webServer.user and password \
             the admin API answers only requests sent to an address (DNS rebinding)",
            host.unwrap_or_default()
        );
        return Err(ApiError::new(StatusCode::FORBIDDEN, why).into());
    }
    cross_site(req, inner.settings.tls.is_some())
}

/// `/metrics`, or the body read (bounded) and handed to the handler.
async fn dispatch(inner: &Inner, req: Request<Incoming>, peer: SocketAddr) -> ApiResponse {
    if req.uri().path() == "/metrics" && matches!(*req.method(), Method::GET | Method::HEAD) {
        return metrics(inner);
    }
    let dashboard = inner.handler.dashboard();
    if let Some(file) =
        dashboard.and_then(|d| d.serve(req.method(), req.uri().path(), req.headers()))
    {
        return file;
    }
    let (parts, body) = match crate::body::read(req).await {
        Ok(read) => read,
        // What is left of a refused body is not read: the connection cannot carry another.
        Err(e) => {
            let close = HeaderValue::from_static("close");
            return ApiResponse::from(e).with_header(header::CONNECTION, close);
        }
    };
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        peer,
    };
    inner.handler.handle(request).await
}

fn metrics(inner: &Inner) -> ApiResponse {
    let Some(registry) = &inner.metrics else {
        return ApiError::not_found("metrics are off: set enablePrometheus = true").into();
    };
    let mut out = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::text::encode(&mut out, registry) {
        Ok(()) => ApiResponse::bytes(StatusCode::OK, METRICS_TYPE, out),
        Err(e) => ApiError::internal(format!("encoding metrics: {e}")).into(),
    }
}

fn unauthorized() -> ApiResponse {
    ApiResponse::from(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication required",
    ))
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"frp-quic admin\", charset=\"UTF-8\""),
    )
}

fn too_many(wait: Duration) -> ApiResponse {
    let secs = wait.as_secs().max(1);
    let e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins; retry in {secs} s"),
    );
    ApiResponse::from(e).with_header(header::RETRY_AFTER, HeaderValue::from(secs))
}

/// The hyper response, with the headers every answer carries.
fn finish(answer: ApiResponse) -> Response<ResBody> {
    let body: ResBody = match answer.body {
        Body::Full(b) => Full::new(b).boxed_unsync(),
        Body::Stream(s) => StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync(),
    };
    let mut res = Response::new(body);
    *res.status_mut() = answer.status;
    let h = res.headers_mut();
    for (name, value) in answer.headers {
        h.append(name, value);
    }
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    for (name, value) in fixed {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}
