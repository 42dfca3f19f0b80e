//! `vhostHTTPSPort`: read the TLS ClientHello, then by its SNI either pass the connection
//! through untouched to an `https` proxy (TLS stays end to end), or terminate TLS with a
//! certificate frps holds for that name and serve it like `vhostHTTPPort`.
//!
//! The ClientHello is parsed by rustls' [`Acceptor`] on bytes we keep, so they can be
//! replayed: to the client for passthrough, to tokio-rustls for termination. A connection with
//! no SNI, an unknown name, a hello that does not parse, or one that does not arrive in
//! [`HELLO_TIMEOUT`] is closed; each connection runs in its own task, so none of that holds
//! the accept loop.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use crate::domains::{normalize_host, DomainPattern};

/// How long a client may take to send its whole ClientHello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ClientHello read: post-quantum key shares make them a few KiB, and 16 KiB is one
/// whole TLS record.
const MAX_HELLO: usize = 16 * 1024;

/// Certificates frps terminates TLS with, chosen by SNI.
#[derive(Clone, Debug, Default)]
pub struct CertStore {
    entries: Vec<(DomainPattern, Arc<rustls::ServerConfig>)>,
}

impl CertStore {
    /// Adds a certificate (its TLS config) for `names`.
    pub fn add(&mut self, names: &[DomainPattern], config: Arc<rustls::ServerConfig>) {
        for n in names {
            self.entries.push((n.clone(), Arc::clone(&config)));
        }
    }

    /// Whether no certificate is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The TLS config for `host` (normalized): its exact name, else a wildcard for its
    /// parent. As in certificates (RFC 6125), `*.example.com` covers `a.example.com` and not
    /// `a.b.example.com`.
    pub fn find(&self, host: &str) -> Option<Arc<rustls::ServerConfig>> {
        let parent = host.split_once('.').map(|(_, p)| format!("*.{p}"));
        std::iter::once(host.to_string())
            .chain(parent)
            .find_map(|key| {
                self.entries
                    .iter()
                    .find(|(p, _)| p.as_str() == key)
                    .map(|(_, c)| Arc::clone(c))
            })
    }

    /// Whether a certificate is configured for exactly `name` (a name or wildcard).
    pub fn has(&self, name: &DomainPattern) -> bool {
        self.entries.iter().any(|(p, _)| p == name)
    }

    /// Whether `host` is terminated with a certificate configured for exactly `key` (the
    /// name itself, or the wildcard of its parent).
    pub fn serves(&self, key: &str, host: &str) -> bool {
        let parent = host.split_once('.').map(|(_, p)| format!("*.{p}"));
        let covers = key == host || parent.as_deref() == Some(key);
        covers && self.entries.iter().any(|(p, _)| p.as_str() == key)
    }
}

/// Whether a certificate whose DNS names are `sans` is valid for every name `pattern`
/// matches, by TLS rules: a `*.` name covers exactly one label.
pub fn cert_covers(sans: &[String], pattern: &DomainPattern) -> bool {
    let p = pattern.as_str();
    if pattern.is_wildcard() {
        return sans.iter().any(|s| s == p);
    }
    let parent = p.split_once('.').map(|(_, parent)| parent);
    sans.iter()
        .any(|s| s == p || s.strip_prefix("*.").is_some_and(|w| Some(w) == parent))
}

/// What the first flight of a TLS connection said.
#[derive(Debug)]
pub struct Hello {
    /// Every byte read so far, to replay.
    pub bytes: Bytes,
    /// The SNI, normalized; `None` when absent or unusable.
    pub sni: Option<String>,
    /// Whether it offers only ALPN `acme-tls/1`: an ACME CA validating a name (RFC 8737).
    pub acme_challenge: bool,
    /// Whether it offers the TCP transport's ALPN: frpc connecting a tunnel, not a visitor.
    pub tunnel: bool,
}

/// Reads until a whole ClientHello has arrived. Not cancel-safe; put a timeout around it.
///
/// # Errors
/// When the stream ends or fails first, the bytes are not TLS, or the hello is too large.
pub async fn read_hello(tcp: &mut TcpStream) -> io::Result<Hello> {
    let mut acceptor = Acceptor::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let before = buf.len();
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut fresh = &buf[before..];
        while !fresh.is_empty() {
            if acceptor.read_tls(&mut fresh)? == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let sni = hello.server_name().and_then(normalize_host);
                let alpn: Vec<&[u8]> = hello.alpn().map(Iterator::collect).unwrap_or_default();
                return Ok(Hello {
                    bytes: buf.freeze(),
                    sni,
                    acme_challenge: alpn == [crate::acme::ACME_TLS_ALPN],
                    tunnel: alpn.contains(&crate::tcp_transport::ALPN_TCP),
                });
            }
            Ok(None) if buf.len() < MAX_HELLO => {}
            Ok(None) => return Err(io::Error::other("client hello too large")),
            Err((e, _)) => return Err(io::Error::other(format!("not a tls client hello: {e}"))),
        }
    }
}

/// A stream that first yields `prefix`, then reads from `inner`; writes go to `inner`.
#[derive(Debug)]
pub struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Prefixed<T> {
    /// Replays `prefix` before `inner`.
    pub fn new(prefix: Bytes, inner: T) -> Self {
        Self { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Terminates TLS on a connection whose hello was already read.
///
/// # Errors
/// When the handshake fails or takes longer than [`HELLO_TIMEOUT`].
pub async fn terminate<T: AsyncRead + AsyncWrite + Unpin>(
    tcp: T,
    hello: Bytes,
    config: Arc<rustls::ServerConfig>,
    visitor: SocketAddr,
) -> io::Result<tokio_rustls::server::TlsStream<Prefixed<T>>> {
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(Prefixed::new(hello, tcp));
    match tokio::time::timeout(HELLO_TIMEOUT, accept).await {
        Ok(r) => r,
        Err(_) => {
            debug!(%visitor, "tls handshake timed out");
            Err(io::ErrorKind::TimedOut.into())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn prefixed_replays_then_reads_on() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut p = Prefixed::new(Bytes::from_static(b"hello "), a);
        b.write_all(b"world").await.unwrap();
        drop(b);
        let mut out = String::new();
        p.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn certificates_cover_names_by_tls_rules() {
        let sans = ["web.example.com".to_string(), "*.example.org".to_string()];
        let covers = |p: &str| cert_covers(&sans, &DomainPattern::parse(p).unwrap());
        assert!(covers("web.example.com") && covers("a.example.org") && covers("*.example.org"));
        assert!(!covers("a.b.example.org"), "a wildcard covers one label");
        assert!(!covers("*.example.com") && !covers("other.example.com"));
    }

    #[test]
    fn certificates_are_chosen_exact_first() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = || {
            let b = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .unwrap();
            let resolver = Arc::new(rustls::server::ResolvesServerCertUsingSni::new());
            Arc::new(b.with_no_client_auth().with_cert_resolver(resolver))
        };
        let (exact, wild) = (config(), config());
        let mut store = CertStore::default();
        store.add(
            &[DomainPattern::parse("*.example.com").unwrap()],
            Arc::clone(&wild),
        );
        store.add(
            &[DomainPattern::parse("app.example.com").unwrap()],
            Arc::clone(&exact),
        );
        assert!(Arc::ptr_eq(&store.find("app.example.com").unwrap(), &exact));
        assert!(Arc::ptr_eq(&store.find("x.example.com").unwrap(), &wild));
        assert!(store.find("example.com").is_none());
        assert!(
            store.find("a.b.example.com").is_none(),
            "a wildcard certificate covers one label"
        );
        assert!(store.serves("app.example.com", "app.example.com"));
        assert!(store.serves("*.example.com", "x.example.com"));
        assert!(!store.serves("*.example.com", "a.b.example.com"));
    }
}
