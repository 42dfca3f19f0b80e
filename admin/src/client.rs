//! A client of a running program's admin API, for `frps status`, `frpc status` and
//! `frpc reload`: it reads the address, credentials and certificate from the same
//! `[webServer]` settings the server uses.
//!
//! Over TLS it trusts exactly the certificate in `webServer.tls.certFile` (pinned by its
//! bytes), so a self-signed admin certificate works and nothing else is accepted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::{Credentials, WebServerSettings};

/// How long one call may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls one program's admin API.
#[derive(Debug)]
pub struct AdminClient {
    addr: std::net::SocketAddr,
    credentials: Option<Credentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// An answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The `error` of a JSON error body, or the body as text.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

impl AdminClient {
    /// A client for the server `settings` describe (an unspecified listen address is reached
    /// on loopback).
    ///
    /// # Errors
    /// When the pinned certificate cannot be read.
    pub fn new(settings: &WebServerSettings) -> anyhow::Result<Self> {
        let mut addr = settings.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let tls = match &settings.tls_cert_file {
            None => None,
            Some(path) => Some(Arc::new(pinned_tls(path)?)),
        };
        Ok(Self {
            addr,
            credentials: settings.credentials.clone(),
            tls,
        })
    }

    /// Sends `method path` with an optional JSON body and returns the answer.
    ///
    /// # Errors
    /// When the server cannot be reached or the exchange fails; an HTTP error status is an
    /// [`Answer`], not an error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let what = format!("calling the admin api at {}", self.addr);
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, json))
            .await
            .map_err(|_| anyhow::anyhow!("no answer in {CALL_TIMEOUT:?}"))
            .and_then(|r| r)
            .context(what)
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let tcp = TcpStream::connect(self.addr).await.with_context(|| {
            format!(
                "is the program running with webServer.port = {}?",
                self.addr.port()
            )
        })?;
        let req = self.request(method, path, json)?;
        match &self.tls {
            None => send(tcp, req).await,
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let name = ServerName::IpAddress(self.addr.ip().into());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .context("tls handshake")?;
                send(tls, req).await
            }
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(c) = &self.credentials {
            let pair = format!("{}:{}", c.user, c.password);
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut value = HeaderValue::from_str(&format!("Basic {b64}"))?;
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let body = match json {
            Some(b) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(b)
            }
            None => Bytes::new(),
        };
        Ok(builder.body(Full::new(body))?)
    }
}

async fn send<I>(io: I, req: Request<Full<Bytes>>) -> anyhow::Result<Answer>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let res = sender.send_request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok(Answer { status, body })
}

/// TLS that accepts exactly the certificate in `path` (its first certificate).
fn pinned_tls(path: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    let certs = frp_certs::load_certs(path)?;
    let Some(pinned) = certs.into_iter().next() else {
        bail!("{}: no certificate", path.display());
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        cert: pinned,
        provider: Arc::clone(&provider),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Trusts one certificate, compared byte for byte; signatures are still checked with it.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the admin server presented another certificate than webServer.tls.certFile".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
