//! frps's control plane: the admin API under `/api/v1` (served by `frp-admin` on
//! `[webServer]`), its `/metrics`, and the reload of frps.toml that SIGHUP and
//! `POST /api/v1/reload` run. `docs/api.md` describes every route.
//!
//! The API reads the server through the registry and the settings in force, never through
//! the data path: a scrape or a listing costs a lock held for a copy, not a stream.

mod access_stream;
pub mod history;
mod metrics;
pub mod reload;
mod revocations;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use frp_admin::{ApiError, ApiRequest, ApiResponse, Dashboard, Handler};
use frp_proto::CloseCode;
use futures_util::future::BoxFuture;
use hyper::{Method, StatusCode};
use tokio::sync::Mutex;

use crate::admission::HandshakeStats;
use crate::server::Shared;
use crate::session::close;
use views::{ClientView, ProxyView, ServerInfo};

pub use reload::ReloadReport;

/// The routes' common prefix.
pub const PREFIX: &str = "/api/v1";

/// The admin API of one running server, configured by the file at `path` (none for a server
/// built in code: it cannot reload).
#[derive(Debug)]
pub struct ServerApi {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handshakes: HandshakeStats,
    /// The QUIC endpoint's address.
    pub(crate) bind: SocketAddr,
    pub(crate) path: Option<PathBuf>,
    /// One change at a time (reloads, revocations).
    pub(crate) changing: Mutex<reload::Applied>,
    /// Traffic per interval for the dashboard's charts, filled by [`ServerApi::keep_history`].
    pub(crate) history: history::History,
}

/// frps's dashboard, embedded (`frps/assets/`), served at `/`.
pub const DASHBOARD: Dashboard = Dashboard {
    index: include_bytes!("../../assets/index.html"),
    app: include_bytes!("../../assets/app.js"),
};

impl ServerApi {
    pub(crate) fn new(
        shared: Arc<Shared>,
        handshakes: HandshakeStats,
        bind: SocketAddr,
        path: Option<PathBuf>,
    ) -> Self {
        let applied = reload::Applied::read(path.as_deref());
        Self {
            shared,
            handshakes,
            bind,
            path,
            changing: Mutex::new(applied),
            history: history::History::default(),
        }
    }

    /// Records the traffic history every 10 s until the server shuts down (or the API is
    /// dropped). Must be called inside a tokio runtime.
    pub fn keep_history(self: &Arc<Self>) {
        let stop = self.shared.shutdown.clone();
        tokio::spawn(history::History::sample(Arc::downgrade(self), stop));
    }

    /// A Prometheus registry with every `frp_server_*` metric, read at each scrape.
    pub fn metrics_registry(self: &Arc<Self>) -> prometheus_client::registry::Registry {
        metrics::registry(Arc::clone(self))
    }

    async fn route(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        let Some(parts) = req.route(PREFIX) else {
            return Err(no_route(&req));
        };
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match (parts.as_slice(), req.method.clone()) {
            (["serverinfo"], Method::GET) => Ok(ApiResponse::ok(&ServerInfo::of(self))),
            (["clients"], Method::GET) => Ok(ApiResponse::ok(&ClientView::all(self))),
            (["clients", id], Method::GET) => self.client(id),
            (["clients", id], Method::DELETE) => self.disconnect(id),
            (["proxies"], Method::GET) => self.proxies(&req),
            (["proxies", name], Method::GET) => self.proxy(name, &req),
            (["proxies", name, "traffic"], Method::GET) => self.proxy_traffic(name, &req),
            (["traffic"], Method::GET) => {
                Ok(ApiResponse::ok(&self.history.total(&self.shared.registry)))
            }
            (["acme"], Method::GET) => match &self.shared.acme {
                Some(acme) => Ok(ApiResponse::ok(&acme.list())),
                None => Err(ApiError::not_found("ACME is off: see [vhostHTTPS.acme]")),
            },
            (["revocations"], Method::GET) => self.list_revocations(),
            (["revocations"], Method::POST) => self.revoke(&req).await,
            (["reload"], Method::POST) => Ok(ApiResponse::ok(&self.reload().await?)),
            (["access-log"], Method::GET) => self.access_log(&req),
            (
                ["serverinfo" | "clients" | "proxies" | "revocations" | "reload" | "access-log"
                | "traffic" | "acme"],
                _,
            )
            | (["clients" | "proxies", _] | ["proxies", _, "traffic"], _) => {
                Err(ApiError::method(&req.method, &req.path))
            }
            _ => Err(no_route(&req)),
        }
    }

    fn client(&self, id: &str) -> Result<ApiResponse, ApiError> {
        let key = crate::identity::canonical(id);
        match ClientView::one(self, &key) {
            Some(c) => Ok(ApiResponse::ok(&c)),
            None => Err(ApiError::not_found(format!(
                "no client {id:?} is connected"
            ))),
        }
    }

    /// `DELETE /api/v1/clients/{identity}`: closes its connection; it reconnects unless its
    /// certificate is revoked.
    fn disconnect(&self, id: &str) -> Result<ApiResponse, ApiError> {
        let conn = self.shared.registry.connection(id);
        let conn =
            conn.ok_or_else(|| ApiError::not_found(format!("no client {id:?} is connected")))?;
        tracing::warn!(client = %id, "disconnecting a client (admin API)");
        close(
            &conn,
            CloseCode::Normal,
            "disconnected by the server's operator",
        );
        Ok(ApiResponse::no_content())
    }

    fn proxies(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let kind = req.query_value("type")?;
        if let Some(k) = kind.as_deref() {
            if !matches!(k, "tcp" | "http" | "https") {
                let why = format!("type={k:?}: expected tcp, http or https");
                return Err(ApiError::bad_request(why));
            }
        }
        let client = req
            .query_value("client")?
            .map(|c| crate::identity::canonical(&c));
        let all = ProxyView::all(self).into_iter().filter(|p| {
            kind.as_deref().is_none_or(|k| p.kind == k)
                && client.as_deref().is_none_or(|c| p.client_key == c)
        });
        Ok(ApiResponse::ok(&all.collect::<Vec<_>>()))
    }

    /// `GET /api/v1/proxies/{name}`: names are unique per client, so `?client=` picks one
    /// when several clients use the name.
    fn proxy(&self, name: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let client = req
            .query_value("client")?
            .map(|c| crate::identity::canonical(&c));
        let found = ProxyView::all(self)
            .into_iter()
            .filter(|p| p.name == name && client.as_deref().is_none_or(|c| p.client_key == c));
        Ok(ApiResponse::ok(&only_one(name, found.collect())?))
    }

    /// `GET /api/v1/proxies/{name}/traffic`: a published proxy's history, picked as
    /// [`proxy`](Self::proxy) picks it.
    fn proxy_traffic(&self, name: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let client = req
            .query_value("client")?
            .map(|c| crate::identity::canonical(&c));
        let mut found = Vec::new();
        self.shared.registry.each_proxy(|key, stats| {
            if stats.name.as_str() == name && client.as_deref().is_none_or(|c| key == c) {
                found.push((key.to_string(), Arc::clone(stats)));
            }
        });
        let (key, stats) = only_one(name, found)?;
        Ok(ApiResponse::ok(&self.history.proxy(&key, &stats)))
    }
}

impl Handler for ServerApi {
    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(async move { self.route(req).await.into() })
    }

    fn ready(&self) -> Result<(), String> {
        match self.shared.shutdown.is_cancelled() {
            true => Err("shutting down".into()),
            false => Ok(()),
        }
    }

    fn dashboard(&self) -> Option<&Dashboard> {
        Some(&DASHBOARD)
    }
}

/// The one proxy named `name` in `found`: `404` for none, `409` when several clients use the
/// name.
fn only_one<T>(name: &str, mut found: Vec<T>) -> Result<T, ApiError> {
    match found.len() {
        0 => Err(ApiError::not_found(format!("no proxy {name:?}"))),
        1 => Ok(found.remove(0)),
        n => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{n} clients have a proxy {name:?}: add ?client=IDENTITY"),
        )),
    }
}

fn no_route(req: &ApiRequest) -> ApiError {
    ApiError::not_found(format!("no such route: {} {}", req.method, req.path))
}
