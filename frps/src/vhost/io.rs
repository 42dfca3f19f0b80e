//! The visitor side of a vhost connection: who may connect ([`Admission`]: connections open
//! at once on the vhost ports, in total and per source address), and the socket wrapper
//! ([`VisitorIo`]) that holds that admission for as long as the socket lives, upgraded
//! (WebSocket) tunnels included.
//!
//! [`VisitorIo`] also bounds how long a write may stall on a visitor that stops reading (like
//! nginx's `send_timeout`), counts what the visitor sent, and resets the socket instead of
//! closing it cleanly when [`ConnState::reset_on_close`] was set (a backend that reset), so a
//! truncated transfer never looks like a clean end.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// TCP keep-alive on visitor sockets: a peer that vanished is noticed within about two
/// minutes (60 s idle, then 4 probes 15 s apart) instead of holding its slot forever.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_RETRIES: u32 = 4;

/// Turns TCP keep-alive on and Nagle off for an accepted visitor socket.
pub fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}

/// The address a per-source limit counts: an IPv4 address, or an IPv6 /64 (one host usually
/// has a whole /64 to pick addresses from). An IPv6 connection also counts against its /48
/// (one site usually has a /48, so 65,536 /64s), which gets [`SITE_FACTOR`] times the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
    V6Site(u64),
}

/// How many per-IP quotas one IPv6 /48 gets in all.
const SITE_FACTOR: usize = 4;

/// The sources a connection from `ip` counts against, with how many quotas each gets.
fn sources(ip: IpAddr) -> Vec<(Source, usize)> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => vec![(Source::V4(u32::from(v4)), 1)],
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            vec![
                (Source::V6((bits >> 64) as u64), 1),
                (Source::V6Site((bits >> 80) as u64), SITE_FACTOR),
            ]
        }
    }
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `vhostMaxConnections` are open.
    Total,
    /// `vhostMaxConnectionsPerIP` are open from this source.
    PerSource,
}

/// Connections open at once on the vhost ports (shared by both), in total and per source.
#[derive(Clone, Debug)]
pub struct Admission {
    total: Arc<Semaphore>,
    per_source: Arc<Mutex<HashMap<Source, usize>>>,
    max_per_source: usize,
}

impl Admission {
    /// At most `total` connections, `per_source` of them from one source.
    pub fn new(total: usize, per_source: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_source: Arc::default(),
            max_per_source: per_source,
        }
    }

    /// A slot for a connection from `ip`, released when the [`Slot`] is dropped.
    ///
    /// # Errors
    /// Which limit is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let sources = sources(ip);
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refused::Total)?;
        let mut counts = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        let full = |(source, quotas): &(Source, usize)| {
            counts.get(source).copied().unwrap_or(0) >= self.max_per_source.saturating_mul(*quotas)
        };
        if sources.iter().any(full) {
            return Err(Refused::PerSource);
        }
        for (source, _) in &sources {
            *counts.entry(*source).or_insert(0) += 1;
        }
        Ok(Slot {
            _total: permit,
            sources: sources.into_iter().map(|(s, _)| s).collect(),
            counts: Arc::clone(&self.per_source),
        })
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    _total: OwnedSemaphorePermit,
    sources: Vec<Source>,
    counts: Arc<Mutex<HashMap<Source, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for source in &self.sources {
            if let Some(n) = counts.get_mut(source) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(source);
                }
            }
        }
    }
}

/// What the request handlers of one connection share with its socket.
#[derive(Debug, Default)]
pub struct ConnState {
    /// Reset the socket (RST) instead of closing it cleanly when it is dropped.
    pub reset_on_close: AtomicBool,
    /// Bytes the visitor sent so far.
    pub bytes_in: AtomicU64,
    /// Requests that reached the handler so far.
    pub requests: AtomicU64,
}

/// An admitted visitor socket; see the module docs.
#[derive(Debug)]
pub struct VisitorIo {
    tcp: TcpStream,
    _slot: Slot,
    state: Arc<ConnState>,
    send_timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

impl VisitorIo {
    /// Wraps `tcp`, holding `slot`; a write that makes no progress for `send_timeout` fails.
    pub fn new(tcp: TcpStream, slot: Slot, send_timeout: Duration) -> Self {
        Self {
            tcp,
            _slot: slot,
            state: Arc::default(),
            send_timeout,
            stall: None,
        }
    }

    /// The state shared with this connection's request handlers.
    pub fn state(&self) -> Arc<ConnState> {
        Arc::clone(&self.state)
    }

    /// Tracks a write's progress: `Pending` starts (or checks) the stall timer.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let timeout = self.send_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the visitor stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for VisitorIo {
    fn drop(&mut self) {
        if self.state.reset_on_close.load(Ordering::Relaxed) {
            frp_runtime::splice::rst_on_close(&self.tcp);
        }
    }
}

impl AsyncRead for VisitorIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.state.bytes_in.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for VisitorIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_in_total_and_per_source() {
        let a = Admission::new(3, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = a.admit(ip("192.0.2.1")).unwrap();
        let _two = a.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(a.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerSource);
        let _v6 = a.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(a.admit(ip("198.51.100.1")).unwrap_err(), Refused::Total);
        drop(one);
        let _again = a.admit(ip("192.0.2.1")).unwrap();
        let b = Admission::new(10, 1);
        let _x = b.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(
            b.admit(ip("2001:db8::ffff")).unwrap_err(),
            Refused::PerSource,
            "one /64 is one source"
        );
        assert!(b.admit(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn one_ipv6_site_gets_four_quotas_in_all() {
        let a = Admission::new(100, 2);
        let ip = |s: String| s.parse::<IpAddr>().unwrap();
        let held: Vec<Slot> = (0..8)
            .map(|i| a.admit(ip(format!("2001:db8:0:{i}::1"))).unwrap())
            .collect();
        assert_eq!(
            a.admit(ip("2001:db8:0:99::1".into())).unwrap_err(),
            Refused::PerSource,
            "the /48 is full with 4 x 2 connections"
        );
        assert!(a.admit(ip("2001:db8:1::1".into())).is_ok(), "another /48");
        drop(held);
        assert!(a.admit(ip("2001:db8:0:99::1".into())).is_ok());
        assert!(a.per_source.lock().unwrap().len() <= 4, "counts are freed");
    }
}
