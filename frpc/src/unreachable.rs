//! Hearing the network say "no" to UDP: an ICMP "port unreachable" for the server's QUIC
//! port, which quinn does not report (its socket is unconnected, so the kernel keeps such
//! errors to itself).
//!
//! While a QUIC handshake is still under way after [`FIRST_PROBE`] (most finish in one round
//! trip, and then nothing is sent), a second, *connected* UDP socket sends one byte to the
//! same address [`PROBES`] times, [`PROBE_EVERY`] apart, listening after each; the
//! kernel turns an ICMP "port unreachable" for it into `ECONNREFUSED` on that socket. Then
//! the socket is closed and the watch stays pending. A byte is not a QUIC packet: frps drops
//! it unread, so a server that is there costs nothing and answers nothing. Firewalls that
//! drop UDP silently say nothing either; for those `auto` still waits its head start.
//!
//! At most [`WATCHES`] run at once in a process: one frpc has one handshake at a time, and a
//! process holding thousands of clients (the scale harness) must not double its sockets, or
//! send thousands of stray bytes a second at a restarting frps, when they all reconnect.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

/// How long a handshake runs before the watch sends its first byte.
pub(crate) const FIRST_PROBE: Duration = Duration::from_millis(500);

/// How often the watch sends its byte (ICMP errors are rate-limited and may be lost).
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Bytes one watch sends.
pub(crate) const PROBES: u32 = 4;

/// Watches running at once in this process; a handshake that finds none free is not watched.
pub(crate) const WATCHES: usize = 16;

static RUNNING: Semaphore = Semaphore::const_new(WATCHES);

/// Resolves once the network has answered a datagram to `addr` with "port unreachable";
/// pending forever otherwise (also when the watch's own socket cannot be set up: then there
/// is nothing to hear, and the handshake's own timeout applies).
pub(crate) async fn refused(addr: SocketAddr) {
    tokio::time::sleep(FIRST_PROBE).await;
    let heard = match RUNNING.try_acquire() {
        Ok(_permit) => watch(addr).await,
        Err(_) => Ok(false),
    };
    match heard {
        Ok(true) => {}
        Ok(false) => std::future::pending::<()>().await,
        Err(e) => {
            tracing::debug!(server = %addr, error = %e, "no ICMP watch for QUIC");
            std::future::pending::<()>().await;
        }
    }
}

/// Whether "port unreachable" was heard within [`PROBES`] × [`PROBE_EVERY`].
async fn watch(addr: SocketAddr) -> std::io::Result<bool> {
    let socket = UdpSocket::bind(crate::dial::any_local(addr)).await?;
    socket.connect(addr).await?;
    let mut buf = [0u8; 64];
    for _ in 0..PROBES {
        match socket.send(&[0]).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(true),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let until = tokio::time::Instant::now() + PROBE_EVERY;
        loop {
            match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => return Ok(true),
                Ok(Err(e)) => return Err(e),
                // An answer (not frps's: it answers no stray byte): keep listening.
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_heard_and_an_open_one_is_not() {
        // A port with nothing bound: the kernel answers with "port unreachable".
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.local_addr().expect("addr")
        };
        let heard = tokio::time::timeout(Duration::from_secs(10), refused(closed)).await;
        assert!(heard.is_ok(), "no port unreachable heard from {closed}");
        // A bound socket that answers nothing: the watch stays pending, having sent its
        // bytes and no more.
        let open = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = open.local_addr().expect("addr");
        let all = FIRST_PROBE + PROBE_EVERY * (PROBES + 2);
        let waited = tokio::time::timeout(all, refused(addr)).await;
        assert!(waited.is_err(), "an open port was taken for a closed one");
        let mut buf = [0u8; 8];
        for _ in 0..PROBES {
            let (n, _) = open.recv_from(&mut buf).await.expect("the watch's byte");
            assert_eq!(&buf[..n], &[0]);
        }
        let more = tokio::time::timeout(PROBE_EVERY, open.recv_from(&mut buf)).await;
        assert!(more.is_err(), "the watch sent more than {PROBES} bytes");
    }
}
