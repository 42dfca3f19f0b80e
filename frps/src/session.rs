//! One client connection: identity, the control stream, its proxies, and clean-up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use frp_proto::{
    AddResults, CloseCode, ControlCodec, ControlMsg, GoingAway, Hello, ProxiesClosed, ProxyClosed,
    ProxyName, Welcome, PROTOCOL_MINOR,
};
use frp_runtime::link::{Link as Connection, LinkRecv as RecvStream, LinkSend as SendStream};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::budget::Budget;
use crate::identity::ClientId;
use crate::registry::{command_channel, SessionCommand};
use crate::server::Shared;
use crate::takeover::refuse_takeover;

/// How long sending a `GoingAway` may take before shutdown goes on without it.
const NOTICE_WAIT: Duration = Duration::from_secs(1);
/// The read buffer a session starts with: a `Hello` with a few proxies fits; a larger one
/// grows it until [`release_buffers`] gives it back.
const HELLO_BUFFER: usize = 1024;
/// How long a new session waits for the session it replaces to release its ports.
const REPLACE_WAIT: Duration = Duration::from_secs(5);

type Reader = FramedRead<RecvStream, ControlCodec>;
pub(crate) type Writer = FramedWrite<SendStream, ControlCodec>;

/// Closes `conn` with a code and a reason the peer can show its user.
pub(crate) fn close(conn: &Connection, code: CloseCode, reason: &str) {
    conn.close(code.code(), reason.as_bytes());
}

/// A session after its handshake: the client's identity and connection.
pub(crate) struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: Connection,
    pub(crate) identity: ClientId,
    pub(crate) id: u64,
    pub(crate) listeners: JoinSet<()>,
    /// The connections this client's proxies may hold at once (`maxConnectionsPerClient`).
    pub(crate) budget: Arc<Budget>,
    /// Names of the proxies asked for (in `Hello` and `AddProxies`) and not removed since,
    /// each once; their count is what `maxPortsPerClient` bounds.
    pub(crate) asked: HashSet<ProxyName>,
    /// The last proxy id handed out: ids are never reused within a session, so a stream
    /// for a removed proxy can never reach the one added after it.
    pub(crate) last_id: u32,
    /// What each published proxy holds, to withdraw it alone (minor 2 `RemoveProxies`).
    pub(crate) published: HashMap<ProxyName, Published>,
    /// The client's protocol minor, from its `Hello`.
    pub(crate) client_minor: u16,
    /// Orders from the server (a reload withdrawing proxies); taken by the control loop.
    commands: Option<mpsc::Receiver<SessionCommand>>,
    /// Why a newer connection of this client replaced this one, once it did.
    replaced: Option<String>,
    /// A replaced session's control stream, kept open while it drains.
    parked: Option<(Reader, Writer)>,
}

/// What one published proxy holds besides its routes.
#[derive(Debug)]
pub(crate) struct Published {
    /// Its type.
    pub(crate) kind: frp_proto::ProxyKind,
    /// A tcp proxy's public port and listener task.
    pub(crate) listener: Option<(u16, AbortHandle)>,
}

impl Session {
    /// Runs the session to its end, then releases everything it held.
    pub(crate) async fn run(
        shared: Arc<Shared>,
        conn: Connection,
        identity: String,
        cert: CertificateDer<'static>,
    ) {
        let _counted = shared.gauges.sessions.enter();
        let identity = ClientId::new(identity);
        let finished = CancellationToken::new();
        let registry = &shared.registry;
        let limit = shared.settings().max_takeovers_per_minute;
        let (orders, commands) = command_channel();
        let opened = registry.open_session(
            &identity,
            &conn,
            cert.clone(),
            finished.clone(),
            limit,
            orders,
        );
        let (id, old) = match opened {
            Ok(opened) => opened,
            Err(contested) => return refuse_takeover(&conn, &identity, &contested),
        };
        // A reload may have run between the check at connect and the registration above.
        if shared.revoked().is_revoked(&cert) {
            close(&conn, CloseCode::Revoked, "certificate revoked");
        }
        if let Some(old) = old {
            let remote = conn.remote_address();
            info!(client = %identity, %remote, "replacing the client's previous connection");
            let reason = format!("replaced by a newer connection of the same client from {remote}");
            // The old session withdraws its proxies at once and closes once its open streams
            // ended (a client moving from TCP back to QUIC keeps them); closed now when it
            // takes no orders.
            if old
                .commands
                .try_send(SessionCommand::Replaced(reason.clone()))
                .is_err()
            {
                close(&old.conn, CloseCode::Replaced, &reason);
            }
            // Our own connection may end meanwhile; either way, go on.
            tokio::select! {
                _ = tokio::time::timeout(REPLACE_WAIT, old.finished.cancelled()) => {}
                _ = conn.closed() => {}
            }
        }
        let budget = Budget::new(shared.settings().max_connections_per_client);
        let mut session = Session {
            shared,
            conn,
            identity,
            id,
            listeners: JoinSet::new(),
            budget,
            asked: HashSet::new(),
            last_id: 0,
            published: HashMap::new(),
            client_minor: 0,
            commands: Some(commands),
            replaced: None,
            parked: None,
        };
        let reason = session.serve().await;
        session.withdraw().await;
        let key = session.identity.key();
        session.shared.registry.close_session(key, id);
        finished.cancel();
        if let Some(why) = session.replaced.take() {
            session.drain_replaced(&why).await;
        }
        info!(client = %session.identity, session = id, %reason, "client disconnected");
    }

    /// Serves the control stream until the connection ends; returns why it ended.
    async fn serve(&mut self) -> String {
        let (mut reader, mut writer, hello) = match self.handshake().await {
            Ok(parts) => parts,
            Err((code, reason)) => {
                warn!(client = %self.identity, %reason, "closing connection");
                close(&self.conn, code, &reason);
                return reason;
            }
        };
        self.client_minor = hello.minor;
        let (key, agent) = (self.identity.key(), &hello.agent);
        (self.shared.registry).greeted(key, self.id, hello.minor, agent);
        let results = self.publish_all(&hello.proxies).await;
        let welcome = ControlMsg::Welcome(Welcome {
            minor: PROTOCOL_MINOR,
            results,
        });
        if let Err(e) = writer.send(welcome).await {
            return format!("sending welcome: {e}");
        }
        release_buffers(&mut reader, &mut writer);
        let reason = self.control_loop(&mut reader, &mut writer).await;
        if self.replaced.is_some() {
            // Kept until the connection closes: over HTTP/2, dropping the stream now would
            // reset it, and the reset would discard the notice still queued on it.
            self.parked = Some((reader, writer));
        }
        reason
    }

    /// Accepts the control stream and reads the `Hello`, both under the hello timeout.
    async fn handshake(&mut self) -> Result<(Reader, Writer, Hello), (CloseCode, String)> {
        let timeout = self.shared.settings().hello_timeout;
        let timed_out = || (CloseCode::HelloTimeout, "no hello in time".to_string());
        let (send, recv) = tokio::time::timeout(timeout, self.conn.accept_control())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| {
                (
                    CloseCode::Normal,
                    format!("connection ended before hello: {e}"),
                )
            })?;
        let mut reader = FramedRead::with_capacity(recv, ControlCodec::new(), HELLO_BUFFER);
        let mut writer = FramedWrite::new(send, ControlCodec::new());
        *writer.write_buffer_mut() = BytesMut::new();
        match tokio::time::timeout(timeout, reader.next()).await {
            Err(_) => Err(timed_out()),
            Ok(Some(Ok(ControlMsg::Hello(h)))) => Ok((reader, writer, h)),
            Ok(Some(Ok(other))) => Err(violation(format!(
                "expected hello, got {}",
                other.kind_str()
            ))),
            Ok(Some(Err(e))) => Err(violation(format!("bad hello: {e}"))),
            Ok(None) => Err(violation("control stream closed before hello".into())),
        }
    }

    /// Reads control messages until the connection ends or the server shuts down.
    async fn control_loop(&mut self, reader: &mut Reader, writer: &mut Writer) -> String {
        let shutdown = self.shared.shutdown.clone();
        let mut state = Control::default();
        let mut commands = self.commands.take().unwrap_or_else(|| command_channel().1);
        // What a replaced session of this client held stays reserved for it until its
        // AddProxies is answered, or for as long as a Hello may take.
        let reserved = tokio::time::sleep(self.shared.settings().hello_timeout);
        tokio::pin!(reserved);
        loop {
            tokio::select! {
                e = self.conn.closed() => return e.to_string(),
                () = &mut reserved, if !state.released => self.release_predecessors(&mut state),
                Some(command) = commands.recv() => match command {
                    SessionCommand::Withdraw(names, _done) if state.reading() => {
                        if let Err(reason) = self.withdraw_ordered(names, writer).await {
                            return reason;
                        }
                    }
                    SessionCommand::Withdraw(..) => {}
                    SessionCommand::Replaced(reason) => return self.on_replaced(reason, writer).await,
                },
                _ = shutdown.cancelled(), if !state.shutting_down => {
                    state.shutting_down = true;
                    // Listeners first: no new public connection may start from here on.
                    self.withdraw().await;
                    let notice = ControlMsg::GoingAway(GoingAway { reason: "server shutting down".into() });
                    let _ = tokio::time::timeout(NOTICE_WAIT, writer.send(notice)).await;
                }
                msg = reader.next(), if state.reading() => match msg {
                    Some(Ok(msg)) => {
                        if let Err(reason) = self.on_message(msg, writer, &mut state).await {
                            return reason;
                        }
                        release_buffers(reader, writer);
                    }
                    // The client said it was leaving: its stream may end with the connection.
                    Some(Err(_)) | None if state.client_left => state.stream_ended = true,
                    Some(Err(e)) => return self.broken(format!("bad control frame: {e}")),
                    None => return self.broken("control stream closed".into()),
                },
            }
        }
    }

    /// Handles one message after the `Welcome`: a `GoingAway`, or `AddProxies` (once, or
    /// any number of times and `RemoveProxies` from a client of minor 2 or later).
    ///
    /// # Errors
    /// Why the session ends: a protocol violation, or the answer could not be sent.
    async fn on_message(
        &mut self,
        msg: ControlMsg,
        writer: &mut Writer,
        state: &mut Control,
    ) -> Result<(), String> {
        match msg {
            ControlMsg::GoingAway(g) if !state.client_left => {
                info!(client = %self.identity, reason = %g.reason, "client going away");
                state.client_left = true;
                self.withdraw().await;
            }
            ControlMsg::AddProxies(add) if !state.client_left && self.may_add(state) => {
                state.added = true;
                let results = self.publish_all(&add.proxies).await;
                if !state.released {
                    self.release_predecessors(state);
                }
                let answer = ControlMsg::AddResults(AddResults { results });
                if let Err(e) = writer.send(answer).await {
                    return Err(format!("sending add-results: {e}"));
                }
            }
            ControlMsg::RemoveProxies(r) if !state.client_left && self.client_minor >= 2 => {
                let mut closed = Vec::with_capacity(r.names.len());
                for name in r.names {
                    let reason = self.withdraw_one(&name, None).await;
                    closed.push(ProxyClosed { name, reason });
                }
                let answer = ControlMsg::ProxiesClosed(ProxiesClosed { closed });
                if let Err(e) = writer.send(answer).await {
                    return Err(format!("sending proxies-closed: {e}"));
                }
            }
            ControlMsg::AddProxies(_) if state.client_left => {
                return Err(self.violate("add-proxies after going-away".into()));
            }
            ControlMsg::AddProxies(_) => {
                return Err(self.violate("a second add-proxies: a session sends one".into()));
            }
            other => {
                let reason = format!("unexpected {} on the control stream", other.kind_str());
                return Err(self.violate(reason));
            }
        }
        Ok(())
    }

    /// A newer connection took over: withdraw every proxy (their ports and routes go to it),
    /// tell the client, and stop reading; [`Self::drain_replaced`] closes the connection.
    async fn on_replaced(&mut self, reason: String, writer: &mut Writer) -> String {
        info!(client = %self.identity, session = self.id, "withdrawing a replaced connection's proxies");
        self.withdraw().await;
        let notice = ControlMsg::GoingAway(GoingAway {
            reason: reason.clone(),
        });
        // Sent, then the stream ended cleanly: a reset could overtake the notice.
        let _ = tokio::time::timeout(NOTICE_WAIT, writer.send(notice)).await;
        let _ = tokio::time::timeout(
            NOTICE_WAIT,
            futures_util::SinkExt::<ControlMsg>::close(writer),
        )
        .await;
        self.replaced = Some(reason.clone());
        reason
    }

    /// Lets a replaced connection's open streams finish, however long they take (a client
    /// that moved back to QUIC keeps its open connections on TCP; a dead connection ends with
    /// its idle timeout), then closes it with [`CloseCode::Replaced`].
    async fn drain_replaced(&self, why: &str) {
        tokio::select! {
            () = self.budget.drained() => {}
            _ = self.conn.closed() => {}
            () = self.shared.shutdown.cancelled() => {}
        }
        close(&self.conn, CloseCode::Replaced, why);
    }

    /// Whether an `AddProxies` is allowed now: the first one, or any from minor 2 on.
    fn may_add(&self, state: &Control) -> bool {
        !state.added || self.client_minor >= 2
    }

    /// Releases what older sessions of this client left reserved for this one.
    fn release_predecessors(&self, state: &mut Control) {
        state.released = true;
        self.shared
            .registry
            .release_predecessors(self.identity.key(), self.id);
    }

    /// The control stream failed or ended: when the connection itself is gone (the client
    /// vanished, closed it or timed out) that is the reason, since the stream ends with it and
    /// the two can be seen in either order; otherwise the client broke the protocol.
    fn broken(&self, reason: String) -> String {
        match self.conn.close_reason() {
            Some(closed) => closed.to_string(),
            None => self.violate(reason),
        }
    }

    fn violate(&self, reason: String) -> String {
        warn!(client = %self.identity, %reason, "protocol violation");
        close(&self.conn, CloseCode::ProtocolViolation, &reason);
        reason
    }

    /// Closes every public listener of this session and frees its ports.
    async fn withdraw(&mut self) {
        self.published.clear();
        self.listeners.abort_all();
        while self.listeners.join_next().await.is_some() {}
        self.shared
            .registry
            .proxies_withdrawn(self.identity.key(), self.id);
    }
}

/// Where a session's control stream is, after the `Welcome`.
#[derive(Debug, Default)]
struct Control {
    /// The server is shutting down: it sent `GoingAway` and reads no more.
    shutting_down: bool,
    /// The client sent `GoingAway`.
    client_left: bool,
    /// The client's stream ended after its `GoingAway`.
    stream_ended: bool,
    /// The client sent an `AddProxies` (a client before minor 2 sends one).
    added: bool,
    /// What older sessions of this client left reserved was released.
    released: bool,
}

impl Control {
    fn reading(&self) -> bool {
        !(self.shutting_down || self.stream_ended)
    }
}

/// Control messages are rare and small: the buffers a large one grew are given back once
/// they are empty, so an idle session holds none (16 KiB each with the codec's defaults, 160
/// MiB for 10,000 idle clients).
fn release_buffers(reader: &mut Reader, writer: &mut Writer) {
    for buf in [reader.read_buffer_mut(), writer.write_buffer_mut()] {
        if buf.is_empty() && buf.capacity() > 0 {
            *buf = BytesMut::new();
        }
    }
}

fn violation(reason: String) -> (CloseCode, String) {
    (CloseCode::ProtocolViolation, reason)
}
