//! Idle tunneled connections: the echo target they end at, and the holder that opens them,
//! either with one echoed byte each or with one 1 KiB HTTP exchange each (to nginx).
//!
//! The echo target runs as a child process of the harness (`frp-bench echo-target`): with
//! 10,000 held connections the holder and the target need 10,000 descriptors each, and the
//! usual `nofile` limit (often 20,000 hard) does not fit both in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

use crate::probe::{connect, GET_1K_KEEP_ALIVE};

/// Connections being opened at once. Below frps's default `maxPendingConnectionsPerProxy`
/// (128), which resets public connections beyond that many waiting for their stream: the
/// idle figures measure memory, not how a burst of new connections is shed.
const OPEN_CONCURRENCY: usize = 100;
/// Limit for the connect and for the echo, each.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Limit for re-checking all held connections.
const RECHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Echoes every byte back on every connection, until the process is killed.
pub async fn serve_echo(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors: wait for some to close instead of spinning.
                eprintln!("echo target: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(echo(stream));
    }
}

async fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What each held connection carries before it goes idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// One byte to the echo target and its echo.
    EchoByte,
    /// `GET /1k` (keep-alive) to nginx and its whole response; the connection stays open.
    Http1k,
}

/// Connections held open through a tunnel, and how many could not be established.
#[derive(Debug, Default)]
pub struct Held {
    streams: Vec<TcpStream>,
    pub failed: usize,
    pub first_error: Option<String>,
}

impl Held {
    /// Connections held right now.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Opens connections to loopback `port` until `target` are held (failures count towards
    /// the attempts, not the target: at most `target - len` attempts are made). Each one sends
    /// one byte and waits for its echo, so the tunnel path is established end to end.
    pub async fn open_up_to(&mut self, port: u16, target: usize) {
        self.open_with(port, target, Exchange::EchoByte).await;
    }

    /// Like [`Held::open_up_to`], each connection carrying `exchange` before it is held.
    pub async fn open_with(&mut self, port: u16, target: usize, exchange: Exchange) {
        let wanted = target.saturating_sub(self.streams.len());
        let permits = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
        let mut set = JoinSet::new();
        for _ in 0..wanted {
            let permits = Arc::clone(&permits);
            set.spawn(async move {
                let _permit = permits.acquire_owned().await?;
                open_one(port, exchange).await
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(stream) => self.streams.push(stream),
                Err(e) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }

    /// Held connections the other end has closed (or reset) by now, without waiting: for
    /// those that carried an HTTP exchange, which cannot be echoed.
    pub fn closed(&self) -> usize {
        let mut buf = [0u8; 1];
        self.streams
            .iter()
            .filter(|s| !matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
            .count()
    }

    /// Checks that every held connection still echoes, within one bounded wait for all;
    /// returns how many no longer do.
    pub async fn broken(&mut self) -> usize {
        let deadline = Instant::now() + RECHECK_TIMEOUT;
        let mut alive = vec![false; self.streams.len()];
        for (stream, alive) in self.streams.iter_mut().zip(&mut alive) {
            *alive = timeout_at(deadline, stream.write_all(b"i"))
                .await
                .is_ok_and(|r| r.is_ok());
        }
        for (stream, alive) in self.streams.iter_mut().zip(&mut alive) {
            let mut buf = [0u8; 1];
            *alive = *alive
                && timeout_at(deadline, stream.read(&mut buf))
                    .await
                    .is_ok_and(|r| r.is_ok_and(|n| n == 1));
        }
        alive.iter().filter(|a| !**a).count()
    }
}

async fn open_one(port: u16, exchange: Exchange) -> Result<TcpStream> {
    let mut stream = timeout(STEP_TIMEOUT, connect(port))
        .await
        .context("connect timed out")??;
    let done = match exchange {
        Exchange::EchoByte => timeout(STEP_TIMEOUT, roundtrip(&mut stream)).await,
        Exchange::Http1k => timeout(STEP_TIMEOUT, get_1k(&mut stream)).await,
    };
    done.context("exchange timed out")??;
    Ok(stream)
}

/// `GET /1k` with keep-alive, reading the whole response (headers and the 1,024-byte body).
async fn get_1k(stream: &mut TcpStream) -> Result<()> {
    stream.write_all(GET_1K_KEEP_ALIVE).await?;
    let mut response = Vec::with_capacity(2048);
    loop {
        let mut buf = [0u8; 2048];
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("closed before the whole response");
        }
        response.extend_from_slice(&buf[..n]);
        let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        if !response.starts_with(b"HTTP/1.1 200") {
            bail!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&response[..end])
            );
        }
        match (response.len() - end - 4).cmp(&1024) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => return Ok(()),
            std::cmp::Ordering::Greater => bail!("more than the 1 KiB body"),
        }
    }
}

async fn roundtrip(stream: &mut TcpStream) -> Result<()> {
    stream.write_all(b"i").await?;
    let mut buf = [0u8; 1];
    if stream.read(&mut buf).await? != 1 {
        bail!("closed before the echo");
    }
    Ok(())
}
