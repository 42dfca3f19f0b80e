//! The backend side of an http proxy: HTTP/1.1 connections over server-opened QUIC streams in
//! the owning client's connection, kept in a small pool so keep-alive requests reuse streams.
//!
//! Each connection is a data stream like a tcp proxy's (data header, then raw bytes that frpc
//! splices to the local service), with a hyper client connection running over it. A
//! connection goes back to the pool once its previous response has been read to the end;
//! one whose request was not sent (it closed meanwhile) is retried once on a fresh stream.
//! Idle connections older than [`IDLE_TIMEOUT`] or closed by the service are dropped whenever
//! the pool is used; all of them close when the proxy goes away (its session ends).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use frp_proto::{encode_data_header, DataHeader, ProxyId, ProxyName, StreamCode};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use quinn::{RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::policy::HttpPolicy;
use crate::gauges::ServerGauges;

/// Idle connections kept per proxy.
const MAX_IDLE: usize = 32;
/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request could not be answered by the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No stream could be opened in the client's connection.
    #[error("no stream to the client: {0}")]
    Open(String),
    /// Too many connections to this proxy are open.
    #[error("too many open connections to this proxy")]
    Busy,
    /// The exchange failed (the local service was unreachable, reset, or spoke no HTTP).
    #[error("backend exchange failed: {0}")]
    Http(#[from] hyper::Error),
}

/// A quinn bidirectional stream as one tokio IO. Dropped before a clean shutdown (an error,
/// an abandoned exchange), it resets the stream, so a truncated request never looks complete.
#[derive(Debug)]
pub struct QuicIo {
    send: SendStream,
    recv: RecvStream,
    finished: bool,
}

impl QuicIo {
    /// Joins the two halves of a stream.
    pub fn new(send: SendStream, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            finished: false,
        }
    }
}

impl Drop for QuicIo {
    fn drop(&mut self) {
        if !self.finished {
            let code = VarInt::from_u32(StreamCode::VisitorReset.code());
            let _ = self.send.reset(code);
            let _ = self.recv.stop(code);
        }
    }
}

impl AsyncRead for QuicIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf)
    }
}

impl AsyncWrite for QuicIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.finished = true;
        }
        r
    }
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
    conn: quinn::Connection,
    idle: Mutex<Vec<(SendRequest<Incoming>, Instant)>>,
    /// Backend connections open at once; full means 503.
    active: Arc<Semaphore>,
    tracker: TaskTracker,
    open_timeout: Duration,
    gauges: ServerGauges,
}

/// What a backend needs from its session.
#[derive(Debug)]
pub struct BackendParts {
    /// The client's connection.
    pub conn: quinn::Connection,
    /// Where connection tasks are tracked.
    pub tracker: TaskTracker,
    /// How long opening a stream may take.
    pub open_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// The server's counters.
    pub gauges: ServerGauges,
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
            active: Arc::new(Semaphore::new(parts.max_connections)),
            tracker: parts.tracker,
            open_timeout: parts.open_timeout,
            gauges: parts.gauges,
        }
    }

    /// Sends `req` to the local service and returns its response head (the body streams).
    ///
    /// # Errors
    /// [`BackendError`] when no connection could be had or the exchange failed.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<Incoming>,
        visitor: SocketAddr,
    ) -> Result<Response<Incoming>, BackendError> {
        let req = match self.take_idle() {
            Some(mut sender) => match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.recycle(sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // Not sent: the pooled connection had closed. One fresh try.
                    Some(req) => req,
                    None => return Err(e.into_error().into()),
                },
            },
            None => req,
        };
        let mut sender = self.connect(visitor).await?;
        let resp = sender.send_request(req).await?;
        self.recycle(sender);
        Ok(resp)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(SendRequest<Incoming>, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_idle(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle();
        idle.retain(|(s, since)| !s.is_closed() && since.elapsed() < IDLE_TIMEOUT);
        idle.pop().map(|(s, _)| s)
    }

    /// Puts `sender` back in the pool once its connection is ready for another request.
    fn recycle(self: &Arc<Self>, mut sender: SendRequest<Incoming>) {
        let pool: Weak<Self> = Arc::downgrade(self);
        self.tracker.spawn(async move {
            // Ready once the response was read to its end; an error if the connection closed
            // or was upgraded.
            if sender.ready().await.is_err() {
                return;
            }
            if let Some(pool) = pool.upgrade() {
                let mut idle = pool.idle();
                idle.retain(|(s, since)| !s.is_closed() && since.elapsed() < IDLE_TIMEOUT);
                if idle.len() < MAX_IDLE {
                    idle.push((sender, Instant::now()));
                }
            }
        });
    }

    /// Opens a stream to the local service and starts an HTTP/1.1 connection on it.
    async fn connect(&self, visitor: SocketAddr) -> Result<SendRequest<Incoming>, BackendError> {
        let permit = Arc::clone(&self.active)
            .try_acquire_owned()
            .map_err(|_| BackendError::Busy)?;
        let opened = tokio::time::timeout(self.open_timeout, self.conn.open_bi()).await;
        let (mut send, recv) = match opened {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(BackendError::Open(e.to_string())),
            Err(_) => return Err(BackendError::Open("timed out".into())),
        };
        let mut head = BytesMut::new();
        encode_data_header(
            &DataHeader {
                proxy: self.id,
                visitor,
            },
            &mut head,
        );
        let io = {
            send.write_all(&head)
                .await
                .map_err(|e| BackendError::Open(e.to_string()))?;
            QuicIo::new(send, recv)
        };
        let (sender, conn) = http1::Builder::new().handshake(TokioIo::new(io)).await?;
        let (name, stream) = (self.name.clone(), self.gauges.streams.enter());
        self.tracker.spawn(async move {
            let _held = (permit, stream);
            if let Err(e) = conn.with_upgrades().await {
                debug!(proxy = %name, error = %e, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}
