//! frpc as the binary runs it: the client, its admin server (`[webServer]`), and a reload of
//! the config file on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use frp_admin::{AdminServer, Handler};
use frp_runtime::shutdown::{log_ignored, Signal};
use tokio_util::sync::CancellationToken;

use crate::api::ClientApi;
use crate::config::ClientSettings;
use crate::{Client, ClientError, ClientHandle};

/// A client with its admin API, ready to [`run`](Program::run).
#[derive(Debug)]
pub struct Program {
    client: Client,
    api: Arc<ClientApi>,
    admin: Option<AdminServer>,
}

impl Program {
    /// Prepares the client configured by the file at `config` (already loaded into
    /// `settings`) and binds its admin server when `settings.web` asks for one. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// When the TLS config is unusable or the admin address cannot be bound.
    pub fn new(config: &Path, settings: ClientSettings) -> Result<Self, ClientError> {
        let web = settings.web.clone();
        let client = Client::new(settings)?;
        let handle = client.handle();
        let api = Arc::new(ClientApi::new(handle.clone(), config));
        let admin = match web {
            None => None,
            Some(web) => {
                let metrics = web.prometheus.then(|| handle.metrics_registry());
                let handler: Arc<dyn Handler> = Arc::clone(&api) as Arc<dyn Handler>;
                Some(AdminServer::bind(web, handler, metrics)?)
            }
        };
        Ok(Self { client, api, admin })
    }

    /// Where the admin server listens, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// The running client's handle.
    pub fn handle(&self) -> ClientHandle {
        self.client.handle()
    }

    /// The admin API (its reload is what SIGHUP does).
    pub fn api(&self) -> Arc<ClientApi> {
        Arc::clone(&self.api)
    }

    /// Runs the client and the admin server until `shutdown` is cancelled or the client gives
    /// up; the admin server stops with the client.
    ///
    /// # Errors
    /// As [`Client::run`].
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ClientError> {
        let stop_admin = shutdown.child_token();
        let admin = self.admin.map(|a| tokio::spawn(a.run(stop_admin.clone())));
        let result = self.client.run(shutdown).await;
        stop_admin.cancel();
        if let Some(task) = admin {
            let _ = task.await;
        }
        result
    }
}

/// What `frpc -c FILE` runs: [`Program`] until SIGINT or SIGTERM (a second one exits at
/// once); SIGHUP rereads FILE, SIGUSR1 and SIGUSR2 are logged and ignored.
///
/// # Errors
/// As [`Program::new`] and [`Program::run`], and when the signal handlers cannot be set up.
pub async fn run(config: &Path, settings: ClientSettings) -> Result<(), ClientError> {
    let shutdown = CancellationToken::new();
    let program = Program::new(config, settings)?;
    let api = program.api();
    let reload = frp_runtime::shutdown::reload_on_poke(shutdown.clone(), move || {
        let api = Arc::clone(&api);
        async move { api.reload().await.map(drop).map_err(|e| e.message) }
    });
    let on_signal = move |signal: Signal| match signal {
        // A reload already waiting covers this one too.
        Signal::Hangup => {
            let _ = reload.try_send(());
        }
        Signal::User1 | Signal::User2 => log_ignored(signal, "frpc gives it no meaning"),
    };
    frp_runtime::shutdown::handle_signals(shutdown.clone(), on_signal)
        .map_err(anyhow::Error::from)?;
    // systemd's Type=notify: ready once it dials (the server may be down at boot).
    frp_runtime::notify::ready();
    program.run(shutdown).await
}
