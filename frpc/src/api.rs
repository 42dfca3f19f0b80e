//! frpc's admin API (`[webServer]`), served by `frp-admin` under `/api/v1`; `docs/api.md`
//! describes every route.
//!
//! Every change goes through the config file: it is validated as `frpc --check` would, written
//! back atomically (comments and layout kept, see [`crate::config_edit`]) and then applied to
//! the running client as a reload. Changes are applied one at a time; a change that is
//! refused leaves the file and the client as they were.

use std::path::{Path, PathBuf};

use frp_admin::{rfc3339, ApiError, ApiRequest, ApiResponse, Dashboard, Handler};
use futures_util::future::BoxFuture;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::{ClientSettings, LocalProxy};
use crate::handle::ClientHandle;
use crate::reload::{ReloadError, ReloadReport};
use crate::status::{ClientStatus, ProxyState};

/// The routes' common prefix.
pub const PREFIX: &str = "/api/v1";

/// The admin API of one running client, whose config is the file at `path`.
#[derive(Debug)]
pub struct ClientApi {
    pub(crate) handle: ClientHandle,
    pub(crate) path: PathBuf,
    /// One change at a time: each reads the file, writes it and reloads.
    pub(crate) changing: Mutex<()>,
}

impl ClientApi {
    /// The API of the client behind `handle`, configured by the file at `path`.
    pub fn new(handle: ClientHandle, path: &Path) -> Self {
        Self {
            handle,
            path: path.to_path_buf(),
            changing: Mutex::new(()),
        }
    }

    /// Rereads the config file and applies it (SIGHUP, `frpc reload`, `POST /api/v1/reload`).
    ///
    /// # Errors
    /// `400` with `frpc --check`'s message when the file is not valid (nothing changes);
    /// `502` when new server settings in it do not work (the old connection stays).
    pub async fn reload(&self) -> Result<ReloadReport, ApiError> {
        let _one = self.changing.lock().await;
        let text = self.read()?;
        let settings = self.validate(&text)?;
        self.apply(settings).await
    }

    /// The config file's text.
    pub(crate) fn read(&self) -> Result<String, ApiError> {
        std::fs::read_to_string(&self.path)
            .map_err(|e| ApiError::internal(format!("reading {}: {e}", self.path.display())))
    }

    /// `text` validated as the contents of the config file.
    pub(crate) fn validate(&self, text: &str) -> Result<ClientSettings, ApiError> {
        ClientSettings::from_text(&self.path, text)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Writes `text` to the config file, atomically.
    pub(crate) fn write(&self, text: &str) -> Result<(), ApiError> {
        crate::config_edit::write_atomic(&self.path, text.as_bytes(), 0o600)
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", self.path.display())))
    }

    /// Applies validated settings to the running client.
    pub(crate) async fn apply(&self, settings: ClientSettings) -> Result<ReloadReport, ApiError> {
        let report = self.handle.reload(settings).await.map_err(reload_error)?;
        tracing::info!(
            added = ?report.added, removed = ?report.removed, changed = ?report.changed,
            retargeted = ?report.retargeted, "config reloaded"
        );
        Ok(report)
    }

    async fn route(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        let Some(parts) = req.route(PREFIX) else {
            return Err(no_route(&req));
        };
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let m = req.method.clone();
        match (parts.as_slice(), m) {
            (["status"], Method::GET) => Ok(ApiResponse::ok(&self.status_view())),
            (["proxies"], Method::GET) => self.list_proxies(),
            (["proxies"], Method::POST) => self.add_proxy(&req).await,
            (["proxies", name], Method::GET) => self.get_proxy(name),
            (["proxies", name], Method::DELETE) => self.delete_proxy(name).await,
            (["proxies", name], Method::PUT) => self.replace_proxy(name, &req).await,
            (["config"], Method::GET) => {
                let text = self.read()?;
                Ok(ApiResponse::bytes(
                    StatusCode::OK,
                    "application/toml; charset=utf-8",
                    text,
                ))
            }
            (["config"], Method::PUT) => self.put_config(&req).await,
            (["server"], Method::GET) => self.get_server(),
            (["server"], Method::PUT) => self.put_server(&req).await,
            (["reload"], Method::POST) => Ok(ApiResponse::ok(&self.reload().await?)),
            (["status" | "proxies" | "config" | "server" | "reload"], _) | (["proxies", _], _) => {
                Err(ApiError::method(&req.method, &req.path))
            }
            _ => Err(no_route(&req)),
        }
    }

    /// `PUT /api/v1/config`: a whole new file.
    async fn put_config(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| ApiError::bad_request("the config must be UTF-8 text"))?;
        let _one = self.changing.lock().await;
        let settings = self.validate(text)?;
        self.write(text)?;
        Ok(ApiResponse::ok(&self.apply(settings).await?))
    }

    /// `GET /api/v1/status`.
    pub(crate) fn status_view(&self) -> StatusView {
        let status = self.handle.status();
        let settings = self.handle.settings();
        StatusView {
            server: ServerView::of(&status, self.handle.rtt()),
            proxies: proxy_views(&status, &settings),
        }
    }
}

impl Handler for ClientApi {
    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(async move { self.route(req).await.into() })
    }

    fn ready(&self) -> Result<(), String> {
        let status = self.handle.status();
        match (status.connected, status.last_error) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(format!("not connected to the server: {e}")),
            (false, None) => Err("not connected to the server yet".into()),
        }
    }

    fn dashboard(&self) -> Option<&Dashboard> {
        Some(&DASHBOARD)
    }
}

/// frpc's page, embedded (`frpc/assets/`), served at `/`.
pub const DASHBOARD: Dashboard = Dashboard {
    index: include_bytes!("../assets/index.html"),
    app: include_bytes!("../assets/app.js"),
};

fn no_route(req: &ApiRequest) -> ApiError {
    ApiError::not_found(format!("no such route: {} {}", req.method, req.path))
}

/// A reload's failure as an answer: `502` for server settings that do not work, `503` for a
/// client that has stopped.
pub(crate) fn reload_error(e: ReloadError) -> ApiError {
    let status = match e {
        ReloadError::Server(_) => StatusCode::BAD_GATEWAY,
        ReloadError::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}

/// `GET /api/v1/status`.
#[derive(Debug, Deserialize, Serialize)]
pub struct StatusView {
    /// The connection to the server.
    pub server: ServerView,
    /// Every configured proxy.
    pub proxies: Vec<ProxyView>,
}

/// The connection to the server.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    /// The server as configured (`host:port`).
    pub addr: String,
    /// `connected`, `connecting` or `waiting` (between attempts).
    pub state: String,
    /// The address connected to.
    pub remote_addr: Option<String>,
    /// When the current state began (RFC 3339).
    pub since: Option<String>,
    /// Round-trip time, milliseconds.
    pub rtt_ms: Option<f64>,
    /// The transport of the connection: `quic`, or `tcp` (TLS over TCP, where UDP is
    /// blocked).
    #[serde(default)]
    pub transport: Option<String>,
    /// The server's protocol minor.
    pub protocol_minor: Option<u16>,
    /// Why the last connection ended or failed.
    pub last_error: Option<String>,
    /// When the next attempt starts (RFC 3339).
    pub next_retry: Option<String>,
    /// Sessions established since start.
    pub sessions: u64,
    /// Sessions lost and attempts failed since start.
    pub reconnects: u64,
}

impl ServerView {
    fn of(s: &ClientStatus, rtt: Option<std::time::Duration>) -> Self {
        Self {
            addr: s.server.clone(),
            state: s.state().into(),
            remote_addr: s.server_addr.map(|a| a.to_string()),
            since: s.since.and_then(rfc3339),
            rtt_ms: rtt
                .filter(|_| s.connected)
                .map(|r| r.as_secs_f64() * 1000.0),
            transport: s.transport.map(|t| t.as_str().to_string()),
            protocol_minor: s.server_minor,
            last_error: s.last_error.clone(),
            next_retry: s.next_retry.and_then(rfc3339),
            sessions: s.sessions,
            reconnects: s.reconnects,
        }
    }
}

/// One proxy and its state.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyView {
    /// Its name.
    pub name: String,
    /// `tcp`, `http` or `https`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `running`, `refused`, `pending` or `disabled`.
    pub state: String,
    /// Where it is published (tcp: its public port; http/https: the vhost port).
    pub remote_addr: Option<String>,
    /// The names an http/https proxy answers for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// The local service.
    pub local: String,
    /// The server's reason, when refused.
    pub reason: Option<String>,
    /// The proxy's keys in the config file (`GET /api/v1/proxies`), secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

impl ProxyView {
    fn of(p: &LocalProxy, state: &ProxyState) -> Self {
        let mut domains = p.vhost.custom_domains.clone();
        if !p.vhost.subdomain.is_empty() {
            domains.push(format!("{} (subdomain)", p.vhost.subdomain));
        }
        Self {
            name: p.name.to_string(),
            kind: p.kind.as_str().into(),
            state: state.as_str().into(),
            remote_addr: match state {
                ProxyState::Bound(a) => Some(a.to_string()),
                _ => None,
            },
            domains,
            local: format!("{}:{}", p.local_host, p.local_port),
            reason: match state {
                ProxyState::Refused(r) => Some(r.clone()),
                _ => None,
            },
            config: None,
        }
    }
}

/// Every proxy of `settings` (disabled ones last) with its state.
pub(crate) fn proxy_views(status: &ClientStatus, settings: &ClientSettings) -> Vec<ProxyView> {
    let enabled = settings.proxies.iter().map(|p| {
        let state = status
            .proxies
            .get(&p.name)
            .cloned()
            .unwrap_or(ProxyState::Pending);
        ProxyView::of(p, &state)
    });
    let disabled = settings
        .disabled
        .iter()
        .map(|p| ProxyView::of(p, &ProxyState::Disabled));
    enabled.chain(disabled).collect()
}
