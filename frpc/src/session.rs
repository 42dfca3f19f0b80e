//! One connection to the server: `Hello` and `Welcome` (then `AddProxies` and `AddResults`
//! for http/https proxies), then serve the streams the server opens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use frp_proto::{
    AddProxies, CloseCode, ControlCodec, ControlMsg, GoingAway, Hello, ProxyName, ProxyOutcome,
    ProxyResult, ProxySpec, StreamCode, PROTOCOL_MINOR,
};
use frp_runtime::splice::reset_stream;
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
    /// The server keeps another connection with our identity: two clients share one
    /// certificate. Retry, but only after [`crate::client::CONTESTED_WAIT`].
    Contested(String),
}

/// Runs a session on `conn` until it ends or `shutdown` is cancelled.
pub(crate) async fn run(
    client: &Client,
    conn: &Connection,
    shutdown: &CancellationToken,
) -> Result<SessionEnd, SessionError> {
    let (mut reader, mut writer, results) = tokio::select! {
        _ = shutdown.cancelled() => {
            conn.close(VarInt::from_u32(CloseCode::ClientShutdown.code()), b"client shutting down");
            return Ok(SessionEnd::Shutdown);
        }
        parts = handshake(client, conn) => parts?,
    };
    let targets = apply_results(client, results);
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

/// Sends `Hello` with the tcp proxies and reads the `Welcome`; then registers the http and
/// https proxies with `AddProxies` when the server's minor version knows them, or reports them
/// refused when it does not (an older server still serves the tcp proxies).
async fn handshake(
    client: &Client,
    conn: &Connection,
) -> Result<(Reader, Writer, Vec<ProxyResult>), SessionError> {
    let (send, recv) = conn.open_bi().await.map_err(|e| classify(&e))?;
    let mut writer = FramedWrite::new(send, ControlCodec::new());
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let (vhost, tcp) = crate::config_proxies::registration(&client.settings.proxies);
    let agent = concat!("frpc/", env!("CARGO_PKG_VERSION")).to_string();
    let hello = Hello {
        minor: PROTOCOL_MINOR,
        agent,
        proxies: tcp,
    };
    send_msg(conn, &mut writer, hello.into(), "hello").await?;
    let wait = client.settings.connect_timeout;
    let welcome = match reply(conn, &mut reader, wait, "welcome").await? {
        ControlMsg::Welcome(w) => w,
        other => return Err(unexpected(conn, "welcome", &other)),
    };
    let mut results = welcome.results;
    let (vhost, refused) = sendable(vhost, welcome.minor);
    results.extend(refused);
    if vhost.is_empty() {
        return Ok((reader, writer, results));
    }
    let names: Vec<ProxyName> = vhost.iter().map(|p| p.name.clone()).collect();
    let add = AddProxies { proxies: vhost };
    send_msg(conn, &mut writer, add.into(), "add-proxies").await?;
    match reply(conn, &mut reader, wait, "add-results").await? {
        ControlMsg::AddResults(r) => results.extend(r.results),
        // The server stopped reading when it began to shut down: it answers no more.
        ControlMsg::GoingAway(g) => {
            info!(reason = %g.reason, "server is going away before registering the http/https proxies");
            let reason = format!("the server is going away: {}", g.reason);
            results.extend(names.into_iter().map(|name| refused_name(name, &reason)));
        }
        other => return Err(unexpected(conn, "add-results", &other)),
    }
    Ok((reader, writer, results))
}

/// The http/https proxies a server of protocol `minor` can be sent, and refusals for the
/// others: all of them before minor 1, and any that sets a field the server's minor does not
/// know (it would skip the field and enforce less than the config says).
fn sendable(vhost: Vec<ProxySpec>, minor: u16) -> (Vec<ProxySpec>, Vec<ProxyResult>) {
    let mut refusals = Vec::new();
    let mut kept = Vec::new();
    for p in vhost {
        let reason = match (minor, p.vhost.first_key_newer_than(minor)) {
            (0, _) => format!("server protocol minor {minor} does not support http/https proxies"),
            (_, Some((key, since))) => format!(
                "{key} needs server protocol minor {since}; the server speaks minor {minor}"
            ),
            (_, None) => {
                kept.push(p);
                continue;
            }
        };
        refusals.push(refused(p, &reason));
    }
    (kept, refusals)
}

fn refused(p: ProxySpec, reason: &str) -> ProxyResult {
    refused_name(p.name, reason)
}

fn refused_name(name: ProxyName, reason: &str) -> ProxyResult {
    ProxyResult {
        name,
        outcome: ProxyOutcome::Refused {
            reason: reason.to_string(),
        },
    }
}

async fn send_msg(
    conn: &Connection,
    writer: &mut Writer,
    msg: ControlMsg,
    what: &str,
) -> Result<(), SessionError> {
    writer
        .send(msg)
        .await
        .map_err(|e| conn_error(conn, format!("sending {what}: {e}")))
}

/// The next control message, which must arrive within `wait`.
async fn reply(
    conn: &Connection,
    reader: &mut Reader,
    wait: Duration,
    what: &str,
) -> Result<ControlMsg, SessionError> {
    match tokio::time::timeout(wait, reader.next()).await {
        Ok(Some(Ok(msg))) => Ok(msg),
        Ok(Some(Err(e))) => Err(conn_error(conn, format!("reading {what}: {e}"))),
        Ok(None) => Err(conn_error(conn, "server closed the control stream".into())),
        Err(_) => {
            let reason = format!("no {what} from server in time");
            Err(give_up(conn, CloseCode::HelloTimeout, reason))
        }
    }
}

fn unexpected(conn: &Connection, wanted: &str, got: &ControlMsg) -> SessionError {
    let reason = format!("expected {wanted}, got {}", got.kind_str());
    give_up(conn, CloseCode::ProtocolViolation, reason)
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
fn apply_results(client: &Client, results: Vec<ProxyResult>) -> Targets {
    let mut targets = HashMap::new();
    let mut states = HashMap::new();
    for r in results {
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
                    reset_stream(&mut send, &mut recv, StreamCode::Shutdown);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use frp_proto::{ProxyKind, VhostSpec};

    fn web(name: &str) -> ProxySpec {
        ProxySpec {
            name: ProxyName::new(name).unwrap(),
            kind: ProxyKind::Http,
            remote_port: 0,
            vhost: VhostSpec {
                custom_domains: vec!["a.example.com".into()],
                allow_encoded_slashes: true,
                ..VhostSpec::default()
            },
        }
    }

    #[test]
    fn proxies_go_only_to_a_server_that_knows_their_fields() {
        let (kept, refused) = sendable(vec![web("a"), web("b")], 0);
        assert!(kept.is_empty());
        let reasons: Vec<String> = refused
            .iter()
            .map(|r| match &r.outcome {
                ProxyOutcome::Refused { reason } => reason.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let want = "server protocol minor 0 does not support http/https proxies";
        assert_eq!(reasons, [want, want]);
        let (kept, refused) = sendable(vec![web("a")], PROTOCOL_MINOR);
        assert_eq!((kept.len(), refused.len()), (1, 0));
    }
}
