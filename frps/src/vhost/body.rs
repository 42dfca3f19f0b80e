//! A visitor's request body on its way to the backend, with the clocks that bound the
//! exchange:
//!
//! - the body may wait for the visitor's next bytes at most `idle` (like nginx's
//!   `client_body_timeout`), then it fails and the visitor gets `408`;
//! - [`Progress::deadline`] gives up when the body made no progress for `idle` while the
//!   backend was not taking it (a service that stopped reading: `504`), and starts the
//!   `vhostHTTPTimeout` for the response head only once the body has been sent, so a slow
//!   upload is not cut off by it (like Go's `ResponseHeaderTimeout`);
//! - a body the visitor frames wrongly (a malformed chunk) is marked, so the visitor gets
//!   `400`, not the `502` of a failed exchange.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The error type of bodies frps forwards.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The visitor sent no body bytes for the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the visitor sent no request body bytes in time")]
pub struct VisitorIdle;

/// How far a request body got, shared between the body and the request's handler.
#[derive(Debug)]
pub struct Progress {
    last: Mutex<Instant>,
    done: AtomicBool,
    finished: Notify,
    waiting_on_visitor: AtomicBool,
    visitor_idle: AtomicBool,
    visitor_malformed: AtomicBool,
}

/// Why an exchange was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// The visitor stopped sending its body.
    Visitor,
    /// The backend stopped reading the body.
    Backend,
    /// The body was sent and no response head came in time.
    NoResponse,
}

impl Progress {
    fn new(done: bool) -> Self {
        Self {
            last: Mutex::new(Instant::now()),
            done: AtomicBool::new(done),
            finished: Notify::new(),
            waiting_on_visitor: AtomicBool::new(false),
            visitor_idle: AtomicBool::new(false),
            visitor_malformed: AtomicBool::new(false),
        }
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn finish(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            // One waiter (the handler); a permit is stored if it is not waiting yet.
            self.finished.notify_one();
        }
    }

    /// Whether the body failed because the visitor went quiet.
    pub fn visitor_idle(&self) -> bool {
        self.visitor_idle.load(Ordering::Acquire)
    }

    /// Whether the body failed because the visitor framed it wrongly (not because it hung up).
    pub fn visitor_malformed(&self) -> bool {
        self.visitor_malformed.load(Ordering::Acquire)
    }

    /// Resolves when the exchange should be given up (see the module docs). Cancel-safe.
    pub async fn deadline(&self, response: Duration, idle: Duration) -> Stall {
        loop {
            if self.done.load(Ordering::Acquire) {
                tokio::time::sleep(response).await;
                return Stall::NoResponse;
            }
            let last = self.last();
            tokio::select! {
                () = self.finished.notified() => {}
                () = tokio::time::sleep_until(last + idle) => {
                    if self.last() == last && !self.done.load(Ordering::Acquire) {
                        return match self.waiting_on_visitor.load(Ordering::Acquire) {
                            true => Stall::Visitor,
                            false => Stall::Backend,
                        };
                    }
                }
            }
        }
    }
}

/// Whether a body error is the visitor's framing (hyper's chunked decoder says
/// `InvalidData`/`InvalidInput`), not a visitor that hung up or reset.
fn malformed(e: &hyper::Error) -> bool {
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    io.is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        )
    })
}

/// A request body forwarded to the backend; see the module docs.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Incoming>,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    progress: Arc<Progress>,
}

impl RequestBody {
    /// Wraps a visitor's body; `idle` bounds each wait for the visitor.
    pub fn new(inner: Incoming, idle: Duration) -> Self {
        let done = inner.is_end_stream();
        Self {
            inner: Some(inner),
            idle,
            timer: None,
            progress: Arc::new(Progress::new(done)),
        }
    }

    /// An empty body (a retried request whose body was empty).
    pub fn empty() -> Self {
        Self {
            inner: None,
            idle: Duration::ZERO,
            timer: None,
            progress: Arc::new(Progress::new(true)),
        }
    }

    /// The progress shared with the handler.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Waiting for the visitor: fails once the wait exceeds `idle`.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.progress
            .waiting_on_visitor
            .store(true, Ordering::Release);
        let idle = self.idle;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.progress.visitor_idle.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(VisitorIdle))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            this.progress.finish();
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Pending => this.wait(cx),
            Poll::Ready(Some(Ok(frame))) => {
                this.timer = None;
                this.progress
                    .waiting_on_visitor
                    .store(false, Ordering::Release);
                this.progress.touch();
                if inner.is_end_stream() {
                    this.progress.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if malformed(&e) {
                    this.progress
                        .visitor_malformed
                        .store(true, Ordering::Release);
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                this.progress.finish();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
