//! One registered session: serve the streams the server opens, read the control stream (its
//! one reader), and apply reloads while it runs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use frp_proto::{
    CloseCode, ControlMsg, GoingAway, ProxyId, ProxyName, ProxyOutcome, ProxyResult, StreamCode,
};
use frp_runtime::credit::CreditLedger;
use frp_runtime::link::{Link as Connection, LinkError, LinkRecv, LinkSend};
use frp_runtime::splice::reset_stream;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::ClientSettings;
use crate::dial::classify;
use crate::handle::Shared;
use crate::register::{Reader, Registered, SessionError, Writer};
use crate::reload::{Apply, ReloadReport, Reply};
use crate::session_reload::{moved_end, Applied, InFlight, Moving};
use crate::status::ProxyState;
use crate::stream::{self, Targets};

/// How long sending a `GoingAway` may take before shutdown goes on without it.
const NOTICE_WAIT: Duration = Duration::from_secs(1);

/// How a session that was established ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// We were told to stop and drained.
    Shutdown,
    /// The connection ended; reconnect after a backoff.
    Lost(String),
    /// The server refused us in a way retrying cannot fix.
    Permanent(String),
    /// The server keeps another connection with our identity (two clients share one
    /// certificate): retry, but only after [`crate::dial::CONTESTED_WAIT`].
    Contested(String),
    /// A reload needs a new session at once (the server is older than minor 2).
    Reconnect(Answer),
    /// The connection moved (to new server settings, or back to QUIC): serve this session
    /// instead, answering the reload that moved it.
    Moved(Box<Registered>, Option<Answer>),
}

/// A reload to answer once the next session has registered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) reply: Reply,
    pub(crate) report: ReloadReport,
}

/// A session after registration.
pub(crate) struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) settings: Arc<ClientSettings>,
    pub(crate) endpoint: Option<quinn::Endpoint>,
    pub(crate) conn: Connection,
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    pub(crate) minor: u16,
    pub(crate) targets: Targets,
    /// The id the server gave each bound proxy.
    pub(crate) ids: HashMap<ProxyName, ProxyId>,
    pub(crate) streams: TaskTracker,
    /// The stream credit granted to the server, grown as the streams are used.
    pub(crate) credit: CreditLedger,
    pub(crate) reload: Option<InFlight>,
    pub(crate) reading: bool,
    /// Whether we sent `GoingAway` (a session sends it once).
    pub(crate) said_goodbye: bool,
    /// Whether the server sent `GoingAway`: its control stream may end or be reset after it.
    pub(crate) server_leaving: bool,
}

impl Session {
    /// Starts serving a registered session: publishes its results, answers the reload that
    /// led to it.
    pub(crate) fn start(shared: Arc<Shared>, reg: Registered, answer: Option<Answer>) -> Self {
        let credit = reg
            .est
            .conn
            .stream_credit(reg.est.settings.quic.max_incoming_streams);
        shared.gauges.stream_credit.set(credit.granted().into());
        let mut s = Self {
            shared,
            settings: Arc::clone(&reg.est.settings),
            endpoint: reg.est.endpoint,
            conn: reg.est.conn,
            reader: reg.reader,
            writer: reg.writer,
            minor: reg.minor,
            targets: Arc::new(RwLock::new(HashMap::new())),
            ids: HashMap::new(),
            streams: TaskTracker::new(),
            credit: CreditLedger::new(credit, Instant::now()),
            reload: None,
            reading: true,
            said_goodbye: false,
            server_leaving: false,
        };
        s.shared.session_up(&s.settings, &s.conn, s.minor);
        s.apply_results(reg.results);
        if let Some(a) = answer {
            let _ = a.reply.send(Ok(ReloadReport {
                connected: true,
                ..a.report
            }));
        }
        s
    }

    /// Serves until the connection ends, `shutdown` is cancelled or a reload replaces the
    /// session.
    pub(crate) async fn run(
        mut self,
        commands: &mut mpsc::Receiver<Apply>,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let mut moving: Option<Moving> = None;
        let mut probe = crate::probe::next_probe(&self.settings, self.conn.transport());
        let end = loop {
            let idle = self.reload.is_none() && moving.is_none();
            let deadline = self.reload.as_ref().map(|f| f.deadline);
            tokio::select! {
                _ = shutdown.cancelled() => break SessionEnd::Shutdown,
                accepted = self.conn.accept_bi() => match accepted {
                    Ok((send, recv)) => self.spawn_stream(send, recv),
                    Err(e) => break self.lost(&e, moving.take()).await,
                },
                msg = self.reader.next(), if self.reading => {
                    if let Some(end) = self.on_control(msg).await {
                        break end;
                    }
                }
                cmd = commands.recv(), if idle => {
                    let Some(apply) = cmd else { continue };
                    match self.on_apply(apply).await {
                        Applied::Done => {}
                        Applied::Move(m) => moving = Some(m),
                        Applied::End(end) => break end,
                    }
                }
                () = crate::probe::until(deadline) => {
                    break self.violation("no answer to our proxy changes in time".into());
                }
                () = crate::probe::until(probe), if idle => {
                    let attempt = self.shared.attempt(Arc::clone(&self.settings), true);
                    moving = Some(Moving { attempt, answer: None });
                    probe = crate::probe::next_probe(&self.settings, self.conn.transport());
                }
                result = async {
                    match moving.as_mut() {
                        Some(m) => m.attempt.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(m) = moving.take() {
                        if let Some(end) = moved_end(result, m.answer) {
                            break end;
                        }
                    }
                }
            }
        };
        self.finish(end, shutdown).await
    }

    /// What the session does on its way out, by how it ended.
    async fn finish(mut self, end: SessionEnd, shutdown: &CancellationToken) -> SessionEnd {
        if let Some(f) = self.reload.take() {
            let report = ReloadReport {
                connected: false,
                ..f.answer.report
            };
            let _ = f.answer.reply.send(Ok(report));
        }
        self.shared.session_down();
        match &end {
            SessionEnd::Shutdown => self.drain("client shutting down", None).await,
            SessionEnd::Reconnect(_) | SessionEnd::Moved(..) => {
                let background = self.shared.background.clone();
                // Moving back to QUIC, open connections finish on TCP however long they take
                // (until the client shuts down); a reload's move gives them the grace period.
                let hold = match &end {
                    SessionEnd::Moved(_, None) => Some(shutdown.clone()),
                    _ => None,
                };
                background.spawn(async move { self.drain("client reconnecting", hold).await });
            }
            SessionEnd::Lost(_) | SessionEnd::Permanent(_) | SessionEnd::Contested(_) => {
                // Give the close a moment to reach the server so it frees our ports at once.
                if let Some(endpoint) = &self.endpoint {
                    let wait = endpoint.wait_idle();
                    let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
                }
            }
        }
        end
    }

    /// The connection ended. A move under way may still succeed: its new connection is what
    /// took this one's place when the server is the same.
    async fn lost(&mut self, e: &LinkError, moving: Option<Moving>) -> SessionEnd {
        if let Some(m) = moving {
            let result = m.attempt.await;
            if let Some(end) = moved_end(result, m.answer) {
                return end;
            }
        }
        ended(classify(e))
    }

    fn spawn_stream(&mut self, send: LinkSend, recv: LinkRecv) {
        let targets = Arc::clone(&self.targets);
        let shared = Arc::clone(&self.shared);
        self.streams.spawn(stream::handle(
            send,
            recv,
            targets,
            shared,
            self.credit.stream_end(),
        ));
        let running = self.streams.len();
        if let Some(more) = self
            .credit
            .on_open(running, Instant::now(), self.conn.rtt())
        {
            self.conn.set_stream_credit(more);
            self.shared.gauges.stream_credit.set(more.into());
        }
    }

    /// One control message (or the stream's end).
    async fn on_control(
        &mut self,
        msg: Option<Result<ControlMsg, frp_proto::CodecError>>,
    ) -> Option<SessionEnd> {
        match msg {
            Some(Ok(ControlMsg::GoingAway(g))) => {
                info!(reason = %g.reason, "server is going away; open streams may finish");
                self.server_leaving = true;
                None
            }
            Some(Ok(ControlMsg::ProxiesClosed(c))) if self.minor >= 2 => {
                self.on_closed(c);
                self.reload_progress();
                None
            }
            Some(Ok(ControlMsg::AddResults(r)))
                if self
                    .reload
                    .as_ref()
                    .is_some_and(|f| f.adding && f.removing.is_none()) =>
            {
                if let Some(f) = self.reload.as_mut() {
                    f.adding = false;
                }
                self.apply_results(r.results);
                self.reload_progress();
                None
            }
            Some(Ok(other)) => {
                let reason = format!("unexpected {} from server", other.kind_str());
                Some(self.violation(reason))
            }
            // The connection ending also ends the control stream; accept_bi reports why.
            Some(Err(_)) | None if self.server_leaving || self.conn.close_reason().is_some() => {
                self.reading = false;
                None
            }
            Some(Err(e)) => Some(self.violation(format!("bad control frame: {e}"))),
            None => Some(self.violation("server closed the control stream".into())),
        }
    }

    /// Logs each proxy's outcome, publishes it in the status, and maps ids to local services.
    pub(crate) fn apply_results(&mut self, results: Vec<ProxyResult>) {
        let mut states = Vec::new();
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        for r in results {
            let Some(local) = self.settings.proxies.iter().find(|p| p.name == r.name) else {
                warn!(proxy = %r.name, "server answered for a proxy we did not ask for");
                continue;
            };
            let state = match r.outcome {
                ProxyOutcome::Bound { id, remote_addr } => {
                    info!(proxy = %r.name, %remote_addr, local = %format!("{}:{}", local.local_host, local.local_port), "proxy published");
                    targets.insert(id, Arc::new(local.clone()));
                    self.ids.insert(r.name.clone(), id);
                    ProxyState::Bound(remote_addr)
                }
                ProxyOutcome::Refused { reason } => {
                    warn!(proxy = %r.name, %reason, "proxy refused by server");
                    ProxyState::Refused(reason)
                }
            };
            states.push((r.name, state));
        }
        drop(targets);
        self.shared.status.send_modify(|s| {
            for (name, state) in states {
                s.proxies.insert(name, state);
            }
        });
    }

    /// Sends `GoingAway` unless this session already did.
    pub(crate) async fn going_away(&mut self, reason: &str) {
        if std::mem::replace(&mut self.said_goodbye, true) {
            return;
        }
        let notice = ControlMsg::GoingAway(GoingAway {
            reason: reason.into(),
        });
        let _ = tokio::time::timeout(NOTICE_WAIT, self.writer.send(notice)).await;
    }

    pub(crate) fn violation(&self, reason: String) -> SessionEnd {
        warn!(%reason, "protocol violation by server");
        self.conn
            .close(CloseCode::ProtocolViolation.code(), reason.as_bytes());
        SessionEnd::Lost(reason)
    }

    /// Graceful stop: tell the server (it closes our public ports), let open streams finish
    /// within the grace period (which starts once `hold`, if any, is cancelled), then close
    /// the connection.
    async fn drain(mut self, why: &str, hold: Option<CancellationToken>) {
        self.going_away(why).await;
        self.streams.close();
        let period = self.settings.grace;
        let grace = async move {
            if let Some(hold) = hold {
                hold.cancelled().await;
            }
            tokio::time::sleep(period).await;
        };
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = self.streams.wait() => break,
                _ = &mut grace => {
                    warn!(open = self.streams.len(), "grace period over; resetting open streams");
                    break;
                }
                // Streams the server opened before it saw our notice: refuse them at once.
                accepted = self.conn.accept_bi() => match accepted {
                    Ok((mut send, mut recv)) => {
                        reset_stream(&mut send, &mut recv, StreamCode::Shutdown);
                    }
                    Err(_) => break,
                },
            }
        }
        let code = CloseCode::ClientShutdown;
        self.conn.close(code.code(), b"client shutting down");
        // Let the splices see the close and reset their sockets before the caller moves on.
        let _ = tokio::time::timeout(NOTICE_WAIT, self.streams.wait()).await;
        if let Some(endpoint) = &self.endpoint {
            let _ = tokio::time::timeout(NOTICE_WAIT, endpoint.wait_idle()).await;
        }
    }
}

/// How a session ends on `e`.
pub(crate) fn ended(e: SessionError) -> SessionEnd {
    match e {
        SessionError::Transient(reason) => SessionEnd::Lost(reason),
        SessionError::Permanent(reason) => SessionEnd::Permanent(reason),
        SessionError::Contested(reason) => SessionEnd::Contested(reason),
    }
}
