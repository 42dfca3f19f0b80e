//! `vhostHTTPSPort`'s part in ACME: tls-alpn-01 validations answered before any routing, a
//! held name's certificate obtained (or waited for), and the error page, over the fallback
//! certificate, when there is none.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::debug;

use super::service::text;
use super::tls;
use crate::server::Shared;

/// Answers a validation connection (ALPN `acme-tls/1`) for `sni` with frps's challenge
/// certificate `config`: never routed to a client.
pub async fn answer_challenge(
    tcp: TcpStream,
    peer: SocketAddr,
    sni: &str,
    hello: Bytes,
    config: Arc<rustls::ServerConfig>,
) {
    match tls::terminate(tcp, hello, config, peer).await {
        Ok(_) => debug!(%peer, %sni, "answered a tls-alpn-01 validation"),
        Err(e) => debug!(%peer, %sni, error = %e, "tls-alpn-01 handshake failed"),
    }
}

/// The ACME certificate for `sni`: `None` when ACME is off or the name is not one it serves
/// (not held exactly by an http proxy, or outside `acme.domains`); `Some(Err)` with the
/// reason when it should be but is not there (yet).
pub async fn certificate(
    shared: &Shared,
    sni: &str,
) -> Option<Result<Arc<rustls::ServerConfig>, String>> {
    let acme = shared.acme.as_ref()?;
    if !acme.covers(sni) || !shared.registry.holds_http(sni) {
        return None;
    }
    Some(acme.certificate(sni).await)
}

/// Serves `why` as a `503` page on every request of a connection whose TLS frps completed
/// with the fallback certificate.
pub async fn error_page<T>(stream: T, peer: SocketAddr, sni: &str, why: String)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let page = format!(
        "503 service unavailable: frps has no certificate for {sni} yet ({why}).\n\
         The certificate presented is frps's self-signed fallback; the server's log and \
         its admin API (/api/v1/acme) say more."
    );
    let service = service_fn(move |_req| {
        let page = page.clone();
        async move { Ok::<_, Infallible>(text(StatusCode::SERVICE_UNAVAILABLE, &page)) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(tls::HELLO_TIMEOUT)
        .keep_alive(false);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        debug!(%peer, %sni, error = %e, "error page connection ended with an error");
    }
}
