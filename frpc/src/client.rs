//! The reconnect loop: connect, run a session, back off, again, until told to stop. Reloads
//! that arrive between sessions are applied here; those during a session, by the session.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use frp_proto::CloseCode;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::ConnectionError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::config::ClientSettings;
use crate::handle::{ClientHandle, Shared};
use crate::register::{Established, Registered, SessionError};
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
        quic_config(&settings)?;
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
        let attempt = self.shared.attempt(self.shared.current());
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
            SessionEnd::Moved(reg, answer) => Next::Serve(reg, Some(answer)),
        }
    }

    /// A connection attempt failed or a session ended with `e`.
    fn failed(&self, e: SessionError, backoff: &mut Backoff) -> Next {
        match e {
            SessionError::Permanent(reason) => {
                error!(%reason, "server refused this client for good; not retrying");
                self.note_error(reason.clone());
                Next::Stop(Err(ClientError::Permanent(reason)))
            }
            SessionError::Transient(reason) => {
                self.note_error(reason);
                Next::Wait(backoff.next_delay())
            }
            SessionError::Contested(reason) => {
                error!(%reason, "the server keeps another connection with this certificate");
                self.note_error(reason);
                Next::Wait(backoff.next_delay().max(contested_delay()))
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
        let attempt = self.shared.attempt(Arc::clone(&apply.settings));
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

/// The QUIC client config for `settings`: their TLS identity and transport tuning.
fn quic_config(settings: &ClientSettings) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(Arc::clone(&settings.tls))
        .context("tls config is not usable for quic")?;
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    quic.transport_config(settings.quic.transport_config()?);
    Ok(quic)
}

impl Shared {
    /// Resolves the server, binds a UDP socket of the same family and completes a handshake.
    pub(crate) async fn connect(
        &self,
        settings: Arc<ClientSettings>,
    ) -> Result<Established, SessionError> {
        let s = &settings;
        let transient = |e: anyhow::Error| SessionError::Transient(format!("{e:#}"));
        let quic = quic_config(s).map_err(transient)?;
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((s.server_host.as_str(), s.server_port))
                .await
                .with_context(|| format!("resolving {}:{}", s.server_host, s.server_port))
                .map_err(transient)?
                .collect();
        // Each attempt takes the next address, so one unreachable address (an IPv6 one on an
        // IPv4-only host, say) cannot hide the others.
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let addr = *addrs
            .get(attempt % addrs.len().max(1))
            .ok_or_else(|| SessionError::Transient(format!("{} has no address", s.server_host)))?;
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = frp_runtime::transport::bind_udp(local).map_err(transient)?;
        let endpoint = frp_runtime::transport::endpoint(socket, None).map_err(transient)?;
        let connecting = endpoint
            .connect_with(quic, addr, &s.server_name)
            .map_err(|e| connect_error(addr, e))?;
        let conn = match tokio::time::timeout(s.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(classify(&e)),
            Err(_) => return Err(SessionError::Transient(format!("no answer from {addr}"))),
        };
        info!(server = %addr, "connected to server");
        Ok(Established {
            settings,
            endpoint,
            conn,
        })
    }
}

/// A session must stay up this long before the reconnect backoff starts over.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// The least a client waits after the server refused it because another connection with its
/// certificate is connected ([`CloseCode::IdentityInUse`]); frps stops refusing after two
/// quiet minutes, so clients that keep trying every minute or so stay apart.
pub(crate) const CONTESTED_WAIT: Duration = Duration::from_secs(60);

/// [`CONTESTED_WAIT`] plus up to half of it again, so clients refused together spread out.
fn contested_delay() -> Duration {
    use rand::Rng as _;
    CONTESTED_WAIT.mul_f64(rand::rng().random_range(1.0..=1.5))
}

/// TLS alerts that retrying cannot fix: a certificate refused by either side, a missing client
/// certificate, a certificate signature that does not verify (51), no common protocol version
/// or ALPN (an unsupported frp-quic major version).
const PERMANENT_ALERTS: &[u8] = &[42, 43, 44, 45, 46, 48, 49, 51, 70, 116, 120];

/// Sorts a connection error into "retry" and "give up".
///
/// Certificate and version failures and explicit refusals by the server are permanent; other
/// TLS alerts (internal errors, decode errors) and everything else are retried.
pub(crate) fn classify(e: &ConnectionError) -> SessionError {
    let permanent_alert = |code: u64| {
        (0x100..0x200).contains(&code) && PERMANENT_ALERTS.contains(&((code - 0x100) as u8))
    };
    match e {
        ConnectionError::TransportError(t) if permanent_alert(u64::from(t.code)) => {
            SessionError::Permanent(format!("tls handshake failed: {t}"))
        }
        ConnectionError::ConnectionClosed(c) if permanent_alert(u64::from(c.error_code)) => {
            SessionError::Permanent(format!("server refused the tls handshake: {c}"))
        }
        ConnectionError::ApplicationClosed(c) => {
            let code = CloseCode::from_code(c.error_code.into_inner());
            let reason = String::from_utf8_lossy(&c.reason);
            match code {
                Some(
                    CloseCode::UnsupportedVersion | CloseCode::Unauthorized | CloseCode::Revoked,
                ) => SessionError::Permanent(format!("server refused this client: {reason}")),
                Some(CloseCode::IdentityInUse) => {
                    SessionError::Contested(format!("server refused this client: {reason}"))
                }
                _ => SessionError::Transient(format!("server closed the connection: {reason}")),
            }
        }
        ConnectionError::VersionMismatch => {
            SessionError::Permanent("server speaks no QUIC version we support".into())
        }
        other => SessionError::Transient(other.to_string()),
    }
}

/// A connection that could not even start: a bad server name is permanent, the rest retried.
fn connect_error(addr: SocketAddr, e: quinn::ConnectError) -> SessionError {
    let reason = format!("cannot connect to {addr}: {e}");
    match e {
        quinn::ConnectError::InvalidServerName(_) | quinn::ConnectError::UnsupportedVersion => {
            SessionError::Permanent(reason)
        }
        _ => SessionError::Transient(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u32, reason: &str) -> ConnectionError {
        ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: quinn::VarInt::from_u32(code),
            reason: reason.as_bytes().to_vec().into(),
        })
    }

    #[test]
    fn a_contested_identity_waits_a_minute_and_unknown_codes_are_retried() {
        let code = CloseCode::IdentityInUse.code();
        match classify(&closed(code, "identity x is already connected")) {
            SessionError::Contested(r) => assert!(r.contains("already connected"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&closed(99, "newer")),
            SessionError::Transient(_)
        ));
        let delay = contested_delay();
        assert!(
            delay >= CONTESTED_WAIT && delay <= CONTESTED_WAIT * 3 / 2,
            "{delay:?}"
        );
    }
}
