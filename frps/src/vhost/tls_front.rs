//! `vhostHTTPSPort`'s connections once admitted: the ClientHello read, then frps's own ACME
//! validation answered, a tunnel from frpc over the TCP transport taken to its front door
//! ([`crate::tcp_transport`]), the connection passed through to an `https` proxy, or TLS
//! terminated (with a configured or an ACME certificate) and served as HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::debug;

use super::io::{Slot, VisitorIo};
use super::routes::TlsRoute;
use super::{acme_tls, serve_http, tls, Conn, Frontend, TlsTarget};
use crate::proxy::{forward, OpenStream};
use crate::server::Shared;

/// Reads the ClientHello and passes the connection through, terminates it, or closes it.
pub(super) async fn serve_tls(
    mut tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    front: Arc<Frontend>,
    shared: Arc<Shared>,
) {
    let hello = match tokio::time::timeout(tls::HELLO_TIMEOUT, tls::read_hello(&mut tcp)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return debug!(%peer, error = %e, "tls connection closed before routing"),
        Err(_) => return debug!(%peer, "no client hello in time; closing"),
    };
    if hello.tunnel {
        // frpc over the TCP transport: its own handshake limits apply from here, and it is a
        // session, drained with the sessions rather than the data streams.
        drop(slot);
        let io = tls::Prefixed::new(hello.bytes, tcp);
        let admit = shared.tcp_door.clone().admit(io, peer, Arc::clone(&shared));
        shared.sessions.spawn(admit);
        return;
    }
    let Some(sni) = hello.sni else {
        return debug!(%peer, "client hello without a server name; closing");
    };
    // frps's own validations; any other acme-tls/1 hello is routed like the rest (a service
    // behind a passthrough proxy may run its own ACME client).
    let own = hello
        .acme_challenge
        .then(|| shared.acme.as_ref()?.tls_alpn_answer(&sni));
    if let Some(config) = own.flatten() {
        return acme_tls::answer_challenge(tcp, peer, &sni, hello.bytes, config).await;
    }
    let settings = shared.settings();
    let certs = &settings.vhost.certificates;
    let certified = |key: &str| certs.serves(key, &sni);
    if let TlsRoute::Passthrough(target) = shared.registry.lookup_tls(&sni, certified) {
        let _slot = slot;
        return passthrough(tcp, peer, hello.bytes, &target, &shared).await;
    }
    // Terminated: the http proxies holding the name serve it (404 when none does), with a
    // configured certificate, else an ACME one.
    let (config, missing) = match certs.find(&sni) {
        Some(config) => (config, None),
        None => match acme_tls::certificate(&shared, &sni).await {
            Some(Ok(config)) => (config, None),
            Some(Err(why)) => match &shared.acme {
                Some(acme) => (acme.fallback(), Some(why)),
                None => return,
            },
            None => {
                return debug!(%peer, %sni, "no https proxy or certificate for this name; closing")
            }
        },
    };
    let io = VisitorIo::new(tcp, slot, front.body_idle);
    let state = io.state();
    let stream = match tls::terminate(io, hello.bytes, config, peer).await {
        Ok(stream) => stream,
        Err(e) => return debug!(%peer, %sni, error = %e, "tls handshake failed"),
    };
    match missing {
        // The certificate is the fallback one: say why instead of serving the site.
        Some(why) => acme_tls::error_page(stream, peer, &sni, why).await,
        None => {
            let conn = Conn {
                peer,
                state,
                sni: Some(sni),
            };
            serve_http(stream, conn, front, &shared).await;
        }
    }
}

/// Forwards the raw TLS connection, its hello first, to the https proxy's client.
async fn passthrough(
    tcp: TcpStream,
    peer: SocketAddr,
    hello: bytes::Bytes,
    t: &TlsTarget,
    shared: &Shared,
) {
    let ticket = match t.share.try_take() {
        Ok(ticket) => ticket,
        Err(e) => {
            debug!(proxy = %t.name, %peer, reason = %e, "no connection left; resetting");
            return frp_runtime::splice::reset_tcp(tcp);
        }
    };
    let open = OpenStream {
        conn: t.conn.clone(),
        id: t.id,
        name: t.name.clone(),
        timeout: shared.settings().open_stream_timeout,
        permit: None,
        _held: (ticket, None),
        gauges: shared.gauges.clone(),
        stats: Arc::clone(&t.stats),
    };
    forward(open, tcp, peer, hello).await;
}
