//! The TCP transport's dial, and `auto`'s race of QUIC against it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use frp_runtime::handshake::TlsRefusal;
use frp_runtime::link::h2::H2Tuning;
use frp_runtime::link::tcp::{self, DialError};
use rustls::pki_types::ServerName;
use tracing::info;

use crate::config::ClientSettings;
use crate::config_transport::QUIC_HEAD_START;
use crate::dial::refusal_error;
use crate::handle::Shared;
use crate::register::{Established, SessionError};

impl Shared {
    /// Connects over TLS on TCP to `transport.tcpPort` and runs HTTP/2 in it.
    pub(crate) async fn connect_tcp(
        &self,
        settings: Arc<ClientSettings>,
    ) -> Result<Established, SessionError> {
        let s = &settings;
        let addr = self.resolve(s, s.tcp_port()).await?;
        let name = ServerName::try_from(s.server_name.clone())
            .map_err(|e| SessionError::Permanent(format!("transport.tls.serverName: {e}")))?;
        let tuning = H2Tuning::from(&s.quic);
        let dial = tcp::dial(addr, name, tcp::client_config(&s.tls), tuning);
        let conn = match tokio::time::timeout(s.connect_timeout, dial).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(dial_error(&e)),
            Err(_) => return Err(no_tcp_answer(addr, s.connect_timeout)),
        };
        info!(server = %addr, transport = "tcp", "connected to server");
        Ok(Established {
            settings,
            endpoint: None,
            conn,
        })
    }

    /// `auto`: QUIC first; once it has had [`QUIC_HEAD_START`] without connecting (or failed
    /// for a reason TCP may not share), TCP too, and whichever connects first is used. A
    /// permanent refusal over QUIC (the server refused our certificate) ends the attempt.
    /// When the last session was over TCP both are dialled at once (see [`head_start`]).
    pub(crate) async fn connect_auto(
        &self,
        settings: Arc<ClientSettings>,
    ) -> Result<Established, SessionError> {
        let quic = self.connect_quic(Arc::clone(&settings));
        tokio::pin!(quic);
        let last_on_tcp = self.last_on_tcp.load(Ordering::Relaxed);
        let head_start = head_start(last_on_tcp, settings.connect_timeout);
        let mut quic_failed = tokio::select! {
            r = &mut quic => match r {
                Ok(est) => return Ok(est),
                Err(e @ SessionError::Permanent(_)) => return Err(e),
                Err(e) => Some(e),
            },
            () = tokio::time::sleep(head_start) => None,
        };
        if last_on_tcp {
            info!("the last session was over TCP: dialling QUIC and TCP at once");
        } else {
            info!(waited = ?head_start, "no QUIC connection yet; trying TLS over TCP as well");
        }
        // A refusal over TCP alone is retried: a TLS-inspecting middlebox on the way (common
        // where only TCP 443 is open) must not make the client give up while QUIC may come back.
        let tcp = async {
            self.connect_tcp(settings).await.map_err(|e| match e {
                SessionError::Permanent(r) => SessionError::Transient(r),
                other => other,
            })
        };
        tokio::pin!(tcp);
        let mut tcp_failed = None;
        loop {
            tokio::select! {
                r = &mut quic, if quic_failed.is_none() => match r {
                    Ok(est) => return Ok(est),
                    Err(e) => quic_failed = Some(e),
                },
                r = &mut tcp, if tcp_failed.is_none() => match r {
                    Ok(est) => return Ok(est),
                    Err(e) => tcp_failed = Some(e),
                },
            }
            if let (Some(q), Some(t)) = (&quic_failed, &tcp_failed) {
                return Err(both_failed(q, t));
            }
        }
    }
}

/// How long `auto` gives QUIC alone: [`QUIC_HEAD_START`] (at most the whole connect
/// timeout), or nothing when the last session was over TCP. A network that dropped UDP then
/// most likely still does, and quinn does not report the ICMP "port unreachable" that would
/// tell, so waiting again would delay every reconnect behind a UDP block by the head start;
/// where QUIC works again it still wins the race (one round trip against TCP's two).
pub(crate) fn head_start(last_on_tcp: bool, connect_timeout: Duration) -> Duration {
    if last_on_tcp {
        Duration::ZERO
    } else {
        QUIC_HEAD_START.min(connect_timeout)
    }
}

/// Neither transport connected: a permanent reason wins, else both reasons are given.
fn both_failed(quic: &SessionError, tcp: &SessionError) -> SessionError {
    match (quic, tcp) {
        (SessionError::Permanent(r), _) | (_, SessionError::Permanent(r)) => {
            SessionError::Permanent(r.clone())
        }
        (SessionError::Contested(r), _) | (_, SessionError::Contested(r)) => {
            SessionError::Contested(r.clone())
        }
        (q, t) => SessionError::Transient(format!(
            "over QUIC: {}; over TCP: {}",
            q.reason(),
            t.reason()
        )),
    }
}

fn dial_error(e: &DialError) -> SessionError {
    if let Some(refusal) = e.tls_error().and_then(TlsRefusal::of_rustls) {
        return refusal_error(&refusal);
    }
    SessionError::Transient(e.to_string())
}

fn no_tcp_answer(addr: SocketAddr, waited: Duration) -> SessionError {
    SessionError::Transient(format!(
        "no answer from {addr} over TCP within {}s: is frps listening there (transport.tcpPort), \
         and does every firewall on the way let TCP port {} through?",
        waited.as_secs_f64(),
        addr.port()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_has_its_head_start_unless_the_last_session_was_over_tcp() {
        let ten = Duration::from_secs(10);
        assert_eq!(head_start(false, ten), QUIC_HEAD_START);
        assert_eq!(
            head_start(false, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(head_start(true, ten), Duration::ZERO);
    }
}
