//! The backend side of an http proxy: HTTP/1.1 connections over server-opened QUIC streams in
//! the owning client's connection, kept in a small pool so keep-alive requests reuse streams.
//!
//! Each connection is a data stream like a tcp proxy's (data header, then raw bytes that frpc
//! splices to the local service), with a hyper client connection running over it. The stream
//! holds a ticket from the client's connection budget for as long as it lives, upgraded
//! (WebSocket) tunnels included, so they count against `maxConnectionsPerProxy` and the
//! proxy's share of `maxConnectionsPerClient` ([`crate::budget`]). A request that finds no
//! ticket, or no stream credit left in the client's connection, gets `503` at once instead of
//! waiting for a stream.
//!
//! A connection goes back to the pool once its previous response has been read to the end,
//! for [`IDLE_TIMEOUT`] or less if the service's `Keep-Alive: timeout=N` says so, and a
//! timer drops it from the pool then. A request on a pooled connection that the service
//! closed meanwhile is retried once on a fresh stream: always when it was not sent, and when
//! it was sent but no response came if it is safe (a GET) or carries an `Idempotency-Key`,
//! with an empty body, as Go's client does. The retry waits briefly for the closed
//! connection's ticket. All pooled connections close when the proxy goes away (its session
//! ends).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use frp_proto::{encode_data_header, DataHeader, ProxyId, ProxyName};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::body::RequestBody;
use super::policy::HttpPolicy;
pub use super::quic_io::QuicIo;
use crate::budget::{Exhausted, Share};
use crate::gauges::ServerGauges;
use crate::stats::ProxyStats;

/// Idle connections kept per proxy.
const MAX_IDLE: usize = 32;
/// How long an idle connection is kept: a little less than the 5 s idle timeout of common
/// servers (Node.js, Apache), so a pooled connection is rarely closed under a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a request sent again after a pooled connection closed under it waits for a
/// connection ticket (the closed connection gives its own back as its task ends).
const RETRY_PERMIT_WAIT: Duration = Duration::from_secs(1);
/// Largest buffer hyper keeps for one backend connection, and largest response head.
const MAX_BUF: usize = 64 * 1024;

/// How long a request waits for stream credit over QUIC: two round trips to the client (the
/// stream that shows the client its grant is getting used, and its `MAX_STREAMS` back) and
/// [`CREDIT_SLACK`] for both ends to get to it, at most a second. (A zero wait still tries
/// once.)
/// Time for frps and frpc to get around to a grant: a burst that outruns the grant is also a
/// burst of work on both ends (a few hundred new streams, their tasks and local connections).
const CREDIT_SLACK: Duration = Duration::from_millis(250);

fn credit_wait(conn: &frp_runtime::link::Link) -> Duration {
    match conn.transport() {
        // HTTP/2 grants its whole limit from the start: no more is coming.
        frp_runtime::link::Transport::Tcp => Duration::ZERO,
        frp_runtime::link::Transport::Quic => {
            (conn.rtt() * 2 + CREDIT_SLACK).min(Duration::from_secs(1))
        }
    }
}

/// Why a request could not be answered by the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The client's connection has no stream to give (its stream credit is used up).
    #[error("no free stream to the client")]
    NoStream,
    /// No stream could be opened: the client's connection is gone.
    #[error("no stream to the client: {0}")]
    Gone(String),
    /// The proxy has no connection left: its own limit or its client's budget.
    #[error("{0}")]
    Busy(#[from] Exhausted),
    /// The exchange failed (the local service was unreachable, reset, or spoke no HTTP).
    #[error("backend exchange failed: {0}")]
    Http(#[from] hyper::Error),
}

/// A pooled connection: ready for a request until `until`.
#[derive(Debug)]
struct Idle {
    id: u64,
    sender: SendRequest<RequestBody>,
    until: Instant,
}

/// One registered http proxy: where its requests go and the policy they pass first.
#[derive(Debug)]
pub struct HttpBackend {
    /// The proxy's name, for logs.
    pub name: ProxyName,
    /// The id the client knows it by.
    pub id: ProxyId,
    /// The proxy's request policy.
    pub policy: HttpPolicy,
    conn: frp_runtime::link::Link,
    idle: Mutex<Vec<Idle>>,
    next_idle: AtomicU64,
    /// Backend connections this proxy may open; none left means 503.
    share: Share,
    tracker: TaskTracker,
    gauges: ServerGauges,
    /// What the proxy carried: each backend connection counts its bytes into it.
    stats: Arc<ProxyStats>,
    /// Cancelled when the proxy goes away: the pool's timers stop.
    gone: CancellationToken,
}

/// Where an http request goes, and the proxies whose policy it must also pass.
#[derive(Debug)]
pub struct Routed {
    /// The proxy the request is forwarded to.
    pub backend: Arc<HttpBackend>,
    /// Other proxies a lenient service could serve the path from (see
    /// [`guard_forms`](frp_proto::vhost::guard::guard_forms)).
    pub guards: Vec<Arc<HttpBackend>>,
}

/// What a backend needs from its session.
#[derive(Debug)]
pub struct BackendParts {
    /// The client's connection.
    pub conn: frp_runtime::link::Link,
    /// Where connection tasks are tracked.
    pub tracker: TaskTracker,
    /// The proxy's part of its client's connection budget.
    pub share: Share,
    /// The server's counters.
    pub gauges: ServerGauges,
    /// The proxy's own counters.
    pub stats: Arc<ProxyStats>,
}

/// What is needed to send a bodiless request again.
struct Resend {
    method: Method,
    uri: hyper::Uri,
    version: hyper::Version,
    headers: HeaderMap,
}

impl Resend {
    /// Kept for requests with an empty body that may be sent twice, as Go's client decides:
    /// `GET`, `HEAD`, `OPTIONS`, `TRACE`, or any method with an `Idempotency-Key` (a `PUT`
    /// or `DELETE` may be idempotent by RFC 9110, but a service seeing it twice can differ).
    fn of(req: &Request<RequestBody>) -> Option<Self> {
        let safe = matches!(
            *req.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        let keyed = ["idempotency-key", "x-idempotency-key"]
            .iter()
            .any(|h| req.headers().contains_key(*h));
        ((safe || keyed) && req.body().is_end_stream()).then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    fn request(self) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::empty());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// Whether a request sent on a pooled connection failed because the service had closed it
/// (no response at all), so an idempotent request may go again.
fn closed_under_us(e: &hyper::Error) -> bool {
    e.is_incomplete_message()
        || e.is_canceled()
        || e.is_closed()
        || std::error::Error::source(e).is_some_and(|s| s.is::<io::Error>())
}

/// How long the service keeps an idle connection, from `Keep-Alive: timeout=N` (less a
/// second), capped at [`IDLE_TIMEOUT`]; zero when it will not keep it.
fn keep_for(headers: &HeaderMap) -> Duration {
    let timeout = headers
        .get_all("keep-alive")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let (key, value) = p.split_once('=')?;
            match key.trim().eq_ignore_ascii_case("timeout") {
                true => value.trim().parse::<u64>().ok(),
                false => None,
            }
        });
    match timeout {
        Some(secs) => IDLE_TIMEOUT.min(Duration::from_secs(secs.saturating_sub(1))),
        None => IDLE_TIMEOUT,
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.gone.cancel();
    }
}

impl HttpBackend {
    /// A backend with an empty pool.
    pub fn new(name: ProxyName, id: ProxyId, policy: HttpPolicy, parts: BackendParts) -> Self {
        Self {
            name,
            id,
            policy,
            conn: parts.conn,
            idle: Mutex::new(Vec::new()),
            next_idle: AtomicU64::new(0),
            share: parts.share,
            tracker: parts.tracker,
            gauges: parts.gauges,
            stats: parts.stats,
            gone: CancellationToken::new(),
        }
    }

    /// Sends `req` to the local service and returns its response head (the body streams).
    ///
    /// # Errors
    /// [`BackendError`] when no connection could be had or the exchange failed.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        visitor: SocketAddr,
    ) -> Result<Response<Incoming>, BackendError> {
        let (req, wait) = match self.take_idle() {
            Some(sender) => match self.send_pooled(sender, req).await? {
                Ok(resp) => return Ok(resp),
                // The dead connection's ticket comes back when its task ends, soon.
                Err(again) => (again, Some(RETRY_PERMIT_WAIT)),
            },
            None => (req, None),
        };
        let mut sender = self.connect(visitor, wait).await?;
        let resp = sender.send_request(req).await?;
        self.recycle(sender, &resp);
        Ok(resp)
    }

    /// Sends on a pooled connection; `Ok(Err(req))` is the request to send again on a fresh
    /// one, because the pooled connection had closed.
    async fn send_pooled(
        self: &Arc<Self>,
        mut sender: SendRequest<RequestBody>,
        req: Request<RequestBody>,
    ) -> Result<Result<Response<Incoming>, Request<RequestBody>>, BackendError> {
        let resend = Resend::of(&req);
        match sender.try_send_request(req).await {
            Ok(resp) => {
                self.recycle(sender, &resp);
                Ok(Ok(resp))
            }
            Err(mut e) => match (e.take_message(), resend) {
                (Some(req), _) => Ok(Err(req)),
                (None, Some(resend)) if closed_under_us(e.error()) => {
                    debug!(proxy = %self.name, error = %e.error(), "pooled connection closed under a request; retrying it");
                    Ok(Err(resend.request()))
                }
                (None, _) => Err(e.into_error().into()),
            },
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool with expired and closed connections taken out.
    fn live_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let mut idle = self.idle();
        let now = Instant::now();
        idle.retain(|i| !i.sender.is_closed() && i.until > now);
        idle
    }

    fn take_idle(&self) -> Option<SendRequest<RequestBody>> {
        self.live_idle().pop().map(|i| i.sender)
    }

    /// Puts `sender` back in the pool once its connection is ready for another request, and
    /// takes it out again when its idle time is over.
    fn recycle(self: &Arc<Self>, mut sender: SendRequest<RequestBody>, resp: &Response<Incoming>) {
        let keep = keep_for(resp.headers());
        if keep.is_zero() {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        let gone = self.gone.clone();
        let id = self.next_idle.fetch_add(1, Ordering::Relaxed);
        self.tracker.spawn(async move {
            // Ready once the response was read to its end; an error if the connection closed
            // or was upgraded.
            if sender.ready().await.is_err() {
                return;
            }
            let until = Instant::now() + keep;
            match pool.upgrade() {
                Some(pool) => pool.put_idle(Idle { id, sender, until }),
                None => return,
            }
            tokio::select! {
                () = tokio::time::sleep(keep) => {}
                () = gone.cancelled() => return,
            }
            if let Some(pool) = pool.upgrade() {
                pool.idle().retain(|i| i.id != id);
            }
        });
    }

    fn put_idle(&self, entry: Idle) {
        let mut idle = self.live_idle();
        if idle.len() < MAX_IDLE {
            idle.push(entry);
        }
    }

    /// Opens a stream to the local service and starts an HTTP/1.1 connection on it; waits
    /// up to `wait` for a connection ticket (none: `Busy` at once when none is left). Waits
    /// for stream credit only as long as the client takes to grant more ([`credit_wait`]).
    async fn connect(
        &self,
        visitor: SocketAddr,
        wait: Option<Duration>,
    ) -> Result<SendRequest<RequestBody>, BackendError> {
        let ticket = match wait {
            None => self.share.try_take()?,
            Some(wait) => self.share.take_within(wait).await?,
        };
        // quinn opens at once while the client's credit lasts. The client grows its grant as
        // streams are used (frp_runtime::credit), so one that has none now may have more
        // within a round trip; one at its ceiling gets `NoStream` after that wait.
        let (mut send, recv) =
            match tokio::time::timeout(credit_wait(&self.conn), self.conn.open_bi()).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(BackendError::Gone(e.to_string())),
                Err(_) => return Err(BackendError::NoStream),
            };
        let mut head = BytesMut::new();
        let header = DataHeader {
            proxy: self.id,
            visitor,
        };
        encode_data_header(&header, &mut head);
        send.write_chunk(head.freeze())
            .await
            .map_err(|e| BackendError::Gone(e.to_string()))?;
        let held = (self.gauges.streams.enter(), self.stats.connections.enter());
        let io = QuicIo::new(send, recv, ticket, held, Arc::clone(&self.stats));
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(MAX_BUF)
            .max_header_size(MAX_BUF)
            .handshake(TokioIo::new(io))
            .await?;
        let name = self.name.clone();
        self.tracker.spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(proxy = %name, error = %e, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
