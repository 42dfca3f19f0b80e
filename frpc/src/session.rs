//! One connection to the server: `Hello`, `Welcome`, then serve the streams the server opens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use frp_proto::{
    CloseCode, ControlCodec, ControlMsg, GoingAway, Hello, ProxyOutcome, StreamCode, Welcome,
    PROTOCOL_MINOR,
};
use futures_util::{SinkExt as _, StreamExt as _};
use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::client::{classify, Client};
use crate::status::ProxyState;
use crate::stream::{self, Targets};

/// How long sending a `GoingAway` may take before shutdown goes on without it.
const NOTICE_WAIT: Duration = Duration::from_secs(1);

type Reader = FramedRead<RecvStream, ControlCodec>;
type Writer = FramedWrite<SendStream, ControlCodec>;

/// How a session that was established ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// We were told to stop and drained.
    Shutdown,
    /// The connection ended; reconnect.
    Lost(String),
}

/// Why a session could not be (or stay) established.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// Retrying cannot help.
    Permanent(String),
    /// Retry after a backoff.
    Transient(String),
}

/// Runs a session on `conn` until it ends or `shutdown` is cancelled.
pub(crate) async fn run(
    client: &Client,
    conn: &Connection,
    shutdown: &CancellationToken,
) -> Result<SessionEnd, SessionError> {
    let (mut reader, mut writer, welcome) = tokio::select! {
        _ = shutdown.cancelled() => {
            conn.close(VarInt::from_u32(CloseCode::ClientShutdown.code()), b"client shutting down");
            return Ok(SessionEnd::Shutdown);
        }
        parts = handshake(client, conn) => parts?,
    };
    let targets = apply_welcome(client, welcome);
    let streams = TaskTracker::new();
    let timeout = client.settings.local_connect_timeout;
    let mut reading = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                drain(client, conn, &mut writer, &streams).await;
                return Ok(SessionEnd::Shutdown);
            }
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let gauges = client.gauges.clone();
                    let targets = Arc::clone(&targets);
                    streams.spawn(stream::handle(send, recv, targets, timeout, gauges));
                }
                Err(e) => return lost(&e),
            },
            msg = reader.next(), if reading => match msg {
                Some(Ok(ControlMsg::GoingAway(g))) => {
                    info!(reason = %g.reason, "server is going away; open streams may finish");
                }
                Some(Ok(other)) => {
                    let reason = format!("unexpected {} from server", other.kind_str());
                    return violation(conn, reason);
                }
                // The connection ending also ends the control stream; accept_bi reports why.
                Some(Err(_)) | None if conn.close_reason().is_some() => reading = false,
                Some(Err(e)) => return violation(conn, format!("bad control frame: {e}")),
                None => return violation(conn, "server closed the control stream".into()),
            },
        }
    }
}

async fn handshake(
    client: &Client,
    conn: &Connection,
) -> Result<(Reader, Writer, Welcome), SessionError> {
    let (send, recv) = conn.open_bi().await.map_err(|e| classify(&e))?;
    let mut writer = FramedWrite::new(send, ControlCodec::new());
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let proxies = client
        .settings
        .proxies
        .iter()
        .map(crate::LocalProxy::spec)
        .collect();
    let agent = concat!("frpc/", env!("CARGO_PKG_VERSION")).to_string();
    let hello = ControlMsg::Hello(Hello {
        minor: PROTOCOL_MINOR,
        agent,
        proxies,
    });
    if let Err(e) = writer.send(hello).await {
        return Err(conn_error(conn, format!("sending hello: {e}")));
    }
    let wait = client.settings.connect_timeout;
    match tokio::time::timeout(wait, reader.next()).await {
        Ok(Some(Ok(ControlMsg::Welcome(w)))) => Ok((reader, writer, w)),
        Ok(Some(Ok(other))) => {
            let reason = format!("expected welcome, got {}", other.kind_str());
            Err(give_up(conn, CloseCode::ProtocolViolation, reason))
        }
        Ok(Some(Err(e))) => Err(conn_error(conn, format!("reading welcome: {e}"))),
        Ok(None) => Err(conn_error(conn, "server closed the control stream".into())),
        Err(_) => {
            let reason = "no welcome from server in time".to_string();
            Err(give_up(conn, CloseCode::HelloTimeout, reason))
        }
    }
}

/// Closes `conn` with `code` and reports a transient failure.
fn give_up(conn: &Connection, code: CloseCode, reason: String) -> SessionError {
    conn.close(VarInt::from_u32(code.code()), reason.as_bytes());
    SessionError::Transient(reason)
}

/// The connection's own close reason when it has one (it may be permanent), else `fallback`.
fn conn_error(conn: &Connection, fallback: String) -> SessionError {
    match conn.close_reason() {
        Some(e) => classify(&e),
        None => {
            conn.close(
                VarInt::from_u32(CloseCode::ProtocolViolation.code()),
                fallback.as_bytes(),
            );
            SessionError::Transient(fallback)
        }
    }
}

fn lost(e: &quinn::ConnectionError) -> Result<SessionEnd, SessionError> {
    match classify(e) {
        SessionError::Transient(reason) => Ok(SessionEnd::Lost(reason)),
        permanent => Err(permanent),
    }
}

fn violation(conn: &Connection, reason: String) -> Result<SessionEnd, SessionError> {
    warn!(%reason, "protocol violation by server");
    conn.close(
        VarInt::from_u32(CloseCode::ProtocolViolation.code()),
        reason.as_bytes(),
    );
    Ok(SessionEnd::Lost(reason))
}

/// Logs each proxy's outcome, publishes it in the status, and maps ids to local services.
fn apply_welcome(client: &Client, welcome: Welcome) -> Targets {
    let mut targets = HashMap::new();
    let mut states = HashMap::new();
    for r in welcome.results {
        let Some(local) = client.settings.proxies.iter().find(|p| p.name == r.name) else {
            warn!(proxy = %r.name, "server answered for a proxy we did not ask for");
            continue;
        };
        let state = match r.outcome {
            ProxyOutcome::Bound { id, remote_addr } => {
                info!(proxy = %r.name, %remote_addr, local = %format!("{}:{}", local.local_host, local.local_port), "proxy published");
                targets.insert(id, local.clone());
                ProxyState::Bound(remote_addr)
            }
            ProxyOutcome::Refused { reason } => {
                warn!(proxy = %r.name, %reason, "proxy refused by server");
                ProxyState::Refused(reason)
            }
        };
        states.insert(r.name, state);
    }
    client.status.send_modify(|s| {
        s.connected = true;
        s.sessions += 1;
        s.last_error = None;
        for (name, state) in states {
            s.proxies.insert(name, state);
        }
    });
    Arc::new(targets)
}

/// Graceful stop: tell the server (it closes our public ports), let open streams finish
/// within the grace period, then close the connection.
async fn drain(client: &Client, conn: &Connection, writer: &mut Writer, streams: &TaskTracker) {
    let notice = ControlMsg::GoingAway(GoingAway {
        reason: "client shutting down".into(),
    });
    let _ = tokio::time::timeout(NOTICE_WAIT, writer.send(notice)).await;
    streams.close();
    let grace = tokio::time::sleep(client.settings.grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = streams.wait() => break,
            _ = &mut grace => {
                warn!(open = streams.len(), "grace period over; resetting open streams");
                break;
            }
            // Streams the server opened before it saw our notice: refuse them at once.
            accepted = conn.accept_bi() => match accepted {
                Ok((mut send, mut recv)) => {
                    let code = VarInt::from_u32(StreamCode::Shutdown.code());
                    let _ = send.reset(code);
                    let _ = recv.stop(code);
                }
                Err(_) => break,
            },
        }
    }
    let code = CloseCode::ClientShutdown;
    conn.close(VarInt::from_u32(code.code()), b"client shutting down");
    // Let the splices see the close and reset their sockets before the caller moves on.
    let _ = tokio::time::timeout(NOTICE_WAIT, streams.wait()).await;
}
