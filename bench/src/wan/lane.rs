//! One direction of the emulated link on sockets: the link arithmetic of
//! [`super::link::Direction`] behind a lock, the datagrams in flight, and the thread that
//! sends each when it is due.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::link::{Counters, Direction, Verdict};

/// How often blocked threads look at their stop flag.
pub(super) const POLL: Duration = Duration::from_millis(50);
/// Datagrams a sender takes off its queue per lock.
const BATCH: usize = 64;

/// Where a delivered datagram goes: a connected upstream socket, or a client via the front.
#[derive(Debug, Clone)]
pub(super) enum Out {
    Connected(Arc<UdpSocket>),
    To(Arc<UdpSocket>, SocketAddr),
}

impl Out {
    fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Connected(sock) => sock.send(data),
            Out::To(sock, addr) => sock.send_to(data, addr),
        }
    }
}

#[derive(Debug)]
struct Packet {
    due: Instant,
    data: Vec<u8>,
    out: Out,
}

/// One direction on sockets: the link arithmetic, the datagrams in flight in departure
/// order, and how late the sender was.
#[derive(Debug)]
pub(super) struct Lane {
    state: Mutex<LaneState>,
    ready: Condvar,
}

#[derive(Debug)]
struct LaneState {
    dir: Direction,
    in_flight: VecDeque<Packet>,
    /// The counters at the last [`Lane::take_stats`].
    taken: Counters,
    sends: Sends,
}

/// What one direction did since the last [`super::relay::WanLink::take_stats`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LaneStats {
    pub counters: Counters,
    pub sends: Sends,
}

/// The sender's side: datagrams sent, failed sends, and how late they left.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sends {
    pub sent: u64,
    pub errors: u64,
    pub late_total_us: u64,
    pub late_max_us: u64,
}

impl Lane {
    pub(super) fn new(dir: Direction) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(LaneState {
                dir,
                in_flight: VecDeque::new(),
                taken: Counters::default(),
                sends: Sends::default(),
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // A panicked thread leaves consistent numbers behind; keep relaying.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Offers a datagram arriving now; queues it for its departure time unless it is dropped.
    pub(super) fn offer(&self, epoch: Instant, data: &[u8], out: &Out) {
        let now = Instant::now();
        let now_ns = u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        let mut state = self.lock();
        if let Verdict::Deliver(at) = state.dir.offer(now_ns, data.len()) {
            let due = epoch + Duration::from_nanos(at);
            let packet = Packet {
                due,
                data: data.to_vec(),
                out: out.clone(),
            };
            state.in_flight.push_back(packet);
            self.ready.notify_one();
        }
    }

    /// Sends every datagram when it is due, until `stop`. Departure times only grow within a
    /// lane, so the head of the queue is always the next to go.
    pub(super) fn send_loop(&self, stop: &AtomicBool) {
        let mut batch = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::Relaxed) {
            let mut state = self.lock();
            let Some(head) = state.in_flight.front() else {
                let _ = self.ready.wait_timeout(state, POLL);
                continue;
            };
            let now = Instant::now();
            if head.due > now {
                let wait = (head.due - now).min(POLL);
                drop(state);
                std::thread::sleep(wait);
                continue;
            }
            while batch.len() < BATCH && state.in_flight.front().is_some_and(|p| p.due <= now) {
                batch.extend(state.in_flight.pop_front());
            }
            drop(state);
            let sends = send_batch(&mut batch);
            self.lock().sends.add(&sends);
        }
    }

    pub(super) fn take_stats(&self) -> LaneStats {
        let mut state = self.lock();
        let counters = state.dir.counters.since(&state.taken);
        state.taken = state.dir.counters;
        LaneStats {
            counters,
            sends: std::mem::take(&mut state.sends),
        }
    }
}

/// Sends and empties `batch`, measuring how late each datagram left.
fn send_batch(batch: &mut Vec<Packet>) -> Sends {
    let mut sends = Sends::default();
    for packet in batch.drain(..) {
        let late = u64::try_from(packet.due.elapsed().as_micros()).unwrap_or(u64::MAX);
        sends.late_total_us += late;
        sends.late_max_us = sends.late_max_us.max(late);
        match packet.out.send(&packet.data) {
            Ok(_) => sends.sent += 1,
            Err(_) => sends.errors += 1,
        }
    }
    sends
}

impl Sends {
    fn add(&mut self, other: &Sends) {
        self.sent += other.sent;
        self.errors += other.errors;
        self.late_total_us += other.late_total_us;
        self.late_max_us = self.late_max_us.max(other.late_max_us);
    }

    /// Mean lateness of a send, microseconds.
    pub fn late_mean_us(&self) -> f64 {
        self.late_total_us as f64 / (self.sent + self.errors).max(1) as f64
    }
}
