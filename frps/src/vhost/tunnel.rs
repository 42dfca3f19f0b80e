//! Upgraded connections (WebSocket and other `101 Switching Protocols`): bytes copied both
//! ways between the visitor and the backend stream for as long as both keep them open.
//!
//! The visitor's connection slot and the proxy's connection permit live in the two sockets,
//! so they are held until the tunnel ends. A tunnel with no bytes either way for the idle
//! timeout is closed; a backend that resets (or the idle timeout) resets the visitor too,
//! rather than ending it with a clean FIN. Its access-log line is written when it closes,
//! with the real duration.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use super::access::{AccessEntry, AccessLog};
use super::io::ConnState;

/// One upgrade waiting for both ends to switch.
#[derive(Debug)]
pub struct Upgrade {
    /// The visitor's side.
    pub on_client: OnUpgrade,
    /// The backend's side.
    pub on_backend: OnUpgrade,
}

/// What a tunnel logs and reports to.
#[derive(Debug)]
pub struct TunnelLog {
    /// The request's access entry, written at the end.
    pub entry: AccessEntry,
    /// When the request arrived.
    pub started: Instant,
    /// Where the entry goes.
    pub log: AccessLog,
    /// The visitor connection's state (to reset it).
    pub conn: Arc<ConnState>,
}

/// Last activity of a tunnel, and whether its backend side failed.
#[derive(Debug)]
struct Activity {
    last: Mutex<tokio::time::Instant>,
    backend_failed: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    }

    fn last(&self) -> tokio::time::Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once nothing moved for `idle`.
    async fn idle(&self, idle: Duration) {
        loop {
            let last = self.last();
            tokio::time::sleep_until(last + idle).await;
            if self.last() == last {
                return;
            }
        }
    }
}

/// One side of a tunnel: records activity, and failures of the backend side.
struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
    backend: bool,
}

impl<T> Watched<T> {
    fn note<R>(&self, r: &Poll<io::Result<R>>) {
        match r {
            Poll::Ready(Ok(_)) => self.activity.touch(),
            Poll::Ready(Err(_)) if self.backend => {
                self.activity.backend_failed.store(true, Ordering::Release);
            }
            _ => {}
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        self.note(&r);
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.note(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.note(&r);
        r
    }
}

/// Runs one tunnel to its end; see the module docs.
pub async fn tunnel(up: Upgrade, idle: Duration, mut log: TunnelLog) {
    let proxy = log.entry.proxy.clone();
    let (client, backend) = match tokio::try_join!(up.on_client, up.on_backend) {
        Ok(both) => both,
        Err(e) => {
            debug!(%proxy, error = %e, "upgrade failed");
            return finish(log);
        }
    };
    let activity = Arc::new(Activity {
        last: Mutex::new(tokio::time::Instant::now()),
        backend_failed: AtomicBool::new(false),
    });
    let watched = |io, backend| Watched {
        io: TokioIo::new(io),
        activity: Arc::clone(&activity),
        backend,
    };
    let (mut client, mut backend) = (watched(client, false), watched(backend, true));
    // Dropping the copy on idle abandons the tunnel, which is what the timeout is for.
    let copied = tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut backend) => Some(r),
        () = activity.idle(idle) => None,
    };
    let reset = match copied {
        Some(Ok((up, down))) => {
            debug!(%proxy, up, down, "upgraded connection closed");
            log.entry.bytes = down;
            false
        }
        Some(Err(e)) => {
            debug!(%proxy, error = %e, "upgraded connection failed");
            activity.backend_failed.load(Ordering::Acquire)
        }
        None => {
            debug!(%proxy, ?idle, "upgraded connection idle; closing");
            true
        }
    };
    if reset {
        log.conn.reset_on_close.store(true, Ordering::Release);
    }
    finish(log);
}

fn finish(mut log: TunnelLog) {
    log.entry.duration = log.started.elapsed();
    log.log.write(log.entry);
}
