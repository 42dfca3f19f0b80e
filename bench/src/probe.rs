//! Small network probes: readiness checks with bounded waits, and time to first byte.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::procs::LOCALHOST;

/// How long one probe attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);

/// The request the HTTP probes send: the 1 KiB file nginx serves.
pub const GET_1K: &[u8] = b"GET /1k HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

/// The same request keeping the connection open: the idle HTTP connections.
pub const GET_1K_KEEP_ALIVE: &[u8] = b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n";

/// Retries `check` every 100 ms until it succeeds or `limit` has passed; the error names
/// `what` and carries the last failure.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let err = match timeout(ATTEMPT, check()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => anyhow::anyhow!("attempt timed out after {ATTEMPT:?}"),
        };
        if Instant::now() >= deadline {
            return Err(err.context(format!("{what}: not ready after {limit:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects to `port` on loopback.
pub async fn connect(port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect((LOCALHOST, port))
        .await
        .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Accepts a TCP connection on `port`.
pub async fn accepts(port: u16) -> Result<()> {
    connect(port).await.map(drop)
}

/// One byte to `port` comes back: the echo target is reachable end to end.
pub async fn echoes(port: u16) -> Result<()> {
    let mut stream = connect(port).await?;
    stream.write_all(b"x").await?;
    let mut buf = [0u8; 1];
    stream
        .read_exact(&mut buf)
        .await
        .with_context(|| format!("no echo through port {port}"))?;
    Ok(())
}

/// `GET /1k` on `port` answers 200 with the whole 1 KiB body.
pub async fn serves_1k(port: u16) -> Result<()> {
    let mut stream = connect(port).await?;
    stream.write_all(GET_1K).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        bail!("port {port}: unexpected answer {:?}", text.lines().next());
    }
    let body = text.split("\r\n\r\n").nth(1).map_or(0, str::len);
    if body != 1024 {
        bail!("port {port}: body of {body} bytes, expected 1024");
    }
    Ok(())
}

/// Median and 90th percentile time to first byte, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Ttfb {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    /// Round-trip time the path adds on purpose (0 without the delay relay).
    pub added_rtt_ms: f64,
    /// Every sample in milliseconds, in the order taken.
    pub samples_ms: Vec<f64>,
}

/// Opens `samples` new connections to `port` one after the other; each sends `GET /1k` and
/// is timed from the connect call to the first response byte.
pub async fn ttfb(port: u16, samples: usize, added_rtt_ms: f64) -> Result<Ttfb> {
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let took = timeout(Duration::from_secs(10), first_byte(port))
            .await
            .with_context(|| format!("sample {i}: no first byte within 10 s"))??;
        times.push(took.as_secs_f64() * 1e3);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(Ttfb {
        samples,
        p50_ms: percentile(&sorted, 50.0),
        p90_ms: percentile(&sorted, 90.0),
        added_rtt_ms,
        samples_ms: times,
    })
}

/// Time from the connect call to the first response byte of `GET /1k` on a new connection
/// to `port`.
pub(crate) async fn first_byte(port: u16) -> Result<Duration> {
    let start = Instant::now();
    let mut stream = connect(port).await?;
    stream.write_all(GET_1K).await?;
    let mut buf = [0u8; 1];
    let n = stream.read(&mut buf).await?;
    if n == 0 {
        bail!("port {port}: closed before the first byte");
    }
    Ok(start.elapsed())
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
