//! The reconnect loop: connect, run a session, back off, again, until told to stop. Reloads
//! that arrive between sessions are applied here; those during a session, by the session.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::config::ClientSettings;
use crate::handle::{ClientHandle, Shared};
use crate::register::{Registered, SessionError};
use crate::reload::{restart_needed, Apply, Origin, ProxyDiff, ReloadError, ReloadReport};
use crate::session::{Answer, Session, SessionEnd};
use crate::status::ClientStatus;
use crate::stream::ClientGauges;

/// Why the client gave up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server (or this client) refused in a way retrying cannot fix.
    #[error("permanent refusal: {0}")]
    Permanent(String),
    /// The client could not be set up at all.
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

/// An frpc client; [`run`](Client::run) it.
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Apply>,
}

/// What the reconnect loop does next.
enum Next {
    /// Connect now; answer this reload once registered.
    Connect(Option<Answer>),
    /// Wait out the backoff, then connect.
    Wait(Duration),
    /// Serve this registered session; answer this reload.
    Serve(Box<Registered>, Option<Answer>),
    /// Stop with this result.
    Stop(Result<(), ClientError>),
}

impl Client {
    /// Prepares a client.
    ///
    /// # Errors
    /// Fails when the TLS config is unusable for QUIC.
    pub fn new(settings: ClientSettings) -> Result<Self, ClientError> {
        crate::dial::quic_config(&settings)?;
        let (shared, commands) = Shared::new(settings);
        Ok(Self { shared, commands })
    }

    /// Snapshots of the client's state, updated on every change.
    pub fn status(&self) -> watch::Receiver<ClientStatus> {
        self.shared.status.subscribe()
    }

    /// Live counts of open streams and local connections.
    pub fn gauges(&self) -> ClientGauges {
        self.shared.gauges.clone()
    }

    /// A handle for the admin API and signal handlers: status, settings, metrics, reloads.
    pub fn handle(&self) -> ClientHandle {
        ClientHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Connects and serves until `shutdown` is cancelled (then `Ok(())`), reconnecting with
    /// backoff whenever the connection fails or ends, and applying reloads.
    ///
    /// # Errors
    /// [`ClientError::Permanent`] when the server refuses this client's certificate or
    /// version, or this client refuses the server's certificate.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ClientError> {
        let mut bounds = self.shared.current().backoff;
        let mut backoff = Backoff::new(bounds);
        let mut next = Next::Connect(None);
        let result = loop {
            // A reload may have changed the reconnect delays.
            if self.shared.current().backoff != bounds {
                bounds = self.shared.current().backoff;
                backoff = Backoff::new(bounds);
            }
            next = match next {
                Next::Connect(answer) => self.connect(answer, &shutdown, &mut backoff).await,
                Next::Wait(delay) => self.wait(delay, &shutdown).await,
                Next::Serve(reg, answer) => self.serve(*reg, answer, &shutdown, &mut backoff).await,
                Next::Stop(result) => break result,
            };
        };
        // Sessions a reload replaced finish draining (each within its grace period).
        self.shared.background.close();
        self.shared.background.wait().await;
        result
    }

    /// One connection attempt with the settings in force.
    async fn connect(
        &mut self,
        answer: Option<Answer>,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Next {
        self.shared.status.send_modify(|s| s.next_retry = None);
        let attempt = self.shared.attempt(self.shared.current(), false);
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => None,
            cmd = self.commands.recv() => {
                answer_unconnected(answer);
                return self.offline(cmd, shutdown).await;
            }
            r = attempt => Some(r),
        };
        match outcome {
            None => {
                answer_unconnected(answer);
                Next::Stop(Ok(()))
            }
            Some(Ok(reg)) => Next::Serve(Box::new(reg), answer),
            Some(Err(e)) => {
                answer_unconnected(answer);
                self.failed(e, backoff)
            }
        }
    }

    /// Waits out a backoff delay; a reload cuts it short.
    async fn wait(&mut self, delay: Duration, shutdown: &CancellationToken) -> Next {
        info!(retry_in = ?delay, "reconnecting");
        let at = SystemTime::now() + delay;
        self.shared.status.send_modify(|s| s.next_retry = Some(at));
        tokio::select! {
            _ = shutdown.cancelled() => Next::Stop(Ok(())),
            cmd = self.commands.recv() => self.offline(cmd, shutdown).await,
            _ = tokio::time::sleep(delay) => Next::Connect(None),
        }
    }

    /// Serves a registered session until it ends.
    async fn serve(
        &mut self,
        reg: Registered,
        answer: Option<Answer>,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Next {
        let started = Instant::now();
        let session = Session::start(Arc::clone(&self.shared), reg, answer);
        let end = session.run(&mut self.commands, shutdown).await;
        // Only a session that stayed up a while resets the backoff: a server that accepts and
        // then drops us at once must not make us reconnect in a tight loop.
        if started.elapsed() >= STABLE_SESSION {
            backoff.reset();
        }
        match end {
            SessionEnd::Shutdown => Next::Stop(Ok(())),
            SessionEnd::Lost(reason) => self.failed(SessionError::Transient(reason), backoff),
            SessionEnd::Permanent(reason) => self.failed(SessionError::Permanent(reason), backoff),
            SessionEnd::Contested(reason) => self.failed(SessionError::Contested(reason), backoff),
            SessionEnd::Reconnect(answer) => Next::Connect(Some(answer)),
            SessionEnd::Moved(reg, answer) => Next::Serve(reg, answer),
        }
    }

    /// A connection attempt failed or a session ended with `e`.
    fn failed(&self, e: SessionError, backoff: &mut Backoff) -> Next {
        match e {
            SessionError::Permanent(reason) => {
                // Said once, here: the reason names the side that refused and why.
                error!(%reason, "giving up: retrying cannot fix this");
                self.shared
                    .status
                    .send_modify(|s| s.last_error = Some(reason.clone()));
                Next::Stop(Err(ClientError::Permanent(reason)))
            }
            SessionError::Transient(reason) => {
                self.note_error(reason);
                Next::Wait(backoff.next_delay())
            }
            SessionError::Contested(reason) => {
                error!(%reason, "the server keeps another connection with this certificate");
                self.note_error(reason);
                Next::Wait(backoff.next_delay().max(crate::dial::contested_delay()))
            }
        }
    }

    /// A reload while no session is up: a reloaded file is adopted as it is (the next
    /// connection uses it, at once); new server settings only once they work.
    async fn offline(&mut self, cmd: Option<Apply>, shutdown: &CancellationToken) -> Next {
        let Some(apply) = cmd else {
            return Next::Connect(None);
        };
        let old = self.shared.current();
        let mut report = ProxyDiff::between(&old.proxies, &apply.settings.proxies).report();
        report.restart_needed = restart_needed(&old, &apply.settings);
        report.server_moved = !old.same_server(&apply.settings);
        if apply.origin == Origin::Reload {
            self.shared.adopt(&apply.settings);
            let _ = apply.reply.send(Ok(report));
            return Next::Connect(None);
        }
        let attempt = self.shared.attempt(Arc::clone(&apply.settings), false);
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => None,
            r = attempt => Some(r),
        };
        match outcome {
            Some(Ok(reg)) => Next::Serve(
                Box::new(reg),
                Some(Answer {
                    reply: apply.reply,
                    report,
                }),
            ),
            Some(Err(e)) => {
                warn!(reason = %e.reason(), "new server settings failed; keeping the current ones");
                let _ = apply
                    .reply
                    .send(Err(ReloadError::Server(e.reason().to_string())));
                Next::Connect(None)
            }
            None => Next::Stop(Ok(())),
        }
    }

    fn note_error(&self, reason: String) {
        warn!(%reason, "connection to server ended");
        self.shared.metrics.reconnected();
        self.shared.status.send_modify(|s| {
            s.last_error = Some(reason);
            s.reconnects += 1;
        });
    }
}

/// Answers a reload that waited for a session which did not come (yet).
fn answer_unconnected(answer: Option<Answer>) {
    if let Some(a) = answer {
        let report = ReloadReport {
            connected: false,
            ..a.report
        };
        let _ = a.reply.send(Ok(report));
    }
}

/// A session must stay up this long before the reconnect backoff starts over.
const STABLE_SESSION: Duration = Duration::from_secs(10);
