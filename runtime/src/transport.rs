//! QUIC transport tuning shared by both ends, and the UDP socket the endpoint runs on.
//!
//! The numbers here are deliberate; each one says why it is what it is.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};
use socket2::{Domain, Protocol, Socket, Type};

use crate::congestion::CongestionControl;

/// Per-stream receive window: 8 MiB covers a 200 Mbit/s link at 300 ms RTT for one stream.
pub const STREAM_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;
/// Connection receive window: finite, so a peer can never make us buffer more than this for one
/// connection however many streams it opens. 32 MiB covers ~1 Gbit/s at 250 ms RTT.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 32 * 1024 * 1024;
/// Connection send window: what we buffer toward the peer across all streams.
pub const CONNECTION_SEND_WINDOW: u64 = 32 * 1024 * 1024;
/// UDP socket buffer we ask the kernel for (it may clamp to `net.core.rmem_max`).
pub const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The user-tunable part of the QUIC transport (`transport.quic.*` in both config files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicTuning {
    /// How often to send a keep-alive when the connection is otherwise quiet.
    pub keepalive: Duration,
    /// How long without any packet from the peer before the connection is declared dead.
    pub idle_timeout: Duration,
    /// How many streams the peer may have open toward us at once, at most: the connection
    /// starts with less and grants more as they are used ([`crate::credit`]).
    pub max_incoming_streams: u32,
    /// The congestion controller of the data this side sends.
    pub congestion: CongestionControl,
}

impl QuicTuning {
    /// frp's defaults for `transport.quic` (10 s keep-alive, 30 s idle timeout) and the
    /// default congestion controller, with the given stream limit.
    pub fn with_streams(max_incoming_streams: u32) -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_incoming_streams,
            congestion: CongestionControl::default(),
        }
    }

    /// Builds the quinn transport config.
    ///
    /// # Errors
    /// Fails when the idle timeout does not fit QUIC's varint milliseconds.
    pub fn transport_config(&self) -> anyhow::Result<Arc<TransportConfig>> {
        let mut t = TransportConfig::default();
        let credit = crate::credit::StreamCredit::new(self.max_incoming_streams);
        t.max_concurrent_bidi_streams(VarInt::from_u32(credit.granted()))
            // No side ever opens a unidirectional stream: grant none.
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
            .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
            .send_window(CONNECTION_SEND_WINDOW)
            .keep_alive_interval(Some(self.keepalive))
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.idle_timeout)
                    .context("transport.quic.maxIdleTimeout")?,
            ))
            // Path MTU discovery is on by default in quinn; set it explicitly so it stays on.
            // Its default ceiling (1452 bytes) fits any Ethernet path; no jumbo datagrams.
            .mtu_discovery_config(Some(MtuDiscoveryConfig::default()))
            // GSO on send and GRO on receive where the kernel has them (quinn's default, kept
            // explicit): up to 10 packets leave in one `sendmsg`, which is what makes UDP
            // competitive with TCP's segmentation offload on the same path.
            .enable_segmentation_offload(true)
            .congestion_controller_factory(self.congestion.factory());
        Ok(Arc::new(t))
    }
}

/// Binds the UDP socket for a QUIC endpoint with enlarged kernel buffers.
///
/// Logs a warning when the kernel grants less than asked (raise `net.core.rmem_max` /
/// `wmem_max` to fix it). GSO/GRO are used by quinn automatically where the kernel offers them.
///
/// # Errors
/// Fails when the address cannot be bound.
pub fn bind_udp(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .context("creating udp socket")?;
    if addr.is_ipv6() {
        // Accept IPv4 too when bound to [::], like frp does.
        let _ = socket.set_only_v6(false);
    }
    raise_buffers(&socket);
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding udp {addr}"))?;
    Ok(socket.into())
}

fn raise_buffers(socket: &Socket) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    let recv = granted(socket.recv_buffer_size().unwrap_or(0));
    let send = granted(socket.send_buffer_size().unwrap_or(0));
    if recv < UDP_BUFFER_BYTES || send < UDP_BUFFER_BYTES {
        // Once per process: every endpoint would say the same thing.
        WARNED.call_once(|| {
            tracing::warn!(
                wanted = UDP_BUFFER_BYTES,
                recv,
                send,
                "kernel clamped udp socket buffers; raise net.core.rmem_max and net.core.wmem_max \
             (sysctl -w net.core.rmem_max=8388608 net.core.wmem_max=8388608) for full throughput"
            )
        });
    }
}

/// The buffer size the kernel granted, from what `getsockopt` reports: Linux reports double
/// the granted size (it counts its bookkeeping), so a request clamped to `rmem_max` = 4 MiB
/// reads back as 8 MiB and must not be taken for 8 MiB granted.
fn granted(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// Creates a quinn endpoint on `socket` (a server when `server` is given), with random keys.
///
/// # Errors
/// Fails when quinn cannot take over the socket.
pub fn endpoint(
    socket: UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> anyhow::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .context("starting quic endpoint")
}

/// Creates a server endpoint on `socket` whose connection IDs and stateless resets come from
/// `secret`, so that the same secret after a restart answers the previous process's clients
/// with a stateless reset at their next packet instead of leaving them to their idle timeout.
///
/// # Errors
/// Fails when quinn cannot take over the socket.
pub fn server_endpoint(
    socket: UdpSocket,
    server: quinn::ServerConfig,
    secret: &EndpointSecret,
) -> anyhow::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        secret.endpoint_config(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .context("starting quic endpoint")
}

/// Shortest time between two stateless resets the endpoint sends (quinn's default is 20 ms).
///
/// It bounds what a stream of garbage can make us send. But it also bounds how fast a
/// restarted frps tells its old clients: at 20 ms, 10,000 returning clients would need 200 s
/// (most would wait for their idle timeout), and at 2 ms the scale harness (`bench/scale`)
/// still found 17% of 10,000 clients waiting out their 30 s idle timeout, since 10,000
/// clients' keep-alives arrive at ~1,000 a second. Resets are always smaller than the packet
/// that caused them and are sent only for connection IDs that pass the keyed check of
/// [`HashedConnectionIdGenerator`] (an attacker cannot make them up), so 200 µs (5,000 a
/// second) costs little.
pub const MIN_RESET_INTERVAL: Duration = Duration::from_micros(200);

/// The secret a server's connection IDs and stateless-reset tokens are derived from.
///
/// frps derives it from its TLS private key ([`EndpointSecret::from_key`]), so the same key
/// file gives the same secret after a restart; nothing about the key can be learnt from it.
#[derive(Clone)]
pub struct EndpointSecret([u8; 32]);

impl EndpointSecret {
    /// A secret derived from private key bytes (HKDF-SHA256 with a fixed label).
    pub fn from_key(key: &[u8]) -> Self {
        Self(hkdf(b"frp-quic endpoint secret v1", key, b"endpoint"))
    }

    /// A random secret: restarts cannot reset the previous process's clients.
    ///
    /// # Errors
    /// When the operating system has no randomness to give (ring's `SystemRandom`, which
    /// reports it rather than panicking).
    pub fn random() -> anyhow::Result<Self> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the operating system gave no random bytes"))?;
        Ok(Self(bytes))
    }

    /// quinn's endpoint config: reset key and connection-ID key from the secret.
    fn endpoint_config(&self) -> quinn::EndpointConfig {
        let reset = hkdf(b"frp-quic", &self.0, b"stateless reset key");
        let cid = hkdf(b"frp-quic", &self.0, b"connection id key");
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&cid[..8]);
        let cid_key = u64::from_le_bytes(cid_key);
        let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset);
        let mut config = quinn::EndpointConfig::new(Arc::new(reset));
        config
            .cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            })
            .min_reset_interval(MIN_RESET_INTERVAL);
        config
    }
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// HKDF-SHA256 of `ikm` with `salt`, expanded for `info` to 32 bytes.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    use ring::hkdf::{Salt, HKDF_SHA256};
    let mut out = [0u8; 32];
    let info = [info];
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&info, HKDF_SHA256)
        // 32 bytes is HKDF-SHA256's own output length: expand and fill cannot fail for it.
        .and_then(|okm| okm.fill(&mut out))
        .unwrap_or_else(|_| unreachable!("hkdf-sha256 with 32 bytes of output"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_depends_only_on_the_key() {
        let a = EndpointSecret::from_key(b"key one");
        assert_eq!(a.0, EndpointSecret::from_key(b"key one").0);
        assert_ne!(a.0, EndpointSecret::from_key(b"key two").0);
        assert_ne!(a.0, EndpointSecret::random().expect("random").0);
        assert_eq!(format!("{a:?}"), "EndpointSecret(<redacted>)");
    }

    #[test]
    fn labels_give_independent_keys() {
        let s = EndpointSecret::from_key(b"k");
        let reset = hkdf(b"frp-quic", &s.0, b"stateless reset key");
        let cid = hkdf(b"frp-quic", &s.0, b"connection id key");
        assert_ne!(reset, cid);
        assert_ne!(reset, s.0);
    }
}
