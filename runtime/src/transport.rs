//! QUIC transport tuning shared by both ends, and the UDP socket the endpoint runs on.
//!
//! The numbers here are deliberate; each one says why it is what it is.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};
use socket2::{Domain, Protocol, Socket, Type};

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
    /// How many streams the peer may have open toward us at once.
    pub max_incoming_streams: u32,
}

impl QuicTuning {
    /// frp's defaults for `transport.quic` (10 s keep-alive, 30 s idle timeout), with the
    /// given stream limit.
    pub fn with_streams(max_incoming_streams: u32) -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_incoming_streams,
        }
    }

    /// Builds the quinn transport config.
    ///
    /// # Errors
    /// Fails when the idle timeout does not fit QUIC's varint milliseconds.
    pub fn transport_config(&self) -> anyhow::Result<Arc<TransportConfig>> {
        let mut t = TransportConfig::default();
        t.max_concurrent_bidi_streams(VarInt::from_u32(self.max_incoming_streams))
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
            .enable_segmentation_offload(true);
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

/// Creates a quinn endpoint on `socket` (a server when `server` is given).
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
