//! `/api/v1/server`: the server connection's settings as a management plane pushes them,
//! certificates and key in PEM.
//!
//! `PUT` checks everything before touching anything (the certificates parse, the CA is a CA,
//! the key belongs to the certificate), then moves the connection: a session with the new
//! settings must register before the old one is let go. Only then are the PEMs written next
//! to the config file (mode 0600) and the config pointed at them. `GET` never returns the
//! private key, only its certificate, fingerprint and expiry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use frp_admin::{ApiError, ApiRequest, ApiResponse};
use frp_runtime::config::TlsFiles;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use frp_admin::rfc3339;

use crate::api::{reload_error, ClientApi};
use crate::config::TlsSource;
use crate::config_edit::{self, ServerKeys};
use crate::config_transport::check_server;

/// `PUT /api/v1/server`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServerBody {
    server: String,
    port: Option<u16>,
    server_name: Option<String>,
    ca_cert: String,
    client_cert: String,
    client_key: String,
}

/// `GET /api/v1/server`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerInfo {
    server: String,
    port: u16,
    server_name: String,
    ca_cert: Option<String>,
    client_cert: Option<String>,
    /// SHA-256 of the client certificate (DER), hex.
    client_cert_fingerprint: Option<String>,
    /// When the client certificate expires (RFC 3339).
    client_cert_not_after: Option<String>,
}

/// The files `PUT` writes, next to the config file.
fn pem_paths(config: &Path) -> [PathBuf; 3] {
    let dir = config.parent().unwrap_or(Path::new(""));
    let stem = config
        .file_stem()
        .map_or("frpc".into(), |s| s.to_string_lossy().into_owned());
    [
        dir.join(format!("{stem}-client.crt")),
        dir.join(format!("{stem}-client.key")),
        dir.join(format!("{stem}-server-ca.crt")),
    ]
}

impl ClientApi {
    /// `GET /api/v1/server`.
    pub(crate) fn get_server(&self) -> Result<ApiResponse, ApiError> {
        let s = self.handle.settings();
        let files = s.tls_source.as_ref().map(|t| &t.files);
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let client_cert = files.and_then(|f| read(&f.cert));
        let leaf = client_cert
            .as_deref()
            .and_then(|pem| CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok());
        let not_after = leaf.as_ref().and_then(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
            rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        });
        Ok(ApiResponse::ok(&ServerInfo {
            server: s.server_host.clone(),
            port: s.server_port,
            server_name: s.server_name.clone(),
            ca_cert: files.and_then(|f| read(&f.ca)),
            client_cert_fingerprint: leaf.as_ref().map(frp_certs::fingerprint),
            client_cert,
            client_cert_not_after: not_after,
        }))
    }

    /// `PUT /api/v1/server`: `204` once the connection moved; `400` (nothing changed) for
    /// settings that cannot work; `502` when the new server settings fail (the old
    /// connection stays).
    pub(crate) async fn put_server(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body: ServerBody = req.json()?;
        let tls = client_tls(&body)?;
        let _one = self.changing.lock().await;
        let text = self.read()?;
        let mut settings = (*self.handle.settings()).clone();
        settings.server_host = body.server.clone();
        settings.server_port = body.port.unwrap_or(settings.server_port);
        settings.server_name = body.server_name.clone().unwrap_or(body.server.clone());
        check_server(&settings).map_err(ApiError::bad_request)?;
        let [cert, key, ca] = pem_paths(&self.path);
        let pems = [&body.client_cert, &body.client_key, &body.ca_cert];
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        };
        settings.tls = Arc::new(tls);
        settings.tls_source = Some(TlsSource::new(files, pems.map(|p| p.as_bytes())));
        let name = |p: &Path| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        let keys = ServerKeys {
            addr: settings.server_host.clone(),
            port: settings.server_port,
            server_name: body.server_name.clone(),
            cert_file: name(&cert),
            key_file: name(&key),
            ca_file: name(&ca),
        };
        let new_text = config_edit::set_server(&text, &keys)
            .map_err(|e| ApiError::bad_request(format!("the config file cannot be edited: {e}")))?;
        self.handle
            .move_server(settings)
            .await
            .map_err(reload_error)?;
        for (path, pem) in [&cert, &key, &ca].into_iter().zip(pems) {
            config_edit::write_atomic(path, pem.as_bytes(), 0o600)
                .and_then(|()| set_mode(path))
                .map_err(|e| written_error(path, &e))?;
        }
        self.write(&new_text)?;
        tracing::info!(server = %keys.addr, port = keys.port, "server settings replaced through the admin api");
        Ok(ApiResponse::no_content())
    }
}

/// The files are the client's secrets: 0600 even where an older file had another mode.
fn set_mode(path: &Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    frp_certs::set_mode(&file, 0o600)
}

fn written_error(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "the connection moved, but writing {} failed: {e}",
        path.display()
    ))
}

/// The TLS config the PEMs make; `400` naming the field that is wrong.
fn client_tls(body: &ServerBody) -> Result<rustls::ClientConfig, ApiError> {
    let roots = certs("caCert", &body.ca_cert)?;
    for root in &roots {
        let (_, cert) = x509_parser::parse_x509_certificate(root)
            .map_err(|e| ApiError::bad_request(format!("caCert: {e}")))?;
        if !cert.is_ca() {
            return Err(ApiError::bad_request(
                "caCert: the certificate is not a CA (its basicConstraints do not say CA:TRUE)",
            ));
        }
    }
    let chain = certs("clientCert", &body.client_cert)?;
    let key = PrivateKeyDer::from_pem_slice(body.client_key.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("clientKey: no usable private key: {e}")))?;
    frp_certs::client_tls_config(chain, key, roots).map_err(|e| {
        ApiError::bad_request(format!(
            "clientKey does not fit clientCert: {}",
            frp_runtime::config::error_chain(&e)
        ))
    })
}

/// Every certificate in `pem`; `400` when there is none or one does not parse.
fn certs(field: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, ApiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))?;
    for c in &certs {
        x509_parser::parse_x509_certificate(c)
            .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))?;
    }
    match certs.is_empty() {
        true => Err(ApiError::bad_request(format!(
            "{field}: no PEM certificate"
        ))),
        false => Ok(certs),
    }
}
