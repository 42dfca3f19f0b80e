//! An impairment relay for QUIC: a bad network between frpc and frps, on loopback.
//!
//! The machine's kernel has no netem, so a test points the client at [`Relay::addr`] instead of
//! the server. The relay keeps one upstream UDP socket toward the server per client address it
//! has seen (a NAT mapping) and forwards both ways. Each packet's fate is drawn when it arrives
//! (dropped, delayed, held back, duplicated), then it waits in one time-ordered, bounded queue
//! until it leaves. One task owns the sockets and the queue; a [`RelayHandle`] changes the
//! impairments while it runs, blackholes the link, rebinds the upstream socket and reads the
//! [`Stats`]. Dropping the [`Relay`] stops its tasks and closes its sockets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::LOCALHOST;

/// The least a datagram that opens a QUIC connection carries (RFC 9000, 14.1).
const QUIC_INITIAL_MIN: usize = 1200;

/// Packets waiting to leave; beyond this the relay drops new ones, like a full router queue.
const MAX_QUEUED: usize = 16_384;
/// Largest datagram the relay reads.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams from the server waiting for the relay task.
const INBOX: usize = 1024;

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// From the client toward the server.
    Up = 0,
    /// From the server toward the client.
    Down = 1,
}

/// How one direction is impaired; the default forwards at once, untouched.
///
/// Probabilities are in `[0, 1]`; larger counts as 1, anything else as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Chance that a packet is dropped.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet (it reorders too, as in netem).
    pub jitter: Duration,
    /// Chance that a packet is held back by `reorder_delay`, so later packets overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Chance that a packet is sent twice.
    pub duplicate: f64,
}

/// Packet counters for one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Received from the sender.
    pub received: u64,
    /// Sent on, duplicates included.
    pub forwarded: u64,
    /// Dropped by random loss.
    pub dropped: u64,
    /// Dropped by a blackhole, on arrival or while queued.
    pub blackholed: u64,
    /// Held back so that later packets overtake them.
    pub reordered: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Dropped because the queue was full.
    pub overflowed: u64,
}

/// Packet counters for both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client to server.
    pub up: DirStats,
    /// Server to client.
    pub down: DirStats,
}

#[derive(Debug, Default)]
struct State {
    impairments: [Impairment; 2],
    blackhole: bool,
    stats: [DirStats; 2],
    upstream: Option<SocketAddr>,
}

impl State {
    /// Counts a packet arriving in `dir` and returns the delays of the copies to send.
    fn plan(&mut self, dir: Direction) -> [Option<Duration>; 2] {
        let (imp, s) = (
            self.impairments[dir as usize],
            &mut self.stats[dir as usize],
        );
        s.received += 1;
        let mut rng = rand::rng();
        if self.blackhole {
            s.blackholed += 1;
            return [None, None];
        }
        if chance(&mut rng, imp.loss) {
            s.dropped += 1;
            return [None, None];
        }
        let mut delay = imp.delay + spread(&mut rng, imp.jitter);
        if chance(&mut rng, imp.reorder) {
            s.reordered += 1;
            delay += imp.reorder_delay;
        }
        let copy = chance(&mut rng, imp.duplicate).then(|| {
            s.duplicated += 1;
            imp.delay + spread(&mut rng, imp.jitter)
        });
        [Some(delay), copy]
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn chance(rng: &mut impl Rng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

fn spread(rng: &mut impl Rng, max: Duration) -> Duration {
    match max.is_zero() {
        true => Duration::ZERO,
        false => rng.random_range(Duration::ZERO..=max),
    }
}

type RebindReply = oneshot::Sender<io::Result<SocketAddr>>;

/// Controls a running relay; clones share it. Calls after the relay is dropped do nothing.
#[derive(Clone, Debug)]
pub struct RelayHandle {
    state: Arc<Mutex<State>>,
    rebinds: mpsc::UnboundedSender<RebindReply>,
}

impl RelayHandle {
    /// Impairs packets arriving from now on in `dir`.
    pub fn impair(&self, dir: Direction, imp: Impairment) {
        lock(&self.state).impairments[dir as usize] = imp;
    }

    /// Impairs both directions alike.
    pub fn impair_both(&self, imp: Impairment) {
        lock(&self.state).impairments = [imp, imp];
    }

    /// While on, every packet is dropped both ways, including those already queued.
    pub fn blackhole(&self, on: bool) {
        lock(&self.state).blackhole = on;
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let [up, down] = lock(&self.state).stats;
        Stats { up, down }
    }

    /// The address the server sees the latest client come from.
    pub fn upstream_addr(&self) -> Option<SocketAddr> {
        lock(&self.state).upstream
    }

    /// Replaces the latest client's upstream socket by one on a new port, as a NAT rebinding
    /// does; packets the server still sends to the old port are lost. Returns the new address.
    ///
    /// # Errors
    /// Fails when no client has sent anything yet, a socket cannot be bound or the relay is
    /// gone.
    pub async fn rebind(&self) -> io::Result<SocketAddr> {
        let (tx, rx) = oneshot::channel();
        let gone = || io::Error::other("relay stopped");
        self.rebinds.send(tx).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// A running relay; dropping it stops it.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    handle: RelayHandle,
    task: JoinHandle<()>,
}

impl Relay {
    /// Binds 127.0.0.1:0 and relays to `server`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Fails when the socket cannot be bound.
    pub fn start(server: SocketAddr) -> io::Result<Self> {
        let front = bind()?;
        let addr = front.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (rebinds_tx, rebinds) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let worker = Worker {
            server,
            front,
            upstreams: HashMap::new(),
            latest: None,
            inbox_tx,
            inbox,
            queue: BinaryHeap::new(),
            seq: 0,
            state: Arc::clone(&state),
            rebinds,
        };
        let task = tokio::spawn(worker.run());
        let handle = RelayHandle {
            state,
            rebinds: rebinds_tx,
        };
        Ok(Self { addr, handle, task })
    }

    /// The address clients dial instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to adjust and observe the relay.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Dropping the worker drops its upstreams, whose readers abort in turn.
        self.task.abort();
    }
}

/// A UDP socket on 127.0.0.1:0 with the enlarged buffers the endpoints use.
fn bind() -> io::Result<UdpSocket> {
    let socket = frp_runtime::transport::bind_udp(SocketAddr::new(LOCALHOST, 0))
        .map_err(io::Error::other)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

type Inbox = mpsc::Sender<(SocketAddr, Bytes)>;

/// One client's socket toward the server, and the task reading the server's answers on it.
#[derive(Debug)]
struct Upstream {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

impl Upstream {
    fn open(server: SocketAddr, client: SocketAddr, inbox: Inbox) -> io::Result<Self> {
        let socket = Arc::new(bind()?);
        let reader = tokio::spawn(read_server(Arc::clone(&socket), server, client, inbox));
        Ok(Self { socket, reader })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Hands datagrams from `server` to the relay task, tagged with the client they are for.
async fn read_server(sock: Arc<UdpSocket>, server: SocketAddr, client: SocketAddr, inbox: Inbox) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // An error here is about one datagram (such as an ICMP report): keep reading.
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let packet = (client, Bytes::copy_from_slice(&buf[..n]));
        if from == server && inbox.send(packet).await.is_err() {
            return;
        }
    }
}

/// A packet waiting to leave: ordered by departure time, then arrival.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued(Instant, u64, Direction, SocketAddr, Bytes);

#[derive(Debug)]
struct Worker {
    server: SocketAddr,
    front: UdpSocket,
    upstreams: HashMap<SocketAddr, Upstream>,
    latest: Option<SocketAddr>,
    inbox_tx: Inbox,
    inbox: mpsc::Receiver<(SocketAddr, Bytes)>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    state: Arc<Mutex<State>>,
    rebinds: mpsc::UnboundedReceiver<RebindReply>,
}

impl Worker {
    /// Runs until aborted; every branch is cancel-safe.
    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let next = self.queue.peek().map(|Reverse(q)| q.0);
            tokio::select! {
                Ok((n, client)) = self.front.recv_from(&mut buf) => {
                    self.on_client_packet(client, Bytes::copy_from_slice(&buf[..n]));
                }
                Some((client, packet)) = self.inbox.recv() => {
                    self.admit(Direction::Down, client, packet);
                }
                Some(reply) = self.rebinds.recv() => { let _ = reply.send(self.rebind()); }
                () = sleep_until(next) => self.release().await,
            }
        }
    }

    /// A datagram from `client`. Only a datagram that can open a QUIC connection (at least
    /// [`QUIC_INITIAL_MIN`] bytes) makes a new address the latest client: frpc's watch for
    /// ICMP "port unreachable" sends single bytes from a socket of its own, which the relay
    /// forwards like anything else but must not take for the tunnel's client.
    fn on_client_packet(&mut self, client: SocketAddr, packet: Bytes) {
        let opens = packet.len() >= QUIC_INITIAL_MIN;
        if !self.upstreams.contains_key(&client) {
            let Ok(up) = Upstream::open(self.server, client, self.inbox_tx.clone()) else {
                return;
            };
            if opens {
                lock(&self.state).upstream = up.socket.local_addr().ok();
            }
            self.upstreams.insert(client, up);
        }
        if opens || self.latest == Some(client) {
            self.latest = Some(client);
        }
        self.admit(Direction::Up, client, packet);
    }

    /// Draws the packet's fate and queues its copies.
    fn admit(&mut self, dir: Direction, client: SocketAddr, packet: Bytes) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        for delay in state.plan(dir).into_iter().flatten() {
            if self.queue.len() >= MAX_QUEUED {
                state.stats[dir as usize].overflowed += 1;
                continue;
            }
            self.seq += 1;
            let q = Queued(now + delay, self.seq, dir, client, packet.clone());
            self.queue.push(Reverse(q));
        }
    }

    /// Sends every packet whose time has come.
    async fn release(&mut self) {
        let now = Instant::now();
        while self.queue.peek().is_some_and(|Reverse(q)| q.0 <= now) {
            let Some(Reverse(Queued(_, _, dir, client, packet))) = self.queue.pop() else {
                return;
            };
            if lock(&self.state).blackhole {
                lock(&self.state).stats[dir as usize].blackholed += 1;
                continue;
            }
            let sent = match (dir, self.upstreams.get(&client)) {
                (Direction::Up, Some(up)) => up.socket.send_to(&packet, self.server).await,
                (Direction::Up, None) => continue,
                (Direction::Down, _) => self.front.send_to(&packet, client).await,
            };
            if sent.is_ok() {
                lock(&self.state).stats[dir as usize].forwarded += 1;
            }
        }
    }

    fn rebind(&mut self) -> io::Result<SocketAddr> {
        let client = self
            .latest
            .ok_or_else(|| io::Error::other("no client has sent anything yet"))?;
        let up = Upstream::open(self.server, client, self.inbox_tx.clone())?;
        let addr = up.socket.local_addr()?;
        // The old socket closes here: what the server sends to it is lost, as after a rebinding.
        self.upstreams.insert(client, up);
        lock(&self.state).upstream = Some(addr);
        Ok(addr)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
