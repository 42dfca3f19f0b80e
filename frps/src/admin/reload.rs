//! Reloading frps.toml (SIGHUP, `POST /api/v1/reload`) without a restart.
//!
//! The file is validated whole first, as `frps --check` would: a file with any mistake changes
//! nothing and the answer says what is wrong. A valid file's policy is then swapped in at once:
//! `allowPorts`, `allowDomains`, `[[clients]]`, `subDomainHost`, the per-client and per-proxy
//! limits (for proxies and connections from now on), `revocationFile` (clients it now lists are
//! disconnected) and the certificates for TLS termination (`[vhostHTTPS]`). Published proxies
//! the new policy forbids are withdrawn, and their clients (protocol minor 2 or later) are told
//! why with a `ProxiesClosed`. Keys bound to a socket or read once at start (addresses, ports,
//! `transport.*`, `webServer.*`, the vhost timeouts and connection limits) keep their running
//! values and are reported in `restartRequired`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use frp_admin::ApiError;
use frp_proto::ProxyKind;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::info;

use super::ServerApi;
use crate::config::ServerSettings;
use crate::registry::{SessionCommand, SessionView};

/// Top-level keys of frps.toml whose change needs a restart.
const RESTART_KEYS: &[&str] = &[
    "bindAddr",
    "bindPort",
    "proxyBindAddr",
    "vhostHTTPPort",
    "vhostHTTPSPort",
    "vhostHTTPTimeout",
    "vhostBodyIdleTimeout",
    "vhostUpgradeIdleTimeout",
    "vhostMaxConnections",
    "vhostMaxConnectionsPerIP",
    "vhostAuthMaxFailures",
    "vhostAuthMaxBackoff",
    "gracefulShutdownTimeout",
    "transport",
    "webServer",
    "enablePrometheus",
];

/// How long a reload waits for a session to withdraw the proxies it was told to.
const WITHDRAW_WAIT: Duration = Duration::from_secs(5);

/// The file's keys as last applied, to tell which changed keys need a restart.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    table: toml::Table,
}

impl Applied {
    /// The keys of the file at `path` now (empty when there is none or it cannot be read:
    /// the server was just started from it).
    pub(crate) fn read(path: Option<&Path>) -> Self {
        let text = path.and_then(|p| std::fs::read_to_string(p).ok());
        let table = text.and_then(|t| toml::from_str(&t).ok());
        Self {
            table: table.unwrap_or_default(),
        }
    }
}

/// What a reload did (`POST /api/v1/reload`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// Changed keys that keep their running value until frps restarts.
    pub restart_required: Vec<String>,
    /// Proxies withdrawn because the new policy forbids them.
    pub withdrawn: Vec<Withdrawn>,
    /// Clients disconnected because their certificate is now revoked.
    pub disconnected: usize,
    /// Entries in the revocation list now in force.
    pub revoked_certificates: usize,
}

/// One proxy a reload withdrew.
#[derive(Debug, Deserialize, Serialize)]
pub struct Withdrawn {
    /// Its client's identity.
    pub client: String,
    /// Its name.
    pub proxy: String,
    /// Why, as its client is told.
    pub reason: String,
}

impl ServerApi {
    /// Rereads the config file and applies it; see the module docs.
    ///
    /// # Errors
    /// `400` with `frps --check`'s message when the file is not valid (nothing changes);
    /// `409` for a server started without a config file.
    pub async fn reload(&self) -> Result<ReloadReport, ApiError> {
        let path = self.path.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "this server has no config file to reread",
            )
        })?;
        let mut applied = self.changing.lock().await;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ApiError::internal(format!("{}: cannot read file: {e}", path.display()))
        })?;
        let new = ServerSettings::from_text(path, &text)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut table: toml::Table = toml::from_str(&text).unwrap_or_default();
        let mut restart_required: Vec<String> = RESTART_KEYS
            .iter()
            .filter(|k| applied.table.get(**k) != table.get(**k))
            .map(|k| (*k).to_string())
            .collect();
        // ACME's settings live beside the reloadable certificates, and need a restart.
        let acme = |t: &toml::Table| t.get("vhostHTTPS").and_then(|v| v.get("acme")).cloned();
        if acme(&applied.table) != acme(&table) {
            restart_required.push("vhostHTTPS.acme".into());
        }
        let old = self.shared.settings();
        let merged = Arc::new(merge(&old, new));
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::clone(&merged);
        let revoked = Arc::new(merged.revoked.clone());
        let disconnected = self.shared.apply_revocations(&revoked);
        let withdrawn = self.withdraw_forbidden(&merged).await;
        // Keys that need a restart keep their running values: the next reload compares the
        // file with what runs, not with the file it read last.
        for key in RESTART_KEYS {
            match applied.table.get(*key) {
                Some(v) => table.insert((*key).to_string(), v.clone()),
                None => table.remove(*key),
            };
        }
        applied.table = table;
        info!(
            file = %path.display(), withdrawn = withdrawn.len(), disconnected,
            restart_required = ?restart_required, "frps.toml reloaded"
        );
        Ok(ReloadReport {
            restart_required,
            withdrawn,
            disconnected,
            revoked_certificates: revoked.len(),
        })
    }

    /// Tells each session to withdraw the proxies `settings` forbids, and waits for them.
    async fn withdraw_forbidden(&self, settings: &ServerSettings) -> Vec<Withdrawn> {
        let registry = &self.shared.registry;
        let mut all = Vec::new();
        for s in registry.sessions() {
            let names = forbidden(&s, settings);
            if names.is_empty() {
                continue;
            }
            let (done, finished) = oneshot::channel();
            let order = SessionCommand::Withdraw(names.clone(), done);
            if registry.command(&s.key, s.session, order) {
                let _ = tokio::time::timeout(WITHDRAW_WAIT, finished).await;
            }
            all.extend(names.into_iter().map(|(proxy, reason)| Withdrawn {
                client: s.name.clone(),
                proxy: proxy.to_string(),
                reason,
            }));
        }
        all
    }
}

/// The proxies of `s` that `settings` no longer allows, each with the reason.
fn forbidden(s: &SessionView, settings: &ServerSettings) -> Vec<(frp_proto::ProxyName, String)> {
    let mut out = Vec::new();
    for p in &s.proxies {
        let verdict = match p.kind {
            ProxyKind::Tcp => settings.policy.check(&s.name, p.remote.port()),
            _ => p
                .hosts
                .iter()
                .try_for_each(|h| settings.domains.check(&s.name, h)),
        };
        if let Err(why) = verdict {
            out.push((
                p.name.clone(),
                format!("no longer allowed after a server reload: {why}"),
            ));
        }
    }
    out
}

/// `new` with the running values of what needs a restart to change.
fn merge(old: &ServerSettings, mut new: ServerSettings) -> ServerSettings {
    new.bind = old.bind;
    new.proxy_bind_ip = old.proxy_bind_ip;
    new.tls = Arc::clone(&old.tls);
    new.quic = old.quic;
    new.handshakes = old.handshakes;
    new.endpoint_secret.clone_from(&old.endpoint_secret);
    new.web.clone_from(&old.web);
    new.grace = old.grace;
    let mut vhost = old.vhost.clone();
    vhost.certificates = new.vhost.certificates;
    vhost.subdomain_host = new.vhost.subdomain_host;
    new.vhost = vhost;
    new
}
