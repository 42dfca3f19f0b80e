//! A QUIC Initial flood on loopback: real Initial packets, each opening a new handshake.
//!
//! Each Initial is the first datagram of a fresh quinn-proto client connection, so it has its
//! own connection IDs and decrypts at the server (a captured Initial replayed under another
//! destination ID would not: its keys derive from that ID). The flood never answers what
//! comes back (handshake packets, Retries), like an attacker with spoofed source addresses.
//! Packets go out from several loopback addresses and ports: half from `127.0.0.2` (to meet
//! the per-address limit), the rest spread over `127.0.0.3..=127.0.0.10`. A flood is bounded
//! by its count of prepared Initials and by its duration, and stops when dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use quinn::crypto::rustls::QuicClientConfig;

/// How often the sender wakes up to send its next batch.
const TICK: Duration = Duration::from_millis(5);

/// Prepared Initial datagrams, each from its own client connection.
#[derive(Debug)]
pub struct Initials(Vec<Vec<u8>>);

impl Initials {
    /// Makes `count` Initials for `target` (blocking; about 20 µs each in an optimized build).
    pub fn prepare(tls: Arc<rustls::ClientConfig>, target: SocketAddr, count: usize) -> Self {
        let crypto = QuicClientConfig::try_from(tls).expect("tls config usable for quic");
        let config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut out = Vec::with_capacity(count);
        let mut buf = Vec::new();
        while out.len() < count {
            // A fresh endpoint per batch: connections never driven to their end would
            // otherwise keep their endpoint state for the life of the flood.
            let endpoint_config = Arc::new(quinn_proto::EndpointConfig::default());
            let mut endpoint = quinn_proto::Endpoint::new(endpoint_config, None, false, None);
            for _ in 0..1000.min(count - out.len()) {
                let now = Instant::now();
                let (_, mut conn) = endpoint
                    .connect(now, config.clone(), target, "localhost")
                    .expect("client connection");
                buf.clear();
                let t = conn
                    .poll_transmit(now, 1, &mut buf)
                    .expect("first datagram");
                out.push(buf[..t.size].to_vec());
            }
        }
        Self(out)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a flood did.
#[derive(Clone, Copy, Debug)]
pub struct FloodReport {
    /// Initials sent.
    pub sent: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

impl FloodReport {
    /// Initials per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A flood running on its own thread.
#[derive(Debug)]
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<FloodReport>>,
}

impl Flood {
    /// Sends `initials` to `target` at `per_second` until they are all sent or `max_duration`
    /// has passed, from the loopback sources described in the module docs.
    pub fn start(
        initials: Initials,
        target: SocketAddr,
        per_second: u32,
        max_duration: Duration,
    ) -> Self {
        let sockets = sources();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let per_tick = (u64::from(per_second) * TICK.as_millis() as u64 / 1000).max(1);
            let mut packets = initials.0.iter().enumerate();
            let mut next_tick = started;
            'run: while !stop2.load(Ordering::Relaxed) && started.elapsed() < max_duration {
                for _ in 0..per_tick {
                    let Some((i, packet)) = packets.next() else {
                        break 'run;
                    };
                    // A full socket buffer or an unreachable port only loses this packet.
                    let _ = sockets[i % sockets.len()].send_to(packet, target);
                    sent2.fetch_add(1, Ordering::Relaxed);
                }
                next_tick += TICK;
                if let Some(wait) = next_tick.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            FloodReport {
                sent: sent2.load(Ordering::Relaxed),
                elapsed: started.elapsed(),
            }
        });
        Self {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Initials sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether it is still sending (it has neither run out of Initials nor of time).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops it and reports what it did.
    pub fn stop(mut self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("flood thread");
        thread.join().expect("flood thread panicked")
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The flood's sockets: every other one on 127.0.0.2 (eight ports), the others on
/// 127.0.0.3..=127.0.0.10, one each.
fn sources() -> Vec<UdpSocket> {
    // Nothing is read from them: what comes back is dropped once their buffers are full.
    let bind = |last: u8| {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind a loopback address")
    };
    (0..8u8).flat_map(|i| [bind(2), bind(3 + i)]).collect()
}

/// Peak resident memory (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
