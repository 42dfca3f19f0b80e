//! The WAN mode's figures, each against the public ports of a tunnel through the link:
//! bulk transfer, a burst of new connections, small pings beside a bulk transfer, and two
//! tunnels sharing the bottleneck.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use crate::probe::{connect, first_byte, percentile};
use crate::run::iperf_when_idle;

/// Concurrent new connections in one burst of the time-to-first-byte figure.
pub const BURST: usize = 20;
/// Kept-alive connections the pings go over.
pub const PINGERS: usize = 10;
/// Bytes of each ping, and of its echo.
pub const PING_BYTES: usize = 100;
/// Pause between bursts, so one burst's connections have closed before the next.
const BURST_PAUSE: Duration = Duration::from_millis(300);
/// Limit on one sample (a first byte, a ping's echo).
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);
/// The pings start this long after the bulk transfer and stop this long before its end,
/// so they only see the link while it is loaded.
const PING_MARGIN: Duration = Duration::from_secs(1);

/// One tunneled iperf3 transfer, one stream: receiver Mbit/s.
pub async fn bulk(port: u16, reverse: bool, secs: u64) -> Result<f64> {
    Ok(iperf_when_idle(port, 1, reverse, secs).await?.gbps * 1e3)
}

/// Percentiles of a set of samples in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    /// The percentiles of `samples` (any order).
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            samples: samples.len(),
            p50_ms: percentile(&samples, 50.0),
            p90_ms: percentile(&samples, 90.0),
            p99_ms: percentile(&samples, 99.0),
            max_ms: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// `rounds` bursts of [`BURST`] new connections opened at once to nginx's `port`, each timed
/// from its connect call to the first byte of the answer to `GET /1k`.
pub async fn ttfb_bursts(port: u16, rounds: usize) -> Result<Spread> {
    let mut all = Vec::with_capacity(rounds * BURST);
    for round in 0..rounds {
        let mut burst = JoinSet::new();
        for _ in 0..BURST {
            burst.spawn(timeout(SAMPLE_LIMIT, first_byte(port)));
        }
        while let Some(sample) = burst.join_next().await {
            let took = sample
                .context("ttfb task")?
                .with_context(|| format!("burst {round}: no first byte within 10 s"))??;
            all.push(took.as_secs_f64() * 1e3);
        }
        tokio::time::sleep(BURST_PAUSE).await;
    }
    Ok(Spread::of(all))
}

/// The pings beside a bulk transfer, and that transfer's own throughput.
#[derive(Debug, Clone, Serialize)]
pub struct Pings {
    pub latency: Spread,
    /// The download (`-R`) running beside them, Mbit/s.
    pub bulk_mbit: Option<f64>,
    pub bulk_error: Option<String>,
}

/// Opens [`PINGERS`] connections to the echo target's `echo` port (one ping each, not
/// counted: it opens the tunnel's stream), then runs a download from iperf3's `iperf` port
/// for `secs` and pings on every connection, one at a time, while it runs.
pub async fn pings_beside_bulk(echo: u16, iperf: u16, secs: u64) -> Result<Pings> {
    let mut conns = Vec::with_capacity(PINGERS);
    for _ in 0..PINGERS {
        let mut stream = connect(echo).await?;
        ping(&mut stream).await.context("first ping")?;
        conns.push(stream);
    }
    let length = Duration::from_secs(secs).saturating_sub(2 * PING_MARGIN);
    let pings = async {
        tokio::time::sleep(PING_MARGIN).await;
        ping_all(conns, Instant::now() + length).await
    };
    let (bulk, pings) = tokio::join!(bulk(iperf, true, secs), pings);
    Ok(Pings {
        latency: Spread::of(pings?),
        bulk_error: bulk.as_ref().err().map(|e| format!("{e:#}")),
        bulk_mbit: bulk.ok(),
    })
}

/// Pings on every connection until `until`; every round trip in milliseconds.
async fn ping_all(conns: Vec<TcpStream>, until: Instant) -> Result<Vec<f64>> {
    let mut tasks = JoinSet::new();
    for mut stream in conns {
        tasks.spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < until {
                let took = ping(&mut stream).await?;
                times.push(took.as_secs_f64() * 1e3);
            }
            anyhow::Ok(times)
        });
    }
    let mut all = Vec::new();
    while let Some(times) = tasks.join_next().await {
        all.extend(times.context("ping task")??);
    }
    Ok(all)
}

/// One ping: [`PING_BYTES`] out, the same back.
async fn ping(stream: &mut TcpStream) -> Result<Duration> {
    let start = Instant::now();
    let out = [b'p'; PING_BYTES];
    let mut back = [0u8; PING_BYTES];
    let exchange = async {
        stream.write_all(&out).await?;
        stream.read_exact(&mut back).await
    };
    timeout(SAMPLE_LIMIT, exchange)
        .await
        .context("no echo within 10 s")?
        .context("ping")?;
    Ok(start.elapsed())
}

/// Two tunnels' bulk transfers at once through one link, in one direction.
#[derive(Debug, Clone, Serialize)]
pub struct Shared {
    /// `-R`: the published services send (frpc to frps on the link).
    pub reverse: bool,
    pub mbit: [Option<f64>; 2],
    pub errors: Vec<String>,
}

impl Shared {
    /// The first tunnel's share of what both got together.
    pub fn first_share(&self) -> Option<f64> {
        let [Some(a), Some(b)] = self.mbit else {
            return None;
        };
        (a + b > 0.0).then(|| a / (a + b))
    }
}

/// Runs iperf3 through both `ports` at the same time for `secs`.
pub async fn shared(ports: [u16; 2], reverse: bool, secs: u64) -> Shared {
    let (a, b) = tokio::join!(bulk(ports[0], reverse, secs), bulk(ports[1], reverse, secs));
    let errors = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    Shared {
        reverse,
        mbit: [a.ok(), b.ok()],
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_unsorted_samples() {
        let s = Spread::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((s.samples, s.p50_ms, s.p90_ms), (100, 50.0, 90.0));
        assert_eq!((s.p99_ms, s.max_ms), (99.0, 100.0));
    }

    #[test]
    fn share_needs_both() {
        let mut s = Shared {
            reverse: false,
            mbit: [Some(150.0), Some(50.0)],
            errors: Vec::new(),
        };
        assert_eq!(s.first_share(), Some(0.75));
        s.mbit[1] = None;
        assert_eq!(s.first_share(), None);
    }
}
