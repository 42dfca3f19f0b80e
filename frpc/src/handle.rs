//! What the reconnect loop, its sessions, the stream handlers and the admin API share, and
//! [`ClientHandle`], the API's way into a running client.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

use crate::config::ClientSettings;
use crate::metrics::Metrics;
use crate::register::{Registered, SessionError};
use crate::reload::{Apply, Origin, ReloadError, ReloadReport};
use crate::status::ClientStatus;
use crate::stream::ClientGauges;

/// Reload requests that may wait while one is applied.
const COMMAND_QUEUE: usize = 16;

/// The client's state, shared by its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings in force; a reload replaces them.
    pub(crate) settings: watch::Sender<Arc<ClientSettings>>,
    pub(crate) status: watch::Sender<ClientStatus>,
    pub(crate) gauges: ClientGauges,
    pub(crate) metrics: Metrics,
    /// The current session's connection, for its RTT.
    pub(crate) conn: Mutex<Option<frp_runtime::link::Link>>,
    pub(crate) commands: mpsc::Sender<Apply>,
    /// Old sessions draining after a reload replaced them.
    pub(crate) background: TaskTracker,
    /// Connection attempts so far; picks which resolved address to try next.
    pub(crate) attempts: AtomicUsize,
    /// Whether the last session that came up was over TCP: `auto` then dials both transports
    /// at once instead of giving QUIC its head start again (set by every session that comes
    /// up, so a move back to QUIC clears it).
    pub(crate) last_on_tcp: AtomicBool,
}

impl Shared {
    /// Shared state for `settings`, and the receiving end of its reload requests.
    pub(crate) fn new(settings: ClientSettings) -> (Arc<Self>, mpsc::Receiver<Apply>) {
        let settings = Arc::new(settings);
        let mut status = ClientStatus::default();
        status.follow(&settings);
        status.since = Some(SystemTime::now());
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let shared = Self {
            settings: watch::channel(settings).0,
            status: watch::channel(status).0,
            gauges: ClientGauges::default(),
            metrics: Metrics::default(),
            conn: Mutex::new(None),
            commands,
            background: TaskTracker::new(),
            attempts: AtomicUsize::new(0),
            last_on_tcp: AtomicBool::new(false),
        };
        (Arc::new(shared), rx)
    }

    /// The settings in force.
    pub(crate) fn current(&self) -> Arc<ClientSettings> {
        Arc::clone(&self.settings.borrow())
    }

    /// Connects and registers with `settings`, as a future that owns what it needs; over
    /// QUIC whatever `transport.protocol` says when `quic_only` (`auto` probing QUIC again).
    pub(crate) fn attempt(
        self: &Arc<Self>,
        settings: Arc<ClientSettings>,
        quic_only: bool,
    ) -> BoxFuture<'static, Result<Registered, SessionError>> {
        let me = Arc::clone(self);
        Box::pin(async move {
            let est = match quic_only {
                true => me.connect_quic(settings).await?,
                false => me.connect(settings).await?,
            };
            crate::register::register(est).await
        })
    }

    /// Puts `settings` in force: the status lists their proxies, metrics drop the others.
    pub(crate) fn adopt(&self, settings: &Arc<ClientSettings>) {
        if !Arc::ptr_eq(&self.current(), settings) {
            self.settings.send_replace(Arc::clone(settings));
        }
        self.status.send_modify(|s| s.follow(settings));
        self.metrics.keep_only(settings);
    }

    /// A session with `settings` is up on `conn`.
    pub(crate) fn session_up(
        &self,
        settings: &Arc<ClientSettings>,
        conn: &frp_runtime::link::Link,
        minor: u16,
    ) {
        self.adopt(settings);
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        let on_tcp = conn.transport() == frp_runtime::link::Transport::Tcp;
        self.last_on_tcp.store(on_tcp, Ordering::Relaxed);
        self.status.send_modify(|s| {
            s.connected = true;
            s.sessions += 1;
            s.server_addr = Some(conn.remote_address());
            s.transport = Some(conn.transport());
            s.server_minor = Some(minor);
            s.since = Some(SystemTime::now());
            s.next_retry = None;
            s.last_error = None;
        });
    }

    /// The session ended.
    pub(crate) fn session_down(&self) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.gauges.stream_credit.set(0);
        self.status.send_modify(ClientStatus::disconnected);
    }

    /// The current session's round-trip time.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.as_ref().map(frp_runtime::link::Link::rtt)
    }
}

/// A running client, for the admin API and signal handlers: its status, settings and
/// metrics, and reloads.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ClientHandle {
    /// A snapshot of the status.
    pub fn status(&self) -> ClientStatus {
        self.shared.status.borrow().clone()
    }

    /// Status snapshots, updated on every change.
    pub fn subscribe(&self) -> watch::Receiver<ClientStatus> {
        self.shared.status.subscribe()
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<ClientSettings> {
        self.shared.current()
    }

    /// The current session's round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.shared.rtt()
    }

    /// Live counts of open streams and local connections.
    pub fn gauges(&self) -> ClientGauges {
        self.shared.gauges.clone()
    }

    /// The client's Prometheus metrics (`frpc_*`).
    pub fn metrics_registry(&self) -> prometheus_client::registry::Registry {
        crate::metrics::registry(&self.shared)
    }

    /// Applies reloaded settings: see [`crate::reload`] for what changes how. Answers once
    /// the server has answered the change (or at once while disconnected).
    ///
    /// # Errors
    /// [`ReloadError::Server`] when new server settings failed (the old connection stays);
    /// [`ReloadError::NotRunning`] when the client has stopped.
    pub async fn reload(&self, settings: ClientSettings) -> Result<ReloadReport, ReloadError> {
        self.send(settings, Origin::Reload).await
    }

    /// Moves the connection to new server settings (`settings` differs from the current ones
    /// in its server part only): answers once a session with them is registered, also while
    /// disconnected; until then, and if they fail, the current settings stay.
    ///
    /// # Errors
    /// As [`ClientHandle::reload`].
    pub async fn move_server(&self, settings: ClientSettings) -> Result<ReloadReport, ReloadError> {
        self.send(settings, Origin::Server).await
    }

    async fn send(
        &self,
        settings: ClientSettings,
        origin: Origin,
    ) -> Result<ReloadReport, ReloadError> {
        let (reply, answer) = oneshot::channel();
        let apply = Apply {
            settings: Arc::new(settings),
            origin,
            reply,
        };
        self.shared
            .commands
            .send(apply)
            .await
            .map_err(|_| ReloadError::NotRunning)?;
        answer.await.map_err(|_| ReloadError::NotRunning)?
    }
}
