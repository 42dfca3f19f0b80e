//! The emulated WAN link on sockets: a UDP relay whose two directions are each one
//! [`Direction`] of [`super::link`], shared by every route through it.
//!
//! A [`WanLink`] owns the two directions and one sender thread each; a [`Route`] is a front
//! port relaying to one upstream (one frps), with a socket per client source address as in
//! [`crate::relay`]. All routes feed the same two directions, so two tunnels through one
//! link compete for one bottleneck queue each way. Plain threads and blocking sockets, for
//! the reason [`crate::relay`] gives (tokio's timer rounds sleeps up to the millisecond).

use std::collections::hash_map::{Entry, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use super::lane::{Lane, LaneStats, Out, POLL};
use super::link::{Direction, Shape};
use crate::procs::LOCALHOST;

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// Kernel buffer asked for on every relay socket (clamped to `net.core.rmem_max`), so a
/// reader thread that is descheduled for a moment does not lose datagrams in the kernel.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Both directions' stats.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LinkStats {
    /// Client (frpc) to server (frps).
    pub to_server: LaneStats,
    /// Server (frps) to client (frpc).
    pub to_client: LaneStats,
}

/// The link: both directions and their senders; the threads stop when it is dropped.
#[derive(Debug)]
pub struct WanLink {
    up: Arc<Lane>,
    down: Arc<Lane>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    senders: Vec<JoinHandle<()>>,
}

impl WanLink {
    /// Starts a link of `shape` in both directions; the two directions' losses follow
    /// `seed` and `seed + 1`.
    pub fn start(shape: Shape, seed: u64) -> Result<Self> {
        let up = Lane::new(Direction::new(shape, seed));
        let down = Lane::new(Direction::new(shape, seed.wrapping_add(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for (name, lane) in [("wan-up", &up), ("wan-down", &down)] {
            let (lane, stop) = (Arc::clone(lane), Arc::clone(&stop));
            senders.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || lane.send_loop(&stop))
                    .context("wan relay: start sender thread")?,
            );
        }
        Ok(Self {
            up,
            down,
            epoch: Instant::now(),
            stop,
            senders,
        })
    }

    /// A new front port relaying to `upstream` through this link.
    pub fn route(&self, upstream: SocketAddr) -> Result<Route> {
        let front = Arc::new(bind_udp()?);
        let port = front
            .local_addr()
            .context("wan relay: local address")?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let ends = Ends {
            up: Arc::clone(&self.up),
            down: Arc::clone(&self.down),
            epoch: self.epoch,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("wan-front".into())
            .spawn(move || front_loop(&front, upstream, &ends))
            .context("wan relay: start front thread")?;
        Ok(Route {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// Both directions' counters and send figures since the last call (or the start).
    pub fn take_stats(&self) -> LinkStats {
        LinkStats {
            to_server: self.up.take_stats(),
            to_client: self.down.take_stats(),
        }
    }
}

impl Drop for WanLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for sender in self.senders.drain(..) {
            let _ = sender.join();
        }
    }
}

/// A front port of the link; its threads stop (and are joined) when it is dropped.
#[derive(Debug)]
pub struct Route {
    /// The loopback UDP port clients send to.
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a route's threads share.
#[derive(Clone)]
struct Ends {
    up: Arc<Lane>,
    down: Arc<Lane>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
}

impl Ends {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Reads client datagrams and offers them to the up direction, towards the client's own
/// upstream socket; joins every per-client reader before returning.
fn front_loop(front: &Arc<UdpSocket>, upstream: SocketAddr, ends: &Ends) {
    let mut readers = Vec::new();
    let mut clients: HashMap<SocketAddr, Out> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !ends.stopped() {
        let Ok((n, client)) = front.recv_from(&mut buf) else {
            continue; // The poll timeout, or an ICMP error for an earlier datagram.
        };
        let out = match clients.entry(client) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => match add_client(front, client, upstream, ends) {
                Ok((out, reader)) => {
                    readers.push(reader);
                    new.insert(out)
                }
                Err(e) => {
                    eprintln!("wan relay: {e:#}");
                    continue;
                }
            },
        };
        ends.up.offer(ends.epoch, &buf[..n], out);
    }
    for reader in readers {
        let _ = reader.join();
    }
}

/// Opens `client`'s upstream socket and starts the thread reading what the server sends
/// back to it.
fn add_client(
    front: &Arc<UdpSocket>,
    client: SocketAddr,
    upstream: SocketAddr,
    ends: &Ends,
) -> Result<(Out, JoinHandle<()>)> {
    let sock = bind_udp()?;
    sock.connect(upstream)
        .with_context(|| format!("wan relay: connect to {upstream}"))?;
    let sock = Arc::new(sock);
    let back = Out::To(Arc::clone(front), client);
    let (read_sock, ends) = (Arc::clone(&sock), ends.clone());
    let reader = std::thread::Builder::new()
        .name("wan-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while !ends.stopped() {
                // Errors: the poll timeout, or ICMP port unreachable while frps restarts.
                if let Ok(n) = read_sock.recv(&mut buf) {
                    ends.down.offer(ends.epoch, &buf[..n], &back);
                }
            }
        })
        .context("wan relay: start reader thread")?;
    Ok((Out::Connected(sock), reader))
}

/// A loopback UDP socket on a free port with enlarged buffers and the poll timeout.
pub fn bind_udp() -> Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .context("wan relay: udp socket")?;
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.bind(&SocketAddr::from((LOCALHOST, 0)).into())
        .context("wan relay: bind udp 127.0.0.1:0")?;
    let sock = UdpSocket::from(sock);
    sock.set_read_timeout(Some(POLL))
        .context("wan relay: read timeout")?;
    Ok(sock)
}

/// The kernel's UDP receive and send buffer errors since boot (`/proc/net/snmp`), all
/// sockets together: datagrams lost on this machine outside the emulated link.
pub fn kernel_udp_errors() -> Option<(u64, u64)> {
    parse_snmp_udp(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

fn parse_snmp_udp(snmp: &str) -> Option<(u64, u64)> {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let find = |key: &str| {
        let i = names.split_whitespace().position(|n| n == key)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    Some((find("RcvbufErrors")?, find("SndbufErrors")?))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn snmp_udp_errors() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors \
                    InCsumErrors IgnoredMulti MemErrors\n\
                    Udp: 100 2 7 90 5 1 0 0 0\n\
                    UdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_snmp_udp(snmp), Some((5, 1)));
        assert_eq!(parse_snmp_udp("Ip: x\nIp: 1\n"), None);
    }

    #[test]
    fn relays_both_ways_through_a_shared_link() {
        let shape = Shape {
            rate_bps: 100_000_000,
            queue_bytes: 100_000,
            delay_ns: 1_000_000,
            loss: 0.0,
        };
        let link = WanLink::start(shape, 1).expect("link");
        let server = bind_udp().expect("server");
        let route = link
            .route(server.local_addr().expect("addr"))
            .expect("route");
        let client = bind_udp().expect("client");
        client.connect((LOCALHOST, route.port)).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        client.send(b"ping").expect("send");
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).expect("server receives");
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", from).expect("send back");
        let n = client.recv(&mut buf).expect("client receives");
        assert_eq!(&buf[..n], b"pong");
        let stats = link.take_stats();
        assert_eq!(
            (
                stats.to_server.counters.delivered,
                stats.to_client.counters.delivered
            ),
            (1, 1)
        );
        assert_eq!(
            link.take_stats().to_server.counters.offered,
            0,
            "taken stats restart"
        );
    }
}
