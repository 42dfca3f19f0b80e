//! Registering with the server on a new connection: `Hello` and `Welcome`, then `AddProxies`
//! and `AddResults` for the http/https proxies when the server's minor version knows them.

use std::sync::Arc;
use std::time::Duration;

use frp_proto::{
    AddProxies, CloseCode, ControlCodec, ControlMsg, Hello, ProxyName, ProxyOutcome, ProxyResult,
    ProxySpec, PROTOCOL_MINOR,
};
use frp_runtime::link::{Link as Connection, LinkRecv as RecvStream, LinkSend as SendStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::info;

use crate::config::ClientSettings;
use crate::dial::classify;

pub(crate) type Reader = FramedRead<RecvStream, ControlCodec>;
pub(crate) type Writer = FramedWrite<SendStream, ControlCodec>;

/// Why a session could not be (or stay) established.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// Retrying cannot help.
    Permanent(String),
    /// Retry after a backoff.
    Transient(String),
    /// The server keeps another connection with our identity: two clients share one
    /// certificate. Retry, but only after [`crate::dial::CONTESTED_WAIT`].
    Contested(String),
}

impl SessionError {
    /// The reason, whichever kind.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Permanent(r) | Self::Transient(r) | Self::Contested(r) => r,
        }
    }
}

/// A connection whose handshake completed, made with `settings`.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) settings: Arc<ClientSettings>,
    /// The QUIC endpoint (none over TCP).
    pub(crate) endpoint: Option<quinn::Endpoint>,
    pub(crate) conn: Connection,
}

/// A session the server has answered: its control stream and what became of each proxy.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) est: Established,
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    /// The server's protocol minor, from its `Welcome`.
    pub(crate) minor: u16,
    pub(crate) results: Vec<ProxyResult>,
}

/// Sends `Hello` with the tcp proxies and reads the `Welcome`; then registers the http and
/// https proxies with `AddProxies` when the server's minor version knows them, or reports them
/// refused when it does not (an older server still serves the tcp proxies).
pub(crate) async fn register(est: Established) -> Result<Registered, SessionError> {
    let conn = &est.conn;
    let (send, recv) = conn.open_control().await.map_err(|e| classify(&e))?;
    let mut writer = FramedWrite::new(send, ControlCodec::new());
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let (vhost, tcp) = crate::config_proxies::registration(&est.settings.proxies);
    let agent = concat!("frpc/", env!("CARGO_PKG_VERSION")).to_string();
    let hello = Hello {
        minor: PROTOCOL_MINOR,
        agent,
        proxies: tcp,
    };
    send_msg(conn, &mut writer, hello.into(), "hello").await?;
    let wait = est.settings.connect_timeout;
    let welcome = match reply(conn, &mut reader, wait, "welcome").await? {
        ControlMsg::Welcome(w) => w,
        other => return Err(unexpected(conn, "welcome", &other)),
    };
    let mut results = welcome.results;
    let (vhost, refused) = sendable(vhost, welcome.minor);
    results.extend(refused);
    if !vhost.is_empty() {
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
    }
    Ok(Registered {
        minor: welcome.minor,
        est,
        reader,
        writer,
        results,
    })
}

/// The proxies a server of protocol `minor` can be sent, and refusals for the others: http
/// and https ones before minor 1, and any that sets a field the server's minor does not know
/// (it would skip the field and enforce less than the config says).
pub(crate) fn sendable(specs: Vec<ProxySpec>, minor: u16) -> (Vec<ProxySpec>, Vec<ProxyResult>) {
    let mut refusals = Vec::new();
    let mut kept = Vec::new();
    for p in specs {
        let reason = match (minor, p.vhost.first_key_newer_than(minor)) {
            (0, _) if p.kind.is_vhost() => {
                format!("server protocol minor {minor} does not support http/https proxies")
            }
            (_, Some((key, since))) => format!(
                "{key} needs server protocol minor {since}; the server speaks minor {minor}"
            ),
            _ => {
                kept.push(p);
                continue;
            }
        };
        refusals.push(refused_name(p.name, &reason));
    }
    (kept, refusals)
}

/// A refusal of `name` for `reason`, as the server would answer it.
pub(crate) fn refused_name(name: ProxyName, reason: &str) -> ProxyResult {
    ProxyResult {
        name,
        outcome: ProxyOutcome::Refused {
            reason: reason.to_string(),
        },
    }
}

/// Sends one control message.
///
/// # Errors
/// The connection's close reason, or a failure to send (which closes the connection).
pub(crate) async fn send_msg(
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
    conn.close(code.code(), reason.as_bytes());
    SessionError::Transient(reason)
}

/// The connection's own close reason when it has one (it may be permanent), else `fallback`.
fn conn_error(conn: &Connection, fallback: String) -> SessionError {
    match conn.close_reason() {
        Some(e) => classify(&e),
        None => give_up(conn, CloseCode::ProtocolViolation, fallback),
    }
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
