//! A UDP relay that holds every datagram for a fixed delay in each direction, to put a
//! known round-trip time between frpc and frps.
//!
//! Each client source address gets its own upstream socket, so the server sees one peer per
//! client. Datagrams keep their order; each leaves `delay` after it arrived (the delays of
//! consecutive datagrams overlap, as on a long link, instead of adding up).
//!
//! The relay runs on plain threads with blocking sockets, not on tokio: tokio's timer has
//! millisecond granularity and rounds every sleep up, which added 0.5-1 ms to each direction
//! and so to every time-to-first-byte figure. `std::thread::sleep` uses the kernel's
//! high-resolution timers and is typically late by tens of microseconds.

use std::collections::hash_map::{Entry, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::procs::LOCALHOST;

/// Datagrams queued per direction and client; more are dropped, like a full router queue.
const QUEUE: usize = 16_384;
/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

type Delayed = (Instant, Vec<u8>);

/// A running relay; its threads stop (and are joined) when it is dropped.
#[derive(Debug)]
pub struct Relay {
    /// The loopback UDP port clients send to.
    pub port: u16,
    stop: Arc<AtomicBool>,
    front: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying from a free loopback port to `upstream`, `delay` each way.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Result<Self> {
        let front = UdpSocket::bind((LOCALHOST, 0)).context("relay: bind udp 127.0.0.1:0")?;
        let port = front.local_addr().context("relay: local address")?.port();
        front
            .set_read_timeout(Some(POLL))
            .context("relay: read timeout")?;
        let stop = Arc::new(AtomicBool::new(false));
        let link = Link {
            delay,
            stop: Arc::clone(&stop),
        };
        let front = std::thread::Builder::new()
            .name("relay-front".into())
            .spawn(move || front_loop(&Arc::new(front), upstream, &link))
            .context("relay: start thread")?;
        Ok(Self {
            port,
            stop,
            front: Some(front),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(front) = self.front.take() {
            let _ = front.join();
        }
    }
}

/// What every relay thread shares: the delay and the stop flag.
#[derive(Clone)]
struct Link {
    delay: Duration,
    stop: Arc<AtomicBool>,
}

impl Link {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Reads client datagrams and queues them towards the client's upstream socket; joins every
/// per-client thread before returning.
fn front_loop(front: &Arc<UdpSocket>, upstream: SocketAddr, link: &Link) {
    let mut threads = Vec::new();
    let mut clients: HashMap<SocketAddr, SyncSender<Delayed>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !link.stopped() {
        let Ok((n, client)) = front.recv_from(&mut buf) else {
            continue; // The poll timeout, or an ICMP error for an earlier datagram.
        };
        let due = Instant::now() + link.delay;
        let queue = match clients.entry(client) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => match add_client(front, client, upstream, link, &mut threads) {
                Ok(queue) => new.insert(queue),
                Err(e) => {
                    eprintln!("relay: {e:#}");
                    continue;
                }
            },
        };
        if let Err(TrySendError::Disconnected(_)) = queue.try_send((due, buf[..n].to_vec())) {
            clients.remove(&client);
        }
    }
    drop(clients);
    for thread in threads {
        let _ = thread.join();
    }
}

/// Opens the upstream socket for `client` and starts its three threads; returns the queue
/// towards upstream.
fn add_client(
    front: &Arc<UdpSocket>,
    client: SocketAddr,
    upstream: SocketAddr,
    link: &Link,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<SyncSender<Delayed>> {
    let sock = UdpSocket::bind((LOCALHOST, 0)).context("relay: bind upstream socket")?;
    sock.connect(upstream)
        .with_context(|| format!("relay: connect to {upstream}"))?;
    sock.set_read_timeout(Some(POLL))
        .context("relay: read timeout")?;
    let sock = Arc::new(sock);
    let (up_tx, up_rx) = sync_channel(QUEUE);
    let (down_tx, down_rx) = sync_channel(QUEUE);
    let (up_sock, read_sock, front) = (Arc::clone(&sock), sock, Arc::clone(front));
    let (l1, l2, l3) = (link.clone(), link.clone(), link.clone());
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .context("relay: start thread")
    };
    threads.push(spawn(
        "relay-up",
        Box::new(move || send_delayed(&up_rx, &l1, |d| up_sock.send(d))),
    )?);
    threads.push(spawn(
        "relay-read",
        Box::new(move || read_upstream(&read_sock, &down_tx, &l2)),
    )?);
    threads.push(spawn(
        "relay-down",
        Box::new(move || send_delayed(&down_rx, &l3, |d| front.send_to(d, client))),
    )?);
    Ok(up_tx)
}

/// Sends each queued datagram with `send` once it is due.
fn send_delayed(
    queue: &Receiver<Delayed>,
    link: &Link,
    send: impl Fn(&[u8]) -> std::io::Result<usize>,
) {
    while !link.stopped() {
        match queue.recv_timeout(POLL) {
            Ok((due, datagram)) => {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let _ = send(&datagram);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Reads what the server sends to this client and queues it towards the client.
fn read_upstream(sock: &UdpSocket, queue: &SyncSender<Delayed>, link: &Link) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !link.stopped() {
        // Errors: the poll timeout, or ICMP port unreachable while the server restarts.
        if let Ok(n) = sock.recv(&mut buf) {
            let due = Instant::now() + link.delay;
            if let Err(TrySendError::Disconnected(_)) = queue.try_send((due, buf[..n].to_vec())) {
                return;
            }
        }
    }
}

/// Round trips of a small datagram through a relay to a UDP echo, sequentially; the median
/// in milliseconds. This is the round trip the relay really adds, the yardstick for the
/// time-to-first-byte figure measured through it.
pub async fn measured_rtt_ms(delay: Duration, samples: usize) -> Result<f64> {
    let echo = UdpSocket::bind((LOCALHOST, 0)).context("echo: bind")?;
    let echo_addr = echo.local_addr().context("echo: address")?;
    echo.set_read_timeout(Some(POLL))
        .context("echo: read timeout")?;
    let relay = Relay::start(echo_addr, delay).await?;
    let echo = Echo::start(echo);
    let port = relay.port;
    let result = tokio::task::spawn_blocking(move || ping(port, delay, samples))
        .await
        .context("relay ping thread")?;
    drop(echo);
    drop(relay);
    result
}

/// A UDP echo on a thread of its own, answering every datagram of up to 64 bytes to its
/// sender, until dropped. Its socket needs a read timeout, so the thread sees the stop flag.
pub(crate) struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    /// Starts echoing on `socket`.
    pub(crate) fn start(socket: UdpSocket) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !seen.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn ping(port: u16, delay: Duration, samples: usize) -> Result<f64> {
    let samples = samples.max(1);
    let times = pings(port, 4 * delay + Duration::from_secs(1), samples)?;
    // The delay relay loses nothing: a missing answer means it is not working.
    anyhow::ensure!(
        times.len() == samples,
        "{} of {samples} pings had no answer through the relay",
        samples - times.len()
    );
    Ok(crate::probe::percentile(&times, 50.0))
}

/// `samples` numbered datagrams sent one after another to `port` on loopback, each waiting up
/// to `wait` for its echo: the round trips of those answered, in milliseconds, sorted.
pub(crate) fn pings(port: u16, wait: Duration, samples: usize) -> Result<Vec<f64>> {
    let client = UdpSocket::bind((LOCALHOST, 0)).context("ping: bind")?;
    client.connect((LOCALHOST, port)).context("ping: connect")?;
    client
        .set_read_timeout(Some(wait))
        .context("ping: read timeout")?;
    let mut times = Vec::with_capacity(samples);
    let mut buf = [0u8; 64];
    for i in 0..samples as u64 {
        let start = Instant::now();
        client.send(&i.to_be_bytes()).context("ping: send")?;
        // A late answer to an earlier ping would be taken for this one: match the number.
        while let Ok(n) = client.recv(&mut buf) {
            if buf[..n] == i.to_be_bytes() {
                times.push(start.elapsed().as_secs_f64() * 1e3);
                break;
            }
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_each_direction() {
        let delay = Duration::from_millis(20);
        let rtt = measured_rtt_ms(delay, 5)
            .await
            .expect("pings through the relay");
        assert!(rtt >= 40.0, "{rtt} ms");
    }
}
