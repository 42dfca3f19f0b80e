//! The task that drives an HTTP/2 link's connection: it reads and writes the socket, hands
//! frpc the streams frps opens, pings, and carries closes with their codes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Ping, PingPong, Reason};
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::h2::{Alive, H2Tuning, Peer};
use super::h2_stream::{H2Recv, H2Send};
use super::{LinkError, LinkRecv, LinkSend};

/// How long a close may take to reach the peer before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The longest close reason sent in a header.
const MAX_REASON: usize = 256;
const CLOSE_PATH: &str = "/close";
const CODE_HEADER: &str = "frp-close-code";
const REASON_HEADER: &str = "frp-close-reason";

/// What the link's handles and its driver share.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) peer: Peer,
    /// Why the link ended, once it has (the first reason wins).
    pub(crate) ended: watch::Sender<Option<LinkError>>,
    /// The last ping's round trip, in microseconds.
    pub(crate) rtt_us: AtomicU64,
}

impl State {
    pub(crate) fn end(&self, why: LinkError) {
        self.ended.send_if_modified(|e| match e {
            Some(_) => false,
            None => {
                debug!(reason = %why, "http/2 link ended");
                *e = Some(why);
                true
            }
        });
    }
}

/// The driver of one connection.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) state: Arc<State>,
    /// The link's close sender, not kept alive by the driver: when every handle is gone,
    /// `close_rx` ends and the driver closes the connection.
    pub(crate) alive: Weak<Alive>,
    pub(crate) close_rx: mpsc::UnboundedReceiver<(u32, String)>,
    pub(crate) tuning: H2Tuning,
}

/// A close asked for: by a handle, or by the last handle going away.
fn asked(close: Option<(u32, String)>) -> (u32, String) {
    close.unwrap_or_else(|| (0, "connection dropped".into()))
}

impl Driver {
    /// frps's side: the connection until it ends, then its end recorded.
    pub(crate) async fn client<T>(
        mut self,
        mut conn: h2::client::Connection<T, Bytes>,
        opener: SendRequest<Bytes>,
    ) where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pings = keepalive(conn.ping_pong(), self.tuning, &self.state);
        tokio::pin!(pings);
        let end = tokio::select! {
            r = &mut conn => ended_by(r.err()),
            e = &mut pings => e,
            close = self.close_rx.recv() => {
                let (code, reason) = asked(close);
                send_close(opener, code, &reason);
                // frpc closes the connection once it read the close; drive it until then.
                let _ = tokio::time::timeout(CLOSE_WAIT, &mut conn).await;
                LinkError::TcpLocallyClosed(reason)
            }
        };
        self.state.end(end);
    }

    /// frpc's side: the connection until it ends, then its end recorded and the `GOAWAY`
    /// given a moment to leave.
    pub(crate) async fn server<T>(
        mut self,
        mut conn: h2::server::Connection<T, Bytes>,
        tx: mpsc::UnboundedSender<(LinkSend, LinkRecv)>,
    ) where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let end = self.serve(&mut conn, tx).await;
        self.state.end(end);
        let closed = std::future::poll_fn(|cx| conn.poll_closed(cx));
        let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
    }

    async fn serve<T>(
        &mut self,
        conn: &mut h2::server::Connection<T, Bytes>,
        tx: mpsc::UnboundedSender<(LinkSend, LinkRecv)>,
    ) -> LinkError
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pings = keepalive(conn.ping_pong(), self.tuning, &self.state);
        tokio::pin!(pings);
        loop {
            tokio::select! {
                accepted = conn.accept() => match accepted {
                    Some(Ok((request, respond))) => {
                        if let Some(end) = self.take_stream(request, respond, &tx) {
                            conn.abrupt_shutdown(Reason::NO_ERROR);
                            return end;
                        }
                    }
                    Some(Err(e)) => return ended_by(Some(e)),
                    None => return ended_by(None),
                },
                e = &mut pings => return e,
                close = self.close_rx.recv() => {
                    let (code, reason) = asked(close);
                    conn.abrupt_shutdown(Reason::from(code));
                    return LinkError::TcpLocallyClosed(reason);
                }
            }
        }
    }

    /// frpc: hands a stream frps opened to the session, or returns the link's end for a
    /// close.
    fn take_stream(
        &self,
        request: Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
        tx: &mpsc::UnboundedSender<(LinkSend, LinkRecv)>,
    ) -> Option<LinkError> {
        if request.uri().path() == CLOSE_PATH {
            let header = |name| {
                let value: Option<&http::HeaderValue> = request.headers().get(name);
                value.and_then(|v| v.to_str().ok()).map(str::to_string)
            };
            let code = header(CODE_HEADER)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let reason = header(REASON_HEADER).unwrap_or_default();
            return Some(LinkError::TcpClosed { code, reason });
        }
        let Some(alive) = self.alive.upgrade() else {
            respond.send_reset(Reason::REFUSED_STREAM);
            return None;
        };
        let send = match respond.send_response(Response::new(()), false) {
            Ok(send) => send,
            Err(e) => {
                debug!(error = %e, "could not answer a stream");
                return None;
            }
        };
        let recv = H2Recv::body(request.into_body(), Arc::clone(&alive));
        let _ = tx.send((LinkSend::H2(H2Send::new(send, alive)), LinkRecv::H2(recv)));
        None
    }
}

/// frps's close: a last stream naming the code and reason, sent only when a stream slot is
/// free now (a close never waits on the peer).
fn send_close(mut opener: SendRequest<Bytes>, code: u32, reason: &str) {
    let reason: String = reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_REASON)
        .collect();
    let request = Request::post(format!("https://frp{CLOSE_PATH}"))
        .header(CODE_HEADER, code)
        .header(REASON_HEADER, reason)
        .body(());
    if let Ok(request) = request {
        let _ = opener.send_request(request, true);
    }
}

/// Pings every keep-alive interval; resolves when a ping went unanswered for the idle
/// timeout, recording each round trip.
async fn keepalive(ping: Option<PingPong>, tuning: H2Tuning, state: &State) -> LinkError {
    let Some(mut ping) = ping else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(tuning.keepalive).await;
        let sent = Instant::now();
        match tokio::time::timeout(tuning.idle_timeout, ping.ping(Ping::opaque())).await {
            Ok(Ok(_)) => {
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                state.rtt_us.store(us, Ordering::Relaxed);
            }
            Ok(Err(e)) => return LinkError::TcpLost(e.to_string()),
            Err(_) => return LinkError::TcpTimedOut,
        }
    }
}

/// How the connection's own end (an error, or `None` for a clean one) reads as a link end:
/// a `GOAWAY` from frpc carries its close code.
pub(crate) fn ended_by(e: Option<h2::Error>) -> LinkError {
    let Some(e) = e else {
        return LinkError::TcpLost("connection closed".into());
    };
    match e.reason() {
        Some(reason) if e.is_go_away() && e.is_remote() => {
            let code = u32::from(reason);
            let name = frp_proto::CloseCode::from_code(u64::from(code))
                .map_or_else(|| format!("code {code}"), |c| format!("{c:?}"));
            LinkError::TcpClosed { code, reason: name }
        }
        _ => LinkError::TcpLost(e.to_string()),
    }
}
