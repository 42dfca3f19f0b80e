//! Local services for the tests to publish, and visitor helpers.

use std::net::SocketAddr;

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{within, LOCALHOST};

/// A TCP echo service on 127.0.0.1:0: echoes until EOF, then shuts down its write side.
pub async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// A service that reads until EOF, then answers with the SHA-256 of what it read and closes.
pub async fn digest_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind digest");
    let addr = listener.local_addr().expect("digest addr");
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => hasher.update(&buf[..n]),
                        Err(_) => return,
                    }
                }
                let _ = tcp.write_all(&hasher.finalize()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A port on which nothing listens (bound, read back, closed).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    l.local_addr().expect("addr")
}

/// `len` pseudo-random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rng().fill_bytes(&mut v);
    v
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Connects to `addr`, sends `msg`, and reads back exactly as many bytes.
pub async fn echo_once(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    tcp.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    within("echo reply", tcp.read_exact(&mut back))
        .await
        .expect("read echo");
    back
}

/// Sends `data` through an echo service at `addr` while reading it back concurrently;
/// returns the SHA-256 of what came back.
pub async fn echo_hash(addr: SocketAddr, data: &[u8]) -> [u8; 32] {
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (mut r, mut w) = tcp.into_split();
    let reader = async move {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).await.expect("read echo");
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        <[u8; 32]>::from(hasher.finalize())
    };
    let writer = async move {
        w.write_all(data).await.expect("write");
        w.shutdown().await.expect("shutdown");
    };
    let (digest, ()) = within("echo transfer", async { tokio::join!(reader, writer) }).await;
    digest
}

/// Reads until EOF or error; `Ok(bytes)` on a clean EOF, `Err` on a reset.
pub async fn read_to_end(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    within("read to end", tcp.read_to_end(&mut out)).await?;
    Ok(out)
}

/// How a service saw its connection end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A clean EOF (the peer's FIN).
    Eof,
    /// A read error (the peer's RST).
    Reset,
}

/// A service that greets with `ready`, reads until the connection ends and reports how it
/// ended on the channel.
pub async fn ending_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Ending>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tcp.write_all(b"ready").await;
                let ending = loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) => break Ending::Eof,
                        Ok(_) => {}
                        Err(_) => break Ending::Reset,
                    }
                };
                let _ = tx.send(ending);
            });
        }
    });
    (addr, rx)
}

/// A service that reads `after` bytes, then resets the connection (SO_LINGER 0).
pub async fn resetting_server(after: usize) -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; after];
                if tcp.read_exact(&mut buf).await.is_ok() {
                    let _ = tcp.write_all(b"partial answer").await;
                    frp_runtime::splice::reset_tcp(tcp);
                }
            });
        }
    });
    addr
}

/// Connects through an echo proxy at `public` and proves the path works end to end with one
/// round trip; returns the open connection.
pub async fn open_echo(public: SocketAddr) -> TcpStream {
    let mut tcp = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    tcp.write_all(b"before").await.expect("write");
    let mut buf = [0u8; 6];
    within("echo before", tcp.read_exact(&mut buf))
        .await
        .expect("read");
    assert_eq!(&buf, b"before");
    tcp
}
