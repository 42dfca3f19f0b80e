//! The link measured alone, without a tunnel: whether the relay keeps up with its own rate
//! (it must not be the bottleneck by CPU), and the round trip it adds.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::link::Shape;
use super::relay::{bind_udp, LinkStats, WanLink};
use crate::procs::LOCALHOST;
use crate::relay::{pings, Echo};

/// Size of the blasted datagrams: a typical QUIC packet.
const BLAST_DATAGRAM: usize = 1_200;
/// The blast offers this much more than the link's rate, so the bottleneck is always busy.
const OVERLOAD: f64 = 1.25;
/// Pacing step of the blast.
const TICK: Duration = Duration::from_millis(1);

/// UDP blasted through the link without loss: what it offered and what came out.
#[derive(Debug, Clone, Serialize)]
pub struct Alone {
    pub configured_mbit: f64,
    pub offered_mbit: f64,
    /// Received by the sink, from its first datagram to its last.
    pub delivered_mbit: f64,
    pub seconds: f64,
    pub stats: LinkStats,
}

/// Blasts `secs` seconds of UDP at [`OVERLOAD`] times the rate through a link of `shape`
/// without loss, and measures what the far end receives.
pub async fn blast(shape: Shape, secs: u64) -> Result<Alone> {
    let lossless = Shape { loss: 0.0, ..shape };
    tokio::task::spawn_blocking(move || blast_blocking(lossless, Duration::from_secs(secs)))
        .await
        .context("relay blast thread")?
}

fn blast_blocking(shape: Shape, length: Duration) -> Result<Alone> {
    let link = WanLink::start(shape, 0)?;
    let sink = bind_udp()?;
    let route = link.route(sink.local_addr().context("sink address")?)?;
    let done = Arc::new(AtomicBool::new(false));
    let sink_done = Arc::clone(&done);
    let counter = std::thread::spawn(move || count_received(&sink, &sink_done));
    let offered_bytes = pace(route.port, shape.rate_bps as f64 * OVERLOAD, length)?;
    // The queue drains within its own length after the blast: one BDP, well under a second.
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, Ordering::Relaxed);
    let (bytes, span) = counter
        .join()
        .map_err(|_| anyhow::anyhow!("sink thread panicked"))?;
    let stats = link.take_stats();
    drop(route);
    Ok(Alone {
        configured_mbit: shape.rate_bps as f64 / 1e6,
        offered_mbit: offered_bytes as f64 * 8.0 / length.as_secs_f64() / 1e6,
        delivered_mbit: bytes as f64 * 8.0 / span.as_secs_f64().max(1e-9) / 1e6,
        seconds: span.as_secs_f64(),
        stats,
    })
}

/// Sends datagrams to the relay's `port` at `bps` for `length`; returns the bytes sent.
fn pace(port: u16, bps: f64, length: Duration) -> Result<u64> {
    let sock = bind_udp()?;
    sock.connect((LOCALHOST, port)).context("blast: connect")?;
    let datagram = vec![0x5a; BLAST_DATAGRAM];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < length {
        let due = (start.elapsed().as_secs_f64() + TICK.as_secs_f64()) * bps / 8.0;
        while (sent as f64) < due {
            // A full socket buffer is the harness's own limit, not the link's: try again.
            if sock.send(&datagram).is_ok() {
                sent += BLAST_DATAGRAM as u64;
            }
        }
        std::thread::sleep(TICK);
    }
    Ok(sent)
}

/// Bytes received until `done`, and the time from the first datagram to the last.
fn count_received(sink: &UdpSocket, done: &AtomicBool) -> (u64, Duration) {
    let mut buf = vec![0u8; 65_535];
    let (mut bytes, mut first, mut last) = (0u64, None, Instant::now());
    while !done.load(Ordering::Relaxed) {
        if let Ok(n) = sink.recv(&mut buf) {
            last = Instant::now();
            // The first datagram opens the window: its bytes arrived before it.
            if first.is_none() {
                first = Some(last);
            } else {
                bytes += n as u64;
            }
        }
    }
    (bytes, first.map_or(Duration::ZERO, |f| last - f))
}

/// Round trips of small datagrams through the link (with its loss) to a UDP echo.
#[derive(Debug, Clone, Serialize)]
pub struct Rtt {
    pub median_ms: f64,
    pub min_ms: f64,
    pub answered: usize,
    /// Pings or answers lost on the link (each tried once).
    pub lost: usize,
}

/// `samples` sequential pings through a link of `shape`.
pub async fn rtt(shape: Shape, samples: usize) -> Result<Rtt> {
    tokio::task::spawn_blocking(move || rtt_blocking(shape, samples))
        .await
        .context("relay ping thread")?
}

fn rtt_blocking(shape: Shape, samples: usize) -> Result<Rtt> {
    let link = WanLink::start(shape, 1_000)?;
    let echo = bind_udp()?;
    let route = link.route(echo.local_addr().context("echo address")?)?;
    let echo = Echo::start(echo);
    let result = ping(route.port, shape, samples);
    drop(echo);
    result
}

fn ping(port: u16, shape: Shape, samples: usize) -> Result<Rtt> {
    let wait = Duration::from_nanos(4 * shape.delay_ns) + Duration::from_millis(200);
    let times = pings(port, wait, samples)?;
    anyhow::ensure!(!times.is_empty(), "no ping answered through the link");
    Ok(Rtt {
        median_ms: crate::probe::percentile(&times, 50.0),
        min_ms: times[0],
        answered: times.len(),
        lost: samples - times.len(),
    })
}
