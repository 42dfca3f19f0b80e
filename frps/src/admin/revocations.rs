//! `GET` and `POST /api/v1/revocations`: the revocation list in force, and adding to it.
//!
//! An entry posted is appended to `revocationFile` atomically, as `frps ca revoke` does, and
//! the file is then applied at once, as SIGHUP would: clients whose certificate it lists are
//! disconnected.

use std::sync::Arc;

use frp_admin::{ApiError, ApiRequest, ApiResponse};
use hyper::StatusCode;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use super::ServerApi;
use crate::revocation::Revocations;

/// `POST /api/v1/revocations`: exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    /// A serial, hex (`2A:8D:...` or `serial=2A8D...`).
    serial: Option<String>,
    /// A SHA-256 fingerprint, hex.
    fingerprint: Option<String>,
    /// A PEM certificate: its fingerprint is listed.
    certificate: Option<String>,
}

/// The answer to a revocation.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// The entry as the list now holds it (`serial=...` or `sha256=...`).
    pub entry: String,
    /// Whether the list held it already (nothing was written).
    pub already_listed: bool,
    /// Clients disconnected because the list now names their certificate.
    pub disconnected: usize,
}

/// `GET /api/v1/revocations`.
#[derive(Debug, Deserialize, Serialize)]
pub struct RevocationList {
    /// `revocationFile`, when set.
    pub file: Option<String>,
    /// The entries in force, `serial=...` and `sha256=...`.
    pub entries: Vec<String>,
}

impl ServerApi {
    pub(crate) fn list_revocations(&self) -> Result<ApiResponse, ApiError> {
        let settings = self.shared.settings();
        Ok(ApiResponse::ok(&RevocationList {
            file: (settings.revocation_file.as_ref()).map(|p| p.display().to_string()),
            entries: self.shared.revoked().entries(),
        }))
    }

    pub(crate) async fn revoke(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body: Revoke = req.json()?;
        let settings = self.shared.settings();
        let list = settings.revocation_file.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "frps.toml sets no revocationFile: set one (and restart or reload) to revoke",
            )
        })?;
        let _one = self.changing.lock().await;
        let (entry, already) = match (body.serial, body.fingerprint, body.certificate) {
            (Some(serial), None, None) => entry(&format!("serial={}", strip(&serial)), list)?,
            (None, Some(print), None) => entry(&fingerprint(&print)?, list)?,
            (None, None, Some(pem)) => certificate(&pem, list)?,
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of serial, fingerprint and certificate",
                ))
            }
        };
        let now = Revocations::load(list).map_err(ApiError::internal)?;
        let disconnected = self.shared.apply_revocations(&Arc::new(now));
        match already {
            true => tracing::info!(%entry, "revocation asked for an entry already listed"),
            false => tracing::warn!(%entry, disconnected, "certificate revoked (admin API)"),
        }
        Ok(ApiResponse::ok(&Revoked {
            entry,
            already_listed: already,
            disconnected,
        }))
    }
}

/// The hex after a `label=` OpenSSL prints (`serial=`, `sha256 Fingerprint=`), or the value.
fn strip(value: &str) -> &str {
    let v = value.trim();
    v.split_once('=').map_or(v, |(_, hex)| hex.trim())
}

/// A SHA-256 fingerprint as the list takes it (64 hex digits, colons allowed).
fn fingerprint(value: &str) -> Result<String, ApiError> {
    let hex: String = strip(value).chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "fingerprint: a SHA-256 fingerprint is 64 hex digits (openssl x509 -noout \
             -fingerprint -sha256), this is {} characters",
            hex.len()
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

fn entry(line: &str, list: &std::path::Path) -> Result<(String, bool), ApiError> {
    crate::ca_revoke::revoke_entry(line, list).map_err(|e| ApiError::bad_request(format!("{e:#}")))
}

fn certificate(pem: &str, list: &std::path::Path) -> Result<(String, bool), ApiError> {
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| ApiError::bad_request("certificate: no PEM certificate in it"))?
        .map_err(|e| ApiError::bad_request(format!("certificate: not valid PEM: {e}")))?;
    let r = crate::ca_revoke::revoke_certificate(&cert, "the certificate", list)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    Ok((format!("sha256={}", r.fingerprint), r.already))
}
