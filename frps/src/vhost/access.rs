//! The access log: one line per HTTP request, written when its response body has been sent
//! (or abandoned), so the byte count and duration are the real ones; for an upgraded
//! connection when it closes; `499` for a visitor that hung up before its answer; and one
//! line (method and path `-`) for a request hyper refused itself (`400`, `431`, `408`).
//!
//! Each line goes to `tracing` (target `frps::access`, level info) and to a broadcast channel
//! that tests and the admin API can subscribe to.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::broadcast;
use tracing::info;

/// The body type of every response frps returns.
pub type RespBody = BoxBody<Bytes, hyper::Error>;

/// Entries kept for a slow subscriber before it starts missing some.
const CHANNEL_CAPACITY: usize = 1024;

/// One access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEntry {
    /// The client's address.
    pub client: SocketAddr,
    /// `http` or `https` (terminated at frps).
    pub scheme: &'static str,
    /// The `Host` asked for (normalized), or `-`.
    pub host: String,
    /// The request method.
    pub method: String,
    /// The request path (without the query).
    pub path: String,
    /// The status returned.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// From the request head to the end of the response body.
    pub duration: Duration,
    /// The proxy that served it, or `-`.
    pub proxy: String,
}

/// Requests answered, by scheme (`http`, `https`) and status class (1xx to 5xx).
type Counts = [[AtomicU64; 5]; 2];

/// Where access entries go; it also counts them by scheme and status class for `/metrics`.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: broadcast::Sender<AccessEntry>,
    counts: Arc<Counts>,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            counts: Arc::default(),
        }
    }
}

impl AccessLog {
    /// A receiver of the entries written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AccessEntry> {
        self.tx.subscribe()
    }

    /// Requests answered so far: `(scheme, class, count)` with class `"2xx"` and so on, every
    /// combination present (ten series).
    pub fn counts(&self) -> Vec<(&'static str, String, u64)> {
        let mut out = Vec::with_capacity(10);
        for (scheme, row) in ["http", "https"].into_iter().zip(self.counts.iter()) {
            for (i, n) in row.iter().enumerate() {
                out.push((scheme, format!("{}xx", i + 1), n.load(Ordering::Relaxed)));
            }
        }
        out
    }

    /// Writes one entry.
    pub(crate) fn write(&self, e: AccessEntry) {
        let scheme = usize::from(e.scheme == "https");
        let class = usize::from(e.status / 100).clamp(1, 5) - 1;
        self.counts[scheme][class].fetch_add(1, Ordering::Relaxed);
        info!(
            target: "frps::access",
            client = %e.client, scheme = e.scheme, host = %e.host, method = %e.method,
            path = %e.path, status = e.status, bytes = e.bytes,
            duration_ms = e.duration.as_millis() as u64, proxy = %e.proxy,
            "http request"
        );
        // Nobody subscribed is the normal case.
        let _ = self.tx.send(e);
    }
}

/// A response body that counts what it sends and writes the access entry when dropped.
#[derive(Debug)]
pub struct LoggedBody {
    inner: RespBody,
    entry: Option<AccessEntry>,
    started: Instant,
    log: AccessLog,
}

impl LoggedBody {
    /// Wraps `inner`; `entry` has everything but the byte count and duration.
    pub fn new(inner: RespBody, entry: AccessEntry, started: Instant, log: AccessLog) -> Self {
        Self {
            inner,
            entry: Some(entry),
            started,
            log,
        }
    }
}

impl LoggedBody {
    /// Wraps `inner` without an entry (its line is written elsewhere, as for an upgrade).
    pub fn unlogged(inner: RespBody, log: AccessLog) -> Self {
        Self {
            inner,
            entry: None,
            started: Instant::now(),
            log,
        }
    }
}

/// An entry written with status `499` (nginx's "client closed request") unless it is taken
/// first: dropped with it, the handler's future was dropped, so the visitor hung up before
/// its answer.
#[derive(Debug)]
pub struct Pending {
    entry: Option<AccessEntry>,
    started: Instant,
    log: AccessLog,
}

impl Pending {
    /// Holds `entry` for a request that arrived at `started`.
    pub fn new(entry: AccessEntry, started: Instant, log: AccessLog) -> Self {
        Self {
            entry: Some(entry),
            started,
            log,
        }
    }

    /// The entry, to fill in.
    pub fn entry(&mut self) -> &mut AccessEntry {
        self.entry.get_or_insert_with(AccessEntry::placeholder)
    }

    /// The entry, no longer written on drop.
    pub fn take(mut self) -> AccessEntry {
        self.entry.take().unwrap_or_else(AccessEntry::placeholder)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.status = 499;
            e.duration = self.started.elapsed();
            self.log.write(e);
        }
    }
}

impl AccessEntry {
    /// An entry of dashes, for a connection-level answer with no request to name.
    pub fn placeholder() -> Self {
        Self {
            client: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            scheme: "http",
            host: "-".into(),
            method: "-".into(),
            path: "-".into(),
            status: 0,
            bytes: 0,
            duration: Duration::ZERO,
            proxy: "-".into(),
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.duration = self.started.elapsed();
            self.log.write(e);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            if let Some(e) = self.entry.as_mut() {
                e.bytes += n;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};

    #[tokio::test]
    async fn an_entry_is_written_once_with_the_bytes_sent() {
        let log = AccessLog::default();
        let mut rx = log.subscribe();
        let entry = AccessEntry {
            client: "127.0.0.1:5000".parse().unwrap(),
            scheme: "http",
            host: "a.io".into(),
            method: "GET".into(),
            path: "/".into(),
            status: 200,
            bytes: 0,
            duration: Duration::ZERO,
            proxy: "web".into(),
        };
        let inner = Full::new(Bytes::from_static(b"hello"))
            .map_err(|e| match e {})
            .boxed();
        let body = LoggedBody::new(inner, entry, Instant::now(), log);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
        let got = rx.recv().await.unwrap();
        assert_eq!((got.status, got.bytes, got.proxy.as_str()), (200, 5, "web"));
        assert!(rx.try_recv().is_err(), "exactly one entry");
    }

    #[tokio::test]
    async fn a_pending_entry_is_a_499_unless_taken() {
        let log = AccessLog::default();
        let mut rx = log.subscribe();
        drop(Pending::new(
            AccessEntry::placeholder(),
            Instant::now(),
            log.clone(),
        ));
        assert_eq!(rx.recv().await.unwrap().status, 499);
        let taken = Pending::new(AccessEntry::placeholder(), Instant::now(), log).take();
        assert_eq!(taken.status, 0);
        assert!(rx.try_recv().is_err(), "a taken entry is not written");
    }
}
